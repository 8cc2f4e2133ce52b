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
    "nested",
    deadline=None,
    derandomize=True,
    max_examples=8,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
NESTED_RUN = bool(os.environ.get("FASTBP_NESTED_RUN"))
settings.load_profile("nested" if NESTED_RUN else "ci" if os.environ.get("CI") else "default")

if os.path.dirname(os.path.abspath(__file__)) not in map(os.path.abspath, sys.path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/support.py

import support

MARKERS = {
    "packaging": "builds an sdist and a wheel and tests them in a fresh virtual environment (slow)",
    "debug_build": "builds the kernels with bounds checking on (FASTBP_DEBUG=1) and runs the kernel tests "
    "against them (slow)",
}


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def _nested(item):
    return any(item.get_closest_marker(name) for name in MARKERS)


def pytest_collection_modifyitems(config, items):
    # The tests of the nested runs last (a stable sort: each module's tests
    # stay together, in order): their runs, started in the background when
    # the session starts (below), overlap every other test.
    items.sort(key=_nested)


@pytest.fixture(scope="session", autouse=True)
def nested_runs_in_background(request, tmp_path_factory):
    """Starts the builds and runs of the selected nested-run tests: a module
    with such tests may define ``start_in_background(tmp_path_factory,
    names)`` (``names``: its selected tests), which starts them with
    ``support.background_job``; its fixtures then wait for those jobs (or
    start them, the first time they are asked for)."""
    selected = {}
    for item in request.session.items:
        if _nested(item) and hasattr(item.module, "start_in_background"):
            selected.setdefault(item.module, set()).add(item.originalname)
    if selected:
        tmp_path_factory.getbasetemp()  # made here: two jobs' first mktemp at once would make two
    for module, names in selected.items():
        module.start_in_background(tmp_path_factory, names)
    yield
    support.stop_background_jobs()  # a run cut short (-x, a failure to collect): stop what still runs


# The nested runs test another build of the compiled kernels: the reference
# backend (pure Python, the same file in every build, and slow by design) is
# tested by this run's own tests, and there only where a test asks for it by name.
@pytest.fixture(params=["cython"] if NESTED_RUN else fastbp.backends())
def backend(request):
    """The name of each backend in turn ("cython", "python"; "cython" alone in a nested run)."""
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
