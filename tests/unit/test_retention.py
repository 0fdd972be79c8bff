"""Raw export retention: each export's partition is dropped before S3 may expire any of its files."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cpexport.catalog import partition_values
from cpexport.config import load_settings
from cpexport.errors import ConfigurationError
from cpexport.retention import (
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    RETENTION_JOB_PERIOD,
    earliest_expiry,
    expire_raw_partitions,
    partition_cutoff,
)
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 11, 1, tzinfo=UTC)
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
retentions = st.integers(min_value=MIN_RETENTION_DAYS, max_value=MAX_RETENTION_DAYS)


def _first_run_dropping(requested_at: datetime, days: int, first_run: datetime) -> datetime:
    """The first run of a daily job (runs at first_run + k days) whose cutoff passes `requested_at`."""
    run = first_run
    while not requested_at < partition_cutoff(run, days):
        run += RETENTION_JOB_PERIOD
    return run


@given(
    requested_at=moments,
    written_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
    days=st.integers(min_value=MIN_RETENTION_DAYS, max_value=400),
    phase=st.timedeltas(min_value=timedelta(0), max_value=RETENTION_JOB_PERIOD),
)
def test_a_partition_is_dropped_a_whole_day_before_any_of_its_files_may_expire(
    requested_at: datetime, written_after: timedelta, days: int, phase: timedelta
) -> None:
    # Given an export requested at any moment, its files written at or after it, and a daily job at any phase
    created = requested_at + written_after
    first_run = requested_at - RETENTION_JOB_PERIOD + phase

    # When the job runs every day from then on
    dropped_at = _first_run_dropping(requested_at, days, first_run)

    # Then the run that drops it comes at least one day before the earliest expiry of any file:
    # even if that run fails, the next day's run still drops it in time
    assert dropped_at + RETENTION_JOB_PERIOD <= earliest_expiry(created, days)


@given(requested_at=moments, days=retentions)
def test_a_partition_younger_than_the_retention_less_the_margin_is_kept(requested_at: datetime, days: int) -> None:
    # A run just before the partition becomes due keeps it: nothing is dropped early without reason
    just_before = requested_at + timedelta(days=days - 2)
    assert not requested_at < partition_cutoff(just_before, days)


@pytest.mark.parametrize(
    ("created", "expiry"),
    [
        (datetime(2026, 11, 1, 10, 0, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC)),
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
        (datetime(2026, 11, 1, 23, 59, 59, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC)),
    ],
    ids=["mid-day: next midnight", "at midnight: that midnight", "just before midnight"],
)
def test_s3_expiry_is_creation_plus_days_rounded_up_to_midnight_utc(created: datetime, expiry: datetime) -> None:
    assert earliest_expiry(created, 7) == expiry


class FakeCatalog:
    """A Glue catalog of one stack in memory: table -> partitions."""

    def __init__(self, tables: dict[str, list[list[str]]]) -> None:
        self.tables = tables

    def has_table(self, database: str, table: str) -> bool:
        return table in self.tables

    def partitions(self, database: str, table: str) -> Iterator[dict[str, Any]]:
        yield from ({"Values": values} for values in self.tables[table])

    def delete_partitions(self, database: str, table: str, values: Sequence[list[str]]) -> int:
        self.tables[table] = [v for v in self.tables[table] if v not in values]
        return len(values)


def _values(requested_at: datetime) -> list[str]:
    return partition_values("shop", T0, T0 + timedelta(hours=23), requested_at, backfill=False)


def test_the_job_drops_old_partitions_keeps_new_ones_and_skips_tables_not_made_yet() -> None:
    # Given a table with an export of 6 days ago and one of yesterday, and a type whose table is not made yet
    clock = datetime(2026, 11, 20, tzinfo=UTC)
    old, new = _values(clock - timedelta(days=6)), _values(clock - timedelta(days=1))
    catalog = FakeCatalog({"profile_versions": [old, new]})

    # When the job runs with a 7-day retention
    result = expire_raw_partitions(clock, 7, "stack", ["_profile", "_order"], catalog)

    # Then the old partition is gone (6 days > 7 - 2), the new one stays, the missing table is no error
    assert catalog.tables == {"profile_versions": [new]}
    assert [(t.table, t.dropped, t.kept) for t in result.tables] == [("profile_versions", 1, 1)]
    assert result.cutoff == clock - timedelta(days=5)


def test_a_partition_of_another_shape_is_left_alone() -> None:
    catalog = FakeCatalog({"profile_versions": [["someone", "else"], [*_values(T0)[:3], "not a time", "false"]]})
    expire_raw_partitions(T0 + timedelta(days=100), 7, "stack", ["_profile"], catalog)
    assert len(catalog.tables["profile_versions"]) == 2


@pytest.mark.parametrize("days", ["1", "2", "3651"])
def test_a_retention_the_margin_cannot_serve_is_refused_at_configuration(days: str) -> None:
    environment = {
        "STACK_NAME": "s",
        "ACCOUNT_ID": "123456789012",
        "AWS_REGION": "eu-west-1",
        "DOMAIN_NAMES": "shop",
        "OBJECT_TYPES": "_profile",
        "EXPORT_BUCKET_NAME": "bucket",
        "KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/k",
        "STATE_TABLE_NAME": "t",
        "INITIAL_START_TIME": "2026-01-01T00:00:00Z",
        "RAW_EXPORT_RETENTION_DAYS": days,
    }
    with pytest.raises(ConfigurationError, match="RAW_EXPORT_RETENTION_DAYS"):
        load_settings(environment)
    assert load_settings({**environment, "RAW_EXPORT_RETENTION_DAYS": "3"}).raw_export_retention_days == 3
    assert load_settings({**environment, "RAW_EXPORT_RETENTION_DAYS": "0"}).raw_export_retention_days == 0
