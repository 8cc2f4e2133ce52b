"""The backend registry: which kernels a network runs on.

The backends by name (``backend=``), by ``FASTBP_BACKEND`` and by default;
the compiled copies (``FASTBP_ISA``, the copy picked by the network's shape,
the same bits from every copy); a package without its compiled module.  That
the backends are one interface is tests/test_interface.py's.
"""

import importlib
import importlib.machinery
import os
import pathlib
import pickle
import platform
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from support import esc

import fastbp
import fastbp.reference
from fastbp import Network
from fastbp.backends import ENV_VAR, ISA_VAR, default_backend, isa_modules


def test_compiled_module_loaded():
    # Fails (never skips) when the compiled kernels did not load: no silent Python.
    import fastbp._kernels as baseline

    copies = isa_modules()
    assert list(copies)[-1] == "baseline" and copies["baseline"] is baseline
    for isa, module in copies.items():
        assert any(module.__file__.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES), (
            module.__file__
        )
        assert module.BACKEND_NAME == "cython" and module.ISA == isa
    # The default is the best copy this CPU runs.
    assert fastbp.get_backend("cython") is next(iter(copies.values()))
    assert fastbp.Network([2, 2], backend="cython").backend == "cython"


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")),
    reason="the x86-64-v3/v4 copies are built on x86-64 Linux only",
)
def test_every_copy_this_cpu_runs_was_built():
    # A copy that failed to build would silently cost the vector units: refuse it.
    import fastbp._kernels as baseline

    runnable = [isa for isa in ("x86-64-v4", "x86-64-v3") if baseline.cpu_runs(isa)]
    assert [isa for isa in isa_modules() if isa != "baseline"] == runnable


def test_isa_switch(monkeypatch):
    copies = isa_modules()
    for isa, module in copies.items():
        monkeypatch.setenv(ISA_VAR, isa)
        assert fastbp.get_backend("cython") is module
    monkeypatch.setenv(ISA_VAR, "x86-64-v9")
    with pytest.raises(ValueError, match="FASTBP_ISA='x86-64-v9' names no instruction set"):
        fastbp.get_backend("cython")
    import fastbp._kernels as baseline

    with pytest.raises(ValueError, match="unknown instruction set"):
        baseline.cpu_runs("avx9000")


@pytest.mark.parametrize(
    "sizes, expected",
    [
        ([2, 2, 2], "baseline"),
        ([7, 7], "baseline"),
        ([3, 7, 2, 1], "baseline"),
        ([8, 2, 2], "widest"),
        ([2, 8, 2], "widest"),
        ([784, 128, 10], "widest"),
    ],
)
def test_the_copy_is_picked_by_the_network_shape(monkeypatch, sizes, expected):
    # The measured rule (fastbp.backends.isa_for): layers all narrower than 8
    # run on the baseline copy, anything wider on the widest this CPU runs;
    # FASTBP_ISA overrides it for every network.
    monkeypatch.delenv(ISA_VAR, raising=False)
    copies = isa_modules()
    widest = next(iter(copies))
    want = copies["baseline" if expected == "baseline" else widest]
    assert fastbp.get_backend("cython", tuple(sizes)) is want
    net = fastbp.Network(sizes, seed=0)
    assert net._kernels is want
    assert net.backend == "cython"
    assert pickle.loads(pickle.dumps(net))._kernels is want
    assert fastbp.get_backend("cython") is copies[widest]  # no shape: the widest
    for isa, module in copies.items():
        monkeypatch.setenv(ISA_VAR, isa)
        assert fastbp.Network(sizes, seed=0)._kernels is module


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [1, 5])
def test_every_copy_gives_the_same_bits(dtype, batch_size, monkeypatch):
    # All copies are built with -ffp-contract=off and sum in one fixed order, so
    # training, forward passes and gradients are bit-identical on every CPU.
    rng = np.random.default_rng(7)
    sizes = [70, 33, 4]  # rows longer than _dot's 32 partial sums, with a tail
    X, Y = rng.uniform(size=(23, 70)), rng.uniform(size=(23, 4))
    results = {}
    for isa, module in isa_modules().items():
        # The same network, run by this copy: its kernels and its door.
        monkeypatch.setenv(ISA_VAR, isa)
        net = fastbp.Network(sizes, seed=1, dtype=dtype)
        assert net._kernels is module and type(net._door).__module__ == module.__name__
        costs = net.train(X, Y, epochs=3, lr=0.5, batch_size=batch_size, shuffle=True, seed=2)
        dW, _ = net.gradients(X[0], Y[0])
        # SGD with momentum: online, its own fused row loop (fastbp_momentum_dot_*).
        momentum = fastbp.Network(sizes, seed=1, dtype=dtype)
        momentum_costs = momentum.train(
            X, Y, epochs=2, optimizer=fastbp.SGD(lr=0.05, momentum=0.9), batch_size=batch_size
        )
        results[isa] = [
            costs,
            net.forward(X),
            net.forward(X[0]),
            *net.weights,
            *net.biases,
            *dW,
            momentum_costs,
            *momentum.weights,
        ]
    first = next(iter(results.values()))
    for isa, arrays in results.items():
        for a, b in zip(arrays, first):
            np.testing.assert_array_equal(a, b, err_msg=isa)


# ---------------------------------------------------------------------------
# Selection: by name, by FASTBP_BACKEND, the default
# ---------------------------------------------------------------------------


def test_backend_none_uses_the_default(monkeypatch):
    monkeypatch.delenv("FASTBP_BACKEND", raising=False)
    assert default_backend() == "cython"
    assert Network([2, 2]).backend == default_backend()
    assert Network([2, 2], backend=None).backend == "cython"
    assert Network.from_weights([[[1.0]]], [[0.0]]).backend == "cython"


def test_environment_selects_the_default_backend(monkeypatch):
    monkeypatch.setenv("FASTBP_BACKEND", "python")
    assert default_backend() == "python"
    assert Network([2, 2]).backend == "python"
    assert Network([2, 2], seed=0, backend=None).backend == "python"
    assert Network.from_weights([[[1.0]]], [[0.0]]).backend == "python"
    assert fastbp.get_backend() is importlib.import_module("fastbp.reference")
    # An explicit name wins over the environment.
    assert Network([2, 2], backend="cython").backend == "cython"
    monkeypatch.setenv("FASTBP_BACKEND", " python ")
    assert Network([2, 2]).backend == "python"
    monkeypatch.setenv("FASTBP_BACKEND", "")
    assert Network([2, 2]).backend == "cython"


def test_get_backend_returns_the_kernel_modules():
    assert fastbp.get_backend("cython") is next(iter(isa_modules().values()))
    assert importlib.import_module("fastbp._kernels") in isa_modules().values()
    assert fastbp.get_backend("python") is importlib.import_module("fastbp.reference")
    assert fastbp.backends() == ("cython", "python")
    for name in fastbp.backends():
        assert fastbp.get_backend(name).BACKEND_NAME == name


def test_unknown_backend_is_rejected():
    with pytest.raises(
        ValueError, match=r"backend='numpy' names no backend; choose one of \['cython', 'python'\]"
    ):
        Network([2, 2], backend="numpy")
    with pytest.raises(ValueError, match=r"backend='numpy' names no backend"):
        Network.from_weights([[[1.0]]], [[0.0]], backend="numpy")


@pytest.mark.parametrize(
    "name, error, match",
    [
        pytest.param("numba", ValueError, esc("backend='numba' names no backend"), id="unknown"),
        pytest.param("", ValueError, esc("backend='' names no backend"), id="empty"),
        pytest.param(3, TypeError, esc("backend must be a str") + ".*got int", id="int"),
        pytest.param(["cython"], TypeError, esc("backend must be a str") + ".*got list", id="list"),
    ],
)
def test_get_backend_rejects(name, error, match):
    with pytest.raises(error, match=match):
        fastbp.get_backend(name)


def test_get_backend_accepts_names_and_none(backend):
    assert fastbp.get_backend(backend).BACKEND_NAME == backend
    assert fastbp.get_backend(None).BACKEND_NAME == default_backend()


def test_bad_environment_backend_is_named(monkeypatch, backend):
    monkeypatch.setenv("FASTBP_BACKEND", "fortran")
    with pytest.raises(ValueError, match=esc("FASTBP_BACKEND='fortran' names no backend")):
        fastbp.get_backend()
    with pytest.raises(ValueError, match=esc("FASTBP_BACKEND='fortran' names no backend")):
        Network([2, 2])
    # An explicit backend does not consult the environment.
    assert Network([2, 2], backend=backend).backend == backend


# ---------------------------------------------------------------------------
# Without the compiled module
# ---------------------------------------------------------------------------


@pytest.fixture
def unbuilt_package(tmp_path):
    """A copy of the installed package's Python files without the compiled module."""
    source = pathlib.Path(fastbp.__file__).parent
    target = tmp_path / "fastbp"
    target.mkdir()
    for f in source.glob("*.py"):
        shutil.copy(f, target / f.name)
    return tmp_path


# setuptools' editable installs put a finder ahead of PYTHONPATH; drop it so
# the subprocess imports the copy under test in development trees too.
_NO_EDITABLE = "import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in str(getattr(f, '__module__', ''))]\n"


def _python(code, path, env_extra):
    code = _NO_EDITABLE + code
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(env_extra, PYTHONPATH=str(path))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=path, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_without_compiled_module_fails_loudly(unbuilt_package):
    result = _python("import fastbp", unbuilt_package, {})
    assert result.returncode != 0
    assert "fastbp._kernels" in result.stderr and "pip install ." in result.stderr
    assert "FASTBP_BACKEND=python" in result.stderr


def test_forced_reference_runs_without_compiled_module(unbuilt_package):
    code = (
        "import fastbp\n"
        "net = fastbp.Network([2, 2, 1], seed=0)\n"
        "assert net.backend == 'python', net.backend\n"
        "try:\n"
        "    fastbp.Network([2, 1], backend='cython')\n"
        "except ImportError as e:\n"
        "    print('refused:', e)\n"
    )
    result = _python(code, unbuilt_package, {ENV_VAR: "python"})
    assert result.returncode == 0, result.stderr
    assert "refused: fastbp's compiled kernels" in result.stdout


@pytest.mark.skipif(
    not os.environ.get("FASTBP_EXPECT_INSTALLED_IN"),
    reason="only when a test run names where fastbp must come from",
)
def test_imported_from_the_installed_package():
    # Set by the packaging test, which runs this suite against a wheel in a fresh venv.
    expected = pathlib.Path(os.environ["FASTBP_EXPECT_INSTALLED_IN"]).resolve()
    assert expected in pathlib.Path(fastbp.__file__).resolve().parents


# ---------------------------------------------------------------------------
# Copies from another build
# ---------------------------------------------------------------------------


def test_copies_from_another_build_are_left_out(monkeypatch):
    # A copy another finder supplies from elsewhere (an editable install's
    # finder, beside a source tree on PYTHONPATH that has the baseline copy
    # alone) is not mixed with this build's.
    backends = sys.modules["fastbp.backends"]  # (fastbp.backends is also a function's name)
    real_import = importlib.import_module
    baseline = real_import("fastbp._kernels")
    stray = types.ModuleType("fastbp._kernels_v3")
    stray.__file__ = "/elsewhere/fastbp/_kernels_v3.so"

    def import_module(name, *args):
        return stray if name == "fastbp._kernels_v3" else real_import(name, *args)

    monkeypatch.setattr(backends.importlib, "import_module", import_module)
    monkeypatch.setattr(baseline, "cpu_runs", lambda isa: isa in ("baseline", "x86-64-v3"))
    isa_modules.cache_clear()
    try:
        found = isa_modules()
        assert "x86-64-v3" not in found
        assert found["baseline"] is baseline
    finally:
        monkeypatch.undo()
        isa_modules.cache_clear()
