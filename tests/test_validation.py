"""Bad input at the public boundary, on both backends.

Every case either raises ``ValueError``/``TypeError`` with a message naming the
argument (and the offending shape or value where there is one), leaving the
network exactly as it was, or is accepted by the documented copy/cast and gives
the same result as a clean C-contiguous float64 input (the other layouts and
dtypes of data: ``tests/test_layout.py``; a bad backend name:
``tests/test_backends.py``).  The policy is the one in the docstrings of
``fastbp/_validation.py`` and ``fastbp/network.py``.
"""

import importlib
from fractions import Fraction

import numpy as np
import pytest
from support import (
    assert_same_net,
    assert_same_state,
    esc,
    fixed_layers,
    frozen_data,
    make_net,
    snapshot,
    with_value,
)

from fastbp import Network

SIZES = [3, 4, 2]
N_IN, N_OUT = SIZES[0], SIZES[-1]

X, Y = frozen_data(seed=12345, sizes=SIZES)
x, y = X[0], Y[0]


# ---------------------------------------------------------------------------
# Rejected calls on an existing network: (id, network dtype, call, exception, match)
# ---------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

METHOD_CASES = [
    # --- wrong ndim and shape -------------------------------------------
    (
        "forward-x-width",
        "float64",
        lambda n: n.forward(np.zeros(2)),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got (2,)"),
    ),
    (
        "forward-X-width",
        "float64",
        lambda n: n.forward(np.zeros((5, 4))),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got (5, 4)"),
    ),
    (
        "forward-x-3d",
        "float64",
        lambda n: n.forward(np.zeros((1, 5, 3))),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got (1, 5, 3)"),
    ),
    (
        "forward-x-column",
        "float64",
        lambda n: n.forward(np.zeros((3, 1))),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got (3, 1)"),
    ),
    (
        "forward-x-python-scalar",
        "float64",
        lambda n: n.forward(0.5),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got ()"),
    ),
    (
        "forward-x-0d-array",
        "float64",
        lambda n: n.forward(np.array(0.5)),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got ()"),
    ),
    (
        "forward-x-empty-list",
        "float64",
        lambda n: n.forward([]),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got (0,)"),
    ),
    (
        "forward-x-zero-rows",
        "float64",
        lambda n: n.forward(np.zeros((0, 3))),
        ValueError,
        esc("x must hold at least one row, got shape (0, 3)"),
    ),
    (
        "forward-x-zero-columns",
        "float64",
        lambda n: n.forward([[]]),
        ValueError,
        esc("x must have shape (3,) or (n, 3), got (1, 0)"),
    ),
    (
        "forward-x-ragged",
        "float64",
        lambda n: n.forward([[1, 2, 3], [1, 2]]),
        ValueError,
        "x could not be read as a numeric array",
    ),
    (
        "cost-y-2d-for-1d-x",
        "float64",
        lambda n: n.cost(x, Y[:1]),
        ValueError,
        esc("y must have shape (2,), got (1, 2)"),
    ),
    (
        "cost-y-1d-for-2d-x",
        "float64",
        lambda n: n.cost(X, y),
        ValueError,
        esc("y must have shape (n, 2), got (2,)"),
    ),
    (
        "cost-y-width",
        "float64",
        lambda n: n.cost(x, np.zeros(3)),
        ValueError,
        esc("y must have shape (2,), got (3,)"),
    ),
    (
        "cost-rows-differ",
        "float64",
        lambda n: n.cost(X, Y[:4]),
        ValueError,
        esc("x and y must have the same number of rows, got x.shape=(5, 3) and y.shape=(4, 2)"),
    ),
    (
        "cost-zero-rows",
        "float64",
        lambda n: n.cost(X[:0], Y[:0]),
        ValueError,
        esc("x must hold at least one row, got shape (0, 3)"),
    ),
    (
        "cost-y-zero-rows",
        "float64",
        lambda n: n.cost(X, Y[:0]),
        ValueError,
        esc("y must hold at least one row, got shape (0, 2)"),
    ),
    (
        "gradients-x-2d",
        "float64",
        lambda n: n.gradients(X[:1], y),
        ValueError,
        esc("x must have shape (3,), got (1, 3)"),
    ),
    (
        "gradients-y-width",
        "float64",
        lambda n: n.gradients(x, np.zeros(1)),
        ValueError,
        esc("y must have shape (2,), got (1,)"),
    ),
    (
        "gradients-y-scalar",
        "float64",
        lambda n: n.gradients(x, 0.5),
        ValueError,
        esc("y must have shape (2,), got ()"),
    ),
    (
        "step-x-2d",
        "float64",
        lambda n: n.step(X[:1], y, 0.5),
        ValueError,
        esc("x must have shape (3,), got (1, 3)"),
    ),
    (
        "step-x-width",
        "float64",
        lambda n: n.step(np.zeros(4), y, 0.5),
        ValueError,
        esc("x must have shape (3,), got (4,)"),
    ),
    (
        "step-y-2d",
        "float64",
        lambda n: n.step(x, Y[:1], 0.5),
        ValueError,
        esc("y must have shape (2,), got (1, 2)"),
    ),
    (
        "train-X-1d",
        "float64",
        lambda n: n.train(x, Y[:1]),
        ValueError,
        esc("X must have shape (n, 3), got (3,)"),
    ),
    (
        "train-Y-1d",
        "float64",
        lambda n: n.train(X[:1], y),
        ValueError,
        esc("Y must have shape (n, 2), got (2,)"),
    ),
    (
        "train-X-transposed",
        "float64",
        lambda n: n.train(X[:2].T, Y[:2]),
        ValueError,
        esc("X must have shape (n, 3), got (3, 2)"),
    ),
    (
        "train-Y-width",
        "float64",
        lambda n: n.train(X, np.zeros((5, 3))),
        ValueError,
        esc("Y must have shape (n, 2), got (5, 3)"),
    ),
    (
        "train-rows-differ",
        "float64",
        lambda n: n.train(X, Y[:4]),
        ValueError,
        esc("X and Y must have the same number of rows, got X.shape=(5, 3) and Y.shape=(4, 2)"),
    ),
    (
        "train-zero-rows",
        "float64",
        lambda n: n.train(X[:0], Y[:0]),
        ValueError,
        esc("X must hold at least one row, got shape (0, 3)"),
    ),
    (
        "train-Y-zero-rows",
        "float64",
        lambda n: n.train(X, Y[:0]),
        ValueError,
        esc("Y must hold at least one row, got shape (0, 2)"),
    ),
    # --- NaN and inf in data --------------------------------------------
    (
        "forward-X-nan",
        "float64",
        lambda n: n.forward(with_value(X, (1, 2), NAN)),
        ValueError,
        esc("x must be finite, found nan at index (1, 2)"),
    ),
    (
        "forward-x-inf",
        "float64",
        lambda n: n.forward(with_value(x, 0, INF)),
        ValueError,
        esc("x must be finite, found inf at index (0,)"),
    ),
    (
        "forward-x-neg-inf",
        "float64",
        lambda n: n.forward(with_value(x, 2, -INF)),
        ValueError,
        esc("x must be finite, found -inf at index (2,)"),
    ),
    (
        "forward-x-nan-in-list",
        "float64",
        lambda n: n.forward([0.0, NAN, 1.0]),
        ValueError,
        esc("x must be finite, found nan at index (1,)"),
    ),
    (
        "cost-y-nan",
        "float64",
        lambda n: n.cost(X, with_value(Y, (4, 1), NAN)),
        ValueError,
        esc("y must be finite, found nan at index (4, 1)"),
    ),
    (
        "cost-x-inf",
        "float64",
        lambda n: n.cost(with_value(x, 1, INF), y),
        ValueError,
        esc("x must be finite, found inf at index (1,)"),
    ),
    (
        "gradients-y-neg-inf",
        "float64",
        lambda n: n.gradients(x, with_value(y, 1, -INF)),
        ValueError,
        esc("y must be finite, found -inf at index (1,)"),
    ),
    (
        "gradients-x-nan",
        "float64",
        lambda n: n.gradients(with_value(x, 0, NAN), y),
        ValueError,
        esc("x must be finite, found nan at index (0,)"),
    ),
    (
        "step-x-nan",
        "float64",
        lambda n: n.step(with_value(x, 1, NAN), y, 0.5),
        ValueError,
        esc("x must be finite, found nan at index (1,)"),
    ),
    (
        "step-y-inf",
        "float64",
        lambda n: n.step(x, with_value(y, 0, INF), 0.5),
        ValueError,
        esc("y must be finite, found inf at index (0,)"),
    ),
    (
        "train-X-nan",
        "float64",
        lambda n: n.train(with_value(X, (3, 0), NAN), Y),
        ValueError,
        esc("X must be finite, found nan at index (3, 0)"),
    ),
    (
        "train-Y-inf",
        "float64",
        lambda n: n.train(X, with_value(Y, (2, 1), INF)),
        ValueError,
        esc("Y must be finite, found inf at index (2, 1)"),
    ),
    (
        "train-Y-neg-inf",
        "float64",
        lambda n: n.train(X, with_value(Y, (0, 0), -INF)),
        ValueError,
        esc("Y must be finite, found -inf at index (0, 0)"),
    ),
    # float64 data that overflows when cast to a float32 network
    (
        "f32-forward-x-1e39",
        "float32",
        lambda n: n.forward(with_value(x, 0, 1e39)),
        ValueError,
        esc("x must be finite, found inf at index (0,) (after casting to float32)"),
    ),
    (
        "f32-forward-X-list-neg-1e39",
        "float32",
        lambda n: n.forward([[0.0, -1e39, 0.0]]),
        ValueError,
        esc("x must be finite, found -inf at index (0, 1) (after casting to float32)"),
    ),
    (
        "f32-cost-y-1e39",
        "float32",
        lambda n: n.cost(x, with_value(y, 1, 1e39)),
        ValueError,
        esc("y must be finite, found inf at index (1,) (after casting to float32)"),
    ),
    (
        "f32-step-y-1e300",
        "float32",
        lambda n: n.step(x, with_value(y, 0, 1e300), 0.5),
        ValueError,
        esc("y must be finite, found inf at index (0,) (after casting to float32)"),
    ),
    (
        "f32-train-X-1e39",
        "float32",
        lambda n: n.train(with_value(X, (2, 2), 1e39), Y),
        ValueError,
        esc("X must be finite, found inf at index (2, 2) (after casting to float32)"),
    ),
    (
        "f32-gradients-x-nan",
        "float32",
        lambda n: n.gradients(np.array([0, NAN, 0], np.float32), y),
        ValueError,
        esc("x must be finite, found nan at index (1,)"),
    ),
    # --- dtypes that are not real numbers -------------------------------
    (
        "forward-x-complex",
        "float64",
        lambda n: n.forward(x.astype(complex)),
        TypeError,
        esc("x must hold real numbers (bool, integer or floating), got dtype complex128 (complex)"),
    ),
    (
        "forward-x-complex-list",
        "float64",
        lambda n: n.forward([1, 2j, 3]),
        TypeError,
        esc("x must hold real numbers") + ".*complex",
    ),
    (
        "forward-X-object",
        "float64",
        lambda n: n.forward(X.astype(object)),
        TypeError,
        esc("x must hold real numbers") + ".*got dtype object",
    ),
    (
        "forward-x-none-in-list",
        "float64",
        lambda n: n.forward([0.0, None, 1.0]),
        TypeError,
        esc("x must hold real numbers") + ".*object",
    ),
    (
        "forward-x-str",
        "float64",
        lambda n: n.forward(np.array(["1", "2", "3"])),
        TypeError,
        esc("x must hold real numbers") + ".*string",
    ),
    (
        "forward-x-str-list",
        "float64",
        lambda n: n.forward(["a", 1, 2]),
        TypeError,
        esc("x must hold real numbers") + ".*string",
    ),
    (
        "forward-x-bytes",
        "float64",
        lambda n: n.forward(np.array([b"1", b"2", b"3"])),
        TypeError,
        esc("x must hold real numbers") + ".*bytes",
    ),
    (
        "forward-x-datetime",
        "float64",
        lambda n: n.forward(np.array(["2020-01-01"] * 3, dtype="M8[D]")),
        TypeError,
        esc("x must hold real numbers") + ".*datetime",
    ),
    (
        "forward-x-whole-string",
        "float64",
        lambda n: n.forward("123"),
        TypeError,
        esc("x must hold real numbers") + ".*string",
    ),
    (
        "cost-y-complex",
        "float64",
        lambda n: n.cost(X, Y.astype(np.complex64)),
        TypeError,
        esc("y must hold real numbers") + ".*complex64",
    ),
    (
        "gradients-y-object",
        "float64",
        lambda n: n.gradients(x, np.array([0.5, 0.5], dtype=object)),
        TypeError,
        esc("y must hold real numbers") + ".*object",
    ),
    (
        "step-x-complex",
        "float64",
        lambda n: n.step(x + 0j, y, 0.5),
        TypeError,
        esc("x must hold real numbers") + ".*complex",
    ),
    (
        "step-y-str",
        "float64",
        lambda n: n.step(x, np.array(["0.5", "0.5"]), 0.5),
        TypeError,
        esc("y must hold real numbers") + ".*string",
    ),
    (
        "train-X-object",
        "float64",
        lambda n: n.train(X.astype(object), Y),
        TypeError,
        esc("X must hold real numbers") + ".*object",
    ),
    (
        "train-Y-complex",
        "float64",
        lambda n: n.train(X, Y + 0j),
        TypeError,
        esc("Y must hold real numbers") + ".*complex",
    ),
    (
        "f32-train-Y-str",
        "float32",
        lambda n: n.train(X, Y.astype(str)),
        TypeError,
        esc("Y must hold real numbers") + ".*string",
    ),
    # --- learning rates --------------------------------------------------
    ("step-lr-zero", "float64", lambda n: n.step(x, y, 0), ValueError, esc("lr must be > 0, got 0.0")),
    (
        "step-lr-negative",
        "float64",
        lambda n: n.step(x, y, -0.5),
        ValueError,
        esc("lr must be > 0, got -0.5"),
    ),
    (
        "step-lr-negative-zero",
        "float64",
        lambda n: n.step(x, y, -0.0),
        ValueError,
        esc("lr must be > 0, got -0.0"),
    ),
    ("step-lr-nan", "float64", lambda n: n.step(x, y, NAN), ValueError, esc("lr must be finite, got nan")),
    ("step-lr-inf", "float64", lambda n: n.step(x, y, INF), ValueError, esc("lr must be finite, got inf")),
    (
        "step-lr-neg-inf",
        "float64",
        lambda n: n.step(x, y, -INF),
        ValueError,
        esc("lr must be finite, got -inf"),
    ),
    (
        "step-lr-numpy-nan",
        "float32",
        lambda n: n.step(x, y, np.float32("nan")),
        ValueError,
        esc("lr must be finite, got nan"),
    ),
    (
        "step-lr-huge-int",
        "float64",
        lambda n: n.step(x, y, 10**400),
        ValueError,
        esc("lr must be finite, got a number too large for a float"),
    ),
    (
        "step-lr-huge-fraction",
        "float64",
        lambda n: n.step(x, y, Fraction(10**400, 3)),
        ValueError,
        esc("lr must be finite, got a number too large for a float"),
    ),
    (
        "step-lr-str",
        "float64",
        lambda n: n.step(x, y, "0.5"),
        TypeError,
        esc("lr must be a real number, got '0.5' of type str"),
    ),
    (
        "step-lr-bool",
        "float64",
        lambda n: n.step(x, y, True),
        TypeError,
        esc("lr must be a real number, got True of type bool"),
    ),
    (
        "step-lr-none",
        "float64",
        lambda n: n.step(x, y, None),
        TypeError,
        esc("lr must be a real number, got None of type NoneType"),
    ),
    (
        "step-lr-complex",
        "float64",
        lambda n: n.step(x, y, 0.5 + 0j),
        TypeError,
        esc("lr must be a real number, got (0.5+0j) of type complex"),
    ),
    (
        "step-lr-array",
        "float64",
        lambda n: n.step(x, y, np.array(0.5)),
        TypeError,
        esc("lr must be a real number") + ".*of type ndarray",
    ),
    (
        "step-lr-list",
        "float64",
        lambda n: n.step(x, y, [0.5]),
        TypeError,
        esc("lr must be a real number, got [0.5] of type list"),
    ),
    ("train-lr-zero", "float64", lambda n: n.train(X, Y, lr=0.0), ValueError, esc("lr must be > 0, got 0.0")),
    (
        "train-lr-negative",
        "float64",
        lambda n: n.train(X, Y, lr=-1),
        ValueError,
        esc("lr must be > 0, got -1.0"),
    ),
    (
        "train-lr-nan",
        "float64",
        lambda n: n.train(X, Y, lr=NAN),
        ValueError,
        esc("lr must be finite, got nan"),
    ),
    (
        "train-lr-inf",
        "float64",
        lambda n: n.train(X, Y, lr=INF),
        ValueError,
        esc("lr must be finite, got inf"),
    ),
    (
        "train-lr-neg-inf",
        "float64",
        lambda n: n.train(X, Y, lr=-INF),
        ValueError,
        esc("lr must be finite, got -inf"),
    ),
    (
        "train-lr-huge-int",
        "float64",
        lambda n: n.train(X, Y, lr=-(10**400)),
        ValueError,
        esc("lr must be finite"),
    ),
    (
        "train-lr-str",
        "float64",
        lambda n: n.train(X, Y, lr="fast"),
        TypeError,
        esc("lr must be a real number, got 'fast' of type str"),
    ),
    (
        "train-lr-bool",
        "float64",
        lambda n: n.train(X, Y, lr=np.True_),
        TypeError,
        esc("lr must be a real number, got np.True_ of type bool"),
    ),
    # --- epochs -----------------------------------------------------------
    (
        "train-epochs-zero",
        "float64",
        lambda n: n.train(X, Y, epochs=0),
        ValueError,
        esc("epochs must be >= 1, got 0"),
    ),
    (
        "train-epochs-negative",
        "float64",
        lambda n: n.train(X, Y, epochs=-3),
        ValueError,
        esc("epochs must be >= 1, got -3"),
    ),
    (
        "train-epochs-float",
        "float64",
        lambda n: n.train(X, Y, epochs=2.0),
        TypeError,
        esc("epochs must be an integer, got 2.0 of type float"),
    ),
    (
        "train-epochs-fraction",
        "float64",
        lambda n: n.train(X, Y, epochs=2.5),
        TypeError,
        esc("epochs must be an integer, got 2.5 of type float"),
    ),
    (
        "train-epochs-numpy-float",
        "float64",
        lambda n: n.train(X, Y, epochs=np.float64(3)),
        TypeError,
        esc("epochs must be an integer") + ".*of type float64",
    ),
    (
        "train-epochs-bool",
        "float64",
        lambda n: n.train(X, Y, epochs=True),
        TypeError,
        esc("epochs must be an integer, got True of type bool"),
    ),
    (
        "train-epochs-str",
        "float64",
        lambda n: n.train(X, Y, epochs="3"),
        TypeError,
        esc("epochs must be an integer, got '3' of type str"),
    ),
    (
        "train-epochs-none",
        "float64",
        lambda n: n.train(X, Y, epochs=None),
        TypeError,
        esc("epochs must be an integer, got None of type NoneType"),
    ),
    # --- switches and seeds -------------------------------------------------
    (
        "train-shuffle-int",
        "float64",
        lambda n: n.train(X, Y, shuffle=1),
        TypeError,
        esc("shuffle must be True or False, got 1 of type int"),
    ),
    (
        "train-shuffle-str",
        "float64",
        lambda n: n.train(X, Y, shuffle="yes"),
        TypeError,
        esc("shuffle must be True or False, got 'yes' of type str"),
    ),
    (
        "train-shuffle-none",
        "float64",
        lambda n: n.train(X, Y, shuffle=None),
        TypeError,
        esc("shuffle must be True or False, got None of type NoneType"),
    ),
    (
        "train-update_biases-int",
        "float64",
        lambda n: n.train(X, Y, update_biases=0),
        TypeError,
        esc("update_biases must be True or False, got 0 of type int"),
    ),
    (
        "train-update_biases-str",
        "float64",
        lambda n: n.train(X, Y, update_biases="False"),
        TypeError,
        esc("update_biases must be True or False, got 'False' of type str"),
    ),
    (
        "step-update_biases-none",
        "float64",
        lambda n: n.step(x, y, 0.5, update_biases=None),
        TypeError,
        esc("update_biases must be True or False, got None of type NoneType"),
    ),
    (
        "step-update_biases-float",
        "float64",
        lambda n: n.step(x, y, 0.5, update_biases=1.0),
        TypeError,
        esc("update_biases must be True or False, got 1.0 of type float"),
    ),
    (
        "train-seed-negative",
        "float64",
        lambda n: n.train(X, Y, shuffle=True, seed=-1),
        ValueError,
        esc("seed must be >= 0, got -1"),
    ),
    (
        "train-seed-float",
        "float64",
        lambda n: n.train(X, Y, shuffle=True, seed=1.5),
        TypeError,
        esc("seed must be an integer, got 1.5 of type float"),
    ),
    (
        "train-seed-str",
        "float64",
        lambda n: n.train(X, Y, shuffle=True, seed="1"),
        TypeError,
        esc("seed must be an integer, got '1' of type str"),
    ),
    (
        "train-seed-bool",
        "float64",
        lambda n: n.train(X, Y, shuffle=True, seed=False),
        TypeError,
        esc("seed must be an integer, got False of type bool"),
    ),
    (
        "train-seed-randomstate",
        "float64",
        lambda n: n.train(X, Y, shuffle=True, seed=np.random.RandomState(0)),
        TypeError,
        esc("seed must be an integer") + ".*of type RandomState",
    ),
    (
        "train-seed-without-shuffle",
        "float64",
        lambda n: n.train(X, Y, seed=-5),
        ValueError,
        esc("seed must be >= 0, got -5"),
    ),
    # a bad keyword after good data: nothing may run before the whole call is checked
    (
        "train-good-data-bad-last-keyword",
        "float64",
        lambda n: n.train(X, Y, epochs=2, lr=0.5, shuffle=True, seed=1, update_biases="yes"),
        TypeError,
        esc("update_biases must be True or False"),
    ),
]


@pytest.mark.parametrize(
    "net_dtype, call, error, match",
    [pytest.param(*case[1:], id=case[0]) for case in METHOD_CASES],
)
def test_rejected_call_changes_nothing(backend, net_dtype, call, error, match):
    net = make_net(backend, net_dtype)
    before = snapshot(net)
    with pytest.raises(error, match=match):
        call(net)
    assert_same_state(net, before)
    # The network still works after the rejection.
    assert np.isfinite(net.forward(X)).all()


def test_one_column_target_hint(backend):
    net = make_net(backend, sizes=[3, 2, 1])
    before = snapshot(net)
    with pytest.raises(ValueError, match=esc("Y must have shape (n, 1), got (5,); reshape a single column")):
        net.train(X, Y[:, 0])
    assert_same_state(net, before)


# ---------------------------------------------------------------------------
# Construction: Network(...), from_weights(...), get_backend(...)
# ---------------------------------------------------------------------------

CONSTRUCTOR_CASES = [
    # layer sizes
    (
        "sizes-empty",
        dict(layer_sizes=[]),
        ValueError,
        esc("layer_sizes needs at least an input and an output size (one weight layer), got []"),
    ),
    (
        "sizes-one-layer",
        dict(layer_sizes=[3]),
        ValueError,
        esc("layer_sizes needs at least an input and an output"),
    ),
    ("sizes-zero-hidden", dict(layer_sizes=[3, 0, 2]), ValueError, esc("layer_sizes[1] must be >= 1, got 0")),
    ("sizes-zero-input", dict(layer_sizes=[0, 2]), ValueError, esc("layer_sizes[0] must be >= 1, got 0")),
    ("sizes-zero-output", dict(layer_sizes=(2, 0)), ValueError, esc("layer_sizes[1] must be >= 1, got 0")),
    ("sizes-negative", dict(layer_sizes=[-1, 2]), ValueError, esc("layer_sizes[0] must be >= 1, got -1")),
    (
        "sizes-float",
        dict(layer_sizes=[2.0, 3]),
        TypeError,
        esc("layer_sizes[0] must be an integer, got 2.0 of type float"),
    ),
    (
        "sizes-float-array",
        dict(layer_sizes=np.array([2.0, 3.0])),
        TypeError,
        esc("layer_sizes[0] must be an integer") + ".*of type float64",
    ),
    (
        "sizes-bool",
        dict(layer_sizes=[2, True]),
        TypeError,
        esc("layer_sizes[1] must be an integer, got True of type bool"),
    ),
    (
        "sizes-numpy-bool",
        dict(layer_sizes=[np.True_, 2]),
        TypeError,
        esc("layer_sizes[0] must be an integer, got np.True_ of type bool"),
    ),
    (
        "sizes-str-item",
        dict(layer_sizes=["2", 3]),
        TypeError,
        esc("layer_sizes[0] must be an integer, got '2' of type str"),
    ),
    (
        "sizes-none-item",
        dict(layer_sizes=[2, None]),
        TypeError,
        esc("layer_sizes[1] must be an integer, got None of type NoneType"),
    ),
    (
        "sizes-str",
        dict(layer_sizes="232"),
        TypeError,
        esc("layer_sizes must be a sequence of integers like [2, 2, 2], got '232' of type str"),
    ),
    (
        "sizes-int",
        dict(layer_sizes=3),
        TypeError,
        esc("layer_sizes must be a sequence of integers like [2, 2, 2], got 3 of type int"),
    ),
    ("sizes-none", dict(layer_sizes=None), TypeError, esc("layer_sizes must be a sequence of integers")),
    (
        "sizes-generator",
        dict(layer_sizes=(n for n in [2, 2])),
        TypeError,
        esc("layer_sizes must be a sequence of integers") + ".*of type generator",
    ),
    (
        "sizes-2d-array",
        dict(layer_sizes=np.array([[2, 3]])),
        ValueError,
        esc("layer_sizes must be 1-D, got an array of shape (1, 2)"),
    ),
    (
        "sizes-0d-array",
        dict(layer_sizes=np.array(3)),
        ValueError,
        esc("layer_sizes must be 1-D, got an array of shape ()"),
    ),
    # absurd sizes: refused by arithmetic on the sizes, before any allocation
    (
        "sizes-absurd",
        dict(layer_sizes=[10**12, 10**12]),
        ValueError,
        esc("layer_sizes [1000000000000, 1000000000000] need 1000000000001000000000000 parameters"),
    ),
    (
        "sizes-beyond-int64",
        dict(layer_sizes=[2**64, 3, 2**70]),
        ValueError,
        esc(f"layer_sizes [{2**64}, 3, {2**70}] need"),
    ),
    (
        "sizes-int64-max",
        dict(layer_sizes=np.array([2, np.iinfo(np.int64).max], dtype=np.int64)),
        ValueError,
        esc(f"layer_sizes [2, {np.iinfo(np.int64).max}] need"),
    ),
    (
        "sizes-just-too-big",
        dict(layer_sizes=[10**6, 10**6]),
        ValueError,
        "layer_sizes .* more than fastbp allows",
    ),
    (
        "sizes-too-big-float32",
        dict(layer_sizes=[2, 10**12], dtype="float32"),
        ValueError,
        "layer_sizes .* more than fastbp allows",
    ),
    # seed
    ("seed-negative", dict(seed=-1), ValueError, esc("seed must be >= 0, got -1")),
    ("seed-float", dict(seed=1.0), TypeError, esc("seed must be an integer, got 1.0 of type float")),
    ("seed-bool", dict(seed=True), TypeError, esc("seed must be an integer, got True of type bool")),
    ("seed-str", dict(seed="0"), TypeError, esc("seed must be an integer, got '0' of type str")),
    ("seed-list", dict(seed=[1, 2]), TypeError, esc("seed must be an integer, got [1, 2] of type list")),
    (
        "seed-randomstate",
        dict(seed=np.random.RandomState(0)),
        TypeError,
        esc("seed must be an integer") + ".*of type RandomState",
    ),
    # dtype
    (
        "dtype-float16",
        dict(dtype="float16"),
        TypeError,
        esc("dtype must be 'float32' or 'float64', got 'float16'"),
    ),
    ("dtype-longdouble", dict(dtype=np.longdouble), TypeError, esc("dtype must be 'float32' or 'float64'")),
    ("dtype-int", dict(dtype="int64"), TypeError, esc("dtype must be 'float32' or 'float64', got 'int64'")),
    (
        "dtype-python-int",
        dict(dtype=int),
        TypeError,
        esc("dtype must be 'float32' or 'float64', got <class 'int'>"),
    ),
    (
        "dtype-bool",
        dict(dtype=bool),
        TypeError,
        esc("dtype must be 'float32' or 'float64', got <class 'bool'>"),
    ),
    ("dtype-complex", dict(dtype=complex), TypeError, esc("dtype must be 'float32' or 'float64'")),
    ("dtype-object", dict(dtype=object), TypeError, esc("dtype must be 'float32' or 'float64'")),
    ("dtype-str", dict(dtype=str), TypeError, esc("dtype must be 'float32' or 'float64'")),
    ("dtype-number", dict(dtype=64), TypeError, esc("dtype must be 'float32' or 'float64', got 64")),
    (
        "dtype-garbage",
        dict(dtype="floaty"),
        TypeError,
        esc("dtype must be 'float32' or 'float64', got 'floaty'"),
    ),
    (
        "dtype-unparsable",
        dict(dtype="i4,,"),
        TypeError,
        esc("dtype must be 'float32' or 'float64', got 'i4,,'"),
    ),
    (
        "dtype-structured",
        dict(dtype="f8,f8"),
        TypeError,
        esc("dtype must be 'float32' or 'float64', got 'f8,f8'"),
    ),
    ("dtype-subarray", dict(dtype="(2,)f8"), TypeError, esc("dtype must be 'float32' or 'float64'")),
    (
        "dtype-big-endian",
        dict(dtype=">f8" if np.little_endian else "<f8"),
        TypeError,
        esc("dtype must be 'float32' or 'float64'"),
    ),
    # backend
    (
        "backend-unknown",
        dict(backend="fortran"),
        ValueError,
        esc("backend='fortran' names no backend; choose one of ['cython', 'python']"),
    ),
    ("backend-empty", dict(backend=""), ValueError, esc("backend='' names no backend")),
    ("backend-wrong-case", dict(backend="Cython"), ValueError, esc("backend='Cython' names no backend")),
    (
        "backend-int",
        dict(backend=1),
        TypeError,
        esc("backend must be a str naming one of ['cython', 'python'] or None, got int"),
    ),
    ("backend-bytes", dict(backend=b"cython"), TypeError, esc("backend must be a str") + ".*got bytes"),
    ("backend-module", dict(backend=np), TypeError, esc("backend must be a str") + ".*got module"),
]


@pytest.mark.parametrize(
    "kwargs, error, match", [pytest.param(*case[1:], id=case[0]) for case in CONSTRUCTOR_CASES]
)
def test_network_rejects(backend, kwargs, error, match):
    kwargs = {"layer_sizes": [2, 2], "backend": backend, **kwargs}
    with pytest.raises(error, match=match):
        Network(kwargs.pop("layer_sizes"), **kwargs)


class _NoAllocation:
    """numpy, as ``fastbp.network`` sees it, except that allocating fails the test."""

    def __getattr__(self, name):
        if name in ("empty", "zeros", "empty_like", "ones", "full"):

            def allocate(*args, **kwargs):
                raise AssertionError(f"np.{name} was called before the arguments were all checked")

            return allocate
        return getattr(np, name)


@pytest.mark.parametrize(
    "sizes, kwargs, error, match",
    [
        pytest.param([10**12, 10**12], {}, ValueError, "layer_sizes", id="absurd-sizes"),
        pytest.param(
            [2**40, 2**40, 2**40], {"dtype": "float32"}, ValueError, "layer_sizes", id="absurd-float32"
        ),
        pytest.param(
            [10**5, 10**5],
            {"backend": "fortran"},
            ValueError,
            esc("backend='fortran'"),
            id="bad-backend-of-a-big-network",
        ),
        pytest.param(
            [10**5, 10**5], {"backend": 7}, TypeError, "backend must be a str", id="bad-backend-type"
        ),
    ],
)
def test_rejected_before_any_allocation(monkeypatch, sizes, kwargs, error, match):
    monkeypatch.setattr(importlib.import_module("fastbp.network"), "np", _NoAllocation())
    with pytest.raises(error, match=match):
        Network(sizes, **kwargs)


def _replace(items, index, value):
    items = list(items)
    items[index] = value
    return items


FROM_WEIGHTS_CASES = [
    # containers
    (
        "weights-ndarray",
        lambda W, b: (np.zeros((2, 2, 2)), b),
        {},
        TypeError,
        esc("weights must be a list of arrays (one per layer), got ndarray"),
    ),
    (
        "weights-none",
        lambda W, b: (None, b),
        {},
        TypeError,
        esc("weights must be a list of arrays (one per layer), got NoneType"),
    ),
    (
        "weights-str",
        lambda W, b: ("W", b),
        {},
        TypeError,
        esc("weights must be a list of arrays (one per layer), got str"),
    ),
    (
        "weights-dict",
        lambda W, b: ({0: W[0]}, b),
        {},
        TypeError,
        esc("weights must be a list of arrays (one per layer), got dict"),
    ),
    (
        "biases-ndarray",
        lambda W, b: (W, np.zeros(4)),
        {},
        TypeError,
        esc("biases must be a list of arrays (one per layer), got ndarray"),
    ),
    (
        "biases-none",
        lambda W, b: (W, None),
        {},
        TypeError,
        esc("biases must be a list of arrays (one per layer), got NoneType"),
    ),
    (
        "empty-lists",
        lambda W, b: ([], []),
        {},
        ValueError,
        esc("weights must hold at least one layer, got an empty list"),
    ),
    (
        "fewer-biases",
        lambda W, b: (W, b[:1]),
        {},
        ValueError,
        esc("weights and biases must have one entry per layer, got 2 and 1"),
    ),
    (
        "more-biases",
        lambda W, b: (W[:1], b),
        {},
        ValueError,
        esc("weights and biases must have one entry per layer, got 1 and 2"),
    ),
    # shapes
    (
        "weights-1d",
        lambda W, b: (_replace(W, 0, W[0].ravel()), b),
        {},
        ValueError,
        esc("weights[0] must be a non-empty 2-D array (n_out, n_in), got shape (12,)"),
    ),
    (
        "weights-3d",
        lambda W, b: (_replace(W, 1, W[1][None]), b),
        {},
        ValueError,
        esc("weights[1] must be a non-empty 2-D array (n_out, n_in), got shape (1, 2, 4)"),
    ),
    (
        "weights-scalar",
        lambda W, b: ([0.5], [[0.5]]),
        {},
        ValueError,
        esc("weights[0] must be a non-empty 2-D array (n_out, n_in), got shape ()"),
    ),
    (
        "weights-zero-outputs",
        lambda W, b: ([np.zeros((0, 3))], [np.zeros(0)]),
        {},
        ValueError,
        esc("weights[0] must be a non-empty 2-D array (n_out, n_in), got shape (0, 3)"),
    ),
    (
        "weights-zero-inputs",
        lambda W, b: ([np.zeros((2, 0))], [np.zeros(2)]),
        {},
        ValueError,
        esc("weights[0] must be a non-empty 2-D array (n_out, n_in), got shape (2, 0)"),
    ),
    (
        "weights-empty-list",
        lambda W, b: ([[[]]], [[0.0]]),
        {},
        ValueError,
        esc("weights[0] must be a non-empty 2-D array (n_out, n_in), got shape (1, 0)"),
    ),
    (
        "weights-ragged",
        lambda W, b: ([[[1, 2], [3]]], [[0, 0]]),
        {},
        ValueError,
        esc("weights[0] could not be read as a numeric array"),
    ),
    (
        "biases-short",
        lambda W, b: (W, _replace(b, 0, b[0][:3])),
        {},
        ValueError,
        esc("biases[0] must have shape (4,) to match weights[0].shape=(4, 3), got (3,)"),
    ),
    (
        "biases-column",
        lambda W, b: (W, _replace(b, 1, b[1].reshape(2, 1))),
        {},
        ValueError,
        esc("biases[1] must have shape (2,) to match weights[1].shape=(2, 4), got (2, 1)"),
    ),
    (
        "biases-scalar",
        lambda W, b: ([[[0.5, 0.5]]], [0.5]),
        {},
        ValueError,
        esc("biases[0] must have shape (1,) to match weights[0].shape=(1, 2), got ()"),
    ),
    (
        "layers-do-not-chain",
        lambda W, b: ([W[0], np.zeros((2, 5))], b),
        {},
        ValueError,
        esc(
            "layers do not chain: weights[1].shape=(2, 5) takes 5 inputs but weights[0].shape=(4, 3) gives 4 outputs"
        ),
    ),
    (
        "layers-transposed",
        lambda W, b: ([W[0].T, W[1]], [np.zeros(3), b[1]]),
        {},
        ValueError,
        esc(
            "layers do not chain: weights[1].shape=(2, 4) takes 4 inputs but weights[0].shape=(3, 4) gives 3 outputs"
        ),
    ),
    # values
    (
        "weights-nan",
        lambda W, b: (_replace(W, 0, with_value(W[0], (1, 2), NAN)), b),
        {},
        ValueError,
        esc("weights[0] must be finite, found nan at index (1, 2)"),
    ),
    (
        "weights-inf",
        lambda W, b: (_replace(W, 1, with_value(W[1], (0, 3), INF)), b),
        {},
        ValueError,
        esc("weights[1] must be finite, found inf at index (0, 3)"),
    ),
    (
        "weights-neg-inf",
        lambda W, b: (_replace(W, 1, with_value(W[1], (1, 0), -INF)), b),
        {},
        ValueError,
        esc("weights[1] must be finite, found -inf at index (1, 0)"),
    ),
    (
        "biases-nan",
        lambda W, b: (W, _replace(b, 0, with_value(b[0], 3, NAN))),
        {},
        ValueError,
        esc("biases[0] must be finite, found nan at index (3,)"),
    ),
    (
        "biases-inf",
        lambda W, b: (W, _replace(b, 1, with_value(b[1], 0, INF))),
        {},
        ValueError,
        esc("biases[1] must be finite, found inf at index (0,)"),
    ),
    (
        "biases-neg-inf-list",
        lambda W, b: (W, [b[0], [0.0, -INF]]),
        {},
        ValueError,
        esc("biases[1] must be finite, found -inf at index (1,)"),
    ),
    (
        "weights-1e39-to-float32",
        lambda W, b: (_replace(W, 0, with_value(W[0], (0, 0), 1e39)), b),
        {"dtype": "float32"},
        ValueError,
        esc("weights[0] must be finite, found inf at index (0, 0) (after casting to float32)"),
    ),
    (
        "biases-neg-1e39-to-float32",
        lambda W, b: (W, [b[0], [0.0, -1e39]]),
        {"dtype": "float32"},
        ValueError,
        esc("biases[1] must be finite, found -inf at index (1,) (after casting to float32)"),
    ),
    # dtypes
    (
        "weights-complex",
        lambda W, b: (_replace(W, 0, W[0] + 0j), b),
        {},
        TypeError,
        esc("weights[0] must hold real numbers (bool, integer or floating), got dtype complex128 (complex)"),
    ),
    (
        "weights-object",
        lambda W, b: (_replace(W, 1, W[1].astype(object)), b),
        {},
        TypeError,
        esc("weights[1] must hold real numbers") + ".*object",
    ),
    (
        "biases-str",
        lambda W, b: (W, _replace(b, 0, b[0].astype(str))),
        {},
        TypeError,
        esc("biases[0] must hold real numbers") + ".*string",
    ),
    (
        "biases-none-item",
        lambda W, b: (W, _replace(b, 1, None)),
        {},
        TypeError,
        esc("biases[1] must hold real numbers") + ".*object",
    ),
    # keywords
    (
        "dtype-float16",
        lambda W, b: (W, b),
        {"dtype": "float16"},
        TypeError,
        esc("dtype must be 'float32' or 'float64', got 'float16'"),
    ),
    (
        "dtype-int",
        lambda W, b: (W, b),
        {"dtype": int},
        TypeError,
        esc("dtype must be 'float32' or 'float64'"),
    ),
    (
        "dtype-garbage",
        lambda W, b: (W, b),
        {"dtype": "double precision"},
        TypeError,
        esc("dtype must be 'float32' or 'float64', got 'double precision'"),
    ),
    (
        "backend-unknown",
        lambda W, b: (W, b),
        {"backend": "numba"},
        ValueError,
        esc("backend='numba' names no backend"),
    ),
    ("backend-wrong-type", lambda W, b: (W, b), {"backend": 0}, TypeError, esc("backend must be a str")),
]


@pytest.mark.parametrize(
    "build, kwargs, error, match", [pytest.param(*case[1:], id=case[0]) for case in FROM_WEIGHTS_CASES]
)
def test_from_weights_rejects(backend, build, kwargs, error, match):
    Ws, bs = build(*fixed_layers())
    arrays = [a for group in (Ws, bs) if isinstance(group, list) for a in group if isinstance(a, np.ndarray)]
    kept = [a.copy() for a in arrays]
    with pytest.raises(error, match=match):
        Network.from_weights(Ws, bs, **{"backend": backend, **kwargs})
    for before, after in zip(kept, arrays, strict=True):  # the caller's arrays were not written
        np.testing.assert_array_equal(after, before, strict=True)


# ---------------------------------------------------------------------------
# Accepted: one-row data, the smallest network, other spellings of the arguments
# (data in other layouts and dtypes: tests/test_layout.py)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_row_data_works(backend, dtype):
    net, twin = make_net(backend, dtype), make_net(backend, dtype)
    out = net.forward(X[:1])
    assert out.shape == (1, N_OUT)
    np.testing.assert_array_equal(out[0], net.forward(x), strict=True)
    assert net.cost(X[:1], Y[:1]) == net.cost(x, y)
    costs = net.train(X[:1], Y[:1], epochs=2, lr=0.5, shuffle=True, seed=0)
    assert costs.shape == (2,) and np.isfinite(costs).all()
    J = [twin.step(x, y, 0.5) for _ in range(2)]
    np.testing.assert_array_equal(costs, J)
    assert_same_net(net, twin)


def test_one_by_one_network(backend):
    net = Network([1, 1], seed=0, backend=backend)
    assert net.forward([0.5]).shape == (1,)
    assert net.forward([[0.5]]).shape == (1, 1)
    assert np.isfinite(net.train([[0.5]], [[1.0]], epochs=1)).all()


@pytest.mark.parametrize(
    "kwargs, same_as",
    [
        pytest.param(lambda: dict(lr=1), lambda: dict(lr=1.0), id="lr-int"),
        pytest.param(lambda: dict(lr=np.float32(0.5)), lambda: dict(lr=0.5), id="lr-numpy-float32"),
        pytest.param(lambda: dict(lr=np.int64(1)), lambda: dict(lr=1.0), id="lr-numpy-int"),
        pytest.param(lambda: dict(lr=Fraction(1, 4)), lambda: dict(lr=0.25), id="lr-fraction"),
        pytest.param(lambda: dict(lr=1e-300), lambda: dict(lr=1e-300), id="lr-tiny"),
        pytest.param(lambda: dict(epochs=np.int64(2)), lambda: dict(epochs=2), id="epochs-numpy-int"),
        pytest.param(lambda: dict(epochs=np.uint8(2)), lambda: dict(epochs=2), id="epochs-numpy-uint8"),
        pytest.param(
            lambda: dict(shuffle=np.True_, seed=1),
            lambda: dict(shuffle=True, seed=1),
            id="shuffle-numpy-bool",
        ),
        pytest.param(
            lambda: dict(shuffle=True, seed=np.uint16(1)),
            lambda: dict(shuffle=True, seed=1),
            id="seed-numpy-int",
        ),
        pytest.param(
            lambda: dict(shuffle=True, seed=2**70), lambda: dict(shuffle=True, seed=2**70), id="seed-huge-int"
        ),
        pytest.param(
            lambda: dict(shuffle=True, seed=np.random.default_rng(5)),
            lambda: dict(shuffle=True, seed=5),
            id="seed-generator",
        ),
        pytest.param(
            lambda: dict(update_biases=np.False_),
            lambda: dict(update_biases=False),
            id="update_biases-numpy-bool",
        ),
    ],
)
def test_accepted_hyper_parameters(backend, kwargs, same_as):
    net, twin = make_net(backend), make_net(backend)
    got = net.train(X, Y, **{"epochs": 2, **kwargs()})
    expected = twin.train(X, Y, **{"epochs": 2, **same_as()})
    np.testing.assert_array_equal(got, expected, strict=True)
    assert_same_net(net, twin)


@pytest.mark.parametrize(
    "kwargs, same_as",
    [
        pytest.param(
            lambda: dict(layer_sizes=(3, 4, 2)), lambda: dict(layer_sizes=[3, 4, 2]), id="sizes-tuple"
        ),
        pytest.param(
            lambda: dict(layer_sizes=np.array([3, 4, 2])),
            lambda: dict(layer_sizes=[3, 4, 2]),
            id="sizes-int-array",
        ),
        pytest.param(
            lambda: dict(layer_sizes=[np.uint8(3), np.int16(4), 2]),
            lambda: dict(layer_sizes=[3, 4, 2]),
            id="sizes-numpy-ints",
        ),
        pytest.param(lambda: dict(seed=np.int32(0)), lambda: dict(seed=0), id="seed-numpy-int"),
        pytest.param(lambda: dict(seed=np.random.default_rng(0)), lambda: dict(seed=0), id="seed-generator"),
        pytest.param(lambda: dict(dtype=np.float32), lambda: dict(dtype="float32"), id="dtype-numpy-type"),
        pytest.param(
            lambda: dict(dtype=np.dtype("f4")), lambda: dict(dtype="float32"), id="dtype-numpy-dtype"
        ),
        pytest.param(lambda: dict(dtype=float), lambda: dict(dtype="float64"), id="dtype-python-float"),
        pytest.param(lambda: dict(dtype="f8"), lambda: dict(dtype="float64"), id="dtype-code"),
        # np.dtype(None) is float64: None means the default, as in from_weights.
        pytest.param(lambda: dict(dtype=None), lambda: dict(dtype="float64"), id="dtype-none"),
    ],
)
def test_accepted_constructor_arguments(backend, kwargs, same_as):
    kwargs = {"layer_sizes": SIZES, "seed": 0, **kwargs()}
    same_as = {"layer_sizes": SIZES, "seed": 0, **same_as()}
    net = Network(kwargs.pop("layer_sizes"), backend=backend, **kwargs)
    twin = Network(same_as.pop("layer_sizes"), backend=backend, **same_as)
    assert_same_net(net, twin)
