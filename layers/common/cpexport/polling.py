"""When to look at an export job next: pure functions, no I/O.

Every poll costs history events (Wait 2, Task 5, Choice 2), and an execution has 25,000. Every
second between a job's end and the poll that sees it delays the export and the alert. The schedule
trades the two with what the run index knows of this object type:

- **Detection lag goal**: a job that ends at elapsed time L is seen by `L + allowance(L)`, where
  `allowance(L) = max(floor, dense_fraction x L)` (60 s or 5 % by default). A wait never longer than
  `allowance(elapsed)` guarantees it, whatever L is: that is the *dense* schedule.
- **Without history** the schedule is dense from the start (60 s waits for the first 20 minutes, then
  5 % of the time waited so far): the lag goal holds for every job length, and a 24-hour job costs
  about 110 polls (~990 events; 20 such object types stay under the 25,000-event limit).
- **With history** (previous durations of this domain and object type, scaled to this window's
  length), the job is not expected to end before the shortest prediction: the schedule waits
  *sparsely* (each wait half the time waited so far) until `dense_lead` x that prediction, then
  densely. A well-predicted 24-hour job costs about 23 polls (~210 events). A job that ends later
  than predicted is still seen within its allowance; one that ends earlier than 80 % of the
  shortest prediction (far faster than every recent job) is seen within half its length.
- Dense waits stop `CHECK_MARGIN_SECONDS` short of the allowance: the Check that sees the job (an
  invocation and its state transitions) is part of the lag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

FLOOR_SECONDS = 60
DENSE_FRACTION = 0.05
SPARSE_FRACTION = 0.5
DENSE_LEAD = 0.8
HISTORY_RUNS = 5
# The poll that sees the job takes time too (a Lambda invocation and a few state transitions, well
# under a second when warm, a few seconds cold): a dense wait leaves that much of the allowance for it.
CHECK_MARGIN_SECONDS = 3


@dataclass(frozen=True)
class PastJob:
    """A finished job of the same domain and object type: how long it ran, for how long a window."""

    duration_seconds: float
    window_seconds: float


@dataclass(frozen=True)
class Prediction:
    """The range of durations recent comparable jobs suggest for this job (seconds)."""

    shortest: float
    longest: float


def predict(history: Iterable[PastJob], window_seconds: float, runs: int = HISTORY_RUNS) -> Prediction | None:
    """Predict this job's duration from the last `runs` jobs, each scaled by window length.

    A job exports what changed in its window, so a window twice as long is expected to take up to
    twice as long; the scale is capped both ways at 10x, where extrapolation stops meaning much.
    None without usable history (the dense schedule then applies).
    """
    recent = [job for job in history if job.duration_seconds > 0 and job.window_seconds > 0][-runs:]
    if not recent or window_seconds <= 0:
        return None
    scaled = [job.duration_seconds * min(10.0, max(0.1, window_seconds / job.window_seconds)) for job in recent]
    return Prediction(shortest=min(scaled), longest=max(scaled))


def allowance(elapsed_seconds: float, floor: int = FLOOR_SECONDS, fraction: float = DENSE_FRACTION) -> float:
    """The detection lag allowed for a job that ends after `elapsed_seconds`."""
    return max(float(floor), fraction * elapsed_seconds)


def next_wait(
    elapsed_seconds: float,
    prediction: Prediction | None,
    *,
    floor: int = FLOOR_SECONDS,
    dense_fraction: float = DENSE_FRACTION,
    sparse_fraction: float = SPARSE_FRACTION,
    dense_lead: float = DENSE_LEAD,
    max_wait: int = 86_400,
    margin: float = CHECK_MARGIN_SECONDS,
) -> int:
    """Whole seconds to wait before the next poll, `elapsed_seconds` after the job was submitted."""
    if elapsed_seconds < 0:
        raise ValueError("elapsed_seconds must be >= 0")
    dense = max(1.0, allowance(elapsed_seconds, floor, dense_fraction) - margin)
    wait = dense
    if prediction is not None:
        dense_from = dense_lead * prediction.shortest
        if elapsed_seconds + dense < dense_from:
            # Sparse while the job is not expected to be done, but land exactly where density starts.
            wait = min(dense_from - elapsed_seconds, max(dense, sparse_fraction * elapsed_seconds))
    # Whole seconds (a Wait's SecondsPath), rounded down so the lag bound still holds; at least 1.
    return max(1, min(max_wait, math.floor(wait)))


def schedule(duration_seconds: float, prediction: Prediction | None, **options: float) -> list[int]:
    """The elapsed times of the polls until one sees a job that ran `duration_seconds` (for tests and benchmarks)."""
    polls: list[int] = []
    elapsed = 0
    while True:
        elapsed += next_wait(elapsed, prediction, **options)  # type: ignore[arg-type]
        polls.append(elapsed)
        if elapsed >= duration_seconds:
            return polls
