"""Export windows and the poll schedule: pure functions, no I/O."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from cpexport.models import ExportWindow


def truncate_to_second(value: datetime) -> datetime:
    """Windows are whole seconds: the S3 folder `{start}-{end}` renders only seconds."""
    return value.replace(microsecond=0)


def latest_safe_end(clock: datetime, safety_lag_minutes: int) -> datetime:
    """The newest instant that every export job is sure to include (the documented lag)."""
    return truncate_to_second(clock - timedelta(minutes=safety_lag_minutes))


def next_window(
    watermark: datetime | None, initial_start: datetime, clock: datetime, safety_lag_minutes: int
) -> ExportWindow | None:
    """The incremental window [watermark, clock - lag), or None when it would be empty.

    The first time (no watermark) the window starts at `initial_start`.
    """
    start = truncate_to_second(watermark if watermark is not None else initial_start)
    end = latest_safe_end(clock, safety_lag_minutes)
    if end <= start:
        return None
    return ExportWindow(start=start, end=end)


def poll_interval(attempt: int, initial_seconds: int, max_seconds: int, growth: float) -> int:
    """Seconds to wait before poll number `attempt` (0-based): geometric growth, capped.

    Short at first (most exports of a day's changes finish in minutes), long later, so that a
    24-hour export costs a few dozen polls rather than thousands of history events.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # Past the cap the exact power no longer matters; avoid overflowing floats on huge attempts.
    if growth > 1 and attempt > math.log(max_seconds / initial_seconds + 1, growth) + 1:
        return max_seconds
    return min(max_seconds, math.ceil(initial_seconds * growth**attempt))


def polls_needed(duration_seconds: float, initial_seconds: int, max_seconds: int, growth: float) -> int:
    """How many polls the schedule makes before it sees a job that ran `duration_seconds`."""
    waited, attempt = 0, 0
    while waited < duration_seconds:
        waited += poll_interval(attempt, initial_seconds, max_seconds, growth)
        attempt += 1
    return attempt
