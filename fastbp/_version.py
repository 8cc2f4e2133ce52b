"""fastbp's version, written here once: ``pyproject.toml`` reads it for the
package's metadata (``[tool.setuptools.dynamic]``), ``fastbp.__version__``
is this, and the model files and ONNX files fastbp writes record it."""

__version__ = "0.2.0"
