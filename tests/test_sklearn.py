"""fastbp.sklearn: scikit-learn's estimator checks, the activations, outputs
and losses, the target encodings, the training loop (tol, n_iter_no_change, early stopping, warm start, partial_fit)
and the estimators inside scikit-learn's tools (Pipeline, GridSearchCV, clone,
pickle/joblib)."""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

import joblib
from sklearn.base import clone
from sklearn.datasets import load_iris, make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastbp
from fastbp.sklearn import ACTIVATIONS, AUTO_LEARNING_RATES, BPClassifier, BPRegressor

AUTO = AUTO_LEARNING_RATES["classifier"]
PLAIN_SGD = dict(solver="sgd", momentum=0.0, alpha=0.0)  # the note's gradient descent


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=2, random_state=0)
    return StandardScaler().fit_transform(X), y


def sine(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 1))
    return X, np.sin(2 * X[:, 0])


# ----------------------------------------------------------------------
# scikit-learn's own checks (every one passes: no expected failures)
# ----------------------------------------------------------------------


# The defaults (classifier "rprop", regressor "adam") and the other solvers.
@parametrize_with_checks(
    [
        BPClassifier(),
        BPRegressor(),
        BPClassifier(solver="sgd"),
        BPClassifier(solver="adam"),
        BPRegressor(solver="sgd"),
        BPRegressor(solver="rprop"),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # A few checks fit on tiny or random data on purpose; not reaching
        # tol in max_iter epochs there is expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_import_fastbp_does_not_import_sklearn(tmp_path):
    code = "import sys, fastbp; print(fastbp.__file__); print('sklearn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stderr
    path, imported = result.stdout.split()
    assert path == fastbp.__file__
    assert imported == "False"


# ----------------------------------------------------------------------
# Classifier: the class encodings and predict_proba
# ----------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_binary_one_output_and_proba(blobs, loss):
    X, y = blobs
    labels = np.array(["no", "yes"])[y]
    clf = BPClassifier(hidden_layer_sizes=(8,), loss=loss, random_state=0).fit(X, labels)
    assert clf.n_outputs_ == 1
    assert clf.out_activation_ == "logistic"
    assert clf.network_.activations == (ACTIVATIONS[clf.activation], "sigmoid")
    assert clf.network_.loss == {"log_loss": "cross_entropy", "squared_error": "squared_error"}[loss]
    assert list(clf.classes_) == ["no", "yes"]
    o = clf.network_.forward(X)[:, 0]
    np.testing.assert_array_equal(clf.predict_proba(X), np.column_stack([1 - o, o]))
    np.testing.assert_array_equal(clf.predict(X), np.where(o > 0.5, "yes", "no"))
    assert clf.score(X, labels) > 0.95


def test_multiclass_softmax_is_the_proba(iris):
    X, y = iris
    clf = BPClassifier(hidden_layer_sizes=(10,), random_state=0).fit(X, y)
    assert clf.n_outputs_ == 3
    assert clf.out_activation_ == "softmax"
    assert clf.network_.activations == (ACTIVATIONS[clf.activation], "softmax")
    assert clf.network_.loss == "cross_entropy"
    outputs = clf.network_.forward(X)
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(proba, outputs)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[outputs.argmax(axis=1)])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.loss_ == clf.loss_curve_[-1]
    assert clf.score(X, y) > 0.9


def test_squared_error_multiclass_one_hot_sigmoids_and_normalised_proba(iris):
    X, y = iris
    clf = BPClassifier(
        hidden_layer_sizes=(10,),
        loss="squared_error",
        activation="logistic",
        learning_rate_init=1.0,
        random_state=0,
    ).fit(X, y)
    assert clf.n_outputs_ == 3
    assert clf.out_activation_ == "logistic"
    assert clf.network_.activations == ("sigmoid", "sigmoid") and clf.network_.loss == "squared_error"
    outputs = clf.network_.forward(X)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba, outputs / outputs.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[outputs.argmax(axis=1)])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.score(X, y) > 0.9


def test_multilabel_one_sigmoid_per_label():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(axis=1) > 0]).astype(int)
    clf = BPClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.network_.loss == "cross_entropy"
    outputs = clf.network_.forward(X)
    assert outputs.shape == (200, 3)
    np.testing.assert_array_equal(clf.predict_proba(X), outputs)
    np.testing.assert_array_equal(clf.predict(X), (outputs > 0.5).astype(int))
    assert (clf.predict(X) == Y).mean() > 0.95
    incremental = BPClassifier(hidden_layer_sizes=(8,), random_state=0).partial_fit(X, Y, classes=[0, 1, 2])
    assert incremental.predict_proba(X).shape == (200, 3)
    with pytest.raises(ValueError, match=r"must be the label indices \[0, 1, 2\]"):
        BPClassifier().partial_fit(X, Y, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="fitted on a multilabel y of 3 labels"):
        clf.partial_fit(X, Y[:, 0])


def test_classifier_refuses_what_it_cannot_encode(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="1 class"):
        BPClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        BPClassifier().fit(X, np.column_stack([y, 2 * y]))
    with pytest.raises(ValueError, match="Unknown label type"):
        BPClassifier().fit(X, X[:, 0])


def test_coefs_are_transposed_read_only_views(iris):
    X, y = iris
    clf = BPClassifier(hidden_layer_sizes=(5, 4), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert [W.shape for W in clf.coefs_] == [(4, 5), (5, 4), (4, 3)]
    for W, W_net, b, b_net in zip(clf.coefs_, clf.network_.weights, clf.intercepts_, clf.network_.biases):
        np.testing.assert_array_equal(W, W_net.T)
        np.testing.assert_array_equal(b, b_net)
    with pytest.raises(ValueError, match="read-only"):
        clf.coefs_[0][0, 0] = 1.0


def test_unfitted_estimator_raises_not_fitted(iris):
    with pytest.raises(NotFittedError):
        BPClassifier().predict(iris[0])
    with pytest.raises(NotFittedError):
        _ = BPRegressor().coefs_


# ----------------------------------------------------------------------
# Regressor: the documented target scaling
# ----------------------------------------------------------------------


def test_regressor_identity_outputs_are_the_predictions_unscaled():
    X, y = sine()
    y = 3 * y + 10
    reg = BPRegressor(
        hidden_layer_sizes=(20,), activation="tanh", learning_rate_init=0.01, random_state=0
    ).fit(X, y)
    assert reg.out_activation_ == "identity"
    assert reg.network_.activations == (ACTIVATIONS[reg.activation], "identity")
    assert reg.network_.loss == "squared_error"
    assert not hasattr(reg, "y_center_") and not hasattr(reg, "y_scale_")
    np.testing.assert_array_equal(reg.predict(X), reg.network_.forward(X)[:, 0])
    assert reg.score(X, y) > 0.9


def test_regressor_identity_outputs_extrapolate():
    # A linear network on a line: nothing bounds the predictions to the training range.
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(100, 1))
    reg = BPRegressor(
        hidden_layer_sizes=(4,), activation="identity", learning_rate_init=0.01, random_state=0
    ).fit(X, 3 * X[:, 0] + 1)
    np.testing.assert_allclose(reg.predict([[3.0]]), [10.0], rtol=0.02)


def test_regressor_logistic_maps_the_training_range_to_0_1_0_9_and_back():
    X, y = sine()
    y = 3 * y + 10
    reg = BPRegressor(
        hidden_layer_sizes=(20,),
        activation="logistic",
        out_activation="logistic",
        learning_rate_init=1.0,
        **PLAIN_SGD,
        random_state=0,
    ).fit(X, y)
    assert reg.out_activation_ == "logistic"
    np.testing.assert_allclose(
        0.5 + (np.array([y.min(), y.max()]) - reg.y_center_) / reg.y_scale_, [0.1, 0.9]
    )
    outputs = reg.network_.forward(X)[:, 0]
    np.testing.assert_allclose(reg.predict(X), reg.y_center_ + (outputs - 0.5) * reg.y_scale_)
    assert reg.score(X, y) > 0.9
    # Refitting with identity outputs drops the scaling.
    reg.set_params(out_activation="identity", learning_rate_init=0.01).fit(X, y)
    assert not hasattr(reg, "y_center_") and reg.out_activation_ == "identity"


def test_regressor_logistic_predictions_follow_an_affine_change_of_target(iris):
    X, _ = iris
    y = X[:, 0] * X[:, 1]
    base = BPRegressor(hidden_layer_sizes=(10,), out_activation="logistic", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        p = clone(base).fit(X, y).predict(X)
        p_shifted = clone(base).fit(X, 1e4 * y - 5e5).predict(X)
    # The scaled targets, hence the trained networks, are the same.
    np.testing.assert_allclose(p_shifted, 1e4 * p - 5e5, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("out_activation", ["identity", "logistic"])
def test_regressor_multioutput_and_shapes(out_activation):
    X, y = sine()
    Y = np.column_stack([y, -2 * y, np.full_like(y, 7.0)])
    # logistic: the note's model, as the regressor was before it had other activations.
    notes = (
        dict(activation="logistic", learning_rate_init=1.0, **PLAIN_SGD)
        if out_activation == "logistic"
        else dict(activation="tanh", learning_rate_init=0.01, **PLAIN_SGD)
    )
    reg = BPRegressor(
        hidden_layer_sizes=(20,), out_activation=out_activation, max_iter=400, random_state=0, **notes
    ).fit(X, Y)
    assert reg.predict(X).shape == (len(X), 3)
    if out_activation == "logistic":
        assert reg.y_scale_[2] == 1.0  # a constant column is centred at 0.5
    # Raw targets of 7 are harder for online steps than a scaled 0.5: looser there.
    np.testing.assert_allclose(reg.predict(X)[:, 2], 7.0, atol=0.05 if out_activation == "logistic" else 0.1)
    assert reg.score(X, Y) > 0.6  # mean R^2 over the columns, the constant one scoring 0 or less
    with pytest.warns(ConvergenceWarning):
        column = BPRegressor(out_activation=out_activation, max_iter=2, random_state=0).fit(X, y[:, None])
    assert column.predict(X).shape == (len(X), 1)
    with pytest.raises(ValueError, match="y has 1 target columns but the model was fitted on 3"):
        reg.partial_fit(X, y)


def test_regressor_refuses_targets_its_fixed_scaling_cannot_reach():
    X, y = sine()
    reg = BPRegressor(hidden_layer_sizes=(4,), out_activation="logistic", random_state=0).partial_fit(X, y)
    # The first call fixed [min, max] -> [0.1, 0.9]: (0, 1) is [min - span/8, max + span/8].
    span = y.max() - y.min()
    reg.partial_fit(X[:1], [y.max() + span / 10])
    before = [W.copy() for W in reg.coefs_]
    with pytest.raises(ValueError, match=r"outside .* the range this model's sigmoid outputs can represent"):
        reg.partial_fit(X[:1], [y.max() + span / 4])
    reg.set_params(warm_start=True)
    with pytest.raises(ValueError, match="target scaling was fixed by the first fit"):
        reg.fit(X, y - span)
    assert all(np.array_equal(a, b) for a, b in zip(before, reg.coefs_))
    with pytest.raises(ValueError, match="too wide a range"):
        BPRegressor(out_activation="logistic").fit(X[:2], [-1e308, 1e308])
    # Identity outputs have no range to leave.
    identity = BPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, y)
    identity.partial_fit(X[:1], [y.max() + span])


# ----------------------------------------------------------------------
# Activations, outputs and losses: scikit-learn's names -> fastbp's model
# ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "activation, fastbp_name",
    [
        ("logistic", "sigmoid"),
        ("tanh", "tanh"),
        ("relu", "relu"),
        ("identity", "identity"),
        ("leaky_relu", "leaky_relu"),
    ],
)
def test_activation_names_map_to_fastbp(iris, activation, fastbp_name):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BPClassifier(hidden_layer_sizes=(6, 5), activation=activation, max_iter=3, random_state=0).fit(
            X, y
        )
        reg = BPRegressor(hidden_layer_sizes=(6,), activation=activation, max_iter=3, random_state=0).fit(
            X, y
        )
    assert clf.network_.activations == (fastbp_name, fastbp_name, "softmax")
    assert reg.network_.activations == (fastbp_name, "identity")


def test_one_activation_per_hidden_layer(iris):
    X, y = iris
    clf = BPClassifier(hidden_layer_sizes=(8, 6), activation=("tanh", "logistic"), random_state=0).fit(X, y)
    assert clf.network_.activations == ("tanh", "sigmoid", "softmax")
    assert clf.score(X, y) > 0.9
    no_hidden = BPClassifier(hidden_layer_sizes=(), activation=(), random_state=0).fit(X, y)
    assert no_hidden.network_.activations == ("softmax",)


def test_the_notes_model_is_reachable_and_unchanged(iris):
    """activation="logistic", loss="squared_error" is the estimator as it was:
    an all-sigmoid squared-error Network, trained exactly like one built by hand."""
    X, y = iris
    clf = BPClassifier(
        hidden_layer_sizes=(5,),
        activation="logistic",
        loss="squared_error",
        learning_rate_init=1.0,
        **PLAIN_SGD,
        batch_size=1,
        learning_rate="constant",
        max_iter=2,
        tol=0.0,
        n_iter_no_change=3,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    rng = np.random.default_rng(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    net = fastbp.Network([4, 5, 3], seed=rng)
    costs = [net.train(X, np.eye(3)[y], epochs=1, lr=1.0, shuffle=True, seed=rng)[0] for _ in range(2)]
    assert net.activations == clf.network_.activations == ("sigmoid", "sigmoid")
    assert clf.loss_curve_ == costs
    for W, W_hand in zip(clf.network_.weights, net.weights):
        np.testing.assert_array_equal(W, W_hand)


@pytest.mark.parametrize(
    "change", [dict(activation="relu"), dict(loss="squared_error"), dict(hidden_layer_sizes=(7,))]
)
def test_warm_start_and_partial_fit_refuse_a_changed_model(iris, change):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BPClassifier(hidden_layer_sizes=(6,), max_iter=2, warm_start=True, random_state=0).fit(X, y)
    weights = [W.copy() for W in clf.coefs_]
    clf.set_params(**change)
    for fit in (lambda: clf.fit(X, y), lambda: clf.partial_fit(X, y)):
        with pytest.raises(ValueError, match=r"the fitted network has .* but the parameters now ask for"):
            fit()
    assert all(np.array_equal(a, b) for a, b in zip(weights, clf.coefs_))
    reg = BPRegressor(hidden_layer_sizes=(6,), activation="relu", random_state=0).partial_fit(X, y)
    with pytest.raises(ValueError, match="activations \\('relu', 'logistic'\\)"):
        reg.set_params(out_activation="logistic").partial_fit(X, y)


# ----------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------


@pytest.mark.parametrize("schedule, epochs", [("constant", 1 + 3), ("adaptive", 1 + 4 * 3)])
def test_stalls_divide_the_learning_rate_then_stop(iris, schedule, epochs, capsys):
    X, y = iris
    # With tol this large only the first epoch counts as progress: every
    # n_iter_no_change=3 epochs after it are a stall.
    clf = BPClassifier(
        hidden_layer_sizes=(5,),
        tol=1e9,
        n_iter_no_change=3,
        learning_rate=schedule,
        learning_rate_init=1.0,
        **PLAIN_SGD,
        verbose=True,
        random_state=0,
    ).fit(X, y)
    assert clf.n_iter_ == len(clf.loss_curve_) == epochs
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None
    printed = capsys.readouterr().out
    assert printed.count("Iteration") == epochs
    divisions = [line.split()[-1] for line in printed.splitlines() if "learning rate now" in line]
    assert divisions == ([] if schedule == "constant" else ["0.2", "0.04", "0.008"])


def test_converges_before_max_iter_or_warns(iris):
    X, y = iris
    clf = BPClassifier(hidden_layer_sizes=(10,), random_state=0).fit(X, y)
    assert clf.n_iter_ < clf.max_iter
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 5
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        BPClassifier(max_iter=2, random_state=0).fit(X, y)


def test_early_stopping_keeps_the_network_of_the_best_validation_score(iris):
    X, y = iris
    params = dict(
        hidden_layer_sizes=(5,),
        learning_rate_init=2.0,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=4,
        tol=0.0,
        random_state=3,
    )
    clf = BPClassifier(**params).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(scores)
    assert clf.best_loss_ is None
    best_epoch = int(np.argmax(scores)) + 1  # the first epoch reaching the best score
    # A run cut at the best epoch trains the same network, epoch for epoch.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cut = BPClassifier(**params, max_iter=best_epoch).fit(X, y)
    for W, W_cut in zip(clf.coefs_, cut.coefs_):
        np.testing.assert_array_equal(W, W_cut)
    with pytest.raises(ValueError, match="leaves none to train on"):
        BPClassifier(early_stopping=True, validation_fraction=0.9).fit(X[[0, 100]], y[[0, 100]])


def test_same_random_state_same_model(blobs):
    X, y = blobs
    a, b, c = (BPClassifier(hidden_layer_sizes=(6,), random_state=s).fit(X, y) for s in (1, 1, 2))
    assert all(np.array_equal(Wa, Wb) for Wa, Wb in zip(a.coefs_, b.coefs_))
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def _no_stop(max_iter):
    """Parameters of a run of exactly max_iter epochs in a fixed order."""
    return dict(
        hidden_layer_sizes=(6,),
        shuffle=False,
        tol=0.0,
        n_iter_no_change=max_iter + 1,
        max_iter=max_iter,
        random_state=0,
    )


def test_warm_start_continues_from_the_fitted_network(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        straight = BPClassifier(**_no_stop(10)).fit(X, y)
        warm = BPClassifier(**_no_stop(10), warm_start=True).set_params(max_iter=4).fit(X, y)
        first_curve = list(warm.loss_curve_)
        warm.set_params(max_iter=6).fit(X, y)
    assert warm.n_iter_ == 10
    assert warm.loss_curve_[:4] == first_curve
    np.testing.assert_array_equal(warm.loss_curve_, straight.loss_curve_)
    for W, W_straight in zip(warm.coefs_, straight.coefs_):
        np.testing.assert_array_equal(W, W_straight)
    with pytest.warns(ConvergenceWarning):
        two_classes = BPClassifier(**_no_stop(1), warm_start=True).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="not among the classes"):
        two_classes.fit(X, y)


def test_partial_fit_is_one_epoch_per_call(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = BPClassifier(**_no_stop(3)).fit(X, y)
    incremental = BPClassifier(**_no_stop(3))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        incremental.partial_fit(X, y)
    assert incremental.partial_fit(X, y, classes=[0, 1, 2]) is incremental
    incremental.partial_fit(X, y).partial_fit(X, y)
    assert incremental.n_iter_ == 3
    np.testing.assert_array_equal(incremental.loss_curve_, fitted.loss_curve_)
    for W, W_fitted in zip(incremental.coefs_, fitted.coefs_):
        np.testing.assert_array_equal(W, W_fitted)
    with pytest.raises(ValueError, match=r"labels \[7\] that are not among the classes \[0, 1, 2\]"):
        incremental.partial_fit(X[:2], [0, 7])


def test_partial_fit_sees_classes_before_they_appear(iris):
    X, y = iris
    clf = BPClassifier(hidden_layer_sizes=(6,), random_state=0).partial_fit(
        X[y == 0], y[y == 0], classes=[0, 1, 2]
    )
    assert list(clf.classes_) == [0, 1, 2] and clf.n_outputs_ == 3
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.8


@pytest.mark.parametrize("batch_size", [4, 1000])
def test_mini_batches(iris, batch_size):
    X, y = iris
    clf = BPClassifier(
        hidden_layer_sizes=(10,), batch_size=batch_size, learning_rate_init=0.1, max_iter=300, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 2
    assert clf.score(X, y) > 0.8


def test_a_failed_fit_leaves_the_estimator_as_it_was(iris, monkeypatch):
    X, y = iris
    clf = BPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    clf.set_params(warm_start=True)
    before = dict(vars(clf))

    def unchanged():
        return vars(clf).keys() == before.keys() and all(
            vars(clf)[name] is value for name, value in before.items()
        )

    weights = [W.copy() for W in clf.coefs_]

    train = fastbp.Network.train
    calls = []

    def diverges_on_the_third_epoch(net, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise fastbp.TrainingDivergedError("diverged (simulated)")
        return train(net, *args, **kwargs)

    monkeypatch.setattr(fastbp.Network, "train", diverges_on_the_third_epoch)
    with pytest.raises(fastbp.TrainingDivergedError, match="simulated"):
        clf.fit(X, y)
    assert unchanged()
    assert all(np.array_equal(a, b) for a, b in zip(weights, clf.coefs_))
    calls.clear()
    clf.partial_fit(X, y).partial_fit(X, y)
    weights = [W.copy() for W in clf.coefs_]
    with pytest.raises(fastbp.TrainingDivergedError, match="simulated"):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == before["n_iter_"] + 2
    assert all(np.array_equal(a, b) for a, b in zip(weights, clf.coefs_))
    with pytest.raises(ValueError, match="X has 2 features"):
        clf.fit(X[:, :2], y)  # warm start: the features must match
    assert clf.n_features_in_ == 4

    calls.clear()
    fresh = BPClassifier(max_iter=5)
    with pytest.raises(fastbp.TrainingDivergedError):
        fresh.fit(X, y)
    assert not hasattr(fresh, "n_features_in_")
    with pytest.raises(NotFittedError):
        fresh.predict(X)


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(learning_rate_init=0), ValueError, "learning_rate_init must be > 0"),
        (dict(learning_rate_init="fast"), ValueError, "learning_rate_init must be 'auto' or a number > 0"),
        (dict(learning_rate_init=None), TypeError, "learning_rate_init must be a real number"),
        (dict(solver="lbfgs"), ValueError, "solver must be one of 'sgd', 'adam', 'rprop'"),
        (dict(solver=None), ValueError, "solver must be one of"),
        (dict(momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (dict(momentum=-0.1), ValueError, r"momentum must be in \[0, 1\)"),
        (dict(momentum="high"), TypeError, "momentum must be a real number"),
        (dict(nesterovs_momentum=1), TypeError, "nesterovs_momentum must be True or False"),
        (dict(alpha=-1e-4), ValueError, "alpha must be >= 0"),
        (dict(alpha=float("nan")), ValueError, "alpha must be finite"),
        (dict(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\)"),
        (dict(beta_2=-0.5), ValueError, r"beta_2 must be in \[0, 1\)"),
        (dict(epsilon=0.0), ValueError, "epsilon must be > 0"),
        (dict(solver="adam", beta_1=True), TypeError, "beta_1 must be a real number"),
        (dict(learning_rate="invscaling"), ValueError, "learning_rate must be one of"),
        (dict(activation="softmax"), ValueError, "activation='softmax' is not one of 'identity', 'logistic'"),
        (dict(activation="sigmoid"), ValueError, "activation='sigmoid' is not one of"),
        (dict(activation=None), TypeError, "activation must be a str .* or a list/tuple of them"),
        (
            dict(hidden_layer_sizes=(4, 4), activation=("relu", 3)),
            TypeError,
            r"activation\[1\] must be a str",
        ),
        (
            dict(hidden_layer_sizes=(4, 4), activation=("relu", "swish")),
            ValueError,
            r"activation\[1\]='swish' is not one of",
        ),
        (dict(activation=("relu",) * 2), ValueError, r"2 names for hidden_layer_sizes=\(100,\)"),
        (dict(loss="cross_entropy"), ValueError, "loss must be one of 'log_loss', 'squared_error'"),
        (dict(loss=None), ValueError, "loss must be one of"),
        (dict(max_iter=1.5), TypeError, "max_iter must be an integer"),
        (dict(max_iter=0), ValueError, "max_iter must be >= 1"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (dict(hidden_layer_sizes="10"), TypeError, "hidden_layer_sizes must be a sequence"),
        (dict(hidden_layer_sizes=(10, 0)), ValueError, r"hidden_layer_sizes\[1\] must be >= 1"),
        (dict(shuffle=1), TypeError, "shuffle must be True or False"),
        (dict(tol=-1.0), ValueError, "tol must be >= 0"),
        (dict(validation_fraction=1.0), ValueError, r"validation_fraction must be in \(0, 1\)"),
        (dict(n_iter_no_change=0), ValueError, "n_iter_no_change must be >= 1"),
        (dict(dtype="int32"), TypeError, "dtype must be 'float32' or 'float64'"),
        (dict(backend="gpu"), ValueError, "gpu"),
        (dict(random_state=-1), ValueError, "random_state must be >= 0"),
        (
            dict(random_state=1.5),
            TypeError,
            "random_state must be None, an int or a numpy.random.RandomState",
        ),
    ],
)
def test_bad_parameters_are_named_in_the_error(blobs, params, error, message):
    X, y = blobs
    with pytest.raises(error, match=message):
        BPClassifier(**params).fit(X, y)


@pytest.mark.parametrize("value", ["softmax", "relu", None])
def test_bad_out_activation_is_named_in_the_error(value):
    X, y = sine()
    with pytest.raises(ValueError, match="out_activation must be one of 'identity', 'logistic'"):
        BPRegressor(out_activation=value).fit(X, y)


def test_dtype_and_backend_reach_the_network(blobs):
    X, y = blobs
    clf32 = BPClassifier(hidden_layer_sizes=(4,), dtype="float32", random_state=0).fit(X, y)
    assert clf32.network_.dtype == np.float32
    assert clf32.score(X, y) > 0.95
    kwargs = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        slow = BPClassifier(backend="python", **kwargs).fit(X, y)
        fast = BPClassifier(backend="cython", **kwargs).fit(X, y)
    assert slow.network_.backend == "python"
    np.testing.assert_allclose(slow.predict_proba(X), fast.predict_proba(X), rtol=1e-10)


def test_feature_names_in(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X, columns=["height", "weight"])
    clf = BPClassifier(hidden_layer_sizes=(4,), random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == ["height", "weight"]
    assert not hasattr(BPClassifier(hidden_layer_sizes=(4,), random_state=0).fit(X, y), "feature_names_in_")


# ----------------------------------------------------------------------
# Inside scikit-learn's tools
# ----------------------------------------------------------------------


def test_pipeline(iris):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), BPClassifier(hidden_layer_sizes=(10,), random_state=0)).fit(X, y)
    clf = BPClassifier(hidden_layer_sizes=(10,), random_state=0).fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_array_equal(pipe.predict_proba(X), clf.predict_proba(StandardScaler().fit_transform(X)))
    assert pipe.score(X, y) > 0.9


def test_grid_search_in_parallel_matches_serial(iris):
    X, y = iris
    grid = {"hidden_layer_sizes": [(4,), (8,)], "learning_rate_init": [0.01, 0.1]}
    estimator = BPClassifier(max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = GridSearchCV(estimator, grid, cv=3, n_jobs=1).fit(X, y)
        processes = GridSearchCV(estimator, grid, cv=3, n_jobs=2).fit(X, y)
        with joblib.parallel_backend("threading", n_jobs=2):
            threads = GridSearchCV(estimator, grid, cv=3, n_jobs=2).fit(X, y)
    for search in (processes, threads):
        np.testing.assert_array_equal(
            search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
        )
        assert search.best_params_ == serial.best_params_
    assert serial.best_score_ > 0.9


def test_clone_keeps_parameters_not_the_fit(blobs):
    X, y = blobs
    clf = BPClassifier(hidden_layer_sizes=(3,), learning_rate_init=0.7, random_state=5).fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "network_")
    np.testing.assert_array_equal(copy.fit(X, y).predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("Estimator", [BPClassifier, BPRegressor])
def test_pickle_and_joblib_round_trips(tmp_path, iris, Estimator):
    X, y = iris
    model = Estimator(hidden_layer_sizes=(5,), random_state=0).fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    copies = [pickle.loads(pickle.dumps(model)), joblib.load(tmp_path / "model.joblib")]
    for loaded in copies:
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        assert loaded.get_params() == model.get_params()
    # The copies train on independently, exactly as the original does
    # (the shuffling generator's state travels with them).
    model.partial_fit(X, y)
    for loaded in copies:
        loaded.partial_fit(X, y)
        for W, W_model in zip(loaded.coefs_, model.coefs_):
            np.testing.assert_array_equal(W, W_model)


# ----------------------------------------------------------------------
# Solvers: the optimizer objects, alpha, and the state kept between calls
# ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, expected",
    [
        (
            dict(solver="sgd", learning_rate_init=0.2, momentum=0.9, alpha=0.8, batch_size=16),
            fastbp.SGD(lr=0.2, momentum=0.9, nesterov=True, weight_decay=0.8 / 16),
        ),
        (
            dict(
                solver="sgd", learning_rate_init=0.2, momentum=0.9, nesterovs_momentum=False, batch_size=1000
            ),
            fastbp.SGD(lr=0.2, momentum=0.9),
        ),  # batch_size clipped to the 150 rows
        (
            dict(solver="sgd", momentum=0.0, nesterovs_momentum=True, alpha=0.3, batch_size=1000),
            fastbp.SGD(lr=AUTO["sgd"], weight_decay=0.3 / 150),
        ),  # Nesterov needs momentum: as scikit-learn, no effect
        (
            dict(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-6, alpha=0.01, batch_size=10),
            fastbp.Adam(lr=AUTO["adam"], betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01 / 10),
        ),
        (dict(solver="rprop", learning_rate_init=0.05, alpha=0.5, momentum=0.5), fastbp.RPROP(lr=0.05)),
    ],
)
def test_solvers_make_the_optimizer_asked_for(iris, params, expected):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, **params).fit(X, y)
    assert repr(clf.optimizer_) == repr(expected)
    assert clf.optimizer_.layer_sizes == clf.network_.layer_sizes
    updates = 1 if params["solver"] == "rprop" else -(-150 // min(params.get("batch_size", 16), 150))
    assert clf.optimizer_.steps == 2 * updates


@pytest.mark.parametrize("solver", ["sgd", "adam", "rprop"])
def test_learning_rate_init_auto_is_per_solver(iris, solver):
    X, y = iris
    assert BPClassifier().learning_rate_init == BPRegressor().learning_rate_init == "auto"
    for Estimator, kind in ((BPClassifier, "classifier"), (BPRegressor, "regressor")):
        model = Estimator(hidden_layer_sizes=(3,), solver=solver, random_state=0).partial_fit(
            X, y, *([[0, 1, 2]] if kind == "classifier" else [])
        )
        # sgd's rate is for no momentum, scaled by 1 - momentum (0.9 by default).
        assert (
            model.optimizer_.lr
            == AUTO_LEARNING_RATES[kind][solver] * ((1 - 0.9) if solver == "sgd" else 1)
            > 0
        )
    sgd = BPClassifier(hidden_layer_sizes=(3,), solver="sgd", momentum=0.5).partial_fit(
        X, y, classes=[0, 1, 2]
    )
    assert sgd.optimizer_.lr == AUTO["sgd"] * 0.5


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_alpha_is_mlpclassifiers_penalty_on_the_weights_and_also_decays_the_biases(iris, momentum):
    """One full-batch update from the same weights: the weights move exactly
    as MLPClassifier's (gradient + alpha * W / n_batch), the biases by
    lr * alpha / n_batch * b more (fastbp's weight decay applies to them too)."""
    from sklearn.neural_network import MLPClassifier

    X, y = iris
    common = dict(
        hidden_layer_sizes=(3,),
        activation="tanh",
        solver="sgd",
        learning_rate_init=0.1,
        momentum=momentum,
        nesterovs_momentum=False,
        alpha=0.5,
        batch_size=150,
        shuffle=False,
        random_state=0,
    )
    bp = BPClassifier(**common).partial_fit(X, y, classes=[0, 1, 2])
    assert bp.optimizer_.weight_decay == 0.5 / 150
    weights, biases = [W.copy() for W in bp.coefs_], [b.copy() for b in bp.intercepts_]
    bp.optimizer_.reset()  # a first step from these weights, as the MLP's below
    bp.partial_fit(X, y)
    mlp = MLPClassifier(**common).partial_fit(X, y, classes=[0, 1, 2])
    mlp.coefs_, mlp.intercepts_ = [W.copy() for W in weights], [b.copy() for b in biases]
    del mlp._optimizer  # a fresh optimizer (no velocity), as fastbp's
    mlp.partial_fit(X, y)
    for W_mlp, W in zip(mlp.coefs_, bp.coefs_):
        np.testing.assert_allclose(W, W_mlp, rtol=1e-12, atol=1e-15)
    for b_mlp, b, b_start in zip(mlp.intercepts_, bp.intercepts_, biases):
        np.testing.assert_allclose(b, b_mlp - 0.1 * 0.5 / 150 * b_start, rtol=1e-12, atol=1e-15)
        assert not np.allclose(b, b_mlp, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("solver", ["adam", "rprop", "sgd"])
def test_a_solver_trains_as_the_library_does(iris, solver):
    X, y = iris
    clf = BPClassifier(**_no_stop(3), solver=solver, momentum=0.5, learning_rate="constant", batch_size=8)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    rng = np.random.default_rng(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    net = fastbp.Network(
        [4, 6, 3], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=rng
    )
    optimizer = {
        "adam": fastbp.Adam(lr=AUTO["adam"]),
        "rprop": fastbp.RPROP(lr=AUTO["rprop"]),
        "sgd": fastbp.SGD(lr=AUTO["sgd"] * 0.5, momentum=0.5, nesterov=True),
    }[solver]
    batch = {} if solver == "rprop" else dict(batch_size=8)
    costs = [
        net.train(X, np.eye(3)[y], epochs=1, optimizer=optimizer, seed=rng, **batch)[0] for _ in range(3)
    ]
    assert clf.loss_curve_ == costs
    for W, W_hand in zip(clf.network_.weights + clf.network_.biases, net.weights + net.biases):
        np.testing.assert_array_equal(W, W_hand)


@pytest.mark.parametrize("solver", ["adam", "sgd", "rprop"])
def test_partial_fit_and_warm_start_keep_the_optimizer_state(iris, solver):
    """k partial_fit calls, or warm-started fits of a + b epochs, are one fit
    of k (a + b) epochs: the optimizer's state (Adam's moments and step count,
    the velocity, RPROP's step sizes) carries over.  Without it they differ."""
    X, y = iris
    params = dict(_no_stop(6), solver=solver, momentum=0.9, learning_rate="constant")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        straight = BPClassifier(**params).fit(X, y)
        warm = BPClassifier(**params, warm_start=True).set_params(max_iter=2).fit(X, y)
        warm.set_params(max_iter=4).fit(X, y)
        forgetful = BPClassifier(**params, warm_start=True).set_params(max_iter=2).fit(X, y)
        forgetful.optimizer_.reset()
        forgetful.set_params(max_iter=4).fit(X, y)
    incremental = BPClassifier(**params)
    for _ in range(6):
        incremental.partial_fit(X, y, classes=[0, 1, 2])
    assert straight.optimizer_.steps == warm.optimizer_.steps == incremental.optimizer_.steps
    for W, W_warm, W_inc, _W_forgetful in zip(
        straight.coefs_, warm.coefs_, incremental.coefs_, forgetful.coefs_
    ):
        np.testing.assert_array_equal(W_warm, W)
        np.testing.assert_array_equal(W_inc, W)
    assert not all(np.array_equal(W, W_f) for W, W_f in zip(straight.coefs_, forgetful.coefs_))


def test_a_changed_solver_or_parameter_starts_a_new_optimizer(iris):
    X, y = iris
    clf = BPClassifier(**_no_stop(2), solver="adam", warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        kept = clf.optimizer_
        clf.fit(X, y)
        assert clf.optimizer_.steps == 2 * kept.steps  # continued (a copy: the fit trains on the side)
        clf.set_params(beta_1=0.5).fit(X, y)
        assert clf.optimizer_.betas == (0.5, 0.999) and clf.optimizer_.steps == kept.steps
        clf.set_params(solver="rprop").partial_fit(X, y)
        assert isinstance(clf.optimizer_, fastbp.RPROP) and clf.optimizer_.steps == 1
        clf.set_params(learning_rate_init=0.02).partial_fit(
            X, y
        )  # the step size is not the optimizer's identity
        assert isinstance(clf.optimizer_, fastbp.RPROP) and clf.optimizer_.steps == 2


def test_rprop_is_full_batch_and_its_steps_are_not_divided(iris, capsys):
    X, y = iris
    clf = BPClassifier(
        hidden_layer_sizes=(5,),
        solver="rprop",
        batch_size=4,
        tol=1e9,
        n_iter_no_change=3,
        verbose=True,
        random_state=0,
    ).fit(X, y)  # learning_rate="adaptive": no effect on RPROP
    assert clf.n_iter_ == 1 + 3 and clf.optimizer_.steps == clf.n_iter_  # one update per epoch
    assert "learning rate now" not in capsys.readouterr().out


def test_early_stopping_keeps_the_optimizer_of_the_best_network(iris):
    X, y = iris
    clf = BPClassifier(
        hidden_layer_sizes=(5,),
        solver="adam",
        learning_rate_init=0.05,
        batch_size=135,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=4,
        tol=0.0,
        random_state=3,
    ).fit(X, y)
    best_epoch = int(np.argmax(clf.validation_scores_)) + 1
    assert clf.n_iter_ > best_epoch
    assert clf.optimizer_.steps == best_epoch  # one batch of the 135 training rows per epoch


@pytest.mark.parametrize("Estimator", [BPClassifier, BPRegressor])
def test_pickle_keeps_the_optimizer_state(iris, Estimator):
    X, y = iris
    model = Estimator(hidden_layer_sizes=(5,), solver="adam", max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.optimizer_.steps == model.optimizer_.steps > 0
    np.testing.assert_array_equal(loaded.optimizer_.state["exp_avg"], model.optimizer_.state["exp_avg"])
    model.partial_fit(X, y)
    loaded.partial_fit(X, y)
    for W, W_loaded in zip(model.coefs_, loaded.coefs_):
        np.testing.assert_array_equal(W, W_loaded)
