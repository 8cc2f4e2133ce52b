"""The worked example of the seed notes, figure by figure, on every backend.

A 2-2-2 network, inputs 0.05, 0.10, targets 0.01, 0.99, weights w1..w8,
one fixed bias per layer, learning rate 0.5: the "step by step backpropagation
example" that the seed notes build on, with the figures it publishes.
Each published figure is checked to the digits it is printed with: an absolute
tolerance of half a unit of its last printed digit.
"""

import numpy as np
import pytest

import fastbp

X = [0.05, 0.10]
Y = [0.01, 0.99]
# weights[0] = [[w1, w2], [w3, w4]] (row k = weights into hidden neuron k),
# weights[1] = [[w5, w6], [w7, w8]] (row k = weights into output neuron k).
WEIGHTS = [[[0.15, 0.20], [0.25, 0.30]], [[0.40, 0.45], [0.50, 0.55]]]
BIASES = [[0.35, 0.35], [0.60, 0.60]]
LR = 0.5

# The published figures, as printed (strings: the digits set the tolerance).
OUT_H = ["0.593269992", "0.596884378"]
OUT_O = ["0.75136507", "0.772928465"]
OUT_O_VALUES = [float(f) for f in OUT_O]
TOTAL_ERROR = "0.298371109"
DE_DW5 = "0.082167041"
UPDATED = {  # name: (layer, row, column, published value)
    "w1": (0, 0, 0, "0.149780716"),
    "w2": (0, 0, 1, "0.19956143"),
    "w3": (0, 1, 0, "0.24975114"),
    "w4": (0, 1, 1, "0.29950229"),
    "w5": (1, 0, 0, "0.35891648"),
    "w6": (1, 0, 1, "0.408666186"),
    "w7": (1, 1, 0, "0.511301270"),
    "w8": (1, 1, 1, "0.561370121"),
}
# The total error after the first round, computed exactly in float64.  The
# article prints 0.291027924 because it rounded intermediate values.
ERROR_AFTER_ONE_ROUND_FLOAT64 = 0.2910277737
ARTICLE_ERROR_AFTER_ONE_ROUND = 0.291027924

# float32 carries ~7 significant digits: a few units in the last place of
# values in [0.1, 1) (one ulp there is at most 6e-8).
FLOAT32_ATOL = 1e-7


def printed(figure):
    """(value, tolerance) for a figure printed as a decimal string:
    half a unit of its last printed digit."""
    decimals = len(figure.split(".")[1])
    return float(figure), 0.5 * 10.0**-decimals


def assert_figure(computed, figure, what):
    value, tol = printed(figure)
    assert abs(float(computed) - value) <= tol, (
        f"{what} = {float(computed)!r}, published {figure} (+/- {tol:g})"
    )


def example(backend, dtype="float64"):
    return fastbp.Network.from_weights(WEIGHTS, BIASES, dtype=dtype, backend=backend)


def hidden_outputs(net):
    """out_h1, out_h2: the first layer of ``net`` run on its own by the library."""
    first = fastbp.Network.from_weights(
        [w.copy() for w in net.weights[:1]], [b.copy() for b in net.biases[:1]], backend=net.backend
    )
    return first.forward(X)


# ----------------------------------------------------------------------
# float64: every figure to its printed digits
# ----------------------------------------------------------------------


def test_mapping_of_w1_to_w8(backend):
    net = example(backend)
    assert net.layer_sizes == (2, 2, 2)
    assert net.backend == backend
    np.testing.assert_array_equal(net.weights[0], [[0.15, 0.20], [0.25, 0.30]])
    np.testing.assert_array_equal(net.weights[1], [[0.40, 0.45], [0.50, 0.55]])
    np.testing.assert_array_equal(net.biases[0], [0.35, 0.35])
    np.testing.assert_array_equal(net.biases[1], [0.60, 0.60])


def test_forward_pass_hidden_outputs(backend):
    out_h = hidden_outputs(example(backend))
    assert out_h.dtype == np.float64
    for k, figure in enumerate(OUT_H):
        assert_figure(out_h[k], figure, f"out_h{k + 1}")


def test_forward_pass_outputs(backend):
    out_o = example(backend).forward(X)
    assert out_o.shape == (2,) and out_o.dtype == np.float64
    for k, figure in enumerate(OUT_O):
        assert_figure(out_o[k], figure, f"out_o{k + 1}")


def test_total_error(backend):
    assert_figure(example(backend).cost(X, Y), TOTAL_ERROR, "E_total")


def test_gradient_of_w5(backend):
    net = example(backend)
    dW, db = net.gradients(X, Y)
    assert_figure(dW[1][0, 0], DE_DW5, "dE/dw5")
    # Chain rule: dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5
    #                    = delta_o1 * out_h1, and dE/db = delta.
    out_o1 = net.forward(X)[0]
    out_h1 = hidden_outputs(net)[0]
    chain = -(Y[0] - out_o1) * out_o1 * (1 - out_o1) * out_h1
    assert dW[1][0, 0] == pytest.approx(chain, rel=1e-14)
    assert db[1][0] * out_h1 == pytest.approx(dW[1][0, 0], rel=1e-14)


def test_gradients_change_nothing(backend):
    net = example(backend)
    net.gradients(X, Y)
    np.testing.assert_array_equal(net.weights[0], WEIGHTS[0])
    np.testing.assert_array_equal(net.weights[1], WEIGHTS[1])


def test_one_update(backend):
    net = example(backend)
    J = net.step(X, Y, LR, update_biases=False)
    assert_figure(J, TOTAL_ERROR, "J returned by step (measured before the update)")
    for name, (layer, k, j, figure) in UPDATED.items():
        assert_figure(net.weights[layer][k, j], figure, f"updated {name}")
    # The biases are not updated in the example.
    np.testing.assert_array_equal(net.biases[0], BIASES[0])
    np.testing.assert_array_equal(net.biases[1], BIASES[1])


def test_one_update_is_w_minus_lr_times_gradient(backend):
    net = example(backend)
    dW, _ = net.gradients(X, Y)
    net.step(X, Y, LR, update_biases=False)
    for layer in range(2):
        np.testing.assert_allclose(
            net.weights[layer], np.array(WEIGHTS[layer]) - LR * dW[layer], rtol=0, atol=1e-15
        )


def test_error_after_first_round_is_the_float64_value(backend):
    net = example(backend)
    net.step(X, Y, LR, update_biases=False)
    E = net.cost(X, Y)
    assert abs(E - ERROR_AFTER_ONE_ROUND_FLOAT64) <= 1e-10, E
    # ... and not the article's figure, which rounded its intermediate values.
    assert abs(E - ARTICLE_ERROR_AFTER_ONE_ROUND) > 1e-7, E


def test_error_after_first_round_through_train(backend):
    """train() runs the same update as step(): the cost of its second epoch
    (measured before the second update) is the error after the first round."""
    net = example(backend)
    costs = net.train([X], [Y], epochs=2, lr=LR, update_biases=False)
    assert_figure(costs[0], TOTAL_ERROR, "cost of epoch 1")
    assert abs(costs[1] - ERROR_AFTER_ONE_ROUND_FLOAT64) <= 1e-10, costs
    stepped = example(backend)
    stepped.step(X, Y, LR, update_biases=False)
    stepped.step(X, Y, LR, update_biases=False)
    for layer in range(2):
        np.testing.assert_array_equal(net.weights[layer], stepped.weights[layer])
    np.testing.assert_array_equal(net.biases[1], BIASES[1])


def test_training_reduces_the_error(backend):
    net = example(backend)
    costs = net.train([X], [Y], epochs=1000, lr=LR, update_biases=False)
    assert np.all(np.diff(costs) < 0), "the error should fall at every round on this example"
    assert net.cost(X, Y) < 0.01 * costs[0]
    out = net.forward(X)
    assert abs(out[0] - Y[0]) < abs(OUT_O_VALUES[0] - Y[0])
    assert abs(out[1] - Y[1]) < abs(OUT_O_VALUES[1] - Y[1])


# ----------------------------------------------------------------------
# float32: the same example, to float32 precision
# ----------------------------------------------------------------------


def test_float32_example(backend):
    net = example(backend, dtype="float32")
    assert net.dtype == np.float32
    out_h = hidden_outputs(net)
    out_o = net.forward(X)
    assert out_h.dtype == np.float32 and out_o.dtype == np.float32
    np.testing.assert_allclose(out_h, [float(f) for f in OUT_H], rtol=0, atol=FLOAT32_ATOL)
    np.testing.assert_allclose(out_o, OUT_O_VALUES, rtol=0, atol=FLOAT32_ATOL)
    assert net.cost(X, Y) == pytest.approx(float(TOTAL_ERROR), abs=FLOAT32_ATOL)

    dW, _ = net.gradients(X, Y)
    assert dW[1].dtype == np.float32
    assert float(dW[1][0, 0]) == pytest.approx(float(DE_DW5), abs=FLOAT32_ATOL)

    J = net.step(X, Y, LR, update_biases=False)
    assert J == pytest.approx(float(TOTAL_ERROR), abs=FLOAT32_ATOL)
    for name, (layer, k, j, figure) in UPDATED.items():
        assert net.weights[layer].dtype == np.float32
        assert float(net.weights[layer][k, j]) == pytest.approx(float(figure), abs=FLOAT32_ATOL), name
    np.testing.assert_array_equal(net.biases[0], np.float32(0.35))
    np.testing.assert_array_equal(net.biases[1], np.float32(0.60))
    assert net.cost(X, Y) == pytest.approx(ERROR_AFTER_ONE_ROUND_FLOAT64, abs=FLOAT32_ATOL)


def test_float32_is_really_float32(backend):
    """A float32 network rounds to float32: it is close to, but not the same as, float64."""
    out32 = example(backend, dtype="float32").forward(X)
    out64 = example(backend).forward(X)
    assert not np.array_equal(out32.astype(np.float64), out64)
    np.testing.assert_allclose(out32, out64, rtol=0, atol=FLOAT32_ATOL)
