"""The reference backend: the equations of backpropagation, in plain Python.

This module is the oracle the compiled kernels (``fastbp._kernels``) are tested
against, and it defines the kernel interface: the compiled module exposes the
same functions with the same signatures.  It is written to be read beside the
math, one function per idea:

=========================  ======================================================
``sigmoid``                ``s(z) = 1 / (1 + e^-z)``
``sigmoid_derivative``     ``s'(z) = a * (1 - a)`` given the activation ``a = s(z)``
``activate``               ``a = f(z)`` for any activation ``f`` (``_tanh``,
                           ``_relu``, ``_leaky_relu``, ``_identity``, ``_softmax``)
``activation_derivative``  ``f'(z)`` given ``a = f(z)`` (``_derivative``)
``forward_layer``          ``a_k = f(sum_j W[k, j] * x_j + b_k)``
``cost``                   ``J = 1/2 * sum_k (y_k - o_k)^2`` (squared error), or
                           the cross-entropy from the output's net input z
                           (``_sigmoid_cross_entropy``, ``_softmax_cross_entropy``)
``output_delta``           ``delta_k = -(y_k - o_k) * f'(z_k)``; ``o_k - y_k``
                           for the cross-entropy
``hidden_delta``           ``delta_j = (sum_k W[k, j] * delta_k) * f'(z_j)``
``update``                 ``W[k, j] -= lr * delta_k * a_j``;  ``b_k -= lr * delta_k``
``_sgd``, ``_adam``,       the optimizers' rules (``fastbp.optimizers``) from a
``_rprop``                 batch's mean gradient (``_batch_gradient``)
=========================  ======================================================

With the sigmoid for ``f`` (the default everywhere) these are the note's
equations: ``f'(z) = a (1 - a)``.  The activations and losses, their
equations and codes are listed in ``fastbp._model``.

On the whole network: ``forward``, ``forward_batch``, ``mean_cost``,
``gradients``, ``train_step``, ``shuffle`` and ``train`` (a whole run of
online or mini-batch gradient descent).

Conventions shared with the compiled kernels
--------------------------------------------
* Arrays are NumPy arrays of one floating dtype (float32 or float64); outputs
  are written in place into arrays the caller passes, and nothing is allocated
  for the caller.  Arithmetic is done here in Python floats (IEEE double) and
  rounded to the array's dtype when stored.
* Layer ``l`` (1..L) has weights ``W[l]`` of shape ``(sizes[l], sizes[l-1])``:
  row ``k`` holds the weights into neuron ``k``.  Its biases ``b[l]`` have shape
  ``(sizes[l],)``.
* The whole network's parameters live in one flat vector ``params``: for each
  layer in order, ``W[l]`` row by row, then ``b[l]`` (see :func:`layer_views`).
  ``sizes`` is the integer array ``[n_0, n_1, ..., n_L]``.
* ``activations`` is one flat vector holding ``a[0]`` (a copy of the input)
  through ``a[L]`` (the output) and then ``z[L]`` (the output layer's net
  input), ``sum(sizes) + sizes[-1]`` values; ``deltas`` holds
  ``delta[1]`` through ``delta[L]``, ``sum(sizes[1:])`` values.
* Kernels that take a block of samples (``forward_batch``, ``mean_cost``,
  ``train``) accept scratch buffers holding several samples' worth; what they
  leave in scratch buffers is unspecified.
* ``model`` (the last argument of the whole-network functions) is ``None``
  for the note's model or an integer array: each layer's activation code and
  then the loss code (``fastbp._model.codes``).  Low-level functions take
  an ``activation`` code (and ``loss``) directly.
* Inputs are trusted: ``fastbp.Network`` validates shapes, dtypes and values
  once, before any function here runs.

Nothing here uses NumPy for arithmetic; NumPy only lends views on the buffers.
"""

from __future__ import annotations

import itertools
import math
from array import array
from typing import Any

from ._layout import (
    activation_width,
    block_rows,
    check_matrix,
    check_model,
    check_network,
    check_optimizer,
    check_rows,
    check_same_length,
    check_sample,
    check_train,
    layer_views,
    split,
)
from ._model import (
    CROSS_ENTROPY,
    IDENTITY,
    LEAKY_RELU,
    LEAKY_SLOPE,
    RELU,
    SIGMOID,
    SOFTMAX,
    SQUARED_ERROR,
    TANH,
)
from ._rules import ADAM as ADAM_RULE
from ._rules import RPROP as RPROP_RULE
from ._rules import SGD as SGD_RULE

__all__ = [
    "activate",
    "activation_derivative",
    "cost",
    "forward",
    "forward_batch",
    "forward_layer",
    "gradients",
    "hidden_delta",
    "mean_cost",
    "output_delta",
    "shuffle",
    "sigmoid",
    "sigmoid_derivative",
    "train",
    "train_step",
    "update",
]

BACKEND_NAME = "python"


# --------------------------------------------------------------------------
# One neuron, one layer
# --------------------------------------------------------------------------


def _sigmoid(z):
    """s(z) = 1 / (1 + e^-z), never overflowing.

    For z < 0, e^-z can overflow, so use the equal form e^z / (1 + e^z).
    Both branches give exactly 0 and 1 at -inf and +inf.
    """
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _sigmoid_derivative(a):
    """s'(z) = s(z) * (1 - s(z)) = a * (1 - a), given the activation a = s(z)."""
    return a * (1.0 - a)


def _tanh(z):
    """tanh z."""
    return math.tanh(z)


def _relu(z):
    """max(z, 0) (a NaN stays NaN)."""
    return 0.0 if z <= 0.0 else z


def _leaky_relu(z):
    """z for z >= 0, 0.01 z below (a NaN stays NaN)."""
    return z if z >= 0.0 else LEAKY_SLOPE * z


def _identity(z):
    """z."""
    return z


_ONE_VALUE = {SIGMOID: _sigmoid, TANH: _tanh, RELU: _relu, LEAKY_RELU: _leaky_relu, IDENTITY: _identity}


def _softmax(z):
    """o_k = e^(z_k - m) / sum_i e^(z_i - m), m = max_i z_i: the same as
    e^z_k / sum_i e^z_i, and no e^z overflows.  Summed in index order."""
    m = max(z)
    e = [math.exp(v - m) for v in z]
    total = 0.0
    for v in e:
        total += v
    return [v / total for v in e]


def _activate_all(z, activation):
    """f(z) of a whole layer (a list of net inputs, in double)."""
    if activation == SOFTMAX:
        return _softmax(z)
    f = _ONE_VALUE[activation]
    return [f(v) for v in z]


def _derivative(a, activation):
    """f'(z) written in terms of the activation a = f(z)."""
    if activation == SIGMOID:
        return _sigmoid_derivative(a)
    if activation == TANH:
        return 1.0 - a * a
    if activation == RELU:
        return 1.0 if a > 0.0 else 0.0
    if activation == LEAKY_RELU:
        return 1.0 if a > 0.0 else LEAKY_SLOPE
    if activation == IDENTITY:
        return 1.0
    raise ValueError(
        "softmax has no elementwise derivative: it is used with the cross-entropy, whose delta is o - y"
    )


def sigmoid(z, out):
    """out[i] = s(z[i]) for every i (1-D arrays)."""
    check_same_length(z=z, out=out)
    z, out = memoryview(z), memoryview(out)
    for i in range(len(z)):
        out[i] = _sigmoid(z[i])


def sigmoid_derivative(a, out):
    """out[i] = s'(z[i]) = a[i] * (1 - a[i]), given the activations a = s(z)."""
    check_same_length(a=a, out=out)
    a, out = memoryview(a), memoryview(out)
    for i in range(len(a)):
        out[i] = _sigmoid_derivative(a[i])


def activate(z, out, activation):
    """out = f(z) for the activation with code ``activation`` (1-D arrays; for
    softmax, ``z`` is one layer's net inputs)."""
    check_same_length(z=z, out=out)
    z, out = memoryview(z), memoryview(out)
    for i, a in enumerate(_activate_all(list(z), activation)):
        out[i] = a


def activation_derivative(a, out, activation):
    """out[i] = f'(z[i]) given the activations a = f(z) (not for softmax)."""
    check_same_length(a=a, out=out)
    a, out = memoryview(a), memoryview(out)
    for i in range(len(a)):
        out[i] = _derivative(a[i], activation)


def _forward_layer(W, b, x, out, activation, z_out=None):
    """out[k] = f(net_k), net_k = sum_j W[k, j] * x[j] + b[k] * 1; the net
    inputs go to ``z_out`` too when given."""
    n_out, n_in = W.shape
    W, b, x, out = memoryview(W), memoryview(b), memoryview(x), memoryview(out)
    z = []
    for k in range(n_out):
        net = 0.0
        for j in range(n_in):
            net += W[k, j] * x[j]
        z.append(net + b[k])
    if z_out is not None:
        z_out = memoryview(z_out)
        for k in range(n_out):
            z_out[k] = z[k]
    for k, a in enumerate(_activate_all(z, activation)):
        out[k] = a


def forward_layer(W, b, x, out, activation=SIGMOID):
    """out[k] = f(net_k), net_k = sum_j W[k, j] * x[j] + b[k] * 1 (f: the sigmoid unless told)."""
    check_matrix(W, rows={"b": b, "out": out}, cols={"x": x})
    _forward_layer(W, b, x, out, activation)


def _squared_error(o, y):
    """J = 1/2 * sum_k (y_k - o_k)^2."""
    J = 0.0
    for k in range(len(o)):
        diff = y[k] - o[k]
        J += diff * diff
    return 0.5 * J


def _sigmoid_cross_entropy(z, y):
    """J = -sum_k [y_k ln o_k + (1 - y_k) ln(1 - o_k)], o = s(z), from z: with
    ln s(z) = -softplus(-z), ln(1 - s(z)) = -softplus(z) and softplus(z) - z =
    softplus(-z), each term is softplus(z) - y z = max(z, 0) - y z + ln(1 + e^-|z|):
    finite and accurate however far the output saturates."""
    J = 0.0
    for k in range(len(z)):
        J += max(z[k], 0.0) - y[k] * z[k] + math.log1p(math.exp(-abs(z[k])))
    return J


def _softmax_cross_entropy(z, y):
    """J = -sum_k y_k ln o_k, o = softmax(z), from z: ln o_k = z_k - lse with
    lse = ln sum_i e^z_i = m + ln sum_i e^(z_i - m), m = max z, so each term
    is y_k (ln sum_i e^(z_i - m) - (z_k - m)) >= 0: nothing overflows or takes
    the log of 0, and m cancels before it can round the small terms away."""
    m = max(z)
    total = 0.0
    for v in z:
        total += math.exp(v - m)
    log_total = math.log(total)
    J = 0.0
    for k in range(len(z)):
        J += y[k] * (log_total - (z[k] - m))
    return J


def cost(o, y, z=None, activation=SIGMOID, loss=SQUARED_ERROR):
    """J of one sample: the squared error of the outputs ``o``, or (``loss``
    the cross-entropy) the cross-entropy of the output's net inputs ``z``
    under the output ``activation`` (sigmoid or softmax)."""
    check_same_length(o=o, y=y)
    o, y = memoryview(o), memoryview(y)
    if loss == SQUARED_ERROR:
        return _squared_error(o, y)
    if z is None:
        raise ValueError("the cross-entropy is computed from z, the output layer's net input: give z")
    check_same_length(o=o, z=z)
    z = memoryview(z)
    if activation == SOFTMAX:
        return _softmax_cross_entropy(z, y)
    return _sigmoid_cross_entropy(z, y)


def output_delta(o, y, delta, activation=SIGMOID, loss=SQUARED_ERROR):
    """delta_k = dJ/dnet_k: -(y_k - o_k) * f'(z_k) for the squared error
    (the note's -(y_k - o_k) * o_k * (1 - o_k) for the sigmoid), and o_k - y_k
    for the cross-entropy with sigmoid or softmax outputs."""
    check_same_length(o=o, y=y, delta=delta)
    o, y, delta = memoryview(o), memoryview(y), memoryview(delta)
    for k in range(len(o)):
        if loss == CROSS_ENTROPY:
            delta[k] = o[k] - y[k]
        else:
            delta[k] = -(y[k] - o[k]) * _derivative(o[k], activation)


def hidden_delta(W, delta_next, a, delta, activation=SIGMOID):
    """delta_j = (sum_k W[k, j] * delta_next_k) * f'(z_j) (for the sigmoid: a_j * (1 - a_j)).

    ``W`` holds the weights *out of* this layer (into the next one), shape
    ``(len(delta_next), len(a))``: hidden neuron j feeds every neuron k above
    it, so its error sums over them.
    """
    check_matrix(W, rows={"delta_next": delta_next}, cols={"a": a, "delta": delta})
    n_next, n = W.shape
    W, delta_next = memoryview(W), memoryview(delta_next)
    a, delta = memoryview(a), memoryview(delta)
    for j in range(n):
        back = 0.0
        for k in range(n_next):
            back += W[k, j] * delta_next[k]
        delta[j] = back * _derivative(a[j], activation)


def update(W, b, delta, a_prev, lr, update_biases):
    """Gradient descent in place: W[k, j] -= lr * dJ/dW[k, j], b[k] -= lr * dJ/db[k].

    dJ/dW[k, j] = delta_k * a_prev_j and dJ/db[k] = delta_k.  With
    ``update_biases`` false the biases stay fixed (as in the worked example).
    """
    check_matrix(W, rows={"b": b, "delta": delta}, cols={"a_prev": a_prev})
    n_out, n_in = W.shape
    W, b = memoryview(W), memoryview(b)
    delta, a_prev = memoryview(delta), memoryview(a_prev)
    for k in range(n_out):
        step = lr * delta[k]
        for j in range(n_in):
            W[k, j] = W[k, j] - step * a_prev[j]
        if update_biases:
            b[k] = b[k] - step


# --------------------------------------------------------------------------
# The whole network
# --------------------------------------------------------------------------


def _split_activations(activations, sizes):
    """``(a, z)``: the views a[0..L] and z[L] of one sample's activations."""
    views = split(activations, [*sizes, sizes[-1]])
    return views[:-1], views[-1]


def _forward(params, sizes, x, activations, functions):
    layers = layer_views(params, sizes)
    a, z = _split_activations(activations, sizes)
    memoryview(a[0])[:] = memoryview(x)
    L = len(layers)
    for l, (W, b) in enumerate(layers, start=1):
        _forward_layer(W, b, a[l - 1], a[l], functions[l - 1], z if l == L else None)


def forward(params, sizes, x, activations, model=None):
    """Forward propagation of one sample: fill a[0] = x, a[l] = f_l(W[l] a[l-1] + b[l]),
    and z[L] = W[L] a[L-1] + b[L]."""
    check_network(params, sizes, activations)
    check_sample(sizes, x=x)
    functions, _ = check_model(sizes, model)
    _forward(params, sizes, x, activations, functions)


def _cost(activations, sizes, y, functions, loss):
    """J of the sample whose forward pass is in ``activations``."""
    a, z = _split_activations(activations, sizes)
    return cost(a[-1], y, z, functions[-1], loss)


def _backward(layers, a, deltas, y, functions, loss):
    """Fill every delta[l] from the output down, with the weights as they are."""
    L = len(layers)
    output_delta(a[L], y, deltas[L], functions[L - 1], loss)
    for l in range(L - 1, 0, -1):
        W_above, _ = layers[l]  # W[l+1]: the weights out of layer l
        hidden_delta(W_above, deltas[l + 1], a[l], deltas[l], functions[l - 1])


def gradients(params, sizes, x, y, activations, deltas, grads, model=None):
    """dJ/dW[l] = outer(delta[l], a[l-1]) and dJ/db[l] = delta[l], written into
    ``grads`` (laid out like ``params``); returns J.  Changes no weight."""
    check_network(params, sizes, activations, deltas, grads)
    check_sample(sizes, x=x, y=y)
    functions, loss = check_model(sizes, model)
    layers = layer_views(params, sizes)
    a, _ = _split_activations(activations, sizes)
    d = [None, *split(deltas, sizes[1:])]  # d[l] = delta of layer l
    _forward(params, sizes, x, activations, functions)
    J = _cost(activations, sizes, y, functions, loss)
    _backward(layers, a, d, y, functions, loss)
    for l, (dW, db) in enumerate(layer_views(grads, sizes), start=1):
        n_out, n_in = dW.shape
        dW, db = memoryview(dW), memoryview(db)
        delta, a_prev = memoryview(d[l]), memoryview(a[l - 1])
        for k in range(n_out):
            for j in range(n_in):
                dW[k, j] = delta[k] * a_prev[j]
            db[k] = delta[k]
    return J


def _train_step(params, sizes, x, y, lr, update_biases, activations, deltas, functions, loss):
    layers = layer_views(params, sizes)
    a, _ = _split_activations(activations, sizes)
    d = [None, *split(deltas, sizes[1:])]
    _forward(params, sizes, x, activations, functions)
    J = _cost(activations, sizes, y, functions, loss)
    _backward(layers, a, d, y, functions, loss)
    for l, (W, b) in enumerate(layers, start=1):
        update(W, b, d[l], a[l - 1], lr, update_biases)
    return J


def train_step(params, sizes, x, y, lr, update_biases, activations, deltas, model=None):
    """One online update on one sample; returns J measured before the update.

    Every delta is computed from the weights as they were before the step
    (all deltas first, then all updates), as the delta rule requires.
    """
    check_network(params, sizes, activations, deltas)
    check_sample(sizes, x=x, y=y)
    functions, loss = check_model(sizes, model)
    return _train_step(params, sizes, x, y, lr, update_biases, activations, deltas, functions, loss)


def forward_batch(params, sizes, X, out, activations, model=None):
    """out[i] = the network's output for row X[i], for every row."""
    check_network(params, sizes, activations[: activation_width(sizes)])
    check_rows(sizes, X, out=out)
    block_rows(sizes, activations)
    functions, _ = check_model(sizes, model)
    activations = activations[: activation_width(sizes)]  # one sample at a time here
    o = _split_activations(activations, sizes)[0][-1]
    for i in range(X.shape[0]):
        _forward(params, sizes, X[i], activations, functions)
        memoryview(out[i])[:] = memoryview(o)


def mean_cost(params, sizes, X, Y, activations, model=None):
    """The mean over the rows of the per-sample J, with the weights as they are."""
    check_network(params, sizes, activations[: activation_width(sizes)])
    check_rows(sizes, X, Y=Y)
    block_rows(sizes, activations)
    functions, loss = check_model(sizes, model)
    activations = activations[: activation_width(sizes)]
    total = 0.0
    for i in range(X.shape[0]):
        _forward(params, sizes, X[i], activations, functions)
        total += _cost(activations, sizes, Y[i], functions, loss)
    return total / X.shape[0]


# --------------------------------------------------------------------------
# Whole runs
# --------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def _next_random(state):
    """SplitMix64 (Steele, Lea & Flood 2014): the next 64-bit value; advances state[0]."""
    z = state[0] = (int(state[0]) + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _below(bound, state):
    """A uniform integer in [0, bound): reject the lowest 2**64 mod bound draws
    so that every residue is equally likely."""
    threshold = (1 << 64) % bound
    r = _next_random(state)
    while r < threshold:
        r = _next_random(state)
    return r % bound


def shuffle(order, rng_state):
    """Shuffle ``order`` in place (Fisher-Yates) with SplitMix64 drawn from
    ``rng_state[0]``, which advances: the order ``train`` visits the rows in."""
    if len(rng_state) != 1:
        raise ValueError(f"rng_state must hold 1 value, got {len(rng_state)}")
    order = memoryview(order)
    for i in range(len(order) - 1, 0, -1):
        j = _below(i + 1, rng_state)
        order[i], order[j] = order[j], order[i]


_shuffle_order = shuffle  # train's argument ``shuffle`` (a flag) hides the function


def _batch_gradient(params, sizes, X, Y, rows, activations, deltas, functions, loss):
    """The gradient of the mean J over the samples ``rows``, with the weights
    as they are, laid out like ``params`` (a list of doubles):

        dJ/dW[l][k, j] = (1/m) * sum_r delta_r[l]_k * a_r[l-1]_j
        dJ/db[l][k]    = (1/m) * sum_r delta_r[l]_k

    summed in the order of ``rows``.  Returns ``(sum of the samples' J, gradient)``."""
    m = len(rows)
    layers = layer_views(params, sizes)
    total = 0.0
    sums = [0.0] * len(params)
    a, _ = _split_activations(activations, sizes)
    d = [None, *split(deltas, sizes[1:])]
    for i in rows:
        _forward(params, sizes, X[i], activations, functions)
        total += _cost(activations, sizes, Y[i], functions, loss)
        _backward(layers, a, d, Y[i], functions, loss)
        p = 0
        for l, (W, _) in enumerate(layers, start=1):
            n_out, n_in = W.shape
            delta, a_prev = memoryview(d[l]), memoryview(a[l - 1])
            for k in range(n_out):
                for j in range(n_in):
                    sums[p + k * n_in + j] += delta[k] * a_prev[j]
                sums[p + n_out * n_in + k] += delta[k]
            p += n_out * (n_in + 1)
    return total, [s / m for s in sums]


def _train_batch(params, sizes, X, Y, rows, lr, update_biases, activations, deltas, functions, loss):
    """One mini-batch step of plain gradient descent: ``w -= lr * g`` with g
    the gradient averaged over the samples ``rows`` (``_batch_gradient``),
    every sample's deltas taken from the weights before the step.  Returns
    the sum of the samples' J (before the step)."""
    total, gradient = _batch_gradient(params, sizes, X, Y, rows, activations, deltas, functions, loss)
    params_ = memoryview(params)
    for i in _updated(sizes, update_biases):
        params_[i] = params_[i] - lr * gradient[i]
    return total


def _updated(sizes, update_biases):
    """The indices of the parameters an update changes: all, or the weights only."""
    p = 0
    for n_in, n_out in itertools.pairwise(sizes):
        n_in, n_out = int(n_in), int(n_out)
        yield from range(p, p + n_out * (n_in + int(update_biases)))
        p += n_out * (n_in + 1)


# --------------------------------------------------------------------------
# Optimizers (fastbp.optimizers: the rules, the codes, the state's layout)
# --------------------------------------------------------------------------


def _sgd(params, grad, state, hyper, indices):
    """g += wd w;  buf = mu buf + g;  g = g + mu buf (Nesterov) or buf;  w -= lr g:
    in the dtype, one rounding per operation (``_stored``), as torch computes."""
    r = lambda v: _stored(v, params.format)  # noqa: E731 - the dtype's rounding
    lr, momentum, weight_decay, nesterov = r(hyper[0]), r(hyper[1]), r(hyper[2]), hyper[3] != 0
    for i in indices:
        g = grad[i]
        if weight_decay != 0:
            g = r(g + r(weight_decay * params[i]))
        if momentum != 0:
            state[i] = r(momentum * state[i]) + g
            g = r(g + r(momentum * state[i])) if nesterov else state[i]
        params[i] = params[i] - r(lr * g)


def _lerp(start, end, weight):
    """start + weight (end - start), evaluated as torch.lerp does."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _adam(params, grad, state, hyper, indices, t):
    """m += (1 - b1)(g - m);  v = b2 v + (1 - b2) g^2;
    w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    lr, beta1, beta2, eps, weight_decay = (hyper[i] for i in range(5))
    n = len(params)
    step_size = lr / (1 - beta1**t)
    correction2 = math.sqrt(1 - beta2**t)
    for i in indices:
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * params[i]
        state[i] = _lerp(state[i], g, 1 - beta1)
        state[n + i] = beta2 * state[n + i] + (1 - beta2) * g * g
        denominator = math.sqrt(state[n + i]) / correction2 + eps
        params[i] = params[i] - step_size * (state[i] / denominator)


def _rprop(params, grad, state, hyper, indices):
    """iRPROP-: each step grows by eta_plus while g keeps its sign, shrinks by
    eta_minus (and skips this update, remembering g = 0) when it flips, within
    [step_min, step_max];  w -= sign(g) * step."""
    eta_minus, eta_plus, step_min, step_max = hyper[1], hyper[2], hyper[3], hyper[4]
    n = len(params)
    for i in indices:
        g = grad[i]
        # state[i]: the previous g.  Their product rounded to the dtype before
        # its sign is taken, as torch's grad.mul(prev).sign() (in float32 a
        # product of two tiny values underflows to 0: the step is kept).
        same = _stored(g * state[i], params.format)
        factor = eta_plus if same > 0 else eta_minus if same < 0 else 1.0
        state[n + i] = min(max(state[n + i] * factor, step_min), step_max)
        if same < 0:
            g = 0.0
        if g != 0:
            params[i] = params[i] - math.copysign(state[n + i], g)
        state[i] = g


def _stored(value, format):
    """``value`` rounded as an array of this memoryview ``format`` stores it."""
    return array(format, [value])[0] if format == "f" else value


def _optimizer_update(params, sizes, gradient, optimizer, update_biases):
    """One update of the parameters by the optimizer's rule from ``gradient``
    (laid out like params), which is first stored in the optimizer's ``grad``
    (rounded to the dtype, as the kernels keep it); counts the update."""
    rule, hyper, state, counters, grad = optimizer
    grad_ = memoryview(grad)
    for i, g in enumerate(gradient):
        grad_[i] = g
    counters[0] += 1
    params_, state_, hyper = memoryview(params), memoryview(state), [float(h) for h in hyper]
    indices = _updated(sizes, update_biases)
    if rule == SGD_RULE:
        _sgd(params_, grad_, state_, hyper, indices)
    elif rule == ADAM_RULE:
        _adam(params_, grad_, state_, hyper, indices, float(counters[0]))
    else:
        _rprop(params_, grad_, state_, hyper, indices)


def _all_finite(values):
    return all(math.isfinite(v) for v in memoryview(values))


def train(
    params,
    sizes,
    X,
    Y,
    order,
    rng_state,
    shuffle,
    lr,
    batch_size,
    update_biases,
    costs,
    activations,
    deltas,
    backup,
    model=None,
    optimizer=None,
):
    """A whole training run: ``len(costs)`` epochs; returns how many completed.

    ``order`` holds the row indices in the order they are visited, or is
    empty for rows in order.  Each epoch: shuffle ``order`` in place (if
    ``shuffle``), save ``params`` (and the optimizer's state) in ``backup``
    (room to undo the epoch; what it holds after the call is unspecified:
    the compiled run saves only every few epochs), then one update per batch
    of ``batch_size`` consecutive entries of ``order`` (the last batch may be
    smaller).  Without ``optimizer``, the update is plain gradient descent
    with ``lr``: a ``train_step`` for a batch of one, the averaged gradient of
    ``_train_batch`` otherwise.  With ``optimizer`` (the tuple of
    ``fastbp.optimizers``; ``lr`` is then unused) the optimizer's rule turns
    each batch's mean gradient into the update; RPROP makes one update per
    epoch from the gradient over every row (``batch_size`` is then only how
    many rows the compiled kernels take at a time).  ``backup`` holds
    ``len(params) + len(state)`` values.
    ``costs[e]`` = the mean over the epoch of each sample's J, measured with
    the weights its update started from.  An epoch that ends with a non-finite
    cost or weight is undone (``params`` and the optimizer's state restored
    from ``backup``) and ends the run: the return value is then its index.
    An exception during an epoch (Ctrl-C) undoes that epoch and propagates.
    """
    check_train(
        params, sizes, X, Y, order, rng_state, shuffle, batch_size, costs, activations, deltas, backup
    )
    functions, loss = check_model(sizes, model)
    check_optimizer(params, sizes, optimizer, backup)
    n = len(X)
    batch_size = min(batch_size, n)
    if len(order) == 0:  # rows in order
        order = range(n)
    one_sample = activations[: activation_width(sizes)], deltas[: sum(sizes[1:])]
    saved = [memoryview(params)]  # what an undo puts back: the parameters, the optimizer's state
    if optimizer is not None:
        saved.append(memoryview(optimizer[2]))
        counters = optimizer[3]
    copies = split(backup, [len(v) for v in saved])
    costs_ = memoryview(costs)
    for epoch in range(len(costs)):
        if shuffle:
            _shuffle_order(order, rng_state)
        for live, copy in zip(saved, copies):
            memoryview(copy)[:] = live
        count = counters[0] if optimizer is not None else 0
        try:
            total = _epoch(
                params,
                sizes,
                X,
                Y,
                order,
                lr,
                batch_size,
                update_biases,
                activations,
                deltas,
                one_sample,
                functions,
                loss,
                optimizer,
            )
        except BaseException:
            _restore(saved, copies, optimizer, count)
            raise
        costs_[epoch] = total / n
        if not math.isfinite(costs_[epoch]) or not _all_finite(params):
            _restore(saved, copies, optimizer, count)
            return epoch
    return len(costs)


def _restore(saved, copies, optimizer, count):
    for live, copy in zip(saved, copies):
        live[:] = memoryview(copy)
    if optimizer is not None:
        optimizer[3][0] = count


def _epoch(
    params,
    sizes,
    X,
    Y,
    order,
    lr,
    batch_size,
    update_biases,
    activations,
    deltas,
    one_sample: tuple[Any, Any],
    functions,
    loss,
    optimizer,
):
    """One epoch of updates over the rows in ``order``; returns the sum of the samples' J."""
    n = len(order)
    if optimizer is not None and optimizer[0] == RPROP_RULE:
        batch_size = n  # full-batch: one update per epoch
    total = 0.0
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        if optimizer is not None:
            J, gradient = _batch_gradient(params, sizes, X, Y, rows, *one_sample, functions, loss)
            _optimizer_update(params, sizes, gradient, optimizer, update_biases)
            total += J
        elif len(rows) == 1:
            total += _train_step(
                params, sizes, X[rows[0]], Y[rows[0]], lr, update_biases, *one_sample, functions, loss
            )
        else:
            total += _train_batch(params, sizes, X, Y, rows, lr, update_biases, *one_sample, functions, loss)
    return total
