"""The model's functions: each layer's activation and the loss, by name and by code.

A network's layer ``l`` (1..L) computes ``a[l] = f_l(z[l])``, ``z[l] = W[l] a[l-1] + b[l]``;
the loss compares the output ``o = a[L]`` with the target ``y``.  The note's
model (every ``f`` a sigmoid, ``J = 1/2 sum (y - o)^2``) is the default.

==============  ===========================================  ==============================
activation      ``f(z)``                                     ``f'(z)`` from ``a = f(z)``
==============  ===========================================  ==============================
``sigmoid``     ``1 / (1 + e^-z)``                           ``a (1 - a)``
``tanh``        ``tanh z``                                   ``1 - a^2``
``relu``        ``max(z, 0)``                                ``1 if a > 0 else 0``
``leaky_relu``  ``z if z >= 0 else 0.01 z``                  ``1 if a > 0 else 0.01``
``identity``    ``z``                                        ``1``
``softmax``     ``e^z_k / sum_i e^z_i`` (output layer only)   (with cross-entropy only)
==============  ===========================================  ==============================

=================  =====================================================  =================
loss               ``J`` of one sample                                    output delta
=================  =====================================================  =================
``squared_error``  ``1/2 sum_k (y_k - o_k)^2``                             ``(o - y) f'(z)``
``cross_entropy``  sigmoid: ``-sum [y ln o + (1 - y) ln(1 - o)]``;         ``o - y``
                   softmax: ``-sum y ln o``
=================  =====================================================  =================

The kernels take the names as codes: ``model`` is an ``intp`` array of ``L + 1``
entries, each layer's activation (its index in ``ACTIVATIONS``) and then the
loss (its index in ``LOSSES``).  The word for the function is *activation*;
the buffer of the values ``a[l]`` is the kernels' ``activations`` buffer.
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax")
HIDDEN_ACTIVATIONS = ACTIVATIONS[:-1]
LOSSES = ("squared_error", "cross_entropy")
# Output activations whose outputs are probabilities (cross-entropy needs them).
PROBABILITY_OUTPUTS = ("sigmoid", "softmax")
LEAKY_SLOPE = 0.01

SIGMOID, TANH, RELU, LEAKY_RELU, IDENTITY, SOFTMAX = range(len(ACTIVATIONS))
SQUARED_ERROR, CROSS_ENTROPY = range(len(LOSSES))

DEFAULT = {"activation": "sigmoid", "output_activation": "sigmoid", "loss": "squared_error"}


def _name(value, argument, valid, where=""):
    if not isinstance(value, str):
        raise TypeError(
            f"{argument}{where} must be a str, one of {', '.join(map(repr, valid))}; "
            f"got {type(value).__name__} {value!r}"
        )
    if value not in valid:
        if value == "softmax" and argument.startswith("activation"):
            raise ValueError(
                f"{argument}{where}='softmax': softmax is for the output layer only "
                "(output_activation='softmax')"
            )
        raise ValueError(f"{argument}{where}={value!r} is not one of {', '.join(map(repr, valid))}")
    return value


def resolve(activation, output_activation, loss, n_layers):
    """``(names, loss)``: one activation name per weight layer (``n_layers`` of
    them, the last the output's) and the loss, checked: ``TypeError`` for a
    name that is not a str, ``ValueError`` for an unknown name (listing the
    valid ones), the wrong number of hidden activations, softmax on a hidden
    layer and the combinations refused (cross-entropy needs sigmoid or softmax
    outputs; softmax needs cross-entropy)."""
    n_hidden = n_layers - 1
    if isinstance(activation, (bytes, bytearray)):
        raise TypeError(
            f"activation must be a str or a sequence of str (one per hidden layer), "
            f"got {type(activation).__name__} {activation!r}"
        )
    if isinstance(activation, str):
        hidden = (_name(activation, "activation", HIDDEN_ACTIVATIONS),) * n_hidden
    else:
        try:
            given = list(activation)
        except TypeError:
            raise TypeError(
                f"activation must be a str or a sequence of str (one per hidden layer), "
                f"got {type(activation).__name__}"
            ) from None
        if isinstance(activation, (set, frozenset, dict)):
            raise TypeError(
                f"activation must be a str or a sequence of str (one per hidden layer), "
                f"got {type(activation).__name__} (which has no order)"
            )
        if len(given) != n_hidden:
            raise ValueError(
                f"activation must name {n_hidden} hidden layer(s) (one per hidden layer), "
                f"got {len(given)}: {given!r}"
            )
        hidden = tuple(_name(a, "activation", HIDDEN_ACTIVATIONS, f"[{i}]") for i, a in enumerate(given))
    output = _name(output_activation, "output_activation", ACTIVATIONS)
    loss = _name(loss, "loss", LOSSES)
    if loss == "cross_entropy" and output not in PROBABILITY_OUTPUTS:
        raise ValueError(
            f"loss='cross_entropy' needs outputs that are probabilities: output_activation "
            f"'sigmoid' or 'softmax', got {output!r}"
        )
    if output == "softmax" and loss != "cross_entropy":
        raise ValueError(
            f"output_activation='softmax' is supported with loss='cross_entropy' only "
            f"(its delta o - y), got loss={loss!r}"
        )
    return (*hidden, output), loss


def codes(names, loss):
    """The kernels' ``model``: an ``intp`` array of each layer's activation code, then the loss code."""
    model = np.array([ACTIVATIONS.index(n) for n in names] + [LOSSES.index(loss)], dtype=np.intp)
    model.flags.writeable = False
    return model


def is_default(names, loss):
    """Whether this is the note's model (every layer a sigmoid, squared error)."""
    return loss == "squared_error" and all(n == "sigmoid" for n in names)


def init_bound(activation, n_in, n_out):
    """``r`` of the ``U(-r, r)`` a layer's weights and biases are drawn from:
    ``sqrt(2 / (n_in + n_out))`` for sigmoid layers (Glorot's bound scaled for
    the sigmoid, as scikit-learn does; the note's default), ``sqrt(6 / (n_in +
    n_out))`` (Glorot uniform) for tanh, identity and softmax, ``sqrt(6 / n_in)``
    (He uniform) for relu and leaky_relu."""
    if activation == "sigmoid":
        return np.sqrt(2.0 / (n_in + n_out))
    if activation in ("relu", "leaky_relu"):
        return np.sqrt(6.0 / n_in)
    return np.sqrt(6.0 / (n_in + n_out))
