"""Build the compiled kernels.

Compiler directives live here, once, for every .pyx in the package.  Set
``FASTBP_DEBUG=1`` in the environment at build time to turn bounds checking,
negative-index wrapping and memoryview initialisation checks back on (an
out-of-bounds index then raises IndexError instead of reading stray memory),
and to build without optimisation.

Default builds target the baseline instruction set of the platform (no
``-march=native``) so that a wheel runs on any machine of its architecture.
"""

import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

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

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
