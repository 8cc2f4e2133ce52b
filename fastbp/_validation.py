"""Input validation at the Python boundary: run once, before any kernel.

The kernels run with bounds checks off and trust the values they are given,
so everything a user passes is checked here, with messages that name the
argument and show the offending shape or value.  The policy, in one place:

* Data (``x``, ``X``, ``y``, ``Y``, weights, biases) may be any array_like of
  real numbers: bool, integer or floating dtypes, Python lists, any memory
  layout.  It is converted once to a C-contiguous array of the network's dtype
  (a copy when the dtype or layout differs; never a write to the caller's
  array).  Complex, object, string and other dtypes raise ``TypeError``.
  After the cast every value must be finite (a float64 value too large for a
  float32 network becomes inf and is rejected).
* Shapes must match the network exactly: no broadcasting, no guessing
  between a 1-D row and a column.  Empty data is rejected.
* Hyper-parameters have exact types: integers for counts (not floats, not
  bools), real numbers for rates, bools for switches, a callable (or None)
  for callbacks.
* A masked array is refused while it has masked values: NumPy would hand
  over the values under the mask, which the caller meant to leave out.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._layout import n_params

# An array fastbp computes with: float32 or float64 (the network's dtype).
FloatArray = npt.NDArray[np.floating[Any]]

FLOAT_DTYPES: tuple[np.dtype[Any], ...] = (np.dtype(np.float32), np.dtype(np.float64))

# A network whose parameters would need more than this many bytes is refused
# outright, before any allocation is tried.
MAX_PARAM_BYTES = 1 << 40


def _type_name(value: object) -> str:
    return type(value).__name__


def float_dtype(value: object, name: str = "dtype") -> np.dtype[Any]:
    """``"float32"``/``"float64"`` (or the NumPy types) -> ``np.dtype``."""
    try:
        dtype = np.dtype(value)  # type: ignore[call-overload]  # any value: refused below
    except (TypeError, ValueError, SyntaxError):  # NumPy parses some strings, e.g. "i4,,"
        raise TypeError(f"{name} must be 'float32' or 'float64', got {value!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be 'float32' or 'float64', got {value!r}")
    return dtype


def integer(value: object, name: str, *, minimum: int) -> int:
    """An int (or NumPy integer, not bool) >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {_type_name(value)}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def real(value: object, name: str) -> float:
    """A finite real number (int or float, not bool) -> float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {_type_name(value)}")
    try:
        value = float(value)
    except OverflowError:  # beyond the float range, e.g. 10**400
        raise ValueError(f"{name} must be finite, got a number too large for a float") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def learning_rate(value: object, name: str = "lr") -> float:
    value = real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def fraction(value: object, name: str) -> float:
    """A real number in [0, 1) (momentum, Adam's betas)."""
    value = real(value, name)
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def non_negative(value: object, name: str) -> float:
    """A finite real number >= 0 (weight decay, alpha)."""
    value = real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {_type_name(value)}")
    return bool(value)


def callback(value: object, name: str = "callback") -> Callable[..., Any] | None:
    """None or a callable, checked before training starts (not at the first call)."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r} of type {_type_name(value)}")
    return value


def seed(value: object, name: str = "seed") -> int | np.random.Generator | None:
    """None, a non-negative int, or a ``numpy.random.Generator``."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    return integer(value, name, minimum=0)


def layer_sizes(value: object) -> tuple[int, ...]:
    """``[n_0, n_1, ..., n_L]``: at least two positive integers."""
    # A sequence, not any sized iterable: a set or a dict would give its sizes
    # in hash order, e.g. {3, 2} -> (2, 3).
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(
            f"layer_sizes must be a sequence of integers like [2, 2, 2], got {value!r} of type {_type_name(value)}"
        )
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise ValueError(f"layer_sizes must be 1-D, got an array of shape {value.shape}")
    sizes = tuple(integer(n, f"layer_sizes[{i}]", minimum=1) for i, n in enumerate(value))
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size (one weight layer), got {list(sizes)}"
        )
    return sizes


def param_count(sizes: Sequence[int], dtype: np.dtype[Any]) -> int:
    """Number of parameters, refusing networks too large to allocate."""
    count = n_params(sizes)
    if count * dtype.itemsize > MAX_PARAM_BYTES:
        raise ValueError(
            f"layer_sizes {list(sizes)} need {count} parameters "
            f"({count * dtype.itemsize / 2**30:.3g} GiB), more than fastbp allows ({MAX_PARAM_BYTES / 2**30:.0f} GiB)"
        )
    return count


def real_array(value: object, name: str, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """array_like of real numbers -> C-contiguous array of ``dtype`` (a copy if needed)."""
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        where = np.argwhere(np.ma.getmaskarray(value))[0]
        first = f", the first at index {tuple(int(i) for i in where)}" if value.ndim else ""
        raise ValueError(f"{name} has masked values{first}: fill them or leave those samples out")
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:  # ragged nested lists, ...
            raise ValueError(f"{name} could not be read as a numeric array: {error}") from None
    kind = array.dtype.kind
    if kind not in "biuf":
        what = {"c": "complex", "O": "object", "U": "string", "S": "bytes", "M": "datetime", "m": "timedelta"}
        raise TypeError(
            f"{name} must hold real numbers (bool, integer or floating), "
            f"got dtype {array.dtype} ({what.get(kind, 'unsupported')})"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        # Not np.ascontiguousarray: it turns a 0-d array into shape (1,),
        # which would accept a scalar where a row is required.
        array = np.asarray(array, dtype=dtype, order="C")
    if not array.flags.aligned:
        # A buffer at an odd address (e.g. np.ndarray(..., offset=1)): compiled
        # C may assume every double sits on an 8-byte boundary.
        array = array.copy()
    if not _all_finite(array):
        where = np.argwhere(~np.isfinite(array))[0]
        bad = array[tuple(where)]
        position = f" at index {tuple(int(i) for i in where)}" if array.ndim else ""
        cast = (
            "" if value is array or getattr(value, "dtype", None) == dtype else f" (after casting to {dtype})"
        )
        raise ValueError(f"{name} must be finite, found {bad}{position}{cast}")
    return array


def _all_finite(array: npt.NDArray[Any], block: int = 1 << 16) -> bool:
    """np.isfinite(array).all() without a boolean copy of the whole array: a
    block of values at a time, so checking data costs no memory per row."""
    flat = array.reshape(-1)  # a view: the array is C-contiguous here
    return all(np.isfinite(flat[i : i + block]).all() for i in range(0, flat.size, block))


def sample_array(
    value: object, name: str, dtype: np.dtype[Any], width: int, *, ndims: tuple[int, ...]
) -> FloatArray:
    """Data for a network: ``(width,)`` when 1 is in ``ndims``, ``(n >= 1, width)``
    when 2 is, validated by :func:`real_array`."""
    array = real_array(value, name, dtype)
    expected = " or ".join({1: f"({width},)", 2: f"(n, {width})"}[d] for d in ndims)
    if array.ndim not in ndims or array.shape[-1] != width:
        hint = ""
        if array.ndim == 1 and 2 in ndims and 1 not in ndims and width == 1:
            hint = "; reshape a single column with .reshape(-1, 1)"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}{hint}")
    if array.ndim == 2 and array.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one row, got shape {array.shape}")
    return array


def same_rows(X: npt.NDArray[Any], Y: npt.NDArray[Any], x_name: str = "X", y_name: str = "Y") -> None:
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"{x_name} and {y_name} must have the same number of rows, got {x_name}.shape={X.shape} "
            f"and {y_name}.shape={Y.shape}"
        )


def weights_and_biases(
    weights: Sequence[npt.ArrayLike], biases: Sequence[npt.ArrayLike], dtype: npt.DTypeLike | None
) -> tuple[tuple[int, ...], np.dtype[Any], list[FloatArray], list[FloatArray]]:
    """Validate ``from_weights`` input; returns ``(sizes, dtype, weights, biases)``
    with the arrays cast to ``dtype`` (inferred when None)."""
    for name, value in (("weights", weights), ("biases", biases)):
        if isinstance(value, (str, bytes, np.ndarray)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list of arrays (one per layer), got {_type_name(value)}")
    if len(weights) == 0:
        raise ValueError("weights must hold at least one layer, got an empty list")
    if len(weights) != len(biases):
        raise ValueError(
            f"weights and biases must have one entry per layer, got {len(weights)} and {len(biases)}"
        )
    if dtype is None:
        # float32 when every array given is float32, float64 otherwise.
        given = [getattr(a, "dtype", None) for a in (*weights, *biases)]
        dtype = np.dtype(np.float32) if all(d == np.float32 for d in given) else np.dtype(np.float64)
    else:
        dtype = float_dtype(dtype)
    Ws = [real_array(W, f"weights[{l}]", dtype) for l, W in enumerate(weights)]
    bs = [real_array(b, f"biases[{l}]", dtype) for l, b in enumerate(biases)]
    for l, (W, b) in enumerate(zip(Ws, bs)):
        if W.ndim != 2 or W.size == 0:
            raise ValueError(f"weights[{l}] must be a non-empty 2-D array (n_out, n_in), got shape {W.shape}")
        if b.shape != (W.shape[0],):
            raise ValueError(
                f"biases[{l}] must have shape ({W.shape[0]},) to match weights[{l}].shape={W.shape}, got {b.shape}"
            )
        if l > 0 and W.shape[1] != Ws[l - 1].shape[0]:
            raise ValueError(
                f"layers do not chain: weights[{l}].shape={W.shape} takes {W.shape[1]} inputs "
                f"but weights[{l - 1}].shape={Ws[l - 1].shape} gives {Ws[l - 1].shape[0]} outputs"
            )
    sizes = (Ws[0].shape[1], *tuple(W.shape[0] for W in Ws))
    return sizes, dtype, Ws, bs


def softmax_row_sums(Y: npt.NDArray[Any]) -> tuple[npt.NDArray[np.float64], float]:
    """``(sums, tolerance)``: each row's sum of ``Y``, added in order in double
    (as the compiled door adds), and how far from 1 a softmax target row may
    sum: 2^-12 for float32, 2^-26 for float64 (about sqrt(eps))."""
    sums = np.cumsum(Y, axis=-1, dtype=np.float64)[..., -1]
    return sums, (2.0**-12 if Y.dtype == np.float32 else 2.0**-26)


def targets(Y: FloatArray, name: str, loss: str, output_activation: str) -> FloatArray:
    """Targets the loss can use (``Y`` already a finite array of the network's
    dtype, one row per sample or one sample): for the cross-entropy every
    value in [0, 1] (probabilities), and under a softmax output every row
    summing to 1 (the delta o - y assumes it): the sum, added in order in
    double, within 2^-12 of 1 for float32 and 2^-26 for float64 (about
    sqrt(eps) of the dtype; the compiled door checks the same sum)."""
    if loss != "cross_entropy":
        return Y
    low, high = Y.min(), Y.max()
    if low < 0 or high > 1:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} must lie in [0, 1] for loss='cross_entropy' (probabilities), "
            f"got a value {float(bad)!r} (shape {Y.shape})"
        )
    if output_activation == "softmax":
        sums, tolerance = softmax_row_sums(Y)
        off = np.abs(sums - 1.0)
        worst = int(np.argmax(off)) if off.ndim else 0
        if off.max() > tolerance:
            where = (
                f"row {worst} sums to {float(np.ravel(sums)[worst])!r}"
                if Y.ndim == 2
                else f"it sums to {float(sums)!r}"
            )
            raise ValueError(
                f"{name} must have rows summing to 1 for a softmax output with "
                f"loss='cross_entropy' (within {tolerance:.3g}): {where} (shape {Y.shape})"
            )
    return Y
