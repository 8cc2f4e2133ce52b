"""Compiled kernels: the equations of ``fastbp.reference``, typed, fused and without the GIL.

Same functions, same signatures, same layout as the reference backend (read its
docstring for the conventions).  Each idea is written once, as a ``noexcept
nogil`` helper on raw pointers over ``cython.floating`` (float32 and float64);
the ``def`` functions are thin entry points that check the memory contract
(``fastbp._layout``), take pointers, release the GIL and call the helpers.  The
whole-network paths (``train_step``, ``train_epoch``, ...) call the same
helpers in a loop, so there is one implementation of each equation.

Nothing here allocates: callers pass every output and scratch buffer.  Values
are trusted (``fastbp.Network`` rejects NaN, inf and bad dtypes first); shapes
are checked in O(1) per call so that a direct call cannot touch memory outside
its arrays.  Outputs must not overlap inputs except where a docstring says so.

Compiler directives (bounds checks off, ...) are set once in ``setup.py``;
``FASTBP_DEBUG=1`` at build time turns bounds checking back on.
"""

from cython cimport floating
from libc.math cimport exp, isfinite
from libc.string cimport memcpy

from fastbp._layout import (
    check_matrix,
    check_network,
    check_rows,
    check_same_length,
    check_sample,
)

BACKEND_NAME = "cython"


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


cdef inline floating _sigmoid_derivative(floating a) noexcept nogil:
    # s'(z) = s(z) (1 - s(z)) = a (1 - a), given the activation a = s(z).
    return a * (1 - a)


cdef void _forward_layer(const floating* W, const floating* b, const floating* x,
                         floating* out, Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    # out_k = s(sum_j W[k, j] x_j + b_k); W row-major, row k = weights into neuron k.
    cdef Py_ssize_t k, j
    cdef const floating* row
    cdef floating net
    cdef double wide
    for k in range(n_out):
        row = W + k * n_in
        net = 0
        for j in range(n_in):
            net += row[j] * x[j]
        if floating is float and not isfinite(net):
            # A float32 sum of finite terms overflowed (|W x| > 3.4e38 part way):
            # redo this neuron in double, where float32 products cannot overflow.
            # Never taken on ordinary data, so the fast loop stays float32.
            wide = 0
            for j in range(n_in):
                wide += <double>row[j] * <double>x[j]
            out[k] = <floating>_sigmoid(wide + <double>b[k])
        else:
            out[k] = <floating>_sigmoid(<double>net + <double>b[k])


cdef double _cost(const floating* o, const floating* y, Py_ssize_t n) noexcept nogil:
    # J = 1/2 sum_k (y_k - o_k)^2, summed in double for both dtypes.
    cdef Py_ssize_t k
    cdef double diff, J = 0
    for k in range(n):
        diff = <double>y[k] - <double>o[k]
        J += diff * diff
    return 0.5 * J


cdef void _output_delta(const floating* o, const floating* y, floating* delta,
                        Py_ssize_t n) noexcept nogil:
    # delta_k = -(y_k - o_k) * o_k (1 - o_k)
    cdef Py_ssize_t k
    for k in range(n):
        delta[k] = -(y[k] - o[k]) * _sigmoid_derivative(o[k])


cdef void _hidden_delta(const floating* W, const floating* delta_next, const floating* a,
                        floating* delta, Py_ssize_t n_next, Py_ssize_t n) noexcept nogil:
    # delta_j = (sum_k W[k, j] delta_next_k) * a_j (1 - a_j), W of shape (n_next, n).
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
    for j in range(n):
        if floating is float and not isfinite(delta[j]):
            # As in _forward_layer: a float32 sum of finite terms overflowed;
            # redo this column in double (rare, so the row-wise loop stays float32).
            wide = 0
            for k in range(n_next):
                wide += <double>W[k * n + j] * <double>delta_next[k]
            delta[j] = <floating>(wide * <double>_sigmoid_derivative(a[j]))
        else:
            delta[j] = delta[j] * _sigmoid_derivative(a[j])


cdef void _update(floating* W, floating* b, const floating* delta, const floating* a_prev,
                  double lr, bint update_biases, Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    # W[k, j] -= lr * delta_k * a_prev_j;  b_k -= lr * delta_k
    cdef Py_ssize_t k, j
    cdef floating* row
    cdef floating step
    for k in range(n_out):
        step = <floating>(lr * delta[k])
        row = W + k * n_in
        for j in range(n_in):
            row[j] = row[j] - step * a_prev[j]
        if update_biases:
            b[k] = b[k] - step


cdef void _outer(const floating* delta, const floating* a_prev, floating* dW, floating* db,
                 Py_ssize_t n_out, Py_ssize_t n_in) noexcept nogil:
    # dJ/dW[k, j] = delta_k * a_prev_j;  dJ/db_k = delta_k
    cdef Py_ssize_t k, j
    for k in range(n_out):
        for j in range(n_in):
            dW[k * n_in + j] = delta[k] * a_prev[j]
        db[k] = delta[k]


cdef void _forward(const floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                   const floating* x, floating* act) noexcept nogil:
    # a[0] = x; a[l] = s(W[l] a[l-1] + b[l]) for l = 1..L, into the flat activations.
    cdef Py_ssize_t l, n_in, n_out, p = 0, a = 0
    memcpy(act, x, sizes[0] * sizeof(floating))
    for l in range(1, L + 1):
        n_in = sizes[l - 1]
        n_out = sizes[l]
        _forward_layer(params + p, params + p + n_out * n_in, act + a, act + a + n_in, n_out, n_in)
        p += n_out * (n_in + 1)
        a += n_in


cdef double _forward_backward(floating* params, const Py_ssize_t* sizes, Py_ssize_t L,
                              const floating* x, const floating* y, double lr,
                              bint update_biases, floating* act, floating* deltas,
                              floating* grads) noexcept nogil:
    # Forward, J, then from the output down: delta[l-1] is computed from W[l]
    # *before* W[l] is updated, and W[l-1] is untouched until later, so every
    # delta sees the weights as they were before the step.  With grads != NULL
    # the gradients are written there and the weights stay unchanged.
    cdef Py_ssize_t l, n_in, n_out, p = 0, a = 0, d = 0
    cdef double J
    _forward(params, sizes, L, x, act)
    for l in range(1, L + 1):
        p += sizes[l] * (sizes[l - 1] + 1)  # ends at len(params)
        a += sizes[l - 1]                   # ends at the start of a[L]
        d += sizes[l]                       # ends at len(deltas)
    d -= sizes[L]                           # start of delta[L]
    J = _cost(act + a, y, sizes[L])
    _output_delta(act + a, y, deltas + d, sizes[L])
    for l in range(L, 0, -1):
        n_out = sizes[l]
        n_in = sizes[l - 1]
        p -= n_out * (n_in + 1)             # start of W[l]
        a -= n_in                           # start of a[l-1]
        if l > 1:
            _hidden_delta(params + p, deltas + d, act + a, deltas + d - n_in, n_out, n_in)
        if grads != NULL:
            _outer(deltas + d, act + a, grads + p, grads + p + n_out * n_in, n_out, n_in)
        else:
            _update(params + p, params + p + n_out * n_in, deltas + d, act + a,
                    lr, update_biases, n_out, n_in)
        d -= n_in
    return J


# --------------------------------------------------------------------------
# Entry points: the interface of fastbp.reference
# --------------------------------------------------------------------------


def sigmoid(const floating[::1] z, floating[::1] out):
    """out[i] = s(z[i]) = 1 / (1 + e^-z[i]); stable for every finite z and for ±inf.
    ``out`` may be ``z`` itself."""
    check_same_length(z=z, out=out)
    cdef Py_ssize_t i
    with nogil:
        for i in range(z.shape[0]):
            out[i] = <floating>_sigmoid(z[i])


def sigmoid_derivative(const floating[::1] a, floating[::1] out):
    """out[i] = a[i] * (1 - a[i]), the sigmoid's derivative given its activation."""
    check_same_length(a=a, out=out)
    cdef Py_ssize_t i
    with nogil:
        for i in range(a.shape[0]):
            out[i] = _sigmoid_derivative(a[i])


def forward_layer(const floating[:, ::1] W, const floating[::1] b, const floating[::1] x,
                  floating[::1] out):
    """out = s(W @ x + b) in one pass."""
    check_matrix(W, rows={"b": b, "out": out}, cols={"x": x})
    if W.shape[0] == 0:
        return
    with nogil:
        _forward_layer(&W[0, 0], &b[0], &x[0], &out[0], W.shape[0], W.shape[1])


def cost(const floating[::1] o, const floating[::1] y):
    """J = 1/2 * sum_k (y_k - o_k)^2 for one sample."""
    check_same_length(o=o, y=y)
    if o.shape[0] == 0:
        return 0.0
    with nogil:
        J = _cost(&o[0], &y[0], o.shape[0])
    return J


def output_delta(const floating[::1] o, const floating[::1] y, floating[::1] delta):
    """delta = -(y - o) * o * (1 - o)."""
    check_same_length(o=o, y=y, delta=delta)
    if o.shape[0] == 0:
        return
    with nogil:
        _output_delta(&o[0], &y[0], &delta[0], o.shape[0])


def hidden_delta(const floating[:, ::1] W, const floating[::1] delta_next,
                 const floating[::1] a, floating[::1] delta):
    """delta = (W.T @ delta_next) * a * (1 - a); W holds the weights out of this layer."""
    check_matrix(W, rows={"delta_next": delta_next}, cols={"a": a, "delta": delta})
    if W.shape[0] == 0 or W.shape[1] == 0:
        return
    with nogil:
        _hidden_delta(&W[0, 0], &delta_next[0], &a[0], &delta[0], W.shape[0], W.shape[1])


def update(floating[:, ::1] W, floating[::1] b, const floating[::1] delta,
           const floating[::1] a_prev, double lr, bint update_biases):
    """In place: W -= lr * outer(delta, a_prev); b -= lr * delta if update_biases."""
    check_matrix(W, rows={"b": b, "delta": delta}, cols={"a_prev": a_prev})
    if W.shape[0] == 0 or W.shape[1] == 0:
        return
    with nogil:
        _update(&W[0, 0], &b[0], &delta[0], &a_prev[0], lr, update_biases, W.shape[0], W.shape[1])


def forward(const floating[::1] params, const Py_ssize_t[::1] sizes, const floating[::1] x,
            floating[::1] activations):
    """Forward propagation of one sample into the flat activations a[0..L]."""
    check_network(params, sizes, activations)
    check_sample(sizes, x=x)
    with nogil:
        _forward(&params[0], &sizes[0], sizes.shape[0] - 1, &x[0], &activations[0])


def gradients(const floating[::1] params, const Py_ssize_t[::1] sizes, const floating[::1] x,
              const floating[::1] y, floating[::1] activations, floating[::1] deltas,
              floating[::1] grads):
    """dJ/dW and dJ/db of one sample into ``grads`` (laid out like params); returns J."""
    check_network(params, sizes, activations, deltas, grads)
    check_sample(sizes, x=x, y=y)
    cdef double J
    with nogil:
        # With grads given, _forward_backward never writes params: casting
        # away const here is safe.
        J = _forward_backward(<floating*>&params[0], &sizes[0], sizes.shape[0] - 1, &x[0], &y[0],
                              0.0, False, &activations[0], &deltas[0], &grads[0])
    return J


def train_step(floating[::1] params, const Py_ssize_t[::1] sizes, const floating[::1] x,
               const floating[::1] y, double lr, bint update_biases,
               floating[::1] activations, floating[::1] deltas):
    """One online update of params in place; returns J before it."""
    check_network(params, sizes, activations, deltas)
    check_sample(sizes, x=x, y=y)
    cdef double J
    with nogil:
        J = _forward_backward(&params[0], &sizes[0], sizes.shape[0] - 1, &x[0], &y[0],
                              lr, update_biases, &activations[0], &deltas[0], NULL)
    return J


def train_epoch(floating[::1] params, const Py_ssize_t[::1] sizes, const floating[:, ::1] X,
                const floating[:, ::1] Y, const Py_ssize_t[::1] order, double lr,
                bint update_biases, floating[::1] activations, floating[::1] deltas):
    """A train_step on row X[i], Y[i] for each i in order, without the GIL;
    returns the mean per-sample J (each measured before its step)."""
    check_network(params, sizes, activations, deltas)
    check_rows(sizes, X, Y=Y, order=order)
    cdef Py_ssize_t t, i, L = sizes.shape[0] - 1
    cdef double total = 0
    with nogil:
        for t in range(order.shape[0]):
            i = order[t]
            total += _forward_backward(&params[0], &sizes[0], L, &X[i, 0], &Y[i, 0], lr,
                                       update_biases, &activations[0], &deltas[0], NULL)
    return total / order.shape[0]


def forward_batch(const floating[::1] params, const Py_ssize_t[::1] sizes,
                  const floating[:, ::1] X, floating[:, ::1] out, floating[::1] activations):
    """out[i] = the network's output for row X[i]."""
    check_network(params, sizes, activations)
    check_rows(sizes, X, out=out)
    cdef Py_ssize_t i, L = sizes.shape[0] - 1
    cdef Py_ssize_t n_out = sizes[L], a_out = activations.shape[0] - sizes[L]
    with nogil:
        for i in range(X.shape[0]):
            _forward(&params[0], &sizes[0], L, &X[i, 0], &activations[0])
            memcpy(&out[i, 0], &activations[a_out], n_out * sizeof(floating))


def mean_cost(const floating[::1] params, const Py_ssize_t[::1] sizes, const floating[:, ::1] X,
              const floating[:, ::1] Y, floating[::1] activations):
    """The mean over rows of the per-sample J."""
    check_network(params, sizes, activations)
    check_rows(sizes, X, Y=Y)
    cdef Py_ssize_t i, L = sizes.shape[0] - 1
    cdef Py_ssize_t a_out = activations.shape[0] - sizes[L]
    cdef double total = 0
    with nogil:
        for i in range(X.shape[0]):
            _forward(&params[0], &sizes[0], L, &X[i, 0], &activations[0])
            total += _cost(&activations[a_out], &Y[i, 0], sizes[L])
    return total / X.shape[0]
