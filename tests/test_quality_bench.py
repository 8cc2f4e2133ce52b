"""bench/quality.py (the quality benchmark on FANN's datasets): its loading
of FANN's data files, its training loop under a budget, and a tiny run of each
side.  The benchmark's numbers are not tested here (no timings); the loop is
driven by a fake clock."""

import itertools
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import quality

DATASETS = Path(os.environ.get("FASTBP_FANN_DATASETS", REPO.parent / "shared" / "fann-datasets"))
needs_datasets = pytest.mark.skipif(
    not (DATASETS / "parity8.train").exists(),
    reason=f"FANN's datasets are not in {DATASETS} (set FASTBP_FANN_DATASETS)",
)
needs_fann = pytest.mark.skipif(
    not Path("/usr/include/fann.h").exists(),
    reason="FANN is not installed (Debian: apt-get install libfann-dev)",
)


def test_load_reads_a_datasets_train_and_test_files(tmp_path):
    """The files are read by fastbp.interop.read_fann_data (tested in
    tests/test_interop_fann.py); load pairs them and checks their widths."""
    (tmp_path / "toy.train").write_text("2 2 1\n1 2\n3\n4 5\n6\n")
    (tmp_path / "toy.test").write_text("1 2 1\n7 8\n9\n")
    X, Y, Xt, Yt = quality.load(tmp_path, "toy")
    assert X.dtype == Y.dtype == Xt.dtype == Yt.dtype == np.float64
    np.testing.assert_array_equal(X, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(Y, [[3], [6]])
    np.testing.assert_array_equal(Xt, [[7, 8]])
    np.testing.assert_array_equal(Yt, [[9]])
    (tmp_path / "toy.test").write_text("1 1 2\n7\n8 9\n")
    with pytest.raises(ValueError, match="toy: train and test files have different widths"):
        quality.load(tmp_path, "toy")
    (tmp_path / "toy.test").write_text("1 2 1\n7 8,5\n9\n")
    with pytest.raises(ValueError, match=r"toy.test', line 2: .*'8,5' is not a number"):
        quality.load(tmp_path, "toy")


class _Fake:
    """A trainer whose test MSE falls by half per epoch until epoch 4, then rises."""

    def __init__(self):
        self.epochs, self.calls = 0, []

    def train(self, epochs):
        self.calls.append(epochs)
        self.epochs += epochs
        return True

    def test_mse(self):
        return 0.5 ** min(self.epochs, 4) + 0.01 * max(self.epochs - 4, 0)


def test_run_measures_outside_the_budget_and_keeps_the_best():
    ticks = itertools.count()
    clock = lambda: float(next(ticks))  # noqa: E731  each reading one "second" later: one chunk = 1 s
    trainer = _Fake()
    result = quality.run(trainer, 10.0, clock)
    # one clock reading before and after each chunk: 10 chunks, test MSE measured after each and at 0
    assert len(trainer.calls) == 10 and len(result["curve"]) == 11
    assert result["epochs"] == trainer.epochs == sum(trainer.calls)
    assert result["seconds"] == 10.0
    assert result["best"] == 0.5**4 and result["final"] == trainer.test_mse() > result["best"]
    assert not result["diverged"]


def test_run_stops_at_divergence():
    class Diverging(_Fake):
        def train(self, epochs):
            super().train(epochs)
            return self.epochs < 3

    ticks = itertools.count()
    result = quality.run(Diverging(), 100.0, lambda: float(next(ticks)))
    assert result["diverged"] and result["epochs"] == 3


def _tiny(rows=64):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (rows, 3))
    Y = (X.sum(1, keepdims=True) > 1.5).astype(float)
    return X, Y


def test_fastbp_trainer_trains():
    X, Y = _tiny()
    trainer = quality.FastbpTrainer("sgd", dict(model="tanh", lr=0.3, shuffle=True), X, Y, X, Y, (3, 4, 1), 0)
    before = trainer.test_mse()
    assert trainer.train(20)
    assert trainer.test_mse() < before
    again = quality.FastbpTrainer("sgd", dict(model="tanh", lr=0.3, shuffle=True), X, Y, X, Y, (3, 4, 1), 0)
    assert again.test_mse() == before  # a seed is one network


@needs_fann
@pytest.mark.parametrize("algorithm", quality.FANN)
def test_fann_trainer_trains(algorithm):
    X, Y = _tiny()
    trainer = quality.FannTrainer(algorithm, X, Y, X, Y, (3, 4, 1), 0)
    before = trainer.test_mse()
    assert 0 < before < 1
    assert trainer.train(50)
    assert trainer.test_mse() < before
    # a seed is one network; seeds 0 and 1 differ (glibc's srand(0) is srand(1): the driver adds 1)
    assert quality.FannTrainer(algorithm, X, Y, X, Y, (3, 4, 1), 0).test_mse() == before
    assert quality.FannTrainer(algorithm, X, Y, X, Y, (3, 4, 1), 1).test_mse() != before


@needs_datasets
def test_reads_the_benchmark_datasets():
    for name in quality.DEFAULT_DATASETS:
        X, Y, Xt, Yt = quality.load(DATASETS, name)
        assert X.shape[1] == Xt.shape[1] and Y.shape[1] == Yt.shape[1]
        assert 0 <= X.min() and X.max() <= 1 and 0 <= Y.min() and Y.max() <= 1
        if name in quality.ONE_HOT:
            np.testing.assert_array_equal(Y.sum(1), 1)
    X, Y, Xt, Yt = quality.load(DATASETS, "parity8")
    assert X.shape == (256, 8) and Y.shape == (256, 1)
    np.testing.assert_array_equal(Y[:, 0], X.sum(1) % 2)  # parity, as FANN's parity.c writes it


@needs_datasets
@needs_fann
def test_tiny_benchmark_and_report():
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.01  # noqa: E731
    results = quality.benchmark(
        DATASETS, ["diabetes"], 0.05, 2, clock, log=lambda line: None, only=["sgd", "incremental", "rprop"]
    )
    entries = results["diabetes"]["contenders"]
    assert results["diabetes"]["sizes"] == (8, 4, 2)
    assert {"fastbp SGD", "FANN incremental", "FANN RPROP"} <= set(entries)
    for label in ("fastbp SGD", "FANN incremental", "FANN RPROP"):
        e = entries[label]
        assert len(e["runs"]) == 2 and 0 < e["best"] <= e["final"] < 1
    text = quality.report(results, True, ["header"])
    assert "| diabetes |" in text and "fastbp lower on" in text


def test_plain_sgd_through_lr_is_fastbp_sgd():
    """The benchmark's plain-SGD contender trains with lr=; that is the same
    run as optimizer=fastbp.SGD(lr) (momentum 0), to rounding (the fused
    online kernel and the optimizer's update round differently)."""
    import fastbp

    X, Y = _tiny()
    a, b = fastbp.Network((3, 4, 1), seed=0), fastbp.Network((3, 4, 1), seed=0)
    costs_a = a.train(X, Y, epochs=3, lr=0.3, shuffle=True, seed=5)
    costs_b = b.train(X, Y, epochs=3, optimizer=fastbp.SGD(lr=0.3), shuffle=True, seed=5)
    np.testing.assert_allclose(costs_a, costs_b, rtol=1e-12)
    for Wa, Wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_allclose(Wa, Wb, rtol=1e-12, atol=1e-15)
    c = fastbp.Network((3, 4, 1), seed=0)
    c.train(X, Y, epochs=3, lr=0.31, shuffle=True, seed=5)  # the test can fail: another lr is another run
    assert not np.allclose(c.weights[0], a.weights[0], rtol=1e-12, atol=1e-15)
