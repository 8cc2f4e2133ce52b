"""The memory roofline of one online sample (issue 9): how many samples per
second the memory system allows at most, from bytes that must move per sample
and the bandwidth measured on this machine.

The model, for a network whose first weight matrix does not fit in L2 (on
784-128-10 float64, W1 is 128 x 784 x 8 B = 784 KiB; L2 is 512 KiB per core on
Zen 3, L3 is shared): an online step must read every weight (forward pass,
hidden deltas) and write every weight (the update).  A fused loop (fastbp's:
the update of sample i and the forward pass of sample i + 1 walk each row of W
once) reads each weight once and writes it once per sample, so at least

    bytes per sample = 2 x (all weights and biases) + the input row + the target row

cross between the core's L2 and L3 (the input and target rows come from
memory: a large data set does not fit in any cache).  The small layers (W2
here, 10 KiB) are counted too: the W1 stream evicts them from L1 and L2 between
two samples.  ``stream_rw`` (peers/stream.c) measures the read+write bandwidth
over a buffer of the size of W1 itself, so the same cache level serves it; the
ceiling is that bandwidth divided by the bytes per sample.  The probe is
built for 256-bit vectors and, on a CPU with AVX-512, for 512-bit ones too,
and the faster counts: the ceiling is the machine's, not one compiler
choice's.  (A loop that walked W1 forward on one sample and backward on the
next could keep part of it in L2 and beat this model: the model is the bound
for a loop that walks W the same way every sample.)

The core probe asks the other question of a roofline: how fast the
operations themselves run when memory costs next to nothing.  ``w1_pass``
(peers/w1_pass.c) makes fastbp's own W1 pass (``fastbp_update_dot_d``, from
fastbp/_kernels.h, built with the flags of the copy fastbp runs) over W1 as
the kernel walks it, and over two rows kept in L1; the pass over W1 against
the pass in L1 says how much of the pass's time memory costs.  It is not a
ceiling: the pass in L1 depends on where its two rows and the inputs lie
(repeats of one Zen 4 session ranged from 0.9x to 1.25x the pass over W1),
and fastbp's whole sample has run faster than it.

The probes run as pseudo-peers of the 784-128-10 online float64 case, taking
their turns with the real peers, so the ceiling, the probe and fastbp's rate see the
same machine load.
"""

from __future__ import annotations

import ctypes
import itertools
import platform
from pathlib import Path

import numpy as np
from peers.cpeers import BUILD, NATIVE_FLAGS, compile_shared  # noqa: F401 - BUILD: where it lands

HERE = Path(__file__).resolve().parent
CASE = ("784-128-10", "online", "float64")  # the case whose roofline issue 9 asks for
TARGET = 0.9


def cache_sizes():
    """{level: bytes} of the data/unified caches of CPU 0 (from sysfs), and which CPUs share each."""
    out = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            if kind == "Instruction":
                continue
            size = (index / "size").read_text().strip()
            scale = {"K": 1024, "M": 1024**2}.get(size[-1], 1)
            out[f"L{(index / 'level').read_text().strip()}"] = {
                "bytes": int(size.rstrip("KM")) * scale,
                "shared_by_cpus": (index / "shared_cpu_list").read_text().strip(),
            }
        except (OSError, ValueError):
            continue
    return out


def model(sizes, dtype="float64"):
    """The bytes one online sample must move (see the module docstring)."""
    item = np.dtype(dtype).itemsize
    params = sum(n_out * (n_in + 1) for n_in, n_out in itertools.pairwise(sizes))
    W1 = sizes[0] * sizes[1] * item
    return {
        "W1_bytes": W1,
        "params_bytes": params * item,
        "input_bytes": sizes[0] * item,
        "target_bytes": sizes[-1] * item,
        "bytes_per_sample": 2 * params * item + (sizes[0] + sizes[-1]) * item,
        "model": "every weight and bias read once and written once per sample, plus the input and target rows",
    }


def stream_widths():
    """The vector widths (bits) the bandwidth probe is built for: 256, and 512
    where the CPU has AVX-512.  GCC's -march=native picks one width per CPU
    (512 on Zen 4), and which width moves W1 faster is not fixed: on the
    same Zen 4 machine one session measured the 256-bit loop 1.4x faster and
    another the 512-bit one 1.25x faster.  So the ceiling is the best of the
    widths.  ``[None]`` (the plain flags) off x86-64."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return [None]
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        flags = []
    return [256, 512] if "avx512f" in flags else [256]


_libraries = {}


def _library(source, function, flags, tag):
    """The shared library of ``peers/<source>`` built with ``flags`` (once per
    process), whose ``function`` returns nothing."""
    key = (source, tuple(flags))
    if key not in _libraries:
        _libraries[key] = ctypes.CDLL(str(compile_shared(HERE / "peers" / source, flags, tag=tag)))
        getattr(_libraries[key], function).restype = None
    return _libraries[key]


def _stream_library(width=None):
    flags = NATIVE_FLAGS + ([f"-mprefer-vector-width={width}"] if width else [])
    return _library("stream.c", "stream_rw", flags, tag=f"-{width}" if width else "")


def _aligned_random(rng, count):
    """``count`` doubles U(0, 1) placed as fastbp places its own buffers
    (``fastbp._layout.aligned_empty``: a 64-byte boundary).  Both probes
    need it: from NumPy's placement, 16 bytes past one, half of the 32-byte
    loads and stores straddle two cache lines (the W1 pass ran about 30%
    slower there on Zen 4), and fastbp's own buffers are aligned."""
    from fastbp._layout import aligned_empty

    out = aligned_empty(count, np.float64)
    out[...] = rng.random(count)
    return out


def _double_pointer(array):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


class StreamTrainer:
    """A trainer-shaped probe for peers.measure_interleaved: ``train(rows,
    epochs)`` makes rows x epochs read+write passes over a buffer of W1's size,
    so its "samples per second" is passes per second.  Costs: zeros."""

    def __init__(self, sizes, dtype="float64", width=None):
        self.width = width
        self.lib = _stream_library(width)  # Unavailable without a C compiler
        self.model = model(sizes, dtype)
        self.buffer = _aligned_random(np.random.default_rng(0), self.model["W1_bytes"] // 8)

    def reset(self):
        pass

    def train(self, rows, epochs):
        self.lib.stream_rw(
            _double_pointer(self.buffer),
            ctypes.c_long(self.buffer.size),
            ctypes.c_long(rows * epochs),
        )
        return np.zeros(epochs)


# The flags of setup.py that shape fastbp_update_dot_d's loop, for the core
# probe's build; -march comes from the copy fastbp runs for the network.
# (tests/test_bench_roofline.py checks that setup.py still passes these.)
KERNEL_FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno"]


def kernel_copy(sizes):
    """The instruction set of the compiled copy fastbp runs for a network of
    these sizes, and the flags that build the core probe the same way."""
    from fastbp.backends import get_backend  # (fastbp.backends is also a function's name)

    isa = getattr(get_backend("cython", tuple(sizes)), "ISA", "baseline")
    return isa, KERNEL_FLAGS + ([] if isa == "baseline" else [f"-march={isa}"])


class W1PassTrainer:
    """The core probe, trainer-shaped like StreamTrainer: ``train(rows,
    epochs)`` makes rows x epochs passes of fastbp's own W1 update+dot
    (``peers/w1_pass.c``), walking W1's rows (``in_l1=False``) or two rows
    over and over, kept in L1 (``in_l1=True``: the same instructions with
    memory out of the way).  Its rate is passes per second."""

    # x_prev and x move through PLACEMENTS offsets PLACEMENT_STEP doubles (128 B) apart: 4 KiB in all
    PLACEMENTS, PLACEMENT_STEP = 32, 16

    def __init__(self, sizes, in_l1):
        self.in_l1 = in_l1
        self.isa, flags = kernel_copy(sizes)
        # Unavailable without a C compiler
        self.lib = _library("w1_pass.c", "w1_pass", flags, tag="-" + self.isa)
        self.n_in, self.rows = sizes[0], sizes[1]
        rng = np.random.default_rng(0)
        self.w = _aligned_random(rng, self.rows * self.n_in)
        self.w -= 0.5
        self.x_prev, self.x = (
            _aligned_random(rng, self.n_in + self.PLACEMENT_STEP * self.PLACEMENTS) for _ in range(2)
        )
        self.sink = np.zeros(1)

    def reset(self):
        pass

    def train(self, rows, epochs):
        self.lib.w1_pass(
            _double_pointer(self.w),
            ctypes.c_long(self.rows),
            ctypes.c_long(self.n_in),
            ctypes.c_long(0 if self.in_l1 else self.n_in),
            _double_pointer(self.x_prev),
            _double_pointer(self.x),
            ctypes.c_long(self.PLACEMENT_STEP),
            ctypes.c_long(self.PLACEMENTS),
            ctypes.c_long(rows * epochs),
            _double_pointer(self.sink),
        )
        return np.zeros(epochs)


def probes(sizes, dtype="float64"):
    """The roofline's probes for one case: the bandwidth probe at each of
    ``stream_widths()``, then the core probe over W1 and in L1."""
    return [StreamTrainer(sizes, dtype, width) for width in stream_widths()] + [
        W1PassTrainer(sizes, in_l1=False),
        W1PassTrainer(sizes, in_l1=True),
    ]


def result(probe_list, measurements):
    """The roofline entry for the JSON, from ``probes()``'s trainers and their
    measurements (in the same order)."""
    streams = [(p, m) for p, m in zip(probe_list, measurements) if isinstance(p, StreamTrainer)]
    passes = {p.in_l1: m for p, m in zip(probe_list, measurements) if isinstance(p, W1PassTrainer)}
    m = streams[0][0].model
    by_width = {
        str(p.width or "native"): {
            "bandwidth_bytes_per_s": r.median * 2 * m["W1_bytes"],
            "bandwidth_repeats": [rate * 2 * m["W1_bytes"] for rate in r.rates],
        }
        for p, r in streams
    }
    best_width, best = max(by_width.items(), key=lambda item: item[1]["bandwidth_bytes_per_s"])
    bandwidth = best["bandwidth_bytes_per_s"]
    caches = cache_sizes()
    core = next(p for p in probe_list if isinstance(p, W1PassTrainer))
    entry = dict(
        m,
        bandwidth_bytes_per_s=bandwidth,
        bandwidth_repeats=best["bandwidth_repeats"],
        bandwidth_width=best_width,
        bandwidth_by_width=by_width,
        ceiling_samples_per_s=bandwidth / m["bytes_per_sample"],
        caches=caches,
        target=TARGET,
        probe=f"stream_rw over {m['W1_bytes']:,} B (W1's size): read + write each double, "
        f"{streams[0][1].rows * streams[0][1].epochs} passes per repeat, built for "
        + " and ".join(f"{w}-bit" if w != "native" else "-march=native" for w in by_width)
        + " vectors; the best counts",
        core_isa=core.isa,
        w1_pass_per_s=passes[False].median,
        w1_pass_in_l1_per_s=passes[True].median,
    )
    l2 = caches.get("L2", {}).get("bytes")
    if l2:
        entry["W1_cache_level"] = "L2" if m["W1_bytes"] <= l2 else "L3 (W1 is larger than L2)"
    return entry


def fractions(case):
    """fastbp's and the C loop's rates in the case, as fractions of its
    memory ceiling (``<peer>_fraction``), and fastbp's against the core
    probe's pass in L1 (``fastbp_vs_l1_pass``)."""
    roof = case["roofline"]
    out = {}
    for r in case["results"]:
        if r.get("status") == "ok" and r["peer"] in ("fastbp", "C"):
            out[f"{r['peer']}_fraction"] = r["median"] / roof["ceiling_samples_per_s"]
            if r["peer"] == "fastbp" and "w1_pass_in_l1_per_s" in roof:
                out["fastbp_vs_l1_pass"] = r["median"] / roof["w1_pass_in_l1_per_s"]
    return out


def two_core_ratio(seconds=0.05):
    """How many cores two threads get at once here: the throughput of two
    threads each streaming over its own L1-sized buffer (ctypes releases the
    GIL) over one thread alone; about 2 on two free cores, about 1 when another
    process holds one of them."""
    import threading
    import time

    lib = _stream_library()
    buffers = [np.zeros(2048) for _ in range(2)]

    def work(buffer, passes):
        lib.stream_rw(
            _double_pointer(buffer),
            ctypes.c_long(buffer.size),
            ctypes.c_long(passes),
        )

    passes = 1000
    while True:
        start = time.perf_counter()
        work(buffers[0], passes)
        one = time.perf_counter() - start
        if one >= seconds / 4:
            break
        passes *= 4
    passes = int(passes * seconds / one)
    start = time.perf_counter()
    work(buffers[0], passes)
    one = time.perf_counter() - start
    threads = [threading.Thread(target=work, args=(b, passes)) for b in buffers]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two = time.perf_counter() - start
    return 2 * one / two
