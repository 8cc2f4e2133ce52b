"""The semantics of ``fastbp.Network``, on both backends.

State and views, copies, shapes, what ``step`` and ``train`` compute, seeds
and shuffling, learning, divergence.  Elsewhere: invalid input in
``test_validation.py``, gradients against finite differences in
``test_gradients.py``, threads in ``test_threads.py``, backend selection in
``test_backends.py``.
"""

import re

import numpy as np
import pytest
from support import all_params, assert_same_net, assert_same_state, snapshot

import fastbp
from fastbp import Network, TrainingDivergedError

SIZES = [3, 5, 2]


def data(n=6, seed=0, sizes=SIZES):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, sizes[0]))
    Y = rng.uniform(0.05, 0.95, size=(n, sizes[-1]))
    return X, Y


# ---------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("made_by", ["Network", "from_weights", "load", "pickle", "copy"])
def test_the_parameters_start_on_the_kernels_alignment(backend, dtype, made_by, tmp_path):
    # The kernels' vector loads and stores of W[1]'s rows stay within cache
    # lines only if the buffer starts on _layout.ALIGNMENT (NumPy's allocator
    # starts one this size 16 bytes past a page): every way a network gets
    # its parameters allocates them there.
    import copy
    import pickle

    from fastbp import _layout

    sizes = (784, 16, 3)  # a buffer large enough that NumPy maps it on its own
    net = Network(sizes, seed=1, dtype=dtype, backend=backend)
    if made_by == "from_weights":
        net = Network.from_weights(net.weights, net.biases, dtype=dtype, backend=backend)
    elif made_by == "load":
        net.save(tmp_path / "net.fbp")
        net = fastbp.load(tmp_path / "net.fbp", backend=backend)
    elif made_by == "pickle":
        net = pickle.loads(pickle.dumps(net))
    elif made_by == "copy":
        net = copy.deepcopy(net)
    assert net.weights[0].ctypes.data % _layout.ALIGNMENT == 0
    # and the network still trains from there
    X, Y = data(4, sizes=sizes)
    assert np.isfinite(net.train(X.astype(dtype), Y.astype(dtype), epochs=1, lr=0.1)).all()


def test_attributes(backend, dtype):
    net = Network(SIZES, seed=1, dtype=dtype, backend=backend)
    assert net.layer_sizes == (3, 5, 2)
    assert all(type(n) is int for n in net.layer_sizes)
    assert [W.shape for W in net.weights] == [(5, 3), (2, 5)]
    assert [b.shape for b in net.biases] == [(5,), (2,)]
    assert net.dtype == dtype
    assert all(a.dtype == dtype for a in (*net.weights, *net.biases))
    assert net.backend == backend
    assert repr(net) == f"Network([3, 5, 2], dtype={dtype.name!r}, backend={backend!r})"


def test_attributes_of_a_deep_network(backend):
    net = Network([4, 3, 3, 2, 1], seed=0, backend=backend)
    assert net.layer_sizes == (4, 3, 3, 2, 1)
    assert [W.shape for W in net.weights] == [(3, 4), (3, 3), (2, 3), (1, 2)]
    assert [b.shape for b in net.biases] == [(3,), (3,), (2,), (1,)]
    assert net.forward(np.zeros(4)).shape == (1,)


def test_from_weights_attributes(backend, dtype):
    Ws = [np.ones((4, 2), dtype), np.ones((1, 4), dtype)]
    bs = [np.zeros(4, dtype), np.zeros(1, dtype)]
    net = Network.from_weights(Ws, bs, backend=backend)
    assert net.layer_sizes == (2, 4, 1)
    assert net.dtype == dtype and net.backend == backend
    assert repr(net) == f"Network([2, 4, 1], dtype={dtype.name!r}, backend={backend!r})"


# ---------------------------------------------------------------------------
# Initial weights
# ---------------------------------------------------------------------------


def test_initial_weights_follow_the_documented_draw(backend, dtype):
    """U(-r, r), r = sqrt(2 / (n_in + n_out)), from default_rng(seed): W then b, layer by layer."""
    net = Network(SIZES, seed=42, dtype=dtype, backend=backend)
    rng = np.random.default_rng(42)
    for W, b in zip(net.weights, net.biases, strict=True):
        n_out, n_in = W.shape
        r = np.sqrt(2.0 / (n_in + n_out))
        np.testing.assert_array_equal(W, rng.uniform(-r, r, size=(n_out, n_in)).astype(dtype), strict=True)
        np.testing.assert_array_equal(b, rng.uniform(-r, r, size=n_out).astype(dtype), strict=True)


def test_same_seed_same_weights_on_every_backend(dtype):
    nets = [Network(SIZES, seed=7, dtype=dtype, backend=name) for name in fastbp.backends()] + [
        Network(SIZES, seed=7, dtype=dtype)
    ]
    for other in nets[1:]:
        assert_same_net(other, nets[0])


def test_float32_weights_are_the_float64_ones_rounded(backend):
    n64 = Network(SIZES, seed=5, backend=backend)
    n32 = Network(SIZES, seed=5, dtype="float32", backend=backend)
    for a, b in zip((*n32.weights, *n32.biases), (*n64.weights, *n64.biases)):
        np.testing.assert_array_equal(a, b.astype(np.float32), strict=True)


def test_different_seeds_give_different_weights(backend):
    a, b = Network(SIZES, seed=0, backend=backend), Network(SIZES, seed=1, backend=backend)
    for Wa, Wb in zip(a.weights, b.weights):
        assert not np.any(Wa == Wb)
    # No seed: fresh entropy each time.
    c, d = Network(SIZES, backend=backend), Network(SIZES, backend=backend)
    assert not np.array_equal(all_params(c), all_params(d))


@pytest.mark.parametrize("sizes", [[1, 1], [2, 3, 1], [30, 1], [1, 40, 40, 2]], ids=str)
def test_initial_weights_are_finite_and_within_the_bound(backend, dtype, sizes):
    net = Network(sizes, seed=3, dtype=dtype, backend=backend)
    for W, b in zip(net.weights, net.biases):
        r = np.sqrt(2.0 / (W.shape[0] + W.shape[1])).astype(dtype)
        for a in (W, b):
            assert np.isfinite(a).all()
            assert np.all(np.abs(a) <= r)
        assert np.any(W != 0)


# ---------------------------------------------------------------------------
# Views, copies and ownership
# ---------------------------------------------------------------------------


def test_weights_and_biases_are_read_only(backend):
    net = Network(SIZES, seed=0, backend=backend)
    before = snapshot(net)
    for a in (*net.weights, *net.biases):
        assert not a.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 1.0
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0.0
        with pytest.raises(ValueError, match="read-only"):
            a += 1.0
    with pytest.raises(AttributeError):
        net.weights = [np.zeros((5, 3)), np.zeros((2, 5))]
    with pytest.raises(AttributeError):
        net.biases = [np.zeros(5), np.zeros(2)]
    assert_same_state(net, before)


def test_weights_and_biases_are_live_views(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    W_views, b_views = net.weights, net.biases
    W_before, b_before = snapshot(net)
    net.step(X[0], Y[0], 0.5)
    for view, old, now in zip((*W_views, *b_views), (*W_before, *b_before), (*net.weights, *net.biases)):
        assert not np.array_equal(view, old)  # the step changed every layer ...
        np.testing.assert_array_equal(view, now, strict=True)  # ... and the old views show it
    net.train(X, Y, epochs=2)
    for view, now in zip((*W_views, *b_views), (*net.weights, *net.biases)):
        np.testing.assert_array_equal(view, now, strict=True)


def _internals(net):
    # Private on purpose: the buffers the network owns, which nothing returned may alias.
    return [net._params, net._activations, net._deltas, *net.weights, *net.biases]


def test_returned_arrays_are_new(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    results = {
        "forward-batch": [net.forward(X), net.forward(X)],
        "forward-one": [net.forward(X[0]), net.forward(X[0])],
        "gradients": [
            *net.gradients(X[0], Y[0])[0],
            *net.gradients(X[0], Y[0])[1],
            *net.gradients(X[1], Y[1])[0],
        ],
        "train": [net.train(X, Y, epochs=2), net.train(X, Y, epochs=2)],
    }
    every = [a for arrays in results.values() for a in arrays]
    for i, a in enumerate(every):
        assert a.flags.writeable
        for internal in _internals(net):
            assert not np.shares_memory(a, internal)
        for b in every[i + 1 :]:
            if a.base is None or a.base is not b.base:  # the dW/db of one call may share one buffer
                assert not np.shares_memory(a, b)
    assert results["forward-batch"][0].dtype == dtype and results["train"][0].dtype == np.float64

    # Writing into what was returned changes nothing in the network.
    before = snapshot(net)
    out, one = net.forward(X), net.forward(X[0])
    fresh = out.copy()
    dW, db = net.gradients(X[0], Y[0])
    for a in (out, one, *dW, *db):
        a[...] = np.nan
    assert_same_state(net, before)
    np.testing.assert_array_equal(net.forward(X), fresh, strict=True)


def test_input_arrays_are_never_modified(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    # Already C-contiguous arrays of the network's dtype: used without a copy.
    X, Y = X.astype(dtype), Y.astype(dtype)
    x, y = X[2].copy(), Y[2].copy()
    inputs = (X, Y, x, y)
    kept = [a.copy() for a in inputs]
    net.forward(X)
    net.forward(x)
    net.cost(X, Y)
    net.cost(x, y)
    net.gradients(x, y)
    net.step(x, y, 0.5)
    net.train(X, Y, epochs=3, shuffle=True, seed=1)
    net.train(X, Y, epochs=1, update_biases=False)
    for a, k in zip(inputs, kept):
        np.testing.assert_array_equal(a, k, strict=True)
        assert a.flags.writeable  # and not frozen either


def test_from_weights_copies(backend, dtype):
    rng = np.random.default_rng(0)
    Ws = [rng.uniform(-1, 1, (4, 3)).astype(dtype), rng.uniform(-1, 1, (2, 4)).astype(dtype)]
    bs = [rng.uniform(-1, 1, 4).astype(dtype), rng.uniform(-1, 1, 2).astype(dtype)]
    net = Network.from_weights(Ws, bs, dtype=dtype, backend=backend)
    for given, held in zip((*Ws, *bs), (*net.weights, *net.biases)):
        np.testing.assert_array_equal(held, given, strict=True)
        assert not np.shares_memory(held, given)
    arrays = [*Ws, *bs]
    expected = [a.copy() for a in arrays]
    for a in arrays:  # mutate the sources, and the lists holding them
        a[...] = 99.0
    Ws.append(np.zeros((1, 2), dtype))
    bs.clear()
    for held, e in zip((*net.weights, *net.biases), expected, strict=True):
        np.testing.assert_array_equal(held, e, strict=True)
    assert net.layer_sizes == (3, 4, 2)
    # and training the network does not write the caller's (restored) arrays
    for a, e in zip(arrays, expected):
        a[...] = e
    net.step(np.ones(3), np.zeros(2), 0.5)
    for a, e in zip(arrays, expected):
        np.testing.assert_array_equal(a, e, strict=True)


@pytest.mark.parametrize(
    "make, expected",
    [
        pytest.param(
            lambda W, b: ([w.astype(np.float32) for w in W], [v.astype(np.float32) for v in b]),
            np.float32,
            id="all-float32",
        ),
        pytest.param(lambda W, b: (W, b), np.float64, id="all-float64"),
        pytest.param(
            lambda W, b: (
                [W[0].astype(np.float32), W[1].astype(np.float32)],
                [b[0].astype(np.float32), b[1]],
            ),
            np.float64,
            id="one-float64",
        ),
        pytest.param(
            lambda W, b: ([w.astype(np.float32) for w in W], [v.tolist() for v in b]),
            np.float64,
            id="float32-weights-list-biases",
        ),
        pytest.param(lambda W, b: ([w.tolist() for w in W], [v.tolist() for v in b]), np.float64, id="lists"),
        pytest.param(
            lambda W, b: (
                [np.ones((4, 3), np.int32), np.ones((2, 4), np.int32)],
                [np.zeros(4, np.int32), np.zeros(2, np.int32)],
            ),
            np.float64,
            id="ints",
        ),
        pytest.param(
            lambda W, b: ([w.astype(np.float16) for w in W], [v.astype(np.float16) for v in b]),
            np.float64,
            id="float16",
        ),
        pytest.param(
            lambda W, b: (tuple(w.astype(np.float32) for w in W), tuple(v.astype(np.float32) for v in b)),
            np.float32,
            id="tuples-of-float32",
        ),
    ],
)
def test_from_weights_infers_the_dtype(backend, make, expected):
    rng = np.random.default_rng(1)
    W = [rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (2, 4))]
    b = [rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 2)]
    Ws, bs = make(W, b)
    net = Network.from_weights(Ws, bs, backend=backend)
    assert net.dtype == expected
    for given, held in zip((*Ws, *bs), (*net.weights, *net.biases)):
        np.testing.assert_array_equal(held, np.asarray(given).astype(expected), strict=True)


@pytest.mark.parametrize("given", ["float32", "float64"])
def test_from_weights_explicit_dtype(backend, dtype, given):
    rng = np.random.default_rng(2)
    Ws = [rng.uniform(-1, 1, (4, 3)).astype(given), rng.uniform(-1, 1, (2, 4)).astype(given)]
    bs = [rng.uniform(-1, 1, 4).astype(given), rng.uniform(-1, 1, 2).astype(given)]
    net = Network.from_weights(Ws, bs, dtype=dtype, backend=backend)
    assert net.dtype == dtype
    for a, held in zip((*Ws, *bs), (*net.weights, *net.biases)):
        np.testing.assert_array_equal(held, a.astype(dtype), strict=True)
    assert net.forward(np.zeros(3)).dtype == dtype


def test_from_weights_round_trip(backend, dtype):
    net = Network(SIZES, seed=4, dtype=dtype, backend=backend)
    copy = Network.from_weights(net.weights, net.biases, backend=backend)
    assert_same_net(copy, net)
    X, Y = data()
    np.testing.assert_array_equal(copy.forward(X), net.forward(X), strict=True)
    copy.step(X[0], Y[0], 0.5)  # independent parameters
    assert not np.array_equal(all_params(copy), all_params(net))


# ---------------------------------------------------------------------------
# forward, cost, gradients
# ---------------------------------------------------------------------------


def test_forward_shapes(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, _ = data(n=4)
    assert net.forward(X[0]).shape == (2,)
    assert net.forward(X).shape == (4, 2)
    assert net.forward(X[:1]).shape == (1, 2)
    out = net.forward(X)
    assert out.dtype == dtype
    assert np.all((out > 0) & (out < 1))


def test_forward_of_a_batch_is_the_stacked_single_forwards(backend, dtype):
    # Rows of a batch go through BLAS (compiled backend), whose sums may round
    # differently from a single row's: equal to rounding, not to the bit.
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, _ = data(n=7)
    batch = net.forward(X)
    assert batch.dtype == dtype and batch.shape == (7, SIZES[-1])
    rtol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(batch, np.stack([net.forward(row) for row in X]), rtol=rtol, atol=0)


def test_forward_matches_the_equations(backend):
    net = Network([3, 4, 4, 2], seed=9, backend=backend)
    X, _ = data(n=5, sizes=[3, 4, 4, 2])
    a = X
    for W, b in zip(net.weights, net.biases):
        a = 1.0 / (1.0 + np.exp(-(a @ W.T + b)))
    np.testing.assert_allclose(net.forward(X), a, rtol=1e-13, atol=0)


def test_forward_is_the_same_on_every_backend():
    X, _ = data(n=5)
    outs = [Network(SIZES, seed=8, backend=name).forward(X) for name in fastbp.backends()]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-12, atol=0)


def test_cost_of_one_sample(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    x, y = X[0].astype(dtype), Y[0].astype(dtype)
    o = net.forward(x).astype(np.float64)
    J = net.cost(x, y)
    assert type(J) is float
    assert J == pytest.approx(0.5 * np.sum((y.astype(np.float64) - o) ** 2), rel=1e-12)
    assert net.cost(x, y) == net.cost(x[None], y[None])


def test_cost_of_a_batch_is_the_mean_of_the_per_sample_costs(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data(n=7)
    per_sample = [net.cost(x, y) for x, y in zip(X, Y)]
    # Rows of a batch go through BLAS (compiled backend): equal to rounding.
    rtol = 1e-14 if dtype == np.float64 else 1e-6
    assert net.cost(X, Y) == pytest.approx(np.mean(per_sample), rel=rtol)


def test_gradients_shapes_and_no_side_effects(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    before = snapshot(net)
    dW, db = net.gradients(X[0], Y[0])
    assert [a.shape for a in dW] == [(5, 3), (2, 5)]
    assert [a.shape for a in db] == [(5,), (2,)]
    assert all(a.dtype == dtype for a in (*dW, *db))
    assert_same_state(net, before)
    dW2, db2 = net.gradients(X[0], Y[0])
    for a, b in zip((*dW, *db), (*dW2, *db2)):
        np.testing.assert_array_equal(a, b, strict=True)


# ---------------------------------------------------------------------------
# step
# ---------------------------------------------------------------------------


def test_step_returns_the_cost_before_the_update(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    for x, y in zip(X, Y):
        before = net.cost(x, y)
        J = net.step(x, y, 0.5)
        assert type(J) is float
        assert J == before
        assert net.cost(x, y) < before  # a small step downhill lowers that sample's cost


def test_step_is_gradient_descent(backend):
    net = Network(SIZES, seed=0, backend=backend)
    X, Y = data()
    dW, db = net.gradients(X[0], Y[0])
    Ws, bs = snapshot(net)
    net.step(X[0], Y[0], 0.25)
    for W, W0, g in zip(net.weights, Ws, dW):
        np.testing.assert_allclose(W, W0 - 0.25 * g, rtol=1e-13, atol=1e-16)
    for b, b0, g in zip(net.biases, bs, db):
        np.testing.assert_allclose(b, b0 - 0.25 * g, rtol=1e-13, atol=1e-16)


def test_step_without_bias_updates(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    Ws, bs = snapshot(net)
    net.step(X[0], Y[0], 0.5, update_biases=False)
    for b, b0 in zip(net.biases, bs):
        np.testing.assert_array_equal(b, b0, strict=True)
    for W, W0 in zip(net.weights, Ws):
        assert not np.array_equal(W, W0)


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------


def test_train_returns_one_cost_per_epoch(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    costs = net.train(X, Y, epochs=4, lr=0.5)
    assert costs.shape == (4,) and costs.dtype == np.float64
    assert np.isfinite(costs).all()


def test_train_is_steps_in_row_order(backend, dtype):
    net, twin = (Network(SIZES, seed=0, dtype=dtype, backend=backend) for _ in range(2))
    X, Y = data()
    costs = net.train(X, Y, epochs=2, lr=0.7)
    for epoch in range(2):
        total = 0.0
        for x, y in zip(X, Y):
            total += twin.step(x, y, 0.7)
        assert costs[epoch] == total / len(X)
    assert_same_net(net, twin)


def test_train_with_shuffle_visits_the_documented_order(backend):
    net, twin = (Network(SIZES, seed=0, backend=backend) for _ in range(2))
    X, Y = data()
    costs = net.train(X, Y, epochs=3, lr=0.7, shuffle=True, seed=11)
    # The documented order: one 64-bit state drawn from default_rng(seed),
    # then each epoch reshuffles the previous order with the kernels' shuffle.
    state = np.random.default_rng(11).integers(0, 2**64, size=1, dtype=np.uint64)
    order = np.arange(len(X), dtype=np.intp)
    for epoch in range(3):
        fastbp.reference.shuffle(order, state)
        total = 0.0
        for i in order:
            total += twin.step(X[i], Y[i], 0.7)
        assert costs[epoch] == pytest.approx(total / len(X), rel=1e-15)
    assert_same_net(net, twin)


def test_three_epochs_equal_three_single_epochs(backend, dtype):
    net, twin = (Network(SIZES, seed=0, dtype=dtype, backend=backend) for _ in range(2))
    X, Y = data()
    costs = net.train(X, Y, epochs=3, lr=0.5)
    singles = np.concatenate([twin.train(X, Y, epochs=1, lr=0.5) for _ in range(3)])
    np.testing.assert_array_equal(costs, singles, strict=True)
    assert_same_net(net, twin)


def test_shuffle_with_a_seed_is_reproducible(backend, dtype):
    X, Y = data(n=8)
    runs = []
    for _ in range(2):
        net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
        runs.append((net.train(X, Y, epochs=3, shuffle=True, seed=123), net))
    np.testing.assert_array_equal(runs[0][0], runs[1][0], strict=True)
    assert_same_net(runs[0][1], runs[1][1])
    # a different seed gives another order, hence other costs and weights
    other = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    other_costs = other.train(X, Y, epochs=3, shuffle=True, seed=124)
    assert not np.array_equal(other_costs, runs[0][0])
    assert not np.array_equal(all_params(other), all_params(runs[0][1]))
    # and shuffling differs from the row order
    plain = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    assert not np.array_equal(plain.train(X, Y, epochs=3), runs[0][0])


def test_shuffle_is_the_same_on_every_backend():
    X, Y = data(n=8)
    results = []
    for name in fastbp.backends():
        net = Network(SIZES, seed=0, backend=name)
        results.append((net.train(X, Y, epochs=4, lr=0.8, shuffle=True, seed=5), all_params(net)))
    for costs, params in results[1:]:
        np.testing.assert_allclose(costs, results[0][0], rtol=1e-12, atol=0)
        np.testing.assert_allclose(params, results[0][1], rtol=1e-12, atol=0)


def test_train_without_bias_updates(backend, dtype):
    net = Network(SIZES, seed=0, dtype=dtype, backend=backend)
    X, Y = data()
    Ws, bs = snapshot(net)
    net.train(X, Y, epochs=3, shuffle=True, seed=0, update_biases=False)
    for b, b0 in zip(net.biases, bs):
        np.testing.assert_array_equal(b, b0, strict=True)
    for W, W0 in zip(net.weights, Ws):
        assert not np.array_equal(W, W0)


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_learns_xor(backend, dtype, seed):
    # 2-6-1 with lr=2 and 1000 epochs learned XOR from each of 2000 seeds tried
    # while writing this test (final/initial cost at most 0.013), so no seed is lucky.
    net = Network([2, 6, 1], seed=seed, dtype=dtype, backend=backend)
    initial = net.cost(XOR_X, XOR_Y)
    costs = net.train(XOR_X, XOR_Y, epochs=1000, lr=2.0)
    final = net.cost(XOR_X, XOR_Y)
    assert final < 0.05 * initial
    assert costs[-1] < 0.05 * costs[0]
    np.testing.assert_array_equal(net.forward(XOR_X) > 0.5, XOR_Y > 0.5)


# ---------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------

DIVERGING = [
    pytest.param("float64", 1e300, 0.5, id="float64-target-1e300"),
    pytest.param("float64", 1e300, 1e300, id="float64-target-and-lr-1e300"),
    pytest.param("float64", 1e10, 1e300, id="float64-lr-1e300"),
    pytest.param("float32", 0.5, 1e300, id="float32-lr-1e300"),
    pytest.param("float32", 1e30, 1e30, id="float32-target-and-lr-1e30"),
]


@pytest.mark.parametrize("net_dtype, target, lr", DIVERGING)
def test_diverging_step_restores_the_network(backend, net_dtype, target, lr):
    net = Network(SIZES, seed=0, dtype=net_dtype, backend=backend)
    X, Y = data()
    net.step(X[1], Y[1], 0.5)  # a normal step first: the state to come back to is not the initial one
    before = snapshot(net)
    y = np.array([target, 0.5])
    with pytest.raises(
        TrainingDivergedError, match=re.escape(f"training diverged during the step with lr={lr}")
    ):
        net.step(X[0], y, lr)
    assert_same_state(net, before)
    assert np.isfinite(all_params(net)).all()
    # The network is usable afterwards.
    assert np.isfinite(net.train(X, Y, epochs=2)).all()


def _huge_input_pair(dtype, huge):
    # A network whose first input is ``huge`` but carries no weight yet, so
    # the hidden neurons do not saturate and the first layer's step
    # lr * delta_k * x_0 is huge: beyond the bound under which the compiled
    # step skips its check (see _step_of in fastbp/_door.pxi).
    rng = np.random.default_rng(4)
    W1, W2 = rng.uniform(-1, 1, (5, 3)), rng.uniform(-1, 1, (2, 5))
    W1[:, 0] = 0
    weights, biases = [W1, W2], [rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 2)]
    nets = [Network.from_weights(weights, biases, dtype=dtype, backend=b) for b in ("cython", "python")]
    return nets, np.array([huge, 0.3, -0.2], dtype=dtype), np.array([0.1, 0.9], dtype=dtype)


@pytest.mark.parametrize("net_dtype, huge", [("float64", 1e300), ("float32", 1e36)])
def test_a_huge_but_finite_step_is_applied_as_the_reference_applies_it(net_dtype, huge):
    (compiled, reference), x, y = _huge_input_pair(net_dtype, huge)
    J = compiled.step(x, y, 0.01)
    assert J == pytest.approx(reference.step(x, y, 0.01), rel=1e-6)
    assert np.isfinite(all_params(compiled)).all()
    # The step taken was beyond the bound (2^969, 2^102) that skips the check.
    assert abs(compiled.weights[0][:, 0]).max() > (2.0**969 if net_dtype == "float64" else 2.0**102)
    np.testing.assert_allclose(
        all_params(compiled), all_params(reference), rtol=1e-6 if net_dtype == "float32" else 1e-12
    )


@pytest.mark.parametrize("net_dtype, huge, lr", [("float64", 1e300, 1e10), ("float32", 1e36, 1e10)])
def test_a_step_that_would_overflow_a_weight_is_refused_on_both_backends(net_dtype, huge, lr):
    for net in _huge_input_pair(net_dtype, huge)[0]:
        x, y = _huge_input_pair(net_dtype, huge)[1:]
        before = snapshot(net)
        with pytest.raises(TrainingDivergedError, match=re.escape(f"the step with lr={float(lr)}")):
            net.step(x, y, lr)
        assert_same_state(net, before)


@pytest.mark.parametrize("net_dtype, target, lr", DIVERGING)
def test_diverging_train_restores_the_network(backend, net_dtype, target, lr):
    net = Network(SIZES, seed=0, dtype=net_dtype, backend=backend)
    X, Y = data()
    net.train(X, Y, epochs=1)
    before = snapshot(net)
    Y_bad = Y.copy()
    Y_bad[:, 0] = target
    with pytest.raises(
        TrainingDivergedError, match=re.escape(f"training diverged during epoch 1 of 3 with lr={lr}")
    ):
        net.train(X, Y_bad, epochs=3, lr=lr, shuffle=True, seed=0)
    assert_same_state(net, before)
    assert np.isfinite(all_params(net)).all()
    assert np.isfinite(net.forward(X)).all()


def test_training_diverged_error_is_a_floating_point_error():
    assert issubclass(TrainingDivergedError, FloatingPointError)
    assert fastbp.TrainingDivergedError is TrainingDivergedError


class _PoisonedEpoch:
    """The network's kernel module, except that its training call number
    ``fail_at`` runs with an infinite learning rate, so that epoch really
    diverges inside the kernel (NaN weights), as a late divergence would."""

    def __init__(self, kernels, fail_at):
        self._kernels, self._fail_at, self.calls = kernels, fail_at, 0

    def __getattr__(self, name):
        return getattr(self._kernels, name)

    def train(self, params, sizes, X, Y, order, rng_state, shuffle, lr, *rest):
        self.calls += 1
        if self.calls == self._fail_at:
            lr = np.inf
        return self._kernels.train(params, sizes, X, Y, order, rng_state, shuffle, lr, *rest)


def test_divergence_late_in_training_restores_the_last_good_epoch(backend, dtype, monkeypatch):
    net, twin = (Network(SIZES, seed=0, dtype=dtype, backend=backend) for _ in range(2))
    X, Y = data()
    monkeypatch.setattr(net, "_kernels", _PoisonedEpoch(net._kernels, fail_at=3))
    seen = []
    # A callback makes one kernel call per epoch, so the third call is epoch 3.
    with pytest.raises(
        TrainingDivergedError, match=re.escape("training diverged during epoch 3 of 5 with lr=0.5")
    ) as error:
        net.train(X, Y, epochs=5, lr=0.5, callback=lambda epoch, cost: seen.append(cost))
    twin_costs = twin.train(X, Y, epochs=2, lr=0.5)  # the two epochs that completed
    assert_same_net(net, twin)
    np.testing.assert_array_equal(error.value.costs, twin_costs)
    np.testing.assert_array_equal(seen, twin_costs)


# ---------------------------------------------------------------------------
# Overflow in the arithmetic, pickling
# ---------------------------------------------------------------------------


def test_float32_weighted_sum_that_overflows_float32_is_still_exact(backend):
    # 3e38*2 - 3e38*2 = 0 exactly, but a float32 running sum overflows half
    # way: the compiled kernel must redo the neuron in double, as the reference does.
    net = Network.from_weights([[[3e38, -3e38]]], [[0.0]], dtype="float32", backend=backend)
    np.testing.assert_array_equal(net.forward([2.0, 2.0]), np.float32([0.5]))
    net = Network.from_weights([[[3e38, 3e38]]], [[0.0]], dtype="float32", backend=backend)
    np.testing.assert_array_equal(net.forward([2.0, 2.0]), np.float32([1.0]))


def test_float64_overflow_is_refused_not_returned_as_nan(backend):
    # inf - inf: no wider type to fall back on, so forward/cost/gradients raise.
    net = Network.from_weights([[[1e308, -1e308]]], [[0.0]], backend=backend)
    snap = snapshot(net)
    for call in (
        lambda: net.forward([2.0, 2.0]),
        lambda: net.forward([[2.0, 2.0]]),
        lambda: net.cost([2.0, 2.0], [0.5]),
        lambda: net.gradients([2.0, 2.0], [0.5]),
    ):
        with pytest.raises(FloatingPointError, match="overflowed"):
            call()
    assert_same_state(net, snap)
    np.testing.assert_array_equal(net.forward([1.0, 1.0]), [0.5])  # still usable where it is finite


def test_absurd_epoch_count_is_a_value_error(backend):
    net = Network([2, 1], seed=0, backend=backend)
    snap = snapshot(net)
    with pytest.raises(ValueError, match=r"epochs=10000000000000 is too many"):
        net.train([[0.0, 1.0]], [[1.0]], epochs=10**13)
    assert_same_state(net, snap)


def test_pickle_and_deepcopy_round_trip(backend, dtype):
    import copy
    import pickle

    net = Network([3, 4, 2], seed=2, dtype=dtype, backend=backend)
    X, Y = data(sizes=(3, 4, 2))
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert (clone.layer_sizes, clone.dtype, clone.backend) == (net.layer_sizes, net.dtype, net.backend)
        assert_same_net(clone, net)
        assert not np.shares_memory(clone.weights[0], net.weights[0])
        clone.train(X, Y, epochs=2)  # independent state, its own lock
        assert not np.array_equal(clone.weights[0], net.weights[0])


def test_views_cannot_be_made_writeable(backend):
    net = Network([2, 3, 1], seed=0, backend=backend)
    for view in net.weights + net.biases:
        with pytest.raises(ValueError):
            view.flags.writeable = True


def test_data_that_aliases_the_weights_is_copied_first(backend):
    # X = a view of the network's own weights: training must use the values
    # as they were at the call, as it would with a copy.
    net = Network([3, 3], seed=0, backend=backend)
    twin = Network.from_weights(*snapshot(net), backend=backend)
    X = net.weights[0]
    X_copy = X.copy()
    Y = np.full((3, 3), 0.5)
    np.testing.assert_array_equal(net.train(X, Y, epochs=2), twin.train(X_copy, Y, epochs=2))
    assert_same_net(net, twin)


@pytest.mark.parametrize("batch_size", [1, 64])
def test_training_memory_does_not_grow_with_samples_or_epochs(batch_size):
    # Peak memory of a run = the data (given, not copied) + weights + buffers
    # proportional to the layer widths (times the batch size): the memory
    # traced during train() is the same for 10x the rows and 10x the epochs.
    import tracemalloc

    def peak(rows, epochs):
        rng = np.random.default_rng(0)
        X, Y = rng.uniform(size=(rows, 2)), rng.uniform(size=(rows, 2))
        net = Network([2, 16, 2], seed=0)
        tracemalloc.start()
        try:
            net.train(X, Y, epochs=epochs, lr=0.1, batch_size=batch_size)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, many_rows, many_epochs = peak(20_000, 1), peak(200_000, 1), peak(20_000, 10)
    # 200,000 rows of data are 6.4 MB: growing by even 1 byte per row would show.
    assert many_rows < small + 100_000, (small, many_rows)
    assert many_epochs < small + 100_000, (small, many_epochs)
    assert small < 200_000, small
