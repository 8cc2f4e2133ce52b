"""The errors training and evaluation raise, built in one place.

A leaf module: ``fastbp.network`` (the Python boundary) and the compiled door
(``Door`` in ``fastbp._kernels``) both raise through these helpers, so a
message reads the same whichever path found the problem.
"""

from __future__ import annotations

import numpy as np


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite cost or weight; the network was restored.

    ``costs`` holds the mean cost of each epoch that completed before it."""

    def __init__(self, message, costs=None):
        super().__init__(message)
        self.costs = np.empty(0) if costs is None else costs


def diverged(what, costs=None):
    """The error for a step or epoch that diverged (and was undone)."""
    return TrainingDivergedError(
        f"training diverged during {what}: the cost or a weight became NaN or infinite. "
        "The network was restored to its weights before that; try a smaller learning rate "
        "(or targets in [0, 1], the range of the sigmoid outputs).",
        costs=costs,
    )


def not_finite(what):
    """The error for a NaN/inf computed from finite input.

    With finite weights and data, a non-finite output, cost or gradient means
    the arithmetic overflowed the dtype (e.g. weights near 1e308 in float64,
    whose weighted sum is inf - inf).  The kernels keep float32 sums exact by
    redoing an overflowing neuron in double; float64 has no wider type to fall
    back on, so such a result is refused instead of returned silently.
    """
    return FloatingPointError(
        f"{what} is not finite: the arithmetic overflowed the network's dtype. "
        "The weights or inputs are too large in magnitude; rescale them."
    )


def reentered(what):
    """The error for ``step``/``train`` called from the network's own train() callback."""
    return RuntimeError(
        f"{what}() was called on a network from inside its own train() callback; "
        "a callback may read the network (forward, cost, save) but not train it"
    )
