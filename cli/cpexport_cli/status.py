"""`cpexport status`: one row per domain and object type, and what in it needs attention.

Everything here is read, nothing is written: the watermark, the newest run, the lease, the job the
service shows for the object type's data integration, and whether the stale-export alarm would fire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from botocore.exceptions import ClientError
from cpexport.clients.appintegrations import AppIntegrations, Association
from cpexport.clients.state_table import Lease, StateTable
from cpexport.errors import ExportError
from cpexport.exports import data_integration_name
from cpexport.models import ExportWindow, render_utc

from cpexport_cli.deployment import Deployment
from cpexport_cli.runs import RunRecord, newest_first, parse_time, run_record

DEFAULT_STALE_ALARM_HOURS = 36.0
DEFAULT_EXPORT_TIMEOUT_HOURS = 24.0
IN_PROGRESS = "IN_PROGRESS"


class Attention(IntEnum):
    """How much a row needs on-call: ordered, so the worst of a row's reasons is its level."""

    OK = 0
    WARN = 1
    ALERT = 2

    @property
    def label(self) -> str:
        return self.name.lower()


def describe_window(window: ExportWindow | None) -> str:
    """A window as the pipeline's messages write it."""
    return f"{render_utc(window.start)}..{render_utc(window.end)}" if window else "unknown window"


def human_duration(delta: timedelta | None) -> str:
    """`3d 4h`, `5h 12m`, `7m`, `40s`: how long ago or for how long, at a glance."""
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    if minutes:
        return f"{sign}{minutes}m"
    return f"{sign}{seconds}s"


@dataclass(frozen=True)
class LeaseView:
    """The LEASE item and the state of the execution that holds it."""

    lease: Lease
    execution_status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.lease.window.to_wire(),
            "executionArn": self.lease.execution_arn,
            "executionStatus": self.execution_status,
            "acquiredAt": render_utc(self.lease.acquired_at),
            "submittedAt": render_utc(self.lease.submitted_at) if self.lease.submitted_at else None,
            "timedOutAt": render_utc(self.lease.timed_out_at) if self.lease.timed_out_at else None,
        }


@dataclass(frozen=True)
class JobView:
    """The last job the service shows for the object type's data integration (only the last is visible)."""

    data_integration_name: str
    exists: bool
    window: ExportWindow | None = None
    status: str | None = None
    status_message: str | None = None
    elapsed: timedelta | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.status == IN_PROGRESS

    def to_json(self) -> dict[str, Any]:
        return {
            "dataIntegrationName": self.data_integration_name,
            "dataIntegrationExists": self.exists,
            "window": self.window.to_wire() if self.window else None,
            "associationStatus": self.status,
            "statusMessage": self.status_message,
            "running": self.running,
            "elapsedSeconds": int(self.elapsed.total_seconds()) if self.elapsed is not None else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class StaleAlarm:
    """Whether StaleExportAlarm would fire: the watermark is older than StaleExportAlarmHours."""

    age_hours: float
    threshold_hours: float

    @property
    def would_fire(self) -> bool:
        return self.age_hours > self.threshold_hours

    def to_json(self) -> dict[str, Any]:
        return {
            "wouldFire": self.would_fire,
            "ageHours": round(self.age_hours, 2),
            "thresholdHours": self.threshold_hours,
        }


@dataclass(frozen=True)
class ObjectTypeStatus:
    """Everything on-call needs to know about one domain x object type, and what needs attention."""

    domain_name: str
    object_type: str
    watermark: datetime | None
    watermark_age: timedelta | None
    last_success_at: datetime | None
    last_run: RunRecord | None
    job: JobView
    lease: LeaseView | None
    stale: StaleAlarm
    reasons: list[tuple[Attention, str]] = field(default_factory=list)

    @property
    def attention(self) -> Attention:
        return max((level for level, _ in self.reasons), default=Attention.OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "domainName": self.domain_name,
            "objectType": self.object_type,
            "watermark": render_utc(self.watermark) if self.watermark else None,
            "watermarkAgeSeconds": int(self.watermark_age.total_seconds()) if self.watermark_age else None,
            "lastSuccessAt": render_utc(self.last_success_at) if self.last_success_at else None,
            "lastRun": self.last_run.to_json() if self.last_run else None,
            "job": self.job.to_json(),
            "lease": self.lease.to_json() if self.lease else None,
            "staleAlarm": self.stale.to_json(),
            "attention": self.attention.label,
            "reasons": [{"level": level.label, "message": message} for level, message in self.reasons],
        }


class StatusReader:
    """Reads the status of every configured object type of a deployment."""

    def __init__(
        self, deployment: Deployment, state: StateTable, appintegrations: AppIntegrations, stepfunctions: Any
    ) -> None:
        self.deployment = deployment
        self.state = state
        self.appintegrations = appintegrations
        self.stepfunctions = stepfunctions
        self._execution_status: dict[str, str] = {}

    def execution_status(self, execution_arn: str) -> str:
        """RUNNING, SUCCEEDED, FAILED, ABORTED, TIMED_OUT; UNKNOWN when it cannot be described."""
        if execution_arn not in self._execution_status:
            try:
                described = self.stepfunctions.describe_execution(executionArn=execution_arn)
                self._execution_status[execution_arn] = str(described["status"])
            except ClientError:
                self._execution_status[execution_arn] = "UNKNOWN"
        return self._execution_status[execution_arn]

    def job(self, domain_name: str, object_type: str, lease: Lease | None, now: datetime) -> JobView:
        """What the service shows for the object type's data integration."""
        name = data_integration_name(self.deployment.stack_name, domain_name, object_type)
        try:
            data_integration = self.appintegrations.get_data_integration(name)
            if data_integration is None:
                return JobView(data_integration_name=name, exists=False)
            association: Association | None = self.appintegrations.find_association(data_integration)
        except (ExportError, ClientError) as exc:
            return JobView(data_integration_name=name, exists=False, error=f"{type(exc).__name__}: {exc}")
        if association is None:
            return JobView(data_integration_name=name, exists=True)
        elapsed = None
        if association.status == IN_PROGRESS and association.window is not None:
            ledger = self.state.get_job(domain_name, object_type, association.window)
            submitted = ledger.submitted_at if ledger else None
            if submitted is None and lease is not None and lease.window == association.window:
                submitted = lease.submitted_at or lease.acquired_at
            elapsed = now - submitted if submitted else None
        return JobView(
            data_integration_name=name,
            exists=True,
            window=association.window,
            status=association.status,
            status_message=association.status_message,
            elapsed=elapsed,
        )

    def read(self, domain_name: str, object_type: str, now: datetime) -> ObjectTypeStatus:
        """The status of one object type."""
        record = self.state.get_watermark_record(domain_name, object_type)
        watermark = record.watermark if record else None
        runs = newest_first(
            [run_record(domain_name, object_type, i) for i in self.state.list_runs(domain_name, object_type)]
        )
        lease = self.state.get_lease(domain_name, object_type)
        lease_view = LeaseView(lease, self.execution_status(lease.execution_arn)) if lease else None
        job = self.job(domain_name, object_type, lease, now)
        initial = parse_time(self.deployment.parameters.get("InitialStartTime"))
        since = watermark or initial or now
        stale = StaleAlarm(
            age_hours=(now - since).total_seconds() / 3600,
            threshold_hours=self.deployment.number("StaleExportAlarmHours", DEFAULT_STALE_ALARM_HOURS),
        )
        status = ObjectTypeStatus(
            domain_name=domain_name,
            object_type=object_type,
            watermark=watermark,
            watermark_age=now - watermark if watermark else None,
            last_success_at=record.last_success_at if record else None,
            last_run=runs[0] if runs else None,
            job=job,
            lease=lease_view,
            stale=stale,
        )
        status.reasons.extend(self.reasons(status))
        return status

    def read_all(self, domains: list[str], object_types: list[str], now: datetime) -> list[ObjectTypeStatus]:
        """The status of each selected domain x object type, in configuration order."""
        return [self.read(domain, object_type, now) for domain in domains for object_type in object_types]

    def reasons(self, status: ObjectTypeStatus) -> list[tuple[Attention, str]]:
        """What in a row needs attention, worst first, each in words with the command that helps."""
        found: list[tuple[Attention, str]] = []
        where = f"--domain {status.domain_name} --type {status.object_type}"
        watermark = render_utc(status.watermark) if status.watermark else "unset"
        run = status.last_run
        if run is not None and run.failed:
            what = f"last run {run.status} for {run.window_start}..{run.window_end}: {run.message or 'no message'}."
            if run.backfill:
                again = (
                    f"A backfill (no watermark involved): start it again with cpexport backfill {where} "
                    f"--from {run.window_start} --to {run.window_end}"
                )
            else:
                again = (
                    f"The watermark stays at {watermark}: the next run exports the window again "
                    f"(now: cpexport run {where})"
                )
            found.append((Attention.ALERT, f"{what} {again}; why: cpexport explain {run.execution_name}"))
        if status.stale.would_fire:
            found.append(
                (
                    Attention.ALERT,
                    f"the stale-export alarm fires: the watermark is {status.stale.age_hours:.1f} h old "
                    f"(StaleExportAlarmHours {status.stale.threshold_hours:g})",
                )
            )
        lease = status.lease
        job = status.job
        if lease is not None and lease.execution_status != "RUNNING":
            held = (
                f"the lease of {describe_window(lease.lease.window)} is held by execution "
                f"{lease.lease.execution_arn.rsplit(':', 1)[-1]}, which is {lease.execution_status}"
            )
            if job.running:
                found.append(
                    (Attention.WARN, f"{held}; its job still runs (jobs cannot be cancelled): wait for it to end")
                )
            elif job.window == lease.lease.window:
                found.append(
                    (
                        Attention.WARN,
                        f"{held}; the service shows its job {job.status}: the next run takes it over, or "
                        f"cpexport release-lease {where} frees it now",
                    )
                )
            else:
                found.append(
                    (
                        Attention.ALERT,
                        f"{held}; the service does not show that job, so every run waits (ExportBusy): check, then "
                        f"cpexport release-lease {where}",
                    )
                )
        if lease is not None and lease.lease.timed_out_at is not None:
            found.append(
                (
                    Attention.WARN,
                    f"the pipeline stopped waiting for the job of {describe_window(lease.lease.window)} at "
                    f"{render_utc(lease.lease.timed_out_at)} (TIMED_OUT); the job keeps the lease until it ends",
                )
            )
        timeout = timedelta(hours=self.deployment.number("ExportTimeoutHours", DEFAULT_EXPORT_TIMEOUT_HOURS))
        if job.running and job.elapsed is not None and job.elapsed > timeout:
            found.append(
                (
                    Attention.WARN,
                    f"the job of {describe_window(job.window)} has run {human_duration(job.elapsed)}, past "
                    f"ExportTimeoutHours",
                )
            )
        if job.error:
            found.append((Attention.WARN, f"could not read the job from AppIntegrations: {job.error}"))
        if status.watermark is None and not job.running:
            found.append((Attention.WARN, "never exported yet: no watermark"))
        return sorted(found, key=lambda reason: -reason[0])
