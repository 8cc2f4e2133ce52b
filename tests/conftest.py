"""Shared fixtures: one test body runs against every backend and both dtypes.

Also what the suite needs wherever it runs, in a checkout or as a copy of
tests/ run against an installed wheel (without the checkout's pyproject.toml):
its markers, and tests/support.py importable in any import mode.
"""

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastbp

# The reference backend is pure Python (slow by design): no per-example deadline.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# CI: a fixed, derandomized sample of examples so a red run can be reproduced.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
# The nested runs of the packaging and debug-build tests (FASTBP_NESTED_RUN=1):
# the same tests and assertions against another build, on fewer examples each
# (this run's own examples already cover the inputs; those runs are about the
# build), so that the whole suite stays well under 15 minutes on 2 cores.
settings.register_profile(
    "nested", deadline=None, derandomize=True, max_examples=8, suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("nested" if os.environ.get("FASTBP_NESTED_RUN") else "ci" if os.environ.get("CI") else "default")

if os.path.dirname(os.path.abspath(__file__)) not in map(os.path.abspath, sys.path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/support.py

MARKERS = {
    "packaging": "builds an sdist and a wheel and tests them in a fresh virtual environment (slow)",
    "debug_build": "builds the kernels with bounds checking on (FASTBP_DEBUG=1) and runs the kernel tests "
                   "against them (slow)",
}


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


@pytest.fixture(params=fastbp.backends())
def backend(request):
    """The name of each backend in turn ("cython", "python")."""
    return request.param


@pytest.fixture
def kernels(backend):
    """The kernel module of each backend in turn."""
    return fastbp.get_backend(backend)


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def reference():
    return fastbp.get_backend("python")


@pytest.fixture
def compiled():
    return fastbp.get_backend("cython")
