"""Shared fixtures: one test body runs against every backend and both dtypes."""

import os

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
settings.load_profile("ci" if os.environ.get("CI") else "default")


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
