"""Peers: the same training run done by fastbp and by what a user would pick instead.

Every peer trains the same fully connected network on the same data from the
same initial weights, with the semantics of ``fastbp.Network.train``:

* the model of the ``Task``: one activation per weight layer (``"sigmoid"``,
  ``"tanh"``, ``"relu"``, ``"leaky_relu"`` (slope 0.01), ``"identity"``, and
  ``"softmax"`` on the output layer) and a loss; by default (and in every
  workload before issue 10) all sigmoid with squared error;
* cost of each sample measured before the update it takes part in: squared
  error ``J = 1/2 sum (y - o)^2``, or cross-entropy computed from the output's
  net input z as fastbp does: with sigmoid outputs ``sum [max(z, 0) - y z +
  log1p(exp(-|z|))]``, with a softmax output ``sum y_k (logsumexp(z) - z_k)``;
  a peer returns the mean J of each epoch;
* output delta ``(o - y) f'(z)`` for squared error, ``o - y`` for
  cross-entropy; hidden deltas through ``f'`` computed from the activation
  ``a = f(z)`` (ReLU's is ``a > 0``);
* ``batch_size=1``: one update per sample (online SGD); ``batch_size=k``: the
  gradient averaged over k consecutive rows (the last, smaller batch over its
  own size), each sample's J measured at the weights its batch started from;
* ``W -= lr * gradient`` and the same for the biases; rows in order, no shuffle;
* or, with the ``Task``'s ``optimizer`` (issue 11), torch.optim's update rule
  of that name from the same gradient: ``("sgd", {"momentum": m})`` (velocity
  ``buf = m buf + g`` from 0, ``W -= lr buf``), ``("adam", {"betas": ...,
  "eps": ...})`` with bias correction, ``("rprop", {"etas": ..., "step_sizes":
  ...})`` (iRPROP-, ``lr`` the initial step); ``batch_size=0`` means one batch
  of all the rows (RPROP's full batch: one update per epoch).  A peer that
  cannot run the rule raises ``Unavailable``.  FANN's iRPROP- is not exactly
  torch's (see ``cpeers.fann_irpropm_costs``): its costs are checked against
  an emulation of FANN's own rule, and against fastbp's for the epochs where
  the two rules agree.

So every peer's per-epoch costs can be compared with fastbp's, and nobody is
timed doing different work.

A peer is a ``Peer`` whose ``trainer(task, X, Y)`` converts the data and the
initial weights once (untimed) and returns a ``Trainer``: ``reset()`` puts the
initial weights back (untimed), ``train(rows, epochs)`` trains on the first
``rows`` rows (timed) and returns the per-epoch costs.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Task:
    """What to train: initial parameters (``weights[l]`` of shape (n_out, n_in)),
    learning rate, batch size and dtype."""

    weights: list
    biases: list
    lr: float
    batch_size: int = 1
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float64))
    activations: tuple = None  # one name per weight layer (the last is the output's); None: all sigmoid
    loss: str = "squared_error"
    # None: plain SGD (W -= lr * gradient); else (rule, hyper-parameters) in torch.optim's names:
    # ("sgd", {"momentum": 0.875}), ("adam", {"betas": (0.9, 0.999), "eps": 1e-8}),
    # ("rprop", {"etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)}); lr is the Task's lr.
    optimizer: tuple = None

    def __post_init__(self):
        self.dtype = np.dtype(self.dtype)
        self.weights = [np.ascontiguousarray(W, dtype=self.dtype) for W in self.weights]
        self.biases = [np.ascontiguousarray(b, dtype=self.dtype) for b in self.biases]
        self.activations = tuple(self.activations or ("sigmoid",) * len(self.weights))
        if len(self.activations) != len(self.weights):
            raise ValueError(f"{len(self.activations)} activations for {len(self.weights)} weight layers")
        unknown = [a for a in self.activations if a not in ACTIVATIONS]
        output, cross_entropy = self.activations[-1], self.loss == "cross_entropy"
        # fastbp's rules: softmax on the output only, cross-entropy needs a sigmoid or softmax
        # output, softmax needs cross-entropy (fastbp refuses softmax with squared error)
        if (
            unknown
            or "softmax" in self.activations[:-1]
            or self.loss not in LOSSES
            or (cross_entropy and output not in ("sigmoid", "softmax"))
            or (output == "softmax" and not cross_entropy)
        ):
            raise ValueError(f"not a model fastbp trains: {self.activations} {self.loss!r}")
        if self.optimizer is not None:
            rule, hyper = self.optimizer
            if rule not in OPTIMIZERS or not set(hyper) <= set(OPTIMIZERS[rule]):
                raise ValueError(f"not an optimizer of the benchmarks: {self.optimizer}")
            self.optimizer = (rule, dict(hyper))
        if self.batch_size == 0 and (self.optimizer or ("",))[0] != "rprop":
            raise ValueError("batch_size=0 (all rows in one batch) is RPROP's")

    @property
    def full_batch(self):
        """One batch of all the rows per epoch (RPROP)."""
        return self.batch_size == 0

    @property
    def rule(self):
        """The optimizer's name, or None for plain SGD."""
        return self.optimizer[0] if self.optimizer else None

    def hyper(self, name):
        """A hyper-parameter of the optimizer (torch.optim's default if not given)."""
        return self.optimizer[1].get(name, OPTIMIZERS[self.rule][name])

    def describe_optimizer(self):
        if not self.optimizer:
            return "plain SGD"
        return f"{self.rule} " + ", ".join(f"{k}={v}" for k, v in self.optimizer[1].items())

    @property
    def sigmoid_squared_error(self):
        """The note's model (every workload before issue 10): peers keep their original code for it."""
        return self.loss == "squared_error" and all(a == "sigmoid" for a in self.activations)

    def network_keywords(self):
        """The model as ``fastbp.Network.from_weights`` keywords ({} for the note's model, so that
        the sigmoid workloads call fastbp exactly as before issue 10)."""
        if self.sigmoid_squared_error:
            return {}
        return {
            "activation": tuple(self.activations[:-1]),
            "output_activation": self.activations[-1],
            "loss": self.loss,
        }

    def describe_model(self):
        return "/".join(self.activations) + ", " + self.loss.replace("_", " ")

    @property
    def layer_sizes(self):
        return (self.weights[0].shape[1], *tuple(W.shape[0] for W in self.weights))

    def flat_params(self):
        """fastbp's flat layout: for each layer W (row-major) then b."""
        return np.concatenate([p for W, b in zip(self.weights, self.biases) for p in (W.ravel(), b)])


# fastbp's names (fastbp._model.ACTIVATIONS and LOSSES; the index is the kernels' code).
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax")
LOSSES = ("squared_error", "cross_entropy")
LEAKY_SLOPE = 0.01
# The optimizers' hyper-parameters a Task may give, with torch.optim's (and fastbp's) defaults.
OPTIMIZERS = {
    "sgd": {"momentum": 0.0},
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8},
    "rprop": {"etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)},
}


class Unavailable(Exception):
    """A peer cannot run this task here (not installed, mode not supported)."""


class Peer:
    """Base class.  ``name`` is the short name used on the command line and in
    the tables; ``about`` says in one line what the peer is."""

    name = "?"
    about = ""
    online = True  # can do batch_size=1
    minibatch = True  # can do batch_size>1
    multithreaded = False  # uses more than one thread when allowed to
    optimizers = ()  # the Task optimizers (issue 11) it runs besides plain SGD

    def check(self, task):
        """Raise ``Unavailable`` with the reason if this peer cannot run ``task``."""
        if task.optimizer is not None and task.rule not in self.optimizers:
            raise Unavailable(f"n/a: no {task.rule} here" if self.optimizers else "n/a: plain SGD only")
        if task.batch_size == 1 and not self.online:
            raise Unavailable("no online training")
        if task.batch_size > 1 and not self.minibatch:
            raise Unavailable("no mini-batch training")

    def trainer(self, task, X, Y):  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class Measurement:
    rates: list  # samples per second, one per repeat
    costs: np.ndarray  # mean J per epoch (identical across repeats)
    rows: int
    epochs: int

    @property
    def median(self):
        return float(np.median(self.rates))


def timed_train(trainer, rows, epochs):
    """One timed run from the initial weights: (seconds, costs)."""
    trainer.reset()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection is not part of the work
    try:
        start = time.perf_counter()
        costs = trainer.train(rows, epochs)
        seconds = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return seconds, np.asarray(costs, dtype=np.float64)


def plan(trainer, n_rows, seconds=0.3, max_epochs=1000):
    """Choose (rows, epochs) so that one run lasts about ``seconds``: train on
    more and more rows until a run takes 20 ms, then scale.  Slow peers get a
    prefix of the rows in one epoch, fast ones several epochs over all of them."""
    for _ in range(3):  # warm up: first calls compile (TorchScript), load libraries, touch pages
        timed_train(trainer, min(n_rows, 2), 1)
    rows = min(n_rows, 16)
    while True:
        elapsed, _ = timed_train(trainer, rows, 1)
        if elapsed >= 0.02 or rows == n_rows:
            break
        rows = min(n_rows, rows * 4)
    samples = max(1, int(seconds * rows / max(elapsed, 1e-9)))
    if samples <= n_rows:
        return samples, 1
    return n_rows, int(min(max_epochs, max(1, round(samples / n_rows))))


def plan_epochs(trainer, rows, seconds=0.3, max_epochs=10**8):
    """``plan`` for epochs of a fixed number of rows (all of them): ``(rows,
    epochs)`` with as many epochs as last about ``seconds`` in one call (the
    one-sample epochs of issue 9: a per-epoch cost is part of the work)."""
    for _ in range(3):  # warm up
        timed_train(trainer, rows, 1)
    epochs = 1
    while True:
        elapsed, _ = timed_train(trainer, rows, epochs)
        if elapsed >= 0.02 or epochs >= max_epochs:
            break
        epochs = min(max_epochs, epochs * 4)
    return rows, int(min(max_epochs, max(1, seconds * epochs / max(elapsed, 1e-9))))


def measure(trainer, rows, epochs, repeats):
    """``repeats`` timed runs of ``rows`` x ``epochs`` samples from the initial
    weights.  Every repeat must compute the same costs (they are deterministic)."""
    rates, costs = [], None
    for _ in range(repeats):
        seconds, run_costs = timed_train(trainer, rows, epochs)
        rates.append(rows * epochs / seconds)
        if costs is None:
            costs = run_costs
        elif not np.array_equal(costs, run_costs, equal_nan=True):
            raise AssertionError(f"repeats computed different costs: {costs} then {run_costs}")
    return Measurement(rates, costs, rows, epochs)


def measure_interleaved(runs, repeats, pause=0.0):
    """``measure`` for several (trainer, rows, epochs) at once, taking turns
    (repeat 1 of each, then repeat 2 of each, ...): on a machine whose load
    changes, every peer sees the same changes, so their ratios stay fair.

    ``pause`` seconds (untimed) pass before each run: with several threads,
    the worker threads of the previous peer's BLAS or OpenMP runtime spin for
    a while after its last call (OpenBLAS's about 0.1 s), and on a 2-core
    machine they would take the cores from the next peer's threads."""
    rates = [[] for _ in runs]
    costs = [None for _ in runs]
    for _ in range(repeats):
        for i, (trainer, rows, epochs) in enumerate(runs):
            if pause:
                time.sleep(pause)
            seconds, run_costs = timed_train(trainer, rows, epochs)
            rates[i].append(rows * epochs / seconds)
            if costs[i] is None:
                costs[i] = run_costs
            elif not np.array_equal(costs[i], run_costs, equal_nan=True):
                raise AssertionError(f"repeats computed different costs: {costs[i]} then {run_costs}")
    return [Measurement(r, c, rows, epochs) for r, c, (_, rows, epochs) in zip(rates, costs, runs)]


def benchmark(peer, X, Y, weights, biases, *, lr, epochs, batch_size=1, dtype="float64", repeats=5):
    """The one-call form: train ``peer`` on all of ``X``, ``Y`` for ``epochs``
    from the given initial parameters, ``repeats`` times.  Returns
    ``(samples per second of each repeat, mean J per epoch)``."""
    task = Task(weights, biases, lr, batch_size, dtype)
    peer.check(task)
    trainer = peer.trainer(task, X, Y)
    result = measure(trainer, len(X), epochs, repeats)
    return result.rates, result.costs


def all_peers():
    """Every peer, fastbp first (whether installed or not: ``check`` says)."""
    from . import cpeers, fastbp_peer, numpy_peer, torch_peer

    return [
        fastbp_peer.Fastbp(),
        fastbp_peer.FastbpReference(),
        fastbp_peer.FastbpBaseline(),
        cpeers.Native(),
        cpeers.Fann(),
        numpy_peer.NumpyLoop(),
        torch_peer.TorchSGD(),
        torch_peer.TorchNoGrad(),
        torch_peer.TorchScript(),
    ]
