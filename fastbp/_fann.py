"""FANN's file formats: training data (``.data``) and floating-point networks (``.net``).

The public names are in ``fastbp.interop``.  Nothing here calls FANN: the
formats are read and written in Python, as FANN 2.2 (``libfann``, Debian's
``libfann-dev``) writes and reads them (``fann_save_train``/
``fann_read_train_from_file``, ``fann_save``/``fann_create_from_file``).

Training data
-------------

A header of three unsigned integers ``num_data num_input num_output``, then,
for each sample, ``num_input`` numbers (its inputs) and ``num_output`` numbers
(its targets)::

    4 2 1
    -1 -1
    -1
    -1 1
    1
    ...

FANN writes one line of inputs and one of outputs per sample; its reader
(``fscanf``) takes any whitespace between numbers, and so does
``read_fann_data``.  Numbers are C decimal literals (``-0.5``, ``1``, ``.5``,
``2.5e-3``) with ``.`` as the decimal point: a locale's decimal comma (FANN
run under a Danish locale writes ``0,5``), ``nan``, ``inf``, values beyond the
float64 range and anything else are refused.  Before it allocates anything the
size of the data, the reader checks that the file is large enough to hold the
``num_data * (num_input + num_output)`` numbers the header promises (each
takes at least two bytes: a character and a separator); then it reads the
numbers one line at a time.  ``write_fann_data`` writes each value in the
shortest form that reads back as the same float64 (Python's ``repr``, which
ignores the locale); a float32 value is written as its exact float64
widening, so it too reads back exactly, in float64 and in float32 (glibc's
``strtod``, behind FANN's ``fscanf``, rounds correctly: libdoublefann, which
reads with ``%le``, gets the same doubles; libfloatfann, ``%f``, the same
float32 values).  (FANN 2.2's own ``fann_save_train`` writes floating-point
data with ``%f``, six decimals: its files do not round-trip in general.)

Networks
--------

``fann_save`` writes ``FANN_FLO_2.1`` on the first line, then one
``key=value`` line per setting, in a fixed order (``_SETTINGS``): the number
of layers, training parameters (learning rate, momentum, algorithm, error
function, the cascade and RPROP parameters, ...), ``layer_sizes`` (each
layer's neuron count, *including* its bias neuron), ``scale_included`` and, if
1, eight lines of data-scaling parameters, then one line listing every neuron
as ``(num_inputs, activation_function, activation_steepness)`` (input, hidden
and output layers, each ending with its bias neuron, which has no inputs) and
one line listing every connection, neuron by neuron, as
``(connected_to_neuron, weight)``, ``connected_to_neuron`` a global neuron
index.  In a fully connected layered network (``network_type=0``,
``connection_rate=1``) neuron ``j`` of layer ``l`` has ``n_{l-1} + 1``
connections, from the neurons of layer ``l - 1`` in order and last from its
bias neuron (whose value is always 1).  Reals are written ``%.20e``
(weights, steepnesses: 21 significant digits, exact for a double) or ``%f``
(training parameters).  A file whose first line is ``FANN_FLO_2.0`` is read
with the same lines, ``scale_included`` optional, as libfann 2.2 reads it.

FANN neuron ``j`` of a layer computes ``a_j = g(s * sum_i w_ji a_i)`` with the
steepness ``s`` and ``g`` the activation: ``FANN_SIGMOID`` ``1 / (1 +
exp(-2 v))``, ``FANN_SIGMOID_SYMMETRIC`` ``tanh v``, ``FANN_LINEAR`` ``v``,
``FANN_LINEAR_PIECE_RECT`` ``max(v, 0)`` and ``FANN_LINEAR_PIECE_RECT_LEAKY``
``v if v >= 0 else 0.01 v`` (these two exist only in FANN's development
sources, not in FANN 2.2).  fastbp's sigmoid, tanh, identity, relu and
leaky_relu of ``z = W a + b`` are the same functions when ``W = f w`` and ``b
= f w_bias`` with the factor ``f = 2 s`` for FANN_SIGMOID and ``f = s``
otherwise: ``load_fann`` folds the steepness into the weights that way.  The
folding is exact when ``f`` is a power of two (FANN's default sigmoid
steepness 0.5, and 1) and otherwise rounds each weight once (a relative error
of at most 2**-53).  ``save_fann`` writes ``f = 1``: steepness 0.5 for
sigmoid, 1 for tanh and identity, and the weights exactly as they are.

Two details of ``fann_run`` fastbp does not copy: it clamps ``s * sum`` to
``+-150 / s`` (so a FANN_LINEAR neuron of steepness 1 never exceeds 150 in
magnitude: fastbp's identity has no bound; the two agree while ``|s * sum| <=
150 / s``), and it computes the symmetric sigmoid as ``2 / (1 + exp(-2 v)) -
1``, whose rounding error is of the order of 1e-16 absolute, not relative, for
``v`` near 0.

What ``load_fann`` refuses, each with a message naming it: fixed-point files
(``FANN_FIX_*``, written by ``fann_save_to_fixed``), FANN 1.1 files, shortcut
connections (``network_type=1``, as ``fann_create_shortcut`` and cascade
training make), sparse networks (``connection_rate < 1``, from
``fann_create_sparse``), connections that are not the fully connected layered
pattern, a layer whose neurons have different activations or steepnesses
(fastbp gives a layer one activation), activations fastbp lacks
(``FANN_SIGMOID_STEPWISE``, FANN's default, is a piecewise-linear
approximation of the sigmoid: set ``FANN_SIGMOID`` in FANN before training),
non-positive steepness, and anything else that is not what ``fann_save``
writes.  The loaded network is float64 (the weights of a ``.net`` file are
doubles) with the squared-error loss: FANN's ``train_error_function``
(``FANN_ERRORFUNC_TANH``, its default, stretches the error during training) has
no fastbp counterpart, and does not change what the network computes.  The data
scaling parameters of a file with ``scale_included=1`` (``fann_set_scaling_params``)
are not part of the network, as they are not part of ``fann_run`` (the caller
scales with ``fann_scale_input`` and ``fann_descale_output``): ``load_fann``
checks them and warns that they are left out.

Every problem with a file's content raises ``ValueError`` naming the file, the
line (and where useful, the neuron or connection) and what is wrong; a path
that cannot be opened raises the usual ``OSError``.  Writing is atomic
(``fastbp._files._write_atomically``): a crash leaves the previous file or
the new one, never a part.
"""

from __future__ import annotations

import math
import os
import re
import warnings

import numpy as np

from . import _model
from ._files import _BadFile, _open_regular_file, _path, _write_atomically
from ._files import _show as _files_show
from ._validation import real_array
from .backends import get_backend
from .network import Network

__all__ = ["load_fann", "read_fann_data", "save_fann", "write_fann_data"]

# A C decimal literal as FANN's fscanf reads it and as Python's float() reads it alike
# (no hexadecimal, no "nan"/"inf", no underscores, no non-ASCII digits).  Written
# without ambiguity (the digits before a '.' cannot also be after it), so that
# matching a long run of digits takes linear time, not quadratic.
_NUMBER = rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_RE = re.compile(_NUMBER)
# Counts and indices: at most 18 digits (int() of longer strings is slow, and
# no count that large can be true).
_UNSIGNED_RE = re.compile(rb"[0-9]{1,18}")
_COMMA_DECIMAL_RE = re.compile(rb"[0-9],[0-9]")
_INF = float("inf")

# FANN's activation functions, by code (fann_activationfunc_enum; the last two
# only in FANN's development sources), and fastbp's counterparts: name, and the
# factor of the steepness folded into the weights (see the module docstring).
FANN_ACTIVATIONS = (
    "FANN_LINEAR",
    "FANN_THRESHOLD",
    "FANN_THRESHOLD_SYMMETRIC",
    "FANN_SIGMOID",
    "FANN_SIGMOID_STEPWISE",
    "FANN_SIGMOID_SYMMETRIC",
    "FANN_SIGMOID_SYMMETRIC_STEPWISE",
    "FANN_GAUSSIAN",
    "FANN_GAUSSIAN_SYMMETRIC",
    "FANN_GAUSSIAN_STEPWISE",
    "FANN_ELLIOT",
    "FANN_ELLIOT_SYMMETRIC",
    "FANN_LINEAR_PIECE",
    "FANN_LINEAR_PIECE_SYMMETRIC",
    "FANN_SIN_SYMMETRIC",
    "FANN_COS_SYMMETRIC",
    "FANN_SIN",
    "FANN_COS",
    "FANN_LINEAR_PIECE_RECT",
    "FANN_LINEAR_PIECE_RECT_LEAKY",
)
_FROM_FANN = {
    FANN_ACTIVATIONS.index("FANN_LINEAR"): ("identity", 1.0),
    FANN_ACTIVATIONS.index("FANN_SIGMOID"): ("sigmoid", 2.0),
    FANN_ACTIVATIONS.index("FANN_SIGMOID_SYMMETRIC"): ("tanh", 1.0),
    FANN_ACTIVATIONS.index("FANN_LINEAR_PIECE_RECT"): ("relu", 1.0),
    FANN_ACTIVATIONS.index("FANN_LINEAR_PIECE_RECT_LEAKY"): ("leaky_relu", 1.0),
}
# What save_fann writes for each fastbp activation: FANN's code and the steepness
# that makes the factor 1.  relu and leaky_relu are not here: FANN 2.2, the
# released FANN, would read their codes and compute garbage without an error.
_TO_FANN = {
    "sigmoid": (FANN_ACTIVATIONS.index("FANN_SIGMOID"), 0.5),
    "tanh": (FANN_ACTIVATIONS.index("FANN_SIGMOID_SYMMETRIC"), 1.0),
    "identity": (FANN_ACTIVATIONS.index("FANN_LINEAR"), 1.0),
}
# FANN_LINEAR_PIECE_RECT_LEAKY's slope is 0.01, fastbp's leaky_relu's too.
assert _model.LEAKY_SLOPE == 0.01

FLOAT_VERSIONS = ("FANN_FLO_2.1", "FANN_FLO_2.0")
_NETTYPE_LAYER, _NETTYPE_SHORTCUT = 0, 1

# The settings lines of a FANN_FLO_2.1 file between the version line and
# layer_sizes, in fann_save's order: (key, kind, the value save_fann writes).
# "u" is an unsigned integer (%u), "f" a real (%f or %.20e).  The values
# written are FANN 2.2's defaults (what fann_create_standard sets), except the
# error function: FANN_ERRORFUNC_LINEAR, FANN's squared error.
_SETTINGS = (
    ("num_layers", "u", None),
    ("learning_rate", "f", "0.700000"),
    ("connection_rate", "f", "1.000000"),
    ("network_type", "u", "0"),
    ("learning_momentum", "f", "0.000000"),
    ("training_algorithm", "u", "2"),
    ("train_error_function", "u", "0"),
    ("train_stop_function", "u", "0"),
    ("cascade_output_change_fraction", "f", "0.010000"),
    ("quickprop_decay", "f", "-0.000100"),
    ("quickprop_mu", "f", "1.750000"),
    ("rprop_increase_factor", "f", "1.200000"),
    ("rprop_decrease_factor", "f", "0.500000"),
    ("rprop_delta_min", "f", "0.000000"),
    ("rprop_delta_max", "f", "50.000000"),
    ("rprop_delta_zero", "f", "0.100000"),
    ("cascade_output_stagnation_epochs", "u", "12"),
    ("cascade_candidate_change_fraction", "f", "0.010000"),
    ("cascade_candidate_stagnation_epochs", "u", "12"),
    ("cascade_max_out_epochs", "u", "150"),
    ("cascade_min_out_epochs", "u", "50"),
    ("cascade_max_cand_epochs", "u", "150"),
    ("cascade_min_cand_epochs", "u", "50"),
    ("cascade_num_candidate_groups", "u", "2"),
    ("bit_fail_limit", "f", "3.49999999999999977796e-01"),
    ("cascade_candidate_limit", "f", "1.00000000000000000000e+03"),
    ("cascade_weight_multiplier", "f", "4.00000000000000022204e-01"),
)
# Lists (their count on the line before): key, kind, the values save_fann writes.
_CASCADE_LISTS = (
    ("cascade_activation_functions", "u", "3 5 7 8 10 11 14 15 16 17"),
    ("cascade_activation_steepnesses", "f", " ".join(format(s, ".20e") for s in (0.25, 0.5, 0.75, 1.0))),
)
_SCALE_KEYS = tuple(
    f"scale_{what}_{where}" for where in ("in", "out") for what in ("mean", "deviation", "new_min", "factor")
)
_NEURONS_KEY = "neurons (num_inputs, activation_function, activation_steepness)"
_CONNECTIONS_KEY = "connections (connected_to_neuron, weight)"
# One neuron and one connection as FANN's fscanf formats accept them ("(%u, %u, %le) ",
# "(%u, %le) ": a space in the format matches any whitespace, or none).
_NEURON_RE = re.compile(rb"\(\s*([0-9]{1,18}),\s*([0-9]{1,18}),\s*(" + _NUMBER + rb")\)\s*")
_CONNECTION_RE = re.compile(rb"\(\s*([0-9]{1,18}),\s*(" + _NUMBER + rb")\)\s*")


def _show(value, limit=60):
    """A token as a message shows it: bytes (the file's) without their b."""
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value))[1:]
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    return _files_show(value, limit)


def _refuse(what, path, error):
    where = f", line {error.line}" if error.line is not None else ""
    raise ValueError(f"{what} {path!r}{where}: {error}") from None


def _not_a_number(token, what="a number"):
    """The problem with a token that is not a decimal number in FANN's format."""
    shown = _show(token)
    if _COMMA_DECIMAL_RE.search(token):
        return f"{shown} is not {what}: the decimal point must be '.', not a locale's ','"
    try:
        value = float(token)
    except ValueError:
        return f"{shown} is not {what}"
    if not math.isfinite(value):
        return f"{shown} is not a finite number (NaN and infinite values are refused)"
    return f"{shown} is not {what} in FANN's format (a C decimal literal like -0.25 or 1e-3)"


def _real(token, line, what="a number"):
    """A finite float from a token, or _BadFile."""
    if not _NUMBER_RE.fullmatch(token):
        raise _BadFile(_not_a_number(token, what), line)
    value = float(token)
    if not math.isfinite(value):
        raise _BadFile(f"{_show(token)} is beyond the range of a float64", line)
    return value


# ----------------------------------------------------------------------------
# Training data
# ----------------------------------------------------------------------------


def read_fann_data(path):
    """``(X, Y)``, float64 arrays of shapes ``(num_data, num_input)`` and
    ``(num_data, num_output)``: the inputs and targets of a FANN training-data
    file (``.data``, ``.train``, ``.test``; the format is in
    ``fastbp._fann``), read from ``path`` (str or os.PathLike).

    Raises ``ValueError`` naming the file, the line and the problem for a file
    that is not exactly what its header says (a header that is not three
    integers, no samples, fewer or more numbers than promised, a number that
    does not parse, a decimal comma, NaN or infinity), and ``OSError`` when the
    path cannot be opened.
    """
    path = _path(path)
    with _open_regular_file(path, "FANN data file") as f:
        try:
            return _read_data(f, os.fstat(f.fileno()).st_size)
        except _BadFile as error:
            _refuse("FANN data file", path, error)
    raise AssertionError("unreachable")


def _read_data(f, file_size):
    header: list[tuple[bytes, int]] = []  # the three numbers of the header line, and their lines
    offset = 0  # bytes before the current line
    line_no = 0
    rest = b""
    for raw in f:
        line_no += 1
        for match in re.finditer(rb"\S+", raw):
            if len(header) == 3:
                rest = raw[match.start() :]
                break
            header.append((match.group(), line_no))
            header_end = offset + match.end()
        offset += len(raw)
        if len(header) == 3:
            break
    if not header:
        raise _BadFile("the file is empty: expected the header 'num_data num_input num_output'")
    for token, line in header:
        if not _UNSIGNED_RE.fullmatch(token):
            raise _BadFile(
                f"the header must be three integers 'num_data num_input num_output', but {_show(token)} is not "
                "an integer >= 0 (of at most 18 digits)",
                line,
            )
    if len(header) < 3:
        raise _BadFile(
            f"the header must be three integers 'num_data num_input num_output', the file ends after "
            f"{len(header)}",
            header[-1][1],
        )
    (n, _), (n_in, _), (n_out, line) = ((int(t), line) for t, line in header)
    if n == 0:
        raise _BadFile("the header says 0 samples: a training-data file needs at least one", line)
    if n_in == 0 or n_out == 0:
        raise _BadFile(f"the header says {n_in} inputs and {n_out} outputs: each needs at least one", line)
    width = n_in + n_out
    count = n * width  # Python integers: no overflow
    # Every number needs a separator before it and a character: refuse a header
    # the file cannot hold before allocating anything the header's size.
    room = (file_size - header_end) // 2
    if count > room:
        raise _BadFile(
            f"the header promises {n} samples of {n_in} inputs and {n_out} outputs ({count} numbers), but the "
            f"{file_size - header_end} bytes after it can hold at most {room} numbers (the file is truncated, or "
            "the header is wrong)",
            line,
        )
    values = np.empty(count, dtype=np.float64)
    done = 0
    fullmatch = _NUMBER_RE.fullmatch
    lines = _lines_from(f, rest, line_no)
    for line_no, raw in lines:
        parts = raw.split()
        if not parts:
            continue
        if done + len(parts) > count:
            extra = parts[count - done]
            raise _BadFile(
                f"unexpected {_show(extra)} after the {n} samples ({count} numbers) the header promises",
                line_no,
            )
        if not all(map(fullmatch, parts)):
            bad = next(p for p in parts if not fullmatch(p))
            index = done + parts.index(bad)
            raise _BadFile(f"{_describe_position(index, n_in, width)}: {_not_a_number(bad)}", line_no)
        numbers = list(map(float, parts))
        # A number that matches _NUMBER is finite unless it overflows (to +-inf, never NaN).
        if _INF in numbers or -_INF in numbers:
            at = next(k for k, v in enumerate(numbers) if not math.isfinite(v))
            raise _BadFile(
                f"{_describe_position(done + at, n_in, width)}: {_show(parts[at])} is beyond the range "
                "of a float64",
                line_no,
            )
        values[done : done + len(parts)] = numbers
        done += len(parts)
    if done < count:
        raise _BadFile(
            f"truncated: the header promises {n} samples of {n_in} inputs and {n_out} outputs ({count} numbers), "
            f"the file ends after {done} numbers, in {_describe_position(done, n_in, width)}",
            line_no,
        )
    rows = values.reshape(n, width)
    return np.ascontiguousarray(rows[:, :n_in]), np.ascontiguousarray(rows[:, n_in:])


def _lines_from(f, first, first_no):
    """``(line number, line)`` for the rest of the header's line, then every line left."""
    yield first_no, first
    yield from enumerate(f, start=first_no + 1)


def _describe_position(index, n_in, width):
    sample, k = divmod(index, width)
    if k < n_in:
        return f"sample {sample + 1}, input {k + 1}"
    return f"sample {sample + 1}, output {k - n_in + 1}"


def write_fann_data(path, X, Y):
    """Write inputs ``X`` (shape ``(n, num_input)``) and targets ``Y`` (shape
    ``(n, num_output)``) as a FANN training-data file at ``path``, atomically
    (a crash leaves the previous file or the new one).

    ``X`` and ``Y`` are array_likes of real, finite numbers with the same
    number of rows (at least one) and at least one column each.  Each value is
    written in the shortest form that reads back as the same float64, with
    ``.`` as the decimal point whatever the locale; float32 values as their
    exact float64 widening: ``read_fann_data`` and FANN's
    ``fann_read_train_from_file`` read back exactly the values given (see the
    format in ``fastbp._fann``).
    """
    path = _path(path)
    arrays = []
    for name, value in (("X", X), ("Y", Y)):
        array = real_array(value, name, np.float64)  # float32 widens exactly
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
            raise ValueError(
                f"{name} must be a 2-D array of shape (n >= 1, width >= 1), got shape {array.shape}"
            )
        arrays.append(array)
    X, Y = arrays
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows, got {X.shape[0]} and {Y.shape[0]}")
    chunks = [f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n".encode("ascii")]
    block = 4096
    for start in range(0, X.shape[0], block):
        lines = []
        for x, y in zip(X[start : start + block].tolist(), Y[start : start + block].tolist()):
            lines.append(" ".join(map(repr, x)))
            lines.append(" ".join(map(repr, y)))
        chunks.append(("\n".join(lines) + "\n").encode("ascii"))
    _write_atomically(path, chunks)


# ----------------------------------------------------------------------------
# Networks: loading
# ----------------------------------------------------------------------------


def load_fann(path, *, backend=None):
    """The ``fastbp.Network`` of a FANN network file (``.net``, written by
    ``fann_save``: ``FANN_FLO_2.1``, or ``FANN_FLO_2.0``) at ``path``, to run
    on ``backend`` (``None``: the default).

    The network has FANN's layer sizes (without the bias neurons, whose
    weights become the biases), dtype float64, each layer's activation
    (``FANN_SIGMOID`` -> ``"sigmoid"``, ``FANN_SIGMOID_SYMMETRIC`` ->
    ``"tanh"``, ``FANN_LINEAR`` -> ``"identity"``, and from FANN's development
    sources ``FANN_LINEAR_PIECE_RECT`` -> ``"relu"``,
    ``FANN_LINEAR_PIECE_RECT_LEAKY`` -> ``"leaky_relu"``) with its steepness
    folded into the weights (exact when the factor is a power of two, else
    one rounding per weight), and the squared-error loss; its ``forward`` is
    ``fann_run`` (the details, and what is refused: ``fastbp._fann``).

    Raises ``ValueError`` naming the file, the line and the problem (or the
    FANN feature fastbp cannot represent), ``OSError`` when the path cannot be
    opened.  Warns (``UserWarning``) when the file holds data-scaling
    parameters, which are not part of the network.
    """
    path = _path(path)
    get_backend(backend)  # a bad backend name fails before the file is read
    with _open_regular_file(path, "FANN network file") as f:
        data = f.read()
    try:
        net, scaled = _network(data, backend)
    except _BadFile as error:
        _refuse("FANN network file", path, error)
    if scaled:
        warnings.warn(
            f"FANN network file {path!r} holds data-scaling parameters (scale_included=1, from "
            "fann_set_scaling_params); they are not part of the network (nor of fann_run): scale the inputs "
            "and unscale the outputs yourself, as fann_scale_input and fann_descale_output do",
            UserWarning,
            stacklevel=2,
        )
    return net


def _network(data, backend):
    """``(the Network, whether the file holds scaling parameters)`` from the
    bytes of a ``.net`` file, or _BadFile."""
    activations, weights, biases, scaled = _parse_net(data)
    try:
        net = Network.from_weights(
            weights,
            biases,
            activation=activations[:-1],
            output_activation=activations[-1],
            loss="squared_error",
            dtype="float64",
            backend=backend,
        )
    except ValueError as error:  # e.g. more parameters than fastbp allows
        raise _BadFile(str(error)) from None
    return net, scaled


class _Lines:
    """The lines of a ``.net`` file, read one ``key=value`` at a time."""

    def __init__(self, data):
        self.lines = data.split(b"\n")
        self.index = 0

    @property
    def number(self):
        return self.index  # 1-based number of the line last taken

    def take(self, key):
        """The value of the next line, which must be ``key=...``."""
        if self.index >= len(self.lines) or (self.index == len(self.lines) - 1 and not self.lines[-1]):
            raise _BadFile(f"truncated: the file ends where the line '{key}=...' should be", self.index + 1)
        line = self.lines[self.index].rstrip(b"\r")
        self.index += 1
        prefix = key.encode("ascii") + b"="
        if not line.startswith(prefix):
            raise _BadFile(f"expected the line '{key}=...', got {_show(line)}", self.index)
        return line[len(prefix) :]

    def peek_is(self, key):
        return self.index < len(self.lines) and self.lines[self.index].startswith(key.encode("ascii") + b"=")

    def rest(self):
        """The line number and content of the first non-blank line left, or None."""
        for i in range(self.index, len(self.lines)):
            if self.lines[i].strip():
                return i + 1, self.lines[i]
        return None


def _unsigned(token, line, key):
    if not _UNSIGNED_RE.fullmatch(token):
        raise _BadFile(f"{key} must be an integer >= 0 (of at most 18 digits), got {_show(token)}", line)
    return int(token)


def _scalar(lines, key, kind):
    value = lines.take(key).strip()
    if kind == "u":
        return _unsigned(value, lines.number, key)
    return _real(value, lines.number, f"a number (for {key})")


def _list(lines, key, kind, count):
    tokens = lines.take(key).split()
    if len(tokens) != count:
        raise _BadFile(f"{key} must list {count} values, got {len(tokens)}", lines.number)
    if kind == "u":
        return [_unsigned(t, lines.number, key) for t in tokens]
    return [_real(t, lines.number, f"a number (in {key})") for t in tokens]


def _version(lines):
    if lines.lines == [b""]:
        raise _BadFile("the file is empty: expected the version line FANN_FLO_2.1", 1)
    version = lines.lines[0].rstrip(b"\r")
    lines.index = 1
    text = version.decode("ascii", "replace")
    if text in FLOAT_VERSIONS:
        return text
    if text.startswith("FANN_FIX_"):
        raise _BadFile(
            f"{text} is FANN's fixed-point format (fann_save_to_fixed), which fastbp does not read: its weights "
            "are integers scaled by decimal_point; load the floating-point network saved with fann_save "
            "(FANN_FLO_2.1) instead",
            1,
        )
    if text.startswith("FANN_FLO_1"):
        raise _BadFile(
            f"{text} is FANN 1's format, which fastbp does not read: load and fann_save it with FANN 2 "
            "first (FANN_FLO_2.1)",
            1,
        )
    raise _BadFile(
        f"not a FANN floating-point network file: the first line is {_show(version)}, not "
        f"{' or '.join(FLOAT_VERSIONS)}",
        1,
    )


def _parse_net(data):
    """``(activations, weights, biases, whether scaling is included)``
    from the bytes of a ``.net`` file, or _BadFile."""
    lines = _Lines(data)
    version = _version(lines)
    settings = {}
    for key, kind, _ in _SETTINGS:
        settings[key] = _scalar(lines, key, kind)
        if key == "connection_rate" and settings[key] != 1:
            if 0 < settings[key] < 1:
                raise _BadFile(
                    f"connection_rate={settings[key]:g}: a sparse network (fann_create_sparse), which fastbp cannot "
                    "represent (its layers are fully connected)",
                    lines.number,
                )
            raise _BadFile(
                f"connection_rate={settings[key]:g} is not a connection rate in (0, 1]", lines.number
            )
        if key == "network_type" and settings[key] != _NETTYPE_LAYER:
            if settings[key] == _NETTYPE_SHORTCUT:
                raise _BadFile(
                    "network_type=1 (FANN_NETTYPE_SHORTCUT): shortcut connections, which fann_create_shortcut and "
                    "cascade training (fann_cascadetrain_on_data) make; fastbp cannot represent them (each layer "
                    "is connected to the next only)",
                    lines.number,
                )
            raise _BadFile(
                f"network_type={settings[key]} is not a FANN network type (0: layered, 1: shortcut)",
                lines.number,
            )
        if key == "num_layers" and settings[key] < 2:
            raise _BadFile(
                f"num_layers={settings[key]}: a network needs at least 2 layers (input and output)",
                lines.number,
            )
    for key, kind, _ in _CASCADE_LISTS:
        count = _scalar(lines, f"{key}_count", "u")
        _list(lines, key, kind, count)
    # The list on the line bounds num_layers: nothing is allocated by the header's count.
    with_bias = _list(lines, "layer_sizes", "u", settings["num_layers"])
    line = lines.number
    for l, n in enumerate(with_bias):
        if n < 2:
            raise _BadFile(
                f"layer {l} has {n} neurons: every layer of a layered network has at least one neuron "
                "and its bias neuron",
                line,
            )
    sizes = [n - 1 for n in with_bias]
    scaled = False
    if version == "FANN_FLO_2.1" or lines.peek_is("scale_included"):
        scaled = _scalar(lines, "scale_included", "u")
        if scaled not in (0, 1):
            raise _BadFile(f"scale_included must be 0 or 1, got {scaled}", lines.number)
        if scaled:
            for key in _SCALE_KEYS:
                _list(lines, key, "f", sizes[0] if key.endswith("_in") else sizes[-1])
    neurons = _parse_neurons(lines, with_bias)
    activations, factors = _layer_activations(neurons, with_bias, lines.number)
    weights, biases = _parse_connections(lines, sizes, with_bias, factors)
    left = lines.rest()
    if left is not None:
        raise _BadFile(f"unexpected content after the connections: {_show(left[1])}", left[0])
    return activations, weights, biases, bool(scaled)


def _items(lines, key, pattern, what, expected):
    """The ``(...)`` groups of the line ``key=...``, each checked against
    ``pattern``: exactly ``expected`` of them."""
    text = lines.take(key)
    line = lines.number
    items: list[tuple[bytes, ...]] = []
    position = len(text) - len(text.lstrip())
    match = pattern.match
    while position < len(text) and len(items) < expected:
        found = match(text, position)
        if found is None:
            snippet = text[position : position + 40]
            if snippet.startswith(b"("):
                head, close, _ = snippet.partition(b")")
                snippet = head + close
            form, commas = (key[key.index("(") :], key.count(","))
            problem = f"{what} {len(items)} is not {form}: {_show(snippet)}"
            if snippet.count(b",") > commas and _COMMA_DECIMAL_RE.search(snippet):
                problem += " (the decimal point must be '.', not a locale's ',')"
            raise _BadFile(problem, line)
        items.append(found.groups())
        position = found.end()
    if len(items) < expected:
        raise _BadFile(f"{key} must list {expected} {what}s (layer_sizes says so), got {len(items)}", line)
    if text[position:].strip():
        raise _BadFile(
            f"{key} lists more than the {expected} {what}s layer_sizes says: "
            f"{_show(text[position : position + 40])}",
            line,
        )
    return items, line


def _parse_neurons(lines, with_bias):
    """``(num_inputs, activation code, steepness)`` of every neuron."""
    expected = sum(with_bias)  # the list on the line bounds it (no allocation by this count)
    items, line = _items(lines, _NEURONS_KEY, _NEURON_RE, "neuron", expected)
    steepnesses = _finite([s for _, _, s in items], line, "neuron", "steepness")
    return [(int(inputs), int(code), s) for (inputs, code, _), s in zip(items, steepnesses)]


def _finite(tokens, line, what, value):
    """Floats of tokens the item pattern has matched as numbers, all finite."""
    numbers = list(map(float, tokens))
    if not all(map(math.isfinite, numbers)):
        k = next(k for k, v in enumerate(numbers) if not math.isfinite(v))
        raise _BadFile(
            f"the {value} of {what} {k}, {_show(tokens[k])}, is beyond the range of a float64", line
        )
    return numbers


def _layer_activations(neurons, with_bias, line):
    """Each weight layer's fastbp activation and its steepness factor, checked:
    one activation and steepness per layer, the connection counts of a fully
    connected layered network."""
    activations, factors = [], []
    first = 0
    for l, n in enumerate(with_bias):
        layer = neurons[first : first + n]
        needed = 0 if l == 0 else with_bias[l - 1]
        for j, (inputs, _, _) in enumerate(layer):
            want = 0 if j == n - 1 else needed  # the bias neuron (last) has no inputs
            if inputs != want:
                role = "the bias neuron" if j == n - 1 else f"neuron {j}"
                raise _BadFile(
                    f"{role} of layer {l} (neuron {first + j} in the file) has {inputs} inputs, but in a fully "
                    f"connected layered network it has {want}",
                    line,
                )
        if l > 0:
            _, code, steepness = layer[0]
            for j, (_, other_code, other_steepness) in enumerate(layer[:-1]):
                if (other_code, other_steepness) != (code, steepness):
                    raise _BadFile(
                        f"the neurons of layer {l} differ: neuron 0 has {_fann_name(code)} with steepness "
                        f"{steepness!r}, neuron {j} {_fann_name(other_code)} with steepness {other_steepness!r}; "
                        "fastbp gives all neurons of a layer one activation",
                        line,
                    )
            if code not in _FROM_FANN:
                if code < len(FANN_ACTIVATIONS):
                    hint = (
                        (
                            " (a piecewise-linear approximation of the sigmoid, FANN's default: set FANN_SIGMOID or "
                            "FANN_SIGMOID_SYMMETRIC in FANN before training)"
                        )
                        if "STEPWISE" in _fann_name(code)
                        else ""
                    )
                    raise _BadFile(
                        f"layer {l} uses the activation {_fann_name(code)}{hint}, which fastbp does not have (it reads "
                        f"{', '.join(FANN_ACTIVATIONS[c] for c in _FROM_FANN)})",
                        line,
                    )
                raise _BadFile(
                    f"layer {l} uses the unknown activation code {code} (FANN's codes are 0 to "
                    f"{len(FANN_ACTIVATIONS) - 1})",
                    line,
                )
            if not steepness > 0:
                raise _BadFile(
                    f"layer {l} has the steepness {steepness!r}: fastbp reads steepness > 0 only", line
                )
            name, multiplier = _FROM_FANN[code]
            activations.append(name)
            factors.append(multiplier * steepness)
        first += n
    return activations, factors


def _fann_name(code):
    return FANN_ACTIVATIONS[code] if code < len(FANN_ACTIVATIONS) else f"activation code {code}"


def _parse_connections(lines, sizes, with_bias, factors):
    expected = sum(with_bias[l - 1] * sizes[l] for l in range(1, len(sizes)))
    items, line = _items(lines, _CONNECTIONS_KEY, _CONNECTION_RE, "connection", expected)
    sources = np.array([int(s) for s, _ in items], dtype=np.int64)
    values = np.array(_finite([w for _, w in items], line, "connection", "weight"), dtype=np.float64)
    weights, biases = [], []
    at = 0
    first_previous = 0
    for l in range(1, len(sizes)):
        n_in, n_out = with_bias[l - 1], sizes[l]
        block = slice(at, at + n_in * n_out)
        expected_sources = first_previous + np.tile(np.arange(n_in), n_out)
        wrong = np.flatnonzero(sources[block] != expected_sources)
        if len(wrong):
            k = int(wrong[0])
            j, i = divmod(k, n_in)
            raise _BadFile(
                f"connection {at + k} (input {i} of neuron {j} of layer {l}) comes from neuron {sources[at + k]}, "
                f"but in a fully connected layered network it comes from neuron {expected_sources[k]}",
                line,
            )
        # The steepness folded in: W = f * w (exact when f is a power of two).
        table = values[block].reshape(n_out, n_in) * factors[l - 1]
        weights.append(np.ascontiguousarray(table[:, :-1]))
        biases.append(np.ascontiguousarray(table[:, -1]))
        if not (np.isfinite(weights[-1]).all() and np.isfinite(biases[-1]).all()):
            raise _BadFile(
                f"the weights of layer {l} times its steepness factor {factors[l - 1]!r} overflow", line
            )
        at += n_in * n_out
        first_previous += n_in
    return weights, biases


# ----------------------------------------------------------------------------
# Networks: saving
# ----------------------------------------------------------------------------


def check_fann_activations(activations):
    """Raise ``ValueError`` naming the first of ``activations`` (one name per
    weight layer) that a FANN network file cannot hold."""
    for l, name in enumerate(activations, start=1):
        if name not in _TO_FANN:
            why = (
                "FANN has no softmax"
                if name == "softmax"
                else (
                    "FANN 2.2, the released FANN, has no ReLU (FANN_LINEAR_PIECE_RECT* exist only in its development "
                    "sources, and FANN 2.2 would compute wrong outputs from them without an error)"
                )
            )
            raise ValueError(
                f"layer {l} uses the activation {name!r}; {why}. FANN files can hold the activations "
                f"{', '.join(map(repr, _TO_FANN))}"
            )


def save_fann(net, path):
    """Write ``net`` (a ``fastbp.Network``) to ``path`` as a FANN network file
    (``FANN_FLO_2.1``, as ``fann_save`` writes it), atomically; FANN 2.2's
    ``fann_create_from_file`` loads it, and ``fann_run`` then computes
    ``net.forward`` (see ``fastbp._fann`` for FANN's clamp of linear neurons
    at +-150).

    Each layer's activation becomes FANN's with the steepness that makes
    FANN's function fastbp's (``"sigmoid"``: ``FANN_SIGMOID``, steepness 0.5;
    ``"tanh"``: ``FANN_SIGMOID_SYMMETRIC``, 1; ``"identity"``:
    ``FANN_LINEAR``, 1) and the weights and biases are written exactly (21
    significant digits; a float32 network's values are widened exactly).  The
    training settings are FANN's defaults, with the error function
    ``FANN_ERRORFUNC_LINEAR`` (FANN's squared error); the loss itself is not
    part of the format.  ``"relu"``, ``"leaky_relu"`` (FANN 2.2 has neither)
    and ``"softmax"`` (FANN has none) are refused with a ``ValueError``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastbp.Network, got {type(net).__name__}")
    path = _path(path)
    try:
        check_fann_activations(net.activations)
    except ValueError as error:
        raise ValueError(f"cannot save {net!r} as a FANN network: {error}") from None
    weights = [np.asarray(W, dtype=np.float64) for W in net.weights]
    biases = [np.asarray(b, dtype=np.float64) for b in net.biases]
    if not all(np.isfinite(a).all() for a in weights + biases):
        raise ValueError(f"cannot save {net!r} to {path!r}: it holds NaN or infinite weights")
    sizes = net.layer_sizes
    with_bias = [n + 1 for n in sizes]
    lines = [FLOAT_VERSIONS[0]]
    for key, _, value in _SETTINGS:
        lines.append(f"{key}={len(sizes) if key == 'num_layers' else value}")
    for key, _, values in _CASCADE_LISTS:
        lines.append(f"{key}_count={len(values.split())}")
        lines.append(f"{key}={values} ")
    lines.append("layer_sizes=" + "".join(f"{n} " for n in with_bias))
    lines.append("scale_included=0")
    neurons = ["(0, 0, 0.00000000000000000000e+00) "] * with_bias[0]
    for l, name in enumerate(net.activations, start=1):
        code, steepness = _TO_FANN[name]
        neuron = f"({with_bias[l - 1]}, {code}, {steepness:.20e}) "
        bias = (
            f"(0, {code}, {steepness:.20e}) " if l < len(sizes) - 1 else "(0, 0, 0.00000000000000000000e+00) "
        )
        neurons += [neuron] * sizes[l] + [bias]
    lines.append(_NEURONS_KEY + "=" + "".join(neurons))
    chunks = [("\n".join(lines) + "\n" + _CONNECTIONS_KEY + "=").encode("ascii")]
    first_previous = 0
    for l, (W, b) in enumerate(zip(weights, biases), start=1):
        sources = [f"({first_previous + i}, " for i in range(with_bias[l - 1])]
        for row, bias in zip(W.tolist(), b.tolist()):
            chunks.append("".join(f"{s}{w:.20e}) " for s, w in zip(sources, [*row, bias])).encode("ascii"))
        first_previous += with_bias[l - 1]
    chunks.append(b"\n")
    _write_atomically(path, chunks)
