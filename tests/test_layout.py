"""Data and parameters in every memory layout and dtype, on both backends.

The input policy (the docstrings of ``fastbp/_validation.py`` and
``fastbp/network.py``) says what any form of an array means: its values,
cast to the network's dtype in a C-contiguous copy where needed.  So:

* data in an odd form (Fortran order, strides, negative strides, read-only,
  memory maps, unaligned buffers, zero strides, masked arrays with nothing
  masked, lists, tuples, memoryviews, other byte orders and real dtypes, and
  mixes of these in one call, with ``batch_size`` > 1 too) gives the result
  of the clean C-contiguous float64 array holding the same values, bit for
  bit, and leaves the caller's arrays as they were; so do the weights and
  biases given to ``from_weights``;
* bad data in any of those forms is rejected as in C order: a non-finite
  value is reported at its *logical* index, a wrong shape or dtype by name,
  masked values are refused rather than used; the network is left as it was
  and keeps working.

The odd forms themselves are built by helpers of ``tests/support.py``; the
corpus of bad input in C order is in ``tests/test_validation.py`` and
``tests/test_hostile_input.py``.
"""

import array

import numpy as np
import pytest
from support import (
    assert_params_equal,
    assert_same_net,
    assert_unchanged_and_working,
    clean,
    esc,
    fixed_layers,
    frozen_data,
    make_net,
    memmap_of,
    negative_stride,
    params_of,
    read_only,
    result_arrays,
    strided,
    unaligned,
    with_value,
)

from fastbp import Network

SIZES = [3, 4, 2]
N_IN, N_OUT = SIZES[0], SIZES[-1]

X, Y = frozen_data(seed=12345, sizes=SIZES)
x, y = X[0], Y[0]

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------------------
# Accepted by a documented copy or cast: the same result as clean float64 data
# ---------------------------------------------------------------------------

# id -> (odd form of a clean float64 array, the clean float64 array it stands for).
# Data is chosen so that each cast is exact and the clean equivalent is well defined.
VARIANTS = {
    "fortran": lambda a, tmp: (np.asfortranarray(a), a),
    "strided": lambda a, tmp: (strided(a), a),
    "negative-stride": lambda a, tmp: (negative_stride(a), a),
    "read-only": lambda a, tmp: (read_only(a), a),
    "memmap": lambda a, tmp: (memmap_of(a, tmp), a),
    "list": lambda a, tmp: (a.tolist(), a),
    "tuple": lambda a, tmp: (tuple(map(tuple, a)) if a.ndim == 2 else tuple(a), a),
    "list-of-numpy-scalars": lambda a, tmp: (list(a), a),
    "big-endian": lambda a, tmp: (a.astype(a.dtype.newbyteorder(">" if np.little_endian else "<")), a),
    "float32": lambda a, tmp: (a.astype(np.float32), a.astype(np.float32).astype(np.float64)),
    "float16": lambda a, tmp: (a.astype(np.float16), a.astype(np.float16).astype(np.float64)),
    "int64": lambda a, tmp: (np.rint(4 * a).astype(np.int64), np.rint(4 * a)),
    "int8-list": lambda a, tmp: (np.rint(4 * a).astype(np.int8).tolist(), np.rint(4 * a)),
    "uint8": lambda a, tmp: (np.rint(4 * np.abs(a)).astype(np.uint8), np.rint(4 * np.abs(a))),
    "bool": lambda a, tmp: (a > 0.5, (a > 0.5).astype(np.float64)),
    "bool-list": lambda a, tmp: ((a > 0.5).tolist(), (a > 0.5).astype(np.float64)),
    "float64-1e39-in-float64-net": lambda a, tmp: (with_value(a, (0,) * a.ndim, 1e39),) * 2,
}

OPERATIONS = {
    "forward-batch": (lambda n, X, Y: n.forward(X), 2),
    "forward-one": (lambda n, x, y: n.forward(x), 1),
    "cost-batch": (lambda n, X, Y: n.cost(X, Y), 2),
    "cost-one": (lambda n, x, y: n.cost(x, y), 1),
    "gradients": (lambda n, x, y: n.gradients(x, y), 1),
    "step": (lambda n, x, y: n.step(x, y, 0.5), 1),
    "train": (lambda n, X, Y: n.train(X, Y, epochs=2, lr=0.5, shuffle=True, seed=3), 2),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_accepted_data_gives_the_clean_result(backend, variant, operation, tmp_path):
    call, ndim = OPERATIONS[operation]
    odd_x, clean_x = VARIANTS[variant](np.array(X if ndim == 2 else x), tmp_path)
    odd_y, clean_y = VARIANTS[variant](np.array(Y if ndim == 2 else y), tmp_path)
    kept = [np.array(a, copy=True) for a in (odd_x, odd_y)]
    clean_x = np.ascontiguousarray(clean_x, dtype=np.float64)
    clean_y = np.ascontiguousarray(clean_y, dtype=np.float64)

    net, twin = make_net(backend), make_net(backend)
    got = call(net, odd_x, odd_y)
    expected = call(twin, clean_x, clean_y)

    for a, b in zip(result_arrays(got), result_arrays(expected), strict=True):
        np.testing.assert_array_equal(a, b, strict=True)
    assert_same_net(net, twin)  # step and train changed both networks alike
    for before, after in zip(kept, (odd_x, odd_y)):  # the caller's data was not written
        np.testing.assert_array_equal(np.asarray(after), before, strict=True)


def test_float64_data_is_rounded_for_a_float32_network(backend):
    net = make_net(backend, "float32")
    rounded = X.astype(np.float32)
    np.testing.assert_array_equal(net.forward(X), net.forward(rounded), strict=True)
    assert net.cost(X, Y) == net.cost(rounded, Y.astype(np.float32))


def test_relaxed_strides_single_row(backend):
    # NumPy calls a (1, n) array C-contiguous whatever its row stride: it is
    # passed through without a copy and must still be read correctly.
    big = np.zeros((4, N_IN))
    big[0] = x
    one_row = big[::4]
    assert one_row.shape == (1, N_IN) and one_row.flags.c_contiguous and one_row.strides[0] != 8 * N_IN
    net = make_net(backend)
    np.testing.assert_array_equal(net.forward(one_row), net.forward(x.reshape(1, -1)), strict=True)
    assert net.cost(one_row, Y[:1]) == net.cost(x, y)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v not in ("float64-1e39-in-float64-net",)])
def test_from_weights_accepts_any_layout(backend, variant, tmp_path):
    Ws, bs = fixed_layers()
    odd = [VARIANTS[variant](a, tmp_path) for a in (*Ws, *bs)]
    given = [o for o, _ in odd]
    kept = [np.array(a, copy=True) for a in given]
    clean = [np.ascontiguousarray(c, dtype=np.float64) for _, c in odd]
    net = Network.from_weights(given[:2], given[2:], dtype="float64", backend=backend)
    twin = Network.from_weights(clean[:2], clean[2:], backend=backend)
    assert_same_net(net, twin)
    np.testing.assert_array_equal(net.forward(X), twin.forward(X), strict=True)
    for before, after in zip(kept, given):
        np.testing.assert_array_equal(np.asarray(after), before, strict=True)


# ---------------------------------------------------------------------------
# More forms: rejected with the logical index, or accepted exactly
# ---------------------------------------------------------------------------


# id -> odd form of a float64 array with the same values (exact casts only).
LAYOUTS = {
    "fortran": lambda a, tmp: np.asfortranarray(a),
    "strided": lambda a, tmp: strided(a),
    "negative-stride": lambda a, tmp: negative_stride(a),
    "read-only": lambda a, tmp: read_only(a),
    "memmap": lambda a, tmp: memmap_of(a, tmp),
    "unaligned": lambda a, tmp: unaligned(a),
    "masked-nothing-masked": lambda a, tmp: np.ma.array(a, mask=np.zeros(a.shape, bool)),
    "list": lambda a, tmp: a.tolist(),
    "big-endian-fortran": lambda a, tmp: np.asfortranarray(a.astype(a.dtype.newbyteorder(">"))),
    "float32-strided": lambda a, tmp: strided(a.astype(np.float32)),
    "float16-negative-stride": lambda a, tmp: negative_stride(a.astype(np.float16)),
}


# (id, float64 array with bad values, how to call with the odd form, argument name)
def _bad_value_calls():
    return [
        ("forward-X-nan", with_value(X, (3, 1), NAN), lambda n, v: n.forward(v), "x"),
        ("forward-x-inf", with_value(x, 2, INF), lambda n, v: n.forward(v), "x"),
        ("cost-X-neg-inf", with_value(X, (4, 0), -INF), lambda n, v: n.cost(v, Y), "x"),
        ("cost-Y-nan", with_value(Y, (1, 1), NAN), lambda n, v: n.cost(X, v), "y"),
        ("gradients-y-nan", with_value(y, 1, NAN), lambda n, v: n.gradients(x, v), "y"),
        ("step-x-inf", with_value(x, 0, INF), lambda n, v: n.step(v, y, 0.5), "x"),
        (
            "train-X-nan-twice",
            with_value(with_value(X, (2, 2), NAN), (4, 1), INF),
            lambda n, v: n.train(v, Y),
            "X",
        ),
        ("train-Y-inf", with_value(Y, (0, 1), INF), lambda n, v: n.train(X, v, batch_size=2), "Y"),
    ]


BAD_VALUE_CALLS = {case[0]: case[1:] for case in _bad_value_calls()}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", list(BAD_VALUE_CALLS))
def test_non_finite_data_in_any_layout_is_reported_at_its_logical_index(backend, case, layout, tmp_path):
    bad, call, name = BAD_VALUE_CALLS[case]
    odd = LAYOUTS[layout](bad, tmp_path)
    kept = np.array(np.asarray(odd), copy=True)
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(bad))[0])
    value = bad[first]
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    with pytest.raises(ValueError, match=esc(f"{name} must be finite, found {value} at index {first}")):
        call(net, odd)
    np.testing.assert_array_equal(np.asarray(odd), kept, strict=True)  # the caller's data was not written
    assert_unchanged_and_working(net, twin, before)


@pytest.mark.parametrize("layout", [name for name in LAYOUTS if not name.startswith(("float", "masked"))])
def test_wrong_shape_or_dtype_in_any_layout(backend, layout, tmp_path):
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    too_wide = np.linspace(-1, 1, 5 * (N_IN + 1)).reshape(5, N_IN + 1)
    with pytest.raises(ValueError, match=esc(f"X must have shape (n, {N_IN}), got (5, {N_IN + 1})")):
        net.train(LAYOUTS[layout](too_wide, tmp_path), Y)
    transposed = np.ascontiguousarray(X.T)
    with pytest.raises(ValueError, match=esc(f"x must have shape ({N_IN},) or (n, {N_IN}), got ({N_IN}, 5)")):
        net.forward(LAYOUTS[layout](transposed, tmp_path))
    if layout != "list":  # a list of complex numbers is covered by test_validation.py
        with pytest.raises(TypeError, match=esc("Y must hold real numbers") + ".*complex"):
            net.train(X, LAYOUTS[layout](Y + 0.5j, tmp_path))
    assert_unchanged_and_working(net, twin, before)


@pytest.mark.parametrize(
    "masked, call, match",
    [
        pytest.param(
            np.ma.masked_greater(X, 0.5),
            lambda n, v: n.forward(v),
            "x has masked values, the first at index",
            id="forward",
        ),
        pytest.param(
            np.ma.array(Y, mask=np.eye(5, 2, k=-3, dtype=bool)),
            lambda n, v: n.train(X, v),
            esc("Y has masked values, the first at index (3, 0): fill them"),
            id="train-Y",
        ),
        pytest.param(
            np.ma.masked_invalid(with_value(x, 1, NAN)),
            lambda n, v: n.step(v, y, 0.5),
            esc("x has masked values, the first at index (1,)"),
            id="step-masked-nan",
        ),
    ],
)
def test_masked_values_are_refused_not_silently_used(backend, masked, call, match):
    # NumPy would hand over the values under the mask, which the caller left out.
    assert np.ma.getmaskarray(masked).any()
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    with pytest.raises(ValueError, match=match):
        call(net, masked)
    assert_unchanged_and_working(net, twin, before)


def test_masked_weights_are_refused(backend):
    net = make_net(backend)
    Ws, bs = params_of(net)[:2], params_of(net)[2:]
    Ws[1] = np.ma.masked_less(Ws[1], 0.0)
    with pytest.raises(ValueError, match=esc("weights[1] has masked values, the first at index")):
        Network.from_weights(Ws, bs, backend=backend)


def _zero_stride_rows(a):
    return np.broadcast_to(a[0], a.shape)


# Accepted forms beyond VARIANTS: id -> (X form, Y form).  Each
# must give the result of the documented cast of the values it holds (every
# cast here is exact), passed as a clean C-contiguous float64 array.
ACCEPTED = {
    **{
        layout: (lambda tmp, layout=layout: (LAYOUTS[layout](X, tmp), LAYOUTS[layout](Y, tmp)))
        for layout in (
            "unaligned",
            "masked-nothing-masked",
            "big-endian-fortran",
            "float32-strided",
            "float16-negative-stride",
        )
    },
    "zero-stride-rows": lambda tmp: (_zero_stride_rows(X), _zero_stride_rows(Y)),
    "memoryview": lambda tmp: (memoryview(np.array(X)), memoryview(np.array(Y))),
    "mixed-fortran-float32-with-negative-stride-int": lambda tmp: (
        np.asfortranarray(X.astype(np.float32)),
        negative_stride(np.rint(4 * Y).astype(np.int16)),
    ),
    "mixed-memmap-with-unaligned-int32": lambda tmp: (
        memmap_of(X, tmp),
        unaligned(np.rint(4 * Y).astype(np.int32)),
    ),
    "mixed-list-of-rows-as-arrays": lambda tmp: (list(np.asfortranarray(X)), [tuple(r) for r in Y]),
}


def test_the_unaligned_forms_are_unaligned():
    for a in (X, np.rint(4 * Y).astype(np.int32), X.astype(np.float32)):
        odd = unaligned(a)
        assert not odd.flags.aligned and odd.flags.c_contiguous
        np.testing.assert_array_equal(odd, a, strict=True)


BATCH_OPERATIONS = {
    "forward-batch": lambda n, X_, Y_: n.forward(X_),
    "cost-batch": lambda n, X_, Y_: n.cost(X_, Y_),
    "train-online": lambda n, X_, Y_: n.train(X_, Y_, epochs=2, lr=0.5, shuffle=True, seed=3),
    "train-batches": lambda n, X_, Y_: n.train(X_, Y_, epochs=2, lr=0.5, batch_size=2, shuffle=True, seed=3),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("operation", list(BATCH_OPERATIONS))
@pytest.mark.parametrize("form", list(ACCEPTED))
def test_accepted_forms_give_the_clean_result_bit_for_bit(backend, form, operation, dtype, tmp_path):
    odd_X, odd_Y = ACCEPTED[form](tmp_path)
    kept = [np.array(np.asarray(a), copy=True) for a in (odd_X, odd_Y)]
    net, twin = make_net(backend, dtype), make_net(backend, dtype)
    got = BATCH_OPERATIONS[operation](net, odd_X, odd_Y)
    expected = BATCH_OPERATIONS[operation](twin, clean(odd_X, np.float64), clean(odd_Y, np.float64))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected), strict=True)
    assert_params_equal(params_of(net), params_of(twin))
    for before, after in zip(kept, (odd_X, odd_Y)):
        np.testing.assert_array_equal(np.asarray(after), before, strict=True)


@pytest.mark.parametrize("form", ["unaligned", "zero-stride", "array.array", "masked-nothing-masked"])
def test_accepted_single_samples_give_the_clean_result(backend, form):
    odd = {
        "unaligned": lambda a: unaligned(a),
        "zero-stride": lambda a: np.broadcast_to(a[:1], a.shape),
        "array.array": lambda a: array.array("d", a),
        "masked-nothing-masked": lambda a: np.ma.array(a),
    }[form]
    plain = {"zero-stride": lambda a: np.repeat(a[:1], len(a))}.get(form, lambda a: a)
    net, twin = make_net(backend), make_net(backend)
    for call in (
        lambda n, a, b: n.forward(a),
        lambda n, a, b: n.cost(a, b),
        lambda n, a, b: n.gradients(a, b),
        lambda n, a, b: n.step(a, b, 0.5),
    ):
        got = call(net, odd(np.array(x)), odd(np.array(y)))
        expected = call(twin, plain(np.array(x)), plain(np.array(y)))
        for a, b in zip(result_arrays(got), result_arrays(expected), strict=True):
            np.testing.assert_array_equal(a, b, strict=True)
    assert_params_equal(params_of(net), params_of(twin))


@pytest.mark.parametrize(
    "layout", ["unaligned", "fortran", "negative-stride", "memmap", "masked-nothing-masked"]
)
def test_from_weights_accepts_odd_layouts(backend, layout, tmp_path):
    source = make_net(backend)
    given = [LAYOUTS[layout](a, tmp_path) for a in params_of(source)]
    net = Network.from_weights(given[:2], given[2:], backend=backend)
    assert_params_equal(params_of(net), params_of(source))
    np.testing.assert_array_equal(net.forward(X), source.forward(X), strict=True)
