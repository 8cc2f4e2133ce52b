"""The per-call benchmark's by-hand versions compute fastbp's numbers (no
timing here: compare.py and percall.py time them)."""

import percall
import pytest


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("call", [c for c, _ in percall.CALLS] + [percall.TRAIN_CALL[0]])
@pytest.mark.parametrize("network", list(percall.NETWORKS))
def test_by_hand_computes_fastbps_numbers(network, call, dtype):
    sizes = percall.XOR_SIZES if call == "train_xor" else percall.NETWORKS[network]
    if call == "train_xor" and network != "2-2-2":
        pytest.skip("one XOR network")
    try:
        import torch
    except ImportError:
        torch = None
    contenders = percall._contenders(call, sizes, dtype, torch)
    expected = percall._flatten(contenders["fastbp"][3])
    for peer, (_fn, _args, _context, result) in contenders.items():
        got = percall._flatten(result)
        assert len(got) == len(expected)
        diff = max(percall._max_rel_diff(g, e) for g, e in zip(got, expected))
        assert diff <= percall.RTOL[dtype], f"{peer}: {diff}"


def test_the_check_catches_different_work():
    """A by-hand step with another learning rate is caught."""
    contenders = percall._contenders("step", (2, 2, 2), "float64", None)
    expected = percall._flatten(contenders["fastbp"][3])
    import fastbp

    net = fastbp.Network((2, 2, 2), seed=1)
    hand = percall.NumpyByHand(net.weights, net.biases)
    x, y, lr = contenders["numpy"][1]
    J = hand.step(x, y, lr * 1.001)
    got = percall._flatten([J, hand.W, hand.b])
    assert max(percall._max_rel_diff(g, e) for g, e in zip(got, expected)) > percall.RTOL["float64"]
