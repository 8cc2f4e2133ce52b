"""Typing: ``mypy`` on the package is clean, and ``stubtest`` finds the compiled
kernels (``fastbp._kernels`` and its copies built for other instruction sets)
in agreement with their stub, ``fastbp/_kernels.pyi``.

Both run as subprocesses, as a developer would run them; they need mypy (in
the ``test`` extra) and are skipped without it.  From a source checkout mypy
runs as ``mypy`` from the repository root, with no arguments: the checkout's
configuration (pyproject.toml's ``[tool.mypy]``) says what to check and how;
from anywhere else (a copy of tests/ run against an installed wheel) it checks
the installed package with the same settings, written by the test.  stubtest
imports each compiled copy, so it checks only the copies this CPU runs (the
others are reported as skipped).  That ``py.typed`` and the stubs ship in the
wheel is checked by tests/test_packaging.py.
"""

import importlib
import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from support import ROOT, SOURCE_TREE, tomllib

import fastbp

pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[test]')")

INSTALLED = pathlib.Path(fastbp.__file__).resolve().parent  # the fastbp the tests import
ISA_OF = {module: isa for isa, module in importlib.import_module("fastbp.backends")._ISA_MODULES}

# Names stubtest finds at run time that are not part of the interface.
ALLOWLIST = """\
# Cython adds a doctest dictionary to every module it compiles (the
# `autotestdict` directive, on by default): not part of the kernels' API.
fastbp\\._kernels\\w*\\.__test__
"""

# pyproject.toml's [tool.mypy], for a run outside the checkout (where the
# package is named with -p rather than found through `files`); kept the same
# by test_the_outside_config_matches_pyproject.
MYPY_SETTINGS = {
    "check_untyped_defs": True,
    "strict_equality": True,
    "warn_redundant_casts": True,
    "warn_unused_ignores": True,
    "warn_unused_configs": True,
    "enable_error_code": ["ignore-without-code", "truthy-bool"],
}
MYPY_OVERRIDES = [
    {
        "module": [
            "fastbp.network",
            "fastbp._validation",
            "fastbp._modelfile",
            "fastbp.sklearn",
            "fastbp._files",
            "fastbp._scaling",
            "fastbp._version",
        ],
        "disallow_untyped_defs": True,
        "disallow_incomplete_defs": True,
    },
    {"module": ["sklearn.*"], "ignore_missing_imports": True},
]


def _toml_config(settings, overrides):
    """``[tool.mypy]`` as a TOML file's text (mypy reads a config file named
    *.toml as pyproject.toml); the values are strings, booleans and lists of
    strings, which JSON writes as TOML does."""
    lines = ["[tool.mypy]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
    for override in overrides:
        lines += [
            "",
            "[[tool.mypy.overrides]]",
            *(f"{key} = {json.dumps(value)}" for key, value in override.items()),
        ]
    return "\n".join(lines) + "\n"


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _compiled_kernel_modules():
    """``_kernels`` and the copies of it built for other instruction sets."""
    return sorted(
        {path.name.split(".")[0] for path in INSTALLED.glob("_kernels*") if path.suffix in (".so", ".pyd")}
    )


def test_the_outside_config_matches_pyproject():
    if not SOURCE_TREE:
        pytest.skip(f"needs the source tree's pyproject.toml (not found under {ROOT})")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config.pop("files") == ["fastbp"]  # what a bare `mypy` from the root checks
    assert config.pop("overrides") == MYPY_OVERRIDES
    assert config == MYPY_SETTINGS
    # The file the test writes from them reads back the same.
    written = tomllib.loads(_toml_config(MYPY_SETTINGS, MYPY_OVERRIDES))["tool"]["mypy"]
    assert written == {**MYPY_SETTINGS, "overrides": MYPY_OVERRIDES}


def test_mypy_is_clean_on_the_package(tmp_path):
    if SOURCE_TREE:
        # A bare `mypy` from the repository root: pyproject.toml's [tool.mypy]
        # says what to check (the sources the tests come from) and how.
        args, cwd = [], ROOT
    else:
        # The installed package, by name (as a path, mypy would take its
        # site-packages for a source folder, whose other modules then shadow
        # the libraries), with the same settings and a cache outside it.
        config = tmp_path / "mypy.toml"
        settings = {**MYPY_SETTINGS, "cache_dir": str(tmp_path / "mypy_cache")}
        config.write_text(_toml_config(settings, MYPY_OVERRIDES))
        args, cwd = ["--config-file", str(config), "-p", "fastbp"], tmp_path
    result = _run(["mypy", *args], cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = int(re.search(r"Success: no issues found in (\d+) source files", result.stdout).group(1))
    package = ROOT / "fastbp" if SOURCE_TREE else INSTALLED
    assert checked == len([*package.glob("*.py"), *package.glob("*.pyi")]), result.stdout  # every module


def _copies():
    """The compiled copies, each skipped (saying why) where this CPU cannot import it."""
    names = _compiled_kernel_modules()
    if not names:
        yield pytest.param(None, marks=pytest.mark.skip(reason="the compiled kernels are not built"))
        return
    baseline = importlib.import_module("fastbp._kernels")  # it says what this CPU runs
    for name in names:
        isa = ISA_OF.get(f"fastbp.{name}")
        if isa is not None and not baseline.cpu_runs(isa):
            yield pytest.param(
                name,
                marks=pytest.mark.skip(
                    reason=f"fastbp.{name} is built for {isa}, which this CPU cannot run: stubtest, which imports "
                    "the module, checks only the copies this CPU runs (they come from one source)"
                ),
            )
        else:
            yield name


@pytest.fixture(scope="module")
def stub_setup(tmp_path_factory):
    """``(work folder, mypy config, allowlist)`` shared by the stubtest runs (and their mypy cache)."""
    stub = INSTALLED / "_kernels.pyi"
    assert stub.exists(), f"{stub} is missing"
    work = tmp_path_factory.mktemp("stubtest")
    # stubtest passes a private module it finds no stub for, so each copy gets
    # a copy of the one stub, in a stub folder that mypy searches first.
    stubs = work / "stubs" / "fastbp"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("")
    for name in _compiled_kernel_modules():
        shutil.copy(stub, stubs / f"{name}.pyi")
    config = work / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {stubs.parent}\ncache_dir = {work / 'mypy_cache'}\n")
    allowlist = work / "allowlist.txt"
    allowlist.write_text(ALLOWLIST)
    return work, config, allowlist


@pytest.mark.parametrize("name", list(_copies()))
def test_stubtest_agrees_with_the_compiled_modules(name, stub_setup):
    # Every compiled copy (they come from the same source) must agree with the one stub.
    work, config, allowlist = stub_setup
    result = _run(
        [
            "mypy.stubtest",
            f"fastbp.{name}",
            "--allowlist",
            str(allowlist),
            "--ignore-unused-allowlist",
            "--mypy-config-file",
            str(config),
        ],
        # Not from site-packages, whose other modules mypy would see as shadowing
        # the libraries; from here the installed fastbp is imported, as by the tests.
        cwd=work,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues found in 1 module" in result.stdout
