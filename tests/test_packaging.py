"""The release artefacts: ``python -m build`` makes an sdist and a wheel from the
tracked sources, and the wheel, installed in a fresh virtual environment,
passes the core of this test suite run against the installed package (not the
source folder).

Slow (two isolated builds, a venv, a second run of the suite) and needs the
package index for the build requirements; deselect with ``-m "not packaging"``.
"""

import os
import platform
import sys
import tarfile
import zipfile

import pytest
from support import SOURCE_TREE, background_job, clean_env, needs_source_tree, run, source_tree

pytestmark = [pytest.mark.packaging, needs_source_tree]


# A Linux wheel as built says only linux_x86_64 (it runs where it was built);
# auditwheel checks which system libraries and symbol versions it uses and
# retags it manylinux, the tag PyPI takes and pip on other distributions
# installs.  The repaired wheel is the one tested below.
REPAIRS_WHEELS = sys.platform.startswith("linux")


def _build(tmp_path_factory):
    work = tmp_path_factory.mktemp("packaging")
    src, dist, wheelhouse = work / "src", work / "dist", work / "wheelhouse"
    src.mkdir()
    source_tree(src)
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(src)], env=clean_env(), timeout=1800)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    if REPAIRS_WHEELS:
        run(
            [sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", str(wheelhouse), str(wheel)],
            env=clean_env(),
            timeout=600,
        )
        (wheel,) = wheelhouse.glob("*.whl")
    return work, sdist, wheel


def _build_job(tmp_path_factory):
    return background_job("packaging: build", lambda: _build(tmp_path_factory))


def _wheel_run_job(tmp_path_factory):
    return background_job(
        "packaging: wheel run", lambda: _run_the_core_suite(*_build_job(tmp_path_factory).result())
    )


def start_in_background(tmp_path_factory, names):
    """Called by tests/conftest.py when the session starts, with the names of
    this module's selected tests: the build, and the wheel's run if selected."""
    if SOURCE_TREE:
        _build_job(tmp_path_factory)
        if "test_wheel_passes_the_core_suite_in_a_fresh_venv" in names:
            _wheel_run_job(tmp_path_factory)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    return _build_job(tmp_path_factory).result()


def test_sdist_holds_sources_not_build_outputs(artefacts):
    _, sdist, _ = artefacts
    with tarfile.open(sdist) as tar:
        names = {"/".join(n.split("/")[1:]) for n in tar.getnames()}
    for required in (
        "pyproject.toml",
        "setup.py",
        "README.md",
        "fastbp/_kernels.pyx",
        "fastbp/_kernels.pyi",
        "fastbp/py.typed",
        "fastbp/reference.py",
        "tests/conftest.py",
    ):
        assert required in names, f"{required} missing from the sdist"
    generated = [n for n in names if n.endswith((".c", ".so", ".o"))]
    assert generated == []


def test_wheel_holds_the_compiled_module_and_stubs(artefacts):
    _, _, wheel = artefacts
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("fastbp/_kernels.") and n.endswith((".so", ".pyd")) for n in names), names
    if sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64"):
        for copy in ("_kernels_v3", "_kernels_v4"):  # the AVX2 and AVX-512 builds
            assert any(n.startswith(f"fastbp/{copy}.") and n.endswith(".so") for n in names), names
    for required in ("fastbp/__init__.py", "fastbp/_kernels.pyi", "fastbp/py.typed", "fastbp/reference.py"):
        assert required in names
    assert not [n for n in names if n.endswith((".c", ".pyx"))]


@pytest.mark.skipif(not REPAIRS_WHEELS, reason="auditwheel repairs Linux wheels only")
def test_wheel_is_repaired_to_a_manylinux_tag(artefacts):
    _, _, wheel = artefacts
    # name-version-python-abi-platform.whl; the platform part may hold several
    # tags joined by '.', e.g. manylinux_2_17_x86_64.manylinux2014_x86_64.
    platforms = wheel.name.removesuffix(".whl").split("-")[-1].split(".")
    assert all(p.startswith("manylinux") for p in platforms), wheel.name
    tags = [
        line
        for line in zipfile.ZipFile(wheel).read(_dist_info(wheel) + "/WHEEL").decode().splitlines()
        if line.startswith("Tag: ")
    ]
    assert tags and all("-manylinux" in tag for tag in tags), tags


def _dist_info(wheel):
    name, version = wheel.name.split("-")[:2]
    return f"{name}-{version}.dist-info"


# The tests of the kernels, the Network API and its guarantees; the CLI,
# estimators, typing and benchmark-peer tests need optional packages and are
# run by the main suite, and so are (below) the tests whose outcome does not
# depend on how fastbp was built and installed.
WHEEL_TESTS = [
    "test_backends.py",
    "test_equivalence.py",
    "test_gradients.py",
    "test_network.py",
    "test_validation.py",
    "test_layout.py",
    "test_hostile_input.py",
    "test_worked_example.py",
    "test_main.py",
    "test_modelfile.py",
    "test_interrupt.py",
    "test_isa_guard.py",
    "test_interface.py",
    # The basic thread cases: the wheel's kernels releasing the GIL.
    "test_threads.py::test_forward_from_many_threads_is_bit_identical",
    "test_threads.py::test_steps_from_two_threads_complete_without_corruption",
    "test_threads.py::test_two_train_calls_are_serialised",
]
# Left to this run and the debug build's: the rest of tests/test_threads.py
# (the locks and per-call buffers of fastbp/network.py, the same code in every
# build), and the Haswell emulated CPU of tests/test_isa_guard.py (a CPU
# that runs the AVX2 copy and refuses the AVX-512 one: the wheel's copies are
# still imported on Nehalem, refusing both, and on this CPU).
WHEEL_DESELECT = ["test_isa_guard.py::test_every_copy_imports_or_refuses_on_an_emulated_cpu[Haswell]"]


def _run_the_core_suite(work, sdist, wheel):
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # The wheel and what the core tests need (not the optional peers of the
    # test extra: the main run covers those; this one is about the wheel).
    run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel), "pytest", "hypothesis"],
        env=clean_env(),
        timeout=1800,
    )
    run_dir = work / "run"  # outside the source tree: only the installed fastbp is importable
    run_dir.mkdir()
    tests = work / "src" / "tests"
    return venv, run(
        # The core tests of the same snapshot the wheel was built from.
        [
            str(python),
            "-m",
            "pytest",
            *(str(tests / name) for name in WHEEL_TESTS),
            "-q",
            *(f"--deselect=tests/{name}" for name in WHEEL_DESELECT),  # a node id: relative to --rootdir
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(work / "src"),
        ],
        cwd=run_dir,
        env=clean_env(FASTBP_EXPECT_INSTALLED_IN=str(venv), FASTBP_NESTED_RUN="1"),
        timeout=1800,
    )


def test_wheel_passes_the_core_suite_in_a_fresh_venv(tmp_path_factory):
    # Run in the background from the session's start (tests/conftest.py).
    _venv, result = _wheel_run_job(tmp_path_factory).result()
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # The check that fastbp came from the venv ran: it skips only outside this test.
    assert "only when a test run names where fastbp must come from" not in result.stdout
    # What this run leaves to the main run was left out, and nothing else.
    assert f"{len(WHEEL_DESELECT)} deselected" in summary, summary
