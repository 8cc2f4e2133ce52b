/* FANN peer: incremental (online) training through FANN's own fann_train,
 * compiled at benchmark time against Debian's libfann-dev.
 *
 * Build with -DFANN_F64 (doublefann) or -DFANN_F32 (floatfann).  The network
 * gets fastbp's initial weights: FANN keeps, for each neuron of layer l >= 1,
 * its incoming connections from every neuron of layer l-1 followed by that
 * layer's bias neuron (value 1), so weight row k of W[l] then b[l][k] are the
 * connections of neuron k, in order.
 *
 * Settings that make FANN compute the same thing as fastbp:
 * - FANN_SIGMOID is 1 / (1 + exp(-2 s x)): steepness s = 0.5 gives 1 / (1 + e^-x),
 *   and its derivative 2 s a (1 - a) becomes a (1 - a);
 * - FANN_ERRORFUNC_LINEAR: the output error is (y - o), not FANN's default tanh-shaped error;
 * - momentum 0; fann_train does W += lr * error * a, i.e. W -= lr * dJ/dW, so the
 *   learning rate means what fastbp's lr means;
 * - FANN clips a to [0.01, 0.99] inside the derivative: the data keep the outputs
 *   away from those bounds, and the cost check would show it if they did not.
 *
 * Other models (issue 10; peer_set_model after peer_create, chosen by cpeers.py):
 * - tanh is FANN_SIGMOID_SYMMETRIC, 2 / (1 + exp(-2 s x)) - 1 = tanh(s x), with
 *   steepness s = 1 (FANN's default is 0.5); its derivative s (1 - a^2) clips a
 *   to [-0.98, 0.98] (counted like the sigmoid's clip);
 * - identity is FANN_LINEAR with steepness 1 (derivative 1, sums clamped to
 *   +-150, which these workloads never reach);
 * - with a symmetric output activation FANN halves the output error (y - o) / 2
 *   before using it (fann_update_MSE), so its gradient is half the exact one:
 *   cpeers.py gives FANN twice the learning rate (exact in binary: the update is
 *   linear in the output error);
 * - FANN has no ReLU (its FANN_LINEAR_PIECE is clipped to [0, 1]), no softmax and
 *   no cross-entropy: those models are n/a for this peer.
 *
 * The cost: FANN's MSE accumulates in a float (even in doublefann) and divides by
 * the number of outputs, so the driver measures J = 1/2 sum (y - o)^2 itself in
 * double, from ann->output, which fann_train leaves holding the outputs computed
 * before its update (n_out operations per sample, as fastbp's cost costs).
 */
#if defined(FANN_F64)
#include <doublefann.h>
#elif defined(FANN_F32)
#include <floatfann.h>
#else
#error "compile with -DFANN_F64 or -DFANN_F32"
#endif
#include <stdlib.h>

/* A FANN network with layer widths n[0..L] and fastbp's flat params. */
void *peer_create(int L, const long *n, const fann_type *params, double lr) {
    unsigned int *layers = malloc((L + 1) * sizeof(unsigned int));
    if (!layers) return NULL;
    for (int l = 0; l <= L; l++) layers[l] = (unsigned int)n[l];
    struct fann *ann = fann_create_standard_array(L + 1, layers);
    free(layers);
    if (!ann) return NULL;
    fann_set_activation_function_hidden(ann, FANN_SIGMOID);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    fann_set_activation_steepness_hidden(ann, 0.5);
    fann_set_activation_steepness_output(ann, 0.5);
    fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);
    fann_set_training_algorithm(ann, FANN_TRAIN_INCREMENTAL);
    fann_set_learning_momentum(ann, 0.0f);
    fann_set_learning_rate(ann, (float)lr);
    return ann;
}

/* Per-layer activation functions and steepnesses for layers 1..L, and the
 * learning rate (as FANN must see it).  Returns 0, or -1 if L disagrees. */
int peer_set_model(void *handle, int L, const int *functions, const double *steepness, double lr) {
    struct fann *ann = handle;
    if ((int)fann_get_num_layers(ann) != L + 1) return -1;
    for (int l = 1; l <= L; l++) {
        fann_set_activation_function_layer(ann, (enum fann_activationfunc_enum)functions[l - 1], l);
        fann_set_activation_steepness_layer(ann, (fann_type)steepness[l - 1], l);
    }
    fann_set_learning_rate(ann, (float)lr);
    return 0;
}

/* Copy fastbp's flat params (W[l] rows then b[l], per layer) into FANN's
 * connection order.  Returns 0, or -1 if the connection count disagrees. */
int peer_set_params(void *handle, int L, const long *n, const fann_type *params) {
    struct fann *ann = handle;
    long expected = 0;
    for (int l = 1; l <= L; l++) expected += n[l] * (n[l - 1] + 1);
    if ((long)fann_get_total_connections(ann) != expected) return -1;
    fann_type *w = ann->weights;
    long offset = 0;
    for (int l = 1; l <= L; l++) {
        const fann_type *W = params + offset, *b = W + n[l] * n[l - 1];
        for (long k = 0; k < n[l]; k++) {
            for (long j = 0; j < n[l - 1]; j++) *w++ = W[k * n[l - 1] + j];
            *w++ = b[k];
        }
        offset += n[l] * (n[l - 1] + 1);
    }
    return 0;
}

/* How many neurons of layers 1..L have an output where FANN's derivative
 * clips it (so its gradient is not the exact one): outside [0.01, 0.99] for
 * FANN_SIGMOID, outside [-0.98, 0.98] for FANN_SIGMOID_SYMMETRIC. */
static long clipped_neurons(struct fann *ann) {
    long count = 0;
    for (struct fann_layer *layer = ann->first_layer + 1; layer != ann->last_layer; layer++)
        for (struct fann_neuron *neuron = layer->first_neuron; neuron != layer->last_neuron - 1; neuron++) {
            /* last_neuron - 1: the bias */
            if (neuron->activation_function == FANN_SIGMOID)
                count += neuron->value < 0.01 || neuron->value > 0.99;
            else if (neuron->activation_function == FANN_SIGMOID_SYMMETRIC)
                count += neuron->value < -0.98 || neuron->value > 0.98;
        }
    return count;
}

/* Online training, rows in order; costs[e] = mean J of epoch e, fann_mse[e] =
 * FANN's own MSE of that epoch (for the record).  With `clipped` (not in timed
 * runs), also counts the derivatives FANN clipped. */
void peer_train(void *handle, const fann_type *X, const fann_type *Y, long rows, long epochs,
                double *costs, double *fann_mse, long *clipped) {
    struct fann *ann = handle;
    if (clipped) *clipped = 0;
    const unsigned int n_in = fann_get_num_input(ann), n_out = fann_get_num_output(ann);
    for (long e = 0; e < epochs; e++) {
        double total = 0;
        fann_reset_MSE(ann);
        for (long r = 0; r < rows; r++) {
            const fann_type *y = Y + r * n_out;
            fann_train(ann, (fann_type *)(X + r * n_in), (fann_type *)y);
            double J = 0;
            for (unsigned int k = 0; k < n_out; k++) {
                double err = (double)y[k] - (double)ann->output[k];
                J += err * err;
            }
            total += 0.5 * J;
            if (clipped) *clipped += clipped_neurons(ann);
        }
        costs[e] = total / rows;
        fann_mse[e] = fann_get_MSE(ann);
    }
}

void peer_destroy(void *handle) { fann_destroy(handle); }
