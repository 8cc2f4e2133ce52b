"""The suite under a bounds-checking build (issue 4, part 4).

The kernels normally run with Cython's bounds checks off.  Here a copy of the
tracked sources is built with ``FASTBP_DEBUG=1`` (bounds checking, negative
index wrapping and initialisation checks on, no optimisation; see setup.py),
and the tests that drive the kernels hardest (equivalence, gradients,
validation, layouts, network semantics, hostile input, threads, the worked
example, the backends and their interface) run against that copy in a subprocess, from outside
the source tree, so an out-of-bounds index anywhere they reach becomes an
``IndexError`` and a failure instead of a silent read or write.

Slow (a compile of the baseline copy and a second run of those tests, which
tests/conftest.py starts in the background when the session starts; about
1.5 minutes); needs Cython and setuptools (the ``test`` extra) and a C
compiler.  Deselect with ``-m "not debug_build"``.
"""

import importlib.util
import os
import re
import sys

import pytest
from support import SOURCE_TREE, background_job, clean_env, needs_source_tree, run, source_tree

pytestmark = [pytest.mark.debug_build, needs_source_tree]

SUBSET = [
    "test_equivalence.py",
    "test_gradients.py",
    "test_validation.py",
    "test_layout.py",
    "test_network.py",
    "test_hostile_input.py",
    "test_threads.py",
    "test_worked_example.py",
    "test_backends.py",
    "test_interface.py",
]


def _skip_reason():
    if os.environ.get("FASTBP_EXPECT_INSTALLED_IN"):
        return (
            "this run tests another build of fastbp (the packaging test's); the debug build runs once, "
            "from the checkout's own run"
        )
    for module in ("Cython", "setuptools"):
        if importlib.util.find_spec(module) is None:
            return f"building the kernels needs {module} (pip install '.[test]')"
    return None


def _build(tmp_path_factory):
    work = tmp_path_factory.mktemp("debug_build")
    src = work / "src"
    src.mkdir()
    source_tree(src)
    # The baseline copy alone (FASTBP_BASELINE_ONLY): the x86-64-v3/v4 copies
    # are the same Cython source, so the same bounds checks, compiled with
    # other -march flags (tests/test_isa_guard.py tests those copies).
    run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=src,
        env=clean_env(FASTBP_DEBUG="1", FASTBP_BASELINE_ONLY="1"),
        timeout=1800,
    )
    (work / "run").mkdir()  # outside the source tree: only the copy named by PYTHONPATH is importable
    return work, src


def _build_job(tmp_path_factory):
    return background_job("debug build: build", lambda: _build(tmp_path_factory))


def _tests_run_job(tmp_path_factory):
    return background_job(
        "debug build: tests", lambda: _run_the_tests(*_build_job(tmp_path_factory).result())
    )


def start_in_background(tmp_path_factory, names):
    """Called by tests/conftest.py when the session starts, with the names of
    this module's selected tests: the build, and the tests' run if selected."""
    if SOURCE_TREE and _skip_reason() is None:
        _build_job(tmp_path_factory)
        if "test_the_kernel_tests_pass_against_the_debug_build" in names:
            _tests_run_job(tmp_path_factory)


@pytest.fixture(scope="module")
def debug_build(tmp_path_factory):
    """``(work, src)``: a copy of the sources with its kernels built in place
    by ``FASTBP_DEBUG=1 FASTBP_BASELINE_ONLY=1 python setup.py build_ext --inplace``."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    return _build_job(tmp_path_factory).result()


def test_the_generated_c_checks_bounds(debug_build):
    # Cython writes a bounds check (raising IndexError) at every memoryview
    # index only when boundscheck is on: the debug C has them, a release
    # build none.
    _, src = debug_build
    generated = sorted((src / "build" / "cython-debug").rglob("*.c"))
    assert generated, "no C generated under build/cython-debug: FASTBP_DEBUG=1 was not seen by setup.py"
    for c_file in generated:
        assert "__Pyx_RaiseBufferIndexError(" in c_file.read_text(), f"{c_file.name} has no bounds checks"


# Drop a kernel's length check (a module global the kernel calls) and give it
# an output shorter than its input: the loop then indexes past the end of
# ``out``.  ``out`` is a view at the start of a larger array, so even a build
# without bounds checks only writes inside memory this snippet owns (and shows
# it: ``room`` changes).  The bounds-checked build raises IndexError instead.
PROBE = """
import importlib, pathlib, numpy as np, fastbp
# The variant fastbp picked for this CPU, and the baseline copy (the same one
# in this build, which has the baseline copy alone).
for kernels in {fastbp.get_backend("cython"), importlib.import_module("fastbp._kernels")}:
    kernels.check_same_length = lambda **arrays: None
    room = np.zeros(8)
    try:
        kernels.sigmoid_derivative(np.full(5, 0.5), room[:2])
    except IndexError as error:
        print("IndexError", kernels.__name__, pathlib.Path(kernels.__file__).resolve(), error)
    else:
        print("NO ERROR", kernels.__name__, room)
"""


def test_the_imported_kernels_raise_on_an_out_of_bounds_index(debug_build):
    work, src = debug_build
    result = run(
        [sys.executable, "-c", PROBE], cwd=work / "run", env=clean_env(PYTHONPATH=str(src)), timeout=300
    )
    lines = result.stdout.strip().splitlines()
    assert lines and all(line.startswith("IndexError") for line in lines), result.stdout
    for line in lines:  # the modules came from the debug build, not an installed fastbp
        assert str(src.resolve()) in line, line


# Left out of this run: the check that every copy this CPU runs was built
# (this build has the baseline copy alone; the main and wheel runs check it).
DESELECT = ["test_backends.py::test_every_copy_this_cpu_runs_was_built"]


def _run_the_tests(work, src):
    tests = [str(src / "tests" / name) for name in SUBSET if (src / "tests" / name).exists()]
    assert len(tests) >= 4, tests
    return run(
        [
            sys.executable,
            "-m",
            "pytest",
            *tests,
            "-m",
            "not packaging and not debug_build",
            "-q",
            *(f"--deselect=tests/{name}" for name in DESELECT),  # a node id: relative to --rootdir
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(src),
        ],
        cwd=work / "run",
        # FASTBP_EXPECT_INSTALLED_IN: test_backends.py checks fastbp was imported from the debug copy.
        env=clean_env(PYTHONPATH=str(src), FASTBP_EXPECT_INSTALLED_IN=str(src), FASTBP_NESTED_RUN="1"),
        timeout=1800,
    )


def test_the_kernel_tests_pass_against_the_debug_build(debug_build, tmp_path_factory):
    # Run in the background from the session's start (tests/conftest.py).
    result = _tests_run_job(tmp_path_factory).result()
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(r"\d+ (failed|errors?)\b", summary), summary
    assert "only when a test run names where fastbp must come from" not in result.stdout
    assert f"{len(DESELECT)} deselected" in summary, summary
