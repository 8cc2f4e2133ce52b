"""fastbp's model files: ``Network.save`` and ``fastbp.load``.

A model file holds a network's layer sizes, dtype, activations, loss and
parameters, and nothing that runs: loading never unpickles and never evaluates
anything.  Suggested extension: ``.fbp``.

Format version 2, byte by byte (every integer little-endian)::

    offset   size  content
    0        7     magic: the bytes b"FASTBP\\x00"
    7        1     format version: 2 (an unsigned byte)
    8        4     H, the header's length in bytes (unsigned 32-bit), at most 65536
    12       H     header: a JSON object, UTF-8 (below)
    12 + H   P     payload: the parameters, P = header["payload_bytes"] bytes;
                   the file ends exactly here

The header has exactly these keys:

* ``"format_version"``: ``2``, the same as byte 7;
* ``"fastbp_version"``: the version of fastbp that wrote the file (informative);
* ``"layer_sizes"``: ``[n_0, n_1, ..., n_L]``, at least two integers >= 1;
* ``"dtype"``: ``"float32"`` or ``"float64"``: the payload's values are IEEE 754
  numbers of that width, little-endian;
* ``"activations"``: one name per layer ``l = 1..L`` (``net.activations``), each
  one of ``fastbp._model.ACTIVATIONS``; ``"softmax"`` only for the last;
* ``"loss"``: the loss's name (``net.loss``), one of ``fastbp._model.LOSSES``;
  the combination must be one ``Network`` accepts (``fastbp._model.resolve``:
  cross-entropy needs a sigmoid or softmax output, softmax needs cross-entropy);
* ``"payload_bytes"``: ``P = itemsize * sum_l n_l * (n_{l-1} + 1)``;
* ``"payload_sha256"``: the SHA-256 of the payload, 64 lowercase hex digits.

The payload is fastbp's flat parameter layout (``fastbp._layout``): for each
layer ``l = 1..L`` in order, ``W[l]`` row by row (``n_l`` rows of ``n_{l-1}``
values; row ``k`` holds the weights into neuron ``k``, i.e. ``net.weights[l-1]``
in C order), then ``b[l]`` (``n_l`` values).  No padding anywhere.

Format version 1 (written by fastbp before activations and losses existed) is
the same layout with ``1`` in byte 7 and ``"format_version"``, and a header
without the ``"loss"`` key whose ``"activations"`` are all ``"sigmoid"``.  It
still loads, as an all-sigmoid network with the squared-error loss (the only
model there was); a version 1 file naming another activation is refused, as
version 1 readers refused it.  ``save`` always writes version 2.

``load`` checks, in this order, before it allocates anything the size of the
payload: the magic, the format version, the header length (<= 64 KiB, present
in the file), that the header is UTF-8 JSON (no duplicate keys, no NaN or
Infinity) holding an object with exactly the keys of its version and values of
the right types (integers are JSON integers, never booleans or floats), at least
two layer sizes, all >= 1, one known activation per layer (softmax on the
output layer only), a known loss, a combination of activations and loss that
``Network`` accepts, a ``payload_bytes`` equal to what the sizes need (computed
in Python integers, so it cannot overflow) and under fastbp's size limit, and
that the file holds exactly that many bytes after the header.  Only then does
it read the payload, and it checks the SHA-256 and that every value is finite.
Whatever is wrong with the content raises ``ValueError`` naming the file and
the problem; a path that cannot be opened raises the usual ``OSError``
(``FileNotFoundError``, ``PermissionError``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

import numpy as np
import numpy.typing as npt

from . import _layout, _model
from ._files import _BadFile, _open_regular_file, _show, _write_atomically
from ._validation import MAX_PARAM_BYTES
from ._version import __version__

MAGIC = b"FASTBP\x00"
FORMAT_VERSION = 2
MAX_HEADER_BYTES = 64 * 1024
ACTIVATIONS = _model.ACTIVATIONS
LOSSES = _model.LOSSES

# magic, format version, header length: the 12 bytes before the header.
_PREAMBLE = struct.Struct("<7sBI")
_DTYPES: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
# The header's keys in each format version this fastbp reads.
_HEADER_KEYS = {
    1: (
        "format_version",
        "fastbp_version",
        "layer_sizes",
        "dtype",
        "activations",
        "payload_bytes",
        "payload_sha256",
    ),
    2: (
        "format_version",
        "fastbp_version",
        "layer_sizes",
        "dtype",
        "activations",
        "loss",
        "payload_bytes",
        "payload_sha256",
    ),
}
# Version 1 knew one model: every layer a sigmoid, squared error.
_V1_ACTIVATIONS = ("sigmoid",)
_HEX_DIGITS = frozenset("0123456789abcdef")


class ModelData(NamedTuple):
    """What a model file holds, as plain data (``fastbp.network`` makes the
    ``Network`` of it, and takes it apart to save one)."""

    layer_sizes: tuple[int, ...]
    dtype: np.dtype[Any]  # float32 or float64
    activations: tuple[str, ...]  # one per layer l = 1..L
    loss: str
    params: npt.NDArray[np.floating[Any]]  # the flat parameters, in fastbp._layout's order


# ----------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------


def write(path: str, model: ModelData, *, name: str) -> None:
    """Write ``model`` to ``path`` atomically; ``name`` is what the messages
    call the model (the network's repr).

    The file is written in full to a temporary file in the same directory,
    flushed and fsynced, then renamed over ``path``: a crash or a full disk
    during ``save`` leaves either the previous file or the new one, never a
    mix, and no temporary file.  A new file gets the permissions ``open``
    would give it; an existing file keeps its permission bits.  A symlink at
    ``path`` is replaced, not followed.  The parameters are copied once and
    the checksum and the file are made from that copy, so the file is always
    consistent; saving while another thread trains the network may capture
    weights mid-epoch (a ``train`` callback runs between epochs: a checkpoint
    saved there is the state after that epoch).
    """
    if not isinstance(model, ModelData):
        raise TypeError(f"model must be a fastbp._modelfile.ModelData, got {type(model).__name__}")
    dtype = _DTYPES[model.dtype.name]
    payload = np.ascontiguousarray(model.params, dtype=dtype)  # a no-op on little-endian machines
    raw = payload.data.cast("B")
    if not np.isfinite(payload).all():
        raise ValueError(f"cannot save {name} to {path!r}: it holds NaN or infinite weights")
    header = {
        "format_version": FORMAT_VERSION,
        "fastbp_version": __version__,
        "layer_sizes": list(model.layer_sizes),
        "dtype": model.dtype.name,
        "activations": list(model.activations),
        "loss": model.loss,
        "payload_bytes": payload.nbytes,
        "payload_sha256": hashlib.sha256(raw).hexdigest(),
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ValueError(
            f"cannot save {name} to {path!r}: its {len(model.layer_sizes)} layer sizes make a header of "
            f"{len(header_bytes)} bytes, more than the format allows ({MAX_HEADER_BYTES})"
        )
    preamble = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header_bytes))
    _write_atomically(path, [preamble, header_bytes, raw])


# ----------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------


def read(path: str) -> ModelData:
    """The content of the model file at ``path``, validated in full (the
    checks: this module's docstring); ``ValueError`` naming the file and the
    problem for content that is not a valid model file, the usual
    ``OSError`` for a path that cannot be opened."""
    with _open_regular_file(path, "model file") as f:
        try:
            return _read(f)
        except _BadFile as error:
            raise ValueError(f"model file {path!r}: {error}") from None


def _read(f: io.BufferedReader) -> ModelData:
    """The content of an open model file, or _BadFile."""
    file_size = os.fstat(f.fileno()).st_size
    preamble = f.read(_PREAMBLE.size)
    if not preamble:
        raise _BadFile("the file is empty")
    if not MAGIC.startswith(preamble[: len(MAGIC)]):
        raise _BadFile(
            f"not a fastbp model file: it starts with {_show(preamble[: len(MAGIC)])}, not {MAGIC!r}"
        )
    if len(preamble) < _PREAMBLE.size:
        raise _BadFile(f"truncated: {len(preamble)} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
    _, version, header_size = _PREAMBLE.unpack(preamble)
    if version not in _HEADER_KEYS:
        if version > FORMAT_VERSION:
            raise _BadFile(
                f"format version {version} is newer than this fastbp ({__version__}) can read "
                f"(versions {', '.join(map(str, _HEADER_KEYS))}); upgrade fastbp"
            )
        raise _BadFile(
            f"unknown format version {version} (this fastbp reads versions {', '.join(map(str, _HEADER_KEYS))})"
        )
    if header_size > MAX_HEADER_BYTES:
        raise _BadFile(
            f"the header length field says {header_size} bytes, more than the {MAX_HEADER_BYTES} allowed"
        )
    available = file_size - _PREAMBLE.size
    if header_size > available:
        raise _BadFile(
            f"truncated: the header is {header_size} bytes but only {available} bytes follow the preamble"
        )
    raw_header = f.read(header_size)
    if len(raw_header) != header_size:
        raise _BadFile("the file shrank while it was read")
    sizes, dtype, activations, loss, payload_bytes, checksum = _check_header(
        _parse_header(raw_header), version
    )

    available -= header_size
    if available != payload_bytes:
        if available < payload_bytes:
            raise _BadFile(
                f"truncated: the header says {payload_bytes} payload bytes but the file holds {available}"
            )
        raise _BadFile(
            f"{available - payload_bytes} unexpected bytes after the {payload_bytes}-byte payload the header describes"
        )
    # Only now, with the sizes consistent and present in the file, allocate.
    params = np.empty(payload_bytes // dtype.itemsize, dtype=dtype)
    view = params.data.cast("B")
    done = 0
    while done < payload_bytes:
        n = f.readinto(view[done:])
        if not n:
            break
        done += n
    if done != payload_bytes or f.read(1):
        raise _BadFile("the file changed size while it was read")
    actual = hashlib.sha256(view).hexdigest()
    if actual != checksum:
        raise _BadFile(
            f"checksum mismatch: the payload's SHA-256 is {actual} but the header says {checksum} "
            "(the file is corrupted)"
        )
    for l, (W, b) in enumerate(_layout.layer_views(params, sizes), start=1):
        for name, array in (("weights", W), ("biases", b)):
            bad = ~np.isfinite(array)
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                raise _BadFile(
                    f"the {name} of layer {l} hold {int(bad.sum())} non-finite values "
                    f"(first: {array[index]} at index {index})"
                )
    return ModelData(sizes, dtype, activations, loss, params)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _BadFile(f"the header repeats the key(s) {_show(duplicates)}")
    return dict(pairs)


def _refuse_constant(name: str) -> NoReturn:
    raise _BadFile(f"the header holds {name}, which is not a JSON number")


def _parse_header(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _BadFile(f"the header is not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly nested arrays
        raise _BadFile(f"the header is not valid JSON: {str(error)[:200]}") from None


def _is_int(value: object) -> bool:
    return type(value) is int  # JSON integers only: not bool, not float


def _check_header(
    header: Any, version: int
) -> tuple[tuple[int, ...], np.dtype[Any], tuple[str, ...], str, int, str]:
    """``(sizes, dtype, activations, loss, payload bytes, checksum)`` from a
    parsed header of format ``version``, or _BadFile."""
    if not isinstance(header, dict):
        if header is None:
            what = "null"
        else:
            kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(header), "a number")
            what = f"{kind}: {_show(header)}"
        raise _BadFile(f"the header must be a JSON object, got {what}")
    keys = _HEADER_KEYS[version]
    missing = [key for key in keys if key not in header]
    unexpected = sorted(key for key in header if key not in keys)
    if missing or unexpected:
        problems = ([f"missing {missing}"] if missing else []) + (
            [f"unexpected {_show(unexpected)}"] if unexpected else []
        )
        raise _BadFile(
            f"the header of a version {version} file must have exactly the keys {list(keys)}: "
            + ", ".join(problems)
        )

    def field(key: str, ok: Callable[[Any], bool], expected: str) -> Any:
        value = header[key]
        if not ok(value):
            raise _BadFile(f"header field {key!r} must be {expected}, got {_show(value)}")
        return value

    field("format_version", lambda v: _is_int(v) and v == version, f"{version} (the format version byte)")
    field("fastbp_version", lambda v: isinstance(v, str), "a string")
    sizes = field(
        "layer_sizes",
        lambda v: isinstance(v, list) and len(v) >= 2 and all(_is_int(n) and n >= 1 for n in v),
        "a list of at least 2 integers >= 1",
    )
    dtype_name = field("dtype", lambda v: isinstance(v, str) and v in _DTYPES, f"one of {list(_DTYPES)}")
    activations = field(
        "activations",
        lambda v: isinstance(v, list) and len(v) == len(sizes) - 1 and all(isinstance(a, str) for a in v),
        f"a list of {len(sizes) - 1} strings (one per layer, for layer sizes {_show(sizes)})",
    )
    activations, loss = _check_model(header, activations, version)
    payload_bytes = field("payload_bytes", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    checksum = field(
        "payload_sha256",
        lambda v: isinstance(v, str) and len(v) == 64 and set(v) <= _HEX_DIGITS,
        "64 lowercase hex digits",
    )

    dtype = _DTYPES[dtype_name]
    needed = _layout.n_params(sizes) * dtype.itemsize  # Python ints: no overflow
    if needed > MAX_PARAM_BYTES:
        raise _BadFile(
            f"layer sizes {_show(sizes)} in {dtype_name} need {needed} payload bytes, "
            f"more than fastbp allows ({MAX_PARAM_BYTES})"
        )
    if payload_bytes != needed:
        raise _BadFile(
            f"the header says payload_bytes={payload_bytes} but layer sizes {_show(sizes)} "
            f"in {dtype_name} need {needed}"
        )
    return tuple(sizes), dtype, activations, loss, payload_bytes, checksum


def _check_model(header: dict[str, Any], activations: list[str], version: int) -> tuple[tuple[str, ...], str]:
    """``(activations, loss)``, checked: every name known, softmax on the
    output layer only, and a combination ``Network`` accepts."""
    if version == 1:
        # Version 1 had one model; a file naming another was refused then and is now.
        for l, name in enumerate(activations, start=1):
            if name not in _V1_ACTIVATIONS:
                raise _BadFile(
                    f"layer {l} uses the activation {_show(name)}, which format version 1 does not have "
                    f"(it knows {list(_V1_ACTIVATIONS)}; activations other than the sigmoid need version 2)"
                )
        return tuple(activations), "squared_error"
    L = len(activations)
    for l, name in enumerate(activations, start=1):
        if name not in ACTIVATIONS:
            raise _BadFile(
                f"layer {l} uses the activation {_show(name)}, which this fastbp ({__version__}) does not "
                f"implement (it knows {list(ACTIVATIONS)})"
            )
        if l < L and name == "softmax":
            raise _BadFile(
                f"layer {l} of {L} uses the activation {_show(name)}, which is for the output layer only"
            )
    loss = header["loss"]
    if not isinstance(loss, str):
        raise _BadFile(f"header field 'loss' must be one of {list(LOSSES)}, got {_show(loss)}")
    if loss not in LOSSES:
        raise _BadFile(
            f"the loss {_show(loss)} is one this fastbp ({__version__}) does not implement (it knows {list(LOSSES)})"
        )
    try:
        names, loss = _model.resolve(activations[:-1], activations[-1], loss, L)
    except (ValueError, TypeError) as error:
        raise _BadFile(
            f"the output activation {activations[-1]!r} and the loss {loss!r} are not a combination fastbp "
            f"supports: {error}"
        ) from None
    return names, loss
