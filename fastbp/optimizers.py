"""Optimizers: how a gradient becomes a change of the weights.

``Network.train(..., lr=0.5)`` (or ``step(x, y, lr)``) is the note's plain
gradient descent, ``w -= lr * dJ/dw``.  The optimizers here hold their own
state and apply PyTorch's update rules (``torch.optim.SGD``, ``Adam`` and
``Rprop``), so that the same data and initial weights give the same
trajectory; pass one as ``optimizer=``.  Per parameter ``w`` with gradient
``g`` (of the mean J over the batch: one sample online, the batch's rows in a
mini-batch, every row for RPROP):

=========  ===================================================================
``SGD``    ``g += wd * w`` (if ``weight_decay``); with ``momentum`` mu:
           ``buf = mu * buf + g`` (``buf`` starts at 0, so the first step's
           ``buf`` is ``g``, as torch's), then ``g = g + mu * buf`` (Nesterov)
           or ``g = buf``; ``w -= lr * g``
``Adam``   ``t += 1``; ``g += wd * w`` (if ``weight_decay``);
           ``m += (1 - b1) (g - m)``; ``v = b2 v + (1 - b2) g^2``;
           ``w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``
``RPROP``  iRPROP- (Igel & Huesken 2000), as ``torch.optim.Rprop``: each
           weight has its own step size (starting at ``lr``); when ``g`` keeps
           the sign of the previous ``g`` the step grows by ``eta_plus``, when
           it flips the step shrinks by ``eta_minus`` and this update skips the
           weight (and remembers ``g = 0``); steps stay within ``step_sizes``;
           ``w -= sign(g) * step``.  Full-batch: one update per epoch.  (The
           sign is that of ``g * g_prev`` rounded to the dtype, as torch's.)
=========  ===================================================================

SGD computes in the network's dtype, one rounding per operation (the
hyper-parameters rounded to the dtype first), as torch does; Adam and RPROP
compute each stored value (a weight, a moment, a step size) in double from
the stored values and round it once to the dtype (in float64 the two are
the same).  Weight decay
applies to the biases too, as it does to every parameter given to a torch
optimizer.  ``update_biases=False`` leaves the biases and their state alone.

The state (velocity, moments, step count, step sizes, previous gradients)
belongs to one network shape and dtype, bound at first use; using the
optimizer with a network of another shape or dtype is refused.  Networks of
the same shape may share one optimizer (its state is per shape, like a torch
optimizer's per parameter).  An epoch or step that diverges, or that Ctrl-C
interrupts, is undone for the state too.  Optimizers pickle with their state;
model files do not store them.

What the kernels take (``fastbp.reference.train``'s ``optimizer``) is the
tuple ``(rule, hyper, state, counters, grad)`` of ``Optimizer._kernel_args``:
``rule`` a code of ``fastbp._rules``; ``hyper`` float64 hyper-parameters in
the order of ``_rules.HYPER[rule]``; ``state`` the network's dtype,
``_rules.SLOTS[rule]`` slots (none for SGD without momentum:
``state_slots``) of ``n_params`` values each, laid out like ``params``;
``counters`` float64 ``[t]`` (updates made); ``grad`` scratch for one
gradient, laid out like ``params``.
"""

from __future__ import annotations

import threading

import numpy as np

from . import _layout, _rules
from . import _validation as check

__all__ = ["RPROP", "SGD", "Adam", "Optimizer"]


def _pair(value, name):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair of numbers, got {value!r}")
    return value[0], value[1]


class Optimizer:
    """The base of fastbp's optimizers: the state bound to one network shape
    and dtype, its undo room, and what the kernels take (module docstring)."""

    _rule: int

    def __init__(self, lr):
        self.lr = lr
        self._lock = threading.RLock()  # one run at a time updates the state
        self.reset()

    @property
    def lr(self) -> float:
        """The learning rate (for RPROP: the initial step size); may be assigned."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check.learning_rate(value)

    def _hyper_values(self):  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def steps(self) -> int:
        """Updates made since the state was created (Adam's t)."""
        return int(self._counters[0])

    @property
    def layer_sizes(self):
        """The layer sizes the state is bound to, or None before the first use."""
        return self._sizes

    @property
    def dtype(self):
        """The dtype the state is bound to, or None before the first use."""
        return self._dtype

    @property
    def state(self) -> dict:
        """The state per slot name (see the module docstring), as read-only
        copies laid out like the network's parameters; empty before the first use."""
        if self._state is None:  # not bound yet
            return {}
        n = self._n_params
        out = {}
        for s, name in enumerate(_rules.SLOTS[self._rule][: self._slots]):
            view = self._state[s * n : (s + 1) * n].copy()
            view.flags.writeable = False
            out[name] = view
        return out

    def reset(self):
        """Forget the state: the next use starts afresh (and may bind another shape)."""
        self._sizes = None
        self._dtype = None
        self._n_params = 0
        self._slots = 0
        self._state = self._grad = self._backup = None
        self._counters = np.zeros(1)

    def _bind(self, sizes, dtype):
        """Bind the state to a network's shape and dtype at first use; refuse another."""
        sizes, dtype = tuple(int(n) for n in sizes), np.dtype(dtype)
        if self._sizes is not None:
            if sizes != self._sizes or dtype != self._dtype:
                raise ValueError(
                    f"this {type(self).__name__} holds state for a network of layer sizes {list(self._sizes)} "
                    f"and dtype {self._dtype}, not {list(sizes)} and {dtype.name}: use one optimizer per "
                    "network shape (or call reset() first)"
                )
            return
        n = _layout.n_params(sizes)
        slots = _rules.state_slots(self._rule, self._hyper_values())
        state = _layout.aligned_empty(slots * n, dtype)  # walked beside the parameters: aligned alike
        state[...] = 0
        self._initialise(state, n)
        self._grad = np.zeros(n, dtype=dtype)
        # Room for the parameters and the state before an epoch or step (the undo).
        self._backup = np.empty(n + slots * n, dtype=dtype)
        self._state, self._n_params, self._slots = state, n, slots
        self._sizes, self._dtype = sizes, dtype

    def _initialise(self, state, n):
        """The state's initial values (zeros unless a rule says otherwise)."""

    def _kernel_args(self):
        """``(rule, hyper, state, counters, grad)`` for the kernels (bound first)."""
        hyper = np.array(self._hyper_values(), dtype=np.float64)
        return self._rule, hyper, self._state, self._counters, self._grad

    # Pickling: the hyper-parameters, the binding and the state; the lock and
    # the scratch are rebuilt.
    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("_lock", "_grad", "_backup"):
            del state[name]
        state["_state"] = None if self._state is None else self._state.copy()
        state["_counters"] = self._counters.copy()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()
        if self._sizes is not None:
            n, dtype = self._n_params, self._dtype
            given = np.asarray(self._state, dtype=dtype)
            if given.shape != (self._slots * n,) or n != _layout.n_params(self._sizes):
                raise ValueError("the pickled optimizer state does not fit its layer sizes")
            self._state = _layout.aligned_empty(given.size, dtype)
            self._state[...] = given
            self._grad = np.zeros(n, dtype=dtype)
            self._backup = np.empty(n + self._slots * n, dtype=dtype)
        else:
            self._grad = self._backup = None
        self._counters = np.array(self._counters, dtype=np.float64, copy=True).reshape(1)

    def __repr__(self):
        shown = ", ".join(f"{name}={value!r}" for name, value in self._shown())
        return f"{type(self).__name__}({shown})"

    def _shown(self):  # pragma: no cover - interface
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (Nesterov's too)
    and weight decay: ``torch.optim.SGD`` with dampening 0 (rule in the
    module docstring).  ``SGD(lr)`` alone is the note's plain gradient descent."""

    _rule = _rules.SGD

    def __init__(self, lr=0.5, momentum=0.0, nesterov=False, weight_decay=0.0):
        self._momentum = check.fraction(momentum, "momentum")
        self._nesterov = check.flag(nesterov, "nesterov")
        if self._nesterov and self._momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self._weight_decay = check.non_negative(weight_decay, "weight_decay")
        super().__init__(lr)

    momentum = property(lambda self: self._momentum, doc="mu, in [0, 1).")
    nesterov = property(lambda self: self._nesterov, doc="Nesterov momentum or not.")
    weight_decay = property(lambda self: self._weight_decay, doc="The L2 coefficient added to the gradient.")

    def _hyper_values(self):
        return self._lr, self._momentum, self._weight_decay, float(self._nesterov)

    def _shown(self):
        return [
            ("lr", self._lr),
            ("momentum", self._momentum),
            ("nesterov", self._nesterov),
            ("weight_decay", self._weight_decay),
        ]


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction and optional L2 weight
    decay added to the gradient: ``torch.optim.Adam`` (rule in the module docstring)."""

    _rule = _rules.ADAM

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        beta1, beta2 = _pair(betas, "betas")
        self._betas = (check.fraction(beta1, "betas[0]"), check.fraction(beta2, "betas[1]"))
        self._eps = check.learning_rate(eps, "eps")
        self._weight_decay = check.non_negative(weight_decay, "weight_decay")
        super().__init__(lr)

    betas = property(lambda self: self._betas, doc="(beta1, beta2), each in [0, 1).")
    eps = property(lambda self: self._eps, doc="Added to the denominator, > 0.")
    weight_decay = property(lambda self: self._weight_decay, doc="The L2 coefficient added to the gradient.")

    def _hyper_values(self):
        return self._lr, self._betas[0], self._betas[1], self._eps, self._weight_decay

    def _shown(self):
        return [
            ("lr", self._lr),
            ("betas", self._betas),
            ("eps", self._eps),
            ("weight_decay", self._weight_decay),
        ]


class RPROP(Optimizer):
    """Resilient backpropagation, iRPROP- (``torch.optim.Rprop``): ``lr`` is
    each weight's initial step size, ``etas = (eta_minus, eta_plus)`` with
    ``0 < eta_minus < 1 < eta_plus`` the factors a step shrinks and grows by,
    ``step_sizes = (min, max)`` its bounds.  Full-batch: ``train`` makes one
    update per epoch from the gradient over all rows (rule in the module docstring)."""

    _rule = _rules.RPROP

    def __init__(self, lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
        eta_minus, eta_plus = _pair(etas, "etas")
        eta_minus, eta_plus = check.real(eta_minus, "etas[0]"), check.real(eta_plus, "etas[1]")
        if not 0 < eta_minus < 1 < eta_plus:
            raise ValueError(f"etas must satisfy 0 < eta_minus < 1 < eta_plus, got ({eta_minus}, {eta_plus})")
        step_min, step_max = _pair(step_sizes, "step_sizes")
        step_min, step_max = (
            check.non_negative(step_min, "step_sizes[0]"),
            check.learning_rate(step_max, "step_sizes[1]"),
        )
        if step_min > step_max:
            raise ValueError(f"step_sizes must satisfy min <= max, got ({step_min}, {step_max})")
        self._etas, self._step_sizes = (eta_minus, eta_plus), (step_min, step_max)
        super().__init__(lr)

    etas = property(lambda self: self._etas, doc="(eta_minus, eta_plus).")
    step_sizes = property(lambda self: self._step_sizes, doc="(min, max) step size.")

    def _hyper_values(self):
        return self._lr, self._etas[0], self._etas[1], self._step_sizes[0], self._step_sizes[1]

    def _initialise(self, state, n):
        state[n:] = self._lr  # every step size starts at lr (torch: full_like(grad, lr))

    def _shown(self):
        return [("lr", self._lr), ("etas", self._etas), ("step_sizes", self._step_sizes)]
