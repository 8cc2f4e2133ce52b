/* FANN side of bench/quality.py: FANN 2.2 (Debian libfann-dev, doublefann)
 * trained for a wall-clock budget with fann_train_epoch, as FANN's own
 * quality benchmark (benchmarks/quality.cc, FANN 2.1 beta) does.
 *
 * The network is fann_create_standard_array(layers) with FANN_SIGMOID (the
 * logistic 1 / (1 + exp(-2 s x)) at steepness s = 0.5) on the hidden and
 * output layers, as FANN's protocol sets it.  The algorithm and its settings:
 * - q_create(..., algorithm = FANN_TRAIN_INCREMENTAL, lr, momentum): online
 *   backprop, FANN_ERRORFUNC_LINEAR (the protocol's fann_incremental_momentum:
 *   lr 0.7, momentum 0.4; plain incremental: FANN's default lr 0.7, momentum 0);
 * - algorithm = FANN_TRAIN_RPROP: FANN's defaults untouched (iRPROP-, tanh
 *   error function, increase 1.2, decrease 0.5, delta_zero 0.1, delta_max 50).
 * The initial weights are FANN's own U(-0.1, 0.1) (fann_randomize_weights)
 * drawn after srand(seed + 1) (glibc treats 0 as 1), so a seed gives the same network every time
 * (fann_create_* seeds rand() from /dev/urandom itself).
 *
 * The data come from Python (the arrays fastbp trains on), copied once into a
 * fann_train_data.  q_test_mse measures FANN's MSE definition, the mean over
 * rows and outputs of (t - o)^2, in double (fann_test_data accumulates in a
 * float and, with the tanh error function, is not that quantity).
 */
#include <doublefann.h>
#include <stdlib.h>
#include <string.h>

void *q_create(int n_layers, const long *sizes, int algorithm, double lr, double momentum, unsigned int seed) {
    unsigned int *layers = malloc(n_layers * sizeof(unsigned int));
    if (!layers) return NULL;
    for (int l = 0; l < n_layers; l++) layers[l] = (unsigned int)sizes[l];
    struct fann *ann = fann_create_standard_array((unsigned int)n_layers, layers);
    free(layers);
    if (!ann) return NULL;
    fann_set_activation_function_hidden(ann, FANN_SIGMOID);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    fann_set_activation_steepness_hidden(ann, 0.5);
    fann_set_activation_steepness_output(ann, 0.5);
    fann_set_training_algorithm(ann, (enum fann_train_enum)algorithm);
    if (algorithm == FANN_TRAIN_INCREMENTAL) {
        fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);
        fann_set_learning_rate(ann, (float)lr);
        fann_set_learning_momentum(ann, (float)momentum);
    }
    srand(seed + 1u); /* glibc: srand(0) is srand(1) */
    fann_randomize_weights(ann, -0.1, 0.1);
    return ann;
}

void *q_data(long rows, long n_in, long n_out, const double *X, const double *Y) {
    struct fann_train_data *data = fann_create_train((unsigned int)rows, (unsigned int)n_in, (unsigned int)n_out);
    if (!data) return NULL;
    for (long i = 0; i < rows; i++) {
        for (long j = 0; j < n_in; j++) data->input[i][j] = X[i * n_in + j];
        for (long k = 0; k < n_out; k++) data->output[i][k] = Y[i * n_out + k];
    }
    return data;
}

/* `epochs` epochs of the network's algorithm; returns FANN's own MSE of the last. */
double q_train(void *ann, void *data, long epochs) {
    float mse = 0;
    for (long e = 0; e < epochs; e++) mse = fann_train_epoch(ann, data);
    return mse;
}

double q_test_mse(void *handle, void *data_handle) {
    struct fann *ann = handle;
    struct fann_train_data *data = data_handle;
    unsigned int n_out = data->num_output;
    double sum = 0;
    for (unsigned int i = 0; i < data->num_data; i++) {
        const fann_type *o = fann_run(ann, data->input[i]);
        for (unsigned int k = 0; k < n_out; k++) {
            double d = (double)data->output[i][k] - (double)o[k];
            sum += d * d;
        }
    }
    return sum / ((double)data->num_data * n_out);
}

void q_destroy(void *ann) { fann_destroy(ann); }

void q_destroy_data(void *data) { fann_destroy_train(data); }
