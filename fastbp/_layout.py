"""Layout of the flat buffers the kernels share, and the kernels' memory contract.

A network with layer sizes ``[n_0, n_1, ..., n_L]`` keeps

* ``params``: for each layer ``l = 1..L`` in order, ``W[l]`` (``n_l x n_{l-1}``,
  row-major: row ``k`` holds the weights into neuron ``k``) then ``b[l]`` (``n_l``);
* ``activations``: ``a[0]`` (the input) through ``a[L]`` (the output), then
  ``z[L]``, the output layer's net input (the cross-entropy needs it: see
  ``fastbp._model``): ``activation_width(sizes) = sum(sizes) + sizes[-1]``;
* ``deltas``: ``delta[1]`` through ``delta[L]``, ``sum(sizes[1:])``;
* ``grads``: laid out like ``params``.

Kernels that work on a block of ``m`` samples at once (batch forward, mini-batch
training) use ``m`` times as much scratch, layer by layer: ``activations``
holds ``A[0]`` (``m x n_0``, row ``r`` = sample ``r``), then ``A[1]``
(``m x n_1``), ... ``A[L]``, then ``Z[L]`` (``m x n_L``); ``deltas`` holds ``D[1]`` (``m x n_1``) ... ``D[L]``.
Each block is then a row-major matrix a BLAS call can take as is.

One flat parameter vector lets a compiled training loop walk the whole network
without the GIL, and lets a snapshot or a restore be a single copy.

The ``check_*`` functions are the kernels' *memory* contract: cheap checks
(constant time, or linear in the number of layers or of row indices) that every
buffer a kernel touches is as long as the layout says, so that a direct call to
a kernel with mismatched arrays raises ``ValueError`` instead of reading or
writing out of bounds.  Both backends call them, so both fail the same way.
They do not check values (finiteness) or dtypes: ``fastbp.Network`` validates
user input once, with messages in the user's terms, before any kernel runs.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import _model, _rules

# Where fastbp's own buffers (the parameters, the compiled door's training
# scratch) start: on a 64-byte boundary, so that no row whose length in bytes
# is a multiple of 32 has a vector load or store straddling two cache lines,
# which costs two.  NumPy's allocator starts a large buffer 16 bytes past a
# page boundary.  Measured on Zen 4: a C loop of fastbp_update_dot_d over
# 784-128-10's W[1] takes about 30% longer from 8 or 16 bytes past a 64-byte
# boundary than from 0 or 32, and online training of 784-128-10 in one
# process, the two placements taking turns, ran 1.2x faster aligned (float64
# and float32; 64-32-10 float64 1.1x).  Speed only: the kernels' loads are
# unaligned ones, so any buffer a caller passes works and gives the same bits.
ALIGNMENT = 64


def aligned_empty(count: int, dtype) -> np.ndarray:
    """An uninitialised 1-D array of ``count`` values of ``dtype`` whose data
    starts on an ``ALIGNMENT``-byte boundary (a view into a buffer
    ``ALIGNMENT`` bytes longer)."""
    dtype = np.dtype(dtype)
    raw = np.empty(count * dtype.itemsize + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + count * dtype.itemsize].view(dtype)


def n_params(sizes) -> int:
    """Number of weights and biases: sum over layers of n_out * (n_in + 1)."""
    return sum(int(n_out) * (int(n_in) + 1) for n_in, n_out in itertools.pairwise(sizes))


def activation_width(sizes) -> int:
    """Values of the activations buffer per sample: a[0..L] and z[L]."""
    return sum(int(n) for n in sizes) + (int(sizes[-1]) if len(sizes) else 0)


def layer_views(params, sizes):
    """Return ``[(W[1], b[1]), ..., (W[L], b[L])]`` as views into ``params``."""
    views = []
    offset = 0
    for n_in, n_out in itertools.pairwise(sizes):
        n_in, n_out = int(n_in), int(n_out)
        W = params[offset : offset + n_out * n_in].reshape(n_out, n_in)
        offset += n_out * n_in
        b = params[offset : offset + n_out]
        offset += n_out
        views.append((W, b))
    return views


def split(buffer, lengths):
    """Cut a flat buffer into consecutive views of the given lengths."""
    views = []
    offset = 0
    for n in lengths:
        n = int(n)
        views.append(buffer[offset : offset + n])
        offset += n
    return views


# --------------------------------------------------------------------------
# The kernels' memory contract
# --------------------------------------------------------------------------


def _fail(message):
    raise ValueError(message)


def _shape(array):
    # Arrays and (Cython) memoryviews carry their shape; np.shape would first
    # wrap a memoryview in an array, which costs more than the check itself.
    shape = getattr(array, "shape", None)
    return tuple(shape) if shape is not None else np.shape(array)


def _length(name, array):
    shape = _shape(array)
    if len(shape) != 1:
        _fail(f"{name} must be 1-D, got shape {shape}")
    return shape[0]


def check_same_length(**arrays):
    """Every 1-D array given has the same length (elementwise kernels)."""
    lengths = {name: _length(name, a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        _fail("arrays must have equal lengths, got " + ", ".join(f"len({k})={v}" for k, v in lengths.items()))


def check_matrix(W, rows, cols):
    """``W`` is 2-D; the arrays in ``rows`` have ``W.shape[0]`` entries and
    those in ``cols`` have ``W.shape[1]``."""
    shape = _shape(W)
    if len(shape) != 2:
        _fail(f"W must be 2-D, got shape {shape}")
    for expected, arrays, axis in ((shape[0], rows, "rows"), (shape[1], cols, "columns")):
        for name, a in arrays.items():
            n = _length(name, a)
            if n != expected:
                _fail(f"len({name})={n} does not match the {expected} {axis} of W with shape {shape}")


def check_network(params, sizes, activations, deltas=None, grads=None):
    """``sizes`` describes at least one layer of positive widths and every
    buffer has the length the layout asks for."""
    sizes_shape = _shape(sizes)
    if len(sizes_shape) != 1 or sizes_shape[0] < 2:
        _fail(f"sizes must be 1-D with at least 2 entries, got shape {sizes_shape}")
    sizes = [int(n) for n in sizes]
    if min(sizes) < 1:
        _fail(f"every layer size must be >= 1, got {sizes}")
    count = n_params(sizes)
    expected = {
        "params": count,
        "activations": activation_width(sizes),
        "deltas": sum(sizes[1:]),
        "grads": count,
    }
    for name, a in (("params", params), ("activations", activations), ("deltas", deltas), ("grads", grads)):
        if a is not None and _length(name, a) != expected[name]:
            _fail(f"len({name})={_length(name, a)} but layer sizes {sizes} need {expected[name]}")


def block_rows(sizes, activations):
    """How many samples' activations the buffer holds (a positive multiple of
    ``activation_width(sizes)``), for the kernels that work on blocks of samples."""
    width = activation_width(sizes)
    n = _length("activations", activations)
    if n < width or n % width:
        _fail(f"len(activations)={n} must be a positive multiple of sum(sizes) + sizes[-1]={width}")
    return n // width


def train_buffer_lengths(sizes, batch_size):
    """``(len(activations), len(deltas))`` that ``train`` needs: room for a
    batch of samples (two samples at least: the online loop computes the next
    sample's forward pass while it updates the weights for the current one)."""
    rows = max(int(batch_size), 2)
    return rows * activation_width(sizes), int(batch_size) * sum(int(n) for n in sizes[1:])


def check_train(
    params, sizes, X, Y, order, rng_state, shuffle, batch_size, costs, activations, deltas, backup
):
    """The buffers of a whole training run (``train``)."""
    check_network(params, sizes, activations[: activation_width(sizes)])
    sizes = [int(n) for n in sizes]  # valid now
    n_order = _length("order", order)
    check_rows(sizes, X, Y=Y, order=order if n_order else None)
    if n_order not in (0, _shape(X)[0]):
        _fail(f"order must hold one index per row of X ({_shape(X)[0]}) or none, got {n_order}")
    if shuffle and not n_order:
        _fail("shuffle needs an order to shuffle (one index per row of X)")
    if _length("rng_state", rng_state) != 1:
        _fail(f"rng_state must hold 1 value, got {_length('rng_state', rng_state)}")
    if int(batch_size) < 1 or int(batch_size) > 2**31 - 1:
        _fail(f"batch_size must be in [1, 2**31 - 1], got {batch_size}")
    check_blas_sizes(sizes, batch_size)
    _length("costs", costs)
    need_a, need_d = train_buffer_lengths(sizes, batch_size)
    for name, a, need in (
        ("activations", activations, need_a),
        ("deltas", deltas, need_d),
        ("backup", backup, n_params(sizes)),
    ):
        if _length(name, a) < need:
            _fail(
                f"len({name})={_length(name, a)} but layer sizes {sizes} "
                f"with batch_size={batch_size} need {need}"
            )


def check_blas_sizes(sizes, batch_size):
    """A batch of more than one sample goes through BLAS, whose indices are
    32-bit: every layer size must be below 2**31.  ``Network.train`` checks
    it before it starts, the kernels (``check_train``) for direct calls."""
    if int(batch_size) > 1 and max(int(n) for n in sizes) > 2**31 - 1:
        _fail(
            f"batch_size={batch_size} needs every layer size below 2**31 (BLAS indices are 32-bit), "
            f"got layer sizes {[int(n) for n in sizes]}"
        )


def check_model(sizes, model):
    """``model`` is None (the note's model) or ``len(sizes)`` codes the kernels
    can run: an activation per layer (softmax on the output layer only) and a
    loss, in the combinations ``fastbp._model.resolve`` allows.  Returns the
    activation codes and the loss code."""
    L = len(sizes) - 1
    if model is None:
        return [_model.SIGMOID] * L, _model.SQUARED_ERROR
    if _length("model", model) != L + 1:
        _fail(
            f"len(model)={_length('model', model)} but layer sizes {[int(n) for n in sizes]} need "
            f"{L + 1} codes (one activation per layer, then the loss)"
        )
    codes = [int(c) for c in model]
    activations, loss = codes[:L], codes[L]
    if not all(0 <= c < len(_model.ACTIVATIONS) for c in activations) or not 0 <= loss < len(_model.LOSSES):
        _fail(f"model holds codes outside the tables of fastbp._model: {codes}")
    try:
        _model.resolve(
            [_model.ACTIVATIONS[c] for c in activations[:-1]],
            _model.ACTIVATIONS[activations[-1]],
            _model.LOSSES[loss],
            L,
        )
    except ValueError as e:
        _fail(f"model {codes}: {e}")
    return activations, loss


def check_optimizer(params, sizes, optimizer, backup):
    """``optimizer`` is None (plain gradient descent) or the tuple ``(rule,
    hyper, state, counters, grad)`` of ``fastbp.optimizers``: a known rule,
    its hyper-parameters, state of ``state_slots`` times ``len(params)``
    values, one counter, a gradient as long as ``params``; ``backup`` then
    holds the parameters and the state."""
    if optimizer is None:
        return
    if not isinstance(optimizer, tuple) or len(optimizer) != 5:
        _fail("optimizer must be None or the tuple (rule, hyper, state, counters, grad) of fastbp.optimizers")
    rule, hyper, state, counters, grad = optimizer
    if rule not in _rules.HYPER:
        _fail(f"optimizer rule {rule!r} is not one of fastbp._rules' codes {sorted(_rules.HYPER)}")
    if _length("hyper", hyper) != len(_rules.HYPER[rule]):
        _fail(f"len(hyper)={_length('hyper', hyper)} but rule {rule} takes {len(_rules.HYPER[rule])} values")
    n = _length("params", params)
    need = _rules.state_slots(rule, hyper) * n
    for name, a, length in (("state", state, need), ("counters", counters, 1), ("grad", grad, n)):
        if _length(name, a) != length:
            _fail(
                f"len({name})={_length(name, a)} but {len(params)} parameters with rule {rule} need {length}"
            )
    if _length("backup", backup) < n + need:
        _fail(
            f"len(backup)={_length('backup', backup)} but the parameters and the optimizer's state need {n + need}"
        )


def check_sample(sizes, x=None, y=None):
    """One input of ``sizes[0]`` values and one target of ``sizes[-1]``."""
    for name, a, n in (("x", x, int(sizes[0])), ("y", y, int(sizes[-1]))):
        if a is not None and _length(name, a) != n:
            _fail(f"len({name})={_length(name, a)} but the network needs {n}")


def check_rows(sizes, X, Y=None, out=None, order=None):
    """``X`` is ``(n, sizes[0])`` with n >= 1; ``Y`` and ``out`` are
    ``(n, sizes[-1])``; every index in ``order`` is a row of ``X``."""
    shape = _shape(X)
    if len(shape) != 2 or shape[0] < 1 or shape[1] != int(sizes[0]):
        _fail(f"X must have shape (n >= 1, {int(sizes[0])}), got {shape}")
    for name, a in (("Y", Y), ("out", out)):
        if a is not None and _shape(a) != (shape[0], int(sizes[-1])):
            _fail(f"{name} must have shape {(shape[0], int(sizes[-1]))}, got {_shape(a)}")
    if order is not None:
        n = _length("order", order)
        if n < 1:
            _fail("order must hold at least one row index")
        order = np.asarray(order)
        if order.min() < 0 or order.max() >= shape[0]:
            _fail(f"order holds row indices outside [0, {shape[0]}): min {order.min()}, max {order.max()}")
