"""After a job: find its files, let them settle, write the manifest, record the run, then advance the watermark.

The order is the guarantee: the watermark moves only after the job's files are listed (twice, a
settle period apart, with the same answer), the manifest is written and the run is recorded, and
only from the window's start to its end (no gap, no double advance). A failure records the run and
leaves the watermark, so the next run covers the window again.

A job's files are found by what identifies the job, never by the indexer's own clock: its window
(no two jobs of an object type share one, see `exports`) and the request time the service gave its
folder, searched from the moment the ledger says the job was submitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cpexport.clients.s3 import ExportedFile
from cpexport.clients.state_table import JobState, RunRecorded, StateTable
from cpexport.config import Settings
from cpexport.errors import ExportFilesUnsettled, WatermarkConflict
from cpexport.models import (
    ExecutionStatus,
    ExportResult,
    ExportStatus,
    ExportWindow,
    FailedExport,
    FileListing,
    IndexingExport,
    render_utc,
)
from cpexport.observability import logger
from cpexport.paths import domain_root, export_folder, manifest_key, render_stamp

# The service stamps a job's folder with its own clock when it accepts the request, after the
# ledger recorded the submission; this allows for the two clocks to differ.
REQUEST_CLOCK_SKEW = timedelta(minutes=15)


class Bucket(Protocol):
    def list_folders(self, prefix: str, start_after: str | None = None) -> Iterable[str]: ...
    def list_files(self, prefix: str) -> Iterable[ExportedFile]: ...
    def has_files(self, prefix: str) -> bool: ...
    def count_lines(self, key: str) -> int: ...
    def put_json(self, key: str, document: Any, kms_key_arn: str | None = None) -> None: ...


@dataclass(frozen=True)
class JobFiles:
    """The job's files, and the request folders (`yyyyMMddTHHmmss`) they were found in."""

    request_stamps: list[str]
    files: list[ExportedFile]

    def listing(self) -> FileListing:
        """What a later listing must equal for the files to count as settled."""
        return FileListing(
            request_stamps=self.request_stamps,
            files=len(self.files),
            bytes=sum(f.size for f in self.files),
            last_key=max((f.key for f in self.files), default=None),
        )


def find_job_files(
    bucket: Bucket, root: str, window: ExportWindow, object_type: str, submitted_at: datetime
) -> JobFiles:
    """Every file of the job that exported `window` for `object_type`.

    Request folders are searched from the job's submission on; each is probed for the job's own
    `{start}-{end}/{objectType}/` folder. Windows are unique per object type, so what is found
    belongs to this job (if a submission ever ran twice, both copies are indexed: nothing is lost).
    """
    start_after = f"{root}{render_stamp(submitted_at - REQUEST_CLOCK_SKEW)}"
    stamps: list[str] = []
    files: list[ExportedFile] = []
    for folder in bucket.list_folders(root, start_after=start_after):
        stamp = folder[len(root) :].rstrip("/")
        prefix = export_folder(root, stamp, window, object_type)
        if bucket.has_files(prefix):
            stamps.append(stamp)
            files.extend(bucket.list_files(prefix))
    return JobFiles(request_stamps=stamps, files=sorted(files, key=lambda f: f.key))


def index_export(
    export: IndexingExport, settings: Settings, bucket: Bucket, state: StateTable, now: datetime | None = None
) -> ExportResult | IndexingExport:
    """Index a COMPLETED job once its files have settled; until then, say how long to wait."""
    now = now or datetime.now(UTC)
    root = domain_root(settings.export_prefix, settings.account_id, export.domain_name)
    job = state.get_job(export.domain_name, export.object_type, export.window)
    submitted_at = job.submitted_at if job is not None else export.requested_at
    found = find_job_files(bucket, root, export.window, export.object_type, submitted_at)
    listing = found.listing()
    if export.listing != listing:
        if export.settle_attempt >= settings.index_settle_attempts:
            raise ExportFilesUnsettled(
                f"{export.domain_name}/{export.object_type}: the job's files still changed after "
                f"{export.settle_attempt} listings {settings.index_settle_seconds} s apart "
                f"({listing.files} files now); the window is not indexed and the watermark stays"
            )
        logger.info("files not settled yet", extra={"listing": listing.to_wire(), "attempt": export.settle_attempt})
        return export.model_copy(
            update={
                "listing": listing,
                "settle_attempt": export.settle_attempt + 1,
                "settle_seconds": settings.index_settle_seconds,
                "status": "SETTLING",
            }
        )
    return _index_settled(export, found, root, settings, bucket, state, now)


def _index_settled(
    export: IndexingExport,
    found: JobFiles,
    root: str,
    settings: Settings,
    bucket: Bucket,
    state: StateTable,
    now: datetime,
) -> ExportResult:
    files = found.files
    records = sum(bucket.count_lines(file.key) for file in files) if settings.count_records else None
    size = sum(file.size for file in files)
    stamp = found.request_stamps[0] if found.request_stamps else render_stamp(export.requested_at)
    key = manifest_key(root, stamp, export.window, export.object_type)
    bucket.put_json(
        key,
        {
            "domainName": export.domain_name,
            "objectType": export.object_type,
            "window": export.window.to_wire(),
            "requestedAt": render_utc(export.requested_at),
            "requestStamps": found.request_stamps,
            "completedAt": render_utc(now),
            "executionArn": export.execution_arn,
            "correlationId": export.correlation_id,
            "dataIntegrationArn": export.data_integration_arn,
            "backfill": export.backfill,
            "fileCount": len(files),
            "recordCount": records,
            "bytes": size,
            "files": [{"key": f.key, "size": f.size, "etag": f.etag} for f in files],
        },
        kms_key_arn=settings.kms_key_arn,
    )
    recorded = state.put_run(
        export.domain_name,
        export.object_type,
        export.window,
        export.request_key,
        _run_item(export.execution_arn, export.correlation_id, "SUCCEEDED", now)
        | {
            "files": len(files),
            "records": records,
            "bytes": size,
            "manifestKey": key,
            "backfill": export.backfill,
            "requestedAt": render_utc(export.requested_at),
        },
    )
    state.set_job_state(
        export.domain_name,
        export.object_type,
        export.window,
        JobState.COMPLETED,
        now,
        found.request_stamps,
        # What the next poll schedule learns from: only a job timed from its own submission.
        duration_seconds=None if export.adopted else export.poll.waited_seconds,
    )
    watermark = _advance(export, settings, state, now)
    state.release_lease(export.domain_name, export.object_type, export.window)
    logger.info(
        "export indexed",
        extra={"object_type": export.object_type, "files": len(files), "records": records, "bytes": size},
    )
    return ExportResult(
        domain_name=export.domain_name,
        object_type=export.object_type,
        window=export.window,
        status=ExportStatus.SUCCEEDED,
        files=len(files),
        records=records or 0,
        bytes=size,
        manifest_key=key,
        watermark=watermark,
        duration_seconds=int((now - export.requested_at).total_seconds()),
        backfill=export.backfill,
        **_reporting(recorded, export.execution_arn),
    )


def _reporting(recorded: RunRecorded, execution_arn: str) -> dict[str, Any]:
    """Who reports a job: the execution that recorded it (a retry of that execution included)."""
    reported = recorded.written or recorded.execution_arn == execution_arn
    return {"reported": reported, "reported_by": None if reported else recorded.execution_arn}


def _advance(export: IndexingExport, settings: Settings, state: StateTable, now: datetime) -> datetime | None:
    if export.backfill:
        return state.get_watermark(export.domain_name, export.object_type)  # a backfill never moves it
    if state.advance_watermark(export.domain_name, export.object_type, export.window, settings.initial_start_time, now):
        return export.window.end
    current = state.get_watermark(export.domain_name, export.object_type)
    if current is not None and current >= export.window.end:
        return current  # a retry, or another execution of the same request, already advanced it
    raise WatermarkConflict(
        f"{export.domain_name}/{export.object_type}: exported {render_utc(export.window.start)}.."
        f"{render_utc(export.window.end)} but the watermark is "
        f"{render_utc(current) if current else 'unset'}: it was not advanced (no data is lost; "
        "the next run exports from the current watermark)"
    )


def record_failure(failed: FailedExport, state: StateTable, now: datetime | None = None) -> ExportResult:
    """Record a failed or timed-out export; the watermark stays where it is.

    The lease follows what is known of the job: a job the service reported FAILED (or one that
    never started) frees the object type; a job the pipeline stopped waiting for, or whose state is
    unknown, keeps it until the service shows the job ended (jobs cannot be cancelled).
    """
    now = now or datetime.now(UTC)
    timed_out = failed.status == ExecutionStatus.TIMED_OUT.value
    message = failed.status_message or (failed.error.message if failed.error else None) or "the export failed"
    if failed.error and failed.error.Error not in message:
        message = f"{failed.error.Error}: {message}"
    status = "TIMED_OUT" if timed_out else "FAILED"
    recorded = state.put_run(
        failed.domain_name,
        failed.object_type,
        failed.window,
        failed.request_key,
        _run_item(failed.execution_arn, failed.correlation_id, status, now)
        | {"message": message[:2000], "backfill": failed.backfill},
    )
    _settle_lease(failed, state, now, timed_out)
    logger.warning("export failed", extra={"object_type": failed.object_type, "reason": message})
    return ExportResult(
        domain_name=failed.domain_name,
        object_type=failed.object_type,
        window=failed.window,
        status=ExportStatus.TIMED_OUT if timed_out else ExportStatus.FAILED,
        message=message,
        watermark=state.get_watermark(failed.domain_name, failed.object_type),
        backfill=failed.backfill,
        **_reporting(recorded, failed.execution_arn),
    )


def _settle_lease(failed: FailedExport, state: StateTable, now: datetime, timed_out: bool) -> None:
    job = state.get_job(failed.domain_name, failed.object_type, failed.window)
    if timed_out:
        state.set_job_state(failed.domain_name, failed.object_type, failed.window, JobState.TIMED_OUT, now)
        state.mark_timed_out(failed.domain_name, failed.object_type, failed.window, now)
        return
    if failed.status == ExecutionStatus.FAILED.value:
        state.set_job_state(failed.domain_name, failed.object_type, failed.window, JobState.FAILED, now)
        state.release_lease(failed.domain_name, failed.object_type, failed.window)
        return
    if failed.status in {ExecutionStatus.COMPLETED.value, "SETTLING"}:
        # The job ended but could not be indexed: its window is exported again from the watermark.
        state.set_job_state(failed.domain_name, failed.object_type, failed.window, JobState.FAILED, now)
        state.release_lease(failed.domain_name, failed.object_type, failed.window)
        return
    # An error of ours before or while polling: free the object type only when no job runs.
    if job is None or job.state in {JobState.COMPLETED, JobState.FAILED}:
        lease = state.get_lease(failed.domain_name, failed.object_type)
        if lease is not None and lease.execution_arn == failed.execution_arn:
            state.release_lease(failed.domain_name, failed.object_type, failed.window)


def _run_item(execution_arn: str, correlation_id: str, status: str, now: datetime) -> dict[str, Any]:
    return {
        "status": status,
        "recordedAt": render_utc(now),
        "executionArn": execution_arn,
        "correlationId": correlation_id,
    }
