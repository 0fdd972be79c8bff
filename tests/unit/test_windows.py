"""Export windows."""

import itertools
from datetime import UTC, datetime, timedelta

from cpexport.windows import latest_safe_end, next_window
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_first_window_starts_at_initial_start_and_ends_safety_lag_before_the_clock():
    window = next_window(None, T0, T0 + timedelta(days=1), safety_lag_minutes=30)
    assert window is not None
    assert window.start == T0
    assert window.end == T0 + timedelta(days=1, minutes=-30)


def test_next_window_starts_exactly_at_the_watermark():
    watermark = T0 + timedelta(hours=23, minutes=30)
    window = next_window(watermark, T0, T0 + timedelta(days=2), safety_lag_minutes=30)
    assert window is not None and window.start == watermark


def test_window_is_empty_when_the_watermark_is_within_the_lag():
    assert next_window(T0, T0, T0 + timedelta(minutes=30), safety_lag_minutes=30) is None
    assert next_window(T0 + timedelta(hours=1), T0, T0 + timedelta(minutes=50), safety_lag_minutes=30) is None


def test_windows_are_whole_seconds():
    clock = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert latest_safe_end(clock, 30) == datetime(2026, 1, 2, 2, 34, 5, tzinfo=UTC)


@given(
    ticks=st.lists(st.integers(min_value=0, max_value=3 * 24 * 3600), min_size=1, max_size=30),
    lag=st.integers(min_value=30, max_value=240),
)
def test_consecutive_windows_tile_time_without_gap_or_overlap(ticks, lag):
    """Advancing the watermark to each window's end covers [initial, last end) exactly once."""
    watermark = None
    covered: list[tuple[datetime, datetime]] = []
    for offset in sorted(ticks):
        window = next_window(watermark, T0, T0 + timedelta(seconds=offset), lag)
        if window is None:
            continue
        covered.append((window.start, window.end))
        watermark = window.end
    for (_, end), (start, _) in itertools.pairwise(covered):
        assert start == end
    if covered:
        assert covered[0][0] == T0
