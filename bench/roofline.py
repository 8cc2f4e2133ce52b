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
ceiling is that bandwidth divided by the bytes per sample.  (A loop that walked
W1 forward on one sample and backward on the next could keep part of it in L2
and beat this model: the model is the bound for a loop that walks W the same
way every sample.)

The probe runs as a pseudo-peer of the 784-128-10 online float64 case, taking
its turns with the real peers, so the ceiling and fastbp's rate see the same
machine load.
"""

from __future__ import annotations

import ctypes
import itertools
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


class _Library:
    lib = None

    @classmethod
    def get(cls):
        if cls.lib is None:
            path = compile_shared(HERE / "peers" / "stream.c", NATIVE_FLAGS, tag="")
            cls.lib = ctypes.CDLL(str(path))
            cls.lib.stream_rw.restype = None
        return cls.lib


class StreamTrainer:
    """A trainer-shaped probe for peers.measure_interleaved: ``train(rows,
    epochs)`` makes rows x epochs read+write passes over a buffer of W1's size,
    so its "samples per second" is passes per second.  Costs: zeros."""

    def __init__(self, sizes, dtype="float64"):
        self.lib = _Library.get()  # Unavailable without a C compiler
        self.model = model(sizes, dtype)
        self.buffer = np.random.default_rng(0).random(self.model["W1_bytes"] // 8)  # float64 elements

    def reset(self):
        pass

    def train(self, rows, epochs):
        self.lib.stream_rw(
            self.buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            ctypes.c_long(self.buffer.size),
            ctypes.c_long(rows * epochs),
        )
        return np.zeros(epochs)

    def result(self, measurement):
        """The roofline entry for the JSON, from the probe's measurement."""
        m = self.model
        passes = measurement.median
        bandwidth = passes * 2 * m["W1_bytes"]
        caches = cache_sizes()
        entry = dict(
            m,
            bandwidth_bytes_per_s=bandwidth,
            bandwidth_repeats=[r * 2 * m["W1_bytes"] for r in measurement.rates],
            ceiling_samples_per_s=bandwidth / m["bytes_per_sample"],
            caches=caches,
            target=TARGET,
            probe=f"stream_rw over {m['W1_bytes']:,} B (W1's size): read + write each double, "
            f"{measurement.rows * measurement.epochs} passes per repeat",
        )
        l2 = caches.get("L2", {}).get("bytes")
        if l2:
            entry["W1_cache_level"] = "L2" if m["W1_bytes"] <= l2 else "L3 (W1 is larger than L2)"
        return entry

    @staticmethod
    def fractions(case):
        """fastbp's and the C loop's rates in the case, as fractions of its ceiling."""
        ceiling = case["roofline"]["ceiling_samples_per_s"]
        return {
            f"{r['peer']}_fraction": r["median"] / ceiling
            for r in case["results"]
            if r.get("status") == "ok" and r["peer"] in ("fastbp", "C")
        }


def two_core_ratio(seconds=0.05):
    """How many cores two threads get at once here: the throughput of two
    threads each streaming over its own L1-sized buffer (ctypes releases the
    GIL) over one thread alone; about 2 on two free cores, about 1 when another
    process holds one of them."""
    import threading
    import time

    lib = _Library.get()
    buffers = [np.zeros(2048) for _ in range(2)]

    def work(buffer, passes):
        lib.stream_rw(
            buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
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
