"""fastbp: fully connected sigmoid networks trained by backpropagation, fast.

    >>> import fastbp
    >>> net = fastbp.Network([2, 2, 2], seed=0)
    >>> costs = net.train([[0.05, 0.10]], [[0.01, 0.99]], epochs=100)

The arithmetic runs in compiled Cython kernels (``fastbp._kernels``); a
pure-Python reference backend with the same interface (``fastbp.reference``)
is the oracle they are tested against.  See ``fastbp.backends``.
"""

from ._errors import TrainingDivergedError
from ._version import __version__
from .backends import backends, get_backend, require_default_backend
from .network import Network, load
from .optimizers import RPROP, SGD, Adam

__all__ = [
    "RPROP",
    "SGD",
    "Adam",
    "Network",
    "TrainingDivergedError",
    "__version__",
    "backends",
    "get_backend",
    "load",
]

# Fail loudly at import when the compiled kernels are missing, unless the
# reference backend was chosen on purpose (FASTBP_BACKEND=python).
require_default_backend()
del require_default_backend
