"""``python -m fastbp``: the worked example, run as a user runs it.

The subprocess runs from a temporary directory, not the repository root, so
that ``import fastbp`` finds the installed package (with its compiled
kernels) rather than the unbuilt ``fastbp/`` source folder.
"""

import itertools
import os
import re
import subprocess
import sys

import pytest

import fastbp


def run(*args, tmp_path, backend=None):
    env = dict(os.environ)
    env.pop("FASTBP_BACKEND", None)
    if backend is not None:
        env["FASTBP_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-m", "fastbp", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """The output of `python -m fastbp` on each backend (run once per module)."""
    results = {}
    for name in fastbp.backends():
        results[name] = run(tmp_path=tmp_path_factory.mktemp(name), backend=name)
    return results


@pytest.fixture
def result(outputs, backend):
    return outputs[backend]


def test_runs_and_exits_0(result):
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_says_which_backend_ran(result, backend):
    assert f"backend: '{backend}'" in result.stdout


def value_of(out, label):
    """The last number on the line that starts with ``label =``."""
    match = re.search(rf"^\s*{re.escape(label)}\s*=.*?(-?\d+\.\d+)\s*(?:target.*)?$", out, re.M)
    assert match, f"no line for {label} in the output"
    return float(match.group(1))


def assert_printed(value, figure):
    """A printed value equals a published figure to the figure's digits."""
    tol = 0.5 * 10.0 ** -len(figure.split(".")[1])
    assert abs(value - float(figure)) <= tol, (value, figure)


def test_prints_the_key_figures(result):
    out = result.stdout
    for figure in ("0.75136507", "0.298371", "0.35891648", "0.082167041", "0.291027774"):
        assert figure in out


@pytest.mark.parametrize(
    "label, figure",
    [
        ("net_h1", "0.593269992"),  # out_h1, on the line of net_h1
        ("net_h2", "0.596884378"),
        ("net_o1", "0.75136507"),
        ("net_o2", "0.772928465"),
        ("E_total", "0.298371109"),
        ("w5", "0.35891648"),
        ("w6", "0.408666186"),
        ("w7", "0.511301270"),
        ("w8", "0.561370121"),
        ("w1", "0.149780716"),
        ("w2", "0.19956143"),
        ("w3", "0.24975114"),
        ("w4", "0.29950229"),
    ],
)
def test_prints_the_published_figures(result, label, figure):
    out = result.stdout
    if label.startswith("w"):  # the updated weight, in section 6
        out = out[out.index("6. The update") : out.index("7. Training")]
    assert_printed(value_of(out, label), figure)


def test_prints_the_float64_error_after_the_first_round(result):
    value = value_of(result.stdout, "error after the first round: E")
    assert value == pytest.approx(0.2910277737, abs=1e-9)  # not the article's rounded 0.291027924


def test_shows_the_chain_rule_for_w5(result):
    out = result.stdout
    assert "dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5" in out
    factors = {name: value_of(out, name) for name in ("dE/dout_o1", "dout_o1/dnet_o1", "dnet_o1/dw5")}
    assert factors["dE/dout_o1"] == pytest.approx(0.75136507 - 0.01, abs=1e-8)
    assert factors["dout_o1/dnet_o1"] == pytest.approx(0.75136507 * (1 - 0.75136507), abs=1e-8)
    assert factors["dnet_o1/dw5"] == pytest.approx(0.593269992, abs=1e-9)
    product = factors["dE/dout_o1"] * factors["dout_o1/dnet_o1"] * factors["dnet_o1/dw5"]
    assert product == pytest.approx(0.082167041, abs=1e-8)


def milestones(out):
    """{rounds: error} from the training table."""
    table = out[out.index("rounds   E after") :]
    return {int(n): float(e) for n, e in re.findall(r"^\s+(\d+)\s+(\d+\.\d+)\s*$", table, re.M)}


def test_shows_the_error_falling(result):
    errors = milestones(result.stdout)
    assert sorted(errors) == [1, 10, 100, 1000, 10000]
    assert errors[1] == pytest.approx(0.2910277737, abs=1e-9)
    values = [errors[n] for n in sorted(errors)]
    assert all(later < earlier for earlier, later in itertools.pairwise(values)), values
    assert errors[10000] < 1e-4  # the goal the walkthrough states, reached
    assert "stopped after 10000 rounds" in result.stdout
    assert "biases fixed" in result.stdout


def test_final_outputs_approach_the_targets(result):
    out = result.stdout
    final = out[out.index("final outputs vs targets") :]
    assert abs(value_of(final, "out_o1") - 0.01) < 0.01
    assert abs(value_of(final, "out_o2") - 0.99) < 0.01


def test_backends_print_the_same_figures(outputs):
    """Both backends compute the example in float64: the same text, the same
    numbers (to within rounding in the last printed digit)."""
    number = re.compile(r"-?\d+\.\d+(?:e[-+]\d+)?")
    texts = {name: r.stdout.replace(f"backend: '{name}'", "backend: ?") for name, r in outputs.items()}
    first, *others = texts.values()
    for text in others:
        assert number.sub("#", text) == number.sub("#", first)
        a = [float(v) for v in number.findall(text)]
        b = [float(v) for v in number.findall(first)]
        assert a == pytest.approx(b, rel=0, abs=2e-9)


def test_unexpected_argument_exits_2_with_usage_on_stderr(tmp_path):
    result = run("--epochs", "5", tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: python -m fastbp" in result.stderr
    assert "--epochs" in result.stderr


def test_help_exits_0_with_usage_on_stdout(tmp_path):
    result = run("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "usage: python -m fastbp" in result.stdout


def test_main_function_rejects_arguments(capsys):
    from fastbp.__main__ import main

    assert main(["unexpected"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage:" in captured.err
