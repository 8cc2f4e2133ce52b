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
 * Optimizers (issue 11; peer_set_optimizer after peer_create):
 * - momentum: FANN_TRAIN_INCREMENTAL with fann_set_learning_momentum.  FANN 2.2's
 *   fann_update_weights does dw = lr * error * a + momentum * dw_prev; w += dw
 *   (dw_prev starts at 0).  With a constant lr that is torch.optim.SGD's momentum
 *   (dampening 0): by induction dw = -lr * buf, buf = momentum * buf + dJ/dw, so
 *   the trajectory is the same up to rounding (FANN multiplies lr in first);
 * - RPROP: FANN_TRAIN_RPROP, FANN 2.2's iRPROP- (fann_update_weights_irpropm), one
 *   update per epoch over all rows.  peer_train_rprop runs the body of FANN's
 *   fann_train_epoch_irpropm itself (fann_run, fann_compute_MSE,
 *   fann_backpropagate_MSE, fann_update_slopes_batch per row, then
 *   fann_update_weights_irpropm: FANN's own exported functions in FANN's order),
 *   only to read each row's outputs for J; peer_epoch_irpropm is FANN's
 *   fann_train_epoch itself, which the tests compare it with.  FANN's rule is not
 *   torch.optim.Rprop's: see cpeers.fann_irpropm_costs.
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
#include <string.h>

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

/* FANN's internal training functions (fann_internal.h is not installed; the
 * shared library exports them). */
void fann_compute_MSE(struct fann *ann, fann_type *desired_output);
void fann_backpropagate_MSE(struct fann *ann);
void fann_update_slopes_batch(struct fann *ann, struct fann_layer *layer_begin, struct fann_layer *layer_end);
void fann_update_weights_irpropm(struct fann *ann, unsigned int first_weight, unsigned int past_end);
void fann_clear_train_arrays(struct fann *ann);

/* algorithm 0: incremental with `momentum`; 1: RPROP with FANN's parameters
 * (increase, decrease, delta_min, delta_max, delta_zero).  Returns 0. */
int peer_set_optimizer(void *handle, int algorithm, double momentum, double increase, double decrease,
                       double delta_min, double delta_max, double delta_zero) {
    struct fann *ann = handle;
    if (algorithm == 0) {
        fann_set_training_algorithm(ann, FANN_TRAIN_INCREMENTAL);
        fann_set_learning_momentum(ann, (float)momentum);
    } else {
        fann_set_training_algorithm(ann, FANN_TRAIN_RPROP);
        fann_set_rprop_increase_factor(ann, (float)increase);
        fann_set_rprop_decrease_factor(ann, (float)decrease);
        fann_set_rprop_delta_min(ann, (float)delta_min);
        fann_set_rprop_delta_max(ann, (float)delta_max);
        fann_set_rprop_delta_zero(ann, (float)delta_zero);
    }
    return 0;
}

/* Forget the training state, as a fresh network has it: momentum's previous
 * deltas to 0; RPROP's slopes, previous slopes and steps as
 * fann_clear_train_arrays sets them for FANN_TRAIN_RPROP (steps = delta_zero). */
void peer_reset_state(void *handle) {
    struct fann *ann = handle;
    if (ann->prev_weights_deltas)
        memset(ann->prev_weights_deltas, 0, ann->total_connections_allocated * sizeof(fann_type));
    if (ann->training_algorithm == FANN_TRAIN_RPROP) fann_clear_train_arrays(ann);
}

/* The training data as FANN's struct (copied once, untimed). */
void *peer_data(const fann_type *X, const fann_type *Y, long rows, long n_in, long n_out) {
    struct fann_train_data *data = fann_create_train((unsigned int)rows, (unsigned int)n_in, (unsigned int)n_out);
    if (!data) return NULL;
    for (long r = 0; r < rows; r++) {
        memcpy(data->input[r], X + r * n_in, n_in * sizeof(fann_type));
        memcpy(data->output[r], Y + r * n_out, n_out * sizeof(fann_type));
    }
    return data;
}

void peer_data_destroy(void *data) { fann_destroy_train(data); }

/* RPROP epochs over all rows of `data`: the body of FANN 2.2's
 * fann_train_epoch_irpropm, reading each row's outputs (after fann_run, before
 * the epoch's update) for J.  costs[e] = mean J, fann_mse[e] = FANN's MSE. */
void peer_train_rprop(void *handle, void *train_data, long epochs, double *costs, double *fann_mse, long *clipped) {
    struct fann *ann = handle;
    struct fann_train_data *data = train_data;
    const unsigned int n_out = fann_get_num_output(ann);
    if (clipped) *clipped = 0;
    for (long e = 0; e < epochs; e++) {
        if (ann->prev_train_slopes == NULL) fann_clear_train_arrays(ann);
        fann_reset_MSE(ann);
        double total = 0;
        for (unsigned int i = 0; i < data->num_data; i++) {
            fann_type *out = fann_run(ann, data->input[i]);
            double J = 0;
            for (unsigned int k = 0; k < n_out; k++) {
                double err = (double)data->output[i][k] - (double)out[k];
                J += err * err;
            }
            total += 0.5 * J;
            if (clipped) *clipped += clipped_neurons(ann);
            fann_compute_MSE(ann, data->output[i]);
            fann_backpropagate_MSE(ann);
            fann_update_slopes_batch(ann, ann->first_layer + 1, ann->last_layer - 1);
        }
        fann_update_weights_irpropm(ann, 0, ann->total_connections);
        costs[e] = total / data->num_data;
        fann_mse[e] = fann_get_MSE(ann);
    }
}

/* One epoch of FANN's own fann_train_epoch (for the tests: the same weights
 * as peer_train_rprop's epoch).  Returns FANN's MSE. */
double peer_epoch_fann(void *handle, void *train_data) { return fann_train_epoch(handle, train_data); }

/* The network's weights in FANN's connection order (for the tests). */
void peer_get_weights(void *handle, fann_type *out) {
    struct fann *ann = handle;
    memcpy(out, ann->weights, ann->total_connections * sizeof(fann_type));
}

void peer_destroy(void *handle) { fann_destroy(handle); }
