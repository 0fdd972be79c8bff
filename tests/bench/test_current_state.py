"""`python -m bench --only current --quick`: the current-state benchmark at tiny sizes, in seconds.

What is checked is behaviour, not speed: every key holds a number, only the `current` section of the
results changes, and after the simulated days the state table reads fewer bytes than the view over
every export, for the count and for one id's lookup, and no more as the days add up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import current_keys, lookup
from bench.sizes import QUICK

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_current_state_benchmark_reads_less_from_the_table_than_from_the_view(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"size": "full", "demo": {"wall_s": 1.0}}))

    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "current", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(out.read_text())
    # Only the `current` section was written; the rest is as it was.
    assert {key: value for key, value in results.items() if key != "current"} == {
        "size": "full",
        "demo": {"wall_s": 1.0},
    }
    assert all(isinstance(lookup(results, key), int | float) for key in current_keys(QUICK))
    current = results["current"]
    days = [f"{day}d" for day in QUICK.current_days]
    for day in days:
        assert 0 < current["table_bytes"][day] < current["view_bytes"][day]
        assert current["counts"][day] == {"table": QUICK.current_objects, "view": QUICK.current_objects}
    # The view reads every export, so it grows with the days; the table holds one row per object.
    assert current["view_bytes"][days[-1]] > current["view_bytes"][days[0]]
    assert current["table_bytes"][days[-1]] <= 1.2 * current["table_bytes"][days[0]]
    assert 0 < current["lookup_bytes"]["table"][days[-1]] < current["lookup_bytes"]["view"][days[-1]]
    assert current["merges"] == max(QUICK.current_days)
    # The reconcile removed exactly the objects that left the domain.
    assert current["reconcile"]["count_after"] == QUICK.current_objects - QUICK.current_leaving
