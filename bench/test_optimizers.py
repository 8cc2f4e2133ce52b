"""Benchmarks of training with the optimizers (issue 11), through the public
API, with FANN and PyTorch on the same work for scale (the issue's speed
rows; compare.py measures them side by side with the costs checked)."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark", reason="pip install pytest-benchmark (or .[bench])")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import cpeers

RPROP_LR, RPROP_HYPER = cpeers.torch_rprop_like_fann()
# name: (layer sizes, rows per timed call, batch_size (0: all rows), lr, optimizer, peers)
OPTIMIZER_WORKLOADS = {
    "64-32-10:momentum": (
        (64, 32, 10),
        10_000,
        1,
        2**-8,
        ("sgd", {"momentum": 0.875}),
        ["FANN", "torch-script"],
    ),
    "784-128-10:momentum": (
        (784, 128, 10),
        1_000,
        1,
        2**-8,
        ("sgd", {"momentum": 0.875}),
        ["torch-nograd", "torch-script"],
    ),
    "784-128-10:adam": ((784, 128, 10), 2_000, 64, 0.001, ("adam", {}), ["torch-sgd", "torch-nograd"]),
    "21-16-8-3:rprop": ((21, 16, 8, 3), 3600, 0, RPROP_LR, ("rprop", RPROP_HYPER), ["FANN"]),
    "125-32-2:rprop": ((125, 32, 2), 4062, 0, RPROP_LR, ("rprop", RPROP_HYPER), ["FANN"]),
}


@pytest.fixture(params=list(OPTIMIZER_WORKLOADS))
def optimizer_workload(request):
    return request.param


def _setup(name, dtype):
    sizes, rows, batch_size, lr, optimizer, _ = OPTIMIZER_WORKLOADS[name]
    rng = np.random.default_rng(0)
    X, Y = rng.random((rows, sizes[0])).astype(dtype), rng.uniform(0.1, 0.9, (rows, sizes[-1])).astype(dtype)
    from peers import Task

    import fastbp

    if not hasattr(fastbp, "SGD"):
        pytest.skip("this fastbp has no optimizers")
    net = fastbp.Network(sizes, seed=1, dtype=dtype)
    return net, X, Y, Task(net.weights, net.biases, lr, batch_size, dtype, optimizer=optimizer)


def _group(name, dtype):
    mode = {1: "online", 0: "full batch"}.get(OPTIMIZER_WORKLOADS[name][2], "mini-batch 64")
    return f"train {name} {mode} {dtype}"


def test_train_optimizer(benchmark, optimizer_workload, dtype):
    from peers.fastbp_peer import make_optimizer, train_keywords

    net, X, Y, task = _setup(optimizer_workload, dtype)
    keywords = train_keywords(task, make_optimizer(task))
    try:
        net.train(X[:2], Y[:2], epochs=1, **keywords)
    except NotImplementedError as why:
        pytest.skip(f"fastbp's compiled kernels: {why}")
    benchmark.group = _group(optimizer_workload, dtype)
    benchmark.extra_info["samples"] = len(X)
    # Each round trains on from where the last one left the weights and the optimizer's state.
    costs = benchmark(net.train, X, Y, epochs=1, **keywords)
    assert costs.shape == (1,) and np.isfinite(costs).all()


@pytest.mark.parametrize("peer_index", [0, 1], ids=["peer1", "peer2"])
def test_train_optimizer_peer(benchmark, optimizer_workload, dtype, peer_index):
    from peers import Unavailable, all_peers

    names = OPTIMIZER_WORKLOADS[optimizer_workload][5]
    if peer_index >= len(names):
        pytest.skip("no second peer for this workload")
    _, X, Y, task = _setup(optimizer_workload, dtype)
    peer = next(p for p in all_peers() if p.name == names[peer_index])
    try:
        peer.check(task)
    except Unavailable as why:
        pytest.skip(f"{peer.name}: {why}")
    trainer = peer.trainer(task, X, Y)
    benchmark.group = _group(optimizer_workload, dtype)
    benchmark.extra_info.update(samples=len(X), peer=peer.name)
    costs = benchmark(trainer.train, len(X), 1)
    assert np.isfinite(costs).all()
