"""`python -m bench --quick` still runs the whole benchmark on the offline stack and writes every figure.

Tiny sizes (a 24-hour job lasts about 4 s): the figures mean nothing and no timing is asserted; what
is checked is that every required key holds a number and that what was executed really ran. The demo
is not run at this size (tests/e2e_local/test_demo.py runs it; `make bench` measures it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import missing_figures
from bench.indexing import RECORDS_PER_FILE
from bench.report import lookup
from bench.sizes import QUICK

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_the_quick_benchmark_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"

    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(out.read_text())
    assert missing_figures(results, QUICK) == []
    # What was measured was executed: the executions succeeded, the demo passed, jobs were indexed.
    assert results["poll"]["all_types_24h"]["status"] == "SUCCEEDED"
    assert all(run["status"] == "SUCCEEDED" for r in results["poll_runs"].values() for run in r["executions"].values())
    assert "test_demo.py" in results["demo"]["skipped"]  # the demo runs once in make test, in its own test
    for files in QUICK.index_files:
        assert lookup(results, f"index.{files}.baseline.files") == files
        assert lookup(results, f"index.{files}.baseline.records") == files * RECORDS_PER_FILE
    # The threshold sizes were counted both ways (the benchmark refuses a run counted the other way).
    for files in QUICK.threshold_files:
        row = lookup(results, f"index.threshold.sizes.{files}")
        assert row["inline"]["wall_s"] > 0 and row["distributed"]["wall_s"] > 0
    # Each export of the fixed poll was polled at least once, and a run with history knew its prediction.
    assert all(results["poll"][d]["baseline_checks"] >= 1 for d in ("2m", "10m", "1h", "6h", "24h"))
    assert results["poll"]["history_predicts_well"]["expected_seconds"] is not None
