"""The benchmark's peers (bench/peers) compute what fastbp computes.

bench/compare.py times every peer and trusts its timing only because each
peer's per-epoch costs match fastbp's on the same data and initial weights.
This runs every installed peer on a tiny workload (a 3-layer network so the
hidden-delta recursion is exercised, online and mini-batch with a last,
smaller batch, two epochs) and checks its costs against fastbp's, and that
the check itself catches a peer doing different work.  Peers that are not
installed here (PyTorch, FANN, a C compiler) are skipped, each with its reason.

The same for issue 10's models (other activations per layer, cross-entropy):
every peer that can run a model (FANN has no ReLU, softmax or cross-entropy)
must compute fastbp's costs on it, and FANN's tanh (FANN_SIGMOID_SYMMETRIC, steepness 1, the halved
output error made up by twice the learning rate) must clip no derivative.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp

BENCH = Path(__file__).resolve().parent.parent / "bench"
if not (BENCH / "peers" / "__init__.py").exists():  # e.g. an unpacked sdist: bench/ is not shipped
    pytest.skip("bench/ is not in this source tree", allow_module_level=True)
sys.path.insert(0, str(BENCH))
import peers
from peers import Task, Unavailable, measure

# compare.py's tolerance: the check the benchmark applies is the one tested.
_spec = importlib.util.spec_from_file_location("bench_compare", BENCH / "compare.py")
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)

SIZES = (5, 4, 3, 2)
ROWS, EPOCHS, LR = 10, 2, 0.25
PEER_NAMES = [p.name for p in peers.all_peers() if p.name != "fastbp"]


def _data(dtype):
    rng = np.random.default_rng(42)
    return rng.random((ROWS, SIZES[0])).astype(dtype), rng.uniform(0.1, 0.9, (ROWS, SIZES[-1])).astype(dtype)


def _task(dtype, batch_size):
    net = fastbp.Network(SIZES, seed=7, dtype=dtype)
    return Task(net.weights, net.biases, LR, batch_size, dtype)


def _fastbp_costs(task, X, Y):
    net = fastbp.Network.from_weights(task.weights, task.biases, dtype=task.dtype)
    return net.train(X, Y, epochs=EPOCHS, lr=task.lr, batch_size=task.batch_size)


def _peer(name):
    return next(p for p in peers.all_peers() if p.name == name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [1, 3], ids=["online", "minibatch3"])
@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_computes_fastbps_costs(name, batch_size, dtype):
    X, Y = _data(dtype)
    task = _task(dtype, batch_size)
    peer = _peer(name)
    try:
        peer.check(task)
    except Unavailable as why:
        pytest.skip(f"{name}: {why}")
    result = measure(peer.trainer(task, X, Y), ROWS, EPOCHS, repeats=2)  # repeats must agree, too
    expected = _fastbp_costs(task, X, Y)
    ok, diff = compare.check_costs(result.costs, expected, dtype)
    assert ok, f"{name}: costs {result.costs} vs fastbp {expected} (max relative difference {diff:.3g})"
    assert result.costs[1] < result.costs[0]  # it trained: the second epoch's cost is lower


def test_fann_clips_no_derivative_on_this_workload():
    """FANN clips a to [0.01, 0.99] inside its sigmoid derivative; the counter
    that explains a FANN mismatch must see none where the costs match."""
    task = _task("float64", 1)
    try:
        _peer("FANN").check(task)
    except Unavailable as why:
        pytest.skip(f"FANN: {why}")
    X, Y = _data("float64")
    assert _peer("FANN").trainer(task, X, Y).clipped_derivatives(ROWS, EPOCHS) == 0
    # ...and counts them when a huge learning rate saturates the neurons.
    saturating = Task(task.weights, task.biases, 64.0, 1, "float64")
    assert _peer("FANN").trainer(saturating, X, Y).clipped_derivatives(ROWS, EPOCHS) > 0


# Issue 10: (activation per weight layer, loss) on SIZES, and the data each needs.
MODELS = {
    "relu-softmax-ce": (("relu", "relu", "softmax"), "cross_entropy"),
    "tanh-se": (("tanh", "tanh", "tanh"), "squared_error"),
    "leaky-tanh-sigmoid-ce": (("leaky_relu", "tanh", "sigmoid"), "cross_entropy"),
    "sigmoid-relu-identity-se": (("sigmoid", "relu", "identity"), "squared_error"),
    "tanh-sigmoid-identity-se": (("tanh", "sigmoid", "identity"), "squared_error"),  # FANN runs this mix too
}


def _model_data(activations, dtype):
    """Inputs U(-1, 1); targets one-hot for softmax, U(-0.5, 0.5) for tanh and
    identity outputs, U(0.1, 0.9) for sigmoid outputs."""
    rng = np.random.default_rng(43)
    X = rng.uniform(-1, 1, (ROWS, SIZES[0]))
    if activations[-1] == "softmax":
        Y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], ROWS)]
    elif activations[-1] == "sigmoid":
        Y = rng.uniform(0.1, 0.9, (ROWS, SIZES[-1]))
    else:
        Y = rng.uniform(-0.5, 0.5, (ROWS, SIZES[-1]))
    return X.astype(dtype), Y.astype(dtype)


def _model_task(model, dtype, batch_size, lr=LR):
    activations, loss = MODELS[model]
    net = fastbp.Network(SIZES, seed=7, dtype=dtype)  # any weights do; these exist before issue 10 too
    return Task(net.weights, net.biases, lr, batch_size, dtype, activations=activations, loss=loss)


def _fastbp_model_costs(task, X, Y):
    try:
        net = fastbp.Network.from_weights(
            task.weights, task.biases, dtype=task.dtype, **task.network_keywords()
        )
    except TypeError as error:
        pytest.skip(f"this fastbp has no activation/loss keywords yet (issue 10's model): {error}")
    return net.train(X, Y, epochs=EPOCHS, lr=task.lr, batch_size=task.batch_size)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [1, 3], ids=["online", "minibatch3"])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_computes_fastbps_costs_on_other_models(name, model, batch_size, dtype):
    activations, _ = MODELS[model]
    X, Y = _model_data(activations, dtype)
    task = _model_task(model, dtype, batch_size)
    peer = _peer(name)
    try:
        peer.check(task)
    except Unavailable as why:
        pytest.skip(f"{name}: {why}")
    expected = _fastbp_model_costs(task, X, Y)
    result = measure(peer.trainer(task, X, Y), ROWS, EPOCHS, repeats=2)
    ok, diff = compare.check_costs(result.costs, expected, dtype)
    assert ok, (
        f"{name} on {model}: costs {result.costs} vs fastbp {expected} (max relative difference {diff:.3g})"
    )
    assert result.costs[1] < result.costs[0]


def test_peers_that_cannot_run_a_model_say_so():
    """n/a, not a wrong answer: FANN has no ReLU, softmax or cross-entropy; and
    the peers refuse models fastbp refuses."""
    relu = _model_task("relu-softmax-ce", "float64", 1)
    with pytest.raises(Unavailable, match="n/a"):
        _peer("FANN").check(relu)
    for activations, loss in [
        (("relu", "softmax"), "squared_error"),
        (("softmax", "softmax"), "cross_entropy"),
        (("relu", "tanh"), "cross_entropy"),
        (("relu", "swish"), "squared_error"),
    ]:
        with pytest.raises(ValueError):
            Task(relu.weights[:2], relu.biases[:2], LR, activations=activations, loss=loss)


def test_peers_use_fastbps_names_and_codes():
    """The peers' copy of the names (their index is the code the TorchScript
    loop and native.c switch on) is fastbp's."""
    model = pytest.importorskip("fastbp._model", reason="this fastbp has no fastbp._model (issue 10)")
    assert peers.ACTIVATIONS == model.ACTIVATIONS and peers.LOSSES == model.LOSSES
    assert peers.LEAKY_SLOPE == model.LEAKY_SLOPE


def test_fann_tanh_clips_no_derivative_on_this_workload():
    """FANN clips a to [-0.98, 0.98] inside its tanh derivative; none here, some
    when a huge learning rate saturates the neurons."""
    task = _model_task("tanh-se", "float64", 1)
    try:
        _peer("FANN").check(task)
    except Unavailable as why:
        pytest.skip(f"FANN: {why}")
    X, Y = _model_data(MODELS["tanh-se"][0], "float64")
    assert _peer("FANN").trainer(task, X, Y).clipped_derivatives(ROWS, EPOCHS) == 0
    saturating = _model_task("tanh-se", "float64", 1, lr=64.0)
    assert _peer("FANN").trainer(saturating, X, Y).clipped_derivatives(ROWS, EPOCHS) > 0


@pytest.mark.parametrize("workload", list(compare.MODELS))
def test_issue10_workloads(workload):
    """compare.py's issue-10 workloads: valid models, and data their losses accept."""
    activations, loss = compare.model_of(workload)
    assert (activations[-1], loss) == compare.MODELS[workload][1:3]
    X, Y = compare.make_data(workload, "float32", rows=200)
    assert X.shape == (200, compare.WORKLOADS[workload][0][0]) and Y.dtype == np.float32
    if activations[-1] == "softmax":
        assert set(np.unique(Y)) == {0.0, 1.0} and (Y.sum(axis=1) == 1).all()
        assert len(np.unique(Y.argmax(axis=1))) > 1  # the teacher uses more than one class
    else:
        assert np.abs(Y).max() <= 0.5 and X.min() < 0
    task = compare.make_task(workload, "float64", 1)
    assert task.activations == activations and task.loss == loss
    X50, Y50 = compare.make_data(
        workload, "float32", rows=50
    )  # fewer rows (--rows, --quick): the same first rows
    assert np.array_equal(X50, X[:50]) and np.array_equal(Y50, Y[:50])


def test_cost_check_catches_different_work():
    """A peer that trains with another learning rate fails the check."""
    X, Y = _data("float64")
    task = _task("float64", 1)
    other = Task(task.weights, task.biases, LR * 1.001, 1, "float64")
    costs = measure(_peer("numpy").trainer(other, X, Y), ROWS, EPOCHS, repeats=1).costs
    ok, diff = compare.check_costs(costs, _fastbp_costs(task, X, Y), "float64")
    assert not ok and diff > compare.RTOL["float64"]
