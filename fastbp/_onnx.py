"""Export to ONNX: ``save_onnx`` (public as ``fastbp.interop.save_onnx``).

The exported file is a standard ONNX model of the default domain only (opset
``DEFAULT_OPSET`` unless asked; any from ``MIN_OPSET`` up to what the installed
``onnx`` knows), built with ``onnx.helper`` and accepted by
``onnx.checker.check_model(..., full_check=True)`` before anything is written.
``onnx`` is an optional dependency (``pip install 'fastbp[onnx]'``), imported
only when ``save_onnx`` runs; running the model needs an ONNX runtime such as
``onnxruntime`` (which the tests compare against ``Network.forward``).

**A network.** One input ``"input"`` of shape ``[N, n_0]`` and one output
``"output"`` of shape ``[N, n_L]`` (``N`` symbolic, the batch), both of the
network's dtype (``float32``: ONNX ``FLOAT``, ``float64``: ``DOUBLE``).  Layer
``l`` is one ``Gemm`` node, ``z = a W^T + b`` with ``transB=1`` (so its weight
initializer ``layer{l}.weight`` is ``net.weights[l-1]`` as it is, ``(n_out,
n_in)``, and ``layer{l}.bias`` is ``net.biases[l-1]``), then its activation:
``Sigmoid``, ``Tanh``, ``Relu``, ``Softmax`` (``axis=-1``), none for
``identity``, and for ``leaky_relu`` a ``LeakyRelu`` node in float32.  In
float64 ``leaky_relu`` is ``Max(z, z * 0.01)`` instead (a ``Mul`` by a double
constant and a ``Max``; equal to ``z if z >= 0 else 0.01 z`` because the slope
is below 1): ``LeakyRelu``'s ``alpha`` is a 32-bit float attribute, and
``float32(0.01)`` differs from fastbp's slope by 2e-8 relative, which a
float64 network would show.  ``Gemm`` rather than ``MatMul`` + ``Add``: one
node per product-plus-bias, on the 2-D input a network takes, with the
weights stored in fastbp's own layout (no transposed copy).

**An estimator** (a fitted ``fastbp.sklearn.BPClassifier`` or
``BPRegressor``): the network of ``network_`` (the estimator converts its
input to the network's dtype and does nothing else to it, so the graph's
input is the network's), then the estimator's own mapping of the outputs,
with skl2onnx's output names:

* ``BPClassifier``: ``"label"``, what ``predict`` returns (``classes_[1]``
  where the sigmoid output exceeds 0.5 for two classes, ``classes_`` at the
  first largest output for more, shape ``[N]``, of ``classes_``'s type:
  ``INT64``, ``STRING``, ...; a multilabel model's 0/1 ``INT64`` indicator,
  ``[N, n_labels]``), and ``"probabilities"``, what ``predict_proba`` returns,
  ``DOUBLE`` ``[N, n_classes]`` (``[1 - o, o]`` for two classes, computed in
  float64 as ``predict_proba`` does, the softmax, or the sigmoid outputs
  divided by their row sum, a zero row uniform);
* ``BPRegressor``: ``"variable"``, what ``predict`` returns, ``DOUBLE``
  (``y_center_ + (o - 0.5) * y_scale_`` with ``out_activation="logistic"``),
  of shape ``[N]`` for a regressor fitted on a 1-D ``y``, ``[N, n_outputs]``
  otherwise.

Every model records fastbp's version (``producer_version``, and the
``fastbp_version`` metadata entry), the network (its ``repr`` in the model's
``doc_string``; ``layer_sizes``, ``activations``, ``loss``, ``dtype`` and, for
an estimator, ``estimator`` in ``metadata_props``).
"""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np

from . import _files, _model
from ._version import __version__
from .network import Network

DEFAULT_OPSET = 17  # run by every onnxruntime the extra allows (tested: 1.20 and 1.32)
MIN_OPSET = 13  # Softmax over one axis, ReduceSum's axes as an input
INPUT_NAME, OUTPUT_NAME = "input", "output"
BATCH = "N"
# A model is one protobuf message, which cannot exceed 2 GiB; larger tensors
# would need ONNX's external-data files, which save_onnx does not write.
MAX_PROTOBUF_BYTES = 2**31 - 1
# Room under the limit for everything besides the parameters (names, nodes).
_OVERHEAD_BYTES = 1 << 20

_ACTIVATION_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax"}


def save_onnx(model, path, *, opset=DEFAULT_OPSET):
    """Write ``model`` (a ``fastbp.Network``, or a fitted
    ``fastbp.sklearn.BPClassifier`` / ``BPRegressor``) to ``path`` (str or
    os.PathLike) as an ONNX model of opset ``opset``, atomically, as
    ``Network.save`` writes (a failure leaves the previous file, or none).

    The graph is described in ``fastbp._onnx``.  Raises ``TypeError`` for a
    ``model`` of another type, a ``path`` that is not a path or an ``opset``
    that is not an int; sklearn's ``NotFittedError`` (a ``ValueError``) for an
    unfitted estimator; ``ValueError`` for an ``opset`` out of range, NaN or
    infinite weights, or parameters too large for one ONNX file (2 GiB);
    ``ModuleNotFoundError`` when ``onnx`` is not installed; the usual
    ``OSError`` when ``path`` cannot be written.
    """
    net, estimator = _network_of(model)
    path = _files._path(path)
    onnx = _import_onnx()
    opset = _checked_opset(opset, onnx)
    # One copy of the parameters, which the checks and the graph both use
    # (another thread may be training the network).
    layers = [
        (W.copy(), b.copy(), activation) for W, b, activation in zip(net.weights, net.biases, net.activations)
    ]
    params = [a for W, b, _ in layers for a in (W, b)]
    n_bytes = sum(a.nbytes for a in params)
    if n_bytes > MAX_PROTOBUF_BYTES - _OVERHEAD_BYTES:
        raise ValueError(
            f"cannot export {net!r} to {path!r}: its parameters take {n_bytes} bytes, more than one ONNX "
            f"file (a protobuf message of at most {MAX_PROTOBUF_BYTES} bytes) can hold"
        )
    if not all(np.isfinite(a).all() for a in params):
        raise ValueError(f"cannot export {net!r} to {path!r}: it holds NaN or infinite weights")
    proto = _model_proto(onnx, net, layers, estimator, opset)
    onnx.checker.check_model(proto, full_check=True)
    _files._write_atomically(path, [proto.SerializeToString()])


def _network_of(model):
    """``(network, estimator or None)`` of what ``save_onnx`` was given."""
    if isinstance(model, Network):
        return model, None
    # Only an imported fastbp.sklearn can have made an estimator: no need to
    # import scikit-learn to refuse anything else.
    estimators = sys.modules.get("fastbp.sklearn")
    if estimators is not None and isinstance(model, (estimators.BPClassifier, estimators.BPRegressor)):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model)  # NotFittedError, naming the estimator
        return model.network_, model
    kind = type(model)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    raise TypeError(
        f"model must be a fastbp.Network or a fitted fastbp.sklearn.BPClassifier or BPRegressor, got {name}"
    )


def _import_onnx():
    try:
        # import_module, not `import onnx`: mypy then types the module as Any
        # and `mypy` stays clean where the optional onnx is absent.
        return importlib.import_module("onnx")
    except ImportError as e:
        raise ModuleNotFoundError(
            f"save_onnx needs the onnx package ({e}); install it with: pip install 'fastbp[onnx]'",
            name="onnx",
        ) from e


def _checked_opset(opset, onnx):
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(
            f"opset must be an int from {MIN_OPSET} to {newest}, got {type(opset).__name__} {opset!r}"
        )
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"opset must be from {MIN_OPSET} to {newest} (the newest this onnx {onnx.__version__} knows), got {opset}"
        )
    return int(opset)


class _Graph:
    """Nodes and initializers, collected in order, with names made unique."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes = []
        self.initializers = []

    def constant(self, name, array):
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, output, **attributes):
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _tensor_type(onnx, dtype):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _network_nodes(graph, layers, x, output):
    """The layers ``[(W, b, activation)]`` from ``x``, the last one's result named ``output``."""
    for l, (W, b, activation) in enumerate(layers, start=1):
        last = l == len(layers)
        weight = graph.constant(f"layer{l}.weight", W)
        bias = graph.constant(f"layer{l}.bias", b)
        z = output if last and activation == "identity" else f"layer{l}.z"
        graph.node("Gemm", [x, weight, bias], z, transB=1)
        a = output if last else f"layer{l}.{activation}"
        if activation == "identity":
            x = z
        elif activation == "leaky_relu" and W.dtype == np.float64:
            slope = graph.constant(f"layer{l}.slope", np.array(_model.LEAKY_SLOPE, dtype=W.dtype))
            scaled = graph.node("Mul", [z, slope], f"layer{l}.slope_z")
            x = graph.node("Max", [z, scaled], a)
        elif activation == "leaky_relu":
            x = graph.node("LeakyRelu", [z], a, alpha=_model.LEAKY_SLOPE)
        elif activation == "softmax":
            x = graph.node("Softmax", [z], a, axis=-1)
        else:
            x = graph.node(_ACTIVATION_OPS[activation], [z], a)
    return x


def _as_double(graph, onnx, net, o):
    """``o`` in float64, as the estimators' ``astype(np.float64)`` makes it."""
    if net.dtype == np.float64:
        return o
    return graph.node("Cast", [o], "outputs_float64", to=onnx.TensorProto.DOUBLE)


def _classes_tensor(graph, onnx, classes):
    """``classes_`` as a constant, and its ONNX element type."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "US" or (classes.dtype == object and all(isinstance(c, str) for c in classes)):
        graph.initializers.append(
            onnx.helper.make_tensor(
                "classes", onnx.TensorProto.STRING, [len(classes)], [str(c).encode("utf-8") for c in classes]
            )
        )
        return "classes", onnx.TensorProto.STRING
    if classes.dtype.kind not in "biuf":
        raise ValueError(
            f"cannot export the classifier's classes_ of dtype {classes.dtype} ({classes.tolist()!r}): ONNX "
            "labels can be numbers, booleans or strings"
        )
    return graph.constant("classes", classes), _tensor_type(onnx, classes.dtype)


def _classifier_nodes(graph, onnx, estimator, net, o):
    """``[(name, elem_type, shape)]`` of the outputs, after the nodes that make them."""
    kind = estimator._label_binarizer.y_type_
    n_out = net.layer_sizes[-1]
    p = _as_double(graph, onnx, net, o)
    # predict: LabelBinarizer.inverse_transform, threshold 0.5 (its labels' midpoint), argmax for more.
    if kind.startswith("multilabel") or kind == "binary":
        half = graph.constant("half", np.array(0.5, dtype=net.dtype))
        above = graph.node("Greater", [o, half], "above_half")
    if kind.startswith("multilabel"):
        graph.node("Cast", [above], "label", to=onnx.TensorProto.INT64)
        label = ("label", onnx.TensorProto.INT64, [BATCH, n_out])
    else:
        classes, classes_type = _classes_tensor(graph, onnx, estimator.classes_)
        if kind == "binary":
            chosen = graph.node("Cast", [above], "chosen_column", to=onnx.TensorProto.INT64)
            flat = graph.constant("flat_shape", np.array([-1], dtype=np.int64))
            index = graph.node("Reshape", [chosen, flat], "class_index")
        else:
            index = graph.node("ArgMax", [o], "class_index", axis=1, keepdims=0)
        graph.node("Gather", [classes, index], "label", axis=0)
        label = ("label", classes_type, [BATCH])
    # predict_proba, in float64 as it is computed there.
    if kind == "binary":
        one = graph.constant("one", np.array(1.0))
        complement = graph.node("Sub", [one, p], "complement")
        graph.node("Concat", [complement, p], "probabilities", axis=1)
        n_columns = 2
    elif kind.startswith("multilabel") or net.activations[-1] == "softmax":
        graph.node("Identity", [p], "probabilities")
        n_columns = n_out
    else:
        axes = graph.constant("row_axis", np.array([1], dtype=np.int64))
        sums = graph.node("ReduceSum", [p, axes], "row_sums", keepdims=1)
        ratios = graph.node("Div", [p, sums], "ratios")
        zero = graph.constant("zero", np.array(0.0))
        positive = graph.node("Greater", [sums, zero], "row_sum_positive")
        uniform = graph.constant("uniform", np.array(1.0 / n_out))
        graph.node("Where", [positive, ratios, uniform], "probabilities")
        n_columns = n_out
    return [label, ("probabilities", onnx.TensorProto.DOUBLE, [BATCH, n_columns])]


def _regressor_nodes(graph, onnx, estimator, net, o):
    y = _as_double(graph, onnx, net, o)
    encoding = estimator._encoding_
    if "y_center_" in encoding:
        half = graph.constant("half", np.array(0.5))
        centred = graph.node("Sub", [y, half], "outputs_centred")
        scale = graph.constant("y_scale", np.asarray(encoding["y_scale_"], dtype=np.float64))
        scaled = graph.node("Mul", [centred, scale], "outputs_scaled")
        center = graph.constant("y_center", np.asarray(encoding["y_center_"], dtype=np.float64))
        y = graph.node("Add", [center, scaled], "targets")
    if encoding["_y_ndim"] == 1:
        flat = graph.constant("flat_shape", np.array([-1], dtype=np.int64))
        graph.node("Reshape", [y, flat], "variable")
        shape = [BATCH]
    else:
        graph.node("Identity", [y], "variable")
        shape = [BATCH, net.layer_sizes[-1]]
    return [("variable", onnx.TensorProto.DOUBLE, shape)]


def _model_proto(onnx, net, layers, estimator, opset):
    helper = onnx.helper
    graph = _Graph(onnx)
    elem_type = _tensor_type(onnx, net.dtype)
    if estimator is None:
        _network_nodes(graph, layers, INPUT_NAME, OUTPUT_NAME)
        outputs = [(OUTPUT_NAME, elem_type, [BATCH, net.layer_sizes[-1]])]
        what = "fastbp.Network"
    else:
        o = _network_nodes(graph, layers, INPUT_NAME, "network_output")
        classifier = isinstance(estimator, sys.modules["fastbp.sklearn"].BPClassifier)
        add_outputs = _classifier_nodes if classifier else _regressor_nodes
        outputs = add_outputs(graph, onnx, estimator, net, o)
        what = f"fastbp.sklearn.{type(estimator).__name__}"
    description = f"{what}: {net!r}, exported by fastbp {__version__}"
    graph_proto = helper.make_graph(
        graph.nodes,
        what,
        [helper.make_tensor_value_info(INPUT_NAME, elem_type, [BATCH, net.layer_sizes[0]])],
        [helper.make_tensor_value_info(name, kind, shape) for name, kind, shape in outputs],
        initializer=graph.initializers,
        doc_string=description,
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph_proto,
        opset_imports=opsets,
        producer_name="fastbp",
        producer_version=__version__,
        doc_string=description,
        # The oldest IR version that has this opset: the newest onnx's default
        # would make the file unreadable to runtimes older than it.
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    metadata = {
        "fastbp_version": __version__,
        "layer_sizes": json.dumps(list(net.layer_sizes)),
        "activations": json.dumps(list(net.activations)),
        "loss": net.loss,
        "dtype": net.dtype.name,
    }
    if estimator is not None:
        metadata["estimator"] = what
    helper.set_model_props(proto, metadata)
    return proto
