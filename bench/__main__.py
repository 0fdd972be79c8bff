"""`make bench`: the real state machine on the offline stack, every figure beside its baseline, in one run.

Writes `bench/results.json` and prints the figures. Polling runs three scenarios side by side, each
in a process of its own (one offline account each, see `bench.polling`), while the cold-start
figures are taken; then indexing, then the demo. `--quick` runs tiny sizes to prove the benchmark
still works (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cold_start, demo
from bench.report import cost_section, lookup, poll_section, print_figures, required_keys
from bench.sizes import FULL, QUICK, Sizes

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("learned", "sweep", "all_types")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line), ""
        )
    memory_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory_gb = round(total_kb / 1024 / 1024, 1)
    return {
        "cpu": model or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def start_polling(sizes: Sizes, folder: Path) -> dict[str, subprocess.Popen[bytes]]:
    """Start each polling scenario in its own process (its own offline account)."""
    return {
        name: subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-m", "bench.polling", name, "--sizes", sizes.name, "--out", str(folder / f"{name}.json")],
            cwd=ROOT,
        )
        for name in SCENARIOS
    }


def finish_polling(processes: dict[str, subprocess.Popen[bytes]], folder: Path) -> dict[str, dict[str, Any]]:
    """Wait for the polling processes; their reports."""
    reports = {}
    for name, process in processes.items():
        if process.wait() != 0:
            raise RuntimeError(f"the {name} polling scenario failed (exit {process.returncode})")
        reports[name] = json.loads((folder / f"{name}.json").read_text())
    return reports


def run(sizes: Sizes, out: Path) -> dict[str, Any]:
    """Every benchmark of one size; the results (also written to `out`)."""
    began = time.monotonic()
    results: dict[str, Any] = {
        "command": "make bench" if sizes is FULL else "python -m bench --quick",
        "size": sizes.name,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
    }
    print(f"bench ({sizes.name}): time scale {sizes.time_scale} (a 60 s Wait lasts {60 * sizes.time_scale:g} s)")
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        folder = Path(scratch)
        print("Polling: three offline accounts side by side (learned + fixed 60 s poll, lag sweep, all types)")
        processes = start_polling(sizes, folder)
        try:
            print("Cold start: imports in fresh interpreters, sizes" + (" after sam build" if sizes.sam_build else ""))
            results["cold_start"] = cold_start.measure(sizes.cold_start_runs, sizes.sam_build)
            reports = finish_polling(processes, folder)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
    results["poll"] = poll_section(reports["learned"], reports["sweep"], reports["all_types"])
    results["cost"] = cost_section(reports["learned"], reports["sweep"])
    results["poll_runs"] = {name: {k: v for k, v in r.items() if k != "object_types"} for name, r in reports.items()}
    print("Demo: python -m local demo")
    results["demo"] = demo.measure(sizes.demo_days)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.monotonic() - began, 1)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print_figures(results)
    missing = [key for key in required_keys(sizes, _functions(results)) if not _is_number(lookup(results, key))]
    if missing:
        print(f"\nMISSING figures: {missing}")
    print(f"\nbench finished in {results['wall_s']:.0f} s; results in {out}")
    return results


def _functions(results: dict[str, Any]) -> list[str]:
    return [name for name, row in results.get("cold_start", {}).items() if isinstance(row, dict)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: proves the benchmark runs (figures mean nothing)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write the results (default bench/results.json)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    out = args.out or (ROOT / "bench" / ("results-quick.json" if args.quick else "results.json"))
    results = run(sizes, out)
    keys = required_keys(sizes, _functions(results))
    return 0 if all(_is_number(lookup(results, key)) for key in keys) else 1


if __name__ == "__main__":
    sys.exit(main())
