"""Benchmarks of whole training runs and batch evaluation through the public
API, with the hand-written C loop and FANN on the same work for scale."""

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark", reason="pip install pytest-benchmark (or .[bench])")


@pytest.mark.parametrize("batch_size", [1, 64], ids=["online", "minibatch64"])
def test_train_epoch(benchmark, workload, dtype, data, network, lr, batch_size):
    X, Y = data
    benchmark.group = f"train {workload} {'online' if batch_size == 1 else 'mini-batch 64'} {dtype}"
    benchmark.extra_info["samples"] = len(X)
    costs = benchmark(network.train, X, Y, epochs=1, lr=lr, batch_size=batch_size)
    assert costs.shape == (1,) and np.isfinite(costs).all()


@pytest.mark.parametrize("peer_name", ["C", "FANN"])
@pytest.mark.parametrize("batch_size", [1, 64], ids=["online", "minibatch64"])
def test_train_epoch_peer(benchmark, workload, dtype, data, network, lr, batch_size, peer_name):
    from peers import Task, Unavailable, all_peers

    X, Y = data
    peer = next(p for p in all_peers() if p.name == peer_name)
    task = Task(network.weights, network.biases, lr, batch_size, dtype)
    try:
        peer.check(task)
    except Unavailable as why:
        pytest.skip(f"{peer_name}: {why}")
    trainer = peer.trainer(task, X, Y)
    benchmark.group = f"train {workload} {'online' if batch_size == 1 else 'mini-batch 64'} {dtype}"
    benchmark.extra_info["samples"] = len(X)
    # Each round trains on from wherever the last one left the weights, as
    # the fastbp benchmark does: the work per sample is the same.
    costs = benchmark(trainer.train, len(X), 1)
    assert np.isfinite(costs).all()


def test_forward_batch(benchmark, workload, dtype, data, network):
    X, _ = data
    benchmark.group = f"forward {workload} {dtype}"
    out = benchmark(network.forward, X)
    assert out.shape == (len(X), network.layer_sizes[-1])


def test_mean_cost(benchmark, workload, dtype, data, network):
    X, Y = data
    benchmark.group = f"cost {workload} {dtype}"
    assert np.isfinite(benchmark(network.cost, X, Y))


def test_two_networks_in_two_threads(benchmark, workload, dtype, data, lr):
    """Two networks trained at once from two threads (fastbp releases the GIL):
    compare this benchmark's time with test_train_epoch[online] of the same
    workload; the same time means twice the throughput."""
    from concurrent.futures import ThreadPoolExecutor

    import fastbp

    X, Y = data
    sizes = tuple(int(n) for n in workload.split("-"))
    nets = [fastbp.Network(sizes, seed=seed, dtype=dtype) for seed in (1, 2)]
    benchmark.group = f"train {workload} online {dtype}"
    with ThreadPoolExecutor(2) as pool:

        def both():
            return [f.result() for f in [pool.submit(net.train, X, Y, epochs=1, lr=lr) for net in nets]]

        results = benchmark(both)
    assert all(np.isfinite(costs).all() for costs in results)
