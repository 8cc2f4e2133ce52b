"""The roofline's probes (bench/roofline.py) measure what they say.

The core probe (bench/peers/w1_pass.c) must make fastbp's W1 pass: each row
updated by ``w -= step x_prev`` and dotted with ``x``, at the placement of the
pass, over W1's rows or over two rows in turn; its build must use setup.py's
flags; and the roofline entry must take the faster of the bandwidth probe's
widths and report the core probe.  No timing here: the probes run a pass or two
and their arithmetic is checked.
"""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
if not (BENCH / "roofline.py").exists():  # an installed copy or an sdist: bench/ is not shipped
    pytest.skip("bench/ is not in this source tree", allow_module_level=True)
sys.path.insert(0, str(BENCH))
import report
import roofline
from peers import Measurement, Unavailable

# 70 inputs: two 32-wide blocks and a tail of 6, as in fastbp's own kernel tests
SIZES = (70, 5, 3)
STEP = 1e-9  # w1_pass.c's: -STEP on even passes, +STEP on odd ones


def _probe(in_l1):
    try:
        return roofline.W1PassTrainer(SIZES, in_l1=in_l1)
    except Unavailable as why:
        pytest.skip(f"the core probe cannot be built here: {why}")


def _expected(probe, passes, rows_of_call):
    """w1_pass.c's work in NumPy: call k of a pass updates row rows_of_call(k)."""
    w = probe.w.reshape(-1, probe.n_in).copy()
    total = 0.0
    for p in range(passes):
        step = STEP if p & 1 else -STEP
        at = probe.PLACEMENT_STEP * (p % probe.PLACEMENTS)
        x_prev, x = probe.x_prev[at : at + probe.n_in], probe.x[at : at + probe.n_in]
        for k in range(probe.rows):
            row = rows_of_call(k)
            w[row] = w[row] - step * x_prev
            total += w[row] @ x
    return w.ravel(), total


@pytest.mark.parametrize("in_l1", [False, True], ids=["over W1", "in L1"])
def test_the_core_probe_makes_fastbps_w1_pass(in_l1):
    probe = _probe(in_l1)
    passes = 3  # three placements, both signs of the step
    expected_w, expected_sink = _expected(probe, passes, (lambda k: k & 1) if in_l1 else (lambda k: k))
    probe.train(passes, 1)
    # The update moves each weight by about 1e-9: a pass left out, or the wrong
    # row or placement, is far outside this tolerance.
    np.testing.assert_allclose(probe.w, expected_w, rtol=1e-13, atol=0)
    assert probe.sink[0] == pytest.approx(expected_sink, rel=1e-12)
    if in_l1:  # rows 2.. are never touched
        untouched = probe.w.reshape(-1, probe.n_in)[2:]
        fresh = _probe(in_l1).w.reshape(-1, probe.n_in)[2:]
        np.testing.assert_array_equal(untouched, fresh)


def test_the_core_probe_is_built_with_setup_pys_flags():
    setup = (ROOT / "setup.py").read_text()
    for flag in roofline.KERNEL_FLAGS:
        assert f'"{flag}"' in setup, f"setup.py no longer passes {flag}: update roofline.KERNEL_FLAGS"
    isa, flags = roofline.kernel_copy(SIZES)
    assert flags[: len(roofline.KERNEL_FLAGS)] == roofline.KERNEL_FLAGS
    assert (isa == "baseline") == (not any(f.startswith("-march=") for f in flags))
    if isa != "baseline":
        assert re.search(rf'"-march={re.escape(isa)}"', setup), f"setup.py builds no {isa} copy"


def _fake(cls, **attributes):
    probe = object.__new__(cls)
    probe.__dict__.update(attributes)
    return probe


def test_the_roofline_takes_the_faster_width_and_reports_the_core_probe():
    model = roofline.model(SIZES)
    streams = [_fake(roofline.StreamTrainer, width=w, model=model) for w in (256, 512)]
    core = [_fake(roofline.W1PassTrainer, in_l1=flag, isa="x86-64-v4") for flag in (False, True)]
    measured = [
        Measurement([90.0, 100.0, 110.0], None, 10, 1),  # 256-bit: median 100 passes/s
        Measurement([140.0, 150.0, 160.0], None, 10, 1),  # 512-bit: 150
        Measurement([30.0], None, 10, 1),  # W1 pass over W1
        Measurement([40.0], None, 10, 1),  # in L1
    ]
    entry = roofline.result(streams + core, measured)
    assert entry["bandwidth_width"] == "512"
    assert entry["bandwidth_bytes_per_s"] == 150.0 * 2 * model["W1_bytes"]
    assert entry["ceiling_samples_per_s"] == entry["bandwidth_bytes_per_s"] / model["bytes_per_sample"]
    assert (entry["w1_pass_per_s"], entry["w1_pass_in_l1_per_s"]) == (30.0, 40.0)
    case = {
        "workload": "70-5-3",
        "dtype": "float64",
        "roofline": entry,
        "results": [{"peer": "fastbp", "status": "ok", "median": 20.0}],
    }
    entry.update(roofline.fractions(case))
    assert entry["fastbp_fraction"] == 20.0 / entry["ceiling_samples_per_s"]
    assert entry["fastbp_vs_l1_pass"] == 0.5
    memory, core_line = report.roofline_lines(case, markdown=True)
    assert "256-bit vectors" in memory and "512-bit vectors" in memory
    assert "0.75× its speed in L1" in core_line and "ran at 0.50× the pass in L1" in core_line
