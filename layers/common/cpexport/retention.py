"""Raw export retention: which Glue partitions to drop so none outlives the files it points at.

The export bucket's lifecycle rule (template.yaml, `ExpireRawExports`) expires every object under
`{ExportPrefix}/{account}/` `RawExportRetentionDays` after the object's creation; S3 rounds that moment
up to the next midnight UTC and deletes at some time after it. An export's files are written after
its request time (the partition key `requested_at`), so no file of an export can expire before
`requested_at + N days`. The daily job drops each partition whose `requested_at` is older than
`N days - RETENTION_MARGIN`: a partition is gone at least one day before its first file may go.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from cpexport.catalog import PARTITION_KEY_NAMES, table_name
from cpexport.errors import ConfigurationError
from cpexport.models import LENIENT, Contract, UtcDatetime

# How often the partition job runs (template.yaml: the ExpireRawPartitions schedule).
RETENTION_JOB_PERIOD = timedelta(days=1)
# One period (a partition becomes due just after a run and waits for the next one) plus one day for
# a run that fails or is delivered late (Scheduler retries a tick for up to a day): the margin.
RETENTION_MARGIN = RETENTION_JOB_PERIOD + timedelta(days=1)
# The smallest retention for which a partition lives at all before it is dropped.
MIN_RETENTION_DAYS = RETENTION_MARGIN.days + 1
# template.yaml's MaxValue: about ten years.
MAX_RETENTION_DAYS = 3650
_REQUESTED_AT = PARTITION_KEY_NAMES.index("requested_at")


def earliest_expiry(created: datetime, retention_days: int) -> datetime:
    """The first moment S3 may delete an object created at `created` under an N-day Expiration rule.

    S3 adds N days to the creation time and rounds up to the next 00:00 UTC; the deletion itself is
    asynchronous and can happen at any moment from then on.
    """
    due = created.astimezone(UTC) + timedelta(days=retention_days)
    midnight = datetime.combine(due.date(), time(), tzinfo=UTC)
    return midnight if due == midnight else midnight + timedelta(days=1)


def partition_cutoff(clock: datetime, retention_days: int) -> datetime:
    """Partitions requested before this moment are dropped by a run at `clock`."""
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(f"a retention of {retention_days} days leaves no time before the margin")
    return clock.astimezone(UTC) - (timedelta(days=retention_days) - RETENTION_MARGIN)


def expired_partition_values(partitions: Iterable[Mapping[str, Any]], cutoff: datetime) -> Iterator[list[str]]:
    """The Values of every partition requested before `cutoff` (a partition of another shape is left alone)."""
    for partition in partitions:
        values = [str(value) for value in partition.get("Values", [])]
        if len(values) != len(PARTITION_KEY_NAMES):
            continue
        try:
            requested_at = datetime.fromisoformat(values[_REQUESTED_AT].replace("Z", "+00:00"))
        except ValueError:
            continue
        # A time without a zone is not one of ours (partition_values renders UTC with Z): left alone.
        if requested_at.tzinfo is not None and requested_at < cutoff:
            yield values


class PartitionCatalog(Protocol):
    """What retention needs of the Glue catalog (`clients.glue.GlueCatalog`)."""

    def partitions(self, database: str, table: str) -> Iterator[dict[str, Any]]: ...

    def delete_partitions(self, database: str, table: str, values: Sequence[list[str]]) -> int: ...

    def has_table(self, database: str, table: str) -> bool: ...


class RetentionTick(BaseModel):
    """The schedule's input: `{"scheduledTime": "<aws.scheduler.scheduled-time>"}`."""

    model_config = LENIENT

    scheduled_time: UtcDatetime


class TableRetention(Contract):
    """What one run did to one object type's table."""

    object_type: str
    table: str
    dropped: int
    kept: int


class RetentionResult(Contract):
    """What one run of the partition job did."""

    clock: UtcDatetime
    cutoff: UtcDatetime
    retention_days: int
    tables: list[TableRetention]


def expire_raw_partitions(
    clock: datetime, retention_days: int, database: str, object_types: Sequence[str], catalog: PartitionCatalog
) -> RetentionResult:
    """Drop every partition of the object types' tables requested before the cutoff; the rest stays.

    A table that does not exist yet (no execution has planned since the type was configured) has no
    partitions to drop.
    """
    if retention_days < MIN_RETENTION_DAYS:
        raise ConfigurationError(
            f"RAW_EXPORT_RETENTION_DAYS is {retention_days}: the partition job runs only for {MIN_RETENTION_DAYS} or more"
        )
    cutoff = partition_cutoff(clock, retention_days)
    tables = []
    for object_type in dict.fromkeys(object_types):
        table = table_name(object_type)
        if not catalog.has_table(database, table):
            continue
        partitions = list(catalog.partitions(database, table))
        expired = list(expired_partition_values(partitions, cutoff))
        dropped = catalog.delete_partitions(database, table, expired) if expired else 0
        tables.append(
            TableRetention(object_type=object_type, table=table, dropped=dropped, kept=len(partitions) - dropped)
        )
    return RetentionResult(clock=clock, cutoff=cutoff, retention_days=retention_days, tables=tables)
