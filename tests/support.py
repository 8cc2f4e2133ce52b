"""Helpers shared by several test modules (importable because pyproject.toml
puts ``tests/`` on pytest's ``pythonpath``)."""

import contextlib
import errno
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is new in 3.11; tomli is the same parser (the test extra brings it)
    import tomli as tomllib  # noqa: F401  (re-exported for the tests)

import numpy as np
import pytest

import fastbp

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Whether these tests sit in a source tree (a checkout or an unpacked sdist),
# rather than in a copy of tests/ run against an installed wheel.
SOURCE_TREE = all((ROOT / name).is_file() for name in ("pyproject.toml", "setup.py", "fastbp/_kernels.pyx"))
# For the tests that build from the sources.
needs_source_tree = pytest.mark.skipif(
    not SOURCE_TREE,
    reason=f"needs the source tree (setup.py, fastbp/*.pyx), which is not around these tests ({ROOT})",
)
BUILD_OUTPUTS = shutil.ignore_patterns(
    "build", "dist", "*.egg-info", "*.so", "*.pyd", "*.c", "*.cpp", "__pycache__", ".*"
)


def run(cmd, **kwargs):
    """Run a command; fail the test with its output's tail unless it succeeds."""
    job = getattr(_IN_JOB, "job", None)  # in a BackgroundJob (below): a process it can stop
    result = (job._run if job else subprocess.run)(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{cmd} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


def clean_env(**extra):
    """This environment without what would redirect a nested run's fastbp."""
    env = {k: v for k, v in os.environ.items() if k not in ("FASTBP_BACKEND", "PYTHONPATH", "PYTEST_ADDOPTS")}
    env.update(extra)
    return env


def source_tree(target):
    """The files a fresh clone would have: git's tracked files when this is a
    checkout, otherwise the tree without build outputs (an unpacked sdist)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        files = run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")
        for name in filter(None, files):
            if (ROOT / name).is_file():  # skip deleted-but-tracked paths
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)
    else:
        shutil.copytree(ROOT, target, ignore=BUILD_OUTPUTS, dirs_exist_ok=True)


def run_in_threads(functions, timeout=300.0):
    """Start every function at once (a barrier); return their results, or
    re-raise the first error.  A thread still running after ``timeout``
    seconds (a deadlock) fails the test instead of hanging the suite."""
    barrier = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def work(i, f):
        try:
            barrier.wait()
            results[i] = f()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i, f), daemon=True) for i, f in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"a thread did not finish within {timeout} s"
    if errors:
        raise errors[0]
    return results


# Runs sys.argv[2:] with SIGINT set to the handling sys.argv[1] names (SIG_DFL
# or SIG_IGN), whatever this process has: a suite started as a background job or
# by some CI runners has SIGINT ignored, and an ignored signal stays ignored
# across exec (a Python child then never installs its KeyboardInterrupt
# handler).  A small exec wrapper rather than Popen's preexec_fn, which is
# unsafe in a process with threads.
_SIGINT_WRAPPER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, getattr(signal, sys.argv[1])); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def with_sigint(handling, command):
    """``command`` (its argv list, the program an absolute path) to be run
    with SIGINT at ``handling``: ``"SIG_DFL"`` (as from a terminal: a Python
    child turns Ctrl-C into KeyboardInterrupt) or ``"SIG_IGN"``."""
    assert handling in ("SIG_DFL", "SIG_IGN")
    return [sys.executable, "-c", _SIGINT_WRAPPER, handling, *command]


@contextlib.contextmanager
def killed_after(process, seconds):
    """Kill ``process`` (a Popen) if it still runs ``seconds`` from now, so
    that no read from it or wait for it blocks longer, and when the block is
    left (by an error too).  Yields an Event, set if the deadline killed it."""
    fired = threading.Event()

    def kill():
        fired.set()
        process.kill()

    timer = threading.Timer(seconds, kill)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)  # killed: returns at once


def examples(n):
    """Hypothesis examples for a test that asks for ``n``: all of them, but at
    most 8 in the nested runs of the packaging and debug-build tests
    (FASTBP_NESTED_RUN=1), which run the same tests and assertions against
    another build; this run's own examples cover the inputs."""
    return min(n, 8) if os.environ.get("FASTBP_NESTED_RUN") else n


# ---------------------------------------------------------------------------
# A network's state, for the tests that compare networks or check that a call
# changed nothing.
# ---------------------------------------------------------------------------


def snapshot(net):
    """Copies of the network's weights and biases: ``(weights, biases)``."""
    return [W.copy() for W in net.weights], [b.copy() for b in net.biases]


def all_params(net):
    """Every weight and bias of the network in one flat array (W[1], b[1], W[2], ...)."""
    return np.concatenate([a.ravel() for pair in zip(net.weights, net.biases) for a in pair])


def assert_same_state(net, snap):
    """``net`` holds exactly the parameters of ``snap`` (a ``snapshot``)."""
    Ws, bs = snap
    assert len(net.weights) == len(Ws)
    for W, W0 in zip(net.weights, Ws, strict=True):
        np.testing.assert_array_equal(W, W0, strict=True)
    for b, b0 in zip(net.biases, bs, strict=True):
        np.testing.assert_array_equal(b, b0, strict=True)


def assert_same_net(a, b):
    """Two networks of the same shape and dtype with the same parameters."""
    assert a.layer_sizes == b.layer_sizes and a.dtype == b.dtype
    assert_same_state(a, snapshot(b))


def make_net(backend, dtype="float64", sizes=(3, 4, 2)):
    """The network of the input tests (test_validation, test_hostile_input, test_layout)."""
    return fastbp.Network(sizes, seed=0, dtype=dtype, backend=backend)


def frozen_data(seed, sizes=(3, 4, 2)):
    """Five rows of data for a network of ``sizes`` from ``default_rng(seed)``:
    X in U(-1, 1), Y in U(0.1, 0.9); read-only, so that no test may change
    the data its module shares."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(5, sizes[0]))
    Y = rng.uniform(0.1, 0.9, size=(5, sizes[-1]))
    for a in (X, Y):
        a.flags.writeable = False
    return X, Y


def esc(text):
    """``text`` as a regular expression that matches it literally (pytest.raises' ``match``)."""
    return re.escape(text)


def params_of(net):
    """Copies of the network's weights then biases, in one list."""
    return [a.copy() for a in (*net.weights, *net.biases)]


def assert_params_equal(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b, strict=True)


def assert_unchanged_and_working(net, twin, before):
    """``net`` holds the parameters it had before the rejected call and keeps
    working: its next step (run in a thread that must finish, so a lock the
    rejected call left held fails instead of hanging) equals the step of an
    untouched twin."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1.0, 1.0, net.layer_sizes[0]), rng.uniform(0.1, 0.9, net.layer_sizes[-1])
    assert_params_equal(params_of(net), before)
    (J,) = run_in_threads([lambda: net.step(x, y, 0.5)], timeout=60.0)
    assert J == twin.step(x, y, 0.5)
    assert_params_equal(params_of(net), params_of(twin))


def fixed_layers(dtype=np.float64):
    """Weights and biases of a [3, 4, 2] network, fresh arrays each call."""
    rng = np.random.default_rng(7)
    Ws = [rng.uniform(-1, 1, (4, 3)).astype(dtype), rng.uniform(-1, 1, (2, 4)).astype(dtype)]
    bs = [rng.uniform(-1, 1, 4).astype(dtype), rng.uniform(-1, 1, 2).astype(dtype)]
    return Ws, bs


def result_arrays(result):
    """A call's result as a list of arrays: gradients' ``(dW per layer, db per
    layer)`` flattened, anything else (an array, a cost) as one array."""
    if isinstance(result, tuple):  # gradients
        return [np.asarray(a) for part in result for a in part]
    return [np.asarray(result)]


# ---------------------------------------------------------------------------
# Odd forms of the same values (tests/test_layout.py, and the property tests
# of tests/test_hostile_input.py): each holds exactly the values of ``a``.
# ---------------------------------------------------------------------------


def strided(a):
    """A view of every other element of a larger array, holding ``a``'s values."""
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    if big.dtype.kind in "iuf":
        big[...] = 99  # values a misread stride would pick up
    big[tuple(slice(None, None, 2) for _ in a.shape)] = a
    return big[tuple(slice(None, None, 2) for _ in a.shape)]


def negative_stride(a):
    """``a``'s values in a view with negative strides on every axis."""
    flipped = np.array(a[tuple(slice(None, None, -1) for _ in a.shape)])
    return flipped[tuple(slice(None, None, -1) for _ in a.shape)]


def read_only(a):
    """A read-only copy of ``a``."""
    a = np.array(a)
    a.flags.writeable = False
    return a


def memmap_of(a, tmp_path):
    """``a``'s values in a read-only memory map of a new file in ``tmp_path``."""
    path = tmp_path / f"data{len(list(tmp_path.iterdir()))}.dat"
    m = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
    m[...] = a
    m.flush()
    del m
    return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)


def unaligned(a):
    """The same values in a buffer one byte off the dtype's alignment."""
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = np.ndarray(a.shape, dtype=a.dtype, buffer=raw, offset=1)
    out[...] = a
    return out


def with_value(a, index, value):
    """A float64 copy of ``a`` with ``value`` at ``index``."""
    out = np.array(a, dtype=np.float64)
    out[index] = value
    return out


def clean(value, dtype):
    """The documented cast of data: a C-contiguous array of the network's dtype."""
    with np.errstate(all="ignore"):
        return np.array(np.asarray(value), dtype=dtype, order="C")


# The slow nested runs (tests/test_packaging.py, tests/test_debug_build.py)
# build and test in subprocesses, one core's worth of work while the rest of
# the suite runs on the other: tests/conftest.py starts them in the
# background when the session starts (and runs their tests last), so they
# overlap the rest instead of following it.
_JOBS = {}
_JOBS_LOCK = threading.Lock()
_IN_JOB = threading.local()


class BackgroundJob:
    """``function()`` running in a thread; ``result()`` waits for it and
    returns its value or re-raises its error (a failed ``run`` assertion)."""

    def __init__(self, function):
        self._value, self._error, self._process, self._stopped = None, None, None, False
        self._thread = threading.Thread(target=self._work, args=(function,), daemon=True)
        self._thread.start()

    def _work(self, function):
        _IN_JOB.job = self
        try:
            self._value = function()
        except BaseException as error:  # re-raised by result()
            self._error = error

    def _run(self, cmd, capture_output, timeout=None, **kwargs):
        """subprocess.run (capturing the output), with the process where stop() finds it."""
        assert capture_output
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs) as process:
            self._process = process
            if self._stopped:
                process.kill()
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
            finally:
                self._process = None
        return subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)

    def stop(self):
        """Kill its running command and start no other (the session ends)."""
        self._stopped = True
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def background_job(key, function):
    """The job of that key, started with ``function`` by the first call."""
    with _JOBS_LOCK:
        if key not in _JOBS:
            _JOBS[key] = BackgroundJob(function)
        return _JOBS[key]


def stop_background_jobs():
    """Stop the jobs still running (a session cut short: -x, Ctrl-C)."""
    with _JOBS_LOCK:
        for job in _JOBS.values():
            job.stop()


# Failures injected into fastbp._files's atomic writer (its
# ``_write_chunks(f, chunks)`` or ``os.replace``) by the atomic-save tests.
def fail(*args, **kwargs):
    raise OSError(errno.EIO, "simulated I/O failure")


def write_half_then_fill_the_disk(f, chunks):
    data = b"".join(bytes(c) for c in chunks)
    f.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, "No space left on device (simulated)")
