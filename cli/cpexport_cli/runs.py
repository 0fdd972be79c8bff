"""The run index (`RUN#` items): one record per finished export of a request, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cpexport.clients.state_table import StateTable

FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT"})


def parse_time(text: str | None) -> datetime | None:
    """A time as the state table holds it (`...Z`), or None."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RunRecord:
    """One finished export as the run index holds it."""

    domain_name: str
    object_type: str
    window_start: str
    window_end: str
    status: str
    recorded_at: str
    files: int | None = None
    records: int | None = None
    bytes: int | None = None
    manifest_key: str | None = None
    message: str | None = None
    backfill: bool = False
    verification: bool = False
    correlation_id: str | None = None
    execution_arn: str | None = None
    request_key: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def kind(self) -> str:
        """How the run index labels the run beside its status: a verification, a backfill, or nothing."""
        return " (verification)" if self.verification else " (backfill)" if self.backfill else ""

    @property
    def execution_name(self) -> str:
        return (self.execution_arn or "").rsplit(":", 1)[-1]

    def to_json(self, bucket: str | None = None) -> dict[str, Any]:
        """The record as `--output json` prints it."""
        return {
            "domainName": self.domain_name,
            "objectType": self.object_type,
            "window": {"start": self.window_start, "end": self.window_end},
            "status": self.status,
            "recordedAt": self.recorded_at,
            "files": self.files,
            "records": self.records,
            "bytes": self.bytes,
            "manifest": f"s3://{bucket}/{self.manifest_key}" if bucket and self.manifest_key else self.manifest_key,
            "message": self.message,
            "backfill": self.backfill,
            "verification": self.verification,
            "correlationId": self.correlation_id,
            "executionArn": self.execution_arn,
            "requestKey": self.request_key,
        }


def run_record(domain_name: str, object_type: str, item: dict[str, Any]) -> RunRecord:
    """A RunRecord from a plain run-index item (`StateTable.list_runs`)."""

    def number(name: str) -> int | None:
        value = item.get(name)
        return int(value) if isinstance(value, int | float) else None

    return RunRecord(
        domain_name=domain_name,
        object_type=object_type,
        window_start=str(item.get("windowStart", "")),
        window_end=str(item.get("windowEnd", "")),
        status=str(item.get("status", "")),
        recorded_at=str(item.get("recordedAt", "")),
        files=number("files"),
        records=number("records"),
        bytes=number("bytes"),
        manifest_key=item.get("manifestKey"),
        message=item.get("message"),
        backfill=bool(item.get("backfill", False)),
        verification=bool(item.get("verification", False)),
        correlation_id=item.get("correlationId"),
        execution_arn=item.get("executionArn"),
        request_key=item.get("requestKey"),
    )


def newest_first(records: list[RunRecord]) -> list[RunRecord]:
    """Newest recorded first; equal times by window, newest window first."""
    return sorted(records, key=lambda r: (r.recorded_at, r.window_end, r.window_start), reverse=True)


def read_runs(
    state: StateTable,
    domains: list[str],
    object_types: list[str],
    *,
    last: int | None = None,
    failed_only: bool = False,
) -> list[RunRecord]:
    """The run index of the selected object types, newest first, optionally only failures, at most `last`."""
    records = [
        run_record(domain, object_type, item)
        for domain in domains
        for object_type in object_types
        for item in state.list_runs(domain, object_type)
    ]
    if failed_only:
        records = [record for record in records if record.failed]
    ordered = newest_first(records)
    return ordered[:last] if last is not None else ordered
