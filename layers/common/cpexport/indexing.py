"""After a job: find its files, let them settle, count them, write the manifest, record the run, then
advance the watermark.

The order is the guarantee: the watermark moves only after the job's files are listed (twice, a
settle period apart, with the same answer), counted and written to the manifest, registered as a
partition of its object type's Glue table (so it answers queries before anyone is told), and the run
is recorded, and only from the window's start to its end (no gap, no double advance). A failure
records the run and leaves the watermark, so the next run covers the window again; a job that
failed or never settled is never registered, so no partition points at a partial export.

A job's files are found by what identifies the job, never by the indexer's own clock: its window
(no two jobs of an object type share one, see `exports`) and the request time the service gave its
folder, searched from the moment the ledger says the job was submitted.

Scale: nothing here holds a job's file list in memory. Listings are streamed into a fingerprint;
a large job's records are counted by a Distributed Map (one child per batch of files, see
`count_batch`), whose children write manifest parts that `finish` streams into one JSON Lines
manifest (a multipart upload), with a compact summary beside it.

A large job's folder is listed twice, not three times: the Distributed Map's ItemReader lists it
anyway, so its listing is the settle's second one. When a listing differs from the one before and
the job will be counted by the Map, `settle` hands the state machine the counting plan with its
SETTLING answer; after the settle wait the Map lists and counts, and `settle_counted` compares the
children's totals (files, bytes, last key) with the listing of a settle period before: equal, the
files settled and the index is finished from those very counts; different, the children's totals
are the new listing and the Map counts again after the next wait (until `index_settle_attempts`
runs out: `ExportFilesUnsettled`). The guarantee is the same as two listings by `settle`: nothing
the service wrote before the second of two agreeing listings, a settle period apart, is left out.
Parts written by a superseded count are never read: `finish` streams only the parts the latest
count names. They stay in the job's `.parts/` folder (the Index role may not delete objects); a
part of the latest count that has the same name (same first key) was overwritten by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from cpexport.catalog import ExportPartition, database_name
from cpexport.clients.s3 import ExportedFile
from cpexport.clients.state_table import JobState, RunRecorded, StateTable, run_sort_key
from cpexport.config import Settings
from cpexport.current_state import confirmation_moment, update_for_export
from cpexport.errors import ExportFilesUnsettled, WatermarkConflict
from cpexport.models import (
    BatchCount,
    CatalogPartition,
    CountBatchInput,
    Counting,
    CurrentStateStatements,
    CurrentStateUpdate,
    ExecutionStatus,
    ExportResult,
    ExportStatus,
    ExportTask,
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
# Files read at once while counting records (S3 reads are I/O bound).
READ_THREADS = 8
# A Distributed Map hands each child at most this many files (its input stays far below 256 KB).
MAX_BATCH = 1000
MIN_BATCH = 200
# ...and the parent keeps at most this many batch answers in its state.
MAX_BATCHES = 1000
MANIFEST_FORMAT = "cpexport-manifest/2"


class Bucket(Protocol):
    bucket: str

    def list_folders(self, prefix: str, start_after: str | None = None) -> Iterable[str]: ...
    def list_files(self, prefix: str) -> Iterable[ExportedFile]: ...
    def has_files(self, prefix: str) -> bool: ...
    def count_lines(self, key: str) -> int: ...
    def read_lines(self, key: str) -> Iterable[bytes]: ...
    def write_lines(self, key: str, lines: Iterable[bytes], kms_key_arn: str | None = None) -> int: ...
    def put_json(self, key: str, document: Any, kms_key_arn: str | None = None) -> None: ...


class PartitionRegistry(Protocol):
    def register_export(
        self, database: str, bucket: str, manifest_key: str, manifest: Mapping[str, Any]
    ) -> list[ExportPartition]: ...


@dataclass(frozen=True)
class Catalogued:
    """Where an indexed export answers queries: its database, table and partitions."""

    database: str
    table: str
    partitions: list[CatalogPartition]


def find_request_stamps(
    bucket: Bucket, root: str, window: ExportWindow, object_type: str, submitted_at: datetime
) -> list[str]:
    """The request folders (`yyyyMMddTHHmmss`) that hold files of the job that exported `window`.

    Request folders are searched from the job's submission on; each is probed for the job's own
    `{start}-{end}/{objectType}/` folder. Windows are unique per object type, so what is found
    belongs to this job (if a submission ever ran twice, both copies are indexed: nothing is lost).
    """
    start_after = f"{root}{render_stamp(submitted_at - REQUEST_CLOCK_SKEW)}"
    stamps = []
    for folder in bucket.list_folders(root, start_after=start_after):
        stamp = folder[len(root) :].rstrip("/")
        if bucket.has_files(export_folder(root, stamp, window, object_type)):
            stamps.append(stamp)
    return stamps


def job_files(
    bucket: Bucket, root: str, stamps: list[str], window: ExportWindow, object_type: str
) -> Iterator[ExportedFile]:
    """Every file of the job, folder after folder, in key order, streamed."""
    for stamp in stamps:
        yield from bucket.list_files(export_folder(root, stamp, window, object_type))


def fingerprint(stamps: list[str], files: Iterable[ExportedFile]) -> FileListing:
    """Count, size and last key of a streamed listing: equal fingerprints a settle period apart = settled."""
    count, size, last = 0, 0, None
    for file in files:
        count, size = count + 1, size + file.size
        last = file.key if last is None or file.key > last else last
    return FileListing(request_stamps=stamps, files=count, bytes=size, last_key=last)


def index_export(
    export: IndexingExport,
    settings: Settings,
    bucket: Bucket,
    state: StateTable,
    catalog: PartitionRegistry,
    now: datetime | None = None,
) -> ExportResult | IndexingExport:
    """One step of indexing a COMPLETED job: settle its files, compare a Distributed Map's count with the
    last listing (SETTLING with `counted`), or (READY) finish the index."""
    now = now or datetime.now(UTC)
    if export.status == "READY":
        return finish(export, settings, bucket, state, catalog, now)
    if export.counted is not None:
        return settle_counted(export, settings, bucket, state, catalog, now)
    return settle(export, settings, bucket, state)


def settle(export: IndexingExport, settings: Settings, bucket: Bucket, state: StateTable) -> IndexingExport:
    """List the job's files; until two listings a settle period apart agree, say how long to wait.

    A SETTLING answer for a job the Distributed Map will count carries its counting plan: the state
    machine then lets the Map's listing be the next one (see `settle_counted`).
    """
    root = domain_root(settings.export_prefix, settings.account_id, export.domain_name)
    stamps = _request_stamps(export, root, bucket, state)
    listing = fingerprint(stamps, job_files(bucket, root, stamps, export.window, export.object_type))
    if export.listing != listing:
        return _not_settled(export, listing, root, settings)
    return export.model_copy(update={"status": "READY", "counting": counting_plan(export, listing, root, settings)})


def settle_counted(
    export: IndexingExport,
    settings: Settings,
    bucket: Bucket,
    state: StateTable,
    catalog: PartitionRegistry,
    now: datetime,
) -> ExportResult | IndexingExport:
    """The Distributed Map listed the job's folder a settle period after the last listing and counted it:
    the same totals, the files settled and the index is finished from that count; other totals are the
    new listing to compare with after the next wait (another count).

    The Map lists one request folder only: a request folder that appeared since (a job written twice)
    is looked for, and if there is one the job is listed by folders again (and counted inline).
    """
    counting, listing, counted = export.counting, export.listing, export.counted
    if counting is None or listing is None or counted is None or counting.mode != "distributed":
        raise ValueError("settle_counted needs a listing, a distributed counting plan and the Map's counts")
    root = domain_root(settings.export_prefix, settings.account_id, export.domain_name)
    now_listed = counted_listing(listing.request_stamps, counting, counted)
    stamps = _request_stamps(export, root, bucket, state)
    if stamps != listing.request_stamps:
        now_listed = fingerprint(stamps, job_files(bucket, root, stamps, export.window, export.object_type))
    if now_listed != listing:
        return _not_settled(export, now_listed, root, settings)
    logger.info("counted files match the listing a settle period before", extra={"listing": listing.to_wire()})
    return finish(export.model_copy(update={"status": "READY"}), settings, bucket, state, catalog, now)


def counted_listing(stamps: list[str], counting: Counting, counted: list[BatchCount]) -> FileListing:
    """The listing the Distributed Map's ItemReader made, as its children's totals tell it."""
    last_files = [batch.last_file for batch in counted if batch.last_file is not None]
    return FileListing(
        request_stamps=stamps,
        files=sum(batch.files for batch in counted),
        bytes=sum(batch.bytes for batch in counted),
        last_key=f"{counting.prefix}{max(last_files)}" if last_files else None,
    )


def _request_stamps(export: IndexingExport, root: str, bucket: Bucket, state: StateTable) -> list[str]:
    job = state.get_job(export.domain_name, export.object_type, export.window)
    submitted_at = job.submitted_at if job is not None else export.requested_at
    return find_request_stamps(bucket, root, export.window, export.object_type, submitted_at)


def _not_settled(export: IndexingExport, listing: FileListing, root: str, settings: Settings) -> IndexingExport:
    """SETTLING with `listing` to compare with after the wait, or `ExportFilesUnsettled` once attempts run out.

    The plan goes along when the Distributed Map will count the job: its listing is then the next one.
    """
    if export.settle_attempt >= settings.index_settle_attempts:
        raise ExportFilesUnsettled(
            f"{export.domain_name}/{export.object_type}: the job's files still changed after "
            f"{export.settle_attempt} listings {settings.index_settle_seconds} s apart "
            f"({listing.files} files now); the window is not indexed and the watermark stays"
        )
    plan = counting_plan(export, listing, root, settings)
    logger.info(
        "files not settled yet",
        extra={"listing": listing.to_wire(), "attempt": export.settle_attempt, "next_listing": plan.mode},
    )
    return export.model_copy(
        update={
            "listing": listing,
            "settle_attempt": export.settle_attempt + 1,
            "settle_seconds": settings.index_settle_seconds,
            "status": "SETTLING",
            "counting": plan if plan.mode == "distributed" else None,
            "counted": None,
        }
    )


def counting_plan(export: IndexingExport, listing: FileListing, root: str, settings: Settings) -> Counting:
    """Count here, in a Distributed Map, or not at all (record counting switched off)."""
    stamp = listing.request_stamps[0] if listing.request_stamps else render_stamp(export.requested_at)
    base = manifest_key(root, stamp, export.window, export.object_type).removesuffix(".json")
    mode: Literal["inline", "distributed", "listing"]
    if not settings.count_records:
        mode = "listing"
    elif listing.files <= settings.inline_index_max_files or len(listing.request_stamps) != 1:
        # Small jobs are faster here; a job written twice (two request folders) is rare: counted here.
        mode = "inline"
    else:
        mode = "distributed"
    batch = min(MAX_BATCH, max(MIN_BATCH, -(-listing.files // MAX_BATCHES)))
    return Counting(
        mode=mode,
        bucket=settings.export_bucket_name,
        prefix=export_folder(root, stamp, export.window, export.object_type),
        parts_prefix=f"{base}.parts/",
        batch_size=batch,
    )


def count_files(bucket: Bucket, files: Iterable[ExportedFile], count_records: bool) -> Iterator[dict[str, Any]]:
    """Manifest lines (`key`, `size`, `etag`, `records`) in listing order, files read `READ_THREADS` at a time."""
    if not count_records:
        for file in files:
            yield {"key": file.key, "size": file.size, "etag": file.etag, "records": None}
        return
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        window: list[tuple[ExportedFile, Any]] = []
        for file in files:
            window.append((file, pool.submit(bucket.count_lines, file.key)))
            if len(window) >= READ_THREADS * 4:
                done, future = window.pop(0)
                yield {"key": done.key, "size": done.size, "etag": done.etag, "records": future.result()}
        for done, future in window:
            yield {"key": done.key, "size": done.size, "etag": done.etag, "records": future.result()}


def count_batch(batch: CountBatchInput, bucket: Bucket, kms_key_arn: str | None) -> BatchCount:
    """A Distributed Map child: count the records of its files and write their manifest part.

    The part's name derives from the batch's first key, so a retried child overwrites its own part.
    """
    files = [
        ExportedFile(key=str(item["Key"]), size=int(item["Size"]), etag=_listed_etag(item)) for item in batch.items
    ]
    # The batch's last key, after the folder's prefix (the parent's state holds up to 1,000 of them).
    last_file = max(file.key for file in files).removeprefix(batch.batch_input.prefix)
    totals = {"files": 0, "bytes": 0, "records": 0}

    def lines() -> Iterator[bytes]:
        for entry in count_files(bucket, files, count_records=True):
            totals["files"] += 1
            totals["bytes"] += entry["size"]
            totals["records"] += entry["records"]
            yield json.dumps(entry, separators=(",", ":")).encode()

    part = f"{batch.batch_input.parts_prefix}{hashlib.sha256(files[0].key.encode()).hexdigest()[:20]}.jsonl"
    bucket.write_lines(part, lines(), kms_key_arn=kms_key_arn)
    return BatchCount(part=part, last_file=last_file, **totals)


def _listed_etag(item: dict[str, Any]) -> str:
    # The ItemReader hands S3's ETag as `Etag` (AWS's documented item shape); `ETag` is S3's own name.
    return str(item.get("Etag", item.get("ETag", ""))).strip('"')


def finish(
    export: IndexingExport,
    settings: Settings,
    bucket: Bucket,
    state: StateTable,
    catalog: PartitionRegistry,
    now: datetime,
) -> ExportResult:
    """Write the manifest (JSON Lines, streamed) and its summary, register the export's partition, record
    the run, advance the watermark.

    The partition is registered after the summary is written and before the run is recorded: once the
    run (and the Succeeded event) exists, the export answers queries. Registering again (a retry) is a
    no-op; a partition of the same values elsewhere is a `CatalogConflict`, never retried.
    """
    counting, listing = export.counting, export.listing
    if counting is None or listing is None:
        raise ValueError("finish needs a settled listing and a counting plan (status READY)")
    root = domain_root(settings.export_prefix, settings.account_id, export.domain_name)
    summary_key = f"{counting.parts_prefix.removesuffix('.parts/')}.json"
    lines_key = f"{counting.parts_prefix.removesuffix('.parts/')}.jsonl"
    totals = {"files": 0, "bytes": 0, "records": 0}

    def tally(entries: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        for entry in entries:
            totals["files"] += 1
            totals["bytes"] += entry["size"]
            totals["records"] += entry["records"] or 0
            yield json.dumps(entry, separators=(",", ":")).encode()

    if counting.mode == "distributed":
        parts = sorted(export.counted or [], key=lambda batch: batch.part)
        bucket.write_lines(
            lines_key, (line for part in parts for line in bucket.read_lines(part.part)), settings.kms_key_arn
        )
        totals = {key: sum(getattr(part, key) for part in parts) for key in totals}
    else:
        files = job_files(bucket, root, listing.request_stamps, export.window, export.object_type)
        bucket.write_lines(
            lines_key, tally(count_files(bucket, files, counting.mode == "inline")), settings.kms_key_arn
        )
    if (totals["files"], totals["bytes"]) != (listing.files, listing.bytes):
        raise ExportFilesUnsettled(
            f"{export.domain_name}/{export.object_type}: {totals['files']} files ({totals['bytes']} bytes) were "
            f"indexed but {listing.files} ({listing.bytes} bytes) had settled: the job's files changed while "
            "they were counted; the window is not indexed and the watermark stays"
        )
    records = totals["records"] if counting.mode != "listing" else None
    summary = {
        "format": MANIFEST_FORMAT,
        "domainName": export.domain_name,
        "objectType": export.object_type,
        "window": export.window.to_wire(),
        "requestedAt": render_utc(export.requested_at),
        "requestStamps": listing.request_stamps,
        "completedAt": render_utc(now),
        "executionArn": export.execution_arn,
        "correlationId": export.correlation_id,
        "dataIntegrationArn": export.data_integration_arn,
        "backfill": export.backfill,
        "fileCount": totals["files"],
        "recordCount": records,
        "bytes": totals["bytes"],
        "counting": counting.mode,
        "fileList": lines_key,
    }
    bucket.put_json(summary_key, summary, kms_key_arn=settings.kms_key_arn)
    database = database_name(settings.stack_name)
    # The summary names the files' folders (requestStamps); the files themselves are in `fileList`, listed
    # from exactly those folders, so each partition's folder holds exactly its files.
    registered = catalog.register_export(database, settings.export_bucket_name, summary_key, summary)
    catalogued = Catalogued(
        database=database,
        table=registered[0].table,
        partitions=[CatalogPartition(name=p.name, values=p.values, location=p.location) for p in registered],
    )
    return _record_success(
        export, settings, state, now, summary_key, totals["files"], records, totals["bytes"], catalogued
    )


def _record_success(
    export: IndexingExport,
    settings: Settings,
    state: StateTable,
    now: datetime,
    key: str,
    files: int,
    records: int | None,
    size: int,
    catalogued: Catalogued,
) -> ExportResult:
    recorded = state.put_run(
        export.domain_name,
        export.object_type,
        export.window,
        export.request_key,
        _run_item(export.execution_arn, export.correlation_id, "SUCCEEDED", now)
        | {
            "files": files,
            "records": records,
            "bytes": size,
            "manifestKey": key,
            "backfill": export.backfill,
            "requestedAt": render_utc(export.requested_at),
            "database": catalogued.database,
            "table": catalogued.table,
            "partitions": [{"name": p.name, "location": p.location} for p in catalogued.partitions],
        }
        | _verification(export),
    )
    # The watermark moves before the ledger says COMPLETED: a request that sees the job recorded may take
    # the object type over and plans its window from the watermark, which must then be past this window.
    watermark = _advance(export, settings, state, now)
    state.set_job_state(
        export.domain_name,
        export.object_type,
        export.window,
        JobState.COMPLETED,
        now,
        export.listing.request_stamps if export.listing else None,
        # What the next poll schedule learns from: only a job timed from its own submission.
        duration_seconds=None if export.adopted else export.poll.waited_seconds,
    )
    state.release_lease(export.domain_name, export.object_type, export.window)
    logger.info(
        "export indexed", extra={"object_type": export.object_type, "files": files, "records": records, "bytes": size}
    )
    return ExportResult(
        domain_name=export.domain_name,
        object_type=export.object_type,
        window=export.window,
        status=ExportStatus.SUCCEEDED,
        files=files,
        records=records or 0,
        bytes=size,
        manifest_key=key,
        watermark=watermark,
        duration_seconds=int((now - export.requested_at).total_seconds()),
        backfill=export.backfill,
        verification=export.verification,
        reconcile=export.reconcile,
        database=catalogued.database,
        table=catalogued.table,
        partitions=catalogued.partitions,
        current_state=_current_state(export, catalogued, state, watermark, now),
        message=_superseded(recorded),
        **_reporting(recorded, export.execution_arn),
    )


def _current_state(
    export: IndexingExport, catalogued: Catalogued, state: StateTable, watermark: datetime | None, now: datetime
) -> CurrentStateUpdate:
    """The current-state work of an indexed export (see `current_state.update_for_export`).

    A reconcile is remembered (RECONCILE item) until an incremental export whose watermark passed the
    moment its job looked confirms it; that export then carries the deletions and the exactness.
    """
    looked_at = None
    if export.reconcile and export.clock is not None and export.planned_at is not None:
        looked_at = confirmation_moment(export.clock, export.planned_at, export.requested_at)
    pending = None
    mine = run_sort_key(export.window, export.request_key)
    if not export.backfill:
        found = state.get_reconcile(export.domain_name, export.object_type)
        if found is not None and found.confirmed_by in (None, mine):
            pending = found
    update = update_for_export(
        catalogued.database,
        export.object_type,
        export.domain_name,
        catalogued.partitions,
        reconcile=export.reconcile,
        window_end=export.window.end,
        requested_at=export.requested_at,
        request_key=export.request_key,
        looked_at=looked_at,
        watermark=watermark,
        pending=pending,
    )
    if update.reconcile_label and update.cutoff and update.confirm_after:
        state.put_reconcile(
            export.domain_name, export.object_type, update.reconcile_label, update.cutoff, update.confirm_after
        )
    if update.confirmed_reconcile and not state.confirm_reconcile(
        export.domain_name, export.object_type, update.confirmed_reconcile, mine, now
    ):
        # Another export confirmed it meanwhile (it carries the deletions) or a newer reconcile replaced it.
        merge_only = CurrentStateStatements(merge=update.statements.merge) if update.statements else None
        return update.model_copy(update={"statements": merge_only, "confirmed_reconcile": None, "exact_as_of": None})
    return update


def _verification(task: ExportTask) -> dict[str, Any]:
    """A verification's run record says so (`cpexport runs`); other runs carry no such attribute."""
    return {"verification": True} if task.verification else {}


def _reporting(recorded: RunRecorded, execution_arn: str) -> dict[str, Any]:
    """Who reports a job: the execution that recorded it (a retry of that execution included)."""
    reported = recorded.written or recorded.execution_arn == execution_arn
    return {"reported": reported, "reported_by": None if reported else recorded.execution_arn}


def _superseded(recorded: RunRecorded) -> str | None:
    """What a result says when it replaced another execution's TIMED_OUT record of the same job."""
    if recorded.superseded is None:
        return None
    return f"the job that execution {recorded.superseded} stopped waiting for (TIMED_OUT) has ended"


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
        | {"message": message[:2000], "backfill": failed.backfill}
        | _verification(failed),
    )
    _settle_lease(failed, state, now, timed_out)
    logger.warning("export failed", extra={"object_type": failed.object_type, "reason": message})
    return ExportResult(
        domain_name=failed.domain_name,
        object_type=failed.object_type,
        window=failed.window,
        status=ExportStatus.TIMED_OUT if timed_out else ExportStatus.FAILED,
        message=f"{message} ({_superseded(recorded)})" if recorded.superseded else message,
        watermark=state.get_watermark(failed.domain_name, failed.object_type),
        backfill=failed.backfill,
        verification=failed.verification,
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
    if failed.status in {ExecutionStatus.COMPLETED.value, "SETTLING", "READY"}:
        # The job ended but could not be indexed: its window is exported again from the watermark.
        state.set_job_state(failed.domain_name, failed.object_type, failed.window, JobState.FAILED, now)
        state.release_lease(failed.domain_name, failed.object_type, failed.window)
        return
    # An error of ours before or while polling: free the object type only when no job runs. A job this
    # execution submitted is no longer followed by it: say so, so that the next request need not wait for
    # this execution to index it (see `exports._holder_may_still_record`).
    if job is not None and job.state == JobState.SUBMITTED and job.execution_arn == failed.execution_arn:
        state.set_job_state(failed.domain_name, failed.object_type, failed.window, JobState.ABANDONED, now)
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
