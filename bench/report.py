"""Turn compare.py's results into the console table, the issue's targets,
the Markdown of docs/performance.md and the PNG chart."""

from __future__ import annotations

import re

PEER_ORDER = [
    "fastbp",
    "fastbp-ref",
    "fastbp-base",
    "C",
    "FANN",
    "numpy",
    "torch-sgd",
    "torch-nograd",
    "torch-script",
]
TORCH_PER_SAMPLE = ("torch-sgd", "torch-nograd", "torch-script")
NUMPY_AND_TORCH = ("numpy", "torch-sgd", "torch-nograd", "torch-script")
TORCH_MINIBATCH = ("torch-sgd", "torch-nograd")  # torch-script has no mini-batch loop
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
HEADLINE_START, HEADLINE_END = "<!-- bench:headline:start -->", "<!-- bench:headline:end -->"
# The README's headline rows (workload, mode, dtype), cut from the same run as the full table.
HEADLINE = (
    ("2-2-2", "online", "float64"),
    ("64-32-10", "online", "float64"),
    ("784-128-10", "online", "float64"),
    ("784-128-10", "online", "float32"),
    ("784-128-10", "minibatch", "float32"),
)

# The issues' targets: fastbp's samples/s divided by the peer's.
# (issue, mode, peer group, {workload: minimum ratio}), checked for float64 and float32, single thread.
TARGETS = [
    (3, "online", ("FANN",), {"2-2-2": 1.2, "64-32-10": 3.0, "784-128-10": 5.0}),
    (3, "online", TORCH_PER_SAMPLE, {"2-2-2": 100.0, "64-32-10": 15.0, "784-128-10": 2.5}),
    (3, "online", ("C",), {"2-2-2": 0.8, "64-32-10": 0.9, "784-128-10": 0.9}),
    (3, "minibatch", NUMPY_AND_TORCH, {"64-32-10": 2.0, "784-128-10": 1.1}),
    # Tiny networks with many epochs: one-row epochs (the worked example's way) and 1000-row epochs.
    (9, "online", ("FANN",), {"2-2-2:1row": 1.2, "2-2-2:1000row": 1.2}),
    (9, "online", ("C",), {"2-2-2:1row": 0.9, "2-2-2:1000row": 0.9, "64-32-10": 0.9, "784-128-10": 0.9}),
    # Other models, PyTorch and FANN running the same one from the same weights.
    (10, "online", TORCH_PER_SAMPLE, {"784-128-10:relu-softmax": 2.5}),
    (10, "minibatch", TORCH_MINIBATCH, {"784-128-10:relu-softmax": 1.1}),
    (10, "online", ("FANN",), {"64-32-10:tanh": 3.0}),
    # Optimizers: FANN and torch.optim running the same rule from the same weights (FANN's RPROP
    # is its own iRPROP-: the same work per epoch, see bench/README.md).
    (11, "online", ("FANN",), {"64-32-10:momentum": 3.0}),
    (11, "online", TORCH_PER_SAMPLE, {"784-128-10:momentum": 2.5}),
    (11, "minibatch", TORCH_MINIBATCH, {"784-128-10:adam": 1.1}),
    (11, "fullbatch", ("FANN",), {"21-16-8-3:rprop": 2.0, "125-32-2:rprop": 2.0}),
    # The plain-SGD paths against the commit before issue 11 (compare.py --baseline): "as fast as
    # before", within 5% (about the noise of one run's medians on this machine).
    (11, "online", ("fastbp-base",), {"2-2-2": 0.95, "64-32-10": 0.95, "784-128-10": 0.95}),
    (11, "minibatch", ("fastbp-base",), {"2-2-2": 0.95, "64-32-10": 0.95, "784-128-10": 0.95}),
]
# Workload names as the tables spell them out.
WORKLOAD_NOTES = {
    "2-2-2:1row": "epochs of 1 row",
    "2-2-2:1000row": "epochs of 1000 rows",
    "784-128-10:relu-softmax": "ReLU hidden, softmax output, cross-entropy",
    "64-32-10:tanh": "tanh, squared error",
    "64-32-10:momentum": "SGD, momentum 0.875",
    "784-128-10:momentum": "SGD, momentum 0.875",
    "784-128-10:adam": "Adam",
    "21-16-8-3:rprop": "RPROP, 3600 rows",
    "125-32-2:rprop": "RPROP, 4062 rows",
}
TWO_NETWORKS_TARGET = 1.8
# Memory: "peak memory of a training run = data + weights + buffers
# proportional to the layer widths (times the batch size); nothing grows with
# the number of samples or epochs."  Measured as the growth of the peak RSS a
# train call adds when the rows grow 4x (bytes per added row; 1 B/row of slack
# for allocator noise, so e.g. an 8-byte index per row fails) or when the
# epochs grow 8x (the 8-byte cost of each epoch plus 256 KiB of noise).
MEMORY_BYTES_PER_ROW = 1.0
MEMORY_EPOCH_NOISE = 256 * 1024


def _ok_results(case):
    return {r["peer"]: r for r in case["results"] if r.get("status") == "ok" and r.get("check") != "MISMATCH"}


def find_case(results, workload, mode, dtype, threads=1):
    for case in results["cases"]:
        if (case["workload"], case["mode"], case["dtype"], case["threads"]) == (
            workload,
            mode,
            dtype,
            threads,
        ):
            return case
    return None


def _fmt_rate(rate):
    if rate is None:
        return "n/a"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def targets(results):
    """Each target of the issue: what was measured, the bar, pass/fail/n/a."""
    rows = []
    for issue, mode, group, bars in TARGETS:
        for workload, bar in bars.items():
            for dtype in ("float64", "float32"):
                case = find_case(results, workload, mode, dtype)
                if case is None:
                    continue
                ok = _ok_results(case)
                rivals = {p: ok[p]["median"] for p in group if p in ok}
                how = {"online": "online", "minibatch": "mini-batch 64", "fullbatch": "full batch"}[mode]
                name = f"issue {issue}: {how} {_workload(workload)}: fastbp >= {bar:g}x " + (
                    group[0] if len(group) == 1 else "the best of " + "/".join(group)
                )
                if "fastbp" not in ok or not rivals:
                    missing = "fastbp" if "fastbp" not in ok else "/".join(group)
                    rows.append(
                        {"target": name, "dtype": dtype, "status": "n/a", "why": f"{missing} not measured"}
                    )
                    continue
                best = max(rivals, key=rivals.get)
                ratio = ok["fastbp"]["median"] / rivals[best]
                rows.append(
                    {
                        "target": name,
                        "dtype": dtype,
                        "status": "pass" if ratio >= bar else "FAIL",
                        "ratio": ratio,
                        "bar": bar,
                        "against": best,
                    }
                )
    for two in results.get("two_networks", []):
        for entry in two["results"]:
            if entry["peer"] != "fastbp":
                continue
            name = f"two networks in two threads, {two['workload']} online: >= {TWO_NETWORKS_TARGET}x one network"
            good = entry["ratio"] >= TWO_NETWORKS_TARGET and entry["check"] == "ok"
            rows.append(
                {
                    "target": name,
                    "dtype": two["dtype"],
                    "status": "pass" if good else "FAIL",
                    "ratio": entry["ratio"],
                    "bar": TWO_NETWORKS_TARGET,
                }
            )
    rows += _memory_targets(results.get("memory", []))
    for case in results["cases"]:
        roof = case.get("roofline")
        if roof:
            name = (
                f"issue 9: online {case['workload']}: fastbp >= {roof['target']:g}x the memory roofline "
                f"({_fmt_rate(roof['ceiling_samples_per_s'])} samples/s)"
            )
            if "fastbp_fraction" in roof:
                rows.append(
                    {
                        "target": name,
                        "dtype": case["dtype"],
                        "ratio": roof["fastbp_fraction"],
                        "bar": roof["target"],
                        "status": "pass" if roof["fastbp_fraction"] >= roof["target"] else "FAIL",
                    }
                )
            else:
                rows.append(
                    {"target": name, "dtype": case["dtype"], "status": "n/a", "why": "fastbp not measured"}
                )
    if results.get("percall"):
        import percall

        rows += [dict(t, target="issue 9: " + t["target"]) for t in percall.targets(results["percall"])]
    return rows


def _workload(name):
    return f"{name.split(':')[0]} ({WORKLOAD_NOTES[name]})" if name in WORKLOAD_NOTES else name


def _memory_targets(memory):
    rows = []
    good = [m for m in memory if "error" not in m]
    for a in good:
        for b in good:
            if (a["workload"], a["mode"]) != (b["workload"], b["mode"]) or a is b:
                continue
            if a["epochs"] == b["epochs"] and b["rows"] > a["rows"]:
                per_row = (b["added_bytes"] - a["added_bytes"]) / (b["rows"] - a["rows"])
                rows.append(
                    {
                        "target": f"memory {a['workload']} {a['mode']}: added peak grows <= "
                        f"{MEMORY_BYTES_PER_ROW:g} B per row of data ({a['row_bytes']} B/row)",
                        "status": "pass" if per_row <= MEMORY_BYTES_PER_ROW else "FAIL",
                        "measured": f"{per_row:.2f} B/row",
                    }
                )
            if a["rows"] == b["rows"] and b["epochs"] > a["epochs"]:
                growth = b["added_bytes"] - a["added_bytes"]
                allowed = MEMORY_EPOCH_NOISE + 8 * (b["epochs"] - a["epochs"])
                rows.append(
                    {
                        "target": f"memory {a['workload']} {a['mode']}: nothing grows with epochs "
                        f"({a['epochs']} -> {b['epochs']})",
                        "status": "pass" if growth <= allowed else "FAIL",
                        "measured": f"{growth / 1024:+.0f} KiB",
                    }
                )
    if memory and not good:
        rows.append({"target": "memory", "status": "n/a", "why": memory[0]["error"]})
    return rows


def mismatches(results):
    lines = []
    for case in results["cases"]:
        for r in case["results"]:
            if r.get("status") == "error":
                lines.append(
                    f"{r['peer']} on {case['workload']} {case['mode']} {case['dtype']} "
                    f"{case['threads']} thread(s) failed: {r['reason']}"
                )
            if r.get("check") == "MISMATCH":
                lines.append(
                    f"{r['peer']} on {case['workload']} {case['mode']} {case['dtype']} "
                    f"{case['threads']} thread(s): costs {_few(r['costs'])} vs {case['reference']} "
                    f"{_few(r['expected'])} (max rel diff {r['max_rel_diff']:.3g})"
                )
    for two in results.get("two_networks", []):
        for entry in two["results"]:
            if entry["check"] == "MISMATCH":
                lines.append(
                    f"{entry['peer']} two networks {two['workload']} {two['dtype']}: "
                    "training in two threads changed the costs"
                )
    if results.get("percall"):
        import percall

        lines += percall.mismatches(results["percall"])
    return lines


def _few(values):
    return str(values) if len(values) <= 6 else f"[{values[0]:.9g}, {values[1]:.9g}, ..., {values[-1]:.9g}]"


def _fastbp_copy(m):
    fb = m.get("fastbp", {})
    if "isa" not in fb:
        return "fastbp's compiled copy unknown" + (
            f" ({fb['kernels_error']})" if fb.get("kernels_error") else ""
        )
    forced = f", forced by FASTBP_ISA={fb['FASTBP_ISA']}" if fb.get("FASTBP_ISA") else ""
    return f"fastbp's {fb['isa']} copy ({fb.get('kernels')}{forced})"


def _blas_owner(path):
    """Whose copy of a BLAS library this is: NumPy's (what numpy and the numpy peer
    call) or SciPy's (what fastbp's kernels call through scipy.linalg.cython_blas)."""
    for owner in ("numpy", "scipy", "torch"):
        if f"/{owner}.libs/" in path or f"/{owner}/" in path:
            return f", {'NumPy' if owner == 'numpy' else 'SciPy' if owner == 'scipy' else 'PyTorch'}'s"
    return ""


def _machine_line(results):
    m = results.get("machine", {})
    blas = [b for b in m.get("blas", []) if b.get("user_api") == "blas"]
    blas_text = (
        ", ".join(
            f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')} kernel"
            f"{_blas_owner(b.get('filepath', ''))})"
            for b in blas
        )
        or "unknown BLAS"
    )
    peaks = results.get("peak_gflops", {})
    one = peaks.get("1") or peaks.get(1) or {}
    peak_text = ", ".join(f"{dtype} {value:.0f}" for dtype, value in one.items())
    text = (
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores; {_fastbp_copy(m)}; "
        f"NumPy {m.get('numpy', '?')}; BLAS {blas_text}"
    )
    if m.get("OPENBLAS_CORETYPE"):
        text += f", OPENBLAS_CORETYPE={m['OPENBLAS_CORETYPE']}"
    if peak_text:
        text += f"; 1-thread matmul peak {peak_text} GFLOP/s"
    return text


def two_cores_warning(results):
    """A sentence when the C loop, trained twice at once from two threads, did
    not get near 2x one alone: the machine did not give this run two cores
    (another process had one), so every 2-thread number of the run is
    oversubscribed (spinning BLAS workers wait for a descheduled partner)."""
    ratios = [e["ratio"] for t in results.get("two_networks", []) for e in t["results"] if e["peer"] == "C"]
    if ratios and max(ratios) < 1.5:
        return (
            f"!!! The C loop trained two networks at once at x{max(ratios):.2f} of one at best: this run did not "
            "have two free cores, so its 2-thread numbers (mini-batch, 2 threads; two networks) measure the "
            "contention, not fastbp."
        )
    peaks = results.get("peak_gflops", {})
    one, two = peaks.get("1") or peaks.get(1), peaks.get("2") or peaks.get(2)
    if one and two:
        ratio = min(two[d] / one[d] for d in one if d in two)
        if ratio < 1.5:
            return (
                f"!!! NumPy's matmul ran at x{ratio:.2f} with 2 threads against 1: the 2-thread worker did not "
                "have two free cores, so its numbers measure the contention, not fastbp."
            )
    return None


def text(results):
    """The console report: one table per case, then two-network runs, memory, targets."""
    out = ["", "=" * 100, "fastbp benchmark — " + _machine_line(results)]
    m = results.get("machine", {})
    fb = m.get("fastbp", {})
    out.append(
        f"fastbp from {fb.get('path')} (commit {fb.get('commit')}{', uncommitted changes' if fb.get('dirty') else ''})"
        + ("" if fb.get("from_checkout", True) else "  <- NOT this checkout: an installed copy")
    )
    out.append(
        f"PyTorch {(m.get('torch') or {}).get('version', 'not installed')}, FANN {m.get('fann') or 'not installed'},"
        f" {m.get('gcc') or 'no gcc'}; OPENBLAS_CORETYPE {m.get('OPENBLAS_CORETYPE') or 'not set'}"
    )
    out.append(
        "samples/s: median of the repeats (± half the range); fastbp/peer > 1 means fastbp is faster;"
        " GFLOP/s counts ~6 flops per weight per sample"
    )
    peaks = results.get("peak_gflops", {})
    for case in results["cases"]:
        peak = (peaks.get(str(case["threads"])) or peaks.get(case["threads"]) or {}).get(case["dtype"])
        mode = case["mode"] + ("" if case["mode"] in ("online", "fullbatch") else f" {case['batch_size']}")
        out.append("")
        out.append(
            f"{_workload(case['workload'])}  {mode}  {case['dtype']}  {case['threads']} thread(s)   "
            f"cost reference: {case['reference']}" + (f"   matmul peak {peak:.0f} GFLOP/s" if peak else "")
        )
        out.append(
            f"  {'peer':14s}{'samples/s':>12s}{'±':>8s}{'fastbp/peer':>12s}{'GFLOP/s':>9s}{'%peak':>7s}"
            f"{'rows x epochs':>17s}  cost check"
        )
        ok = {r["peer"]: r for r in case["results"] if r.get("status") == "ok"}
        fastbp = ok.get("fastbp", {}).get("median")
        for r in sorted(
            case["results"], key=lambda r: PEER_ORDER.index(r["peer"]) if r["peer"] in PEER_ORDER else 99
        ):
            if r.get("status") != "ok":
                what = "!!! FAILED" if r.get("status") == "error" else "skipped"
                out.append(f"  {r['peer']:14s}{'—':>12s}   {what}: {r.get('reason', '')}")
                continue
            spread = (max(r["rates"]) - min(r["rates"])) / 2 / r["median"]
            gflops = r["median"] * case["flops_per_sample"] / 1e9
            ratio = f"{fastbp / r['median']:.2f}" if fastbp else "n/a"
            check = r["check"] + (f" ({r['max_rel_diff']:.0e})" if "max_rel_diff" in r else "")
            if r["check"] == "MISMATCH":
                check = "!!! " + check
            out.append(
                f"  {r['peer']:14s}{_fmt_rate(r['median']):>12s}{100 * spread:7.0f}%{ratio:>12s}"
                f"{gflops:9.2f}{(100 * gflops / peak if peak else 0):6.0f}%"
                f"{str(r['rows']) + ' x ' + str(r['epochs']):>17s}  {check}"
            )
        out += roofline_lines(case)
    out += percall_lines(results.get("percall"))
    if results.get("two_networks"):
        out += ["", "Two networks trained at once from two Python threads (online, 1 BLAS thread):"]
        for two in results["two_networks"]:
            for e in two["results"]:
                out.append(
                    f"  {two['workload']:11s}{two['dtype']:9s}{e['peer']:8s} one {_fmt_rate(e['one']):>7s}/s"
                    f"   two {_fmt_rate(e['two']):>7s}/s   x{e['ratio']:.2f}   costs {e['check']}"
                )
    if results.get("memory"):
        out += ["", "Peak memory added by one train call (RSS high-water mark, fresh process each):"]
        for e in results["memory"]:
            if "error" in e:
                out.append(
                    f"  {e['workload']} {e['mode']} rows={e['rows']} epochs={e['epochs']}: {e['error']}"
                )
            else:
                out.append(
                    f"  {e['workload']:11s}{e['mode']:10s} rows={e['rows']:>9,} epochs={e['epochs']}:"
                    f" data {e['data_bytes'] / 2**20:7.1f} MiB, params {e['params_bytes'] / 1024:7.1f} KiB,"
                    f" added {e['added_bytes'] / 1024:9.1f} KiB (traced {e['traced_bytes'] / 1024:.1f} KiB)"
                )
    warning = two_cores_warning(results)
    if warning:
        out += ["", warning]
    out += ["", "Targets (issues 3, 9 and 10; default build, single thread, same run):"]
    for t in results.get("targets", []):
        dtype = f" [{t['dtype']}]" if t.get("dtype") else ""
        out.append(f"  [{t['status']:>4s}] {t['target']}{dtype}: {_measured(t)}")
    counts = {s: sum(t["status"] == s for t in results.get("targets", [])) for s in ("pass", "FAIL", "n/a")}
    out.append(f"  {counts['pass']} pass, {counts['FAIL']} fail, {counts['n/a']} n/a")
    out.append(f"(run took {results.get('seconds', '?')} s)")
    return "\n".join(out)


def _measured(t, times="x"):
    if "ratio" in t:
        return f"{t['ratio']:.2f}{times}" + (f" vs {t['against']}" if t.get("against") else "")
    return t.get("measured", t.get("why", ""))


def _fmt_ratio(ratio):
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def markdown(results):
    """The Performance page's table (docs/performance.md): samples/s per peer and the targets."""
    peers = [
        p
        for p in PEER_ORDER
        if p != "fastbp-ref"
        and any(r["peer"] == p and r.get("status") == "ok" for c in results["cases"] for r in c["results"])
    ]
    checks = [r.get("check") for c in results["cases"] for r in c["results"] if r.get("status") == "ok"]
    if "MISMATCH" in checks or any(
        r.get("status") == "error" for c in results["cases"] for r in c["results"]
    ):
        verdict = (
            "**Some peers failed or computed different costs (marked): their timings are not comparable.**"
        )
    elif "unchecked" in checks or any(c["reference"] != "fastbp" for c in results["cases"]):
        verdict = "Costs were checked against fastbp where it ran (against NumPy elsewhere), and all matched."
    else:
        verdict = "Every peer's per-epoch costs matched fastbp's on the same data and initial weights."
    spreads = sorted(
        (max(r["rates"]) - min(r["rates"])) / 2 / r["median"]
        for c in results["cases"]
        for r in c["results"]
        if r.get("status") == "ok"
    )
    noise = (
        f"The repeats of one peer varied by ±{100 * spreads[len(spreads) // 2]:.0f}% (median; "
        f"up to ±{100 * spreads[-1]:.0f}%) in this run."
        if spreads
        else ""
    )
    lines = [
        f"Measured by `python bench/compare.py` on {results.get('date', '?')}: {_machine_line(results)}.",
        "Samples per second (median of the repeats), single thread unless noted; "
        f"in parentheses, fastbp's speed divided by the peer's. {verdict} {noise}",
        "",
    ]
    if not results["cases"]:
        lines = lines[:1]
    else:
        lines.append("| network | training | dtype | " + " | ".join(peers) + " |")
        lines.append("|---|---|---|" + "---|" * len(peers))
    for case in results["cases"]:
        ok = {r["peer"]: r for r in case["results"] if r.get("status") == "ok"}
        fastbp = ok.get("fastbp", {}).get("median")
        mode = {"online": "online", "fullbatch": "full batch"}.get(
            case["mode"], f"mini-batch {case['batch_size']}"
        )
        if case["threads"] > 1:
            mode += f", {case['threads']} threads"
        cells = []
        for p in peers:
            r = ok.get(p)
            failed = next((x for x in case["results"] if x["peer"] == p and x.get("status") == "error"), None)
            if failed is not None:
                cells.append("failed")
            elif r is None:
                cells.append("—")
            elif r.get("check") == "MISMATCH":
                cells.append("cost mismatch")
            elif p == "fastbp" or not fastbp:
                cells.append(_fmt_rate(r["median"]))
            else:
                cells.append(f"{_fmt_rate(r['median'])} ({_fmt_ratio(fastbp / r['median'])})")
        lines.append(
            f"| {_workload(case['workload'])} | {mode} | {case['dtype']} | " + " | ".join(cells) + " |"
        )
    epochs = [
        f"{_workload(c['workload'])} {c['dtype']}: "
        + ", ".join(
            f"{p} {_fmt_rate(r['median'] / c['epoch_rows'])}"
            for p in peers
            for r in [_ok_results(c).get(p)]
            if r
        )
        for c in results["cases"]
        if c["mode"] == "fullbatch"
    ]
    if epochs:
        lines += [
            "",
            "Full-batch (RPROP) rows in epochs per second (samples/s over the rows of an epoch): "
            + "; ".join(epochs)
            + ".",
        ]
    twos = []
    for t in results.get("two_networks", []):
        ratios = {e["peer"]: e["ratio"] for e in t["results"]}
        if "fastbp" in ratios:
            c_loop = f" (C loop ×{ratios['C']:.2f})" if "C" in ratios else ""
            twos.append(f"{t['workload']} {t['dtype']} ×{ratios['fastbp']:.2f}{c_loop}")
    if twos:
        lines += [
            "",
            "Two networks trained from two Python threads at once, online, against one alone "
            "(the C loop, run the same way, shows what the machine allowed): " + ", ".join(twos) + ".",
        ]
    warning = two_cores_warning(results)
    if warning:
        lines += ["", "**" + warning.lstrip("! ") + "**"]
    roofs = [line for case in results["cases"] for line in roofline_lines(case, markdown=True)]
    if roofs:
        lines += ["", *roofs]
    lines += percall_markdown(results.get("percall"))
    lines += ["", "| target | float64 | float32 |", "|---|---|---|"]
    grouped = {}
    for t in results.get("targets", []):
        grouped.setdefault(t["target"], {})[t.get("dtype")] = f"{_measured(t, '×')}: **{t['status']}**"
    for name, by_dtype in grouped.items():
        if None in by_dtype:  # not per dtype (memory: float64 only)
            by_dtype = {"float64": by_dtype[None]}
        lines.append(f"| {name} | {by_dtype.get('float64', '—')} | {by_dtype.get('float32', '—')} |")
    return "\n".join(lines)


def roofline_lines(case, markdown=False):
    """The roofline of a case (bench/roofline.py's entry), in words."""
    roof = case.get("roofline")
    if not roof:
        return []
    l2 = roof.get("caches", {}).get("L2", {}).get("bytes")
    where = (
        f"W1 ({roof['W1_bytes'] / 1024:.0f} KiB) is larger than this CPU's {l2 // 1024} KiB L2, so it streams "
        f"from L3"
        if l2 and roof["W1_bytes"] > l2
        else f"W1 is {roof['W1_bytes'] / 1024:.0f} KiB"
    )
    fractions = ", ".join(
        f"{p} at {roof[p + '_fraction']:.2f}×" for p in ("fastbp", "C") if p + "_fraction" in roof
    )
    widths = roof.get("bandwidth_by_width", {})
    stream = "A read+write stream over a buffer of W1's size"
    if len(widths) > 1:
        stream += (
            " ("
            + ", ".join(
                f"{w}-bit vectors {v['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s" for w, v in widths.items()
            )
            + "; the faster counts)"
        )
    text = [
        f"Memory roofline of {case['workload']} online {case['dtype']}: {roof['bytes_per_sample']:,} bytes must move "
        f"per sample ({roof['model']}); {where}. {stream} ran at "
        f"{roof['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s in the same run, so at most "
        f"{_fmt_rate(roof['ceiling_samples_per_s'])} samples/s: {fractions} of that ceiling."
    ]
    if "w1_pass_in_l1_per_s" in roof:
        over, in_l1 = roof["w1_pass_per_s"], roof["w1_pass_in_l1_per_s"]
        text.append(
            f"Core probe: fastbp's own W1 pass (fastbp_update_dot_d, built as its {roof['core_isa']} copy) ran "
            f"{_fmt_rate(over)} passes/s over W1 and {_fmt_rate(in_l1)} passes/s over two rows kept in L1 "
            f"({over / in_l1:.2f}× its speed in L1: the part memory costs is small, the rest is the "
            f"instructions); fastbp's whole samples ran at {roof.get('fastbp_vs_l1_pass', float('nan')):.2f}× "
            "the pass in L1."
        )
    return text if markdown else ["  " + line.replace("×", "x") for line in text]


def headline(results):
    """The README's short table: the HEADLINE rows (single thread), fastbp
    against FANN, the fastest PyTorch loop and NumPy, from the same run."""
    checks = [r.get("check") for c in results["cases"] for r in c["results"] if r.get("status") == "ok"]
    checked = (
        "some peers' costs did not match fastbp's: see the full table"
        if "MISMATCH" in checks
        else "every peer's costs were checked against fastbp's"
    )
    lines = [
        f"Training samples per second, one thread, on {results.get('machine', {}).get('cpu', '?')}, "
        f"from `python bench/compare.py` on {str(results.get('date', '?'))[:10]}; in parentheses, fastbp's "
        f"speed divided by the peer's (PyTorch: the fastest of its variants; {checked}). The full "
        "tables, the targets and what they mean: [Performance](docs/performance.md).",
        "",
        "| network | training | dtype | fastbp | FANN | PyTorch | NumPy |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, mode, dtype in HEADLINE:
        case = next(
            (
                c
                for c in results["cases"]
                if (c["workload"], c["mode"], c["dtype"], c["threads"]) == (workload, mode, dtype, 1)
            ),
            None,
        )
        if case is None:
            continue
        ok = {r["peer"]: r["median"] for r in case["results"] if r.get("status") == "ok"}
        fastbp = ok.get("fastbp")
        if not fastbp:
            continue
        torch = max((ok[p] for p in TORCH_PER_SAMPLE if p in ok), default=None)
        cells = [
            "—" if rate is None else f"{_fmt_rate(rate)} ({_fmt_ratio(fastbp / rate)})"
            for rate in (ok.get("FANN"), torch, ok.get("numpy"))
        ]
        label = "online" if mode == "online" else f"mini-batch {case['batch_size']}"
        lines.append(f"| {workload} | {label} | {dtype} | {_fmt_rate(fastbp)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _replace_block(path, start, end, body):
    """Replace what lies between the markers start and end in path (the
    markers stay, so this can be rerun)."""
    text_ = path.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text_):
        raise SystemExit(f"{path} has no {start} ... {end} block to replace")
    path.write_text(pattern.sub(lambda _: f"{start}\n{body}\n{end}", text_, count=1))


def update_readme(results, page_path, readme_path=None):
    """Write the run's table into docs/performance.md (page_path) and, given
    readme_path, its headline rows into README.md."""
    _replace_block(page_path, README_START, README_END, markdown(results))
    if readme_path is not None:
        _replace_block(readme_path, HEADLINE_START, HEADLINE_END, headline(results))


def chart(results, path):
    """Bar chart of samples/s (log scale), one panel per training mode."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed (pip install matplotlib)"
    panels = [("online", 1), ("minibatch", 1), ("minibatch", 2)]
    panels = [p for p in panels if any((c["mode"], c["threads"]) == p for c in results["cases"])]
    if not panels:
        return "no chart: no results"
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4 * len(panels)), squeeze=False)
    for ax, (mode, threads) in zip(axes[:, 0], panels):
        cases = [c for c in results["cases"] if (c["mode"], c["threads"]) == (mode, threads)]
        peers = [
            p
            for p in PEER_ORDER
            if any(r["peer"] == p and r.get("status") == "ok" for c in cases for r in c["results"])
        ]
        width = 0.8 / max(1, len(peers))
        for i, peer in enumerate(peers):
            xs, ys = [], []
            for j, case in enumerate(cases):
                r = next((r for r in case["results"] if r["peer"] == peer and r.get("status") == "ok"), None)
                if r is not None:
                    xs.append(j + (i - (len(peers) - 1) / 2) * width)
                    ys.append(r["median"])
            ax.bar(xs, ys, width, label=peer, color=f"C{PEER_ORDER.index(peer) % 10}")
        ax.set_xticks(range(len(cases)), [f"{c['workload']}\n{c['dtype']}" for c in cases])
        ax.set_yscale("log")
        ax.set_ylabel("samples / s")
        title = "online SGD" if mode == "online" else f"mini-batch {cases[0]['batch_size']}"
        ax.set_title(f"{title}, {threads} thread{'s' if threads > 1 else ''}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncol=4)
    fig.suptitle(_machine_line(results), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"wrote {path}"


# ---------------------------------------------------------------------------
# Per call (bench/percall.py)
# ---------------------------------------------------------------------------


def _us(value):
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def percall_lines(section):
    """The console table of the per-call section."""
    if not section or not section.get("rows"):
        return []
    out = [
        "",
        f"Per call, one sample unless noted: microseconds per call (median of {section['repeats']} interleaved "
        f"repeats of timeit loops); (x) = by hand's time / fastbp's, > 1 means fastbp is faster",
        f"  {'network':11s}{'call':36s}{'dtype':9s}{'fastbp':>9s}{'NumPy by hand':>22s}{'PyTorch by hand':>22s}"
        "  same numbers",
    ]
    for e in section["rows"]:
        p = e["peers"]
        cells = [f"{_us(p['fastbp']['us']):>9s}"]
        for peer in ("numpy", "torch"):
            cells.append(
                f"{_us(p[peer]['us']) + ' (' + format(p[peer]['ratio'], '.2f') + 'x)':>22s}"
                if peer in p
                else f"{'—':>22s}"
            )
        check = e["check"] if e["check"] == "ok" else f"!!! MISMATCH {e['mismatch']}"
        out.append(f"  {e['network']:11s}{e['label']:36s}{e['dtype']:9s}{''.join(cells)}  {check}")
    torch = section.get("torch")
    out.append(
        f"  (PyTorch {torch}, {section.get('torch_threads')} thread(s), preallocated tensors, out=/in-place ops, "
        "one no_grad() around each timed loop)"
        if torch
        else "  (PyTorch not installed)"
    )
    return out


def percall_markdown(section):
    """The per-call table of docs/performance.md."""
    if not section or not section.get("rows"):
        return []
    lines = [
        "",
        "Per call (`bench/percall.py`): microseconds per call on one sample, median of interleaved "
        "timeit loops; in parentheses, how many times faster fastbp's call is than the same work by hand "
        "(NumPy as a user writes it; PyTorch with preallocated tensors, in-place ops, under `no_grad`). "
        "Each by-hand version was checked to compute fastbp's numbers first.",
        "",
        "| one call | dtype | fastbp | NumPy by hand | PyTorch by hand |",
        "|---|---|---|---|---|",
    ]
    for e in section["rows"]:
        p = e["peers"]
        cells = []
        for peer in ("numpy", "torch"):
            if peer not in p:
                cells.append("—")
            elif e["check"] != "ok":
                cells.append("mismatch")
            else:
                cells.append(f"{_us(p[peer]['us'])} µs ({_fmt_ratio(p[peer]['ratio'])})")
        lines.append(
            f"| {e['network']} `{e['label']}` | {e['dtype']} | {_us(p['fastbp']['us'])} µs | "
            + " | ".join(cells)
            + " |"
        )
    return lines
