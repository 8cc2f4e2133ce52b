"""NumPy: the loops a NumPy user writes, per sample (``W @ a``, ``np.outer``)
or per mini-batch (matrix products through NumPy's BLAS)."""

from __future__ import annotations

import numpy as np

from . import Peer


def sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) -> inf for z << 0 gives 0, the right limit
        return 1.0 / (1.0 + np.exp(-z))


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
        step = self._online if self.task.batch_size == 1 else self._batch
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


class NumpyLoop(Peer):
    name = "numpy"
    about = "NumPy: per-sample loop (W @ a, np.outer), or per mini-batch matmuls through NumPy's BLAS"
    multithreaded = True  # mini-batch matmuls use BLAS threads

    def trainer(self, task, X, Y):
        return _Trainer(task, X, Y)
