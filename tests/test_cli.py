"""The ``fastbp`` command line, run as a user runs it: in a subprocess
(``python -m fastbp ...``, and the installed ``fastbp`` script where there is
one), from a temporary directory so that the installed package is the one run.

What the command prints is checked against the library: the model file it
saves is loaded with ``fastbp.load`` and must reproduce the printed costs and
accuracies and the predictions written by ``fastbp predict``.
"""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from support import killed_after, with_sigint

import fastbp
from fastbp import cli, datasets
from fastbp.interop import load_fann, read_fann_data, save_fann, write_fann_data

SCRIPT = shutil.which("fastbp", path=os.path.dirname(sys.executable))  # the console script of this Python


def run(*args, cwd, env=None, script=False, stderr=subprocess.PIPE):
    environment = {k: v for k, v in os.environ.items() if k != "FASTBP_BACKEND"}
    environment.update(env or {})
    command = [SCRIPT] if script else [sys.executable, "-m", "fastbp"]
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=300,
    )


def ok(*args, cwd, **kwargs):
    result = run(*args, cwd=cwd, **kwargs)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in (result.stderr or "")
    return result


def write_csv(path, header, rows):
    lines = [",".join(header)] + [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def metrics(stdout, which):
    """(cost, accuracy hits, rows) from the ``training:`` or ``validation:`` line."""
    match = re.search(rf"^{which}:\s+cost (\S+)(?:\s+accuracy \S+ \((\d+)/(\d+)\))?$", stdout, re.M)
    assert match, f"no {which} line in:\n{stdout}"
    cost, hits, rows = match.groups()
    return float(cost), None if hits is None else int(hits), None if rows is None else int(rows)


def assert_printed_cost(printed, actual):
    """A cost printed with 6 significant digits equals the computed one."""
    assert printed == pytest.approx(actual, rel=5e-6, abs=0)


@pytest.fixture
def circles_csv(tmp_path):
    """A noisy 'circles' problem with two inputs and the target in the middle column."""
    X, Y = datasets.circles(120, seed=5)
    return write_csv(
        tmp_path / "circles.csv", ["a", "label", "b"], np.column_stack([X[:, 0], Y[:, 0], X[:, 1]])
    )


def load_columns(path, columns):
    data = np.genfromtxt(path, delimiter=",", names=True)
    return np.column_stack([data[c] for c in columns])


# ----------------------------------------------------------------------
# fastbp train
# ----------------------------------------------------------------------


def test_train_saves_a_model_that_reproduces_the_printed_metrics(circles_csv, tmp_path):
    result = ok(
        "train",
        circles_csv,
        "--target",
        "label",
        "--layers",
        "6",
        "--epochs",
        "40",
        "--out",
        "model.fbp",
        cwd=tmp_path,
    )
    net = fastbp.load(tmp_path / "model.fbp")
    assert net.layer_sizes == (2, 6, 1)  # inputs a and b, one hidden layer, the label
    X, Y = load_columns(circles_csv, ["a", "b"]), load_columns(circles_csv, ["label"])
    cost, hits, rows = metrics(result.stdout, "training")
    assert_printed_cost(cost, net.cost(X, Y))
    assert rows == 120 and hits == int(((net.forward(X) >= 0.5) == (Y == 1)).sum())
    assert "validation:" not in result.stdout
    assert "saved the model to model.fbp" in result.stdout


def test_train_learns_xor_from_the_built_in_dataset(tmp_path):
    result = ok("train", "--dataset", "xor", cwd=tmp_path)
    cost, hits, rows = metrics(result.stdout, "training")
    assert (hits, rows) == (4, 4)
    assert cost < 1e-3


def test_validation_split_progress_lines_and_loss_plot(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    epochs = 30
    result = ok(
        "train",
        "--dataset",
        "circles",
        "--epochs",
        epochs,
        "--val",
        "0.25",
        "--out",
        "m.fbp",
        "--plot",
        "loss.png",
        cwd=tmp_path,
    )
    assert "150 training rows, 50 validation rows" in result.stdout
    _, _train_hits, train_rows = metrics(result.stdout, "training")
    val_cost, _val_hits, val_rows = metrics(result.stdout, "validation")
    assert (train_rows, val_rows) == (150, 50)

    # Not a terminal: plain progress lines on stderr, the first and the last epoch included.
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"epoch 1/{epochs}: cost ")
    assert lines[-1].startswith(f"epoch {epochs}/{epochs}: cost ")
    assert 2 < len(lines) <= 12
    # The last line's validation cost is the final network's cost on the held-out rows.
    last_val = float(re.search(r"validation cost (\S+)$", lines[-1]).group(1))
    assert last_val == pytest.approx(val_cost, rel=1e-5)

    image = matplotlib.image.imread(tmp_path / "loss.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "m.fbp"]  # no temporary files left


def test_training_and_validation_rows_partition_the_file(tmp_path):
    """--val 0.5 of 40 rows: 20 rows in each line, and together they are the file."""
    X, Y = datasets.circles(40, seed=1)
    data = write_csv(tmp_path / "d.csv", ["x1", "x2", "y"], np.column_stack([X, Y]))
    result = ok("train", data, "--epochs", "5", "--val", "0.5", "--out", "m.fbp", cwd=tmp_path)
    net = fastbp.load(tmp_path / "m.fbp")
    train_cost, _, _ = metrics(result.stdout, "training")
    val_cost, _, _ = metrics(result.stdout, "validation")
    per_row = np.array([net.cost(x, y) for x, y in zip(X, Y)])
    # 20 + 20 rows: the mean of the two halves is the mean of the file.
    assert_printed_cost((train_cost + val_cost) / 2, per_row.mean())


def test_scale_folds_min_max_scaling_into_the_saved_model(tmp_path):
    X, Y = datasets.circles(80, seed=2)
    raw = X * [1000.0, 0.001] + [-500.0, 3.0]  # far from [0, 1], in different ways
    data = write_csv(tmp_path / "d.csv", ["p", "q", "y"], np.column_stack([raw, Y]))
    args = ("train", data, "--layers", "8", "--epochs", "600", "--quiet")
    scaled = ok(*args, "--scale", "--out", "m.fbp", cwd=tmp_path)
    net = fastbp.load(tmp_path / "m.fbp")
    cost, hits, rows = metrics(scaled.stdout, "training")
    assert_printed_cost(cost, net.cost(raw, Y))  # the saved model takes the raw inputs
    assert hits / rows > 0.95
    assert scaled.stderr == ""
    # The same run without --scale: a note on stderr, and little learnt.
    unscaled = ok(*args, cwd=tmp_path)
    assert unscaled.stderr.startswith("note: inputs reach 500")
    _, unscaled_hits, _ = metrics(unscaled.stdout, "training")
    assert unscaled_hits / rows < 0.8


def test_scale_refuses_inputs_whose_range_overflows(tmp_path):
    # max - min of this column is about 3.6e308, over the largest float64: no
    # finite scaling exists, so --scale stops before training rather than
    # scaling the column to NaN.
    rows = np.array([[-1.7e308, 0.0, 0.0], [1.7e308, 1.0, 1.0], [0.0, 0.5, 1.0]])
    data = write_csv(tmp_path / "wide.csv", ["p", "q", "y"], rows)
    result = run("train", data, "--scale", "--epochs", "1", "--out", "m.fbp", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--scale: the input data spans too wide a range to scale in float64" in result.stderr
    assert not (tmp_path / "m.fbp").exists()


def test_fold_scaling_computes_on_raw_inputs_what_the_net_computes_on_scaled_ones(dtype):
    rng = np.random.default_rng(0)
    net = fastbp.Network([3, 4, 2], seed=1, dtype=dtype)
    X = rng.uniform(-50, 50, size=(10, 3))
    low, span = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    folded = cli.fold_scaling(net, low, span)
    assert folded.dtype == net.dtype and folded.layer_sizes == net.layer_sizes
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(folded.forward(X), net.forward((X - low) / span), rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    "model",
    [("relu", "identity", "squared_error"), (("tanh", "leaky_relu"), "sigmoid", "cross_entropy")],
)
def test_fold_scaling_keeps_the_activations_and_the_loss(model):
    hidden, output, loss = model
    net = fastbp.Network([3, 4, 4, 2], activation=hidden, output_activation=output, loss=loss, seed=1)
    X = np.random.default_rng(0).uniform(-50, 50, size=(10, 3))
    low, span = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    folded = cli.fold_scaling(net, low, span)
    assert folded.activations == net.activations and folded.loss == loss
    np.testing.assert_allclose(folded.forward(X), net.forward((X - low) / span), rtol=0, atol=1e-12)


def one_hot_csv(path, n=60, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 2))
    Y = np.eye(3)[(X[:, 0] * 3).astype(int)]  # the class is the third of [0, 1] x1 falls in
    return write_csv(path, ["x1", "x2", "c0", "c1", "c2"], np.column_stack([X, Y])), X, Y


def test_relu_hidden_softmax_output_defaults_to_cross_entropy(tmp_path):
    data, X, Y = one_hot_csv(tmp_path / "d.csv")
    result = ok(
        "train",
        data,
        "--target",
        "c0,c1,c2",
        "--activation",
        "relu",
        "--output-activation",
        "softmax",
        "--epochs",
        "50",
        "--lr",
        "0.1",
        "--out",
        "m.fbp",
        cwd=tmp_path,
    )
    net = fastbp.load(tmp_path / "m.fbp")
    assert net.activations == ("relu", "softmax") and net.loss == "cross_entropy"
    assert result.stdout.startswith(
        "network: 2-8-3 (hidden relu, output softmax, loss cross_entropy; float64, "
    )
    cost, hits, rows = metrics(result.stdout, "training")
    assert_printed_cost(cost, net.cost(X, Y))
    assert rows == 60 and hits == int((net.forward(X).argmax(axis=1) == Y.argmax(axis=1)).sum())
    assert hits > 45
    # predict writes the softmax probabilities.
    predicted = ok("predict", "m.fbp", data, "--drop", "c0,c1,c2", cwd=tmp_path).stdout.splitlines()
    assert predicted[0] == "output_0,output_1,output_2"
    probabilities = np.loadtxt(predicted[1:], delimiter=",", ndmin=2)
    assert np.array_equal(probabilities, net.forward(X))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=0, atol=1e-12)


def test_one_activation_per_hidden_layer_and_an_explicit_loss(circles_csv, tmp_path):
    result = ok(
        "train",
        circles_csv,
        "--target",
        "label",
        "--layers",
        "6,5",
        "--activation",
        "tanh,leaky_relu",
        "--loss",
        "cross_entropy",
        "--epochs",
        "20",
        "--batch-size",
        "4",
        "--scale",
        "--out",
        "m.fbp",
        cwd=tmp_path,
    )
    net = fastbp.load(tmp_path / "m.fbp")
    assert net.layer_sizes == (2, 6, 5, 1)
    assert net.activations == ("tanh", "leaky_relu", "sigmoid") and net.loss == "cross_entropy"
    assert "(hidden tanh,leaky_relu, output sigmoid, loss cross_entropy; " in result.stdout
    X, Y = load_columns(circles_csv, ["a", "b"]), load_columns(circles_csv, ["label"])
    assert_printed_cost(metrics(result.stdout, "training")[0], net.cost(X, Y))  # --scale folded in


def test_identity_output_learns_targets_outside_0_1(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 1, size=(50, 2))
    y = 40 * X[:, 0] - 25 * X[:, 1] + 3  # from -22 to 43: no sigmoid reaches these
    data = write_csv(tmp_path / "r.csv", ["x1", "x2", "y"], np.column_stack([X, y]))
    result = ok(
        "train",
        data,
        "--layers",
        "",
        "--output-activation",
        "identity",
        "--lr",
        "0.05",
        "--epochs",
        "300",
        "--out",
        "m.fbp",
        "--quiet",
        cwd=tmp_path,
    )
    net = fastbp.load(tmp_path / "m.fbp")
    assert net.activations == ("identity",) and net.loss == "squared_error"
    assert "(output identity, loss squared_error; " in result.stdout
    cost, hits, _ = metrics(result.stdout, "training")
    assert hits is None  # not 0/1 targets: no accuracy
    assert_printed_cost(cost, net.cost(X, y[:, None]))
    assert cost < 1e-3  # a linear model learns a linear function


def test_the_default_model_is_the_notes(tmp_path):
    result = ok("train", "--dataset", "xor", "--epochs", "5", "--out", "m.fbp", cwd=tmp_path)
    assert result.stdout.startswith(
        "network: 2-3-1 (hidden sigmoid, output sigmoid, loss squared_error; float64, "
    )
    net = fastbp.load(tmp_path / "m.fbp")
    assert net.activations == ("sigmoid", "sigmoid") and net.loss == "squared_error"
    # The same weights as a network built with no model keywords, trained the same way.
    same = ok(
        "train",
        "--dataset",
        "xor",
        "--epochs",
        "5",
        "--activation",
        "sigmoid",
        "--output-activation",
        "sigmoid",
        "--loss",
        "squared_error",
        "--out",
        "same.fbp",
        cwd=tmp_path,
    )
    assert same.stdout.replace("same.fbp", "m.fbp") == result.stdout
    assert (tmp_path / "m.fbp").read_bytes() == (tmp_path / "same.fbp").read_bytes()


def test_one_hot_targets_get_argmax_accuracy(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, size=(30, 2))
    Y = np.eye(3)[rng.integers(0, 3, size=30)]
    data = write_csv(tmp_path / "d.csv", ["x1", "x2", "c0", "c1", "c2"], np.column_stack([X, Y]))
    result = ok("train", data, "--target", "c0,c1,-1", "--epochs", "3", "--out", "m.fbp", cwd=tmp_path)
    net = fastbp.load(tmp_path / "m.fbp")
    assert net.layer_sizes == (2, 8, 3)
    _, hits, rows = metrics(result.stdout, "training")
    assert hits == int((net.forward(X).argmax(axis=1) == Y.argmax(axis=1)).sum()) and rows == 30


def test_minibatches_and_float32(circles_csv, tmp_path):
    result = ok(
        "train",
        circles_csv,
        "--target",
        "1",
        "--batch-size",
        "8",
        "--dtype",
        "float32",
        "--epochs",
        "5",
        "--out",
        "m.fbp",
        cwd=tmp_path,
    )
    net = fastbp.load(tmp_path / "m.fbp")
    assert net.dtype == np.float32
    assert "batch size 8" in result.stdout
    X, Y = load_columns(circles_csv, ["a", "b"]), load_columns(circles_csv, ["label"])
    assert_printed_cost(metrics(result.stdout, "training")[0], net.cost(X, Y))


# --optimizer and its options -> (the optimizer the library is given, the batch size).
OPTIMIZER_RUNS = [
    (
        ("--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--weight-decay", "0.001", "--lr", "0.05"),
        lambda: fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001),
        1,
    ),
    (("--momentum", "0.5", "--batch-size", "4"), lambda: fastbp.SGD(lr=0.5, momentum=0.5), 4),  # sgd implied
    (("--weight-decay", "0.01"), lambda: fastbp.SGD(lr=0.5, weight_decay=0.01), 1),  # sgd implied
    (
        ("--optimizer", "adam", "--weight-decay", "0.0001", "--batch-size", "8"),
        lambda: fastbp.Adam(lr=0.001, weight_decay=0.0001),
        8,
    ),  # Adam's own default lr
    (("--optimizer", "adam", "--lr", "0.01"), lambda: fastbp.Adam(lr=0.01), 1),
    (
        (
            "--optimizer",
            "rprop",
        ),
        lambda: fastbp.RPROP(lr=0.01),
        None,
    ),  # full batch, RPROP's default first step
    (("--optimizer", "rprop", "--lr", "0.1"), lambda: fastbp.RPROP(lr=0.1), None),
]


@pytest.mark.parametrize(
    "options, optimizer, batch_size",
    OPTIMIZER_RUNS,
    ids=[" ".join(options) for options, _, _ in OPTIMIZER_RUNS],
)
def test_optimizers_train_the_model_the_library_trains(
    circles_csv, tmp_path, monkeypatch, capsys, options, optimizer, batch_size
):
    """The command's model is exactly the library's with that optimizer (in
    process: the same backend as the library here)."""
    status, out, err = run_in_process(
        (
            "train",
            str(circles_csv),
            "--target",
            "label",
            "--layers",
            "5",
            "--epochs",
            "6",
            "--out",
            "m.fbp",
            "--quiet",
            *options,
        ),
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert status == 0, err
    expected = optimizer()
    assert f"6 epochs, optimizer {expected!r}, " in out
    assert ("full batch (120 rows)" if batch_size is None else f"batch size {batch_size}") in out
    X, Y = load_columns(circles_csv, ["a", "b"]), load_columns(circles_csv, ["label"])
    net = fastbp.Network([2, 5, 1], seed=0)
    net.train(
        X,
        Y,
        epochs=6,
        optimizer=expected,
        batch_size=batch_size,
        shuffle=True,
        seed=np.random.default_rng([0, 2]),
    )
    saved = fastbp.load(tmp_path / "m.fbp")
    for W, W_saved in zip(net.weights + net.biases, saved.weights + saved.biases):
        np.testing.assert_array_equal(W, W_saved)
    assert expected.steps == (6 if batch_size is None else 6 * -(-120 // batch_size))


def test_without_an_optimizer_training_is_plain_gradient_descent(circles_csv, tmp_path, monkeypatch, capsys):
    status, out, err = run_in_process(
        (
            "train",
            str(circles_csv),
            "--target",
            "label",
            "--layers",
            "5",
            "--epochs",
            "3",
            "--lr",
            "0.7",
            "--out",
            "m.fbp",
            "--quiet",
        ),
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert status == 0, err
    network_line = out.splitlines()[0]
    assert network_line.endswith("3 epochs, lr 0.7, batch size 1") and "optimizer" not in network_line
    X, Y = load_columns(circles_csv, ["a", "b"]), load_columns(circles_csv, ["label"])
    net = fastbp.Network([2, 5, 1], seed=0)
    net.train(X, Y, epochs=3, lr=0.7, shuffle=True, seed=np.random.default_rng([0, 2]))
    saved = fastbp.load(tmp_path / "m.fbp")
    np.testing.assert_array_equal(net.weights[0], saved.weights[0])


def test_same_seed_same_model_other_seed_other_model(circles_csv, tmp_path):
    for name, seed in (("a.fbp", 4), ("b.fbp", 4), ("c.fbp", 5)):
        ok(
            "train",
            circles_csv,
            "--target",
            "label",
            "--epochs",
            "3",
            "--val",
            "0.2",
            "--seed",
            seed,
            "--quiet",
            "--out",
            name,
            cwd=tmp_path,
        )
    a, b, c = (fastbp.load(tmp_path / name) for name in ("a.fbp", "b.fbp", "c.fbp"))
    assert all(np.array_equal(u, v) for u, v in zip(a.weights, b.weights))
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_no_hidden_layer(tmp_path):
    ok(
        "train",
        "--dataset",
        "circles",
        "--layers",
        "",
        "--epochs",
        "2",
        "--no-shuffle",
        "--out",
        "m.fbp",
        cwd=tmp_path,
    )
    assert fastbp.load(tmp_path / "m.fbp").layer_sizes == (2, 1)


DEADLINE = 120  # seconds: a child still running then is killed and the test fails


def _train_and_ctrl_c(tmp_path, handling, epochs):
    """``fastbp train`` on spirals with SIGINT at ``handling`` (whatever this
    suite's own SIGINT handling is); Ctrl-C once the first epoch is reported.
    Returns ``(returncode, stdout, stderr)``."""
    import signal

    environment = {k: v for k, v in os.environ.items() if k != "FASTBP_BACKEND"}
    command = [
        sys.executable,
        "-m",
        "fastbp",
        "train",
        "--dataset",
        "spirals",
        "--epochs",
        str(epochs),
        "--out",
        "m.fbp",
    ]
    with (
        subprocess.Popen(
            with_sigint(handling, command),
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process,
        killed_after(process, DEADLINE) as expired,
    ):
        first = process.stderr.readline()
        assert first.startswith(f"epoch 1/{epochs}: "), first + process.stderr.read()  # training has started
        process.send_signal(signal.SIGINT)
        out, err = process.communicate()
    assert not expired.is_set(), f"fastbp train still ran {DEADLINE} s after Ctrl-C: killed\n{err}"
    return process.returncode, out, err


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_exits_130_and_writes_nothing(tmp_path):
    returncode, out, err = _train_and_ctrl_c(tmp_path, "SIG_DFL", 1_000_000)
    assert returncode == 130, err
    assert out == "" and err.splitlines()[-1] == "python -m fastbp: interrupted"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_an_ignored_ctrl_c_is_ignored(tmp_path):
    # Started with SIGINT ignored (as a background job of a script, or by a CI
    # runner), the command keeps it ignored, like every Unix tool: it trains
    # to the end and saves.
    returncode, out, err = _train_and_ctrl_c(tmp_path, "SIG_IGN", 2000)
    assert returncode == 0, err
    assert "saved the model to m.fbp" in out and "interrupted" not in err
    assert fastbp.load(tmp_path / "m.fbp").layer_sizes == (2, 16, 16, 1)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal(tmp_path):
    pytest.importorskip("tqdm")
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a terminal 80 wide
    environment = {k: v for k, v in os.environ.items() if k != "FASTBP_BACKEND"}
    with (
        subprocess.Popen(
            [sys.executable, "-m", "fastbp", "train", "--dataset", "xor", "--epochs", "50"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=follower,
        ) as process,
        killed_after(process, DEADLINE) as expired,
    ):
        os.close(follower)  # the child holds the only copy: reading ends when it exits
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child is gone and everything was read
                break
            if not chunk:
                break
            output += chunk
        os.close(leader)
    assert not expired.is_set(), f"fastbp train still ran after {DEADLINE} s: killed\n{output!r}"
    assert process.returncode == 0, output
    text = output.decode("utf-8", "replace")
    assert "training" in text and "50/50" in text and "\r" in text  # a bar redrawn in place
    assert "epoch 1/50" not in text  # not the plain lines


def test_console_script_runs_the_same_command(tmp_path):
    if SCRIPT is None:
        pytest.skip("the fastbp console script is not installed beside this Python")
    args = ("train", "--dataset", "xor", "--epochs", "20")
    assert ok(*args, cwd=tmp_path, script=True).stdout == ok(*args, cwd=tmp_path).stdout
    assert run("--help", cwd=tmp_path, script=True).stdout.startswith("usage: fastbp")


# ----------------------------------------------------------------------
# fastbp predict, dataset, example
# ----------------------------------------------------------------------


def test_predict_writes_the_models_outputs(circles_csv, tmp_path):
    ok("train", circles_csv, "--target", "label", "--epochs", "5", "--out", "m.fbp", "--quiet", cwd=tmp_path)
    net = fastbp.load(tmp_path / "m.fbp")
    expected = net.forward(load_columns(circles_csv, ["a", "b"]))

    to_stdout = ok("predict", "m.fbp", circles_csv, "--drop", "label", cwd=tmp_path)
    assert to_stdout.stdout.splitlines()[0] == "output_0"
    assert np.array_equal(
        np.loadtxt(to_stdout.stdout.splitlines()[1:], ndmin=2), expected
    )  # exact: repr round trip

    ok("predict", "m.fbp", circles_csv, "--inputs", "a,-1", "--out", "p.csv", cwd=tmp_path)
    assert (tmp_path / "p.csv").read_text() == to_stdout.stdout

    inputs_only = write_csv(tmp_path / "inputs.csv", ["a", "b"], load_columns(circles_csv, ["a", "b"]))
    assert ok("predict", "m.fbp", inputs_only, cwd=tmp_path).stdout == to_stdout.stdout


# ----------------------------------------------------------------------
# FANN files: fastbp train and predict on FANN data, fastbp convert
# ----------------------------------------------------------------------


@pytest.fixture
def fann_train(tmp_path):
    """The circles problem as a FANN data file (inputs, then the label)."""
    X, Y = datasets.circles(80, seed=6)
    write_fann_data(tmp_path / "circles.train", X, Y)
    return tmp_path / "circles.train"


def assert_same_network(a, b):
    assert a.layer_sizes == b.layer_sizes and a.activations == b.activations
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)


def test_train_on_a_fann_data_file_as_on_the_same_csv(fann_train, tmp_path):
    X, Y = read_fann_data(fann_train)
    csv_path = write_csv(tmp_path / "circles.csv", ["x1", "x2", "label"], np.column_stack([X, Y]))
    options = ("--layers", "5", "--activation", "tanh", "--epochs", "15", "--val", "0.25", "--quiet")
    result = ok("train", fann_train, *options, "--out", "fann.fbp", cwd=tmp_path)
    ok("train", csv_path, *options, "--out", "csv.fbp", cwd=tmp_path)
    net = fastbp.load(tmp_path / "fann.fbp")
    assert_same_network(net, fastbp.load(tmp_path / "csv.fbp"))  # the same rows, the same run
    assert net.layer_sizes == (2, 5, 1)
    assert "data: circles.train, 60 training rows, 20 validation rows" in result.stdout.replace(
        str(tmp_path) + "/", ""
    )


def test_train_saves_fann_networks_by_the_extension(fann_train, tmp_path):
    options = ("--layers", "4,3", "--activation", "tanh,identity", "--epochs", "5", "--quiet")
    result = ok("train", fann_train, *options, "--out", "m.net", cwd=tmp_path)
    ok("train", fann_train, *options, "--out", "m.fbp", cwd=tmp_path)
    assert "saved the model to m.net (in FANN's format)" in result.stdout
    assert (tmp_path / "m.net").read_text().startswith("FANN_FLO_2.1\n")
    assert_same_network(load_fann(tmp_path / "m.net"), fastbp.load(tmp_path / "m.fbp"))


def test_convert_between_fastbp_and_fann(tmp_path):
    net = fastbp.Network([3, 4, 2], activation="tanh", output_activation="identity", seed=1)
    net.save(tmp_path / "m.fbp")
    result = ok("convert", "m.fbp", "m.net", cwd=tmp_path)
    assert (
        result.stdout == "wrote m.net in FANN's format: 3-4-2 network (hidden tanh, output identity, loss "
        "squared_error; float64)\n"
    )
    assert_same_network(load_fann(tmp_path / "m.net"), net)
    ok("convert", "m.net", "back.fbp", cwd=tmp_path)
    assert_same_network(fastbp.load(tmp_path / "back.fbp"), net)
    # A FANN file is recognised by its first line too, whatever its name.
    (tmp_path / "m.net").rename(tmp_path / "fann_model")
    ok("convert", "fann_model", "again.fbp", cwd=tmp_path)
    assert (tmp_path / "again.fbp").read_bytes() == (tmp_path / "back.fbp").read_bytes()


def test_convert_folds_fanns_steepness(tmp_path):
    """A FANN network of steepness 0.25 (tanh) and 1 (sigmoid: factor 2) computes in fastbp what it computes in FANN."""
    net = fastbp.Network([2, 3, 1], activation="tanh", seed=2)
    save_fann(net, tmp_path / "unit.net")
    text = (tmp_path / "unit.net").read_text()
    weights = re.findall(r"\(\d+, (\S+)\)", text.splitlines()[-1])
    neurons = "(0, 0, 0.0) " * 3 + "(3, 5, 0.25) " * 3 + "(0, 5, 0.25) " + "(4, 3, 1.0) (0, 0, 0.0) "
    text = re.sub(r"(?m)^(neurons [^=]*=).*$", lambda m: m.group(1) + neurons, text)
    (tmp_path / "steep.net").write_text(text)
    ok("convert", "steep.net", "steep.fbp", cwd=tmp_path)
    loaded = fastbp.load(tmp_path / "steep.fbp")
    w = np.array([float(v) for v in weights])
    x = np.array([[0.5, -1.5]])
    hidden = np.tanh(0.25 * (x @ w[:9].reshape(3, 3)[:, :2].T + w[:9].reshape(3, 3)[:, 2]))
    expected = 1 / (1 + np.exp(-2 * 1.0 * (hidden @ w[9:12] + w[12])))
    np.testing.assert_allclose(loaded.forward(x)[:, 0], expected, rtol=1e-14)


def test_predict_with_a_fann_network_on_a_fann_data_file(fann_train, tmp_path):
    net = fastbp.Network([2, 3, 1], seed=4)
    save_fann(net, tmp_path / "m.net")
    result = ok("predict", "m.net", fann_train, cwd=tmp_path)
    X, _ = read_fann_data(fann_train)
    assert result.stdout.splitlines()[0] == "output_0"
    assert np.array_equal(np.loadtxt(result.stdout.splitlines()[1:], ndmin=2), net.forward(X))


def test_a_fann_networks_scaling_parameters_are_a_note(tmp_path, monkeypatch, capsys):
    save_fann(fastbp.Network([1, 2, 1], seed=0), tmp_path / "m.net")
    text = (tmp_path / "m.net").read_text()
    scale = "".join(
        f"scale_{what}_{where}=0.5 \n"
        for where in ("in", "out")
        for what in ("mean", "deviation", "new_min", "factor")
    )
    (tmp_path / "m.net").write_text(text.replace("scale_included=0\n", "scale_included=1\n" + scale))
    status, out, err = run_in_process(["convert", "m.net", "m.fbp"], tmp_path, monkeypatch, capsys)
    assert status == 0 and out.startswith("wrote m.fbp")
    assert err.startswith("note: FANN network file 'm.net' holds data-scaling parameters")


def test_dataset_command_writes_the_dataset(tmp_path):
    ok("dataset", "spirals", "--seed", "7", "--out", "s.csv", cwd=tmp_path)
    X, Y = datasets.load("spirals", seed=7)
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "x1,x2,label"
    assert np.array_equal(np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1), np.column_stack([X, Y]))


def test_a_dataset_csv_trains_like_the_built_in_dataset(tmp_path):
    """The CSV route and the --dataset route agree on the same rows."""
    ok("dataset", "circles", "--out", "c.csv", cwd=tmp_path)
    args = ("--epochs", "10", "--val", "0.2", "--quiet")
    from_file = ok("train", "c.csv", *args, cwd=tmp_path).stdout
    built_in = ok("train", "--dataset", "circles", "--layers", "8", *args, cwd=tmp_path).stdout
    assert metrics(from_file, "training") == metrics(built_in, "training")
    assert metrics(from_file, "validation") == metrics(built_in, "validation")


def test_example_and_no_arguments_print_the_worked_example(tmp_path):
    example = ok("example", cwd=tmp_path).stdout
    assert example == ok(cwd=tmp_path).stdout
    assert "backpropagation, step by step" in example


def test_help(tmp_path, monkeypatch, capsys):
    top = ok("--help", cwd=tmp_path).stdout
    assert "usage: python -m fastbp" in top and "train" in top
    assert ok("train", "--help", cwd=tmp_path).stdout.startswith("usage: python -m fastbp train")
    for command in cli.COMMANDS:
        status, out, _ = run_in_process([command, "--help"], tmp_path, monkeypatch, capsys)
        assert status == 0 and out.startswith(f"usage: python -m fastbp {command}")


# ----------------------------------------------------------------------
# Bad input: one error line, exit status 2, no output file
# ----------------------------------------------------------------------

GOOD = "x1,x2,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"

FILES = {
    "good.csv": GOOD,
    "empty.csv": "",
    "blank.csv": "\n\n",
    "header_only.csv": "x1,x2,y\n",
    "ragged.csv": "x1,x2,y\n0,0,0\n0,1\n",
    "text.csv": "x1,x2,y\n0,0,0\n0,abc,1\n",
    "empty_cell.csv": "x1,x2,y\n0,,0\n",
    "nan.csv": "x1,x2,y\n0,0,0\nnan,1,1\n",
    "inf.csv": "x1,x2,y\n0,0,0\n1,-inf,1\n",
    "huge.csv": "x1,x2,y\n0,1e400,0\n",
    "no_header.csv": "0,0,0\n0,1,1\n",
    "duplicate_header.csv": "x,x,y\n0,0,0\n",
    "unnamed_column.csv": "x1,,y\n0,0,0\n",
    "one_column.csv": "y\n0\n1\n",
    "target_out_of_range.csv": "x1,x2,y\n0,0,0\n0,1,2.5\n",
    "negative_target.csv": "x1,x2,y\n0,0,-0.5\n0,1,1\n",
    "one_hot.csv": "x1,x2,a,b\n0,0,1,0\n0,1,0,1\n1,0,0,1\n1,1,1,0\n",
    "not_one_hot.csv": "x1,x2,a,b\n0,0,1,0\n0,1,0,1\n1,0,1,1\n1,1,1,0\n",
    "latin1.csv": b"x1,x2,caf\xe9\n0,0,0\n",
    "nul.csv": b"x1,x2,y\n0,\x000,0\n",
    "garbage.fbp": b"not a model at all",
    "good.data": "4 2 1\n0 0\n0\n0 1\n1\n1 0\n1\n1 1\n0\n",
    "comma.train": "2 2 1\n0 0\n0\n0,5 1\n1\n",
    "short.test": "3 2 1\n0 0\n0\n0 1\n1\n0.25 0.25\n",
    "out_of_range.data": "2 1 1\n0\n0\n1\n2.5\n",
    "garbage.net": "FANN_FLO_2.1\nnum_layers=x\n",
    "shortcut.net": "FANN_FLO_2.1\nnum_layers=3\nlearning_rate=0.7\nconnection_rate=1.0\nnetwork_type=1\n",
}


@pytest.fixture
def files(tmp_path):
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "a_directory").mkdir()
    return tmp_path


TRAIN = ("train", "--epochs", "1", "--out", "out.fbp")

BAD = [
    # (arguments, words the error line must contain)
    ((*TRAIN, "missing.csv"), ["missing.csv", "No such file"]),
    ((*TRAIN, "a_directory"), ["a_directory"]),
    ((*TRAIN, "empty.csv"), ["empty.csv", "empty"]),
    ((*TRAIN, "blank.csv"), ["blank.csv", "empty"]),
    ((*TRAIN, "header_only.csv"), ["header_only.csv", "no rows"]),
    ((*TRAIN, "ragged.csv"), ["ragged.csv", "line 3", "2 cells", "3 columns"]),
    ((*TRAIN, "text.csv"), ["text.csv", "line 3", "'x2'", "'abc'", "not a number"]),
    ((*TRAIN, "empty_cell.csv"), ["line 2", "'x2'", "empty cell"]),
    ((*TRAIN, "nan.csv"), ["line 3", "'x1'", "'nan'", "not a finite number"]),
    ((*TRAIN, "inf.csv"), ["line 3", "'-inf'", "not a finite number"]),
    ((*TRAIN, "huge.csv"), ["'1e400'", "not a finite number"]),
    ((*TRAIN, "no_header.csv"), ["no_header.csv", "header row"]),
    ((*TRAIN, "duplicate_header.csv"), ["'x'", "twice"]),
    ((*TRAIN, "unnamed_column.csv"), ["column 1", "no name"]),
    ((*TRAIN, "one_column.csv"), ["one column"]),
    ((*TRAIN, "latin1.csv"), ["latin1.csv", "UTF-8"]),
    ((*TRAIN, "nul.csv"), ["nul.csv"]),
    ((*TRAIN, "good.csv", "--target", "z"), ["unknown column 'z'", "x1, x2, y"]),
    ((*TRAIN, "good.csv", "--target", "3"), ["unknown column '3'"]),
    ((*TRAIN, "good.csv", "--target", "y,y"), ["'y'", "twice"]),
    ((*TRAIN, "good.csv", "--target", "x1,x2,y"), ["no input columns"]),
    ((*TRAIN, "target_out_of_range.csv"), ["'y'", "2.5", "[0, 1]", "scale"]),
    ((*TRAIN, "good.csv", "--lr", "0"), ["--lr", "'0'"]),
    ((*TRAIN, "good.csv", "--lr", "nan"), ["--lr", "'nan'"]),
    ((*TRAIN, "good.csv", "--lr", "fast"), ["--lr", "'fast'"]),
    ((*TRAIN, "good.csv", "--epochs", "0"), ["--epochs", "'0'"]),
    ((*TRAIN, "good.csv", "--epochs", "2.5"), ["--epochs", "'2.5'"]),
    ((*TRAIN, "good.csv", "--batch-size", "-1"), ["--batch-size", "'-1'"]),
    ((*TRAIN, "good.csv", "--optimizer", "lbfgs"), ["--optimizer", "'lbfgs'", "sgd", "adam", "rprop"]),
    (
        (*TRAIN, "good.csv", "--optimizer", "rprop", "--batch-size", "4"),
        ["rprop", "full-batch", "--batch-size 4"],
    ),
    (
        (*TRAIN, "good.csv", "--optimizer", "rprop", "--batch-size", "1"),
        ["rprop", "full-batch", "--batch-size 1"],
    ),
    (
        (*TRAIN, "good.csv", "--optimizer", "adam", "--momentum", "0.5"),
        ["--momentum applies to --optimizer sgd", "not --optimizer adam"],
    ),
    (
        (*TRAIN, "good.csv", "--optimizer", "rprop", "--momentum", "0.9", "--nesterov"),
        ["--momentum and --nesterov apply to --optimizer sgd", "not --optimizer rprop"],
    ),
    ((*TRAIN, "good.csv", "--nesterov"), ["--nesterov needs --momentum > 0"]),
    (
        (*TRAIN, "good.csv", "--optimizer", "sgd", "--momentum", "0", "--nesterov"),
        ["--nesterov needs --momentum > 0"],
    ),
    (
        (*TRAIN, "good.csv", "--optimizer", "rprop", "--weight-decay", "0.1"),
        ["--weight-decay", "sgd or adam", "RPROP has no weight decay"],
    ),
    ((*TRAIN, "good.csv", "--momentum", "1"), ["--momentum", "[0, 1)", "'1'"]),
    ((*TRAIN, "good.csv", "--momentum", "-0.1"), ["--momentum", "'-0.1'"]),
    ((*TRAIN, "good.csv", "--momentum", "nan"), ["--momentum", "'nan'"]),
    ((*TRAIN, "good.csv", "--weight-decay", "-1"), ["--weight-decay", ">= 0", "'-1'"]),
    ((*TRAIN, "good.csv", "--weight-decay", "inf"), ["--weight-decay", "finite", "'inf'"]),
    ((*TRAIN, "good.csv", "--layers", "3,x"), ["--layers", "'3,x'"]),
    ((*TRAIN, "good.csv", "--layers", "0"), ["--layers", "'0'"]),
    ((*TRAIN, "good.csv", "--val", "1"), ["--val", "'1'"]),
    ((*TRAIN, "good.csv", "--val", "0.01"), ["--val 0.01", "4 rows", "at least one"]),
    ((*TRAIN, "good.csv", "--seed", "-1"), ["--seed", "'-1'"]),
    ((*TRAIN, "good.csv", "--dtype", "float16"), ["--dtype", "'float16'"]),
    ((*TRAIN, "good.csv", "--bogus"), ["unrecognized arguments: --bogus"]),
    ((*TRAIN, "good.csv", "--activation", "swish"), ["--activation", "unknown activation 'swish'", "relu"]),
    ((*TRAIN, "good.csv", "--activation", "relu,"), ["--activation", "unknown activation ''"]),
    ((*TRAIN, "good.csv", "--activation", "logistic"), ["--activation", "'logistic'", "sigmoid, tanh"]),
    (
        (*TRAIN, "good.csv", "--activation", "softmax"),
        ["--activation", "output layer only", "--output-activation"],
    ),
    ((*TRAIN, "good.csv", "--activation", "relu,tanh"), ["--activation", "2 activations", "1 hidden layers"]),
    ((*TRAIN, "good.csv", "--layers", "", "--activation", "relu,tanh"), ["--activation", "0 hidden layers"]),
    ((*TRAIN, "good.csv", "--output-activation", "swish"), ["--output-activation", "'swish'", "softmax"]),
    ((*TRAIN, "good.csv", "--loss", "hinge"), ["--loss", "'hinge'", "cross_entropy"]),
    (
        (*TRAIN, "good.csv", "--loss", "cross_entropy", "--output-activation", "identity"),
        ["--loss cross_entropy", "probabilities", "--output-activation identity"],
    ),
    (
        (*TRAIN, "good.csv", "--loss", "cross_entropy", "--output-activation", "tanh"),
        ["--output-activation tanh"],
    ),
    (
        (
            *TRAIN,
            "one_hot.csv",
            "--target",
            "a,b",
            "--output-activation",
            "softmax",
            "--loss",
            "squared_error",
        ),
        ["--output-activation softmax", "--loss cross_entropy only", "not --loss squared_error"],
    ),
    ((*TRAIN, "target_out_of_range.csv", "--output-activation", "tanh"), ["'y'", "2.5", "[-1, 1]", "tanh"]),
    ((*TRAIN, "negative_target.csv", "--output-activation", "relu"), ["'y'", "-0.5", "below 0", "relu"]),
    ((*TRAIN, "negative_target.csv", "--loss", "cross_entropy"), ["'y'", "-0.5", "[0, 1]", "sigmoid"]),
    (
        (*TRAIN, "good.csv", "--output-activation", "softmax"),
        ["softmax", "sum to 1", "'y'", "row 1", "sums to 0"],
    ),
    (
        (*TRAIN, "not_one_hot.csv", "--target", "a,b", "--output-activation", "softmax"),
        ["softmax", "'a', 'b'", "of 1 rows", "row 3", "sums to 2"],
    ),
    ((*TRAIN, "--dataset", "xor", "--output-activation", "softmax"), ["softmax", "'label'", "sum to 1"]),
    ((*TRAIN,), ["DATA", "--dataset"]),
    (
        (*TRAIN, "good.data", "--target", "0"),
        ["--target applies to CSV files", "good.data is a FANN data file"],
    ),
    ((*TRAIN, "comma.train"), ["comma.train", "line 4", "'0,5'", "decimal point"]),
    ((*TRAIN, "short.test"), ["short.test", "truncated", "3 samples", "sample 3, output 1"]),
    ((*TRAIN, "missing.data"), ["missing.data", "No such file"]),
    ((*TRAIN, "out_of_range.data"), ["'output 1'", "2.5", "[0, 1]"]),
    (
        ("train", "good.data", "--activation", "relu", "--out", "m.net"),
        ["--out m.net", "cannot write a FANN network", "'relu'", "FANN 2.2"],
    ),
    (
        ("train", "good.data", "--output-activation", "softmax", "--loss", "cross_entropy", "--out", "m.net"),
        ["'softmax'"],
    ),
    (("convert", "garbage.fbp", "out.net"), ["garbage.fbp"]),
    (("convert", "garbage.net", "out.fbp"), ["FANN network file 'garbage.net', line 2", "num_layers"]),
    (
        ("convert", "shortcut.net", "out.fbp"),
        ["shortcut.net", "FANN_NETTYPE_SHORTCUT", "shortcut connections"],
    ),
    (("convert", "missing.net", "out.fbp"), ["missing.net", "No such file"]),
    (("convert", "good.csv", "out.fbp"), ["good.csv"]),
    (("convert", "garbage.fbp", "out.txt"), ["out.txt", "extension .txt", ".fbp", ".net", ".onnx"]),
    (("convert", "garbage.fbp", "out"), ["extension (none)"]),
    (("convert", "garbage.fbp", "no_such_dir/out.net"), ["OUT", "does not exist"]),
    (("convert", "garbage.fbp"), ["OUT"]),
    (("predict", "garbage.net", "good.csv"), ["garbage.net", "line 2"]),
    (("predict", "garbage.fbp", "good.data", "--drop", "y"), ["garbage.fbp"]),
    ((*TRAIN, "good.csv", "--dataset", "xor"), ["--dataset", "not allowed"]),
    ((*TRAIN, "--dataset", "xor", "--target", "y"), ["--target", "--dataset"]),
    ((*TRAIN, "--dataset", "mnist"), ["--dataset", "'mnist'"]),
    (("train", "good.csv", "--out", "no_such_dir/m.fbp"), ["--out", "does not exist"]),
    (("train", "good.csv", "--out", "a_directory"), ["--out", "is a directory"]),
    (("train", "good.csv", "--out", ""), ["--out", "empty"]),
    (("train", "good.csv", "--plot", "no_such_dir/p.png"), ["--plot", "does not exist"]),
    (("predict", "missing.fbp", "good.csv", "--out", "out.csv"), ["missing.fbp"]),
    (("predict", "garbage.fbp", "good.csv", "--out", "out.csv"), ["garbage.fbp"]),
    (("predict", "good.csv", "good.csv", "--out", "out.csv"), ["good.csv"]),
    (("predict", "a_directory", "good.csv", "--out", "out.csv"), ["a_directory"]),
    (("predict", "garbage.fbp", "good.csv", "--inputs", "x1", "--drop", "y"), ["not allowed"]),
    (("dataset", "mnist"), ["'mnist'"]),
]


# The cases the command is run for in a subprocess; every case of BAD is also
# run in process (the same code, much faster).
IN_SUBPROCESS = (
    "missing.csv",
    "a_directory",
    "comma.train",
    "convert garbage.net",
    "out.txt",
    "empty.csv",
    "ragged.csv",
    "text.csv",
    "nan.csv",
    "--target z",
    "target_out_of_range.csv",
    "--lr 0",
    "no_such_dir/m.fbp",
    "garbage.fbp good.csv --out",
    "--activation swish",
    "--loss cross_entropy --output-activation identity",
    "--optimizer rprop --batch-size 4",
    "--optimizer adam --momentum",
)


def run_in_process(args, cwd, monkeypatch, capsys):
    monkeypatch.chdir(cwd)
    try:
        status = cli.main(list(args), prog="python -m fastbp")
    except SystemExit as exit:  # argparse's errors
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("args, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_error_line_and_exit_2(files, args, words, monkeypatch, capsys):
    before = sorted(p.name for p in files.iterdir())
    outcomes = [run_in_process(args, files, monkeypatch, capsys)]
    if any(case in " ".join(args) for case in IN_SUBPROCESS):
        result = run(*args, cwd=files)
        outcomes.append((result.returncode, result.stdout, result.stderr))
    for status, out, err in outcomes:
        assert status == 2, (out, err)
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("python -m fastbp: error: "), err
        for word in words:
            assert word in lines[0]
        assert sorted(p.name for p in files.iterdir()) == before  # no output file, no temporary file


@pytest.fixture
def model(tmp_path):
    """A saved 2-3-1 model in tmp_path/m.fbp."""
    fastbp.Network([2, 3, 1], seed=0).save(tmp_path / "m.fbp")
    return tmp_path / "m.fbp"


@pytest.mark.parametrize(
    "args, words",
    [
        (("good.csv",), ["takes 2 inputs", "3 columns", "x1, x2, y", "--inputs or --drop"]),
        (("good.csv", "--inputs", "x1"), ["takes 2 inputs", "1 columns"]),
        (("good.csv", "--drop", "w"), ["--drop", "unknown column 'w'"]),
        (("text.csv", "--drop", "y"), ["text.csv", "not a number"]),
    ],
)
def test_bad_input_to_predict(files, model, args, words):
    result = run("predict", model, *args, "--out", "out.csv", cwd=files)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m fastbp: error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert not (files / "out.csv").exists()


def test_bad_fann_input_to_predict_and_convert(files, model, monkeypatch, capsys):
    fastbp.Network([2, 3, 1], activation="relu", seed=0).save(files / "relu.fbp")
    fastbp.Network([3, 2], seed=0).save(files / "three.fbp")
    cases = [
        (
            ("predict", model, "good.data", "--drop", "y"),
            ["--inputs and --drop apply to CSV files", "good.data"],
        ),
        (("predict", model, "comma.train"), ["comma.train", "line 4", "'0,5'"]),
        (("predict", "three.fbp", "good.data"), ["takes 3 inputs", "good.data have 2"]),
        (("convert", "relu.fbp", "relu.net"), ["OUT relu.net", "cannot write a FANN network", "'relu'"]),
    ]
    before = sorted(p.name for p in files.iterdir())
    for args, words in cases:
        status, out, err = run_in_process([str(a) for a in args], files, monkeypatch, capsys)
        assert status == 2 and out == "", (args, out, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("python -m fastbp: error: "), err
        for word in words:
            assert word in lines[0], (word, lines[0])
    assert sorted(p.name for p in files.iterdir()) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(files):
    (files / "good.csv").chmod(0)
    result = run(*TRAIN, "good.csv", cwd=files)
    assert result.returncode == 2
    assert result.stderr.startswith("python -m fastbp: error: cannot read good.csv: Permission denied")


def test_divergence_exits_1_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """With targets in [0, 1] the sigmoid's bounded slope makes divergence hard
    to provoke from a file, so the library's error is simulated, in process."""

    def diverge(self, *args, **kwargs):
        raise fastbp.TrainingDivergedError("training diverged during epoch 1 of 3 with lr=100.0: ...")

    monkeypatch.setattr(fastbp.Network, "train", diverge)
    status = cli.main(
        ["train", "--dataset", "xor", "--out", str(tmp_path / "m.fbp"), "--plot", str(tmp_path / "p.png")]
    )
    assert status == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "fastbp: error: training diverged during epoch 1 of 3 with lr=100.0: ...\n"
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_is_one_line_before_any_training(files):
    fake = files / "no_matplotlib"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    path = os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")]))
    result = run("train", "good.csv", "--plot", "p.png", cwd=files, env={"PYTHONPATH": path})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "python -m fastbp: error: --plot needs matplotlib, which is not installed: "
        "pip install 'fastbp[cli]' (or matplotlib)\n"
    )


def test_unknown_argument_without_a_command_keeps_the_worked_example_usage(tmp_path):
    result = run("--epochs", "5", cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: python -m fastbp" in result.stderr and "train" in result.stderr


# ----------------------------------------------------------------------
# fastbp.datasets
# ----------------------------------------------------------------------


@pytest.mark.parametrize("name", datasets.names())
def test_datasets_are_two_inputs_in_the_unit_square_and_balanced_0_1_labels(name):
    X, Y = datasets.load(name, seed=0)
    assert X.shape == (len(Y), 2) and Y.shape == (len(X), 1)
    assert X.dtype == Y.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(Y)) == {0.0, 1.0} and Y.sum() == len(Y) / 2
    again, _ = datasets.load(name, seed=0)
    assert np.array_equal(X, again)


@pytest.mark.parametrize("make", [datasets.circles, datasets.spirals])
def test_random_datasets_depend_on_the_seed(make):
    assert not np.array_equal(make(seed=0)[0], make(seed=1)[0])
    assert make(10, seed=0)[0].shape == (10, 2)


def test_spirals_interleave():
    """The two spirals are half a turn apart: each point's mirror image
    through the centre is near a point of the other spiral, not of its own."""
    X, Y = datasets.spirals(400, noise=0.0, seed=0)
    centre = (X.max(axis=0) + X.min(axis=0)) / 2
    mirrored = 2 * centre - X
    nearest = np.argmin(((mirrored[:, None, :] - X[None, :, :]) ** 2).sum(axis=2), axis=1)
    assert (Y[nearest, 0] != Y[:, 0]).mean() > 0.95


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: datasets.load("mnist"), ValueError),
        (lambda: datasets.circles(1), ValueError),
        (lambda: datasets.circles(10.0), TypeError),
        (lambda: datasets.circles(noise=-1), ValueError),
        (lambda: datasets.spirals(turns=0), ValueError),
        (lambda: datasets.spirals(seed=-1), ValueError),
    ],
)
def test_datasets_refuse_bad_arguments(call, error):
    with pytest.raises(error):
        call()


def test_an_onnx_output_without_onnx_is_refused_before_training(circles_csv, tmp_path, monkeypatch, capsys):
    # onnx absent (None in sys.modules makes its import fail): exit 2 before
    # training, no model file, one line naming the extra to install.
    monkeypatch.setitem(sys.modules, "onnx", None)
    out = tmp_path / "m.onnx"
    status = cli.main(
        ["train", str(circles_csv), "--target", "label", "--epochs", "2", "--out", str(out), "--quiet"]
    )
    captured = capsys.readouterr()
    assert status == 2
    assert not out.exists()
    assert "pip install 'fastbp[onnx]'" in captured.err
    assert "training" not in captured.out
