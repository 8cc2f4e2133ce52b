"""The backend registry: which module runs the kernels.

Two backends implement one interface (the functions listed in
``fastbp.reference.__all__``):

* ``"cython"``: the compiled kernels (the default), in one of the copies
  built for the instruction sets this CPU runs: ``fastbp._kernels_v4``
  (x86-64-v4, AVX-512), ``_kernels_v3`` (x86-64-v3, AVX2) or ``_kernels``
  (baseline).  All copies give the same bits, so the choice is only about
  speed, and it is made by the network's shape (:func:`isa_for`): measured on
  AMD Zen 3, a network whose every layer is narrower than 8 neurons runs
  5-20% faster on the baseline copy (nothing there fills a vector, and the
  wide copies pay for mixing vector widths around libm's ``exp``), any wider
  one up to 2.5x faster on the widest copy.
  ``FASTBP_ISA=baseline|x86-64-v3|x86-64-v4`` forces one for every network
  (``ImportError`` if this CPU or build cannot run it);
* ``"python"``: ``fastbp.reference``, the pure-Python oracle (slow; for
  checking and for reading).

``FASTBP_BACKEND=python`` in the environment makes the reference the default.
There is no silent fallback: if the compiled module cannot be loaded, asking
for ``"cython"`` (or importing fastbp without forcing the reference) raises
``ImportError`` saying how to build it.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

ENV_VAR = "FASTBP_BACKEND"
ISA_VAR = "FASTBP_ISA"

# The compiled copies, best first: (instruction set, module).
_ISA_MODULES = (
    ("x86-64-v4", "fastbp._kernels_v4"),
    ("x86-64-v3", "fastbp._kernels_v3"),
    ("baseline", "fastbp._kernels"),
)

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


@functools.cache  # what the CPU runs and what was built do not change
def isa_modules() -> dict[str, ModuleType]:
    """The compiled copies that were built and that this CPU can run, by
    instruction set, best first.  The baseline copy answers what the CPU runs."""
    baseline = importlib.import_module("fastbp._kernels")
    found = {}
    for isa, module in _ISA_MODULES:
        if not baseline.cpu_runs(isa):
            continue
        try:
            copy = importlib.import_module(module)
        except ModuleNotFoundError:
            continue  # not built for this platform or compiler
        if _directory(copy) != _directory(baseline):
            # Found by another finder (an editable install's, say) in another
            # build: the copies must come from one build, beside the baseline.
            continue
        found[isa] = copy
    return found


def _directory(module: ModuleType) -> str | None:
    """The folder a module was loaded from (None where it has no file)."""
    file = getattr(module, "__file__", None)
    return os.path.dirname(os.path.realpath(file)) if file else None


# Below this width no layer fills a vector (the kernels' whole-layer sigmoid
# and 32-wide dot products start there): the baseline copy is the faster.
_VECTOR_WIDTH = 8


def isa_for(sizes: tuple[int, ...] | None) -> str | None:
    """The instruction set whose copy runs a network of these layer sizes
    fastest, by the rule above, or ``None`` for the widest the CPU runs."""
    if sizes is not None and max(sizes) < _VECTOR_WIDTH:
        return "baseline"
    return None


def _compiled(sizes: tuple[int, ...] | None = None) -> ModuleType:
    available = isa_modules()
    wanted = os.environ.get(ISA_VAR, "").strip()
    if not wanted:
        best = isa_for(sizes)
        return available[best] if best in available else next(iter(available.values()))
    if wanted not in dict(_ISA_MODULES):
        raise ValueError(
            f"{ISA_VAR}={wanted!r} names no instruction set; choose one of {list(dict(_ISA_MODULES))}"
        )
    if wanted not in available:
        raise ImportError(
            f"{ISA_VAR}={wanted}: this CPU cannot run it or it was not built; available: {list(available)}"
        )
    return available[wanted]


def get_backend(name: str | None = None, sizes: tuple[int, ...] | None = None) -> ModuleType:
    """Return the module holding the kernel functions of backend ``name``
    (``None``: the default backend); for ``"cython"``, the compiled copy that
    runs a network of layer sizes ``sizes`` fastest (:func:`isa_for`;
    ``None``: the widest this CPU runs)."""
    if name is None:
        name = default_backend()
    if not isinstance(name, str):
        raise TypeError(
            f"backend must be a str naming one of {list(_MODULES)} or None, got {type(name).__name__}"
        )
    if name not in _MODULES:
        raise ValueError(f"backend={name!r} names no backend; choose one of {list(_MODULES)}")
    try:
        return _compiled(sizes) if name == "cython" else importlib.import_module(_MODULES[name])
    except ImportError as error:
        if name == "cython":
            raise ImportError(_BUILD_HELP.format(error=error, env=ENV_VAR)) from error
        raise


def require_default_backend() -> None:
    """Load the default backend now, so that ``import fastbp`` fails loudly
    when the compiled kernels are missing (unless the reference is forced)."""
    get_backend(default_backend())
