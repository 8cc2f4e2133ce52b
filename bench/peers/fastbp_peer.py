"""fastbp itself: ``Network.train``, compiled kernels or the pure-Python
reference; and ``fastbp-base``, the fastbp of another checkout (``compare.py
--baseline PATH``: the commit before an issue) in a child process, for an
A/B of the plain-SGD paths in the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import Peer, Unavailable

HERE = Path(__file__).resolve().parent
BASELINE_ENV = "FASTBP_BENCH_BASELINE"  # the checkout fastbp-base imports fastbp from


def make_optimizer(task):
    """The fastbp optimizer object of ``task`` (None for plain SGD)."""
    if task.optimizer is None:
        return None
    import fastbp

    kind = {"sgd": "SGD", "adam": "Adam", "rprop": "RPROP"}[task.rule]
    if not hasattr(fastbp, kind):
        raise Unavailable(f"n/a: this fastbp has no fastbp.{kind} (before issue 11)")
    return getattr(fastbp, kind)(lr=task.lr, **task.optimizer[1])


def train_keywords(task, optimizer):
    """``Network.train``'s keywords for ``task``: plain SGD exactly as before
    issue 11 (``lr=``, ``batch_size=``), or ``optimizer=`` (RPROP: the default
    batch, all rows)."""
    if optimizer is None:
        return {"lr": task.lr, "batch_size": task.batch_size}
    return {"optimizer": optimizer, "batch_size": None if task.full_batch else task.batch_size}


class _NetworkTrainer:
    def __init__(self, task, X, Y, backend):
        import fastbp

        model = task.network_keywords()  # {} for the note's model: the call as before issue 10
        self._make = lambda: fastbp.Network.from_weights(
            task.weights, task.biases, dtype=task.dtype, backend=backend, **model
        )
        self.task = task
        self.X = np.ascontiguousarray(X, dtype=task.dtype)
        self.Y = np.ascontiguousarray(Y, dtype=task.dtype)
        self.reset()

    def reset(self):
        self.net = self._make()
        self.optimizer = make_optimizer(self.task)  # a fresh state (untimed, as the network)

    def train(self, rows, epochs):
        return self.net.train(
            self.X[:rows], self.Y[:rows], epochs=epochs, **train_keywords(self.task, self.optimizer)
        )


class Fastbp(Peer):
    name = "fastbp"
    about = "fastbp.Network.train, compiled kernels (the default backend)"
    backend = "cython"
    optimizers = ("sgd", "adam", "rprop")

    def check(self, task):
        super().check(task)
        try:
            import fastbp
        except ImportError as error:
            raise Unavailable(f"fastbp does not import: {error}") from None
        # Until the training engine lands, train(batch_size>1) raises
        # NotImplementedError: find out on a one-row run instead of guessing.
        try:
            net = fastbp.Network.from_weights(
                task.weights, task.biases, dtype=task.dtype, backend=self.backend, **task.network_keywords()
            )
        except TypeError as error:
            if not task.network_keywords():
                raise
            raise Unavailable(f"n/a: this fastbp has no {task.describe_model()} model ({error})") from None
        x = np.full((2, net.layer_sizes[0]), 0.5, dtype=task.dtype)
        # targets every loss accepts (softmax's rows must sum to 1)
        y = np.full(
            (2, net.layer_sizes[-1]),
            1 / net.layer_sizes[-1] if task.activations[-1] == "softmax" else 0.5,
            dtype=task.dtype,
        )
        try:
            net.train(x, y, epochs=1, **train_keywords(task, make_optimizer(task)))
        except NotImplementedError as error:
            raise Unavailable(f"n/a: {error}") from None

    def trainer(self, task, X, Y):
        return _NetworkTrainer(task, X, Y, self.backend)


class FastbpReference(Fastbp):
    name = "fastbp-ref"
    about = "fastbp.Network.train on the pure-Python reference backend (the oracle; slow)"
    backend = "python"


# ---------------------------------------------------------------------------
# fastbp-base: another checkout's fastbp, in a child process
# ---------------------------------------------------------------------------


class _BaselineTrainer:
    """Talks to ``baseline_server.py`` (one JSON line per command): the child
    holds the data and the network; ``train`` is timed in this process around
    the round trip (a few tens of microseconds against runs of ~0.3 s)."""

    def __init__(self, task, X, Y, checkout):
        self.task = task
        handle, self.path = tempfile.mkstemp(suffix=".npz")
        os.close(handle)
        arrays = {
            "X": np.ascontiguousarray(X, dtype=task.dtype),
            "Y": np.ascontiguousarray(Y, dtype=task.dtype),
        }
        for l, (W, b) in enumerate(zip(task.weights, task.biases)):
            arrays[f"W{l}"], arrays[f"b{l}"] = W, b
        np.savez(self.path, **arrays)
        env = dict(os.environ, PYTHONPATH=str(checkout))
        self.child = subprocess.Popen(
            [sys.executable, str(HERE / "baseline_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(checkout),
        )
        self.about = self.call(
            {
                "load": self.path,
                "layers": len(task.weights),
                "dtype": str(task.dtype),
                "lr": task.lr,
                "batch_size": task.batch_size,
            }
        )

    def call(self, command):
        self.child.stdin.write(json.dumps(command) + "\n")
        self.child.stdin.flush()
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError(f"fastbp-base's child process ended (status {self.child.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"fastbp-base: {answer['error']}")
        return answer["result"]

    def reset(self):
        self.call({"reset": True})

    def train(self, rows, epochs):
        return np.array(self.call({"train": [rows, epochs]}), dtype=np.float64)

    def __del__(self):
        child = getattr(self, "child", None)
        if child is not None and child.poll() is None:
            try:
                child.stdin.close()
                child.wait(timeout=10)
            except Exception:
                pass
        if getattr(self, "path", None):
            try:
                os.unlink(self.path)
            except OSError:
                pass


class FastbpBaseline(Peer):
    name = "fastbp-base"
    about = (
        f"fastbp.Network.train of another checkout (${BASELINE_ENV}, compare.py --baseline: the commit before "
        "an issue), in a child process; plain SGD only"
    )

    def checkout(self):
        path = os.environ.get(BASELINE_ENV)
        if not path:
            raise Unavailable(f"no baseline checkout (compare.py --baseline PATH, or ${BASELINE_ENV})")
        if not (Path(path) / "fastbp" / "__init__.py").exists():
            raise Unavailable(f"{path} is not a fastbp checkout")
        return Path(path).resolve()

    def check(self, task):
        super().check(task)
        self.checkout()
        if not task.sigmoid_squared_error:
            raise Unavailable("n/a: the baseline runs the note's model only")

    def trainer(self, task, X, Y):
        return _BaselineTrainer(task, X, Y, self.checkout())
