"""BPClassifier/BPRegressor against MLPClassifier/MLPRegressor on scikit-learn's bundled datasets.

    python bench/estimators.py              # the defaults table (~3 minutes)
    python bench/estimators.py --grid       # also the search the defaults were chosen by (~10-15 minutes)
    python bench/estimators.py --grid-only  # only the search
    python bench/estimators.py --solvers    # only the search over solvers (issue 11; ~10 minutes)
    python bench/estimators.py --markdown   # the tables as Markdown, for docs/performance.md

Every score is the mean over the test folds of a 5-fold cross-validation
(stratified for the classifiers; shuffled, ``random_state=0``) of a
``make_pipeline(StandardScaler(), estimator)`` with ``random_state=0``:
accuracy for iris, wine, breast_cancer and digits, R^2 for diabetes.  The
diabetes target is used as it ships (about 150 +- 77) and, in a second row,
standardised (``TransformedTargetRegressor(transformer=StandardScaler())``).
Fit time is the mean CPU time (``time.process_time``) of one fold's ``fit``,
on one thread (BLAS limited to one thread through threadpoolctl, for both
libraries): CPU time rather than wall time, so that other load on the machine
(printed in the header) changes it little; the mean wall time is printed
too.  Fits that
stopped at ``max_iter`` (a ``ConvergenceWarning``) are counted, not hidden.

``--grid`` runs the candidates the activation defaults were chosen from
(activation x learning_rate_init x batch_size, with plain gradient descent:
``solver="sgd", momentum=0, alpha=0``) and prints each candidate's mean score over
the datasets and its total fit time (a candidate that diverged on some fold
scores nan and sorts last), and the candidate the rule picks: the best mean
score, then, within 0.005 of it, the least total fit time, among the
candidates that pass scikit-learn's ``check_classifiers_train`` /
``check_regressors_train`` (a score threshold on scikit-learn's own data: the
defaults must keep ``parametrize_with_checks`` clean).  ``--solvers`` runs
the same rule over the optimizers (``solver`` with its step size, batch size,
momentum and ``alpha``; the activation at its default).  The defaults are
what they picked (docs/performance.md has the run).  No timing here is a test: this is a separate
entry point, never run by pytest.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import warnings
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_classifiers_train, check_regressors_train
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine

import fastbp
from fastbp.sklearn import BPClassifier, BPRegressor

CLASSIFICATION = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}
FOLDS = 5

# The rows of the defaults table: (label, estimator).  "note's model" is the
# estimator as it was before activations and losses (sigmoid everywhere,
# squared error, its old defaults).
CLASSIFIERS = [
    ("BPClassifier()", BPClassifier(random_state=0)),
    ("BPClassifier(solver='adam')", BPClassifier(solver="adam", random_state=0)),
    ("BPClassifier(solver='sgd')", BPClassifier(solver="sgd", random_state=0)),
    (
        "BPClassifier(note's model)",
        BPClassifier(
            activation="logistic",
            loss="squared_error",
            solver="sgd",
            momentum=0.0,
            alpha=0.0,
            learning_rate_init=1.0,
            batch_size=1,
            n_iter_no_change=20,
            random_state=0,
        ),
    ),
    ("MLPClassifier()", MLPClassifier(random_state=0)),
]
REGRESSORS = [
    ("BPRegressor()", BPRegressor(random_state=0)),
    ("BPRegressor(solver='sgd')", BPRegressor(solver="sgd", random_state=0)),
    ("BPRegressor(solver='rprop')", BPRegressor(solver="rprop", random_state=0)),
    (
        "BPRegressor(note's model)",
        BPRegressor(
            activation="logistic",
            out_activation="logistic",
            solver="sgd",
            momentum=0.0,
            alpha=0.0,
            learning_rate_init=1.0,
            batch_size=1,
            n_iter_no_change=20,
            random_state=0,
        ),
    ),
    ("MLPRegressor()", MLPRegressor(random_state=0)),
]

GRID_ACTIVATIONS = ("logistic", "tanh", "relu")
GRID_RATES = {"classifier": (0.003, 0.01, 0.03, 0.1, 0.3), "regressor": (0.0001, 0.0003, 0.001, 0.003, 0.01)}
GRID_BATCHES = (1, 16)
# The rule that picks the defaults from the grid, among the candidates that
# pass scikit-learn's check_classifiers_train/check_regressors_train (the
# defaults must keep parametrize_with_checks clean): the best mean score,
# then, among the candidates within TOLERANCE of it, the least total fit time.
TOLERANCE = 0.005

# --solvers: the candidates (parameters other than these at their defaults).
# sgd with momentum mu takes steps about 1 / (1 - mu) times as large, hence
# its smaller rates.
SOLVER_GRID = {
    "classifier": [
        *(dict(solver="sgd", learning_rate_init=rate, batch_size=16) for rate in (0.1, 0.3)),
        *(dict(solver="sgd", momentum=0.9, learning_rate_init=rate, batch_size=16) for rate in (0.01, 0.03)),
        *(
            dict(solver="adam", learning_rate_init=rate, batch_size=batch)
            for rate in (0.001, 0.003, 0.01)
            for batch in (16, 64)
        ),
        *(dict(solver="rprop", learning_rate_init=rate) for rate in (0.001, 0.01)),
        *(dict(solver="rprop", learning_rate_init=0.01, n_iter_no_change=n, max_iter=1000) for n in (20,)),
    ],
    "regressor": [
        *(dict(solver="sgd", learning_rate_init=rate, batch_size=1) for rate in (0.0001, 0.0003)),
        *(dict(solver="sgd", momentum=0.9, learning_rate_init=0.00001, batch_size=1),),
        *(
            dict(solver="adam", learning_rate_init=rate, batch_size=batch)
            for rate in (0.001, 0.003, 0.01)
            for batch in (1, 16)
        ),
        *(dict(solver="rprop", learning_rate_init=rate) for rate in (0.001, 0.01)),
        *(dict(solver="rprop", learning_rate_init=0.01, n_iter_no_change=n, max_iter=1000) for n in (20,)),
    ],
}
# Then alpha for the best few of each solver: its weight decay.
ALPHAS = (1e-4, 1e-3)


def datasets(kind):
    """(name, X, y, folds) of the classification datasets or of diabetes (raw and standardised y)."""
    if kind == "classifier":
        for name, load in CLASSIFICATION.items():
            X, y = load(return_X_y=True)
            yield name, X, y, StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    else:
        X, y = load_diabetes(return_X_y=True)
        yield "diabetes", X, y, KFold(FOLDS, shuffle=True, random_state=0)
        yield "diabetes (std y)", X, y, KFold(FOLDS, shuffle=True, random_state=0)


def evaluate(estimator, name, X, y, folds):
    """(mean test score, mean fit CPU seconds, fits that hit max_iter, fits that diverged, mean fit wall seconds)."""
    scores, times, walls, unconverged, diverged = [], [], [], 0, 0
    for train, test in folds.split(X, y):
        model = make_pipeline(StandardScaler(), clone(estimator))
        if "std y" in name:
            model = TransformedTargetRegressor(model, transformer=StandardScaler())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            start, wall = time.process_time(), time.perf_counter()
            try:
                model.fit(X[train], y[train])
            except fastbp.TrainingDivergedError:
                diverged += 1
                scores.append(np.nan)
                continue
            finally:
                times.append(time.process_time() - start)
                walls.append(time.perf_counter() - wall)
        unconverged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
        scores.append(model.score(X[test], y[test]))
    return float(np.mean(scores)), float(np.mean(times)), unconverged, diverged, float(np.mean(walls))


def defaults_table(kind):
    rows = []
    for name, X, y, folds in datasets(kind):
        for label, estimator in CLASSIFIERS if kind == "classifier" else REGRESSORS:
            score, seconds, unconverged, diverged, wall = evaluate(estimator, name, X, y, folds)
            rows.append((name, label, score, seconds, wall, unconverged, diverged))
            print(f"  {name:18s} {label:40s} {score:8.4f} {seconds:8.3f} s", file=sys.stderr, flush=True)
    return rows


def passes_check(kind, estimator):
    """Whether scikit-learn's training check (a score threshold on its own data) passes."""
    check = check_classifiers_train if kind == "classifier" else check_regressors_train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            check(type(estimator).__name__, clone(estimator))
        except (AssertionError, fastbp.TrainingDivergedError):
            return False
    return True


def grid_table(kind):
    """Each candidate's per-dataset scores, mean score and total fit time."""
    Estimator = BPClassifier if kind == "classifier" else BPRegressor
    data = list(datasets(kind))
    rows = []
    for activation, rate, batch in itertools.product(GRID_ACTIVATIONS, GRID_RATES[kind], GRID_BATCHES):
        # The search of issue 10, for plain gradient descent (the solver then).
        estimator = Estimator(
            activation=activation,
            learning_rate_init=rate,
            batch_size=batch,
            solver="sgd",
            momentum=0.0,
            alpha=0.0,
            random_state=0,
        )
        results = [evaluate(estimator, name, X, y, folds) for name, X, y, folds in data]
        scores = [r[0] for r in results]
        total = sum(r[1] for r in results) * FOLDS
        rows.append(
            (
                activation,
                rate,
                batch,
                scores,
                float(np.mean(scores)),
                total,
                sum(r[2] for r in results),
                sum(r[3] for r in results),
                passes_check(kind, estimator),
            )
        )
        print(
            f"  {activation:8s} lr={rate:<7g} batch={batch:<3d} mean {rows[-1][4]:.4f} {total:7.2f} s",
            file=sys.stderr,
            flush=True,
        )
    return [name for name, *_ in data], rows


def solver_table(kind):
    """Each solver candidate's per-dataset scores, mean score and total fit time; then alpha on the best of each."""
    Estimator = BPClassifier if kind == "classifier" else BPRegressor
    data = list(datasets(kind))
    rows = []

    def run(params):
        estimator = Estimator(random_state=0, **params)
        results = [evaluate(estimator, name, X, y, folds) for name, X, y, folds in data]
        scores = [r[0] for r in results]
        total = sum(r[1] for r in results) * FOLDS
        rows.append(
            (
                params,
                scores,
                float(np.mean(scores)),
                total,
                sum(r[2] for r in results),
                sum(r[3] for r in results),
                passes_check(kind, estimator),
            )
        )
        print(f"  {describe(params):60s} mean {rows[-1][2]:.4f} {total:7.2f} s", file=sys.stderr, flush=True)

    for params in SOLVER_GRID[kind]:
        run(params)
    for solver in ("sgd", "adam"):
        best = max(
            (r for r in rows if r[0]["solver"] == solver), key=lambda r: np.nan_to_num(r[2], nan=-np.inf)
        )
        for alpha in ALPHAS:
            run({**best[0], "alpha": alpha})
    return [name for name, *_ in data], rows


def describe(params):
    return ", ".join(f"{name}={value!r}" for name, value in params.items())


def print_solvers(names, rows, markdown):
    header = (
        "parameters",
        *names,
        "mean",
        "fit CPU s (all folds)",
        "max_iter hit",
        "diverged",
        "sklearn check",
    )
    lines = [header] + [
        (
            describe(params),
            *(f"{s:.3f}" for s in scores),
            f"{mean:.4f}",
            f"{total:.2f}",
            str(unconverged),
            str(diverged),
            "pass" if passed else "FAIL",
        )
        for params, scores, mean, total, unconverged, diverged, passed in sorted(
            rows, key=lambda r: -np.nan_to_num(r[2], nan=-np.inf)
        )
    ]
    emit(lines, markdown)
    scored = [r for r in rows if not np.isnan(r[2]) and r[6]]
    best = max(r[2] for r in scored)
    params, _, mean, total, *_ = min((r for r in scored if r[2] >= best - TOLERANCE), key=lambda r: r[3])
    print(
        f"The rule (among the candidates passing the sklearn check: best mean score {best:.5f}; within "
        f"{TOLERANCE} of it, the least fit time) picks {describe(params)} (mean {mean:.5f}, {total:.2f} s)."
    )
    print()


def print_defaults(rows, markdown, metric):
    header = ("dataset", "estimator", metric, "fit CPU s", "fit wall s", "max_iter hit", "diverged")
    lines = [header] + [
        (
            name,
            label,
            "nan" if np.isnan(score) else f"{score:.3f}",
            f"{seconds:.3f}",
            f"{wall:.3f}",
            f"{unconverged}/{FOLDS}",
            f"{diverged}/{FOLDS}",
        )
        for name, label, score, seconds, wall, unconverged, diverged in rows
    ]
    emit(lines, markdown)


def print_grid(names, rows, markdown):
    header = (
        "activation",
        "learning_rate_init",
        "batch_size",
        *names,
        "mean",
        "fit CPU s (all folds)",
        "max_iter hit",
        "diverged",
        "sklearn check",
    )
    lines = [header] + [
        (
            activation,
            f"{rate:g}",
            str(batch),
            *(f"{s:.3f}" for s in scores),
            f"{mean:.4f}",
            f"{total:.2f}",
            str(unconverged),
            str(diverged),
            "pass" if passed else "FAIL",
        )
        for activation, rate, batch, scores, mean, total, unconverged, diverged, passed in sorted(
            rows, key=lambda r: -np.nan_to_num(r[4], nan=-np.inf)
        )
    ]
    emit(lines, markdown)
    scored = [r for r in rows if not np.isnan(r[4]) and r[8]]
    best = max(r[4] for r in scored)
    activation, rate, batch, _, mean, total, *_ = min(
        (r for r in scored if r[4] >= best - TOLERANCE), key=lambda r: r[5]
    )
    print(
        f"The rule (among the candidates passing the sklearn check: best mean score {best:.5f}; within "
        f"{TOLERANCE} of it, the least fit time) picks "
        f"activation={activation!r}, learning_rate_init={rate:g}, batch_size={batch} "
        f"(mean {mean:.5f}, {total:.2f} s)."
    )
    print()


def emit(lines, markdown):
    if markdown:
        print("| " + " | ".join(lines[0]) + " |")
        print("|" + "|".join("---" for _ in lines[0]) + "|")
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        for line in lines:
            print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)))
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", action="store_true", help="also run the search the defaults were chosen by")
    parser.add_argument("--grid-only", action="store_true", help="only the search, not the defaults table")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--solvers", action="store_true", help="only the search over solvers")
    parser.add_argument("--only", choices=("classifier", "regressor"), help="one estimator only")
    args = parser.parse_args(argv)
    import sklearn

    print(
        f"CPU: {machine.cpu_model()}; one thread (BLAS limited to 1); fastbp {fastbp.__version__} "
        f"(backend {fastbp.Network([1, 1]).backend}), scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(
        f"{FOLDS}-fold cross-validation, StandardScaler on X, random_state=0; score = mean test "
        "accuracy (classifiers) or R^2 (regressors); fit CPU/wall s = mean seconds per fold's fit"
    )
    print()
    kinds = [args.only] if args.only else ["classifier", "regressor"]
    with threadpool_limits(limits=1):
        if args.solvers:
            for kind in kinds:
                print(
                    f"Solver candidates for the {kind} (hidden_layer_sizes=(100,), the other parameters at their "
                    "defaults), best mean score first:"
                )
                print()
                print_solvers(*solver_table(kind), args.markdown)
            return
        for kind in [] if args.grid_only else kinds:
            print_defaults(defaults_table(kind), args.markdown, "accuracy" if kind == "classifier" else "R^2")
        if args.grid or args.grid_only:
            for kind in kinds:
                print(
                    f"Candidates for the {kind}'s defaults (hidden_layer_sizes=(100,), the other parameters "
                    "at their defaults), best mean score first:"
                )
                print()
                print_grid(*grid_table(kind), args.markdown)


if __name__ == "__main__":
    main()
