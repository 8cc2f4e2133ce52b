/* The "what this CPU can do" reference: the loops a competent C programmer
 * writes for online and mini-batch backpropagation, compiled at benchmark
 * time with -O3 -march=native.
 *
 * Compiled once per precision: -DREAL=double -DEXP=exp -DTANH=tanh (native_f64)
 * or -DREAL=float -DEXP=expf -DTANH=tanhf (native_f32).  Parameters use fastbp's flat layout:
 * for each layer W (n_out x n_in, row-major) then b (n_out).  Sums accumulate
 * in REAL, as the arithmetic of that precision would; the per-epoch cost
 * accumulates in double.
 *
 * The dot products carry `#pragma omp simd reduction`: without it GCC may not
 * reorder a floating-point sum, so the forward pass would run one scalar
 * dependency chain per neuron.  Asking for the vectorised reduction (with
 * -fopenmp-simd, no OpenMP runtime) is what someone writing this loop for speed
 * does; everything else is plain loops.
 *
 * train_online/train_minibatch are the note's model (sigmoid, squared error).
 * Issue 10's models go through train_online_model/train_minibatch_model, the
 * same loops with `model` = one activation code per weight layer then the loss
 * code, fastbp's codes (fastbp._model.codes): activations 0 sigmoid, 1 tanh,
 * 2 relu, 3 leaky_relu (slope 0.01), 4 identity, 5 softmax (output only);
 * losses 0 squared error, 1 cross-entropy (sigmoid or softmax output), its cost
 * computed in double from the output's net input z, its delta o - y.  They are
 * separate functions so that the sigmoid loops stay exactly as they were.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef REAL
#error "compile with -DREAL=double -DEXP=exp -DTANH=tanh or -DREAL=float -DEXP=expf -DTANH=tanhf"
#endif
#ifndef TANH
#define TANH tanh
#endif

typedef REAL real;

static real sigmoid(real z) { return (real)1 / ((real)1 + EXP(-z)); }

/* Offsets of W[l] in params, and of a[l] in the activations, delta[l] in deltas. */
typedef struct {
    int L;              /* number of weight layers */
    const long *n;      /* n[0..L] layer widths */
    long w_off[64], a_off[65], d_off[65];
    long n_params, n_act;
} layout;

static int make_layout(layout *lay, int L, const long *n) {
    if (L < 1 || L > 63) return -1;
    lay->L = L;
    lay->n = n;
    long w = 0, a = 0, d = 0;
    for (int l = 0; l <= L; l++) {
        lay->a_off[l] = a;
        lay->d_off[l] = d;
        a += n[l];
        d += n[l];
        if (l < L) {
            lay->w_off[l + 1] = w;
            w += n[l + 1] * (n[l] + 1);
        }
    }
    lay->n_params = w;
    lay->n_act = a;
    return 0;
}

/* Forward pass of one sample x; returns J = 1/2 sum (y - o)^2 and leaves
 * a[l] in act and the output delta dJ/dnet in deltas. */
static double forward_and_output_delta(const layout *lay, const real *params, const real *x,
                                       const real *y, real *act, real *deltas) {
    const long *n = lay->n;
    memcpy(act, x, n[0] * sizeof(real));
    for (int l = 1; l <= lay->L; l++) {
        const real *W = params + lay->w_off[l], *b = W + n[l] * n[l - 1];
        const real *in = act + lay->a_off[l - 1];
        real *out = act + lay->a_off[l];
        for (long k = 0; k < n[l]; k++) {
            const real *row = W + k * n[l - 1];
            real s = 0;
#pragma omp simd reduction(+ : s)
            for (long j = 0; j < n[l - 1]; j++) s += row[j] * in[j];
            out[k] = sigmoid(s + b[k]);
        }
    }
    const real *o = act + lay->a_off[lay->L];
    real *delta = deltas + lay->d_off[lay->L];
    double J = 0;
    for (long k = 0; k < n[lay->L]; k++) {
        real e = o[k] - y[k];
        J += 0.5 * (double)e * (double)e;
        delta[k] = e * o[k] * (1 - o[k]);
    }
    return J;
}

/* delta[l-1] = (W[l]^T delta[l]) * a[l-1] * (1 - a[l-1]), walking W by rows. */
static void hidden_delta(const layout *lay, const real *params, const real *act, real *deltas, int l) {
    const long *n = lay->n;
    const real *W = params + lay->w_off[l];
    const real *delta = deltas + lay->d_off[l];
    const real *a = act + lay->a_off[l - 1];
    real *prev = deltas + lay->d_off[l - 1];
    memset(prev, 0, n[l - 1] * sizeof(real));
    for (long k = 0; k < n[l]; k++) {
        const real *row = W + k * n[l - 1];
        real d = delta[k];
        for (long j = 0; j < n[l - 1]; j++) prev[j] += row[j] * d;
    }
    for (long j = 0; j < n[l - 1]; j++) prev[j] *= a[j] * (1 - a[j]);
}

/* Online SGD: one update per sample, rows in order.  costs[e] = mean J of epoch e. */
int train_online(int L, const long *n, real *params, const real *X, const real *Y, long rows,
                 long epochs, double lr, double *costs) {
    layout lay;
    if (make_layout(&lay, L, n)) return -1;
    real *act = malloc(lay.n_act * sizeof(real));
    real *deltas = malloc(lay.n_act * sizeof(real));
    if (!act || !deltas) { free(act); free(deltas); return -2; }
    const real rate = (real)lr;
    for (long e = 0; e < epochs; e++) {
        double total = 0;
        for (long r = 0; r < rows; r++) {
            total += forward_and_output_delta(&lay, params, X + r * n[0], Y + r * n[L], act, deltas);
            for (int l = L; l >= 1; l--) {
                if (l > 1) hidden_delta(&lay, params, act, deltas, l);  /* before W[l] changes */
                real *W = params + lay.w_off[l], *b = W + n[l] * n[l - 1];
                const real *a = act + lay.a_off[l - 1], *delta = deltas + lay.d_off[l];
                for (long k = 0; k < n[l]; k++) {
                    real g = rate * delta[k];
                    real *row = W + k * n[l - 1];
                    for (long j = 0; j < n[l - 1]; j++) row[j] -= g * a[j];
                    b[k] -= g;
                }
            }
        }
        costs[e] = total / rows;
    }
    free(act);
    free(deltas);
    return 0;
}

/* Mini-batch SGD: the gradient averaged over each batch of `batch` rows (the
 * last batch over its own size), rows in order.  Each sample's J is measured
 * at the weights its batch started from. */
int train_minibatch(int L, const long *n, real *params, const real *X, const real *Y, long rows,
                    long epochs, long batch, double lr, double *costs) {
    layout lay;
    if (make_layout(&lay, L, n) || batch < 1) return -1;
    real *act = malloc(lay.n_act * sizeof(real));
    real *deltas = malloc(lay.n_act * sizeof(real));
    real *grad = malloc(lay.n_params * sizeof(real));
    if (!act || !deltas || !grad) { free(act); free(deltas); free(grad); return -2; }
    for (long e = 0; e < epochs; e++) {
        double total = 0;
        for (long start = 0; start < rows; start += batch) {
            long end = start + batch < rows ? start + batch : rows;
            memset(grad, 0, lay.n_params * sizeof(real));
            for (long r = start; r < end; r++) {
                total += forward_and_output_delta(&lay, params, X + r * n[0], Y + r * n[L], act, deltas);
                for (int l = L; l >= 1; l--) {
                    if (l > 1) hidden_delta(&lay, params, act, deltas, l);
                    real *gW = grad + lay.w_off[l], *gb = gW + n[l] * n[l - 1];
                    const real *a = act + lay.a_off[l - 1], *delta = deltas + lay.d_off[l];
                    for (long k = 0; k < n[l]; k++) {
                        real d = delta[k];
                        real *row = gW + k * n[l - 1];
                        for (long j = 0; j < n[l - 1]; j++) row[j] += d * a[j];
                        gb[k] += d;
                    }
                }
            }
            const real step = (real)(lr / (double)(end - start));
            for (long i = 0; i < lay.n_params; i++) params[i] -= step * grad[i];
        }
        costs[e] = total / rows;
    }
    free(act);
    free(deltas);
    free(grad);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Issue 10: any model fastbp trains.                                        */
/* ------------------------------------------------------------------------ */

enum { SIGMOID, TANH_, RELU, LEAKY_RELU, IDENTITY, SOFTMAX };
enum { SQUARED_ERROR, CROSS_ENTROPY };
#define LEAKY_SLOPE ((real)0.01)

static int valid_model(int L, const int *model) {
    for (int l = 0; l < L; l++)
        if (model[l] < SIGMOID || model[l] > SOFTMAX || (model[l] == SOFTMAX && l != L - 1)) return 0;
    int output = model[L - 1], loss = model[L];
    if (loss == CROSS_ENTROPY) return output == SIGMOID || output == SOFTMAX;
    return loss == SQUARED_ERROR && output != SOFTMAX;
}

/* out[0..n) = f(z[0..n)) (out may be z). */
static void activate_layer(int code, const real *z, real *out, long n) {
    switch (code) {
    case SIGMOID: for (long k = 0; k < n; k++) out[k] = sigmoid(z[k]); break;
    case TANH_: for (long k = 0; k < n; k++) out[k] = TANH(z[k]); break;
    case RELU: for (long k = 0; k < n; k++) out[k] = z[k] > 0 ? z[k] : 0; break;
    case LEAKY_RELU: for (long k = 0; k < n; k++) out[k] = z[k] > 0 ? z[k] : LEAKY_SLOPE * z[k]; break;
    case IDENTITY: for (long k = 0; k < n; k++) out[k] = z[k]; break;
    case SOFTMAX: {
        real m = z[0];
        for (long k = 1; k < n; k++) m = z[k] > m ? z[k] : m;
        real sum = 0;
        for (long k = 0; k < n; k++) sum += out[k] = EXP(z[k] - m);
        for (long k = 0; k < n; k++) out[k] /= sum;
        break;
    }
    }
}

/* f'(z) from a = f(z) (not softmax). */
static real derivative(int code, real a) {
    switch (code) {
    case SIGMOID: return a * (1 - a);
    case TANH_: return 1 - a * a;
    case RELU: return a > 0 ? 1 : 0;
    case LEAKY_RELU: return a > 0 ? 1 : LEAKY_SLOPE;
    default: return 1;
    }
}

/* Forward pass; returns the sample's cost and leaves a[l] in act, the output
 * delta in deltas; z_out is scratch for the output's net input. */
static double forward_and_output_delta_model(const layout *lay, const int *model, const real *params,
                                             const real *x, const real *y, real *act, real *deltas,
                                             real *z_out) {
    const long *n = lay->n;
    const int L = lay->L;
    memcpy(act, x, n[0] * sizeof(real));
    for (int l = 1; l <= L; l++) {
        const real *W = params + lay->w_off[l], *b = W + n[l] * n[l - 1];
        const real *in = act + lay->a_off[l - 1];
        real *out = act + lay->a_off[l];
        real *z = l == L ? z_out : out;
        for (long k = 0; k < n[l]; k++) {
            const real *row = W + k * n[l - 1];
            real s = 0;
#pragma omp simd reduction(+ : s)
            for (long j = 0; j < n[l - 1]; j++) s += row[j] * in[j];
            z[k] = s + b[k];
        }
        activate_layer(model[l - 1], z, out, n[l]);
    }
    const real *o = act + lay->a_off[L];
    real *delta = deltas + lay->d_off[L];
    const long m = n[L];
    const int output = model[L - 1];
    double J = 0;
    if (model[L] == SQUARED_ERROR) {
        for (long k = 0; k < m; k++) {
            real e = o[k] - y[k];
            J += 0.5 * (double)e * (double)e;
            delta[k] = e * derivative(output, o[k]);
        }
        return J;
    }
    if (output == SOFTMAX) {  /* J = sum y_k (logsumexp(z) - z_k) */
        double top = z_out[0], sum = 0;
        for (long k = 1; k < m; k++) top = z_out[k] > top ? z_out[k] : top;
        for (long k = 0; k < m; k++) sum += exp((double)z_out[k] - top);
        double lse = top + log(sum);
        for (long k = 0; k < m; k++) J += (double)y[k] * (lse - (double)z_out[k]);
    } else {  /* sigmoid: J = sum max(z, 0) - y z + log1p(exp(-|z|)) */
        for (long k = 0; k < m; k++) {
            double zk = z_out[k];
            J += (zk > 0 ? zk : 0) - (double)y[k] * zk + log1p(exp(-fabs(zk)));
        }
    }
    for (long k = 0; k < m; k++) delta[k] = o[k] - y[k];
    return J;
}

/* delta[l-1] = (W[l]^T delta[l]) * f'(a[l-1]). */
static void hidden_delta_model(const layout *lay, int code, const real *params, const real *act, real *deltas,
                               int l) {
    const long *n = lay->n;
    const real *W = params + lay->w_off[l];
    const real *delta = deltas + lay->d_off[l];
    const real *a = act + lay->a_off[l - 1];
    real *prev = deltas + lay->d_off[l - 1];
    memset(prev, 0, n[l - 1] * sizeof(real));
    for (long k = 0; k < n[l]; k++) {
        const real *row = W + k * n[l - 1];
        real d = delta[k];
        for (long j = 0; j < n[l - 1]; j++) prev[j] += row[j] * d;
    }
    for (long j = 0; j < n[l - 1]; j++) prev[j] *= derivative(code, a[j]);
}

int train_online_model(int L, const long *n, real *params, const real *X, const real *Y, long rows,
                       long epochs, double lr, double *costs, const int *model) {
    layout lay;
    if (make_layout(&lay, L, n) || !valid_model(L, model)) return -1;
    real *act = malloc(lay.n_act * sizeof(real));
    real *deltas = malloc(lay.n_act * sizeof(real));
    real *z_out = malloc(n[L] * sizeof(real));
    if (!act || !deltas || !z_out) { free(act); free(deltas); free(z_out); return -2; }
    const real rate = (real)lr;
    for (long e = 0; e < epochs; e++) {
        double total = 0;
        for (long r = 0; r < rows; r++) {
            total += forward_and_output_delta_model(&lay, model, params, X + r * n[0], Y + r * n[L], act, deltas,
                                                    z_out);
            for (int l = L; l >= 1; l--) {
                if (l > 1) hidden_delta_model(&lay, model[l - 2], params, act, deltas, l);  /* before W[l] changes */
                real *W = params + lay.w_off[l], *b = W + n[l] * n[l - 1];
                const real *a = act + lay.a_off[l - 1], *delta = deltas + lay.d_off[l];
                for (long k = 0; k < n[l]; k++) {
                    real g = rate * delta[k];
                    real *row = W + k * n[l - 1];
                    for (long j = 0; j < n[l - 1]; j++) row[j] -= g * a[j];
                    b[k] -= g;
                }
            }
        }
        costs[e] = total / rows;
    }
    free(act);
    free(deltas);
    free(z_out);
    return 0;
}

int train_minibatch_model(int L, const long *n, real *params, const real *X, const real *Y, long rows,
                          long epochs, long batch, double lr, double *costs, const int *model) {
    layout lay;
    if (make_layout(&lay, L, n) || batch < 1 || !valid_model(L, model)) return -1;
    real *act = malloc(lay.n_act * sizeof(real));
    real *deltas = malloc(lay.n_act * sizeof(real));
    real *grad = malloc(lay.n_params * sizeof(real));
    real *z_out = malloc(n[L] * sizeof(real));
    if (!act || !deltas || !grad || !z_out) { free(act); free(deltas); free(grad); free(z_out); return -2; }
    for (long e = 0; e < epochs; e++) {
        double total = 0;
        for (long start = 0; start < rows; start += batch) {
            long end = start + batch < rows ? start + batch : rows;
            memset(grad, 0, lay.n_params * sizeof(real));
            for (long r = start; r < end; r++) {
                total += forward_and_output_delta_model(&lay, model, params, X + r * n[0], Y + r * n[L], act,
                                                        deltas, z_out);
                for (int l = L; l >= 1; l--) {
                    if (l > 1) hidden_delta_model(&lay, model[l - 2], params, act, deltas, l);
                    real *gW = grad + lay.w_off[l], *gb = gW + n[l] * n[l - 1];
                    const real *a = act + lay.a_off[l - 1], *delta = deltas + lay.d_off[l];
                    for (long k = 0; k < n[l]; k++) {
                        real d = delta[k];
                        real *row = gW + k * n[l - 1];
                        for (long j = 0; j < n[l - 1]; j++) row[j] += d * a[j];
                        gb[k] += d;
                    }
                }
            }
            const real step = (real)(lr / (double)(end - start));
            for (long i = 0; i < lay.n_params; i++) params[i] -= step * grad[i];
        }
        costs[e] = total / rows;
    }
    free(act);
    free(deltas);
    free(grad);
    free(z_out);
    return 0;
}
