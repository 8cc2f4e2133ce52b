"""Quality on FANN's own benchmark datasets: fastbp's optimizers against FANN 2.2.

    python bench/quality.py /path/to/fann-datasets                # the table (~15 minutes)
    python bench/quality.py DIR --budget 1 --seeds 3 --datasets parity8 gene
    python bench/quality.py DIR --markdown --output quality.md    # Markdown, for docs/performance.md
    python bench/quality.py DIR --tune                            # the search the configs came from

The datasets (FANN's ``*.train``/``*.test`` files, described in the folder's
SOURCE.md) are read from the folder given, never copied.  For each dataset the
network is FANN's benchmark size for it (``HIDDEN``), and each contender is
trained from a fresh network per seed for the same training-time budget
(``--budget`` seconds, default 3) in chunks of epochs; after each chunk, the
test MSE is measured (mean over test rows and outputs of ``(t - o)^2``,
FANN's definition) outside the budget: the clock only runs while a contender
trains, for every contender alike.  A chunk is sized from the epochs per
second so far to take ``budget / REPORTS`` (FANN's protocol: 300 s,
reports every 0.1 s).  Per dataset and contender the report gives, over the
seeds: the median best test MSE (the lowest measured point of each run: like
FANN's ``summary.txt``, early-stopping-optimistic), the median final test
MSE, and the median epochs reached.  A row is "won" by fastbp when the best
fastbp contender's median best test MSE is below the best FANN contender's.

Contenders:

* fastbp ``sgd``, ``momentum``, ``adam``, ``rprop``: plain SGD (``lr=``, the
  same run as ``fastbp.SGD(lr)`` to rounding, and faster), and
  ``fastbp.SGD(momentum=...)``, ``fastbp.Adam``, ``fastbp.RPROP`` through
  ``net.train(X, Y, optimizer=opt, epochs=k)``, one optimizer object per run
  (its state carries over from chunk to chunk).  Their settings (model and
  hyper-parameters) are fixed per dataset in ``CONFIGS``; how they were
  chosen: ``--tune`` (below), never on the test file.
* FANN ``incremental`` (online, lr 0.7 (FANN's default), momentum 0, linear
  error), ``incr. momentum`` (the protocol's fann_incremental_momentum: lr
  0.7, momentum 0.4, linear error) and ``rprop`` (FANN's default algorithm
  with its default settings, tanh error function), all with FANN_SIGMOID
  steepness 0.5 (the logistic) on hidden and output layers as FANN's protocol;
  FANN's own initial weights U(-0.1, 0.1) from ``srand(seed)``
  (``bench/peers/fann_quality.c``, built against Debian's libfann-dev).

``--tune`` is how ``CONFIGS`` was chosen: the training file is split once
(``numpy.random.default_rng(0)``) into 75% fit / 25% validation rows
(parity8 validates on its training rows, as its test file is its training
file), and every candidate of ``candidates()`` trains on the fit rows with
one seed (seed 100, not one of the reported seeds) for ``--budget``; it prints
the candidate with the lowest best validation MSE per dataset and optimizer,
as a ``CONFIGS`` literal.  The reported runs use the whole training file and
seeds 0, 1, 2, ...  ``CONFIGS`` came from ``--tune --clock cpu`` with
``--budget 1.5`` for SGD and ``--budget 1 --optimizers momentum adam rprop``
for the others (the grid of ``candidates()``; ~25 minutes of CPU in all).

``--clock cpu`` measures the budget in process CPU time instead of wall
time: on a machine shared with other work it is what an idle machine's wall
clock would have been (every contender is single-threaded here).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import ClassVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Every contender single-threaded, fastbp's BLAS calls too (set before NumPy
# and SciPy load OpenBLAS): FANN is single-threaded, and OpenBLAS's threads on
# these small GEMMs cost far more than they give on a shared machine (robot,
# 48-96-3: 31 ms per RPROP epoch with 2 threads under load, 1.4 ms with 1).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np

# FANN's benchmark network sizes (benchmarks/benchmark.sh, FANN 2.1 beta): hidden widths.
HIDDEN = {
    "building": (16,),
    "diabetes": (4,),
    "gene": (4, 2),
    "mushroom": (32,),
    "thyroid": (16, 8),
    "soybean": (16, 8),
    "two-spiral": (20, 10),
    "kin32fm": (16,),
    "robot": (96,),
    "parity8": (16,),
    "census-house": (16,),
    "pumadyn-32fm": (10,),
    # in the folder and in FANN's benchmark, not in the issue's twelve (usable with --datasets)
    "abelone": (16,),
    "bank32fm": (16,),
    "bank32nh": (16,),
    "parity13": (26,),
}
DEFAULT_DATASETS = (
    "building",
    "diabetes",
    "gene",
    "mushroom",
    "thyroid",
    "soybean",
    "two-spiral",
    "kin32fm",
    "robot",
    "parity8",
    "census-house",
    "pumadyn-32fm",
)
# One-hot classification targets (rows sum to 1): a softmax output is allowed there.
ONE_HOT = {"diabetes", "gene", "mushroom", "thyroid", "soybean"}
# 0/1 single-output classification: sigmoid with cross-entropy is allowed there.
BINARY = {"two-spiral", "parity8", "parity13"}

REPORTS = 50  # test-MSE measurements per run (one every budget / REPORTS seconds of training)

FASTBP = ("sgd", "momentum", "adam", "rprop")
FANN = ("incremental", "incr. momentum", "rprop")
LABELS = {
    ("fastbp", "sgd"): "fastbp SGD",
    ("fastbp", "momentum"): "fastbp momentum",
    ("fastbp", "adam"): "fastbp Adam",
    ("fastbp", "rprop"): "fastbp RPROP",
    ("fann", "incremental"): "FANN incremental",
    ("fann", "incr. momentum"): "FANN incr. momentum",
    ("fann", "rprop"): "FANN RPROP",
}

# The models a config may name: (hidden activation, output activation, loss).
MODELS = {
    "sig": ("sigmoid", "sigmoid", "squared_error"),
    "tanh": ("tanh", "sigmoid", "squared_error"),
    "tanh-ce": ("tanh", "sigmoid", "cross_entropy"),
    "tanh-softmax": ("tanh", "softmax", "cross_entropy"),
    "sig-softmax": ("sigmoid", "softmax", "cross_entropy"),
}

# fastbp's settings per dataset and optimizer, from `--tune` (see the module docstring); a config is
# dict(model=MODELS key, lr=..., momentum=..., batch_size=..., shuffle=bool).  A dataset missing here
# uses DEFAULT_CONFIG.
DEFAULT_CONFIG = {
    "sgd": dict(model="sig", lr=0.5, shuffle=False),
    "momentum": dict(model="sig", lr=0.1, momentum=0.9, shuffle=False),
    "adam": dict(model="sig", lr=0.001, batch_size=1, shuffle=False),
    "rprop": dict(model="sig", lr=0.01),
}
CONFIGS = {
    "building": {
        "sgd": dict(model="sig", lr=1.0, shuffle=True),
        "momentum": dict(model="sig", lr=0.05, momentum=0.9, shuffle=True),
        "adam": dict(model="sig", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="sig", lr=0.01),
    },
    "diabetes": {
        "sgd": dict(model="sig", lr=0.3, shuffle=True),
        "momentum": dict(model="tanh-softmax", lr=0.05, momentum=0.9, shuffle=True),
        "adam": dict(model="sig", lr=0.003, batch_size=1, shuffle=True),
        "rprop": dict(model="sig", lr=0.01),
    },
    "gene": {
        "sgd": dict(model="sig", lr=0.03, shuffle=True),
        "momentum": dict(model="tanh-softmax", lr=0.01, momentum=0.9, shuffle=True),
        "adam": dict(model="tanh", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="sig", lr=0.01),
    },
    "mushroom": {
        "sgd": dict(model="tanh-softmax", lr=0.1, shuffle=True),
        "momentum": dict(model="tanh-softmax", lr=0.01, momentum=0.9, shuffle=True),
        "adam": dict(model="tanh-softmax", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="tanh-softmax", lr=0.01),
    },
    "thyroid": {
        "sgd": dict(model="tanh", lr=0.03, shuffle=True),
        "momentum": dict(model="tanh", lr=0.01, momentum=0.9, shuffle=True),
        "adam": dict(model="tanh", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="tanh", lr=0.01),
    },
    "soybean": {
        "sgd": dict(model="sig", lr=0.3, shuffle=True),
        "momentum": dict(model="tanh", lr=0.01, momentum=0.9, shuffle=True),
        "adam": dict(model="sig", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="sig", lr=0.01),
    },
    "two-spiral": {
        "sgd": dict(model="tanh", lr=0.1, shuffle=True),
        "momentum": dict(model="tanh", lr=0.01, momentum=0.9, shuffle=True),
        "adam": dict(model="sig", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="tanh-ce", lr=0.01),
    },
    "kin32fm": {
        "sgd": dict(model="tanh", lr=0.1, shuffle=True),
        "momentum": dict(model="sig", lr=0.01, momentum=0.9, shuffle=True),
        "adam": dict(model="tanh", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="tanh", lr=0.01),
    },
    "robot": {
        "sgd": dict(model="tanh", lr=1.0, shuffle=True),
        "momentum": dict(model="tanh", lr=0.05, momentum=0.9, shuffle=True),
        "adam": dict(model="tanh", lr=0.003, batch_size=1, shuffle=True),
        "rprop": dict(model="sig", lr=0.01),
    },
    "parity8": {
        "sgd": dict(model="tanh-ce", lr=0.3, shuffle=True),
        "momentum": dict(model="tanh-ce", lr=0.05, momentum=0.9, shuffle=True),
        "adam": dict(model="sig", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="tanh-ce", lr=0.01),
    },
    "census-house": {
        "sgd": dict(model="tanh", lr=1.0, shuffle=True),
        "momentum": dict(model="tanh", lr=0.05, momentum=0.9, shuffle=True),
        "adam": dict(model="tanh", lr=0.01, batch_size=16, shuffle=True),
        "rprop": dict(model="tanh", lr=0.01),
    },
    "pumadyn-32fm": {
        "sgd": dict(model="sig", lr=0.3, shuffle=True),
        "momentum": dict(model="tanh", lr=0.01, momentum=0.9, shuffle=True),
        "adam": dict(model="sig", lr=0.003, batch_size=1, shuffle=True),
        "rprop": dict(model="sig", lr=0.01),
    },
}


def config(dataset, optimizer):
    return CONFIGS.get(dataset, {}).get(optimizer, DEFAULT_CONFIG[optimizer])


def candidates(dataset, optimizer):
    """The configs ``--tune`` tries for ``optimizer`` on ``dataset``."""
    models = (
        ["sig", "tanh"]
        + (["tanh-softmax"] if dataset in ONE_HOT else [])
        + (["tanh-ce"] if dataset in BINARY else [])
    )
    out = []
    for model in models:
        if optimizer == "sgd":
            out += [dict(model=model, lr=lr, shuffle=True) for lr in (0.03, 0.1, 0.3, 1.0)]
        elif optimizer == "momentum":
            out += [dict(model=model, lr=lr, momentum=0.9, shuffle=True) for lr in (0.01, 0.05)]
        elif optimizer == "adam":
            out += [
                dict(model=model, lr=lr, batch_size=bs, shuffle=True) for lr, bs in ((0.003, 1), (0.01, 16))
            ]
        else:
            out += [dict(model=model, lr=0.01)]  # iRPROP- adapts its steps: the initial one matters little
    return out


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def load(folder, name):
    """``(X, Y, Xt, Yt)``: the training and test files of dataset ``name`` in
    ``folder``, read by ``fastbp.interop.read_fann_data`` (float64)."""
    from fastbp.interop import read_fann_data

    X, Y = read_fann_data(Path(folder) / f"{name}.train")
    Xt, Yt = read_fann_data(Path(folder) / f"{name}.test")
    if Xt.shape[1] != X.shape[1] or Yt.shape[1] != Y.shape[1]:
        raise ValueError(f"{name}: train and test files have different widths")
    return X, Y, Xt, Yt


def test_mse(outputs, targets):
    """FANN's MSE: mean over rows and outputs of (t - o)^2."""
    return float(np.mean((targets - outputs) ** 2))


# ---------------------------------------------------------------------------
# Contenders: make(X, Y, Xt, Yt, sizes, seed) -> trainer with train(epochs) and test_mse()
# ---------------------------------------------------------------------------


class FastbpTrainer:
    def __init__(self, optimizer, cfg, X, Y, Xt, Yt, sizes, seed):
        import fastbp

        hidden, output, loss = MODELS[cfg["model"]]
        self.net = fastbp.Network(sizes, activation=hidden, output_activation=output, loss=loss, seed=seed)
        self.X, self.Y, self.Xt, self.Yt = X, Y, Xt, Yt
        self.batch_size = cfg.get("batch_size")
        self.shuffle = cfg.get("shuffle", False)
        self.seed, self.calls = seed, 0
        self.lr = None
        if optimizer == "sgd":
            # Plain SGD through lr=: the same run as optimizer=fastbp.SGD(lr) to rounding
            # (checked by tests/test_quality_bench.py), and in this build about 7x faster
            # than the optimizer path with momentum 0.
            self.opt, self.lr = None, cfg["lr"]
        elif optimizer == "rprop":
            self.opt = fastbp.RPROP(lr=cfg["lr"])
        elif optimizer == "adam":
            self.opt = fastbp.Adam(lr=cfg["lr"])
        else:
            self.opt = fastbp.SGD(
                lr=cfg["lr"], momentum=cfg.get("momentum", 0.0) if optimizer == "momentum" else 0.0
            )

    def train(self, epochs):
        import fastbp

        self.calls += 1
        extra = {"batch_size": self.batch_size} if self.batch_size else {}
        if self.shuffle:  # a new order stream per chunk (one seed would repeat the same orders)
            extra.update(shuffle=True, seed=self.seed * 1_000_003 + self.calls)
        extra.update({"lr": self.lr} if self.opt is None else {"optimizer": self.opt})
        try:
            self.net.train(self.X, self.Y, epochs=epochs, **extra)
        except fastbp.TrainingDivergedError:
            return False  # the network keeps its last finite weights
        return True

    def test_mse(self):
        return test_mse(self.net.forward(self.Xt), self.Yt)


class FannTrainer:
    _lib = None
    ALGORITHMS: ClassVar[dict] = {
        "incremental": (0, 0.7, 0.0),
        "incr. momentum": (0, 0.7, 0.4),
        "rprop": (2, 0.7, 0.0),
    }

    @classmethod
    def library(cls):
        if cls._lib is None:
            from peers import Unavailable
            from peers.cpeers import HERE as PEERS
            from peers.cpeers import compile_shared

            if not Path("/usr/include/fann.h").exists() and not Path("/usr/local/include/fann.h").exists():
                raise Unavailable("FANN is not installed (Debian: apt-get install libfann-dev)")
            path = compile_shared(PEERS / "fann_quality.c", ["-O2"], ["-ldoublefann", "-lm"])
            lib = ctypes.CDLL(str(path))
            lib.q_create.restype = ctypes.c_void_p
            lib.q_create.argtypes = [
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_long),
                ctypes.c_int,
                ctypes.c_double,
                ctypes.c_double,
                ctypes.c_uint,
            ]
            lib.q_data.restype = ctypes.c_void_p
            lib.q_data.argtypes = [
                ctypes.c_long,
                ctypes.c_long,
                ctypes.c_long,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            lib.q_train.restype = ctypes.c_double
            lib.q_train.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
            lib.q_test_mse.restype = ctypes.c_double
            lib.q_test_mse.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.q_destroy.argtypes = [ctypes.c_void_p]
            lib.q_destroy_data.argtypes = [ctypes.c_void_p]
            cls._lib = lib
        return cls._lib

    def __init__(self, algorithm, X, Y, Xt, Yt, sizes, seed):
        self.lib = lib = self.library()
        code, lr, momentum = self.ALGORITHMS[algorithm]
        sizes = (ctypes.c_long * len(sizes))(*sizes)
        self.ann = lib.q_create(len(sizes), sizes, code, lr, momentum, seed)
        self.train_data = self._data(X, Y)
        self.test_data = self._data(Xt, Yt)
        if not (self.ann and self.train_data and self.test_data):
            raise MemoryError("FANN could not create the network or the data")

    def _data(self, X, Y):
        X, Y = np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(Y, dtype=np.float64)
        return self.lib.q_data(X.shape[0], X.shape[1], Y.shape[1], X.ctypes.data, Y.ctypes.data)

    def train(self, epochs):
        return math.isfinite(self.lib.q_train(self.ann, self.train_data, epochs))

    def test_mse(self):
        return self.lib.q_test_mse(self.ann, self.test_data)

    def __del__(self):
        for name, destroy in (
            ("ann", "q_destroy"),
            ("train_data", "q_destroy_data"),
            ("test_data", "q_destroy_data"),
        ):
            handle = getattr(self, name, None)
            if handle:
                getattr(self.lib, destroy)(handle)


def make_trainer(side, name, cfg, X, Y, Xt, Yt, sizes, seed):
    if side == "fastbp":
        return FastbpTrainer(name, cfg, X, Y, Xt, Yt, sizes, seed)
    return FannTrainer(name, X, Y, Xt, Yt, sizes, seed)


def run(trainer, budget, clock):
    """Train for ``budget`` seconds of ``clock`` (training only), measuring the
    test MSE after each chunk.  Returns dict(best, final, epochs, seconds,
    curve=[(seconds, epochs, mse)], diverged)."""
    curve = [(0.0, 0, trainer.test_mse())]
    interval = budget / REPORTS
    elapsed, epochs, chunk, diverged = 0.0, 0, 1, False
    while elapsed < budget:
        start = clock()
        ok = trainer.train(chunk)
        elapsed += clock() - start
        epochs += chunk
        curve.append((elapsed, epochs, trainer.test_mse()))  # untimed
        if not ok:
            diverged = True
            break
        per_epoch = elapsed / epochs
        chunk = max(1, int(min(interval, budget - elapsed) / per_epoch)) if per_epoch > 0 else chunk * 2
    mses = [m for _, _, m in curve if math.isfinite(m)]
    return dict(
        best=min(mses) if mses else math.inf,
        final=curve[-1][2],
        epochs=epochs,
        seconds=elapsed,
        curve=curve,
        diverged=diverged,
    )


def contenders(only=None):
    out = [("fastbp", name) for name in FASTBP] + [("fann", name) for name in FANN]
    return [c for c in out if only is None or LABELS[c] in only or c[1] in only]


def available(side, name):
    """None, or why this contender cannot run here."""
    from peers import Unavailable

    if side == "fann":
        try:
            FannTrainer.library()
        except Unavailable as why:
            return str(why)
        return None
    import fastbp

    needed = {"sgd": None, "momentum": "SGD", "adam": "Adam", "rprop": "RPROP"}[name]
    if needed and not hasattr(fastbp, needed):
        return f"this fastbp has no fastbp.{needed}"
    if needed and not _compiled_optimizers():
        return "this fastbp's compiled kernels have no optimizers (the python backend is too slow)"
    return None


_PROBED = {}


def _compiled_optimizers():
    """Whether this fastbp trains with an optimizer object on its default
    backend (the compiled kernels); before issue 11's kernels it cannot."""
    if "ok" not in _PROBED:
        import fastbp

        if not hasattr(fastbp, "SGD"):
            _PROBED["ok"] = False
        else:
            try:
                fastbp.Network([1, 1], seed=0).train(
                    [[0.5]], [[0.5]], optimizer=fastbp.SGD(lr=0.1, momentum=0.5)
                )
                _PROBED["ok"] = True
            except NotImplementedError:
                _PROBED["ok"] = False
    return _PROBED["ok"]


def benchmark(folder, datasets, budget, seeds, clock, log=print, only=None):
    results = {}
    for dataset in datasets:
        X, Y, Xt, Yt = load(folder, dataset)
        sizes = (X.shape[1], *HIDDEN[dataset], Y.shape[1])
        results[dataset] = {"sizes": sizes, "contenders": {}}
        for side, name in contenders(only):
            why = available(side, name)
            label = LABELS[side, name]
            if why:
                results[dataset]["contenders"][label] = {"unavailable": why}
                continue
            cfg = config(dataset, name) if side == "fastbp" else None
            runs = []
            for seed in range(seeds):
                trainer = make_trainer(side, name, cfg, X, Y, Xt, Yt, sizes, seed)
                runs.append(run(trainer, budget, clock))
                del trainer
            entry = summarise(runs)
            entry["config"] = cfg
            results[dataset]["contenders"][label] = entry
            log(
                f"  {dataset:13s} {label:20s} best {entry['best']:.5f} final {entry['final']:.5f} "
                f"epochs {entry['epochs']:.0f}"
                + (f" (diverged in {entry['diverged']})" if entry["diverged"] else "")
            )
    return results


def summarise(runs):
    return dict(
        best=float(np.median([r["best"] for r in runs])),
        final=float(np.median([r["final"] for r in runs])),
        epochs=float(np.median([r["epochs"] for r in runs])),
        seconds=float(np.median([r["seconds"] for r in runs])),
        diverged=sum(r["diverged"] for r in runs),
        runs=[{k: v for k, v in r.items() if k != "curve"} for r in runs],
    )


def winner(entries, side):
    ok = {label: e for label, e in entries.items() if "best" in e and label.lower().startswith(side)}
    if not ok:
        return None, None
    label = min(ok, key=lambda k: ok[k]["best"])
    return label, ok[label]["best"]


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def describe_config(cfg):
    if not cfg:
        return ""
    model = cfg["model"]
    parts = [model, f"lr {cfg['lr']:g}"]
    if cfg.get("momentum"):
        parts.append(f"momentum {cfg['momentum']:g}")
    if cfg.get("batch_size"):
        parts.append(f"batch {cfg['batch_size']}")
    if cfg.get("shuffle"):
        parts.append("shuffled")
    return ", ".join(parts)


def fmt(mse):
    return f"{mse:.5f}" if mse >= 1e-4 or mse == 0 else f"{mse:.1e}"


def report(results, markdown, header):
    lines = list(header)
    labels = [LABELS[c] for c in contenders()]
    wins = []
    for dataset, data in results.items():
        entries = data["contenders"]
        present = [label for label in labels if label in entries]
        fb, fb_best = winner(entries, "fastbp")
        fa, fa_best = winner(entries, "fann")
        won = fb_best is not None and fa_best is not None and fb_best < fa_best
        if fb_best is not None and fa_best is not None:
            wins.append((dataset, won, fb, fb_best, fa, fa_best))
        title = f"{dataset} ({'-'.join(map(str, data['sizes']))})"
        if markdown:
            lines += [
                "",
                f"**{title}**",
                "",
                "| contender | best test MSE | final test MSE | epochs | settings |",
                "|---|---|---|---|---|",
            ]
        else:
            lines += ["", title, f"  {'contender':20s} {'best':>9s} {'final':>9s} {'epochs':>8s}  settings"]
        for label in present:
            e = entries[label]
            if "unavailable" in e:
                cells = ("n/a", "n/a", "n/a", e["unavailable"])
            else:
                mark = f" (diverged {e['diverged']})" if e["diverged"] else ""
                cells = (
                    fmt(e["best"]),
                    fmt(e["final"]),
                    f"{e['epochs']:.0f}",
                    describe_config(e.get("config")) + mark,
                )
            name = f"**{label}**" if markdown and label in (fb, fa) else label
            if markdown:
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            else:
                lines.append(f"  {label:20s} {cells[0]:>9s} {cells[1]:>9s} {cells[2]:>8s}  {cells[3]}")
    lines += [
        "",
        "All datasets: median best test MSE / median final test MSE (median epochs) per contender:",
        "",
    ]
    short = [label.replace("fastbp ", "").replace("FANN ", "FANN ") for label in labels]
    if markdown:
        lines += ["| dataset | " + " | ".join(short) + " |", "|---|" + "---|" * len(labels)]
    for dataset, data in results.items():
        cells = []
        for label in labels:
            e = data["contenders"].get(label)
            cells.append(
                "n/a"
                if e is None or "best" not in e
                else f"{fmt(e['best'])} / {fmt(e['final'])} ({e['epochs']:.0f})"
            )
        if markdown:
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
        else:
            lines.append(
                f"  {dataset:13s} " + "  ".join(f"{label}: {cell}" for label, cell in zip(short, cells))
            )
    lines += ["", "Summary (median best test MSE: fastbp's best contender vs FANN's best):", ""]
    if markdown:
        lines += [
            "| dataset | fastbp best | MSE | FANN best | MSE | fastbp lower |",
            "|---|---|---|---|---|---|",
        ]
    for dataset, won, fb, fb_best, fa, fa_best in wins:
        if markdown:
            lines.append(
                f"| {dataset} | {fb} | {fmt(fb_best)} | {fa} | {fmt(fa_best)} | {'yes' if won else '**no**'} |"
            )
        else:
            lines.append(
                f"  {dataset:13s} {fb:18s} {fb_best:.5f}  {fa:20s} {fa_best:.5f}  {'yes' if won else 'NO'}"
            )
    lines += ["", f"fastbp lower on {sum(w[1] for w in wins)} of {len(wins)} datasets"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Tuning (how CONFIGS was chosen)
# ---------------------------------------------------------------------------


def tune(folder, datasets, budget, clock, log=print, optimizers=FASTBP):
    chosen = {}
    for dataset in datasets:
        X, Y, _, _ = load(folder, dataset)
        if dataset.startswith("parity"):
            Xf, Yf, Xv, Yv = X, Y, X, Y  # its test file is its training file
        else:
            order = np.random.default_rng(0).permutation(X.shape[0])
            cut = (3 * X.shape[0]) // 4
            Xf, Yf, Xv, Yv = X[order[:cut]], Y[order[:cut]], X[order[cut:]], Y[order[cut:]]
        sizes = (X.shape[1], *HIDDEN[dataset], Y.shape[1])
        chosen[dataset] = {}
        for name in optimizers:
            if available("fastbp", name):
                continue
            scored = []
            for cfg in candidates(dataset, name):
                result = run(FastbpTrainer(name, cfg, Xf, Yf, Xv, Yv, sizes, 100), budget, clock)
                scored.append((result["best"], cfg))
                log(f"  {dataset:13s} {name:9s} {describe_config(cfg):40s} val best {result['best']:.5f}")
            best, cfg = min(scored, key=lambda s: s[0])
            chosen[dataset][name] = cfg
            log(f"* {dataset:13s} {name:9s} {describe_config(cfg)} (val {best:.5f})")
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the folder with FANN's *.train / *.test files")
    parser.add_argument("--budget", type=float, default=3.0, help="training seconds per run (default 3)")
    parser.add_argument("--seeds", type=int, default=3, help="runs per contender, seeds 0..N-1 (default 3)")
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS), choices=sorted(HIDDEN))
    parser.add_argument(
        "--contenders",
        nargs="+",
        default=None,
        metavar="NAME",
        help="only these (labels such as 'fastbp Adam' or names such as rprop)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="the budget's clock: wall time (default) or process CPU time",
    )
    parser.add_argument("--markdown", action="store_true", help="Markdown tables")
    parser.add_argument("--output", help="also write the report to this file (and the raw results to F.json)")
    parser.add_argument("--render", metavar="F.json", help="only print the report of an earlier run's F.json")
    parser.add_argument("--tune", action="store_true", help="run the search CONFIGS was chosen by")
    parser.add_argument(
        "--optimizers",
        nargs="+",
        default=list(FASTBP),
        choices=FASTBP,
        help="with --tune: only these fastbp optimizers",
    )
    args = parser.parse_args(argv)
    if args.budget <= 0 or args.seeds < 1:
        parser.error("--budget must be > 0 and --seeds >= 1")
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.tune:
        chosen = tune(args.folder, args.datasets, args.budget, clock, log, args.optimizers)
        print("CONFIGS = {")
        for dataset, chosen_for in chosen.items():
            print(f"    {dataset!r}: {{")
            for name, cfg in chosen_for.items():
                print(f"        {name!r}: dict({', '.join(f'{k}={v!r}' for k, v in cfg.items())}),")
            print("    },")
        print("}")
        return 0
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        print(report(saved["results"], args.markdown, saved["header"]), end="")
        return 0
    from machine import cpu_model

    import fastbp

    started = time.time()
    results = benchmark(args.folder, args.datasets, args.budget, args.seeds, clock, log, args.contenders)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; load average {load1:.1f} at the end; "
        f"fastbp {fastbp.__version__} (backend {fastbp.Network([1, 1]).backend}); "
        f"FANN {(FannTrainer._lib is not None and 'libfann 2.2 (doublefann)') or 'n/a'}",
        f"Budget {args.budget:g} s of training per run ({args.clock} clock, test MSE measured outside it, "
        f"{REPORTS} times per run); {args.seeds} seeds; medians over seeds; "
        f"whole run {time.time() - started:.0f} s",
    ]
    text = report(results, args.markdown, header)
    print(text, end="")
    if args.output:
        Path(args.output).write_text(text)
        Path(args.output + ".json").write_text(
            json.dumps({"header": header, "results": results}, indent=1, default=float)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
