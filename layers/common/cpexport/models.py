"""Pydantic contracts of every state's input and output.

The JSON of these models is what flows through the state machine (camelCase on the wire,
snake_case in Python). Times are timezone-aware UTC datetimes, rendered `YYYY-MM-DDTHH:MM:SSZ`.
"""

from __future__ import annotations

import calendar
import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def render_utc(value: datetime) -> str:
    """Render a UTC datetime the way the pipeline's JSON and DynamoDB items hold it."""
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


# ISO 8601 date and time with seconds and a zone, strictly: pydantic alone would read "20261001" or
# "1764000000" as epoch seconds and start jobs (which cannot be cancelled) from 1970.
_ISO_DATETIME = re.compile(r"^(?P<year>\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|z|[+-]\d{2}:\d{2})$")
# The service takes epoch milliseconds: nothing before 1970 can be asked for.
EARLIEST_YEAR = 1970
ISO_HINT = "must be an ISO 8601 date-time with seconds and a time zone, e.g. 2026-01-01T00:00:00Z"


def _too_early() -> ValueError:
    return ValueError(f"must not be before {EARLIEST_YEAR}-01-01T00:00:00Z (the service counts from 1970)")


def _require_iso_text(value: object) -> object:
    if isinstance(value, datetime):
        if value.year < EARLIEST_YEAR or (value.tzinfo is not None and value.astimezone(UTC).year < EARLIEST_YEAR):
            raise _too_early()
        return value
    if not isinstance(value, str):
        raise ValueError(ISO_HINT)
    match = _ISO_DATETIME.match(value)
    if match is None:
        raise ValueError(f"{ISO_HINT} (got {value[:40]!r})")
    year = int(match["year"])
    # Checked before parsing: years 0 and 1 overflow once shifted to UTC.
    if year < EARLIEST_YEAR:
        raise _too_early()
    if year == EARLIEST_YEAR:
        try:
            parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            return value  # pydantic names the problem (e.g. month 13)
        if parsed.astimezone(UTC).year < EARLIEST_YEAR:
            raise _too_early()
    return value


UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_require_iso_text),
    AfterValidator(_to_utc),
    PlainSerializer(render_utc, return_type=str),
]

# Customer Profiles names: domains are [a-zA-Z0-9_-]{1,64}; object types are 1-255 characters.
DOMAIN_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OBJECT_TYPE_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")


# For inputs that carry more than the step reads (a Catch adds fields, the ASL passes whole states).
LENIENT = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class Contract(BaseModel):
    """Base of every wire model: camelCase JSON, strict about unknown fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict the state machine passes on."""
        return self.model_dump(mode="json", by_alias=True)


class ExportWindow(Contract):
    """A half-open time range [start, end) of Customer Profiles' last-updated times."""

    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _start_before_end(self) -> ExportWindow:
        if self.start >= self.end:
            raise ValueError(f"start ({render_utc(self.start)}) must be before end ({render_utc(self.end)})")
        return self

    def to_epoch_ms(self) -> tuple[str, str]:
        """The window as AppIntegrations wants it: epoch-millisecond strings."""
        return str(to_epoch_ms(self.start)), str(to_epoch_ms(self.end))


def to_epoch_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact: no float rounding)."""
    return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000


def from_epoch_ms(value: int | str) -> datetime:
    """UTC datetime of an epoch-millisecond value (int or digit string)."""
    ms = int(value)
    return datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)


def _check_domain(value: str) -> str:
    if not DOMAIN_NAME_PATTERN.match(value):
        raise ValueError("must be 1-64 characters of letters, digits, '_' or '-'")
    return value


def _check_object_type(value: str) -> str:
    if not OBJECT_TYPE_PATTERN.match(value):
        raise ValueError("must be 1-255 characters of letters, digits, '_' or '-'")
    return value


DomainName = Annotated[str, AfterValidator(_check_domain)]
ObjectTypeName = Annotated[str, AfterValidator(_check_object_type)]


class ExportRequest(Contract):
    """The state machine's input: `{}` means every configured domain and object type, now.

    `scheduledTime` is the clock (the schedule's tick); `startTime`/`endTime` ask for a backfill.
    Only these camelCase names are accepted: a request is an interface of other systems, so a field
    it does not know (a snake_case spelling included) is an error, never silently ignored.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=False, validate_by_alias=True, extra="forbid", frozen=True
    )

    scheduled_time: UtcDatetime | None = None
    domain_name: DomainName | None = None
    object_types: list[ObjectTypeName] | None = Field(default=None, min_length=1, max_length=100)
    start_time: UtcDatetime | None = None
    end_time: UtcDatetime | None = None
    correlation_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    # A full export per object type (InitialStartTime to the watermark) that finds deleted objects.
    reconcile: bool = False
    # A backfill that proves a deployment works (`cpexport verify`): recognisable in every report of it.
    verification: bool = False

    @field_validator("object_types")
    @classmethod
    def _no_duplicates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat an object type")
        return value

    @model_validator(mode="after")
    def _backfill_is_consistent(self) -> ExportRequest:
        if self.end_time is not None and self.start_time is None:
            raise ValueError("endTime needs a startTime (a backfill names both ends, or only its start)")
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise ValueError(
                f"startTime ({render_utc(self.start_time)}) must be before endTime ({render_utc(self.end_time)})"
            )
        if self.reconcile and self.start_time is not None:
            raise ValueError(
                "reconcile exports from InitialStartTime to the watermark: it takes no startTime or endTime"
            )
        if self.verification and self.start_time is None:
            raise ValueError("verification is a backfill of a range already exported: it needs a startTime")
        return self

    @property
    def is_backfill(self) -> bool:
        return self.start_time is not None


class PlanInput(Contract):
    """What the Plan state receives: the raw execution input plus the execution's identity."""

    model_config = LENIENT

    request: Any
    execution_arn: str
    execution_start_time: UtcDatetime


class ExportTask(Contract):
    """One export to run: a domain, an object type and a window.

    `requestKey` names the request this export answers (`scheduled:<time>` for a schedule tick,
    `correlation:<id>` or `execution:<name>`): two executions of the same request (a tick delivered
    twice) report a job once.
    """

    domain_name: DomainName
    object_type: ObjectTypeName
    window: ExportWindow
    backfill: bool = False
    # A reconcile is a backfill of everything up to the watermark whose ids are compared with the current state.
    reconcile: bool = False
    # A backfill `cpexport verify` asked for: reported as a verification, never as a night's export.
    verification: bool = False
    execution_arn: str
    correlation_id: str
    request_key: str = Field(min_length=1, max_length=300)
    # The plan's clock and when the execution started: when a reconcile's job looked, on the clock's timeline.
    clock: UtcDatetime | None = None
    planned_at: UtcDatetime | None = None


class SkippedExport(Contract):
    """A domain x object type with nothing to export this time, and why."""

    domain_name: str
    object_type: str
    reason: str
    watermark: UtcDatetime | None = None


class Rejection(Contract):
    """Why a request was refused before anything started, in words on-call and the sender can act on."""

    error: str = "InvalidExportRequest"
    message: str = Field(max_length=4000)
    domain_name: str | None = None
    correlation_id: str | None = None
    request_excerpt: str = Field(default="", max_length=1200)


class PlanOutput(Contract):
    """The plan: the exports to run (Map items), the skipped ones, and the Map's bound; or a rejection.

    `createTables` holds the Athena DDL of the current-state tables that do not exist yet.
    """

    exports: list[ExportTask]
    skipped: list[SkippedExport]
    clock: UtcDatetime
    correlation_id: str
    execution_arn: str
    max_concurrency: int
    rejection: Rejection | None = None
    create_tables: list[str] = Field(default_factory=list)


class PollState(Contract):
    """How long the poll loop has waited so far, how long to wait next, and what history predicts.

    `expectedSeconds` is the shortest and longest duration recent comparable jobs suggest (absent
    without history); the next wait is chosen from it by `polling.next_wait`.
    """

    attempt: int = 0
    wait_seconds: int
    waited_seconds: int = 0
    expected_seconds: tuple[int, int] | None = None


class TrackedExport(ExportTask):
    """An export with a job: which data integration and association run it, and since when.

    `requestedAt` is when the job was submitted (by whichever execution submitted it).
    """

    data_integration_name: str
    data_integration_arn: str
    association_id: str
    requested_at: UtcDatetime
    adopted: bool = False
    poll: PollState


class StartedExport(TrackedExport):
    """What Start returns for a job it submitted (`SUBMITTED`) or found running for this window (`ADOPTED`)."""

    status: Literal["SUBMITTED", "ADOPTED"] = "SUBMITTED"


class ExecutionStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


class CheckedExport(TrackedExport):
    """A started export with the status of its job as last seen."""

    status: ExecutionStatus
    status_message: str | None = None


class PollingExport(TrackedExport):
    """What the Check state receives: a started export, or one already checked (the poll loop)."""

    status: ExecutionStatus | Literal["SUBMITTED", "ADOPTED"] | None = None
    status_message: str | None = None


class FileListing(Contract):
    """What one listing of a job's files found: two equal listings a settle period apart end the wait."""

    request_stamps: list[str]
    files: int
    bytes: int
    last_key: str | None = None


class Counting(Contract):
    """How a settled job's records are counted: by this function (`inline`), by a Distributed Map over
    the job's folder (`distributed`, one child per batch of files), or not at all (`listing`)."""

    mode: Literal["inline", "distributed", "listing"]
    bucket: str
    prefix: str
    parts_prefix: str
    batch_size: int = Field(ge=1, le=1000)


class BatchCount(Contract):
    """One batch's answer: its totals, the manifest part it wrote (`part`) and its last file's key after
    the counting prefix (`lastFile`): with the totals, the listing the Distributed Map made."""

    files: int
    bytes: int
    records: int
    part: str
    last_file: str | None = None


class CountBatchInput(Contract):
    """One child of the Distributed Map: S3 listing items (as the ItemReader gives them) and where to write."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    items: list[dict[str, Any]] = Field(alias="Items", min_length=1)
    batch_input: Counting = Field(alias="BatchInput")


class IndexingExport(TrackedExport):
    """What the Index states receive: a COMPLETED job, then (SETTLING) the listing to compare with, then
    (READY) how it is counted.

    A job the Distributed Map counts is SETTLING with its `counting` plan: the Map's listing, after the
    settle wait, is the next one, and the Index state gets each batch's count (`counted`) to compare.
    `counting` is on the wire (null when there is none): the state machine's Choice reads it.
    """

    status: Literal["COMPLETED", "SETTLING", "READY"]
    status_message: str | None = None
    listing: FileListing | None = None
    settle_attempt: int = 0
    settle_seconds: int = 0
    counting: Counting | None = None
    counted: list[BatchCount] | None = None


class ExportStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"


class CatalogPartition(Contract):
    """A partition of an object type's Glue table: where one indexed export answers queries.

    `name` is Hive's `domain=.../window_start=.../...`, `values` the partition values in key order,
    `location` the export's folder (`s3://bucket/.../{objectType}/`), which holds exactly its files.
    """

    name: str
    values: list[str]
    location: str


class CurrentStateStatements(Contract):
    """The Athena SQL the state machine runs after an indexed export (then drops from the state).

    `merge` brings the export into the state table; a reconcile also records the ids it found
    deleted (`recordDeleted`), removes them (`applyDeleted`) and says since when the table is exact.
    """

    merge: str
    record_deleted: str | None = None
    apply_deleted: str | None = None
    exact: str | None = None


class CurrentStateUpdate(Contract):
    """Which current-state table an export goes into and whether it did (`merged`, set by the state
    machine after Athena's MERGE succeeded; `error` when it failed for good).

    `exactAsOf` is the reconcile's cutoff: the table's rows of this domain are exact as of then.
    """

    model_config = LENIENT

    database: str
    table: str
    deleted_table: str
    merged: bool = False
    reconcile: bool = False
    # A reconcile: its label (`deleted_by`), cutoff, and when an incremental export confirms its candidates.
    reconcile_label: str | None = None
    cutoff: UtcDatetime | None = None
    confirm_after: UtcDatetime | None = None
    # An incremental export that confirmed a reconcile: which one, and since when the table is exact.
    confirmed_reconcile: str | None = None
    exact_as_of: UtcDatetime | None = None
    statements: CurrentStateStatements | None = None
    error: ErrorInfo | None = None


class ExportResult(Contract):
    """The outcome of one export: what a Map iteration returns and what on-call reads.

    `reported` is False when another execution of the same request already reported this job
    (it then names that execution in `reportedBy`): notifications and result events skip it.
    A successful export names where it is queryable: `database`, `table` and its `partitions` (one
    per request folder of the job: normally one).
    """

    domain_name: str
    object_type: str
    window: ExportWindow | None
    status: ExportStatus
    files: int = 0
    records: int = 0
    bytes: int = 0
    manifest_key: str | None = None
    message: str | None = None
    watermark: UtcDatetime | None = None
    duration_seconds: int | None = None
    backfill: bool = False
    verification: bool = False
    reported: bool = True
    reported_by: str | None = None
    database: str | None = None
    table: str | None = None
    partitions: list[CatalogPartition] = Field(default_factory=list)
    reconcile: bool = False
    current_state: CurrentStateUpdate | None = None


class ErrorInfo(Contract):
    """A Catch's error object as Step Functions writes it."""

    model_config = ConfigDict(alias_generator=None, populate_by_name=True, extra="ignore", frozen=True)

    Error: str
    Cause: str | None = None

    @property
    def message(self) -> str:
        """The human part of the error: the Lambda's errorMessage when the cause is its JSON."""
        if self.Cause:
            try:
                cause = json.loads(self.Cause)
            except ValueError:
                return self.Cause
            if isinstance(cause, dict) and cause.get("errorMessage"):
                return str(cause["errorMessage"])
            return self.Cause
        return self.Error


class FailedExport(ExportTask):
    """A task (possibly started) whose export failed, with the Catch's error or the job's status."""

    model_config = LENIENT

    error: ErrorInfo | None = None
    status: str | None = None
    status_message: str | None = None
    requested_at: UtcDatetime | None = None
    poll: PollState | None = None


class NotifyInput(Contract):
    """What the Notify state receives: every result of the execution, a rejection, or why the run broke."""

    model_config = LENIENT

    execution_arn: str
    correlation_id: str | None = None
    results: list[ExportResult] = Field(default_factory=list)
    skipped: list[SkippedExport] = Field(default_factory=list)
    rejection: Rejection | None = None
    plan_error: ErrorInfo | None = None


class NotifyOutput(Contract):
    """The execution's verdict, read by the final Choice.

    `messageId` (SNS took the message) and `events`/`eventsFailed` (what EventBridge took) stay in the
    execution's history: SNS messages and events cannot be read back, so `cpexport verify` reads these.
    """

    status: Literal["SUCCEEDED", "FAILED"]
    subject: str
    message_id: str | None = None
    events: int = 0
    events_failed: int = 0
    failed: int
    succeeded: int
    skipped: int
    already_reported: int = 0
