"""Compiled kernels: the equations of ``fastbp.reference``, typed, fused and without the GIL.

Same functions, same signatures, same layout as the reference backend (read its
docstring for the conventions).  Each idea is written once, as a ``noexcept
nogil`` helper on raw pointers over ``cython.floating`` (float32 and float64);
the ``def`` functions are thin entry points that check the memory contract
(``fastbp._layout``), take pointers, release the GIL and call the helpers.  The
whole-network paths (``train_step``, ``train``, ...) call the same helpers in a
loop, so there is one implementation of each equation.

Nothing here allocates: callers pass every output and scratch buffer.  Values
are trusted (``fastbp.Network`` rejects NaN, inf and bad dtypes first); shapes
are checked once per call so that a direct call cannot touch memory outside its
arrays.  Outputs must not overlap inputs except where a docstring says so.

Speed, and why the code has the shape it has:

* **One source, several instruction sets.**  ``setup.py`` compiles this file
  several times on x86-64 (baseline SSE2, x86-64-v3 = AVX2, x86-64-v4 =
  AVX-512) into ``fastbp._kernels``, ``_kernels_v3`` and ``_kernels_v4``;
  ``fastbp.backends`` loads the best one the CPU runs.  Every variant is built
  with ``-ffp-contract=off`` and the loops below never reassociate a sum, so
  all variants round identically: a run gives the same bits on every machine.
* **Dot products in a fixed order** (``_dot``): 32 interleaved partial sums,
  then a pairwise tree.  A plain ``sum += w[j] * x[j]`` cannot be vectorised
  without reordering the sum (which C forbids); this order is fixed, so the
  compiler vectorises it at any vector width with the same result.
* **The online loop is fused** (``_online_epoch``): the update of ``W[l]`` for
  sample ``i`` and the forward pass of layer ``l`` for sample ``i + 1`` walk
  each row of ``W[l]`` once, while it is in L1 cache.
* **Mini-batches go through BLAS** (SciPy's ``cython_blas``: the OpenBLAS that
  NumPy uses): ``A[l] = s(A[l-1] W[l]^T + b)``, ``D[l-1] = (D[l] W[l]) * s'``
  and the update ``W[l] -= lr/m D[l]^T A[l-1]`` are one GEMM each, with the
  elementwise work fused around them.
* **Activations and losses are codes** (``fastbp._model``: ``model`` holds
  one activation code per layer and the loss code) passed into the fused
  loops, so each activation is a case in ``_activate_all`` (a vectorisable
  whole-layer loop each: the sigmoid and tanh on the branch-free
  ``fastbp_exp_nonpositive``, softmax a stable whole-layer operation) and in
  ``_times_derivative``, not a copy of the loops.  The word for the function
  is *activation* (``f``, ``model[l - 1]``); the buffer of the values
  ``a[l] = f(z[l])`` is ``activations`` (``act``).

Compiler directives (bounds checks off, ...) are set once in ``setup.py``;
``FASTBP_DEBUG=1`` at build time turns bounds checking back on.
"""

from cython cimport floating
from libc.math cimport exp, fabs, fmax, fmin, isfinite, log, log1p, pow, sqrt, tanh
from libc.stdint cimport uint64_t
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dgemm, sgemm

# First: importing a copy on a CPU that cannot run it raises ImportError.
include "_isa_guard.pxi"

import threading

import numpy as np

from fastbp import _model, _rules
from fastbp._layout import (
    activation_width,
    aligned_empty,
    block_rows,
    check_matrix,
    check_model,
    check_network,
    check_rows,
    check_same_length,
    check_sample,
    check_optimizer,
    check_train,
)

BACKEND_NAME = "cython"

# The C helpers (vectorisable exp, tanh, dots in a fixed order, finiteness
# on the bits) are in fastbp/_kernels.h.
cdef extern from "_kernels.h":
    double fastbp_exp_nonpositive(double t) nogil
    double fastbp_tanh(double x) nogil
    double fastbp_dot_d(const double* w, const double* x, Py_ssize_t n) nogil
    float fastbp_dot_f(const float* w, const float* x, Py_ssize_t n) nogil
    double fastbp_update_dot_d(double* w, double step, const double* x_prev, const double* x,
                               Py_ssize_t n) nogil
    float fastbp_update_dot_f(float* w, float step, const float* x_prev, const float* x,
                              Py_ssize_t n) nogil
    float fastbp_momentum_dot_f(float* w, float* buf, float delta, const float* x_prev,
                                const float* x, Py_ssize_t n, float mu, float lr) nogil
    double fastbp_momentum_dot_d(double* w, double* buf, double delta, const double* x_prev,
                                 const double* x, Py_ssize_t n, double mu, double lr) nogil
    bint fastbp_finite_amax_d(const double* v, Py_ssize_t n, double* amax) nogil
    bint fastbp_finite_amax_f(const float* v, Py_ssize_t n, double* amax) nogil
    void fastbp_copy_d(double* dst, const double* src, Py_ssize_t n) nogil
    void fastbp_copy_f(float* dst, const float* src, Py_ssize_t n) nogil

cdef extern from "Python.h":
    int PyErr_CheckSignals()

cdef enum:
    # Activation and loss codes: their index in fastbp._model's tables
    # (checked when the module loads, below).
    SIGMOID = 0
    TANH = 1
    RELU = 2
    LEAKY_RELU = 3
    IDENTITY = 4
    SOFTMAX = 5
    N_ACTIVATIONS = 6
    SQUARED_ERROR = 0
    CROSS_ENTROPY = 1
    RULE_SGD = 0           # optimizer rules: fastbp._rules (checked below)
    RULE_ADAM = 1
    RULE_RPROP = 2
    SIGNAL_WORK = 1 << 23  # multiply-adds between checks for Ctrl-C (a few ms)
    SNAPSHOT_ROWS = 64     # rows at least between two saves of a run's state (see _run_epochs)


# --------------------------------------------------------------------------
# nogil helpers: one per equation, on raw pointers
# --------------------------------------------------------------------------


cdef inline double _sigmoid(double z) noexcept nogil:
    # s(z) = 1 / (1 + e^-z).  For z < 0, e^-z may overflow: use e^z / (1 + e^z).
    # Evaluated in double for both dtypes; the caller rounds once on store.
    cdef double e
    if z >= 0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


if (_model.ACTIVATIONS.index("sigmoid"), _model.ACTIVATIONS.index("tanh"), _model.ACTIVATIONS.index("relu"),
        _model.ACTIVATIONS.index("leaky_relu"), _model.ACTIVATIONS.index("identity"),
        _model.ACTIVATIONS.index("softmax"), len(_model.ACTIVATIONS), _model.LOSSES.index("squared_error"),
        _model.LOSSES.index("cross_entropy")) != (SIGMOID, TANH, RELU, LEAKY_RELU, IDENTITY, SOFTMAX,
                                                  N_ACTIVATIONS, SQUARED_ERROR, CROSS_ENTROPY):
    raise ImportError("fastbp._kernels: its activation and loss codes disagree with fastbp._model")
if (_rules.SGD, _rules.ADAM, _rules.RPROP) != (RULE_SGD, RULE_ADAM, RULE_RPROP):
    raise ImportError("fastbp._kernels: its optimizer codes disagree with fastbp._rules")
cdef double LEAKY_SLOPE = _model.LEAKY_SLOPE


cdef inline double _activate(double z, int f) noexcept nogil:
    # a = f(z) for one value, in double (libm where f needs it): the
    # equations of fastbp._model.  NaN stays NaN in every case.
    if f == SIGMOID:
        return _sigmoid(z)
    if f == TANH:
        return tanh(z)
    if f == RELU:
        return 0.0 if z <= 0 else z
    if f == LEAKY_RELU:
        return z if z >= 0 else LEAKY_SLOPE * z
    return z   # IDENTITY


cdef inline void _activate_all(floating* z, Py_ssize_t n, int f) noexcept nogil:
    # z[k] <- f(z[k]) in place for a whole layer (softmax: z is one layer's
    # net inputs; a block of rows goes row by row, _activate_rows).  Each
    # activation has its own loop, free of calls, that the compiler vectorises;
    # the short sigmoid layers' loop is inline: on tiny networks the call
    # cost as much.
    cdef Py_ssize_t k
    cdef double x
    if f == SIGMOID:
        if n < 8:
            # Too few values to fill a vector: libm's exp has the shorter latency.
            for k in range(n):
                z[k] = <floating>_sigmoid(<double>z[k])
            return
        _sigmoid_layer(z, n)
    elif f == TANH:
        for k in range(n):
            z[k] = <floating>fastbp_tanh(<double>z[k])
    elif f == RELU:
        for k in range(n):
            z[k] = 0 if z[k] <= 0 else z[k]
    elif f == LEAKY_RELU:
        for k in range(n):
            x = <double>z[k]
            z[k] = <floating>(x if x >= 0 else LEAKY_SLOPE * x)
    elif f == SOFTMAX:
        _softmax(z, n)
    # IDENTITY: nothing to do


cdef inline void _activate_rows(floating* Z, Py_ssize_t m, Py_ssize_t n, int f) noexcept nogil:
    # _activate_all on each of the m rows of n values of a block (a softmax
    # normalises each row; the elementwise activations take the block at once).
    cdef Py_ssize_t r
    if f == SOFTMAX:
        for r in range(m):
            _softmax(Z + r * n, n)
    else:
        _activate_all(Z, m * n, f)


cdef void _sigmoid_layer(floating* z, Py_ssize_t n) noexcept nogil:
    # z[k] <- s(z[k]) in place for a whole layer, in double for both dtypes:
    #   s(z) = 1 / (1 + e^-|z|) for z >= 0,  e^-|z| / (1 + e^-|z|) for z < 0,
    # with e^-|z| from the vectorisable fastbp_exp_nonpositive.  A layer with
    # a value below -708 (where e^z turns subnormal, out of its range) is done
    # by _sigmoid (libm) instead: exact there too, and rare.
    cdef Py_ssize_t k
    cdef double x, t, e
    cdef bint far = False
    for k in range(n):
        far = far | (<double>z[k] < -708.0)
    if far:
        for k in range(n):
            z[k] = <floating>_sigmoid(<double>z[k])
        return
    for k in range(n):
        x = <double>z[k]
        # t = -|z|, clamped to the exp's range: for z > 708, e^-708 ~ 3e-308
        # still gives 1 / (1 + e) = 1 exactly, as e^-z would.  (Selects, not
        # branches or libm calls, so that the loop vectorises.)
        t = x if x < 0 else -x
        t = -708.0 if t < -708.0 else t
        e = fastbp_exp_nonpositive(t)
        z[k] = <floating>((1.0 if x >= 0 else e) / (1.0 + e))


cdef void _softmax(floating* z, Py_ssize_t n) noexcept nogil:
    # o_k = e^(z_k - m) / sum_i e^(z_i - m), m = max z, in double: no e^z
    # overflows, and the largest term is 1, so the sum is >= 1.  The e^t come
    # from fastbp_exp_nonpositive (t <= 0), or from libm when some t < -708
    # (out of its range; that e^t is below 3e-308 and rare).  Two passes over
    # the exps (the sum, then the quotients) instead of a buffer: a layer is
    # small.  Summed in index order, so every copy gives the same bits.
    cdef Py_ssize_t k
    cdef double m = <double>z[0], total = 0, t
    cdef bint far = False
    for k in range(1, n):
        m = <double>z[k] if <double>z[k] > m else m
    for k in range(n):
        far = far | (<double>z[k] - m < -708.0)
    if far:
        for k in range(n):
            total += exp(<double>z[k] - m)
        for k in range(n):
            z[k] = <floating>(exp(<double>z[k] - m) / total)
        return
    for k in range(n):
        total += fastbp_exp_nonpositive(<double>z[k] - m)
    for k in range(n):
        t = <double>z[k] - m
        z[k] = <floating>(fastbp_exp_nonpositive(t) / total)


cdef inline floating _sigmoid_derivative(floating a) noexcept nogil:
    # s'(z) = s(z) (1 - s(z)) = a (1 - a), given the activation a = s(z).
    return a * (1 - a)


cdef inline floating _activation_derivative(floating a, int f) noexcept nogil:
    # f'(z) written in terms of the activation a = f(z) (fastbp._model's table;
    # softmax has none: it comes with the cross-entropy, whose delta is o - y).
    if f == SIGMOID:
        return _sigmoid_derivative(a)
    if f == TANH:
        return 1 - a * a
    if f == RELU:
        return 1 if a > 0 else 0
    if f == LEAKY_RELU:
        return 1 if a > 0 else <floating>LEAKY_SLOPE
    return 1   # IDENTITY


cdef inline void _times_derivative(floating* d, const floating* a, Py_ssize_t n, int f) noexcept nogil:
    # d[j] *= f'(z_j) given a[j] = f(z_j), for n values: one loop per
    # activation (the select of each vectorises), the same products as
    # d[j] * _activation_derivative(a[j], f).
    cdef Py_ssize_t j
    cdef floating slope = <floating>LEAKY_SLOPE
    if f == SIGMOID:
        for j in range(n):
            d[j] = d[j] * _sigmoid_derivative(a[j])
    elif f == TANH:
        for j in range(n):
            d[j] = d[j] * (1 - a[j] * a[j])
    elif f == RELU:
        for j in range(n):
            d[j] = d[j] * (1 if a[j] > 0 else 0)
    elif f == LEAKY_RELU:
        for j in range(n):
            d[j] = d[j] * (1 if a[j] > 0 else slope)
    # IDENTITY: f' = 1


cdef inline void _copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    # dst[0:n] = src[0:n] (fastbp_copy_d/f above: inline for a few values).
    if floating is double:
        fastbp_copy_d(dst, src, n)
    else:
        fastbp_copy_f(dst, src, n)


cdef inline floating _dot(const floating* w, const floating* x, Py_ssize_t n) noexcept nogil:
    # sum_j w_j x_j in a fixed order (fastbp_dot_d/f above): 32 interleaved
    # partial sums and a pairwise tree, the same bits at every vector width.
    # Rows shorter than 32 are summed in order here, inline (the same order
    # fastbp_dot_* uses for them): on tiny networks the call cost as much.
    cdef floating acc = 0
    cdef Py_ssize_t j
    if n < 32:
        for j in range(n):
            acc += w[j] * x[j]
        return acc
    if floating is double:
        return fastbp_dot_d(w, x, n)
    else:
        return fastbp_dot_f(w, x, n)


cdef inline floating _update_dot(floating* row, floating step, const floating* a_prev,
                                 const floating* x, Py_ssize_t n) noexcept nogil:
    # row[j] -= step * a_prev[j], then the updated row . x (as _dot sums it),
    # in one pass over the row (fastbp_update_dot_d/f above): the same bits as
    # _update_row followed by _dot.  Rows shorter than 32 here, inline, as in
    # _dot, in one loop (the loop fastbp_update_dot_* has for them): each
    # weight is updated, stored and used from its register; two loops would
    # load back what was just stored, a store-forwarding stall on tiny rows.
    cdef floating acc = 0, w
    cdef Py_ssize_t j
    if n < 32:
        for j in range(n):
            w = row[j] - step * a_prev[j]
            row[j] = w
            acc += w * x[j]
        return acc
    if floating is double:
        return fastbp_update_dot_d(row, step, a_prev, x, n)
    else:
        return fastbp_update_dot_f(row, step, a_prev, x, n)


cdef inline floating _net_input(const floating* row, const floating* x, floating bias,
                                Py_ssize_t n_in, int f) noexcept nogil:
    # z_k = sum_j W[k, j] x_j + b_k for one neuron, row = W[k, :].
    return _add_bias(_dot(row, x, n_in), row, x, bias, n_in, f)


cdef inline floating _add_bias(floating net, const floating* row, const floating* x, floating bias,
                               Py_ssize_t n_in, int f) noexcept nogil:
    # z_k = net + b_k, net = W[k, :] . x computed by the caller (_dot or _update_dot).
    cdef double wide = 0
    cdef Py_ssize_t j
    if floating is float and not isfinite(net):
        # A float32 sum of finite terms overflowed (|W x| > 3.4e38 part way):
        # redo this neuron in double, where float32 products cannot overflow.
        # Never taken on ordinary data, so the fast loop stays float32.  The
        # sigmoid and tanh are flat beyond |z| = 1e30 (0 or 1, -1 or 1), so
        # for them store z clamped there; for the others a z out of the
        # float32 range is out of it (inf), as in the reference.
        for j in range(n_in):
            wide += <double>row[j] * <double>x[j]
        wide += <double>bias
        if f == SIGMOID or f == TANH:
            return <floating>(1e30 if wide > 1e30 else (-1e30 if wide < -1e30 else wide))
        return <floating>wide
    # net + b_k in the dtype: for float32 the same bits as adding in double and
    # rounding once (double holds the exact sum of two floats to within the
    # 2p + 2 bits that make the second rounding innocuous), one conversion less.
    return net + bias


cdef void _forward_layer(const floating* W, const floating* b, const floating* x,
                         floating* out, Py_ssize_t n_out, Py_ssize_t n_in, int f,
                         floating* z_out) noexcept nogil:
    # out_k = f(W[k, :] . x + b_k); W row-major, row k = weights into neuron k.
    # The net inputs z_k also go to z_out unless it is NULL (the output layer's).
    cdef Py_ssize_t k
    for k in range(n_out):
        out[k] = _net_input(W + k * n_in, x, b[k], n_in, f)
    if z_out != NULL:
        memcpy(z_out, out, n_out * sizeof(floating))
    _activate_all(out, n_out, f)


cdef inline double _cost(const floating* o, const floating* y, Py_ssize_t n) noexcept nogil:
    # J = 1/2 sum_k (y_k - o_k)^2, summed in double for both dtypes.
    cdef Py_ssize_t k
    cdef double diff, J = 0
    for k in range(n):
        diff = <double>y[k] - <double>o[k]
        J += diff * diff
    return 0.5 * J


cdef inline double _loss(const floating* o, const floating* z, const floating* y, Py_ssize_t n,
                         int f, int loss) noexcept nogil:
    # J of one sample (fastbp._model), in double for both dtypes: the squared
    # error of the outputs o, or the cross-entropy from the net inputs z of
    # the output layer (activation f: sigmoid or softmax), which stays finite
    # and accurate however far the outputs saturate:
    #   sigmoid: J = sum_k max(z_k, 0) - y_k z_k + ln(1 + e^-|z_k|)
    #   softmax: J = sum_k y_k (ln sum_i e^(z_i - m) - (z_k - m)),  m = max z
    #            (= sum_k y_k (lse - z_k), lse = ln sum_i e^z_i, with m cancelled first)
    cdef Py_ssize_t k
    cdef double J = 0, m, total = 0, log_total, v
    if loss == SQUARED_ERROR:
        return _cost(o, y, n)
    if f == SOFTMAX:
        m = <double>z[0]
        for k in range(1, n):
            m = <double>z[k] if <double>z[k] > m else m
        for k in range(n):
            total += exp(<double>z[k] - m)
        log_total = log(total)
        for k in range(n):
            J += <double>y[k] * (log_total - (<double>z[k] - m))
        return J
    for k in range(n):
        v = <double>z[k]
        J += (v if v > 0 else 0.0) - <double>y[k] * v + log1p(exp(-fabs(v)))
    return J


cdef inline void _output_delta(const floating* o, const floating* y, floating* delta,
                               Py_ssize_t n, int f, int loss) noexcept nogil:
    # delta_k = dJ/dz_k: -(y_k - o_k) * f'(z_k) for the squared error, and
    # o_k - y_k for the cross-entropy (sigmoid or softmax outputs).
    cdef Py_ssize_t k
    if loss == CROSS_ENTROPY:
        for k in range(n):
            delta[k] = o[k] - y[k]
        return
    for k in range(n):
        delta[k] = -(y[k] - o[k]) * _activation_derivative(o[k], f)


cdef inline void _hidden_delta(const floating* W, const floating* delta_next,
                               const floating* a, floating* delta, Py_ssize_t n_next,
                               Py_ssize_t n, int f) noexcept nogil:
    # delta_j = (sum_k W[k, j] delta_next_k) * f'(z_j), W of shape (n_next, n).
    # Walk W row by row (contiguous) and accumulate into delta; k ascends as in
    # the reference, so float64 sums round the same way.
    cdef Py_ssize_t k, j
    cdef const floating* row
    cdef floating d
    cdef double wide
    for j in range(n):
        delta[j] = 0
    for k in range(n_next):
        row = W + k * n
        d = delta_next[k]
        for j in range(n):
            delta[j] += row[j] * d
    if floating is double:
        _times_derivative(delta, a, n, f)
    else:
        for j in range(n):
            if not isfinite(delta[j]):
                # A float32 sum of finite terms overflowed; redo this column in
                # double (rare, so the row-wise loop stays float32).
                wide = 0
                for k in range(n_next):
                    wide += <double>W[k * n + j] * <double>delta_next[k]
                delta[j] = <floating>(wide * <double>_activation_derivative(a[j], f))
            else:
                delta[j] = delta[j] * _activation_derivative(a[j], f)


cdef inline void _update_row(floating* row, floating step, const floating* a_prev,
                             Py_ssize_t n_in) noexcept nogil:
    # W[k, j] -= (lr * delta_k) * a_prev_j for one row.
    cdef Py_ssize_t j
    for j in range(n_in):
        row[j] = row[j] - step * a_prev[j]


cdef void _update(floating* W, floating* b, const floating* delta, const floating* a_prev,
                  double lr, bint update_biases, Py_ssize_t n_out, Py_ssize_t n_in,
                  bint backwards) noexcept nogil:
    # W[k, j] -= lr * delta_k * a_prev_j;  b_k -= lr * delta_k.  ``backwards``
    # walks the rows from the last, as _update_forward does (no bit changes).
    cdef Py_ssize_t i, k
    cdef floating step
    for i in range(n_out):
        k = n_out - 1 - i if backwards else i
        step = <floating>(lr * delta[k])
        _update_row(W + k * n_in, step, a_prev, n_in)
        if update_biases:
            b[k] = b[k] - step


cdef inline void _update_forward(floating* W, floating* b, const floating* delta,
                                 const floating* a_prev, double lr, bint update_biases,
                                 const floating* x_next, floating* out_next, Py_ssize_t n_out,
                                 Py_ssize_t n_in, int f, bint backwards,
                                 floating* z_next) noexcept nogil:
    # _update, then _forward_layer of the next sample (x_next -> out_next,
    # and its net inputs to z_next unless NULL) with the updated weights, one
    # row at a time: each row of W is read from memory once for both, instead
    # of once per pass.  Same arithmetic as the two separate calls, so the
    # same result.  ``backwards`` walks the rows from the last: the online
    # loop alternates, so the rows a sample touched last (still in L2 when W
    # is larger than L2) are the next sample's first.  Every row's arithmetic
    # is its own, so the order changes no bit.
    cdef Py_ssize_t i, k
    cdef floating step, net
    cdef floating* row
    for i in range(n_out):
        k = n_out - 1 - i if backwards else i
        step = <floating>(lr * delta[k])
        row = W + k * n_in
        net = _update_dot(row, step, a_prev, x_next, n_in)
        if update_biases:
            b[k] = b[k] - step
        out_next[k] = _add_bias(net, row, x_next, b[k], n_in, f)
    if z_next != NULL:
        _copy(z_next, out_next, n_out)
    _activate_all(out_next, n_out, f)


cdef void _outer(const floating* delta, const floating* a_prev, floating* dW, floating* db,
                 Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    # dJ/dW[k, j] = delta_k * a_prev_j;  dJ/db_k = delta_k
    cdef Py_ssize_t k, j
    for k in range(n_out):
        for j in range(n_in):
            dW[k * n_in + j] = delta[k] * a_prev[j]
        db[k] = delta[k]


cdef inline Py_ssize_t _z_offset(const Py_ssize_t* sizes, Py_ssize_t L) noexcept nogil:
    # Where z[L] starts in one sample's activations: after a[0..L], sum(sizes).
    cdef Py_ssize_t l, offset = 0
    for l in range(L + 1):
        offset += sizes[l]
    return offset


cdef void _forward(const floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                   floating* act, const Py_ssize_t* model) noexcept nogil:
    # a[l] = f_l(W[l] a[l-1] + b[l]) for l = 1..L, in the flat activations,
    # and z[L] after a[L]; a[0] (the input) is already in place.
    cdef Py_ssize_t l, n_in, n_out, p = 0, a = 0
    for l in range(1, L + 1):
        n_in = sizes[l - 1]
        n_out = sizes[l]
        _forward_layer(params + p, params + p + n_out * n_in, act + a, act + a + n_in,
                       n_out, n_in, <int>model[l - 1], act + a + n_in + n_out if l == L else NULL)
        p += n_out * (n_in + 1)
        a += n_in


cdef double _backward(floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                      const floating* act, const floating* y, floating* deltas,
                      const Py_ssize_t* model) noexcept nogil:
    # J and every delta of one sample whose forward pass is in act, from the
    # weights as they are (no update): delta[L] from the output, then
    # delta[l-1] from W[l] and delta[l] for l = L..2.
    cdef Py_ssize_t l, n_in, n_out, p = 0, a = 0, d = 0
    cdef double J
    for l in range(1, L + 1):
        p += sizes[l] * (sizes[l - 1] + 1)  # ends at len(params)
        a += sizes[l - 1]                   # ends at the start of a[L]
        d += sizes[l]                       # ends at len(deltas)
    d -= sizes[L]                           # start of delta[L]
    J = _loss(act + a, act + a + sizes[L], y, sizes[L], <int>model[L - 1], <int>model[L])
    _output_delta(act + a, y, deltas + d, sizes[L], <int>model[L - 1], <int>model[L])
    for l in range(L, 1, -1):
        n_out = sizes[l]
        n_in = sizes[l - 1]
        p -= n_out * (n_in + 1)             # start of W[l]
        a -= n_in                           # start of a[l-1]
        _hidden_delta(params + p, deltas + d, act + a, deltas + d - n_in, n_out, n_in, <int>model[l - 2])
        d -= n_in
    return J


cdef void _update_all(floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                      const floating* act, const floating* deltas, double lr, bint update_biases,
                      floating* act_next, bint backwards, const Py_ssize_t* model) noexcept nogil:
    # Apply the deltas of one sample to every layer, l = 1..L.  With act_next
    # (whose a[0] holds the next sample), also run the next sample's forward
    # pass, layer by layer behind the updates (_update_forward): layer l of the
    # next sample needs W[l] updated and a[l-1] of the next sample, both done.
    # ``backwards``: each layer's rows from the last (see _update_forward).
    cdef Py_ssize_t l, n_in, n_out, p = 0, a = 0, d = 0
    for l in range(1, L + 1):
        n_in = sizes[l - 1]
        n_out = sizes[l]
        if act_next != NULL:
            _update_forward(params + p, params + p + n_out * n_in, deltas + d, act + a, lr,
                            update_biases, act_next + a, act_next + a + n_in, n_out, n_in,
                            <int>model[l - 1], backwards,
                            act_next + a + n_in + n_out if l == L else NULL)
        else:
            _update(params + p, params + p + n_out * n_in, deltas + d, act + a, lr,
                    update_biases, n_out, n_in, backwards)
        p += n_out * (n_in + 1)
        a += n_in
        d += n_out


# --------------------------------------------------------------------------
# Optimizers: the rules of fastbp.optimizers, one parameter at a time
# --------------------------------------------------------------------------


cdef struct Rule:
    # An optimizer for a run (fastbp.optimizers: the rules; fastbp._rules: the
    # codes and the order of ``hyper``).  Pointers into the optimizer's arrays.
    int code
    double lr, momentum, weight_decay, beta1, beta2, eps, eta_minus, eta_plus, step_min, step_max
    bint nesterov
    void* state                     # slots of n_params values (the dtype), laid out like params
    void* grad                      # one gradient (the dtype), laid out like params
    Py_ssize_t n_params, n_state
    double steps                    # updates made (Adam's t)
    double step_size, correction2   # Adam's lr / (1 - b1^t) and sqrt(1 - b2^t), per update


cdef inline void _rule_begin(Rule* r) noexcept nogil:
    # Count the update about to be made; Adam's bias corrections for it.
    r.steps += 1
    if r.code == RULE_ADAM:
        r.step_size = r.lr / (1 - pow(r.beta1, r.steps))
        r.correction2 = sqrt(1 - pow(r.beta2, r.steps))


# Each rule on one parameter w with gradient g (the dtype, as stored): SGD in
# the dtype, Adam and RPROP in double with every stored value rounded once
# (fastbp.optimizers): the same arithmetic, in the same order, as
# fastbp.reference's _sgd, _adam and _rprop.

cdef inline floating _sgd_one(floating w, floating g, const Rule* r) noexcept nogil:
    # Without momentum (no state): g += wd w;  w - lr g.  In the dtype, one
    # rounding per operation, as torch computes (the hyper-parameters rounded
    # to the dtype first).
    cdef floating lr = <floating>r.lr, wd = <floating>r.weight_decay
    if wd != 0:
        g = g + wd * w
    return w - lr * g


cdef inline floating _momentum_one(floating w, floating* buf, floating g, const Rule* r) noexcept nogil:
    # g += wd w;  buf = mu buf + g;  g = g + mu buf (Nesterov) or buf;  w - lr g,
    # in the dtype as _sgd_one.  The buffer is stored unconditionally (a
    # conditional store in a loop becomes a masked store, microcoded on some
    # CPUs); the tests on the hyper-parameters are selects between values.
    cdef floating lr = <floating>r.lr, wd = <floating>r.weight_decay, mu = <floating>r.momentum
    if wd != 0:
        g = g + wd * w
    buf[0] = mu * buf[0] + g
    g = g + mu * buf[0] if r.nesterov else buf[0]
    return w - lr * g


cdef inline double _lerp(double start, double end, double weight) noexcept nogil:
    # start + weight (end - start), as torch.lerp evaluates it.
    if fabs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


cdef inline floating _adam_one(floating w, floating* m, floating* v, floating g_stored,
                               const Rule* r) noexcept nogil:
    # m += (1 - b1)(g - m);  v = b2 v + (1 - b2) g^2;  w - lr/(1 - b1^t) m / (sqrt(v)/sqrt(1 - b2^t) + eps)
    cdef double g = g_stored
    if r.weight_decay != 0:
        g = g + r.weight_decay * w
    m[0] = <floating>_lerp(m[0], g, 1 - r.beta1)
    v[0] = <floating>(r.beta2 * v[0] + (1 - r.beta2) * g * g)
    return <floating>(w - r.step_size * (m[0] / (sqrt(<double>v[0]) / r.correction2 + r.eps)))


cdef inline floating _rprop_one(floating w, floating* prev, floating* step, floating g_stored,
                                const Rule* r) noexcept nogil:
    # iRPROP-: the step grows while g keeps its sign, shrinks (and this update
    # skips w, remembering g = 0) when it flips; w - sign(g) step.
    # The product is rounded to the dtype before its sign is taken, as torch's
    # grad.mul(prev).sign() does (in float32 a product of two tiny values
    # underflows to 0 there: the step is kept, not shrunk).
    cdef double g = g_stored, size = step[0]
    cdef double same = <floating>(g * prev[0])
    if same > 0:
        size = size * r.eta_plus
    elif same < 0:
        size = size * r.eta_minus
        g = 0
    step[0] = <floating>fmin(fmax(size, r.step_min), r.step_max)
    prev[0] = <floating>g
    if g > 0:
        return <floating>(w - step[0])
    if g < 0:
        return <floating>(w + step[0])
    return w


cdef inline floating _rule_one(floating w, floating* s, floating g, const Rule* r) noexcept nogil:
    # One parameter whose state is at s (one slot apart: n_params).
    if r.code == RULE_SGD:
        return _sgd_one(w, g, r) if r.momentum == 0 else _momentum_one(w, s, g, r)
    if r.code == RULE_ADAM:
        return _adam_one(w, s, s + r.n_params, g, r)
    return _rprop_one(w, s, s + r.n_params, g, r)


cdef void _rule_row(floating* row, floating* s, floating delta_k, const floating* a_prev, Py_ssize_t n,
                    const Rule* r) noexcept nogil:
    # One online update of a row of W: g_j = delta_k a_prev_j (the dtype's
    # product, as the reference stores it).  A loop per rule, free of the
    # dispatch, for the compiler to vectorise; the rule is copied to a local
    # so that the stores to row cannot alias it (its fields stay in registers).
    cdef Py_ssize_t j, N = r.n_params
    cdef Rule q = r[0]
    if q.code == RULE_SGD and q.momentum == 0:
        # No state to touch: a loop without it (a vectorised "if momentum"
        # would load the absent buffer under a mask, which costs a microcode
        # assist per vector on some CPUs).
        for j in range(n):
            row[j] = _sgd_one(row[j], delta_k * a_prev[j], &q)
    elif q.code == RULE_SGD:
        for j in range(n):
            row[j] = _momentum_one(row[j], s + j, delta_k * a_prev[j], &q)
    elif q.code == RULE_ADAM:
        for j in range(n):
            row[j] = _adam_one(row[j], s + j, s + N + j, delta_k * a_prev[j], &q)
    else:
        for j in range(n):
            row[j] = _rprop_one(row[j], s + j, s + N + j, delta_k * a_prev[j], &q)


cdef void _rule_update_forward(floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                               const floating* act, const floating* deltas, const Rule* r,
                               bint update_biases, floating* act_next, bint backwards,
                               const Py_ssize_t* model) noexcept nogil:
    # _update_all with an optimizer's rule: one sample's update of every layer
    # and, with act_next, the next sample's forward pass behind it, each row of
    # W[l] updated and then (while in L1) multiplied by the next input.
    cdef Py_ssize_t l, i, k, n_in, n_out, p = 0, a = 0, d = 0
    cdef floating* state = <floating*>r.state
    cdef floating* W
    cdef floating* b
    cdef floating* out_next
    cdef floating net
    cdef int f
    # A local copy, so that the stores into params and state (through
    # floating pointers, which may alias a double field) do not make the
    # compiler reload the rule's fields for every row.
    cdef Rule q = r[0]
    cdef bint plain_momentum = (q.code == RULE_SGD and q.momentum != 0 and q.weight_decay == 0
                                and not q.nesterov)
    for l in range(1, L + 1):
        n_in = sizes[l - 1]
        n_out = sizes[l]
        W = params + p
        b = W + n_out * n_in
        f = <int>model[l - 1]
        out_next = act_next + a + n_in if act_next != NULL else NULL
        for i in range(n_out):
            k = n_out - 1 - i if backwards else i
            if plain_momentum and out_next != NULL:
                # The common case in one pass over the row and its velocity.
                if floating is double:
                    net = fastbp_momentum_dot_d(W + k * n_in, state + p + k * n_in, deltas[d + k], act + a,
                                                act_next + a, n_in, q.momentum, q.lr)
                else:
                    net = fastbp_momentum_dot_f(W + k * n_in, state + p + k * n_in, deltas[d + k], act + a,
                                                act_next + a, n_in, <float>q.momentum, <float>q.lr)
                if update_biases:
                    b[k] = _momentum_one(b[k], state + p + n_out * n_in + k, deltas[d + k], &q)
                out_next[k] = _add_bias(net, W + k * n_in, act_next + a, b[k], n_in, f)
                continue
            _rule_row(W + k * n_in, state + p + k * n_in, deltas[d + k], act + a, n_in, r)
            if update_biases:
                b[k] = _rule_one(b[k], state + p + n_out * n_in + k, deltas[d + k], r)
            if out_next != NULL:
                out_next[k] = _net_input(W + k * n_in, act_next + a, b[k], n_in, f)
        if out_next != NULL:
            if l == L:
                _copy(out_next + n_out, out_next, n_out)
            _activate_all(out_next, n_out, f)
        p += n_out * (n_in + 1)
        a += n_in
        d += n_out


cdef void _rule_apply(floating* params, const Py_ssize_t* sizes, Py_ssize_t L, const Rule* r,
                      bint update_biases) noexcept nogil:
    # One update of every parameter from the gradient in r.grad (a batch's
    # mean); the loops as in _rule_row.
    cdef Py_ssize_t l, i, n, N = r.n_params, p = 0
    cdef Rule q = r[0]
    cdef floating* state = <floating*>q.state
    cdef const floating* G = <const floating*>q.grad
    for l in range(1, L + 1):
        n = sizes[l] * (sizes[l - 1] + (1 if update_biases else 0))
        if q.code == RULE_SGD and q.momentum == 0:
            for i in range(p, p + n):
                params[i] = _sgd_one(params[i], G[i], &q)
        elif q.code == RULE_SGD:
            for i in range(p, p + n):
                params[i] = _momentum_one(params[i], state + i, G[i], &q)
        elif q.code == RULE_ADAM:
            for i in range(p, p + n):
                params[i] = _adam_one(params[i], state + i, state + N + i, G[i], &q)
        else:
            for i in range(p, p + n):
                params[i] = _rprop_one(params[i], state + i, state + N + i, G[i], &q)
        p += sizes[l] * (sizes[l - 1] + 1)


# --------------------------------------------------------------------------
# Blocks of samples: BLAS
# --------------------------------------------------------------------------


cdef inline void _gemm(char transa, char transb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       double alpha, const floating* A, Py_ssize_t lda,
                       const floating* B, Py_ssize_t ldb, double beta,
                       floating* C, Py_ssize_t ldc) noexcept nogil:
    # Column-major C (m x n) = alpha op(A) op(B) + beta C, in the dtype.  Sizes
    # fit BLAS's int: _layout.check_train caps them.  BLAS never writes A or B.
    cdef int m_ = <int>m, n_ = <int>n, k_ = <int>k
    cdef int lda_ = <int>lda, ldb_ = <int>ldb, ldc_ = <int>ldc
    cdef float alpha_f = <float>alpha, beta_f = <float>beta
    if floating is double:
        dgemm(&transa, &transb, &m_, &n_, &k_, &alpha, <double*>A, &lda_, <double*>B, &ldb_,
              &beta, C, &ldc_)
    else:
        sgemm(&transa, &transb, &m_, &n_, &k_, &alpha_f, <float*>A, &lda_, <float*>B, &ldb_,
              &beta_f, C, &ldc_)


cdef void _forward_block(const floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                         Py_ssize_t m, floating* act, const Py_ssize_t* model) noexcept nogil:
    # A[l] = f_l(A[l-1] W[l]^T + b[l]) for a block of m samples (row r = sample
    # r), A[0] already in place, and the net inputs Z[L] of the output layer
    # after A[L].  In BLAS's column-major terms A[l]^T = W[l] A[l-1]^T:
    # W[l] (row-major n_out x n_in) is column-major n_in x n_out, hence 'T'.
    cdef Py_ssize_t l, r, k, n_in, n_out, p = 0, a = 0
    cdef const floating* W
    cdef const floating* b
    cdef floating* A_prev
    cdef floating* A
    cdef floating z
    for l in range(1, L + 1):
        n_in = sizes[l - 1]
        n_out = sizes[l]
        W = params + p
        b = W + n_out * n_in
        A_prev = act + a
        A = act + a + m * n_in
        _gemm(c'T', c'N', n_out, m, n_in, 1.0, W, n_in, A_prev, n_in, 0.0, A, n_out)
        for r in range(m):
            for k in range(n_out):
                z = A[r * n_out + k]
                if floating is float and not isfinite(z):
                    # float32 overflow part way through the sum: redo in double
                    # (as _net_input does).
                    A[r * n_out + k] = _net_input(W + k * n_in, A_prev + r * n_in, b[k], n_in,
                                                  <int>model[l - 1])
                else:
                    A[r * n_out + k] = <floating>(<double>z + <double>b[k])
        if l == L:
            memcpy(A + m * n_out, A, m * n_out * sizeof(floating))
        _activate_rows(A, m, n_out, <int>model[l - 1])
        p += n_out * (n_in + 1)
        a += m * n_in


cdef inline Py_ssize_t _row(const Py_ssize_t* order, Py_ssize_t t) noexcept nogil:
    # The t-th row visited: order[t], or t when there is no order (NULL).
    return order[t] if order != NULL else t


cdef double _train_block(floating* params, const Py_ssize_t* sizes, Py_ssize_t L, Py_ssize_t m,
                         const floating* Y, const Py_ssize_t* order, Py_ssize_t start, double lr,
                         bint update_biases, floating* act, floating* deltas,
                         const Py_ssize_t* model, floating* G, double alpha, double beta) noexcept nogil:
    # One mini-batch step on the m samples whose inputs are in A[0] and whose
    # targets are rows _row(order, start + r) of Y; returns the sum of their J (measured
    # before the step).  The gradient is averaged over the m samples:
    #   W[l] -= lr/m sum_r delta_r[l] a_r[l-1]^T = lr/m D[l]^T A[l-1]   (one GEMM)
    #   b[l] -= lr/m sum_r delta_r[l]
    # and D[l-1] = (D[l] W[l]) * f'(A[l-1]) is taken before W[l] changes.
    # With G (laid out like params) the weights stay as they are and the
    # gradient sums go to G instead, G = beta G + alpha sum_r (an optimizer's
    # rule makes the update: alpha = 1/m for a batch's mean; beta = 1 adds
    # this block to the blocks before it, for RPROP's full batch).
    cdef Py_ssize_t l, r, k, n_in, n_out, p = 0, a = 0, d = 0
    cdef Py_ssize_t n_L = sizes[L]
    cdef double J = 0, scale = lr / m
    cdef floating* W
    cdef floating* b
    cdef floating* A_prev
    cdef floating* D
    cdef floating* D_prev
    cdef double col
    cdef const floating* y
    _forward_block(params, sizes, L, m, act, model)
    for l in range(1, L + 1):
        p += sizes[l] * (sizes[l - 1] + 1)
        a += m * sizes[l - 1]
        d += m * sizes[l]
    d -= m * n_L                            # start of D[L]
    for r in range(m):
        y = Y + _row(order, start + r) * n_L
        J += _loss(act + a + r * n_L, act + a + (m + r) * n_L, y, n_L, <int>model[L - 1], <int>model[L])
        _output_delta(act + a + r * n_L, y, deltas + d + r * n_L, n_L, <int>model[L - 1], <int>model[L])
    for l in range(L, 0, -1):
        n_out = sizes[l]
        n_in = sizes[l - 1]
        p -= n_out * (n_in + 1)
        a -= m * n_in
        W = params + p
        b = W + n_out * n_in
        A_prev = act + a
        D = deltas + d
        if l > 1:
            # D[l-1]^T (n_in x m) = W[l]^T D[l]^T; W[l] is column-major n_in x n_out.
            D_prev = D - m * n_in
            _gemm(c'N', c'N', n_in, m, n_out, 1.0, W, n_in, D, n_out, 0.0, D_prev, n_in)
            _times_derivative(D_prev, A_prev, m * n_in, <int>model[l - 2])
            d -= m * n_in
        if G != NULL:
            # G[l]^T = beta G[l]^T + alpha A[l-1]^T D[l], and the biases' sums.
            _gemm(c'N', c'T', n_in, n_out, m, alpha, A_prev, n_in, D, n_out, beta, G + p, n_in)
            for k in range(n_out):
                col = 0
                for r in range(m):
                    col += D[r * n_out + k]
                # (beta = 0 reads nothing: G may hold anything, as BLAS allows.)
                G[p + n_out * n_in + k] = <floating>(alpha * col if beta == 0 else
                                                     beta * G[p + n_out * n_in + k] + alpha * col)
            continue
        # W[l]^T (n_in x n_out, column-major) -= lr/m A[l-1]^T D[l].
        _gemm(c'N', c'T', n_in, n_out, m, -scale, A_prev, n_in, D, n_out, 1.0, W, n_in)
        if update_biases:
            for k in range(n_out):
                col = 0
                for r in range(m):
                    col += D[r * n_out + k]
                b[k] = <floating>(b[k] - scale * col)
    return J


# --------------------------------------------------------------------------
# Whole runs
# --------------------------------------------------------------------------


cdef inline uint64_t _next_random(uint64_t* state) noexcept nogil:
    # SplitMix64 (Steele, Lea & Flood 2014): tiny, fast and the same in Python.
    cdef uint64_t z
    state[0] += <uint64_t>0x9E3779B97F4A7C15
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef void _shuffle(Py_ssize_t* order, Py_ssize_t n, uint64_t* state) noexcept nogil:
    # Fisher-Yates; j uniform in [0, i] by rejection (no modulo bias).
    cdef Py_ssize_t i, j, tmp
    cdef uint64_t bound, threshold, r
    for i in range(n - 1, 0, -1):
        bound = <uint64_t>(i + 1)
        threshold = (<uint64_t>0 - bound) % bound   # = 2**64 mod bound
        r = _next_random(state)
        while r < threshold:
            r = _next_random(state)
        j = <Py_ssize_t>(r % bound)
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


cdef inline bint _all_finite(const floating* v, Py_ssize_t n) noexcept nogil:
    # No NaN or inf in v[0..n) (one vectorised pass on the bits: _finite_amax).
    cdef double amax
    return _finite_amax(v, n, &amax)


cdef bint _signal_pending() noexcept nogil:
    # Take the GIL for an instant so that Python runs its signal handlers; a
    # handler that raised (Ctrl-C: KeyboardInterrupt) leaves its exception set,
    # for _reraise once the loop has left the network consistent.
    with gil:
        return PyErr_CheckSignals() != 0


cdef inline bint _interrupted(Py_ssize_t* work, Py_ssize_t done, bint watch_signals,
                              bint* interrupted) noexcept nogil:
    # Count ``done`` multiply-adds of work; every SIGNAL_WORK of them (when
    # watching), look for Ctrl-C.  True: stop the loop (interrupted[0] set).
    work[0] += done
    if watch_signals and work[0] >= SIGNAL_WORK:
        work[0] = 0
        interrupted[0] = _signal_pending()
        return interrupted[0]
    return False


cdef int _reraise() except -1:
    # Propagate the exception PyErr_CheckSignals left set (KeyboardInterrupt).
    return -1


cdef inline Py_ssize_t _next_row(const Py_ssize_t* O, Py_ssize_t t, Py_ssize_t n, bint prefetch) noexcept nogil:
    # The row after sample t of an online epoch of n, whose forward pass rides
    # on sample t's update: the epoch's next, else (``prefetch``) the next
    # epoch's first; -1 for none.
    if t + 1 < n:
        return _row(O, t + 1)
    return _row(O, 0) if prefetch else -1


cdef double _online_epoch(floating* P, const Py_ssize_t* S, Py_ssize_t L, const floating* X,
                          const floating* Y, Py_ssize_t n, const Py_ssize_t* O, double lr,
                          bint update_biases, floating** act_pair, floating* dl, bint ready,
                          bint prefetch, bint* backwards, Py_ssize_t* work, bint watch_signals,
                          bint* interrupted, const Py_ssize_t* M, Rule* R) noexcept nogil:
    # One epoch of online updates (plain, or by the rule R unless NULL);
    # returns the sum of the samples' J.
    # act_pair = (this sample's activations, the next one's): each update of
    # layer l is fused with the next sample's forward pass through layer l
    # (_update_all with act_next), and the two swap.  ``ready``: the first
    # sample's forward pass is already in act_pair[0] (the previous epoch's
    # last update ran it); ``prefetch``: run the next epoch's first forward
    # pass the same way (its first row is known: rows in order, or one row).
    # ``backwards`` alternates the direction the updates walk the rows in, from
    # sample to sample (see _update_forward), and carries over to the next epoch.
    cdef Py_ssize_t t, nxt, n_in = S[0], n_out = S[L], work_per_sample = 0, l
    cdef floating* act = act_pair[0]
    cdef floating* act_next = act_pair[1]
    cdef floating* tmp
    cdef double total = 0
    for l in range(1, L + 1):
        work_per_sample += S[l] * (S[l - 1] + 1)
    if not ready:
        memcpy(act, X + _row(O, 0) * n_in, n_in * sizeof(floating))
        _forward(P, S, L, act, M)
        backwards[0] = True   # the forward pass ended on the last rows
    for t in range(n):
        total += _backward(P, S, L, act, Y + _row(O, t) * n_out, dl, M)
        nxt = _next_row(O, t, n, prefetch)
        if nxt >= 0:
            _copy(act_next, X + nxt * n_in, n_in)
        if R != NULL:
            _rule_begin(R)
            _rule_update_forward(P, S, L, act, dl, R, update_biases, act_next if nxt >= 0 else NULL,
                                 backwards[0], M)
        else:
            _update_all(P, S, L, act, dl, lr, update_biases, act_next if nxt >= 0 else NULL, backwards[0], M)
        if nxt >= 0:
            tmp = act
            act = act_next
            act_next = tmp
        backwards[0] = not backwards[0]
        if _interrupted(work, work_per_sample, watch_signals, interrupted):
            break
    act_pair[0] = act
    act_pair[1] = act_next
    return total


cdef inline double _one_hidden_epoch(
        floating* P, const floating* X, const floating* Y, Py_ssize_t n, const Py_ssize_t* O,
        double lr, bint update_biases, floating** act_pair, floating* dl, bint ready, bint prefetch,
        bint* backwards, Py_ssize_t* work, bint watch_signals, bint* interrupted,
        const Py_ssize_t* S, const Py_ssize_t* M, Py_ssize_t n0, Py_ssize_t n1,
        Py_ssize_t n2) noexcept nogil:
    # _online_epoch for L = 2 (one hidden layer) and plain gradient descent,
    # the same steps on the same helpers in the same order (so the same bits),
    # with the layers' offsets fixed and no loop over layers or call per
    # sample.  Inline so that _online_epoch_one_hidden can give it constant
    # sizes: on a network as small as 2-2-2 the compiler then unrolls every
    # loop (the general loop spent over a quarter of a 2-2-2 sample on its
    # overhead).
    #   params: W1 (n1 x n0), b1, W2 (n2 x n1), b2
    #   activations: a0 (n0), a1 (n1), a2 (n2), z2 (n2);  deltas: d1 (n1), d2 (n2)
    cdef floating* W1 = P
    cdef floating* b1 = P + n1 * n0
    cdef floating* W2 = b1 + n1
    cdef floating* b2 = W2 + n2 * n1
    cdef floating* d1 = dl
    cdef floating* d2 = dl + n1
    cdef floating* act = act_pair[0]
    cdef floating* act_next = act_pair[1]
    cdef floating* tmp
    cdef const floating* y
    cdef Py_ssize_t t, nxt, work_per_sample = n1 * (n0 + 1) + n2 * (n1 + 1)
    cdef int f1 = <int>M[0], f2 = <int>M[1], loss = <int>M[2]
    cdef double total = 0
    if not ready:
        memcpy(act, X + _row(O, 0) * n0, n0 * sizeof(floating))
        _forward(P, S, 2, act, M)
        backwards[0] = True   # the forward pass ended on the last rows
    for t in range(n):
        # _backward: J, delta[2], then delta[1] from W[2] before its update.
        y = Y + _row(O, t) * n2
        total += _loss(act + n0 + n1, act + n0 + n1 + n2, y, n2, f2, loss)
        _output_delta(act + n0 + n1, y, d2, n2, f2, loss)
        _hidden_delta(W2, d2, act + n0, d1, n2, n1, f1)
        nxt = _next_row(O, t, n, prefetch)
        if nxt >= 0:
            # _update_all with act_next: each layer's update fused with the
            # next sample's forward pass through it.
            _copy(act_next, X + nxt * n0, n0)
            _update_forward(W1, b1, d1, act, lr, update_biases, act_next, act_next + n0, n1, n0,
                            f1, backwards[0], NULL)
            _update_forward(W2, b2, d2, act + n0, lr, update_biases, act_next + n0,
                            act_next + n0 + n1, n2, n1, f2, backwards[0], act_next + n0 + n1 + n2)
            tmp = act
            act = act_next
            act_next = tmp
        else:
            _update(W1, b1, d1, act, lr, update_biases, n1, n0, backwards[0])
            _update(W2, b2, d2, act + n0, lr, update_biases, n2, n1, backwards[0])
        backwards[0] = not backwards[0]
        if _interrupted(work, work_per_sample, watch_signals, interrupted):
            break
    act_pair[0] = act
    act_pair[1] = act_next
    return total


cdef double _online_epoch_one_hidden(
        floating* P, const Py_ssize_t* S, const floating* X, const floating* Y, Py_ssize_t n,
        const Py_ssize_t* O, double lr, bint update_biases, floating** act_pair, floating* dl,
        bint ready, bint prefetch, bint* backwards, Py_ssize_t* work, bint watch_signals,
        bint* interrupted, const Py_ssize_t* M) noexcept nogil:
    # _online_epoch for one hidden layer and plain gradient descent: the body
    # is _one_hidden_epoch, given the sizes as constants for 2-2-2 (the worked
    # example's network, where the per-sample overhead is largest).
    if S[0] == 2 and S[1] == 2 and S[2] == 2:
        return _one_hidden_epoch(P, X, Y, n, O, lr, update_biases, act_pair, dl, ready, prefetch,
                                 backwards, work, watch_signals, interrupted, S, M, 2, 2, 2)
    return _one_hidden_epoch(P, X, Y, n, O, lr, update_biases, act_pair, dl, ready, prefetch,
                             backwards, work, watch_signals, interrupted, S, M, S[0], S[1], S[2])


cdef double _batch_epoch(floating* P, const Py_ssize_t* S, Py_ssize_t L, const floating* X,
                         const floating* Y, Py_ssize_t n, const Py_ssize_t* O, double lr,
                         Py_ssize_t batch_size, bint update_biases, floating* act, floating* dl,
                         Py_ssize_t* work, bint watch_signals, bint* interrupted,
                         const Py_ssize_t* M, Rule* R) noexcept nogil:
    # One epoch of mini-batch updates (_train_block: plain, or by the rule R
    # unless NULL); returns the sum of the samples' J.  RPROP is full-batch:
    # its gradient sums every block of batch_size rows into one mean over
    # the epoch, and the update comes after the last block.
    cdef Py_ssize_t start = 0, m, r, n_in = S[0], work_per_sample = 0, l
    cdef double total = 0
    cdef bint full_batch = R != NULL and R.code == RULE_RPROP
    cdef floating* G = <floating*>R.grad if R != NULL else NULL
    for l in range(1, L + 1):
        work_per_sample += S[l] * (S[l - 1] + 1)
    while start < n:
        m = batch_size if start + batch_size <= n else n - start
        for r in range(m):
            memcpy(act + r * n_in, X + _row(O, start + r) * n_in, n_in * sizeof(floating))
        if full_batch:
            total += _train_block(P, S, L, m, Y, O, start, lr, update_biases, act, dl, M, G,
                                  1.0 / n, 0.0 if start == 0 else 1.0)
        else:
            total += _train_block(P, S, L, m, Y, O, start, lr, update_biases, act, dl, M, G, 1.0 / m, 0.0)
            if R != NULL:
                _rule_begin(R)
                _rule_apply(P, S, L, R, update_biases)
        start += m
        if _interrupted(work, m * work_per_sample, watch_signals, interrupted):
            return total
    if full_batch:
        _rule_begin(R)
        _rule_apply(P, S, L, R, update_biases)
    return total


cdef struct Run:
    # What a whole training run works on, for _run_epochs (pointers into the
    # caller's buffers; nothing here is owned).
    Py_ssize_t L, n, n_params, batch_size
    const Py_ssize_t* sizes
    const Py_ssize_t* model    # an activation code per layer, then the loss code
    Py_ssize_t* order          # NULL: rows in order
    uint64_t* rng_state
    bint shuffle, update_biases, watch_signals
    double lr
    double* costs
    Rule* rule                 # NULL: plain gradient descent with lr


cdef inline void _save(const Run* run, const floating* P, floating* backup, double* steps) noexcept nogil:
    # What an undo puts back: the parameters, then the optimizer's state and count.
    memcpy(backup, P, run.n_params * sizeof(floating))
    if run.rule != NULL:
        memcpy(backup + run.n_params, run.rule.state, run.rule.n_state * sizeof(floating))
        steps[0] = run.rule.steps


cdef inline void _restore(const Run* run, floating* P, const floating* backup, double steps) noexcept nogil:
    memcpy(P, backup, run.n_params * sizeof(floating))
    if run.rule != NULL:
        memcpy(run.rule.state, backup + run.n_params, run.rule.n_state * sizeof(floating))
        run.rule.steps = steps


cdef double _epoch(Run* run, floating* P, const floating* X, const floating* Y, floating** act_pair,
                   floating* dl, bint ready, bint prefetch, bint* backwards, Py_ssize_t* work,
                   bint watch_signals, bint* interrupted) noexcept nogil:
    # One epoch of the run; returns the sum of the samples' J.  Online when
    # batches are of one sample, except RPROP's full batch (as in _run_epochs).
    if run.batch_size == 1 and run.rule == NULL and run.L == 2:
        return _online_epoch_one_hidden(P, run.sizes, X, Y, run.n, run.order, run.lr,
                                        run.update_biases, act_pair, dl, ready, prefetch, backwards,
                                        work, watch_signals, interrupted, run.model)
    if run.batch_size == 1 and (run.rule == NULL or run.rule.code != RULE_RPROP):
        return _online_epoch(P, run.sizes, run.L, X, Y, run.n, run.order, run.lr, run.update_biases,
                             act_pair, dl, ready, prefetch, backwards, work, watch_signals,
                             interrupted, run.model, run.rule)
    return _batch_epoch(P, run.sizes, run.L, X, Y, run.n, run.order, run.lr, run.batch_size,
                        run.update_biases, act_pair[0], dl, work, watch_signals, interrupted, run.model,
                        run.rule)


cdef Py_ssize_t _run_epochs(Run* run, floating* P, const floating* X, const floating* Y,
                            floating* act, floating* dl, floating* backup, Py_ssize_t epochs,
                            bint* interrupted) noexcept nogil:
    # The epochs of a run; returns how many completed.  An epoch that ends
    # with a non-finite cost or weight is undone and ends the run (its index
    # is returned), and so does Ctrl-C (``interrupted``; that epoch undone).
    #
    # Undo without a copy per epoch: the state at the start of an epoch
    # (params, the optimizer's state, the row order, the RNG state) is saved
    # every ``k`` epochs, with
    # k * n >= SNAPSHOT_ROWS rows between saves, so the copy costs a few
    # percent of one sample's work per sample however small the epochs.  The
    # cost is checked every epoch (free); the weights at each save and at the
    # end (a weight that turned NaN or inf stays so: w - s a never returns
    # to finite).  When either check fails, or on Ctrl-C, the epochs since
    # the save are replayed from it - training is deterministic, so they give
    # the same bits - checking after each one, which finds the first epoch
    # that diverged, or gets back to the start of the interrupted one.
    cdef Py_ssize_t n = run.n, n_params = run.n_params, epoch, snap = 0, failed = -1, e = 0
    cdef Py_ssize_t k = SNAPSHOT_ROWS // n if n < SNAPSHOT_ROWS else 1
    cdef Py_ssize_t work = 0, n_order = n if (run.shuffle and run.order != NULL and k > 1) else 0
    cdef Py_ssize_t order_copy[SNAPSHOT_ROWS]   # n < SNAPSHOT_ROWS when k > 1
    cdef uint64_t rng_copy
    cdef floating* act_pair[2]
    cdef bint ready = False, prefetch, no_signals = False, backwards = True
    cdef double total, steps_copy = 0, steps_before = 0
    cdef bint online = run.batch_size == 1 and (run.rule == NULL or run.rule.code != RULE_RPROP)
    act_pair[0] = act
    act_pair[1] = act + _width(run.sizes, run.L)
    # Snapshot of the start of epoch 0.
    _save(run, P, backup, &steps_copy)
    if n_order:
        memcpy(order_copy, run.order, n_order * sizeof(Py_ssize_t))
    rng_copy = run.rng_state[0]
    for epoch in range(epochs):
        if epoch - snap >= k:
            if not _all_finite(P, n_params):
                failed = epoch
                break
            _save(run, P, backup, &steps_copy)
            if n_order:
                memcpy(order_copy, run.order, n_order * sizeof(Py_ssize_t))
            rng_copy = run.rng_state[0]
            snap = epoch
        if run.shuffle and run.order != NULL:
            _shuffle(run.order, n, run.rng_state)
        # The next epoch's first row is known when the rows are in order
        # (or there is one): its forward pass rides on this epoch's last
        # online update.
        prefetch = epoch + 1 < epochs and (not run.shuffle or n == 1)
        total = _epoch(run, P, X, Y, act_pair, dl, ready, prefetch, &backwards, &work, run.watch_signals,
                       interrupted)
        ready = prefetch and online
        if interrupted[0]:
            failed = epoch
            break
        run.costs[epoch] = total / n
        if not isfinite(run.costs[epoch]) or (k == 1 and not _all_finite(P, n_params)):
            failed = epoch + 1
            break
    else:
        if k > 1 and not _all_finite(P, n_params):
            failed = epochs
    if failed < 0:
        return epochs
    # Back to the snapshot (with k = 1 it is the start of the failed epoch,
    # whose order and RNG state need no rewinding).  If the failure is the
    # epoch that started there (its start was checked), that is all;
    # otherwise forward again one checked epoch at a time up to ``failed``
    # (exclusive): the first epoch that fails its check is undone and is
    # where the run ended.  As in the reference, the run ends with the
    # weights from before epoch e and the order and RNG state from after its
    # shuffle.
    _restore(run, P, backup, steps_copy)
    if k > 1:
        if n_order:
            memcpy(run.order, order_copy, n_order * sizeof(Py_ssize_t))
        run.rng_state[0] = rng_copy
    if failed == snap + 1 and not interrupted[0]:
        e = snap
    else:
        for e in range(snap, failed + 1):
            if e == failed:
                break  # Ctrl-C: at the start of the interrupted epoch
            _save(run, P, backup, &steps_before)
            if run.shuffle and run.order != NULL:
                _shuffle(run.order, n, run.rng_state)
            total = _epoch(run, P, X, Y, act_pair, dl, False, False, &backwards, &work, False, &no_signals)
            run.costs[e] = total / n
            if not isfinite(run.costs[e]) or not _all_finite(P, n_params):
                _restore(run, P, backup, steps_before)
                return e
    if k > 1 and run.shuffle and run.order != NULL:
        _shuffle(run.order, n, run.rng_state)   # the order epoch e was (or was being) run in
    return e


cdef inline Py_ssize_t _width(const Py_ssize_t* sizes, Py_ssize_t L) noexcept nogil:
    # sum(sizes) + sizes[L]: the length of one sample's activations a[0..L], z[L].
    return _z_offset(sizes, L) + sizes[L]


cdef object _model_codes(sizes, model):
    # ``model`` checked (fastbp._layout.check_model) as a read-only intp
    # array the helpers can take a pointer to; None is the note's model.
    check_model(sizes, model)
    if model is None:
        return np.array([SIGMOID] * (len(sizes) - 1) + [SQUARED_ERROR], dtype=np.intp)
    return np.ascontiguousarray(model, dtype=np.intp)


cdef inline const Py_ssize_t* _codes(const Py_ssize_t[::1] model) noexcept:
    return &model[0]


def train(floating[::1] params, const Py_ssize_t[::1] sizes, const floating[:, ::1] X,
          const floating[:, ::1] Y, Py_ssize_t[::1] order, uint64_t[::1] rng_state,
          bint shuffle, double lr, Py_ssize_t batch_size, bint update_biases,
          double[::1] costs, floating[::1] activations, floating[::1] deltas,
          floating[::1] backup, model=None, optimizer=None):
    """A whole training run: ``len(costs)`` epochs of gradient descent in one
    call without the GIL; returns the number of epochs completed.

    ``order`` holds the row indices in the order they are visited, or is
    empty for rows in order (no memory per row).  Each epoch: shuffle
    ``order`` in place (if ``shuffle``), then one update per batch of
    ``batch_size`` consecutive entries of ``order`` (the last batch may be
    smaller), each averaging the gradient over its samples; ``costs[e]`` =
    the mean over the epoch of each sample's J, measured with the weights its
    update started from.  An epoch that ends with a non-finite cost or weight
    is undone (``params`` put back as they were before it, ``backup`` being
    the room for that) and ends the run: the return value is then its index.
    On Ctrl-C the interrupted epoch is undone and ``KeyboardInterrupt`` raised.
    """
    check_train(params, sizes, X, Y, order, rng_state, shuffle, batch_size, costs, activations, deltas, backup)
    codes = _model_codes(sizes, model)
    check_optimizer(params, sizes, optimizer, backup)
    cdef Run run
    cdef Rule rule
    cdef bint interrupted = False
    cdef Py_ssize_t done
    cdef floating[::1] state
    cdef floating[::1] grad
    cdef double[::1] counters
    cdef const double[::1] hyper
    run.rule = NULL
    if optimizer is not None:
        rule.code, hyper, state, counters, grad = optimizer
        _rule_from(&rule, hyper)
        rule.state = &state[0] if state.shape[0] > 0 else NULL
        rule.grad = &grad[0]
        rule.n_params = params.shape[0]
        rule.n_state = state.shape[0]
        rule.steps = counters[0]
        run.rule = &rule
    run.L = sizes.shape[0] - 1
    run.n = X.shape[0]
    run.n_params = params.shape[0]
    run.batch_size = batch_size if batch_size <= X.shape[0] else X.shape[0]
    run.sizes = &sizes[0]
    run.model = _codes(codes)
    # An empty order visits the rows in order (and cannot be shuffled).
    run.order = &order[0] if order.shape[0] > 0 else NULL
    run.rng_state = &rng_state[0]
    run.shuffle = shuffle
    run.update_biases = update_biases
    run.watch_signals = threading.current_thread() is threading.main_thread()
    run.lr = lr
    run.costs = &costs[0] if costs.shape[0] > 0 else NULL
    if costs.shape[0] == 0:
        return 0
    with nogil:
        done = _run_epochs(&run, &params[0], &X[0, 0], &Y[0, 0], &activations[0], &deltas[0],
                           &backup[0], costs.shape[0], &interrupted)
    if optimizer is not None:
        counters[0] = rule.steps
    if interrupted:
        _reraise()
    return done


cdef void _rule_from(Rule* rule, const double[::1] hyper) noexcept:
    # The hyper-parameters of rule.code, in the order of fastbp._rules.HYPER.
    if rule.code == RULE_SGD:
        rule.lr, rule.momentum, rule.weight_decay, rule.nesterov = hyper[0], hyper[1], hyper[2], hyper[3] != 0
    elif rule.code == RULE_ADAM:
        rule.lr, rule.beta1, rule.beta2, rule.eps, rule.weight_decay = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    else:
        rule.lr, rule.eta_minus, rule.eta_plus, rule.step_min, rule.step_max = (
            hyper[0], hyper[1], hyper[2], hyper[3], hyper[4])


def shuffle(Py_ssize_t[::1] order, uint64_t[::1] rng_state):
    """Shuffle ``order`` in place (Fisher-Yates over SplitMix64 drawn from
    ``rng_state[0]``, which advances): the order ``train`` visits rows in."""
    if rng_state.shape[0] != 1:
        raise ValueError(f"rng_state must hold 1 value, got {rng_state.shape[0]}")
    if order.shape[0] == 0:
        return
    with nogil:
        _shuffle(&order[0], order.shape[0], &rng_state[0])


# --------------------------------------------------------------------------
# Entry points: the interface of fastbp.reference
# --------------------------------------------------------------------------


cdef int _activation_code(activation, bint softmax_too) except -1:
    if not 0 <= activation < (N_ACTIVATIONS if softmax_too else SOFTMAX):
        raise ValueError(f"activation must be a code of fastbp._model.ACTIVATIONS"
                         f"{'' if softmax_too else ' other than softmax'}, got {activation!r}")
    return activation


def sigmoid(const floating[::1] z, floating[::1] out):
    """out[i] = s(z[i]) = 1 / (1 + e^-z[i]); stable for every finite z and for ±inf.
    ``out`` may be ``z`` itself."""
    check_same_length(z=z, out=out)
    if z.shape[0] == 0:
        return
    with nogil:
        if &out[0] != &z[0]:
            memcpy(&out[0], &z[0], z.shape[0] * sizeof(floating))
        _activate_all(&out[0], out.shape[0], SIGMOID)


def sigmoid_derivative(const floating[::1] a, floating[::1] out):
    """out[i] = a[i] * (1 - a[i]), the sigmoid's derivative given its activation."""
    check_same_length(a=a, out=out)
    cdef Py_ssize_t i
    with nogil:
        for i in range(a.shape[0]):
            out[i] = _sigmoid_derivative(a[i])


def activate(const floating[::1] z, floating[::1] out, int activation):
    """out = f(z) for the activation with code ``activation`` (softmax: z is
    one layer's net inputs).  ``out`` may be ``z`` itself."""
    check_same_length(z=z, out=out)
    cdef int f = _activation_code(activation, True)
    if z.shape[0] == 0:
        return
    with nogil:
        if &out[0] != &z[0]:
            memcpy(&out[0], &z[0], z.shape[0] * sizeof(floating))
        _activate_all(&out[0], out.shape[0], f)


def activation_derivative(const floating[::1] a, floating[::1] out, int activation):
    """out[i] = f'(z[i]) given the activations a = f(z) (not for softmax)."""
    check_same_length(a=a, out=out)
    cdef int f = _activation_code(activation, False)
    cdef Py_ssize_t i
    with nogil:
        for i in range(a.shape[0]):
            out[i] = _activation_derivative(a[i], f)


def forward_layer(const floating[:, ::1] W, const floating[::1] b, const floating[::1] x,
                  floating[::1] out, int activation=SIGMOID):
    """out = f(W @ x + b) in one pass (f: the sigmoid unless told)."""
    check_matrix(W, rows={"b": b, "out": out}, cols={"x": x})
    cdef int f = _activation_code(activation, True)
    if W.shape[0] == 0:
        return
    with nogil:
        _forward_layer(&W[0, 0], &b[0], &x[0], &out[0], W.shape[0], W.shape[1], f, NULL)


def cost(const floating[::1] o, const floating[::1] y, z=None, int activation=SIGMOID,
         int loss=SQUARED_ERROR):
    """J of one sample: the squared error of ``o``, or the cross-entropy from
    the output's net inputs ``z`` (``activation`` sigmoid or softmax)."""
    check_same_length(o=o, y=y)
    cdef int f = _activation_code(activation, True)
    cdef const floating[::1] zv
    if loss != SQUARED_ERROR and loss != CROSS_ENTROPY:
        raise ValueError(f"loss must be a code of fastbp._model.LOSSES, got {loss!r}")
    if loss == CROSS_ENTROPY and z is None:
        raise ValueError("the cross-entropy is computed from z, the output layer's net input: give z")
    if o.shape[0] == 0:
        return 0.0
    if loss == SQUARED_ERROR:
        with nogil:
            J = _cost(&o[0], &y[0], o.shape[0])
        return J
    zv = z
    check_same_length(o=o, z=zv)
    with nogil:
        J = _loss(&o[0], &zv[0], &y[0], o.shape[0], f, loss)
    return J


def output_delta(const floating[::1] o, const floating[::1] y, floating[::1] delta,
                 int activation=SIGMOID, int loss=SQUARED_ERROR):
    """delta = -(y - o) * f'(z) (squared error), or o - y (cross-entropy)."""
    check_same_length(o=o, y=y, delta=delta)
    cdef int f = _activation_code(activation, loss == CROSS_ENTROPY)
    if loss != SQUARED_ERROR and loss != CROSS_ENTROPY:
        raise ValueError(f"loss must be a code of fastbp._model.LOSSES, got {loss!r}")
    if o.shape[0] == 0:
        return
    with nogil:
        _output_delta(&o[0], &y[0], &delta[0], o.shape[0], f, loss)


def hidden_delta(const floating[:, ::1] W, const floating[::1] delta_next,
                 const floating[::1] a, floating[::1] delta, int activation=SIGMOID):
    """delta = (W.T @ delta_next) * f'(z); W holds the weights out of this layer."""
    check_matrix(W, rows={"delta_next": delta_next}, cols={"a": a, "delta": delta})
    cdef int f = _activation_code(activation, False)
    if W.shape[0] == 0 or W.shape[1] == 0:
        return
    with nogil:
        _hidden_delta(&W[0, 0], &delta_next[0], &a[0], &delta[0], W.shape[0], W.shape[1], f)


def update(floating[:, ::1] W, floating[::1] b, const floating[::1] delta,
           const floating[::1] a_prev, double lr, bint update_biases):
    """In place: W -= lr * outer(delta, a_prev); b -= lr * delta if update_biases."""
    check_matrix(W, rows={"b": b, "delta": delta}, cols={"a_prev": a_prev})
    if W.shape[0] == 0 or W.shape[1] == 0:
        return
    with nogil:
        _update(&W[0, 0], &b[0], &delta[0], &a_prev[0], lr, update_biases, W.shape[0], W.shape[1], False)


def forward(const floating[::1] params, const Py_ssize_t[::1] sizes, const floating[::1] x,
            floating[::1] activations, model=None):
    """Forward propagation of one sample into the flat activations a[0..L], z[L]."""
    check_network(params, sizes, activations)
    check_sample(sizes, x=x)
    codes = _model_codes(sizes, model)
    cdef const Py_ssize_t* M = _codes(codes)
    with nogil:
        memcpy(&activations[0], &x[0], x.shape[0] * sizeof(floating))
        _forward(&params[0], &sizes[0], sizes.shape[0] - 1, &activations[0], M)


def gradients(const floating[::1] params, const Py_ssize_t[::1] sizes, const floating[::1] x,
              const floating[::1] y, floating[::1] activations, floating[::1] deltas,
              floating[::1] grads, model=None):
    """dJ/dW and dJ/db of one sample into ``grads`` (laid out like params); returns J."""
    check_network(params, sizes, activations, deltas, grads)
    check_sample(sizes, x=x, y=y)
    codes = _model_codes(sizes, model)
    cdef const Py_ssize_t* M = _codes(codes)
    cdef Py_ssize_t l, n_in, n_out, p = 0, a = 0, d = 0, L = sizes.shape[0] - 1
    cdef double J
    with nogil:
        memcpy(&activations[0], &x[0], x.shape[0] * sizeof(floating))
        _forward(&params[0], &sizes[0], L, &activations[0], M)
        # _backward only reads params: casting away const here is safe.
        J = _backward(<floating*>&params[0], &sizes[0], L, &activations[0], &y[0], &deltas[0], M)
        for l in range(1, L + 1):
            n_in = sizes[l - 1]
            n_out = sizes[l]
            _outer(&deltas[d], &activations[a], &grads[p], &grads[p + n_out * n_in], n_out, n_in)
            p += n_out * (n_in + 1)
            a += n_in
            d += n_out
    return J


def train_step(floating[::1] params, const Py_ssize_t[::1] sizes, const floating[::1] x,
               const floating[::1] y, double lr, bint update_biases,
               floating[::1] activations, floating[::1] deltas, model=None):
    """One online update of params in place; returns J before it."""
    check_network(params, sizes, activations, deltas)
    check_sample(sizes, x=x, y=y)
    codes = _model_codes(sizes, model)
    cdef const Py_ssize_t* M = _codes(codes)
    cdef double J
    cdef Py_ssize_t L = sizes.shape[0] - 1
    with nogil:
        memcpy(&activations[0], &x[0], x.shape[0] * sizeof(floating))
        _forward(&params[0], &sizes[0], L, &activations[0], M)
        J = _backward(&params[0], &sizes[0], L, &activations[0], &y[0], &deltas[0], M)
        # Backwards: the rows the forward pass read last are still in cache.
        _update_all(&params[0], &sizes[0], L, &activations[0], &deltas[0], lr, update_biases, NULL, True, M)
    return J


cdef floating* _forward_rows(const floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                             const floating* X, Py_ssize_t rows, floating* act,
                             const Py_ssize_t* M) noexcept nogil:
    # The forward pass of ``rows`` consecutive rows of X in the block layout
    # (A[0] = the rows); returns where their outputs A[L] (rows x n_L) start,
    # the net inputs Z[L] following them.  One row goes through the
    # row-at-a-time path (_forward: one sample's layout is the block layout
    # with m = 1), more through BLAS.
    cdef Py_ssize_t l, a_out = 0
    for l in range(L):
        a_out += sizes[l]
    memcpy(act, X, rows * sizes[0] * sizeof(floating))
    if rows == 1:
        _forward(params, sizes, L, act, M)
    else:
        _forward_block(params, sizes, L, rows, act, M)
    return act + rows * a_out


def forward_batch(const floating[::1] params, const Py_ssize_t[::1] sizes,
                  const floating[:, ::1] X, floating[:, ::1] out, floating[::1] activations,
                  model=None):
    """out[i] = the network's output for row X[i].  ``activations`` may hold
    room for a block of m samples (m * (sum(sizes) + sizes[-1])): rows then go
    m at a time through BLAS."""
    check_network(params, sizes, activations[: activation_width(sizes)])
    check_rows(sizes, X, out=out)
    cdef Py_ssize_t m = block_rows(sizes, activations)
    codes = _model_codes(sizes, model)
    cdef const Py_ssize_t* M = _codes(codes)
    cdef Py_ssize_t start, rows, L = sizes.shape[0] - 1, n = X.shape[0]
    cdef floating* outputs
    with nogil:
        start = 0
        while start < n:
            rows = m if start + m <= n else n - start
            outputs = _forward_rows(&params[0], &sizes[0], L, &X[start, 0], rows, &activations[0], M)
            memcpy(&out[start, 0], outputs, rows * sizes[L] * sizeof(floating))
            start += rows


cdef double _rows_loss(const floating* outputs, const floating* Y, Py_ssize_t rows, Py_ssize_t n_out,
                       const Py_ssize_t* M, Py_ssize_t L) noexcept nogil:
    # The sum of the J of ``rows`` samples whose outputs (rows x n_out) and
    # then net inputs Z[L] (rows x n_out) start at ``outputs``.
    cdef Py_ssize_t r
    cdef double total = 0
    for r in range(rows):
        total += _loss(outputs + r * n_out, outputs + (rows + r) * n_out, Y + r * n_out, n_out,
                       <int>M[L - 1], <int>M[L])
    return total


def mean_cost(const floating[::1] params, const Py_ssize_t[::1] sizes, const floating[:, ::1] X,
              const floating[:, ::1] Y, floating[::1] activations, model=None):
    """The mean over rows of the per-sample J.  ``activations`` may hold a block
    of samples, as for ``forward_batch``."""
    check_network(params, sizes, activations[: activation_width(sizes)])
    check_rows(sizes, X, Y=Y)
    cdef Py_ssize_t m = block_rows(sizes, activations)
    codes = _model_codes(sizes, model)
    cdef const Py_ssize_t* M = _codes(codes)
    cdef Py_ssize_t start, rows, L = sizes.shape[0] - 1, n = X.shape[0]
    cdef floating* outputs
    cdef double total = 0
    with nogil:
        start = 0
        while start < n:
            rows = m if start + m <= n else n - start
            outputs = _forward_rows(&params[0], &sizes[0], L, &X[start, 0], rows, &activations[0], M)
            total += _rows_loss(outputs, &Y[start, 0], rows, sizes[L], M, L)
            start += rows
    return total / n


# --------------------------------------------------------------------------
# The door: validated per-call entry points of one network
# --------------------------------------------------------------------------

include "_door.pxi"
