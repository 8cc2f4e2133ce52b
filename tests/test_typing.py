"""Typing: ``mypy`` on the package is clean, and ``stubtest`` finds the compiled
kernels' stubs (``fastbp/_kernels.pyi``) in agreement with the module itself.

Both run as subprocesses, as a developer would run them; they need mypy (in
the ``test`` extra) and are skipped without it.  That ``py.typed`` and the
stubs ship in the wheel is checked by tests/test_packaging.py.
"""

import importlib.util
import pathlib
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
    """``fastbp._kernels`` and any other compiled kernel module beside it."""
    names = set()
    for path in INSTALLED.glob("_kernels*"):
        if path.suffix in (".so", ".pyd"):
            names.add("fastbp." + path.name.split(".")[0])
    return sorted(names)


def test_mypy_is_clean_on_the_package():
    # From the repository root, so that pyproject.toml's [tool.mypy] applies
    # and the sources checked are the ones the tests come from.
    package = ROOT / "fastbp" if (ROOT / "fastbp" / "__init__.py").exists() else INSTALLED
    result = _run(["mypy", str(package)], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", _compiled_kernel_modules() or ["fastbp._kernels"])
def test_stubtest_agrees_with_the_compiled_module(module, tmp_path):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not built")
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(ALLOWLIST)
    config = tmp_path / "mypy.ini"  # keeps mypy's cache out of the package's folder
    config.write_text(f"[mypy]\ncache_dir = {tmp_path / 'mypy_cache'}\n")
    # From the folder that holds the fastbp the tests import, so that the
    # module stubtest imports and the stub it reads are that package's.
    result = _run(
        ["mypy.stubtest", module, "--allowlist", str(allowlist), "--ignore-unused-allowlist",
         "--mypy-config-file", str(config)],
        cwd=INSTALLED.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
