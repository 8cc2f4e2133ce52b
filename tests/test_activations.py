"""Activations and losses (issue 10): every model on every backend and copy.

* Equivalence: for every hidden activation and every valid (output
  activation, loss) pair, both dtypes and every compiled copy this CPU runs,
  the compiled kernels agree with the reference (``fastbp.reference``) within
  the tolerances of ``tests/test_equivalence.py`` (its constants, unchanged):
  the low-level kernels with an activation or loss code, the whole-network
  kernels with a ``model``, and ``Network`` (forward of one row and of a
  batch, cost, gradients, step, online and shuffled mini-batch training).
  All compiled copies give the same bits.
* Gradients against PyTorch's autograd on random networks with random
  activations per layer (skipped, with the reason, where torch is not
  installed); against central finite differences of ``net.cost`` on the same
  random models: tests/test_gradients.py.
* Saturation: the cross-entropy stays finite and accurate where the outputs
  round to exactly 0 or 1 (checked against mpmath, or exact Python floats).
* Bad input for the new keywords and for the targets the cross-entropy
  needs: the error names the argument, and nothing changed.
* The default model is unchanged: the note's initial weights, bit for bit;
  He and Glorot bounds for the other activations.

Tolerances: ``assert_close(actual, expected, rtol, scale=...)`` of
test_equivalence, with ``rtol_for(dtype, trained)`` as there.  Its scales
(``cost_scale``, ``delta_scales``) assume sigmoids (outputs in [0, 1],
slopes a (1 - a)); the scales here are the same idea for any activation (the
magnitude of the terms that went into a value, through the slope that
carries a rounding error forward), see ``Scales``.  With sigmoids everywhere
they are no larger than test_equivalence's.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import pickle
import re

import numpy as np
import pytest
from test_equivalence import (  # the suite's tolerances and comparison, reused as they are
    RTOL32,
    RTOL64,
    assert_close,
    rtol_for,
    update_scale,
)

import fastbp
from fastbp import Network, _model
from fastbp._layout import activation_width, layer_views, split, train_buffer_lengths
from fastbp.backends import ISA_VAR, isa_modules

PY = fastbp.get_backend("python")
COPIES = isa_modules()  # every compiled copy this CPU runs, best first

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
# Every (output activation, loss) pair the model allows.
OUTPUTS = (
    *tuple((f, "squared_error") for f in HIDDEN),
    ("sigmoid", "cross_entropy"),
    ("softmax", "cross_entropy"),
)
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def test_the_tables_are_what_these_tests_cover():
    assert _model.HIDDEN_ACTIVATIONS == HIDDEN
    assert set(_model.ACTIVATIONS) == set(HIDDEN) | {"softmax"}
    assert _model.LOSSES == ("squared_error", "cross_entropy")
    valid = set()
    for f, loss in itertools.product(_model.ACTIVATIONS, _model.LOSSES):
        try:
            _model.resolve("sigmoid", f, loss, 2)
        except ValueError:
            continue
        valid.add((f, loss))
    assert valid == set(OUTPUTS)


# --------------------------------------------------------------------------
# A NumPy oracle of the model (float64) and the scales of the comparisons
# --------------------------------------------------------------------------


def np_activate(z, name):
    z = np.asarray(z, dtype=np.float64)
    if name == "sigmoid":
        e = np.exp(-np.abs(z))  # never overflows
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z >= 0, z, 0.01 * z)
    if name == "identity":
        return z.copy()
    assert name == "softmax"
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_forward(Ws, bs, names, x):
    """``(z[1..L], a[0..L])`` of one sample, in float64."""
    a = [np.asarray(x, dtype=np.float64)]
    zs = []
    for W, b, name in zip(Ws, bs, names):
        z = np.asarray(W, np.float64) @ a[-1] + np.asarray(b, np.float64)
        zs.append(z)
        a.append(np_activate(z, name))
    return zs, a


def slope_bound(a, name):
    """|f'(z)| from a = f(z) (softmax: 2 o (1 - o), the largest row sum of its
    Jacobian's absolute values that reaches o_k)."""
    if name in ("sigmoid", "softmax"):
        return (2.0 if name == "softmax" else 1.0) * a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    if name == "relu":
        return (a > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(a > 0, 1.0, 0.01)
    return np.ones_like(a)


def slope_scale(a, name):
    """f'(z) with every difference turned into a sum (a (1 + a) for the
    sigmoid, as test_equivalence.delta_scales; 1 + a^2 for tanh): at least
    |f'|, and a bound on how much a rounding error of a moves f'(z)."""
    if name == "sigmoid":
        return a * (1.0 + a)
    if name == "tanh":
        return 1.0 + a * a
    return slope_bound(a, name)


class Scales:
    """The scales of one sample's forward and backward pass, from float64 values.

    Forward: a rounding error made in a sum z = W a + b is a fraction of the
    magnitudes of its terms, |W| |a| + |b|, and reaches a = f(z) through the
    slope |f'(z)|; an error already in a[l-1] reaches z[l] through |W|.  So,
    layer by layer, ``S_a[0] = |x|``,
    ``S_z[l] = |W[l]| max(|a[l-1]|, S_a[l-1]) + |b[l]|`` and
    ``S_a[l] = max(|a[l]|, |f'(z[l])| S_z[l])`` (for all-sigmoid networks
    this is test_equivalence's forward_layer scale, layer by layer).

    Backward: test_equivalence's delta_scales with the loss's own output
    delta and each layer's own slope: ``m[L] = (|y| + |o|) slope(o)`` (the
    squared error) or ``|o| + |y|`` (the cross-entropy), then
    ``m[l] = (|W[l+1]|^T m[l+1]) slope(a[l])``.
    """

    def __init__(self, Ws, bs, names, loss, x, y):
        Ws = [np.asarray(W, np.float64) for W in Ws]
        zs, a = np_forward(Ws, bs, names, x)
        self.z, self.a = zs, a
        S_a, S_z = [np.abs(a[0])], []
        for l, (W, b, name) in enumerate(zip(Ws, bs, names), start=1):
            S_z.append(np.abs(W) @ np.maximum(np.abs(a[l - 1]), S_a[-1]) + np.abs(np.asarray(b, np.float64)))
            S_a.append(np.maximum(np.abs(a[l]), slope_bound(a[l], name) * S_z[-1]))
        self.S_a, self.S_z = S_a, S_z
        y = np.abs(np.asarray(y, np.float64))
        o = a[-1]
        if loss == "cross_entropy":
            m = np.abs(o) + y
        else:
            m = (y + np.abs(o)) * slope_scale(o, names[-1])
        ms = [m]
        for l in range(len(Ws) - 1, 0, -1):
            m = (np.abs(Ws[l]).T @ m) * slope_scale(a[l], names[l - 1])
            ms.append(m)
        self.m = ms[::-1]  # per layer 1..L
        # The cost: the magnitudes of its terms, with the output (or its net
        # input) as large as its own scale says it may be off.
        o_mag = np.maximum(np.abs(o), S_a[-1])
        z_mag = np.maximum(np.abs(zs[-1]), S_z[-1])
        if loss == "squared_error":
            self.cost = float(0.5 * np.sum((y + o_mag) ** 2))
        elif names[-1] == "sigmoid":
            self.cost = float(np.sum((1.0 + y) * z_mag + 1.0))
        else:
            lse = float(np.log(np.sum(np.exp(zs[-1] - zs[-1].max()))) + zs[-1].max())
            self.cost = float(np.sum(y) * (abs(lse) + 2.0 * z_mag.max()) + 1.0)

    def output(self):
        return float(self.S_a[-1].max())

    def layer(self, l):
        """Scale of a[l] (0..L)."""
        return float(self.S_a[l].max())


def batch_scales(Ws, bs, names, loss, X, Y):
    return [Scales(Ws, bs, names, loss, x, y) for x, y in zip(X, Y)]


def compare_grads(got, expected, scales, rtol, what):
    """``got``/``expected``: (dW per layer, db per layer); per layer to its own scale."""
    (dW_g, db_g), (dW_e, db_e) = got, expected
    for l, (gW, eW, gb, eb) in enumerate(zip(dW_g, dW_e, db_g, db_e), start=1):
        m = scales.m[l - 1].max()
        a_prev = max(float(np.abs(scales.a[l - 1]).max()), scales.layer(l - 1))
        assert_close(gW, eW, rtol, scale=max(m * a_prev, np.abs(eW).max()), what=f"{what} dJ/dW[{l}]")
        assert_close(gb, eb, rtol, scale=max(m, np.abs(eb).max()), what=f"{what} dJ/db[{l}]")


def flat(net):
    return np.concatenate([np.r_[W.ravel(), b] for W, b in zip(net.weights, net.biases)])


@contextlib.contextmanager
def on_copy(isa):
    """Networks made inside are run by the compiled copy ``isa``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ISA_VAR, isa)
        yield COPIES[isa]


def make(sizes, hidden, out, loss, dtype, backend="cython", seed=0, isa=None):
    kwargs = dict(
        activation=hidden, output_activation=out, loss=loss, seed=seed, dtype=dtype, backend=backend
    )
    if isa is None:
        return Network(sizes, **kwargs)
    with on_copy(isa) as module:
        net = Network(sizes, **kwargs)
    assert net._kernels is module
    return net


def targets(rng, shape, out, loss):
    """Targets the model can learn: probabilities for the cross-entropy (rows
    summing to 1 under a softmax, some one-hot), the output's range otherwise."""
    if out == "softmax":
        Y = rng.dirichlet(np.ones(shape[-1]), size=shape[0])
        Y[::3] = np.eye(shape[-1])[rng.integers(0, shape[-1], size=len(Y[::3]))]
        return Y
    if loss == "cross_entropy":
        Y = rng.uniform(0, 1, shape)
        Y[::4] = rng.integers(0, 2, Y[::4].shape)  # exact 0s and 1s too
        return Y
    if out == "sigmoid":
        return rng.uniform(0.05, 0.95, shape)
    if out == "tanh":
        return rng.uniform(-0.9, 0.9, shape)
    return rng.uniform(-1.0, 2.0, shape)


def hidden_names(hidden, sizes):
    n = len(sizes) - 2
    return tuple(hidden) if not isinstance(hidden, str) else (hidden,) * n


# --------------------------------------------------------------------------
# 1. Equivalence: the low-level kernels, with each activation and loss code
# --------------------------------------------------------------------------


def _run(module, name, args):
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    return getattr(module, name)(*copies), copies


def _same_bits(results, what):
    """Every compiled copy's result, bit for bit."""
    (first_isa, first), *rest = results.items()
    for isa, value in rest:
        for a, b in zip(first, value):
            if isinstance(a, float) or a is None:
                assert (a == b) or (a is None and b is None), f"{what}: {isa} {b!r} != {first_isa} {a!r}"
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{what}: {isa} differs from {first_isa}")


def _wide_z(rng, n, dtype):
    # Mostly moderate values, some far in the tails, and exact zeros/-0.0.
    z = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 2.5, n)
    z[::7] = 0.0
    z[3::11] = -0.0
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", _model.ACTIVATIONS)
def test_activate_and_derivative(activation, dtype):
    code = _model.ACTIVATIONS.index(activation)
    rng = np.random.default_rng(code)
    for n in (1, 2, 7, 8, 9, 33, 100):  # below, at and past the vector widths, with tails
        z = _wide_z(rng, n, dtype)
        expected = np.full(n, np.nan, dtype)
        PY.activate(z, expected, code)
        results = {}
        for isa, module in COPIES.items():
            out = np.full(n, np.nan, dtype)
            module.activate(z.copy(), out, code)
            # Elementwise the error is of the function alone: relative to each
            # value; a softmax normalises by a sum: relative to the largest.
            if activation == "softmax":
                assert_close(out, expected, rtol_for(dtype), what=f"{isa} softmax n={n}")
                assert abs(float(out.astype(np.float64).sum()) - 1.0) <= n * rtol_for(dtype)
            else:
                np.testing.assert_allclose(
                    out, expected, rtol=rtol_for(dtype), atol=0, err_msg=f"{isa} {activation} n={n}"
                )
            # In place (out may be z) gives the same.
            buf = z.copy()
            module.activate(buf, buf, code)
            np.testing.assert_array_equal(buf, out, err_msg=f"{isa} {activation} in place")
            results[isa] = [out]
            if activation != "softmax":
                d = np.full(n, np.nan, dtype)
                module.activation_derivative(expected, d, code)
                d_ref = np.full(n, np.nan, dtype)
                PY.activation_derivative(expected, d_ref, code)
                np.testing.assert_allclose(
                    d, d_ref, rtol=rtol_for(dtype), atol=rtol_for(dtype), err_msg=f"{isa} {activation}' n={n}"
                )
                results[isa].append(d)
        _same_bits(results, f"activate({activation}) n={n}")
        if activation != "softmax":
            np.testing.assert_allclose(
                expected,
                np_activate(z.astype(np.float64), activation).astype(dtype),
                rtol=4 * np.finfo(dtype).eps,
                atol=0,
            )


@pytest.mark.parametrize("activation", _model.ACTIVATIONS)
def test_activate_extremes(activation):
    # +-inf, the largest floats and the tails: finite where f is, never NaN,
    # the same on every copy and the reference.
    code = _model.ACTIVATIONS.index(activation)
    for dtype in DTYPES:
        big = float(np.finfo(dtype).max)
        z = np.array(
            [
                0.0,
                -0.0,
                1e-30,
                -1e-30,
                0.39,
                0.41,
                -0.41,
                20.0,
                -20.0,
                700.0,
                -700.0,
                710.0,
                -710.0,
                745.0,
                -745.0,
                big,
                -big,
                1e30,
                -1e30,
            ],
            dtype=np.float64,
        )
        z = z[np.abs(z) <= big].astype(dtype)
        if activation == "softmax":
            zs = [z[:3], z[5:9], z[9:15], np.array([big, -big, 0.0], dtype), np.array([0.0] * 9, dtype)]
        else:
            zs = [z]
        for v in zs:
            expected = np.full(len(v), np.nan, dtype)
            with np.errstate(all="ignore"):
                PY.activate(v, expected, code)
            assert not np.isnan(expected).any()
            for isa, module in COPIES.items():
                out = np.full(len(v), np.nan, dtype)
                module.activate(v, out, code)
                np.testing.assert_allclose(
                    out, expected, rtol=rtol_for(dtype), atol=0, err_msg=f"{isa} {activation} {v}"
                )
                if activation == "tanh":
                    assert (np.signbit(out) == np.signbit(v)).all(), "tanh(-0) must be -0"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", (*HIDDEN, "softmax"))
def test_forward_layer_with_each_activation(activation, dtype):
    code = _model.ACTIVATIONS.index(activation)
    rng = np.random.default_rng(40 + code)
    for n_out, n_in in ((1, 1), (3, 5), (9, 40), (33, 7)):
        W = rng.uniform(-1, 1, (n_out, n_in)).astype(dtype)
        b = rng.uniform(-1, 1, n_out).astype(dtype)
        x = rng.uniform(-1, 1, n_in).astype(dtype)
        expected = np.full(n_out, np.nan, dtype)
        PY.forward_layer(W, b, x, expected, code)
        sc = Scales([W], [b], (activation,), "squared_error", x, np.zeros(n_out))
        results = {}
        for isa, module in COPIES.items():
            out = np.full(n_out, np.nan, dtype)
            module.forward_layer(W, b, x, out, code)
            assert_close(
                out, expected, rtol_for(dtype), scale=sc.output(), what=f"{isa} forward_layer {activation}"
            )
            results[isa] = [out]
        _same_bits(results, f"forward_layer {activation}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("out_activation, loss", OUTPUTS)
def test_cost_and_output_delta_with_each_loss(out_activation, loss, dtype):
    f, lo = _model.ACTIVATIONS.index(out_activation), _model.LOSSES.index(loss)
    rng = np.random.default_rng(10 * f + lo)
    for n in (1, 2, 5, 10, 40):
        z = (rng.standard_normal(n) * 3).astype(dtype)
        o = np.full(n, np.nan, dtype)
        PY.activate(z, o, f)
        y = targets(rng, (1, n), out_activation, loss)[0].astype(dtype)
        if out_activation == "softmax" and n == 1:
            y[:] = 1
        J_ref = PY.cost(o, y, z, f, lo)
        d_ref = np.full(n, np.nan, dtype)
        PY.output_delta(o, y, d_ref, f, lo)
        results = {}
        scale = 1.0 + float(np.sum((1 + np.abs(y)) * (np.abs(z) + np.abs(o))))
        for isa, module in COPIES.items():
            J = module.cost(o, y, z, f, lo)
            assert isinstance(J, float)
            assert_close(J, J_ref, rtol_for(dtype), scale=scale, what=f"{isa} cost")
            d = np.full(n, np.nan, dtype)
            module.output_delta(o, y, d, f, lo)
            assert_close(
                d,
                d_ref,
                rtol_for(dtype),
                scale=float(np.max(np.abs(o) + np.abs(y))) * 2,
                what=f"{isa} output_delta",
            )
            results[isa] = [J, d]
        _same_bits(results, f"cost {out_activation}/{loss}")
        if loss == "cross_entropy":
            # The cross-entropy needs z (it is computed from it).
            with pytest.raises(ValueError):
                PY.cost(o, y, None, f, lo)
            for module in COPIES.values():
                with pytest.raises((ValueError, TypeError)):
                    module.cost(o, y, None, f, lo)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", HIDDEN)
def test_hidden_delta_with_each_activation(activation, dtype):
    code = _model.ACTIVATIONS.index(activation)
    rng = np.random.default_rng(60 + code)
    for n_next, n in ((1, 1), (4, 6), (40, 9)):
        W = rng.uniform(-1, 1, (n_next, n)).astype(dtype)
        delta_next = rng.uniform(-0.5, 0.5, n_next).astype(dtype)
        a = np.full(n, np.nan, dtype)
        PY.activate(rng.uniform(-2, 2, n).astype(dtype), a, code)
        expected = np.full(n, np.nan, dtype)
        PY.hidden_delta(W, delta_next, a, expected, code)
        a64 = a.astype(np.float64)
        scale = (
            (np.abs(W.astype(np.float64)).T @ np.abs(delta_next.astype(np.float64)))
            * slope_scale(a64, activation)
        ).max()
        results = {}
        for isa, module in COPIES.items():
            d = np.full(n, np.nan, dtype)
            module.hidden_delta(W, delta_next, a, d, code)
            assert_close(d, expected, rtol_for(dtype), scale=scale, what=f"{isa} hidden_delta {activation}")
            results[isa] = [d]
        _same_bits(results, f"hidden_delta {activation}")


# --------------------------------------------------------------------------
# 1. Equivalence: the whole-network kernels, with a model
# --------------------------------------------------------------------------


def _case_id(sizes, hidden, out, loss):
    hidden = hidden if isinstance(hidden, str) else "+".join(hidden)
    return f"{'-'.join(map(str, sizes))}-{hidden}-{out}-{loss}"


# (sizes, hidden activation(s)): one hidden layer small and wide (rows of 32
# and more go through the kernels' 32 partial sums, layers of 8 and more
# through the vector loops), no hidden layer, and deeper nets with one
# activation per hidden layer.
KERNEL_NETS = [
    ([2, 2, 2], None),  # one hidden layer with constant sizes in the kernels' online loop
    ([3, 5, 4], None),
    ([40, 33, 10], None),
    ([4, 3], None),
    ([4, 6, 5, 3], ["relu", "tanh"]),
    ([5, 9, 4, 7, 2], ["leaky_relu", "identity", "sigmoid"]),
]


def _kernel_cases():
    for (sizes, per_layer), (out, loss) in itertools.product(KERNEL_NETS, OUTPUTS):
        hiddens = HIDDEN if per_layer is None and len(sizes) > 2 else [per_layer or "sigmoid"]
        if sizes == [40, 33, 10] and out not in ("sigmoid", "softmax", "identity"):
            continue  # the wide net: one case of each kind of output, to keep the runtime down
        if sizes == [2, 2, 2] and out == "relu":
            continue  # both ReLU outputs start dead on its data: no weight would move
        for hidden in hiddens:
            yield pytest.param(sizes, hidden, out, loss, id=_case_id(sizes, hidden, out, loss))


class KernelCase:
    def __init__(self, sizes, hidden, out, loss, dtype, n_rows=11):
        self.names, self.loss = _model.resolve(hidden, out, loss, len(sizes) - 1)
        self.model = _model.codes(self.names, self.loss)
        net = Network(
            sizes,
            activation=hidden,
            output_activation=out,
            loss=loss,
            seed=len(sizes),
            dtype=dtype,
            backend="python",
        )
        rng = np.random.default_rng(sum(sizes) + len(out))
        self.dtype = np.dtype(dtype)
        self.sizes = np.array(sizes, dtype=np.intp)
        # The initial weights, twice as large in sigmoid and tanh layers
        # (they saturate more).
        self.params = flat(net).astype(dtype)
        views = layer_views(self.params, self.sizes)
        for (W, b), name in zip(views, self.names):
            if name in ("sigmoid", "tanh"):
                W *= 2
                b *= 2
        self.X = rng.uniform(-1, 1, (n_rows, sizes[0])).astype(dtype)
        self.Y = targets(rng, (n_rows, sizes[-1]), out, loss).astype(dtype)
        self.lr = 0.1 if max(sizes) < 20 else 0.02
        self.Ws, self.bs = [W for W, _ in views], [b for _, b in views]
        self.scales = batch_scales(self.Ws, self.bs, self.names, self.loss, self.X, self.Y)

    def nan(self, n):
        return np.full(n, np.nan, self.dtype)


def _compare_activations(act, expected, c, sc, rtol, what):
    sizes = c.sizes
    a, a_ref = split(act, [*sizes, sizes[-1]]), split(expected, [*sizes, sizes[-1]])
    np.testing.assert_array_equal(a[0], a_ref[0], err_msg=f"{what}: a[0] is the input")
    for l in range(1, len(sizes)):
        assert_close(a[l], a_ref[l], rtol, scale=sc.layer(l), what=f"{what} a[{l}]")
    assert_close(a[-1], a_ref[-1], rtol, scale=float(sc.S_z[-1].max()), what=f"{what} z[L]")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sizes, hidden, out, loss", list(_kernel_cases()))
def test_network_kernels_with_a_model(sizes, hidden, out, loss, dtype):
    c = KernelCase(sizes, hidden, out, loss, dtype)
    rtol, rtol_trained = rtol_for(dtype), rtol_for(dtype, trained=True)
    width, n_d, n = activation_width(c.sizes), int(c.sizes[1:].sum()), len(c.X)
    sc0 = c.scales[0]
    _n_act, _n_del = train_buffer_lengths(c.sizes, 4)

    def all_kernels(module):
        got = {}
        # forward: a[0..L] and z[L] of one sample.
        act = c.nan(width)
        module.forward(c.params, c.sizes, c.X[0], act, c.model)
        got["forward"] = act
        # forward_batch: two rows of scratch, so the block path is taken too.
        out_ = np.full((n, c.sizes[-1]), np.nan, c.dtype)
        module.forward_batch(c.params, c.sizes, c.X, out_, c.nan(2 * width), c.model)
        got["forward_batch"] = out_
        got["mean_cost"] = module.mean_cost(c.params, c.sizes, c.X, c.Y, c.nan(3 * width), c.model)
        act, deltas, grads = c.nan(width), c.nan(n_d), c.nan(len(c.params))
        J = module.gradients(c.params, c.sizes, c.X[0], c.Y[0], act, deltas, grads, c.model)
        got["gradients"] = (J, act, deltas, grads)
        p = c.params.copy()
        J = module.train_step(p, c.sizes, c.X[1], c.Y[1], c.lr, True, c.nan(width), c.nan(n_d), c.model)
        got["train_step"] = (J, p)
        for label, batch, shuffle in (
            ("online", 1, False),
            ("mini-batch", 4, True),
            ("full-batch", n, False),
        ):
            p = c.params.copy()
            order = np.arange(n if shuffle else 0, dtype=np.intp)
            state = np.array([12345], dtype=np.uint64)
            costs = np.full(2, np.nan)
            a_len, d_len = train_buffer_lengths(c.sizes, batch)
            done = module.train(
                p,
                c.sizes,
                c.X,
                c.Y,
                order,
                state,
                shuffle,
                c.lr,
                batch,
                True,
                costs,
                c.nan(a_len),
                c.nan(d_len),
                c.nan(len(p)),
                c.model,
            )
            got[label] = (done, p, costs, order, state)
        return got

    expected = all_kernels(PY)
    results = {}
    for isa, module in COPIES.items():
        got = all_kernels(module)
        what = f"{isa}"
        _compare_activations(got["forward"], expected["forward"], c, sc0, rtol, f"{what} forward")
        assert_close(
            got["forward_batch"],
            expected["forward_batch"],
            rtol,
            scale=max(s.output() for s in c.scales),
            what=f"{what} forward_batch",
        )
        cost_scale = float(np.mean([s.cost for s in c.scales]))
        assert isinstance(got["mean_cost"], float)
        assert_close(
            got["mean_cost"], expected["mean_cost"], rtol, scale=cost_scale, what=f"{what} mean_cost"
        )
        (J, act, deltas, grads), (J_p, act_p, deltas_p, grads_p) = got["gradients"], expected["gradients"]
        assert_close(J, J_p, rtol, scale=sc0.cost, what=f"{what} gradients J")
        _compare_activations(act, act_p, c, sc0, rtol, f"{what} gradients")
        for l, (d, d_p, m) in enumerate(
            zip(split(deltas, c.sizes[1:]), split(deltas_p, c.sizes[1:]), sc0.m), 1
        ):
            assert_close(d, d_p, rtol, scale=m.max(), what=f"{what} delta[{l}]")
        views, views_p = layer_views(grads, c.sizes), layer_views(grads_p, c.sizes)
        compare_grads(
            ([v[0] for v in views], [v[1] for v in views]),
            ([v[0] for v in views_p], [v[1] for v in views_p]),
            sc0,
            rtol,
            what,
        )
        (J, p), (J_p, p_p) = got["train_step"], expected["train_step"]
        assert_close(J, J_p, rtol, scale=c.scales[1].cost, what=f"{what} train_step J")
        assert_close(p, p_p, rtol, scale=update_scale(c.params, p_p), what=f"{what} train_step params")
        for label in ("online", "mini-batch", "full-batch"):
            (done, p, costs, order, state), (done_p, p_p, costs_p, order_p, state_p) = (
                got[label],
                expected[label],
            )
            assert done == done_p == 2, label
            if label == "online":
                # (A sample may leave every relu output dead, a single softmax
                # output is always 1: a whole run changes something.)
                assert not np.array_equal(p_p, c.params) or (out == "softmax" and sizes[-1] == 1)
            np.testing.assert_array_equal(order, order_p)
            np.testing.assert_array_equal(state, state_p)
            assert_close(costs, costs_p, rtol_trained, scale=cost_scale, what=f"{what} {label} costs")
            assert_close(
                p, p_p, rtol_trained, scale=update_scale(c.params, p_p), what=f"{what} {label} params"
            )
        results[isa] = [
            got["forward"],
            got["forward_batch"],
            got["mean_cost"],
            *got["gradients"],
            *got["train_step"],
            *(v for k in ("online", "mini-batch", "full-batch") for v in got[k][1:3]),
        ]
    _same_bits(results, "network kernels")


def test_the_model_none_is_the_notes_model():
    # model=None (every kernel's default) is every layer a sigmoid, squared error.
    c = KernelCase([3, 5, 4], "sigmoid", "sigmoid", "squared_error", np.float64)
    width = activation_width(c.sizes)
    for module in (PY, *COPIES.values()):
        a, b = c.nan(width), c.nan(width)
        module.forward(c.params, c.sizes, c.X[0], a)
        module.forward(c.params, c.sizes, c.X[0], b, c.model)
        np.testing.assert_array_equal(a, b)
        assert module.mean_cost(c.params, c.sizes, c.X, c.Y, c.nan(width)) == module.mean_cost(
            c.params, c.sizes, c.X, c.Y, c.nan(width), c.model
        )


@pytest.mark.parametrize("module", [PY, *COPIES.values()], ids=lambda m: getattr(m, "ISA", "python"))
def test_kernels_refuse_a_bad_model(module):
    # The kernels' contract: codes they cannot run are refused (ValueError),
    # never run; a refused call writes nothing.
    c = KernelCase([3, 5, 4], "sigmoid", "sigmoid", "squared_error", np.float64)
    width = activation_width(c.sizes)
    bad = {
        "too short": [0, 0],
        "too long": [0, 0, 0, 0],
        "unknown activation": [9, 0, 0],
        "negative code": [-1, 0, 0],
        "unknown loss": [0, 0, 7],
        "softmax hidden": [5, 5, 1],
        "softmax with squared error": [0, 5, 0],
        "cross-entropy with tanh": [0, 1, 1],
    }
    for label, codes in bad.items():
        model = np.array(codes, dtype=np.intp)
        act = c.nan(width)
        with pytest.raises(ValueError):
            module.forward(c.params, c.sizes, c.X[0], act, model)
        p = c.params.copy()
        with pytest.raises(ValueError):
            module.train_step(p, c.sizes, c.X[0], c.Y[0], 0.1, True, c.nan(width), c.nan(9), model)
        np.testing.assert_array_equal(p, c.params, err_msg=label)


# --------------------------------------------------------------------------
# 1. Equivalence: Network, on every compiled copy and the reference
# --------------------------------------------------------------------------

NETWORKS = [
    ([3, 5, 4], None),
    ([6, 12, 3], None),
    ([4, 6, 5, 3], ["relu", "tanh"]),
    ([2, 7, 4, 6, 1], ["tanh", "leaky_relu", "relu"]),
    ([5, 3], None),
]


def _network_cases():
    for (sizes, per_layer), (out, loss) in itertools.product(NETWORKS, OUTPUTS):
        hiddens = HIDDEN if per_layer is None and len(sizes) > 2 else [per_layer or "sigmoid"]
        if sizes == [6, 12, 3] and out not in ("sigmoid", "softmax", "relu"):
            continue
        for hidden in hiddens:
            yield pytest.param(sizes, hidden, out, loss, id=_case_id(sizes, hidden, out, loss))


def _network_run(make_net, X, Y, lr):
    """Everything a user does with a network, each from the same initial weights."""
    net = make_net()
    got = {
        "forward(x)": net.forward(X[0]),
        "forward(X)": net.forward(X),
        "cost(x, y)": net.cost(X[0], Y[0]),
        "cost(X, Y)": net.cost(X, Y),
        "gradients": net.gradients(X[0], Y[0]),
    }
    got["step J"] = net.step(X[1], Y[1], lr)
    got["step"] = flat(net)
    for label, kwargs in (("online", {}), ("mini-batch", dict(batch_size=4, shuffle=True, seed=3))):
        net = make_net()
        got[f"{label} costs"] = net.train(X, Y, epochs=2, lr=lr, **kwargs)
        got[label] = flat(net)
        got[f"{label} forward"] = net.forward(X)
        # With a callback: one call per epoch, the same run bit for bit.
        net, seen = make_net(), []
        costs = net.train(X, Y, epochs=2, lr=lr, callback=lambda epoch, cost: seen.append(cost), **kwargs)
        np.testing.assert_array_equal(costs, got[f"{label} costs"], err_msg=f"{label} with a callback")
        np.testing.assert_array_equal(flat(net), got[label], err_msg=f"{label} with a callback")
        assert seen == list(costs)
    return got


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sizes, hidden, out, loss", list(_network_cases()))
def test_network_on_every_copy_agrees_with_the_reference(sizes, hidden, out, loss, dtype):
    rng = np.random.default_rng(sum(sizes) * 7 + len(out) + len(loss))
    X = rng.uniform(-1, 1, (13, sizes[0]))
    Y = targets(rng, (13, sizes[-1]), out, loss)
    lr = 0.2
    ref = make(sizes, hidden, out, loss, dtype, backend="python")
    assert ref.activations == (*hidden_names(hidden, sizes), out) and ref.loss == loss
    init = flat(ref)
    expected = _network_run(lambda: make(sizes, hidden, out, loss, dtype, backend="python"), X, Y, lr)
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    scales = batch_scales(ref.weights, ref.biases, ref.activations, loss, Xd, Yd)
    rtol, rtol_trained = rtol_for(dtype), rtol_for(dtype, trained=True)
    out_scale = max(s.output() for s in scales)
    cost_scale = float(np.mean([s.cost for s in scales]))
    results = {}
    for isa in COPIES:
        got = _network_run(lambda: make(sizes, hidden, out, loss, dtype, isa=isa), X, Y, lr)
        net = make(sizes, hidden, out, loss, dtype, isa=isa)
        np.testing.assert_array_equal(flat(net), init)  # the initial weights do not depend on the backend
        w = isa
        assert_close(
            got["forward(x)"], expected["forward(x)"], rtol, scale=scales[0].output(), what=f"{w} forward(x)"
        )
        assert_close(got["forward(X)"], expected["forward(X)"], rtol, scale=out_scale, what=f"{w} forward(X)")
        assert_close(
            got["cost(x, y)"], expected["cost(x, y)"], rtol, scale=scales[0].cost, what=f"{w} cost(x, y)"
        )
        assert_close(
            got["cost(X, Y)"], expected["cost(X, Y)"], rtol, scale=cost_scale, what=f"{w} cost(X, Y)"
        )
        compare_grads(got["gradients"], expected["gradients"], scales[0], rtol, f"{w} gradients")
        assert_close(got["step J"], expected["step J"], rtol, scale=scales[1].cost, what=f"{w} step J")
        assert_close(
            got["step"], expected["step"], rtol, scale=update_scale(init, expected["step"]), what=f"{w} step"
        )
        for label in ("online", "mini-batch"):
            # (A single softmax output is always 1 and learns nothing.)
            assert not np.array_equal(expected[label], init) or (out == "softmax" and sizes[-1] == 1), (
                f"{label}: training changed nothing"
            )
            assert_close(
                got[f"{label} costs"],
                expected[f"{label} costs"],
                rtol_trained,
                scale=cost_scale,
                what=f"{w} {label} costs",
            )
            assert_close(
                got[label],
                expected[label],
                rtol_trained,
                scale=update_scale(init, expected[label]),
                what=f"{w} {label} weights",
            )
        results[isa] = [v for k, v in got.items() if k != "gradients"] + [
            *got["gradients"][0],
            *got["gradients"][1],
        ]
    _same_bits(results, "Network")


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("out, loss", OUTPUTS)
def test_a_diverging_epoch_is_undone_with_each_model(out, loss, backend):
    # lr = 1e308 overflows the weights (or the cost) in the first epoch, or
    # saturates every neuron without diverging: either the epoch is undone
    # (TrainingDivergedError, the weights as before it) or everything is finite.
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (6, 3))
    Y = targets(rng, (6, 2), out, loss)
    outcomes = set()
    for hidden, batch_size in itertools.product(HIDDEN, (1, 3)):
        net = Network([3, 4, 2], activation=hidden, output_activation=out, loss=loss, seed=2, backend=backend)
        before = flat(net)
        try:
            costs = net.train(X, Y, epochs=1, lr=1e308, batch_size=batch_size)
        except fastbp.TrainingDivergedError as error:
            np.testing.assert_array_equal(
                flat(net), before, err_msg=f"{hidden}: the diverged epoch was not undone"
            )
            assert len(error.costs) == 0
            outcomes.add("diverged")
            # Restored, and usable as before.
            assert math.isfinite(net.step(X[0], Y[0], 0.01))
        else:
            assert np.isfinite(costs).all() and np.isfinite(flat(net)).all()
            outcomes.add("finite")
    if out in ("identity", "leaky_relu"):
        assert "diverged" in outcomes  # unbounded outputs: the weights overflow


def test_every_copy_gives_the_same_bits_with_each_model():
    # Wider layers (rows of 32 and more, vector loops) than the cases above,
    # where the copies' code paths differ most: the same bits on every copy.
    rng = np.random.default_rng(99)
    X = rng.uniform(-1, 1, (37, 70))
    for (hidden, out, loss), dtype in itertools.product(
        [
            ("relu", "softmax", "cross_entropy"),
            ("tanh", "sigmoid", "cross_entropy"),
            (["leaky_relu", "identity"], "identity", "squared_error"),
            ("sigmoid", "tanh", "squared_error"),
        ],
        DTYPES,
    ):
        sizes = [70, 33, 40, 9] if not isinstance(hidden, str) else [70, 40, 9]
        Y = targets(rng, (37, 9), out, loss)
        results = {}
        for isa in COPIES:
            net = make(sizes, hidden, out, loss, dtype, isa=isa, seed=4)
            costs = net.train(X, Y, epochs=2, lr=0.05, batch_size=5, shuffle=True, seed=1)
            costs1 = net.train(X, Y, epochs=1, lr=0.05)
            dW, db = net.gradients(X[0], Y[0])
            results[isa] = [
                costs,
                costs1,
                net.forward(X),
                net.forward(X[3]),
                net.cost(X, Y),
                flat(net),
                *dW,
                *db,
            ]
            assert np.isfinite(costs).all()
        _same_bits(results, f"{hidden}/{out}/{loss} {dtype}")


# --------------------------------------------------------------------------
# 2. Gradients: PyTorch's autograd (finite differences: tests/test_gradients.py)
# --------------------------------------------------------------------------


def random_model(rng):
    """A random network (1 to 3 hidden layers of 1 to 6) with a random
    activation per hidden layer and a random valid (output, loss)."""
    n_hidden = int(rng.integers(1, 4))
    sizes = (
        [int(rng.integers(1, 6))]
        + [int(rng.integers(1, 7)) for _ in range(n_hidden)]
        + [int(rng.integers(1, 5))]
    )
    hidden = [HIDDEN[i] for i in rng.integers(0, len(HIDDEN), n_hidden)]
    out, loss = OUTPUTS[int(rng.integers(0, len(OUTPUTS)))]
    return sizes, hidden, out, loss


KINK = {"relu", "leaky_relu"}


def away_from_kinks(rng, net, n_rows=1, margin=1e-2, tries=200):
    """Inputs whose every relu/leaky-relu net input is at least ``margin``
    from 0 (finite differences of h << margin then never cross the kink)."""
    rows = []
    for _ in range(tries):
        x = rng.uniform(-1, 1, net.layer_sizes[0])
        zs, _ = np_forward(net.weights, net.biases, net.activations, x)
        if all(np.abs(z).min() >= margin for z, f in zip(zs, net.activations) if f in KINK):
            rows.append(x)
            if len(rows) == n_rows:
                return np.array(rows)
    pytest.skip("no input away from the relu kinks (a dead network)")


def from_flat(net, params, dtype=None):
    views = layer_views(params, net.layer_sizes)
    return Network.from_weights(
        [W for W, _ in views],
        [b for _, b in views],
        activation=list(net.activations[:-1]),
        output_activation=net.activations[-1],
        loss=net.loss,
        backend=net.backend,
        dtype=dtype or net.dtype,
    )


def _torch():
    return pytest.importorskip(
        "torch",
        reason="PyTorch is not installed (pip install torch==2.13.0): the "
        "comparisons with its autograd are skipped",
    )


def torch_loss(torch, Ws, bs, names, loss, X, Y):
    """Mean over the rows of the per-sample J, the same model in PyTorch."""
    F = torch.nn.functional
    a = X
    for l, (W, b, name) in enumerate(zip(Ws, bs, names)):
        z = a @ W.T + b
        if l == len(Ws) - 1:
            break
        a = {
            "sigmoid": torch.sigmoid,
            "tanh": torch.tanh,
            "relu": F.relu,
            "leaky_relu": lambda v: F.leaky_relu(v, 0.01),
            "identity": lambda v: v,
        }[name](z)
    out = names[-1]
    n = X.shape[0]
    if loss == "cross_entropy" and out == "sigmoid":
        return F.binary_cross_entropy_with_logits(z, Y, reduction="sum") / n
    if loss == "cross_entropy":
        J = F.cross_entropy(z, Y, reduction="sum") / n  # Y: class probabilities
        J2 = -(Y * F.log_softmax(z, dim=1)).sum() / n
        assert torch.allclose(J, J2, rtol=1e-12, atol=1e-300)
        return J
    o = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda v: F.leaky_relu(v, 0.01),
        "identity": lambda v: v,
    }[out](z)
    return 0.5 * ((o - Y) ** 2).sum() / n


# Both compute the same float64 expressions in different orders and with
# different libm implementations (a few ulps each), on networks of up to 7
# values per layer: 1e-12 of each layer's scale, as RTOL64 between the backends.
RTOL_TORCH = RTOL64


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("seed", range(16))
def test_gradients_match_torch_autograd(seed, backend):
    torch = _torch()
    rng = np.random.default_rng(2000 + seed)
    sizes, hidden, out, loss = random_model(rng)
    net = Network(sizes, activation=hidden, output_activation=out, loss=loss, seed=seed, backend=backend)
    net = from_flat(net, 1.5 * flat(net))
    X = away_from_kinks(rng, net, n_rows=5, margin=1e-6)
    Y = targets(rng, (5, sizes[-1]), out, loss)
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in net.biases]
    tX, tY = torch.tensor(X), torch.tensor(Y)
    # One sample: J and dJ/dW, dJ/db.
    J_t = torch_loss(torch, Ws, bs, net.activations, loss, tX[:1], tY[:1])
    J_t.backward()
    sc = Scales(net.weights, net.biases, net.activations, loss, X[0], Y[0])
    assert_close(net.cost(X[0], Y[0]), J_t.item(), RTOL_TORCH, scale=sc.cost, what="J vs torch")
    expected = ([W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs])
    compare_grads(
        net.gradients(X[0], Y[0]), expected, sc, RTOL_TORCH, f"{sizes} {hidden} {out}/{loss} vs torch"
    )
    # The mean cost of a batch, and one full-batch step: W - lr * mean gradient.
    for t in (*Ws, *bs):
        t.grad = None
    J_t = torch_loss(torch, Ws, bs, net.activations, loss, tX, tY)
    J_t.backward()
    scales = batch_scales(net.weights, net.biases, net.activations, loss, X, Y)
    assert_close(
        net.cost(X, Y),
        J_t.item(),
        RTOL_TORCH,
        scale=np.mean([s.cost for s in scales]),
        what="mean J vs torch",
    )
    lr = 0.3
    before = flat(net)
    stepped = np.concatenate(
        [
            np.r_[(W - lr * W.grad).detach().numpy().ravel(), (b - lr * b.grad).detach().numpy()]
            for W, b in zip(Ws, bs)
        ]
    )
    costs = net.train(X, Y, epochs=1, lr=lr, batch_size=len(X))
    assert_close(costs[0], J_t.item(), RTOL_TORCH, scale=np.mean([s.cost for s in scales]), what="epoch J")
    assert_close(
        flat(net), stepped, RTOL_TORCH, scale=update_scale(before, stepped), what="full-batch step vs torch"
    )


@pytest.mark.parametrize("out, loss", OUTPUTS)
def test_every_output_and_loss_against_torch_on_a_deeper_net(out, loss):
    # Every (output, loss) pair at least once, under two hidden activations
    # per case, float64 and float32 (float32 to its own tolerance, with the
    # reference's float32 result as what both must be near).
    torch = _torch()
    sizes = [4, 6, 5, 3]
    for hidden in (["relu", "tanh"], ["sigmoid", "leaky_relu"], ["identity", "relu"]):
        for dtype in DTYPES:
            rng = np.random.default_rng(len(out) * 10 + len(hidden[0]))
            net = Network(sizes, activation=hidden, output_activation=out, loss=loss, seed=5, dtype=dtype)
            x = away_from_kinks(rng, net, margin=1e-3)[0].astype(dtype)
            y = targets(rng, (1, 3), out, loss)[0].astype(dtype)
            Ws = [torch.tensor(W.astype(np.float64), requires_grad=True) for W in net.weights]
            bs = [torch.tensor(b.astype(np.float64), requires_grad=True) for b in net.biases]
            J_t = torch_loss(
                torch,
                Ws,
                bs,
                net.activations,
                loss,
                torch.tensor(x[None].astype(np.float64)),
                torch.tensor(y[None].astype(np.float64)),
            )
            J_t.backward()
            sc = Scales(net.weights, net.biases, net.activations, loss, x, y)
            rtol = RTOL_TORCH if dtype == np.float64 else RTOL32
            assert_close(net.cost(x, y), J_t.item(), rtol, scale=sc.cost, what=f"{hidden} {dtype} J")
            compare_grads(
                net.gradients(x, y),
                ([W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]),
                sc,
                rtol,
                f"{hidden} {out}/{loss} {dtype} vs torch",
            )


# --------------------------------------------------------------------------
# 3. Saturation: the cross-entropy stays finite and accurate
# --------------------------------------------------------------------------


def _mpmath():
    mpmath = pytest.importorskip("mpmath", reason="mpmath (a dependency of sympy) computes the exact costs")
    mpmath.mp.prec = 200
    return mpmath


def exact_sigmoid_ce(z, y):
    """-sum [y ln o + (1 - y) ln(1 - o)], o = 1 / (1 + e^-z), in 200-bit arithmetic."""
    mpmath = _mpmath()
    J = mpmath.mpf(0)
    for zk, yk in zip(z, y):
        zk, yk = mpmath.mpf(float(zk)), mpmath.mpf(float(yk))
        o = 1 / (1 + mpmath.exp(-zk))
        # ln(1 - o) = ln(e^-z / (1 + e^-z)) = -z - ln(1 + e^-z): no 1 - o to cancel.
        J -= yk * mpmath.log(o) + (1 - yk) * (-zk - mpmath.log(1 + mpmath.exp(-zk)))
    return J


def exact_softmax_ce(z, y):
    mpmath = _mpmath()
    z = [mpmath.mpf(float(v)) for v in z]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
    return mpmath.fsum(mpmath.mpf(float(yk)) * (lse - zk) for zk, yk in zip(z, y))


def one_layer(z, out, dtype, backend):
    """A network [1, n] whose output net input for x = [1] is exactly z."""
    W = np.asarray(z, dtype=np.float64).reshape(-1, 1)
    return Network.from_weights(
        [W], [np.zeros(len(z))], output_activation=out, loss="cross_entropy", dtype=dtype, backend=backend
    )


def sigmoid_ce_terms(z, y):
    """The magnitude of the rounded terms of max(z, 0) - y z + ln(1 + e^-|z|) beyond J itself: y z."""
    return float(np.sum(np.abs(np.asarray(y, np.float64) * np.asarray(z, np.float64))))


def softmax_ce_terms(z, y):
    """The same for sum_k y_k (lse - z_k): lse (about max z) is rounded before z_k is taken off it."""
    z = np.asarray(z, np.float64)
    return float(np.sum(np.abs(np.asarray(y, np.float64)))) * (float(np.abs(z).max()) + 1.0)


def _close_to_exact(J, exact, terms):
    # J is computed in double from the dtype's z and y, by the documented
    # formulas: a few roundings of double relative to the magnitudes of their
    # terms (``terms``, beyond J itself), plus the smallest subnormal where the
    # exact J is below it.  Where the terms do not cancel (J of the order of
    # |z|, or y z exact), that is a few ulps of J.
    exact = float(exact)
    assert math.isfinite(J), J
    tolerance = 16 * np.finfo(np.float64).eps * (abs(exact) + terms) + 2 * 5e-324
    assert abs(J - exact) <= tolerance, (
        f"J = {J!r}, exact {exact!r}: error {abs(J - exact):.3g} > {tolerance:.3g}"
    )


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sigmoid_cross_entropy_saturated(dtype, backend):
    big = float(np.finfo(dtype).max)
    zs = [
        30.0,
        -30.0,
        40.0,
        -40.0,
        100.0,
        -100.0,
        745.0,
        -745.0,
        800.0,
        -800.0,
        1e4,
        -1e4,
        1e30,
        -1e30,
        big / 4,
        -big / 4,
    ]
    for y_value in (0.0, 1.0, 0.25):
        z = np.array(zs, dtype=dtype)
        net = one_layer(z, "sigmoid", dtype, backend)
        x = np.ones(1, dtype)
        y = np.full(len(z), y_value, dtype)
        o = net.forward(x)
        # The outputs round to exactly 1 from z = 40 on (e^-40 < eps / 2), to
        # exactly 0 from z = -800 down (e^-800 is below the smallest subnormal).
        assert (o[z >= 40] == 1).all() and (o[z <= -800] == 0).all(), o
        J = net.cost(x, y)
        _close_to_exact(J, exact_sigmoid_ce(z, y), sigmoid_ce_terms(z, y))
        # Each output on its own, and as a batch (the mean of the rows).
        for k in range(len(z)):
            single = one_layer(z[k : k + 1], "sigmoid", dtype, backend)
            _close_to_exact(
                single.cost(x, y[k : k + 1]),
                exact_sigmoid_ce(z[k : k + 1], y[k : k + 1]),
                sigmoid_ce_terms(z[k : k + 1], y[k : k + 1]),
            )
        J_batch = net.cost(np.ones((3, 1), dtype), np.tile(y, (3, 1)))
        assert J_batch == pytest.approx(J, rel=1e-15)
        # The delta o - y is finite, and so are a step and an epoch (lr small
        # enough for the weights to stay finite).
        _dW, db = net.gradients(x, y)
        np.testing.assert_array_equal(db[0], (o.astype(np.float64) - y).astype(dtype))
        assert net.step(x, y, 1e-3) == J
        costs = net.train(np.ones((4, 1), dtype), np.tile(y, (4, 1)), epochs=2, lr=1e-3)
        assert np.isfinite(costs).all() and np.isfinite(flat(net)).all()


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_softmax_cross_entropy_saturated(dtype, backend):
    big = float(np.finfo(dtype).max)
    cases = [
        [1000.0, -1000.0, 0.0, 5.0],
        [800.0, 799.0, -800.0],
        [1e30, -1e30, 0.0],
        [big / 4, -big / 4, 1.0],
        [-745.0, -746.0, -800.0, -1e4],  # all far below 0: m shifts them
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # wide enough for the vector loop
        list(np.linspace(-900.0, 900.0, 12)),
    ]
    x = np.ones(1, dtype)
    for z in cases:
        z = np.array(z, dtype=dtype)
        net = one_layer(z, "softmax", dtype, backend)
        n = len(z)
        o = net.forward(x)
        assert np.isfinite(o).all() and abs(float(o.astype(np.float64).sum()) - 1) <= n * np.finfo(dtype).eps
        for k in range(n):
            y = np.zeros(n, dtype)
            y[k] = 1  # the worst class too: J = lse - z_k, up to 2e38 and more
            J = net.cost(x, y)
            _close_to_exact(J, exact_softmax_ce(z, y), softmax_ce_terms(z, y))
            _dW, db = net.gradients(x, y)
            assert np.isfinite(db[0]).all()
            np.testing.assert_array_equal(db[0], (o.astype(np.float64) - y).astype(dtype))
        y = np.full(n, 1.0 / n)
        y = y.astype(dtype)
        _close_to_exact(net.cost(x, y), exact_softmax_ce(z, y), softmax_ce_terms(z, y))
        costs = net.train(
            np.ones((3, 1), dtype), np.tile(np.eye(n)[0], (3, 1)), epochs=2, lr=1e-3, batch_size=2
        )
        assert np.isfinite(costs).all() and np.isfinite(flat(net)).all()


# The likeliest class's term y_k (ln sum e^(z_i - m) - (z_k - m)) keeps its
# relative accuracy at any |z| (m cancels first; lse - z_k would round lse at
# the scale of m: z = [1e15, 1e15 - 1] gave 0.375 for ln(1 + e^-1)).
@pytest.mark.parametrize("backend", ["cython", "python"])
def test_softmax_cross_entropy_of_the_likeliest_class_is_accurate(backend):
    for m in (800.0, 1e6, 1e15):
        z = np.array([m, m - 1.0, -m])
        net = one_layer(z, "softmax", np.float64, backend)
        y = np.array([1.0, 0.0, 0.0])
        exact = float(exact_softmax_ce(z, y))
        J = net.cost(np.ones(1), y)
        assert abs(J - exact) <= 16 * np.finfo(np.float64).eps * exact, (m, J, exact)


def test_saturated_cross_entropy_through_hidden_layers():
    # Saturation reached through hidden layers, on every copy: the cost of
    # the compiled network equals the reference's, and both the exact one.
    for out, hidden in (("sigmoid", "relu"), ("softmax", "identity"), ("softmax", "tanh")):
        W1 = np.array([[300.0], [-200.0]])
        W2 = np.array([[4.0, -1.0], [-4.0, 2.0], [0.5, 0.5]])
        b1, b2 = np.array([0.0, 0.0]), np.array([0.0, 1.0, -2.0])
        x, y = np.array([1.0]), np.array([0.0, 1.0, 0.0])
        zs, _ = np_forward([W1, W2], [b1, b2], (hidden, out), x)
        exact = exact_sigmoid_ce(zs[-1], y) if out == "sigmoid" else exact_softmax_ce(zs[-1], y)
        terms = sigmoid_ce_terms(zs[-1], y) if out == "sigmoid" else softmax_ce_terms(zs[-1], y)
        ref = Network.from_weights(
            [W1, W2],
            [b1, b2],
            activation=hidden,
            output_activation=out,
            loss="cross_entropy",
            backend="python",
        )
        _close_to_exact(ref.cost(x, y), exact, terms)
        for isa in COPIES:
            with on_copy(isa):
                net = Network.from_weights(
                    [W1, W2], [b1, b2], activation=hidden, output_activation=out, loss="cross_entropy"
                )
            assert net.cost(x, y) == ref.cost(x, y)
            _close_to_exact(net.cost(x, y), exact, terms)


# --------------------------------------------------------------------------
# 4. Bad input: the new keywords, and the targets the losses need
# --------------------------------------------------------------------------

esc = re.escape
HIDDEN_LIST = ", ".join(map(repr, HIDDEN))
ALL_LIST = ", ".join(map(repr, _model.ACTIVATIONS))
LOSS_LIST = ", ".join(map(repr, _model.LOSSES))

# (id, layer sizes, keywords, exception, match)
BAD_MODELS = [
    (
        "unknown-activation",
        [3, 4, 2],
        dict(activation="swish"),
        ValueError,
        esc(f"activation='swish' is not one of {HIDDEN_LIST}"),
    ),
    (
        "unknown-activation-in-list",
        [3, 4, 4, 2],
        dict(activation=["relu", "gelu"]),
        ValueError,
        esc(f"activation[1]='gelu' is not one of {HIDDEN_LIST}"),
    ),
    ("capitalised", [3, 4, 2], dict(activation="ReLU"), ValueError, esc("activation='ReLU' is not one of")),
    (
        "sklearn-name",
        [3, 4, 2],
        dict(activation="logistic"),
        ValueError,
        esc("activation='logistic' is not one of"),
    ),
    (
        "unknown-output",
        [3, 4, 2],
        dict(output_activation="linear"),
        ValueError,
        esc(f"output_activation='linear' is not one of {ALL_LIST}"),
    ),
    ("unknown-loss", [3, 4, 2], dict(loss="mse"), ValueError, esc(f"loss='mse' is not one of {LOSS_LIST}")),
    (
        "too-few-hidden",
        [3, 4, 4, 2],
        dict(activation=["relu"]),
        ValueError,
        esc("activation must name 2 hidden layer(s) (one per hidden layer), got 1"),
    ),
    (
        "too-many-hidden",
        [3, 4, 2],
        dict(activation=["relu", "tanh"]),
        ValueError,
        esc("activation must name 1 hidden layer(s)"),
    ),
    (
        "list-without-hidden-layers",
        [3, 2],
        dict(activation=["relu"]),
        ValueError,
        esc("activation must name 0 hidden layer(s)"),
    ),
    ("empty-list", [3, 4, 2], dict(activation=[]), ValueError, esc("activation must name 1 hidden layer(s)")),
    (
        "softmax-hidden",
        [3, 4, 2],
        dict(activation="softmax"),
        ValueError,
        esc("activation='softmax': softmax is for the output layer only"),
    ),
    (
        "softmax-hidden-in-list",
        [3, 4, 4, 2],
        dict(activation=["relu", "softmax"]),
        ValueError,
        esc("activation[1]='softmax': softmax is for the output layer only"),
    ),
    *[
        (
            f"cross-entropy-with-{f}",
            [3, 4, 2],
            dict(output_activation=f, loss="cross_entropy"),
            ValueError,
            esc(
                f"loss='cross_entropy' needs outputs that are probabilities: output_activation 'sigmoid' or "
                f"'softmax', got {f!r}"
            ),
        )
        for f in ("tanh", "identity", "relu", "leaky_relu")
    ],
    (
        "softmax-with-squared-error",
        [3, 4, 2],
        dict(output_activation="softmax"),
        ValueError,
        esc("output_activation='softmax' is supported with loss='cross_entropy' only"),
    ),
    (
        "softmax-with-squared-error-named",
        [3, 4, 2],
        dict(output_activation="softmax", loss="squared_error"),
        ValueError,
        esc("output_activation='softmax' is supported with loss='cross_entropy' only"),
    ),
    (
        "int-activation",
        [3, 4, 2],
        dict(activation=1),
        TypeError,
        esc("activation must be a str or a sequence of str"),
    ),
    (
        "none-activation",
        [3, 4, 2],
        dict(activation=None),
        TypeError,
        esc("activation must be a str or a sequence"),
    ),
    ("bytes-activation", [3, 4, 2], dict(activation=b"relu"), TypeError, r"activation(\[0\])? must be a str"),
    (
        "int-in-list",
        [3, 4, 4, 2],
        dict(activation=["relu", 2]),
        TypeError,
        esc(f"activation[1] must be a str, one of {HIDDEN_LIST}; got int 2"),
    ),
    (
        "set-of-activations",
        [3, 4, 4, 2],
        dict(activation={"relu", "tanh"}),
        TypeError,
        esc("(which has no order)"),
    ),
    (
        "none-output",
        [3, 4, 2],
        dict(output_activation=None),
        TypeError,
        esc("output_activation must be a str, one of") + ".*" + esc("got NoneType None"),
    ),
    (
        "list-output",
        [3, 4, 2],
        dict(output_activation=["sigmoid"]),
        TypeError,
        esc("output_activation must be a str"),
    ),
    ("bytes-loss", [3, 4, 2], dict(loss=b"cross_entropy"), TypeError, esc("loss must be a str, one of")),
    (
        "enum-like-loss",
        [3, 4, 2],
        dict(loss=1),
        TypeError,
        esc(f"loss must be a str, one of {LOSS_LIST}; got int 1"),
    ),
]


def _bad_model_params():
    return [pytest.param(*case, id=case[0]) for case in BAD_MODELS]


def _generator_state(gen):
    return repr(gen.bit_generator.state)


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("label, sizes, kwargs, error, match", _bad_model_params())
def test_network_refuses_a_bad_model(label, sizes, kwargs, error, match, backend):
    gen = np.random.default_rng(5)
    state = _generator_state(gen)
    with pytest.raises(error, match=match):
        Network(sizes, seed=gen, backend=backend, **kwargs)
    assert _generator_state(gen) == state, "the refused construction drew from the generator"
    # The same check refuses it whatever else is wrong later (a bad dtype),
    # but a bad layer_sizes is named first.
    with pytest.raises(error, match=match):
        Network(sizes, seed=0, backend=backend, dtype="float16", **kwargs)
    with pytest.raises(TypeError, match="layer_sizes"):
        Network("3-4-2", backend=backend, **kwargs)


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("label, sizes, kwargs, error, match", _bad_model_params())
def test_from_weights_refuses_a_bad_model(label, sizes, kwargs, error, match, backend):
    rng = np.random.default_rng(6)
    Ws = [rng.uniform(-1, 1, (n_out, n_in)) for n_in, n_out in itertools.pairwise(sizes)]
    bs = [rng.uniform(-1, 1, n_out) for n_out in sizes[1:]]
    before = [a.copy() for a in (*Ws, *bs)]
    with pytest.raises(error, match=match):
        Network.from_weights(Ws, bs, backend=backend, **kwargs)
    for a, b in zip((*Ws, *bs), before):
        np.testing.assert_array_equal(a, b)


def test_good_models_are_accepted_in_every_spelling():
    # A tuple, a list, a NumPy array of str and a generator of names are all sequences of str.
    for activation in (
        ("relu", "tanh"),
        ["relu", "tanh"],
        np.array(["relu", "tanh"]),
        (n for n in ("relu", "tanh")),
    ):
        net = Network([3, 4, 4, 2], activation=activation, seed=0)
        assert net.activations == ("relu", "tanh", "sigmoid")
    net = Network([3, 2], activation=[], output_activation="softmax", loss="cross_entropy", seed=0)
    assert net.activations == ("softmax",) and net.loss == "cross_entropy"
    assert Network([3, 2], activation="relu", seed=0).activations == (
        "sigmoid",
    )  # no hidden layer to apply it to
    net = Network([3, 4, 2], seed=0)
    assert net.activations == ("sigmoid", "sigmoid") and net.loss == "squared_error"


def test_the_model_survives_pickle_and_from_weights():
    net = Network(
        [3, 4, 5, 2],
        activation=["leaky_relu", "tanh"],
        output_activation="softmax",
        loss="cross_entropy",
        seed=3,
    )
    twin = pickle.loads(pickle.dumps(net))
    assert twin.activations == net.activations and twin.loss == net.loss
    x, y = np.array([0.1, -0.3, 0.7]), np.array([0.25, 0.75])
    assert twin.cost(x, y) == net.cost(x, y)
    np.testing.assert_array_equal(twin.forward(x), net.forward(x))


# Targets the cross-entropy refuses: (id, model, target row(s) for n_out = 3, match)
CE_SIGMOID = dict(output_activation="sigmoid", loss="cross_entropy")
CE_SOFTMAX = dict(output_activation="softmax", loss="cross_entropy")
BAD_TARGETS = [
    (
        "sigmoid-negative",
        CE_SIGMOID,
        [0.5, -0.25, 1.0],
        "must lie in \\[0, 1\\] for loss='cross_entropy'.*-0.25",
    ),
    ("sigmoid-above-1", CE_SIGMOID, [0.5, 0.25, 1.5], "must lie in \\[0, 1\\].*1.5"),
    ("sigmoid-tiny-negative", CE_SIGMOID, [0.0, -1e-300, 0.0], "must lie in \\[0, 1\\]"),
    ("sigmoid-just-above-1", CE_SIGMOID, [1.0, float(np.nextafter(1.0, 2.0)), 0.0], "must lie in \\[0, 1\\]"),
    ("softmax-negative", CE_SOFTMAX, [1.25, -0.25, 0.0], "must lie in \\[0, 1\\]"),
    ("softmax-sum-0.9", CE_SOFTMAX, [0.5, 0.2, 0.2], "must have rows summing to 1 for a softmax output"),
    ("softmax-sum-2", CE_SOFTMAX, [1.0, 1.0, 0.0], "must have rows summing to 1.*sums to 2.0"),
    ("softmax-all-zero", CE_SOFTMAX, [0.0, 0.0, 0.0], "must have rows summing to 1.*sums to 0.0"),
    ("softmax-sum-off-by-1e-3", CE_SOFTMAX, [0.5, 0.25, 0.251], "must have rows summing to 1"),
]


def _bad_target_calls(net, bad, dtype):
    """(what, call, expected name in the message) for every method that takes
    targets, the bad row given once as a batch (its second row) and once alone."""
    rng = np.random.default_rng(8)
    X = rng.uniform(-1, 1, (3, 4)).astype(dtype)
    good = np.array([0.2, 0.3, 0.5])
    Y = np.array([good, bad, good], dtype=dtype)
    y = np.array(bad, dtype=dtype)
    return [
        ("cost(X, Y)", lambda as_list: net.cost(*(X.tolist(), Y.tolist()) if as_list else (X, Y)), "y"),
        ("cost(x, y)", lambda as_list: net.cost(*(X[0].tolist(), y.tolist()) if as_list else (X[0], y)), "y"),
        (
            "gradients",
            lambda as_list: net.gradients(*(X[0].tolist(), y.tolist()) if as_list else (X[0], y)),
            "y",
        ),
        ("step", lambda as_list: net.step(*(X[0].tolist(), y.tolist()) if as_list else (X[0], y), 0.5), "y"),
        ("train", lambda as_list: net.train(*(X.tolist(), Y.tolist()) if as_list else (X, Y), epochs=2), "Y"),
        (
            "train batch",
            lambda as_list: net.train(
                *(X.tolist(), Y.tolist()) if as_list else (X, Y), epochs=2, batch_size=2, shuffle=True, seed=0
            ),
            "Y",
        ),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("label, model, bad, match", BAD_TARGETS, ids=[c[0] for c in BAD_TARGETS])
def test_cross_entropy_refuses_bad_targets(label, model, bad, match, dtype):
    if label == "sigmoid-tiny-negative" and dtype == np.float32:
        bad = [0.0, -1e-40, 0.0]  # a float32 subnormal: still below 0
    if label == "sigmoid-just-above-1" and dtype == np.float32:
        bad = [1.0, float(np.nextafter(np.float32(1), np.float32(2))), 0.0]
    messages = {}
    for backend in ("cython", "python"):
        net = Network([4, 5, 3], seed=1, dtype=dtype, backend=backend, **model)
        twin = Network([4, 5, 3], seed=1, dtype=dtype, backend=backend, **model)
        before = flat(net)
        for what, call, name in _bad_target_calls(net, bad, dtype):
            for as_list in (
                False,
                True,
            ):  # the compiled door (C-contiguous arrays of the dtype), the Python path
                with pytest.raises(ValueError, match=f"^{name} " + match) as info:
                    call(as_list)
                messages.setdefault(what, set()).add(str(info.value))
                np.testing.assert_array_equal(
                    flat(net), before, err_msg=f"{backend} {what} changed the weights"
                )
        # Still working, and as an untouched twin.
        x, y = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.2, 0.3, 0.5])
        assert net.step(x, y, 0.5) == twin.step(x, y, 0.5)
        np.testing.assert_array_equal(flat(net), flat(twin))
    for what, texts in messages.items():
        assert len(texts) == 1, f"{what}: the door, the Python path and the reference differ: {texts}"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_softmax_target_sums_at_the_tolerance(dtype):
    # Rows summing to 1 up to the documented tolerance (2^-26 in float64, 2^-12
    # in float32) are accepted, those beyond refused, identically by the door
    # (arrays), the Python path (lists) and the reference.
    tol = 2.0**-26 if dtype == np.float64 else 2.0**-12
    accepted, refused = [], []
    for off in (0.0, 0.25 * tol, 0.9 * tol, -0.9 * tol, 1.5 * tol, -1.5 * tol, 4 * tol, 1e-3):
        row = np.array([0.5, 0.25, 0.25 + off], dtype=dtype)
        total = float(np.cumsum(row, dtype=np.float64)[-1])
        (accepted if abs(total - 1) <= tol else refused).append(row)
    assert len(accepted) >= 3 and len(refused) >= 3
    # Decimal rows that do not sum to exactly 1 in binary are fine.
    accepted += [np.array([0.1, 0.2, 0.7], dtype), np.array([1 / 3, 1 / 3, 1 / 3], dtype)]
    x = np.array([0.1, 0.2, 0.3, 0.4], dtype)
    for backend in ("cython", "python"):
        net = Network([4, 5, 3], seed=1, dtype=dtype, backend=backend, **CE_SOFTMAX)
        for row in accepted:
            J = net.cost(x, row)
            assert J == net.cost(x.tolist(), row.tolist())
            assert net.cost(np.tile(x, (2, 1)), np.tile(row, (2, 1))) == pytest.approx(J, rel=1e-6)
        for row in refused:
            for args in ((x, row), (x.tolist(), row.tolist())):
                with pytest.raises(ValueError, match="rows summing to 1"):
                    net.cost(*args)


def test_targets_are_free_under_the_squared_error():
    # Only the cross-entropy constrains targets: squared-error targets may lie
    # anywhere (regression with identity outputs), and sigmoid cross-entropy
    # rows need not sum to 1.
    x = np.array([0.1, 0.2, 0.3])
    for out in HIDDEN:
        net = Network([3, 4, 2], output_activation=out, seed=0)
        assert math.isfinite(net.cost(x, np.array([-5.0, 7.5])))
        net.train(np.array([x]), np.array([[-5.0, 7.5]]), lr=1e-3)
    net = Network([3, 4, 2], **CE_SIGMOID, seed=0)
    assert math.isfinite(net.cost(x, np.array([1.0, 1.0])))
    assert math.isfinite(net.cost(x, np.array([0.0, 0.0])))


# --------------------------------------------------------------------------
# 5. Initial weights: the note's default unchanged, He and Glorot otherwise
# --------------------------------------------------------------------------


def expected_init(sizes, names, seed, dtype):
    """The draws, in the order of the note's initialisation: for each layer,
    W (row by row) then b, from U(-r, r) of that layer's activation."""
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for n_in, n_out, name in zip(sizes[:-1], sizes[1:], names):
        if name == "sigmoid":
            r = math.sqrt(2 / (n_in + n_out))
        elif name in ("relu", "leaky_relu"):
            r = math.sqrt(6 / n_in)
        else:
            r = math.sqrt(6 / (n_in + n_out))
        Ws.append(rng.uniform(-r, r, size=(n_out, n_in)).astype(dtype))
        bs.append(rng.uniform(-r, r, size=n_out).astype(dtype))
    return Ws, bs


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sizes", [[2, 2, 2], [3, 1], [5, 8, 3, 4], [784, 30, 10]])
def test_default_initial_weights_are_unchanged(sizes, dtype):
    for seed in (0, 1, 12345):
        for backend in ("cython", "python"):
            for kwargs in ({}, dict(activation="sigmoid", output_activation="sigmoid", loss="squared_error")):
                net = Network(sizes, seed=seed, dtype=dtype, backend=backend, **kwargs)
                Ws, bs = expected_init(sizes, ("sigmoid",) * (len(sizes) - 1), seed, dtype)
                for W, b, W_e, b_e in zip(net.weights, net.biases, Ws, bs):
                    np.testing.assert_array_equal(W, W_e, strict=True)
                    np.testing.assert_array_equal(b, b_e, strict=True)
    # The note's bound on [2, 2, 2]: r = sqrt(2 / 4).
    W = Network([2, 2, 2], seed=0).weights[0]
    assert np.abs(W).max() <= math.sqrt(0.5)


@pytest.mark.parametrize(
    "hidden, out, loss",
    [
        ("relu", "identity", "squared_error"),
        ("tanh", "tanh", "squared_error"),
        ("leaky_relu", "softmax", "cross_entropy"),
        ("identity", "sigmoid", "cross_entropy"),
        (["relu", "tanh", "sigmoid"], "leaky_relu", "squared_error"),
        (["sigmoid", "identity", "leaky_relu"], "relu", "squared_error"),
    ],
)
def test_initial_weights_suit_each_activation(hidden, out, loss):
    sizes = [50, 40, 30, 20, 10] if not isinstance(hidden, str) else [50, 40, 10]
    names = (*hidden_names(hidden, sizes), out)
    for dtype in DTYPES:
        net = Network(sizes, activation=hidden, output_activation=out, loss=loss, seed=7, dtype=dtype)
        Ws, bs = expected_init(sizes, names, 7, dtype)
        for l, (W, b, W_e, b_e, name) in enumerate(zip(net.weights, net.biases, Ws, bs, names)):
            np.testing.assert_array_equal(W, W_e, err_msg=f"layer {l + 1} ({name})", strict=True)
            np.testing.assert_array_equal(b, b_e, err_msg=f"layer {l + 1} ({name})", strict=True)
            n_out, n_in = W.shape
            r = {
                "relu": math.sqrt(6 / n_in),
                "leaky_relu": math.sqrt(6 / n_in),
                "sigmoid": math.sqrt(2 / (n_in + n_out)),
            }.get(name, math.sqrt(6 / (n_in + n_out)))
            # Within the bound, and filling it (n_in * n_out >= 100 draws).
            assert np.abs(W).max() <= r and np.abs(W).max() > 0.9 * r, (name, np.abs(W).max(), r)
            assert np.abs(b).max() <= r
    # The same seed and sizes give the same draws under another model: only
    # the bound differs (U(-r, r) = r * U(-1, 1) up to rounding).
    sigmoid_net = Network(sizes, seed=7)
    for W, W_s, name in zip(
        Network(sizes, activation=hidden, output_activation=out, loss=loss, seed=7).weights,
        sigmoid_net.weights,
        names,
    ):
        n_out, n_in = W.shape
        ratio = {
            "relu": math.sqrt(6 / n_in),
            "leaky_relu": math.sqrt(6 / n_in),
            "sigmoid": math.sqrt(2 / (n_in + n_out)),
        }.get(name, math.sqrt(6 / (n_in + n_out))) / math.sqrt(2 / (n_in + n_out))
        np.testing.assert_allclose(W, W_s * ratio, rtol=1e-12, atol=1e-14)
