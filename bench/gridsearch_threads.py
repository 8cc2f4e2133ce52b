"""GridSearchCV over BPClassifier on joblib's threading backend: n_jobs=1 vs 2.

    python bench/gridsearch_threads.py            # best of 3 runs each (~1 minute)
    python bench/gridsearch_threads.py --quick    # one run each
    python bench/gridsearch_threads.py --jobs 4   # compare 1 thread with 4

fastbp's training kernels run without the GIL, so the fits of a grid search
run in parallel in threads of one process: no worker processes to start, no
data to copy to them.  This script times the same search with 1 and with N
threads and prints the speed-up (ideally N on N idle cores), after checking
that both searches found the same scores.  Every fit runs exactly
``--epochs`` epochs (constant learning rate, no stopping), so both runs do
the same work.  Needs scikit-learn (``pip install fastbp[sklearn]``).

Exit status: 0 when the two searches agree, 1 when they do not.
"""

from __future__ import annotations

import argparse
import os

# One BLAS thread per fit: the parallelism under test is joblib's.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import time
import warnings

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from fastbp.sklearn import BPClassifier

GRID = {"hidden_layer_sizes": [(32,), (64,)], "learning_rate_init": [0.03, 0.1]}


def search(X, y, epochs, n_jobs):
    """One grid search on joblib's threading backend; returns (wall seconds,
    CPU seconds of the process, search)."""
    estimator = BPClassifier(
        max_iter=epochs, learning_rate="constant", tol=0.0, n_iter_no_change=epochs + 1, random_state=0
    )
    grid = GridSearchCV(estimator, GRID, cv=3, n_jobs=n_jobs, refit=False)
    with joblib.parallel_backend("threading", n_jobs=n_jobs), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # every fit stops at max_iter on purpose
        wall, cpu = time.perf_counter(), time.process_time()
        grid.fit(X, y)
        return time.perf_counter() - wall, time.process_time() - cpu, grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run each instead of the best of 3")
    parser.add_argument("--jobs", type=int, default=2, help="threads of the parallel run (default 2)")
    parser.add_argument("--samples", type=int, default=3000, help="rows of the dataset (default 3000)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every fit (default 20)")
    args = parser.parse_args(argv)
    if args.jobs < 2 or args.samples < 30 or args.epochs < 1:
        parser.error("need --jobs >= 2, --samples >= 30, --epochs >= 1")
    repeats = 1 if args.quick else 3

    X, y = make_classification(
        n_samples=args.samples, n_features=20, n_informative=10, n_classes=3, random_state=0
    )
    X = StandardScaler().fit_transform(X)
    n_fits = 3 * len(GRID["hidden_layer_sizes"]) * len(GRID["learning_rate_init"])
    print(
        f"GridSearchCV over BPClassifier: {n_fits} fits (4 candidates x 3 folds) of {args.epochs} epochs "
        f"on {args.samples} x 20 rows, joblib threading backend, {os.cpu_count()} CPUs visible"
    )

    timings = {}
    results = {}
    for n_jobs in (1, args.jobs):
        runs = [search(X, y, args.epochs, n_jobs) for _ in range(repeats)]
        wall, cpu, grid = min(runs, key=lambda run: run[0])
        timings[n_jobs] = wall
        results[n_jobs] = grid.cv_results_["mean_test_score"]
        # CPU time over wall time: how many cores the process kept busy. Near
        # n_jobs means the fits really ran at once (the GIL was released), even
        # when other load on the machine stretches the wall time.
        print(f"  n_jobs={n_jobs}: {wall:.2f} s wall (best of {repeats}), {cpu / wall:.2f} cores busy")

    if not np.array_equal(results[1], results[args.jobs]):
        print(f"MISMATCH: mean test scores differ: {results[1]} vs {results[args.jobs]}")
        return 1
    print(f"  same mean test scores in both runs: {np.round(results[1], 4).tolist()}")
    print(
        f"speed-up with {args.jobs} threads: {timings[1] / timings[args.jobs]:.2f}x (ideal {args.jobs:.2f}x "
        f"on {args.jobs} idle cores; other load on the machine lowers it)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
