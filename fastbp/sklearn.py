"""scikit-learn estimators over ``fastbp.Network``: ``BPClassifier`` and ``BPRegressor``.

Import this module explicitly (``from fastbp.sklearn import BPClassifier``);
``import fastbp`` never imports scikit-learn.  Needs ``scikit-learn>=1.6``
(``pip install fastbp[sklearn]``): the estimators use its developer API of
that version (``validate_data``, ``__sklearn_tags__``).

Both estimators are thin: the model is a ``fastbp.Network`` (``network_``),
trained by ``Network.train`` one epoch per iteration so that ``tol``,
``n_iter_no_change`` and ``early_stopping`` can act between epochs, with a
fastbp optimizer (``optimizer_``: ``SGD``, ``Adam`` or ``RPROP``, from
``solver``) that a warm start or a later ``partial_fit`` continues, state
included.  The hidden
layers' activation is the ``activation`` parameter, in scikit-learn's names
(``"logistic"`` is fastbp's ``"sigmoid"``).  What the wrappers add is the
output layer and the loss that suit the targets, and the mapping between
scikit-learn's targets and the outputs:

* ``BPClassifier``, ``loss="log_loss"`` (the default, cross-entropy): a
  softmax output over one-hot targets for more than two classes; one sigmoid
  output (target 0 or 1) for two classes; one sigmoid per label for a
  multilabel indicator ``y``.  ``loss="squared_error"`` is the note's model:
  sigmoid outputs everywhere (one per class for more than two), squared error.
* ``BPRegressor``: identity outputs and the squared error, on the targets as
  they are (``out_activation="identity"``, the default); with
  ``out_activation="logistic"`` sigmoid outputs, and then each target column
  is mapped linearly so that its training range ``[min, max]`` becomes
  ``[0.1, 0.9]``, inside the sigmoid's (0, 1); ``predict`` inverts the map.

The defaults were chosen by measurement on scikit-learn's bundled datasets
(``bench/estimators.py``; the tables are in ``docs/sklearn.md``).

A ``fit`` that raises (bad input, ``TrainingDivergedError``, Ctrl-C) leaves
the estimator as it was before the call.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _scaling
from . import _validation as check
from ._validation import FloatArray
from .network import Network
from .optimizers import RPROP, SGD, Adam, Optimizer

__all__ = ["BPClassifier", "BPRegressor"]

# The hyper-parameters as _checked_params validates them, by name.
Params = dict[str, Any]
# The fitted target encoding (_fit_encoding): the estimator's attributes
# (classes_, y_center_, ...) and the private ones it keeps (_label_binarizer, ...).
Encoding = dict[str, Any]
_Estimator = TypeVar("_Estimator", bound="_BaseBP")

# The regressor with sigmoid outputs (out_activation="logistic") maps each
# target's training range [min, max] onto this interval of the sigmoid's
# (0, 1): inside it, away from the flat tails where the sigmoid's derivative
# (and so learning) vanishes.  Identity outputs need no scaling.
TARGET_LOW, TARGET_HIGH = 0.1, 0.9
_TARGET_MID = (TARGET_LOW + TARGET_HIGH) / 2  # 0.5, the sigmoid's midpoint (fastbp._scaling)

# scikit-learn's activation names (MLPClassifier's, plus fastbp's leaky_relu)
# -> fastbp's (fastbp._model.ACTIVATIONS).
ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
}
SKLEARN_NAMES = {fastbp: sklearn for sklearn, fastbp in ACTIVATIONS.items()}
SKLEARN_NAMES["softmax"] = "softmax"
# The classifier's losses: scikit-learn's name for the cross-entropy
# (SGDClassifier, HistGradientBoostingClassifier) and the note's.
CLASSIFIER_LOSSES = {"log_loss": "cross_entropy", "squared_error": "squared_error"}
REGRESSOR_OUTPUTS = ("identity", "logistic")

SCHEDULES = ("adaptive", "constant")
SOLVERS = ("sgd", "adam", "rprop")
# learning_rate_init="auto": the step size of each solver, chosen by
# measurement (bench/estimators.py --solvers; the tables in docs/sklearn.md).
# For "sgd" it is the rate without momentum: with momentum mu the steps grow
# to about lr / (1 - mu), so "auto" is AUTO_LEARNING_RATES[...]["sgd"] * (1 - mu)
# (measured at mu = 0 and 0.9).  For "rprop" it is each weight's initial step
# size (torch.optim.Rprop's default).
AUTO_LEARNING_RATES = {
    "classifier": {"sgd": 0.3, "adam": 0.01, "rprop": 0.01},
    "regressor": {"sgd": 0.0001, "adam": 0.001, "rprop": 0.01},
}
# "adaptive": each stall (n_iter_no_change epochs without progress) divides
# the learning rate by LR_DIVISOR, up to MAX_LR_DIVISIONS times; the next stall
# ends training.  Large steps make fast progress early on, small
# ones then average out the noise of online updates.
LR_DIVISOR, MAX_LR_DIVISIONS = 5, 3


def _optimizer_key(params: Params) -> tuple[Any, ...]:
    """What the estimator's optimizer is made from: a warm start or a later
    partial_fit continues the kept optimizer (and its state) while this is unchanged."""
    return tuple(
        params[name]
        for name in ("solver", "momentum", "nesterov", "alpha", "beta_1", "beta_2", "epsilon", "batch_size")
    )


def _new_optimizer(params: Params, n_rows: int) -> Optimizer:
    """The fastbp optimizer of ``params`` for training on ``n_rows`` rows.

    ``alpha`` is scikit-learn's L2 penalty: ``MLPClassifier`` adds
    ``alpha * W / b`` to the gradient of the weights, ``b`` the rows of the
    batch.  fastbp's ``weight_decay`` (torch's) adds ``weight_decay * w`` to
    the gradient of the mean loss, so ``weight_decay = alpha / b`` with ``b =
    min(batch_size, n_rows)``; it applies to the biases too.  RPROP has no
    weight decay: ``alpha`` is not used with it."""
    lr = params["lr"]
    if params["solver"] == "rprop":
        return RPROP(lr=lr)
    weight_decay = params["alpha"] / min(params["batch_size"], n_rows)
    if params["solver"] == "adam":
        return Adam(
            lr=lr,
            betas=(params["beta_1"], params["beta_2"]),
            eps=params["epsilon"],
            weight_decay=weight_decay,
        )
    momentum = params["momentum"]
    return SGD(
        lr=lr, momentum=momentum, nesterov=params["nesterov"] and momentum > 0, weight_decay=weight_decay
    )


class _BaseBP(BaseEstimator):
    """Parameters, training loop and fitted state shared by both estimators."""

    _kind: str  # "classifier" or "regressor" (AUTO_LEARNING_RATES)
    # The fitted state, set by fit and partial_fit (the attributes: the subclasses' docstrings).
    network_: Network
    optimizer_: Optimizer
    loss_curve_: list[float]
    _encoding_: Encoding
    _rng: np.random.Generator

    # The subclasses' __init__ list every parameter (scikit-learn reads them
    # from the signature) and pass the shared ones here.
    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int],
        activation: str | Sequence[str],
        solver: str,
        learning_rate_init: float | str,
        learning_rate: str,
        momentum: float,
        nesterovs_momentum: bool,
        alpha: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
        max_iter: int,
        batch_size: int,
        shuffle: bool,
        random_state: int | np.random.RandomState | None,
        tol: float,
        early_stopping: bool,
        validation_fraction: float,
        n_iter_no_change: int,
        warm_start: bool,
        dtype: npt.DTypeLike,
        backend: str | None,
        verbose: bool | int,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.alpha = alpha
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.dtype = dtype
        self.backend = backend
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Hooks of the subclasses: targets <-> network outputs
    # ------------------------------------------------------------------

    def _validate_y(self, y: Any) -> Any:
        """The target after ``validate_data`` -> the array to encode."""
        raise NotImplementedError

    def _checked_model_params(self) -> Params:
        """The subclass's own parameters, validated: a dict merged into ``params``."""
        raise NotImplementedError

    def _fit_encoding(self, y: Any, params: Params, classes: npt.ArrayLike | None = None) -> Encoding:
        """Fit the target encoding on the first fit; returns its attributes."""
        raise NotImplementedError

    def _output_model(self, encoding: Encoding, params: Params) -> tuple[str, str]:
        """``(output_activation, loss)`` in fastbp's names for these targets and parameters."""
        raise NotImplementedError

    def _encode(self, y: Any, encoding: Encoding) -> npt.NDArray[np.float64]:
        """Targets -> (n, n_outputs) training targets."""
        raise NotImplementedError

    def _decode(self, outputs: FloatArray, encoding: Encoding) -> Any:
        """(n, n_outputs) network outputs -> predictions."""
        raise NotImplementedError

    def _validation_score(self, y_true: Any, y_pred: Any) -> float:
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Fitted state
    # ------------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    @property
    def coefs_(self) -> list[FloatArray]:
        """Weight matrices, ``coefs_[l]`` of shape ``(n_in, n_out)`` like
        ``MLPClassifier.coefs_``: the transpose of ``network_.weights[l]``
        (fastbp stores ``(n_out, n_in)``).  Read-only live views."""
        check_is_fitted(self)
        return [W.T for W in self.network_.weights]

    @property
    def intercepts_(self) -> list[FloatArray]:
        """Bias vectors, ``intercepts_[l]`` of shape ``(n_out,)``: ``network_.biases``."""
        check_is_fitted(self)
        return self.network_.biases

    @property
    def out_activation_(self) -> str:
        """The output layer's activation in scikit-learn's names: ``"logistic"``,
        ``"softmax"`` or ``"identity"`` (as ``MLPClassifier.out_activation_``)."""
        check_is_fitted(self)
        return SKLEARN_NAMES[self.network_.activations[-1]]

    def _checked_activations(self, hidden: tuple[int, ...]) -> tuple[str, ...]:
        """``activation`` -> one fastbp name per hidden layer."""
        activation = self.activation
        valid = ", ".join(map(repr, ACTIVATIONS))
        if isinstance(activation, str):
            given, where = [activation] * len(hidden), [""] * len(hidden)
            if activation not in ACTIVATIONS:
                raise ValueError(f"activation={activation!r} is not one of {valid}")
        elif isinstance(activation, (list, tuple)):
            given, where = list(activation), [f"[{i}]" for i in range(len(activation))]
            if len(given) != len(hidden):
                raise ValueError(
                    f"activation must be one name or a sequence of one name per hidden layer: "
                    f"{len(given)} names for hidden_layer_sizes={hidden!r}"
                )
        else:
            raise TypeError(
                f"activation must be a str (one of {valid}) or a list/tuple of them, one per hidden layer; "
                f"got {type(activation).__name__} {activation!r}"
            )
        for name, at in zip(given, where):
            if not isinstance(name, str):
                raise TypeError(
                    f"activation{at} must be a str, one of {valid}; got {type(name).__name__} {name!r}"
                )
            if name not in ACTIVATIONS:
                raise ValueError(f"activation{at}={name!r} is not one of {valid}")
        return tuple(ACTIVATIONS[name] for name in given)

    def _checked_params(self) -> Params:
        """The hyper-parameters, validated (scikit-learn validates in fit, not __init__)."""
        hidden: Any = self.hidden_layer_sizes  # as given: checked here
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, (bool, np.bool_)):
            hidden = (hidden,)
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__len__"):
            raise TypeError(
                f"hidden_layer_sizes must be a sequence of integers like (100,) or (64, 32), got {hidden!r}"
            )
        hidden = tuple(check.integer(n, f"hidden_layer_sizes[{i}]", minimum=1) for i, n in enumerate(hidden))
        fraction = check.real(self.validation_fraction, "validation_fraction")
        if not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
        tol = check.real(self.tol, "tol")
        if tol < 0:
            raise ValueError(f"tol must be >= 0, got {tol}")
        verbose = self.verbose
        if isinstance(verbose, (bool, np.bool_)):
            verbose = int(verbose)
        check.integer(verbose, "verbose", minimum=0)
        if self.learning_rate not in SCHEDULES:
            raise ValueError(
                f"learning_rate must be one of {', '.join(map(repr, SCHEDULES))}, got {self.learning_rate!r}"
            )
        if self.backend is not None and not isinstance(self.backend, str):
            raise TypeError(f"backend must be None or a backend name like 'cython', got {self.backend!r}")
        if not isinstance(self.solver, str) or self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))}, got {self.solver!r}")
        if isinstance(self.learning_rate_init, str) and self.learning_rate_init == "auto":
            lr = AUTO_LEARNING_RATES[self._kind][self.solver]
            if self.solver == "sgd":
                lr *= 1 - check.fraction(self.momentum, "momentum")
        elif isinstance(self.learning_rate_init, str):
            raise ValueError(
                f"learning_rate_init must be 'auto' or a number > 0, got {self.learning_rate_init!r}"
            )
        else:
            lr = check.learning_rate(self.learning_rate_init, "learning_rate_init")
        return dict(
            hidden=hidden,
            activations=self._checked_activations(hidden),
            **self._checked_model_params(),
            solver=self.solver,
            lr=lr,
            # The schedule divides the step size of sgd and adam; RPROP adapts
            # its own steps (its lr is only the initial one).
            adaptive=self.learning_rate == "adaptive" and self.solver != "rprop",
            momentum=check.fraction(self.momentum, "momentum"),
            nesterov=check.flag(self.nesterovs_momentum, "nesterovs_momentum"),
            alpha=check.non_negative(self.alpha, "alpha"),
            beta_1=check.fraction(self.beta_1, "beta_1"),
            beta_2=check.fraction(self.beta_2, "beta_2"),
            epsilon=check.learning_rate(self.epsilon, "epsilon"),
            max_iter=check.integer(self.max_iter, "max_iter", minimum=1),
            batch_size=check.integer(self.batch_size, "batch_size", minimum=1),
            shuffle=check.flag(self.shuffle, "shuffle"),
            tol=tol,
            early_stopping=check.flag(self.early_stopping, "early_stopping"),
            validation_fraction=fraction,
            n_iter_no_change=check.integer(self.n_iter_no_change, "n_iter_no_change", minimum=1),
            warm_start=check.flag(self.warm_start, "warm_start"),
            dtype=check.float_dtype(self.dtype),
            verbose=verbose,
        )

    def _generator(self) -> np.random.Generator:
        """The one ``numpy.random.Generator`` of a fit, derived from ``random_state``."""
        state = self.random_state
        if isinstance(state, numbers.Integral) and not isinstance(state, (bool, np.bool_)):
            check.integer(state, "random_state", minimum=0)
        elif not (state is None or isinstance(state, np.random.RandomState)):
            raise TypeError(
                f"random_state must be None, an int or a numpy.random.RandomState, got {state!r} "
                f"of type {type(state).__name__}"
            )
        return np.random.default_rng(check_random_state(state).randint(np.iinfo(np.int32).max))

    def _validate(self, X: Any, y: Any, params: Params, reset: bool) -> tuple[FloatArray, Any]:
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            multi_output=True,
            y_numeric=isinstance(self, RegressorMixin),
            dtype=params["dtype"],
            order="C",
        )
        return X, self._validate_y(y)

    def _new_network(
        self, n_features: int, n_outputs: int, params: Params, encoding: Encoding, rng: np.random.Generator
    ) -> Network:
        output_activation, loss = self._output_model(encoding, params)
        return Network(
            [n_features, *params["hidden"], n_outputs],
            activation=params["activations"],
            output_activation=output_activation,
            loss=loss,
            seed=rng,
            dtype=params["dtype"],
            backend=self.backend,
        )

    def _check_same_model(self, net: Network, params: Params, encoding: Encoding) -> None:
        """A warm start or a later partial_fit continues ``net``: the parameters
        must still describe it (scikit-learn's MLP would silently ignore a change)."""
        output_activation, loss = self._output_model(encoding, params)
        asked = (params["hidden"], params["activations"] + (output_activation,), loss)
        has = (tuple(net.layer_sizes[1:-1]), net.activations, net.loss)
        if asked != has:

            def describe(hidden: tuple[int, ...], names: tuple[str, ...], loss: str) -> str:
                return (
                    f"hidden_layer_sizes={hidden}, activations "
                    f"{tuple(SKLEARN_NAMES[n] for n in names)}, loss {loss!r}"
                )

            raise ValueError(
                f"the fitted network has {describe(*has)} but the parameters now ask for {describe(*asked)}: "
                "a warm start or partial_fit continues the fitted network; fit with warm_start=False to change "
                "the model"
            )

    def _atomically(self, fit_function: Callable[[], _Estimator]) -> _Estimator:
        """Run ``fit_function``; if it raises, put the estimator back as it was."""
        before = dict(self.__dict__)
        try:
            return fit_function()
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def fit(self: _Estimator, X: npt.ArrayLike, y: npt.ArrayLike) -> _Estimator:
        """Train on ``X`` (n_samples, n_features) and ``y``; returns ``self``.

        Trains ``network_`` from fresh random weights (or, with
        ``warm_start=True`` and a fitted model, from its current weights) for
        at most ``max_iter`` epochs, one ``Network.train(epochs=1)`` call per
        epoch.  A *stall* is ``n_iter_no_change`` consecutive epochs in which
        the training loss (or, with ``early_stopping``, the validation score)
        did not improve on its best by at least ``tol``.  With
        ``learning_rate="constant"`` the first stall ends training;
        with ``"adaptive"`` (the default) each of the first three stalls
        divides the learning rate by 5 and the fourth ends training.  Each
        ``fit`` starts from ``learning_rate_init``.
        """
        return self._atomically(lambda: self._fit(X, y))

    def _fit(self: _Estimator, X: npt.ArrayLike, y: npt.ArrayLike) -> _Estimator:
        params = self._checked_params()
        rng = self._generator()
        warm = params["warm_start"] and self.__sklearn_is_fitted__()
        X, y = self._validate(X, y, params, reset=not warm)
        net: Network | None
        if warm:
            encoding = self._encoding_
            self._check_same_model(self.network_, params, encoding)
            self._check_warm_targets(y, encoding)
            net = copy.deepcopy(self.network_)  # trained on the side: see _atomically
            optimizer = self._kept_optimizer(params)
            loss_curve = list(self.loss_curve_)
        else:
            encoding = self._fit_encoding(y, params)
            net = optimizer = None
            loss_curve = []
        Y = self._encode(y, encoding)
        if net is None:
            net = self._new_network(X.shape[1], Y.shape[1], params, encoding, rng)

        if params["early_stopping"]:
            X, X_val, Y, y_val = self._split(X, Y, y, params, rng)
        if optimizer is None:
            optimizer = _new_optimizer(params, X.shape[0])
        validation_scores = []
        best_score, best_loss, best_net, best_optimizer = -np.inf, np.inf, None, None
        lr, divisions, since_best = params["lr"], 0, 0
        converged = False
        for epoch in range(1, params["max_iter"] + 1):
            loss = self._one_epoch(net, optimizer, X, Y, lr, params, rng)
            loss_curve.append(loss)
            if params["early_stopping"]:
                score = self._validation_score(y_val, self._decode(net.forward(X_val), encoding))
                validation_scores.append(score)
                improved = score > best_score + params["tol"]
                if best_net is None or score > best_score:
                    # The optimizer's state goes with the network it trained.
                    best_score, best_net, best_optimizer = score, copy.deepcopy(net), copy.deepcopy(optimizer)
            else:
                improved = loss < best_loss - params["tol"]
                best_loss = min(best_loss, loss)
            since_best = 0 if improved else since_best + 1
            if params["verbose"]:
                extra = (
                    f", validation score = {validation_scores[-1]:.6f}" if params["early_stopping"] else ""
                )
                print(f"Iteration {epoch}, loss = {loss:.8f}{extra}")
            if since_best >= params["n_iter_no_change"]:
                if not (params["adaptive"] and divisions < MAX_LR_DIVISIONS):
                    converged = True
                    break
                lr, divisions, since_best = lr / LR_DIVISOR, divisions + 1, 0
                if params["verbose"]:
                    print(f"No progress for {params['n_iter_no_change']} epochs: learning rate now {lr:g}")
        if not converged:
            warnings.warn(
                f"{type(self).__name__}: max_iter={params['max_iter']} epochs ran before the "
                f"{'validation score' if params['early_stopping'] else 'training loss'} stopped improving "
                f"(by tol={params['tol']} for n_iter_no_change={params['n_iter_no_change']} epochs"
                f"{' after the last learning-rate division' if params['adaptive'] else ''}); "
                "raise max_iter to train longer.",
                ConvergenceWarning,
                stacklevel=2,
            )

        # (With early stopping, the first epoch sets best_net and best_optimizer.)
        self.network_ = cast(Network, best_net) if params["early_stopping"] else net
        self.optimizer_ = cast(Optimizer, best_optimizer) if params["early_stopping"] else optimizer
        self._optimizer_key = _optimizer_key(params)
        self._rng = rng  # a later partial_fit shuffles on from here
        self._set_encoding(encoding)
        self.n_outputs_ = Y.shape[1]
        self.loss_curve_ = loss_curve
        self.loss_ = loss_curve[-1]
        self.n_iter_ = len(loss_curve)
        self.best_loss_ = None if params["early_stopping"] else best_loss
        self.validation_scores_ = validation_scores if params["early_stopping"] else None
        self.best_validation_score_ = best_score if params["early_stopping"] else None
        return self

    def _split(
        self, X: FloatArray, Y: npt.NDArray[np.float64], y: Any, params: Params, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.float64], Any]:
        """Hold out ``validation_fraction`` of the rows (stratified for classes)."""
        stratify = y if isinstance(self, ClassifierMixin) and y.ndim == 1 else None
        n_val = int(np.ceil(params["validation_fraction"] * X.shape[0]))
        if n_val >= X.shape[0]:
            raise ValueError(
                f"early_stopping needs at least one training and one validation sample: "
                f"validation_fraction={params['validation_fraction']} of {X.shape[0]} samples leaves none to train on"
            )
        X_train, X_val, Y_train, _, _, y_val = train_test_split(
            X,
            Y,
            y,
            test_size=params["validation_fraction"],
            stratify=stratify,
            random_state=int(rng.integers(np.iinfo(np.int32).max)),
        )
        return np.ascontiguousarray(X_train), X_val, np.ascontiguousarray(Y_train), y_val

    def _kept_optimizer(self, params: Params) -> Optimizer | None:
        """A copy of the fitted optimizer (its state included) to continue
        with, or None when its parameters changed (then a new one starts)."""
        if getattr(self, "_optimizer_key", None) != _optimizer_key(params):
            return None
        return copy.deepcopy(self.optimizer_)  # trained on the side: see _atomically

    def _one_epoch(
        self,
        net: Network,
        optimizer: Optimizer,
        X: FloatArray,
        Y: FloatArray,
        lr: float,
        params: Params,
        rng: np.random.Generator,
    ) -> float:
        if isinstance(optimizer, RPROP):  # full batch: one update per epoch, the order does not matter
            costs = net.train(X, Y, epochs=1, optimizer=optimizer, seed=rng)
        else:
            optimizer.lr = lr
            # SGD without momentum or weight decay is the note's plain gradient
            # descent: the same bits through Network.train(lr=...), whose
            # kernel is the fastest (SGD(lr) through the optimizer kernels
            # measured 1.5x slower online at 3bad4ee, 15x at 7b4a9e8); it has
            # no state to keep.
            plain = isinstance(optimizer, SGD) and optimizer.momentum == 0 and optimizer.weight_decay == 0
            rule = {"lr": lr} if plain else {"optimizer": optimizer}
            costs = net.train(
                X,
                Y,
                epochs=1,
                **rule,
                batch_size=params["batch_size"],
                shuffle=params["shuffle"],
                seed=rng,
            )
        return float(costs[0])

    def _partial_fit(
        self: _Estimator, X: npt.ArrayLike, y: npt.ArrayLike, classes: npt.ArrayLike | None = None
    ) -> _Estimator:
        params = self._checked_params()
        first = not self.__sklearn_is_fitted__()
        X, y = self._validate(X, y, params, reset=first)
        if first:
            self._rng = self._generator()
            encoding = self._fit_encoding(y, params, classes)
            Y = self._encode(y, encoding)
            net = self._new_network(X.shape[1], Y.shape[1], params, encoding, self._rng)
            optimizer = None
            loss_curve = []
        else:
            encoding = self._encoding_
            self._check_same_model(self.network_, params, encoding)
            self._check_warm_targets(y, encoding)
            Y = self._encode(y, encoding)
            net = copy.deepcopy(self.network_)  # trained on the side: see _atomically
            optimizer = self._kept_optimizer(params)
            loss_curve = list(self.loss_curve_)
        if optimizer is None:
            optimizer = _new_optimizer(params, X.shape[0])
        loss = self._one_epoch(net, optimizer, X, Y, params["lr"], params, self._rng)
        if params["verbose"]:
            print(f"Iteration {len(loss_curve) + 1}, loss = {loss:.8f}")
        self.network_ = net
        self.optimizer_ = optimizer
        self._optimizer_key = _optimizer_key(params)
        self._set_encoding(encoding)
        self.n_outputs_ = Y.shape[1]
        self.loss_curve_ = [*loss_curve, loss]
        self.loss_ = loss
        self.n_iter_ = len(self.loss_curve_)
        self.best_loss_ = min(self.loss_curve_)
        self.validation_scores_ = self.best_validation_score_ = None
        return self

    def _check_warm_targets(self, y: Any, encoding: Encoding) -> None:
        """Targets of a warm start or a later partial_fit must fit the encoding."""

    def _set_encoding(self, encoding: Encoding) -> None:
        """The encoding's attributes (``classes_``, ``y_center_``, ...); a
        previous fit's that this one lacks are removed."""
        for name in getattr(self, "_encoding_", {}):
            if name not in encoding:
                delattr(self, name)
        self._encoding_ = encoding
        for name, value in encoding.items():
            setattr(self, name, value)

    def _outputs(self, X: npt.ArrayLike) -> FloatArray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.network_.dtype, order="C")
        return self.network_.forward(X)


class BPClassifier(ClassifierMixin, _BaseBP):
    """A classifier: a fully connected network trained by backpropagation.

    Wraps ``fastbp.Network`` (gradient descent on mini-batches of
    ``batch_size`` samples; online learning with ``batch_size=1``).  The
    defaults were chosen by measurement (``bench/estimators.py``).  Standardise the features first (e.g.
    ``StandardScaler`` in a ``Pipeline``).

    **Outputs and loss.** With ``loss="log_loss"`` (the default; fastbp's
    ``"cross_entropy"``): more than two classes get a softmax output, one unit
    per class, trained towards one-hot targets, and ``predict_proba`` is the
    softmax itself; two classes get one sigmoid output ``o``, trained towards
    0 for ``classes_[0]`` and 1 for ``classes_[1]``, with ``predict_proba``
    ``[1 - o, o]``; a **multilabel** indicator ``y`` (n_samples, n_labels) of
    0/1 gets one sigmoid per label, and ``predict_proba`` returns the raw
    outputs (n_samples, n_labels), one probability per label, like
    ``MLPClassifier``.  With ``loss="squared_error"`` every output is a sigmoid
    and the cost ``J = 1/2 sum (t - o)^2`` (the note's model): two classes and
    multilabel as above, more classes one independent sigmoid per class
    trained towards one-hot targets, whose ``predict_proba`` divides each row
    by its sum (a row that is all zeros, possible only after underflow,
    becomes uniform).  ``predict`` picks the largest output (two classes:
    ``classes_[1]`` when ``o > 0.5``; multilabel: each output thresholded at
    0.5).  Multiclass-multioutput targets are refused.
    ``out_activation_`` names the output layer's activation.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the hidden layers; ``()`` for none (inputs wired straight to
        the outputs).
    activation : {"relu", "tanh", "logistic", "identity", "leaky_relu"} or \
            sequence of them, default="tanh"
        The hidden layers' activation, in scikit-learn's names
        (``"logistic"`` is fastbp's ``"sigmoid"``; ``"leaky_relu"``, slope
        0.01, is fastbp's addition), or one name per hidden layer.  Each
        layer's initial weights suit its activation (``fastbp.Network``).
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"log_loss"``: the cross-entropy with softmax or sigmoid outputs
        (see above).  ``"squared_error"``: sigmoid outputs with the squared
        error, the note's model.
    solver : {"sgd", "adam", "rprop"}, default="rprop"
        The optimizer: ``fastbp.SGD`` (with ``momentum``,
        ``nesterovs_momentum``, ``alpha``), ``fastbp.Adam`` (``beta_1``,
        ``beta_2``, ``epsilon``, ``alpha``) or ``fastbp.RPROP`` (iRPROP-,
        full-batch: one update per epoch over all training rows; ignores
        ``batch_size``, ``shuffle`` and ``alpha``).  PyTorch's update rules.
    learning_rate_init : float or "auto", default="auto"
        The step size at the start of each fit (for ``"rprop"``, each
        weight's initial step size).  ``"auto"``: ``0.3 * (1 - momentum)``
        for ``"sgd"``, 0.01 for ``"adam"``, 0.01 for ``"rprop"`` (``AUTO_LEARNING_RATES``, chosen
        by measurement).  With ``batch_size > 1`` the gradient is averaged
        over the batch, so larger batches usually want a larger rate.
    momentum : float in [0, 1), default=0.9
        ``"sgd"``'s momentum (torch's: ``buf = momentum * buf + g``, ``w -=
        lr * buf``).
    nesterovs_momentum : bool, default=True
        ``"sgd"``: Nesterov's momentum (no effect with ``momentum=0``).
    alpha : float >= 0, default=0.0
        L2 penalty, as ``MLPClassifier``'s: ``"sgd"`` and ``"adam"`` get
        ``weight_decay = alpha / min(batch_size, n)`` (``n`` the training
        rows when the optimizer is made), which adds ``alpha * w / b`` to the
        gradient as ``MLPClassifier`` does for the weights, and also decays
        the biases (torch's weight decay, which ``MLPClassifier`` does not
        apply to the intercepts).  Not used by ``"rprop"``.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        ``"adam"``'s decay rates of the first and second moments.
    epsilon : float > 0, default=1e-8
        ``"adam"``'s term added to the denominator.
    learning_rate : {"adaptive", "constant"}, default="adaptive"
        The schedule (MLPClassifier's name).  ``"adaptive"``: when training
        stalls (see ``n_iter_no_change``) the learning rate is divided by 5, at
        most three times; the next stall ends training.  Large steps make
        fast progress early on, smaller ones then average out the noise of
        online updates.  ``"constant"``: the first stall ends training.
        ``partial_fit`` always uses ``learning_rate_init``.  RPROP's steps
        are not divided: with it the first stall ends training.
    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).
    batch_size : int, default=16
        Samples per update: 1 is online learning, larger values average the
        gradient over mini-batches (clipped to the number of samples).
    shuffle : bool, default=True
        Visit the samples in a fresh random order each epoch.
    random_state : None, int or numpy.random.RandomState, default=None
        Seeds the initial weights, the shuffling and the validation split,
        through one ``numpy.random.Generator`` derived from it.
    tol : float, default=1e-4
        Minimum improvement of the training loss (or, with early stopping, of
        the validation score) that counts as progress.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified),
        judge progress by the accuracy on it instead of the training loss,
        and keep the network of the best validation score.
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    n_iter_no_change : int, default=10
        This many consecutive epochs without progress (see ``tol``) is a
        stall: it divides the learning rate or ends training (see
        ``learning_rate``).
    warm_start : bool, default=False
        When fitted already, continue training the current network instead of
        starting afresh (the classes and the model, i.e. hidden_layer_sizes,
        activation and loss, must be the same), and the optimizer with its
        state unless ``solver``, ``momentum``, ``nesterovs_momentum``,
        ``alpha``, ``beta_1``, ``beta_2``, ``epsilon`` or ``batch_size``
        changed (then a new optimizer starts).
    dtype : {"float64", "float32"}, default="float64"
        Floating-point type of the network.
    backend : None or str, default=None
        fastbp backend (``"cython"``, ``"python"``); None for the default.
    verbose : bool or int, default=False
        Print the loss after each epoch.

    Attributes
    ----------
    network_ : fastbp.Network
        The trained network (``network_.save(path)`` writes a model file,
        without the optimizer).
    optimizer_ : fastbp.SGD, fastbp.Adam or fastbp.RPROP
        The optimizer with its state (``optimizer_.steps`` updates so far;
        0 for ``"sgd"`` without momentum and alpha, plain gradient descent,
        which has no state and trains through ``Network.train(lr=...)``);
        pickling the estimator keeps it.
    classes_ : ndarray
        The class labels (for multilabel ``y``, the label indices).
    out_activation_ : str
        The output layer's activation: ``"softmax"`` or ``"logistic"``.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape ``(n_in, n_out)``, as in ``MLPClassifier``: the
        transpose of fastbp's ``network_.weights[l]`` ``(n_out, n_in)``.
        Read-only live views.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape ``(n_out,)``.  Read-only live views.
    loss_curve_ : list of float
        fastbp's mean per-sample cost ``J`` (``network_.loss``: the
        cross-entropy or the squared error) of each epoch, on the encoded
        targets, measured during the epoch (each sample's J before its
        update).
    loss_ : float
        The last entry of ``loss_curve_``.
    n_iter_ : int
        Epochs run (all calls, with warm start or partial_fit).
    n_outputs_ : int
        Outputs of the network.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (e.g. a pandas DataFrame).
    best_loss_ : float or None
        Lowest entry of ``loss_curve_`` (None with early stopping).
    validation_scores_ : list of float or None
        Validation accuracy after each epoch of the last fit (early stopping
        only).
    best_validation_score_ : float or None
        The best of ``validation_scores_`` (early stopping only).
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        *,
        activation: str | Sequence[str] = "tanh",
        loss: str = "log_loss",
        solver: str = "rprop",
        learning_rate_init: float | str = "auto",
        learning_rate: str = "adaptive",
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        alpha: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        max_iter: int = 200,
        batch_size: int = 16,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        warm_start: bool = False,
        dtype: npt.DTypeLike = "float64",
        backend: str | None = None,
        verbose: bool | int = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver,
            learning_rate_init,
            learning_rate,
            momentum,
            nesterovs_momentum,
            alpha,
            beta_1,
            beta_2,
            epsilon,
            max_iter,
            batch_size,
            shuffle,
            random_state,
            tol,
            early_stopping,
            validation_fraction,
            n_iter_no_change,
            warm_start,
            dtype,
            backend,
            verbose,
        )
        self.loss = loss

    _kind = "classifier"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _checked_model_params(self) -> Params:
        if not isinstance(self.loss, str) or self.loss not in CLASSIFIER_LOSSES:
            raise ValueError(
                f"loss must be one of {', '.join(map(repr, CLASSIFIER_LOSSES))}, got {self.loss!r}"
            )
        return {"loss": CLASSIFIER_LOSSES[self.loss]}

    def _output_model(self, encoding: Encoding, params: Params) -> tuple[str, str]:
        loss = params["loss"]
        if loss == "cross_entropy" and encoding["_label_binarizer"].y_type_ == "multiclass":
            return "softmax", loss
        return "sigmoid", loss

    def _validate_y(self, y: Any) -> Any:
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"BPClassifier supports binary, multiclass and multilabel-indicator targets, got {kind!r} y "
                f"of shape {y.shape}"
            )
        if hasattr(y, "toarray"):  # a sparse multilabel indicator
            y = y.toarray()
        return y

    def _fit_encoding(self, y: Any, params: Params, classes: npt.ArrayLike | None = None) -> Encoding:
        binarizer = LabelBinarizer()
        if y.ndim == 2:
            binarizer.fit(y)
            if classes is not None and not np.array_equal(np.sort(np.asarray(classes)), binarizer.classes_):
                raise ValueError(
                    f"classes for a multilabel y of {y.shape[1]} labels must be the label indices "
                    f"{binarizer.classes_.tolist()}, got {np.asarray(classes).tolist()}"
                )
        else:
            binarizer.fit(y if classes is None else column_or_1d(classes))
        if len(binarizer.classes_) < 2:
            raise ValueError(
                f"y has 1 class ({binarizer.classes_[0]!r}); BPClassifier needs at least two classes to learn from"
            )
        encoding = {"classes_": binarizer.classes_, "_label_binarizer": binarizer}
        self._check_warm_targets(y, encoding)
        return encoding

    def _check_warm_targets(self, y: Any, encoding: Encoding) -> None:
        classes = encoding["classes_"]
        if y.ndim == 2:
            if not encoding["_label_binarizer"].y_type_.startswith("multilabel") or y.shape[1] != len(
                classes
            ):
                raise ValueError(
                    f"y is a multilabel indicator with {y.shape[1]} labels but the model was fitted on "
                    f"classes {classes.tolist()}"
                )
            return
        if encoding["_label_binarizer"].y_type_.startswith("multilabel"):
            raise ValueError(f"the model was fitted on a multilabel y of {len(classes)} labels; got a 1-D y")
        unseen = np.setdiff1d(y, classes)
        if unseen.size:
            raise ValueError(
                f"y holds labels {unseen.tolist()} that are not among the classes {classes.tolist()} "
                "(give every class in `classes` on the first partial_fit, or fit again without warm_start)"
            )

    def _encode(self, y: Any, encoding: Encoding) -> npt.NDArray[np.float64]:
        return encoding["_label_binarizer"].transform(y).astype(np.float64)

    def _decode(self, outputs: FloatArray, encoding: Encoding) -> Any:
        return encoding["_label_binarizer"].inverse_transform(outputs)

    def _validation_score(self, y_true: Any, y_pred: Any) -> float:
        return accuracy_score(y_true, y_pred)

    def partial_fit(
        self, X: npt.ArrayLike, y: npt.ArrayLike, classes: npt.ArrayLike | None = None
    ) -> BPClassifier:
        """One epoch over ``X``, ``y`` (no early stopping, no convergence
        check); returns ``self``.  The first call needs ``classes``, every
        class that will ever appear (for a multilabel ``y``, the label indices
        ``range(n_labels)``); later calls continue from the current network."""
        if classes is None and not self.__sklearn_is_fitted__():
            raise ValueError(
                "classes must be passed on the first call to partial_fit (every class y will hold)"
            )
        return self._atomically(lambda: self._partial_fit(X, y, classes))

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """The predicted class of each row of ``X`` (for multilabel ``y``, a
        0/1 indicator row: each output thresholded at 0.5)."""
        return self._decode(self._outputs(X), self._encoding_)

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities, (n_samples, n_classes): ``[1 - o, o]`` for two
        classes, the softmax outputs for more (with ``loss="squared_error"``:
        the sigmoid outputs divided by their row sum); for a multilabel ``y``,
        the raw outputs (one probability per label)."""
        outputs = self._outputs(X).astype(np.float64)
        kind = self._label_binarizer.y_type_
        if kind == "binary":
            return np.hstack([1.0 - outputs, outputs])
        if kind.startswith("multilabel") or self.network_.activations[-1] == "softmax":
            return outputs
        sums = outputs.sum(axis=1, keepdims=True)
        uniform = np.full_like(outputs, 1.0 / outputs.shape[1])
        return np.divide(outputs, sums, out=uniform, where=sums > 0)

    def predict_log_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class BPRegressor(RegressorMixin, _BaseBP):
    """A regressor: a fully connected network trained by backpropagation.

    Wraps ``fastbp.Network`` (squared-error cost, gradient descent; online
    learning with the default ``batch_size=1``).  Standardise the features first (e.g.
    ``StandardScaler`` in a ``Pipeline``); targets far from unit scale (the
    diabetes target is about 150 +- 77) want either a much smaller
    ``learning_rate_init`` or ``TransformedTargetRegressor(regressor,
    transformer=StandardScaler())``: with identity outputs the gradient grows
    with the target.

    **Outputs.** ``out_activation="identity"`` (the default): linear outputs
    trained on the targets as they are, no scaling; ``predict`` returns the
    outputs.  ``out_activation="logistic"``: sigmoid outputs, which live in
    (0, 1), so each target column ``y_j`` is mapped, during training, by ``t =
    0.5 + (y_j - y_center_[j]) / y_scale_[j]``, where ``y_center_`` is the
    midpoint of the column's training range and ``y_scale_ = (max - min) /
    0.8``: the training range ``[min, max]`` becomes ``[0.1, 0.9]``.
    ``predict`` inverts the map: ``y = y_center_ + (o - 0.5) * y_scale_``.
    Predictions are therefore bounded to ``[min - span/8, max + span/8]`` (the
    image of (0, 1)), with ``span = max - min``.  A constant column gets
    ``y_scale_ = 1`` (t = 0.5).  The map is fixed by the first fit: a later
    ``partial_fit`` or warm-start ``fit`` with a target outside the
    representable interval raises ``ValueError`` (the sigmoid could never
    reach it).  With ``activation="logistic"`` this is the note's model, as
    fastbp's regressor was before it had other activations.

    Parameters
    ----------
    out_activation : {"identity", "logistic"}, default="identity"
        The output layer's activation (see above).  The loss is always the
        squared error ``J = 1/2 sum (t - o)^2``.
    activation : default="logistic"
    learning_rate_init : float or "auto", default="auto"
    batch_size : int, default=1
        As in ``BPClassifier``, but these defaults, chosen by measurement on
        the diabetes data (``bench/estimators.py``).  ``learning_rate_init="auto"``
        is ``0.0001 * (1 - momentum)`` for ``"sgd"``, 0.001 for ``"adam"``, 0.01
        for ``"rprop"``.  ``solver="adam"`` and ``alpha=0.001`` by default
        (measured, as the classifier's ``"rprop"``).
    Others
        As ``BPClassifier`` (but no ``loss``); with ``early_stopping``, the
        validation score is R^2 (split not stratified).

    Attributes
    ----------
    network_ : fastbp.Network
        The trained network (``network_.save(path)`` writes a model file).
    optimizer_ : fastbp.SGD, fastbp.Adam or fastbp.RPROP
        As in ``BPClassifier``.
    out_activation_ : str
        ``"identity"`` or ``"logistic"``: ``out_activation``.
    y_center_, y_scale_ : ndarray of shape ``(n_outputs_,)``
        The target scaling above (only with ``out_activation="logistic"``).
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape ``(n_in, n_out)``, as in ``MLPRegressor``: the
        transpose of fastbp's ``network_.weights[l]`` ``(n_out, n_in)``.
        Read-only live views.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape ``(n_out,)``.  Read-only live views.
    loss_curve_ : list of float
        fastbp's mean per-sample cost ``J`` of each epoch on the training
        targets (the *scaled* targets with ``out_activation="logistic"``),
        measured during the epoch.
    loss_, n_iter_, n_outputs_, n_features_in_, feature_names_in_, best_loss_,
    validation_scores_, best_validation_score_
        As in ``BPClassifier`` (validation scores are R^2).

    ``predict`` returns 1-D predictions when ``y`` was 1-D, (n_samples,
    n_outputs) when it was 2-D.
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        *,
        activation: str | Sequence[str] = "logistic",
        out_activation: str = "identity",
        solver: str = "adam",
        learning_rate_init: float | str = "auto",
        learning_rate: str = "adaptive",
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        alpha: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        max_iter: int = 200,
        batch_size: int = 1,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        warm_start: bool = False,
        dtype: npt.DTypeLike = "float64",
        backend: str | None = None,
        verbose: bool | int = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver,
            learning_rate_init,
            learning_rate,
            momentum,
            nesterovs_momentum,
            alpha,
            beta_1,
            beta_2,
            epsilon,
            max_iter,
            batch_size,
            shuffle,
            random_state,
            tol,
            early_stopping,
            validation_fraction,
            n_iter_no_change,
            warm_start,
            dtype,
            backend,
            verbose,
        )
        self.out_activation = out_activation

    _kind = "regressor"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _checked_model_params(self) -> Params:
        if not isinstance(self.out_activation, str) or self.out_activation not in REGRESSOR_OUTPUTS:
            raise ValueError(
                f"out_activation must be one of {', '.join(map(repr, REGRESSOR_OUTPUTS))}, "
                f"got {self.out_activation!r}"
            )
        return {"out_activation": ACTIVATIONS[self.out_activation]}

    def _output_model(self, encoding: Encoding, params: Params) -> tuple[str, str]:
        return params["out_activation"], "squared_error"

    def _validate_y(self, y: Any) -> Any:
        return y

    def _fit_encoding(self, y: Any, params: Params, classes: npt.ArrayLike | None = None) -> Encoding:
        Y = y.reshape(len(y), -1).astype(np.float64)
        encoding = {"_y_ndim": y.ndim, "_n_targets": Y.shape[1]}
        if params["out_activation"] != "sigmoid":
            return encoding
        fitted = _scaling.fit_range(Y, name="y")
        scale = _scaling.divisor(fitted.span, TARGET_HIGH - TARGET_LOW)
        return {**encoding, "y_center_": fitted.center, "y_scale_": scale}

    def _encode(self, y: Any, encoding: Encoding) -> npt.NDArray[np.float64]:
        Y = y.reshape(len(y), -1).astype(np.float64)
        if Y.shape[1] != encoding["_n_targets"]:
            raise ValueError(
                f"y has {Y.shape[1]} target columns but the model was fitted on {encoding['_n_targets']}"
            )
        if "y_center_" not in encoding:
            return Y
        T = _scaling.to_interval(Y, encoding["y_center_"], encoding["y_scale_"], _TARGET_MID)
        outside = (T <= 0) | (T >= 1)
        if outside.any():
            row, column = np.argwhere(outside)[0]
            # The targets the sigmoid's (0, 1) stands for.
            low, high = (
                _scaling.from_interval(t, encoding["y_center_"], encoding["y_scale_"], _TARGET_MID)
                for t in (0.0, 1.0)
            )
            raise ValueError(
                f"y[{row}] = {Y[row, column]} (target column {column}) is outside ({low[column]}, {high[column]}), "
                "the range this model's sigmoid outputs can represent: the target scaling was fixed by the "
                "first fit. Fit afresh (warm_start=False) on data that spans the whole target range."
            )
        return T

    def _decode(self, outputs: FloatArray, encoding: Encoding) -> Any:
        y = outputs.astype(np.float64)
        if "y_center_" in encoding:
            y = _scaling.from_interval(y, encoding["y_center_"], encoding["y_scale_"], _TARGET_MID)
        return y.ravel() if encoding["_y_ndim"] == 1 else y

    def _validation_score(self, y_true: Any, y_pred: Any) -> float:
        return r2_score(y_true, y_pred)

    def partial_fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> BPRegressor:
        """One epoch over ``X``, ``y`` (no early stopping, no convergence
        check); returns ``self``.  With ``out_activation="logistic"`` the first
        call fixes the target scaling."""
        return self._atomically(lambda: self._partial_fit(X, y))

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """Predicted targets: the outputs (with ``out_activation="logistic"``,
        mapped back from the sigmoid outputs; see the class docstring)."""
        return self._decode(self._outputs(X), self._encoding_)
