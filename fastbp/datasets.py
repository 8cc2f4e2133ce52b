"""Small built-in datasets, generated on the fly, for trying fastbp with no data.

Every dataset is a binary classification of points in the plane: two input
columns (``x1``, ``x2``) scaled into [0, 1], the range sigmoid networks like,
and one target column (``label``) of 0s and 1s, the range of a sigmoid output.

    >>> from fastbp import datasets
    >>> X, Y = datasets.load("spirals", seed=0)
    >>> X.shape, Y.shape
    ((300, 2), (300, 1))

``fastbp train --dataset NAME`` trains on them from the command line, and
``fastbp dataset NAME`` writes one as CSV.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from . import _scaling
from . import _validation as check

__all__ = ["INPUT_NAMES", "TARGET_NAMES", "circles", "load", "names", "spirals", "xor"]

Array = npt.NDArray[np.float64]

INPUT_NAMES = ("x1", "x2")
TARGET_NAMES = ("label",)


def xor() -> tuple[Array, Array]:
    """The four rows of XOR: the smallest problem a network needs a hidden layer for."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    return X, Y


def circles(n_samples: int = 200, *, noise: float = 0.05, seed: int | None = None) -> tuple[Array, Array]:
    """A disk (label 1) inside a ring (label 0): half the points each, at radius
    0.5 and 1.0 plus Gaussian noise of standard deviation ``noise``."""
    rng, n_samples, noise = _setup(n_samples, noise, seed)
    label = np.arange(n_samples) % 2
    radius = np.where(label == 1, 0.5, 1.0)
    angle = rng.uniform(0.0, 2 * np.pi, n_samples)
    points = radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return _finish(points + rng.normal(0.0, noise, points.shape), label)


def spirals(
    n_samples: int = 300, *, turns: float = 1.25, noise: float = 0.02, seed: int | None = None
) -> tuple[Array, Array]:
    """Two interleaved spirals of ``turns`` turns each (label 0 and label 1,
    half the points each), plus Gaussian noise of standard deviation ``noise``
    relative to the spirals' outer radius.  The classic hard case for a small
    network: it needs several hidden neurons and many epochs."""
    rng, n_samples, noise = _setup(n_samples, noise, seed)
    turns = check.real(turns, "turns")
    if turns <= 0:
        raise ValueError(f"turns must be > 0, got {turns}")
    label = np.arange(n_samples) % 2
    # sqrt spreads the points evenly along the arc rather than crowding the centre.
    t = np.sqrt(rng.uniform(0.0, 1.0, n_samples))
    angle = 2 * np.pi * turns * t + np.pi * label  # the second spiral is the first turned half a turn
    points = t[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return _finish(points + rng.normal(0.0, noise, points.shape), label)


_GENERATORS: dict[str, Callable[..., tuple[Array, Array]]] = {
    "xor": xor,
    "circles": circles,
    "spirals": spirals,
}


def names() -> tuple[str, ...]:
    """The names ``load`` accepts."""
    return tuple(_GENERATORS)


def load(name: str, *, seed: int | None = None) -> tuple[Array, Array]:
    """The dataset called ``name`` with its default size: ``(X, Y)``, X of
    shape ``(n, 2)`` in [0, 1] and Y of shape ``(n, 1)`` of 0s and 1s.  ``seed``
    draws the random ones (xor has no randomness and ignores it)."""
    if name not in _GENERATORS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(names())}")
    if name == "xor":
        return xor()
    return _GENERATORS[name](seed=seed)


def _setup(n_samples: int, noise: float, seed: int | None) -> tuple[np.random.Generator, int, float]:
    n_samples = check.integer(n_samples, "n_samples", minimum=2)
    noise = check.real(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    return np.random.default_rng(check.seed(seed)), n_samples, noise


def _finish(points: Array, label: npt.NDArray[np.integer]) -> tuple[Array, Array]:
    """Min-max scale the points into [0, 1] (both axes alike, keeping the
    shapes round); the labels as one float column."""
    fitted = _scaling.fit_range(points, axis=None, name="the points")
    X = _scaling.to_unit(points, fitted.low, _scaling.divisor(fitted.span))
    return X, label.astype(np.float64).reshape(-1, 1)
