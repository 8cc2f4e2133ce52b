"""PyTorch, three ways: the idiomatic loop (nn.Linear, torch.optim.SGD, a
squared-error loss, autograd), hand-written no_grad updates on preallocated
tensors (the fastest eager code we could write), and the same update loop
compiled with TorchScript.  ``torch.set_num_threads`` is set by the caller.

The note's model (sigmoid, squared error) keeps its original code; every
other model (issue 10) runs through the ``*_model`` methods: the idiomatic
loop with nn.Tanh/nn.ReLU/... and PyTorch's own losses on the logits
(``cross_entropy`` with probability targets for softmax, and
``binary_cross_entropy_with_logits`` for sigmoid outputs), the hand-written
loops with in-place activations and ``log_softmax``."""

from __future__ import annotations

import warnings

import numpy as np

from . import ACTIVATIONS, LEAKY_SLOPE, LOSSES, Peer, Unavailable

TORCH_VERSION = "2.13.0"  # the only version to install here: `pip install torch==2.13.0`


def _torch():
    try:
        import torch
    except ImportError:
        raise Unavailable(f"PyTorch is not installed (pip install torch=={TORCH_VERSION})") from None
    return torch


class _Trainer:
    def __init__(self, task, X, Y):
        torch = self.torch = _torch()
        self.task = task
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=task.dtype))
        self.Y = torch.from_numpy(np.ascontiguousarray(Y, dtype=task.dtype))
        self.initial = [
            (torch.from_numpy(W.copy()), torch.from_numpy(b.copy()))
            for W, b in zip(task.weights, task.biases)
        ]
        self.setup()
        self.reset()

    def setup(self):
        pass

    def train(self, rows, epochs):
        if self.task.sigmoid_squared_error:
            step = self.online if self.task.batch_size == 1 else self.batch
        else:
            step = self.online_model if self.task.batch_size == 1 else self.batch_model
        return [step(rows) / rows for _ in range(epochs)]

    def online_model(self, rows):
        raise Unavailable(f"{type(self).__name__}: only sigmoid/squared error")

    batch_model = online_model


def _torch_optimizer(torch, params, task, **extra):
    """torch.optim's optimizer of ``task`` (issue 11), or plain torch.optim.SGD."""
    if task.rule is None:
        return torch.optim.SGD(params, lr=task.lr)
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rprop": torch.optim.Rprop}[task.rule]
    return kind(params, lr=task.lr, **task.optimizer[1], **extra)


# torch.optim's implementation the hand-written loops use for their updates (torch's own
# update rules on the gradients they computed): the fastest one on this CPU for 784-128-10
# (Adam: fused=True took a third of the default's time per step, foreach about the
# default's; Rprop: foreach=True about half the default's; Rprop has no fused version).
FASTEST = {"adam": {"fused": True}, "rprop": {"foreach": True}}


def _activate_(torch, name, t):
    """t = f(t) in place (not softmax)."""
    if name == "sigmoid":
        t.sigmoid_()
    elif name == "tanh":
        t.tanh_()
    elif name == "relu":
        t.relu_()
    elif name == "leaky_relu":
        torch.nn.functional.leaky_relu_(t, LEAKY_SLOPE)
    elif name != "identity":
        raise ValueError(f"no in-place {name}")
    return t


def _times_derivative_(torch, name, d, a, tmp=None):
    """d *= f'(z), f' computed from a = f(z), in place."""
    if name == "sigmoid":
        d.mul_(torch.mul(a, a, out=tmp).neg_().add_(a) if tmp is not None else a - a * a)
    elif name == "tanh":
        d.mul_(torch.mul(a, a, out=tmp).neg_().add_(1) if tmp is not None else 1 - a * a)
    elif name == "relu":
        d.masked_fill_(a <= 0, 0)
    elif name == "leaky_relu":
        d.copy_(torch.where(a > 0, d, d * LEAKY_SLOPE))
    elif name != "identity":
        raise ValueError(f"no elementwise derivative for {name}")
    return d


# ---------------------------------------------------------------------------
# Idiomatic: autograd, nn.Linear, torch.optim.SGD
# ---------------------------------------------------------------------------


class _SGDTrainer(_Trainer):
    def setup(self):
        torch, nn = self.torch, self.torch.nn
        layers = []
        if self.task.sigmoid_squared_error:
            for W, _ in self.initial:
                layers += [nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype), nn.Sigmoid()]
        else:
            modules = {
                "sigmoid": nn.Sigmoid,
                "tanh": nn.Tanh,
                "relu": nn.ReLU,
                "identity": nn.Identity,
                "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
                "softmax": lambda: nn.Softmax(dim=-1),
            }
            cross_entropy = self.task.loss == "cross_entropy"
            for l, ((W, _), name) in enumerate(zip(self.initial, self.task.activations)):
                layers.append(nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype))
                if not (cross_entropy and l == len(self.initial) - 1):  # the losses take the logits
                    layers.append(modules[name]())
            F = torch.nn.functional
            if not cross_entropy:
                pass  # self.loss: squared error, as for the note's model
            elif self.task.activations[-1] == "softmax":
                self.loss = lambda z, y: F.cross_entropy(z, y, reduction="sum")  # y: class probabilities
            else:
                self.loss = lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="sum")
        self.model = nn.Sequential(*layers)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        self.optimizer = _torch_optimizer(torch, self.model.parameters(), self.task)
        self.X_rows, self.Y_rows = self.X.unbind(0), self.Y.unbind(0)

    def reset(self):
        with self.torch.no_grad():
            for linear, (W, b) in zip(self.linears, self.initial):
                linear.weight.copy_(W)
                linear.bias.copy_(b)
        if self.task.rule is not None:  # a fresh optimizer state (momentum buffers, moments, steps)
            self.optimizer = _torch_optimizer(self.torch, self.model.parameters(), self.task)

    def loss(self, output, target):
        # J = 1/2 sum (y - o)^2 exactly, so the gradients are fastbp's.
        return 0.5 * self.torch.nn.functional.mse_loss(output, target, reduction="sum")

    def online(self, rows):
        total = 0.0
        for x, y in zip(self.X_rows[:rows], self.Y_rows[:rows]):
            self.optimizer.zero_grad()
            loss = self.loss(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total

    def batch(self, rows):
        total, k = 0.0, self.task.batch_size or rows  # batch_size 0: all rows (RPROP)
        for start in range(0, rows, k):
            x, y = self.X[start : min(start + k, rows)], self.Y[start : min(start + k, rows)]
            self.optimizer.zero_grad()
            loss = self.loss(self.model(x), y) / len(x)  # mean J over the batch: averaged gradient
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(x)
        return total

    online_model, batch_model = online, batch  # the model lives in self.model and self.loss


class TorchSGD(Peer):
    name = "torch-sgd"
    about = (
        "PyTorch, idiomatic: nn.Sequential(Linear, Sigmoid...), 0.5*mse_loss(sum), backward(), torch.optim.SGD "
        "(or the task's torch.optim.SGD(momentum)/Adam/Rprop, default implementation)"
    )
    multithreaded = True
    optimizers = ("sgd", "adam", "rprop")

    def check(self, task):
        super().check(task)
        _torch()

    def trainer(self, task, X, Y):
        return _SGDTrainer(task, X, Y)


# ---------------------------------------------------------------------------
# Hand-written no_grad updates on preallocated tensors
# ---------------------------------------------------------------------------


class _NoGradTrainer(_Trainer):
    def setup(self):
        torch = self.torch
        self.W = [W.clone() for W, _ in self.initial]
        self.b = [b.clone() for _, b in self.initial]
        sizes = self.task.layer_sizes
        new = lambda n: torch.empty(n, dtype=self.W[0].dtype)  # noqa: E731
        self.a = [None] + [new(n) for n in sizes[1:]]  # a[0] is the input row itself
        self.delta = [new(n) for n in sizes]  # delta[0] unused
        self.tmp = [new(n) for n in sizes]
        self.J = torch.empty(len(self.X), dtype=self.W[0].dtype)
        self.z_out = new(sizes[-1])  # the output's net input (cross-entropy's cost is computed from it)
        self.X_rows, self.Y_rows = self.X.unbind(0), self.Y.unbind(0)

        if self.task.rule == "sgd":  # momentum buffers, W and b
            self.vW = [torch.zeros_like(W) for W in self.W]
            self.vb = [torch.zeros_like(b) for b in self.b]
        elif self.task.rule is not None:  # torch.optim's own update on the gradients computed here
            self.params = [p for W, b in zip(self.W, self.b) for p in (W, b)]
            for param in self.params:
                param.grad = torch.zeros_like(param)
            self.gW, self.gb = [W.grad for W in self.W], [b.grad for b in self.b]

    def reset(self):
        for mine, (W, b), b_mine in zip(self.W, self.initial, self.b):
            mine.copy_(W)
            b_mine.copy_(b)
        if self.task.rule == "sgd":
            for v in self.vW + self.vb:
                v.zero_()
        elif self.task.rule is not None:
            self.optimizer = _torch_optimizer(self.torch, self.params, self.task, **FASTEST[self.task.rule])

    def train(self, rows, epochs):
        if self.task.rule == "sgd" and self.task.batch_size == 1:
            return [self.online_momentum(rows) / rows for _ in range(epochs)]
        if self.task.rule is not None:
            return [self.batch_optimizer(rows) / rows for _ in range(epochs)]
        return super().train(rows, epochs)

    def online_momentum(self, rows):
        """``online`` with torch.optim.SGD's momentum written in place:
        buf = mu buf + g (buf from 0), W -= lr buf."""
        torch = self.torch
        W, b, a, delta, tmp, J, vW, vb = (
            self.W,
            self.b,
            self.a,
            self.delta,
            self.tmp,
            self.J,
            self.vW,
            self.vb,
        )
        L, lr, mu = len(W), self.task.lr, self.task.hyper("momentum")
        with torch.no_grad():
            for i in range(rows):
                a[0] = self.X_rows[i]
                for l in range(L):
                    torch.addmv(b[l], W[l], a[l], out=a[l + 1]).sigmoid_()
                error = delta[L]
                torch.sub(a[L], self.Y_rows[i], out=error)
                torch.dot(error, error, out=J[i])
                error.mul_(torch.mul(a[L], a[L], out=tmp[L]).neg_().add_(a[L]))  # * o (1 - o)
                for l in range(L, 0, -1):
                    if l > 1:  # before W[l-1] (the weights into layer l) changes
                        torch.mv(W[l - 1].t(), delta[l], out=delta[l - 1])
                        delta[l - 1].mul_(torch.mul(a[l - 1], a[l - 1], out=tmp[l - 1]).neg_().add_(a[l - 1]))
                    vW[l - 1].mul_(mu).addr_(delta[l], a[l - 1])
                    W[l - 1].add_(vW[l - 1], alpha=-lr)
                    vb[l - 1].mul_(mu).add_(delta[l])
                    b[l - 1].add_(vb[l - 1], alpha=-lr)
        return 0.5 * float(J[:rows].sum(dtype=torch.float64))

    def batch_optimizer(self, rows):
        """``batch`` (the note's model) with the gradient averaged over each
        batch into the parameters' ``.grad`` and torch.optim's step (Adam,
        Rprop; batch_size 0: one batch of all rows)."""
        torch = self.torch
        W, b, L, k = self.W, self.b, len(self.W), self.task.batch_size or rows
        total = 0.0
        with torch.no_grad():
            for start in range(0, rows, k):
                A = [self.X[start : min(start + k, rows)]]
                for l in range(L):
                    A.append(torch.addmm(b[l], A[l], W[l].t()).sigmoid_())
                delta = A[L] - self.Y[start : start + len(A[0])]
                total += 0.5 * float(torch.sum(delta * delta, dtype=torch.float64))
                delta.mul_(A[L] - A[L] * A[L])
                scale = 1.0 / len(A[0])
                for l in range(L, 0, -1):
                    previous = (
                        torch.mm(delta, W[l - 1]).mul_(A[l - 1] - A[l - 1] * A[l - 1]) if l > 1 else None
                    )
                    torch.mm(delta.t(), A[l - 1], out=self.gW[l - 1]).mul_(scale)
                    torch.sum(delta, 0, out=self.gb[l - 1]).mul_(scale)
                    delta = previous
                self.optimizer.step()
        return total

    def online(self, rows):
        torch = self.torch
        W, b, a, delta, tmp, J = self.W, self.b, self.a, self.delta, self.tmp, self.J
        L, lr = len(W), self.task.lr
        with torch.no_grad():
            for i in range(rows):
                a[0] = self.X_rows[i]
                for l in range(L):
                    torch.addmv(b[l], W[l], a[l], out=a[l + 1]).sigmoid_()
                error = delta[L]
                torch.sub(a[L], self.Y_rows[i], out=error)
                torch.dot(error, error, out=J[i])
                error.mul_(torch.mul(a[L], a[L], out=tmp[L]).neg_().add_(a[L]))  # * o (1 - o)
                for l in range(L, 0, -1):
                    if l > 1:  # before W[l-1] (the weights into layer l) changes
                        torch.mv(W[l - 1].t(), delta[l], out=delta[l - 1])
                        delta[l - 1].mul_(torch.mul(a[l - 1], a[l - 1], out=tmp[l - 1]).neg_().add_(a[l - 1]))
                    W[l - 1].addr_(delta[l], a[l - 1], alpha=-lr)
                    b[l - 1].add_(delta[l], alpha=-lr)
        return 0.5 * float(J[:rows].sum(dtype=torch.float64))

    def batch(self, rows):
        torch = self.torch
        W, b, L, k = self.W, self.b, len(self.W), self.task.batch_size
        total = 0.0
        with torch.no_grad():
            for start in range(0, rows, k):
                A = [self.X[start : min(start + k, rows)]]
                for l in range(L):
                    A.append(torch.addmm(b[l], A[l], W[l].t()).sigmoid_())
                delta = A[L] - self.Y[start : start + len(A[0])]
                total += 0.5 * float(torch.sum(delta * delta, dtype=torch.float64))
                delta.mul_(A[L] - A[L] * A[L])
                step = self.task.lr / len(A[0])
                for l in range(L, 0, -1):
                    previous = (
                        torch.mm(delta, W[l - 1]).mul_(A[l - 1] - A[l - 1] * A[l - 1]) if l > 1 else None
                    )
                    W[l - 1].addmm_(delta.t(), A[l - 1], alpha=-step)
                    b[l - 1].sub_(delta.sum(0), alpha=step)
                    delta = previous
        return total

    def online_model(self, rows):
        torch = self.torch
        W, b, a, delta, tmp, J, z = self.W, self.b, self.a, self.delta, self.tmp, self.J, self.z_out
        L, lr, f = len(W), self.task.lr, self.task.activations
        cross_entropy, output = self.task.loss == "cross_entropy", f[-1]
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        # J[i] holds (y - o).(y - o), or y.log_softmax(z) (= -J), or J itself (sigmoid cross-entropy)
        sign = 0.5 if not cross_entropy else -1.0 if output == "softmax" else 1.0
        with torch.no_grad():
            for i in range(rows):
                a[0], y = self.X_rows[i], self.Y_rows[i]
                for l in range(L - 1):
                    _activate_(torch, f[l], torch.addmv(b[l], W[l], a[l], out=a[l + 1]))
                if not cross_entropy:
                    _activate_(torch, output, torch.addmv(b[L - 1], W[L - 1], a[L - 1], out=a[L]))
                    error = torch.sub(a[L], y, out=delta[L])
                    torch.dot(error, error, out=J[i])
                    _times_derivative_(torch, output, error, a[L], tmp[L])
                elif output == "softmax":
                    ls = torch.log_softmax(torch.addmv(b[L - 1], W[L - 1], a[L - 1], out=z), 0)
                    torch.exp(ls, out=a[L])
                    torch.dot(y, ls, out=J[i])  # -J: J = -sum y ln o
                    torch.sub(a[L], y, out=delta[L])
                else:
                    torch.addmv(b[L - 1], W[L - 1], a[L - 1], out=z)
                    J[i] = bce(z, y, reduction="sum")
                    torch.sub(torch.sigmoid(z, out=a[L]), y, out=delta[L])
                for l in range(L, 0, -1):
                    if l > 1:  # before W[l-1] (the weights into layer l) changes
                        torch.mv(W[l - 1].t(), delta[l], out=delta[l - 1])
                        _times_derivative_(torch, f[l - 2], delta[l - 1], a[l - 1], tmp[l - 1])
                    W[l - 1].addr_(delta[l], a[l - 1], alpha=-lr)
                    b[l - 1].add_(delta[l], alpha=-lr)
        return sign * float(J[:rows].sum(dtype=torch.float64))

    def batch_model(self, rows):
        torch = self.torch
        W, b, L, k, f = self.W, self.b, len(self.W), self.task.batch_size, self.task.activations
        cross_entropy, output = self.task.loss == "cross_entropy", f[-1]
        total = 0.0
        with torch.no_grad():
            for start in range(0, rows, k):
                A = [self.X[start : min(start + k, rows)]]
                Y = self.Y[start : start + len(A[0])]
                for l in range(L - 1):
                    A.append(_activate_(torch, f[l], torch.addmm(b[l], A[l], W[l].t())))
                Z = torch.addmm(b[L - 1], A[L - 1], W[L - 1].t())
                if not cross_entropy:
                    A.append(_activate_(torch, output, Z))
                    delta = A[L] - Y
                    total += 0.5 * float(torch.sum(delta * delta, dtype=torch.float64))
                    _times_derivative_(torch, output, delta, A[L])
                elif output == "softmax":
                    ls = torch.log_softmax(Z, 1)
                    A.append(ls.exp())
                    total -= float(torch.sum(Y * ls, dtype=torch.float64))
                    delta = A[L] - Y
                else:
                    total += float(
                        torch.nn.functional.binary_cross_entropy_with_logits(
                            Z.double(), Y.double(), reduction="sum"
                        )
                    )
                    A.append(torch.sigmoid(Z))
                    delta = A[L] - Y
                step = self.task.lr / len(A[0])
                for l in range(L, 0, -1):
                    previous = (
                        _times_derivative_(torch, f[l - 2], torch.mm(delta, W[l - 1]), A[l - 1])
                        if l > 1
                        else None
                    )
                    W[l - 1].addmm_(delta.t(), A[l - 1], alpha=-step)
                    b[l - 1].sub_(delta.sum(0), alpha=step)
                    delta = previous
        return total


class TorchNoGrad(TorchSGD):
    name = "torch-nograd"
    about = (
        "PyTorch, hand-written: no_grad, preallocated tensors, in-place addmv/addr_ (per sample) or addmm (batch); "
        "momentum in place (buf.mul_(mu).addr_), Adam/Rprop: the gradients into .grad, then torch.optim's step "
        "(fused Adam, foreach Rprop)"
    )

    def check(self, task):
        super().check(task)
        if task.optimizer is not None and not task.sigmoid_squared_error:
            raise Unavailable("n/a: optimizers on the note's model only")
        if task.rule == "sgd" and task.batch_size != 1:
            raise Unavailable("n/a: momentum is written for online training only")

    def trainer(self, task, X, Y):
        return _NoGradTrainer(task, X, Y)


# ---------------------------------------------------------------------------
# The same per-sample loop compiled by TorchScript
# ---------------------------------------------------------------------------

_SCRIPTED = None


def _scripted_epoch():
    """Compile the online epoch with TorchScript once (None if it cannot be)."""
    global _SCRIPTED
    if _SCRIPTED is None:
        torch = _torch()

        def epoch(
            W: list[torch.Tensor],
            b: list[torch.Tensor],
            X: torch.Tensor,
            Y: torch.Tensor,
            rows: int,
            lr: float,
        ) -> float:
            total = 0.0
            L = len(W)
            for i in range(rows):
                a = [X[i]]
                for l in range(L):
                    a.append(torch.sigmoid(torch.addmv(b[l], W[l], a[l])))
                error = a[L] - Y[i]
                total += 0.5 * float(torch.dot(error, error))
                delta = error * a[L] * (1 - a[L])
                for l in range(L, 0, -1):
                    previous = delta
                    if l > 1:  # before W[l-1] changes
                        previous = torch.mv(W[l - 1].t(), delta) * a[l - 1] * (1 - a[l - 1])
                    W[l - 1].addr_(delta, a[l - 1], alpha=-lr)
                    b[l - 1].add_(delta, alpha=-lr)
                    delta = previous
            return total

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript is deprecated; it still runs
            try:
                _SCRIPTED = torch.jit.script(epoch)
            except Exception as error:
                _SCRIPTED = Unavailable(f"torch.jit.script failed: {type(error).__name__}: {error}")
    if isinstance(_SCRIPTED, Unavailable):
        raise _SCRIPTED
    return _SCRIPTED


_SCRIPTED_MOMENTUM = None


def _scripted_momentum_epoch():
    """The online epoch with torch.optim.SGD's momentum in place, compiled once."""
    global _SCRIPTED_MOMENTUM
    if _SCRIPTED_MOMENTUM is None:
        torch = _torch()

        def epoch(
            W: list[torch.Tensor],
            b: list[torch.Tensor],
            vW: list[torch.Tensor],
            vb: list[torch.Tensor],
            X: torch.Tensor,
            Y: torch.Tensor,
            rows: int,
            lr: float,
            mu: float,
        ) -> float:
            total = 0.0
            L = len(W)
            for i in range(rows):
                a = [X[i]]
                for l in range(L):
                    a.append(torch.sigmoid(torch.addmv(b[l], W[l], a[l])))
                error = a[L] - Y[i]
                total += 0.5 * float(torch.dot(error, error))
                delta = error * a[L] * (1 - a[L])
                for l in range(L, 0, -1):
                    previous = delta
                    if l > 1:  # before W[l-1] changes
                        previous = torch.mv(W[l - 1].t(), delta) * a[l - 1] * (1 - a[l - 1])
                    vW[l - 1].mul_(mu).addr_(delta, a[l - 1])
                    W[l - 1].add_(vW[l - 1], alpha=-lr)
                    vb[l - 1].mul_(mu).add_(delta)
                    b[l - 1].add_(vb[l - 1], alpha=-lr)
                    delta = previous
            return total

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _SCRIPTED_MOMENTUM = torch.jit.script(epoch)
            except Exception as error:
                _SCRIPTED_MOMENTUM = Unavailable(f"torch.jit.script failed: {type(error).__name__}: {error}")
    if isinstance(_SCRIPTED_MOMENTUM, Unavailable):
        raise _SCRIPTED_MOMENTUM
    return _SCRIPTED_MOMENTUM


_SCRIPTED_MODEL = None


def _scripted_model_epoch():
    """The online epoch for any model (issue 10), activations and loss as
    fastbp's codes (their index in ACTIVATIONS and LOSSES), compiled once."""
    global _SCRIPTED_MODEL
    if _SCRIPTED_MODEL is None:
        torch = _torch()

        assert ACTIVATIONS.index("softmax") == 5 and LOSSES.index("cross_entropy") == 1  # the codes below

        def epoch(
            W: list[torch.Tensor],
            b: list[torch.Tensor],
            X: torch.Tensor,
            Y: torch.Tensor,
            rows: int,
            lr: float,
            f: list[int],
            loss: int,
            slope: float,
        ) -> float:
            total = 0.0
            L = len(W)
            for i in range(rows):
                a = [X[i]]
                z = X[i]
                for l in range(L):
                    z = torch.addmv(b[l], W[l], a[l])
                    code = f[l]
                    if code == 0:
                        a.append(torch.sigmoid(z))
                    elif code == 1:
                        a.append(torch.tanh(z))
                    elif code == 2:
                        a.append(torch.relu(z))
                    elif code == 3:
                        a.append(torch.nn.functional.leaky_relu(z, slope))
                    elif code == 4:
                        a.append(z)
                    else:
                        a.append(torch.softmax(z, 0))
                y = Y[i]
                if loss == 1:
                    if f[L - 1] == 5:
                        total -= float(torch.dot(y, torch.log_softmax(z, 0)))
                    else:
                        total += float(
                            torch.sum(torch.clamp_min(z, 0) - y * z + torch.log1p(torch.exp(-torch.abs(z))))
                        )
                    delta = a[L] - y
                else:
                    delta = a[L] - y
                    total += 0.5 * float(torch.dot(delta, delta))
                for l in range(L, 0, -1):
                    # the derivative of layer l's activation, from its output a[l]
                    if loss == 0 or l < L:
                        code, out = f[l - 1], a[l]
                        if code == 0:
                            delta = delta * out * (1 - out)
                        elif code == 1:
                            delta = delta * (1 - out * out)
                        elif code == 2:
                            delta = delta * (out > 0).to(out.dtype)
                        elif code == 3:
                            delta = delta * torch.where(
                                out > 0, torch.ones_like(out), torch.full_like(out, slope)
                            )
                    if l > 1:  # before W[l-1] changes
                        previous = torch.mv(W[l - 1].t(), delta)
                    else:
                        previous = delta
                    W[l - 1].addr_(delta, a[l - 1], alpha=-lr)
                    b[l - 1].add_(delta, alpha=-lr)
                    delta = previous
            return total

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _SCRIPTED_MODEL = torch.jit.script(epoch)
            except Exception as error:
                _SCRIPTED_MODEL = Unavailable(f"torch.jit.script failed: {type(error).__name__}: {error}")
    if isinstance(_SCRIPTED_MODEL, Unavailable):
        raise _SCRIPTED_MODEL
    return _SCRIPTED_MODEL


class _ScriptTrainer(_NoGradTrainer):
    def online_momentum(self, rows):
        with self.torch.no_grad():
            return _scripted_momentum_epoch()(
                self.W,
                self.b,
                self.vW,
                self.vb,
                self.X,
                self.Y,
                rows,
                float(self.task.lr),
                float(self.task.hyper("momentum")),
            )

    def online(self, rows):
        with self.torch.no_grad():
            return _scripted_epoch()(self.W, self.b, self.X, self.Y, rows, float(self.task.lr))

    def online_model(self, rows):
        codes = [ACTIVATIONS.index(name) for name in self.task.activations]
        with self.torch.no_grad():
            return _scripted_model_epoch()(
                self.W,
                self.b,
                self.X,
                self.Y,
                rows,
                float(self.task.lr),
                codes,
                LOSSES.index(self.task.loss),
                LEAKY_SLOPE,
            )


class TorchScript(TorchSGD):
    name = "torch-script"
    about = "PyTorch, the hand-written per-sample update loop compiled with torch.jit.script"
    minibatch = False  # the batch loop is a few large matmuls: nothing for TorchScript to remove

    def check(self, task):
        super().check(task)
        if task.optimizer is not None and (task.rule != "sgd" or task.batch_size != 1):
            raise Unavailable("n/a: the scripted loop is online SGD (with momentum) only")
        if task.rule == "sgd":
            _scripted_momentum_epoch()
        else:
            _scripted_epoch() if task.sigmoid_squared_error else _scripted_model_epoch()

    def trainer(self, task, X, Y):
        return _ScriptTrainer(task, X, Y)
