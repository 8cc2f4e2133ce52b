"""pytest-benchmark suite (``pytest bench/``; not part of the default run,
whose testpaths is tests/).  ``pytest bench/ --benchmark-disable`` runs each
benchmark once, as a quick check that they all work."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the peers package

WORKLOADS = {  # layer sizes, rows per timed call (a few ms to a few tens of ms), learning rate
    "2-2-2": ((2, 2, 2), 100_000, 0.0625),
    "64-32-10": ((64, 32, 10), 10_000, 0.03125),
    "784-128-10": ((784, 128, 10), 1_000, 0.03125),
}


@pytest.fixture(params=list(WORKLOADS))
def workload(request):
    return request.param


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.fixture
def data(workload, dtype):
    """Inputs U(0, 1), targets U(0.1, 0.9), as compare.py uses."""
    sizes, rows, _ = WORKLOADS[workload]
    rng = np.random.default_rng(0)
    return rng.random((rows, sizes[0])).astype(dtype), rng.uniform(0.1, 0.9, (rows, sizes[-1])).astype(dtype)


@pytest.fixture
def lr(workload):
    return WORKLOADS[workload][2]


@pytest.fixture
def network(workload, dtype):
    import fastbp

    return fastbp.Network(WORKLOADS[workload][0], seed=1, dtype=dtype)
