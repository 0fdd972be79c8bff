"""After a job: index its files, write the manifest, record the run, then advance the watermark.

The order is the guarantee: the watermark moves only after the files are listed and the run is
recorded, and only from the window's start to its end (no gap, no double advance). A failure
records the run and leaves the watermark, so the next run covers the window again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cpexport.clients.s3 import ExportedFile
from cpexport.clients.state_table import StateTable
from cpexport.config import Settings
from cpexport.errors import WatermarkConflict
from cpexport.models import CheckedExport, ExportResult, ExportStatus, ExportWindow, FailedExport, render_utc
from cpexport.observability import logger
from cpexport.paths import domain_root, export_folder, manifest_key, render_stamp

# The job's request timestamp is taken by the service a moment after our lease: look a little
# earlier than the lease so clock skew cannot hide the job's folder.
REQUEST_TIME_SKEW = timedelta(minutes=5)


class Bucket(Protocol):
    def list_folders(self, prefix: str, start_after: str | None = None) -> Iterable[str]: ...
    def list_files(self, prefix: str) -> Iterable[ExportedFile]: ...
    def count_lines(self, key: str) -> int: ...
    def put_json(self, key: str, document: Any, kms_key_arn: str | None = None) -> None: ...


@dataclass(frozen=True)
class JobFiles:
    request_stamp: str
    files: list[ExportedFile]


def find_job_files(bucket: Bucket, settings: Settings, export: CheckedExport) -> JobFiles | None:
    """The job's files: the newest request folder since the job was requested that holds our window.

    An earlier failed job of the same window may have left files in an older request folder:
    they are not part of this job.
    """
    root = domain_root(settings.export_prefix, settings.account_id, export.domain_name)
    start_after = f"{root}{render_stamp(export.requested_at - REQUEST_TIME_SKEW)}"
    found: JobFiles | None = None
    for folder in bucket.list_folders(root, start_after=start_after):
        stamp = folder[len(root) :].rstrip("/")
        files = list(bucket.list_files(export_folder(root, stamp, export.window, export.object_type)))
        if files:
            found = JobFiles(request_stamp=stamp, files=files)
    return found


def index_export(
    export: CheckedExport, settings: Settings, bucket: Bucket, state: StateTable, now: datetime | None = None
) -> ExportResult:
    """Index a COMPLETED job: manifest, run record, then the watermark."""
    now = now or datetime.now(UTC)
    job = find_job_files(bucket, settings, export)
    files = job.files if job else []
    records = sum(bucket.count_lines(file.key) for file in files) if settings.count_records else None
    size = sum(file.size for file in files)
    root = domain_root(settings.export_prefix, settings.account_id, export.domain_name)
    stamp = job.request_stamp if job else render_stamp(export.requested_at)
    key = manifest_key(root, stamp, export.window, export.object_type)
    manifest = {
        "domainName": export.domain_name,
        "objectType": export.object_type,
        "window": export.window.to_wire(),
        "requestedAt": render_utc(export.requested_at),
        "completedAt": render_utc(now),
        "executionArn": export.execution_arn,
        "correlationId": export.correlation_id,
        "dataIntegrationArn": export.data_integration_arn,
        "fileCount": len(files),
        "recordCount": records,
        "bytes": size,
        "files": [{"key": f.key, "size": f.size, "etag": f.etag} for f in files],
    }
    bucket.put_json(key, manifest, kms_key_arn=settings.kms_key_arn)
    state.put_run(
        export.domain_name,
        export.object_type,
        _run_item(export.window, "SUCCEEDED", now, export.execution_arn, export.correlation_id)
        | {
            "files": len(files),
            "records": records,
            "bytes": size,
            "manifestKey": key,
            "backfill": export.backfill,
        },
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
    )


def _advance(export: CheckedExport, settings: Settings, state: StateTable, now: datetime) -> datetime | None:
    if state.advance_watermark(export.domain_name, export.object_type, export.window, settings.initial_start_time, now):
        return export.window.end
    current = state.get_watermark(export.domain_name, export.object_type)
    if export.backfill or (current is not None and current >= export.window.end):
        # A backfill never moves the watermark backward; a re-indexed window was already counted.
        return current
    raise WatermarkConflict(
        f"{export.domain_name}/{export.object_type}: exported {render_utc(export.window.start)}.."
        f"{render_utc(export.window.end)} but the watermark is "
        f"{render_utc(current) if current else 'unset'}: it was not advanced (no data is lost; "
        "the next run exports from the current watermark)"
    )


def record_failure(failed: FailedExport, state: StateTable, now: datetime | None = None) -> ExportResult:
    """Record a failed or timed-out export; the watermark stays where it is."""
    now = now or datetime.now(UTC)
    timed_out = failed.status == "TIMED_OUT"
    message = failed.status_message or (failed.error.message if failed.error else None) or "the export failed"
    if failed.error and failed.error.Error not in message:
        message = f"{failed.error.Error}: {message}"
    state.put_run(
        failed.domain_name,
        failed.object_type,
        _run_item(
            failed.window,
            "TIMED_OUT" if timed_out else "FAILED",
            now,
            failed.execution_arn,
            failed.correlation_id,
        )
        | {"message": message[:2000], "backfill": failed.backfill},
    )
    # A timed-out job may still run (jobs cannot be cancelled): the next start sees it IN_PROGRESS
    # in the service's status and waits, so the lease is not needed to hold it back.
    state.release_lease(failed.domain_name, failed.object_type, failed.window)
    logger.warning("export failed", extra={"object_type": failed.object_type, "reason": message})
    return ExportResult(
        domain_name=failed.domain_name,
        object_type=failed.object_type,
        window=failed.window,
        status=ExportStatus.TIMED_OUT if timed_out else ExportStatus.FAILED,
        message=message,
        watermark=state.get_watermark(failed.domain_name, failed.object_type),
    )


def _run_item(
    window: ExportWindow, status: str, now: datetime, execution_arn: str, correlation_id: str
) -> dict[str, Any]:
    return {
        "windowStart": render_utc(window.start),
        "windowEnd": render_utc(window.end),
        "status": status,
        "recordedAt": render_utc(now),
        "executionArn": execution_arn,
        "correlationId": correlation_id,
    }
