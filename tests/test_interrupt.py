"""Ctrl-C during training: seen quickly, and the network is left consistent.

The compiled training loop runs without the GIL; it takes the GIL back every
few milliseconds of work to let Python see a pending signal.  On Ctrl-C the
interrupted epoch is undone (the weights go back to those after the last
completed epoch) and KeyboardInterrupt propagates.
"""

import faulthandler
import signal
import threading
import time

import numpy as np
import pytest

from fastbp import Network


def _ctrl_c_after(seconds):
    """Deliver SIGINT to this process (the main thread handles it) after a delay."""
    timer = threading.Timer(seconds, signal.raise_signal, args=(signal.SIGINT,))
    timer.start()
    return timer


def _snapshot(net):
    return [w.copy() for w in net.weights] + [b.copy() for b in net.biases]


def _assert_state(net, snapshot):
    for now, before in zip([*net.weights, *net.biases], snapshot):
        np.testing.assert_array_equal(now, before)


DEADLINE = 600  # seconds; each test takes a few (see faulthandler below)


@pytest.fixture(autouse=True)
def default_sigint_handler():
    # The default handler raises KeyboardInterrupt in the main thread.  Set
    # here, it holds whatever this process inherited: a suite started in the
    # background or by some CI runners has SIGINT ignored, and then Python
    # installs no handler of its own.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # A run below ends only by Ctrl-C (10**9 epochs in one compiled call that
    # nothing else can stop; the long single epoch takes minutes at worst):
    # should the signal ever be lost, end the test process with every
    # thread's traceback instead of hanging.
    faulthandler.dump_traceback_later(DEADLINE, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("batch_size", [1, 64])
def test_ctrl_c_stops_one_long_compiled_epoch_and_undoes_it(batch_size):
    # One epoch of 4 million rows through 12,000 weights: 15 s or more
    # uninterrupted (measured: 15-50 s batched, twice that online).  Ctrl-C
    # at 0.3 s must stop it well before the end and leave the weights as they
    # were before the epoch.
    rng = np.random.default_rng(0)
    n = 4_000_000
    X = rng.uniform(size=(n, 1))
    Y = rng.uniform(size=(n, 1))
    net = Network([1, 4000, 1], seed=0)
    before = _snapshot(net)
    timer = _ctrl_c_after(0.3)
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.train(X, Y, epochs=1, lr=0.1, batch_size=batch_size)
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - start
    # Not a speed test: an interrupt seen only at the end of the epoch would
    # take the whole epoch (many seconds); this bound only says it was not.
    assert elapsed < 5, f"Ctrl-C took {elapsed:.1f} s to be seen"
    _assert_state(net, before)
    # The network is usable afterwards.
    assert np.isfinite(net.train(X[:100], Y[:100], epochs=2)).all()


@pytest.mark.parametrize("rows, batch_size", [(50, 1), (3, 1), (3, 2), (1, 1)])
def test_ctrl_c_in_a_many_epoch_run_keeps_the_completed_epochs(rows, batch_size):
    # Many short epochs in one compiled call: the weights after Ctrl-C are
    # those after some completed epoch k, i.e. equal to a fresh twin trained
    # for k epochs -- never a state in the middle of an epoch.  With fewer
    # than 64 rows the run saves its state only every few epochs and replays
    # from there to the start of the interrupted epoch.
    rng = np.random.default_rng(1)
    X, Y = rng.uniform(size=(rows, 3)), rng.uniform(size=(rows, 2))
    net = Network([3, 30, 2], seed=0)
    timer = _ctrl_c_after(0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            net.train(X, Y, epochs=10**9, lr=0.3, batch_size=batch_size)
    finally:
        timer.cancel()
    assert all(np.isfinite(w).all() for w in net.weights)
    # Replay epoch by epoch until the twin matches (it must, within the epochs
    # that could have run).
    twin = Network([3, 30, 2], seed=0)
    state = _snapshot(net)
    for _ in range(2_000_000):
        if all(np.array_equal(a, b) for a, b in zip(_snapshot(twin), state)):
            break
        twin.train(X, Y, epochs=1, lr=0.3, batch_size=batch_size)
    else:
        pytest.fail("the interrupted network matches no whole number of epochs")


def test_ctrl_c_on_the_reference_backend_undoes_the_epoch():
    rng = np.random.default_rng(2)
    X, Y = rng.uniform(size=(100_000, 2)), rng.uniform(size=(100_000, 2))
    net = Network([2, 3, 2], seed=0, backend="python")
    before = _snapshot(net)
    timer = _ctrl_c_after(0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            net.train(X, Y, epochs=1)
    finally:
        timer.cancel()
    _assert_state(net, before)
