"""Start an export job and check on it: one data integration and one association per object type.

Jobs cannot be cancelled and only the last job's status is visible, so the rules are:
- at most one job per object type at a time, guarded by the LEASE item, which is held until the
  service shows that job ended (a job the pipeline stopped waiting for keeps it);
- every job gets a window no other job of the object type ever had (the JOB ledger): a status, or
  an S3 folder `{start}-{end}`, that names a window then names exactly one job. A window already
  used is shifted by a second (a scheduled window ends a second earlier, a backfill starts a
  second earlier), which keeps scheduled windows tiling time;
- a job of the same request (another execution of the same tick, or our own retry) is adopted,
  never started twice; a job of another request makes us wait (ExportBusy).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from cpexport.clients.appintegrations import SOURCE_URI, AppIntegrations, Association, DataIntegration
from cpexport.clients.state_table import Job, JobState, Lease, StateTable
from cpexport.config import Settings
from cpexport.errors import (
    DataIntegrationConflict,
    ExportBusy,
    ExportQuotaExceeded,
    ExportRejected,
    TransientServiceError,
)
from cpexport.models import (
    CheckedExport,
    ExecutionStatus,
    ExportTask,
    ExportWindow,
    PollingExport,
    PollState,
    StartedExport,
    render_utc,
)
from cpexport.observability import logger
from cpexport.polling import PastJob, Prediction, predict

_NAME_MAX = 255
_SEPARATOR = "."  # never part of a stack, domain or object type name: the joined name is injective

# Two wall-clock rules, in Settings (defaults 20 and 5 minutes): a lease taken but never marked
# submitted belongs to an execution that is starting the job right now, or that died doing so; past
# `unsubmitted_lease_ttl_seconds` (well over a Lambda's 15-minute limit) it is taken over. After
# Create/Update answered with an error that may hide a success (5xx, throttling, a dropped
# connection), the listing gets `ambiguous_submit_grace_seconds` to show the job before another is tried.
# How far a used window may be shifted (in seconds) before giving up.
MAX_WINDOW_SHIFT_SECONDS = 600
TERMINAL = {ExecutionStatus.COMPLETED.value, ExecutionStatus.FAILED.value}
# Ledger states of a job that may still be adopted (not yet reported by anyone).
OPEN_JOB_STATES = {JobState.SUBMITTING, JobState.SUBMITTED}


def data_integration_name(stack_name: str, domain_name: str, object_type: str) -> str:
    """The deterministic, injective name of an object type's data integration.

    Stack names, domains and object types never contain `.`, so `{stack}.{domain}.{objectType}`
    names one triple only. A name over 255 characters keeps a prefix and a digest of the whole,
    after a third `.`, so it cannot collide with an untruncated name either.
    """
    name = _SEPARATOR.join((stack_name, domain_name, object_type))
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: _NAME_MAX - len(digest) - 1]}{_SEPARATOR}{digest}"


class NothingToExport(Exception):
    """Raised internally when another execution already exported this window."""


def _current_window(task: ExportTask, watermark: datetime | None) -> ExportWindow:
    """A scheduled window never re-exports what another execution finished meanwhile."""
    if task.backfill or watermark is None or watermark <= task.window.start:
        return task.window
    if watermark >= task.window.end:
        raise NothingToExport(f"the watermark ({render_utc(watermark)}) already covers this window")
    return ExportWindow(start=watermark, end=task.window.end)


def _shifted(window: ExportWindow, seconds: int, backfill: bool) -> ExportWindow | None:
    """The window moved by `seconds` so it differs from one already used (None if nothing is left)."""
    if backfill:
        return ExportWindow(start=window.start - timedelta(seconds=seconds), end=window.end)
    end = window.end - timedelta(seconds=seconds)
    return ExportWindow(start=window.start, end=end) if end > window.start else None


def unused_window(task: ExportTask, window: ExportWindow, state: StateTable) -> ExportWindow:
    """`window`, or the nearest shift of it that no job of this object type ever had."""
    for shift in range(MAX_WINDOW_SHIFT_SECONDS + 1):
        candidate = _shifted(window, shift, task.backfill) if shift else window
        if candidate is None:
            break
        if state.get_job(task.domain_name, task.object_type, candidate) is None:
            return candidate
    raise ExportRejected(
        f"{task.domain_name}/{task.object_type}: {_describe(window)} and its shifts by up to "
        f"{MAX_WINDOW_SHIFT_SECONDS} s were all exported before; refusing to reuse a window"
    )


def verified_data_integration(task: ExportTask, settings: Settings, service: AppIntegrations) -> DataIntegration:
    """The object type's data integration, created the first time; an existing one must be ours.

    Reusing one that exports another domain or object type, with another key, would adopt its jobs
    and index nothing, forever: that is refused with an alert naming the conflict.
    """
    name = data_integration_name(settings.stack_name, task.domain_name, task.object_type)
    found = service.ensure_data_integration(
        name,
        settings.kms_key_arn,
        task.domain_name,
        task.object_type,
        description=f"Customer Profiles bulk export of {task.domain_name}/{task.object_type} ({settings.stack_name})",
    )
    problems = []
    if found.domain_names and found.domain_names != (task.domain_name,):
        problems.append(f"domain {', '.join(found.domain_names)} (expected {task.domain_name})")
    if found.object_types and found.object_types != (task.object_type,):
        problems.append(f"object type {', '.join(found.object_types)} (expected {task.object_type})")
    if found.kms_key and found.kms_key != settings.kms_key_arn:
        problems.append(f"KMS key {found.kms_key} (expected {settings.kms_key_arn}; a key cannot be changed)")
    if found.source_uri and found.source_uri != SOURCE_URI:
        problems.append(f"source {found.source_uri} (expected {SOURCE_URI})")
    if problems:
        raise DataIntegrationConflict(
            f"data integration {name} ({found.arn}) exists but exports {'; '.join(problems)}. It is not reused; "
            "nothing was exported. Rename the stack, or delete that data integration if it has no association"
        )
    return found


def _verify_destination(association: Association, settings: Settings, data_integration: DataIntegration) -> None:
    if association.destination_uri and association.destination_uri.rstrip("/") != settings.destination_uri:
        raise DataIntegrationConflict(
            f"data integration {data_integration.name} is associated with {association.destination_uri}, not "
            f"{settings.destination_uri} (ExportBucketName/ExportPrefix changed?); an association's destination "
            "cannot change. Nothing was exported"
        )


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
    data_integration = verified_data_integration(task, settings, service)
    association = service.find_association(data_integration)
    if association is not None:
        _verify_destination(association, settings, data_integration)

    try:
        return _start(task, window, data_integration, association, settings, state, service, now)
    except NothingToExport as reason:
        logger.info("export already done by another execution", extra={"reason": str(reason)})
        return None


def _start(
    task: ExportTask,
    window: ExportWindow,
    data_integration: DataIntegration,
    association: Association | None,
    settings: Settings,
    state: StateTable,
    service: AppIntegrations,
    now: datetime,
) -> StartedExport:
    lease = state.get_lease(task.domain_name, task.object_type)
    if lease is not None:
        lease_job = state.get_job(task.domain_name, task.object_type, lease.window)
        same_request = lease.window == window or lease.request_key == task.request_key
        if same_request and (lease_job is None or lease_job.state in OPEN_JOB_STATES):
            return _resume(task, lease, lease_job, data_integration, association, settings, state, service, now)
        if not _job_has_ended(lease, association, now, timedelta(seconds=settings.unsubmitted_lease_ttl_seconds)):
            raise ExportBusy(
                f"{task.domain_name}/{task.object_type}: the job of {_describe(lease.window)} (execution "
                f"{lease.execution_arn}, since {render_utc(lease.acquired_at)}) has not ended; jobs cannot be "
                "cancelled, waiting for it to finish"
            )
        if _holder_may_still_record(lease, lease_job, now, settings):
            raise ExportBusy(
                f"{task.domain_name}/{task.object_type}: the job of {_describe(lease.window)} ended, and execution "
                f"{lease.execution_arn} has not recorded it yet (it indexes the job and moves the watermark); "
                "waiting for it, so that the next window starts where that one ends"
            )
    return _submit(task, window, lease, data_integration, association, settings, state, service, now)


def _holder_may_still_record(lease: Lease, job: Job | None, now: datetime, settings: Settings) -> bool:
    """Whether the execution that submitted the leased job may still be indexing it.

    Until it records the job (COMPLETED, FAILED, TIMED_OUT, ABANDONED), the watermark has not moved past
    the job's window: a window planned from it now would overlap that one. An execution that never
    records it (stopped by hand) is given up on after `holder_deadline_seconds` from the submission.
    """
    if job is None or job.state != JobState.SUBMITTED or job.execution_arn != lease.execution_arn:
        return False
    submitted = lease.submitted_at or job.submitted_at
    return (now - submitted).total_seconds() < settings.holder_deadline_seconds


def _job_has_ended(lease: Lease, association: Association | None, now: datetime, ttl: timedelta) -> bool:
    """Whether the job holding `lease` is over, as far as the service shows."""
    if association is not None and association.window == lease.window and association.status:
        return association.status in TERMINAL
    if lease.submitted_at is None:
        # Never marked submitted and not shown by the service: a submitter that died early.
        return now - lease.acquired_at >= ttl
    # Submitted, but the listing shows another (older) job: it is stale; wait for it to catch up.
    return False


def _resume(
    task: ExportTask,
    lease: Lease,
    job: Job | None,
    data_integration: DataIntegration,
    association: Association | None,
    settings: Settings,
    state: StateTable,
    service: AppIntegrations,
    now: datetime,
) -> StartedExport:
    """The lease holds this request's job (or this window's): adopt it, or finish submitting it."""
    window = lease.window
    # Listed with our window, the job exists, even while its status is left out (just after a Create).
    shown = association is not None and association.window == window
    if lease.submitted_at is not None or shown:
        if lease.submitted_at is None and not state.mark_submitted(task.domain_name, task.object_type, window, now):
            raise ExportBusy(f"{task.domain_name}/{task.object_type}: the lease moved while this job was adopted")
        if job is not None and job.state == JobState.SUBMITTING:
            state.set_job_state(task.domain_name, task.object_type, window, JobState.SUBMITTED, now)
        return _adopted(task, window, data_integration, association, job, lease, settings, state)
    ttl = timedelta(seconds=settings.unsubmitted_lease_ttl_seconds)
    grace = timedelta(seconds=settings.ambiguous_submit_grace_seconds)
    if lease.execution_arn != task.execution_arn and now - lease.acquired_at < ttl:
        raise ExportBusy(
            f"{task.domain_name}/{task.object_type}: execution {lease.execution_arn} is starting the export "
            f"of {_describe(window)}"
        )
    if job is not None and job.state == JobState.SUBMITTING and now - job.submitted_at < grace:
        # A submission of this window got an error that may hide a success: give the listing time.
        raise ExportBusy(
            f"{task.domain_name}/{task.object_type}: waiting for the service to show the job of "
            f"{_describe(window)} submitted at {render_utc(job.submitted_at)} (its answer was an error)"
        )
    if job is not None and job.state == JobState.SUBMITTING:
        # What was tried never showed up: the window stays used (its job may yet appear), the next is tried.
        if not state.mark_unconfirmed(task.domain_name, task.object_type, window, now):
            raise ExportBusy(
                f"{task.domain_name}/{task.object_type}: the job of {_describe(window)} was just confirmed"
            )
        logger.warning("submission never confirmed", extra={"window": window.to_wire()})
    return _submit(task, window, lease, data_integration, association, settings, state, service, now)


def _submit(
    task: ExportTask,
    window: ExportWindow,
    lease: Lease | None,
    data_integration: DataIntegration,
    association: Association | None,
    settings: Settings,
    state: StateTable,
    service: AppIntegrations,
    now: datetime,
) -> StartedExport:
    """Take the lease for an unused window, record the job, then Create or Update the association."""
    if association is not None and association.status == ExecutionStatus.IN_PROGRESS:
        raise ExportBusy(
            f"{task.domain_name}/{task.object_type}: the service shows a job still running "
            f"({_describe(association.window)}); jobs cannot be cancelled, waiting for it to finish"
        )
    window = unused_window(task, window, state)
    mine = lease is not None and lease.execution_arn == task.execution_arn and lease.window == window
    if not mine and not state.put_lease(
        task.domain_name, task.object_type, window, task.execution_arn, task.request_key, now, replacing=lease
    ):
        raise ExportBusy(f"{task.domain_name}/{task.object_type}: another execution took the export lease just now")
    if lease is not None and not mine:
        _settle_replaced(task, lease, association, state, now)
    if not task.backfill:
        # Read again under the lease: the watermark read before it may predate the advance of the job
        # whose lease we just replaced (another execution of this request, finishing as we started).
        watermark = state.get_watermark(task.domain_name, task.object_type)
        if watermark is not None and watermark > window.start:
            state.release_lease(task.domain_name, task.object_type, window)
            if watermark >= task.window.end:
                raise NothingToExport(f"the watermark ({render_utc(watermark)}) already covers this window")
            raise ExportBusy(
                f"{task.domain_name}/{task.object_type}: the watermark moved to {render_utc(watermark)} while "
                "this export started; planning again from it"
            )
    if not state.create_job(task.domain_name, task.object_type, window, task.execution_arn, task.request_key, now):
        raise ExportBusy(f"{task.domain_name}/{task.object_type}: another execution is submitting {_describe(window)}")
    try:
        if association is None:
            association_id = service.create_association(data_integration, settings.destination_uri, window)
        else:
            association_id = association.association_id
            service.update_association(data_integration, association_id, window)
    except TransientServiceError:
        raise  # may have taken effect: the ledger keeps SUBMITTING and a retry looks for the job first
    except (ExportRejected, ExportQuotaExceeded) as refused:
        # A definite refusal (botocore does not retry these calls, so it answers this very request):
        # no job runs and no folder or status names the window, so it may be tried again.
        state.forget_job(task.domain_name, task.object_type, window, task.execution_arn)
        if isinstance(refused, ExportRejected):
            again = service.find_association(data_integration)
            if again is not None and again.status == ExecutionStatus.IN_PROGRESS:
                # The service refuses an update while a job runs (its List can lag behind).
                raise ExportBusy(
                    f"{task.domain_name}/{task.object_type}: the service reports a job still running "
                    f"({_describe(again.window)})"
                ) from None
        raise
    state.mark_submitted(task.domain_name, task.object_type, window, now)
    state.set_job_state(task.domain_name, task.object_type, window, JobState.SUBMITTED, now)
    started = StartedExport(
        **task.model_copy(update={"window": window}).model_dump(),
        data_integration_name=data_integration.name,
        data_integration_arn=data_integration.arn,
        association_id=association_id,
        requested_at=now,
        adopted=False,
        poll=first_poll(task.domain_name, task.object_type, window, settings, state),
        status="SUBMITTED",
    )
    logger.info(
        "export started",
        extra={"object_type": task.object_type, "window": window.to_wire(), "data_integration": data_integration.name},
    )
    return started


def _settle_replaced(
    task: ExportTask, lease: Lease, association: Association | None, state: StateTable, now: datetime
) -> None:
    """Close the ledger item of the job whose lease was just taken over: nobody will ever record it.

    Its execution gave up (a failure that left a job possibly running, a Start that ran out of retries
    after an ambiguous answer) and the job has ended or never showed. Left SUBMITTING or SUBMITTED, the
    ledger would say forever that a job runs. Shown by the service, the job ran: ABANDONED (not indexed
    by anyone; a scheduled window is exported again from the watermark, a backfill's failure was alerted).
    Never shown: UNCONFIRMED, as its own execution would have marked it.
    """
    shown = association is not None and association.window == lease.window and bool(association.status)
    closed = not shown and state.mark_unconfirmed(task.domain_name, task.object_type, lease.window, now)
    if not closed and state.mark_abandoned(task.domain_name, task.object_type, lease.window, now):
        logger.warning("took over the lease of a job nobody follows", extra={"window": lease.window.to_wire()})


def first_poll(
    domain_name: str, object_type: str, window: ExportWindow, settings: Settings, state: StateTable
) -> PollState:
    """The poll loop's start: what recent jobs of this object type predict, and the first wait."""
    history = [
        PastJob(duration_seconds=duration, window_seconds=(past.end - past.start).total_seconds())
        for past, duration in state.recent_durations(domain_name, object_type)
    ]
    prediction = predict(history, (window.end - window.start).total_seconds())
    return PollState(
        attempt=0,
        wait_seconds=settings.poll_wait(0, prediction),
        waited_seconds=0,
        expected_seconds=(round(prediction.shortest), round(prediction.longest)) if prediction else None,
    )


def _prediction(poll: PollState) -> Prediction | None:
    return Prediction(*poll.expected_seconds) if poll.expected_seconds else None


def _adopted(
    task: ExportTask,
    window: ExportWindow,
    data_integration: DataIntegration,
    association: Association | None,
    job: Job | None,
    lease: Lease,
    settings: Settings,
    state: StateTable,
) -> StartedExport:
    association_id = association.association_id if association is not None else ""
    requested_at = job.submitted_at if job is not None else (lease.submitted_at or lease.acquired_at)
    logger.info(
        "export adopted",
        extra={"object_type": task.object_type, "window": window.to_wire(), "data_integration": data_integration.name},
    )
    return StartedExport(
        **task.model_copy(update={"window": window}).model_dump(),
        data_integration_name=data_integration.name,
        data_integration_arn=data_integration.arn,
        association_id=association_id,
        requested_at=requested_at,
        adopted=True,
        poll=first_poll(task.domain_name, task.object_type, window, settings, state),
        status="ADOPTED",
    )


def _describe(window: ExportWindow | None) -> str:
    return f"{render_utc(window.start)}..{render_utc(window.end)}" if window else "unknown window"


def check_export(started: PollingExport, settings: Settings, service: AppIntegrations) -> CheckedExport:
    """Read the job's status after one wait; decide the next wait, or time out.

    A status counts only when the association reports our window: windows are never reused, so
    that status is our job's, whatever the listing showed before (a previous job, a stale read).
    Elapsed time is the sum of the waits (the state machine's clock).
    """
    waited = started.poll.waited_seconds + started.poll.wait_seconds
    attempt = started.poll.attempt + 1
    prediction = _prediction(started.poll)
    association = service.find_association(
        DataIntegration(name=started.data_integration_name, id="", arn=started.data_integration_arn)
    )
    status = ExecutionStatus.IN_PROGRESS
    message: str | None = None
    if association is not None and association.window == started.window and association.status:
        status = ExecutionStatus(association.status)
        message = association.status_message
    if status == ExecutionStatus.IN_PROGRESS and waited >= settings.export_timeout_hours * 3600:
        status = ExecutionStatus.TIMED_OUT
        message = (
            f"the export job did not finish within {settings.export_timeout_hours:g} hours "
            "(it cannot be cancelled; the object type waits for it to end, the watermark stays and the next "
            "run exports this window again)"
        )
    return CheckedExport(
        **started.model_dump(exclude={"poll", "status", "status_message"}),
        poll=started.poll.model_copy(
            update={
                "attempt": attempt,
                "wait_seconds": settings.poll_wait(waited, prediction),
                "waited_seconds": waited,
            }
        ),
        status=status,
        status_message=message,
    )
