"""Build the compiled kernels.

Compiler directives live here, once, for every .pyx in the package.  Set
``FASTBP_DEBUG=1`` in the environment at build time to turn bounds checking,
negative-index wrapping and memoryview initialisation checks back on (an
out-of-bounds index then raises IndexError instead of reading stray memory),
and to build without optimisation.

Default builds target the baseline instruction set of the platform (no
``-march=native``) so that a wheel runs on any machine of its architecture.
On x86-64 with GCC or Clang the same kernels are also compiled for
x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512) as ``fastbp._kernels_v3`` and
``_kernels_v4``; ``fastbp.backends`` loads the best one the CPU runs.  Every
copy is built with ``-ffp-contract=off`` (no fused multiply-add contraction),
so all of them round every operation the same way and give the same bits.
``FASTBP_NATIVE=1`` adds ``-march=native`` to the baseline copy for a local,
non-portable build.  ``FASTBP_BASELINE_ONLY=1`` builds the baseline copy
alone: the others are the same source under other flags, so the bounds-checked
build of ``tests/test_debug_build.py`` needs only one.  Importing a wider copy
on a CPU that cannot run it raises ImportError, from a module entry point
compiled for the baseline (``fastbp/_isa_guard.pxi``; ``define_macros`` below
wires it in).

The copies are cythonized and compiled in parallel (one compiler per copy, or
one per CPU if there are more CPUs; ``FASTBP_BUILD_JOBS=N`` or ``build_ext
-j N`` sets another number).

The generated C goes to ``build/cython-release/`` or ``build/cython-debug/``, so
switching modes never reuses C generated with the other mode's directives.

A build from a git checkout (``pip install .`` builds in the checkout) also
copies the compiled module beside its source, as ``build_ext --inplace`` would:
the checkout's ``fastbp/`` folder shadows the installed package for commands
run from the checkout root (``python -m fastbp``), and would otherwise fail to
find its kernels.  The copy is a git-ignored build output.
"""

import multiprocessing
import os
import platform
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTBP_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "autotestdict": False,  # no __test__ dict of docstrings (stubtest would flag it)
}

NATIVE = os.environ.get("FASTBP_NATIVE", "") not in ("", "0")
BASELINE_ONLY = os.environ.get("FASTBP_BASELINE_ONLY", "") not in ("", "0")
GCC_LIKE = os.name != "nt"

if not GCC_LIKE:
    extra_compile_args = ["/Od"] if DEBUG else ["/O2", "/fp:precise"]
else:
    # -ffp-contract=off: no fused multiply-adds, so every copy rounds alike.
    # -fno-trapping-math: lets the compiler turn the selects of the sigmoid
    # into vector blends; it changes no result, only which floating-point
    # exception flags may be raised (nothing here reads them).
    # -fno-math-errno: sqrt (Adam's) becomes one vector instruction instead
    # of a call kept for errno; sqrt is correctly rounded either way, and
    # nothing here reads errno.
    # -g0 (release): no debug information, which Python's own flags ask for
    # (-g) and which takes a sixth of the compile time and most of the size.
    extra_compile_args = (["-O0", "-g"] if DEBUG else ["-O3", "-g0"]) + [
        "-ffp-contract=off",
        "-fno-trapping-math",
        "-fno-math-errno",
    ]

# (module suffix, instruction set, extra flags): the baseline always; the x86-64
# levels where the compiler takes -march=x86-64-vN (GCC >= 11, Clang >= 12),
# unless FASTBP_BASELINE_ONLY.
variants = [("", "baseline", ["-march=native"] if NATIVE and GCC_LIKE else [])]
X86_64_LINUX = platform.machine().lower() in ("x86_64", "amd64") and sys.platform.startswith("linux")
if GCC_LIKE and X86_64_LINUX and not BASELINE_ONLY:
    variants += [("_v3", "x86-64-v3", ["-march=x86-64-v3"]), ("_v4", "x86-64-v4", ["-march=x86-64-v4"])]


def define_macros(suffix, isa):
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("FASTBP_ISA", f'"{isa}"')]
    if suffix:
        # A copy for a wider instruction set: its entry point PyInit_<module>
        # is the CPU guard of fastbp/_isa_guard.pxi, compiled for the
        # baseline, which calls Cython's init (renamed here) only on a CPU
        # that runs the copy; elsewhere the import raises ImportError.
        init = f"PyInit__kernels{suffix}"
        macros += [
            (init, f"fastbp_unguarded_{init}"),
            ("FASTBP_UNGUARDED_INIT", f"fastbp_unguarded_{init}"),
            ("FASTBP_GUARDED_INIT", f'"{init}"'),
            ("FASTBP_MODULE", f'"fastbp._kernels{suffix}"'),
        ]
    return macros


extensions = [
    Extension(
        f"fastbp._kernels{suffix}",
        [f"fastbp/_kernels{suffix}.pyx"],
        include_dirs=[np.get_include(), "fastbp"],
        depends=["fastbp/_kernels.h"],
        define_macros=define_macros(suffix, isa),
        extra_compile_args=extra_compile_args + flags,
    )
    for suffix, isa, flags in variants
]

HERE = os.path.dirname(os.path.abspath(__file__))


def build_jobs():
    """How many compilers run at once: ``$FASTBP_BUILD_JOBS``, else at least
    one per copy.  The copies take about the same time to compile, so on 2
    cores 3 jobs at once finish in 3/2 of one compile, 2 at a time in 2."""
    jobs = os.environ.get("FASTBP_BUILD_JOBS", "").strip()
    if jobs:
        return max(1, int(jobs))
    return max(os.cpu_count() or 1, len(extensions))


class build_ext_beside_sources(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # no -j given (pip never gives one): compile the copies in parallel
            self.parallel = build_jobs()

    def run(self):
        super().run()
        if not self.inplace and os.path.isdir(os.path.join(HERE, ".git")):
            self.copy_extensions_to_source()


setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython-release"),
        # Cython's worker processes, where they are forked: a start method that
        # starts a fresh interpreter would run this setup.py again in each.
        nthreads=build_jobs() if multiprocessing.get_start_method() == "fork" else 0,
    ),
    cmdclass={"build_ext": build_ext_beside_sources},
)
