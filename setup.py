"""Build the compiled kernels.

Compiler directives live here, once, for every .pyx in the package.  Set
``FASTBP_DEBUG=1`` in the environment at build time to turn bounds checking,
negative-index wrapping and memoryview initialisation checks back on (an
out-of-bounds index then raises IndexError instead of reading stray memory),
and to build without optimisation.

Default builds target the baseline instruction set of the platform (no
``-march=native``) so that a wheel runs on any machine of its architecture.

The generated C goes to ``build/cython-release/`` or ``build/cython-debug/``, so
switching modes never reuses C generated with the other mode's directives.

A build from a git checkout (``pip install .`` builds in the checkout) also
copies the compiled module beside its source, as ``build_ext --inplace`` would:
the checkout's ``fastbp/`` folder shadows the installed package for commands
run from the checkout root (``python -m fastbp``), and would otherwise fail to
find its kernels.  The copy is a git-ignored build output.
"""

import os

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
}

if os.name == "nt":
    extra_compile_args = ["/Od"] if DEBUG else ["/O2"]
else:
    extra_compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

extensions = [
    Extension(
        "fastbp._kernels",
        ["fastbp/_kernels.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=extra_compile_args,
    )
]

HERE = os.path.dirname(os.path.abspath(__file__))


class build_ext_beside_sources(build_ext):
    def run(self):
        super().run()
        if not self.inplace and os.path.isdir(os.path.join(HERE, ".git")):
            self.copy_extensions_to_source()


setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython-release"),
    ),
    cmdclass={"build_ext": build_ext_beside_sources},
)
