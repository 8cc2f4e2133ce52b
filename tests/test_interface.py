"""The two backends are one interface: the kernel modules of the reference
(``fastbp.reference``, pure Python) and of the compiled kernels (every copy,
``fastbp._kernels`` and those built for wider instruction sets).

* The same functions, with the same parameters (names, kinds, defaults), and
  the shipped stub ``fastbp/_kernels.pyi`` declares exactly them (``stubtest``
  checks the types: tests/test_typing.py).
* The same memory contract: a direct call with mismatched buffers raises
  ValueError in both instead of touching memory outside the arrays.
* The same refusals at the public boundary: both backends reject bad input
  with the same exception and message.

That both compute the same values is tests/test_equivalence.py's (and, for
the models of issue 10, tests/test_activations.py's).
"""

import ast
import inspect
import pathlib

import numpy as np
import pytest
from support import make_net
from test_hostile_input import MIXED_CASES, REJECTED  # the corpora, reused as they are
from test_layout import BAD_VALUE_CALLS, LAYOUTS

import fastbp
import fastbp.reference
from fastbp.backends import isa_modules

INTERFACE = fastbp.reference.__all__


# ---------------------------------------------------------------------------
# The same functions and signatures
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", INTERFACE)
def test_same_functions_and_signatures(name):
    reference = inspect.signature(getattr(fastbp.get_backend("python"), name))
    compiled = inspect.signature(getattr(fastbp.get_backend("cython"), name))
    assert list(compiled.parameters) == list(reference.parameters)
    for p_ref, p_comp in zip(reference.parameters.values(), compiled.parameters.values()):
        assert p_comp.kind == p_ref.kind, (name, p_ref.name)
        assert p_comp.default == p_ref.default, (name, p_ref.name)


def test_compiled_exposes_the_interface_and_nothing_missing():
    # Every compiled copy this CPU runs (the default one among them).
    assert fastbp.get_backend("cython") in isa_modules().values()
    for isa, compiled in isa_modules().items():
        missing = [n for n in INTERFACE if not callable(getattr(compiled, n, None))]
        assert missing == [], f"the {isa} copy of the kernels has no {missing}"


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


# ---------------------------------------------------------------------------
# The kernels' memory contract: a direct call with mismatched buffers raises
# ValueError in both backends instead of touching memory outside the arrays.
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# The same refusals at the public boundary
# ---------------------------------------------------------------------------


def test_both_backends_reject_with_the_same_message():
    cases = [c[1] for c in MIXED_CASES] + [
        lambda n, v=v, c=c: c(n, LAYOUTS["fortran"](v, None)) for v, c, _ in BAD_VALUE_CALLS.values()
    ]
    for call in cases:
        messages = []
        for backend in fastbp.backends():
            with pytest.raises(REJECTED) as info:
                call(make_net(backend))
            messages.append((type(info.value), str(info.value)))
        assert messages[0] == messages[1]
