"""The BLAS options for fastbp's mini-batch kernels, measured (issue 9, item 5).

    python bench/blas_options.py            # ~2 minutes on 2 cores
    python bench/blas_options.py --quick    # fewer, shorter repeats
    python bench/blas_options.py --json out.json

Mini-batch 64 on 784-128-10 and 64-32-10, float32 and float64.  fastbp's
``_train_block`` does three GEMMs per layer (the backward one for every layer
but the first): forward ``Z = A W^T``, backward ``D_prev = D W`` and update
``W -= lr/m D^T A``.  This script measures, for each:

* which BLAS: SciPy's OpenBLAS (what fastbp calls, through
  ``scipy.linalg.cython_blas``), NumPy's OpenBLAS (a separate copy, 64-bit
  integers), BLIS (``pip install blis``, if it installs) and, for reference,
  the MKL inside PyTorch's wheel (its exported ``sgemm_``/``dgemm_``: not
  something fastbp can link, but it is what PyTorch's mini-batch runs on);
* the storage layout, which decides each call's transposes: W stored as
  ``n_out x n_in`` (today) or transposed, the activations A and the deltas D
  stored sample-major (today) or feature-major; 8 layouts, each fixing the
  flags of all three products;
* 1 or 2 BLAS threads;
* MKL's packed-weights GEMM (float32, packing W every batch, as the update
  forces), the "pre-packed weights" option;

each GEMM timed in a C loop (``peers/gemm_bench.c``: no Python between calls)
after checking its result against NumPy's.  It then times the whole training
(samples/s) of fastbp, of the NumPy mini-batch peer and of PyTorch's
hand-written mini-batch, 1 and 2 threads, taking turns, and prints how much of
fastbp's batch is GEMM.  Ends with a recommendation drawn from the numbers.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from itertools import pairwise, product
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import Unavailable
from peers.cpeers import compile_shared

NETWORKS = {"784-128-10": ((784, 128, 10), 10_000, 0.03125), "64-32-10": ((64, 32, 10), 50_000, 0.03125)}
BATCH = 64
DTYPES = ("float32", "float64")
API = {"cblas32": 0, "cblas64": 1, "f77": 2, "blis": 3}
# A layout: (W, A, D) each stored as written ("N") or transposed ("T").
LAYOUTS = [w + a + d for w, a, d in product("NT", repeat=3)]
TODAY = "NNN"  # W n_out x n_in, A and D one row per sample: fastbp's _train_block


def say(*parts):
    print(*parts, flush=True)


# ---------------------------------------------------------------------------
# The libraries
# ---------------------------------------------------------------------------


class Lib:
    def __init__(self, name, api, fns, set_threads, about, max_threads=None):
        self.name, self.api, self.fns, self._set_threads, self.about = name, api, fns, set_threads, about
        self.max_threads = max_threads or os.cpu_count()

    def threads(self, n):
        self._set_threads(n)


def _cdll(path):
    return ctypes.CDLL(str(path))  # already loaded by its package: the same copy, not a second one


def _symbol(lib, names):
    for name in names:
        try:
            return name, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        except AttributeError:
            continue
    return None, None


def find_libs():
    """Every BLAS we can time here: [Lib], and {name: why not} for the rest."""
    import scipy.linalg.cython_blas  # noqa: F401 - loads SciPy's OpenBLAS, as fastbp's import does
    from threadpoolctl import threadpool_info

    libs, missing = [], {}
    pools = [p for p in threadpool_info() if p.get("internal_api") == "openblas"]
    try:  # the OpenBLAS that NumPy and SciPy build against, as a package fastbp could link too
        import scipy_openblas32

        path = Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so"
        _cdll(path)
        pools.append({"filepath": str(path), "version": scipy_openblas32.__version__, "architecture": None})
    except ImportError:
        missing["scipy-openblas32"] = "not installed (pip install scipy-openblas32)"
    for pool in pools:
        path = pool["filepath"]
        owner = (
            "NumPy"
            if "/numpy.libs/" in path
            else "SciPy"
            if "/scipy.libs/" in path
            else "pip scipy-openblas32"
            if "/scipy_openblas32/" in path
            else Path(path).name
        )
        lib = _cdll(path)
        core_name, _ = _symbol(
            lib, ["scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"]
        )
        if core_name:
            getattr(lib, core_name).restype = ctypes.c_char_p
            pool["architecture"] = getattr(lib, core_name)().decode()
        fns, api = {}, None
        for dtype, letter in (("float64", "d"), ("float32", "s")):
            name, address = _symbol(
                lib,
                [
                    f"scipy_cblas_{letter}gemm64_",
                    f"cblas_{letter}gemm64_",
                    f"scipy_cblas_{letter}gemm",
                    f"cblas_{letter}gemm",
                ],
            )
            if address:
                fns[dtype] = address
                api = "cblas64" if "64_" in name else "cblas32"
        setter_name, _ = _symbol(
            lib,
            [
                "scipy_openblas_set_num_threads64_",
                "scipy_openblas_set_num_threads",
                "openblas_set_num_threads64_",
                "openblas_set_num_threads",
            ],
        )
        if not fns or setter_name is None:
            missing[f"{owner}'s OpenBLAS"] = "no CBLAS gemm or thread setter exported"
            continue
        setter = getattr(lib, setter_name)
        setter.argtypes = [ctypes.c_int]
        libs.append(
            Lib(
                f"{owner} OpenBLAS".replace("pip scipy-openblas32 OpenBLAS", "scipy-openblas32"),
                API[api],
                fns,
                setter,
                f"OpenBLAS {pool.get('version')} ({pool.get('architecture')} kernel, "
                f"{'64' if api == 'cblas64' else '32'}-bit ints), {Path(path).name}",
            )
        )
    try:
        import blis.cy

        lib = _cdll(blis.cy.__file__)
        fns = {"float64": _symbol(lib, ["bli_dgemm"])[1], "float32": _symbol(lib, ["bli_sgemm"])[1]}
        lib.bli_arch_query_id.restype = ctypes.c_int
        lib.bli_arch_string.restype = ctypes.c_char_p
        lib.bli_arch_string.argtypes = [ctypes.c_int]
        arch = lib.bli_arch_string(lib.bli_arch_query_id()).decode()
        lib.bli_info_get_version_str.restype = ctypes.c_char_p
        threaded = bool(lib.bli_info_get_enable_threading())
        lib.bli_thread_set_num_threads.argtypes = [ctypes.c_int64]
        from importlib.metadata import version

        libs.append(
            Lib(
                "BLIS",
                API["blis"],
                fns,
                lib.bli_thread_set_num_threads,
                f"BLIS {lib.bli_info_get_version_str().decode()} (pip blis {version('blis')}), {arch} "
                f"kernels, threading {'on' if threaded else 'off (1 thread only)'}",
                max_threads=None if threaded else 1,
            )
        )
    except ImportError:
        missing["BLIS"] = "not installed (pip install blis)"
    except (OSError, AttributeError) as error:
        missing["BLIS"] = f"cannot call it: {error}"
    try:
        import torch

        path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
        lib = _cdll(path)
        fns = {"float64": _symbol(lib, ["dgemm_"])[1], "float32": _symbol(lib, ["sgemm_"])[1]}
        buffer = ctypes.create_string_buffer(256)
        try:
            lib.MKL_Get_Version_String(buffer, 256)
            mkl = buffer.value.decode().strip()
        except AttributeError:
            mkl = "MKL (version unknown)"
        if not all(fns.values()):
            raise AttributeError("no sgemm_/dgemm_ exported")
        mkl_lib = Lib(
            "PyTorch's MKL",
            API["f77"],
            fns,
            torch.set_num_threads,
            f"{mkl}, inside torch {torch.__version__}",
        )
        pack = _symbol(lib, ["cblas_sgemm_pack"])[1], _symbol(lib, ["cblas_sgemm_compute"])[1]
        if all(pack):
            lib.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
            lib.cblas_sgemm_pack_get_size.argtypes = [ctypes.c_int] * 4
            mkl_lib.packed = (*pack, lib.cblas_sgemm_pack_get_size)
        libs.append(mkl_lib)
    except ImportError:
        missing["PyTorch's MKL"] = "PyTorch is not installed"
    except (OSError, AttributeError) as error:
        missing["PyTorch's MKL"] = f"cannot call it: {error}"
    return libs, missing


_HARNESS = None


def harness():
    global _HARNESS
    if _HARNESS is None:
        path = compile_shared(HERE / "peers" / "gemm_bench.c", ["-O2"], tag="")
        lib = ctypes.CDLL(str(path))
        lib.gemm_time.restype = ctypes.c_double
        lib.gemm_time.argtypes = [
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_long,
            ctypes.c_long,
            ctypes.c_double,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_double,
            ctypes.c_void_p,
            ctypes.c_long,
        ]
        lib.gemm_once.restype = None
        lib.gemm_once.argtypes = lib.gemm_time.argtypes[:-1]
        lib.packed_time.restype = ctypes.c_double
        lib.packed_time.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_long,
            ctypes.c_long,
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_long,
        ]
        _HARNESS = lib
    return _HARNESS


# ---------------------------------------------------------------------------
# The GEMMs of one mini-batch
# ---------------------------------------------------------------------------


class Gemm:
    """C (M x N) = alpha P (M x K) Q (K x N) + beta C with each operand stored
    as itself or transposed (row-major), buffers ready."""

    def __init__(self, label, M, N, K, sp, sq, sc, alpha, beta, dtype, rng):
        self.label, self.M, self.N, self.K = label, M, N, K
        self.sp, self.sq, self.sc, self.alpha, self.beta = sp, sq, sc, alpha, beta
        self.dtype = np.dtype(dtype)
        self.P = rng.random((M, K)).astype(dtype)
        self.Q = rng.random((K, N)).astype(dtype)
        self.C0 = rng.random((M, N)).astype(dtype)
        stored = lambda X, s: np.ascontiguousarray(X.T if s else X)  # noqa: E731
        self.Ps, self.Qs = stored(self.P, sp), stored(self.Q, sq)
        self.Cs = stored(self.C0, sc)
        self.flags = "".join("T" if s else "N" for s in (sp, sq, sc))

    def _args(self, lib):
        return (
            lib.api,
            lib.fns[self.dtype.name],
            int(self.dtype == np.float64),
            self.sp,
            self.sq,
            self.sc,
            self.M,
            self.N,
            self.K,
            self.alpha,
            self.Ps.ctypes.data,
            self.Qs.ctypes.data,
            self.beta,
            self.Cs.ctypes.data,
        )

    def check(self, lib):
        """Run once; the result must be NumPy's (in float64 arithmetic) to rounding."""
        C = np.array(self.C0.T if self.sc else self.C0, order="C")  # a copy: C0 stays the input
        keep, self.Cs = self.Cs, C
        harness().gemm_once(*self._args(lib))
        self.Cs = keep
        got = C.T if self.sc else C
        expected = self.alpha * (self.P.astype(float) @ self.Q.astype(float)) + self.beta * self.C0
        tol = 1e-10 if self.dtype == np.float64 else 1e-4
        err = float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))
        if not err <= tol:
            raise AssertionError(f"{lib.name} {self.label} ({self.flags}): relative error {err:.3g}")

    def time(self, lib, reps):
        return harness().gemm_time(*self._args(lib), reps) / reps

    def packed_time(self, lib, reps):
        pack, compute, size = lib.packed
        if not hasattr(self, "_packed"):
            self._packed = np.empty(size(162, self.M, self.N, self.K) // 4 + 16, dtype=np.float32)
        return (
            harness().packed_time(
                pack,
                compute,
                self.sp,
                self.sq,
                self.sc,
                self.M,
                self.N,
                self.K,
                self.alpha,
                self.Ps.ctypes.data,
                self.Qs.ctypes.data,
                self.beta,
                self.Cs.ctypes.data,
                self._packed.ctypes.data,
                reps,
            )
            / reps
        )


def batch_gemms(sizes, layout, dtype, rng, m=BATCH):
    """The GEMMs of one mini-batch step of ``_train_block`` with ``layout``."""
    sW, sA, sD = (int(c == "T") for c in layout)
    out = []
    for l, (n_in, n_out) in enumerate(pairwise(sizes), start=1):
        # forward: Z (m x n_out) = A (m x n_in) W^T; Q = W^T is stored transposed when W is stored as written
        out.append(
            Gemm(
                f"forward L{l}: A W^T ({m}x{n_in} . {n_in}x{n_out})",
                m,
                n_out,
                n_in,
                sA,
                1 - sW,
                sA,
                1.0,
                0.0,
                dtype,
                rng,
            )
        )
        if l > 1:  # backward: D_prev (m x n_in) = D (m x n_out) W
            out.append(
                Gemm(
                    f"backward L{l}: D W ({m}x{n_out} . {n_out}x{n_in})",
                    m,
                    n_in,
                    n_out,
                    sD,
                    sW,
                    sD,
                    1.0,
                    0.0,
                    dtype,
                    rng,
                )
            )
        # update: W (n_out x n_in) -= s D^T (n_out x m) A; P = D^T is stored transposed when D is as written
        out.append(
            Gemm(
                f"update L{l}: W -= s D^T A ({n_out}x{m} . {m}x{n_in})",
                n_out,
                n_in,
                m,
                1 - sD,
                sA,
                sW,
                -1e-6,
                1.0,
                dtype,
                rng,
            )
        )
    return out


def _reps_for(fn, seconds):
    reps = 1
    while True:
        elapsed = fn(reps) * reps
        if elapsed >= 0.002 or reps >= 1 << 20:
            return max(1, int(reps * seconds / max(elapsed, 1e-9)))
        reps *= 4


class ThreadSwitch:
    """Gives one library its threads and every other one a single thread.
    OpenBLAS's idle workers spin for a while (about 0.1 s) after a call, and so
    do OpenMP's: on 2 cores, a library run with 2 threads right after another
    one's 2-thread run finds the cores taken by spinning threads (PyTorch's
    mini-batch fell to 1/1000 of its speed that way).  So after a run with
    several threads, the switch waits 0.3 s (untimed) before the next one."""

    def __init__(self, libs):
        self.libs, self.current = libs, None

    def use(self, lib, threads):
        if self.current == (lib, threads):
            return
        for other in self.libs:
            other.threads(1)
        if self.current is not None and self.current[1] > 1:
            time.sleep(0.3)
        lib.threads(threads)
        self.current = (lib, threads)


SWITCH = None


def measure_gemms(configs, repeats, seconds):
    """configs: {key: (lib, threads, [Gemm], packed)}.  Median seconds of each
    GEMM, the configurations taking turns repeat by repeat."""
    plans = {}
    for key, (lib, threads, gemms, packed) in configs.items():
        SWITCH.use(lib, threads)
        timer = (
            (lambda g: lambda r: g.packed_time(lib, r)) if packed else (lambda g: lambda r: g.time(lib, r))
        )
        plans[key] = [(timer(g), _reps_for(timer(g), seconds)) for g in gemms]
    times = {key: [[] for _ in plans[key]] for key in configs}
    for _ in range(repeats):
        for key, (lib, threads, _, _) in configs.items():
            SWITCH.use(lib, threads)
            for timer, reps in plans[key]:  # untimed: wakes the threads a switch put to sleep
                timer(max(1, reps // 10))
            for i, (timer, reps) in enumerate(plans[key]):
                times[key][i].append(timer(reps))
    return {key: [float(np.median(t)) for t in per_gemm] for key, per_gemm in times.items()}


# ---------------------------------------------------------------------------
# Whole training runs
# ---------------------------------------------------------------------------


class _Threaded:
    """A peers trainer whose reset (untimed) gives its library the threads first."""

    def __init__(self, trainer, lib, threads):
        self.trainer, self.lib, self.threads = trainer, lib, threads

    def reset(self):
        SWITCH.use(self.lib, self.threads)
        self.trainer.reset()

    def train(self, rows, epochs):
        return self.trainer.train(rows, epochs)


def training(network, dtype, thread_counts, repeats, seconds, libs):
    """Samples/s of fastbp, the NumPy peer and PyTorch's hand-written
    mini-batch (1 and 2 threads), interleaved; costs checked against fastbp's."""
    import compare
    from peers import fastbp_peer, measure_interleaved, numpy_peer, plan, torch_peer

    sizes, rows, lr = NETWORKS[network]
    import fastbp

    net = fastbp.Network(sizes, seed=1, dtype=dtype)
    from peers import Task

    task = Task(net.weights, net.biases, lr, BATCH, dtype)
    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0])).astype(dtype)
    Y = rng.uniform(0.1, 0.9, (rows, sizes[-1])).astype(dtype)

    by_name = {lib.name: lib for lib in libs}
    # fastbp calls SciPy's OpenBLAS (scipy.linalg.cython_blas), numpy NumPy's, PyTorch its MKL.
    peers = [
        (name, peer, by_name[lib])
        for name, peer, lib in (
            ("fastbp", fastbp_peer.Fastbp(), "SciPy OpenBLAS"),
            ("numpy", numpy_peer.NumpyLoop(), "NumPy OpenBLAS"),
            ("torch-nograd", torch_peer.TorchNoGrad(), "PyTorch's MKL"),
        )
        if lib in by_name
    ]
    runs, names = [], []
    for name, peer, lib in peers:
        for threads in thread_counts:
            trainer = _Threaded(peer.trainer(task, X, Y), lib, threads)
            r, e = plan(trainer, rows, seconds=seconds, max_epochs=3)
            runs.append((trainer, r, e))
            names.append((name, threads))
    results = measure_interleaved(runs, repeats)
    out = {}
    for (name, threads), (_trainer, r, e), result in zip(names, runs, results):
        SWITCH.use(libs[0], 1)
        expected = fastbp.Network.from_weights(task.weights, task.biases, dtype=dtype).train(
            X[:r], Y[:r], epochs=e, lr=lr, batch_size=BATCH
        )
        ok, diff = compare.check_costs(result.costs, expected, dtype)
        out[f"{name} {threads}t"] = {
            "peer": name,
            "threads": threads,
            "samples_per_s": result.median,
            "rates": result.rates,
            "rows": r,
            "epochs": e,
            "check": "ok" if ok else "MISMATCH",
            "max_rel_diff": diff,
        }
    SWITCH.use(libs[0], 1)
    return out


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def run(args):
    import machine

    global SWITCH
    libs, missing = find_libs()
    SWITCH = ThreadSwitch(libs)
    threads = [1, 2] if (os.cpu_count() or 1) >= 2 else [1]
    info = machine.describe()
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": info,
        "batch": BATCH,
        "libs": {lib.name: lib.about for lib in libs},
        "missing": missing,
        "cases": [],
    }
    say(
        f"{info['cpu']}; fastbp {info['fastbp'].get('isa')} copy; OPENBLAS_CORETYPE "
        f"{info.get('OPENBLAS_CORETYPE') or 'not set'}"
    )
    for lib in libs:
        say(f"   {lib.name:15s} {lib.about}")
    for name, why in missing.items():
        say(f"   {name:15s} not measured: {why}")
    rng = np.random.default_rng(0)
    for network, dtype in product(args.networks, args.dtypes):
        sizes = NETWORKS[network][0]
        say(f"\n== {network} mini-batch {BATCH} {dtype}: the GEMMs of one batch")
        gemms = {layout: batch_gemms(sizes, layout, dtype, rng) for layout in LAYOUTS}
        for lib in libs:
            for layout in LAYOUTS:
                for g in gemms[layout]:
                    g.check(lib)
        # 1 thread: every library and layout
        configs = {
            (lib.name, layout, 1, False): (lib, 1, gemms[layout], False) for lib in libs for layout in LAYOUTS
        }
        mkl = next((lib for lib in libs if hasattr(lib, "packed")), None)
        if mkl is not None and dtype == "float32":
            for layout in LAYOUTS:  # only the forward and backward products have W as their Q (packable)
                configs[(mkl.name + " packed W", layout, 1, True)] = (
                    mkl,
                    1,
                    [g for g in gemms[layout] if not g.label.startswith("update")],
                    True,
                )
        timed = measure_gemms(configs, args.repeats, args.seconds)
        # 2 threads: today's layout and each library's best (meaningful only on two free cores)
        import roofline

        case_cores = roofline.two_core_ratio()
        say(
            f"  two busy threads ran at x{case_cores:.2f} of one here"
            + (
                ""
                if case_cores >= 1.5
                else ": the 2-thread numbers below measure contention, not the library"
            )
        )
        best_layout = {
            lib.name: min(LAYOUTS, key=lambda lay: sum(timed[(lib.name, lay, 1, False)])) for lib in libs
        }
        configs2 = {}
        for lib in libs:
            for t in threads[1:]:
                if t <= lib.max_threads:
                    for layout in {TODAY, best_layout[lib.name]}:
                        configs2[(lib.name, layout, t, False)] = (lib, t, gemms[layout], False)
        timed.update(measure_gemms(configs2, args.repeats, args.seconds))
        SWITCH.use(libs[0], 1)
        case = {
            "network": network,
            "dtype": dtype,
            "two_core_ratio": case_cores,
            "gemm_labels": [g.label for g in gemms[TODAY]],
            "flags": {layout: [g.flags for g in gemms[layout]] for layout in LAYOUTS},
            "gemm_us": [
                {
                    "lib": k[0],
                    "layout": k[1],
                    "threads": k[2],
                    "packed": k[3],
                    "us": [1e6 * s for s in v],
                    "total_us": 1e6 * sum(v),
                }
                for k, v in timed.items()
            ],
        }
        case["training"] = training(network, dtype, threads, args.repeats, 15 * args.seconds, libs)
        out["cases"].append(case)
        for line in case_lines(case):
            say(line)
    out["recommendation"] = recommend(out)
    return out


def _entry(case, lib, layout, threads=1, packed=False):
    return next(
        (
            e
            for e in case["gemm_us"]
            if (e["lib"], e["layout"], e["threads"], e["packed"]) == (lib, layout, threads, packed)
        ),
        None,
    )


def case_lines(case):
    libs = list(dict.fromkeys(e["lib"] for e in case["gemm_us"] if not e["packed"]))
    out = [
        "  GEMM microseconds per batch, 1 thread, by layout (W A D: N = as today, T = stored transposed); "
        "the 3 products' flags (P Q C) per layer in brackets",
        f"  {'layout':8s}"
        + "".join(f"{lib:>17s}" for lib in libs)
        + "   flags of "
        + ", ".join(g.split(":")[0] for g in case["gemm_labels"]),
    ]
    for layout in LAYOUTS:
        cells = "".join(f"{_entry(case, lib, layout)['total_us']:17.1f}" for lib in libs)
        out.append(
            f"  {layout + (' today' if layout == TODAY else ''):8s}{cells}   {' '.join(case['flags'][layout])}"
        )
    today = _entry(case, "SciPy OpenBLAS", TODAY) or _entry(case, libs[0], TODAY)
    out.append(
        "  per product, today's layout (us): "
        + "; ".join(
            f"{label.split(' (')[0]}: "
            + ", ".join(f"{lib} {_entry(case, lib, TODAY)['us'][i]:.1f}" for lib in libs)
            for i, label in enumerate(case["gemm_labels"])
        )
    )
    packed = [e for e in case["gemm_us"] if e["packed"]]
    if packed:
        best = min(packed, key=lambda e: e["total_us"])
        plain = _entry(case, best["lib"].replace(" packed W", ""), best["layout"])
        plain_fb = sum(
            u for u, label in zip(plain["us"], case["gemm_labels"]) if not label.startswith("update")
        )
        out.append(
            f"  MKL with W packed every batch, forward+backward products: {best['total_us']:.1f} us (layout "
            f"{best['layout']}) against {plain_fb:.1f} us unpacked"
        )
    twos = [e for e in case["gemm_us"] if e["threads"] > 1]
    for e in twos:
        one = _entry(case, e["lib"], e["layout"])
        out.append(
            f"  {e['lib']:15s} layout {e['layout']}: {e['threads']} threads {e['total_us']:.1f} us against "
            f"1 thread {one['total_us']:.1f} us (x{one['total_us'] / e['total_us']:.2f})"
        )
    out.append("  whole training, samples/s (median, interleaved; costs checked against fastbp):")
    fastbp_1 = case["training"].get("fastbp 1t", {}).get("samples_per_s")
    for key, t in case["training"].items():
        batch_us = 1e6 * BATCH / t["samples_per_s"]
        share = ""
        if t["peer"] == "fastbp" and today:
            gemm = _entry(case, "SciPy OpenBLAS", TODAY, t["threads"])
            if gemm:
                share = (
                    f"; its GEMMs (SciPy OpenBLAS, today's layout) {gemm['total_us']:.0f} us = "
                    f"{100 * gemm['total_us'] / batch_us:.0f}% of the batch"
                )
        ratio = f"  fastbp 1 thread / this = {fastbp_1 / t['samples_per_s']:.2f}" if fastbp_1 else ""
        out.append(
            f"    {key:16s}{t['samples_per_s']:12,.0f}/s  ({batch_us:7.1f} us per batch{share})  "
            f"check {t['check']}{ratio}"
        )
    return out


def recommend(out):
    lines = []
    for case in out["cases"]:
        today = _entry(case, "SciPy OpenBLAS", TODAY)
        if today is None:
            continue
        one = [e for e in case["gemm_us"] if e["threads"] == 1 and not e["packed"]]
        linkable = [e for e in one if e["lib"] != "PyTorch's MKL"]
        best = min(linkable, key=lambda e: e["total_us"])
        best_scipy = min((e for e in one if e["lib"] == "SciPy OpenBLAS"), key=lambda e: e["total_us"])
        head = f"{case['network']} {case['dtype']}: GEMMs {today['total_us']:.0f} us per batch today (SciPy OpenBLAS, NNN)"
        parts = [
            f"best layout in SciPy's OpenBLAS {best_scipy['layout']} {best_scipy['total_us']:.0f} us "
            f"(x{today['total_us'] / best_scipy['total_us']:.2f})",
            f"best linkable option {best['lib']} {best['layout']} {best['total_us']:.0f} us "
            f"(x{today['total_us'] / best['total_us']:.2f})",
        ]
        numpy_ob = _entry(case, "NumPy OpenBLAS", TODAY)
        if numpy_ob:
            parts.append(f"NumPy's OpenBLAS, same layout: x{today['total_us'] / numpy_ob['total_us']:.2f}")
        two = _entry(case, "SciPy OpenBLAS", TODAY, 2)
        if two:
            parts.append(f"2 threads: x{today['total_us'] / two['total_us']:.2f}")
        mkl = [e for e in one if e["lib"] == "PyTorch's MKL"]
        if mkl:
            m = min(mkl, key=lambda e: e["total_us"])
            parts.append(f"PyTorch's MKL best {m['layout']}: x{today['total_us'] / m['total_us']:.2f}")
        t = case["training"]
        if "fastbp 1t" in t and "torch-nograd 1t" in t:
            f, p = t["fastbp 1t"]["samples_per_s"], t["torch-nograd 1t"]["samples_per_s"]
            parts.append(
                f"fastbp {f / p:.2f}x PyTorch (batch {1e6 * BATCH / f:.0f} us, of which "
                f"{1e6 * BATCH / f - today['total_us']:.0f} us outside its GEMMs; PyTorch's batch "
                f"{1e6 * BATCH / p:.0f} us)"
            )
        if "fastbp 1t" in t and "numpy 1t" in t:
            parts.append(
                f"fastbp {t['fastbp 1t']['samples_per_s'] / t['numpy 1t']['samples_per_s']:.2f}x NumPy"
            )
        lines.append(head + ": " + "; ".join(parts) + ".")
    return lines + summary(out)


def summary(out):
    """The general conclusions, each drawn from the cases above."""
    cases = [c for c in out["cases"] if _entry(c, "SciPy OpenBLAS", TODAY)]
    if not cases:
        return []
    lines = []

    def linkable(c):
        return [
            e for e in c["gemm_us"] if e["threads"] == 1 and not e["packed"] and e["lib"] != "PyTorch's MKL"
        ]

    wins = {}
    for c in cases:
        best = min(linkable(c), key=lambda e: e["total_us"])
        wins.setdefault(best["lib"], []).append(f"{c['network']} {c['dtype']}")
    lines.append(
        "Library: fastest linkable BLAS per case (1 thread, best layout): "
        + "; ".join(f"{lib} in {len(v)} ({', '.join(v)})" for lib, v in wins.items())
        + "."
    )
    ratios = []
    for c in cases:
        today = _entry(c, "SciPy OpenBLAS", TODAY)["total_us"]
        for lib in {e["lib"] for e in linkable(c)} - {"SciPy OpenBLAS"}:
            other = _entry(c, lib, TODAY)
            if other:
                ratios.append((lib, c["network"], c["dtype"], today / other["total_us"]))
    for lib in sorted({r[0] for r in ratios}):
        mine = [r for r in ratios if r[0] == lib]
        lines.append(
            f"{lib} against SciPy's OpenBLAS at today's layout: "
            + ", ".join(f"{n} {d} x{x:.2f}" for _, n, d, x in mine)
            + (" (slower everywhere: not an option)" if all(x < 1 for *_, x in mine) else "")
        )
    gains = []
    for c in cases:
        for lib in {e["lib"] for e in linkable(c)}:
            today = _entry(c, lib, TODAY)["total_us"]
            best = min((e for e in linkable(c) if e["lib"] == lib), key=lambda e: e["total_us"])
            gains.append((today / best["total_us"], lib, c["network"], c["dtype"], best["layout"]))
    top = max(gains)
    lines.append(
        f"Layout (transposes): the best layout beats today's NNN by at most x{top[0]:.2f} "
        f"({top[1]}, {top[2]} {top[3]}, layout {top[4]}); "
        + (
            "within the noise of one run: keep NNN."
            if top[0] < 1.1
            else "worth checking again on a quiet machine before changing the storage."
        )
    )
    for c in cases:
        two = _entry(c, "SciPy OpenBLAS", TODAY, 2)
        if not two:
            continue
        one = _entry(c, "SciPy OpenBLAS", TODAY)["total_us"]
        cores = c.get("two_core_ratio", 2.0)
        if cores < 1.5:
            lines.append(
                f"Threads, {c['network']} {c['dtype']}: not measurable in this run (two busy threads ran "
                f"at x{cores:.2f} of one: another process held a core); 2 OpenBLAS threads measured "
                f"x{one / two['total_us']:.2f}"
            )
        else:
            lines.append(
                f"Threads, {c['network']} {c['dtype']}: 2 OpenBLAS threads x{one / two['total_us']:.2f} "
                f"on the GEMMs"
                + (
                    " (slower: these products are too small to pay for a second thread)"
                    if one < two["total_us"]
                    else ""
                )
            )
    for c in cases:
        packed = [e for e in c["gemm_us"] if e["packed"]]
        if not packed:
            continue
        best = min(packed, key=lambda e: e["total_us"])
        plain = min(
            sum(u for u, label in zip(e["us"], c["gemm_labels"]) if not label.startswith("update"))
            for e in c["gemm_us"]
            if e["lib"] == "PyTorch's MKL" and e["threads"] == 1 and not e["packed"]
        )
        lines.append(
            f"Packed weights (MKL, float32, W repacked every batch as the update requires), {c['network']}: "
            f"forward+backward {best['total_us']:.1f} us at best against {plain:.1f} us unpacked "
            f"(x{plain / best['total_us']:.2f})"
        )
    for c in cases:
        t = c["training"].get("fastbp 1t")
        if t:
            batch = 1e6 * BATCH / t["samples_per_s"]
            gemm = _entry(c, "SciPy OpenBLAS", TODAY)["total_us"]
            lines.append(
                f"Outside BLAS, {c['network']} {c['dtype']}: fastbp's batch {batch:.0f} us, GEMMs "
                f"{gemm:.0f} us, the rest (sigmoids, deltas, biases, costs) {batch - gemm:.0f} us"
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats of shorter runs")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--seconds", type=float, help="per GEMM timing (default 0.02, --quick 0.005)")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.seconds = args.seconds or (0.005 if args.quick else 0.02)
    args.networks = [n for n in args.networks.split(",") if n]
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    try:
        harness()
    except Unavailable as why:
        raise SystemExit(f"cannot build the GEMM harness: {why}") from None
    out = run(args)
    say("\nRecommendation (from the numbers above):")
    for line in out["recommendation"]:
        say("  - " + line)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        say(f"wrote {args.json}")
    bad = [k for c in out["cases"] for k, t in c["training"].items() if t["check"] != "ok"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
