"""The published benchmark tables are the committed run's: the block between
the bench markers in docs/performance.md and the headline block in README.md
are what bench/report.py writes from bench/results/latest.json
(``python bench/compare.py --update-readme``), so neither can drift from the
run or from the other by a hand edit."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
if not (RESULTS.exists() and (ROOT / "README.md").exists()):  # an installed copy or an sdist
    pytest.skip("bench/results and README.md are not in this source tree", allow_module_level=True)
sys.path.insert(0, str(ROOT / "bench"))
import report


def _block(path, start, end):
    text = path.read_text()
    return text[text.index(start) + len(start) : text.index(end)].strip("\n")


def test_the_performance_page_shows_the_committed_run():
    results = json.loads(RESULTS.read_text())
    page = _block(ROOT / "docs" / "performance.md", report.README_START, report.README_END)
    assert page == report.markdown(results)


def test_the_readme_headline_is_cut_from_the_same_run():
    results = json.loads(RESULTS.read_text())
    headline = _block(ROOT / "README.md", report.HEADLINE_START, report.HEADLINE_END)
    assert headline == report.headline(results)
    # Every headline row the run has is there, with fastbp's own rate.
    rows = [line for line in headline.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(report.HEADLINE)
    fastbp_2_2_2 = next(
        r["median"]
        for c in results["cases"]
        if (c["workload"], c["mode"], c["dtype"], c["threads"]) == ("2-2-2", "online", "float64", 1)
        for r in c["results"]
        if r["peer"] == "fastbp"
    )
    assert rows[0].split(" | ")[3] == report._fmt_rate(fastbp_2_2_2)
