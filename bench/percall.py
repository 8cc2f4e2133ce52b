"""Per-call cost: one fastbp call on one sample against the same work written
by hand in NumPy and in PyTorch (issue 9).

What a user pays per call when the work is small: inference in a control
loop (``forward(x)``), streaming online learning (``step(x, y, lr)``), an
epoch loop that calls ``train(epochs=1)`` once per epoch.  For each network
and dtype, every call is timed against its obvious by-hand equivalent:

* NumPy: the code a NumPy user writes (``W @ a + b``, ``1 / (1 + exp(-z))``,
  ``np.outer``), allocating as that code does;
* PyTorch: tensors preallocated once as a user would for a hot loop (weights,
  activations, deltas, gradients, the input as a tensor), ``out=`` and in-place
  ops (``addmv``, ``addr_``), everything under one ``torch.no_grad()`` that
  is entered once around the timed loop (not per call: PyTorch's best case).

Before anything is timed, each by-hand version is run once from fastbp's
initial weights and must compute fastbp's numbers (outputs, costs, gradients,
the weights after a step) to rounding; a disagreement is reported as a
MISMATCH and makes compare.py exit 1, like a cost mismatch of a peer.

Timing is timeit's: a loop of n calls with the garbage collector off, n chosen
so that a loop lasts about ``seconds``; the loops of fastbp, NumPy and PyTorch
take turns, repeat by repeat, and the table shows the median microseconds per
call.  ``step`` keeps updating the same network on the same sample (every
peer does the same updates, so they all do the same work), and ``train`` one
epoch of XOR's 4 rows on a 2-2-1 network.

Used by compare.py (its single-thread worker runs ``run``); runs alone too:
``python bench/percall.py [--quick]``.
"""

from __future__ import annotations

import gc
import itertools
import sys
import time
from pathlib import Path

import numpy as np

NETWORKS = {"2-2-2": (2, 2, 2), "64-32-10": (64, 32, 10), "784-128-10": (784, 128, 10)}
LR = 0.0625
BATCH_ROWS = 64
XOR_SIZES, XOR_LR = (2, 2, 1), 0.5
# (label, what the row calls); the by-hand versions take the same arguments.
CALLS = (
    ("forward", "forward(x)"),
    ("step", "step(x, y, lr)"),
    ("cost", "cost(x, y)"),
    ("gradients", "gradients(x, y)"),
    ("forward_batch", f"forward(X), {BATCH_ROWS} rows"),
)
TRAIN_CALL = ("train_xor", "train(X, Y, epochs=1), XOR 4 rows")
PEERS = ("fastbp", "numpy", "torch")
# Issue 9's targets: how many times faster fastbp's call must be than the same
# work by hand, {(call, network): {peer: bar}}, for both dtypes.
TARGETS = {
    ("forward", "2-2-2"): {"numpy": 5.0, "torch": 5.0},
    ("step", "2-2-2"): {"numpy": 5.0, "torch": 20.0},
    ("forward", "64-32-10"): {"numpy": 3.0, "torch": 3.0},
    ("step", "64-32-10"): {"numpy": 3.0, "torch": 10.0},
    ("forward", "784-128-10"): {"numpy": 1.2, "torch": 1.5},
    ("step", "784-128-10"): {"numpy": 1.5, "torch": 2.0},
    ("train_xor", "2-2-1"): {"numpy": 20.0},
}
# By-hand results must equal fastbp's to rounding: sums in another order and
# another exp differ in the last bits, and a step's update inherits that.
RTOL = {"float64": 1e-10, "float32": 2e-4}
PEER_LABEL = {"fastbp": "fastbp", "numpy": "NumPy by hand", "torch": "PyTorch by hand"}


# ---------------------------------------------------------------------------
# By hand in NumPy
# ---------------------------------------------------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class NumpyByHand:
    """The network as a NumPy user writes it: lists of W (n_out x n_in) and b."""

    def __init__(self, weights, biases):
        self.W = [np.array(W) for W in weights]
        self.b = [np.array(b) for b in biases]

    def forward(self, x):
        a = x
        for W, b in zip(self.W, self.b):
            a = _sigmoid(W @ a + b)
        return a

    def forward_batch(self, X):
        A = X
        for W, b in zip(self.W, self.b):
            A = _sigmoid(A @ W.T + b)
        return A

    def cost(self, x, y):
        e = self.forward(x) - y
        return 0.5 * float(e @ e)

    def _forward_all(self, x, y):
        a = [x]
        for W, b in zip(self.W, self.b):
            a.append(_sigmoid(W @ a[-1] + b))
        e = a[-1] - y
        return a, e * a[-1] * (1 - a[-1]), 0.5 * float(e @ e)

    def gradients(self, x, y):
        a, delta, _ = self._forward_all(x, y)
        L = len(self.W)
        gW, gb = [None] * L, [None] * L
        for l in reversed(range(L)):
            gW[l], gb[l] = np.outer(delta, a[l]), delta
            if l:
                delta = (self.W[l].T @ delta) * a[l] * (1 - a[l])
        return gW, gb

    def step(self, x, y, lr):
        a, delta, J = self._forward_all(x, y)
        for l in reversed(range(len(self.W))):
            previous = (self.W[l].T @ delta) * a[l] * (1 - a[l]) if l else None  # before W[l] changes
            self.W[l] -= lr * np.outer(delta, a[l])
            self.b[l] -= lr * delta
            delta = previous
        return J

    def train_epoch(self, X, Y, lr):
        """One online epoch, a sample at a time: the mean J (as train returns)."""
        total = 0.0
        for x, y in zip(X, Y):
            total += self.step(x, y, lr)
        return total / len(X)


# ---------------------------------------------------------------------------
# By hand in PyTorch: preallocated tensors, in place, no autograd
# ---------------------------------------------------------------------------


class TorchByHand:
    def __init__(self, weights, biases, batch_rows=BATCH_ROWS):
        import torch

        self.torch = torch
        self.W = [torch.from_numpy(np.array(W)) for W in weights]
        self.b = [torch.from_numpy(np.array(b)) for b in biases]
        dtype = self.W[0].dtype
        sizes = (self.W[0].shape[1], *tuple(W.shape[0] for W in self.W))
        new = lambda *shape: torch.empty(*shape, dtype=dtype)  # noqa: E731
        self.a = [None] + [new(n) for n in sizes[1:]]  # a[0]: the input itself
        self.A = [None] + [new(batch_rows, n) for n in sizes[1:]]
        self.delta = [new(n) for n in sizes]
        self.tmp = [new(n) for n in sizes]
        self.gW = [new(*W.shape) for W in self.W]
        self.gb = [new(n) for n in sizes[1:]]
        self.J = new(())

    def forward(self, x):
        torch, a = self.torch, self.a
        a[0] = x
        for l in range(len(self.W)):
            torch.addmv(self.b[l], self.W[l], a[l], out=a[l + 1]).sigmoid_()
        return a[-1]

    def forward_batch(self, X):
        torch, A = self.torch, self.A
        A[0] = X
        for l in range(len(self.W)):
            torch.addmm(self.b[l], A[l], self.W[l].t(), out=A[l + 1]).sigmoid_()
        return A[-1]

    def _output_delta(self, y):
        """J (a Python float) and delta[L] = (o - y) o (1 - o), after forward."""
        torch, L = self.torch, len(self.W)
        o, error = self.a[L], self.delta[L]
        torch.sub(o, y, out=error)
        torch.dot(error, error, out=self.J)
        error.mul_(torch.mul(o, o, out=self.tmp[L]).neg_().add_(o))
        return 0.5 * self.J.item()

    def _hidden_delta(self, l):
        torch, a = self.torch, self.a
        torch.mv(self.W[l - 1].t(), self.delta[l], out=self.delta[l - 1])
        self.delta[l - 1].mul_(torch.mul(a[l - 1], a[l - 1], out=self.tmp[l - 1]).neg_().add_(a[l - 1]))

    def cost(self, x, y):
        torch = self.torch
        o, error = self.forward(x), self.delta[-1]
        torch.sub(o, y, out=error)
        return 0.5 * torch.dot(error, error, out=self.J).item()

    def gradients(self, x, y):
        torch = self.torch
        self.forward(x)
        self._output_delta(y)
        for l in range(len(self.W), 0, -1):
            if l > 1:
                self._hidden_delta(l)
            torch.outer(self.delta[l], self.a[l - 1], out=self.gW[l - 1])
            self.gb[l - 1].copy_(self.delta[l])
        return self.gW, self.gb

    def step(self, x, y, lr):
        self.forward(x)
        J = self._output_delta(y)
        for l in range(len(self.W), 0, -1):
            if l > 1:  # before W[l-1] (the weights into layer l) changes
                self._hidden_delta(l)
            self.W[l - 1].addr_(self.delta[l], self.a[l - 1], alpha=-lr)
            self.b[l - 1].add_(self.delta[l], alpha=-lr)
        return J


# ---------------------------------------------------------------------------
# Checks and timing
# ---------------------------------------------------------------------------


def _as_numpy(value):
    if isinstance(value, (list, tuple)):
        return [_as_numpy(v) for v in value]
    if hasattr(value, "numpy"):
        return value.numpy().copy()
    return np.array(value, dtype=np.float64) if np.isscalar(value) else np.array(value)


def _max_rel_diff(got, expected):
    """Largest difference over the arrays, relative to each array's largest value."""
    if isinstance(expected, list):
        return max(_max_rel_diff(g, e) for g, e in zip(got, expected))
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(got - expected))) / scale


def _time_loop(fn, args, n, context=None):
    """Seconds for n calls fn(*args), as timeit runs them (gc off)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with context() if context else _nothing():
            start = time.perf_counter()
            for _ in itertools.repeat(None, n):
                fn(*args)
            return time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _calls_for(fn, args, seconds, context):
    """timeit.autorange, scaled: n calls lasting about ``seconds``."""
    for _ in range(3):  # warm up
        _time_loop(fn, args, 10, context)
    n = 1
    while True:
        elapsed = _time_loop(fn, args, n, context)
        if elapsed >= 0.005 or n >= 10**7:
            break
        n *= 10
    return max(1, int(n * seconds / max(elapsed, 1e-9)))


def measure(contenders, repeats, seconds):
    """contenders: {peer: (fn, args, context)}.  Median microseconds per call of
    each, the loops taking turns repeat by repeat.  Returns {peer: entry}."""
    plans = {p: _calls_for(fn, args, seconds, ctx) for p, (fn, args, ctx) in contenders.items()}
    times = {p: [] for p in contenders}
    for _ in range(repeats):
        for p, (fn, args, ctx) in contenders.items():
            times[p].append(1e6 * _time_loop(fn, args, plans[p], ctx) / plans[p])
    return {p: {"us": float(np.median(t)), "us_repeats": t, "calls": plans[p]} for p, t in times.items()}


def _data(sizes, dtype, rows):
    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0])).astype(dtype)
    Y = rng.uniform(0.1, 0.9, (rows, sizes[-1])).astype(dtype)
    return X, Y


def _contenders(call, sizes, dtype, torch):
    """For one call: {peer: (fn, args, context, result of one untimed call from
    the initial weights)}; the first call of each is the one checked."""
    import fastbp

    X, Y = _data(sizes, dtype, BATCH_ROWS)
    x, y = X[0].copy(), Y[0].copy()
    if call == "train_xor":
        from fastbp import datasets

        X, Y = (a.astype(dtype) for a in datasets.xor())
    out = {}

    def fresh_fastbp():
        return fastbp.Network(sizes, seed=1, dtype=dtype)

    weights = [np.array(W) for W in fresh_fastbp().weights]
    biases = [np.array(b) for b in fresh_fastbp().biases]

    makers = {"fastbp": fresh_fastbp, "numpy": lambda: NumpyByHand(weights, biases)}
    if torch is not None and call != "train_xor":  # the epoch loop's peer is NumPy's
        makers["torch"] = lambda: TorchByHand(weights, biases)
    for peer, make in makers.items():
        net = make()
        if peer == "torch":
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            tX = torch.from_numpy(np.ascontiguousarray(X))
            args = {
                "forward": (tx,),
                "step": (tx, ty, LR),
                "cost": (tx, ty),
                "gradients": (tx, ty),
                "forward_batch": (tX,),
            }[call]
            context = torch.no_grad
        else:
            args = {
                "forward": (x,),
                "step": (x, y, LR),
                "cost": (x, y),
                "gradients": (x, y),
                "forward_batch": (X,),
                "train_xor": (X, Y),
            }[call]
            context = None
        if call == "train_xor":
            fn = (
                (lambda n: lambda X, Y: n.train(X, Y, epochs=1, lr=XOR_LR))(net)
                if peer == "fastbp"
                else (lambda n: lambda X, Y: n.train_epoch(X, Y, XOR_LR))(net)
            )
        else:
            fn = getattr(net, "forward" if call == "forward_batch" and peer == "fastbp" else call)
        with context() if context else _nothing():
            result = fn(*args)
            if call in ("step", "train_xor"):  # the check covers the update too
                after = (net.weights, net.biases) if peer == "fastbp" else (net.W, net.b)
                result = [_as_numpy(result), _as_numpy(after[0]), _as_numpy(after[1])]
            result = _as_numpy(result)
            if call == "train_xor" and peer == "fastbp":
                result[0] = result[0].reshape(())  # the one epoch's cost
        out[peer] = (fn, args, context, result)
    return out


def _flatten(result):
    if isinstance(result, list):
        return [f for r in result for f in _flatten(r)]
    return [result]


def run_one(call, label, network, sizes, dtype, torch, repeats, seconds):
    contenders = _contenders(call, sizes, dtype, torch)
    entry = {"call": call, "label": label, "network": network, "dtype": dtype, "check": "ok", "peers": {}}
    expected = _flatten(contenders["fastbp"][3])
    diffs = {}
    for peer, (_, _, _, result) in contenders.items():
        if peer != "fastbp":
            got = _flatten(result)
            diffs[peer] = (
                max(_max_rel_diff(g, e) for g, e in zip(got, expected))
                if len(got) == len(expected)
                else float("inf")
            )
    entry["max_rel_diff"] = diffs
    bad = [p for p, d in diffs.items() if not d <= RTOL[dtype]]
    if bad:
        entry["check"] = "MISMATCH"
        entry["mismatch"] = {p: diffs[p] for p in bad}
    timed = measure({p: c[:3] for p, c in contenders.items()}, repeats, seconds)
    entry["peers"] = timed
    for peer in timed:
        if peer != "fastbp":
            timed[peer]["ratio"] = timed[peer]["us"] / timed["fastbp"]["us"]
    return entry


def run(networks=tuple(NETWORKS), dtypes=("float64", "float32"), repeats=5, seconds=0.05, say=print):
    """Every call, network and dtype; returns the JSON-able section compare.py stores."""
    try:
        import torch
    except ImportError:
        torch = None
        say("   per call: PyTorch is not installed: its column is empty")
    out = {
        "repeats": repeats,
        "seconds": seconds,
        "lr": LR,
        "batch_rows": BATCH_ROWS,
        "rtol": RTOL,
        "torch": None if torch is None else torch.__version__,
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "rows": [],
    }
    jobs = [(call, label, name, NETWORKS[name]) for name in networks for call, label in CALLS]
    if "2-2-2" in networks:
        jobs.append((*TRAIN_CALL, "2-2-1", XOR_SIZES))
    for call, label, name, sizes in jobs:
        for dtype in dtypes:
            entry = run_one(call, label, name, sizes, dtype, torch, repeats, seconds)
            out["rows"].append(entry)
            p = entry["peers"]
            cells = "   ".join(
                f"{peer} {p[peer]['us']:9.2f} us"
                + (f" ({p[peer]['ratio']:5.2f}x)" if "ratio" in p[peer] else "")
                for peer in PEERS
                if peer in p
            )
            say(
                f"   {name:10s} {label:34s} {dtype:8s} {cells}   check {entry['check']}"
                + ("" if entry["check"] == "ok" else f" {entry['mismatch']}")
            )
    return out


def targets(section):
    """Issue 9's per-call targets: rows for report.targets."""
    rows = []
    for entry in section.get("rows", []):
        bars = TARGETS.get((entry["call"], entry["network"]))
        if not bars:
            continue
        for peer, bar in bars.items():
            name = f"per call {entry['network']} {entry['label']}: fastbp >= {bar:g}x {PEER_LABEL[peer]}"
            result = entry["peers"].get(peer)
            if result is None:
                rows.append(
                    {"target": name, "dtype": entry["dtype"], "status": "n/a", "why": f"{peer} not measured"}
                )
            elif entry["check"] != "ok":
                rows.append(
                    {
                        "target": name,
                        "dtype": entry["dtype"],
                        "status": "FAIL",
                        "why": "by-hand result differs from fastbp's",
                    }
                )
            else:
                rows.append(
                    {
                        "target": name,
                        "dtype": entry["dtype"],
                        "status": "pass" if result["ratio"] >= bar else "FAIL",
                        "ratio": result["ratio"],
                        "bar": bar,
                    }
                )
    return rows


def mismatches(section):
    return [
        f"per call {e['network']} {e['label']} {e['dtype']}: by hand computed something else than fastbp "
        f"(max relative difference {e['mismatch']})"
        for e in section.get("rows", [])
        if e["check"] != "ok"
    ]


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats of ~0.02 s")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--dtypes", default="float64,float32")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import report

    section = run(
        tuple(args.networks.split(",")),
        tuple(args.dtypes.split(",")),
        repeats=3 if args.quick else 5,
        seconds=0.02 if args.quick else 0.05,
    )
    print("\n".join(report.percall_lines(section)))
    return 1 if mismatches(section) else 0


if __name__ == "__main__":
    sys.exit(main())
