"""Timestamp strings as AWS responses (and moto) write them, for the fast parsers' property tests
(`tests/unit/test_client_timestamps.py`, `tests/harness/test_harness_timestamps.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones)


def renderings(moment: datetime) -> list[str]:
    """`moment` in every form a response may hold it."""
    utc = moment.astimezone(UTC)
    return [
        moment.isoformat(),  # +HH:MM, microseconds when there are some
        utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),  # S3's LastModified in a listing (moto's too)
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        utc.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        utc.strftime("%a, %d %b %Y %H:%M:%S GMT"),  # a Last-Modified header
    ]
