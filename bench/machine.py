"""What the benchmark ran on: the machine, the libraries, the BLAS kernel and
the measured matrix-multiply peak (the ceiling for GFLOP/s)."""

from __future__ import annotations

import itertools
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_model():
    """The CPU's name, with its family/model numbers and widest vector unit
    (a virtual machine often reports only "AMD EPYC")."""
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    flags = fields.get("flags", "").split()
    vector = next(
        (
            name
            for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sse4_2", "SSE4.2"))
            if flag in flags
        ),
        None,
    )
    details = [
        f"family {fields['cpu family']} model {fields['model']}" if "cpu family" in fields else None,
        vector,
    ]
    name = fields.get("model name", platform.machine())
    return f"{name} ({', '.join(d for d in details if d)})" if any(details) else name


def _run(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def blas_info():
    """The BLAS (and OpenMP) libraries loaded in this process, as threadpoolctl
    sees them: which library, which kernel (architecture) and how many threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl is not installed (pip install threadpoolctl): BLAS kernel unknown"}]
    keep = (
        "user_api",
        "internal_api",
        "version",
        "architecture",
        "threading_layer",
        "num_threads",
        "filepath",
    )
    return [{k: v for k, v in pool.items() if k in keep} for pool in threadpool_info()]


def fastbp_info():
    try:
        import fastbp
    except ImportError as error:
        return {"error": str(error)}
    path = Path(fastbp.__file__).resolve().parent
    info = {
        "path": str(path),
        "from_checkout": path.parent == REPO,
        # Which compiled copy runs (fastbp.backends picks one per CPU, or
        # FASTBP_ISA forces one): the module and its instruction set.
        "FASTBP_ISA": os.environ.get("FASTBP_ISA"),
        "FASTBP_BACKEND": os.environ.get("FASTBP_BACKEND"),
    }
    try:
        kernels = fastbp.get_backend()
        info["kernels"] = kernels.__name__
        info["isa"] = getattr(kernels, "ISA", None) or getattr(kernels, "BACKEND_NAME", None)
        import importlib

        backends = importlib.import_module("fastbp.backends")  # fastbp.backends is also a function's name
        info["copies_this_cpu_runs"] = (
            list(backends.isa_modules()) if hasattr(backends, "isa_modules") else None
        )
    except Exception as error:
        info["kernels_error"] = f"{type(error).__name__}: {error}"
    if (REPO / ".git").exists():
        info["commit"] = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
        info["dirty"] = bool(_run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]))
    return info


def describe():
    """A dict describing the machine and software, for the report and the JSON."""
    fastbp = (
        fastbp_info()
    )  # first: importing fastbp loads the BLAS its kernels call (SciPy's), so blas_info sees it
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "thread_env": {name: os.environ.get(name) for name in THREAD_VARS},
        # Some machines set it so that older OpenBLAS builds pick a safe kernel;
        # we only report it (never set or unset it): it decides the kernel numpy runs.
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "fastbp": fastbp,
    }
    try:
        import torch

        info["torch"] = {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "blas": "MKL" if torch.backends.mkl.is_available() else "other",
        }
    except ImportError:
        info["torch"] = None
    info["fann"] = _run(["dpkg-query", "-W", "-f=${Version}", "libfann-dev"]) or None
    compiler = shutil.which("gcc")
    info["gcc"] = _run([compiler, "--version"]).splitlines()[0] if compiler else None
    return info


def matmul_peak(dtype, n=1536, repeats=5):
    """GFLOP/s of one large NumPy matrix product (the best of ``repeats``): what
    BLAS reaches on this machine with the threads it is allowed, in ``dtype``."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)  # warm up: threads started, pages touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def training_flops(sizes):
    """Floating-point operations per trained sample, counting multiply-adds as
    two: the forward pass (2 per weight), the back-propagated deltas (2 per
    weight of every layer but the first) and the gradient step (2 per weight).
    Sigmoids, biases and costs are left out."""
    weights = [a * b for a, b in itertools.pairwise(sizes)]
    return 2 * sum(weights) + 2 * sum(weights[1:]) + 2 * sum(weights)
