"""`make bench`: the real state machine on the offline stack, every figure beside its baseline, in one run.

Writes `bench/results.json` and prints the figures. The full run uses four offline accounts at once,
each a process of its own (moto's state is process-global): the three polling scenarios of
`bench.polling` and the indexing of `bench.indexing`. They deploy together; the `learned` scenario
makes its history alone; then every measured job starts at the same moment and the cold-start
figures are taken. The polling runs on each account's held clock (`local.clock`), so its figures do
not depend on how busy the machine is. The indexing, whose figures are wall-clock ratios against bare
S3 work measured right after each job, starts after the cold start; its largest job waits until the
polling is done, so that it and its baseline run on an otherwise quiet machine. The demo runs
alone, then the current-state benchmark (`bench.current_state`, its own process and moto); `--only
current` runs just that one and replaces only the `current` section of the results. `--quick` runs tiny sizes in one
account (the demo is left to its own e2e test), to prove the benchmark still works (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cold_start, demo
from bench.report import (
    cost_section,
    current_keys,
    index_section,
    lookup,
    poll_section,
    print_current,
    print_figures,
    print_threshold,
    required_keys,
)
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


@dataclass
class Account:
    """One offline account: a process running some of the benchmarks, writing its report to `out`."""

    name: str
    arguments: list[str]
    out: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start its process (our own interpreter and module)."""
        self.process = subprocess.Popen([sys.executable, "-m", *self.arguments, "--out", str(self.out)], cwd=ROOT)

    def failed(self) -> bool:
        """Whether its process ended with an error."""
        return self.process is not None and self.process.poll() not in (None, 0)

    def report(self) -> dict[str, Any]:
        """Wait for it; its report."""
        assert self.process is not None
        if self.process.wait() != 0:
            raise RuntimeError(f"the {self.name} benchmark failed (exit {self.process.returncode})")
        report: dict[str, Any] = json.loads(self.out.read_text())
        return report


def accounts(sizes: Sizes, folder: Path) -> list[Account]:
    """The processes of a run: one account per scenario and one for indexing, or (quick) one for all."""
    if sizes is QUICK:
        files = ["--index-files", *map(str, sizes.index_files), "--threshold-files", *map(str, sizes.threshold_files)]
        return [Account("quick", ["bench.polling", *SCENARIOS, "--sizes", sizes.name, *files], folder / "quick.json")]
    ready = [str(folder / f"{name}.ready") for name in SCENARIOS]
    found = [
        Account(
            name,
            [
                "bench.polling",
                name,
                "--sizes",
                sizes.name,
                "--ready-file",
                str(folder / f"{name}.ready"),
                "--wait-for",
                *ready,
            ],
            folder / f"{name}.json",
        )
        for name in SCENARIOS
    ]
    # The largest job is indexed alone, once the polling is done; the smaller ones meanwhile (their
    # baselines are measured right after them, under the same load, or a lighter one).
    *shared, alone = sorted(sizes.index_files)
    indexing = ["bench.indexing", "--files", *map(str, shared), "--time-scale", str(sizes.time_scale)]
    indexing += ["--threshold-files", *map(str, sizes.threshold_files)]
    indexing += ["--alone-files", str(alone), "--alone-after", str(folder / "polling.done")]
    found.append(Account("index", [*indexing, "--wait-for", str(folder / "index.go")], folder / "index.json"))
    return found


def wait_until_measuring(folder: Path, running: list[Account]) -> None:
    """Until every scenario is ready (its measured jobs start), or one of them failed."""
    while not all((folder / f"{name}.ready").exists() for name in SCENARIOS):
        failed = [account.name for account in running if account.failed()]
        if failed:
            raise RuntimeError(f"{failed} failed before the measured jobs started")
        time.sleep(1)


# The quick run leaves the demo to its own end-to-end test, which runs it for three days: running it
# here as well doubled the demo's share of `make test` and proved nothing more.
DEMO_SKIPPED = "not run at this size: tests/e2e_local/test_demo.py runs the demo"


class DemoRun:
    """The demo's wall time, measured on a thread of its own (the demo runs in a process of its own)."""

    def __init__(self, days: int) -> None:
        self.days = days
        self._result: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._measure, name="bench-demo", daemon=True)

    def _measure(self) -> None:
        try:
            self._result = demo.measure(self.days)
        except BaseException as error:  # reported by result()
            self._error = error

    def start(self) -> None:
        """Start the demo."""
        self._thread.start()

    def result(self) -> dict[str, Any]:
        """Wait for the demo; its figures (raises what the demo raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def measure_current(sizes: Sizes) -> dict[str, Any]:
    """The current-state benchmark (`bench.current_state`) in a process of its own (its own moto); its section."""
    print(
        f"Current state: {sizes.current_objects:,} objects, {sizes.current_changed_per_day:,} changed a day,"
        f" measured after {', '.join(map(str, sizes.current_days))} days"
    )
    with tempfile.TemporaryDirectory(prefix="bench-current-") as scratch:
        out = Path(scratch) / "current.json"
        completed = subprocess.run(  # our own interpreter and module
            [sys.executable, "-m", "bench.current_state", "--sizes", sizes.name, "--out", str(out)],
            cwd=ROOT,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"the current-state benchmark failed (exit {completed.returncode})")
        section: dict[str, Any] = json.loads(out.read_text())
    return section


def run_only_current(sizes: Sizes, out: Path) -> dict[str, Any]:
    """`--only current`: measure the current-state section and replace it in `out`, keeping the rest as it is."""
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    results["current"] = measure_current(sizes)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print_current(results)
    print(f"\ncurrent-state benchmark finished in {results['current']['wall_s']:.0f} s; section `current` of {out}")
    return results


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
    reports: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        folder = Path(scratch)
        running = accounts(sizes, folder)
        print(f"Offline accounts: {', '.join(account.name for account in running)} (deploying)")
        for account in running:
            account.start()
        demo_run = DemoRun(sizes.demo_days)
        try:
            if sizes is not QUICK:
                wait_until_measuring(folder, running)
                print("Measured jobs started in every account")
            print("Cold start: imports in fresh interpreters, sizes" + (" after sam build" if sizes.sam_build else ""))
            results["cold_start"] = cold_start.measure(sizes.cold_start_runs, sizes.sam_build)
            # Indexing starts once the cold-start figures are taken; its largest job once the polling is done:
            # its wall time is compared with bare S3 work measured right after it, on an otherwise quiet machine.
            (folder / "index.go").touch()
            for account in running:
                if account.name != "index":
                    reports |= account.report()
            print("Polling done; the largest job is indexed alone")
            (folder / "polling.done").touch()
            for account in running:
                if account.name == "index":
                    reports |= account.report()
        finally:
            for account in running:
                if account.process is not None and account.process.poll() is None:
                    account.process.terminate()
    results["poll"] = poll_section(reports["learned"], reports["sweep"], reports["all_types"])
    results["index"] = index_section(reports["index"])
    results["cost"] = cost_section(reports["learned"], reports["sweep"])
    results["poll_runs"] = {
        name: {key: value for key, value in reports[name].items() if key != "object_types"} for name in SCENARIOS
    }
    if sizes.demo_days:
        print("Demo: python -m local demo")
        demo_run.start()
        results["demo"] = demo_run.result()
    else:
        results["demo"] = {"skipped": DEMO_SKIPPED}
    results["current"] = measure_current(sizes)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.monotonic() - began, 1)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print_figures(results)
    print_threshold(results)
    print_current(results)
    missing = missing_figures(results, sizes)
    if missing:
        print(f"\nMISSING figures: {missing}")
    print(f"\nbench finished in {results['wall_s']:.0f} s; results in {out}")
    return results


def missing_figures(results: dict[str, Any], sizes: Sizes) -> list[str]:
    """The required keys that do not hold a number."""
    functions = [name for name, row in results.get("cold_start", {}).items() if isinstance(row, dict)]
    return [key for key in required_keys(sizes, functions) if not _is_number(lookup(results, key))]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves it runs (figures mean nothing)")
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write the results (default bench/results.json)"
    )
    parser.add_argument(
        "--only",
        choices=["current"],
        default=None,
        help="run one part and update only its section of the results (current: the current-state table)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    out = args.out or (ROOT / "bench" / ("results-quick.json" if args.quick else "results.json"))
    if args.only == "current":
        section = run_only_current(sizes, out)["current"]
        missing = [key for key in current_keys(sizes) if not _is_number(lookup({"current": section}, key))]
        if missing:
            print(f"\nMISSING figures: {missing}")
        return 1 if missing else 0
    results = run(sizes, out)
    return 1 if missing_figures(results, sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
