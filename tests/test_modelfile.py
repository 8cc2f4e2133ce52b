"""Model files: ``Network.save`` and ``fastbp.load`` (format in ``fastbp._modelfile``).

Exact round trips (every activation and loss), the byte layout, files of the
previous format version, a corpus of crafted bad files, a mutation fuzz of
good files, and atomic saving under simulated failures.

The fuzz runs ``FASTBP_FUZZ_CASES`` random mutations (default 10000) on top of
its exhaustive cases; for a longer run:

    FASTBP_FUZZ_CASES=200000 pytest tests/test_modelfile.py -k fuzz
"""

import base64
import hashlib
import itertools
import json
import os
import random
import re
import stat
import struct
import sys
import tracemalloc

import numpy as np
import pytest
from support import fail, write_half_then_fill_the_disk

import fastbp
from fastbp import Network

MAGIC = b"FASTBP\x00"
LE = {"float32": "<f4", "float64": "<f8"}


def bits(array):
    """The raw bytes of an array, for bit-identical comparisons (-0.0, NaN payloads)."""
    return np.ascontiguousarray(array).tobytes()


def assert_identical(loaded, original):
    assert loaded.layer_sizes == original.layer_sizes
    assert loaded.dtype == original.dtype
    assert loaded.activations == original.activations
    assert loaded.loss == original.loss
    for a, b in zip(loaded.weights + loaded.biases, original.weights + original.biases, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert bits(a) == bits(b)


def flat_payload(net):
    dtype = LE[net.dtype.name]
    return b"".join(
        np.asarray(a, dtype=dtype).tobytes() for W, b in zip(net.weights, net.biases) for a in (W, b)
    )


def split_file(data):
    """(version byte, header dict, payload bytes) of a well-formed file, read by
    an independent parser written from the documented layout."""
    magic, version, header_size = struct.unpack("<7sBI", data[:12])
    assert magic == MAGIC
    header = json.loads(data[12 : 12 + header_size])
    return version, header, data[12 + header_size :]


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[1, 1], [2, 2, 2], [3, 5, 2], [4, 7, 3, 2, 1], [10, 1, 10]])
def test_round_trip_is_exact(tmp_path, backend, dtype, sizes):
    net = Network(sizes, seed=len(sizes), dtype=dtype, backend=backend)
    path = tmp_path / "net.fbp"
    net.save(path)
    loaded = fastbp.load(path, backend=backend)
    assert loaded.backend == backend
    assert_identical(loaded, net)


def test_special_values_survive_bit_for_bit(tmp_path, dtype):
    info = np.finfo(dtype)
    W = np.array(
        [[-0.0, info.smallest_subnormal, -info.smallest_subnormal], [info.max, -info.max, info.tiny]], dtype
    )
    b = np.array([0.0, -0.0], dtype)
    net = Network.from_weights([W], [b])
    net.save(tmp_path / "special.fbp")
    loaded = fastbp.load(tmp_path / "special.fbp")
    assert_identical(loaded, net)
    assert np.signbit(loaded.weights[0][0, 0]) and np.signbit(loaded.biases[0][1])


def test_loaded_network_computes_the_same_outputs(tmp_path, backend, dtype):
    net = Network([4, 6, 3], seed=7, dtype=dtype, backend=backend)
    X = np.random.default_rng(0).uniform(-2, 2, size=(20, 4))
    Y = np.random.default_rng(1).uniform(0.1, 0.9, size=(20, 3))
    for x, y in zip(X, Y):
        net.step(x, y, 0.5)  # weights that are not the initial draw
    net.save(tmp_path / "trained.fbp")
    loaded = fastbp.load(tmp_path / "trained.fbp", backend=backend)
    assert bits(loaded.forward(X)) == bits(net.forward(X))
    assert loaded.cost(X, Y) == net.cost(X, Y)
    # And it learns on identically.
    assert [loaded.step(x, y, 0.5) for x, y in zip(X, Y)] == [net.step(x, y, 0.5) for x, y in zip(X, Y)]
    assert_identical(loaded, net)


# (hidden activation(s), output activation, loss): every activation and both
# losses, in every combination a Network accepts.
MODELS = [
    ("sigmoid", "sigmoid", "squared_error"),
    ("tanh", "identity", "squared_error"),
    ("relu", "softmax", "cross_entropy"),
    (("leaky_relu", "identity"), "sigmoid", "cross_entropy"),
    (("identity", "relu"), "tanh", "squared_error"),
    ("sigmoid", "leaky_relu", "squared_error"),
    ("tanh", "relu", "squared_error"),
]


def model_net(model, dtype="float64", backend=None, seed=0):
    hidden, output, loss = model
    sizes = [3, 5, 4] if isinstance(hidden, str) else [3, 5, 4, 4]
    return Network(
        sizes, activation=hidden, output_activation=output, loss=loss, seed=seed, dtype=dtype, backend=backend
    )


def model_targets(net, n=12):
    """Targets the network's loss and output accept: one-hot rows for softmax,
    values in (0, 1) otherwise."""
    rng = np.random.default_rng(1)
    n_out = net.layer_sizes[-1]
    if net.activations[-1] == "softmax":
        return np.eye(n_out)[rng.integers(0, n_out, size=n)]
    return rng.uniform(0.1, 0.9, size=(n, n_out))


@pytest.mark.parametrize(
    "model", MODELS, ids=["/".join(map(str, np.ravel(m[0]))) + f"-{m[1]}-{m[2]}" for m in MODELS]
)
def test_activations_and_loss_round_trip(tmp_path, backend, dtype, model):
    net = model_net(model, dtype, backend)
    X = np.random.default_rng(0).uniform(-2, 2, size=(12, 3))
    Y = model_targets(net)
    net.train(X, Y, epochs=3, lr=0.1)  # weights that are not the initial draw
    net.save(tmp_path / "m.fbp")
    version, header, _ = split_file((tmp_path / "m.fbp").read_bytes())
    assert version == 2 and header["activations"] == list(net.activations) and header["loss"] == model[2]
    loaded = fastbp.load(tmp_path / "m.fbp", backend=backend)
    assert_identical(loaded, net)
    assert loaded.activations == ((model[0],) * 1 if isinstance(model[0], str) else tuple(model[0])) + (
        model[1],
    )
    assert bits(loaded.forward(X)) == bits(net.forward(X))
    assert loaded.cost(X, Y) == net.cost(X, Y)
    assert [loaded.step(x, y, 0.1) for x, y in zip(X, Y)] == [net.step(x, y, 0.1) for x, y in zip(X, Y)]
    assert_identical(loaded, net)


# A file saved by fastbp 0.1.0 before this format had version 2 (format
# version 1): Network([2, 3, 1], seed=0) after net.step([0.05, 0.1], [0.9], 0.5).
VERSION_1_FILE = base64.b64decode(
    "RkFTVEJQAAHhAAAAeyJmb3JtYXRfdmVyc2lvbiI6MSwiZmFzdGJwX3ZlcnNpb24iOiIwLjEuMCIsImxheWVyX3NpemVzIjpbMiwz"
    "LDFdLCJkdHlwZSI6ImZsb2F0NjQiLCJhY3RpdmF0aW9ucyI6WyJzaWdtb2lkIiwic2lnbW9pZCJdLCJwYXlsb2FkX2J5dGVzIjox"
    "MDQsInBheWxvYWRfc2hhMjU2IjoiMDM2NWUxY2QxY2NlMDc3OWRiY2QxNjM5MTczNzI0MTgwYWI1YTFmYjQ4MTBkYTJjOGJkOTQ4"
    "YzM4MjA3Y2I0NyJ9vxa+h04zxj9e+qD3kpzSvynFqXRXk+K/gtObTn6P478PAGXeoVjZPzSICVxcseA/kx4Wq57EwT+9zaHMkMLS"
    "PxDLE/zG9Kk/fdG7HFsf5D+FSy/eSX3dP7FHLzlJEea/5Fvs2X7+4D8="
)


def test_a_version_1_file_loads_as_sigmoid_and_squared_error(tmp_path, backend):
    assert VERSION_1_FILE[7] == 1 and split_file(VERSION_1_FILE)[1]["format_version"] == 1
    (tmp_path / "old.fbp").write_bytes(VERSION_1_FILE)
    loaded = fastbp.load(tmp_path / "old.fbp", backend=backend)
    assert loaded.activations == ("sigmoid", "sigmoid") and loaded.loss == "squared_error"
    net = Network([2, 3, 1], seed=0, backend=backend)
    net.step([0.05, 0.1], [0.9], 0.5)
    assert_identical(loaded, net)
    assert loaded.forward([[0.3, 0.7]]).tolist() == [[0.6465059560291458]]  # what 0.1.0 computed
    # Saved again, it is a version 2 file of the same network.
    loaded.save(tmp_path / "new.fbp")
    version, header, payload = split_file((tmp_path / "new.fbp").read_bytes())
    assert version == 2 and header["loss"] == "squared_error"
    assert payload == split_file(VERSION_1_FILE)[2]
    assert_identical(fastbp.load(tmp_path / "new.fbp"), net)


def test_load_chooses_the_backend(tmp_path):
    net = Network([2, 3, 1], seed=0, backend="python")
    net.save(tmp_path / "n.fbp")
    for name in fastbp.backends():
        assert fastbp.load(tmp_path / "n.fbp", backend=name).backend == name


def test_file_layout_is_the_documented_one(tmp_path, dtype):
    net = Network([3, 4, 2], seed=3, dtype=dtype)
    net.save(tmp_path / "n.fbp")
    data = (tmp_path / "n.fbp").read_bytes()
    assert data[:7] == MAGIC and data[7] == 2
    _version, header, payload = split_file(data)
    assert header == {
        "format_version": 2,
        "fastbp_version": fastbp.__version__,
        "layer_sizes": [3, 4, 2],
        "dtype": dtype.name,
        "activations": ["sigmoid", "sigmoid"],
        "loss": "squared_error",
        "payload_bytes": dtype.itemsize * (4 * (3 + 1) + 2 * (4 + 1)),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    assert len(payload) == header["payload_bytes"]
    assert payload == flat_payload(net)
    # W[1] row-major first: the first value is weights[0][0, 0], the 4th is weights[0][1, 0].
    values = np.frombuffer(payload, LE[dtype.name])
    assert values[0] == net.weights[0][0, 0] and values[3] == net.weights[0][1, 0]
    assert bits(values[12:16]) == bits(net.biases[0])


def test_the_header_records_the_model(tmp_path):
    net = Network(
        [3, 4, 4, 2], activation=["relu", "tanh"], output_activation="softmax", loss="cross_entropy", seed=3
    )
    net.save(tmp_path / "n.fbp")
    _, header, _ = split_file((tmp_path / "n.fbp").read_bytes())
    assert header["activations"] == ["relu", "tanh", "softmax"] and header["loss"] == "cross_entropy"
    assert list(header) == [
        "format_version",
        "fastbp_version",
        "layer_sizes",
        "dtype",
        "activations",
        "loss",
        "payload_bytes",
        "payload_sha256",
    ]


def test_saving_is_deterministic_and_idempotent(tmp_path):
    net = Network([2, 3, 1], seed=0)
    net.save(tmp_path / "a.fbp")
    fastbp.load(tmp_path / "a.fbp").save(tmp_path / "b.fbp")
    assert (tmp_path / "a.fbp").read_bytes() == (tmp_path / "b.fbp").read_bytes()


def test_paths_as_str_bytes_and_pathlike(tmp_path):
    net = Network([2, 1], seed=0)
    for path in (str(tmp_path / "s.fbp"), os.fsencode(tmp_path / "b.fbp"), tmp_path / "p.fbp"):
        net.save(path)
        assert_identical(fastbp.load(path), net)


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "n.fbp"
    Network([2, 1], seed=0).save(path)
    newer = Network([3, 2, 1], seed=1)
    newer.save(path)
    assert_identical(fastbp.load(path), newer)
    assert os.listdir(tmp_path) == ["n.fbp"]


def test_relative_path_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = Network([2, 1], seed=0)
    net.save("here.fbp")
    assert_identical(fastbp.load("here.fbp"), net)


# ---------------------------------------------------------------------------
# Bad arguments and paths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [None, 3, 2.5, ["n.fbp"]])
def test_non_path_arguments_are_type_errors(tmp_path, path):
    with pytest.raises(TypeError, match=re.escape("path must be a str or os.PathLike")):
        Network([2, 1], seed=0).save(path)
    with pytest.raises(TypeError, match=re.escape("path must be a str or os.PathLike")):
        fastbp.load(path)


def test_file_objects_are_not_paths(tmp_path):
    Network([2, 1], seed=0).save(tmp_path / "n.fbp")
    with open(tmp_path / "n.fbp", "rb") as f, pytest.raises(TypeError, match="BufferedReader"):
        fastbp.load(f)


def test_the_writer_needs_model_data(tmp_path):
    from fastbp import _modelfile

    with pytest.raises(TypeError, match=re.escape("model must be a fastbp._modelfile.ModelData, got dict")):
        _modelfile.write(str(tmp_path / "n.fbp"), {}, name="{}")
    assert os.listdir(tmp_path) == []


def test_load_checks_the_backend_first(tmp_path):
    with pytest.raises(ValueError, match="backend='nope' names no backend"):
        fastbp.load(tmp_path / "missing.fbp", backend="nope")
    with pytest.raises(TypeError, match="backend must be a str"):
        fastbp.load(tmp_path / "missing.fbp", backend=1)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "missing.fbp")


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(ValueError, match="it is a directory"):
        fastbp.load(tmp_path)
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        Network([2, 1], seed=0).save(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="not a regular file"):
        fastbp.load(tmp_path / "pipe")


def test_save_into_a_missing_directory(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "n.fbp"
    with pytest.raises(FileNotFoundError, match=r"directory .*dir' does not exist"):
        Network([2, 1], seed=0).save(target)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Crafted bad files
# ---------------------------------------------------------------------------

BASE_NET = Network.from_weights(
    [np.arange(6.0).reshape(3, 2) / 10, np.array([[0.5, -0.5, 0.25]])], [np.zeros(3), np.ones(1)]
)
BASE_PAYLOAD = flat_payload(BASE_NET)


def base_header(payload=BASE_PAYLOAD, version=2):
    """A good header (format version 2 by default; 1: the previous format, without "loss")."""
    header = {
        "format_version": version,
        "fastbp_version": "0.1.0",
        "layer_sizes": [2, 3, 1],
        "dtype": "float64",
        "activations": ["sigmoid", "sigmoid"],
        "loss": "squared_error",
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    if version == 1:
        del header["loss"]
    return header


def craft(header=None, payload=BASE_PAYLOAD, *, magic=MAGIC, version=2, raw_header=None, header_size=None):
    """A model file built by hand: any field can be wrong."""
    if raw_header is None:
        raw_header = json.dumps(base_header(payload, version) if header is None else header).encode()
    if header_size is None:
        header_size = len(raw_header)
    return magic + bytes([version]) + struct.pack("<I", header_size) + raw_header + payload


def changed(version=2, **fields):
    """The base file (of format ``version``) with some header fields replaced (None: removed)."""
    header = base_header(version=version)
    for key, value in fields.items():
        if value is None:
            del header[key]
        else:
            header[key] = value
    return craft(header, version=version)


def nan_file(value, where, dtype="float64"):
    """A file whose checksum is right but whose payload holds ``value``."""
    net = Network([2, 3, 1], seed=0, dtype=dtype)
    values = np.frombuffer(flat_payload(net), LE[dtype]).copy()
    values[where] = value
    payload = values.tobytes()
    header = base_header(payload)
    header["dtype"] = dtype
    return craft(header, payload)


GOOD = craft()
HEADER_END = 12 + struct.unpack("<I", GOOD[8:12])[0]

BAD_FILES = {
    # The preamble.
    "empty": (b"", "the file is empty"),
    "one byte": (b"F", "truncated: 1 bytes, shorter than the 12-byte preamble"),
    "magic only": (MAGIC, "truncated: 7 bytes"),
    "wrong magic": (b"FASTBQ\x00" + GOOD[7:], "not a fastbp model file: it starts with b'FASTBQ"),
    "pickle": (b"\x80\x04\x95" + GOOD[3:], "not a fastbp model file"),
    "npz (zip)": (b"PK\x03\x04" + GOOD[4:], "not a fastbp model file"),
    "text": (b"hello world, not a model", "not a fastbp model file: it starts with b'hello w'"),
    "future version": (
        craft(version=3),
        rf"format version 3 is newer than this fastbp \({re.escape(fastbp.__version__)}\) can read \(versions 1, 2\); upgrade",
    ),
    "version 255": (craft(version=255), "format version 255 is newer"),
    "version 0": (craft(version=0), r"unknown format version 0 \(this fastbp reads versions 1, 2\)"),
    "version 1 byte, version 2 header": (
        craft(base_header(), version=1),
        r"version 1 file must have .*unexpected \['loss'\]",
    ),
    "version 2 byte, version 1 header": (
        craft(base_header(version=1)),
        r"version 2 file must have .*missing \['loss'\]",
    ),
    "header too big": (craft(header_size=64 * 1024 + 1), "says 65537 bytes, more than the 65536 allowed"),
    "header size 2**32-1": (craft(header_size=2**32 - 1), "more than the 65536 allowed"),
    "header beyond the file": (craft(header_size=len(GOOD)), r"truncated: the header is \d+ bytes but only"),
    "preamble only": (GOOD[:12], "truncated: the header is"),
    "truncated header": (GOOD[: HEADER_END - 1], "truncated: the header is"),
    # The header's syntax.
    "header size 0": (craft(raw_header=b""), "the header is not valid JSON"),
    "header not JSON": (craft(raw_header=b"layer_sizes=[2,3,1]"), "the header is not valid JSON"),
    "header not UTF-8": (craft(raw_header=b'{"a":"\xff"}'), "the header is not UTF-8 text"),
    "header with a BOM": (
        craft(raw_header=b"\xef\xbb\xbf" + json.dumps(base_header()).encode()),
        "not valid JSON",
    ),
    "two JSON values": (
        craft(raw_header=json.dumps(base_header()).encode() * 2),
        "not valid JSON: Extra data: line 1",
    ),
    "deeply nested": (craft(raw_header=b"[" * 30000 + b"]" * 30000), "not valid JSON"),
    "JSON array": (craft(raw_header=b"[1, 2]"), "the header must be a JSON object, got an array: \\[1, 2\\]"),
    "JSON number": (craft(raw_header=b"1"), "must be a JSON object, got a number: 1"),
    "JSON string": (craft(raw_header=b'"fastbp"'), "must be a JSON object, got a string: 'fastbp'"),
    "JSON null": (craft(raw_header=b"null"), "must be a JSON object, got null"),
    "duplicate key": (
        craft(raw_header=json.dumps(base_header()).encode()[:-1] + b',"dtype":"float32"}'),
        r"repeats the key\(s\) \['dtype'\]",
    ),
    "NaN in the header": (
        craft(
            raw_header=json.dumps(base_header())
            .encode()
            .replace(b'"payload_bytes":', b'"payload_bytes":NaN,"x":')
        ),
        "holds NaN, which is not a JSON number",
    ),
    # The header's keys and types.
    "missing key": (changed(payload_sha256=None), r"exactly the keys .*missing \['payload_sha256'\]"),
    "missing key, version 1": (
        changed(1, payload_sha256=None),
        r"exactly the keys .*missing \['payload_sha256'\]",
    ),
    "extra key": (changed(pickle="cos\nsystem\n"), r"unexpected \['pickle'\]"),
    "empty object": (craft({}), "missing"),
    "format_version str": (changed(format_version="2"), "'format_version' must be 2"),
    "format_version bool": (changed(1, format_version=True), "'format_version' must be 1"),
    "format_version float": (changed(format_version=2.0), "'format_version' must be 2"),
    "format_version differs": (changed(format_version=1), "'format_version' must be 2 .*got 1"),
    "format_version differs, version 1": (changed(1, format_version=2), "'format_version' must be 1 .*got 2"),
    "fastbp_version not str": (changed(fastbp_version=1), "'fastbp_version' must be a string"),
    "layer_sizes str": (changed(layer_sizes="2,3,1"), "'layer_sizes' must be a list of at least 2 integers"),
    "layer_sizes dict": (changed(layer_sizes={"2": 3}), "'layer_sizes' must be a list"),
    "one layer": (changed(layer_sizes=[2], activations=[]), r"'layer_sizes' must be .* got \[2\]"),
    "no layers": (changed(layer_sizes=[], activations=[]), "'layer_sizes' must be a list"),
    "zero size": (changed(layer_sizes=[2, 0, 1]), r"got \[2, 0, 1\]"),
    "negative size": (changed(layer_sizes=[2, -3, 1]), r"got \[2, -3, 1\]"),
    "bool size": (changed(layer_sizes=[2, True, 1]), "'layer_sizes' must be"),
    "float size": (changed(layer_sizes=[2, 3.0, 1]), "'layer_sizes' must be"),
    "str size": (changed(layer_sizes=[2, "3", 1]), "'layer_sizes' must be"),
    "nested sizes": (changed(layer_sizes=[[2], [3], [1]]), "'layer_sizes' must be"),
    "size that does not fit the payload": (
        changed(layer_sizes=[2, 4, 1]),
        r"payload_bytes=104 but layer sizes \[2, 4, 1\] in float64 need 136",
    ),
    "unknown dtype": (
        changed(dtype="float16"),
        r"'dtype' must be one of \['float32', 'float64'\], got 'float16'",
    ),
    "numpy dtype string": (changed(dtype="<f8"), "'dtype' must be one of"),
    "dtype as a list": (changed(dtype=["float64"]), "'dtype' must be one of"),
    "dtype that does not fit the payload": (
        changed(dtype="float32"),
        "payload_bytes=104 but .* in float32 need 52",
    ),
    "unknown activation": (
        changed(activations=["sigmoid", "swish"]),
        rf"layer 2 uses the activation 'swish', which this fastbp \({re.escape(fastbp.__version__)}\) does not implement \(it knows \['sigmoid', "
        r"'tanh', 'relu', 'leaky_relu', 'identity', 'softmax'\]\)",
    ),
    "activation in capitals": (
        changed(activations=["Sigmoid", "sigmoid"]),
        "layer 1 uses the activation 'Sigmoid'",
    ),
    "activation with a space": (
        changed(activations=["sigmoid", "tanh "]),
        "layer 2 uses the activation 'tanh '",
    ),
    "scikit-learn's name": (
        changed(activations=["logistic", "sigmoid"]),
        "layer 1 uses the activation 'logistic'",
    ),
    "empty activation": (changed(activations=["sigmoid", ""]), "layer 2 uses the activation ''"),
    "softmax hidden": (
        changed(activations=["softmax", "softmax"], loss="cross_entropy"),
        "layer 1 of 2 uses the activation 'softmax', which is for the output layer only",
    ),
    "version 1 with another activation": (
        changed(1, activations=["relu", "sigmoid"]),
        r"layer 1 uses the activation 'relu', which format version 1 does not have .*need version 2",
    ),
    "version 1 with an unknown activation": (
        changed(1, activations=["sigmoid", "swish"]),
        "layer 2 uses the activation 'swish', which format version 1",
    ),
    "version 1 with a loss": (changed(1, loss="cross_entropy"), r"unexpected \['loss'\]"),
    "unknown loss": (
        changed(loss="hinge"),
        rf"the loss 'hinge' is one this fastbp \({re.escape(fastbp.__version__)}\) does not implement \(it knows \['squared_error', "
        r"'cross_entropy'\]\)",
    ),
    "loss in capitals": (changed(loss="Cross_Entropy"), "the loss 'Cross_Entropy' is one this fastbp"),
    "loss by another name": (changed(loss="mse"), "the loss 'mse'"),
    "loss empty list": (
        changed(loss=[]),
        r"'loss' must be one of \['squared_error', 'cross_entropy'\], got \[\]",
    ),
    "loss null": (craft({**base_header(), "loss": None}), "'loss' must be one of .*got None"),
    "loss number": (changed(loss=1), "'loss' must be one of .*got 1"),
    "loss bool": (changed(loss=False), "'loss' must be one of .*got False"),
    "loss list": (changed(loss=["squared_error"]), r"'loss' must be one of .*got \['squared_error'\]"),
    "loss object": (changed(loss={"name": "squared_error"}), "'loss' must be one of"),
    "missing loss": (changed(loss=None), r"missing \['loss'\]"),
    "cross-entropy with identity outputs": (
        changed(activations=["sigmoid", "identity"], loss="cross_entropy"),
        "the output activation 'identity' and the loss 'cross_entropy' are not a combination fastbp supports: "
        ".*'sigmoid' or 'softmax'",
    ),
    "cross-entropy with tanh outputs": (
        changed(activations=["relu", "tanh"], loss="cross_entropy"),
        "'tanh' and the loss 'cross_entropy' are not",
    ),
    "cross-entropy with relu outputs": (
        changed(activations=["relu", "relu"], loss="cross_entropy"),
        "'relu' and the loss 'cross_entropy' are not",
    ),
    "softmax with squared error": (
        changed(activations=["relu", "softmax"], loss="squared_error"),
        "the output activation 'softmax' and the loss 'squared_error' are not a combination fastbp supports",
    ),
    "activations str": (changed(activations="sigmoid"), "'activations' must be a list of 2 strings"),
    "too few activations": (changed(activations=["sigmoid"]), "'activations' must be a list of 2 strings"),
    "too many activations": (
        changed(activations=["sigmoid"] * 3),
        "'activations' must be a list of 2 strings",
    ),
    "activation not str": (changed(activations=["sigmoid", None]), "'activations' must be"),
    "activation a list": (changed(activations=[["sigmoid"], "sigmoid"]), "'activations' must be"),
    "activations null": (changed(activations=[]), "'activations' must be a list of 2 strings"),
    "payload_bytes negative": (changed(payload_bytes=-1), "'payload_bytes' must be an integer >= 0"),
    "payload_bytes str": (changed(payload_bytes="104"), "'payload_bytes' must be an integer"),
    "payload_bytes float": (changed(payload_bytes=104.0), "'payload_bytes' must be an integer"),
    "payload_bytes bool": (changed(payload_bytes=True), "'payload_bytes' must be an integer"),
    "payload_bytes wrong": (changed(payload_bytes=96), "payload_bytes=96 but layer sizes .* need 104"),
    "checksum uppercase": (
        changed(payload_sha256=base_header()["payload_sha256"].upper()),
        "64 lowercase hex",
    ),
    "checksum short": (changed(payload_sha256="ab" * 31), "'payload_sha256' must be 64 lowercase hex"),
    "checksum not hex": (changed(payload_sha256="g" * 64), "'payload_sha256' must be 64 lowercase hex"),
    "checksum number": (changed(payload_sha256=5), "'payload_sha256' must be 64 lowercase hex"),
    # Sizes too large, some overflowing int64 in their products.
    "sizes overflowing int64": (
        changed(layer_sizes=[2**40, 2**40, 1], payload_bytes=8 * (2**40 * (2**40 + 1) + 2**40 + 1)),
        f"in float64 need {8 * (2**40 * (2**40 + 1) + 2**40 + 1)} payload bytes, more than fastbp allows",
    ),
    "size 2**64": (changed(layer_sizes=[1, 2**64], activations=["sigmoid"]), "more than fastbp allows"),
    "a 4000-digit size": (
        changed(layer_sizes=[1, 10**3999], activations=["sigmoid"]),
        "more than fastbp allows",
    ),
    "sum overflowing int64 with payload_bytes matching": (
        changed(layer_sizes=[2**62, 1], activations=["sigmoid"], payload_bytes=8 * (2**62 + 1)),
        "more than fastbp allows",
    ),
    # The payload.
    "truncated payload": (GOOD[:-1], "truncated: the header says 104 payload bytes but the file holds 103"),
    "no payload": (GOOD[:HEADER_END], "the header says 104 payload bytes but the file holds 0"),
    "trailing byte": (GOOD + b"\x00", "1 unexpected bytes after the 104-byte payload"),
    "appended copy": (GOOD + GOOD, r"\d+ unexpected bytes after"),
    "bad checksum": (GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "checksum mismatch: the payload's SHA-256 is"),
    "zeroed payload": (GOOD[:HEADER_END] + bytes(104), "checksum mismatch"),
    "NaN weight, right checksum": (
        nan_file(np.nan, 0),
        r"the weights of layer 1 hold 1 non-finite values \(first: nan at index \(0, 0\)\)",
    ),
    "inf bias, right checksum": (
        nan_file(np.inf, 8),
        r"the biases of layer 1 hold 1 non-finite .*inf at index \(2,\)",
    ),
    "-inf last weight, right checksum": (
        nan_file(-np.inf, 9),
        r"weights of layer 2 .*-inf at index \(0, 0\)",
    ),
    "float32 NaN, right checksum": (
        nan_file(np.nan, 12, "float32"),
        "the biases of layer 2 hold 1 non-finite",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_crafted_bad_files_are_refused(tmp_path, name):
    data, message = BAD_FILES[name]
    path = tmp_path / "bad.fbp"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as error:
        fastbp.load(path)
    assert str(error.value).startswith(f"model file {str(path)!r}: ")


def test_the_crafting_helper_makes_good_files(tmp_path):
    # Every bad file above is one change away from one of these, which load.
    (tmp_path / "good.fbp").write_bytes(GOOD)
    assert_identical(fastbp.load(tmp_path / "good.fbp"), BASE_NET)
    (tmp_path / "good1.fbp").write_bytes(craft(version=1))
    assert_identical(fastbp.load(tmp_path / "good1.fbp"), BASE_NET)
    (tmp_path / "softmax.fbp").write_bytes(changed(activations=["relu", "softmax"], loss="cross_entropy"))
    loaded = fastbp.load(tmp_path / "softmax.fbp")
    assert loaded.activations == ("relu", "softmax") and loaded.loss == "cross_entropy"
    (tmp_path / "good32.fbp").write_bytes(nan_file(0.5, 0, "float32"))
    assert fastbp.load(tmp_path / "good32.fbp").dtype == np.float32


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
@pytest.mark.parametrize(
    "output, loss",
    [
        ("sigmoid", "squared_error"),
        ("sigmoid", "cross_entropy"),
        ("softmax", "cross_entropy"),
        ("tanh", "squared_error"),
        ("relu", "squared_error"),
        ("leaky_relu", "squared_error"),
        ("identity", "squared_error"),
    ],
)
def test_every_model_a_network_accepts_loads(tmp_path, hidden, output, loss):
    (tmp_path / "n.fbp").write_bytes(changed(activations=[hidden, output], loss=loss))
    loaded = fastbp.load(tmp_path / "n.fbp")
    assert loaded.activations == (hidden, output) and loaded.loss == loss
    assert [bits(w) for w in loaded.weights] == [bits(w) for w in BASE_NET.weights]


def test_fastbp_version_is_informative(tmp_path):
    (tmp_path / "n.fbp").write_bytes(changed(fastbp_version="99.0 (from the future)"))
    assert_identical(fastbp.load(tmp_path / "n.fbp"), BASE_NET)


@pytest.mark.parametrize(
    "sizes, dtype, message",
    [
        # 10**12 bytes of float32: under fastbp's limit, so only the file size refuses it.
        (
            [500_000, 500_000],
            "float32",
            "truncated: the header says 1000002000000 payload bytes but the file holds 104",
        ),
        ([10**6, 10**6], "float64", "need 8000008000000 payload bytes, more than fastbp allows"),
    ],
)
def test_huge_claims_fail_before_allocating(tmp_path, sizes, dtype, message):
    itemsize = np.dtype(dtype).itemsize
    n = sum(b * (a + 1) for a, b in itertools.pairwise(sizes))
    header = base_header()
    header.update(layer_sizes=sizes, dtype=dtype, activations=["sigmoid"], payload_bytes=n * itemsize)
    (tmp_path / "huge.fbp").write_bytes(craft(header))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message):
            fastbp.load(tmp_path / "huge.fbp")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # NumPy reports its allocations to tracemalloc


# ---------------------------------------------------------------------------
# Mutation fuzz
# ---------------------------------------------------------------------------

FUZZ_CASES = int(os.environ.get("FASTBP_FUZZ_CASES", "10000"))


def fuzz_originals(directory):
    nets = [
        Network([2, 3, 1], seed=0, dtype="float32"),
        Network([1, 2], seed=1),
        Network([3, 1, 2, 1], seed=2),
        Network(
            [2, 3, 2, 3],
            activation=["relu", "tanh"],
            output_activation="softmax",
            loss="cross_entropy",
            seed=3,
        ),
        Network([2, 2, 1], activation="leaky_relu", output_activation="identity", seed=4, dtype="float32"),
    ]
    originals = []
    for net in nets:
        net.save(directory / "original.fbp")
        data = (directory / "original.fbp").read_bytes()
        start = data.index(b'"fastbp_version":"') + len(b'"fastbp_version":"')
        end = data.index(b'"', start)
        header_end = 12 + struct.unpack("<I", data[8:12])[0]
        originals.append((net, data, header_end, range(start, end)))
    return originals


def mutate(rng, data, header_end):
    """One to three random edits, mostly in the preamble and header (where a
    change is not simply caught by the checksum)."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not data:
            data += rng.randbytes(rng.randint(1, 16))
            continue
        limit = min(header_end, len(data)) if rng.random() < 0.8 else len(data)
        at = rng.randrange(max(limit, 1))
        op = rng.randrange(7)
        if op == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at] = rng.randrange(256)
        elif op == 2:
            del data[rng.randrange(len(data)) :]
        elif op == 3:
            data += rng.randbytes(rng.randint(1, 64))
        elif op == 4:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 5:
            del data[at : at + rng.randint(1, 8)]
        else:
            chunk = rng.choice(
                [b"0", b"9", b'"', b"-", b",", b"1e9", b"true", b"[", b"]", b"{", b"}", b"\\u0000"]
            )
            data[at : at + len(chunk)] = chunk
    return bytes(data)


def load_mutant(path, data, net, original, version_span, case):
    """Load a mutated file: a ValueError, or (only when the edit touched the
    informative fastbp_version string alone) the original network, exactly."""
    path.write_bytes(data)
    try:
        loaded = fastbp.load(path)
    except ValueError as error:
        assert str(error).startswith(f"model file {str(path)!r}: "), (case, error)
        return "refused"
    except Exception as error:  # anything else is a crash of the loader
        raise AssertionError(f"case {case}: {type(error).__name__}: {error}; file={data!r}") from error
    assert_identical(loaded, net)
    changed_at = [i for i, (a, b) in enumerate(zip(data, original)) if a != b]
    assert len(data) == len(original) and all(i in version_span for i in changed_at), (case, data)
    return "harmless"


def test_fuzz_every_truncation_and_bit_flip(tmp_path):
    path = tmp_path / "mutant.fbp"
    outcomes = []
    for net, data, header_end, version_span in fuzz_originals(tmp_path):
        for n in range(len(data)):
            outcomes.append(load_mutant(path, data[:n], net, data, version_span, f"truncate to {n}"))
        # Every bit of the preamble and header, and of the first and last payload values.
        positions = [*range(header_end), *range(header_end, header_end + 8), *range(len(data) - 8, len(data))]
        for at in positions:
            for bit in range(8):
                mutant = bytearray(data)
                mutant[at] ^= 1 << bit
                case = f"flip bit {bit} of byte {at}"
                outcomes.append(load_mutant(path, bytes(mutant), net, data, version_span, case))
    assert outcomes.count("refused") > 0.9 * len(outcomes)


def test_fuzz_random_mutations(tmp_path):
    rng = random.Random(20240401)
    path = tmp_path / "mutant.fbp"
    originals = fuzz_originals(tmp_path)
    outcomes = {"refused": 0, "harmless": 0}
    for case in range(FUZZ_CASES):
        net, data, header_end, version_span = originals[case % len(originals)]
        mutant = mutate(rng, data, header_end)
        if mutant == data:
            continue
        outcomes[load_mutant(path, mutant, net, data, version_span, case)] += 1
    assert outcomes["refused"] > 0.95 * FUZZ_CASES, outcomes


# ---------------------------------------------------------------------------
# Atomic saving
# ---------------------------------------------------------------------------


def interrupt(f, chunks):
    f.write(b"FASTBP")
    raise KeyboardInterrupt


FAILURES = {
    "fsync fails": ("os.fsync", fail, OSError),
    "replace fails": ("os.replace", fail, OSError),
    "disk full mid-write": ("fastbp._files._write_chunks", write_half_then_fill_the_disk, OSError),
    "Ctrl-C mid-write": ("fastbp._files._write_chunks", interrupt, KeyboardInterrupt),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch, failure):
    target, replacement, exception = FAILURES[failure]
    path = tmp_path / "model.fbp"
    good = Network([2, 3, 1], seed=0)
    good.save(path)
    before = path.read_bytes()
    monkeypatch.setattr(target, replacement)
    with pytest.raises(exception):
        Network([4, 4, 4], seed=1).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.fbp"]  # no temporary file left behind
    assert path.read_bytes() == before
    assert_identical(fastbp.load(path), good)


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch, failure):
    target, replacement, exception = FAILURES[failure]
    monkeypatch.setattr(target, replacement)
    with pytest.raises(exception):
        Network([2, 1], seed=0).save(tmp_path / "model.fbp")
    assert os.listdir(tmp_path) == []


def test_the_file_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.dirname(src) == os.path.dirname(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    Network([2, 1], seed=0).save(tmp_path / "n.fbp")
    expected = [("fsync", False), ("replace", True)]
    if sys.platform != "win32":
        expected.append(("fsync", True))  # the directory entry too
    assert events == expected


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_permissions_like_open(tmp_path):
    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.fbp"
        Network([2, 1], seed=0).save(new)
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o644
        os.chmod(new, 0o600)
        Network([2, 1], seed=1).save(new)
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o600
    finally:
        os.umask(umask)
