"""The backend registry: which module runs the kernels.

Two backends implement one interface (the functions listed in
``fastbp.reference.__all__``):

* ``"cython"``: ``fastbp._kernels``, the compiled kernels (the default);
* ``"python"``: ``fastbp.reference``, the pure-Python oracle (slow; for
  checking and for reading).

``FASTBP_BACKEND=python`` in the environment makes the reference the default.
There is no silent fallback: if the compiled module cannot be loaded, asking
for ``"cython"`` (or importing fastbp without forcing the reference) raises
``ImportError`` saying how to build it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

ENV_VAR = "FASTBP_BACKEND"

_MODULES = {"cython": "fastbp._kernels", "python": "fastbp.reference"}

_BUILD_HELP = (
    "fastbp's compiled kernels (fastbp._kernels) could not be loaded: {error}\n"
    "Build them by installing the package: `pip install .` from a source checkout "
    "(or `pip install -e . --no-build-isolation` for development, or "
    "`python setup.py build_ext --inplace`); this needs a C compiler, Cython>=3 and numpy>=2.\n"
    "If you are running from inside the source folder, the unbuilt `fastbp/` there may be "
    "hiding the installed package: run from another directory.\n"
    "To use the slow pure-Python reference backend on purpose, set {env}=python."
)


def backends() -> tuple[str, ...]:
    """The names of the available backends, the default first."""
    return tuple(_MODULES)


def default_backend() -> str:
    """The backend used when none is named: ``$FASTBP_BACKEND`` or ``"cython"``."""
    name = os.environ.get(ENV_VAR, "").strip()
    if not name:
        return "cython"
    if name not in _MODULES:
        raise ValueError(f"{ENV_VAR}={name!r} names no backend; choose one of {list(_MODULES)}")
    return name


def get_backend(name: str | None = None) -> ModuleType:
    """Return the module holding the kernel functions of backend ``name``
    (``None``: the default backend)."""
    if name is None:
        name = default_backend()
    if not isinstance(name, str):
        raise TypeError(f"backend must be a str naming one of {list(_MODULES)} or None, got {type(name).__name__}")
    if name not in _MODULES:
        raise ValueError(f"backend={name!r} names no backend; choose one of {list(_MODULES)}")
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as error:
        if name == "cython":
            raise ImportError(_BUILD_HELP.format(error=error, env=ENV_VAR)) from error
        raise


def require_default_backend() -> None:
    """Load the default backend now, so that ``import fastbp`` fails loudly
    when the compiled kernels are missing (unless the reference is forced)."""
    get_backend(default_backend())
