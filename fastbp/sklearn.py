"""scikit-learn estimators over ``fastbp.Network``: ``BPClassifier`` and ``BPRegressor``.

Import this module explicitly (``from fastbp.sklearn import BPClassifier``);
``import fastbp`` never imports scikit-learn.  Needs ``scikit-learn>=1.6``
(``pip install fastbp[sklearn]``): the estimators use its developer API of
that version (``validate_data``, ``__sklearn_tags__``).

Both estimators are thin: the model is a ``fastbp.Network`` of sigmoid neurons
(``network_``), trained by ``Network.train`` one epoch per iteration so that
``tol``, ``n_iter_no_change`` and ``early_stopping`` can act between epochs.
What the wrappers add is the mapping between scikit-learn's targets and the
sigmoid outputs, which live in (0, 1):

* ``BPClassifier``: one sigmoid output for two classes (target 0 or 1), one
  output per class (one-hot targets) for more, one output per label for a
  multilabel indicator ``y``.
* ``BPRegressor``: each target column is mapped linearly so that its training
  range ``[min, max]`` becomes ``[0.1, 0.9]``; ``predict`` inverts the map.

A ``fit`` that raises (bad input, ``TrainingDivergedError``, Ctrl-C) leaves
the estimator as it was before the call.
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _validation as check
from .network import Network

__all__ = ["BPClassifier", "BPRegressor"]

# The regressor maps each target's training range [min, max] onto this
# interval of the sigmoid's (0, 1): inside it, away from the flat tails where
# the sigmoid's derivative (and so learning) vanishes.
TARGET_LOW, TARGET_HIGH = 0.1, 0.9

SCHEDULES = ("adaptive", "constant")
# "adaptive": each stall (n_iter_no_change epochs without progress) divides
# the learning rate by LR_DIVISOR, up to MAX_LR_DIVISIONS times; the next stall
# ends training.  Large steps escape the sigmoid's plateaus early on, small
# ones then average out the noise of online updates.
LR_DIVISOR, MAX_LR_DIVISIONS = 5, 3


class _BaseBP(BaseEstimator):
    """Parameters, training loop and fitted state shared by both estimators."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        learning_rate_init=1.0,
        learning_rate="adaptive",
        max_iter=200,
        batch_size=1,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=20,
        warm_start=False,
        dtype="float64",
        backend=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
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
    # Hooks of the subclasses: targets <-> sigmoid outputs
    # ------------------------------------------------------------------

    def _validate_y(self, y):
        """The target after ``validate_data`` -> the array to encode."""
        raise NotImplementedError

    def _fit_encoding(self, y, classes=None):
        """Fit the target encoding on the first fit; returns its attributes."""
        raise NotImplementedError

    def _encode(self, y, encoding):
        """Targets -> (n, n_outputs) sigmoid targets."""
        raise NotImplementedError

    def _decode(self, outputs, encoding):
        """(n, n_outputs) network outputs -> predictions."""
        raise NotImplementedError

    def _validation_score(self, y_true, y_pred):
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Fitted state
    # ------------------------------------------------------------------

    def __sklearn_is_fitted__(self):
        return hasattr(self, "network_")

    @property
    def coefs_(self):
        """Weight matrices, ``coefs_[l]`` of shape ``(n_in, n_out)`` like
        ``MLPClassifier.coefs_``: the transpose of ``network_.weights[l]``
        (fastbp stores ``(n_out, n_in)``).  Read-only live views."""
        check_is_fitted(self)
        return [W.T for W in self.network_.weights]

    @property
    def intercepts_(self):
        """Bias vectors, ``intercepts_[l]`` of shape ``(n_out,)``: ``network_.biases``."""
        check_is_fitted(self)
        return self.network_.biases

    def _checked_params(self):
        """The hyper-parameters, validated (scikit-learn validates in fit, not __init__)."""
        hidden = self.hidden_layer_sizes
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
                f"learning_rate must be one of {', '.join(map(repr, SCHEDULES))}, "
                f"got {self.learning_rate!r}"
            )
        if self.backend is not None and not isinstance(self.backend, str):
            raise TypeError(f"backend must be None or a backend name like 'cython', got {self.backend!r}")
        return dict(
            hidden=hidden,
            lr=check.learning_rate(self.learning_rate_init, "learning_rate_init"),
            adaptive=self.learning_rate == "adaptive",
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

    def _generator(self):
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

    def _validate(self, X, y, params, reset):
        X, y = validate_data(
            self, X, y, reset=reset, multi_output=True, y_numeric=isinstance(self, RegressorMixin),
            dtype=params["dtype"], order="C",
        )
        return X, self._validate_y(y)

    def _new_network(self, n_features, n_outputs, params, rng):
        return Network(
            [n_features, *params["hidden"], n_outputs], seed=rng, dtype=params["dtype"], backend=self.backend
        )

    def _atomically(self, fit_function):
        """Run ``fit_function``; if it raises, put the estimator back as it was."""
        before = dict(vars(self))
        try:
            return fit_function()
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def fit(self, X, y):
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

    def _fit(self, X, y):
        params = self._checked_params()
        rng = self._generator()
        warm = params["warm_start"] and self.__sklearn_is_fitted__()
        X, y = self._validate(X, y, params, reset=not warm)
        if warm:
            encoding = self._encoding_
            self._check_warm_targets(y, encoding)
            net = copy.deepcopy(self.network_)  # trained on the side: see _atomically
            loss_curve = list(self.loss_curve_)
        else:
            encoding = self._fit_encoding(y)
            net = None
            loss_curve = []
        Y = self._encode(y, encoding)
        if net is None:
            net = self._new_network(X.shape[1], Y.shape[1], params, rng)

        if params["early_stopping"]:
            X, X_val, Y, y_val = self._split(X, Y, y, params, rng)
        validation_scores = []
        best_score, best_loss, best_net = -np.inf, np.inf, None
        lr, divisions, since_best = params["lr"], 0, 0
        converged = False
        for epoch in range(1, params["max_iter"] + 1):
            loss = self._one_epoch(net, X, Y, lr, params, rng)
            loss_curve.append(loss)
            if params["early_stopping"]:
                score = self._validation_score(y_val, self._decode(net.forward(X_val), encoding))
                validation_scores.append(score)
                improved = score > best_score + params["tol"]
                if best_net is None or score > best_score:
                    best_score, best_net = score, copy.deepcopy(net)
            else:
                improved = loss < best_loss - params["tol"]
                best_loss = min(best_loss, loss)
            since_best = 0 if improved else since_best + 1
            if params["verbose"]:
                extra = f", validation score = {validation_scores[-1]:.6f}" if params["early_stopping"] else ""
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
            )

        self.network_ = best_net if params["early_stopping"] else net
        self._rng = rng  # a later partial_fit shuffles on from here
        self._encoding_ = encoding
        for name, value in encoding.items():
            setattr(self, name, value)
        self.n_outputs_ = Y.shape[1]
        self.loss_curve_ = loss_curve
        self.n_iter_ = len(loss_curve)
        self.best_loss_ = None if params["early_stopping"] else best_loss
        self.validation_scores_ = validation_scores if params["early_stopping"] else None
        self.best_validation_score_ = best_score if params["early_stopping"] else None
        return self

    def _split(self, X, Y, y, params, rng):
        """Hold out ``validation_fraction`` of the rows (stratified for classes)."""
        stratify = y if isinstance(self, ClassifierMixin) and y.ndim == 1 else None
        n_val = int(np.ceil(params["validation_fraction"] * X.shape[0]))
        if n_val >= X.shape[0]:
            raise ValueError(
                f"early_stopping needs at least one training and one validation sample: "
                f"validation_fraction={params['validation_fraction']} of {X.shape[0]} samples leaves none to train on"
            )
        X_train, X_val, Y_train, _, _, y_val = train_test_split(
            X, Y, y, test_size=params["validation_fraction"], stratify=stratify,
            random_state=int(rng.integers(np.iinfo(np.int32).max)),
        )
        return np.ascontiguousarray(X_train), X_val, np.ascontiguousarray(Y_train), y_val

    def _one_epoch(self, net, X, Y, lr, params, rng):
        costs = net.train(
            X, Y, epochs=1, lr=lr, batch_size=params["batch_size"], shuffle=params["shuffle"], seed=rng
        )
        return float(costs[0])

    def _partial_fit(self, X, y, classes=None):
        params = self._checked_params()
        first = not self.__sklearn_is_fitted__()
        X, y = self._validate(X, y, params, reset=first)
        if first:
            self._rng = self._generator()
            encoding = self._fit_encoding(y, classes)
            Y = self._encode(y, encoding)
            net = self._new_network(X.shape[1], Y.shape[1], params, self._rng)
            loss_curve = []
        else:
            encoding = self._encoding_
            self._check_warm_targets(y, encoding)
            Y = self._encode(y, encoding)
            net = copy.deepcopy(self.network_)  # trained on the side: see _atomically
            loss_curve = list(self.loss_curve_)
        loss = self._one_epoch(net, X, Y, params["lr"], params, self._rng)
        if params["verbose"]:
            print(f"Iteration {len(loss_curve) + 1}, loss = {loss:.8f}")
        self.network_ = net
        self._encoding_ = encoding
        for name, value in encoding.items():
            setattr(self, name, value)
        self.n_outputs_ = Y.shape[1]
        self.loss_curve_ = loss_curve + [loss]
        self.n_iter_ = len(self.loss_curve_)
        self.best_loss_ = min(self.loss_curve_)
        self.validation_scores_ = self.best_validation_score_ = None
        return self

    def _check_warm_targets(self, y, encoding):
        """Targets of a warm start or a later partial_fit must fit the encoding."""

    def _outputs(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.network_.dtype, order="C")
        return self.network_.forward(X)


class BPClassifier(ClassifierMixin, _BaseBP):
    """A classifier: a fully connected sigmoid network trained by backpropagation.

    Wraps ``fastbp.Network`` (squared-error cost, gradient descent; online
    learning with the default ``batch_size=1``).  Standardise the features
    first (e.g. ``StandardScaler`` in a ``Pipeline``): sigmoid units learn
    slowly from large inputs.

    **Class encoding.** Two classes: one sigmoid output ``o``, trained towards
    0 for ``classes_[0]`` and 1 for ``classes_[1]``; ``predict_proba`` is
    ``[1 - o, o]`` and ``predict`` picks ``classes_[1]`` when ``o > 0.5``.
    More classes: one output per class, trained towards one-hot targets; the
    outputs are independent sigmoids (no softmax), so ``predict_proba``
    divides each row by its sum to make it sum to 1 (a row that is all zeros,
    possible only after underflow, becomes uniform), and ``predict`` picks the
    largest output.  A **multilabel** indicator ``y`` (n_samples, n_labels) of
    0/1 is supported: one sigmoid per label, ``predict`` thresholds each at
    0.5, ``predict_proba`` returns the raw outputs (n_samples, n_labels), one
    probability per label, like ``MLPClassifier``.  Multiclass-multioutput
    targets are refused.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the hidden layers; ``()`` for none (inputs wired straight to
        the outputs).
    learning_rate_init : float, default=1.0
        Gradient-descent step size ``lr`` of ``Network.train`` at the start of
        each fit.  With ``batch_size > 1`` the gradient is averaged over the
        batch, so larger batches usually want a larger rate.
    learning_rate : {"adaptive", "constant"}, default="adaptive"
        ``"adaptive"``: when training stalls (see ``n_iter_no_change``) the
        learning rate is divided by 5, at most three times; the next stall
        ends training.  Large steps escape the sigmoid's plateaus early on,
        smaller ones then average out the noise of online updates.
        ``"constant"``: the first stall ends training.  ``partial_fit``
        always uses ``learning_rate_init``.
    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).
    batch_size : int, default=1
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
    n_iter_no_change : int, default=20
        This many consecutive epochs without progress (see ``tol``) is a
        stall: it divides the learning rate or ends training (see
        ``learning_rate``).
    warm_start : bool, default=False
        When fitted already, continue training the current network instead of
        starting afresh (the classes must be the same).
    dtype : {"float64", "float32"}, default="float64"
        Floating-point type of the network.
    backend : None or str, default=None
        fastbp backend (``"cython"``, ``"python"``); None for the default.
    verbose : bool or int, default=False
        Print the loss after each epoch.

    Attributes
    ----------
    network_ : fastbp.Network
        The trained network (``network_.save(path)`` writes a model file).
    classes_ : ndarray
        The class labels (for multilabel ``y``, the label indices).
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape ``(n_in, n_out)``, as in ``MLPClassifier``: the
        transpose of fastbp's ``network_.weights[l]`` ``(n_out, n_in)``.
        Read-only live views.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape ``(n_out,)``.  Read-only live views.
    loss_curve_ : list of float
        fastbp's mean per-sample cost ``J = 1/2 sum (t - o)^2`` of each epoch,
        on the encoded targets ``t``, measured during the epoch (each sample's
        J before its update).
    n_iter_ : int
        Epochs run (all calls, with warm start or partial_fit).
    n_outputs_ : int
        Sigmoid outputs of the network.
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _validate_y(self, y):
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

    def _fit_encoding(self, y, classes=None):
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

    def _check_warm_targets(self, y, encoding):
        classes = encoding["classes_"]
        if y.ndim == 2:
            if not encoding["_label_binarizer"].y_type_.startswith("multilabel") or y.shape[1] != len(classes):
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

    def _encode(self, y, encoding):
        return encoding["_label_binarizer"].transform(y).astype(np.float64)

    def _decode(self, outputs, encoding):
        return encoding["_label_binarizer"].inverse_transform(outputs)

    def _validation_score(self, y_true, y_pred):
        return accuracy_score(y_true, y_pred)

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``X``, ``y`` (no early stopping, no convergence
        check); returns ``self``.  The first call needs ``classes``, every
        class that will ever appear (for a multilabel ``y``, the label indices
        ``range(n_labels)``); later calls continue from the current network."""
        if classes is None and not self.__sklearn_is_fitted__():
            raise ValueError("classes must be passed on the first call to partial_fit (every class y will hold)")
        return self._atomically(lambda: self._partial_fit(X, y, classes))

    def predict(self, X):
        """The predicted class of each row of ``X`` (for multilabel ``y``, a
        0/1 indicator row: each output thresholded at 0.5)."""
        return self._decode(self._outputs(X), self._encoding_)

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes): ``[1 - o, o]`` for two
        classes, the outputs divided by their row sum for more; for a
        multilabel ``y``, the raw outputs (one probability per label)."""
        outputs = self._outputs(X).astype(np.float64)
        kind = self._label_binarizer.y_type_
        if kind == "binary":
            return np.hstack([1.0 - outputs, outputs])
        if kind.startswith("multilabel"):
            return outputs
        sums = outputs.sum(axis=1, keepdims=True)
        uniform = np.full_like(outputs, 1.0 / outputs.shape[1])
        return np.divide(outputs, sums, out=uniform, where=sums > 0)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class BPRegressor(RegressorMixin, _BaseBP):
    """A regressor: a fully connected sigmoid network trained by backpropagation.

    Wraps ``fastbp.Network`` (squared-error cost, gradient descent; online
    learning with the default ``batch_size=1``).  Standardise the features
    first (e.g. ``StandardScaler`` in a ``Pipeline``).

    **Target scaling.** Sigmoid outputs live in (0, 1), so each target column
    ``y_j`` is mapped, during training, by ``t = 0.5 + (y_j - y_center_[j]) /
    y_scale_[j]``, where ``y_center_`` is the midpoint of the column's
    training range and ``y_scale_ = (max - min) / 0.8``: the training range
    ``[min, max]`` becomes ``[0.1, 0.9]``.  ``predict`` inverts the map:
    ``y = y_center_ + (o - 0.5) * y_scale_``.  Predictions are therefore
    bounded to ``[min - span/8, max + span/8]`` (the image of (0, 1)), with
    ``span = max - min``.  A constant column gets ``y_scale_ = 1`` (t = 0.5).
    The map is fixed by the first fit: a later ``partial_fit`` or warm-start
    ``fit`` with a target outside the representable interval raises
    ``ValueError`` (the sigmoid could never reach it).

    Parameters
    ----------
    Same as ``BPClassifier``; with ``early_stopping``, the validation score
    is R^2 (split not stratified).

    Attributes
    ----------
    network_ : fastbp.Network
        The trained network (``network_.save(path)`` writes a model file).
    y_center_, y_scale_ : ndarray of shape (n_outputs_,)
        The target scaling above.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape ``(n_in, n_out)``, as in ``MLPRegressor``: the
        transpose of fastbp's ``network_.weights[l]`` ``(n_out, n_in)``.
        Read-only live views.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape ``(n_out,)``.  Read-only live views.
    loss_curve_ : list of float
        fastbp's mean per-sample cost ``J`` of each epoch on the *scaled*
        targets, measured during the epoch.
    n_iter_, n_outputs_, n_features_in_, feature_names_in_, best_loss_,
    validation_scores_, best_validation_score_
        As in ``BPClassifier`` (validation scores are R^2).

    ``predict`` returns 1-D predictions when ``y`` was 1-D, (n_samples,
    n_outputs) when it was 2-D.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _validate_y(self, y):
        return y

    def _fit_encoding(self, y, classes=None):
        Y = y.reshape(len(y), -1).astype(np.float64)
        low, high = Y.min(axis=0), Y.max(axis=0)
        with np.errstate(over="ignore"):
            span = high - low
            center = low + span / 2
        if not (np.isfinite(span).all() and np.isfinite(center).all()):
            raise ValueError(
                f"y spans too wide a range to scale in float64 (min {low.tolist()}, max {high.tolist()}); rescale it"
            )
        scale = np.where(span > 0, span / (TARGET_HIGH - TARGET_LOW), 1.0)
        return {"y_center_": center, "y_scale_": scale, "_y_ndim": y.ndim}

    def _encode(self, y, encoding):
        Y = y.reshape(len(y), -1).astype(np.float64)
        if Y.shape[1] != len(encoding["y_center_"]):
            raise ValueError(
                f"y has {Y.shape[1]} target columns but the model was fitted on {len(encoding['y_center_'])}"
            )
        T = 0.5 + (Y - encoding["y_center_"]) / encoding["y_scale_"]
        outside = (T <= 0) | (T >= 1)
        if outside.any():
            row, column = np.argwhere(outside)[0]
            low = encoding["y_center_"] - encoding["y_scale_"] / 2
            high = encoding["y_center_"] + encoding["y_scale_"] / 2
            raise ValueError(
                f"y[{row}] = {Y[row, column]} (target column {column}) is outside ({low[column]}, {high[column]}), "
                "the range this model's sigmoid outputs can represent: the target scaling was fixed by the "
                "first fit. Fit afresh (warm_start=False) on data that spans the whole target range."
            )
        return T

    def _decode(self, outputs, encoding):
        y = encoding["y_center_"] + (outputs.astype(np.float64) - 0.5) * encoding["y_scale_"]
        return y.ravel() if encoding["_y_ndim"] == 1 else y

    def _validation_score(self, y_true, y_pred):
        return r2_score(y_true, y_pred)

    def partial_fit(self, X, y):
        """One epoch over ``X``, ``y`` (no early stopping, no convergence
        check); returns ``self``.  The first call fixes the target scaling."""
        return self._atomically(lambda: self._partial_fit(X, y))

    def predict(self, X):
        """Predicted targets, mapped back from the sigmoid outputs (see the
        class docstring)."""
        return self._decode(self._outputs(X), self._encoding_)
