"""The backend registry, and the promise that both backends are one interface."""

import ast
import importlib.machinery
import inspect
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

import fastbp
import fastbp.reference
from fastbp.backends import ENV_VAR, ISA_VAR, default_backend, isa_modules

INTERFACE = fastbp.reference.__all__


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
        results[isa] = [costs, net.forward(X), net.forward(X[0]), *net.weights, *net.biases, *dW]
    first = next(iter(results.values()))
    for isa, arrays in results.items():
        for a, b in zip(arrays, first):
            np.testing.assert_array_equal(a, b, err_msg=isa)


def test_registry_names():
    assert fastbp.backends() == ("cython", "python")
    for name in fastbp.backends():
        assert fastbp.get_backend(name).BACKEND_NAME == name


@pytest.mark.parametrize("name", INTERFACE)
def test_same_functions_and_signatures(name):
    reference = inspect.signature(getattr(fastbp.get_backend("python"), name))
    compiled = inspect.signature(getattr(fastbp.get_backend("cython"), name))
    assert list(compiled.parameters) == list(reference.parameters)
    for p_ref, p_comp in zip(reference.parameters.values(), compiled.parameters.values()):
        assert p_comp.kind == p_ref.kind, (name, p_ref.name)
        assert p_comp.default == p_ref.default, (name, p_ref.name)


def test_compiled_exposes_the_interface_and_nothing_missing():
    compiled = fastbp.get_backend("cython")
    missing = [n for n in INTERFACE if not callable(getattr(compiled, n, None))]
    assert missing == []


def test_stub_matches_compiled_module():
    # The shipped .pyi declares exactly the interface, with the same parameter names.
    stub = pathlib.Path(fastbp.__file__).with_name("_kernels.pyi")
    assert stub.is_file(), "fastbp/_kernels.pyi is not installed beside the package"
    assert pathlib.Path(fastbp.__file__).with_name("py.typed").is_file()
    tree = ast.parse(stub.read_text())
    declared = {f.name: [a.arg for a in f.args.args] for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert sorted(declared) == sorted([*INTERFACE, "cpu_runs"])
    compiled = fastbp.get_backend("cython")
    for name, params in declared.items():
        assert params == list(inspect.signature(getattr(compiled, name)).parameters), name


def test_default_backend_and_env_switch(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_backend() == "cython"
    assert fastbp.Network([2, 1]).backend == "cython"
    monkeypatch.setenv(ENV_VAR, "python")
    assert default_backend() == "python"
    assert fastbp.Network([2, 1]).backend == "python"
    monkeypatch.setenv(ENV_VAR, "fortran")
    with pytest.raises(ValueError, match="FASTBP_BACKEND='fortran'"):
        fastbp.Network([2, 1])


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend='numba'"):
        fastbp.get_backend("numba")
    with pytest.raises(TypeError, match="backend must be a str"):
        fastbp.get_backend(1)
    with pytest.raises(ValueError, match="backend='numba'"):
        fastbp.Network([2, 2], backend="numba")


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


# The kernels' memory contract: a direct call with mismatched buffers raises
# ValueError in both backends instead of touching memory outside the arrays.


def _network_buffers(dtype=np.float64):
    sizes = np.array([3, 4, 2], dtype=np.intp)
    params = np.zeros(4 * 4 + 2 * 5, dtype=dtype)
    # activations: a[0..2] (3 + 4 + 2) and z[2] (2); deltas: delta[1..2].
    return sizes, params, np.zeros(11, dtype=dtype), np.zeros(6, dtype=dtype)


def test_contract_per_layer(kernels):
    W = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"len\(x\)=3 does not match"):
        kernels.forward_layer(W, np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"len\(out\)=2"):
        kernels.forward_layer(W, np.ones(3), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"len\(delta_next\)=2"):
        kernels.hidden_delta(W, np.ones(2), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"len\(a_prev\)=5"):
        kernels.update(W.copy(), np.ones(3), np.ones(3), np.ones(5), 0.1, True)
    with pytest.raises(ValueError, match="equal lengths"):
        kernels.sigmoid(np.ones(3), np.zeros(2))
    with pytest.raises(ValueError, match="equal lengths"):
        kernels.output_delta(np.ones(3), np.ones(3), np.zeros(4))


def test_contract_network(kernels):
    sizes, params, activations, deltas = _network_buffers()
    X, Y = np.ones((5, 3)), np.ones((5, 2))
    with pytest.raises(ValueError, match=r"len\(params\)=25 but layer sizes \[3, 4, 2\] need 26"):
        kernels.forward(params[:-1], sizes, X[0], activations)
    with pytest.raises(ValueError, match=r"len\(activations\)=10 but layer sizes \[3, 4, 2\] need 11"):
        kernels.forward(params, sizes, X[0], activations[:-1])
    with pytest.raises(ValueError, match=r"len\(deltas\)=5"):
        kernels.train_step(params, sizes, X[0], Y[0], 0.1, True, activations, deltas[:-1])
    with pytest.raises(ValueError, match=r"len\(x\)=2 but the network needs 3"):
        kernels.forward(params, sizes, X[0, :2].copy(), activations)
    costs, backup, state = np.zeros(2), np.zeros_like(params), np.zeros(1, dtype=np.uint64)
    big_activations, big_deltas = np.zeros(2 * len(activations)), np.zeros(2 * len(deltas))

    def train(order, activations=big_activations, deltas=big_deltas, batch_size=1, state=state):
        order = np.array(order, dtype=np.intp)
        kernels.train(
            params,
            sizes,
            X,
            Y,
            order,
            state,
            False,
            0.1,
            batch_size,
            True,
            costs,
            activations,
            deltas,
            backup,
        )

    with pytest.raises(ValueError, match="outside"):
        train([0, 1, 2, 3, 5])
    with pytest.raises(ValueError, match="outside"):
        train([0, 1, 2, 3, -1])
    with pytest.raises(ValueError, match=r"one index per row of X \(5\) or none, got 4"):
        train([0, 1, 2, 3])
    with pytest.raises(ValueError, match="shuffle needs an order"):
        order = np.zeros(0, dtype=np.intp)
        kernels.train(
            params, sizes, X, Y, order, state, True, 0.1, 1, True, costs, big_activations, big_deltas, backup
        )
    with pytest.raises(ValueError, match=r"len\(activations\)=11 .* batch_size=1 need 22"):
        train(range(5), activations=activations)
    with pytest.raises(ValueError, match=r"len\(deltas\)=12 .* batch_size=3 need 18"):
        train(range(5), batch_size=3, activations=np.zeros(33))
    with pytest.raises(ValueError, match="rng_state must hold 1 value"):
        train(range(5), state=np.zeros(2, dtype=np.uint64))
    with pytest.raises(ValueError, match="batch_size must be in"):
        train(range(5), batch_size=0)
    with pytest.raises(ValueError, match="positive multiple"):
        kernels.forward_batch(params, sizes, X, np.zeros((5, 2)), np.zeros(len(activations) + 1))
    with pytest.raises(ValueError, match=r"Y must have shape \(5, 2\)"):
        kernels.mean_cost(params, sizes, X, Y[:4], activations)
    with pytest.raises(ValueError, match="every layer size must be >= 1"):
        kernels.forward(params, np.array([3, 0, 2], dtype=np.intp), X[0], activations)
    # The model codes: one activation per layer and the loss, in the tables'
    # range and in the combinations fastbp._model allows.
    for model, match in (
        ([0, 0], r"len\(model\)=2 but .* need 3 codes"),
        ([0, 0, 0, 0], r"len\(model\)=4"),
        ([0, 6, 0], "codes outside"),
        ([-1, 0, 0], "codes outside"),
        ([0, 0, 2], "codes outside"),
        ([5, 5, 1], "softmax is for the output layer only"),
        ([0, 1, 1], "needs outputs that are probabilities"),
        ([0, 5, 0], "supported with loss=.cross_entropy. only"),
    ):
        model = np.array(model, dtype=np.intp)
        with pytest.raises(ValueError, match=match):
            kernels.forward(params, sizes, X[0], activations, model)
        with pytest.raises(ValueError, match=match):
            kernels.train(
                params,
                sizes,
                X,
                Y,
                np.zeros(0, dtype=np.intp),
                state,
                False,
                0.1,
                1,
                True,
                costs,
                big_activations,
                big_deltas,
                backup,
                model,
            )
    assert not params.any(), "a refused call wrote to params"


def test_compiled_refuses_mixed_dtypes():
    # Fused kernels take one floating dtype per call; a mix is refused, never reinterpreted.
    compiled = fastbp.get_backend("cython")
    with pytest.raises((TypeError, ValueError), match=r"dtype|signature"):
        compiled.sigmoid(np.zeros(3, dtype=np.float32), np.zeros(3, dtype=np.float64))
    with pytest.raises((TypeError, ValueError), match=r"dtype|signature"):
        compiled.sigmoid(np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64))


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
