"""The optimizer peers (issue 11) compute what they claim, without timing
them (``pytest bench/test_optimizer_peers.py``, a few seconds):

* FANN's incremental training with momentum gives fastbp's costs for
  ``fastbp.SGD(lr, momentum=m)`` (FANN's ``dw = lr e a + m dw_prev`` is
  torch's momentum for a constant lr);
* the FANN peer's RPROP epochs are FANN's own ``fann_train_epoch``'s (the
  same weights, bit for bit), its costs those of the emulation of FANN's
  iRPROP- (``cpeers.fann_irpropm_costs``), and its first two epochs' costs
  fastbp's (``cpeers.torch_rprop_like_fann``); later epochs differ, which
  the emulation explains and a test shows;
* PyTorch's variants (torch.optim's SGD with momentum, Adam, Rprop, and the
  hand-written loops) give fastbp's costs;
* compare.py's check catches a peer that runs another rule.

fastbp runs on its compiled kernels when they have the optimizers, else on
the reference backend (the same rules).  Peers not installed here skip.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers
from peers import Task, Unavailable, cpeers

fastbp = pytest.importorskip("fastbp")
if not hasattr(fastbp, "SGD"):
    pytest.skip("this fastbp has no optimizers (before issue 11)", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("bench_compare", HERE / "compare.py")
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)

SIZES = (6, 5, 4, 3)
ROWS = 40
DTYPES = ["float64", "float32"]


def _data(dtype, rows=ROWS, sizes=SIZES):
    rng = np.random.default_rng(3)
    return rng.random((rows, sizes[0])).astype(dtype), rng.uniform(0.1, 0.9, (rows, sizes[-1])).astype(dtype)


def _task(dtype, lr, batch_size, optimizer, sizes=SIZES):
    net = fastbp.Network(sizes, seed=5, dtype=dtype)
    return Task(net.weights, net.biases, lr, batch_size, dtype, optimizer=optimizer)


def _fastbp_costs(task, X, Y, epochs):
    from peers.fastbp_peer import make_optimizer, train_keywords

    for backend in ("cython", "python"):
        net = fastbp.Network.from_weights(task.weights, task.biases, dtype=task.dtype, backend=backend)
        try:
            return net.train(X, Y, epochs=epochs, **train_keywords(task, make_optimizer(task)))
        except NotImplementedError:
            continue
    raise AssertionError("no backend trains with optimizers")


def _trainer(name, task, X, Y):
    peer = next(p for p in peers.all_peers() if p.name == name)
    try:
        peer.check(task)
    except Unavailable as why:
        pytest.skip(f"{name}: {why}")
    return peer.trainer(task, X, Y)


MOMENTUM = ("sgd", {"momentum": 0.875})
ADAM = ("adam", {"betas": (0.9, 0.999), "eps": 1e-8})
RPROP_LR, RPROP_HYPER = cpeers.torch_rprop_like_fann()
CASES = {  # name: (lr, batch_size, optimizer, peers)
    "momentum-online": (2**-4, 1, MOMENTUM, ["FANN", "torch-sgd", "torch-nograd", "torch-script"]),
    "adam-minibatch": (0.01, 16, ADAM, ["torch-sgd", "torch-nograd"]),  # 40 rows: a last batch of 8
    "rprop-fullbatch": (RPROP_LR, 0, ("rprop", RPROP_HYPER), ["torch-sgd", "torch-nograd"]),
}
PAIRS = [(case, name) for case, (*_, names) in CASES.items() for name in names]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case,name", PAIRS, ids=[f"{c}-{n}" for c, n in PAIRS])
def test_peer_costs_are_fastbps(case, name, dtype):
    lr, batch_size, optimizer, _ = CASES[case]
    task = _task(dtype, lr, batch_size, optimizer)
    X, Y = _data(dtype)
    trainer = _trainer(name, task, X, Y)
    epochs = 6
    costs = trainer.train(ROWS, epochs)
    expected = _fastbp_costs(task, X, Y, epochs)
    ok, diff = compare.check_costs(costs, expected, dtype)
    assert ok, f"{name} {case}: {costs} vs fastbp {expected} (rel diff {diff:.3g})"
    trainer.reset()  # the optimizer state is reset too: the same costs again
    assert np.array_equal(trainer.train(ROWS, epochs), costs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fann_rprop_is_fanns_own_epoch(dtype):
    """peer_train_rprop (the body of fann_train_epoch_irpropm, reading the
    outputs for J) leaves the weights fann_train_epoch leaves."""
    task = _task(dtype, RPROP_LR, 0, ("rprop", RPROP_HYPER))
    X, Y = _data(dtype)
    trainer = _trainer("FANN", task, X, Y)
    trainer.train(ROWS, 5)
    ours = trainer.fann_weights()
    trainer.reset()
    for _ in range(5):
        trainer.fann_epoch(ROWS)
    assert np.array_equal(ours, trainer.fann_weights())


@pytest.mark.parametrize("dtype", DTYPES)
def test_fann_rprop_against_its_rule_and_fastbp(dtype):
    task = _task(dtype, RPROP_LR, 0, ("rprop", RPROP_HYPER))
    X, Y = _data(dtype)
    trainer = _trainer("FANN", task, X, Y)
    epochs = 30
    costs = trainer.train(ROWS, epochs)
    rule, agree, _ = trainer.rule_costs(ROWS, epochs)
    ok, diff = compare.check_costs(costs, rule, dtype)
    assert ok, f"FANN's RPROP is not the emulated iRPROP-: {costs} vs {rule} ({diff:.3g})"
    expected = _fastbp_costs(task, X, Y, epochs)
    assert agree == 2
    assert compare.check_costs(costs[:agree], expected[:agree], dtype)[0]
    # ...and the rules do differ later (a sign change: FANN grows the next step and moves the weight)
    assert not compare.check_costs(costs, expected, dtype)[0]


def test_fann_momentum_differs_without_momentum():
    """The momentum check can fail: FANN without momentum is not fastbp's SGD(momentum)."""
    task = _task("float64", 2**-4, 1, MOMENTUM)
    plain = _task("float64", 2**-4, 1, ("sgd", {"momentum": 0.0}))
    X, Y = _data("float64")
    costs = _trainer("FANN", plain, X, Y).train(ROWS, 4)
    assert not compare.check_costs(costs, _fastbp_costs(task, X, Y, 4), "float64")[0]


def test_optimizer_tasks_of_compare():
    """compare.py's issue-11 workloads build valid tasks, in the modes they declare."""
    for workload, (optimizer, modes) in compare.OPTIMIZER_TASKS.items():
        assert workload in compare.WORKLOADS
        for mode in modes:
            task = compare.make_task(workload, "float64", compare.MODES[mode])
            assert task.optimizer == (optimizer[0], optimizer[1])
            assert task.full_batch == (optimizer[0] == "rprop")
    assert compare.WORKLOADS["21-16-8-3:rprop"][2] == RPROP_LR
    assert compare.OPTIMIZER_TASKS["21-16-8-3:rprop"][0][1] == RPROP_HYPER
