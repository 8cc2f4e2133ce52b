"""The reference backend: the equations of backpropagation, in plain Python.

This module is the oracle the compiled kernels (``fastbp._kernels``) are tested
against, and it defines the kernel interface: the compiled module exposes the
same functions with the same signatures.  It is written to be read beside the
math, one function per idea:

=====================  ==========================================================
``sigmoid``            ``s(z) = 1 / (1 + e^-z)``
``sigmoid_derivative`` ``s'(z) = a * (1 - a)`` given the activation ``a = s(z)``
``forward_layer``      ``a_k = s(sum_j W[k, j] * x_j + b_k)``
``cost``               ``J = 1/2 * sum_k (y_k - o_k)^2``
``output_delta``       ``delta_k = -(y_k - o_k) * o_k * (1 - o_k)``
``hidden_delta``       ``delta_j = (sum_k W[k, j] * delta_k) * a_j * (1 - a_j)``
``update``             ``W[k, j] -= lr * delta_k * a_j``;  ``b_k -= lr * delta_k``
=====================  ==========================================================

and, on the whole network: ``forward``, ``forward_batch``, ``mean_cost``,
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
  through ``a[L]`` (the output), ``sum(sizes)`` values; ``deltas`` holds
  ``delta[1]`` through ``delta[L]``, ``sum(sizes[1:])`` values.
* Kernels that take a block of samples (``forward_batch``, ``mean_cost``,
  ``train``) accept scratch buffers holding several samples' worth; what they
  leave in scratch buffers is unspecified.
* Inputs are trusted: ``fastbp.Network`` validates shapes, dtypes and values
  once, before any function here runs.

Nothing here uses NumPy for arithmetic; NumPy only lends views on the buffers.
"""

from __future__ import annotations

import math

from ._layout import (
    block_rows,
    check_matrix,
    check_network,
    check_rows,
    check_same_length,
    check_sample,
    check_train,
    layer_views,
    split,
)

__all__ = [
    "sigmoid",
    "sigmoid_derivative",
    "forward_layer",
    "cost",
    "output_delta",
    "hidden_delta",
    "update",
    "forward",
    "forward_batch",
    "mean_cost",
    "gradients",
    "train_step",
    "shuffle",
    "train",
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


def forward_layer(W, b, x, out):
    """out[k] = s(net_k), net_k = sum_j W[k, j] * x[j] + b[k] * 1."""
    check_matrix(W, rows={"b": b, "out": out}, cols={"x": x})
    n_out, n_in = W.shape
    W, b, x, out = memoryview(W), memoryview(b), memoryview(x), memoryview(out)
    for k in range(n_out):
        net = 0.0
        for j in range(n_in):
            net += W[k, j] * x[j]
        out[k] = _sigmoid(net + b[k])


def cost(o, y):
    """J = 1/2 * sum_k (y_k - o_k)^2 for one sample."""
    check_same_length(o=o, y=y)
    o, y = memoryview(o), memoryview(y)
    J = 0.0
    for k in range(len(o)):
        diff = y[k] - o[k]
        J += diff * diff
    return 0.5 * J


def output_delta(o, y, delta):
    """delta_k = dJ/do_k * do_k/dnet_k = -(y_k - o_k) * o_k * (1 - o_k)."""
    check_same_length(o=o, y=y, delta=delta)
    o, y, delta = memoryview(o), memoryview(y), memoryview(delta)
    for k in range(len(o)):
        delta[k] = -(y[k] - o[k]) * _sigmoid_derivative(o[k])


def hidden_delta(W, delta_next, a, delta):
    """delta_j = (sum_k W[k, j] * delta_next_k) * a_j * (1 - a_j).

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
        delta[j] = back * _sigmoid_derivative(a[j])


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


def forward(params, sizes, x, activations):
    """Forward propagation of one sample: fill a[0] = x, a[l] = s(W[l] a[l-1] + b[l])."""
    check_network(params, sizes, activations)
    check_sample(sizes, x=x)
    layers = layer_views(params, sizes)
    a = split(activations, sizes)
    memoryview(a[0])[:] = memoryview(x)
    for l, (W, b) in enumerate(layers, start=1):
        forward_layer(W, b, a[l - 1], a[l])


def _backward(layers, a, deltas, y):
    """Fill every delta[l] from the output down, with the weights as they are."""
    L = len(layers)
    output_delta(a[L], y, deltas[L])
    for l in range(L - 1, 0, -1):
        W_above, _ = layers[l]  # W[l+1]: the weights out of layer l
        hidden_delta(W_above, deltas[l + 1], a[l], deltas[l])


def gradients(params, sizes, x, y, activations, deltas, grads):
    """dJ/dW[l] = outer(delta[l], a[l-1]) and dJ/db[l] = delta[l], written into
    ``grads`` (laid out like ``params``); returns J.  Changes no weight."""
    check_network(params, sizes, activations, deltas, grads)
    check_sample(sizes, x=x, y=y)
    layers = layer_views(params, sizes)
    a = split(activations, sizes)
    d = [None] + split(deltas, sizes[1:])  # d[l] = delta of layer l
    forward(params, sizes, x, activations)
    J = cost(a[-1], y)
    _backward(layers, a, d, y)
    for l, (dW, db) in enumerate(layer_views(grads, sizes), start=1):
        n_out, n_in = dW.shape
        dW, db = memoryview(dW), memoryview(db)
        delta, a_prev = memoryview(d[l]), memoryview(a[l - 1])
        for k in range(n_out):
            for j in range(n_in):
                dW[k, j] = delta[k] * a_prev[j]
            db[k] = delta[k]
    return J


def train_step(params, sizes, x, y, lr, update_biases, activations, deltas):
    """One online update on one sample; returns J measured before the update.

    Every delta is computed from the weights as they were before the step
    (all deltas first, then all updates), as the delta rule requires.
    """
    check_network(params, sizes, activations, deltas)
    check_sample(sizes, x=x, y=y)
    layers = layer_views(params, sizes)
    a = split(activations, sizes)
    d = [None] + split(deltas, sizes[1:])
    forward(params, sizes, x, activations)
    J = cost(a[-1], y)
    _backward(layers, a, d, y)
    for l, (W, b) in enumerate(layers, start=1):
        update(W, b, d[l], a[l - 1], lr, update_biases)
    return J


def forward_batch(params, sizes, X, out, activations):
    """out[i] = the network's output for row X[i], for every row."""
    check_network(params, sizes, activations[: sum(sizes)])
    check_rows(sizes, X, out=out)
    block_rows(sizes, activations)
    activations = activations[: sum(sizes)]  # one sample at a time here
    o = split(activations, sizes)[-1]
    for i in range(X.shape[0]):
        forward(params, sizes, X[i], activations)
        memoryview(out[i])[:] = memoryview(o)


def mean_cost(params, sizes, X, Y, activations):
    """The mean over the rows of the per-sample J, with the weights as they are."""
    check_network(params, sizes, activations[: sum(sizes)])
    check_rows(sizes, X, Y=Y)
    block_rows(sizes, activations)
    activations = activations[: sum(sizes)]
    o = split(activations, sizes)[-1]
    total = 0.0
    for i in range(X.shape[0]):
        forward(params, sizes, X[i], activations)
        total += cost(o, Y[i])
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


def _train_batch(params, sizes, X, Y, rows, lr, update_biases, activations, deltas):
    """One mini-batch step: the gradient averaged over the samples ``rows``,

        W[l][k, j] -= lr * (1/m) * sum_r delta_r[l]_k * a_r[l-1]_j
        b[l][k]    -= lr * (1/m) * sum_r delta_r[l]_k

    with every sample's deltas taken from the weights before the step.
    Returns the sum of the samples' J (before the step)."""
    m = len(rows)
    width_a, width_d = sum(sizes), sum(sizes[1:])
    layers = layer_views(params, sizes)
    total = 0.0
    per_sample = []  # (a[0..L], delta[1..L]) of each sample
    for r, i in enumerate(rows):
        sample_activations = activations[r * width_a : (r + 1) * width_a]
        a = split(sample_activations, sizes)
        d = [None] + split(deltas[r * width_d : (r + 1) * width_d], sizes[1:])
        forward(params, sizes, X[i], sample_activations)
        total += cost(a[-1], Y[i])
        _backward(layers, a, d, Y[i])
        per_sample.append(([memoryview(v) for v in a], [None] + [memoryview(v) for v in d[1:]]))
    for l, (W, b) in enumerate(layers, start=1):
        n_out, n_in = W.shape
        W, b = memoryview(W), memoryview(b)
        for k in range(n_out):
            for j in range(n_in):
                gradient = sum(d[l][k] * a[l - 1][j] for a, d in per_sample) / m
                W[k, j] = W[k, j] - lr * gradient
            if update_biases:
                b[k] = b[k] - lr * (sum(d[l][k] for _, d in per_sample) / m)
    return total


def _all_finite(values):
    return all(math.isfinite(v) for v in memoryview(values))


def train(params, sizes, X, Y, order, rng_state, shuffle, lr, batch_size, update_biases,
          costs, activations, deltas, backup):
    """A whole training run: ``len(costs)`` epochs; returns how many completed.

    ``order`` holds the row indices in the order they are visited, or is
    empty for rows in order.  Each epoch: shuffle ``order`` in place (if
    ``shuffle``), save ``params``
    in ``backup`` (room to undo the epoch; what it holds after the call is
    unspecified: the compiled run saves only every few epochs), then one step per batch of ``batch_size`` consecutive
    entries of ``order`` (the last batch may be smaller): a ``train_step`` for
    a batch of one, the averaged gradient of ``_train_batch`` otherwise.
    ``costs[e]`` = the mean over the epoch of each sample's J, measured with
    the weights its step started from.  An epoch that ends with a non-finite
    cost or weight is undone (``params`` restored from ``backup``) and ends
    the run: the return value is then its index.  An exception during an epoch
    (Ctrl-C) undoes that epoch and propagates.
    """
    check_train(params, sizes, X, Y, order, rng_state, shuffle, batch_size, costs, activations, deltas, backup)
    n = len(X)
    batch_size = min(batch_size, n)
    if len(order) == 0:  # rows in order
        order = range(n)
    one_sample = activations[: sum(sizes)], deltas[: sum(sizes[1:])]
    params_, backup_, costs_ = memoryview(params), memoryview(backup)[: len(params)], memoryview(costs)
    for epoch in range(len(costs)):
        if shuffle:
            _shuffle_order(order, rng_state)
        backup_[:] = params_
        try:
            total = 0.0
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]
                if len(rows) == 1:
                    total += train_step(params, sizes, X[rows[0]], Y[rows[0]], lr, update_biases, *one_sample)
                else:
                    total += _train_batch(params, sizes, X, Y, rows, lr, update_biases, activations, deltas)
        except BaseException:
            params_[:] = backup_
            raise
        costs_[epoch] = total / n
        if not math.isfinite(costs_[epoch]) or not _all_finite(params):
            params_[:] = backup_
            return epoch
    return len(costs)
