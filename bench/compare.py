"""fastbp side by side with FANN, PyTorch, NumPy and a hand-written C loop.

    python bench/compare.py                 # everything (~5 minutes)
    python bench/compare.py --quick         # fewer, shorter repeats (~1-2 minutes)
    python bench/compare.py --only fastbp,FANN,C --workloads 64-32-10
    python bench/compare.py --percall-only  # only the per-call table (bench/percall.py)
    python bench/compare.py --markdown      # the table of docs/performance.md, from bench/results/latest.json
    python bench/compare.py --update-readme # ... written into docs/performance.md

Every workload is trained by every installed peer on the same data from the
same initial weights; each peer's per-epoch costs are checked against fastbp's
(see bench/README.md).  The single-thread runs and the 2-thread runs each
happen in a child process started with OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/
MKL_NUM_THREADS set, so BLAS starts with the right number of threads.  The
parent merges their results, prints the table and the issue's targets, and
writes bench/results/latest.json and bench/results/latest.png.  The
single-thread worker also times one call of fastbp against the same work by
hand (bench/percall.py) and, in the 784-128-10 online float64 case, the
memory roofline's bandwidth probe (bench/roofline.py) in turns with the peers.

Exit status: 0 when every cost check passed (targets missed are reported, not
an error), 1 when a peer computed a different cost or failed (or a by-hand
per-call version computed something else than fastbp), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))


def _f32(x):
    """x rounded to a float (FANN keeps its parameters as floats)."""
    return struct.unpack("f", struct.pack("f", x))[0]


WORKLOADS = {  # layer sizes, rows of data, learning rate
    # The learning rates are powers of two (FANN keeps lr as a float) and small
    # enough that no sigmoid saturates within MAX_EPOCHS: FANN clips a to
    # [0.01, 0.99] inside its derivative, which makes it compute a different
    # gradient (the FANN row reports how many derivatives it clipped).
    "2-2-2": ((2, 2, 2), 500_000, 0.0625),
    # Issue 9's two forms of online 2-2-2 with many epochs: an epoch of ONE
    # sample repeated (as the worked example trains: train(X[:1], Y[:1],
    # epochs=N) in one call), and epochs of 1000 rows.  The same data (their
    # rows are the first rows of 2-2-2's) and learning rate.
    "2-2-2:1row": ((2, 2, 2), 1, 0.0625),
    "2-2-2:1000row": ((2, 2, 2), 1000, 0.0625),
    "64-32-10": ((64, 32, 10), 50_000, 0.03125),
    "784-128-10": ((784, 128, 10), 10_000, 0.03125),
    # Issue 10: other models (MODELS), the same networks.  With ReLU and 784
    # inputs a step of 2^-5 only stirs the weights; 2^-9 learns (J from ln 10
    # down to ~1.9 in 3 epochs).
    "784-128-10:relu-softmax": ((784, 128, 10), 10_000, 0.001953125),
    "64-32-10:tanh": ((64, 32, 10), 50_000, 0.03125),
    # Issue 11: optimizers (OPTIMIZER_TASKS), the note's model.  Momentum 0.875 and lr 2^-8
    # (both exact in FANN's floats) make an effective step of lr / (1 - momentum) = 2^-5, the
    # plain workloads' lr: no sigmoid reaches FANN's clip.
    "64-32-10:momentum": ((64, 32, 10), 50_000, 0.00390625),
    "784-128-10:momentum": ((784, 128, 10), 10_000, 0.00390625),
    "784-128-10:adam": ((784, 128, 10), 10_000, 0.001),
    # RPROP on networks and row counts of FANN's thyroid and mushroom benchmarks (SOURCE.md of
    # the FANN data sets: 3600 and 4062 training rows), synthetic data of those shapes.  The lr
    # (the initial step) is FANN's delta_zero 0.1 times its increase factor 1.2, as floats: FANN's
    # first step (see cpeers.torch_rprop_like_fann).
    "21-16-8-3:rprop": ((21, 16, 8, 3), 3600, _f32(0.1) * _f32(1.2)),
    "125-32-2:rprop": ((125, 32, 2), 4062, _f32(0.1) * _f32(1.2)),
}
# The model of each issue-10 workload: (hidden activation, output activation,
# loss, data); every other workload is the note's (sigmoid, squared error,
# inputs U(0, 1), targets U(0.1, 0.9)).  Data:
# - "one-hot": inputs U(0, 1) (like pixels), targets the one-hot rows (softmax
#   targets' rows must sum to 1) of the class a fixed random linear teacher
#   gives each input, so the network can learn them;
# - "symmetric": inputs U(-0.5, 0.5), targets U(-0.5, 0.5): tanh outputs, and
#   activations that stay inside [-0.98, 0.98], where FANN's tanh derivative
#   clips (the FANN row counts the clipped derivatives: none in 10 epochs; with
#   inputs U(-1, 1) and Glorot's initial weights a few hidden sums pass 2.3
#   within the first epoch; with a tanh teacher's targets the network fits
#   them until its weights saturate).
# The teacher and the symmetric targets come from their own seed: fewer rows
# (--rows) are the first rows of the full data.
MODELS = {
    "784-128-10:relu-softmax": ("relu", "softmax", "cross_entropy", "one-hot"),
    "64-32-10:tanh": ("tanh", "tanh", "squared_error", "symmetric"),
}
# The optimizer (peers.Task's optimizer) and the modes of each issue-11 workload.  RPROP's
# factors and largest step are FANN's floats (1.2 as a float is 1.2000000476837158).
_F32_1_2 = _f32(1.2)
OPTIMIZER_TASKS = {
    "64-32-10:momentum": (("sgd", {"momentum": 0.875}), ("online",)),
    "784-128-10:momentum": (("sgd", {"momentum": 0.875}), ("online",)),
    "784-128-10:adam": (("adam", {"betas": (0.9, 0.999), "eps": 1e-8}), ("minibatch",)),
    "21-16-8-3:rprop": (("rprop", {"etas": (0.5, _F32_1_2), "step_sizes": (1e-6, 50.0)}), ("fullbatch",)),
    "125-32-2:rprop": (("rprop", {"etas": (0.5, _F32_1_2), "step_sizes": (1e-6, 50.0)}), ("fullbatch",)),
}
MAX_EPOCHS = 10
# Workloads whose epochs have a fixed number of rows (all of their rows): a
# run is as many epochs as last about --seconds, a cost per epoch; online only.
FIXED_EPOCH_ROWS = ("2-2-2:1row", "2-2-2:1000row")
MAX_FIXED_EPOCHS = 10**8
# RPROP's full-batch runs stop at this many epochs: its steps follow the signs
# of the gradients, so in float32 two correct implementations (summing in
# different orders) take different steps once a gradient component rounds to
# the other sign, and from there their costs part for good.  On 125-32-2 fastbp
# and torch agree to 1e-7 until epoch 154, then differ by 3e-3 (measured at
# 6c69408 and at the commit before it alike); the check compares the same work
# only before that.
MAX_FULL_BATCH_EPOCHS = 100
# The same parting, sooner, between FANN's float32 RPROP and its emulation
# (fann_irpropm_costs, in float64): on 125-32-2 they agree to 6e-8 over 30
# epochs and differ by 0.28 at 40 (21-16-8-3: 1e-8 at 60, 3e-4 at 75).  So in
# float32 that check covers the first epochs only; in float64 it covers all.
RULE_CHECK_EPOCHS = {"float32": 30}
# How many per-epoch costs the JSON keeps of a run (the first and the last
# half); the check always compares all of them.
STORED_COSTS = 20
MODES = {
    "online": 1,
    "minibatch": 64,
    "fullbatch": 0,
}  # fullbatch: one batch of all rows (RPROP's workloads only)
DTYPES = ("float64", "float32")
DATA_SEED, NETWORK_SEED = 0, 1
# Costs are means of many per-sample costs accumulated in double; peers differ
# only in summation order and rounding, which moves them by far less than this.
RTOL = {"float64": 1e-9, "float32": 1e-5}
# A cost is compared relative to itself or to this fraction of the run's largest
# cost, whichever is larger: a one-row epoch converges until J is rounding noise
# (1e-29 in float64, 1e-11 in float32, where every peer's updates round to no
# change), and rounding noise relative to itself is O(1).  The costs before that
# point carry the check.
COST_FLOOR = 1e-3


def make_data(workload, dtype, rows=None):
    """Inputs U(0, 1) and targets U(0.1, 0.9) from a fixed seed (the issue-10
    workloads: the data of their MODELS entry)."""
    import numpy as np

    sizes, n, _ = WORKLOADS[workload]
    rng = np.random.default_rng(DATA_SEED)
    n = rows or n
    data = MODELS[workload][3] if workload in MODELS else None
    if data == "one-hot":
        X = rng.random((n, sizes[0]))
        teacher = np.random.default_rng(DATA_SEED + 1).standard_normal((sizes[0], sizes[-1]))  # not from rows
        Y = np.eye(sizes[-1])[np.argmax((X - 0.5) @ teacher, axis=1)]
        return X.astype(dtype), Y.astype(dtype)
    if data == "symmetric":
        X = rng.uniform(-0.5, 0.5, (n, sizes[0])).astype(dtype)
        Y = np.random.default_rng(DATA_SEED + 1).uniform(-0.5, 0.5, (n, sizes[-1])).astype(dtype)
        return X, Y
    X = rng.random((n, sizes[0])).astype(dtype)
    Y = rng.uniform(0.1, 0.9, (n, sizes[-1])).astype(dtype)
    return X, Y


def model_of(workload):
    """(activations per weight layer, loss) of a workload."""
    sizes = WORKLOADS[workload][0]
    hidden, output, loss, _ = MODELS.get(workload, ("sigmoid", "sigmoid", "squared_error", None))
    return (hidden,) * (len(sizes) - 2) + (output,), loss


def make_task(workload, dtype, batch_size):
    """The initial weights of ``fastbp.Network(sizes, seed=1)`` with the
    workload's model (so each activation gets fastbp's initialisation for it)."""
    from peers import Task

    import fastbp

    sizes, _, lr = WORKLOADS[workload]
    activations, loss = model_of(workload)
    model = {}
    if workload in MODELS:
        model = dict(activation=activations[:-1], output_activation=activations[-1], loss=loss)
    try:
        net = fastbp.Network(sizes, seed=NETWORK_SEED, dtype=dtype, **model)
    except (
        TypeError
    ) as error:  # a fastbp from before issue 10: its (sigmoid) initialisation, fastbp itself n/a
        if "keyword" not in str(error):
            raise
        net = fastbp.Network(sizes, seed=NETWORK_SEED, dtype=dtype)
    optimizer = OPTIMIZER_TASKS[workload][0] if workload in OPTIMIZER_TASKS else None
    return Task(
        net.weights,
        net.biases,
        lr,
        batch_size,
        dtype,
        activations=activations,
        loss=loss,
        optimizer=optimizer,
    )


def runs_in(workload, mode):
    """Whether the workload has this mode: an issue-11 workload its own modes,
    the others online and mini-batch (a 1-row epoch online only)."""
    if workload in OPTIMIZER_TASKS:
        return mode in OPTIMIZER_TASKS[workload][1]
    return mode == "online" or (mode == "minibatch" and workload not in FIXED_EPOCH_ROWS)


def say(*parts):
    print(*parts, flush=True)


# ---------------------------------------------------------------------------
# Worker: runs the cases of one thread count, in a process started with the
# BLAS thread variables set.
# ---------------------------------------------------------------------------


class CostReference:
    """fastbp's per-epoch costs for (rows, epochs), computed once per rows and
    reused for shorter runs.  Falls back to the NumPy peer (flagged) when
    fastbp cannot run the case."""

    def __init__(self, trainer, name):
        self.trainer, self.name, self.known = trainer, name, {}

    def costs(self, rows, epochs):
        import numpy as np

        known = self.known.get(rows)
        if known is None or len(known) < epochs:
            self.trainer.reset()
            known = self.known[rows] = np.asarray(self.trainer.train(rows, epochs), dtype=float)
        return known[:epochs]


def check_costs(costs, expected, dtype):
    import numpy as np

    costs, expected = np.asarray(costs, dtype=float), np.asarray(expected, dtype=float)
    if costs.shape != expected.shape or not np.isfinite(costs).all():
        return False, float("inf")
    scale = np.maximum(np.abs(expected), COST_FLOOR * float(np.max(np.abs(expected))))
    diff = float(np.max(np.abs(costs - expected) / scale))
    return diff <= RTOL[dtype], diff


def _stored(values):
    """At most STORED_COSTS of a run's per-epoch values, for the JSON."""
    values = list(values)
    if len(values) <= STORED_COSTS:
        return values
    return values[: STORED_COSTS // 2] + values[-STORED_COSTS // 2 :]


def _short(values):
    values = list(values)
    return (
        str(values)
        if len(values) <= 6
        else f"[{values[0]:.9g}, {values[1]:.9g}, ... {values[-1]:.9g}] ({len(values)} epochs)"
    )


def run_case(workload, mode, dtype, threads, peer_list, args):
    import numpy as np
    from machine import training_flops
    from peers import Unavailable, measure_interleaved, plan, plan_epochs

    sizes, n_rows, lr = WORKLOADS[workload]
    task = make_task(workload, dtype, MODES[mode])
    fixed = workload in FIXED_EPOCH_ROWS or task.full_batch  # RPROP: every epoch all rows
    X, Y = make_data(workload, dtype, n_rows if fixed else args.rows and min(args.rows, n_rows))
    case = {
        "workload": workload,
        "mode": mode,
        "batch_size": task.batch_size,
        "dtype": dtype,
        "threads": threads,
        "lr": lr,
        "flops_per_sample": training_flops(sizes),
        "results": [],
    }
    if fixed:
        case["epoch_rows"] = n_rows
    if workload in MODELS:
        case["activations"], case["loss"] = list(task.activations), task.loss
    if task.optimizer:
        case["optimizer"] = [task.rule, task.optimizer[1]]
    say(
        f"\n== {workload}  {mode}{'' if mode != 'minibatch' else ' ' + str(task.batch_size)}  {dtype}  "
        f"{threads} thread{'s' if threads > 1 else ''}"
        + (f"  (epochs of {n_rows} row{'s' * (n_rows > 1)})" if fixed else "")
    )

    reference = None
    # the fallback when fastbp cannot run the case: NumPy (plain SGD) or torch.optim (optimizers)
    for name in ("fastbp", "torch-sgd" if task.optimizer else "numpy"):
        peer = next(p for p in all_peer_objects() if p.name == name)
        try:
            peer.check(task)
            reference = CostReference(peer.trainer(task, X, Y), name)
            break
        except Unavailable as why:
            say(f"   cost reference: {name} unavailable ({why})")
    case["reference"] = reference.name if reference else None

    ready = []  # (peer, entry, trainer, rows, epochs)
    for peer in peer_list:
        entry = {"peer": peer.name}
        case["results"].append(entry)
        try:
            peer.check(task)
            trainer = peer.trainer(task, X, Y)
            if threads > 1:
                time.sleep(args.thread_pause)  # as before each timed run: the plan's timings count too
            if fixed:
                most = MAX_FULL_BATCH_EPOCHS if task.full_batch else MAX_FIXED_EPOCHS
                rows, epochs = plan_epochs(trainer, len(X), seconds=args.seconds, max_epochs=most)
            else:
                rows, epochs = plan(trainer, len(X), seconds=args.seconds, max_epochs=MAX_EPOCHS)
        except Unavailable as why:
            entry.update(status="skipped", reason=str(why))
            say(f"   {peer.name:13s} skipped: {why}")
            continue
        except Exception as error:
            entry.update(status="error", reason=f"{type(error).__name__}: {error}")
            say(f"   !!! {peer.name} FAILED: {entry['reason']}")
            continue
        if isinstance(getattr(trainer, "about", None), dict):  # fastbp-base: which fastbp its child imported
            entry["imported"] = trainer.about
            say(f"   {peer.name:13s} runs {trainer.about}")
        ready.append((peer, entry, trainer, rows, epochs))
    roof_runs = _roofline_probes(workload, mode, dtype, threads, sizes, len(X), args)
    runs = [(t, rows, epochs) for _, _, t, rows, epochs in ready] + roof_runs
    # The peers take turns, repeat by repeat (see measure_interleaved); the
    # roofline's probes take their turns with them.
    measurements = measure_interleaved(runs, args.repeats, pause=args.thread_pause if threads > 1 else 0.0)
    if roof_runs:
        import roofline

        case["roofline"] = roofline.result([t for t, _, _ in roof_runs], measurements[len(ready) :])
        measurements = measurements[: len(ready)]
    for (peer, entry, trainer, rows, epochs), result in zip(ready, measurements):
        entry.update(
            status="ok",
            rows=rows,
            epochs=epochs,
            rates=result.rates,
            median=result.median,
            costs=_stored(result.costs.tolist()),
            n_costs=len(result.costs),
        )
        if hasattr(trainer, "fann_mse"):
            # FANN's own MSE: mean over samples and outputs of (y - o)^2 = 2 J / n_out
            entry["fann_mse_as_J"] = _stored((np.asarray(trainer.fann_mse) * sizes[-1] / 2).tolist())
            entry["fann_clipped"] = trainer.clipped_derivatives(rows, epochs)
        own = trainer.rule_costs(rows, epochs) if hasattr(trainer, "rule_costs") else None
        if own is not None:
            # A peer whose rule is not torch's (FANN's iRPROP-): all its costs against its own rule
            # (emulated), and the first epochs, where the rules agree, against the reference.
            rule_expected, agree, rule_name = own
            m = min(epochs, RULE_CHECK_EPOCHS.get(dtype, epochs))
            rule_ok, rule_diff = check_costs(result.costs[:m], rule_expected[:m], dtype)
            entry.update(
                check_rule=rule_name,
                rule_check="ok" if rule_ok else "MISMATCH",
                rule_rel_diff=rule_diff,
                rule_expected=_stored(rule_expected.tolist()),
                agree_epochs=min(agree, epochs),
                rule_epochs=m,
            )
            if not rule_ok:
                say(
                    f"   !!! {peer.name} does not compute {rule_name}: {_short(result.costs)} vs "
                    f"{_short(rule_expected)} (max relative difference {rule_diff:.3g})"
                )
        if reference is not None:
            expected = reference.costs(rows, epochs)
            n = epochs if own is None else min(own[1], epochs)
            ok, diff = check_costs(result.costs[:n], expected[:n], dtype)
            ok = ok and entry.get("rule_check", "ok") == "ok"
            entry.update(
                check="ok" if ok else "MISMATCH", max_rel_diff=diff, expected=_stored(expected.tolist())
            )
        else:
            entry.update(check="unchecked" if own is None else entry["rule_check"])
        spread = (max(result.rates) - min(result.rates)) / 2 / result.median
        say(
            f"   {peer.name:13s} {result.median:12,.0f} samples/s  ±{100 * spread:4.1f}%  "
            f"({rows} rows x {epochs} epochs)  cost {result.costs[-1]:.9g}  check {entry['check']}"
            + (
                f" (rel diff {entry['max_rel_diff']:.1e}"
                + (
                    f" over the first {entry['agree_epochs']} epochs; "
                    f"{entry['check_rule']}: {entry['rule_check']}, {entry['rule_rel_diff']:.1e}"
                    + (f" over {entry['rule_epochs']} epochs" if entry["rule_epochs"] < epochs else "")
                    if "check_rule" in entry
                    else ""
                )
                + ")"
                if "max_rel_diff" in entry
                else ""
            )
            + (f"  = {result.median / rows:,.1f} epochs/s" if task.full_batch else "")
        )
        if entry["check"] == "MISMATCH":
            say(
                f"   !!! COST MISMATCH: {peer.name} computed {_short(result.costs)} but {reference.name} computed "
                f"{_short(expected)} on the same work (max relative difference {diff:.3g} > rtol {RTOL[dtype]:g})"
            )
            if entry.get("fann_clipped"):
                say(
                    f"   !!! FANN clipped {entry['fann_clipped']} derivatives (sigmoid a to [0.01, 0.99], tanh a "
                    "to [-0.98, 0.98]): its gradient is not the exact one there. Lower the workload's lr or MAX_EPOCHS."
                )
    if "roofline" in case:
        import report
        import roofline

        case["roofline"].update(roofline.fractions(case))
        for line in report.roofline_lines(case):
            say(" " + line)
    return case


def _roofline_probes(workload, mode, dtype, threads, sizes, n_rows, args):
    """[(probe, rows, epochs)] of the roofline's probes for this case, or []."""
    import roofline
    from peers import Unavailable, plan

    if args.no_roofline or (workload, mode, dtype) != roofline.CASE or threads != 1:
        return []
    try:
        probes = roofline.probes(sizes, dtype)
    except Unavailable as why:
        say(f"   roofline skipped: {why}")
        return []
    return [(probe, *plan(probe, n_rows, seconds=args.seconds, max_epochs=MAX_EPOCHS)) for probe in probes]


def run_two_networks(workload, dtype, args):
    """Throughput of two networks trained at once from two Python threads
    against one alone (fastbp releases the GIL), and the same for the C loop
    (ctypes releases it too) as what the machine allows."""
    import numpy as np
    from peers import Unavailable, plan, timed_train

    task = make_task(workload, dtype, 1)
    X, Y = make_data(workload, dtype, args.rows and min(args.rows, WORKLOADS[workload][1]))
    out = {"workload": workload, "dtype": dtype, "results": []}
    say(f"\n== two networks in two threads: {workload} online {dtype}")
    for peer in all_peer_objects():
        if peer.name not in ("fastbp", "C") or (args.only and peer.name not in args.only):
            continue
        try:
            peer.check(task)
        except Unavailable as why:
            say(f"   {peer.name:13s} skipped: {why}")
            continue
        pair = [peer.trainer(task, X, Y), peer.trainer(task, X, Y)]
        rows, epochs = plan(pair[0], len(X), seconds=args.seconds, max_epochs=MAX_EPOCHS)
        one_rates, two_rates, costs_ok = [], [], True
        for _ in range(args.repeats):  # one alone, then two at once, taking turns
            seconds, one_costs = timed_train(pair[0], rows, epochs)
            one_rates.append(rows * epochs / seconds)
            results = [None, None]
            barrier = threading.Barrier(3)

            def work(i):
                barrier.wait()
                results[i] = timed_train(pair[i], rows, epochs)

            workers = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
            for worker in workers:
                worker.start()
            barrier.wait()
            start = time.perf_counter()
            for worker in workers:
                worker.join()
            wall = time.perf_counter() - start
            two_rates.append(2 * rows * epochs / wall)
            costs_ok &= all(list(r[1]) == list(one_costs) for r in results)
        one, two = float(np.median(one_rates)), float(np.median(two_rates))
        entry = {
            "peer": peer.name,
            "rows": rows,
            "epochs": epochs,
            "one": one,
            "one_rates": one_rates,
            "two": two,
            "two_rates": two_rates,
            "ratio": two / one,
            "check": "ok" if costs_ok else "MISMATCH",
        }
        out["results"].append(entry)
        say(
            f"   {peer.name:13s} one: {one:12,.0f}/s   two: {two:12,.0f}/s   ratio {entry['ratio']:.2f}"
            f"   costs {'same as alone' if costs_ok else 'MISMATCH: the threads changed the result'}"
        )
    return out


def run_memory(args):
    """Peak memory a training run adds beyond its data and network, in a fresh
    process per configuration: it must not grow with the rows or the epochs."""
    configs = [
        ("2-2-2", "online", 1_000_000, 1),
        ("2-2-2", "online", 4_000_000, 1),
        ("2-2-2", "online", 1_000_000, 8),
        ("2-2-2", "minibatch", 1_000_000, 1),
        ("2-2-2", "minibatch", 4_000_000, 1),
        ("784-128-10", "minibatch", 2_000, 1),
    ]
    if args.quick:
        configs = [(w, m, max(2_000, r // 4), e) for w, m, r, e in configs]
    out = []
    say("\n== memory: peak RSS a training run adds (fastbp, float64, fresh process each)")
    for workload, mode, rows, epochs in configs:
        command = [sys.executable, __file__, "--memory-probe", f"{workload},{mode},{rows},{epochs}"]
        # A fixed mmap threshold: glibc then returns every large block to the
        # system when it is freed, so the data set's temporaries do not leave
        # resident pages that a later allocation reuses unseen.
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        probe = subprocess.run(command, capture_output=True, text=True, env=env)
        if probe.returncode != 0:
            message = (probe.stderr.strip().splitlines() or ["failed"])[-1]
            say(f"   {workload} {mode} rows={rows} epochs={epochs}: {message}")
            out.append({"workload": workload, "mode": mode, "rows": rows, "epochs": epochs, "error": message})
            continue
        entry = json.loads(probe.stdout.strip().splitlines()[-1])
        out.append(entry)
        say(
            f"   {workload:10s} {mode:9s} rows={rows:>9,} epochs={epochs}: data {entry['data_bytes'] / 2**20:8.1f} MiB, "
            f"added by train {entry['added_bytes'] / 2**10:9.1f} KiB (NumPy/Python allocations "
            f"{entry['traced_bytes'] / 2**10:.1f} KiB)"
        )
    return out


def memory_probe(spec):
    """In a fresh process: peak RSS added by one train call (prints JSON)."""
    import gc

    workload, mode, rows, epochs = spec.split(",")
    rows, epochs = int(rows), int(epochs)
    _sizes, _, lr = WORKLOADS[workload]
    X, Y = make_data(workload, "float64", rows)
    task = make_task(workload, "float64", MODES[mode])
    import fastbp

    net = fastbp.Network.from_weights(task.weights, task.biases)
    try:
        net.train(X[:2], Y[:2], epochs=1, lr=lr, batch_size=task.batch_size)  # load everything once
    except NotImplementedError as error:
        raise SystemExit(f"n/a: {error}") from None
    gc.collect()
    clear = Path("/proc/self/clear_refs")
    try:
        clear.write_text("5")  # reset VmHWM (the peak RSS) to the current RSS
    except OSError:
        raise SystemExit("cannot reset the peak RSS (/proc/self/clear_refs): memory not measured") from None
    import tracemalloc

    tracemalloc.start()  # sees NumPy's and Python's allocations (not a C malloc)
    before = _status_kib("VmRSS")
    net.train(X, Y, epochs=epochs, lr=lr, batch_size=task.batch_size)
    added = (_status_kib("VmHWM") - before) * 1024
    traced = tracemalloc.get_traced_memory()[1]
    print(
        json.dumps(
            {
                "workload": workload,
                "mode": mode,
                "rows": rows,
                "epochs": epochs,
                "data_bytes": X.nbytes + Y.nbytes,
                "params_bytes": sum(W.nbytes + b.nbytes for W, b in zip(net.weights, net.biases)),
                "added_bytes": added,
                "traced_bytes": traced,
                "row_bytes": int(X.nbytes + Y.nbytes) // rows,
            }
        )
    )


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


_PEERS = None


def all_peer_objects():
    global _PEERS
    if _PEERS is None:
        import peers

        _PEERS = peers.all_peers()
    return _PEERS


def worker(args):
    """Run the cases of one thread count; write a JSON file for the parent."""
    import machine

    threads = args.worker_threads
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    out = {"threads": threads, "machine": machine.describe(), "cases": [], "two_networks": []}
    say(f"\n######## {threads} thread{'s' if threads > 1 else ''}: BLAS as threadpoolctl sees it")
    for pool in out["machine"]["blas"]:
        say("   " + ", ".join(f"{k}={v}" for k, v in pool.items() if k != "filepath"))
    out["peak_gflops"] = {}
    for dtype in DTYPES:
        out["peak_gflops"][dtype] = machine.matmul_peak(dtype, n=1024 if args.quick else 1536)
        say(f"   matmul peak {dtype}: {out['peak_gflops'][dtype]:.1f} GFLOP/s")

    if threads == 1 and not args.no_percall:
        import percall

        networks = [
            n
            for n in percall.NETWORKS
            if any(w.split(":")[0] == n and w not in MODELS for w in args.workloads)
        ]
        say("\n== per call: fastbp against the same work by hand (NumPy, PyTorch), one sample")
        out["percall"] = percall.run(
            networks, args.dtypes, repeats=args.repeats, seconds=0.02 if args.quick else 0.05, say=say
        )
    if args.percall_only:
        Path(args.worker_out).write_text(json.dumps(out))
        return 0
    modes = [m for m in args.modes if threads == 1 or m == "minibatch"]
    for workload in args.workloads:
        for mode in modes:
            if not runs_in(workload, mode):
                continue  # e.g. a mini-batch of 64 rows has nothing to do in a 1-row epoch
            for dtype in args.dtypes:
                chosen = [
                    p
                    for p in all_peer_objects()
                    if (not args.only or p.name in args.only)
                    and (threads == 1 or p.multithreaded or p.name == "fastbp")
                ]
                out["cases"].append(run_case(workload, mode, dtype, threads, chosen, args))
    if threads == 1 and not args.no_two_networks:
        # the note's model only: the issue-10 workloads have no two-networks target
        for workload in (
            w
            for w in args.workloads
            if w not in FIXED_EPOCH_ROWS and w not in MODELS and w not in OPTIMIZER_TASKS
        ):
            for dtype in args.dtypes:
                out["two_networks"].append(run_two_networks(workload, dtype, args))
    Path(args.worker_out).write_text(json.dumps(out))


# ---------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------


def spawn_worker(threads, args, argv):
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        path = handle.name
    command = [sys.executable, __file__, *argv, "--worker-threads", str(threads), "--worker-out", path]
    status = subprocess.run(command, env=env).returncode
    try:
        if status != 0:
            raise SystemExit(f"the {threads}-thread worker failed (exit status {status})")
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 repeats of ~0.1 s, smaller data (development)"
    )
    parser.add_argument("--repeats", type=int, help="timed runs per peer (default 5, --quick 3)")
    parser.add_argument(
        "--seconds", type=float, help="target length of one timed run (default 0.3, --quick 0.1)"
    )
    parser.add_argument("--rows", type=int, help="use at most this many rows of each data set")
    parser.add_argument(
        "--only", help="comma-separated peer names (fastbp,fastbp-ref,C,FANN,numpy,torch-sgd,...)"
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated, e.g. 64-32-10")
    parser.add_argument("--modes", default=",".join(MODES), help="online,minibatch")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="float64,float32")
    parser.add_argument(
        "--threads", default="1,2", help="thread counts to run: 1 (everything), 2 (mini-batch)"
    )
    parser.add_argument(
        "--no-two-networks", action="store_true", help="skip the two-networks-in-two-threads runs"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument(
        "--no-percall", action="store_true", help="skip the per-call table (bench/percall.py)"
    )
    parser.add_argument(
        "--percall-only",
        action="store_true",
        help="only the per-call table (no training cases, two networks or memory)",
    )
    parser.add_argument(
        "--no-roofline", action="store_true", help="skip the memory roofline of 784-128-10 online"
    )
    parser.add_argument(
        "--thread-pause",
        type=float,
        default=0.3,
        help="seconds (untimed) before each run with several threads, so that the previous peer's "
        "idle BLAS/OpenMP workers stop spinning (default 0.3; 0 to compare)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw bench/results/latest.png")
    parser.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also time the fastbp of this checkout (built in place: e.g. the commit before an issue) "
        "as the peer fastbp-base, on the plain-SGD workloads",
    )
    parser.add_argument("--output", default=str(RESULTS / "latest.json"), help="where to write the JSON")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the table of docs/performance.md from --output and exit",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="write the table from --output into docs/performance.md (and its headline rows into README.md) and exit",
    )
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_probe:
        return memory_probe(args.memory_probe)
    import report

    if args.markdown or args.update_readme:
        results = json.loads(Path(args.output).read_text())
        if args.update_readme:
            report.update_readme(results, HERE.parent / "docs" / "performance.md", HERE.parent / "README.md")
            say("docs/performance.md and README.md: the tables updated from " + args.output)
        else:
            print(report.markdown(results))
        return 0

    args.repeats = args.repeats or (3 if args.quick else 5)
    args.seconds = args.seconds or (0.1 if args.quick else 0.3)
    args.workloads = _names(args.workloads, WORKLOADS, "--workloads", parser)
    args.modes = _names(args.modes, MODES, "--modes", parser)
    args.dtypes = _names(args.dtypes, DTYPES, "--dtypes", parser)
    known_peers = None
    if args.only:
        import peers

        known_peers = [p.name for p in peers.all_peers()]
        args.only = _names(args.only, known_peers, "--only", parser)
    if args.repeats < 1 or args.seconds <= 0:
        parser.error("--repeats must be >= 1 and --seconds > 0")

    if args.baseline:
        from peers.fastbp_peer import BASELINE_ENV

        if not (Path(args.baseline) / "fastbp" / "__init__.py").exists():
            parser.error(f"--baseline: {args.baseline} is not a fastbp checkout")
        os.environ[BASELINE_ENV] = str(Path(args.baseline).resolve())  # the workers inherit it
    if args.worker_threads:
        return worker(args)

    thread_counts = [int(t) for t in args.threads.split(",") if t]
    started = time.time()
    if args.percall_only:
        args.no_memory, thread_counts = True, [1]
    runs = [
        spawn_worker(t, args, [a for a in argv])
        for t in thread_counts
        if t == 1 or ("minibatch" in args.modes and any(runs_in(w, "minibatch") for w in args.workloads))
    ]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "argv": argv,
        "rtol": RTOL,
        "workloads": {k: {"sizes": v[0], "rows": v[1], "lr": v[2]} for k, v in WORKLOADS.items()},
        "machine": runs[0]["machine"] if runs else {},
        "peak_gflops": {r["threads"]: r["peak_gflops"] for r in runs},
        "cases": [c for r in runs for c in r["cases"]],
        "two_networks": [t for r in runs for t in r["two_networks"]],
        "percall": next((r["percall"] for r in runs if "percall" in r), None),
    }
    results["memory"] = [] if args.no_memory else run_memory(args)
    results["seconds"] = round(time.time() - started, 1)
    results["targets"] = report.targets(results)
    print(report.text(results))
    RESULTS.mkdir(exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    say(f"wrote {args.output}")
    if not args.no_chart:
        say(report.chart(results, Path(args.output).with_suffix(".png")))
    mismatches = report.mismatches(results)
    if mismatches:
        say(
            "\n!!! COST MISMATCH or FAILURE — these peers failed, or did not compute fastbp's costs (so their "
            "timings would compare different work):"
        )
        for line in mismatches:
            say("!!!   " + line)
        return 1
    return 0


def _names(text, known, option, parser):
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"{option}: unknown {unknown or text!r}; choose from {', '.join(known)}")
    return names


if __name__ == "__main__":
    sys.exit(main())
