"""FANN's formats (``fastbp.interop``; the formats in ``fastbp._fann``): data
files and ``.net`` networks, read and written, proved against libfann itself
(Debian's libdoublefann 2.2, driven through ctypes; skipped where it is
absent), FANN's own datasets (skipped where ../shared/fann-datasets is
absent), every kind of bad input, and a mutation fuzz of good files.

The fuzz runs ``FASTBP_FUZZ_CASES`` random mutations per format (default 5000)
on top of its exhaustive truncations; for a longer run:

    FASTBP_FUZZ_CASES=100000 pytest tests/test_interop_fann.py -k fuzz
"""

import ctypes
import ctypes.util
import io
import locale
import os
import random
import re
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from fastbp import Network, _fann
from fastbp.interop import load_fann, read_fann_data, save_fann, write_fann_data

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("FASTBP_FANN_DATASETS", REPO.parent / "shared" / "fann-datasets"))
needs_datasets = pytest.mark.skipif(
    not (DATASETS / "parity8.train").exists(),
    reason=f"FANN's datasets are not in {DATASETS} (set FASTBP_FANN_DATASETS)",
)

XOR = "4 2 1\n-1 -1\n-1\n-1 1\n1\n1 -1\n1\n1 1\n-1\n"  # FANN's examples/xor.data

FANN_LINEAR, FANN_SIGMOID, FANN_SIGMOID_STEPWISE, FANN_SIGMOID_SYMMETRIC = 0, 3, 4, 5
FANN_TRAIN_INCREMENTAL, FANN_TRAIN_RPROP = 0, 2


# ---------------------------------------------------------------------------
# libfann through ctypes
# ---------------------------------------------------------------------------


class TrainData(ctypes.Structure):
    """``struct fann_train_data``, public in FANN 2.2's fann_train.h (no accessor reads the values)."""

    _fields_ = [
        ("errno_f", ctypes.c_int),
        ("error_log", ctypes.c_void_p),
        ("errstr", ctypes.c_char_p),
        ("num_data", ctypes.c_uint),
        ("num_input", ctypes.c_uint),
        ("num_output", ctypes.c_uint),
        ("input", ctypes.POINTER(ctypes.POINTER(ctypes.c_double))),
        ("output", ctypes.POINTER(ctypes.POINTER(ctypes.c_double))),
    ]


class LibFann:
    """The few functions of libdoublefann the tests call (``fann_type`` is double)."""

    def __init__(self, lib):
        self.lib = lib
        p, c_uint, c_double = ctypes.c_void_p, ctypes.c_uint, ctypes.c_double
        signatures = {
            "fann_create_from_file": (p, [ctypes.c_char_p]),
            "fann_create_standard_array": (p, [c_uint, ctypes.POINTER(c_uint)]),
            "fann_create_shortcut_array": (p, [c_uint, ctypes.POINTER(c_uint)]),
            "fann_create_sparse_array": (p, [ctypes.c_float, c_uint, ctypes.POINTER(c_uint)]),
            "fann_save": (ctypes.c_int, [p, ctypes.c_char_p]),
            "fann_save_to_fixed": (ctypes.c_int, [p, ctypes.c_char_p]),
            "fann_destroy": (None, [p]),
            "fann_run": (ctypes.POINTER(c_double), [p, ctypes.POINTER(c_double)]),
            "fann_get_num_input": (c_uint, [p]),
            "fann_get_num_output": (c_uint, [p]),
            "fann_randomize_weights": (None, [p, c_double, c_double]),
            "fann_set_activation_function_layer": (None, [p, ctypes.c_int, ctypes.c_int]),
            "fann_set_activation_steepness_layer": (None, [p, c_double, ctypes.c_int]),
            "fann_set_training_algorithm": (None, [p, ctypes.c_int]),
            "fann_set_learning_rate": (None, [p, ctypes.c_float]),
            "fann_train_on_data": (None, [p, p, c_uint, c_uint, ctypes.c_float]),
            "fann_read_train_from_file": (p, [ctypes.c_char_p]),
            "fann_save_train": (ctypes.c_int, [p, ctypes.c_char_p]),
            "fann_destroy_train": (None, [p]),
            "fann_length_train_data": (c_uint, [p]),
            "fann_num_input_train_data": (c_uint, [p]),
            "fann_num_output_train_data": (c_uint, [p]),
            "fann_set_error_log": (None, [p, p]),
        }
        for name, (restype, argtypes) in signatures.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
            setattr(self, name[len("fann_") :], function)
        self.set_error_log(None, None)  # FANN's errors are checked here, not printed

    def load(self, path):
        ann = self.create_from_file(os.fsencode(path))
        assert ann, f"libfann could not load {path}"
        return ann

    def run_rows(self, ann, X):
        n_out = self.get_num_output(ann)
        out = np.empty((len(X), n_out))
        for i, x in enumerate(np.ascontiguousarray(X, dtype=np.float64)):
            result = self.run(ann, x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
            out[i] = result[:n_out]
        return out

    def read_data(self, path):
        """``(X, Y)`` as fann_read_train_from_file reads ``path``.  (Not through
        fann_save_train: FANN 2.2 writes floating-point data with "%f", six
        decimals.)"""
        pointer = self.read_train_from_file(os.fsencode(path))
        assert pointer, f"libfann could not read {path}"
        try:
            data = ctypes.cast(pointer, ctypes.POINTER(TrainData)).contents
            shape = (
                self.length_train_data(pointer),
                self.num_input_train_data(pointer),
                self.num_output_train_data(pointer),
            )
            assert (data.num_data, data.num_input, data.num_output) == shape  # the struct's layout is right
            n, n_in, n_out = shape
            X = np.array([data.input[i][:n_in] for i in range(n)]).reshape(n, n_in)
            Y = np.array([data.output[i][:n_out] for i in range(n)]).reshape(n, n_out)
        finally:
            self.destroy_train(pointer)
        return X, Y

    def layers(self, sizes):
        return len(sizes), (ctypes.c_uint * len(sizes))(*sizes)


def _find_libfann():
    name = ctypes.util.find_library("doublefann") or "libdoublefann.so.2"
    try:
        return LibFann(ctypes.CDLL(name))
    except (OSError, AttributeError):
        return None


LIBFANN = _find_libfann()
needs_libfann = pytest.mark.skipif(
    LIBFANN is None, reason="libdoublefann is not installed (Debian: apt-get install libfann-dev)"
)


def libc():
    return ctypes.CDLL(ctypes.util.find_library("c"))


# ---------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------


def test_reads_fann_data(tmp_path):
    path = tmp_path / "xor.data"
    path.write_text(XOR)
    X, Y = read_fann_data(path)
    assert X.dtype == Y.dtype == np.float64 and X.flags.c_contiguous and Y.flags.c_contiguous
    np.testing.assert_array_equal(X, [[-1, -1], [-1, 1], [1, -1], [1, 1]])
    np.testing.assert_array_equal(Y, [[-1], [1], [1], [-1]])
    X2, Y2 = read_fann_data(str(path))  # a str path too
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(Y2, Y)


def test_reader_layout_is_inputs_then_outputs(tmp_path):
    path = tmp_path / "d.data"
    path.write_text("3 2 1\n1 2\n3\n4 5\n6\n7 8\n9\n")
    X, Y = read_fann_data(path)
    np.testing.assert_array_equal(X, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(Y, [[3], [6], [9]])


def test_whitespace_is_free_form(tmp_path):
    """Any whitespace separates numbers, even within a sample or after the header on its line."""
    path = tmp_path / "d.data"
    path.write_text("2 1 2 0.25\n0.5\t0.75 1e-1\r\n\n 0 +1.\n")
    X, Y = read_fann_data(path)
    np.testing.assert_array_equal(X, [[0.25], [0.1]])
    np.testing.assert_array_equal(Y, [[0.5, 0.75], [0.0, 1.0]])
    path.write_text("1\n1\n2 .5\n-2E+2 7e-3")  # the header on three lines, no final newline
    X, Y = read_fann_data(path)
    np.testing.assert_array_equal(X, [[0.5]])
    np.testing.assert_array_equal(Y, [[-200.0, 0.007]])


def awkward_values(rng, shape):
    values = rng.standard_normal(shape) * 10.0 ** rng.integers(-300, 300, size=shape)
    flat = values.reshape(-1)
    flat[:6] = [1 / 3, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1]
    return values


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_write_then_read_is_exact(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = awkward_values(rng, (7, 3))
    Y = rng.uniform(-1, 1, size=(7, 2))
    if dtype == "float32":
        X = rng.standard_normal((7, 3)).astype(np.float32) * np.float32(1e-20)
        Y = Y.astype(np.float32)
    path = tmp_path / "d.data"
    write_fann_data(path, X, Y)
    X2, Y2 = read_fann_data(path)
    assert X2.dtype == np.float64
    np.testing.assert_array_equal(X2, X)  # float32 values widened exactly
    np.testing.assert_array_equal(Y2, Y)
    assert np.signbit(X2).tolist() == np.signbit(X).tolist()  # -0.0 stays -0.0
    if dtype == "float32":
        assert (X2.astype(np.float32) == X).all()
    lines = path.read_text().splitlines()
    assert lines[0] == "7 3 2" and len(lines) == 1 + 2 * 7  # one line of inputs, one of outputs per sample


def test_writer_uses_a_point_whatever_the_locale(tmp_path):
    tried = 0
    old = locale.setlocale(locale.LC_NUMERIC)  # the current setting, restored after each
    for name in ("da_DK.UTF-8", "de_DE.UTF-8", "fr_FR.UTF-8"):
        try:
            locale.setlocale(locale.LC_NUMERIC, name)
        except locale.Error:
            continue
        tried += 1
        try:
            write_fann_data(tmp_path / "d.data", [[0.5, 1.25]], [[-0.75]])
            (tmp_path / "r.data").write_text("1 1 1\n0.5\n0.25\n")
            X, Y = read_fann_data(tmp_path / "r.data")
        finally:
            locale.setlocale(locale.LC_NUMERIC, old)
        assert (tmp_path / "d.data").read_text() == "1 2 1\n0.5 1.25\n-0.75\n"
        assert X[0, 0] == 0.5 and Y[0, 0] == 0.25
    if not tried:
        pytest.skip("no locale with a ',' decimal point is installed")


def test_writer_refuses_bad_arrays(tmp_path):
    path = tmp_path / "d.data"
    with pytest.raises(ValueError, match=r"X must be finite, found nan at index \(1, 0\)"):
        write_fann_data(path, [[0.0], [np.nan]], [[0.0], [1.0]])
    with pytest.raises(ValueError, match="Y must be finite, found inf"):
        write_fann_data(path, [[0.0]], [[np.inf]])
    with pytest.raises(ValueError, match=r"X must be a 2-D array .* got shape \(3,\)"):
        write_fann_data(path, [1.0, 2.0, 3.0], [[0.0]])
    with pytest.raises(ValueError, match=r"X must be a 2-D array .* got shape \(0, 1\)"):
        write_fann_data(path, np.zeros((0, 1)), np.zeros((0, 1)))
    with pytest.raises(ValueError, match="same number of rows, got 2 and 1"):
        write_fann_data(path, [[0.0], [1.0]], [[0.0]])
    with pytest.raises(TypeError, match="X must hold real numbers"):
        write_fann_data(path, [["a"]], [[0.0]])
    with pytest.raises(TypeError, match=re.escape("path must be a str or os.PathLike")):
        write_fann_data(3, [[0.0]], [[0.0]])
    assert not path.exists()  # nothing written


def test_writing_is_atomic(tmp_path, monkeypatch):
    from fastbp import _files

    path = tmp_path / "d.data"
    path.write_text(XOR)

    def fail(f, chunks):
        f.write(b"3 1 1\n")
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(_files, "_write_chunks", fail)
    with pytest.raises(OSError, match="No space left"):
        write_fann_data(path, [[0.5]], [[1.0]])
    with pytest.raises(OSError, match="No space left"):
        save_fann(Network([1, 1], seed=0), tmp_path / "n.net")
    assert path.read_text() == XOR and sorted(os.listdir(tmp_path)) == ["d.data"]


def _header(path):
    with open(path) as f:
        return tuple(int(t) for t in f.readline().split())


@needs_datasets
def test_reads_every_file_of_fanns_datasets():
    files = sorted(p for p in DATASETS.iterdir() if p.suffix in (".train", ".test", ".data"))
    assert len(files) >= 25
    for path in files:
        n, n_in, n_out = _header(path)
        X, Y = read_fann_data(path)
        assert X.shape == (n, n_in) and Y.shape == (n, n_out), path.name
        assert np.isfinite(X).all() and np.isfinite(Y).all()
    X, Y = read_fann_data(DATASETS / "parity8.train")
    np.testing.assert_array_equal(Y[:, 0], X.sum(1) % 2)  # parity, as FANN's parity.c writes it


# ---------------------------------------------------------------------------
# Networks: round trips in fastbp
# ---------------------------------------------------------------------------

MODELS = [
    ([3, 5, 2], "sigmoid", "sigmoid"),
    ([4, 6, 5, 3], "tanh", "identity"),
    ([2, 7, 3, 4, 1], ["tanh", "sigmoid", "identity"], "tanh"),
    ([5, 1], "sigmoid", "identity"),
    ([1, 8, 1], "identity", "sigmoid"),
]


@pytest.mark.parametrize("sizes, hidden, output", MODELS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_then_load_is_exact(tmp_path, sizes, hidden, output, dtype):
    net = Network(sizes, activation=hidden, output_activation=output, seed=len(sizes), dtype=dtype)
    save_fann(net, tmp_path / "n.net")
    loaded = load_fann(tmp_path / "n.net")
    assert loaded.layer_sizes == net.layer_sizes and loaded.activations == net.activations
    assert loaded.dtype == np.float64 and loaded.loss == "squared_error"
    for a, b in zip(loaded.weights + loaded.biases, net.weights + net.biases):
        np.testing.assert_array_equal(a, b)  # steepness factor 1: the weights as they are


def test_saved_file_is_what_fann_save_writes(tmp_path):
    net = Network([2, 3, 1], activation="tanh", seed=0)
    save_fann(net, tmp_path / "n.net")
    lines = (tmp_path / "n.net").read_text().split("\n")
    assert lines[0] == "FANN_FLO_2.1" and lines[-1] == ""
    keys = [line.split("=")[0] for line in lines[1:-1]]
    assert keys[:3] == ["num_layers", "learning_rate", "connection_rate"] and len(keys) == 35
    assert "layer_sizes=3 4 2 " in lines and "scale_included=0" in lines and "network_type=0" in lines
    neurons = re.findall(r"\((\d+), (\d+), (\S+)\)", lines[-3])
    # input neurons and bias; hidden tanh (FANN_SIGMOID_SYMMETRIC, steepness 1) and bias; sigmoid output, bias
    assert [(int(a), int(b), float(c)) for a, b, c in neurons] == [(0, 0, 0.0)] * 3 + [(3, 5, 1.0)] * 3 + [
        (0, 5, 1.0),
        (4, 3, 0.5),
        (0, 0, 0.0),
    ]
    connections = re.findall(r"\((\d+), (\S+)\)", lines[-2])
    assert [int(s) for s, _ in connections] == [0, 1, 2] * 3 + [3, 4, 5, 6]
    W, b = net.weights[0], net.biases[0]
    assert [float(w) for _, w in connections[:3]] == [W[0, 0], W[0, 1], b[0]]


def test_save_refuses_what_fann_cannot_hold(tmp_path):
    path = tmp_path / "n.net"
    with pytest.raises(ValueError, match="layer 2 uses the activation 'softmax'; FANN has no softmax"):
        save_fann(Network([2, 3, 2], output_activation="softmax", loss="cross_entropy", seed=0), path)
    with pytest.raises(ValueError, match=r"layer 1 uses the activation 'relu'; FANN 2.2.* has no ReLU"):
        save_fann(Network([2, 3, 2], activation="relu", seed=0), path)
    with pytest.raises(ValueError, match="layer 1 uses the activation 'leaky_relu'"):
        save_fann(Network([2, 3, 2], activation="leaky_relu", seed=0), path)
    with pytest.raises(TypeError, match=re.escape("net must be a fastbp.Network")):
        save_fann("net", path)
    assert not path.exists()


def net_text(hidden=(FANN_SIGMOID_SYMMETRIC, 1.0), output=(FANN_SIGMOID, 0.5), sizes=(2, 3, 1), weights=None):
    """A ``.net`` file's text, as fann_save writes it, for a layered network."""
    net = Network(list(sizes), activation="tanh", seed=0)
    text = _saved_text(net)
    neurons = ["(0, 0, 0.00000000000000000000e+00)"] * (sizes[0] + 1)
    for l in range(1, len(sizes)):
        code, s = hidden if l < len(sizes) - 1 else output
        neurons += [f"({sizes[l - 1] + 1}, {code}, {s!r})"] * sizes[l] + [f"(0, {code}, {s!r})"]
    return re.sub(r"(?m)^(neurons [^=]*=).*$", lambda m: m.group(1) + " ".join(neurons) + " ", text)


def _saved_text(net):
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        save_fann(net, Path(directory) / "n.net")
        return (Path(directory) / "n.net").read_text()


@pytest.mark.parametrize(
    "code, steepness, name, factor",
    [
        (FANN_SIGMOID, 0.5, "sigmoid", 1.0),
        (FANN_SIGMOID, 0.75, "sigmoid", 1.5),
        (FANN_SIGMOID, 1.0, "sigmoid", 2.0),
        (FANN_SIGMOID_SYMMETRIC, 0.3, "tanh", 0.3),
        (FANN_LINEAR, 0.25, "identity", 0.25),
        (18, 2.0, "relu", 2.0),
        (19, 0.7, "leaky_relu", 0.7),
    ],
)
def test_steepness_is_folded_into_the_weights(tmp_path, code, steepness, name, factor):
    text = net_text(hidden=(code, steepness))
    (tmp_path / "n.net").write_text(text)
    loaded = load_fann(tmp_path / "n.net")
    assert loaded.activations == (name, "sigmoid")
    raw = np.array([float(w) for w in re.findall(r"\(\d+, (\S+)\)", text.split("\n")[-2])])
    table = raw[:9].reshape(3, 3)
    np.testing.assert_array_equal(loaded.weights[0], table[:, :2] * factor)  # one rounding per weight
    np.testing.assert_array_equal(loaded.biases[0], table[:, 2] * factor)
    np.testing.assert_array_equal(loaded.weights[1], raw[9:12].reshape(1, 3))
    # What FANN computes, written out: g(s * sum) with FANN's g, for a few inputs.
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    v = steepness * (x @ table[:, :2].T + table[:, 2])
    hidden = {
        "sigmoid": lambda v: 1 / (1 + np.exp(-2 * v)),
        "tanh": np.tanh,
        "identity": lambda v: v,
        "relu": lambda v: np.maximum(v, 0),
        "leaky_relu": lambda v: np.where(v < 0, 0.01 * v, v),
    }[name](v)
    out = 1 / (1 + np.exp(-2 * 0.5 * (hidden @ raw[9:12] + raw[12])))
    np.testing.assert_allclose(loaded.forward(x)[:, 0], out, rtol=1e-14)


# ---------------------------------------------------------------------------
# Networks and data against libfann
# ---------------------------------------------------------------------------


def assert_fann_equal(actual, expected):
    """Within 1e-12 relative.  The absolute 1e-15 is for outputs near 0 of
    FANN_SIGMOID_SYMMETRIC, which FANN computes as 2 / (1 + exp(-2 v)) - 1:
    its rounding error is that of a number near 1 (~1e-16), not of v."""
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-15)


@needs_libfann
@pytest.mark.parametrize("sizes, hidden, output", MODELS)
def test_libfann_runs_what_fastbp_saves(tmp_path, sizes, hidden, output):
    X = np.random.default_rng(1).uniform(-2, 2, size=(25, sizes[0]))
    for dtype, check in (("float64", assert_fann_equal), ("float32", None)):
        net = Network(sizes, activation=hidden, output_activation=output, seed=7, dtype=dtype)
        save_fann(net, tmp_path / "n.net")
        ann = LIBFANN.load(tmp_path / "n.net")
        try:
            assert (LIBFANN.get_num_input(ann), LIBFANN.get_num_output(ann)) == (sizes[0], sizes[-1])
            expected = LIBFANN.run_rows(ann, X)
        finally:
            LIBFANN.destroy(ann)
        if check is not None:
            check(net.forward(X), expected)
        else:  # FANN runs the float32 weights in double; fastbp in float32
            np.testing.assert_allclose(net.forward(X.astype(np.float32)), expected, rtol=1e-6, atol=1e-6)


@needs_libfann
def test_libfann_clamps_linear_neurons_and_fastbp_does_not(tmp_path):
    """fann_run clamps steepness * sum to +-150 / steepness (the docstring of
    fastbp._fann says so): an identity output agrees up to 150 in magnitude."""
    net = Network.from_weights([[[100.0]]], [[0.0]], output_activation="identity")
    save_fann(net, tmp_path / "n.net")
    ann = LIBFANN.load(tmp_path / "n.net")
    try:
        X = np.array([[1.0], [1.5], [2.0], [-3.0]])
        np.testing.assert_array_equal(LIBFANN.run_rows(ann, X)[:, 0], [100.0, 150.0, 150.0, -150.0])
        np.testing.assert_array_equal(net.forward(X)[:, 0], [100.0, 150.0, 200.0, -300.0])
    finally:
        LIBFANN.destroy(ann)


FANN_MODELS = [
    # sizes, per weight layer (FANN activation, steepness)
    ((3, 5, 2), [(FANN_SIGMOID_SYMMETRIC, 0.7), (FANN_SIGMOID, 0.3)]),
    ((4, 6, 5, 1), [(FANN_SIGMOID, 1.0), (FANN_SIGMOID_SYMMETRIC, 0.5), (FANN_LINEAR, 0.8)]),
    (
        (2, 4, 3, 3, 2),
        [
            (FANN_SIGMOID_SYMMETRIC, 1.3),
            (FANN_SIGMOID, 0.5),
            (FANN_LINEAR, 1.0),
            (FANN_SIGMOID_SYMMETRIC, 0.9),
        ],
    ),
]


@needs_libfann
@pytest.mark.parametrize("sizes, layers", FANN_MODELS)
@pytest.mark.parametrize("algorithm", [FANN_TRAIN_RPROP, FANN_TRAIN_INCREMENTAL])
def test_fastbp_runs_what_libfann_trained_and_saved(tmp_path, sizes, layers, algorithm):
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(40, sizes[0]))
    Y = np.tanh(X @ rng.standard_normal((sizes[0], sizes[-1]))) * 0.4 + 0.5
    write_fann_data(tmp_path / "train.data", X, Y)
    ann = LIBFANN.create_standard_array(*LIBFANN.layers(sizes))
    data = LIBFANN.read_train_from_file(os.fsencode(tmp_path / "train.data"))
    assert ann and data
    try:
        for layer, (code, steepness) in enumerate(layers, start=1):
            LIBFANN.set_activation_function_layer(ann, code, layer)
            LIBFANN.set_activation_steepness_layer(ann, steepness, layer)
        libc().srand(3)
        LIBFANN.randomize_weights(ann, -0.5, 0.5)
        LIBFANN.set_training_algorithm(ann, algorithm)
        LIBFANN.set_learning_rate(ann, 0.3)
        LIBFANN.train_on_data(ann, data, 30, 0, 0.0)
        assert LIBFANN.save(ann, os.fsencode(tmp_path / "trained.net")) == 0
        expected = LIBFANN.run_rows(ann, X)
    finally:
        LIBFANN.destroy_train(data)
        LIBFANN.destroy(ann)
    net = load_fann(tmp_path / "trained.net")
    names = {FANN_SIGMOID: "sigmoid", FANN_SIGMOID_SYMMETRIC: "tanh", FANN_LINEAR: "identity"}
    assert net.layer_sizes == sizes and net.activations == tuple(names[c] for c, _ in layers)
    assert_fann_equal(net.forward(X), expected)
    # ... and back: fastbp's file of the loaded network runs the same in FANN.
    save_fann(net, tmp_path / "again.net")
    again = LIBFANN.load(tmp_path / "again.net")
    try:
        assert_fann_equal(LIBFANN.run_rows(again, X), expected)
    finally:
        LIBFANN.destroy(again)


@needs_libfann
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_libfann_reads_the_data_fastbp_writes(tmp_path, dtype):
    """libdoublefann reads data with fscanf("%le"), glibc's correctly rounded
    strtod: it gets exactly the values written, subnormals and extremes too."""
    rng = np.random.default_rng(4)
    X, Y = awkward_values(rng, (9, 4)), rng.uniform(-1, 1, size=(9, 3))
    if dtype == "float32":
        X, Y = (rng.standard_normal((9, 4)) * 1e-3).astype(np.float32), Y.astype(np.float32)
    write_fann_data(tmp_path / "ours.data", X, Y)
    X2, Y2 = LIBFANN.read_data(tmp_path / "ours.data")
    assert X2.shape == (9, 4) and Y2.shape == (9, 3)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(Y2, Y)
    assert np.signbit(X2).tolist() == np.signbit(X).tolist()


@needs_libfann
@needs_datasets
def test_fastbp_reads_fanns_datasets_as_libfann_does():
    for name in ("building.train", "gene.test", "parity8.train", "scaling.data", "robot.test"):
        X2, Y2 = LIBFANN.read_data(DATASETS / name)
        X, Y = read_fann_data(DATASETS / name)
        np.testing.assert_array_equal(X, X2)
        np.testing.assert_array_equal(Y, Y2)


@needs_libfann
def test_libfanns_own_files_of_what_fastbp_refuses(tmp_path):
    sizes = LIBFANN.layers((2, 3, 1))
    made = {
        "shortcut": (
            LIBFANN.create_shortcut_array(*sizes),
            "network_type=1 \\(FANN_NETTYPE_SHORTCUT\\): shortcut connections.*cascade training",
        ),
        "sparse": (LIBFANN.create_sparse_array(0.5, *sizes), "connection_rate=0.5: a sparse network"),
        "stepwise": (LIBFANN.create_standard_array(*sizes), "FANN_SIGMOID_STEPWISE \\(a piecewise-linear"),
    }
    for name, (ann, message) in made.items():
        assert ann
        try:
            assert LIBFANN.save(ann, os.fsencode(tmp_path / f"{name}.net")) == 0
            if name == "stepwise":
                LIBFANN.save_to_fixed(ann, os.fsencode(tmp_path / "fixed.net"))
        finally:
            LIBFANN.destroy(ann)
        with pytest.raises(ValueError, match=message):
            load_fann(tmp_path / f"{name}.net")
    with pytest.raises(ValueError, match=re.escape("line 1: FANN_FIX_2.0 is FANN's fixed-point format")):
        load_fann(tmp_path / "fixed.net")


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

BAD_DATA = [
    ("", None, "the file is empty"),
    ("  \n\n", None, "the file is empty"),
    ("2 1\n", 1, "header must be three integers .* ends after 2"),
    ("2 1.5 1\n0 0\n", 1, "'1.5' is not an integer >= 0"),
    ("-1 1 1\n0 0\n", 1, "'-1' is not an integer >= 0"),
    ("x 1 1\n", 1, "'x' is not an integer"),
    ("1234567890123456789 1 1\n", 1, "at most 18 digits"),
    ("0 1 1\n", 1, "0 samples"),
    ("1 0 1\n1\n", 1, "0 inputs and 1 outputs"),
    (
        "2 1 1\n0.00\n1.00\n0.00\n",
        4,
        "truncated: the header promises 2 samples .* the file ends after 3 numbers, in sample 2, output 1",
    ),
    (
        "3 2 1\n0 0\n1\n",
        1,
        (
            "the header promises 3 samples of 2 inputs and 1 outputs \\(9 numbers\\), but the 7 bytes after it can hold "
            "at most 3 numbers"
        ),
    ),
    ("1 1 1\n0\n1\n2\n", 4, "unexpected '2' after the 1 samples"),
    ("1 1 1\n0\n1 2\n", 3, "unexpected '2'"),
    (
        "1 1 1\n0,5\n1\n",
        2,
        "sample 1, input 1: '0,5' is not a number: the decimal point must be '.', not a locale's ','",
    ),
    ("1 2 1\n0 abc\n1\n", 2, "sample 1, input 2: 'abc' is not a number"),
    ("1 1 1\nnan\n1\n", 2, "'nan' is not a finite number"),
    ("1 1 1\n0\n-inf\n", 3, "sample 1, output 1: '-inf' is not a finite number"),
    ("1 1 1\n0\nInfinity\n", 3, "'Infinity' is not a finite number"),
    ("1 1 1\n1e999\n1\n", 2, "'1e999' is beyond the range of a float64"),
    ("1 1 1\n1_0\n1\n", 2, "'1_0' is not a number in FANN's format"),
    ("1 1 1\n0x10\n1\n", 2, "'0x10' is not a number"),
    ("1 1 1\n0.5.5\n1\n", 2, "'0.5.5' is not a number"),
    ("1 1 1\n\u0661\n1\n", 2, "is not a number"),  # an Arabic-Indic digit: float() reads it, FANN does not
    ("1 1 1\n0\x00\n1\n", 2, "is not a number"),
]


@pytest.mark.parametrize("text, line, message", BAD_DATA)
def test_bad_data_files(tmp_path, text, line, message):
    path = tmp_path / "bad.data"
    path.write_bytes(text.encode("utf-8"))
    where = "" if line is None else f", line {line}"
    with pytest.raises(ValueError, match=f"^FANN data file {re.escape(repr(str(path)))}{where}: .*{message}"):
        read_fann_data(path)


def test_absurd_header_allocates_nothing(tmp_path):
    path = tmp_path / "bad.data"
    path.write_text("999999999999 1000000 1000000\n" + "0 " * 1000 + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="the 2002 bytes after it can hold at most 1001 numbers"):
            read_fann_data(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_paths_that_are_not_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_fann_data(tmp_path / "missing.data")
    with pytest.raises(FileNotFoundError):
        load_fann(tmp_path / "missing.net")
    with pytest.raises(ValueError, match=r"FANN data file .*: it is a directory"):
        read_fann_data(tmp_path)
    with pytest.raises(ValueError, match=r"FANN network file .*: it is a directory"):
        load_fann(tmp_path)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(ValueError, match="it is not a regular file"):  # refused, not waited on
            read_fann_data(tmp_path / "fifo")
    with pytest.raises(TypeError, match=re.escape("path must be a str or os.PathLike")):
        load_fann(None)


def edit(text, old, new, count=1):
    assert old in text, old
    return text.replace(old, new, count)


def edit_connections(text, old, new):
    head, connections = text.rsplit("\nconnections", 1)
    return head + "\nconnections" + edit(connections, old, new)


def edit_line(text, key, value):
    return re.sub(rf"(?m)^{re.escape(key)}=.*$", lambda m: f"{key}={value}", text, count=1)


def _good():
    return net_text()


BAD_NETS = [
    (lambda t: "", 1, "the file is empty"),
    (lambda t: "hello\n", 1, "not a FANN floating-point network file: the first line is 'hello'"),
    (
        lambda t: edit(t, "FANN_FLO_2.1", "FANN_FIX_2.0\ndecimal_point=13"),
        1,
        "FANN_FIX_2.0 is FANN's fixed-point",
    ),
    (lambda t: edit(t, "FANN_FLO_2.1", "FANN_FLO_1.1"), 1, "FANN_FLO_1.1 is FANN 1's format"),
    (lambda t: edit_line(t, "network_type", "1"), 5, "network_type=1 \\(FANN_NETTYPE_SHORTCUT\\)"),
    (lambda t: edit_line(t, "network_type", "7"), 5, "network_type=7 is not a FANN network type"),
    (lambda t: edit_line(t, "connection_rate", "0.500000"), 4, "connection_rate=0.5: a sparse network"),
    (
        lambda t: edit_line(t, "connection_rate", "1,000000"),
        4,
        "'1,000000' is not a number .*: the decimal point",
    ),
    (lambda t: edit_line(t, "num_layers", "1"), 2, "num_layers=1: a network needs at least 2 layers"),
    (lambda t: edit_line(t, "num_layers", "4"), 33, "layer_sizes must list 4 values, got 3"),
    (lambda t: edit_line(t, "num_layers", "99999999999"), 33, "layer_sizes must list 99999999999 values"),
    (lambda t: edit_line(t, "learning_rate", "nan"), 3, "'nan' is not a finite number"),
    (lambda t: edit_line(t, "training_algorithm", "-1"), 7, "training_algorithm must be an integer >= 0"),
    (lambda t: edit(t, "learning_momentum=", "momentum="), 6, "expected the line 'learning_momentum=...'"),
    (lambda t: edit_line(t, "cascade_activation_functions_count", "11"), 30, "must list 11 values, got 10"),
    (lambda t: edit_line(t, "layer_sizes", "3 4 2 2 "), 33, "must list 3 values, got 4"),
    (lambda t: edit_line(t, "layer_sizes", "3 1 2 "), 33, "layer 1 has 1 neurons"),
    (
        lambda t: edit_line(t, "layer_sizes", "1000000000 1000000000 2 "),
        35,
        "must list 2000000002 neurons .*got 9",
    ),
    (lambda t: edit_line(t, "scale_included", "2"), 34, "scale_included must be 0 or 1"),
    (lambda t: edit_line(t, "scale_included", "1"), 35, "expected the line 'scale_mean_in=...'"),
    (
        lambda t: t.split("\nconnections")[0] + "\n",
        36,
        "truncated: the file ends where the line 'connections",
    ),
    (lambda t: t[: t.rindex("(")], 36, "must list 13 connections .*got 12"),
    (lambda t: t.rstrip("\n") + "(3, 0.5) \n", 36, "lists more than the 13 connections"),
    (lambda t: t + "extra\n", 37, "unexpected content after the connections: 'extra'"),
    (
        lambda t: edit_connections(t, "(6, ", "(6,  0,5) (7, "),
        36,
        "connection 12 is not .*'\\(6,  0,5\\)' \\(the decimal point",
    ),
    (
        lambda t: edit_connections(t, "(6, ", "(6, nan) (7, "),
        36,
        "connection 12 is not \\(connected_to_neuron, weight\\)",
    ),
    (lambda t: re.sub(r"\(6, \S+\)", "(6, 1e999)", t), 36, "the weight of connection 12, '1e999', is beyond"),
    (
        lambda t: edit_connections(t, "(3, ", "(4, "),
        36,
        "connection 9 \\(input 0 of neuron 0 of layer 2\\) comes from neuron 4",
    ),
    (
        lambda t: edit(t, "(3, 5, 1.0)", "(3, 5, 1.5)"),
        35,
        (
            "the neurons of layer 1 differ: neuron 0 has FANN_SIGMOID_SYMMETRIC with steepness 1.5, neuron 1 "
            "FANN_SIGMOID_SYMMETRIC with steepness 1.0"
        ),
    ),
    (
        lambda t: net_text(hidden=(FANN_SIGMOID_STEPWISE, 0.5)),
        35,
        "layer 1 uses the activation FANN_SIGMOID_STEPWISE",
    ),
    (
        lambda t: net_text(hidden=(7, 0.5)),
        35,
        "layer 1 uses the activation FANN_GAUSSIAN, which fastbp does not",
    ),
    (lambda t: net_text(output=(42, 0.5)), 35, "layer 2 uses the unknown activation code 42"),
    (
        lambda t: net_text(hidden=(FANN_SIGMOID, 0.0)),
        35,
        "layer 1 has the steepness 0.0: fastbp reads steepness > 0",
    ),
    (lambda t: net_text(hidden=(FANN_SIGMOID, -0.5)), 35, "steepness -0.5"),
    (lambda t: net_text(hidden=(FANN_SIGMOID, 1e308)), 36, "overflow"),
    (
        lambda t: edit(t, "(3, 5, 1.0) (0, 5", "(2, 5, 1.0) (0, 5"),
        35,
        "neuron 2 of layer 1 .*has 2 inputs.*has 3",
    ),
    (lambda t: edit(t, "(0, 5, 1.0)", "(3, 5, 1.0)"), 35, "the bias neuron of layer 1 .* has 3 inputs"),
    (lambda t: edit(t, "(0, 0, 0.00000000000000000000e+00)", "(1, 0, 0.0)"), 35, "neuron 0 of layer 0"),
    (lambda t: edit(t, "(3, 5, 1.0)", "(3, 5 1.0)"), 35, "neuron 3 is not \\(num_inputs"),
]


@pytest.mark.parametrize("make, line, message", BAD_NETS)
def test_bad_network_files(tmp_path, make, line, message):
    good = _good()
    load_fann_text(tmp_path, good)  # the edits are of a good file
    path = tmp_path / "bad.net"
    path.write_text(make(good))
    with pytest.raises(
        ValueError, match=f"^FANN network file {re.escape(repr(str(path)))}, line {line}: .*{message}"
    ):
        load_fann(path)


def load_fann_text(tmp_path, text, name="good.net"):
    (tmp_path / name).write_text(text)
    return load_fann(tmp_path / name)


def test_absurd_layer_sizes_allocate_nothing(tmp_path):
    text = edit_line(_good(), "layer_sizes", "1000000000 1000000000 2 ")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="neurons"):
            load_fann_text(tmp_path, text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_windows_line_ends_and_fann_2_0_files_load(tmp_path):
    good = _good()
    reference = load_fann_text(tmp_path, good)
    for text in (
        good.replace("\n", "\r\n"),
        edit(good.replace("FANN_FLO_2.1", "FANN_FLO_2.0"), "scale_included=0\n", ""),
    ):
        loaded = load_fann_text(tmp_path, text, "other.net")
        for a, b in zip(loaded.weights + loaded.biases, reference.weights + reference.biases):
            np.testing.assert_array_equal(a, b)


def test_scaling_parameters_are_checked_and_left_out_with_a_warning(tmp_path):
    good = _good()
    scale = "".join(
        f"{key}={' '.join(['0.500000'] * n)} \n"
        for n, key in [(2, f"scale_{w}_in") for w in ("mean", "deviation", "new_min", "factor")]
        + [(1, f"scale_{w}_out") for w in ("mean", "deviation", "new_min", "factor")]
    )
    scaled = edit(good, "scale_included=0\n", "scale_included=1\n" + scale)
    with pytest.warns(UserWarning, match="scale_included=1.*fann_scale_input"):
        loaded = load_fann_text(tmp_path, scaled)
    reference = load_fann_text(tmp_path, good, "other.net")
    np.testing.assert_array_equal(loaded.weights[0], reference.weights[0])
    with pytest.raises(ValueError, match="line 36: scale_deviation_in must list 2 values, got 1"):
        load_fann_text(tmp_path, edit(scaled, "scale_deviation_in=0.500000 ", "scale_deviation_in="))


# ---------------------------------------------------------------------------
# Mutation fuzz
# ---------------------------------------------------------------------------

FUZZ_CASES = int(os.environ.get("FASTBP_FUZZ_CASES", "5000"))
CHUNKS = [
    b"0",
    b"9",
    b"-",
    b".",
    b",",
    b"e",
    b"(",
    b")",
    b" ",
    b"\n",
    b"=",
    b"1e999",
    b"nan",
    b"99999999",
    b"\x00",
]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not data:
            data += rng.randbytes(rng.randint(1, 16))
            continue
        at = rng.randrange(len(data))
        op = rng.randrange(6)
        if op == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[rng.randrange(len(data)) :]
        elif op == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del data[at : at + rng.randint(1, 8)]
        else:
            chunk = rng.choice(CHUNKS)
            data[at : at + (len(chunk) if op == 4 else 0)] = chunk
    return bytes(data)


def fuzz_originals(tmp_path):
    nets = [
        Network([2, 3, 1], activation="tanh", seed=0),
        Network([1, 2], output_activation="identity", seed=1),
        Network([3, 2, 2, 1], activation=["sigmoid", "identity"], seed=2, dtype="float32"),
    ]
    nets_data = []
    for net in nets:
        save_fann(net, tmp_path / "o.net")
        nets_data.append((tmp_path / "o.net").read_bytes())
    datas = []
    for shape in ((3, 2, 1), (1, 1, 1), (4, 3, 2)):
        n, a, b = shape
        rng = np.random.default_rng(n)
        write_fann_data(tmp_path / "o.data", rng.uniform(-1, 1, (n, a)), rng.uniform(-1, 1, (n, b)))
        datas.append((tmp_path / "o.data").read_bytes())
    return nets_data, datas


def outcome(data, kind, path=None):
    """Read mutated bytes: "read" (a Network, or finite arrays) or "refused"
    (the reader's error); anything else fails the test.  In memory through the
    readers' cores (fast), or through the public functions when ``path`` is given."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if path is not None:
                path.write_bytes(data)
                result = load_fann(path) if kind == "net" else read_fann_data(path)
            elif kind == "net":
                result, _ = _fann._network(data, None)
            else:
                result = _fann._read_data(io.BytesIO(data), len(data))
    except (ValueError, _fann._BadFile) as error:
        if path is not None:
            what = "FANN network file" if kind == "net" else "FANN data file"
            assert isinstance(error, ValueError) and str(error).startswith(f"{what} {str(path)!r}"), error
        else:
            assert isinstance(error, _fann._BadFile), error
        return "refused"
    except Exception as error:  # anything else is a crash of the reader
        raise AssertionError(f"{type(error).__name__}: {error}; file={data!r}") from error
    if kind == "net":
        assert isinstance(result, Network)
        assert all(np.isfinite(a).all() for a in result.weights + result.biases)
    else:
        X, Y = result
        assert X.dtype == Y.dtype == np.float64 and len(X) == len(Y) >= 1
        assert np.isfinite(X).all() and np.isfinite(Y).all()
    return "read"


def test_fuzz_every_truncation(tmp_path):
    nets, datas = fuzz_originals(tmp_path)
    for kind, originals in (("net", nets), ("data", datas)):
        for data in originals:
            results = [outcome(data[:n], kind) for n in range(len(data))]
            # Only a cut inside the last number (or its newline) can leave a readable file.
            assert results.count("read") <= 25, kind
            assert outcome(data, kind) == "read"


def test_fuzz_random_mutations(tmp_path):
    rng = random.Random(20240501)
    nets, datas = fuzz_originals(tmp_path)
    counts = {"refused": 0, "read": 0}
    for case in range(FUZZ_CASES):
        kind, originals = ("net", nets) if case % 2 else ("data", datas)
        data = originals[case % len(originals)]
        # Every tenth case through the public function, whose message names the file.
        path = tmp_path / f"m.{kind}" if case % 10 == 0 else None
        counts[outcome(mutate(rng, data), kind, path)] += 1
    assert counts["refused"] > 0.3 * FUZZ_CASES and counts["read"] > 0, counts
