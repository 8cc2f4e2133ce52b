"""The compiled kernels (backend "cython") agree with the reference (backend "python").

Every kernel of ``fastbp.reference.__all__`` is called on identical copies of the
same random inputs by both backends; the return values and everything written
in place are compared, and the arrays a kernel only reads must come back
unchanged.  Scratch and output buffers start filled with NaN, so a buffer a
kernel forgets to write fails the comparison (it must come back finite).

Networks are random: 1 to 4 hidden layers, widths 1 to 50, float32 and
float64.  Hypothesis draws the sizes, a seed and the dtype; the values are drawn
by NumPy from that seed (weights U(-1, 1): larger than Glorot's, so sigmoids
saturate now and then; inputs U(-1, 1); targets U(0, 1)).
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support import examples

import fastbp
import fastbp._model
from fastbp import reference
from fastbp._layout import activation_width, layer_views, n_params, split, train_buffer_lengths

CY = fastbp.get_backend("cython")
PY = fastbp.get_backend("python")
BACKENDS = {"cython": CY, "python": PY}


# --------------------------------------------------------------------------
# Comparing arrays
# --------------------------------------------------------------------------

# assert_close compares an array (or a scalar) with the reference's result
# *relative to the array's scale*:
#
#     max |actual - expected| <= rtol * max(|expected|.max(), TINY)
#
# An elementwise relative test would fail spuriously on entries near zero (a
# weight of 1e-9 that differs by one rounding of a neighbour-sized term), while
# an absolute test would mean nothing for arrays far from 1 (deep-layer
# gradients of 1e-6).  A rounding error is a fraction of the magnitudes that
# went into a result, so the array's largest entry is the natural unit.
#
# ``scale`` replaces |expected|.max() where the result comes out of a
# subtraction that may cancel, so that the array's own size says nothing
# about the rounding error carried in it:
# * a cost J = 1/2 sum (y - o)^2 near zero (o close to y) still carries the
#   rounding error of o: the scale is 1/2 sum (|y| + 1)^2 (o lies in [0, 1]);
# * deltas and gradients are proportional to y - o, and a hidden delta is a
#   sum of W[k, j] * delta_k of both signs: the scale is what the same recursion
#   gives with every difference turned into a sum of absolute values (see
#   delta_scales), the usual running bound |fl(sum t) - sum t| <= n u sum |t|;
# * a weight after an update W - lr * dW: the scale is |W| + |lr * dW|.
# These scales are always at least |expected|.max(); they are computed from
# the reference's values and given per layer, so a deep layer whose gradients
# have vanished to 1e-6 is still checked to rtol of its own size.
TINY = np.finfo(np.float64).tiny


def assert_close(actual, expected, rtol, *, scale=None, what="result"):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.isfinite(expected).all(), f"{what}: the reference gave non-finite values: {expected}"
    assert np.isfinite(actual).all(), f"{what}: non-finite (or never written) values: {actual}"
    a = actual.astype(np.float64)
    b = expected.astype(np.float64)
    if scale is None:
        scale = np.abs(b).max(initial=0.0)
    scale = max(float(scale), TINY)
    err = float(np.abs(a - b).max(initial=0.0))
    assert err <= rtol * scale, (
        f"{what}: max |cython - python| = {err:.3g} > rtol {rtol:.3g} * scale {scale:.3g} "
        f"(relative error {err / scale:.3g})"
    )


# --------------------------------------------------------------------------
# Tolerances
# --------------------------------------------------------------------------

# float64: both backends do the same operations in the same order in IEEE
# double, so they agree to the last bit today (checked on thousands of random
# networks); 1e-12 leaves room for a compiler or a summation order that
# reassociates a little, but not for a wrong term, index or factor, nor for a
# delta computed from a weight already updated (all change results by orders
# of magnitude more).  After 100 training steps a rounding difference can be
# amplified by the training dynamics: 1e-9.
RTOL64 = 1e-12
RTOL64_TRAINED = 1e-9

# float32: the reference computes each result in double and rounds it once
# when storing, while the kernel accumulates its sums (W @ x, W.T @ delta) in
# float32 and rounds every partial sum and product.  With u = 2**-24 ~ 6e-8
# (float32's unit roundoff), a dot product of n terms is off by at most about
# n * u of the sum of its terms' magnitudes, n <= 51 here (50 inputs and the
# bias).  The error of one layer is carried into the next, through up to
# L = 5 weight layers forward (4 hidden + output) and 4 back again, but each
# sigmoid damps it (slope <= 1/4), so the worst case grows about linearly with
# the depth:  u * 50 * 5 = 1.5e-5 (250 u).  Measured with these tests' own
# bodies on 4000 random cases each (widths biased to 1 and 50, 1..4 hidden
# layers), the largest error of one kernel call or network evaluation, on the
# scales above, was 23 u = 1.4e-6: a 10x margin.  Not loose: a wrong index, a
# missing term or a missing factor changes results by 1e-3 to 1, and a
# deliberate 3e-5 relative error in one kernel's output is caught.  (What
# float32 cannot tell apart, such as a delta computed from weights already
# updated by lr * delta * a, the float64 cases catch at 1e-12.)
U32 = 2.0**-24
RTOL32 = U32 * 50 * 5
# After up to 100 online steps each weight has been rounded up to 100 more
# times (u each) and each step's gradient carries RTOL32 of its own, and the
# training dynamics can amplify a difference.  Measured: at most ~250 u
# (1.5e-5) on the weights and ~140 u on the activations after 100 steps with
# lr up to 1, the worst on 50-wide, 4-hidden networks with saturated
# sigmoids; a 100-step budget of u * 50 * 5 * ~7 = 1e-4 (1700 u) keeps a 7x
# margin and still fails any real bug in the update (a skipped bias, a wrong
# sign, learning rate or row order: >= 1e-3).
RTOL32_TRAINED = 1e-4


def rtol_for(dtype, trained=False):
    if np.dtype(dtype) == np.float64:
        return RTOL64_TRAINED if trained else RTOL64
    return RTOL32_TRAINED if trained else RTOL32


# --------------------------------------------------------------------------
# Scales of the quantities that may cancel
# --------------------------------------------------------------------------


def cost_scale(Y):
    """1/2 sum_k (|y_k| + 1)^2 averaged over the rows of Y: a bound on the
    magnitude of the terms of J, whatever the outputs o in [0, 1]."""
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    return float(np.mean(0.5 * np.sum((np.abs(Y) + 1.0) ** 2, axis=1)))


def delta_scales(params, sizes, activations, y):
    """Per layer 1..L, the deltas with every difference turned into a sum of
    absolute values: (|y| + o) o (1 + o) at the output, then
    (|W[l+1]|.T @ m[l+1]) a (1 + a) down the layers.  Elementwise at least
    |delta|, and a bound (up to a small factor) on how much a rounding error
    anywhere in the forward or backward pass can move delta[l]."""
    layers = [(W.astype(np.float64), b) for W, b in layer_views(params, sizes)]
    a = [v.astype(np.float64) for v in split(activations, sizes)]
    y = np.asarray(y, dtype=np.float64)
    m = (np.abs(y) + a[-1]) * a[-1] * (1.0 + a[-1])
    scales = [m]
    for l in range(len(layers) - 1, 0, -1):
        W_above = layers[l][0]  # W[l+1], the weights out of layer l
        m = (np.abs(W_above).T @ m) * a[l] * (1.0 + a[l])
        scales.append(m)
    return scales[::-1]


def update_scale(before, after):
    """|W| + |change|: the magnitude of the terms of W - lr * dW."""
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    return np.abs(before).max(initial=0.0) + np.abs(after - before).max(initial=0.0)


def compare_deltas(actual, expected, params, sizes, activations, y, rtol):
    for l, (d_c, d_p, m) in enumerate(
        zip(
            split(actual, sizes[1:]), split(expected, sizes[1:]), delta_scales(params, sizes, activations, y)
        ),
        start=1,
    ):
        assert_close(d_c, d_p, rtol, scale=m.max(), what=f"delta[{l}]")


def compare_gradients(actual, expected, params, sizes, activations, y, rtol):
    a = split(activations, sizes)
    scales = delta_scales(params, sizes, activations, y)
    for l, ((dW_c, db_c), (dW_p, db_p), m) in enumerate(
        zip(layer_views(actual, sizes), layer_views(expected, sizes), scales), start=1
    ):
        a_prev = np.abs(a[l - 1].astype(np.float64)).max()
        assert_close(dW_c, dW_p, rtol, scale=m.max() * a_prev, what=f"dJ/dW[{l}]")
        assert_close(db_c, db_p, rtol, scale=m.max(), what=f"dJ/db[{l}]")


def compare_params(actual, expected, before, rtol, what="params"):
    assert_close(actual, expected, rtol, scale=update_scale(before, expected), what=what)


# --------------------------------------------------------------------------
# Running a kernel on both backends
# --------------------------------------------------------------------------


def run_both(name, args, inputs):
    """Call kernel ``name`` of each backend on its own copy of ``args``.

    ``inputs`` are the positions of the arrays the kernel must only read: they
    must come back bit-for-bit unchanged.  Returns ``{backend: (result, args)}``.
    """
    runs = {}
    for backend, module in BACKENDS.items():
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        result = getattr(module, name)(*copies)
        for i in inputs:
            assert np.array_equal(copies[i], args[i]), f"{backend}.{name} wrote its input argument {i}"
        runs[backend] = (result, copies)
    return runs


def nan_array(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


class Case:
    """A random network and data drawn by NumPy from one seed."""

    def __init__(self, sizes, seed, dtype, n_rows=1):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.dtype = dt = np.dtype(dtype)
        self.sizes = np.array(sizes, dtype=np.intp)
        self.params = rng.uniform(-1, 1, n_params(self.sizes)).astype(dt)
        self.X = rng.uniform(-1, 1, (n_rows, self.sizes[0])).astype(dt)
        self.Y = rng.uniform(0, 1, (n_rows, self.sizes[-1])).astype(dt)
        self.x, self.y = self.X[0].copy(), self.Y[0].copy()
        self.lr = float(rng.uniform(0.01, 1.0))

    def activations(self):
        return nan_array(activation_width(self.sizes), self.dtype)

    def deltas(self):
        return nan_array(int(self.sizes[1:].sum()), self.dtype)


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------

dtypes = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])
seeds = st.integers(min_value=0, max_value=2**32 - 1)
widths = st.integers(min_value=1, max_value=50)
# input, 1 to 4 hidden layers, output
network_sizes = st.lists(widths, min_size=3, max_size=6)


def test_every_kernel_is_covered():
    # Every kernel of the interface has a test_<name> below: adding a kernel to
    # reference.__all__ without an equivalence test fails here.
    missing = [name for name in reference.__all__ if not callable(globals().get(f"test_{name}"))]
    assert missing == [], f"no equivalence test for {missing}"
    # (That every compiled copy has every kernel: tests/test_interface.py.)


# --------------------------------------------------------------------------
# One neuron, one layer
# --------------------------------------------------------------------------


@settings(max_examples=examples(40))
@given(n=widths, seed=seeds, dtype=dtypes)
def test_sigmoid(n, seed, dtype):
    rng = np.random.default_rng(seed)
    # Mostly moderate values, some far in the tails (|z| up to ~1e3).
    z = (rng.standard_normal(n) * 10.0 ** rng.uniform(-2, 3, n)).astype(dtype)
    runs = run_both("sigmoid", [z, nan_array(n, dtype)], inputs=[0])
    assert runs["cython"][0] is None and runs["python"][0] is None
    assert_close(runs["cython"][1][1], runs["python"][1][1], rtol_for(dtype), what="sigmoid")


@settings(max_examples=examples(20))
@given(n=widths, seed=seeds, dtype=dtypes)
def test_sigmoid_in_place(n, seed, dtype):
    # Documented: out may be z itself.
    z = (np.random.default_rng(seed).standard_normal(n) * 5).astype(dtype)
    expected = nan_array(n, dtype)
    PY.sigmoid(z, expected)
    for module in BACKENDS.values():
        buf = z.copy()
        module.sigmoid(buf, buf)
        assert_close(buf, expected, rtol_for(dtype), what=f"{module.BACKEND_NAME}.sigmoid in place")


@settings(max_examples=examples(30))
@given(n=widths, seed=seeds, dtype=dtypes)
def test_sigmoid_derivative(n, seed, dtype):
    a = np.random.default_rng(seed).uniform(0, 1, n).astype(dtype)
    runs = run_both("sigmoid_derivative", [a, nan_array(n, dtype)], inputs=[0])
    assert_close(runs["cython"][1][1], runs["python"][1][1], rtol_for(dtype), what="sigmoid_derivative")


ACTIVATION_CODES = st.integers(0, len(fastbp._model.ACTIVATIONS) - 1)


@settings(max_examples=examples(60))
@given(n=widths, seed=seeds, dtype=dtypes, activation=ACTIVATION_CODES)
def test_activate(n, seed, dtype, activation):
    # Every activation over values spread across its interesting range
    # (tanh's two formulas meet at |z| = 0.4; softmax normalises a layer).
    z = np.random.default_rng(seed).uniform(-1, 1, n) * 10.0 ** np.random.default_rng(seed + 1).uniform(
        -3, 2, n
    )
    z = z.astype(dtype)
    runs = run_both("activate", [z, nan_array(n, dtype), activation], inputs=[0])
    assert_close(
        runs["cython"][1][1],
        runs["python"][1][1],
        rtol_for(dtype),
        scale=1.0 if activation in (0, 1, 5) else np.abs(z).max(),
        what=f"activate {fastbp._model.ACTIVATIONS[activation]}",
    )


@settings(max_examples=examples(40))
@given(n=widths, seed=seeds, dtype=dtypes, activation=st.integers(0, len(fastbp._model.ACTIVATIONS) - 2))
def test_activation_derivative(n, seed, dtype, activation):
    z = np.random.default_rng(seed).uniform(-3, 3, n).astype(dtype)
    a = nan_array(n, dtype)
    PY.activate(z, a, activation)
    runs = run_both("activation_derivative", [a, nan_array(n, dtype), activation], inputs=[0])
    assert_close(
        runs["cython"][1][1],
        runs["python"][1][1],
        rtol_for(dtype),
        scale=1.0,
        what=f"activation_derivative {fastbp._model.ACTIVATIONS[activation]}",
    )


@settings(max_examples=examples(40))
@given(n_out=widths, n_in=widths, seed=seeds, dtype=dtypes)
def test_forward_layer(n_out, n_in, seed, dtype):
    rng = np.random.default_rng(seed)
    W = rng.uniform(-1, 1, (n_out, n_in)).astype(dtype)
    b = rng.uniform(-1, 1, n_out).astype(dtype)
    x = rng.uniform(-1, 1, n_in).astype(dtype)
    runs = run_both("forward_layer", [W, b, x, nan_array(n_out, dtype)], inputs=[0, 1, 2])
    # out = s(net): the error of net (a float32 dot product: <= n u sum |W x| + |b|)
    # reaches out scaled by s'(net) = out (1 - out) <= 1/4; scale in those terms.
    out = runs["python"][1][3].astype(np.float64)
    terms = np.abs(W.astype(np.float64)) @ np.abs(x.astype(np.float64)) + np.abs(b)
    scale = max(np.abs(out).max(), (out * (1 - out) * terms).max())
    assert_close(
        runs["cython"][1][3], runs["python"][1][3], rtol_for(dtype), scale=scale, what="forward_layer"
    )


@settings(max_examples=examples(30))
@given(n_out=widths, n_in=st.integers(2, 50), seed=seeds)
def test_forward_layer_float32_sums_that_overflow(n_out, n_in, seed):
    # Finite float32 weights and inputs whose products (up to ~1e50) overflow
    # float32: the reference sums them in double, and so must the kernel.
    rng = np.random.default_rng(seed)
    W = (rng.uniform(-1, 1, (n_out, n_in)) * 10.0 ** rng.uniform(15, 25, (n_out, n_in))).astype(np.float32)
    b = rng.uniform(-1, 1, n_out).astype(np.float32)
    x = (rng.uniform(-1, 1, n_in) * 10.0 ** rng.uniform(15, 25, n_in)).astype(np.float32)
    runs = run_both("forward_layer", [W, b, x, nan_array(n_out, np.float32)], inputs=[0, 1, 2])
    # Scale 1: the range of the sigmoid (these outputs are mostly 0 or 1).
    assert_close(runs["cython"][1][3], runs["python"][1][3], RTOL32, scale=1.0, what="forward_layer")
    # The same through a whole network whose first layer holds such weights.
    sizes = np.array([n_in, n_out, 3], dtype=np.intp)
    params = np.concatenate([W.ravel(), b, rng.uniform(-1, 1, 3 * (n_out + 1)).astype(np.float32)])
    runs = run_both(
        "forward", [params, sizes, x, nan_array(activation_width(sizes), np.float32)], inputs=[0, 1, 2]
    )
    a_c, a_p = (split(runs[k][1][3], sizes) for k in ("cython", "python"))
    for l in (1, 2):
        assert_close(a_c[l], a_p[l], RTOL32, scale=1.0, what=f"a[{l}]")


@settings(max_examples=examples(30))
@given(n_next=st.integers(2, 50), n=widths, seed=seeds)
def test_hidden_delta_float32_sums_that_overflow(n_next, n, seed):
    # sum_k W[k, j] delta_k with products up to ~1e50: a float32 running sum
    # overflows, the reference's double sum does not, and a(1 - a) <= 1e-15
    # brings every true result (<= 50 * 1e50 * 1e-15) back into float32's range.
    rng = np.random.default_rng(seed)
    W = (rng.uniform(-1, 1, (n_next, n)) * 10.0 ** rng.uniform(15, 25, (n_next, n))).astype(np.float32)
    delta_next = (rng.uniform(-1, 1, n_next) * 10.0 ** rng.uniform(15, 25, n_next)).astype(np.float32)
    a = (10.0 ** -rng.uniform(15, 30, n)).astype(np.float32)
    runs = run_both("hidden_delta", [W, delta_next, a, nan_array(n, np.float32)], inputs=[0, 1, 2])
    d_c, d_p = runs["cython"][1][3], runs["python"][1][3]
    assert np.isfinite(d_p).all()
    np.testing.assert_allclose(d_c, d_p, rtol=RTOL32)


@settings(max_examples=examples(30))
@given(n=widths, seed=seeds, dtype=dtypes)
def test_cost(n, seed, dtype):
    rng = np.random.default_rng(seed)
    o = rng.uniform(0, 1, n).astype(dtype)
    y = rng.uniform(0, 1, n).astype(dtype)
    runs = run_both("cost", [o, y], inputs=[0, 1])
    J_c, J_p = runs["cython"][0], runs["python"][0]
    assert isinstance(J_c, float) and isinstance(J_p, float)
    # Inputs are the same here: both sum exact differences in double.
    assert_close(J_c, J_p, rtol_for(dtype), what="cost")


@settings(max_examples=examples(30))
@given(n=widths, seed=seeds, dtype=dtypes)
def test_output_delta(n, seed, dtype):
    rng = np.random.default_rng(seed)
    o = rng.uniform(0, 1, n).astype(dtype)
    y = rng.uniform(0, 1, n).astype(dtype)
    runs = run_both("output_delta", [o, y, nan_array(n, dtype)], inputs=[0, 1])
    assert_close(runs["cython"][1][2], runs["python"][1][2], rtol_for(dtype), what="output_delta")


@settings(max_examples=examples(40))
@given(n_next=widths, n=widths, seed=seeds, dtype=dtypes)
def test_hidden_delta(n_next, n, seed, dtype):
    rng = np.random.default_rng(seed)
    W = rng.uniform(-1, 1, (n_next, n)).astype(dtype)
    delta_next = rng.uniform(-0.25, 0.25, n_next).astype(dtype)
    a = rng.uniform(0, 1, n).astype(dtype)
    runs = run_both("hidden_delta", [W, delta_next, a, nan_array(n, dtype)], inputs=[0, 1, 2])
    # sum_k W[k, j] delta_k cancels: scale by sum_k |W[k, j] delta_k| a (1 - a).
    a64 = a.astype(np.float64)
    scale = ((np.abs(W.astype(np.float64)).T @ np.abs(delta_next.astype(np.float64))) * a64 * (1 - a64)).max()
    assert_close(
        runs["cython"][1][3], runs["python"][1][3], rtol_for(dtype), scale=scale, what="hidden_delta"
    )


@pytest.mark.parametrize("update_biases", [False, True])
@settings(max_examples=examples(30))
@given(n_out=widths, n_in=widths, seed=seeds, dtype=dtypes)
def test_update(update_biases, n_out, n_in, seed, dtype):
    rng = np.random.default_rng(seed)
    W = rng.uniform(-1, 1, (n_out, n_in)).astype(dtype)
    b = rng.uniform(-1, 1, n_out).astype(dtype)
    delta = rng.uniform(-0.25, 0.25, n_out).astype(dtype)
    a_prev = rng.uniform(0, 1, n_in).astype(dtype)
    lr = float(rng.uniform(0.01, 2.0))
    runs = run_both("update", [W, b, delta, a_prev, lr, update_biases], inputs=[2, 3])
    (_, (W_c, b_c, *_)), (_, (W_p, b_p, *_)) = runs["cython"], runs["python"]
    assert not np.array_equal(W_p, W), "the reference did not update W"
    compare_params(W_c, W_p, W, rtol_for(dtype), what="W")
    if update_biases:
        compare_params(b_c, b_p, b, rtol_for(dtype), what="b")
    else:
        assert np.array_equal(b_c, b) and np.array_equal(b_p, b), "biases changed with update_biases=False"


# --------------------------------------------------------------------------
# The whole network
# --------------------------------------------------------------------------


@settings(max_examples=examples(40))
@given(sizes=network_sizes, seed=seeds, dtype=dtypes)
def test_forward(sizes, seed, dtype):
    c = Case(sizes, seed, dtype)
    runs = run_both("forward", [c.params, c.sizes, c.x, c.activations()], inputs=[0, 1, 2])
    act_c, act_p = runs["cython"][1][3], runs["python"][1][3]
    assert np.array_equal(split(act_p, c.sizes)[0], c.x)
    assert_close(act_c, act_p, rtol_for(dtype), what="activations")


@settings(max_examples=examples(25))
@given(sizes=network_sizes, n_rows=st.integers(1, 20), seed=seeds, dtype=dtypes)
def test_forward_batch(sizes, n_rows, seed, dtype):
    c = Case(sizes, seed, dtype, n_rows=n_rows)
    out = nan_array((n_rows, c.sizes[-1]), dtype)
    runs = run_both("forward_batch", [c.params, c.sizes, c.X, out, c.activations()], inputs=[0, 1, 2])
    (_, (*_, out_c, act_c)), (_, (*_, out_p, act_p)) = runs["cython"], runs["python"]
    assert_close(out_c, out_p, rtol_for(dtype), what="forward_batch out")
    # The scratch holds the last row's forward pass.
    assert_close(act_c, act_p, rtol_for(dtype), what="activations")
    assert np.array_equal(split(act_p, c.sizes)[-1], out_p[-1])


@settings(max_examples=examples(25))
@given(sizes=network_sizes, n_rows=st.integers(1, 20), seed=seeds, dtype=dtypes)
def test_mean_cost(sizes, n_rows, seed, dtype):
    c = Case(sizes, seed, dtype, n_rows=n_rows)
    runs = run_both("mean_cost", [c.params, c.sizes, c.X, c.Y, c.activations()], inputs=[0, 1, 2, 3])
    J_c, J_p = runs["cython"][0], runs["python"][0]
    assert isinstance(J_c, float) and isinstance(J_p, float) and J_p > 0
    assert_close(J_c, J_p, rtol_for(dtype), scale=cost_scale(c.Y), what="mean_cost")
    assert_close(runs["cython"][1][4], runs["python"][1][4], rtol_for(dtype), what="activations")


@settings(max_examples=examples(40))
@given(sizes=network_sizes, seed=seeds, dtype=dtypes)
@example(sizes=[50] * 6, seed=0, dtype=np.dtype(np.float32))
@example(sizes=[50] * 6, seed=1, dtype=np.dtype(np.float64))
def test_gradients(sizes, seed, dtype):
    c = Case(sizes, seed, dtype)
    grads = nan_array(c.params.shape, dtype)
    args = [c.params, c.sizes, c.x, c.y, c.activations(), c.deltas(), grads]
    runs = run_both("gradients", args, inputs=[0, 1, 2, 3])  # params unchanged
    (J_c, (*_, act_c, d_c, g_c)), (J_p, (*_, act_p, d_p, g_p)) = runs["cython"], runs["python"]
    rtol = rtol_for(dtype)
    assert_close(J_c, J_p, rtol, scale=cost_scale(c.y), what="J")
    assert_close(act_c, act_p, rtol, what="activations")
    compare_deltas(d_c, d_p, c.params, c.sizes, act_p, c.y, rtol)
    compare_gradients(g_c, g_p, c.params, c.sizes, act_p, c.y, rtol)


@pytest.mark.parametrize("update_biases", [False, True])
@settings(max_examples=examples(40))
@given(sizes=network_sizes, seed=seeds, dtype=dtypes)
@example(sizes=[50] * 6, seed=0, dtype=np.dtype(np.float32))
@example(sizes=[50] * 6, seed=1, dtype=np.dtype(np.float64))
def test_train_step(update_biases, sizes, seed, dtype):
    c = Case(sizes, seed, dtype)
    args = [c.params, c.sizes, c.x, c.y, c.lr, update_biases, c.activations(), c.deltas()]
    runs = run_both("train_step", args, inputs=[1, 2, 3])
    (J_c, (p_c, *_, act_c, d_c)), (J_p, (p_p, *_, act_p, d_p)) = runs["cython"], runs["python"]
    rtol = rtol_for(dtype)
    assert_close(J_c, J_p, rtol, scale=cost_scale(c.y), what="J")
    compare_params(p_c, p_p, c.params, rtol)
    for l, ((_, b_c), (_, b_p), (_, b0)) in enumerate(
        zip(layer_views(p_c, c.sizes), layer_views(p_p, c.sizes), layer_views(c.params, c.sizes)), start=1
    ):
        if not update_biases:
            assert np.array_equal(b_c, b0) and np.array_equal(b_p, b0), (
                f"b[{l}] changed with update_biases=False"
            )
    # The scratch holds the step's forward pass and its deltas (from the weights before the step).
    assert_close(act_c, act_p, rtol, what="activations")
    compare_deltas(d_c, d_p, c.params, c.sizes, act_p, c.y, rtol)


@settings(max_examples=examples(30))
@given(n=st.integers(0, 60), state=st.integers(0, 2**64 - 1))
def test_shuffle(n, state):
    # Both backends draw the same permutation from the same state, and leave
    # the state advanced the same way.
    order = np.arange(n, dtype=np.intp)
    rng_state = np.array([state], dtype=np.uint64)
    runs = run_both("shuffle", [order, rng_state], inputs=[])
    (_, (order_c, state_c)), (_, (order_p, state_p)) = runs["cython"], runs["python"]
    assert np.array_equal(order_c, order_p) and np.array_equal(state_c, state_p)
    assert sorted(order_c.tolist()) == list(range(n)), "not a permutation"


def test_shuffle_is_uniform():
    # Each of the 3! orders of 3 rows comes up about equally often (chi-squared
    # with 5 degrees of freedom; 20.5 is its 99.9% quantile), and successive
    # shuffles from one state differ.
    for module in BACKENDS.values():
        state = np.array([12345], dtype=np.uint64)
        counts = {}
        for _ in range(6000):
            order = np.arange(3, dtype=np.intp)
            module.shuffle(order, state)
            counts[tuple(order)] = counts.get(tuple(order), 0) + 1
        assert len(counts) == 6
        chi2 = sum((c - 1000) ** 2 / 1000 for c in counts.values())
        assert chi2 < 20.5, (module.BACKEND_NAME, counts)


def _train_args(c, n_rows, epochs, batch_size, shuffle, update_biases, state, in_order=False):
    # in_order: an empty order (rows visited in order, no index array).
    n_act, n_del = train_buffer_lengths(c.sizes, batch_size)
    order = np.arange(0 if in_order else n_rows, dtype=np.intp)
    return [
        c.params,
        c.sizes,
        c.X,
        c.Y,
        order,
        np.array([state], dtype=np.uint64),
        shuffle,
        c.lr,
        batch_size,
        update_biases,
        nan_array(epochs, np.float64),
        nan_array(n_act, c.dtype),
        nan_array(n_del, c.dtype),
        nan_array(c.params.shape, c.dtype),
    ]


@pytest.mark.parametrize("update_biases", [False, True])
@pytest.mark.parametrize("shuffle", ["in order", False, True])
@settings(max_examples=examples(25))
@given(
    sizes=network_sizes,
    n_rows=st.integers(1, 40),
    batch=st.integers(1, 45),
    epochs=st.integers(1, 3),
    seed=seeds,
    dtype=dtypes,
)
@example(sizes=[50] * 6, n_rows=40, batch=1, epochs=2, seed=0, dtype=np.dtype(np.float32))
@example(sizes=[50] * 6, n_rows=40, batch=1, epochs=2, seed=1, dtype=np.dtype(np.float64))
# 2-2-2 online: the kernels' path with constant sizes (_online_epoch_one_hidden).
@example(sizes=[2, 2, 2], n_rows=40, batch=1, epochs=3, seed=4, dtype=np.dtype(np.float32))
@example(sizes=[2, 2, 2], n_rows=1, batch=1, epochs=3, seed=5, dtype=np.dtype(np.float64))
@example(sizes=[70, 40, 3], n_rows=40, batch=7, epochs=2, seed=2, dtype=np.dtype(np.float32))
@example(sizes=[70, 40, 3], n_rows=40, batch=7, epochs=2, seed=3, dtype=np.dtype(np.float64))
def test_train(shuffle, update_biases, sizes, n_rows, batch, epochs, seed, dtype):
    # Online (batch 1), mini-batch (with a smaller last batch) and full-batch
    # (batch >= n_rows) runs, in order or shuffled, over up to 3 epochs.
    c = Case(sizes, seed, dtype, n_rows=n_rows)
    in_order = shuffle == "in order"
    args = _train_args(
        c, n_rows, epochs, batch, bool(shuffle) and not in_order, update_biases, state=seed, in_order=in_order
    )
    runs = run_both("train", args, inputs=[1, 2, 3])
    (done_c, (p_c, *_, order_c, state_c, _, _, _, _, costs_c, _, _, _)) = runs["cython"]
    (done_p, (p_p, *_, order_p, state_p, _, _, _, _, costs_p, _, _, _)) = runs["python"]
    assert done_c == done_p == epochs
    assert np.array_equal(order_c, order_p) and np.array_equal(state_c, state_p)
    rtol = rtol_for(dtype, trained=True)  # up to 120 steps
    assert_close(costs_c, costs_p, rtol, scale=cost_scale(c.Y), what="epoch costs")
    compare_params(p_c, p_p, c.params, rtol)
    # backup is room for undoing an epoch, not an output: the compiled run
    # saves its state only every few epochs (see _run_epochs), so what it
    # holds afterwards differs between the backends by design.
    if not update_biases:
        for (_, b_c), (_, b_p), (_, b0) in zip(
            layer_views(p_c, c.sizes), layer_views(p_p, c.sizes), layer_views(c.params, c.sizes)
        ):
            assert np.array_equal(b_c, b0) and np.array_equal(b_p, b0)


@settings(max_examples=examples(10))
@given(sizes=network_sizes, seed=seeds, dtype=dtypes)
def test_train_online_is_a_loop_of_train_steps(sizes, seed, dtype):
    # In the compiled backend itself: online training (whose loop runs each
    # next sample's forward pass fused with the updates) == train_step on each
    # row in order, bit for bit.
    c = Case(sizes, seed, dtype, n_rows=10)
    p_steps, act, d = c.params.copy(), c.activations(), c.deltas()
    args = _train_args(c, 10, 2, 1, False, True, state=0)
    p_train, costs = args[0], args[10]
    assert CY.train(*args) == 2
    Js = [
        CY.train_step(p_steps, c.sizes, c.X[i], c.Y[i], c.lr, True, act, d)
        for _ in range(2)
        for i in range(10)
    ]
    assert np.array_equal(p_train, p_steps)
    assert costs[1] == pytest.approx(sum(Js[10:]) / 10, rel=1e-15)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("order_kind", ["in order", "order", "shuffled"])
@pytest.mark.parametrize("n_rows", [1, 3, 7, 64])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_long_run_is_its_epochs_one_call_each(dtype, n_rows, order_kind, batch):
    # In the compiled backend itself: one call of many epochs (which saves its
    # state only every few epochs when they are short, and runs each next
    # epoch's first forward pass inside the last update when the rows are in
    # order) == one call per epoch carrying the same order and RNG state,
    # bit for bit.
    c = Case([3, 5, 2], n_rows, dtype, n_rows=n_rows)
    epochs = 150
    args = _train_args(
        c, n_rows, epochs, batch, order_kind == "shuffled", True, state=7, in_order=order_kind == "in order"
    )
    one_call = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    assert CY.train(*one_call) == epochs
    each = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    costs = []
    for _ in range(epochs):
        each[10] = nan_array(1, np.float64)
        assert CY.train(*each) == 1
        costs.append(each[10][0])
    assert np.array_equal(one_call[0], each[0])  # params
    assert np.array_equal(one_call[4], each[4]) and np.array_equal(one_call[5], each[5])  # order, state
    assert np.array_equal(one_call[10], np.array(costs))


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("n_rows", [1, 3, 7, 64])
@pytest.mark.parametrize("epochs", [1, 2, 21, 22, 64, 65, 200])
@pytest.mark.parametrize("lr", [1e308, math.inf])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_long_run_undoes_the_epoch_that_diverged(lr, epochs, n_rows, batch, shuffle):
    # lr = inf breaks the weights in the first epoch while its cost (measured
    # before each update) stays finite, so the compiled run, which checks the
    # weights only every few epochs (every 64 // n_rows) and at the end, finds
    # it later and replays from its last save; lr = 1e308 saturates every
    # neuron without diverging.  Either way it must end where the reference
    # (which checks after every epoch) ends, with the same weights, order,
    # RNG state and costs.
    c = Case([3, 5, 2], n_rows, np.float64, n_rows=n_rows)
    args = _train_args(c, n_rows, epochs, batch, shuffle, True, state=3)
    args[7] = lr
    runs = run_both("train", args, inputs=[1, 2, 3])
    (done_c, (p_c, *_, order_c, state_c, _, _, _, _, costs_c, _, _, _)) = runs["cython"]
    (done_p, (p_p, *_, order_p, state_p, _, _, _, _, costs_p, _, _, _)) = runs["python"]
    assert done_c == done_p == (0 if lr == math.inf else epochs)
    assert np.array_equal(order_c, order_p) and np.array_equal(state_c, state_p)
    assert np.isfinite(p_c).all()
    compare_params(p_c, p_p, c.params, rtol_for(np.float64, trained=True))
    assert_close(
        costs_c[:done_c],
        costs_p[:done_p],
        rtol_for(np.float64, trained=True),
        scale=cost_scale(c.Y),
        what="epoch costs",
    )


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_train_full_batch_is_the_mean_gradient(backend, dtype):
    # One epoch with batch_size = n: W <- W - lr * mean_i dJ_i/dW, checked
    # against gradients() of each sample (an independent path).
    c = Case([4, 6, 3], 5, dtype, n_rows=9)
    grads = [np.empty_like(c.params) for _ in range(9)]
    for i in range(9):
        CY.gradients(c.params, c.sizes, c.X[i], c.Y[i], c.activations(), c.deltas(), grads[i])
    expected = c.params.astype(np.float64) - c.lr * np.mean(np.array(grads, dtype=np.float64), axis=0)
    args = _train_args(c, 9, 1, 9, False, True, state=0)
    args[0] = c.params.copy()
    assert BACKENDS[backend].train(*args) == 1
    compare_params(args[0], expected, c.params, rtol_for(dtype))


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("batch_size", [1, 4])
def test_train_undoes_a_diverging_epoch(backend, batch_size):
    # An infinite learning rate (Network refuses it; the kernel trusts it)
    # makes inf/NaN weights in the first epoch: that epoch is undone (params
    # back to before it) and the run stops there.
    c = Case([3, 5, 2], 0, np.float64, n_rows=8)
    args = _train_args(c, 8, 3, batch_size, False, True, state=0)
    args[0] = c.params.copy()
    args[7] = math.inf
    assert BACKENDS[backend].train(*args) == 0
    assert np.array_equal(args[0], c.params)


# --------------------------------------------------------------------------
# Network: the same network, seed and data on both backends
# --------------------------------------------------------------------------


def _network_pair(sizes, seed, dtype):
    nets = {name: fastbp.Network(sizes, seed=seed, dtype=dtype, backend=name) for name in BACKENDS}
    assert nets["cython"].backend == "cython" and nets["python"].backend == "python"
    for W_c, W_p in zip(nets["cython"].weights, nets["python"].weights):
        assert np.array_equal(W_c, W_p)  # initialisation does not depend on the backend
    return nets["cython"], nets["python"]


def _flat(net):
    return np.concatenate([np.r_[W.ravel(), b] for W, b in zip(net.weights, net.biases)])


def _compare_networks(net_c, net_p, before, rtol):
    compare_params(_flat(net_c), _flat(net_p), before, rtol, what="weights and biases")


@settings(max_examples=examples(20))
@given(sizes=network_sizes, seed=seeds, dtype=dtypes, lr=st.floats(0.05, 1.0))
@example(sizes=[50] * 6, seed=0, dtype=np.dtype(np.float32), lr=1.0)
@example(sizes=[50] * 6, seed=1, dtype=np.dtype(np.float64), lr=1.0)
def test_network_train_100_steps(sizes, seed, dtype, lr):
    net_c, net_p = _network_pair(sizes, seed, dtype)
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (100, sizes[0]))
    Y = rng.uniform(0, 1, (100, sizes[-1]))
    before = _flat(net_p)
    costs_c = net_c.train(X, Y, epochs=1, lr=lr)
    costs_p = net_p.train(X, Y, epochs=1, lr=lr)
    assert costs_c.shape == costs_p.shape == (1,)
    rtol = rtol_for(dtype, trained=True)
    assert_close(costs_c, costs_p, rtol, scale=cost_scale(Y), what="epoch cost")
    assert not np.array_equal(_flat(net_p), before), "training changed nothing"
    _compare_networks(net_c, net_p, before, rtol)


@settings(max_examples=examples(20))
@given(sizes=network_sizes, seed=seeds, dtype=dtypes, update_biases=st.booleans())
def test_network_train_shuffled_epochs(sizes, seed, dtype, update_biases):
    # 3 shuffled epochs of 33 rows: 99 steps, the order drawn from the same seed.
    net_c, net_p = _network_pair(sizes, seed, dtype)
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (33, sizes[0]))
    Y = rng.uniform(0, 1, (33, sizes[-1]))
    before = _flat(net_p)
    kwargs = dict(epochs=3, lr=0.5, shuffle=True, seed=seed, update_biases=update_biases)
    costs_c = net_c.train(X, Y, **kwargs)
    costs_p = net_p.train(X, Y, **kwargs)
    rtol = rtol_for(dtype, trained=True)
    assert_close(costs_c, costs_p, rtol, scale=cost_scale(Y), what="epoch costs")
    _compare_networks(net_c, net_p, before, rtol)
    if not update_biases:
        for b_c, b_p, (_, b0) in zip(net_c.biases, net_p.biases, layer_views(before, net_p.layer_sizes)):
            assert np.array_equal(b_c, b0) and np.array_equal(b_p, b0)


@settings(max_examples=examples(30))
@given(sizes=network_sizes, seed=seeds, dtype=dtypes, n_rows=st.integers(1, 10))
def test_network_forward_cost_gradients(sizes, seed, dtype, n_rows):
    net_c, net_p = _network_pair(sizes, seed, dtype)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n_rows, sizes[0]))
    Y = rng.uniform(0, 1, (n_rows, sizes[-1]))
    rtol = rtol_for(dtype)
    assert_close(net_c.forward(X), net_p.forward(X), rtol, what="forward(X)")
    assert_close(net_c.forward(X[0]), net_p.forward(X[0]), rtol, what="forward(x)")
    assert_close(net_c.cost(X, Y), net_p.cost(X, Y), rtol, scale=cost_scale(Y), what="cost(X, Y)")
    assert_close(
        net_c.cost(X[0], Y[0]), net_p.cost(X[0], Y[0]), rtol, scale=cost_scale(Y[0]), what="cost(x, y)"
    )

    (dW_c, db_c), (dW_p, db_p) = net_c.gradients(X[0], Y[0]), net_p.gradients(X[0], Y[0])
    # Scales of the deltas, from the reference's forward pass of this sample.
    sizes_arr = np.array(sizes, dtype=np.intp)
    params = _flat(net_p)
    act = nan_array(activation_width(sizes_arr), net_p.dtype)
    PY.forward(params, sizes_arr, X[0].astype(net_p.dtype), act)
    a = split(act, sizes_arr)
    for l, (m, gWc, gWp, gbc, gbp) in enumerate(
        zip(delta_scales(params, sizes_arr, act, Y[0]), dW_c, dW_p, db_c, db_p), start=1
    ):
        assert_close(gWc, gWp, rtol, scale=m.max() * np.abs(a[l - 1]).max(), what=f"dJ/dW[{l}]")
        assert_close(gbc, gbp, rtol, scale=m.max(), what=f"dJ/db[{l}]")


# --------------------------------------------------------------------------
# The sigmoid: exact and stable for every finite input and for +-inf
# --------------------------------------------------------------------------


def _sigmoid_math(z):
    """1 / (1 + e^-z) in double with math, or None where e^-z overflows."""
    try:
        return 1.0 / (1.0 + math.exp(-z))
    except OverflowError:
        return None


def _check_sigmoid(module, z, dtype):
    z = np.asarray(z, dtype=dtype)
    out = nan_array(z.shape, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            module.sigmoid(z, out)
    assert not np.isnan(out).any(), f"sigmoid gave NaN for {z[np.isnan(out)]}"
    assert ((out >= 0) & (out <= 1)).all(), f"sigmoid left [0, 1]: {out}"
    finfo = np.finfo(dtype)
    # The two algebraically equal forms 1/(1+e^-z) and e^z/(1+e^z) differ by a
    # few roundings in double, and the result is then rounded to dtype: allow
    # 4 ulps of the dtype, plus 4 steps of the smallest subnormal where the
    # result is that small (the spacing there is absolute, not relative).
    for zi, oi in zip(z.tolist(), out.tolist()):
        expected = _sigmoid_math(zi)
        if expected is None:
            # z < about -709: s(z) = e^z / (1 + e^z) = e^z, as 1 + e^z rounds to 1.
            expected = math.exp(zi)
        expected = float(np.asarray(expected, dtype=dtype))
        assert abs(oi - expected) <= 4 * finfo.eps * abs(expected) + 4 * finfo.smallest_subnormal, (
            f"sigmoid({zi!r}) = {oi!r}, expected {expected!r}"
        )
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_sigmoid_extremes(backend, dtype):
    finfo = np.finfo(dtype)
    big = [1000.0, 1e30, float(finfo.max)]
    edges = [
        0.0,
        -0.0,
        float(finfo.tiny),
        float(finfo.smallest_subnormal),
        1.0,
        20.0,
        36.0,
        37.0,
        88.0,
        89.0,
        103.0,
        104.0,
    ]
    if dtype == np.float64:
        edges += [700.0, 709.0, 710.0, 744.0, 746.0, 1e300]
    z = [math.inf, -math.inf] + [s * v for v in big + edges for s in (1.0, -1.0)]
    out = _check_sigmoid(BACKENDS[backend], z, dtype)
    s = dict(zip(z, out.tolist()))
    assert s[math.inf] == 1.0 and s[-math.inf] == 0.0
    assert s[0.0] == 0.5
    for v in big:
        # e^-1000 is far below half the smallest subnormal: these round to exactly 1 and 0.
        assert s[v] == 1.0 and s[-v] == 0.0, (v, s[v], s[-v])


@pytest.mark.parametrize("backend", list(BACKENDS))
@settings(max_examples=examples(30))
@given(data=st.data(), dtype=dtypes)
def test_sigmoid_any_float(backend, data, dtype):
    # Every float of the dtype, including +-inf, subnormals and -0.0.
    z = data.draw(st.lists(st.floats(allow_nan=False, width=8 * dtype.itemsize), min_size=1, max_size=50))
    _check_sigmoid(BACKENDS[backend], z, dtype)
