"""Optimizers (issue 11): SGD with momentum, Nesterov and weight decay, Adam, RPROP.

1. Trajectories against ``torch.optim`` (skipped, with the reason, where
   torch is not installed): float64, about 100 updates, 1e-9 relative, for
   SGD with momentum, with Nesterov, with weight decay, Adam with and without
   weight decay and Rprop; online and mini-batch (RPROP: full batch); every
   hidden activation and every valid (output activation, loss) pair of
   ``fastbp._model``.  The torch model starts from the network's initial
   weights; its loss is the per-row fastbp J summed over the batch and divided
   by its rows; the weights after the run and the costs ``train`` returns
   (the mean J of each epoch, each J with the weights its update started
   from) are compared.
2. The reference backend and every compiled copy agree (float64 and float32,
   the tolerances of ``tests/test_equivalence.py``), and the copies give the
   same bits.
3. Continuation: k calls of ``train(epochs=1)`` give the bits of one call of
   ``epochs=k``; ``step`` repeated is ``train`` online over those rows.
4. The undo: an epoch that diverges (or that Ctrl-C interrupts) leaves the
   weights *and* the optimizer's state (its slots and its step count) as they
   were before it, after a successful first epoch made that state non-trivial.
5. Pickle and ``copy.deepcopy``, fresh and bound, round-trip and continue the
   same trajectory; ``reset``.
6. Bad input: a clear ``ValueError``/``TypeError`` before anything changes.
"""

from __future__ import annotations

import copy
import faulthandler
import functools
import itertools
import math
import pickle
import signal
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import examples
from test_activations import COPIES, HIDDEN, OUTPUTS, flat, make, targets
from test_equivalence import RTOL64_TRAINED, assert_close, rtol_for, update_scale

import fastbp
from fastbp import Network, _layout, _model
from fastbp.optimizers import Optimizer

PY = fastbp.get_backend("python")
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
CLASSES = {"SGD": fastbp.SGD, "Adam": fastbp.Adam, "RPROP": fastbp.RPROP}

# The optimizers under test: (class name, hyper-parameters, id).  The same
# keywords go to torch.optim.SGD / Adam / Rprop, whose names fastbp shares.
CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9), "sgd-momentum"),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True), "sgd-nesterov"),
    ("SGD", dict(lr=0.2, weight_decay=0.05), "sgd-weight-decay"),
    ("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1), "sgd-nesterov-weight-decay"),
    ("Adam", dict(lr=0.01), "adam"),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05), "adam-weight-decay"),
    ("RPROP", dict(lr=0.01), "rprop"),
    ("RPROP", dict(lr=0.05, etas=(0.4, 1.3), step_sizes=(1e-3, 0.5)), "rprop-custom"),
]
CONFIG_IDS = [c[2] for c in CONFIGS]

# Runs of about 100 updates: (rows, epochs, batch_size).  Mini-batch: 14 rows
# in batches of 4 (the last of 2), 4 updates an epoch.  RPROP: one update an
# epoch over all rows (batch_size=None, its default).
MODES = {
    "online": (10, 10, 1),
    "mini-batch": (14, 25, 4),
    "full-batch": (12, 100, None),
}


def modes_of(name):
    return ("full-batch",) if name == "RPROP" else ("online", "mini-batch")


def optimizer(name, kwargs):
    return CLASSES[name](**kwargs)


def config_mode_cases():
    """Every optimizer of CONFIGS with each of its modes."""
    for i, (name, _kwargs, cid) in enumerate(CONFIGS):
        for mode in modes_of(name):
            yield pytest.param(i, mode, id=f"{cid}-{mode}")


def model_cases(offset=0):
    """Every valid (output activation, loss) pair, each with its hidden
    activations; over the seven cases every hidden activation comes up
    (3-5-4-3 with two hidden activations, 3-4-2 with one)."""
    for i, (out, loss) in enumerate(OUTPUTS):
        k = i + offset
        if i % 2 == 0:
            yield [3, 5, 4, 3], [HIDDEN[k % 5], HIDDEN[(k + 2) % 5]], out, loss
        else:
            yield [3, 4, 2], [HIDDEN[k % 5]], out, loss


def data(sizes, rows, out, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (rows, sizes[0]))
    Y = targets(rng, (rows, sizes[-1]), out, loss)
    return X, Y


def net_of(sizes, hidden, out, loss, backend, dtype=np.float64, seed=1):
    return Network(
        sizes, activation=hidden, output_activation=out, loss=loss, seed=seed, dtype=dtype, backend=backend
    )


def state_of(opt):
    """What the undo must restore, copied: the step count, the binding and
    every state slot (``{name: array}``)."""
    slots = {name: np.array(value, copy=True) for name, value in opt.state.items()}
    return opt.steps, opt.layer_sizes, opt.dtype, slots


def assert_same_state(opt, expected, what):
    steps, sizes, dtype, slots = state_of(opt)
    e_steps, e_sizes, e_dtype, e_slots = expected
    assert steps == e_steps, f"{what}: steps {steps} != {e_steps}"
    assert (sizes, dtype) == (e_sizes, e_dtype), (
        f"{what}: bound to {sizes} {dtype}, expected {e_sizes} {e_dtype}"
    )
    assert slots.keys() == e_slots.keys(), f"{what}: state slots {sorted(slots)} != {sorted(e_slots)}"
    for name in slots:
        np.testing.assert_array_equal(slots[name], e_slots[name], err_msg=f"{what}: state {name!r}")


def assert_nontrivial_state(opt, what):
    """After training, every slot holds some non-zero value (RPROP's step
    sizes start non-zero: they must have moved from lr)."""
    steps, _, _, slots = state_of(opt)
    assert steps > 0, f"{what}: no update counted"
    for name, value in slots.items():
        start = opt.lr if name == "step_size" else 0.0
        assert np.any(value != start), f"{what}: state {name!r} is still all {start}"


def train(net, X, Y, opt, epochs, batch_size, **kwargs):
    return net.train(X, Y, epochs=epochs, optimizer=opt, batch_size=batch_size, **kwargs)


# --------------------------------------------------------------------------
# 1. Trajectories against torch.optim
# --------------------------------------------------------------------------


def _torch():
    return pytest.importorskip(
        "torch",
        reason="PyTorch is not installed (pip install torch==2.13.0): the "
        "trajectories against torch.optim are skipped",
    )


def torch_row_costs(torch, Ws, bs, names, loss, X, Y):
    """The per-row J of fastbp's model (``fastbp._model``) in torch, shape (m,).
    The cross-entropy from the output's net input, stably: for sigmoids
    ``-[y ln o + (1 - y) ln(1 - o)]`` is ``binary_cross_entropy_with_logits``;
    for softmax ``-sum y ln o`` is ``-sum y log_softmax(z)``."""
    F = torch.nn.functional
    functions = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda v: F.leaky_relu(v, _model.LEAKY_SLOPE),
        "identity": lambda v: v,
    }
    a = X
    for l, (W, b, name) in enumerate(zip(Ws, bs, names)):
        z = a @ W.T + b
        if l < len(Ws) - 1:
            a = functions[name](z)
    out = names[-1]
    if loss == "cross_entropy" and out == "sigmoid":
        return F.binary_cross_entropy_with_logits(z, Y, reduction="none").sum(dim=1)
    if loss == "cross_entropy":
        return -(Y * F.log_softmax(z, dim=1)).sum(dim=1)
    return 0.5 * ((Y - functions[out](z)) ** 2).sum(dim=1)


def torch_optimizer(torch, name, kwargs, params):
    cls = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "RPROP": torch.optim.Rprop}[name]
    return cls(params, foreach=False, **kwargs)


def torch_trajectory(net, X, Y, name, kwargs, epochs, batch_size, update_biases=True):
    """``(costs, params)`` of the same run in torch, float64: per batch the
    loss J.sum() / m, one optimizer step; each epoch's cost the mean over the
    rows of the J measured before their update."""
    torch = _torch()
    Ws = [torch.tensor(np.array(W, dtype=np.float64), requires_grad=True) for W in net.weights]
    bs = [torch.tensor(np.array(b, dtype=np.float64), requires_grad=True) for b in net.biases]
    params = [p for W, b in zip(Ws, bs) for p in ((W, b) if update_biases else (W,))]
    opt = torch_optimizer(torch, name, kwargs, params)
    tX, tY = torch.tensor(np.asarray(X, np.float64)), torch.tensor(np.asarray(Y, np.float64))
    n = len(X)
    batch_size = n if batch_size is None else batch_size
    costs = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, n, batch_size):
            opt.zero_grad()
            J = torch_row_costs(
                torch,
                Ws,
                bs,
                net.activations,
                net.loss,
                tX[start : start + batch_size],
                tY[start : start + batch_size],
            )
            (J.sum() / len(J)).backward()
            total += J.detach().sum().item()
            opt.step()
        costs.append(total / n)
    final = np.concatenate([np.r_[W.detach().numpy().ravel(), b.detach().numpy()] for W, b in zip(Ws, bs)])
    return np.array(costs), final


# Both compute the same float64 expressions, in other orders and with other
# libm functions (a few ulps per value); 100 updates can amplify that: the
# issue's 1e-9, which is test_equivalence's RTOL64_TRAINED.
RTOL_TORCH = RTOL64_TRAINED
assert RTOL_TORCH == 1e-9


def compare_with_torch(net, X, Y, name, kwargs, epochs, batch_size, what, update_biases=True, expected=None):
    init = flat(net)
    if expected is None:
        expected = torch_trajectory(net, X, Y, name, kwargs, epochs, batch_size, update_biases)
    expected_costs, expected = expected
    opt = optimizer(name, kwargs)
    costs = train(net, X, Y, opt, epochs, batch_size, update_biases=update_biases)
    assert costs.shape == (epochs,)
    assert not np.allclose(expected, init, rtol=1e-6, atol=1e-6), f"{what}: training changed (almost) nothing"
    assert_close(flat(net), expected, RTOL_TORCH, scale=update_scale(init, expected), what=f"{what} weights")
    assert_close(costs, expected_costs, RTOL_TORCH, scale=np.abs(expected_costs).max(), what=f"{what} costs")
    updates = epochs * (1 if batch_size is None else -(-len(X) // batch_size))
    assert opt.steps == updates, f"{what}: steps {opt.steps} after {updates} updates"
    return opt


def trajectory_cases(config, mode):
    """The models of one optimizer configuration and mode: a share of the
    seven of model_cases, the shares of one rule's configurations and modes
    (RPROP: 4 + 3; SGD, Adam: 2 each, in turn) together covering every
    (output, loss) pair and every hidden activation, so that each rule meets
    all of them while the torch side (a few ms an update) stays affordable."""
    name = CONFIGS[config][0]
    family = [(c, m) for c, (n, _, _) in enumerate(CONFIGS) if n == name for m in modes_of(n)]
    j = family.index((config, mode))
    cases = list(model_cases(offset=config))
    if name == "RPROP":
        return cases[j % 2 :: 2]
    return [cases[(2 * j) % 7], cases[(2 * j + 1) % 7]]


@functools.cache
def _torch_expected(config, mode, i):
    """The torch trajectory of one case, computed once for every backend."""
    name, kwargs, _ = CONFIGS[config]
    rows, epochs, batch_size = MODES[mode]
    sizes, hidden, out, loss = trajectory_cases(config, mode)[i]
    X, Y = data(sizes, rows, out, loss, seed=config)
    return torch_trajectory(
        net_of(sizes, hidden, out, loss, "python"), X, Y, name, kwargs, epochs, batch_size
    )


def test_the_trajectory_cases_cover_every_model():
    for name in ("SGD", "Adam", "RPROP"):
        seen = set()
        for config, (n, _, _) in enumerate(CONFIGS):
            if n == name:
                for mode in modes_of(name):
                    for _sizes, hidden, out, loss in trajectory_cases(config, mode):
                        seen.add((out, loss))
                        seen.update(hidden)
        assert seen == set(OUTPUTS) | set(HIDDEN), name


@pytest.mark.parametrize("config, mode", list(config_mode_cases()))
def test_the_trajectory_is_torch_optims(config, mode, backend):
    _torch()
    name, kwargs, cid = CONFIGS[config]
    rows, epochs, batch_size = MODES[mode]
    for i, (sizes, hidden, out, loss) in enumerate(trajectory_cases(config, mode)):
        X, Y = data(sizes, rows, out, loss, seed=config)
        net = net_of(sizes, hidden, out, loss, backend)
        compare_with_torch(
            net,
            X,
            Y,
            name,
            kwargs,
            epochs,
            batch_size,
            f"{cid} {mode} {sizes} {hidden} {out}/{loss} on {backend}",
            expected=_torch_expected(config, mode, i),
        )


WITHOUT_BIASES = [
    ("sgd-nesterov-weight-decay", "online"),
    ("adam-weight-decay", "mini-batch"),
    ("rprop-custom", "full-batch"),
]
WITHOUT_BIASES_MODEL = [3, 5, 4, 3], ["tanh", "relu"], "sigmoid", "cross_entropy"


@functools.cache
def _torch_expected_without_biases(config, mode):
    name, kwargs, _ = CONFIGS[CONFIG_IDS.index(config)]
    rows, epochs, batch_size = MODES[mode]
    sizes, hidden, out, loss = WITHOUT_BIASES_MODEL
    X, Y = data(sizes, rows, out, loss, seed=7)
    net = net_of(sizes, hidden, out, loss, "python")
    return torch_trajectory(net, X, Y, name, kwargs, epochs, batch_size, update_biases=False)


@pytest.mark.parametrize("config, mode", WITHOUT_BIASES)
def test_the_trajectory_without_bias_updates_is_torch_optims_on_the_weights(config, mode, backend):
    # update_biases=False: the biases neither change nor decay; torch is given
    # the weights only.
    _torch()
    name, kwargs, cid = CONFIGS[CONFIG_IDS.index(config)]
    rows, epochs, batch_size = MODES[mode]
    sizes, hidden, out, loss = WITHOUT_BIASES_MODEL
    X, Y = data(sizes, rows, out, loss, seed=7)
    net = net_of(sizes, hidden, out, loss, backend)
    biases = [b.copy() for b in net.biases]
    compare_with_torch(
        net,
        X,
        Y,
        name,
        kwargs,
        epochs,
        batch_size,
        f"{cid} {mode} without biases",
        update_biases=False,
        expected=_torch_expected_without_biases(config, mode),
    )
    for b, b0 in zip(net.biases, biases):
        np.testing.assert_array_equal(b, b0)


def test_the_torch_side_is_what_fastbp_computes_with_plain_sgd():
    # The torch side of these tests, checked once against fastbp's plain
    # gradient descent (which test_activations checks against autograd): SGD
    # without momentum and weight decay is w -= lr * mean gradient.
    _torch()
    for sizes, hidden, out, loss in itertools.islice(model_cases(), 0, None, 3):
        X, Y = data(sizes, 14, out, loss)
        net = net_of(sizes, hidden, out, loss, "python")
        init = flat(net)
        expected_costs, expected = torch_trajectory(net, X, Y, "SGD", dict(lr=0.3), 5, 4)
        costs = net.train(X, Y, epochs=5, lr=0.3, batch_size=4)
        assert_close(
            flat(net), expected, RTOL_TORCH, scale=update_scale(init, expected), what=f"{out}/{loss}"
        )
        assert_close(
            costs, expected_costs, RTOL_TORCH, scale=np.abs(expected_costs).max(), what=f"{out}/{loss}"
        )


# --------------------------------------------------------------------------
# 2. The reference backend and every compiled copy
# --------------------------------------------------------------------------


def _copy_run(make_net, name, kwargs, mode, X, Y):
    """What a user does with an optimizer, from the same initial weights."""
    _rows, epochs, batch_size = MODES[mode]
    got = {}
    net, opt = make_net(), optimizer(name, kwargs)
    got["costs"] = train(net, X, Y, opt, epochs // 2, batch_size)
    got["weights"] = flat(net)
    got.update({f"state {k}": v for k, v in state_of(opt)[3].items()})
    # More of the same, shuffled, without the biases; then single steps.
    shuffled = dict(shuffle=True, seed=5, update_biases=False)
    got["shuffled costs"] = train(net, X, Y, opt, epochs - epochs // 2, batch_size, **shuffled)
    got["shuffled weights"] = flat(net)
    got["step J"] = np.array([net.step(X[i], Y[i], optimizer=opt) for i in range(3)])
    got["step weights"] = flat(net)
    got.update({f"final state {k}": v for k, v in state_of(opt)[3].items()})
    got["steps"] = np.array([opt.steps])
    return got


def _same_bits(results, what):
    (first, a), *rest = results.items()
    for isa, b in rest:
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(b[key], a[key], err_msg=f"{what}: {isa} {key} differs from {first}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("config", range(len(CONFIGS)), ids=CONFIG_IDS)
def test_every_compiled_copy_agrees_with_the_reference(config, dtype):
    name, kwargs, cid = CONFIGS[config]
    rtol = rtol_for(dtype, trained=True)
    for mode in modes_of(name):
        rows = MODES[mode][0]
        for sizes, hidden, out, loss in itertools.islice(model_cases(offset=config), config % 2, None, 2):
            X, Y = data(sizes, rows, out, loss, seed=config)
            what = f"{cid} {mode} {sizes} {hidden} {out}/{loss} {dtype}"
            init = flat(make(sizes, hidden, out, loss, dtype, backend="python", seed=1))
            expected = _copy_run(
                lambda: make(sizes, hidden, out, loss, dtype, backend="python", seed=1),
                name,
                kwargs,
                mode,
                X,
                Y,
            )
            results = {}
            for isa in COPIES:
                got = _copy_run(
                    lambda: make(sizes, hidden, out, loss, dtype, isa=isa, seed=1), name, kwargs, mode, X, Y
                )
                assert got["steps"] == expected["steps"], f"{what} {isa}: steps"
                for key in ("costs", "shuffled costs", "step J"):
                    assert_close(
                        got[key],
                        expected[key],
                        rtol,
                        scale=np.abs(expected["costs"]).max(),
                        what=f"{what} {isa} {key}",
                    )
                for key in ("weights", "shuffled weights", "step weights"):
                    assert_close(
                        got[key],
                        expected[key],
                        rtol,
                        scale=update_scale(init, expected[key]),
                        what=f"{what} {isa} {key}",
                    )
                for key in expected:
                    if key.startswith(("state", "final state")):
                        assert_close(got[key], expected[key], rtol, what=f"{what} {isa} {key}")
                results[isa] = got
            _same_bits(results, what)


# --------------------------------------------------------------------------
# 3. Continuation: k calls of one epoch are one call of k epochs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("config, mode", list(config_mode_cases()))
def test_k_calls_of_one_epoch_are_one_call_of_k_epochs(config, mode, backend):
    name, kwargs, cid = CONFIGS[config]
    sizes, hidden, out, loss = [3, 5, 4, 3], ["relu", "sigmoid"], "softmax", "cross_entropy"
    rows, _, batch_size = MODES[mode]
    X, Y = data(sizes, rows, out, loss)
    # 3 rows, 70 epochs: the compiled run saves its state only every few
    # epochs (64 // rows); the same bits whatever it does between.
    for rows_X, rows_Y, k in ((X, Y, 6), (X[:3], Y[:3], 70)):
        one, many = net_of(sizes, hidden, out, loss, backend), net_of(sizes, hidden, out, loss, backend)
        opt_one, opt_many = optimizer(name, kwargs), optimizer(name, kwargs)
        costs_one = train(one, rows_X, rows_Y, opt_one, k, batch_size)
        costs_many = np.concatenate([train(many, rows_X, rows_Y, opt_many, 1, batch_size) for _ in range(k)])
        np.testing.assert_array_equal(costs_many, costs_one, err_msg=f"{cid} {mode}: costs")
        np.testing.assert_array_equal(flat(many), flat(one), err_msg=f"{cid} {mode}: weights")
        assert_same_state(opt_many, state_of(opt_one), f"{cid} {mode}")
        assert_nontrivial_state(opt_one, f"{cid} {mode}")


@pytest.mark.parametrize("config", range(len(CONFIGS)), ids=CONFIG_IDS)
def test_step_repeated_is_online_training(config, backend):
    # SGD/Adam: step on each row in order == one online epoch over the rows.
    # RPROP: step is a full batch of its one row: k steps == k epochs of it.
    name, kwargs, cid = CONFIGS[config]
    sizes, hidden, out, loss = [3, 4, 2], ["tanh"], "sigmoid", "squared_error"
    X, Y = data(sizes, 8, out, loss)
    if name == "RPROP":
        X, Y = np.repeat(X[:1], 8, axis=0), np.repeat(Y[:1], 8, axis=0)
    stepped, trained = net_of(sizes, hidden, out, loss, backend), net_of(sizes, hidden, out, loss, backend)
    opt_s, opt_t = optimizer(name, kwargs), optimizer(name, kwargs)
    Js = [stepped.step(x, y, optimizer=opt_s) for x, y in zip(X, Y)]
    if name == "RPROP":
        costs = train(trained, X[:1], Y[:1], opt_t, len(X), None)
        np.testing.assert_array_equal(costs, Js)
    else:
        costs = train(trained, X, Y, opt_t, 1, 1)
        assert costs[0] == pytest.approx(math.fsum(Js) / len(Js), rel=1e-14)
    assert all(isinstance(J, float) for J in Js)
    np.testing.assert_array_equal(flat(stepped), flat(trained), err_msg=cid)
    assert_same_state(opt_s, state_of(opt_t), cid)
    assert opt_s.steps == len(X)


def test_sgd_without_momentum_is_plain_gradient_descent(backend):
    # fastbp.SGD(lr) alone is the note's gradient descent, lr=: the same
    # trajectory (to rounding: the plain path may fuse its operations).
    sizes, hidden, out, loss = [3, 5, 4, 3], ["sigmoid", "leaky_relu"], "identity", "squared_error"
    X, Y = data(sizes, 14, out, loss)
    for batch_size in (1, 4):
        plain, opt_net = net_of(sizes, hidden, out, loss, backend), net_of(sizes, hidden, out, loss, backend)
        init = flat(plain)
        costs_plain = plain.train(X, Y, epochs=10, lr=0.1, batch_size=batch_size)
        costs_opt = opt_net.train(X, Y, epochs=10, optimizer=fastbp.SGD(lr=0.1), batch_size=batch_size)
        assert_close(costs_opt, costs_plain, RTOL64_TRAINED, what="costs")
        assert_close(
            flat(opt_net), flat(plain), RTOL64_TRAINED, scale=update_scale(init, flat(plain)), what="weights"
        )


@pytest.mark.parametrize("backend", fastbp.backends())
@settings(max_examples=examples(10))
@given(
    config=st.integers(0, len(CONFIGS) - 1),
    splits=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    update_biases=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    rows=st.integers(1, 9),
)
def test_any_split_of_a_run_is_the_run(backend, config, splits, update_biases, dtype, rows):
    # The epochs of a run split into calls in any way: the bits of one call
    # per split on one side, of one call per epoch on the other.
    name, kwargs, cid = CONFIGS[config]
    sizes, hidden, out, loss = [4, 6, 3], ["leaky_relu"], "softmax", "cross_entropy"
    X, Y = data(sizes, rows, out, loss, seed=config)
    batch_size = None if name == "RPROP" else 1 + config % 3
    a, b = net_of(sizes, hidden, out, loss, backend, dtype), net_of(sizes, hidden, out, loss, backend, dtype)
    opt_a, opt_b = optimizer(name, kwargs), optimizer(name, kwargs)
    for k in splits:
        costs_a = train(a, X, Y, opt_a, k, batch_size, update_biases=update_biases)
        costs_b = [train(b, X, Y, opt_b, 1, batch_size, update_biases=update_biases) for _ in range(k)]
        np.testing.assert_array_equal(np.concatenate(costs_b), costs_a)
    np.testing.assert_array_equal(flat(b), flat(a))
    assert_same_state(opt_b, state_of(opt_a), cid)
    assert opt_a.steps == sum(splits) * (1 if batch_size is None else -(-rows // batch_size))


def test_a_shuffled_run_is_the_same_run_on_every_call(backend):
    # With shuffle and a seed the same call gives the same bits (the order is
    # drawn from the seed, not from the optimizer's state).
    sizes, hidden, out, loss = [3, 4, 2], ["relu"], "sigmoid", "cross_entropy"
    X, Y = data(sizes, 11, out, loss)
    for name, kwargs, _ in CONFIGS[::2]:
        batch_size = None if name == "RPROP" else 3
        runs = []
        for _ in range(2):
            net, opt = net_of(sizes, hidden, out, loss, backend), optimizer(name, kwargs)
            costs = [train(net, X, Y, opt, 3, batch_size, shuffle=True, seed=s) for s in (1, 2)]
            runs.append((np.concatenate(costs), flat(net), state_of(opt)[3]))
        np.testing.assert_array_equal(runs[0][0], runs[1][0])
        np.testing.assert_array_equal(runs[0][1], runs[1][1])
        for slot in runs[0][2]:
            np.testing.assert_array_equal(runs[0][2][slot], runs[1][2][slot])


# --------------------------------------------------------------------------
# 4. The undo restores the optimizer's state too
# --------------------------------------------------------------------------

# A network whose outputs are unbounded (identity), so that data far out
# overflows the cost and the weights whatever the optimizer.
DIVERGING = ([3, 5, 2], ["relu"], "identity", "squared_error")


def _warm(backend, name, kwargs, batch_size, rows=6):
    """A network and an optimizer after two successful epochs, and their data."""
    X, Y = data(DIVERGING[0], rows, DIVERGING[2], DIVERGING[3])
    net, opt = net_of(*DIVERGING, backend), optimizer(name, kwargs)
    train(net, X, Y, opt, 2, batch_size)
    assert_nontrivial_state(opt, name)
    return net, opt, X, Y


@pytest.mark.parametrize("config, mode", list(config_mode_cases()))
def test_a_diverging_epoch_restores_the_weights_and_the_optimizer_state(config, mode, backend):
    # The failing call's data are the same rows with the last one far out:
    # the updates before it change the state (moments, velocity, steps,
    # step sizes); its own overflows.  After TrainingDivergedError the weights
    # and every state slot and the step count are those of before the call,
    # and the pair continues exactly as an untouched twin.
    name, kwargs, cid = CONFIGS[config]
    batch_size = MODES[mode][2]
    net, opt, X, Y = _warm(backend, name, kwargs, batch_size)
    twin_net, twin_opt = pickle.loads(pickle.dumps(net)), copy.deepcopy(opt)
    before, state = flat(net), state_of(opt)
    X_bad = X.copy()
    X_bad[-1] = 1e200
    with pytest.raises(fastbp.TrainingDivergedError) as error:
        train(net, X_bad, Y, opt, 3, batch_size)
    assert len(error.value.costs) == 0
    np.testing.assert_array_equal(flat(net), before, err_msg=f"{cid} {mode}: the weights were not restored")
    assert_same_state(opt, state, f"{cid} {mode}: the optimizer state was not restored")
    # The same for step (one update; for RPROP a full batch of that row).
    with pytest.raises(fastbp.TrainingDivergedError):
        net.step(X_bad[-1], Y[-1], optimizer=opt)
    np.testing.assert_array_equal(flat(net), before, err_msg=f"{cid} {mode}: step: weights")
    assert_same_state(opt, state, f"{cid} {mode}: step: the optimizer state was not restored")
    # And it goes on as if the failures never happened.
    costs = train(net, X, Y, opt, 2, batch_size)
    np.testing.assert_array_equal(costs, train(twin_net, X, Y, twin_opt, 2, batch_size))
    np.testing.assert_array_equal(flat(net), flat(twin_net))
    assert_same_state(opt, state_of(twin_opt), f"{cid} {mode}: after the undo")


@pytest.mark.parametrize("rows", [2, 5, 70])
@pytest.mark.parametrize("name", ["SGD", "RPROP"])
def test_a_long_run_ends_at_the_last_epoch_before_it_diverged(name, rows, backend):
    # A run that diverges at some epoch k > 1 of one call (the compiled run
    # checks only every few epochs, 64 // rows, and replays from its last
    # save, which must hold the optimizer's state too) ends with the weights,
    # the state and the costs of a twin that ran k - 1 epochs, one call each.
    #   SGD with momentum: an lr at which descent on an identity network grows
    #   geometrically (two updates an epoch whatever the rows); RPROP: the
    #   step grows by 1e60 each epoch the gradient keeps its sign.
    # (Adam is not here: its steps are bounded by about lr / sqrt(1 - beta2),
    # so it overflows in its first updates or never; the undo of its state is
    # tested above and below.)
    kwargs = {
        "SGD": dict(lr=0.2, momentum=0.9),
        "RPROP": dict(lr=1.0, etas=(0.5, 1e60), step_sizes=(0.0, 1e300)),
    }[name]
    batch_size = None if name == "RPROP" else (rows + 1) // 2
    sizes, hidden, out, loss = [3, 4, 2], ["identity"], "identity", "squared_error"
    X, Y = data(sizes, rows, out, loss)
    X *= 3
    net, opt = net_of(sizes, hidden, out, loss, backend), optimizer(name, kwargs)
    with pytest.raises(fastbp.TrainingDivergedError) as error:
        train(net, X, Y, opt, 500, batch_size)
    done = len(error.value.costs)
    assert done >= 2, f"{name}: diverged in epoch {done + 1}: this test needs a later one"
    twin, twin_opt = net_of(sizes, hidden, out, loss, backend), optimizer(name, kwargs)
    twin_costs = np.concatenate([train(twin, X, Y, twin_opt, 1, batch_size) for _ in range(done)])
    np.testing.assert_array_equal(error.value.costs, twin_costs)
    np.testing.assert_array_equal(flat(net), flat(twin), err_msg=f"{name}: weights after {done} epochs")
    assert_same_state(opt, state_of(twin_opt), f"{name}: state after {done} epochs")
    assert_nontrivial_state(opt, name)
    with pytest.raises(fastbp.TrainingDivergedError):  # the twin's next epoch diverges too
        train(twin, X, Y, twin_opt, 1, batch_size)


def test_a_diverging_epoch_with_an_assigned_huge_lr_is_undone(backend):
    # opt.lr may be assigned (schedules): an lr of 1e300 after two good epochs
    # overflows; undone, and with lr set back the run continues as the twin's.
    for name, kwargs in (("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01))):
        net, opt, X, Y = _warm(backend, name, kwargs, 1)
        twin_net, twin_opt = pickle.loads(pickle.dumps(net)), pickle.loads(pickle.dumps(opt))
        before, state = flat(net), state_of(opt)
        opt.lr = 1e300
        assert opt.lr == 1e300
        with pytest.raises(fastbp.TrainingDivergedError):
            train(net, X, Y, opt, 1, 1)
        np.testing.assert_array_equal(flat(net), before)
        assert_same_state(opt, state, f"{name}: lr 1e300")
        opt.lr = kwargs["lr"]
        np.testing.assert_array_equal(train(net, X, Y, opt, 1, 1), train(twin_net, X, Y, twin_opt, 1, 1))
        np.testing.assert_array_equal(flat(net), flat(twin_net))


@pytest.fixture
def default_sigint_handler():
    # As tests/test_interrupt.py: the default handler whatever this process
    # inherited, and a traceback instead of a hang should the signal be lost.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    faulthandler.dump_traceback_later(600, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_after(seconds):
    timer = threading.Timer(seconds, signal.raise_signal, args=(signal.SIGINT,))
    timer.start()
    return timer


@pytest.mark.parametrize(
    "backend, name, kwargs, batch_size, sizes, rows",
    [
        ("python", "Adam", dict(lr=0.01), 1, [2, 3, 2], 100_000),
        ("python", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True), 4, [2, 3, 2], 200_000),
        ("cython", "Adam", dict(lr=0.001, weight_decay=0.01), 1, [1, 2000, 1], 2_000_000),
        ("cython", "SGD", dict(lr=0.01, momentum=0.9), 64, [1, 2000, 1], 2_000_000),
        ("cython", "RPROP", dict(), None, [1, 2000, 1], 2_000_000),
    ],
)
def test_ctrl_c_restores_the_weights_and_the_optimizer_state(
    backend, name, kwargs, batch_size, sizes, rows, default_sigint_handler
):
    # Two good epochs on a few rows make the state non-trivial; Ctrl-C at
    # 0.3 s into one long epoch (seconds to minutes uninterrupted) undoes it.
    rng = np.random.default_rng(3)
    X, Y = rng.uniform(size=(rows, sizes[0])), rng.uniform(size=(rows, sizes[-1]))
    net, opt = Network(sizes, seed=0, backend=backend), optimizer(name, kwargs)
    train(net, X[:8], Y[:8], opt, 2, None if name == "RPROP" else 2)
    assert_nontrivial_state(opt, name)
    before, state = flat(net), state_of(opt)
    timer = _ctrl_c_after(0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(net, X, Y, opt, 1, batch_size)
    finally:
        timer.cancel()
    np.testing.assert_array_equal(flat(net), before, err_msg="the interrupted epoch's weights were kept")
    assert_same_state(opt, state, f"{name}: the interrupted epoch's optimizer state was kept")


# --------------------------------------------------------------------------
# 5. Pickle, deepcopy, reset, sharing
# --------------------------------------------------------------------------

COPIERS = {"pickle": lambda o: pickle.loads(pickle.dumps(o)), "deepcopy": copy.deepcopy}


def _hyper(opt):
    names = {
        "SGD": ("lr", "momentum", "nesterov", "weight_decay"),
        "Adam": ("lr", "betas", "eps", "weight_decay"),
        "RPROP": ("lr", "etas", "step_sizes"),
    }[type(opt).__name__]
    return {n: getattr(opt, n) for n in names}


@pytest.mark.parametrize("how", COPIERS)
@pytest.mark.parametrize("config", range(len(CONFIGS)), ids=CONFIG_IDS)
def test_a_copy_continues_the_same_trajectory(config, how, backend):
    name, kwargs, cid = CONFIGS[config]
    copier = COPIERS[how]
    batch_size = None if name == "RPROP" else 3
    sizes, hidden, out, loss = [3, 5, 4, 3], ["tanh", "leaky_relu"], "sigmoid", "cross_entropy"
    X, Y = data(sizes, 9, out, loss)
    # Fresh: the hyper-parameters and nothing bound.
    opt = optimizer(name, kwargs)
    fresh = copier(opt)
    assert type(fresh) is type(opt) and fresh is not opt
    assert _hyper(fresh) == _hyper(opt) == {**_hyper(opt), **kwargs}
    assert repr(fresh) == repr(opt)
    assert (fresh.layer_sizes, fresh.dtype, fresh.steps, fresh.state) == (None, None, 0, {})
    # Both train a twin network the same.
    a, b = net_of(sizes, hidden, out, loss, backend), net_of(sizes, hidden, out, loss, backend)
    np.testing.assert_array_equal(train(a, X, Y, opt, 3, batch_size), train(b, X, Y, fresh, 3, batch_size))
    np.testing.assert_array_equal(flat(a), flat(b))
    # Bound: the state and the binding come along; the copy is independent.
    bound = copier(opt)
    assert_same_state(bound, state_of(opt), f"{cid} {how}")
    assert bound.layer_sizes == tuple(sizes) and bound.dtype == np.float64
    b = copier(a)  # the network too (Network pickles and deep-copies)
    expected = train(a, X, Y, opt, 4, batch_size)
    state = state_of(opt)
    np.testing.assert_array_equal(train(b, X, Y, bound, 4, batch_size), expected)
    np.testing.assert_array_equal(flat(b), flat(a))
    assert_same_state(bound, state, f"{cid} {how}: after 4 more epochs")
    train(b, X, Y, bound, 1, batch_size)  # the copy's use leaves the original alone
    assert_same_state(opt, state, f"{cid} {how}: the copy shares state with the original")
    # The state is walked beside the parameters, so it starts where they do
    # (fastbp._layout.ALIGNMENT), when bound and when copied (a rule without
    # state has no values to place).
    assert all(o._state.ctypes.data % _layout.ALIGNMENT == 0 for o in (opt, bound) if o._state.size)
    # A copy of a copy, float32.
    opt32 = optimizer(name, kwargs)
    net32 = net_of(sizes, hidden, out, loss, backend, dtype=np.float32)
    train(net32, X, Y, opt32, 2, batch_size)
    again = copier(copier(opt32))
    assert again.dtype == np.float32
    assert_same_state(again, state_of(opt32), f"{cid} {how} float32")
    assert all(v.dtype == np.float32 for v in again.state.values())


@pytest.mark.parametrize("config", range(len(CONFIGS)), ids=CONFIG_IDS)
def test_reset_starts_afresh_and_may_bind_another_shape(config, backend):
    name, kwargs, cid = CONFIGS[config]
    batch_size = None if name == "RPROP" else 2
    X, Y = data([3, 4, 2], 6, "sigmoid", "squared_error")
    opt = optimizer(name, kwargs)
    train(net_of([3, 4, 2], ["tanh"], "sigmoid", "squared_error", backend), X, Y, opt, 2, batch_size)
    assert opt.layer_sizes == (3, 4, 2)
    opt.reset()
    assert (opt.layer_sizes, opt.dtype, opt.steps, opt.state) == (None, None, 0, {})
    assert _hyper(opt) == {**_hyper(opt), **kwargs}
    # Another shape and dtype now; and the same run as a brand-new optimizer's.
    X2, Y2 = data([3, 2, 3], 6, "sigmoid", "squared_error")
    a = net_of([3, 2, 3], ["relu"], "sigmoid", "squared_error", backend, dtype=np.float32)
    b = net_of([3, 2, 3], ["relu"], "sigmoid", "squared_error", backend, dtype=np.float32)
    new = optimizer(name, kwargs)
    np.testing.assert_array_equal(train(a, X2, Y2, opt, 3, batch_size), train(b, X2, Y2, new, 3, batch_size))
    np.testing.assert_array_equal(flat(a), flat(b))
    assert opt.layer_sizes == (3, 2, 3) and opt.dtype == np.float32
    assert_same_state(opt, state_of(new), cid)


def test_networks_of_one_shape_may_share_an_optimizer(backend):
    # The state is per shape, like a torch optimizer's per parameter: two
    # networks of the same shape and dtype take turns with one optimizer.
    X, Y = data([3, 4, 2], 6, "sigmoid", "squared_error")
    a = net_of([3, 4, 2], ["tanh"], "sigmoid", "squared_error", backend, seed=1)
    b = net_of([3, 4, 2], ["tanh"], "sigmoid", "squared_error", backend, seed=2)
    opt = fastbp.Adam(lr=0.01)
    train(a, X, Y, opt, 1, 1)
    train(b, X, Y, opt, 1, 1)
    assert opt.steps == 12
    b.step(X[0], Y[0], optimizer=opt)
    assert opt.steps == 13


def test_hyper_parameters_are_read_only_except_lr():
    opt = fastbp.SGD(lr=0.1, momentum=0.5)
    for attribute, value in (
        ("momentum", 0.1),
        ("nesterov", True),
        ("weight_decay", 0.1),
        ("steps", 3),
        ("layer_sizes", (1, 1)),
        ("dtype", np.float32),
    ):
        with pytest.raises(AttributeError):
            setattr(opt, attribute, value)
    for attribute, value in (("betas", (0.5, 0.5)), ("eps", 1.0)):
        with pytest.raises(AttributeError):
            setattr(fastbp.Adam(), attribute, value)
    for attribute, value in (("etas", (0.1, 2.0)), ("step_sizes", (0.0, 1.0))):
        with pytest.raises(AttributeError):
            setattr(fastbp.RPROP(), attribute, value)
    opt.lr = 0.25
    assert opt.lr == 0.25 and "lr=0.25" in repr(opt) and "momentum=0.5" in repr(opt)


def test_the_defaults_are_torchs():
    assert _hyper(fastbp.SGD()) == dict(lr=0.5, momentum=0.0, nesterov=False, weight_decay=0.0)
    assert _hyper(fastbp.Adam()) == dict(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    assert _hyper(fastbp.RPROP()) == dict(lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0))
    for cls in CLASSES.values():
        assert issubclass(cls, Optimizer)
        opt = cls()
        assert (opt.layer_sizes, opt.dtype, opt.steps) == (None, None, 0)


# --------------------------------------------------------------------------
# 6. Bad input: a clear error before anything changes
# --------------------------------------------------------------------------

NAN, INF = math.nan, math.inf
BAD_HYPER = [
    # (class, keywords, error, a word the message must contain)
    ("SGD", dict(momentum=-0.1), ValueError, "momentum"),
    ("SGD", dict(momentum=1.0), ValueError, "momentum"),
    ("SGD", dict(momentum=1.5), ValueError, "momentum"),
    ("SGD", dict(momentum=NAN), ValueError, "momentum"),
    ("SGD", dict(nesterov=True), ValueError, "nesterov"),
    ("SGD", dict(nesterov=True, momentum=0.0), ValueError, "nesterov"),
    ("SGD", dict(weight_decay=-1e-3), ValueError, "weight_decay"),
    ("SGD", dict(weight_decay=NAN), ValueError, "weight_decay"),
    ("SGD", dict(weight_decay=INF), ValueError, "weight_decay"),
    ("SGD", dict(lr=0.0), ValueError, "lr"),
    ("SGD", dict(lr=-0.1), ValueError, "lr"),
    ("SGD", dict(lr=NAN), ValueError, "lr"),
    ("SGD", dict(lr=INF), ValueError, "lr"),
    ("SGD", dict(lr=True), TypeError, "lr"),
    ("SGD", dict(lr="0.1"), TypeError, "lr"),
    ("SGD", dict(momentum=True), TypeError, "momentum"),
    ("SGD", dict(momentum="0.9"), TypeError, "momentum"),
    ("SGD", dict(weight_decay=False), TypeError, "weight_decay"),
    ("SGD", dict(momentum=0.9, nesterov="yes"), TypeError, "nesterov"),
    ("SGD", dict(momentum=0.9, nesterov=1), TypeError, "nesterov"),
    ("SGD", dict(lr=None), TypeError, "lr"),
    ("Adam", dict(betas=(1.0, 0.999)), ValueError, "betas"),
    ("Adam", dict(betas=(0.9, 1.0)), ValueError, "betas"),
    ("Adam", dict(betas=(-0.1, 0.999)), ValueError, "betas"),
    ("Adam", dict(betas=(0.9, NAN)), ValueError, "betas"),
    ("Adam", dict(betas=0.9), TypeError, "betas"),
    ("Adam", dict(betas=(0.9,)), TypeError, "betas"),
    ("Adam", dict(betas=(0.9, 0.99, 0.999)), TypeError, "betas"),
    ("Adam", dict(betas="ab"), TypeError, "betas"),
    ("Adam", dict(betas=(0.9, "0.999")), TypeError, "betas"),
    ("Adam", dict(betas=(True, 0.999)), TypeError, "betas"),
    ("Adam", dict(eps=0.0), ValueError, "eps"),
    ("Adam", dict(eps=-1e-8), ValueError, "eps"),
    ("Adam", dict(eps=NAN), ValueError, "eps"),
    ("Adam", dict(eps="1e-8"), TypeError, "eps"),
    ("Adam", dict(weight_decay=-0.5), ValueError, "weight_decay"),
    ("Adam", dict(weight_decay=INF), ValueError, "weight_decay"),
    ("Adam", dict(lr=0), ValueError, "lr"),
    ("RPROP", dict(etas=(0.5, 1.0)), ValueError, "etas"),
    ("RPROP", dict(etas=(1.0, 1.2)), ValueError, "etas"),
    ("RPROP", dict(etas=(0.0, 1.2)), ValueError, "etas"),
    ("RPROP", dict(etas=(-0.5, 1.2)), ValueError, "etas"),
    ("RPROP", dict(etas=(1.2, 0.5)), ValueError, "etas"),
    ("RPROP", dict(etas=(0.5, NAN)), ValueError, "etas"),
    ("RPROP", dict(etas=(0.5, INF)), ValueError, "etas"),
    ("RPROP", dict(etas=0.5), TypeError, "etas"),
    ("RPROP", dict(etas=(0.5, 1.2, 2.0)), TypeError, "etas"),
    ("RPROP", dict(etas=(0.5, "1.2")), TypeError, "etas"),
    ("RPROP", dict(step_sizes=(-1e-6, 50.0)), ValueError, "step_sizes"),
    ("RPROP", dict(step_sizes=(1.0, 0.5)), ValueError, "step_sizes"),
    ("RPROP", dict(step_sizes=(0.0, 0.0)), ValueError, "step_sizes"),
    ("RPROP", dict(step_sizes=(0.0, INF)), ValueError, "step_sizes"),
    ("RPROP", dict(step_sizes=(NAN, 1.0)), ValueError, "step_sizes"),
    ("RPROP", dict(step_sizes=(1e-6,)), TypeError, "step_sizes"),
    ("RPROP", dict(step_sizes=(False, 1.0)), TypeError, "step_sizes"),
    ("RPROP", dict(lr=-0.01), ValueError, "lr"),
    ("RPROP", dict(lr=INF), ValueError, "lr"),
]


@pytest.mark.parametrize("name, kwargs, error, word", BAD_HYPER, ids=[f"{n}-{k}" for n, k, _, _ in BAD_HYPER])
def test_bad_hyper_parameters_are_refused_naming_the_argument(name, kwargs, error, word):
    with pytest.raises(error, match=word):
        CLASSES[name](**kwargs)


@pytest.mark.parametrize(
    "value, error",
    [
        (0.0, ValueError),
        (-1.0, ValueError),
        (NAN, ValueError),
        (INF, ValueError),
        (True, TypeError),
        ("0.1", TypeError),
        (None, TypeError),
    ],
)
def test_a_bad_lr_assigned_is_refused_and_changes_nothing(value, error):
    opt = fastbp.Adam(lr=0.01)
    with pytest.raises(error, match="lr"):
        opt.lr = value
    assert opt.lr == 0.01


def test_numpy_scalars_are_numbers():
    opt = fastbp.Adam(lr=np.float32(0.5), betas=(np.float64(0.5), np.float32(0.25)), eps=np.float64(1e-6))
    assert opt.lr == 0.5 and opt.betas == (0.5, 0.25) and type(opt.lr) is float
    assert fastbp.SGD(lr=1, momentum=0, weight_decay=0).lr == 1.0  # ints are real numbers
    assert fastbp.RPROP(etas=[0.5, 2], step_sizes=np.array([0.0, 1.0])).etas == (0.5, 2.0)


class _Unchanged:
    """Asserts, on leaving, that the network's weights and the optimizer's
    state (and binding) are what they were on entering."""

    def __init__(self, net, *opts):
        self.net, self.opts = net, opts

    def __enter__(self):
        self.before = flat(self.net)
        self.states = [state_of(o) for o in self.opts]
        return self

    def __exit__(self, *exc):
        np.testing.assert_array_equal(flat(self.net), self.before, err_msg="the weights changed")
        for opt, state in zip(self.opts, self.states):
            assert_same_state(opt, state, "a refused call changed the optimizer")
        return False


def _bound(backend, sizes=(3, 4, 2), dtype=np.float64, name="Adam"):
    X, Y = data(list(sizes), 6, "sigmoid", "squared_error")
    net = net_of(list(sizes), ["tanh"] * (len(sizes) - 2), "sigmoid", "squared_error", backend, dtype=dtype)
    opt = CLASSES[name]()
    train(net, X, Y, opt, 1, None if name == "RPROP" else 1)
    return net, opt, X, Y


def test_an_optimizer_reused_on_another_shape_or_dtype_is_refused(backend):
    net, opt, X, Y = _bound(backend)
    for sizes, dtype in (((3, 5, 2), np.float64), ((3, 4, 4, 2), np.float64), ((3, 4, 2), np.float32)):
        other = net_of(
            list(sizes), ["tanh"] * (len(sizes) - 2), "sigmoid", "squared_error", backend, dtype=dtype
        )
        with _Unchanged(other, opt), _Unchanged(net):
            for call in (
                lambda: other.train(X, Y, optimizer=opt),
                lambda: other.step(X[0], Y[0], optimizer=opt),
            ):
                with pytest.raises(ValueError) as error:
                    call()
                message = str(error.value)
                # Both shapes (or both dtypes) named.
                assert str(list(sizes)) in message and "[3, 4, 2]" in message, message
                if dtype == np.float32:
                    assert "float32" in message and "float64" in message, message
    # Another activation on the same shape is the same shape: allowed.
    same = Network([3, 4, 2], activation="relu", output_activation="identity", seed=4, backend=backend)
    same.train(X, Y, optimizer=opt)


def test_both_lr_and_optimizer_or_neither_are_refused(backend):
    net, opt, X, Y = _bound(backend)
    with _Unchanged(net, opt):
        with pytest.raises(ValueError, match="lr"):
            net.train(X, Y, lr=0.1, optimizer=opt)
        with pytest.raises(ValueError, match="lr"):
            net.step(X[0], Y[0], 0.1, optimizer=opt)
        with pytest.raises(ValueError, match="lr"):
            net.step(X[0], Y[0], lr=0.1, optimizer=opt)
        with pytest.raises(TypeError, match="lr"):
            net.step(X[0], Y[0])
    # A fresh optimizer given with lr stays unbound.
    fresh = fastbp.SGD(momentum=0.5)
    with pytest.raises(ValueError):
        net.train(X, Y, lr=0.1, optimizer=fresh)
    assert fresh.layer_sizes is None and fresh.steps == 0


@pytest.mark.parametrize(
    "thing",
    [
        "adam",
        fastbp.Adam,
        0.1,
        dict(lr=0.1),
        (0.1, 0.9),
        object(),
        True,
    ],
    ids=["str", "class", "float", "dict", "tuple", "object", "bool"],
)
def test_an_object_that_is_not_an_optimizer_is_refused(thing, backend):
    net, opt, X, Y = _bound(backend)
    with _Unchanged(net, opt):
        with pytest.raises(TypeError, match="optimizer"):
            net.train(X, Y, optimizer=thing)
        with pytest.raises(TypeError, match="optimizer"):
            net.step(X[0], Y[0], optimizer=thing)


def test_a_torch_optimizer_is_refused(backend):
    torch = _torch()
    net, opt, X, Y = _bound(backend)
    with _Unchanged(net, opt), pytest.raises(TypeError, match="optimizer"):
        net.train(X, Y, optimizer=torch.optim.Adam([torch.zeros(1, requires_grad=True)]))


def test_rprop_with_a_mini_batch_is_refused(backend):
    net, opt, X, Y = _bound(backend, name="RPROP")
    with _Unchanged(net, opt):
        for batch_size in (1, 2, len(X) - 1):
            with pytest.raises(ValueError, match="batch_size"):
                net.train(X, Y, optimizer=opt, batch_size=batch_size)
    # All the rows (or more, clipped) is the full batch it is.
    a, b = pickle.loads(pickle.dumps(net)), pickle.loads(pickle.dumps(net))
    opt_b = copy.deepcopy(opt)
    np.testing.assert_array_equal(
        a.train(X, Y, optimizer=opt, batch_size=len(X)),
        b.train(X, Y, optimizer=opt_b, batch_size=10 * len(X)),
    )
    np.testing.assert_array_equal(flat(a), flat(b))


@pytest.mark.parametrize("name", ["SGD", "Adam", "RPROP"])
def test_bad_data_or_arguments_with_an_optimizer_change_nothing(name, backend):
    # Refused before the optimizer binds or its state moves: a fresh optimizer
    # stays unbound; a bound one keeps its state.
    net, opt, X, Y = _bound(backend, name=name)
    fresh = CLASSES[name]()
    bad = [
        dict(X=X[:, :2]),
        dict(Y=Y[:, :1]),
        dict(Y=Y[:-1]),
        dict(X=np.full_like(X, np.nan)),
        dict(epochs=0),
        dict(epochs=True),
        dict(epochs=1.5),
        dict(batch_size=0),
        dict(batch_size="4"),
        dict(shuffle="yes"),
        dict(update_biases=None),
        dict(seed=-1),
        dict(callback=3),
    ]
    with _Unchanged(net, opt):
        for kwargs in bad:
            args = dict(X=X, Y=Y, optimizer=opt) | kwargs
            with pytest.raises((ValueError, TypeError)):
                net.train(args.pop("X"), args.pop("Y"), **args)
            args = dict(X=X, Y=Y, optimizer=fresh) | kwargs
            with pytest.raises((ValueError, TypeError)):
                net.train(args.pop("X"), args.pop("Y"), **args)
            assert fresh.layer_sizes is None and fresh.steps == 0, f"{kwargs}: the fresh optimizer was bound"
        for x, y in ((X[0, :2], Y[0]), (X[0], Y[0, :1]), (X[:2], Y[:2]), (np.full(3, np.inf), Y[0])):
            with pytest.raises((ValueError, TypeError)):
                net.step(x, y, optimizer=opt)
            with pytest.raises((ValueError, TypeError)):
                net.step(x, y, optimizer=fresh)
        with pytest.raises(TypeError):
            net.step(X[0], Y[0], optimizer=opt, update_biases="no")
    assert fresh.layer_sizes is None and fresh.steps == 0
