"""The DynamoDB state table: watermarks, export leases, the job ledger and the run index.

Items of one object type share the partition `EXPORT#{domain}#{objectType}`:
- `WATERMARK`: everything last-updated before `watermark` has been exported and indexed;
- `LEASE`: the job that occupies the object type (at most one job per object type): taken before a
  job is submitted, held until the service shows that job ended;
- `JOB#{start}#{end}`: the job ledger, one item per job ever submitted. Its window is the job's
  identity: no two jobs of an object type ever share a window, so a status or an S3 folder that
  names a window names exactly one job;
- `RUN#{start}#{end}#{requestKey}`: the run index, one item per job and request, written once
  (conditionally): whichever execution writes it reports the job, the others do not. One exception:
  TIMED_OUT only says that an execution stopped waiting, not how the job ended, so the job's
  outcome (SUCCEEDED or FAILED, seen by another execution of the same request) replaces it, naming
  the timed-out execution in `supersededExecutionArn`; the outcome is then reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from cpexport.clients import client
from cpexport.clients.translate import error_code, translated
from cpexport.current_state import PendingReconcile
from cpexport.models import ExportWindow, render_utc


def partition_key(domain_name: str, object_type: str) -> str:
    return f"EXPORT#{domain_name}#{object_type}"


def job_sort_key(window: ExportWindow) -> str:
    return f"JOB#{render_utc(window.start)}#{render_utc(window.end)}"


def run_sort_key(window: ExportWindow, request_key: str) -> str:
    return f"RUN#{render_utc(window.start)}#{render_utc(window.end)}#{request_key}"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Lease:
    window: ExportWindow
    execution_arn: str
    acquired_at: datetime
    submitted_at: datetime | None
    request_key: str | None = None
    timed_out_at: datetime | None = None


class JobState(StrEnum):
    """What the pipeline knows of a job it submitted."""

    SUBMITTING = "SUBMITTING"  # the Create/Update call was made; its answer was not (yet) a success
    SUBMITTED = "SUBMITTED"
    COMPLETED = "COMPLETED"  # indexed
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"  # the pipeline stopped waiting; the job may still run
    UNCONFIRMED = "UNCONFIRMED"  # the submission answered an error and the service never showed the job
    ABANDONED = "ABANDONED"  # its execution stopped following it (an error of ours); the job may still run


@dataclass(frozen=True)
class Job:
    """One ledger item: a job the pipeline submitted for a window."""

    window: ExportWindow
    state: JobState
    execution_arn: str
    submitted_at: datetime
    request_key: str | None = None
    request_stamps: list[str] = field(default_factory=list)
    finished_at: datetime | None = None
    duration_seconds: int | None = None  # submission to the poll that saw it end, on the state machine's clock


@dataclass(frozen=True)
class RunRecorded:
    """The outcome of recording a run: written now, or already there (by `execution_arn`)."""

    written: bool
    execution_arn: str
    sort_key: str
    superseded: str | None = None  # the execution whose TIMED_OUT record this outcome replaced


def _window_attributes(window: ExportWindow) -> dict[str, Any]:
    """A window as the attributes every item of a job carries."""
    return {"windowStart": {"S": render_utc(window.start)}, "windowEnd": {"S": render_utc(window.end)}}


def _window_of(item: dict[str, Any]) -> ExportWindow:
    return ExportWindow(start=_parse(item["windowStart"]["S"]), end=_parse(item["windowEnd"]["S"]))


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, list):
        return {"L": [_attribute(item) for item in value]}
    if isinstance(value, dict):
        return {"M": {str(key): _attribute(item) for key, item in value.items() if item is not None}}
    return {"S": str(value)}


class StateTable:
    """Conditional reads and writes of the pipeline's state."""

    def __init__(self, table_name: str, api: Any | None = None) -> None:
        self.table_name = table_name
        self._api = api if api is not None else client("dynamodb")

    def _key(self, domain_name: str, object_type: str, sort_key: str) -> dict[str, Any]:
        return {"pk": {"S": partition_key(domain_name, object_type)}, "sk": {"S": sort_key}}

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with translated("GetItem"):
            item = self._api.get_item(
                TableName=self.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            ).get("Item")
        return dict(item) if item else None

    def _conditional(self, operation: str, call: Any, **request: Any) -> bool:
        """Run a conditional write; False when its condition did not hold."""
        try:
            with translated(operation):
                call(TableName=self.table_name, **request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- watermark ---------------------------------------------------------------------------
    def get_watermark(self, domain_name: str, object_type: str) -> datetime | None:
        """The object type's watermark, or None before its first export."""
        item = self._get(partition_key(domain_name, object_type), "WATERMARK")
        if not item or "watermark" not in item:
            return None
        return _parse(item["watermark"]["S"])

    def advance_watermark(
        self, domain_name: str, object_type: str, window: ExportWindow, initial_start: datetime, now: datetime
    ) -> bool:
        """Move the watermark from the window's start to its end; False when it was not at the start.

        The condition is the no-gap, no-double-advance guarantee: the watermark only moves
        forward, and only over a window that was really exported.
        """
        condition = "watermark = :start"
        if window.start == initial_start:
            condition = "attribute_not_exists(watermark) OR watermark = :start"
        return self._conditional(
            "UpdateItem",
            self._api.update_item,
            Key=self._key(domain_name, object_type, "WATERMARK"),
            UpdateExpression="SET watermark = :end, updatedAt = :now, lastSuccessAt = :now",
            ConditionExpression=condition,
            ExpressionAttributeValues={
                ":start": {"S": render_utc(window.start)},
                ":end": {"S": render_utc(window.end)},
                ":now": {"S": render_utc(now)},
            },
        )

    # -- lease -------------------------------------------------------------------------------
    def get_lease(self, domain_name: str, object_type: str) -> Lease | None:
        """The job that occupies the object type, if any."""
        item = self._get(partition_key(domain_name, object_type), "LEASE")
        if not item:
            return None
        return Lease(
            window=_window_of(item),
            execution_arn=item["executionArn"]["S"],
            acquired_at=_parse(item["acquiredAt"]["S"]),
            submitted_at=_parse(item["submittedAt"]["S"]) if "submittedAt" in item else None,
            request_key=item["requestKey"]["S"] if "requestKey" in item else None,
            timed_out_at=_parse(item["timedOutAt"]["S"]) if "timedOutAt" in item else None,
        )

    def put_lease(
        self,
        domain_name: str,
        object_type: str,
        window: ExportWindow,
        execution_arn: str,
        request_key: str,
        now: datetime,
        replacing: Lease | None,
    ) -> bool:
        """Take the lease; `replacing` is the lease we found (and judged over). False if we lost a race."""
        condition = "attribute_not_exists(pk)"
        values: dict[str, Any] = {}
        if replacing is not None:
            condition = "acquiredAt = :previous AND executionArn = :previousExecution"
            values = {
                ":previous": {"S": render_utc(replacing.acquired_at)},
                ":previousExecution": {"S": replacing.execution_arn},
            }
            if replacing.submitted_at is None:
                # Judged unsubmitted: if another execution marked it submitted meanwhile, it is not ours to take.
                condition += " AND attribute_not_exists(submittedAt)"
        return self._conditional(
            "PutItem",
            self._api.put_item,
            Item={
                **self._key(domain_name, object_type, "LEASE"),
                **_window_attributes(window),
                "executionArn": {"S": execution_arn},
                "requestKey": {"S": request_key},
                "acquiredAt": {"S": render_utc(now)},
            },
            ConditionExpression=condition,
            **({"ExpressionAttributeValues": values} if values else {}),
        )

    def mark_submitted(self, domain_name: str, object_type: str, window: ExportWindow, now: datetime) -> bool:
        """Note on the lease that the job for its window has been submitted; False if the lease moved on."""
        return self._if_lease_window(
            "UpdateItem",
            self._api.update_item,
            domain_name,
            object_type,
            window,
            UpdateExpression="SET submittedAt = if_not_exists(submittedAt, :now)",
            ExpressionAttributeValues={":now": {"S": render_utc(now)}},
        )

    def mark_timed_out(self, domain_name: str, object_type: str, window: ExportWindow, now: datetime) -> None:
        """Keep the lease of a job the pipeline stopped waiting for: it may still run (jobs cannot be cancelled)."""
        self._if_lease_window(
            "UpdateItem",
            self._api.update_item,
            domain_name,
            object_type,
            window,
            UpdateExpression="SET timedOutAt = :now",
            ExpressionAttributeValues={":now": {"S": render_utc(now)}},
        )

    def release_lease(self, domain_name: str, object_type: str, window: ExportWindow) -> None:
        """Drop the lease if it still holds this window's job."""
        self._if_lease_window("DeleteItem", self._api.delete_item, domain_name, object_type, window)

    def _if_lease_window(
        self, operation: str, call: Any, domain_name: str, object_type: str, window: ExportWindow, **request: Any
    ) -> bool:
        """Run a write on the LEASE item only while it holds `window`; False when it does not (or is gone)."""
        values = request.pop("ExpressionAttributeValues", {})
        return self._conditional(
            operation,
            call,
            Key=self._key(domain_name, object_type, "LEASE"),
            ConditionExpression="windowStart = :start AND windowEnd = :end",
            ExpressionAttributeValues={
                ":start": {"S": render_utc(window.start)},
                ":end": {"S": render_utc(window.end)},
                **values,
            },
            **request,
        )

    # -- job ledger --------------------------------------------------------------------------
    def get_job(self, domain_name: str, object_type: str, window: ExportWindow) -> Job | None:
        """The ledger item of the job submitted for exactly this window, if any."""
        item = self._get(partition_key(domain_name, object_type), job_sort_key(window))
        if not item:
            return None
        return Job(
            window=window,
            state=JobState(item["state"]["S"]),
            execution_arn=item["executionArn"]["S"],
            submitted_at=_parse(item["submittedAt"]["S"]),
            request_key=item["requestKey"]["S"] if "requestKey" in item else None,
            request_stamps=[value["S"] for value in item.get("requestStamps", {}).get("L", [])],
            finished_at=_parse(item["finishedAt"]["S"]) if "finishedAt" in item else None,
            duration_seconds=int(item["durationSeconds"]["N"]) if "durationSeconds" in item else None,
        )

    def create_job(
        self,
        domain_name: str,
        object_type: str,
        window: ExportWindow,
        execution_arn: str,
        request_key: str,
        now: datetime,
    ) -> bool:
        """Record, before calling the service, that a job for this window is being submitted.

        False when the window already has a job: windows are never reused.
        """
        return self._conditional(
            "PutItem",
            self._api.put_item,
            Item={
                **self._key(domain_name, object_type, job_sort_key(window)),
                **_window_attributes(window),
                "state": {"S": JobState.SUBMITTING.value},
                "executionArn": {"S": execution_arn},
                "requestKey": {"S": request_key},
                "submittedAt": {"S": render_utc(now)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def set_job_state(
        self,
        domain_name: str,
        object_type: str,
        window: ExportWindow,
        state: JobState,
        now: datetime,
        request_stamps: list[str] | None = None,
        duration_seconds: int | None = None,
    ) -> None:
        """Move a ledger item to `state` (a missing item is left missing)."""
        expression = "SET #state = :state, updatedAt = :now"
        values: dict[str, Any] = {":state": {"S": state.value}, ":now": {"S": render_utc(now)}}
        if state in {JobState.COMPLETED, JobState.FAILED, JobState.TIMED_OUT, JobState.UNCONFIRMED, JobState.ABANDONED}:
            expression += ", finishedAt = if_not_exists(finishedAt, :now)"
        if request_stamps is not None:
            expression += ", requestStamps = :stamps"
            values[":stamps"] = _attribute(list(request_stamps))
        if duration_seconds is not None:
            expression += ", durationSeconds = :duration"
            values[":duration"] = {"N": str(duration_seconds)}
        self._conditional(
            "UpdateItem",
            self._api.update_item,
            Key=self._key(domain_name, object_type, job_sort_key(window)),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )

    def mark_unconfirmed(self, domain_name: str, object_type: str, window: ExportWindow, now: datetime) -> bool:
        """Mark a SUBMITTING job whose submission the service never showed; False if it was confirmed meanwhile."""
        return self._settle_open_job(
            domain_name, object_type, window, now, JobState.UNCONFIRMED, (JobState.SUBMITTING,), "finishedAt = :now"
        )

    def mark_abandoned(self, domain_name: str, object_type: str, window: ExportWindow, now: datetime) -> bool:
        """Mark a job still SUBMITTING or SUBMITTED that no execution follows any more; False if it was settled."""
        return self._settle_open_job(
            domain_name,
            object_type,
            window,
            now,
            JobState.ABANDONED,
            (JobState.SUBMITTING, JobState.SUBMITTED),
            "finishedAt = if_not_exists(finishedAt, :now)",
        )

    def _settle_open_job(
        self,
        domain_name: str,
        object_type: str,
        window: ExportWindow,
        now: datetime,
        state: JobState,
        open_states: tuple[JobState, ...],
        finished: str,
    ) -> bool:
        """Move a ledger item to `state` only while it is in one of `open_states`; False if it had moved on."""
        expected = {f":open{i}": {"S": open_state.value} for i, open_state in enumerate(open_states)}
        return self._conditional(
            "UpdateItem",
            self._api.update_item,
            Key=self._key(domain_name, object_type, job_sort_key(window)),
            UpdateExpression=f"SET #state = :state, updatedAt = :now, {finished}",
            ConditionExpression=f"#state IN ({', '.join(expected)})",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":state": {"S": state.value}, ":now": {"S": render_utc(now)}, **expected},
        )

    def forget_job(self, domain_name: str, object_type: str, window: ExportWindow, execution_arn: str) -> None:
        """Drop a ledger item whose submission the service refused (it never ran), if it is still ours."""
        self._conditional(
            "DeleteItem",
            self._api.delete_item,
            Key=self._key(domain_name, object_type, job_sort_key(window)),
            ConditionExpression="executionArn = :execution AND #state = :submitting",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":execution": {"S": execution_arn},
                ":submitting": {"S": JobState.SUBMITTING.value},
            },
        )

    # -- run index ---------------------------------------------------------------------------
    def put_run(
        self, domain_name: str, object_type: str, window: ExportWindow, request_key: str, run: dict[str, Any]
    ) -> RunRecorded:
        """Record one finished export of a request, once: the first execution to record it reports it."""
        sort_key = run_sort_key(window, request_key)
        item: dict[str, Any] = self._key(domain_name, object_type, sort_key)
        item["requestKey"] = {"S": request_key}
        item |= _window_attributes(window)
        for name, value in run.items():
            if value is not None:
                item[name] = _attribute(value)
        written = self._conditional(
            "PutItem", self._api.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )
        if written:
            return RunRecorded(written=True, execution_arn=str(run["executionArn"]), sort_key=sort_key)
        existing = self._get(partition_key(domain_name, object_type), sort_key) or {}
        recorded_by = existing.get("executionArn", {}).get("S", "")
        if existing.get("status", {}).get("S") == "TIMED_OUT" and run.get("status") in ("SUCCEEDED", "FAILED"):
            # The job's outcome replaces "stopped waiting", once: only over the TIMED_OUT item just read.
            item["supersededExecutionArn"] = {"S": recorded_by}
            item["supersededStatus"] = {"S": "TIMED_OUT"}
            if self._conditional(
                "PutItem",
                self._api.put_item,
                Item=item,
                ConditionExpression="#status = :timed_out AND executionArn = :recorded_by",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":timed_out": {"S": "TIMED_OUT"}, ":recorded_by": {"S": recorded_by}},
            ):
                return RunRecorded(
                    written=True, execution_arn=str(run["executionArn"]), sort_key=sort_key, superseded=recorded_by
                )
            existing = self._get(partition_key(domain_name, object_type), sort_key) or {}
            recorded_by = existing.get("executionArn", {}).get("S", "")
        return RunRecorded(written=False, execution_arn=recorded_by, sort_key=sort_key)

    def list_runs(self, domain_name: str, object_type: str) -> list[dict[str, Any]]:
        """The run index of an object type, oldest window first, as plain dicts."""
        return self._query(domain_name, object_type, "RUN#")

    def recent_durations(self, domain_name: str, object_type: str, limit: int = 20) -> list[tuple[ExportWindow, int]]:
        """(window, duration) of the newest indexed jobs that were timed from their submission, oldest first."""
        with translated("Query"):
            response = self._api.query(
                TableName=self.table_name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": partition_key(domain_name, object_type)},
                    ":prefix": {"S": "JOB#"},
                },
                ScanIndexForward=False,
                Limit=limit,
                ConsistentRead=True,
            )
        found = []
        for item in reversed(response.get("Items", [])):
            if item.get("state", {}).get("S") == JobState.COMPLETED.value and "durationSeconds" in item:
                window = _window_of(item)
                found.append((window, int(item["durationSeconds"]["N"])))
        return found

    def list_jobs(self, domain_name: str, object_type: str) -> list[dict[str, Any]]:
        """The job ledger of an object type, oldest window first, as plain dicts."""
        return self._query(domain_name, object_type, "JOB#")

    def _query(self, domain_name: str, object_type: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        with translated("Query"):
            pages = self._api.get_paginator("query").paginate(
                TableName=self.table_name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": partition_key(domain_name, object_type)},
                    ":prefix": {"S": prefix},
                },
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    items.append({name: _plain(value) for name, value in item.items()})
        return items

    # -- operator reads and writes (the cpexport command line) --------------------------------
    def get_watermark_record(self, domain_name: str, object_type: str) -> WatermarkRecord | None:
        """The WATERMARK item with when it last moved, or None before the first export."""
        item = self._get(partition_key(domain_name, object_type), "WATERMARK")
        if not item or "watermark" not in item:
            return None
        return WatermarkRecord(
            watermark=_parse(item["watermark"]["S"]),
            last_success_at=_parse(item["lastSuccessAt"]["S"]) if "lastSuccessAt" in item else None,
        )

    # -- reconcile ---------------------------------------------------------------------------
    def put_reconcile(
        self, domain_name: str, object_type: str, label: str, cutoff: datetime, confirm_after: datetime
    ) -> None:
        """Remember the newest reconcile of an object type until an incremental export confirms it."""
        item = self._key(domain_name, object_type, "RECONCILE") | {
            "label": {"S": label},
            "cutoff": {"S": render_utc(cutoff)},
            "confirmAfter": {"S": render_utc(confirm_after)},
        }
        with translated("PutItem"):
            self._api.put_item(TableName=self.table_name, Item=item)

    def get_reconcile(self, domain_name: str, object_type: str) -> PendingReconcile | None:
        """The newest reconcile of an object type and whether an export confirmed it yet."""
        item = self._get(partition_key(domain_name, object_type), "RECONCILE")
        if not item:
            return None
        return PendingReconcile(
            label=item["label"]["S"],
            cutoff=_parse(item["cutoff"]["S"]),
            confirm_after=_parse(item["confirmAfter"]["S"]),
            confirmed_by=item["confirmedBy"]["S"] if "confirmedBy" in item else None,
        )

    def confirm_reconcile(self, domain_name: str, object_type: str, label: str, by: str, now: datetime) -> bool:
        """Mark the reconcile confirmed by export `by` (its deletions go to the table with that export's merge);
        False when another reconcile replaced it or another export confirmed it first."""
        return self._conditional(
            "UpdateItem",
            self._api.update_item,
            Key=self._key(domain_name, object_type, "RECONCILE"),
            UpdateExpression="SET confirmedAt = :now, confirmedBy = :by",
            ConditionExpression="label = :label AND (attribute_not_exists(confirmedBy) OR confirmedBy = :by)",
            ExpressionAttributeValues={":now": {"S": render_utc(now)}, ":label": {"S": label}, ":by": {"S": by}},
        )

    def delete_lease_as_read(self, domain_name: str, object_type: str, lease: Lease) -> bool:
        """Delete the LEASE item only if it is still the lease that was read; False when it changed or is gone.

        The condition is what makes an operator's release safe: a lease taken over by another
        execution between the checks and the delete is never dropped.
        """
        return self._conditional(
            "DeleteItem",
            self._api.delete_item,
            Key=self._key(domain_name, object_type, "LEASE"),
            ConditionExpression="acquiredAt = :acquired AND executionArn = :execution",
            ExpressionAttributeValues={
                ":acquired": {"S": render_utc(lease.acquired_at)},
                ":execution": {"S": lease.execution_arn},
            },
        )


def _plain(value: dict[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        number = value["N"]
        return int(number) if number.lstrip("-").isdigit() else float(number)
    if "BOOL" in value:
        return value["BOOL"]
    if "L" in value:
        return [_plain(item) for item in value["L"]]
    if "M" in value:
        return {key: _plain(item) for key, item in value["M"].items()}
    return value


@dataclass(frozen=True)
class WatermarkRecord:
    """An object type's watermark and when an export last moved it."""

    watermark: datetime
    last_success_at: datetime | None
