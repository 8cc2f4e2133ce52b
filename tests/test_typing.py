"""Typing: ``mypy`` on the package is clean, and ``stubtest`` finds the compiled
kernels (``fastbp._kernels`` and its copies built for other instruction sets)
in agreement with their stub, ``fastbp/_kernels.pyi``.

Both run as subprocesses, as a developer would run them; they need mypy (in
the ``test`` extra) and are skipped without it.  That ``py.typed`` and the
stubs ship in the wheel is checked by tests/test_packaging.py.
"""

import pathlib
import shutil
import subprocess
import sys

import pytest

import fastbp

pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[test]')")

ROOT = pathlib.Path(__file__).resolve().parents[1]
INSTALLED = pathlib.Path(fastbp.__file__).resolve().parent  # the fastbp the tests import

# Names stubtest finds at run time that are not part of the interface.
ALLOWLIST = """\
# Cython adds a doctest dictionary to every module it compiles (the
# `autotestdict` directive, on by default): not part of the kernels' API.
fastbp\\._kernels\\w*\\.__test__
"""


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _compiled_kernel_modules():
    """``_kernels`` and the copies of it built for other instruction sets."""
    return sorted({path.name.split(".")[0] for path in INSTALLED.glob("_kernels*") if path.suffix in (".so", ".pyd")})


def test_mypy_is_clean_on_the_package():
    # From the repository root, so that pyproject.toml's [tool.mypy] applies
    # and the sources checked are the ones the tests come from.
    package = ROOT / "fastbp" if (ROOT / "fastbp" / "__init__.py").exists() else INSTALLED
    result = _run(["mypy", str(package)], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubtest_agrees_with_the_compiled_modules(tmp_path):
    stub = INSTALLED / "_kernels.pyi"
    assert stub.exists(), f"{stub} is missing"
    modules = _compiled_kernel_modules()
    if not modules:
        pytest.skip("the compiled kernels are not built")
    # Every compiled module (the copies built for other instruction sets come
    # from the same source) must agree with the one stub.  stubtest passes a
    # private module it finds no stub for, so each gets a copy of it, in a stub
    # folder that mypy searches first.
    stubs = tmp_path / "stubs" / "fastbp"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("")
    for name in modules:
        shutil.copy(stub, stubs / f"{name}.pyi")
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {stubs.parent}\ncache_dir = {tmp_path / 'mypy_cache'}\n")
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(ALLOWLIST)
    result = _run(
        ["mypy.stubtest", *[f"fastbp.{name}" for name in modules], "--allowlist", str(allowlist),
         "--ignore-unused-allowlist", "--mypy-config-file", str(config)],
        # Not from site-packages, whose other modules mypy would see as shadowing
        # the libraries; from here the installed fastbp is imported, as by the tests.
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"no issues found in {len(modules)} module" in result.stdout
