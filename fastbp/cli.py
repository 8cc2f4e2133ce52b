"""The ``fastbp`` command: train a network from a CSV or FANN data file, predict with it, convert it.

    fastbp train DATA.csv --target y --layers 16,8 --epochs 200 --val 0.2 --out model.fbp --plot loss.png
    fastbp train DATA.csv --target c0,c1,c2 --activation relu --output-activation softmax --out model.fbp
    fastbp train --dataset spirals --out spirals.fbp --plot loss.png
    fastbp train DATA.csv --optimizer sgd --momentum 0.9 --nesterov --weight-decay 1e-4 --lr 0.05
    fastbp train DATA.csv --optimizer rprop --epochs 500
    fastbp train robot.train --layers 96 --out robot.net
    fastbp predict model.fbp DATA.csv --drop y --out predictions.csv
    fastbp convert fann_trained.net model.fbp
    fastbp dataset spirals --out spirals.csv
    fastbp example

``python -m fastbp COMMAND ...`` runs the same commands.  Data files are CSV
with a header row naming the columns, then one row of numbers per sample, or
FANN training-data files (by their extension: ``.data``, ``.train``,
``.test``; ``fastbp.interop.read_fann_data``), whose header says which
numbers are inputs and which are targets.  Model files are written in the
format their extension names (``.net``: FANN's, ``.onnx``: ONNX, anything
else: fastbp's own, ``net.save``), and read as fastbp model files or FANN
``.net`` files.

Exit status: 0 on success; 2 for bad input (a missing or malformed file, an
unknown column, a bad option value, a model file that does not load), with one
``fastbp: error: ...`` line on stderr; 1 when training diverges; 130 when
interrupted.  Output files are written whole or not at all.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

import numpy as np
import numpy.typing as npt

from . import _model, _scaling, _validation, _worked_example, datasets
from ._files import _atomic_file

Array = npt.NDArray[np.float64]

# Hyper-parameters for data from a file, and for each built-in dataset (chosen
# so that the dataset is learnt in seconds); an option given on the command
# line always wins.
DEFAULTS: dict[str, Any] = {"layers": (8,), "epochs": 100, "lr": 0.5, "val": 0.0}
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "xor": {"layers": (3,), "epochs": 2000, "lr": 2.0, "val": 0.0},
    "circles": {"layers": (8,), "epochs": 200, "lr": 0.5, "val": 0.2},
    "spirals": {"layers": (16, 16), "epochs": 2000, "lr": 0.5, "val": 0.2},
}

# --optimizer: the learning rate (for rprop, the initial step size) when --lr
# is not given.  Plain gradient descent and sgd use the file's or the dataset's
# default above; adam and rprop the optimizers' own (torch's) defaults.
OPTIMIZERS = ("sgd", "adam", "rprop")
OPTIMIZER_LR: dict[str, float | None] = {"sgd": None, "adam": 0.001, "rprop": 0.01}

# Inputs beyond this magnitude saturate sigmoid neurons with weights near 1.
LARGE_INPUT = 10.0

# The activations of hidden layers: softmax is for the output layer only.
HIDDEN_ACTIVATIONS = tuple(name for name in _model.ACTIVATIONS if name != "softmax")

# The range of each output activation's values: targets outside it are refused
# (None: unbounded on that side).
OUTPUT_RANGES: dict[str, tuple[float | None, float | None]] = {
    "sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "relu": (0.0, None),
    "leaky_relu": (None, None),
    "identity": (None, None),
}


COMMANDS = ("train", "predict", "convert", "dataset", "example")

# Data files read as FANN training data (fastbp.interop.read_fann_data) rather than CSV.
FANN_DATA_EXTENSIONS = (".data", ".train", ".test")
# Model formats by the output file's extension; any other extension is
# fastbp's own format (convert names it: .fbp).
MODEL_FORMATS = {".fbp": "fastbp", ".net": "FANN", ".onnx": "ONNX"}


MODULE_USAGE = f"""\
usage: python -m fastbp
       python -m fastbp {{{",".join(COMMANDS)}}} ...

With no arguments: prints the worked example of backpropagation (a 2-2-2
sigmoid network, one training round by hand, then training to a small error),
computed by fastbp.  FASTBP_BACKEND=python runs it on the pure-Python
reference backend instead of the compiled kernels.

With a command: the same as the `fastbp` command line tool, e.g.
`python -m fastbp train --dataset xor`; see `python -m fastbp train --help`.
"""


class CommandError(Exception):
    """Bad input: reported as one ``error:`` line, exit status 2."""

    status = 2


class DivergedError(CommandError):
    status = 1


# ----------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, prog: str = "fastbp") -> int:
    """Run the command in ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _parser(prog)
    args = parser.parse_args(argv)  # exits 2 with one error line on bad syntax
    try:
        run: Any = args.run
        status: int = run(args)
        return status
    except CommandError as error:
        sys.stderr.write(f"{prog}: error: {error}\n")
        return error.status
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `fastbp predict ... | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def module_main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastbp``: the worked example with no arguments, else the
    command in ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["-h"], ["--help"]):
        sys.stdout.write(MODULE_USAGE)
        return 0
    if not args:
        return _worked_example.main()
    if args[0] in COMMANDS:
        return main(args, prog="python -m fastbp")
    sys.stderr.write(MODULE_USAGE)
    sys.stderr.write(f"\nerror: unexpected argument(s): {' '.join(args)}\n")
    return 2


class _Parser(argparse.ArgumentParser):
    """argparse with errors as one line (``prog: error: ...``), exit status 2."""

    root_prog = "fastbp"

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.root_prog}: error: {message} (see '{self.prog} --help')\n")


def _parser(prog: str) -> argparse.ArgumentParser:
    class Parser(_Parser):
        root_prog = prog  # errors of the subcommands' parsers name the command too

    parser = Parser(
        prog=prog,
        description="Train fully connected networks by backpropagation, and predict with them.",
        epilog="Run 'python -m fastbp' with no arguments (or 'fastbp example') for the worked example.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a network on a CSV file, a FANN data file or a built-in dataset",
        description=(
            "Train a network on the rows of a CSV file (a header row, then numbers), a FANN training-data "
            "file (.data, .train, .test: the file's header says how many numbers of each sample are inputs "
            "and how many are targets, so --target does not apply) or a built-in dataset. In a CSV file the "
            "--target columns are the outputs, every other column is an input. Targets "
            "must lie in the range of the output activation: [0, 1] for sigmoid (the default) and "
            "softmax (whose target rows must also sum to 1, e.g. one-hot), [-1, 1] for tanh, >= 0 for "
            "relu, any value for identity and leaky_relu. Inputs are used as given: networks learn "
            "best with inputs roughly in [0, 1]; --scale min-max scales them and folds the scaling "
            "into the saved model, which then takes raw inputs."
        ),
        epilog="A built-in dataset has its own defaults: "
        + "; ".join(
            f"{name}: --layers {_show(d['layers'])} --epochs {d['epochs']} --lr {d['lr']:g} --val {d['val']:g}"
            for name, d in DATASET_DEFAULTS.items()
        )
        + ".",
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="the training data: a CSV file, or a FANN data file (.data, .train, .test)",
    )
    source.add_argument("--dataset", choices=datasets.names(), help="a built-in dataset instead of a file")
    train.add_argument(
        "--target",
        metavar="COLS",
        help="the target columns of a CSV file, by name or 0-based index (negative counts from the end), "
        "comma-separated (default: the last column); refused for a FANN data file, whose header says which "
        "numbers are targets",
    )
    train.add_argument(
        "--layers",
        type=_layers,
        metavar="N,N,...",
        help=f"hidden layer sizes, e.g. 64,32; '' for none (default for a file: {_show(DEFAULTS['layers'])})",
    )
    train.add_argument(
        "--activation",
        type=_hidden_activations,
        default=("sigmoid",),
        metavar="NAME[,NAME...]",
        help=f"the hidden layers' activation, one of {', '.join(HIDDEN_ACTIVATIONS)}: one name for every "
        "hidden layer, or one per hidden layer, comma-separated (default: sigmoid)",
    )
    train.add_argument(
        "--output-activation",
        choices=_model.ACTIVATIONS,
        default="sigmoid",
        metavar="NAME",
        help=f"the output layer's activation, one of {', '.join(_model.ACTIVATIONS)} (default: sigmoid)",
    )
    train.add_argument(
        "--loss",
        choices=_model.LOSSES,
        metavar="NAME",
        help=f"the cost minimised, one of {', '.join(_model.LOSSES)}; cross_entropy needs a sigmoid or "
        "softmax output (default: cross_entropy with a softmax output, which needs it, else squared_error)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        help=f"passes over the data (default for a file: {DEFAULTS['epochs']})",
    )
    train.add_argument(
        "--lr",
        type=_positive_float,
        help=f"learning rate; with --optimizer rprop, the initial step size (default: for a file {DEFAULTS['lr']} "
        f"without --optimizer and with sgd, {OPTIMIZER_LR['adam']:g} with adam, {OPTIMIZER_LR['rprop']:g} with rprop)",
    )
    train.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        metavar="NAME",
        help="sgd (fastbp.SGD: momentum, Nesterov, weight decay), adam (fastbp.Adam) or rprop (fastbp.RPROP, "
        "full-batch: one update per epoch over all training rows); default: plain gradient descent, or sgd when "
        "--momentum, --nesterov or --weight-decay is given",
    )
    train.add_argument(
        "--momentum",
        type=_momentum,
        metavar="MU",
        help="momentum in [0, 1), with --optimizer sgd (default: 0)",
    )
    train.add_argument(
        "--nesterov",
        action="store_true",
        help="Nesterov momentum, with --optimizer sgd and --momentum > 0",
    )
    train.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        metavar="WD",
        help="L2 weight decay added to the gradient (torch's weight_decay; on the biases too), with --optimizer "
        "sgd or adam (default: 0)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        help="samples per gradient step; 1 is online learning (default: 1; with --optimizer rprop, every training "
        "row, and no other value)",
    )
    train.add_argument(
        "--val",
        type=_fraction,
        metavar="FRACTION",
        help=f"fraction of the rows held out for validation (default for a file: {DEFAULTS['val']})",
    )
    train.add_argument(
        "--shuffle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="visit the training rows in a new random order each epoch (default: on)",
    )
    train.add_argument(
        "--scale",
        action="store_true",
        help="min-max scale the inputs into [0, 1] (from the training rows); the saved model takes raw inputs",
    )
    train.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seeds the weights, the validation split and the shuffling (default: 0)",
    )
    train.add_argument(
        "--dtype", choices=("float64", "float32"), default="float64", help="(default: float64)"
    )
    train.add_argument(
        "--out",
        metavar="MODEL",
        help="save the trained model to this file: FANN's format for .net (sigmoid, tanh and identity layers "
        "only), ONNX for .onnx, else fastbp's (fastbp.load reads it)",
    )
    train.add_argument(
        "--plot", metavar="PNG", help="draw the loss curves to this PNG file (needs matplotlib)"
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict",
        help="predict with a saved model",
        description=(
            "Write the model's outputs for each row of a CSV file, as CSV (columns output_0, output_1, "
            "...), to stdout or --out. By default every column is an input, and there must be as many "
            "columns as the model has inputs; --inputs or --drop choose the input columns otherwise "
            "(e.g. --drop y on the file the model was trained on). For a FANN data file (.data, .train, "
            ".test) the inputs are each sample's inputs, and --inputs and --drop do not apply."
        ),
    )
    predict.add_argument(
        "model",
        metavar="MODEL",
        help="a model file saved by 'fastbp train --out' or net.save, or a FANN .net file",
    )
    predict.add_argument("data", metavar="DATA", help="the input rows: a CSV file, or a FANN data file")
    columns = predict.add_mutually_exclusive_group()
    columns.add_argument("--inputs", metavar="COLS", help="the input columns, by name or 0-based index")
    columns.add_argument("--drop", metavar="COLS", help="columns that are not inputs (e.g. the targets)")
    predict.add_argument("--out", metavar="CSV", help="write the predictions to this file instead of stdout")
    predict.set_defaults(run=_predict)

    convert = commands.add_parser(
        "convert",
        help="convert a model between fastbp's, FANN's and ONNX's formats",
        description=(
            "Read MODEL, a fastbp model file (as net.save writes it) or a FANN network (.net, FANN_FLO_2.1, "
            "as fann_save writes it; fastbp.interop.load_fann), and write it to OUT in the format OUT's "
            "extension names: .fbp for fastbp's, .net for FANN's (sigmoid, tanh and identity layers only; "
            "fastbp.interop.save_fann), .onnx for ONNX (needs pip install 'fastbp[onnx]')."
        ),
    )
    convert.add_argument("model", metavar="MODEL", help="a fastbp model file or a FANN .net file")
    convert.add_argument("out", metavar="OUT", help="the file to write: .fbp, .net or .onnx")
    convert.set_defaults(run=_convert)

    dataset = commands.add_parser(
        "dataset",
        help="write a built-in dataset as CSV",
        description="Write a built-in dataset as CSV (inputs x1, x2 in [0, 1], target label), to stdout or --out.",
    )
    dataset.add_argument("name", choices=datasets.names())
    dataset.add_argument("--seed", type=_seed, default=0, help="draws the random datasets (default: 0)")
    dataset.add_argument("--out", metavar="CSV", help="write to this file instead of stdout")
    dataset.set_defaults(run=_dataset)

    example = commands.add_parser(
        "example",
        help="the worked example of backpropagation, step by step (as 'python -m fastbp')",
        description="Print the worked example of backpropagation, step by step.",
    )
    example.set_defaults(run=_example)
    return parser


# ----------------------------------------------------------------------
# Option values
# ----------------------------------------------------------------------


def _integer_at_least(minimum: int, what: str):
    """An argparse type: an integer >= minimum, else "expected <what>"."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _integer_at_least(1, "a positive integer")
_seed = _integer_at_least(0, "an integer >= 0")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _momentum(text: str) -> float:
    value = _finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a momentum in [0, 1), got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _layers(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    try:
        return tuple(_positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected hidden layer sizes as comma-separated positive integers like 64,32, got {text!r}"
        ) from None


def _hidden_activations(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    for name in names:
        if name not in _model.ACTIVATIONS:
            raise argparse.ArgumentTypeError(
                f"unknown activation {name!r} in {text!r} (choose from {', '.join(HIDDEN_ACTIVATIONS)})"
            )
        if name == "softmax":
            raise argparse.ArgumentTypeError(
                "softmax is for the output layer only (use --output-activation softmax)"
            )
    return names


def _show(sizes: Sequence[int], separator: str = ",") -> str:
    return separator.join(map(str, sizes))


# ----------------------------------------------------------------------
# CSV in and out
# ----------------------------------------------------------------------


@dataclass
class Table:
    """A CSV file's header and its rows of numbers."""

    path: str
    columns: list[str]
    values: Array  # (n_rows, n_columns)


def read_csv(path: str) -> Table:
    """Read a CSV file of numbers with a header row, refusing anything else
    with a message that says where and what."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            return _parse_csv(path, file)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        raise CommandError(f"{path} is not UTF-8 text (byte {byte:#04x} at offset {error.start})") from None
    except csv.Error as error:
        raise CommandError(f"{path} is not valid CSV: {error}") from None


def _parse_csv(path: str, file: TextIO) -> Table:
    reader = csv.reader(file)
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)  # blank lines before the header
    if header is None:
        raise CommandError(f"{path} is empty: expected a header row naming the columns, then rows of numbers")
    columns = [cell.strip() for cell in header]
    if all(_is_number(name) for name in columns):
        raise CommandError(
            f"{path}, line {reader.line_num}: the first row is all numbers, but it must be a header row "
            "naming the columns"
        )
    for index, name in enumerate(columns):
        if not name:
            raise CommandError(
                f"{path}, line {reader.line_num}: column {index} has no name in the header row"
            )
        if columns.index(name) != index:
            raise CommandError(f"{path}, line {reader.line_num}: the header names column {name!r} twice")
    rows: list[list[float]] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) != len(columns):
            raise CommandError(
                f"{path}, line {reader.line_num}: {len(cells)} cells, but the header has {len(columns)} columns"
            )
        rows.append([_number(cell, path, reader.line_num, name) for cell, name in zip(cells, columns)])
    if not rows:
        raise CommandError(f"{path} has a header row but no rows of data")
    return Table(path, columns, np.array(rows, dtype=np.float64))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(cell: str, path: str, line: int, column: str) -> float:
    where = f"{path}, line {line}, column {column!r}"
    text = cell.strip()
    if not text:
        raise CommandError(f"{where}: empty cell (missing values are not supported)")
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise CommandError(f"{where}: {cell!r} is not a finite number (missing values are not supported)")
    return value


def is_fann_data(path: str) -> bool:
    """Whether ``path`` is read as a FANN training-data file (by its extension)."""
    return os.path.splitext(path)[1].lower() in FANN_DATA_EXTENSIONS


def read_fann_file(path: str) -> tuple[Array, Array]:
    """``(X, Y)`` from a FANN training-data file, its problems as CommandError."""
    from .interop import read_fann_data

    try:
        X, Y = read_fann_data(path)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:  # names the file, the line and the problem
        raise CommandError(str(error)) from None
    return X, Y


def select_columns(table: Table, spec: str, option: str) -> list[int]:
    """The indices of the comma-separated columns in ``spec``: each a header
    name, or else a 0-based index (negative counts from the end)."""
    n = len(table.columns)
    indices: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if part in table.columns:
            index = table.columns.index(part)
        else:
            try:
                index = int(part)
            except ValueError:
                index = n  # not a name, not a number: unknown
            if not -n <= index < n:
                raise CommandError(
                    f"{option}: unknown column {part!r} in {table.path} (columns: {', '.join(table.columns)})"
                )
            index %= n
        if index in indices:
            raise CommandError(f"{option}: column {table.columns[index]!r} is named twice")
        indices.append(index)
    return indices


def _check_output(path: str | None, option: str) -> None:
    """Fail before the work, not after it, when an output cannot be written."""
    if path is None:
        return
    if not path:
        raise CommandError(f"{option}: the file name is empty")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a directory")
    if not os.path.isdir(directory):
        raise CommandError(f"{option} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise CommandError(f"{option} {path}: the directory {directory} is not writable")


def _write_csv(path: str | None, columns: Sequence[str], values: npt.NDArray[Any]) -> None:
    """Rows of numbers as CSV (shortest round-trip form) to ``path`` or stdout."""

    def write(file: TextIO) -> None:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([repr(float(v)) for v in row] for row in values)

    if path is None:
        write(sys.stdout)
        sys.stdout.flush()
        return
    try:
        with _atomic_file(path) as file:
            text = io.TextIOWrapper(file, encoding="utf-8", newline="")
            write(text)
            text.flush()
            text.detach()  # leave the file open: the atomic writer fsyncs and closes it
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None


# ----------------------------------------------------------------------
# fastbp train
# ----------------------------------------------------------------------


@dataclass
class Data:
    X: Array
    Y: Array
    source: str  # for the report: a file name or "the xor dataset"


def _train(args: argparse.Namespace) -> int:
    import fastbp

    defaults = DATASET_DEFAULTS[args.dataset] if args.dataset else DEFAULTS
    layers, epochs, lr, val = (
        defaults[name] if getattr(args, name) is None else getattr(args, name)
        for name in ("layers", "epochs", "lr", "val")
    )
    activations, loss = _model_names(args, len(layers))
    make_optimizer, lr, batch_size = _optimizer_options(args, lr)
    _check_output(args.out, "--out")
    if args.out is not None:
        _check_model_format(args.out, "--out", activations)
    _check_output(args.plot, "--plot")
    if args.plot is not None:
        _require_matplotlib()

    data = _training_data(args, activations[-1])
    train, valid = _split(data, val, np.random.default_rng([args.seed, 1]))
    # What the network trains on: the rows as given, or min-max scaled.
    scaling = _min_max(train.X) if args.scale else None
    fit_train, fit_valid = train, valid
    if scaling is None:
        _note_large_inputs(data.X)
    else:
        fit_train = _scaled(train, scaling)
        fit_valid = None if valid is None else _scaled(valid, scaling)

    sizes = [data.X.shape[1], *layers, data.Y.shape[1]]
    try:
        net = fastbp.Network(
            sizes,
            activation=activations[:-1],
            output_activation=activations[-1],
            loss=loss,
            seed=args.seed,
            dtype=args.dtype,
        )
    except (ValueError, TypeError, MemoryError) as error:
        raise CommandError(f"cannot make a {_show(sizes, '-')} network: {error}") from None

    optimizer = None if make_optimizer is None else make_optimizer()
    rule = {"lr": lr} if optimizer is None else {"optimizer": optimizer}
    progress = _Progress(epochs, quiet=args.quiet)
    val_costs: list[float] = []

    def after_epoch(epoch: int, cost: float) -> None:
        if fit_valid is not None:
            val_costs.append(net.cost(fit_valid.X, fit_valid.Y))
        progress.update(epoch, cost, val_costs[-1] if val_costs else None)

    try:
        with progress:
            costs = net.train(
                fit_train.X,
                fit_train.Y,
                epochs=epochs,
                **rule,
                batch_size=batch_size,
                shuffle=args.shuffle,
                seed=np.random.default_rng([args.seed, 2]),
                callback=after_epoch,
            )
    except fastbp.TrainingDivergedError as error:
        raise DivergedError(str(error)) from None
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None

    if scaling is not None:
        net = fold_scaling(net, *scaling)  # from here on, the network takes raw inputs

    how = f"lr {lr:g}" if optimizer is None else f"optimizer {optimizer!r}"
    batches = (
        f"batch size {batch_size}" if batch_size is not None else f"full batch ({len(fit_train.X)} rows)"
    )
    print(
        f"network: {_show(net.layer_sizes, '-')} ({_describe(net)}; {net.dtype}, backend {net.backend}), "
        f"{len(costs)} epochs, {how}, {batches}{', inputs min-max scaled' if scaling else ''}"
    )
    print(
        f"data: {data.source}, {len(train.X)} training rows, "
        f"{0 if valid is None else len(valid.X)} validation rows"
    )
    print(f"training:   {_metrics(net, train)}")
    if valid is not None:
        print(f"validation: {_metrics(net, valid)}")
    if args.out is not None:
        _save_model(net, args.out)
        print(f"saved the model to {args.out}{_format_note(args.out)}")
    if args.plot is not None:
        title = f"{_show(net.layer_sizes, '-')} network on {data.source}"
        _plot(args.plot, title, costs, val_costs)
        print(f"drew the loss curves to {args.plot}")
    return 0


def _optimizer_options(args: argparse.Namespace, default_lr: float) -> tuple[Any, float, int | None]:
    """(a function making the optimizer, or None for plain gradient descent;
    the learning rate; the batch size, None for RPROP's full batch), from
    --optimizer, --lr, --momentum, --nesterov, --weight-decay and
    --batch-size; a combination that means nothing is an error."""
    import fastbp

    name = args.optimizer
    sgd_options = [
        option
        for option, given in (("--momentum", args.momentum is not None), ("--nesterov", args.nesterov))
        if given
    ]
    if name is None and (sgd_options or args.weight_decay is not None):
        name = "sgd"  # --momentum etc. alone mean SGD with them
    if name is not None and name != "sgd" and sgd_options:
        verb = "apply" if len(sgd_options) > 1 else "applies"
        raise CommandError(f"{' and '.join(sgd_options)} {verb} to --optimizer sgd, not --optimizer {name}")
    if name == "rprop" and args.weight_decay is not None:
        raise CommandError("--weight-decay applies to --optimizer sgd or adam: RPROP has no weight decay")
    if name == "rprop" and args.batch_size is not None:
        raise CommandError(
            f"--optimizer rprop is full-batch (one update per epoch over all training rows): leave out "
            f"--batch-size {args.batch_size}"
        )
    momentum = 0.0 if args.momentum is None else args.momentum
    if args.nesterov and momentum == 0:
        raise CommandError("--nesterov needs --momentum > 0 (e.g. --momentum 0.9)")
    own_lr = None if name is None else OPTIMIZER_LR[name]
    lr: float = args.lr if args.lr is not None else (own_lr if own_lr is not None else default_lr)
    batch_size = None if name == "rprop" else (1 if args.batch_size is None else args.batch_size)
    weight_decay = 0.0 if args.weight_decay is None else args.weight_decay
    makers = {
        None: None,
        "sgd": lambda: fastbp.SGD(
            lr=lr, momentum=momentum, nesterov=args.nesterov, weight_decay=weight_decay
        ),
        "adam": lambda: fastbp.Adam(lr=lr, weight_decay=weight_decay),
        "rprop": lambda: fastbp.RPROP(lr=lr),
    }
    return makers[name], lr, batch_size


def _model_names(args: argparse.Namespace, n_hidden: int) -> tuple[tuple[str, ...], str]:
    """The activation of each layer and the loss, from --activation,
    --output-activation and --loss, checked as ``Network`` checks them."""
    hidden: Any = args.activation
    if len(hidden) == 1:
        hidden = hidden[0]  # one name for every hidden layer
    elif len(hidden) != n_hidden:
        raise CommandError(
            f"--activation names {len(hidden)} activations ({','.join(hidden)}) but there are {n_hidden} hidden "
            "layers: give one name for all of them, or one per hidden layer"
        )
    output = args.output_activation
    loss = args.loss
    if loss is None:
        loss = "cross_entropy" if output == "softmax" else "squared_error"
    if loss == "cross_entropy" and output not in ("sigmoid", "softmax"):
        raise CommandError(
            f"--loss cross_entropy needs outputs that are probabilities (--output-activation sigmoid or softmax), "
            f"not --output-activation {output}"
        )
    if output == "softmax" and loss != "cross_entropy":
        raise CommandError(
            f"--output-activation softmax is supported with --loss cross_entropy only, not --loss {loss}"
        )
    try:  # the library's own check, which the ones above mirror
        return _model.resolve(hidden, output, loss, n_hidden + 1)
    except (ValueError, TypeError) as error:
        raise CommandError(f"--activation/--output-activation/--loss: {error}") from None


def _describe(net: Any) -> str:
    """The model in words: "hidden relu, output softmax, loss cross_entropy"."""
    hidden = net.activations[:-1]
    parts = []
    if hidden:
        parts.append(f"hidden {hidden[0] if len(set(hidden)) == 1 else ','.join(hidden)}")
    parts += [f"output {net.activations[-1]}", f"loss {net.loss}"]
    return ", ".join(parts)


def _check_targets(Y: Array, names: Sequence[str], output: str) -> None:
    """Refuse targets the output activation cannot produce, naming the column."""
    low_limit, high_limit = OUTPUT_RANGES[output]
    for j, name in enumerate(names):
        low, high = Y[:, j].min(), Y[:, j].max()
        if (low_limit is not None and low < low_limit) or (high_limit is not None and high > high_limit):
            if high_limit is None:
                allowed = f"below {low_limit:g}"
                bounds = f">= {low_limit:g}"
            else:
                allowed = f"outside [{low_limit:g}, {high_limit:g}]"
                bounds = f"[{low_limit:g}, {high_limit:g}]"
            raise CommandError(
                f"target column {name!r} has values from {low:g} to {high:g}, {allowed}, the range of {output} "
                f"outputs: scale the targets into {bounds} first (e.g. (y - min) / (max - min)), or choose "
                "another --output-activation (identity outputs take any value)"
            )
    if output == "softmax":
        # Network's rule (fastbp._validation.softmax_row_sums), before training starts.
        sums, tolerance = _validation.softmax_row_sums(np.asarray(Y, dtype=np.float64))
        bad = np.flatnonzero(np.abs(sums - 1) > tolerance)
        if len(bad):
            raise CommandError(
                f"a softmax output needs target rows that sum to 1 (e.g. one-hot), but the targets "
                f"({', '.join(map(repr, names))}) of {len(bad)} rows do not: row {bad[0] + 1} of the data sums to "
                f"{sums[bad[0]]:g}"
            )


def _training_data(args: argparse.Namespace, output: str) -> Data:
    if args.dataset is not None:
        if args.target is not None:
            raise CommandError("--target applies to a data file, not to a built-in --dataset")
        X, Y = datasets.load(args.dataset, seed=args.seed)
        _check_targets(Y, datasets.TARGET_NAMES, output)
        return Data(X, Y, f"the {args.dataset} dataset")
    if is_fann_data(args.data):
        if args.target is not None:
            raise CommandError(
                f"--target applies to CSV files: {args.data} is a FANN data file, whose header says which numbers "
                "of each sample are inputs and which are targets"
            )
        X, Y = read_fann_file(args.data)
        _check_targets(Y, [f"output {k + 1}" for k in range(Y.shape[1])], output)
        return Data(X, Y, args.data)
    table = read_csv(args.data)
    if len(table.columns) < 2:
        raise CommandError(f"{table.path} has one column: it needs at least one input and one target column")
    targets = select_columns(table, args.target or "-1", "--target")
    inputs = [i for i in range(len(table.columns)) if i not in targets]
    if not inputs:
        raise CommandError("--target names every column: no input columns are left")
    Y = table.values[:, targets]
    _check_targets(Y, [table.columns[column] for column in targets], output)
    return Data(table.values[:, inputs], Y, table.path)


def _split(data: Data, fraction: float, rng: np.random.Generator) -> tuple[Data, Data | None]:
    """Hold out a random ``fraction`` of the rows for validation."""
    n = len(data.X)
    n_val = round(fraction * n)
    if fraction > 0 and not 1 <= n_val < n:
        raise CommandError(
            f"--val {fraction:g} of {n} rows leaves {n_val} validation and {n - n_val} training rows; "
            "both need at least one (use --val 0 for no validation)"
        )
    if n_val == 0:
        return data, None
    order = rng.permutation(n)
    held, kept = np.sort(order[:n_val]), np.sort(order[n_val:])
    return Data(data.X[kept], data.Y[kept], data.source), Data(data.X[held], data.Y[held], data.source)


def _min_max(X: Array) -> tuple[Array, Array]:
    """The minimum and the range of each column; a constant column gets range 1."""
    try:
        fitted = _scaling.fit_range(X, name="the input data")
    except ValueError as error:
        raise CommandError(f"--scale: {error}") from None
    return fitted.low, _scaling.divisor(fitted.span)


def _scaled(data: Data, scaling: tuple[Array, Array]) -> Data:
    low, span = scaling
    return Data(_scaling.to_unit(data.X, low, span), data.Y, data.source)


def fold_scaling(net: Any, low: Array, span: Array) -> Any:
    """The network that computes on raw inputs ``x`` what ``net`` computes on
    ``(x - low) / span``: the scaling is affine, so it folds into the first
    layer, ``W' = W / span`` and ``b' = b - W' @ low``."""
    import fastbp

    weights = [np.array(W, dtype=np.float64) for W in net.weights]
    biases = [np.array(b, dtype=np.float64) for b in net.biases]
    weights[0] = weights[0] / span
    biases[0] = biases[0] - weights[0] @ low
    return fastbp.Network.from_weights(
        weights,
        biases,
        activation=net.activations[:-1],
        output_activation=net.activations[-1],
        loss=net.loss,
        dtype=net.dtype,
        backend=net.backend,
    )


def _note_large_inputs(X: Array) -> None:
    largest = float(np.abs(X).max())
    if largest > LARGE_INPUT:
        sys.stderr.write(
            f"note: inputs reach {largest:g} in magnitude; networks learn best with inputs "
            "roughly in [0, 1] (try --scale)\n"
        )


def _metrics(net: Any, data: Data) -> str:
    """The mean cost J per row (of the network's loss), and the accuracy when every target is 0 or 1."""
    cost = net.cost(data.X, data.Y)
    text = f"cost {cost:.6g}"
    accuracy = _accuracy(net.forward(data.X), data.Y)
    if accuracy is not None:
        hits, n = accuracy
        text += f"  accuracy {hits / n:.4f} ({hits}/{n})"
    return text


def _accuracy(O: npt.NDArray[Any], Y: Array) -> tuple[int, int] | None:
    """(correct rows, rows) for 0/1 targets, else None.  One output: the class
    is ``o >= 0.5``.  One-hot targets: the class is the largest output.
    Other 0/1 targets (several labels per row): a row is correct when every
    output is on the right side of 0.5."""
    if not np.isin(Y, (0.0, 1.0)).all():
        return None
    if Y.shape[1] > 1 and (Y.sum(axis=1) == 1).all():
        correct = O.argmax(axis=1) == Y.argmax(axis=1)
    else:
        correct = ((O >= 0.5) == (Y == 1)).all(axis=1)
    return int(correct.sum()), len(Y)


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError(
            "--plot needs matplotlib, which is not installed: pip install 'fastbp[cli]' (or matplotlib)"
        ) from None


def _plot(path: str, title: str, costs: npt.NDArray[np.float64], val_costs: Sequence[float]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = np.arange(1, len(costs) + 1)
    axes.plot(epochs, costs, label="training (mean over each epoch's updates)")
    if len(val_costs):
        axes.plot(epochs, val_costs, label="validation (after each epoch)")
    axes.set_title(title)
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean cost J per row")
    if min(costs) > 0 and (not len(val_costs) or min(val_costs) > 0):
        axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    try:
        with _atomic_file(path) as file:
            figure.savefig(file, format="png", dpi=100)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None


class _Progress:
    """Per-epoch progress on stderr: a tqdm bar on a terminal, otherwise (or
    without tqdm) a plain line every tenth of the run."""

    def __init__(self, epochs: int, *, quiet: bool) -> None:
        self.epochs = epochs
        self.quiet = quiet
        self.every = max(1, epochs // 10)
        self.bar: Any = None
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(
                    total=epochs, unit="epoch", desc="training", file=sys.stderr, dynamic_ncols=True
                )

    def update(self, epoch: int, cost: float, val_cost: float | None) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            postfix = {"cost": f"{cost:.4g}"}
            if val_cost is not None:
                postfix["val"] = f"{val_cost:.4g}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)
        elif epoch == 1 or epoch % self.every == 0 or epoch == self.epochs:
            line = f"epoch {epoch}/{self.epochs}: cost {cost:.6g}"
            if val_cost is not None:
                line += f", validation cost {val_cost:.6g}"
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------
# fastbp predict, dataset, example
# ----------------------------------------------------------------------


def _predict(args: argparse.Namespace) -> int:
    _check_output(args.out, "--out")
    net = load_model(args.model)
    n_inputs = net.layer_sizes[0]
    if is_fann_data(args.data):
        if args.inputs is not None or args.drop is not None:
            raise CommandError(
                f"--inputs and --drop apply to CSV files: the inputs of {args.data}, a FANN data file, are given "
                "by its header"
            )
        X, _ = read_fann_file(args.data)
        if X.shape[1] != n_inputs:
            raise CommandError(
                f"the model takes {n_inputs} inputs, but the samples of {args.data} have {X.shape[1]}"
            )
        _write_csv(args.out, [f"output_{k}" for k in range(net.layer_sizes[-1])], _outputs(net, X, args.data))
        return 0
    table = read_csv(args.data)
    if args.inputs is not None:
        inputs = select_columns(table, args.inputs, "--inputs")
    else:
        dropped = select_columns(table, args.drop, "--drop") if args.drop is not None else []
        inputs = [i for i in range(len(table.columns)) if i not in dropped]
    if len(inputs) != n_inputs:
        raise CommandError(
            f"the model takes {n_inputs} inputs, but {len(inputs)} columns of {table.path} are inputs "
            f"({', '.join(table.columns[i] for i in inputs) or 'none'}): choose them with --inputs or --drop"
        )
    outputs = _outputs(net, table.values[:, inputs], table.path)
    _write_csv(args.out, [f"output_{k}" for k in range(outputs.shape[1])], outputs)
    return 0


def _outputs(net: Any, X: Array, source: str) -> npt.NDArray[Any]:
    try:
        outputs: npt.NDArray[Any] = net.forward(X)
    except (ValueError, TypeError, FloatingPointError) as error:
        raise CommandError(f"cannot predict on {source}: {error}") from None
    return outputs


# ----------------------------------------------------------------------
# Model files: fastbp's, FANN's, ONNX; fastbp convert
# ----------------------------------------------------------------------


def _model_format(path: str) -> str:
    """The format a model file is written in, by its extension: fastbp's unless it is .net or .onnx."""
    return MODEL_FORMATS.get(os.path.splitext(path)[1].lower(), "fastbp")


def _format_note(path: str) -> str:
    fmt = _model_format(path)
    return "" if fmt == "fastbp" else f" (in {fmt}'s format)"


def _is_fann_network(path: str) -> bool:
    """A FANN .net file, by its extension or its first bytes ("FANN_")."""
    if os.path.splitext(path)[1].lower() == ".net":
        return True
    try:
        with open(path, "rb") as file:
            return file.read(5) == b"FANN_"
    except OSError:
        return False  # fastbp.load reports it


def load_model(path: str) -> Any:
    """The network in a fastbp model file or a FANN .net file; every failure
    to load is a CommandError naming the file.  A FANN file's warning (its
    data-scaling parameters are left out) is printed as a note."""
    import fastbp

    from .interop import load_fann

    loader = load_fann if _is_fann_network(path) else fastbp.load
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            net = loader(path)
    except OSError as error:
        raise CommandError(f"cannot load the model {path}: {error.strerror or error}") from None
    except Exception as error:  # any failure to load is the file's fault, reported as such
        message = str(error)
        if path not in message:
            message = f"cannot load the model {path}: {message}"
        raise CommandError(message) from None
    for warning in caught:
        sys.stderr.write(f"note: {warning.message}\n")
    return net


def _onnx_writer() -> Any:
    """``save_onnx(net, path)``, or a CommandError when onnx is not installed
    (checked before training, so that a run does not end unsaved)."""
    from . import _onnx

    try:
        _onnx._import_onnx()
    except ModuleNotFoundError as error:
        raise CommandError(f"writing .onnx: {error}") from None
    return _onnx.save_onnx


def _check_model_format(path: str, option: str, activations: Sequence[str]) -> None:
    """Fail before training when the model could not be written in the format ``path`` names."""
    fmt = _model_format(path)
    if fmt == "FANN":
        from ._fann import check_fann_activations

        try:
            check_fann_activations(activations)
        except ValueError as error:
            raise CommandError(f"{option} {path}: cannot write a FANN network: {error}") from None
    elif fmt == "ONNX":
        _onnx_writer()


def _save_model(net: Any, path: str) -> None:
    """Write ``net`` to ``path`` in the format its extension names, atomically."""
    fmt = _model_format(path)
    try:
        if fmt == "FANN":
            from .interop import save_fann

            save_fann(net, path)
        elif fmt == "ONNX":
            _onnx_writer()(net, path)
        else:
            net.save(path)
    except OSError as error:
        raise CommandError(f"cannot save the model to {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise CommandError(f"cannot save the model to {path}: {error}") from None


def _convert(args: argparse.Namespace) -> int:
    extension = os.path.splitext(args.out)[1].lower()
    if extension not in MODEL_FORMATS:
        raise CommandError(
            f"OUT {args.out}: the extension {extension or '(none)'} names no model format: use .fbp (fastbp), "
            ".net (FANN) or .onnx (ONNX)"
        )
    _check_output(args.out, "OUT")
    net = load_model(args.model)
    _check_model_format(args.out, "OUT", net.activations)
    _save_model(net, args.out)
    print(
        f"wrote {args.out} in {MODEL_FORMATS[extension]}'s format: {_show(net.layer_sizes, '-')} network "
        f"({_describe(net)}; {net.dtype})"
    )
    return 0


def _dataset(args: argparse.Namespace) -> int:
    _check_output(args.out, "--out")
    X, Y = datasets.load(args.name, seed=args.seed)
    _write_csv(args.out, [*datasets.INPUT_NAMES, *datasets.TARGET_NAMES], np.hstack([X, Y]))
    return 0


def _example(args: argparse.Namespace) -> int:
    return _worked_example.main()
