"""Model files: ``Network.save`` and ``fastbp.load`` (format in ``fastbp._modelfile``).

Exact round trips, the byte layout, a corpus of crafted bad files, a mutation
fuzz of good files, and atomic saving under simulated failures.

The fuzz runs ``FASTBP_FUZZ_CASES`` random mutations (default 10000) on top of
its exhaustive cases; for a longer run:

    FASTBP_FUZZ_CASES=200000 pytest tests/test_modelfile.py -k fuzz
"""

import errno
import hashlib
import json
import os
import random
import stat
import struct
import sys
import tracemalloc

import numpy as np
import pytest

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
    for a, b in zip(loaded.weights + loaded.biases, original.weights + original.biases, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert bits(a) == bits(b)


def flat_payload(net):
    dtype = LE[net.dtype.name]
    return b"".join(np.asarray(a, dtype=dtype).tobytes() for W, b in zip(net.weights, net.biases) for a in (W, b))


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
    W = np.array([[-0.0, info.smallest_subnormal, -info.smallest_subnormal], [info.max, -info.max, info.tiny]], dtype)
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


def test_load_chooses_the_backend(tmp_path):
    net = Network([2, 3, 1], seed=0, backend="python")
    net.save(tmp_path / "n.fbp")
    for name in fastbp.backends():
        assert fastbp.load(tmp_path / "n.fbp", backend=name).backend == name


def test_file_layout_is_the_documented_one(tmp_path, dtype):
    net = Network([3, 4, 2], seed=3, dtype=dtype)
    net.save(tmp_path / "n.fbp")
    data = (tmp_path / "n.fbp").read_bytes()
    assert data[:7] == MAGIC and data[7] == 1
    version, header, payload = split_file(data)
    assert header == {
        "format_version": 1,
        "fastbp_version": fastbp.__version__,
        "layer_sizes": [3, 4, 2],
        "dtype": dtype.name,
        "activations": ["sigmoid", "sigmoid"],
        "payload_bytes": dtype.itemsize * (4 * (3 + 1) + 2 * (4 + 1)),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    assert len(payload) == header["payload_bytes"]
    assert payload == flat_payload(net)
    # W[1] row-major first: the first value is weights[0][0, 0], the 4th is weights[0][1, 0].
    values = np.frombuffer(payload, LE[dtype.name])
    assert values[0] == net.weights[0][0, 0] and values[3] == net.weights[0][1, 0]
    assert bits(values[12:16]) == bits(net.biases[0])


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
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        Network([2, 1], seed=0).save(path)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        fastbp.load(path)


def test_file_objects_are_not_paths(tmp_path):
    Network([2, 1], seed=0).save(tmp_path / "n.fbp")
    with open(tmp_path / "n.fbp", "rb") as f, pytest.raises(TypeError, match="BufferedReader"):
        fastbp.load(f)


def test_save_needs_a_network(tmp_path):
    from fastbp import _modelfile

    with pytest.raises(TypeError, match="net must be a fastbp.Network, got dict"):
        _modelfile.save({}, tmp_path / "n.fbp")
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
    with pytest.raises(FileNotFoundError, match="directory .*dir' does not exist"):
        Network([2, 1], seed=0).save(target)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Crafted bad files
# ---------------------------------------------------------------------------

BASE_NET = Network.from_weights(
    [np.arange(6.0).reshape(3, 2) / 10, np.array([[0.5, -0.5, 0.25]])], [np.zeros(3), np.ones(1)]
)
BASE_PAYLOAD = flat_payload(BASE_NET)


def base_header(payload=BASE_PAYLOAD):
    return {
        "format_version": 1,
        "fastbp_version": "0.1.0",
        "layer_sizes": [2, 3, 1],
        "dtype": "float64",
        "activations": ["sigmoid", "sigmoid"],
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }


def craft(header=None, payload=BASE_PAYLOAD, *, magic=MAGIC, version=1, raw_header=None, header_size=None):
    """A model file built by hand: any field can be wrong."""
    if raw_header is None:
        raw_header = json.dumps(base_header(payload) if header is None else header).encode()
    if header_size is None:
        header_size = len(raw_header)
    return magic + bytes([version]) + struct.pack("<I", header_size) + raw_header + payload


def changed(**fields):
    """The base file with some header fields replaced (None: removed)."""
    header = base_header()
    for key, value in fields.items():
        if value is None:
            del header[key]
        else:
            header[key] = value
    return craft(header)


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
    "future version": (craft(version=2), r"format version 2 is newer than this fastbp \(0.1.0\) can read .*upgrade"),
    "version 255": (craft(version=255), "format version 255 is newer"),
    "version 0": (craft(version=0), "unknown format version 0"),
    "header too big": (craft(header_size=64 * 1024 + 1), "says 65537 bytes, more than the 65536 allowed"),
    "header size 2**32-1": (craft(header_size=2**32 - 1), "more than the 65536 allowed"),
    "header beyond the file": (craft(header_size=len(GOOD)), r"truncated: the header is \d+ bytes but only"),
    "preamble only": (GOOD[:12], "truncated: the header is"),
    "truncated header": (GOOD[: HEADER_END - 1], "truncated: the header is"),
    # The header's syntax.
    "header size 0": (craft(raw_header=b""), "the header is not valid JSON"),
    "header not JSON": (craft(raw_header=b"layer_sizes=[2,3,1]"), "the header is not valid JSON"),
    "header not UTF-8": (craft(raw_header=b'{"a":"\xff"}'), "the header is not UTF-8 text"),
    "header with a BOM": (craft(raw_header=b"\xef\xbb\xbf" + json.dumps(base_header()).encode()), "not valid JSON"),
    "two JSON values": (craft(raw_header=json.dumps(base_header()).encode() * 2), "not valid JSON: Extra data: line 1"),
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
        craft(raw_header=json.dumps(base_header()).encode().replace(b'"payload_bytes":', b'"payload_bytes":NaN,"x":')),
        "holds NaN, which is not a JSON number",
    ),
    # The header's keys and types.
    "missing key": (changed(payload_sha256=None), r"exactly the keys .*missing \['payload_sha256'\]"),
    "extra key": (changed(pickle="cos\nsystem\n"), r"unexpected \['pickle'\]"),
    "empty object": (craft({}), "missing"),
    "format_version str": (changed(format_version="1"), "'format_version' must be 1"),
    "format_version bool": (changed(format_version=True), "'format_version' must be 1"),
    "format_version float": (changed(format_version=1.0), "'format_version' must be 1"),
    "format_version differs": (changed(format_version=2), "'format_version' must be 1 .*got 2"),
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
    "unknown dtype": (changed(dtype="float16"), r"'dtype' must be one of \['float32', 'float64'\], got 'float16'"),
    "numpy dtype string": (changed(dtype="<f8"), "'dtype' must be one of"),
    "dtype as a list": (changed(dtype=["float64"]), "'dtype' must be one of"),
    "dtype that does not fit the payload": (changed(dtype="float32"), "payload_bytes=104 but .* in float32 need 52"),
    "unknown activation": (
        changed(activations=["sigmoid", "relu"]),
        r"layer 2 uses the activation 'relu', which this fastbp \(0.1.0\) does not implement",
    ),
    "activations str": (changed(activations="sigmoid"), "'activations' must be a list of 2 strings"),
    "too few activations": (changed(activations=["sigmoid"]), "'activations' must be a list of 2 strings"),
    "too many activations": (changed(activations=["sigmoid"] * 3), "'activations' must be a list of 2 strings"),
    "activation not str": (changed(activations=["sigmoid", None]), "'activations' must be"),
    "payload_bytes negative": (changed(payload_bytes=-1), "'payload_bytes' must be an integer >= 0"),
    "payload_bytes str": (changed(payload_bytes="104"), "'payload_bytes' must be an integer"),
    "payload_bytes float": (changed(payload_bytes=104.0), "'payload_bytes' must be an integer"),
    "payload_bytes bool": (changed(payload_bytes=True), "'payload_bytes' must be an integer"),
    "payload_bytes wrong": (changed(payload_bytes=96), "payload_bytes=96 but layer sizes .* need 104"),
    "checksum uppercase": (changed(payload_sha256=base_header()["payload_sha256"].upper()), "64 lowercase hex"),
    "checksum short": (changed(payload_sha256="ab" * 31), "'payload_sha256' must be 64 lowercase hex"),
    "checksum not hex": (changed(payload_sha256="g" * 64), "'payload_sha256' must be 64 lowercase hex"),
    "checksum number": (changed(payload_sha256=5), "'payload_sha256' must be 64 lowercase hex"),
    # Sizes too large, some overflowing int64 in their products.
    "sizes overflowing int64": (
        changed(layer_sizes=[2**40, 2**40, 1], payload_bytes=8 * (2**40 * (2**40 + 1) + 2**40 + 1)),
        f"in float64 need {8 * (2**40 * (2**40 + 1) + 2**40 + 1)} payload bytes, more than fastbp allows",
    ),
    "size 2**64": (changed(layer_sizes=[1, 2**64], activations=["sigmoid"]), "more than fastbp allows"),
    "a 4000-digit size": (changed(layer_sizes=[1, 10**3999], activations=["sigmoid"]), "more than fastbp allows"),
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
    "inf bias, right checksum": (nan_file(np.inf, 8), r"the biases of layer 1 hold 1 non-finite .*inf at index \(2,\)"),
    "-inf last weight, right checksum": (nan_file(-np.inf, 9), r"weights of layer 2 .*-inf at index \(0, 0\)"),
    "float32 NaN, right checksum": (nan_file(np.nan, 12, "float32"), "the biases of layer 2 hold 1 non-finite"),
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
    # Every bad file above is one change away from this one, which loads.
    (tmp_path / "good.fbp").write_bytes(GOOD)
    assert_identical(fastbp.load(tmp_path / "good.fbp"), BASE_NET)
    (tmp_path / "good32.fbp").write_bytes(nan_file(0.5, 0, "float32"))
    assert fastbp.load(tmp_path / "good32.fbp").dtype == np.float32


def test_fastbp_version_is_informative(tmp_path):
    (tmp_path / "n.fbp").write_bytes(changed(fastbp_version="99.0 (from the future)"))
    assert_identical(fastbp.load(tmp_path / "n.fbp"), BASE_NET)


@pytest.mark.parametrize(
    "sizes, dtype, message",
    [
        # 10**12 bytes of float32: under fastbp's limit, so only the file size refuses it.
        ([500_000, 500_000], "float32", "truncated: the header says 1000002000000 payload bytes but the file holds 104"),
        ([10**6, 10**6], "float64", "need 8000008000000 payload bytes, more than fastbp allows"),
    ],
)
def test_huge_claims_fail_before_allocating(tmp_path, sizes, dtype, message):
    itemsize = np.dtype(dtype).itemsize
    n = sum(b * (a + 1) for a, b in zip(sizes[:-1], sizes[1:]))
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
    nets = [Network([2, 3, 1], seed=0, dtype="float32"), Network([1, 2], seed=1), Network([3, 1, 2, 1], seed=2)]
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
            chunk = rng.choice([b"0", b"9", b'"', b"-", b",", b"1e9", b"true", b"[", b"]", b"{", b"}", b"\\u0000"])
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


def fail(*args, **kwargs):
    raise OSError(errno.EIO, "simulated I/O failure")


def write_half_then_fill_the_disk(f, chunks):
    data = b"".join(bytes(c) for c in chunks)
    f.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, "No space left on device (simulated)")


def interrupt(f, chunks):
    f.write(b"FASTBP")
    raise KeyboardInterrupt


FAILURES = {
    "fsync fails": ("os.fsync", fail, OSError),
    "replace fails": ("os.replace", fail, OSError),
    "disk full mid-write": ("fastbp._modelfile._write_chunks", write_half_then_fill_the_disk, OSError),
    "Ctrl-C mid-write": ("fastbp._modelfile._write_chunks", interrupt, KeyboardInterrupt),
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

