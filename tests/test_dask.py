"""Scaling out: a GridSearchCV over BPClassifier run by joblib's Dask backend
on a local Dask cluster of worker processes gives the results of a local run."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("distributed", reason="needs dask.distributed (pip install 'fastbp[dask]')")

import joblib
from dask.distributed import Client, LocalCluster
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from fastbp.sklearn import BPClassifier


def grid_search():
    return GridSearchCV(
        BPClassifier(max_iter=30, random_state=0),
        {"hidden_layer_sizes": [(4,), (16,)], "learning_rate_init": [0.01, 0.1]},
        cv=3,
    )


N_WORKERS = 2


def test_grid_search_on_a_local_dask_cluster_matches_a_local_run():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs: short on purpose
        local = grid_search().fit(X, y)
        with LocalCluster(
            n_workers=N_WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            with Client(cluster) as client:
                with joblib.parallel_backend("dask"):
                    distributed = grid_search().fit(X, y)
                # The fits ran in the worker processes, not here.  (The
                # workers are named by client.run's own answer: the client's
                # cached scheduler_info() can still list none of them.)
                imported = client.run(lambda: "fastbp.sklearn" in __import__("sys").modules)
                assert len(imported) == N_WORKERS and all(imported.values()), imported
    np.testing.assert_array_equal(
        distributed.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert distributed.best_params_ == local.best_params_
    np.testing.assert_array_equal(distributed.predict_proba(X), local.predict_proba(X))
