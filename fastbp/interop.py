"""Other frameworks' formats: export to ONNX (``save_onnx``).

``save_onnx(model, path)`` writes a ``fastbp.Network``, or a fitted
``fastbp.sklearn.BPClassifier`` / ``BPRegressor``, as a standard ONNX model
(needs ``pip install 'fastbp[onnx]'``; the graph is described in
``fastbp._onnx``).
"""

from ._onnx import save_onnx

__all__ = ["save_onnx"]
