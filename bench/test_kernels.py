"""Benchmarks of the compiled kernels one call at a time (the backend
interface of fastbp._kernels, as fastbp.Network calls it): where a single
step, a gradient or a block of forward passes spends its time."""

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark", reason="pip install pytest-benchmark (or .[bench])")


@pytest.fixture
def kernels():
    import fastbp

    return fastbp.get_backend("cython")


@pytest.fixture
def flat(network):
    """The network's parameters in the kernels' flat layout, and its sizes."""
    params = np.concatenate([p for W, b in zip(network.weights, network.biases) for p in (W.ravel(), b)])
    return params, np.array(network.layer_sizes, dtype=np.intp)


def test_train_step(benchmark, kernels, workload, dtype, data, flat, lr):
    X, Y = data
    params, sizes = flat
    activations = np.empty(sizes.sum(), dtype=dtype)
    deltas = np.empty(sizes[1:].sum(), dtype=dtype)
    benchmark.group = f"kernel {workload} {dtype}"
    J = benchmark(kernels.train_step, params, sizes, X[0], Y[0], lr, True, activations, deltas)
    assert np.isfinite(J)


def test_gradients(benchmark, kernels, workload, dtype, data, flat):
    X, Y = data
    params, sizes = flat
    activations = np.empty(sizes.sum(), dtype=dtype)
    deltas = np.empty(sizes[1:].sum(), dtype=dtype)
    grads = np.empty_like(params)
    benchmark.group = f"kernel {workload} {dtype}"
    benchmark(kernels.gradients, params, sizes, X[0], Y[0], activations, deltas, grads)
    assert np.isfinite(grads).all()


@pytest.mark.parametrize("block", [1, 256])
def test_forward_batch(benchmark, kernels, workload, dtype, data, flat, block):
    X, _ = data
    X = X[:1024]
    params, sizes = flat
    out = np.empty((len(X), sizes[-1]), dtype=dtype)
    activations = np.empty(block * sizes.sum(), dtype=dtype)  # room for `block` rows at a time
    benchmark.group = f"kernel forward_batch {workload} {dtype}"
    benchmark(kernels.forward_batch, params, sizes, X, out, activations)
    assert np.isfinite(out).all()


def test_sigmoid(benchmark, kernels, dtype):
    z = np.random.default_rng(0).normal(size=65536).astype(dtype)
    out = np.empty_like(z)
    benchmark.group = f"kernel sigmoid {dtype}"
    benchmark(kernels.sigmoid, z, out)
    assert ((out > 0) & (out < 1)).all()
