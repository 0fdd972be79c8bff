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


def _require_iso_text(value: object) -> object:
    # pydantic would read a number as epoch seconds; callers must say what they mean.
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 date-time string with a time zone, e.g. 2026-01-01T00:00:00Z")
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
    """

    scheduled_time: UtcDatetime | None = None
    domain_name: DomainName | None = None
    object_types: list[ObjectTypeName] | None = Field(default=None, min_length=1, max_length=100)
    start_time: UtcDatetime | None = None
    end_time: UtcDatetime | None = None
    correlation_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    source: str | None = Field(default=None, max_length=256)

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
    """One export to run: a domain, an object type and a window."""

    domain_name: DomainName
    object_type: ObjectTypeName
    window: ExportWindow
    backfill: bool = False
    execution_arn: str
    correlation_id: str


class SkippedExport(Contract):
    """A domain x object type with nothing to export this time, and why."""

    domain_name: str
    object_type: str
    reason: str
    watermark: UtcDatetime | None = None


class PlanOutput(Contract):
    """The plan: the exports to run (Map items), the skipped ones, and the Map's bound."""

    exports: list[ExportTask]
    skipped: list[SkippedExport]
    clock: UtcDatetime
    correlation_id: str
    execution_arn: str
    max_concurrency: int
    source: str | None = None


class PollState(Contract):
    """How long the poll loop has waited so far and how long to wait next."""

    attempt: int = 0
    wait_seconds: int
    waited_seconds: int = 0


class StartedExport(ExportTask):
    """An export whose job has been submitted (or adopted: it was already running for this window)."""

    data_integration_name: str
    data_integration_arn: str
    association_id: str
    requested_at: UtcDatetime
    adopted: bool = False
    rerun_of_same_window: bool = False
    poll: PollState


class ExecutionStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


class CheckedExport(StartedExport):
    """A started export with the status of its job as last seen."""

    status: ExecutionStatus
    status_message: str | None = None


class PollingExport(StartedExport):
    """What the Check state receives: a started export, or one already checked (the poll loop)."""

    status: ExecutionStatus | None = None
    status_message: str | None = None


class ExportStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"


class ExportResult(Contract):
    """The outcome of one export: what a Map iteration returns and what on-call reads."""

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
    status: ExecutionStatus | None = None
    status_message: str | None = None
    requested_at: UtcDatetime | None = None
    poll: PollState | None = None


class NotifyInput(Contract):
    """What the Notify state receives: every result of the execution, or the plan's failure."""

    model_config = LENIENT

    execution_arn: str
    correlation_id: str | None = None
    results: list[ExportResult] = Field(default_factory=list)
    skipped: list[SkippedExport] = Field(default_factory=list)
    plan_error: ErrorInfo | None = None
    request: dict[str, Any] | None = None
    source: str | None = None


class NotifyOutput(Contract):
    """The execution's verdict, read by the final Choice."""

    status: Literal["SUCCEEDED", "FAILED"]
    subject: str
    message_id: str | None = None
    failed: int
    succeeded: int
    skipped: int
