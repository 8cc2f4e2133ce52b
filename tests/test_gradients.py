"""Network.gradients is the derivative of Network.cost, and step() follows it.

* Every dJ/dW[l][k, j] and dJ/db[l][k] of ``gradients(x, y)`` agrees with the
  central finite difference of ``cost(x, y)`` in that one parameter, on small
  random networks (shallow, deep, with width-1 layers, with saturating
  weights), on every backend (the ``backend`` fixture of conftest).
* The same for every model (random activations per hidden layer, every
  valid output activation and loss) on random networks, and the cost is
  what a NumPy forward pass of the model says.
* ``gradients`` changes nothing in the network.
* ``step(x, y, lr)`` moves every parameter to ``W - lr * dW`` with ``dW`` from
  ``gradients`` before the step (all layers use the weights before the step).
"""

import numpy as np
import pytest
from support import all_params, snapshot
from test_activations import away_from_kinks, flat, from_flat, np_forward, random_model, targets  # its models

import fastbp
from fastbp._layout import layer_views

# (layer sizes, seed, weight scale).  Weights start from fastbp's own
# initialisation; a scale > 1 multiplies them.  Deep sigmoid networks make
# the gradient vanish toward the input (each layer multiplies it by about
# s' |W| <= |W| / 4): with the scale 2 the first layer's gradients stay above
# 1e-5, far enough above the finite differences' noise to be checked.
NETWORKS = [
    ([2, 2, 2], 0, 1.0),
    ([1, 1, 1], 1, 1.0),  # all widths 1
    ([3, 1, 2], 2, 1.0),  # a width-1 bottleneck
    ([5, 8, 1], 3, 1.0),  # one output
    ([4, 6, 5, 6, 5, 3], 4, 1.0),  # deep: 4 hidden layers
    ([4, 6, 5, 6, 5, 3], 4, 2.0),  # deep, larger weights
    ([2, 1, 3, 1, 1, 2], 8, 2.0),  # deep, with width-1 layers
    ([3, 4, 4, 2], 6, 4.0),  # large weights: saturating sigmoids
]
IDS = ["-".join(map(str, sizes)) + (f"-x{scale:g}" if scale != 1 else "") for sizes, _, scale in NETWORKS]


def make_network(sizes, seed, scale, backend, dtype="float64"):
    net = fastbp.Network(sizes, seed=seed, dtype=dtype, backend=backend)
    if scale != 1.0:
        net = fastbp.Network.from_weights(
            [scale * W for W in net.weights], [scale * b for b in net.biases], dtype=dtype, backend=backend
        )
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, sizes[0])
    y = rng.uniform(0, 1, sizes[-1])
    return net, x, y


# --------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------

# Central difference (J(w + h) - J(w - h)) / (2h) in float64, h = 1e-6.
# * Truncation: the error is h^2 / 6 * d^3J/dw^3.  J = 1/2 sum (y - o)^2 is
#   a composition of sigmoids (derivatives bounded by 1/4, 1/10, 1/8) with
#   weights of order 1 (at most ~5 here), so d^3J/dw^3 is of order 1 to 10:
#   an error of 1e-12 to 1e-11.
# * Rounding: each J is computed with an absolute error of about
#   |y - o| * |error of o| <= (n eps sum |W a|) / 4 ~ 7 * 2.2e-16 * 3 / 4 per layer
#   (n <= 8 terms here, eps = 2.2e-16), some 1e-15, so the difference quotient
#   is off by up to 2 * 1e-15 / 2e-6 = 1e-9 at worst.  Measured on these
#   networks: at most 6e-11 (most roundings are the same for w + h and w - h).
# ATOL = 2e-9 is twice that worst case and 30x the measured error; RTOL = 1e-7
# of the derivative itself covers the truncation term where the curvature is
# large.  Every layer checked here has gradients up to at least MIN_GRADIENT
# = 5e-6 (asserted), so a gradient off by more than 0.04% of its layer's size
# fails: far less than any wrong formula (a missing factor a(1 - a) <= 1/4,
# a wrong layer's activations, a transposed delta, a missing bias term, or
# a stale weight all change derivatives by 1% to 100%).
H = 1e-6
ATOL = 2e-9
RTOL = 1e-7
MIN_GRADIENT = 5e-6


def central_differences(cost_of, params):
    """The central difference quotient of ``cost_of`` (a function of a flat
    float64 parameter vector) in each entry of ``params``, step H; divided by
    the step as represented, the difference of the two points."""
    numeric = np.empty_like(params)
    for i in range(len(params)):
        up, down = params.copy(), params.copy()
        up[i] += H
        down[i] -= H
        numeric[i] = (cost_of(up) - cost_of(down)) / (up[i] - down[i])
    return numeric


def finite_differences(net, x, y, backend):
    """Central differences of cost(x, y) in every weight and bias, as lists shaped like
    net.weights and net.biases.  Each perturbed network is built with from_weights
    (the network's parameters are read-only from the outside)."""

    def cost_of(params):
        views = layer_views(params, net.layer_sizes)
        Ws, bs = [W for W, _ in views], [b for _, b in views]
        return fastbp.Network.from_weights(Ws, bs, dtype="float64", backend=backend).cost(x, y)

    views = layer_views(central_differences(cost_of, all_params(net).astype(np.float64)), net.layer_sizes)
    return [W for W, _ in views], [b for _, b in views]


@pytest.mark.parametrize("sizes, seed, scale", NETWORKS, ids=IDS)
def test_gradients_match_central_differences(backend, sizes, seed, scale):
    net, x, y = make_network(sizes, seed, scale, backend)
    dW, db = net.gradients(x, y)
    fd_W, fd_b = finite_differences(net, x, y, backend)
    assert len(dW) == len(fd_W) == len(sizes) - 1
    for l, (g, fd) in enumerate([*zip(dW, fd_W), *zip(db, fd_b)]):
        what = f"dJ/dW[{l + 1}]" if l < len(dW) else f"dJ/db[{l - len(dW) + 1}]"
        assert g.shape == fd.shape, what
        assert g.dtype == np.float64, what
        err = np.abs(g - fd)
        bound = ATOL + RTOL * np.abs(fd)
        assert (err <= bound).all(), (
            f"{what}: gradients() and central differences differ by up to {err.max():.3g} "
            f"(at {np.unravel_index(np.argmax(err - bound), err.shape)})\ngradients:\n{g}\ndifferences:\n{fd}"
        )
        # The check has teeth only if the gradients are well above ATOL.
        assert np.abs(fd).max() >= MIN_GRADIENT, f"{what}: gradients too small for this test: {fd}"


def test_finite_differences_detect_a_slightly_wrong_gradient():
    # The comparison above has teeth: gradients off by 0.1% fail it, in the
    # output layer and in the first layer of a deep network alike.
    net, x, y = make_network([2, 1, 3, 1, 1, 2], 8, 2.0, "python")
    dW, db = net.gradients(x, y)
    fd_W, fd_b = finite_differences(net, x, y, "python")
    for g, fd in [(dW[0], fd_W[0]), (dW[-1], fd_W[-1]), (db[0], fd_b[0])]:
        assert (np.abs(g - fd) <= ATOL + RTOL * np.abs(fd)).all()
        assert not (np.abs(1.001 * g - fd) <= ATOL + RTOL * np.abs(fd)).all()


def test_gradients_match_finite_differences(backend):
    # The [3, 5, 2] network and sample of the semantics tests (test_network.py),
    # to pytest.approx's rel=1e-5, abs=1e-9: tighter than ATOL above for the
    # derivatives below 1e-4.
    net = fastbp.Network([3, 5, 2], seed=0, backend=backend)
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1.0, 1.0, size=(6, 3)), rng.uniform(0.05, 0.95, size=(6, 2))
    x, y = X[0], Y[0]
    dW, db = net.gradients(x, y)
    fd_W, fd_b = finite_differences(net, x, y, backend)
    for layer in range(2):
        for grads, numeric in ((dW, fd_W), (db, fd_b)):
            for index in np.ndindex(grads[layer].shape):
                assert grads[layer][index] == pytest.approx(numeric[layer][index], rel=1e-5, abs=1e-9)


# --------------------------------------------------------------------------
# Every model: random activations per layer, every output and loss (issue 10)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_gradients_of_every_model_match_central_differences(backend, seed):
    rng = np.random.default_rng(1000 + seed)
    sizes, hidden, out, loss = random_model(rng)
    net = fastbp.Network(
        sizes, activation=hidden, output_activation=out, loss=loss, seed=seed, backend=backend
    )
    # Larger weights than the initial ones, so that slopes differ from 1/4 and 1.
    net = from_flat(net, 1.5 * flat(net))
    x = away_from_kinks(rng, net)[0]
    y = targets(rng, (1, sizes[-1]), out, loss)[0]
    dW, db = net.gradients(x, y)
    analytic = np.concatenate([np.r_[W.ravel(), b] for W, b in zip(dW, db)])
    numeric = central_differences(lambda params: from_flat(net, params).cost(x, y), flat(net))
    # Central differences: truncation ~ h^2 |J'''| ~ 1e-12, rounding ~ eps |J| / h ~ 1e-10 |J|.
    J = net.cost(x, y)
    tolerance = 1e-7 * (1.0 + abs(J) + np.abs(analytic).max())
    err = np.abs(analytic - numeric).max()
    assert err <= tolerance, (
        f"{sizes} {hidden} {out}/{loss}: max |analytic - numeric| = {err:.3g} "
        f"> {tolerance:.3g}\nanalytic {analytic}\nnumeric  {numeric}"
    )
    # And J is what the NumPy oracle of the model says.
    _zs, a = np_forward(net.weights, net.biases, net.activations, x)
    if loss == "squared_error":
        J_np = 0.5 * np.sum((y - a[-1]) ** 2)
    else:
        J_np = -np.sum(y * np.log(a[-1]) + ((1 - y) * np.log(1 - a[-1]) if out == "sigmoid" else 0.0))
    assert J == pytest.approx(J_np, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------
# gradients() is read-only; step() follows gradients()
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sizes, seed, scale", NETWORKS, ids=IDS)
def test_gradients_change_nothing(backend, dtype, sizes, seed, scale):
    net, x, y = make_network(sizes, seed, scale, backend, dtype)
    X = np.random.default_rng(seed + 100).uniform(-1, 1, (5, sizes[0]))
    Ws, bs = snapshot(net)
    outputs = net.forward(X)
    cost = net.cost(x, y)
    first = net.gradients(x, y)
    second = net.gradients(x, y)
    for W, W0 in zip(net.weights, Ws):
        assert np.array_equal(W, W0)
    for b, b0 in zip(net.biases, bs):
        assert np.array_equal(b, b0)
    assert np.array_equal(net.forward(X), outputs)
    assert net.cost(x, y) == cost
    # Same answer twice (no state carried between calls), in new arrays of the
    # network's dtype that do not alias the parameters.
    for g1, g2, p in zip(first[0] + first[1], second[0] + second[1], net.weights + net.biases):
        assert np.array_equal(g1, g2)
        assert g1.dtype == net.dtype and g1.shape == p.shape
        assert not np.shares_memory(g1, p)


# step() computes lr * delta_k (rounded) times a_j; the check computes
# lr * (delta_k * a_j): the two differ by a couple of roundings of the update,
# and the stored weight by one more rounding of W.  Relative to the array's
# scale |W| + |lr dW|: float64 1e-12 (as for one kernel call in
# test_equivalence), float32 16 * eps32 = 1.9e-6 (about 4 roundings, 4x margin).
STEP_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 16 * np.finfo(np.float32).eps}


def assert_step(after, before, grad, lr, rtol, what):
    before64 = before.astype(np.float64)
    expected = before64 - lr * grad.astype(np.float64)
    scale = max(
        np.abs(before64).max() + np.abs(lr * grad.astype(np.float64)).max(), np.finfo(np.float64).tiny
    )
    err = np.abs(after.astype(np.float64) - expected).max()
    assert err <= rtol * scale, f"{what}: after step() off W - lr*dW by {err:.3g} (scale {scale:.3g})"
    # ... and the step really moved the parameter (unless its gradient is 0).
    moved = np.abs(lr * grad) > 2 * rtol * scale
    assert (after[moved] != before[moved]).all(), f"{what}: step() did not move the parameters"


@pytest.mark.parametrize("update_biases", [True, False])
@pytest.mark.parametrize("sizes, seed, scale", NETWORKS, ids=IDS)
def test_step_follows_gradients(backend, dtype, sizes, seed, scale, update_biases):
    net, x, y = make_network(sizes, seed, scale, backend, dtype)
    lr = 0.7
    Ws, bs = snapshot(net)
    dW, db = net.gradients(x, y)
    cost = net.cost(x, y)
    J = net.step(x, y, lr, update_biases=update_biases)
    # The cost step() returns is the one before its update.
    assert J == pytest.approx(cost, rel=1e-12, abs=0)
    rtol = STEP_RTOL[net.dtype]
    for l, (W, W0, g) in enumerate(zip(net.weights, Ws, dW), start=1):
        assert_step(W, W0, g, lr, rtol, f"W[{l}]")
    for l, (b, b0, g) in enumerate(zip(net.biases, bs, db), start=1):
        if update_biases:
            assert_step(b, b0, g, lr, rtol, f"b[{l}]")
        else:
            assert np.array_equal(b, b0), f"b[{l}] changed with update_biases=False"
