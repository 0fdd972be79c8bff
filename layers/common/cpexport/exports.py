"""Start an export job and check on it: one data integration and one association per object type.

Jobs cannot be cancelled and only the last job's status is visible, so the rules are:
- at most one job per object type at a time, guarded by a lease in the state table;
- a job already running (or done) for exactly our window is adopted, never started twice;
- a job running for another window makes us wait (ExportBusy), never start a second one.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

from cpexport.clients.appintegrations import AppIntegrations, Association, DataIntegration
from cpexport.clients.state_table import Lease, StateTable
from cpexport.config import Settings
from cpexport.errors import ExportBusy, ExportRejected
from cpexport.models import (
    CheckedExport,
    ExecutionStatus,
    ExportTask,
    ExportWindow,
    PollState,
    StartedExport,
    render_utc,
)
from cpexport.observability import logger

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9/._-]")
_NAME_MAX = 255


def data_integration_name(stack_name: str, domain_name: str, object_type: str) -> str:
    """The deterministic name of an object type's data integration (created once, reused forever)."""
    name = _NAME_UNSAFE.sub("-", f"{stack_name}-{domain_name}-{object_type}")
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[: _NAME_MAX - 13]}-{digest}"


class NothingToExport(Exception):
    """Raised internally when another execution already exported this window."""


def _current_window(task: ExportTask, watermark: datetime | None) -> ExportWindow:
    """A scheduled window never re-exports what another execution finished meanwhile."""
    if task.backfill or watermark is None or watermark <= task.window.start:
        return task.window
    if watermark >= task.window.end:
        raise NothingToExport(f"the watermark ({render_utc(watermark)}) already covers this window")
    return ExportWindow(start=watermark, end=task.window.end)


# A lease taken but never marked submitted belongs to an execution that is starting the job right
# now, or that died doing so; past this age (well over a Lambda's 15-minute limit) it is taken over.
UNSUBMITTED_LEASE_TTL = timedelta(minutes=20)


def _take_lease(
    task: ExportTask, window: ExportWindow, state: StateTable, now: datetime, stale_after: timedelta
) -> Lease:
    lease = state.get_lease(task.domain_name, task.object_type)
    if lease is not None and lease.window == window:
        if lease.submitted_at is not None or lease.execution_arn == task.execution_arn:
            return lease
        if now - lease.acquired_at < UNSUBMITTED_LEASE_TTL:
            # Another execution (a re-delivered tick) is submitting this very window: wait, then adopt.
            raise ExportBusy(
                f"{task.domain_name}/{task.object_type}: execution {lease.execution_arn} is starting the export "
                f"of {_describe(window)}"
            )
    elif lease is not None and now - lease.acquired_at < stale_after:
        raise ExportBusy(
            f"{task.domain_name}/{task.object_type}: execution {lease.execution_arn} is exporting "
            f"{_describe(lease.window)} since {render_utc(lease.acquired_at)}"
        )
    if not state.put_lease(task.domain_name, task.object_type, window, task.execution_arn, now, replacing=lease):
        raise ExportBusy(f"{task.domain_name}/{task.object_type}: another execution took the export lease just now")
    return Lease(window=window, execution_arn=task.execution_arn, acquired_at=now, submitted_at=None)


def start_export(
    task: ExportTask,
    settings: Settings,
    state: StateTable,
    service: AppIntegrations,
    now: datetime | None = None,
) -> StartedExport | None:
    """Submit (or adopt) the export job of a task; None when there is nothing left to export."""
    now = now or datetime.now(UTC)
    try:
        window = _current_window(task, state.get_watermark(task.domain_name, task.object_type))
    except NothingToExport as reason:
        logger.info("export already done by another execution", extra={"reason": str(reason)})
        return None
    task = task.model_copy(update={"window": window})
    lease = _take_lease(task, window, state, now, timedelta(hours=settings.export_timeout_hours))

    name = data_integration_name(settings.stack_name, task.domain_name, task.object_type)
    data_integration = service.ensure_data_integration(
        name,
        settings.kms_key_arn,
        task.domain_name,
        task.object_type,
        description=f"Customer Profiles bulk export of {task.domain_name}/{task.object_type} ({settings.stack_name})",
    )
    association = service.find_association(data_integration)
    adopted, rerun, association_id = _submit(task, data_integration, association, lease, settings, service)
    if not adopted:
        state.mark_submitted(task.domain_name, task.object_type, window, now)
    started = StartedExport(
        **task.model_dump(),
        data_integration_name=data_integration.name,
        data_integration_arn=data_integration.arn,
        association_id=association_id,
        # The lease is taken before the job is submitted: a lower bound of the job's request time.
        requested_at=lease.acquired_at,
        adopted=adopted,
        rerun_of_same_window=rerun,
        poll=PollState(attempt=0, wait_seconds=settings.poll_wait(0), waited_seconds=0),
    )
    logger.info(
        "export adopted" if adopted else "export started",
        extra={"object_type": task.object_type, "window": window.to_wire(), "data_integration": name},
    )
    return started


def _submit(
    task: ExportTask,
    data_integration: DataIntegration,
    association: Association | None,
    lease: Lease,
    settings: Settings,
    service: AppIntegrations,
) -> tuple[bool, bool, str]:
    """Start the job unless it already runs for our window.

    Returns (adopted, rerun_of_same_window, association id).
    """
    if association is None:
        if lease.submitted_at is not None:
            raise ExportRejected(f"{data_integration.name}: the job was submitted but no association is listed")
        association_id = service.create_association(data_integration, settings.destination_uri, task.window)
        return False, False, association_id
    if lease.submitted_at is not None:
        return True, False, association.association_id
    same_window = association.window == task.window
    if same_window and association.status in {ExecutionStatus.IN_PROGRESS, ExecutionStatus.COMPLETED}:
        return True, False, association.association_id
    if association.status == ExecutionStatus.IN_PROGRESS:
        raise ExportBusy(
            f"{task.domain_name}/{task.object_type}: a job for another window is still running "
            f"({_describe(association.window)}); jobs cannot be cancelled, waiting for it to finish"
        )
    try:
        service.update_association(data_integration, association.association_id, task.window)
    except ExportRejected:
        # The service may refuse an update while a job runs (its List can lag behind).
        again = service.find_association(data_integration)
        if again is not None and again.status == ExecutionStatus.IN_PROGRESS:
            raise ExportBusy(
                f"{task.domain_name}/{task.object_type}: the service reports a job still running "
                f"({_describe(again.window)})"
            ) from None
        raise
    return False, same_window, association.association_id


def _describe(window: ExportWindow | None) -> str:
    return f"{render_utc(window.start)}..{render_utc(window.end)}" if window else "unknown window"


def check_export(started: StartedExport, settings: Settings, service: AppIntegrations) -> CheckedExport:
    """Read the job's status after one wait; decide the next wait, or time out.

    A status counts only when the association reports our window: just after an update, List
    can still show the previous job. Elapsed time is the sum of the waits (the state machine's clock).
    """
    waited = started.poll.waited_seconds + started.poll.wait_seconds
    attempt = started.poll.attempt + 1
    association = service.find_association(
        DataIntegration(name=started.data_integration_name, id="", arn=started.data_integration_arn)
    )
    status = ExecutionStatus.IN_PROGRESS
    message: str | None = None
    if association is not None and association.window == started.window and association.status:
        status = ExecutionStatus(association.status)
        message = association.status_message
        if (
            started.rerun_of_same_window
            and status != ExecutionStatus.IN_PROGRESS
            and waited < settings.status_grace_seconds
        ):
            # Re-running a window: a terminal status this early may be the previous job's.
            status, message = ExecutionStatus.IN_PROGRESS, None
    if status == ExecutionStatus.IN_PROGRESS and waited >= settings.export_timeout_hours * 3600:
        status = ExecutionStatus.TIMED_OUT
        message = (
            f"the export job did not finish within {settings.export_timeout_hours:g} hours "
            "(it cannot be cancelled; the watermark stays, the next run covers this window again)"
        )
    return CheckedExport(
        **started.model_dump(exclude={"poll", "status", "status_message"}),
        poll=PollState(attempt=attempt, wait_seconds=settings.poll_wait(attempt), waited_seconds=waited),
        status=status,
        status_message=message,
    )
