"""The demo's wall time: `python -m local demo` (what `make demo` runs), from start to its verdict."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure(days: int) -> dict[str, Any]:
    """Run the demo for `days` scheduled days in a fresh process; its wall time and whether it passed."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as logs:
        began = time.monotonic()
        completed = subprocess.run(  # the project's own demo, in our interpreter
            [sys.executable, "-m", "local", "demo", "--days", str(days), "--log", str(Path(logs, "lambdas.log"))],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        wall = time.monotonic() - began
    passed = completed.returncode == 0 and "Demo PASSED" in completed.stdout
    if not passed:
        raise RuntimeError(
            f"the demo failed (exit {completed.returncode}): {completed.stdout[-1500:]}{completed.stderr[-1500:]}"
        )
    return {"wall_s": round(wall, 1), "days": days, "passed": passed, "command": f"python -m local demo --days {days}"}
