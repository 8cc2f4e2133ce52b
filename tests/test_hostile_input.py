"""Hostile input at the public boundary (issue 4, part 1), on both backends.

``tests/test_validation.py`` holds the core corpus (wrong shapes, NaN/inf,
non-real dtypes, bad hyper-parameters, accepted casts), ``tests/test_layout.py``
data in every memory layout and dtype.  This module extends them where they stop:

* every keyword of every public signature has bad values here (a guard derives
  the list from the signatures), including ``batch_size``, ``callback`` and
  ``progress``; unknown keywords;
* several bad arguments at once (the first one is named);
* a rejected call changes nothing: weights, biases, a ``Generator`` passed as
  ``seed``, and the network still works afterwards (its lock was released);
* hypothesis property tests: arrays of any shape, dtype and layout either get a
  documented exception naming the argument, as the input policy predicts, or
  give the clean-data result, which agrees with the reference backend;
* the sigmoid: exact and warning-free for every finite input and +-inf, in
  float32 and float64, on both backends.
"""

import decimal
import gc
import inspect
import math
import types
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from support import (
    assert_params_equal,
    assert_unchanged_and_working,
    clean,
    esc,
    examples,
    frozen_data,
    make_net,
    negative_stride,
    params_of,
    read_only,
    strided,
    unaligned,
    with_value,
)

import fastbp
from fastbp import Network, TrainingDivergedError

SIZES = [3, 4, 2]
N_IN, N_OUT = SIZES[0], SIZES[-1]

X, Y = frozen_data(seed=4, sizes=SIZES)
x, y = X[0], Y[0]

NAN, INF = float("nan"), float("inf")

# What a rejected call may raise.  FloatingPointError (TrainingDivergedError)
# is documented too, for arithmetic that overflows or diverges on finite data.
REJECTED = (ValueError, TypeError)


# ---------------------------------------------------------------------------
# 1. Every keyword of every public signature, with bad values
# ---------------------------------------------------------------------------


class _Callable:
    def __call__(self, epoch, cost):
        return None


# method -> keyword -> [(id, bad value, exception, match)].  The messages name
# the argument and show the value given.
BAD_KEYWORDS = {
    "Network": {
        "layer_sizes": [
            (
                "set",
                {3, 2},
                TypeError,
                esc("layer_sizes must be a sequence of integers like [2, 2, 2], got {2, 3} of type set"),
            ),
            (
                "frozenset",
                frozenset([4, 2]),
                TypeError,
                esc("layer_sizes must be a sequence") + ".*of type frozenset",
            ),
            (
                "dict",
                {3: "in", 2: "out"},
                TypeError,
                esc("layer_sizes must be a sequence") + ".*of type dict",
            ),
            ("float-array", np.array([3.0, 2.0]), TypeError, esc("layer_sizes[0] must be an integer")),
            ("overflowing", [3, 2**63, 2**63], ValueError, esc(f"layer_sizes [3, {2**63}, {2**63}] need")),
        ],
        "seed": [
            (
                "seed-sequence",
                np.random.SeedSequence(0),
                TypeError,
                "(?s)" + esc("seed must be an integer") + ".*of type SeedSequence",
            ),
            (
                "bit-generator",
                np.random.PCG64(0),
                TypeError,
                esc("seed must be an integer") + ".*of type PCG64",
            ),
            ("huge-negative", -(2**70), ValueError, esc(f"seed must be >= 0, got {-(2**70)}")),
        ],
        "dtype": [
            (
                "float16-type",
                np.float16,
                TypeError,
                esc("dtype must be 'float32' or 'float64', got <class 'numpy.float16'>"),
            ),
            ("float16-code", "f2", TypeError, esc("dtype must be 'float32' or 'float64', got 'f2'")),
            ("list", ["float64"], TypeError, esc("dtype must be 'float32' or 'float64', got ['float64']")),
        ],
        "backend": [
            ("upper-case", "PYTHON", ValueError, esc("backend='PYTHON' names no backend")),
            ("bytes", b"python", TypeError, esc("backend must be a str") + ".*got bytes"),
        ],
        "activation": [
            (
                "unknown",
                "swish",
                ValueError,
                esc("activation='swish' is not one of 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'identity'"),
            ),
            ("sklearn-name", "logistic", ValueError, esc("activation='logistic' is not one of")),
            (
                "softmax-hidden",
                "softmax",
                ValueError,
                esc("activation='softmax': softmax is for the output layer only"),
            ),
            (
                "too-many",
                ["relu", "tanh"],
                ValueError,
                esc("activation must name 1 hidden layer(s) (one per hidden layer), got 2"),
            ),
            (
                "int",
                3,
                TypeError,
                esc("activation must be a str or a sequence of str (one per hidden layer), got int"),
            ),
            ("set", {"relu"}, TypeError, esc("got set (which has no order)")),
            ("int-in-list", [0], TypeError, esc("activation[0] must be a str") + ".*" + esc("got int 0")),
        ],
        "output_activation": [
            (
                "unknown",
                "linear",
                ValueError,
                esc("output_activation='linear' is not one of 'sigmoid', 'tanh'"),
            ),
            (
                "softmax-squared-error",
                "softmax",
                ValueError,
                esc("output_activation='softmax' is supported with loss='cross_entropy' only"),
            ),
            (
                "none",
                None,
                TypeError,
                esc("output_activation must be a str") + ".*" + esc("got NoneType None"),
            ),
        ],
        "loss": [
            ("unknown", "mse", ValueError, esc("loss='mse' is not one of 'squared_error', 'cross_entropy'")),
            ("capitalised", "Cross_Entropy", ValueError, esc("loss='Cross_Entropy' is not one of")),
            ("bytes", b"cross_entropy", TypeError, esc("loss must be a str") + ".*got bytes"),
        ],
    },
    "from_weights": {
        "dtype": [
            ("float16", "float16", TypeError, esc("dtype must be 'float32' or 'float64', got 'float16'")),
            ("complex", np.complex128, TypeError, esc("dtype must be 'float32' or 'float64'")),
        ],
        "backend": [
            ("unknown", "cuda", ValueError, esc("backend='cuda' names no backend")),
            ("float", 1.0, TypeError, esc("backend must be a str") + ".*got float"),
        ],
        "activation": [
            ("unknown", "gelu", ValueError, esc("activation='gelu' is not one of 'sigmoid', 'tanh'")),
            (
                "softmax-hidden",
                ["softmax"],
                ValueError,
                esc("activation[0]='softmax': softmax is for the output layer only"),
            ),
            (
                "too-few",
                [],
                ValueError,
                esc("activation must name 1 hidden layer(s) (one per hidden layer), got 0"),
            ),
            ("none", None, TypeError, esc("activation must be a str or a sequence of str")),
        ],
        "output_activation": [
            ("unknown", "softplus", ValueError, esc("output_activation='softplus' is not one of")),
            (
                "softmax-squared-error",
                "softmax",
                ValueError,
                esc("output_activation='softmax' is supported with loss='cross_entropy' only"),
            ),
            ("int", 5, TypeError, esc("output_activation must be a str") + ".*" + esc("got int 5")),
        ],
        "loss": [
            (
                "unknown",
                "hinge",
                ValueError,
                esc("loss='hinge' is not one of 'squared_error', 'cross_entropy'"),
            ),
            ("list", ["cross_entropy"], TypeError, esc("loss must be a str") + ".*got list"),
        ],
    },
    "step": {
        "lr": [
            (
                "decimal",
                decimal.Decimal("0.5"),
                TypeError,
                esc("lr must be a real number, got Decimal('0.5') of type Decimal"),
            ),
            ("float16-inf", np.float16("inf"), ValueError, esc("lr must be finite, got inf")),
            (
                "longdouble-overflow",
                np.longdouble("1e308") * np.longdouble(10),
                ValueError,
                esc("lr must be finite"),
            ),
            ("negative-subnormal", -5e-324, ValueError, esc("lr must be > 0, got -5e-324")),
        ],
        "optimizer": [
            ("str", "adam", TypeError, esc("optimizer must be a fastbp optimizer") + ".*of type str"),
            ("class", fastbp.Adam, TypeError, esc("optimizer must be a fastbp optimizer") + ".*of type type"),
        ],
        "update_biases": [
            (
                "0-d-array",
                np.array(True),
                TypeError,
                esc("update_biases must be True or False, got array(True) of type ndarray"),
            ),
            ("str", "True", TypeError, esc("update_biases must be True or False, got 'True' of type str")),
        ],
    },
    "train": {
        "epochs": [
            ("zero", 0, ValueError, esc("epochs must be >= 1, got 0")),
            ("float", 3.0, TypeError, esc("epochs must be an integer, got 3.0 of type float")),
            ("absurd", 10**30, ValueError, esc(f"epochs={10**30} is too many")),
        ],
        "lr": [
            ("nan", NAN, ValueError, esc("lr must be finite, got nan")),
            (
                "decimal",
                decimal.Decimal("0.1"),
                TypeError,
                esc("lr must be a real number, got Decimal('0.1') of type Decimal"),
            ),
        ],
        "batch_size": [
            ("zero", 0, ValueError, esc("batch_size must be >= 1, got 0")),
            ("negative", -4, ValueError, esc("batch_size must be >= 1, got -4")),
            ("float", 2.0, TypeError, esc("batch_size must be an integer, got 2.0 of type float")),
            (
                "numpy-float",
                np.float32(2),
                TypeError,
                esc("batch_size must be an integer") + ".*of type float32",
            ),
            ("bool", True, TypeError, esc("batch_size must be an integer, got True of type bool")),
            ("str", "32", TypeError, esc("batch_size must be an integer, got '32' of type str")),
            ("list", [2], TypeError, esc("batch_size must be an integer, got [2] of type list")),
        ],
        "optimizer": [
            (
                "int",
                1,
                TypeError,
                esc(
                    "optimizer must be a fastbp optimizer (fastbp.SGD, fastbp.Adam, fastbp.RPROP), "
                    "got 1 of type int"
                ),
            ),
            (
                "torch-like",
                types.SimpleNamespace(step=lambda: None),
                TypeError,
                esc("optimizer must be a fastbp optimizer") + ".*of type SimpleNamespace",
            ),
        ],
        "shuffle": [
            (
                "0-d-array",
                np.array(False),
                TypeError,
                esc("shuffle must be True or False, got array(False) of type ndarray"),
            ),
        ],
        "seed": [
            (
                "seed-sequence",
                np.random.SeedSequence(1),
                TypeError,
                "(?s)" + esc("seed must be an integer") + ".*of type SeedSequence",
            ),
            ("float", 0.0, TypeError, esc("seed must be an integer, got 0.0 of type float")),
        ],
        "update_biases": [
            ("none", None, TypeError, esc("update_biases must be True or False, got None of type NoneType")),
        ],
        # A bad callback must be refused before the first epoch runs, not
        # discovered when it is first called (the weights would have changed).
        "callback": [
            ("int", 3, TypeError, esc("callback must be callable or None, got 3 of type int")),
            ("str", "print", TypeError, esc("callback must be callable or None, got 'print' of type str")),
            ("false", False, TypeError, esc("callback must be callable or None, got False of type bool")),
            (
                "list-of-callables",
                [print],
                TypeError,
                esc("callback must be callable or None") + ".*of type list",
            ),
        ],
        "progress": [
            ("str", "yes", TypeError, esc("progress must be True or False, got 'yes' of type str")),
            ("int", 1, TypeError, esc("progress must be True or False, got 1 of type int")),
            ("none", None, TypeError, esc("progress must be True or False, got None of type NoneType")),
        ],
    },
}

# Arguments that are data (covered by the data corpora below and in
# test_validation.py), not hyper-parameters.
DATA_ARGUMENTS = {"self", "x", "y", "X", "Y", "weights", "biases"}
SIGNATURES = {
    "Network": Network.__init__,
    "from_weights": Network.from_weights,
    "forward": Network.forward,
    "cost": Network.cost,
    "gradients": Network.gradients,
    "step": Network.step,
    "train": Network.train,
}


def test_every_keyword_of_the_public_api_has_bad_values():
    # Guard: a keyword added to a public signature needs its bad values here.
    for method, function in SIGNATURES.items():
        names = set(inspect.signature(function).parameters) - DATA_ARGUMENTS - {"cls"}
        covered = set(BAD_KEYWORDS.get(method, {}))
        assert names == covered, f"{method}: {sorted(names ^ covered)}"
        for keyword, cases in BAD_KEYWORDS.get(method, {}).items():
            assert cases, f"{method}({keyword}=...) has no bad values"


def _keyword_cases(method):
    return [
        pytest.param(keyword, value, error, match, id=f"{keyword}-{case_id}")
        for keyword, cases in BAD_KEYWORDS[method].items()
        for case_id, value, error, match in cases
    ]


def _generator_state(gen):
    return repr(gen.bit_generator.state)


@pytest.mark.parametrize("keyword, value, error, match", _keyword_cases("Network"))
def test_network_rejects_bad_keywords(backend, keyword, value, error, match):
    gen = np.random.default_rng(11)
    state = _generator_state(gen)
    kwargs = {"layer_sizes": SIZES, "seed": gen, "backend": backend, keyword: value}
    with pytest.raises(error, match=match):
        Network(kwargs.pop("layer_sizes"), **kwargs)
    # The rejected construction drew nothing from the generator it was given.
    assert _generator_state(gen) == state


@pytest.mark.parametrize("keyword, value, error, match", _keyword_cases("from_weights"))
def test_from_weights_rejects_bad_keywords(backend, keyword, value, error, match):
    net = make_net(backend)
    Ws, bs = params_of(net)[:2], params_of(net)[2:]
    kwargs = {"backend": backend, keyword: value}
    with pytest.raises(error, match=match):
        Network.from_weights(Ws, bs, **kwargs)
    assert_params_equal(Ws + bs, params_of(net))  # the caller's arrays were not written


@pytest.mark.parametrize("keyword, value, error, match", _keyword_cases("step"))
def test_step_rejects_bad_keywords(backend, keyword, value, error, match):
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    kwargs = {"lr": 0.5, keyword: value}
    with pytest.raises(error, match=match):
        net.step(x, y, kwargs.pop("lr"), **kwargs)
    assert_unchanged_and_working(net, twin, before)


@pytest.mark.parametrize("keyword, value, error, match", _keyword_cases("train"))
def test_train_rejects_bad_keywords(backend, keyword, value, error, match):
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    gen = np.random.default_rng(3)
    state = _generator_state(gen)
    calls = []
    # Every other keyword is good, and a generator that a started run would draw from.
    kwargs = dict(
        epochs=2,
        lr=0.5,
        batch_size=1,
        shuffle=True,
        seed=gen,
        update_biases=True,
        callback=lambda epoch, cost: calls.append(epoch),
        progress=False,
    )
    kwargs[keyword] = value
    with pytest.raises(error, match=match):
        net.train(X, Y, **kwargs)
    assert calls == [], "an epoch ran before the call was rejected"
    assert _generator_state(gen) == state
    assert_unchanged_and_working(net, twin, before)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        pytest.param(dict(epochs=2, seed=-1), ValueError, esc("seed must be >= 0"), id="bad-seed"),
        pytest.param(
            dict(epochs=2, callback=1), TypeError, esc("callback must be callable"), id="bad-callback"
        ),
        pytest.param(
            dict(epochs=10**30), ValueError, esc(f"epochs={10**30} is too many"), id="absurd-epochs"
        ),
    ],
)
def test_a_rejected_call_with_progress_draws_no_bar(backend, kwargs, error, match, capsys):
    pytest.importorskip("tqdm")
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    with pytest.raises(error, match=match):
        net.train(X, Y, progress=True, **kwargs)
    gc.collect()  # a bar left open would draw itself again when collected
    assert capsys.readouterr().err == ""
    assert_unchanged_and_working(net, twin, before)


@pytest.mark.parametrize(
    "call, match",
    [
        pytest.param(lambda n: n.train(X, Y, learning_rate=0.1), "learning_rate", id="train-unknown-keyword"),
        pytest.param(lambda n: n.train(X, Y, 3), "positional", id="train-epochs-positional"),
        pytest.param(lambda n: n.step(x, y, 0.5, True), "positional", id="step-update_biases-positional"),
        pytest.param(lambda n: n.step(x, y), "lr", id="step-without-lr"),
        pytest.param(lambda n: n.forward(x, y), "positional", id="forward-two-arguments"),
        pytest.param(lambda n: Network(SIZES, 0), "positional", id="network-seed-positional"),
    ],
)
def test_signature_misuse_is_a_type_error(backend, call, match):
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    with pytest.raises(TypeError, match=match):
        call(net)
    assert_unchanged_and_working(net, twin, before)


# Values that are unusual but valid: the same run as their plain equivalents.
@pytest.mark.parametrize(
    "kwargs, same_as",
    [
        pytest.param(
            lambda: dict(batch_size=np.int64(2)), lambda: dict(batch_size=2), id="batch_size-numpy-int"
        ),
        pytest.param(
            lambda: dict(batch_size=10**30), lambda: dict(batch_size=5), id="batch_size-huge-is-clipped"
        ),
        pytest.param(
            lambda: dict(batch_size=6), lambda: dict(batch_size=5), id="batch_size-n-plus-one-is-clipped"
        ),
        pytest.param(lambda: dict(callback=_Callable()), lambda: dict(callback=None), id="callback-object"),
        pytest.param(lambda: dict(callback=print), lambda: dict(callback=None), id="callback-builtin"),
        pytest.param(
            lambda: dict(progress=np.False_), lambda: dict(progress=False), id="progress-numpy-bool"
        ),
        pytest.param(lambda: dict(lr=np.float16(0.5)), lambda: dict(lr=0.5), id="lr-float16"),
        pytest.param(lambda: dict(lr=5e-324), lambda: dict(lr=5e-324), id="lr-smallest-subnormal"),
    ],
)
def test_unusual_but_valid_keywords(backend, kwargs, same_as):
    net, twin = make_net(backend), make_net(backend)
    got = net.train(X, Y, **{"epochs": 2, **kwargs()})
    expected = twin.train(X, Y, **{"epochs": 2, **same_as()})
    np.testing.assert_array_equal(got, expected, strict=True)
    assert_params_equal(params_of(net), params_of(twin))


# ---------------------------------------------------------------------------
# 2. Several bad arguments at once: the first (in signature order) is named
# ---------------------------------------------------------------------------

MIXED_CASES = [
    ("forward-bad-shape-and-nan", lambda n: n.forward(np.full((2, 5), NAN)), ValueError, "x must be finite"),
    (
        "cost-both-nan",
        lambda n: n.cost(with_value(X, (0, 0), NAN), with_value(Y, (0, 0), NAN)),
        ValueError,
        esc("x must be finite, found nan at index (0, 0)"),
    ),
    (
        "cost-bad-x-dtype-bad-y-shape",
        lambda n: n.cost(X.astype(complex), Y[:, :1]),
        TypeError,
        esc("x must hold real numbers"),
    ),
    (
        "cost-good-x-bad-y-in-fortran",
        lambda n: n.cost(X, np.asfortranarray(with_value(Y, (2, 1), INF))),
        ValueError,
        esc("y must be finite, found inf at index (2, 1)"),
    ),
    (
        "gradients-x-wrong-y-wrong",
        lambda n: n.gradients(np.zeros(2), np.zeros(3)),
        ValueError,
        esc("x must have shape (3,), got (2,)"),
    ),
    (
        "step-good-data-bad-lr-and-flag",
        lambda n: n.step(x, y, -1.0, update_biases="no"),
        ValueError,
        esc("lr must be > 0, got -1.0"),
    ),
    (
        "step-bad-y-and-bad-lr",
        lambda n: n.step(x, [NAN, 0.5], "fast"),
        ValueError,
        esc("y must be finite, found nan at index (0,)"),
    ),
    (
        "train-data-before-keywords",
        lambda n: n.train(X, Y[:3], epochs=0, lr=NAN),
        ValueError,
        esc("X and Y must have the same number of rows, got X.shape=(5, 3) and Y.shape=(3, 2)"),
    ),
    (
        "train-epochs-before-lr",
        lambda n: n.train(X, Y, epochs=-1, lr="x", batch_size=0),
        ValueError,
        esc("epochs must be >= 1, got -1"),
    ),
    (
        "train-every-keyword-bad-but-the-last",
        lambda n: n.train(X, Y, progress="on"),
        TypeError,
        esc("progress must be True or False"),
    ),
]


@pytest.mark.parametrize("call, error, match", [pytest.param(*c[1:], id=c[0]) for c in MIXED_CASES])
def test_several_bad_arguments_name_the_first(backend, call, error, match):
    net, twin = make_net(backend), make_net(backend)
    before = params_of(net)
    with pytest.raises(error, match=match):
        call(net)
    assert_unchanged_and_working(net, twin, before)


# ---------------------------------------------------------------------------
# 3. Property tests: arrays of any shape, dtype and layout
# ---------------------------------------------------------------------------

PROP_SIZES = (2, 3, 2)
_prop_rng = np.random.default_rng(9)
PROP_X = _prop_rng.uniform(-1, 1, (4, PROP_SIZES[0]))
PROP_Y = _prop_rng.uniform(0, 1, (4, PROP_SIZES[-1]))

# Half real dtypes (accepted when shape and values are), half the others.
ANY_DTYPE = st.one_of(
    st.one_of(
        hnp.boolean_dtypes(),
        hnp.integer_dtypes(endianness="?"),
        hnp.unsigned_integer_dtypes(endianness="?"),
        hnp.floating_dtypes(sizes=(16, 32, 64), endianness="?"),
        st.just(np.dtype(np.longdouble)),
    ),
    st.one_of(
        hnp.complex_number_dtypes(),
        hnp.unicode_string_dtypes(max_len=3),
        hnp.byte_string_dtypes(max_len=3),
        hnp.datetime64_dtypes(),
        st.just(np.dtype(object)),
    ),
)

LAYOUT_NAMES = [
    "C",
    "fortran",
    "strided",
    "negative-stride",
    "read-only",
    "unaligned",
    "list",
    "masked",
    "transposed-copy",
]


@st.composite
def hostile_arrays(draw, valid_shapes):
    """An array (or nested list) of any dtype, a shape that is valid for the
    argument half of the time, any values (NaN, inf, huge) and any layout."""
    dtype = draw(ANY_DTYPE)
    shape = draw(
        st.one_of(
            st.sampled_from(valid_shapes), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
        )
    )
    if dtype.kind == "O":
        elements = st.one_of(st.floats(-10, 10), st.integers(-3, 3), st.none())
        values = draw(hnp.arrays(dtype, shape, elements=elements))
    elif dtype.kind == "f" and draw(st.booleans()):
        # Half the float arrays: moderate finite values, so that many are accepted.
        values = draw(hnp.arrays(dtype, shape, elements=st.floats(-4, 4, width=min(64, 8 * dtype.itemsize))))
    else:
        values = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(LAYOUT_NAMES))
    if layout == "fortran":
        return np.asfortranarray(values)
    if layout == "strided" and values.ndim:
        return strided(values)
    if layout == "negative-stride" and values.ndim:
        return negative_stride(values)
    if layout == "read-only":
        return read_only(values)
    if layout == "unaligned" and values.dtype.kind != "O" and values.size:
        return unaligned(values)
    if layout == "list":
        return values.tolist()
    if layout == "masked" and values.dtype.kind != "O":
        return np.ma.array(values, mask=draw(hnp.arrays(bool, values.shape)))
    if layout == "transposed-copy" and values.ndim == 2:
        return np.ascontiguousarray(values.T).T  # Fortran order with the shape drawn
    return values


def predicted_error(value, dtype, ok_shape):
    """What the input policy says about ``value`` as a network's data:
    ``None`` (accepted), ``TypeError`` or ``ValueError``."""
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        return ValueError
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        return TypeError
    with np.errstate(all="ignore"):
        if not np.isfinite(array.astype(dtype)).all():
            return ValueError
    return None if ok_shape(array.shape) else ValueError


# slot -> (argument name, shapes valid for it, is it valid?, call with the hostile value and clean partners)
def _rows_like(v, clean_rows):
    """Clean partner data with as many rows as the hostile value (at least one)."""
    shape = np.shape(np.asarray(v))
    n = max(1, shape[0]) if len(shape) == 2 else None
    return clean_rows[np.arange(n) % len(clean_rows)] if n else clean_rows[0]


n0, n1 = PROP_SIZES[0], PROP_SIZES[-1]
SLOTS = {
    "forward": (
        "x",
        [(n0,), (1, n0), (3, n0)],
        lambda s: s in ((n0,),) or (len(s) == 2 and s[0] >= 1 and s[1] == n0),
        lambda net, v: net.forward(v),
    ),
    "cost-x": (
        "x",
        [(n0,), (2, n0)],
        lambda s: s == (n0,) or (len(s) == 2 and s[0] >= 1 and s[1] == n0),
        lambda net, v: net.cost(v, _rows_like(v, PROP_Y)),
    ),
    "cost-y": (
        "y",
        [(n1,), (3, n1)],
        lambda s: s == (n1,) or (len(s) == 2 and s[0] >= 1 and s[1] == n1),
        lambda net, v: net.cost(_rows_like(v, PROP_X), v),
    ),
    "gradients-x": ("x", [(n0,)], lambda s: s == (n0,), lambda net, v: net.gradients(v, PROP_Y[0])),
    "gradients-y": ("y", [(n1,)], lambda s: s == (n1,), lambda net, v: net.gradients(PROP_X[0], v)),
    "step-x": ("x", [(n0,)], lambda s: s == (n0,), lambda net, v: net.step(v, PROP_Y[0], 0.5)),
    "step-y": ("y", [(n1,)], lambda s: s == (n1,), lambda net, v: net.step(PROP_X[0], v, 0.5)),
    "train-X": (
        "X",
        [(1, n0), (4, n0)],
        lambda s: len(s) == 2 and s[0] >= 1 and s[1] == n0,
        lambda net, v: net.train(
            v, _rows_like(v, PROP_Y) if np.ndim(np.asarray(v)) == 2 else PROP_Y, epochs=1, lr=0.5
        ),
    ),
    "train-Y": (
        "Y",
        [(1, n1), (4, n1)],
        lambda s: len(s) == 2 and s[0] >= 1 and s[1] == n1,
        lambda net, v: net.train(
            _rows_like(v, PROP_X) if np.ndim(np.asarray(v)) == 2 else PROP_X, v, epochs=1, lr=0.5
        ),
    ),
}


def _flat(result):
    if isinstance(result, tuple):  # gradients
        return np.concatenate([np.ravel(a) for part in result for a in part])
    return np.ravel(np.asarray(result, dtype=np.float64))


def _scale(net, v, slot):
    """A bound on the magnitude of the terms that enter any result of this
    call (inputs, targets and parameters): rounding differences between the
    backends are a fraction of it (see test_equivalence.py for the rates)."""
    data = max(float(np.abs(clean(v, np.float64)).max(initial=0.0)), 1.0)  # partners are within [-1, 1]
    params = sum(float(np.abs(p.astype(np.float64)).sum()) for p in params_of(net))
    return (1.0 + data) * (1.0 + params)


# Agreement with the reference, relative to that scale.  float64: both
# backends do the same operations in the same order (1e-12 and, after
# updates, 1e-9 leave room for a compiler that reassociates; the rates of
# test_equivalence.py).  float32: the kernel sums in float32 where the
# reference sums in double, off by about u = 2**-24 per term of a sum; here at
# most 4 terms (3 inputs and the bias) in each of 2 layers: 8 u per
# evaluation, and 64 u after the (at most 4) updates of one step or epoch.
# Measured: below 0.03 u.
U32 = 2.0**-24
RTOL = {np.dtype("float64"): 1e-12, np.dtype("float32"): 8 * U32}
RTOL_TRAINED = {np.dtype("float64"): 1e-9, np.dtype("float32"): 64 * U32}


def _outcome(call, net, value):
    try:
        return call(net, value), None
    except (ValueError, TypeError, FloatingPointError) as error:
        return None, error


@pytest.mark.parametrize("backend", fastbp.backends())  # not the fixture: hypothesis reruns the body
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=examples(120))
@given(data=st.data())
def test_any_array_is_refused_as_documented_or_agrees_with_the_reference(backend, dtype, data):
    dtype = np.dtype(dtype)
    slot = data.draw(st.sampled_from(list(SLOTS)), label="slot")
    name, valid_shapes, ok_shape, call = SLOTS[slot]
    value = data.draw(hostile_arrays(valid_shapes), label="value")

    net = Network(PROP_SIZES, seed=1, dtype=dtype, backend=backend)
    before = params_of(net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # hostile data never makes fastbp warn
        got, error = _outcome(call, net, value)

    expected_error = predicted_error(value, dtype, ok_shape)
    if expected_error is not None:
        assert type(error) is expected_error, f"{slot}: expected {expected_error.__name__}, got {error!r}"
        assert str(error).startswith(f"{name} "), f"the message does not name {name}: {error}"
        assert_params_equal(params_of(net), before)
        return
    if isinstance(error, FloatingPointError):
        # Accepted data whose arithmetic overflows float64 (values near 1e308)
        # or diverges: documented, and the reference says the same.
        reference_net = Network(PROP_SIZES, seed=1, dtype=dtype, backend="python")
        assert type(_outcome(call, reference_net, clean(value, dtype))[1]) is type(error)
        if not isinstance(error, TrainingDivergedError):
            assert_params_equal(params_of(net), before)
        return
    assert error is None, f"{slot}: accepted data raised {error!r}"

    # The same result, bit for bit, as the clean C-contiguous array of the dtype...
    twin = Network(PROP_SIZES, seed=1, dtype=dtype, backend=backend)
    expected = call(twin, clean(value, dtype))
    np.testing.assert_array_equal(_flat(got), _flat(expected), strict=True)
    assert_params_equal(params_of(net), params_of(twin))
    # ...which agrees with the reference backend.
    reference_net = Network(PROP_SIZES, seed=1, dtype=dtype, backend="python")
    reference = call(reference_net, clean(value, dtype))
    trained = slot.startswith(("step", "train"))
    rtol = (RTOL_TRAINED if trained else RTOL)[dtype] * _scale(reference_net, value, slot)
    assert np.abs(_flat(got) - _flat(reference)).max(initial=0.0) <= rtol
    for a, b in zip(params_of(net), params_of(reference_net)):
        assert np.abs(a.astype(np.float64) - b).max() <= rtol


# Hyper-parameters of any type: refused with a message naming the keyword, or
# accepted and the same run as their plain Python equivalent.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 6),
    st.just(10**30),
    st.floats(),
    st.text(max_size=3),
    st.complex_numbers(max_magnitude=2),
    st.lists(st.integers(1, 3), max_size=2),
    st.sampled_from(
        [np.int64(2), np.uint8(1), np.float32(0.25), np.bool_(True), np.array(1), np.float64("nan")]
    ),
)


def _predicted_keyword_error(keyword, value):
    is_bool = isinstance(value, (bool, np.bool_))
    is_int = isinstance(value, (int, np.integer)) and not is_bool
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not is_bool
    if keyword in ("lr", "batch_size", "optimizer") and value is None:
        return None  # the default: plain gradient descent with lr 0.5, online
    if keyword == "optimizer":
        return None if isinstance(value, fastbp.optimizers.Optimizer) else TypeError
    if keyword in ("epochs", "batch_size"):
        if not is_int:
            return TypeError
        return ValueError if value < 1 or (keyword == "epochs" and value > 10**6) else None
    if keyword == "lr":
        if not is_real:
            return TypeError
        return ValueError if not (math.isfinite(value) and value > 0) else None
    if keyword in ("shuffle", "update_biases", "progress"):
        return None if is_bool else TypeError
    if keyword == "seed":
        if value is None:
            return None
        if not is_int:
            return TypeError
        return ValueError if value < 0 else None
    if keyword == "callback":
        return None if value is None or callable(value) else TypeError
    raise AssertionError(keyword)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


@settings(max_examples=examples(150))
@given(keyword=st.sampled_from(list(BAD_KEYWORDS["train"])), value=ANY_VALUE)
def test_any_train_keyword_value_is_refused_or_means_its_plain_value(keyword, value):
    expected_error = _predicted_keyword_error(keyword, value)
    if expected_error is None and (
        (keyword == "progress" and value) or (keyword == "lr" and value is not None and value > 10)
    ):
        return  # a progress bar (optional tqdm) and divergence have tests of their own
    net, twin = make_net("cython"), make_net("cython")
    before = params_of(net)
    kwargs = {"epochs": 2, "shuffle": True, "seed": 0, keyword: value}
    try:
        got = net.train(X, Y, **kwargs)
    except (ValueError, TypeError) as error:
        assert type(error) is expected_error, f"{keyword}={value!r}: {error!r}"
        assert keyword in str(error), str(error)
        assert_params_equal(params_of(net), before)
        return
    assert expected_error is None, f"{keyword}={value!r} was accepted"
    if keyword == "seed" and value is None:
        assert np.isfinite(got).all()  # a fresh random order: nothing to compare with
        return
    expected = twin.train(X, Y, **{**kwargs, keyword: _plain(value)})
    np.testing.assert_array_equal(got, expected, strict=True)
    assert_params_equal(params_of(net), params_of(twin))


# ---------------------------------------------------------------------------
# 4. The sigmoid: exact and warning-free for every finite input and +-inf
# ---------------------------------------------------------------------------

# What "exact" means (docs/reliability.md): in both backends s(z) is
# evaluated in double as 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) for
# z < 0 (no overflow, no NaN, no warning) and rounded once to the array's
# dtype.  The reference takes e^z from math.exp; the compiled kernel takes it
# from a vectorised exp for a long array whose values all lie above -708 and
# from libm otherwise, so every check below runs on the same values grouped
# three ways (the whole array, sorted blocks of 64, one value per call), which
# gives every method every range.  Against the true value (60 significant
# digits): float32 results are within one unit in the last place (ulp) of the
# correctly rounded sigmoid and, but for a rare double rounding, equal to it;
# float64 results are within 2 ulps (the worst measured over this corpus, for
# both exps: a plain rounding analysis allows a few more).

decimal_context = decimal.Context(prec=60, Emin=-(10**9), Emax=10**9)


def _true_sigmoid(z):
    """s(z) as an exact Decimal (60 digits), for a finite float or +-inf."""
    if math.isinf(z):
        return decimal.Decimal(1 if z > 0 else 0)
    d = decimal.Decimal(z)  # exact
    c = decimal_context
    if z >= 0:
        return c.divide(1, c.add(1, c.exp(c.minus(d))))
    e = c.exp(d)
    return c.divide(e, c.add(1, e))


def _correctly_rounded(truth, dtype):
    """The value of ``dtype`` nearest to ``truth`` (a Decimal in [0, 1])."""
    guess = np.asarray(float(truth), dtype=dtype)[()]  # may be off by one after double rounding
    candidates = [np.nextafter(guess, dtype.type(-1)), guess, np.nextafter(guess, dtype.type(2))]
    candidates = [c for c in candidates if 0 <= c <= 1]
    return min(candidates, key=lambda c: (abs(decimal.Decimal(float(c)) - truth), float(c)))


def _formula(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _sigmoid_corpus(dtype, n_random):
    finfo = np.finfo(dtype)
    special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        float(finfo.tiny),
        float(finfo.smallest_subnormal),
        float(finfo.eps),
        float(finfo.max),
        17.0,
        36.0,
        36.7,
        37.0,
        88.7,
        89.0,
        103.9,
        104.0,
        707.9,
        708.0,
        708.1,
        709.7,
        709.8,
        745.1,
        745.2,
        1e300,
    ]
    z = [s * v for v in special for s in (1.0, -1.0)] + list(np.arange(-750.0, 750.0, 0.5))
    with np.errstate(over="ignore"):  # values beyond float32 become +-inf
        z = np.asarray(z, dtype=np.float64).astype(dtype, copy=False)
    rng = np.random.default_rng(2026)
    # Random bit patterns (every exponent equally likely) and uniform draws
    # over the range where s(z) is neither 0 nor 1 nor 1/2 in the dtype.
    itype = np.uint32 if dtype == np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(itype).max, size=n_random, dtype=itype, endpoint=True).view(dtype)
    spread = rng.uniform(-760.0, 60.0, size=n_random).astype(dtype)
    z = np.concatenate([z, bits[np.isfinite(bits)], spread, np.array([np.inf, -np.inf], dtype=dtype)])
    return np.ascontiguousarray(z, dtype=dtype)


def _run_sigmoid(backend, z):
    out = np.full(z.shape, np.nan, dtype=z.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            fastbp.get_backend(backend).sigmoid(z, out)
    return out


def _groupings(backend, z, singles=True):
    """{grouping: s(z)} with the values of ``z`` passed to the kernel whole, in
    sorted blocks of 64, and (``singles``) one per call."""
    results = {"whole": _run_sigmoid(backend, z)}
    order = np.argsort(z, kind="stable")
    blocks = np.full(z.shape, np.nan, dtype=z.dtype)
    for start in range(0, len(z), 64):
        chosen = order[start : start + 64]
        blocks[chosen] = _run_sigmoid(backend, np.ascontiguousarray(z[chosen]))
    results["sorted blocks of 64"] = blocks
    if singles:
        results["one per call"] = np.concatenate([_run_sigmoid(backend, z[i : i + 1]) for i in range(len(z))])
    return results


DTYPES = [np.dtype("float32"), np.dtype("float64")]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sigmoid_is_within_its_bound_of_the_truth_however_it_is_called(backend, dtype):
    z = _sigmoid_corpus(dtype, 3_000)
    best = np.array([_correctly_rounded(_true_sigmoid(v), dtype) for v in z.tolist()], dtype=dtype)
    # Results lie in [0, 1], where the bit patterns, read as integers, count
    # the representable values: their difference is the distance in ulps.
    itype = np.int32 if dtype == np.float32 else np.int64
    for grouping, out in _groupings(backend, z).items():
        ulps = np.abs(out.view(itype).astype(np.int64) - best.view(itype).astype(np.int64))
        worst = int(np.argmax(ulps))
        where = f"{grouping}: s({z[worst]!r}) = {out[worst]!r}, the truth rounds to {best[worst]!r}"
        if dtype == np.float32:
            assert ulps.max() <= 1, where
            assert np.count_nonzero(ulps) <= len(z) // 10_000, (
                f"{np.count_nonzero(ulps)} not correctly rounded; {where}"
            )
        else:
            assert ulps.max() <= 2, where
        assert (out[z == np.inf] == 1).all() and (out[z == -np.inf] == 0).all()


def test_sigmoid_float32_is_the_double_evaluation_rounded_once(backend):
    # The same values in float32 and float64: the float32 results are the
    # float64 ones rounded, bit for bit (one evaluation in double, one rounding).
    z32 = _sigmoid_corpus(np.dtype("float32"), 20_000)
    wide = _groupings(backend, z32.astype(np.float64), singles=False)
    for grouping, out in _groupings(backend, z32, singles=False).items():
        np.testing.assert_array_equal(out, wide[grouping].astype(np.float32), strict=True, err_msg=grouping)


def test_reference_sigmoid_is_the_formula_with_math_exp():
    for dtype in DTYPES:
        z = _sigmoid_corpus(dtype, 20_000)
        expected = np.array([_formula(float(v)) for v in z.tolist()], dtype=np.float64).astype(dtype)
        np.testing.assert_array_equal(_run_sigmoid("python", z), expected, strict=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sigmoid_of_every_exponent_is_in_range_and_warning_free(backend, dtype):
    # A sweep of bit patterns spread over all exponents and both signs: no
    # NaN, no value outside [0, 1], s(-z) = 1 - s(z) to rounding.
    itype = np.uint32 if dtype == np.float32 else np.uint64
    step = (np.iinfo(itype).max // (1 << (18 if backend == "cython" else 14))) | 1
    z = np.arange(0, np.iinfo(itype).max, step, dtype=itype).view(dtype)
    z = np.ascontiguousarray(z[~np.isnan(z)])
    mirrored = _groupings(backend, np.ascontiguousarray(-z), singles=False)
    for grouping, out in _groupings(backend, z, singles=False).items():
        assert not np.isnan(out).any() and ((out >= 0) & (out <= 1)).all(), grouping
        assert np.abs(out.astype(np.float64) + mirrored[grouping] - 1.0).max() <= 2 * np.finfo(dtype).eps, (
            grouping
        )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_network_with_extreme_finite_weights_saturates_without_warnings(backend, dtype):
    # The largest finite weights give net inputs of +-max (or +-inf after an
    # overflowing float32 sum, redone in double): outputs exactly 1 and 0,
    # for a narrow layer and for a wide one, with mixed signs and without.
    big = float(np.finfo(dtype).max)
    for signs in ([1.0, -1.0], [1.0] * 16, [1.0, -1.0] * 8):
        weights = [[[s * big] for s in signs]]
        net = Network.from_weights(weights, [[0.0] * len(signs)], dtype=dtype, backend=backend)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all="raise"):
                out = net.forward([[1.0], [0.5], [1e-30]])
        expected = [[1.0 if s > 0 else 0.0 for s in signs]] * 3
        assert out.tolist() == expected, signs
