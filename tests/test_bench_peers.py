"""The benchmark's peers (bench/peers) compute what fastbp computes.

bench/compare.py times every peer and trusts its timing only because each
peer's per-epoch costs match fastbp's on the same data and initial weights.
This runs every installed peer on a tiny workload (a 3-layer network so the
hidden-delta recursion is exercised, online and mini-batch with a last,
smaller batch, two epochs) and checks its costs against fastbp's, and that
the check itself catches a peer doing different work.  Peers that are not
installed here (PyTorch, FANN, a C compiler) are skipped, each with its reason.
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
import peers  # noqa: E402
from peers import Task, Unavailable, measure  # noqa: E402

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


def test_cost_check_catches_different_work():
    """A peer that trains with another learning rate fails the check."""
    X, Y = _data("float64")
    task = _task("float64", 1)
    other = Task(task.weights, task.biases, LR * 1.001, 1, "float64")
    costs = measure(_peer("numpy").trainer(other, X, Y), ROWS, EPOCHS, repeats=1).costs
    ok, diff = compare.check_costs(costs, _fastbp_costs(task, X, Y), "float64")
    assert not ok and diff > compare.RTOL["float64"]
