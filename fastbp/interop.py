"""Other tools' file formats: FANN's training data and networks, and ONNX.

    >>> from fastbp.interop import load_fann, save_fann, read_fann_data, write_fann_data, save_onnx
    >>> net = load_fann("xor_float.net")                  # doctest: +SKIP
    >>> X, Y = read_fann_data("xor.data")                 # doctest: +SKIP
    >>> costs = net.train(X, Y, epochs=100, lr=0.5)       # doctest: +SKIP
    >>> save_fann(net, "xor_trained.net")                 # doctest: +SKIP
    >>> save_onnx(net, "xor.onnx")                        # doctest: +SKIP

``read_fann_data(path) -> (X, Y)`` and ``write_fann_data(path, X, Y)``: FANN's
training-data files (``.data``, ``.train``, ``.test``).  ``load_fann(path) ->
Network`` and ``save_fann(net, path)``: FANN's floating-point network files
(``.net``, ``FANN_FLO_2.1``, as ``fann_save`` writes them).  The formats, how
FANN's activations and steepness map onto fastbp's, how exact that is, and
what is refused: ``fastbp._fann``.

``save_onnx(model, path)`` writes a ``fastbp.Network``, or a fitted
``fastbp.sklearn.BPClassifier`` / ``BPRegressor``, as a standard ONNX model
(needs ``pip install 'fastbp[onnx]'``; the graph is described in
``fastbp._onnx``).  Importing this module imports neither onnx nor FANN.
"""

from ._fann import load_fann, read_fann_data, save_fann, write_fann_data
from ._onnx import save_onnx

__all__ = ["load_fann", "read_fann_data", "save_fann", "save_onnx", "write_fann_data"]
