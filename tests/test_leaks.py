"""No leaks (issue 4, part 4): repeated calls on the compiled backend do not
grow the process's memory.

* 100,000 calls each of ``forward``, ``gradients`` and ``step``, and 50,000
  calls of ``train`` (small networks, tiny data), grow the resident set size
  (RSS) by less than 1 MiB after a warm-up: a leak of 11 bytes or more per
  call (21 for ``train``) would exceed it.  ``train`` cycles through its code
  paths (one compiled call for the whole run, shuffled, mini-batches, a
  callback between epochs); each call validates, allocates the run's buffers
  and enters the kernels, about three times the work of a ``forward``, hence
  half the count to keep this module near half a minute of CPU.
* 100,000 calls in total of the error paths (calls that raise: validation
  errors, overflow refused after a kernel ran, divergence restored after a
  kernel ran, a callback that raises inside training, direct kernel calls with
  the wrong dtype, layout or lengths, bad constructor arguments), cycling
  through them, grow the RSS by less than 1 MiB.
* Each error path alone, and each of ``train``'s paths alone: after 5,000
  calls of warm-up, 500 calls under ``tracemalloc`` (which sees every Python
  object and NumPy buffer, exactly, but makes calls several times slower)
  leave less than 4,000 bytes (8 per call) more allocated: one leaked object
  per call (16 bytes at the very least) is caught per path, not only on
  average.

Every measurement runs in a fresh interpreter that imports this module, so
that nothing the rest of the suite left behind (threads, caches) moves it.  The
RSS is read from ``/proc/self/statm`` (Linux; elsewhere these tests skip).
"""

import gc
import json
import os
import pathlib
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fastbp
from fastbp import Network, TrainingDivergedError

pytestmark = pytest.mark.skipif(
    not pathlib.Path("/proc/self/statm").exists(), reason="reads the RSS from /proc"
)

CALLS = 100_000
TRAIN_CALLS = 50_000
RSS_BUDGET = 1 << 20  # 1 MiB
WARM_UP = 2_000

KERNELS = fastbp.get_backend("cython")
_rng = np.random.default_rng(0)
X = _rng.uniform(-1, 1, (3, 2))
Y = _rng.uniform(0.1, 0.9, (3, 2))
x, y = X[0], Y[0]


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_growth(call, n):
    for _ in range(WARM_UP):
        call()
    gc.collect()
    before = rss_bytes()
    for _ in range(n):
        call()
    gc.collect()
    return rss_bytes() - before


def in_a_fresh_process(expression, cwd):
    """The value of ``expression`` (Python, over this module's names),
    computed by a new interpreter that imports this module from its file."""
    code = (
        "import importlib.util, json, fastbp\n"
        f"spec = importlib.util.spec_from_file_location('leaks', {str(pathlib.Path(__file__).resolve())!r})\n"
        "leaks = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(leaks)\n"
        "print(fastbp.__file__)\n"
        f"print(json.dumps(leaks.{expression}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-4000:]
    imported, value = result.stdout.strip().splitlines()[-2:]
    assert imported == fastbp.__file__, f"the child imported {imported}, this run {fastbp.__file__}"
    return json.loads(value)


def cycle(calls):
    """One call of each in turn, a different one every time."""
    state = {"i": 0}

    def call():
        calls[state["i"] % len(calls)]()
        state["i"] += 1

    return call


# ---------------------------------------------------------------------------
# Calls that succeed
# ---------------------------------------------------------------------------


def _network():
    return Network([2, 3, 2], seed=0, backend="cython")


def _train_calls(net):
    return {
        "train-one-call": lambda: net.train(X, Y, epochs=1, lr=0.1),
        "train-shuffled": lambda: net.train(X, Y, epochs=1, lr=0.1, shuffle=True, seed=1),
        "train-batches": lambda: net.train(X, Y, epochs=1, lr=0.1, batch_size=2, shuffle=True, seed=2),
        "train-callback": lambda: net.train(X, Y, epochs=2, lr=0.1, callback=lambda epoch, cost: None),
    }


SUCCEEDING = {
    "forward": (lambda net: cycle([lambda: net.forward(x), lambda: net.forward(X)]), CALLS),
    "gradients": (lambda net: lambda: net.gradients(x, y), CALLS),
    "step": (lambda net: lambda: net.step(x, y, 0.1), CALLS),
    "train": (lambda net: cycle(list(_train_calls(net).values())), TRAIN_CALLS),
}


def succeeding_growth(name):
    net = _network()
    make_call, n = SUCCEEDING[name]
    growth = rss_growth(make_call(net), n)
    assert all(np.isfinite(W).all() for W in net.weights)
    return growth


@pytest.mark.parametrize("name", list(SUCCEEDING))
def test_many_calls_do_not_grow_memory(name, tmp_path):
    growth = in_a_fresh_process(f"succeeding_growth({name!r})", tmp_path)
    n = SUCCEEDING[name][1]
    assert growth < RSS_BUDGET, f"{n} calls of {name} grew the RSS by {growth / 2**20:.2f} MiB"


# ---------------------------------------------------------------------------
# Calls that raise
# ---------------------------------------------------------------------------


class _Boom(Exception):
    pass


def _boom(epoch, cost):
    raise _Boom


def _error_paths():
    """name -> a call that must raise the given exception."""
    net = _network()
    # 1e308 * 2 - 1e308 * 2 = inf - inf: refused after the kernel ran.
    huge = Network.from_weights([[[1e308, -1e308]]], [[0.0]], backend="cython")
    sizes, params = net._sizes, net._params
    out, scratch = np.empty((len(X), 2)), np.empty(7)
    X_nan = X.copy()
    X_nan[1, 1] = np.nan
    far_targets = np.array([[1e300, 0.0]] * 3)
    return {
        "forward-nan": (lambda: net.forward(X_nan), ValueError),
        "forward-shape": (lambda: net.forward(np.zeros((2, 5))), ValueError),
        "step-complex": (lambda: net.step(x + 0j, y, 0.1), TypeError),
        "gradients-object": (lambda: net.gradients(x, np.array([0.5, None])), TypeError),
        "cost-rows": (lambda: net.cost(X, Y[:2]), ValueError),
        "train-keyword": (lambda: net.train(X, Y, batch_size="2"), TypeError),
        "train-callback-type": (lambda: net.train(X, Y, callback=3), TypeError),
        "forward-overflow": (lambda: huge.forward([2.0, 2.0]), FloatingPointError),
        "step-diverges": (lambda: net.step(x, far_targets[0], 1.0), TrainingDivergedError),
        "train-diverges": (lambda: net.train(X, far_targets, epochs=2, lr=1.0), TrainingDivergedError),
        "train-batches-diverge": (
            lambda: net.train(X, far_targets, epochs=2, lr=1.0, batch_size=3),
            TrainingDivergedError,
        ),
        "train-callback-raises": (lambda: net.train(X, Y, epochs=3, lr=0.1, callback=_boom), _Boom),
        "kernel-wrong-dtype": (
            lambda: KERNELS.forward_batch(params, sizes, X.astype(np.float32), out, scratch),
            ValueError,
        ),
        "kernel-not-contiguous": (
            lambda: KERNELS.forward_batch(params, sizes, np.asfortranarray(X), out, scratch),
            ValueError,
        ),
        "kernel-short-buffer": (
            lambda: KERNELS.forward_batch(params, sizes, X, out, scratch[:3]),
            ValueError,
        ),
        "network-sizes": (lambda: Network([2, 0, 1], backend="cython"), ValueError),
        "from-weights-chain": (
            lambda: Network.from_weights([np.zeros((3, 2)), np.zeros((1, 4))], [np.zeros(3), np.zeros(1)]),
            ValueError,
        ),
        "get-backend": (lambda: fastbp.get_backend("fortran"), ValueError),
    }


def _raising(call, error):
    def run():
        try:
            call()
        except error:
            return
        raise AssertionError(f"{call} did not raise {error.__name__}")

    return run


ERROR_PATHS = list(_error_paths())


def error_paths_growth():
    calls = [_raising(call, error) for call, error in _error_paths().values()]
    return rss_growth(cycle(calls), CALLS)


def test_100000_calls_of_the_error_paths_do_not_grow_memory(tmp_path):
    growth = in_a_fresh_process("error_paths_growth()", tmp_path)
    assert growth < RSS_BUDGET, f"{CALLS} calls of the error paths grew the RSS by {growth / 2**20:.2f} MiB"


def _path(name):
    succeeding = _train_calls(_network())
    return succeeding[name] if name in succeeding else _raising(*_error_paths()[name])


TRACED_PATHS = ERROR_PATHS + list(_train_calls(None))
TRACED_CALLS = 500
TRACED_WARM_UP = 5_000


def traced_growths():
    """{path: bytes still allocated after TRACED_CALLS more calls} under
    tracemalloc, after a warm-up without it (where calls are fast): some error
    messages fill a bounded cache of NumPy's (dtype names) over their first
    few thousand calls.  The first TRACED_CALLS under tracemalloc are a
    warm-up too: what starting to trace allocates shows up there (up to 4.5 kB
    in one window, measured; a few hundred bytes in the windows after), while
    a leak of 8 bytes a call grows every window alike."""
    growths = {}
    for name in TRACED_PATHS:
        call = _path(name)
        for _ in range(TRACED_WARM_UP):
            call()
        tracemalloc.start()
        try:
            for _ in range(TRACED_CALLS):
                call()
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(TRACED_CALLS):
                call()
            gc.collect()
            growths[name] = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    return growths


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    return in_a_fresh_process("traced_growths()", tmp_path_factory.mktemp("traced"))


@pytest.mark.parametrize("name", TRACED_PATHS)
def test_each_path_leaves_no_traced_memory(name, traced):
    growth = traced[name]
    assert growth < 8 * TRACED_CALLS, f"{TRACED_CALLS} calls of {name} left {growth} bytes allocated"
