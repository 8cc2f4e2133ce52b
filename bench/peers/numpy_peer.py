"""NumPy: the loops a NumPy user writes, per sample (``W @ a``, ``np.outer``)
or per mini-batch (matrix products through NumPy's BLAS).  The note's model
(sigmoid, squared error) keeps its own loops; every other model goes through
``_online_model``/``_batch_model``, one function per activation and loss."""

from __future__ import annotations

import numpy as np

from . import LEAKY_SLOPE, Peer


def sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) -> inf for z << 0 gives 0, the right limit
        return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def activate(name, z):
    """a = f(z), for a vector or a batch of rows."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))
    if name == "identity":
        return z
    if name == "softmax":
        return softmax(z)
    raise ValueError(name)


def derivative(name, a):
    """f'(z) from a = f(z) (not for softmax: its Jacobian is not diagonal)."""
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "leaky_relu":
        return np.where(a > 0, a.dtype.type(1), a.dtype.type(LEAKY_SLOPE))
    if name == "identity":
        return np.ones_like(a)
    raise ValueError(f"no elementwise derivative for {name}")


def cost_and_delta(output, loss, z, o, y):
    """(sum of the per-sample costs as a float, output delta dJ/dz) for one
    sample or a batch of rows."""
    if loss == "squared_error":
        error = o - y
        return 0.5 * float(np.sum(error.astype(np.float64) ** 2)), error * derivative(output, o)
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    if output == "softmax":
        m = z64.max(axis=-1, keepdims=True)
        lse = m + np.log(np.exp(z64 - m).sum(axis=-1, keepdims=True))
        J = np.sum(y64 * (lse - z64))
    elif output == "sigmoid":
        J = np.sum(np.maximum(z64, 0) - y64 * z64 + np.log1p(np.exp(-np.abs(z64))))
    else:
        raise ValueError(f"cross-entropy needs a sigmoid or softmax output, not {output}")
    return float(J), o - y


class _Trainer:
    def __init__(self, task, X, Y):
        self.task = task
        self.X = np.ascontiguousarray(X, dtype=task.dtype)
        self.Y = np.ascontiguousarray(Y, dtype=task.dtype)
        self.reset()

    def reset(self):
        self.W = [W.copy() for W in self.task.weights]
        self.b = [b.copy() for b in self.task.biases]

    def train(self, rows, epochs):
        if self.task.sigmoid_squared_error:
            step = self._online if self.task.batch_size == 1 else self._batch
        else:
            step = self._online_model if self.task.batch_size == 1 else self._batch_model
        costs = []
        for _ in range(epochs):
            costs.append(step(self.X[:rows], self.Y[:rows]) / rows)
        return costs

    def _online(self, X, Y):
        W, b, lr = self.W, self.b, self.task.lr
        total = 0.0
        for x, y in zip(X, Y):
            a = [x]
            for Wl, bl in zip(W, b):
                a.append(sigmoid(Wl @ a[-1] + bl))
            error = a[-1] - y
            total += 0.5 * float(error @ error)
            delta = error * a[-1] * (1 - a[-1])
            for l in reversed(range(len(W))):
                previous = (W[l].T @ delta) * a[l] * (1 - a[l]) if l else None  # before W[l] changes
                W[l] -= lr * np.outer(delta, a[l])
                b[l] -= lr * delta
                delta = previous
        return total

    def _batch(self, X, Y):
        W, b, lr, k = self.W, self.b, self.task.lr, self.task.batch_size
        total = 0.0
        for start in range(0, len(X), k):
            A = [X[start : start + k]]
            for Wl, bl in zip(W, b):
                A.append(sigmoid(A[-1] @ Wl.T + bl))
            error = A[-1] - Y[start : start + k]
            total += 0.5 * float(np.einsum("ij,ij->", error, error))
            delta = error * A[-1] * (1 - A[-1])
            step = lr / len(error)
            for l in reversed(range(len(W))):
                previous = (delta @ W[l]) * A[l] * (1 - A[l]) if l else None
                W[l] -= step * (delta.T @ A[l])
                b[l] -= step * delta.sum(axis=0)
                delta = previous
        return total

    def _online_model(self, X, Y):
        W, b, lr, f = self.W, self.b, self.task.lr, self.task.activations
        total = 0.0
        for x, y in zip(X, Y):
            a = [x]
            for l, (Wl, bl) in enumerate(zip(W, b)):
                z = Wl @ a[-1] + bl
                a.append(activate(f[l], z))
            J, delta = cost_and_delta(f[-1], self.task.loss, z, a[-1], y)
            total += J
            for l in reversed(range(len(W))):
                previous = (W[l].T @ delta) * derivative(f[l - 1], a[l]) if l else None  # before W[l] changes
                W[l] -= lr * np.outer(delta, a[l])
                b[l] -= lr * delta
                delta = previous
        return total

    def _batch_model(self, X, Y):
        W, b, lr, k, f = self.W, self.b, self.task.lr, self.task.batch_size, self.task.activations
        total = 0.0
        for start in range(0, len(X), k):
            A = [X[start : start + k]]
            for l, (Wl, bl) in enumerate(zip(W, b)):
                Z = A[-1] @ Wl.T + bl
                A.append(activate(f[l], Z))
            J, delta = cost_and_delta(f[-1], self.task.loss, Z, A[-1], Y[start : start + k])
            total += J
            step = lr / len(delta)
            for l in reversed(range(len(W))):
                previous = (delta @ W[l]) * derivative(f[l - 1], A[l]) if l else None
                W[l] -= step * (delta.T @ A[l])
                b[l] -= step * delta.sum(axis=0)
                delta = previous
        return total


class NumpyLoop(Peer):
    name = "numpy"
    about = "NumPy: per-sample loop (W @ a, np.outer), or per mini-batch matmuls through NumPy's BLAS"
    multithreaded = True  # mini-batch matmuls use BLAS threads

    def trainer(self, task, X, Y):
        return _Trainer(task, X, Y)
