"""How big each benchmark is: the full run (`make bench`) and the quick one (`python -m bench --quick`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The job lengths the issue names (and 2 h, for the cost of a run), in seconds.
DURATIONS = {"2m": 120, "10m": 600, "1h": 3600, "2h": 7200, "6h": 21_600, "24h": 86_400}
REPORTED_DURATIONS = ("2m", "10m", "1h", "6h", "24h")
COST_DURATIONS = ("2h", "24h")
SWEEP_SHORTEST, SWEEP_LONGEST = 1.0, 86_400.0


@dataclass(frozen=True)
class Sizes:
    """One benchmark size."""

    name: str
    time_scale: float  # a Wait of w seconds lasts w x time_scale offline, and so does an emulated job
    sweep_lengths: int  # job lengths of the lag sweep (with the durations up to the longest)
    sweep_longest: float  # seconds
    all_types: int  # object types of one job length each in one execution
    all_types_job_seconds: float
    records_per_export: int  # objects each measured export writes (files of 100 records)
    index_files: tuple[int, ...]  # the indexing benchmark's job sizes
    threshold_files: tuple[int, ...]  # job sizes indexed both inline and by the Distributed Map
    cold_start_runs: int  # fresh interpreters per handler (and per baseline)
    sam_build: bool  # sizes from `sam build` (False: the source folders, not built)
    demo_days: int  # 0: the demo is not run (the quick size: its own e2e test runs it)
    max_concurrent_exports: int  # the stacks' MaxConcurrentExports (fewer: fewer Lambda sandboxes to start)
    job_length_factor: float = 1.0  # the `learned` scenario's job lengths (2 min .. 24 h) times this
    # The current-state benchmark (`bench.current_state`): objects of one type in one domain, how many
    # change a day, the simulated days measured at, lines per exported file, objects gone before the reconcile.
    current_objects: int = 100_000
    current_changed_per_day: int = 2_000
    current_days: tuple[int, ...] = (30, 180, 365)
    current_records_per_file: int = 1_000
    current_leaving: int = 1_000

    def durations(self) -> dict[str, float]:
        """The `learned` scenario's job lengths by label (the issue's durations, times `job_length_factor`)."""
        return {label: seconds * self.job_length_factor for label, seconds in DURATIONS.items()}


FULL = Sizes(
    name="full",
    time_scale=0.001,
    sweep_lengths=50,
    sweep_longest=SWEEP_LONGEST,
    all_types=20,
    all_types_job_seconds=86_400,
    records_per_export=500,
    index_files=(10_000, 100_000),
    threshold_files=(250, 1000, 4000),
    cold_start_runs=15,
    sam_build=True,
    demo_days=4,
    max_concurrent_exports=20,
)
# Tiny: proves the benchmark still runs end to end; its figures mean nothing.
QUICK = Sizes(
    name="quick",
    time_scale=0.00005,
    sweep_lengths=4,
    sweep_longest=600,
    all_types=2,
    all_types_job_seconds=3600,
    records_per_export=50,
    index_files=(30, 300),
    threshold_files=(20, 60),
    cold_start_runs=2,
    sam_build=False,
    demo_days=0,
    max_concurrent_exports=2,
    current_objects=1_000,
    current_changed_per_day=20,
    current_days=(2, 4, 8),
    current_records_per_file=100,
    current_leaving=10,
    # On the held clock every poll happens (a fixed 60 s poll of a 24 h job is 1,440 checks): shorter jobs.
    job_length_factor=1 / 48,
)
SIZES = {"full": FULL, "quick": QUICK}


def sweep_lengths(count: int, longest: float = SWEEP_LONGEST) -> list[float]:
    """`count` job lengths from 1 s to `longest`, evenly spaced on a log scale, the issue's durations among them."""
    anchors = {float(s) for s in DURATIONS.values() if s <= longest} | {SWEEP_SHORTEST, float(longest)}
    lengths = set(anchors)
    steps = max(2, count - len(anchors) + 2)
    ratio = math.log(longest / SWEEP_SHORTEST) / (steps - 1)
    for i in range(steps):
        if len(lengths) >= count:
            break
        lengths.add(round(SWEEP_SHORTEST * math.exp(ratio * i), 1))
    return sorted(lengths)
