"""Export windows: pure functions, no I/O (the poll schedule is in `polling`)."""

from __future__ import annotations

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
