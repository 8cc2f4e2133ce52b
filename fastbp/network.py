"""``Network``: a fully connected network and its training (sigmoid neurons by default).

The network owns its state (one flat parameter vector and the scratch buffers
training reuses), validates every input once at this boundary (see
``fastbp._validation``), and hands validated, C-contiguous arrays of its dtype
to the backend's kernels.  It does no arithmetic on weights itself.

Copies and views, decided once:

* ``net.weights`` and ``net.biases`` are **read-only views** of the live
  parameters: they always show the current values, never cost a copy, and
  raise on assignment.  Keep a snapshot with ``[w.copy() for w in net.weights]``.
* Every array the network returns from a computation (``forward``,
  ``gradients``, ``train``) is new and belongs to the caller.
* Data passed in is never written.  It is used as is when it is already a
  C-contiguous array of the network's dtype, otherwise converted once per call
  (a copy): integer and bool data are cast, float64 data given to a float32
  network is rounded.  ``from_weights`` always copies.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from . import _errors, _layout, _model, _modelfile
from . import _validation as check
from ._errors import TrainingDivergedError
from ._files import _path
from ._validation import FloatArray
from .backends import get_backend
from .optimizers import RPROP, Optimizer

# The names of the activations (one for every hidden layer, or one per hidden layer).
Activations = str | Sequence[str]
Seed = int | np.random.Generator | None

__all__ = ["Network", "TrainingDivergedError", "load"]


def _allocate(count: int, dtype: np.dtype[Any], sizes: Sequence[int]) -> FloatArray:
    """The parameter vector, or a ValueError naming the sizes when it does not
    fit in memory (under the 1 TiB cap, but more than this machine has).
    Aligned as the kernels want it (``_layout.ALIGNMENT``)."""
    try:
        return _layout.aligned_empty(count, dtype)
    except MemoryError:
        raise ValueError(
            f"layer_sizes {list(sizes)} need {count} parameters ({count * np.dtype(dtype).itemsize:,} bytes): "
            "more memory than this machine can allocate"
        ) from None


def _tqdm() -> Callable[..., Any]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ModuleNotFoundError(
            "progress=True needs tqdm: pip install tqdm (or pip install 'fastbp[cli]')"
        ) from None
    return tqdm


def _finite_result(value: Any, what: str) -> Any:
    """Refuse to hand back NaN/inf computed from finite input (see ``_errors.not_finite``)."""
    if not np.isfinite(value).all():
        raise _errors.not_finite(what)
    return value


def _accepted(result: Any) -> Any:
    """What the door returned for arguments that passed the Python validation.
    It accepts every such argument, so ``None`` here is a bug, never a result."""
    if result is None:
        raise RuntimeError("fastbp internal error: the compiled door refused validated arguments")
    return result


# Rows per block in batch forward passes and costs: enough for BLAS to run at
# full speed, small enough that the scratch stays in cache.
_BLOCK_ROWS = 256


class Network:
    """A fully connected network trained by backpropagation: by default the
    note's, sigmoid neurons and the squared error.

    ``layer_sizes`` lists the widths of the input, hidden and output layers,
    e.g. ``[2, 2, 2]``.  ``activation`` names the hidden layers' activation
    function (one name for all, or a sequence with one per hidden layer),
    ``output_activation`` the output layer's and ``loss`` the cost: the
    names, their equations and the combinations allowed are in
    ``fastbp._model`` (``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``,
    ``"identity"``; ``"softmax"`` for the output; ``"squared_error"``,
    ``"cross_entropy"``).  Weights and biases are drawn from ``U(-r, r)``,
    from ``numpy.random.default_rng(seed)``, with ``r`` chosen by each layer's
    activation (``fastbp._model.init_bound``): ``sqrt(2 / (n_in + n_out))``
    for the sigmoid (Glorot's bound scaled for the sigmoid, as scikit-learn
    does), Glorot's ``sqrt(6 / (n_in + n_out))`` for tanh, identity and
    softmax, He's ``sqrt(6 / n_in)`` for relu and leaky_relu.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        activation: Activations = "sigmoid",
        output_activation: str = "sigmoid",
        loss: str = "squared_error",
        seed: Seed = None,
        dtype: npt.DTypeLike = "float64",
        backend: str | None = None,
    ) -> None:
        sizes = check.layer_sizes(layer_sizes)
        names, loss = _model.resolve(activation, output_activation, loss, len(sizes) - 1)
        dtype = check.float_dtype(dtype)
        rng = np.random.default_rng(check.seed(seed))
        kernels = get_backend(backend, sizes)  # a bad name fails before any allocation
        params = _allocate(check.param_count(sizes, dtype), dtype, sizes)
        for (W, b), name in zip(_layout.layer_views(params, sizes), names):
            bound = _model.init_bound(name, W.shape[1], W.shape[0])
            W[...] = rng.uniform(-bound, bound, size=W.shape)
            b[...] = rng.uniform(-bound, bound, size=b.shape)
        self._setup(sizes, params, kernels, names, loss)

    @classmethod
    def from_weights(
        cls,
        weights: Sequence[npt.ArrayLike],
        biases: Sequence[npt.ArrayLike],
        *,
        activation: Activations = "sigmoid",
        output_activation: str = "sigmoid",
        loss: str = "squared_error",
        dtype: npt.DTypeLike | None = None,
        backend: str | None = None,
    ) -> Network:
        """A network with the given weights (``weights[l]`` of shape
        ``(n_out, n_in)``) and biases (``(n_out,)``), copied.  ``dtype=None``
        keeps float32 when every array is float32 and uses float64 otherwise.
        ``activation``, ``output_activation`` and ``loss`` as for ``Network``."""
        sizes, dtype, Ws, bs = check.weights_and_biases(weights, biases, dtype)
        names, loss = _model.resolve(activation, output_activation, loss, len(sizes) - 1)
        kernels = get_backend(backend, sizes)
        params = _allocate(check.param_count(sizes, dtype), dtype, sizes)
        for (W, b), W_given, b_given in zip(_layout.layer_views(params, sizes), Ws, bs):
            W[...] = W_given
            b[...] = b_given
        net = cls.__new__(cls)
        net._setup(sizes, params, kernels, names, loss)
        return net

    def _setup(
        self, sizes: Sequence[int], params: FloatArray, kernels: ModuleType, names: Sequence[str], loss: str
    ) -> None:
        self._kernels = kernels
        self._sizes = np.array(sizes, dtype=np.intp)
        self._sizes.flags.writeable = False
        self._names, self._loss = tuple(names), loss
        # The kernels' codes for the activations and the loss (fastbp._model).
        self._model = _model.codes(names, loss)
        self._params = params
        # The compiled door (fastbp._door.pxi): validates the common call in C
        # and runs the kernels; None on the reference backend, where every
        # call takes the Python path below.
        door = getattr(kernels, "Door", None)
        self._door = door(params, self._sizes, self._model) if door is not None else None
        # Scratch for step/train on the Python path, reused under the lock:
        # a[0..L], z[L] and delta[1..L].
        self._activations = np.zeros(_layout.activation_width(sizes), dtype=params.dtype)
        self._deltas = np.zeros(sum(sizes[1:]), dtype=params.dtype)
        # ... and for an online run on the Python path (two samples' activations).
        self._online_scratch = tuple(
            np.zeros(n, dtype=params.dtype) for n in _layout.train_buffer_lengths(sizes, 1)
        )
        # The parameters before the current step/epoch, restored if it
        # diverges (the door's own, when there is a door).
        self._backup = self._door.backup if self._door is not None else np.empty_like(params)
        # The public views sit on a read-only buffer of the parameters, so that
        # not even ``flags.writeable = True`` turns them back into a way to write.
        read_only = np.frombuffer(params.data.toreadonly(), dtype=params.dtype)
        self._views = _layout.layer_views(read_only, sizes)
        # Serialises the calls that write the parameters (step, train): two
        # threads training one network take turns, never interleave.  With a
        # door, its lock (which its step and train take) is the one.
        self._lock = threading.Lock()
        self._lock_owner: int | None = None  # the thread inside step/train (see _writing)

    # ------------------------------------------------------------------
    # State
    # ------------------------------------------------------------------

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self._sizes)

    @property
    def weights(self) -> list[FloatArray]:
        """``W[l]`` for each layer, shape ``(n_out, n_in)``: read-only live views."""
        return [W for W, _ in self._views]

    @property
    def biases(self) -> list[FloatArray]:
        """``b[l]`` for each layer, shape ``(n_out,)``: read-only live views."""
        return [b for _, b in self._views]

    @property
    def activations(self) -> tuple[str, ...]:
        """The activation function of each weight layer, by name (the last is the output's)."""
        return self._names

    @property
    def loss(self) -> str:
        """The loss's name: ``"squared_error"`` or ``"cross_entropy"``."""
        return self._loss

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._params.dtype

    @property
    def backend(self) -> str:
        """The name of the backend running this network's kernels."""
        return self._kernels.BACKEND_NAME

    def __getstate__(self) -> dict[str, Any]:
        # Plain data only: the lock and the kernel module are rebuilt on load.
        return {
            "layer_sizes": self.layer_sizes,
            "params": self._params.copy(),
            "backend": self.backend,
            "activations": self._names,
            "loss": self._loss,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        params = check.real_array(state["params"], "params", check.float_dtype(state["params"].dtype))
        sizes = check.layer_sizes(state["layer_sizes"])
        if params.shape != (check.param_count(sizes, params.dtype),):
            raise ValueError(f"params of shape {params.shape} do not fit layer sizes {list(sizes)}")
        # Pickles from before the activations and losses hold the note's model.
        given = state.get("activations", ("sigmoid",) * (len(sizes) - 1))
        if not isinstance(given, (tuple, list)) or len(given) != len(sizes) - 1:
            raise ValueError(f"activations {given!r} do not fit layer sizes {list(sizes)}")
        names, loss = _model.resolve(
            list(given[:-1]), given[-1], state.get("loss", "squared_error"), len(sizes) - 1
        )
        # The network owns and writes its parameters: never the unpickled
        # buffer itself, which may be read-only (a memory-mapped pickle).
        own = _allocate(params.size, params.dtype, sizes)
        own[...] = params
        self._setup(sizes, own, get_backend(state["backend"], sizes), names, loss)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network to ``path`` in fastbp's model-file format
        (see ``fastbp.load``), atomically: a crash never leaves a partial file."""
        path = _path(path)
        # One copy of the parameters (in the file's order: fastbp._layout's),
        # the snapshot that the checksum and the file are both made from.
        data = _modelfile.ModelData(
            self.layer_sizes, self.dtype, self._names, self._loss, self._params.copy()
        )
        _modelfile.write(path, data, name=repr(self))

    def __repr__(self) -> str:
        model = ""
        if not _model.is_default(self._names, self._loss):
            hidden = self._names[:-1]
            shown = hidden[0] if len(set(hidden)) == 1 else list(hidden)
            model = (
                f", activation={shown!r}" if hidden else ""
            ) + f", output_activation={self._names[-1]!r}, loss={self._loss!r}"
        return (
            f"Network({list(self.layer_sizes)}{model}, dtype={self.dtype.name!r}, backend={self.backend!r})"
        )

    # ------------------------------------------------------------------
    # Computations that change nothing
    # ------------------------------------------------------------------

    def _data(self, value: npt.ArrayLike, name: str, width: int, ndims: tuple[int, ...]) -> FloatArray:
        array = check.sample_array(value, name, self.dtype, width, ndims=ndims)
        # Data that aliases the parameters (e.g. a view of net.weights) would
        # change under the kernels while they update the weights: copy it.
        return array.copy() if np.may_share_memory(array, self._params) else array

    def _scratch(self, rows: int = 1) -> FloatArray:
        # Per-call activations: lets any number of threads evaluate at once.
        # Several rows go through the kernels a block at a time (BLAS).
        return np.empty(min(rows, _BLOCK_ROWS) * len(self._activations), dtype=self.dtype)

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """The network's outputs for one sample ``x`` of shape ``(n_in,)``
        (returns ``(n_out,)``) or for each row of ``X`` of shape ``(n, n_in)``
        (returns ``(n, n_out)``)."""
        door = self._door
        if door is not None:
            out = door.forward(x)
            return (
                out
                if out is not None
                else _accepted(door.forward(self._data(x, "x", self._sizes[0], (1, 2))))
            )
        x = self._data(x, "x", self._sizes[0], (1, 2))
        X = x.reshape(1, -1) if x.ndim == 1 else x
        out = np.empty((X.shape[0], self._sizes[-1]), dtype=self.dtype)
        self._kernels.forward_batch(self._params, self._sizes, X, out, self._scratch(X.shape[0]), self._model)
        _finite_result(out, "the forward pass")
        return out[0] if x.ndim == 1 else out

    def _targets(self, y: npt.ArrayLike, name: str, ndims: tuple[int, ...]) -> FloatArray:
        y = self._data(y, name, self._sizes[-1], ndims)
        return check.targets(y, name, self._loss, self._names[-1])

    def cost(self, x: npt.ArrayLike, y: npt.ArrayLike) -> float:
        """The loss J for one sample (1-D ``x``, ``y``): by default the note's
        ``J = 1/2 * sum_k (y_k - o_k)^2`` (the losses: ``fastbp._model``); for
        a batch (2-D), the mean over the rows of the per-sample J."""
        door = self._door
        if door is not None:
            J = door.cost(x, y)
            if J is not None:
                return J
        x = self._data(x, "x", self._sizes[0], (1, 2))
        y = self._targets(y, "y", (x.ndim,))
        X, Y = (x.reshape(1, -1), y.reshape(1, -1)) if x.ndim == 1 else (x, y)
        check.same_rows(X, Y, "x", "y")
        if door is not None:
            return _accepted(door.cost(x, y))
        J = self._kernels.mean_cost(self._params, self._sizes, X, Y, self._scratch(X.shape[0]), self._model)
        return float(_finite_result(J, "the cost"))

    def gradients(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[list[FloatArray], list[FloatArray]]:
        """``(dJ/dW per layer, dJ/db per layer)`` for one sample; changes nothing."""
        door = self._door
        if door is not None:
            grads = door.gradients(x, y)
            if grads is not None:
                return grads
        x = self._data(x, "x", self._sizes[0], (1,))
        y = self._targets(y, "y", (1,))
        if door is not None:
            return _accepted(door.gradients(x, y))
        grads = np.empty_like(self._params)
        deltas = np.empty_like(self._deltas)
        self._kernels.gradients(self._params, self._sizes, x, y, self._scratch(), deltas, grads, self._model)
        _finite_result(grads, "a gradient")
        views = _layout.layer_views(grads, self._sizes)
        return [dW for dW, _ in views], [db for _, db in views]

    # ------------------------------------------------------------------
    # Learning
    # ------------------------------------------------------------------

    def step(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        lr: float | None = None,
        *,
        optimizer: Optimizer | None = None,
        update_biases: bool = True,
    ) -> float:
        """One online update on one sample, in place; returns J measured
        before the update.  ``lr`` is the note's plain gradient descent,
        ``w -= lr * dJ/dw``; ``optimizer`` (a ``fastbp.optimizers`` object)
        applies its rule instead (give one of the two)."""
        door = self._door
        if door is not None and optimizer is None:
            J = door.step(x, y, lr, update_biases)
            if J is not None:
                return J
        x = self._data(x, "x", self._sizes[0], (1,))
        y = self._targets(y, "y", (1,))
        if optimizer is None:
            if lr is None:
                raise TypeError(
                    "lr must be a real number, got None of type NoneType: "
                    "step() needs lr (plain gradient descent) or optimizer"
                )
            lr = check.learning_rate(lr)
        update_biases = check.flag(update_biases, "update_biases")
        if optimizer is not None:
            optimizer = self._optimizer(optimizer, lr)
            # One update on one sample: a one-row, one-epoch run (for RPROP, a full batch of that row).
            costs = self._train_with(
                optimizer,
                x.reshape(1, -1),
                y.reshape(1, -1),
                np.empty(1),
                1,
                False,
                0,
                update_biases,
                None,
                None,
                "step",
            )
            return float(costs[0])
        if door is not None:
            return _accepted(door.step(x, y, lr, update_biases))
        with self._writing("step"):
            np.copyto(self._backup, self._params)
            J = self._kernels.train_step(
                self._params,
                self._sizes,
                x,
                y,
                lr,
                update_biases,
                self._activations,
                self._deltas,
                self._model,
            )
            self._require_finite(J, f"the step with lr={lr}")
        return float(J)

    def _optimizer(self, optimizer: object, lr: float | None) -> Optimizer:
        """The optimizer given, checked and bound to this network's shape and dtype."""
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a fastbp optimizer (fastbp.SGD, fastbp.Adam, fastbp.RPROP), "
                f"got {optimizer!r} of type {type(optimizer).__name__}"
            )
        if lr is not None:
            raise ValueError(
                f"give lr (plain gradient descent) or optimizer, not both: got lr={lr!r} and "
                f"optimizer={optimizer!r}"
            )
        optimizer._bind(self._sizes, self.dtype)
        return optimizer

    def train(
        self,
        X: npt.ArrayLike,
        Y: npt.ArrayLike,
        *,
        epochs: int = 1,
        lr: float | None = None,
        optimizer: Optimizer | None = None,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: Seed = None,
        update_biases: bool = True,
        callback: Callable[[int, float], object] | None = None,
        progress: bool = False,
    ) -> npt.NDArray[np.float64]:
        """Training over the rows of ``X`` (``(n, n_in)``) and ``Y``
        (``(n, n_out)``) for ``epochs`` passes; returns a new 1-D float64 array
        with the mean per-sample J of each epoch (each J measured with the
        weights its update started from).

        ``lr`` (0.5 unless given) is the note's plain gradient descent,
        ``w -= lr * dJ/dw``.  ``optimizer`` (``fastbp.SGD``, ``fastbp.Adam``,
        ``fastbp.RPROP``: ``fastbp.optimizers``) applies its rule and keeps its
        state from call to call instead: give ``lr`` or ``optimizer``, not
        both.

        ``batch_size=1`` (the default) is the note's online learning: one
        update per sample.  ``batch_size=k`` averages the gradient over k
        samples per update; a last, smaller batch averages over its own size;
        k larger than n is clipped to n (full-batch gradient descent).  RPROP
        is full-batch (one update per epoch over all rows): with it,
        ``batch_size`` is all rows and a smaller one is refused.

        With ``shuffle`` the rows are visited in a fresh random order each
        epoch: the kernels' own Fisher-Yates shuffle (``shuffle`` in
        ``fastbp.reference``), from a 64-bit state drawn from
        ``numpy.random.default_rng(seed)``; the same seed gives the same run on
        every backend and every machine.

        Without ``callback`` or ``progress`` the whole run is one compiled call
        without the GIL (Ctrl-C is still seen within milliseconds).  On Ctrl-C
        the interrupted epoch is undone: the network (and the optimizer) keep
        the state of the last completed epoch, and ``KeyboardInterrupt``
        propagates.  ``callback(epoch, cost)`` is called after each epoch
        (``epoch`` counts from 1); returning ``False`` stops training cleanly
        after that epoch (the returned array then holds the completed epochs).
        The callback may read the network (``forward``, ``cost``, ``save``);
        calling ``step`` or ``train`` on it from there raises ``RuntimeError``.
        ``progress=True`` shows a tqdm progress bar (needs ``tqdm``).

        If an epoch ends with a non-finite cost or weight, the network and the
        optimizer are restored to their state before that epoch and
        ``TrainingDivergedError`` is raised (its ``costs`` attribute holds the
        completed epochs).
        """
        door = self._door
        if optimizer is None:
            lr = 0.5 if lr is None else lr
            batch_size = 1 if batch_size is None else batch_size
            if door is not None and callback is None and progress is False:
                costs = door.train(X, Y, epochs, lr, batch_size, shuffle, seed, update_biases)
                if costs is not None:
                    return costs
        X = self._data(X, "X", self._sizes[0], (2,))
        Y = self._targets(Y, "Y", (2,))
        check.same_rows(X, Y)
        epochs = check.integer(epochs, "epochs", minimum=1)
        if optimizer is None:
            lr = check.learning_rate(lr)
        full_batch = isinstance(optimizer, RPROP)
        if batch_size is None:
            batch_size = X.shape[0] if full_batch else 1
        batch_size = min(check.integer(batch_size, "batch_size", minimum=1), X.shape[0])
        if full_batch and batch_size < X.shape[0]:
            raise ValueError(
                f"RPROP is full-batch (one update per epoch over all {X.shape[0]} rows): "
                f"batch_size={batch_size} is refused; leave batch_size out"
            )
        shuffle = check.flag(shuffle, "shuffle")
        seed = check.seed(seed)
        update_biases = check.flag(update_biases, "update_biases")
        callback = check.callback(callback)
        progress = check.flag(progress, "progress")
        tqdm = _tqdm() if progress else None  # a missing tqdm fails before anything happens
        _layout.check_blas_sizes(self.layer_sizes, batch_size)
        try:
            costs = np.empty(epochs)
        except (MemoryError, ValueError):
            raise ValueError(
                f"epochs={epochs} is too many: the cost of each epoch cannot be stored"
            ) from None
        if optimizer is not None:
            optimizer = self._optimizer(optimizer, lr)
        elif door is not None and callback is None and not progress:
            return _accepted(door.train(X, Y, epochs, lr, batch_size, shuffle, seed, update_biases))
        return self._train_with(
            optimizer if optimizer is not None else cast(float, lr),  # lr: checked above
            X,
            Y,
            costs,
            batch_size,
            shuffle,
            seed,
            update_biases,
            callback,
            tqdm,
            "train",
        )

    def _train_with(
        self,
        rule: float | Optimizer,
        X: FloatArray,
        Y: FloatArray,
        costs: npt.NDArray[np.float64],
        batch_size: int,
        shuffle: bool,
        seed: Seed,
        update_biases: bool,
        callback: Callable[..., Any] | None,
        tqdm: Callable[..., Any] | None,
        what: str,
    ) -> npt.NDArray[np.float64]:
        """The run of validated arguments, one epoch per value of ``costs``
        (filled in): ``rule`` is the plain lr or a bound optimizer."""
        epochs = len(costs)
        optimizer = rule if isinstance(rule, Optimizer) else None
        lr = optimizer.lr if optimizer is not None else rule
        described = f"{optimizer!r}" if optimizer is not None else f"lr={lr}"
        # Buffers for the whole run, allocated once: the row order, the RNG
        # state that shuffles it, and scratch for one batch (two samples at
        # least; RPROP's full batch goes through the kernels a block at a time).
        # Shuffling needs the row order (one index per row); in order, none.
        order = np.arange(X.shape[0] if shuffle else 0, dtype=np.intp)
        # (No shuffle, nothing draws from it: a seed is then not drawn from,
        # as the door does, unless it is a Generator, whose stream advances.)
        if shuffle or isinstance(seed, np.random.Generator):
            rng_state = np.random.default_rng(seed).integers(0, 2**64, size=1, dtype=np.uint64)
        else:
            rng_state = np.zeros(1, dtype=np.uint64)
        rows = min(batch_size, _BLOCK_ROWS) if isinstance(optimizer, RPROP) else batch_size
        if rows == 1:  # the common online case: scratch kept from call to call (used under the lock)
            activations, deltas = self._online_scratch
        else:
            n_activations, n_deltas = _layout.train_buffer_lengths(self.layer_sizes, rows)
            activations = np.empty(n_activations, dtype=self.dtype)
            deltas = np.empty(n_deltas, dtype=self.dtype)
        # Without a callback or a progress bar, the whole run is one compiled
        # call; otherwise one call per epoch, returning to Python in between.
        chunk = 1 if (callback is not None or tqdm is not None) else epochs
        done = 0
        # The bar opens only once every argument has been accepted.
        bar = tqdm(total=epochs, unit="epoch", desc="training") if tqdm is not None else None
        using = optimizer._lock if optimizer is not None else contextlib.nullcontext()
        try:
            with self._writing(what), using:
                backup = optimizer._backup if optimizer is not None else self._backup
                while done < epochs:
                    todo = costs[done : done + chunk]
                    # Read each time: a callback may have assigned the optimizer's lr.
                    args = optimizer._kernel_args() if optimizer is not None else None
                    completed = self._kernels.train(
                        self._params,
                        self._sizes,
                        X,
                        Y,
                        order,
                        rng_state,
                        shuffle,
                        lr,
                        rows,
                        update_biases,
                        todo,
                        activations,
                        deltas,
                        backup,
                        self._model,
                        args,
                    )
                    done += completed
                    if completed < len(todo):
                        if what == "step":
                            raise _errors.diverged(f"the step with {described}")
                        raise _errors.diverged(
                            f"epoch {done + 1} of {epochs} with {described} (batch_size={batch_size})",
                            costs=costs[:done].copy(),
                        )
                    if bar is not None:
                        bar.update(completed)
                        bar.set_postfix(cost=f"{costs[done - 1]:.6g}")
                    if callback is not None and callback(done, float(costs[done - 1])) is False:
                        break
        finally:
            if bar is not None:
                bar.close()
        return costs[:done].copy() if done < epochs else costs

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Hold the lock that serialises the calls writing the parameters.
        Another thread waits its turn; the same thread (a ``train`` callback
        calling ``step`` or ``train`` on its own network) would wait for
        itself forever, so it is refused instead."""
        if self._door is not None:
            self._door.begin_write(what)
            try:
                yield
            finally:
                self._door.end_write()
            return
        me = threading.get_ident()
        if self._lock_owner == me:
            raise _errors.reentered(what)
        with self._lock:
            self._lock_owner = me
            try:
                yield
            finally:
                self._lock_owner = None

    def _require_finite(self, J: float, what: str) -> None:
        """Restore the backup and raise if training left a non-finite cost or weight."""
        if np.isfinite(J) and np.isfinite(self._params).all():
            return
        np.copyto(self._params, self._backup)
        raise _errors.diverged(what)


def load(path: str | os.PathLike[str], *, backend: str | None = None) -> Network:
    """Read a network saved by ``Network.save`` from ``path`` (str or
    os.PathLike), to run on ``backend`` (``None``: the default).

    The file is validated in full before the network is built (see the
    format in ``fastbp._modelfile``); the loaded network has the saved layer
    sizes, dtype and bit-identical weights and biases.  Raises ``ValueError``
    naming the problem for any file that is not a valid fastbp model file
    (corrupted, truncated, extended, from a newer format, hand-crafted), and
    ``OSError`` (e.g. ``FileNotFoundError``) when the path cannot be opened.
    The network has the saved activations and loss (a version 1 file's are
    all sigmoid with squared error).
    """
    path = _path(path)
    get_backend(backend)  # a bad backend name fails before the file is read
    data = _modelfile.read(path)
    views = _layout.layer_views(data.params, data.layer_sizes)
    return Network.from_weights(
        [W for W, _ in views],
        [b for _, b in views],
        activation=data.activations[:-1],
        output_activation=data.activations[-1],
        loss=data.loss,
        dtype=data.dtype.name,
        backend=backend,
    )
