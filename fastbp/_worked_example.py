"""``python -m fastbp``: the worked example of backpropagation, step by step.

The 2-2-2 network of the well-known "step by step backpropagation example" that
fastbp's seed notes build on: inputs 0.05, 0.10, targets 0.01, 0.99, weights
w1..w8 = 0.15 .. 0.55, one fixed bias per layer (0.35, 0.60), learning rate 0.5.

Only those givens are written here.  Every other number printed is computed by
``fastbp.Network`` and the backend running it (``forward``, ``cost``,
``gradients``, ``step``, ``train``, and the backend's ``sigmoid_derivative``
and ``cost`` kernels), except the few sums and products the walkthrough shows
by hand to explain a step (the neurons' ``net`` inputs, ``dE/dout`` and the
chain-rule product), each printed next to the library's own figure where the
library has one.
"""

from __future__ import annotations

import os
import sys

import numpy as np

# The example's givens (the only numbers not computed below).
INPUTS = [0.05, 0.10]
TARGETS = [0.01, 0.99]
WEIGHTS = [
    [[0.15, 0.20], [0.25, 0.30]],  # weights[0] = [[w1, w2], [w3, w4]]: row k = weights into h_k
    [[0.40, 0.45], [0.50, 0.55]],  # weights[1] = [[w5, w6], [w7, w8]]: row k = weights into o_k
]
BIASES = [[0.35, 0.35], [0.60, 0.60]]
LEARNING_RATE = 0.5

# Training after the first round: stop when E falls below TOLERANCE (checked
# at the milestones) or after MAX_ROUNDS rounds.
MILESTONES = (1, 10, 100, 1000, 10000)
MAX_ROUNDS = MILESTONES[-1]
TOLERANCE = 1e-4


def _f(value) -> str:
    """A figure to 9 decimal places, as the example prints them."""
    return f"{float(value):.9f}"


def _g(value) -> str:
    """A given (input, weight, ...) as written in the example."""
    return f"{float(value):.2f}"


def main() -> int:
    """Print the worked example on stdout; returns the exit status, 0."""
    try:
        _walk_through()
    except BrokenPipeError:
        # The reader went away (e.g. `python -m fastbp | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _walk_through() -> None:
    """Print the worked example, every figure computed by fastbp."""
    import fastbp

    net = fastbp.Network.from_weights(WEIGHTS, BIASES)
    kernels = fastbp.get_backend(net.backend)
    x = np.array(INPUTS, dtype=net.dtype)
    y = np.array(TARGETS, dtype=net.dtype)
    i1, i2 = x
    t1, t2 = y
    lr = LEARNING_RATE
    out = print

    # Keep the starting weights: the network's views are live.
    (w1, w2), (w3, w4) = net.weights[0].copy()
    (w5, w6), (w7, w8) = net.weights[1].copy()
    b1, b2 = net.biases[0][0], net.biases[1][0]

    out("fastbp: backpropagation, step by step")
    out("======================================")
    out(f"fastbp {fastbp.__version__}, backend: {net.backend!r}, dtype: {net.dtype}")
    out("(the worked example of the seed notes: the classic 'step by step backpropagation example')")
    out()

    # ------------------------------------------------------------------
    out("1. The network: 2 inputs, 2 hidden neurons, 2 outputs (2-2-2)")
    out(f"   inputs   i1 = {_g(i1)}   i2 = {_g(i2)}")
    out(f"   targets  o1 -> {_g(t1)}   o2 -> {_g(t2)}")
    out("   input -> hidden, net.weights[0] = [[w1, w2], [w3, w4]]:")
    out(f"     w1 = {_g(w1)} (i1 -> h1)   w2 = {_g(w2)} (i2 -> h1)")
    out(f"     w3 = {_g(w3)} (i1 -> h2)   w4 = {_g(w4)} (i2 -> h2)")
    out(f"     b1 = {_g(b1)} (bias of h1 and of h2)")
    out("   hidden -> output, net.weights[1] = [[w5, w6], [w7, w8]]:")
    out(f"     w5 = {_g(w5)} (h1 -> o1)   w6 = {_g(w6)} (h2 -> o1)")
    out(f"     w7 = {_g(w7)} (h1 -> o2)   w8 = {_g(w8)} (h2 -> o2)")
    out(f"     b2 = {_g(b2)} (bias of o1 and of o2)")
    out("   Every hidden and output neuron computes net = sum(w * input) + b * 1")
    out("   and out = sigmoid(net) = 1 / (1 + e^-net).")
    out(f"   Learning rate {lr}; the biases stay fixed, as in the example.")
    out()

    # ------------------------------------------------------------------
    out("2. Forward pass")
    hidden = fastbp.Network.from_weights(net.weights[:1], net.biases[:1], backend=net.backend)
    out_h1, out_h2 = hidden.forward(x)  # the first layer alone
    out_o1, out_o2 = net.forward(x)  # the whole network
    net_h1 = w1 * i1 + w2 * i2 + b1
    net_h2 = w3 * i1 + w4 * i2 + b1
    net_o1 = w5 * out_h1 + w6 * out_h2 + b2
    net_o2 = w7 * out_h1 + w8 * out_h2 + b2
    out(f"   net_h1 = w1*i1 + w2*i2 + b1         = {_f(net_h1)}   out_h1 = sigmoid(net_h1) = {_f(out_h1)}")
    out(f"   net_h2 = w3*i1 + w4*i2 + b1         = {_f(net_h2)}   out_h2 = sigmoid(net_h2) = {_f(out_h2)}")
    out(f"   net_o1 = w5*out_h1 + w6*out_h2 + b2 = {_f(net_o1)}   out_o1 = sigmoid(net_o1) = {_f(out_o1)}")
    out(f"   net_o2 = w7*out_h1 + w8*out_h2 + b2 = {_f(net_o2)}   out_o2 = sigmoid(net_o2) = {_f(out_o2)}")
    out()

    # ------------------------------------------------------------------
    out("3. Total error  E = 1/2 * sum (target - out)^2")
    o = np.array([out_o1, out_o2], dtype=net.dtype)
    E_o1 = kernels.cost(o[:1], y[:1])
    E_o2 = kernels.cost(o[1:], y[1:])
    E = net.cost(x, y)
    out(f"   E_o1 = 1/2 (target_o1 - out_o1)^2 = {_f(E_o1)}")
    out(f"   E_o2 = 1/2 (target_o2 - out_o2)^2 = {_f(E_o2)}")
    out(f"   E_total = E_o1 + E_o2             = {_f(E)}")
    out()

    # ------------------------------------------------------------------
    out("4. Backward pass: how much does w5 change the error?  The chain rule:")
    out("   dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5")
    dW, db = net.gradients(x, y)
    slope = np.empty_like(o)
    kernels.sigmoid_derivative(o, slope)  # out * (1 - out)
    dE_dout_o1 = -(t1 - out_o1)
    dout_dnet_o1 = slope[0]
    dnet_dw5 = out_h1
    chain = dE_dout_o1 * dout_dnet_o1 * dnet_dw5
    out(f"   dE/dout_o1      = -(target_o1 - out_o1) = {_f(dE_dout_o1)}")
    out(f"   dout_o1/dnet_o1 = out_o1 * (1 - out_o1) = {_f(dout_dnet_o1)}")
    out(f"   dnet_o1/dw5     = out_h1                = {_f(dnet_dw5)}")
    out(f"   dE/dw5 = {_f(dE_dout_o1)} * {_f(dout_dnet_o1)} * {_f(dnet_dw5)} = {_f(chain)}")
    out(f"   Network.gradients gives dE/dw5 = {_f(dW[1][0, 0])}")
    out()

    # ------------------------------------------------------------------
    out("5. The deltas (the error of each neuron, dE/dnet)")
    (delta_h1, delta_h2), (delta_o1, delta_o2) = db  # dE/db = delta
    out("   output neurons: delta_o = -(target_o - out_o) * out_o * (1 - out_o)")
    out(f"     delta_o1 = {_f(delta_o1)}")
    out(f"     delta_o2 = {_f(delta_o2)}")
    out("   hidden neurons feed both outputs, so their error sums over them:")
    out("     delta_h1 = (w5 * delta_o1 + w7 * delta_o2) * out_h1 * (1 - out_h1)")
    out(f"              = {_f(delta_h1)}")
    out("     delta_h2 = (w6 * delta_o1 + w8 * delta_o2) * out_h2 * (1 - out_h2)")
    out(f"              = {_f(delta_h2)}")
    out("   Each gradient is the delta of the neuron a weight feeds times the output")
    out("   of the neuron it comes from (dE/dw5 = delta_o1 * out_h1, dE/dw1 = delta_h1 * i1, ...).")
    out("   All deltas use the weights as they were before the update.")
    out()

    # ------------------------------------------------------------------
    out(f"6. The update: w <- w - {lr} * dE/dw  (biases not updated)")
    before = [W.copy() for W in net.weights]
    E_before = net.step(x, y, lr, update_biases=False)
    after = net.weights
    names = [("w1", "w2", "w3", "w4"), ("w5", "w6", "w7", "w8")]
    # Hidden -> output first, as the example does.
    for layer in (1, 0):
        for k in range(2):
            for j in range(2):
                name = names[layer][2 * k + j]
                out(
                    f"   {name} = {_g(before[layer][k, j])} - {lr} * {_f(dW[layer][k, j]):>12}"
                    f" = {_f(after[layer][k, j])}"
                )
    out(f"   biases after the update: b1 = {_g(net.biases[0][0])}, b2 = {_g(net.biases[1][0])} (unchanged)")
    E_after = net.cost(x, y)
    out(f"   error before this round: {_f(E_before)}")
    out(f"   error after the first round: E = {_f(E_after)}")
    out("   (computed without rounding the intermediate values; the original article")
    out("   rounds them along the way, so its printed figure differs slightly)")
    out()

    # ------------------------------------------------------------------
    out(f"7. Training: repeat forward, backward, update (Network.train, lr={lr}, biases fixed)")
    out(f"   until E < {TOLERANCE:g} (checked at each milestone) or {MAX_ROUNDS} rounds")
    out("     rounds   E after that many rounds")
    rounds = 1
    E_now = E_after
    out(f"   {rounds:>7}   {_f(E_now)}")
    for milestone in MILESTONES[1:]:
        if E_now < TOLERANCE:
            break
        net.train([x], [y], epochs=milestone - rounds, lr=lr, update_biases=False)
        rounds = milestone
        E_now = net.cost(x, y)
        out(f"   {rounds:>7}   {_f(E_now)}")
    if E_now < TOLERANCE:
        out(f"   stopped after {rounds} rounds: E = {E_now:.3g} < {TOLERANCE:g}")
    else:
        out(
            f"   stopped at the limit of {rounds} rounds: E = {E_now:.3g}"
            f" (still above {TOLERANCE:g}; with fixed biases it falls slowly now)"
        )
    out(f"   the error fell from {_f(E)} to {_f(E_now)}, {E / E_now:.0f} times smaller")
    out()
    final = net.forward(x)
    out("   final outputs vs targets:")
    out(f"     out_o1 = {_f(final[0])}   target {_g(t1)}")
    out(f"     out_o2 = {_f(final[1])}   target {_g(t2)}")
    out("   final weights:")
    (w1, w2), (w3, w4) = net.weights[0]
    (w5, w6), (w7, w8) = net.weights[1]
    out(f"     w1 = {_f(w1)}   w2 = {_f(w2)}   w3 = {_f(w3)}   w4 = {_f(w4)}")
    out(f"     w5 = {_f(w5)}   w6 = {_f(w6)}   w7 = {_f(w7)}   w8 = {_f(w8)}")
