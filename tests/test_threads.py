"""Concurrent calls (issue 4, part 4), on both backends.

The contract (docs/reliability.md): ``forward``, ``cost`` and ``gradients``
use per-call scratch buffers, so any number of threads may evaluate one
network at once; ``step`` and ``train`` on one network take turns (a lock),
each call running whole; the kernels keep no state between calls, so
different networks train independently in parallel.  The compiled kernels
release the GIL, so these threads really do run at the same time.

The cases:

* eight threads evaluating the same data on one network get bit-identical
  results; two loops of ``step`` on one network end with finite weights;
* threads evaluating *different* data on one network (a scratch buffer shared
  between calls would mix their samples, which identical data cannot show)
  get exactly their serial results;
* two ``train`` calls on one network (with the same settings or different
  ones) end in exactly one of the two serial orders, and a ``train`` call
  racing a loop of ``step`` calls in exactly one of its serial orders (the
  train call placed between two of the steps), with the same returned costs:
  neither call was cut into pieces;
* ``forward``/``cost``/``gradients``, pickling and saving while another
  thread trains never fail and give finite values, and do not change what the
  training computes;
* several networks trained in as many threads end exactly as when trained
  one after the other (shuffled, mini-batches, both dtypes);
* a callback that calls back into the network it is training neither
  deadlocks nor corrupts it.
"""

import pickle
import threading

import numpy as np
import pytest
from support import all_params, run_in_threads

import fastbp
from fastbp import Network

SIZES = [3, 8, 2]


def data(n, seed, sizes=SIZES):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (n, sizes[0])), rng.uniform(0.05, 0.95, (n, sizes[-1]))


def _saved_and_loaded(net, path):
    net.save(path)
    return fastbp.load(path, backend=net.backend)


def _big(backend):
    return backend == "cython"


# ---------------------------------------------------------------------------
# Many readers
# ---------------------------------------------------------------------------


def test_forward_from_many_threads_is_bit_identical(backend, dtype):
    net = Network([3, 16, 4], seed=0, dtype=dtype, backend=backend)
    n = 400 if backend == "cython" else 40
    X, Y = data(n, seed=0, sizes=[3, 16, 4])
    X, Y = X.astype(dtype), Y.astype(dtype)
    expected_out = net.forward(X)
    expected_rows = [net.forward(x) for x in X[:10]]
    expected_cost = net.cost(X, Y)
    expected_grads = net.gradients(X[0], Y[0])
    rounds = 20 if backend == "cython" else 3

    def work():
        results = []
        for _ in range(rounds):
            results.append(
                (net.forward(X), [net.forward(x) for x in X[:10]], net.cost(X, Y), net.gradients(X[0], Y[0]))
            )
        return results

    for results in run_in_threads([work] * 8):
        for out, rows, cost, (dW, db) in results:
            np.testing.assert_array_equal(out, expected_out, strict=True)
            for a, b in zip(rows, expected_rows):
                np.testing.assert_array_equal(a, b, strict=True)
            assert cost == expected_cost
            for a, b in zip((*dW, *db), (*expected_grads[0], *expected_grads[1])):
                np.testing.assert_array_equal(a, b, strict=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threads_evaluating_different_data_get_their_serial_results(backend, dtype):
    sizes = [4, 32, 3]
    net = Network(sizes, seed=0, dtype=dtype, backend=backend)
    n_threads, rows, rounds = (8, 200, 15) if _big(backend) else (4, 20, 2)
    inputs = [data(rows, seed=100 + t, sizes=sizes) for t in range(n_threads)]

    def evaluate(X, Y):
        return (
            net.forward(X),
            [net.forward(x) for x in X[:10]],
            net.cost(X, Y),
            net.cost(X[3], Y[3]),
            net.gradients(X[0], Y[0]),
        )

    expected = [evaluate(X, Y) for X, Y in inputs]  # serially, before any thread starts
    before = all_params(net)

    def work(t):
        return [evaluate(*inputs[t]) for _ in range(rounds)]

    for t, results in enumerate(run_in_threads([lambda t=t: work(t) for t in range(n_threads)])):
        out, rows_out, cost, cost_one, (dW, db) = expected[t]
        for got_out, got_rows, got_cost, got_cost_one, (got_dW, got_db) in results:
            np.testing.assert_array_equal(got_out, out, strict=True)
            for a, b in zip(got_rows, rows_out, strict=True):
                np.testing.assert_array_equal(a, b, strict=True)
            assert got_cost == cost and got_cost_one == cost_one
            for a, b in zip((*got_dW, *got_db), (*dW, *db), strict=True):
                np.testing.assert_array_equal(a, b, strict=True)
    np.testing.assert_array_equal(all_params(net), before, strict=True)


# ---------------------------------------------------------------------------
# Two writers on one network
# ---------------------------------------------------------------------------


def test_steps_from_two_threads_complete_without_corruption(backend):
    net = Network([3, 5, 2], seed=0, backend=backend)
    X, Y = data(2, seed=0, sizes=[3, 5, 2])
    steps = 100 if backend == "cython" else 20
    Js = run_in_threads([lambda i=i: [net.step(X[i], Y[i], 0.5) for _ in range(steps)] for i in range(2)])
    assert all(len(J) == steps and np.isfinite(J).all() for J in Js)
    assert np.isfinite(all_params(net)).all()


def _serial_orders(make_net, train_call, step_calls):
    """The outcome of every serial order: ``k`` steps, the train call, then the
    remaining steps, for ``k = 0 .. len(step_calls)``."""
    outcomes = []
    for k in range(len(step_calls) + 1):
        net = make_net()
        Js = [step(net) for step in step_calls[:k]]
        costs = train_call(net)
        Js += [step(net) for step in step_calls[k:]]
        outcomes.append((all_params(net), costs, Js))
    return outcomes


@pytest.mark.parametrize("batch_size", [1, 3])
def test_train_racing_steps_ends_in_one_serial_order(backend, batch_size):
    big = _big(backend)
    XA, YA = data(16 if big else 4, seed=1)
    XB, YB = data(5, seed=2)
    epochs, n_steps = (3000, 30) if big else (3, 5)

    def make_net():
        return Network(SIZES, seed=0, backend=backend)

    def train_call(net):
        return net.train(XA, YA, epochs=epochs, lr=0.5, batch_size=batch_size, shuffle=True, seed=7)

    step_calls = [lambda net, i=i: net.step(XB[i % 5], YB[i % 5], 0.3) for i in range(n_steps)]
    outcomes = _serial_orders(make_net, train_call, step_calls)
    # Every order gives different weights, so the order that happened can be told.
    assert len({params.tobytes() for params, _, _ in outcomes}) == len(outcomes)

    for _ in range(4 if big else 1):
        net = make_net()
        costs, Js = run_in_threads([lambda: train_call(net), lambda: [step(net) for step in step_calls]])
        params = all_params(net)
        matches = [
            k
            for k, (p, c, j) in enumerate(outcomes)
            if np.array_equal(params, p) and np.array_equal(costs, c) and Js == j
        ]
        assert len(matches) == 1, "the train call and the steps interleaved (no serial order matches)"


# Two train calls on one network from two threads, with the same settings and
# with different ones (batches, shuffling, learning rate, update_biases): on
# two different data sets A-then-B and B-then-A end in different weights, and
# an interleaving of their updates would match neither.  Each case: (rows,
# epochs, rounds) on the compiled backend, the same on the reference, the seeds
# of A's and B's data, the settings of A's and B's call.
TWO_TRAIN_CALLS = {
    "same-settings": ((40, 300, 5), (6, 20, 1), (1, 2), dict(lr=0.5), dict(lr=0.5)),
    "different-settings": (
        (24, 2000, 4),
        (4, 3, 1),
        (3, 4),
        dict(lr=0.5, batch_size=4, shuffle=True, seed=1),
        dict(lr=0.2, shuffle=True, seed=2, update_biases=False),
    ),
}


@pytest.mark.parametrize("settings", list(TWO_TRAIN_CALLS))
def test_two_train_calls_are_serialised(backend, settings):
    compiled_case, reference_case, (seed_A, seed_B), kwargs_A, kwargs_B = TWO_TRAIN_CALLS[settings]
    rows, epochs, rounds = compiled_case if _big(backend) else reference_case
    A, B = data(rows, seed=seed_A), data(rows, seed=seed_B)
    calls = {
        "A": lambda net: net.train(*A, epochs=epochs, **kwargs_A),
        "B": lambda net: net.train(*B, epochs=epochs, **kwargs_B),
    }
    serial = {}
    for order in ("AB", "BA"):
        net = Network(SIZES, seed=0, backend=backend)
        costs = {name: calls[name](net) for name in order}
        serial[order] = (all_params(net), costs)
    assert not np.array_equal(serial["AB"][0], serial["BA"][0])
    for _ in range(rounds):
        net = Network(SIZES, seed=0, backend=backend)
        costs_A, costs_B = run_in_threads([lambda: calls["A"](net), lambda: calls["B"](net)])
        params = all_params(net)
        assert np.isfinite(params).all()
        matches = [
            order
            for order, (p, c) in serial.items()
            if np.array_equal(params, p)
            and np.array_equal(costs_A, c["A"])
            and np.array_equal(costs_B, c["B"])
        ]
        assert len(matches) == 1, "the two train calls interleaved"


# ---------------------------------------------------------------------------
# Readers while a writer trains
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_callback", [False, True], ids=["one-compiled-call", "callback-each-epoch"])
def test_evaluating_while_another_thread_trains(backend, with_callback, tmp_path):
    big = _big(backend)
    X, Y = data(32 if big else 4, seed=5)
    epochs = 3000 if big else 4
    kwargs = dict(epochs=epochs, lr=0.5, batch_size=2, shuffle=True, seed=3)
    if with_callback:
        kwargs["callback"] = lambda epoch, cost: None

    twin = Network(SIZES, seed=0, backend=backend)
    expected_costs = twin.train(X, Y, **kwargs)  # the same run with nobody reading
    net = Network(SIZES, seed=0, backend=backend)
    finished = threading.Event()

    def train():
        try:
            return net.train(X, Y, **kwargs)
        finally:
            finished.set()

    def read():
        seen = 0
        while not finished.is_set() or seen == 0:
            out = net.forward(X)
            one = net.forward(X[0])
            cost = net.cost(X, Y)
            dW, db = net.gradients(X[1], Y[1])
            assert ((out >= 0) & (out <= 1)).all() and ((one >= 0) & (one <= 1)).all()
            assert np.isfinite(cost) and all(np.isfinite(g).all() for g in (*dW, *db))
            seen += 1
        return seen

    def snapshot():
        # Copies taken mid-training (pickle, a model file) are whole networks
        # with finite weights, whatever moment they caught.
        taken = 0
        while not finished.is_set() or taken == 0:
            for copy in (pickle.loads(pickle.dumps(net)), _saved_and_loaded(net, tmp_path / "net.fbp")):
                assert copy.layer_sizes == net.layer_sizes and np.isfinite(all_params(copy)).all()
                assert ((copy.forward(X) >= 0) & (copy.forward(X) <= 1)).all()
            taken += 1
        return taken

    costs, *reads = run_in_threads([train] + [read] * 3 + [snapshot])
    assert all(r >= 1 for r in reads)
    # The readers changed nothing the training computed.
    np.testing.assert_array_equal(costs, expected_costs, strict=True)
    np.testing.assert_array_equal(all_params(net), all_params(twin), strict=True)


# ---------------------------------------------------------------------------
# Several networks at once
# ---------------------------------------------------------------------------


def test_networks_trained_in_parallel_equal_networks_trained_one_after_another(backend):
    big = _big(backend)
    epochs = 1500 if big else 3
    jobs = [
        ([3, 8, 2], "float64", dict(batch_size=1, shuffle=True, seed=1)),
        ([3, 8, 2], "float32", dict(batch_size=4, shuffle=True, seed=2)),
        ([3, 5, 4, 2], "float64", dict(batch_size=3, shuffle=False, update_biases=False)),
        ([3, 16, 2], "float32", dict(batch_size=1, shuffle=True, seed=4)),
    ]
    datasets = [data(20 if big else 4, seed=10 + i, sizes=sizes) for i, (sizes, _, _) in enumerate(jobs)]

    def run(i):
        sizes, dtype, kwargs = jobs[i]
        net = Network(sizes, seed=i, dtype=dtype, backend=backend)
        costs = net.train(*datasets[i], epochs=epochs, lr=0.5, **kwargs)
        return costs, all_params(net)

    serial = [run(i) for i in range(len(jobs))]
    for _ in range(2 if big else 1):
        parallel = run_in_threads([lambda i=i: run(i) for i in range(len(jobs))])
        for (costs, params), (serial_costs, serial_params) in zip(parallel, serial, strict=True):
            np.testing.assert_array_equal(costs, serial_costs, strict=True)
            np.testing.assert_array_equal(params, serial_params, strict=True)


# ---------------------------------------------------------------------------
# Re-entry from a callback
# ---------------------------------------------------------------------------


def test_a_callback_that_steps_the_network_it_trains_does_not_deadlock():
    backend = "cython"  # the lock is the network's, the same for every backend
    X, Y = data(4, seed=6)
    x, y = X[0], Y[0]
    net = Network(SIZES, seed=0, backend=backend)
    steps = []

    def callback(epoch, cost):
        steps.append(net.step(x, y, 0.1))

    try:
        (costs,) = run_in_threads(
            [lambda: net.train(X, Y, epochs=3, lr=0.5, callback=callback)], timeout=10.0
        )
    except RuntimeError as error:  # refusing the re-entry with a clear error is as good
        assert "train" in str(error) or "step" in str(error), error
        assert np.isfinite(all_params(net)).all()
        return
    # Otherwise each step ran between two epochs, as if called in turn.
    twin = Network(SIZES, seed=0, backend=backend)
    expected_costs, expected_steps = [], []
    for _ in range(3):
        expected_costs.extend(twin.train(X, Y, epochs=1, lr=0.5))
        expected_steps.append(twin.step(x, y, 0.1))
    np.testing.assert_array_equal(costs, expected_costs)
    assert steps == expected_steps
    np.testing.assert_array_equal(all_params(net), all_params(twin), strict=True)
