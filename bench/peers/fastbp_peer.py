"""fastbp itself: ``Network.train``, compiled kernels or the pure-Python reference."""

from __future__ import annotations

import numpy as np

from . import Peer, Unavailable


class _NetworkTrainer:
    def __init__(self, task, X, Y, backend):
        import fastbp

        model = task.network_keywords()  # {} for the note's model: the call as before issue 10
        self._make = lambda: fastbp.Network.from_weights(task.weights, task.biases, dtype=task.dtype, backend=backend,
                                                         **model)
        self.task = task
        self.X = np.ascontiguousarray(X, dtype=task.dtype)
        self.Y = np.ascontiguousarray(Y, dtype=task.dtype)
        self.net = self._make()

    def reset(self):
        self.net = self._make()

    def train(self, rows, epochs):
        return self.net.train(
            self.X[:rows], self.Y[:rows], epochs=epochs, lr=self.task.lr, batch_size=self.task.batch_size
        )


class Fastbp(Peer):
    name = "fastbp"
    about = "fastbp.Network.train, compiled kernels (the default backend)"
    backend = "cython"

    def check(self, task):
        super().check(task)
        try:
            import fastbp
        except ImportError as error:
            raise Unavailable(f"fastbp does not import: {error}") from None
        # Until the training engine lands, train(batch_size>1) raises
        # NotImplementedError: find out on a one-row run instead of guessing.
        try:
            net = fastbp.Network.from_weights(task.weights, task.biases, dtype=task.dtype, backend=self.backend,
                                              **task.network_keywords())
        except TypeError as error:
            if not task.network_keywords():
                raise
            raise Unavailable(f"n/a: this fastbp has no {task.describe_model()} model ({error})") from None
        x = np.full((2, net.layer_sizes[0]), 0.5, dtype=task.dtype)
        # targets every loss accepts (softmax's rows must sum to 1)
        y = np.full((2, net.layer_sizes[-1]), 1 / net.layer_sizes[-1] if task.activations[-1] == "softmax" else 0.5,
                    dtype=task.dtype)
        try:
            net.train(x, y, epochs=1, lr=task.lr, batch_size=task.batch_size)
        except NotImplementedError as error:
            raise Unavailable(f"n/a: {error}") from None

    def trainer(self, task, X, Y):
        return _NetworkTrainer(task, X, Y, self.backend)


class FastbpReference(Fastbp):
    name = "fastbp-ref"
    about = "fastbp.Network.train on the pure-Python reference backend (the oracle; slow)"
    backend = "python"
