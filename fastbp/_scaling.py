"""Min-max scaling, written once: ``fastbp train --scale`` (``fastbp.cli``), the
built-in datasets (``fastbp.datasets``) and ``BPRegressor``'s targets for
sigmoid outputs (``fastbp.sklearn``) all scale with these functions.

Fitted on training values ``x`` (column by column, or over a whole array),
with ``low = min x``, ``high = max x`` and ``span = high - low``, the scaling
maps ``[low, high]`` linearly onto an interval ``[a, b]``::

    t = a + (b - a) * (x - low) / span

On ``[0, 1]`` (``to_unit``) that is ``t = (x - low) / span``.  Written about
the midpoints (``to_interval``, and ``from_interval`` its inverse), with
``center = low + span / 2``, ``scale = span / (b - a)`` and ``mid = (a + b) / 2``::

    t = mid + (x - center) / scale          x = center + (t - mid) * scale

A constant column (``span = 0``) has no range to stretch: it is shifted, not
divided (``divisor`` is 1 there instead of ``span / (b - a)``), so that its
one value lands on ``a`` in the first form and on ``mid`` in the second.
The two forms round differently; each caller keeps the one it has always
used, so that its results stay the same to the bit.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


class Range(NamedTuple):
    """The training range of each column (or of a whole array)."""

    low: Any  # min x: an array of one value per column, or one number
    span: Any  # max x - min x (0 for a constant column)
    center: Any  # low + span / 2


def fit_range(values: npt.ArrayLike, *, axis: int | None = 0, name: str) -> Range:
    """The range of ``values`` along ``axis`` (``None``: over the whole
    array); ``ValueError`` naming ``name`` when the span does not fit in a
    float64."""
    values = np.asarray(values)
    low, high = values.min(axis=axis), values.max(axis=axis)
    with np.errstate(over="ignore"):
        span = high - low
        center = low + span / 2
    if not (np.isfinite(span).all() and np.isfinite(center).all()):
        raise ValueError(
            f"{name} spans too wide a range to scale in float64 (min {low.tolist()}, max {high.tolist()}); rescale it"
        )
    return Range(low, span, center)


def divisor(span: Any, width: float = 1.0) -> Array:
    """What ``x - low`` (or ``x - center``) is divided by to map the range
    onto an interval ``width`` wide: ``span / width``, and 1 for a constant
    column."""
    return np.where(span > 0, span / width, 1.0)


def to_unit(values: Any, low: Any, divide_by: Any) -> Any:
    """``(x - low) / divide_by`` (``divisor(span)``): the range onto ``[0, 1]``."""
    return (values - low) / divide_by


def to_interval(values: Any, center: Any, scale: Any, mid: float) -> Any:
    """``mid + (x - center) / scale``: the range onto the interval about ``mid``."""
    return mid + (values - center) / scale


def from_interval(scaled: Any, center: Any, scale: Any, mid: float) -> Any:
    """``center + (t - mid) * scale``: the inverse of ``to_interval``."""
    return center + (scaled - mid) * scale
