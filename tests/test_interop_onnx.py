"""ONNX export (``fastbp.interop.save_onnx``, graph in ``fastbp._onnx``).

onnxruntime runs every exported model and its outputs are compared with
``Network.forward``: every hidden and output activation, each loss, 0 to 3
hidden layers, float32 and float64, batches of 1 and of many rows; the
estimators' exports against ``predict`` and ``predict_proba``.  Also: the
checker, the graph's structure, names, types and metadata, bad input, the
opset, atomic saving under simulated failures, and ``fastbp convert``.
"""

import argparse
import os
import re
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'fastbp[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'fastbp[onnx]')")

from onnx import TensorProto, numpy_helper
from support import fail, write_half_then_fill_the_disk

import fastbp
import fastbp._onnx
import fastbp.cli
from fastbp import Network
from fastbp._model import HIDDEN_ACTIVATIONS, LEAKY_SLOPE
from fastbp.interop import save_onnx

# Output activation and loss: every combination Network accepts.
OUTPUTS = [(name, "squared_error") for name in HIDDEN_ACTIVATIONS] + [
    ("sigmoid", "cross_entropy"),
    ("softmax", "cross_entropy"),
]
# The bar: float64 within 1e-12 relative, float32 within 1e-6.
RTOL = {"float64": 1e-12, "float32": 1e-6}
ELEM_TYPE = {"float64": TensorProto.DOUBLE, "float32": TensorProto.FLOAT}
ORT_TYPE = {"float64": "tensor(double)", "float32": "tensor(float)"}
BATCH = 37


def session(path):
    return ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])


def run(path, X):
    """Every output of the model at ``path`` for the input ``X``, by name."""
    s = session(path)
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, {"input": X})))


def assert_close(actual, expected, rtol, scale=None, what="output"):
    """max |actual - expected| <= rtol * scale, ``scale`` the largest |expected|
    unless given: relative to the array's size, as tests/test_equivalence.py
    compares backends (an entry near zero that came out of a sum of both signs
    carries the rounding error of its terms, not of its own size)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert np.isfinite(actual).all(), f"{what}: non-finite values {actual}"
    if scale is None:
        scale = np.abs(expected).max(initial=0.0)
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    assert (err <= rtol * np.maximum(scale, np.finfo(np.float64).tiny)).all(), (
        f"{what}: max |onnxruntime - fastbp| = {err.max():.3g}, relative to the scale {np.max(scale):.3g}: "
        f"{(err / scale).max():.3g} > {rtol:.3g}"
    )


def inputs(n_rows, n_in, dtype, seed=0):
    # Spread wide enough that sigmoids and tanh saturate on some entries and
    # relus are negative on many.
    return (np.random.default_rng(seed).normal(size=(n_rows, n_in)) * 2.0).astype(dtype)


# Each activation's Lipschitz constant (softmax: in the max norm), by which
# it scales an error in its input.
LIPSCHITZ = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "identity": 1.0, "softmax": 0.5}


def output_scale(net, X):
    """The scale of the rounding error in the outputs, the usual running bound
    carried through the layers: a layer's sums carry an error relative to their
    sum of |terms| (|fl(sum t) - sum t| <= n u sum |t|), the error already in
    its input reaches them through |W|, and the activation scales both by at
    most its Lipschitz constant and adds its own rounding of |a|.  So with
    ``m_0 = |X|``, ``m_l = |a_l| + L_f (|W_l| m_{l-1} + |b_l|)``; the scale is
    the largest entry of ``m_L``.  Without it a wide layer whose terms cancel
    (130 inputs summing to 0.1) fails a test that measured only the outputs."""
    m = np.abs(X.astype(np.float64))
    for l, (W, b, f) in enumerate(zip(net.weights, net.biases, net.activations), start=1):
        upto = Network.from_weights(
            net.weights[:l],
            net.biases[:l],
            activation=list(net.activations[: l - 1]),
            output_activation=f,
            loss="cross_entropy" if f == "softmax" else "squared_error",
            dtype=net.dtype,
        )
        m = np.abs(upto.forward(X).astype(np.float64)) + LIPSCHITZ[f] * (m @ np.abs(W.T) + np.abs(b))
    return float(m.max())


def check_against_forward(net, path, seed=0):
    for n_rows in (1, BATCH):
        X = inputs(n_rows, net.layer_sizes[0], net.dtype, seed)
        out = run(path, X)
        assert list(out) == ["output"]
        assert_close(
            out["output"], net.forward(X), RTOL[net.dtype.name], scale=output_scale(net, X), what=repr(net)
        )


# ---------------------------------------------------------------------------
# A network: outputs equal forward
# ---------------------------------------------------------------------------

CASES = [
    (hidden, output, loss, depth)
    for output, loss in OUTPUTS
    for depth in range(4)
    for hidden in (HIDDEN_ACTIVATIONS if depth else ("sigmoid",))
]  # depth 0: no hidden layer


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("hidden", "output", "loss", "depth"), CASES, ids=[f"{h}-{o}-{loss}-{d}hidden" for h, o, loss, d in CASES]
)
def test_outputs_equal_forward(tmp_path, dtype, hidden, output, loss, depth):
    sizes = [*[5, 7, 4, 6][: depth + 1], 3]
    net = Network(sizes, activation=hidden, output_activation=output, loss=loss, seed=depth, dtype=dtype)
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    check_against_forward(net, path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_networks_equal_forward(tmp_path, data):
    """Random sizes and per-layer activations, including wide layers (where the
    products' order of summation differs most) and single units."""
    dtype = data.draw(st.sampled_from(["float64", "float32"]))
    sizes = data.draw(st.lists(st.sampled_from([1, 2, 3, 8, 33, 130]), min_size=2, max_size=5))
    output, loss = data.draw(st.sampled_from(OUTPUTS))
    hidden = data.draw(
        st.lists(st.sampled_from(HIDDEN_ACTIVATIONS), min_size=len(sizes) - 2, max_size=len(sizes) - 2)
    )
    net = Network(
        sizes,
        activation=hidden,
        output_activation=output,
        loss=loss,
        seed=data.draw(st.integers(0, 2**32 - 1)),
        dtype=dtype,
    )
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    check_against_forward(net, path, seed=data.draw(st.integers(0, 1000)))


def test_trained_weights_are_exported(tmp_path):
    """A trained network (weights no longer its initial draw) and the weights
    as stored: each layer's initializers are net.weights / net.biases exactly."""
    net = Network([2, 4, 1], activation="tanh", seed=3)
    net.train([[0, 0], [0, 1], [1, 0], [1, 1]], [[0], [1], [1], [0]], epochs=200, lr=0.5)
    path = tmp_path / "xor.onnx"
    save_onnx(net, path)
    check_against_forward(net, path)
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        assert np.array_equal(stored[f"layer{l}.weight"], W) and stored[f"layer{l}.weight"].dtype == W.dtype
        assert np.array_equal(stored[f"layer{l}.bias"], b)


# ---------------------------------------------------------------------------
# The graph: checker, structure, names, types, metadata
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_checker_names_and_types(tmp_path, dtype):
    net = Network(
        [4, 6, 2], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0, dtype=dtype
    )
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    (x,), (y,) = model.graph.input, model.graph.output
    for value, name, width in ((x, "input", 4), (y, "output", 2)):
        assert value.name == name
        assert value.type.tensor_type.elem_type == ELEM_TYPE[dtype]
        dims = value.type.tensor_type.shape.dim
        assert [dims[0].dim_param, dims[1].dim_value] == ["N", width]
    s = session(path)
    assert [(i.name, i.type, i.shape) for i in s.get_inputs()] == [("input", ORT_TYPE[dtype], ["N", 4])]
    assert [(o.name, o.type, o.shape) for o in s.get_outputs()] == [("output", ORT_TYPE[dtype], ["N", 2])]


def test_opset_and_metadata(tmp_path):
    net = Network([3, 2, 1], activation="tanh", seed=0)
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    model = onnx.load(path)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.ir_version == 8  # the IR that opset 17 came with: older runtimes read it
    assert model.producer_name == "fastbp" and model.producer_version == fastbp.__version__
    assert repr(net) in model.doc_string and fastbp.__version__ in model.doc_string
    assert model.graph.name == "fastbp.Network"
    props = {p.key: p.value for p in model.metadata_props}
    assert props == {
        "fastbp_version": fastbp.__version__,
        "layer_sizes": "[3, 2, 1]",
        "activations": '["tanh", "sigmoid"]',
        "loss": "squared_error",
        "dtype": "float64",
    }


@pytest.mark.parametrize(
    ("dtype", "ops"),
    [
        ("float64", ["Gemm", "Mul", "Max", "Gemm", "Tanh", "Gemm", "Softmax"]),
        ("float32", ["Gemm", "LeakyRelu", "Gemm", "Tanh", "Gemm", "Softmax"]),
    ],
)
def test_one_gemm_and_one_activation_per_layer(tmp_path, dtype, ops):
    """One Gemm per layer; float64 leaky_relu is Max(z, 0.01 z) with a double
    slope (LeakyRelu's alpha attribute is a 32-bit float)."""
    net = Network(
        [3, 4, 5, 2],
        activation=["leaky_relu", "tanh"],
        output_activation="softmax",
        loss="cross_entropy",
        seed=0,
        dtype=dtype,
    )
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    graph = onnx.load(path).graph
    assert [n.op_type for n in graph.node] == ops
    assert all(n.domain == "" for n in graph.node)
    gemms = [n for n in graph.node if n.op_type == "Gemm"]
    assert all({a.name: a.i for a in n.attribute} == {"transB": 1} for n in gemms)
    (softmax,) = [n for n in graph.node if n.op_type == "Softmax"]
    assert [(a.name, a.i) for a in softmax.attribute] == [("axis", -1)]
    stored = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    if dtype == "float64":
        assert stored["layer1.slope"] == LEAKY_SLOPE and stored["layer1.slope"].dtype == np.float64
    else:
        (leaky,) = [n for n in graph.node if n.op_type == "LeakyRelu"]
        assert leaky.attribute[0].f == np.float32(LEAKY_SLOPE)


def test_float64_leaky_relu_uses_fastbps_slope_exactly(tmp_path):
    """Negative pre-activations through an identity-free leaky layer: 0.01 z
    to float64's precision, which LeakyRelu's float32 alpha (2e-8 off) is not."""
    W = np.array([[1.0], [-3.0]])
    net = Network.from_weights(
        [W, np.eye(2)], [np.zeros(2), np.zeros(2)], activation="leaky_relu", output_activation="identity"
    )
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    X = np.array([[0.7], [-1.3], [123.456]])
    out = run(path, X)["output"]
    assert np.array_equal(out, net.forward(X))
    assert np.array_equal(out[:, 0], np.where(X[:, 0] >= 0, X[:, 0], LEAKY_SLOPE * X[:, 0]))


def test_identity_layers_have_no_activation_node(tmp_path):
    net = Network([2, 3, 2], activation="identity", output_activation="identity", seed=0)
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    assert [n.op_type for n in onnx.load(path).graph.node] == ["Gemm", "Gemm"]
    check_against_forward(net, path)


@pytest.mark.parametrize("opset", [13, 15, 17, 21])
def test_opsets(tmp_path, opset):
    net = Network(
        [3, 4, 3], activation="leaky_relu", output_activation="softmax", loss="cross_entropy", seed=0
    )
    path = tmp_path / "net.onnx"
    save_onnx(net, path, opset=opset)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import] == [opset]
    check_against_forward(net, path)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", [None, "net.fbp", [[1.0]], np.zeros((2, 2)), object()])
def test_a_model_that_is_not_a_network(tmp_path, model):
    with pytest.raises(
        TypeError, match=r"model must be a fastbp\.Network or a fitted .*got \S*" + type(model).__qualname__
    ):
        save_onnx(model, tmp_path / "out.onnx")
    assert os.listdir(tmp_path) == []


def test_another_librarys_estimator(tmp_path):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(
        TypeError, match=r"got sklearn\.neural_network\._multilayer_perceptron\.MLPClassifier"
    ):
        save_onnx(MLPClassifier(), tmp_path / "out.onnx")


@pytest.mark.parametrize("path", [3, None, 2.5, ["a.onnx"]])
def test_a_path_that_is_not_a_path(path):
    with pytest.raises(TypeError, match=re.escape("path must be a str or os.PathLike")):
        save_onnx(Network([2, 1], seed=0), path)


def test_unwritable_paths(tmp_path):
    net = Network([2, 1], seed=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_onnx(net, tmp_path / "no such directory" / "net.onnx")
    (tmp_path / "a directory").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save_onnx(net, tmp_path / "a directory")
    assert os.listdir(tmp_path) == ["a directory"]


@pytest.mark.parametrize(
    ("opset", "error", "message"),
    [
        (12, ValueError, "opset must be from 13 to"),
        (10**6, ValueError, "opset must be from 13 to"),
        ("17", TypeError, "opset must be an int"),
        (17.0, TypeError, "opset must be an int"),
        (True, TypeError, "opset must be an int"),
    ],
)
def test_bad_opset(tmp_path, opset, error, message):
    with pytest.raises(error, match=message):
        save_onnx(Network([2, 1], seed=0), tmp_path / "net.onnx", opset=opset)
    assert os.listdir(tmp_path) == []


def test_non_finite_weights_are_refused(tmp_path):
    net = Network([2, 2, 1], seed=0)
    net._params[3] = np.nan  # no public way: Network refuses NaN weights
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        save_onnx(net, tmp_path / "net.onnx")
    assert os.listdir(tmp_path) == []


def test_too_large_for_one_onnx_file(tmp_path, monkeypatch):
    """A model is one protobuf message (at most 2 GiB): larger parameters are
    refused up front.  Here with the limit lowered to leave 100 bytes for them."""
    monkeypatch.setattr("fastbp._onnx.MAX_PROTOBUF_BYTES", fastbp._onnx._OVERHEAD_BYTES + 100)
    save_onnx(Network([2, 2, 1], seed=0), tmp_path / "small.onnx")  # 9 parameters, 72 bytes
    with pytest.raises(ValueError, match="its parameters take 104 bytes, more than one ONNX file"):
        save_onnx(Network([2, 3, 1], seed=0), tmp_path / "large.onnx")  # 13 parameters
    assert os.listdir(tmp_path) == ["small.onnx"]


def test_without_onnx(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'fastbp\[onnx\]'"):
        save_onnx(Network([2, 1], seed=0), tmp_path / "net.onnx")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Atomic saving (as tests/test_modelfile.py tests Network.save)
# ---------------------------------------------------------------------------


def interrupt(f, chunks):
    f.write(b"\x08")
    raise KeyboardInterrupt


def checker_refuses(*args, **kwargs):
    raise onnx.checker.ValidationError("simulated checker failure")


FAILURES = {
    "fsync fails": ("os.fsync", fail, OSError),
    "replace fails": ("os.replace", fail, OSError),
    "disk full mid-write": ("fastbp._files._write_chunks", write_half_then_fill_the_disk, OSError),
    "Ctrl-C mid-write": ("fastbp._files._write_chunks", interrupt, KeyboardInterrupt),
    "the checker refuses": ("onnx.checker.check_model", checker_refuses, onnx.checker.ValidationError),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch, failure):
    target, replacement, exception = FAILURES[failure]
    path = tmp_path / "net.onnx"
    good = Network([2, 3, 1], seed=0)
    save_onnx(good, path)
    before = path.read_bytes()
    monkeypatch.setattr(target, replacement)
    with pytest.raises(exception):
        save_onnx(Network([4, 4, 4], seed=1), path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["net.onnx"]  # no temporary file left behind
    assert path.read_bytes() == before
    check_against_forward(good, path)


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch, failure):
    target, replacement, exception = FAILURES[failure]
    monkeypatch.setattr(target, replacement)
    with pytest.raises(exception):
        save_onnx(Network([2, 1], seed=0), tmp_path / "net.onnx")
    assert os.listdir(tmp_path) == []


def test_saving_over_a_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "net.onnx"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    save_onnx(Network([2, 1], seed=0), path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    onnx.checker.check_model(onnx.load(path), full_check=True)


# ---------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sklearn_estimators():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install 'fastbp[sklearn]')")
    import fastbp.sklearn

    return fastbp.sklearn


def fitted(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few epochs are enough here
        return estimator.fit(X, y)


def features(seed=0, n_rows=80):
    return np.random.default_rng(seed).normal(size=(n_rows, 4))


RNG = np.random.default_rng(1)
TARGETS = {
    "binary int": RNG.integers(0, 2, 80),
    "binary strings": np.array(["no", "yes"])[RNG.integers(0, 2, 80)],
    "binary bool": RNG.integers(0, 2, 80).astype(bool),
    "multiclass int": RNG.integers(0, 3, 80) * 10 - 7,
    "multiclass strings": np.array(["cat", "dog", "emu", "gnu"])[RNG.integers(0, 4, 80)],
    "multiclass float": RNG.integers(0, 3, 80) * 2.0,  # integral values: classes, not a continuous y
    "multilabel": RNG.integers(0, 2, (80, 3)),
}
LABEL_TYPE = {"i": TensorProto.INT64, "U": TensorProto.STRING, "b": TensorProto.BOOL, "f": TensorProto.DOUBLE}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_classifier_equals_predict_and_predict_proba(tmp_path, sklearn_estimators, dtype, loss, target):
    y = TARGETS[target]
    X = features()
    clf = fitted(
        sklearn_estimators.BPClassifier(
            hidden_layer_sizes=(6,), activation="tanh", loss=loss, max_iter=5, dtype=dtype, random_state=0
        ),
        X,
        y,
    )
    path = tmp_path / "clf.onnx"
    save_onnx(clf, path)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    n_columns = 2 if target.startswith("binary") else clf.classes_.size
    label_shape = ["N", 3] if target == "multilabel" else ["N"]
    label_type = TensorProto.INT64 if target == "multilabel" else LABEL_TYPE[clf.classes_.dtype.kind]
    assert [(o.name, o.type.tensor_type.elem_type) for o in model.graph.output] == [
        ("label", label_type),
        ("probabilities", TensorProto.DOUBLE),
    ]
    s = session(path)
    assert [(o.name, o.shape) for o in s.get_outputs()] == [
        ("label", label_shape),
        ("probabilities", ["N", n_columns]),
    ]
    assert [(i.name, i.type, i.shape) for i in s.get_inputs()] == [("input", ORT_TYPE[dtype], ["N", 4])]
    for n_rows in (1, 50):
        Xt = features(seed=2, n_rows=n_rows)
        out = run(path, Xt.astype(dtype))
        expected = clf.predict(Xt)
        label = out["label"].astype(expected.dtype) if expected.dtype.kind == "U" else out["label"]
        assert label.shape == expected.shape and label.dtype == expected.dtype
        assert np.array_equal(label, expected)
        assert_close(out["probabilities"], clf.predict_proba(Xt), RTOL[dtype], what="probabilities")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("out_activation", ["identity", "logistic"])
@pytest.mark.parametrize("y_shape", [(80,), (80, 1), (80, 3)])
def test_regressor_equals_predict(tmp_path, sklearn_estimators, dtype, out_activation, y_shape):
    X = features()
    y = np.random.default_rng(3).normal(size=y_shape) * 40 + 100  # far from the sigmoid's (0, 1)
    reg = fitted(
        sklearn_estimators.BPRegressor(
            hidden_layer_sizes=(6, 5),
            out_activation=out_activation,
            learning_rate_init=1e-4,
            max_iter=5,
            dtype=dtype,
            random_state=0,
        ),
        X,
        y,
    )
    path = tmp_path / "reg.onnx"
    save_onnx(reg, path)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.name, o.type.tensor_type.elem_type) for o in model.graph.output] == [
        ("variable", TensorProto.DOUBLE)
    ]
    assert session(path).get_outputs()[0].shape == ["N", *y_shape[1:]]
    for n_rows in (1, 50):
        Xt = features(seed=2, n_rows=n_rows)
        expected = reg.predict(Xt)
        # The rounding error is the network's, times the target scaling's factor.
        outputs = reg.network_.forward(Xt.astype(dtype)).astype(np.float64)
        scale = np.abs(outputs).max() * getattr(reg, "y_scale_", np.ones(1))
        scale = scale if expected.ndim == 2 else scale.ravel()
        assert_close(
            run(path, Xt.astype(dtype))["variable"],
            expected,
            RTOL[dtype],
            scale=np.maximum(scale, np.abs(expected).max()),
            what="variable",
        )
    if out_activation == "logistic":
        assert "y_center" in {t.name for t in model.graph.initializer}


def test_estimator_metadata(tmp_path, sklearn_estimators):
    clf = fitted(
        sklearn_estimators.BPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0),
        features(),
        TARGETS["binary int"],
    )
    path = tmp_path / "clf.onnx"
    save_onnx(clf, path)
    model = onnx.load(path)
    assert model.graph.name == "fastbp.sklearn.BPClassifier"
    assert repr(clf.network_) in model.doc_string
    assert {p.key: p.value for p in model.metadata_props}["estimator"] == "fastbp.sklearn.BPClassifier"


@pytest.mark.parametrize("name", ["BPClassifier", "BPRegressor"])
def test_unfitted_estimators_are_refused(tmp_path, sklearn_estimators, name):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match=f"This {name} instance is not fitted yet"):
        save_onnx(getattr(sklearn_estimators, name)(), tmp_path / "est.onnx")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# fastbp convert MODEL OUT.onnx
# ---------------------------------------------------------------------------


def cli_commands():
    parser = fastbp.cli._parser("fastbp")
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(commands.choices)


@pytest.mark.skipif("convert" not in cli_commands(), reason="fastbp convert not present")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cli_convert_to_onnx(tmp_path, dtype, capsys):
    net = Network(
        [3, 5, 2], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0, dtype=dtype
    )
    net.save(tmp_path / "net.fbp")
    status = fastbp.cli.main(["convert", str(tmp_path / "net.fbp"), str(tmp_path / "net.onnx")])
    assert status == 0, capsys.readouterr().err
    onnx.checker.check_model(onnx.load(tmp_path / "net.onnx"), full_check=True)
    check_against_forward(net, tmp_path / "net.onnx")
