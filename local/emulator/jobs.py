"""The export job: select the seeded objects of a window, then write them to S3 over the job's duration.

Each job runs on its own daemon thread and touches its ``Job`` record only under the state's lock. A
job is a timeline: N files due at ``duration * (i+1)/(N+1)`` (the last one ``late_files_seconds`` after
COMPLETED when that knob is set), each written ``file_delay_seconds`` after it is due, and the end
(COMPLETED at ``duration``, FAILED half-way for ``fail_object_types``, never for a never-ending job).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.emulator.auth import SERVICE_PRINCIPAL, AccessRequest
from local.emulator.errors import InvalidRequestError, ResourceNotFoundError
from local.emulator.faults import FaultModel
from local.emulator.layout import export_folder, new_file_key
from local.emulator.state import COMPLETED, FAILED, IN_PROGRESS, Association, DataIntegration, EmulatorState, Job

STATUS_MESSAGE_MAX = 255  # LastExecutionStatus.StatusMessage is a NonBlankString of at most 255 characters.
WRITE_FILE, END_JOB = 0, 1  # timeline event kinds; at the same instant a write comes before the end


def truncate_status_message(message: str, limit: int = STATUS_MESSAGE_MAX) -> str:
    """Fit ``message`` into the model's StatusMessage bounds."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _fit_denial(head: str, resource: str, tail: str, limit: int = STATUS_MESSAGE_MAX) -> str:
    """``head + resource + tail`` within ``limit``, eliding the middle of ``resource`` (the advice must stay)."""
    room = limit - len(head) - len(tail)
    if len(resource) > room:
        keep = max(room - 3, 0)
        resource = resource[: keep // 2 + keep % 2] + "..." + resource[len(resource) - keep // 2 :]
    return truncate_status_message(head + resource + tail, limit)


class JobRunner:
    """Starts export jobs and runs each on its own thread."""

    def __init__(self, state: EmulatorState, faults: FaultModel) -> None:
        self._state = state
        self._faults = faults

    def start(
        self,
        di: DataIntegration,
        assoc: Association,
        execution: Mapping[str, Any],
        start_ms: int,
        end_ms: int | None,
    ) -> Job:
        """Select the window's objects, record the job and start writing its files (caller holds the lock)."""
        state = self._state
        cfg = state.config
        request_ms = cfg.now_ms()
        end = end_ms if end_ms is not None else request_ms
        # The documented ingestion lag, worst case: anything this recent is not yet exportable.
        horizon = request_ms - int(cfg.lag_minutes * 60_000)
        store = state.objects.get((di.domain, di.object_type), {})
        selection = sorted(
            (
                json.loads(json.dumps(obj))
                for obj in store.values()
                if start_ms <= obj["lastUpdated"] < end and obj["lastUpdated"] < horizon
            ),
            key=lambda o: (o["lastUpdated"], o["id"]),
        )
        job = Job(
            id=str(uuid.uuid4()),
            data_integration_id=di.id,
            data_integration_name=di.name,
            data_integration_arn=di.arn,
            association_id=assoc.id,
            association_arn=assoc.arn,
            domain=di.domain,
            object_type=di.object_type,
            start_ms=start_ms,
            end_ms=end,
            request_ms=request_ms,
            execution_configuration=json.loads(json.dumps(execution)),
            destination=assoc.destination_uri,
            bucket=assoc.bucket,
            prefix=assoc.prefix,
            folder=export_folder(assoc.prefix, state.account_id, di.domain, request_ms, start_ms, end, di.object_type),
            kms_key=di.kms_key,
            records_per_file=cfg.records_per_file,
            duration_seconds=cfg.duration_for(di.object_type),
            forced_failure=di.object_type in cfg.fail_object_types,
            selection=selection,
            never_ends=self._faults.job_never_ends(di.object_type),
            late_files_seconds=cfg.scaled(cfg.late_files_seconds),
            file_delay_seconds=cfg.scaled(cfg.file_delay_seconds),
        )
        job.timeline = self._timeline(job, -(-len(selection) // job.records_per_file))
        job.files_planned = job.files_pending = sum(1 for _, kind, _ in job.timeline if kind == WRITE_FILE)
        state.jobs[job.id] = job
        job.started_clock = state.clock.monotonic()
        thread = threading.Thread(target=self._run, args=(job,), name=f"export-{job.id[:8]}", daemon=True)
        state.threads = [t for t in state.threads if t.is_alive()]
        state.threads.append(thread)
        thread.start()
        return job

    def finish(self, job: Job, status: str, message: str | None = None) -> bool:
        """End ``job`` with ``status`` unless it already ended; True if this call ended it."""
        with self._state.lock:
            if job.status != IN_PROGRESS:
                return False
            job.status = status
            job.status_message = truncate_status_message(message) if message else None
            job.finished_ms = self._state.now_ms()
            job.finished_clock = self._state.clock.monotonic()
            return True

    def finish_by_control(self, job_id: str, status: str, message: str | None = None) -> Job:
        """End an IN_PROGRESS job now (a never-ending one, typically) and stop its remaining writes."""
        if status not in (COMPLETED, FAILED):
            raise InvalidRequestError(f"status must be COMPLETED or FAILED (got {status!r})")
        with self._state.lock:
            job = self._state.jobs.get(job_id)
            if job is None:
                raise ResourceNotFoundError(f"No export job with id {job_id!r} (since the last reset)")
            if job.status != IN_PROGRESS:
                raise InvalidRequestError(f"Job {job_id} already ended {job.status}")
            if status == FAILED and not message:
                message = "Export failed (ended by the emulator's control API)"
            self.finish(job, status, message)
            job.cancel.set()
            return job

    def settle_due(self, limit_seconds: float = 5.0) -> None:
        """Before a read of job statuses: let every job event due by now on the clock happen first.

        On a held clock a poll and a job's end can fall on the same moment; the schedule counts a job
        that ends at t as seen by the poll at t, so the read waits (at most `limit_seconds` of wall
        time) for the threads of events due by now. On the wall clock there are no such ties.
        """
        state = self._state
        if not state.clock.holds:
            return
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            with state.lock:
                alarms = [job.next_alarm for job in state.jobs.values() if job.next_alarm is not None]
            if not any(state.clock.due(alarm) for alarm in alarms):
                return
            time.sleep(0.001)

    def _service_denial(self, job: Job, key: str) -> str | None:
        """Why the service may not write ``key`` (bucket policy, then key policy), or None if it may."""
        with self._state.lock:
            authorizer = self._state.authorizer
            account = self._state.account_id
        # The documented bucket and key policies scope the service by these two condition keys.
        context = {"aws:SourceAccount": account, "aws:SourceArn": job.data_integration_arn}
        object_arn = f"arn:aws:s3:::{job.bucket}/{key}"
        if not authorizer.service_may(SERVICE_PRINCIPAL, AccessRequest("s3:PutObject", object_arn, context)):
            return _fit_denial(
                f"Export failed: {SERVICE_PRINCIPAL} is not authorized to perform s3:PutObject on ",
                object_arn,
                f"; check the bucket policy of {job.bucket}",
            )
        if not authorizer.service_may(SERVICE_PRINCIPAL, AccessRequest("kms:GenerateDataKey", job.kms_key, context)):
            return _fit_denial(
                f"Export failed: {SERVICE_PRINCIPAL} is not authorized to perform kms:GenerateDataKey on ",
                job.kms_key,
                "; check the key policy",
            )
        return None

    def _run(self, job: Job) -> None:
        """Run a job on its thread; an unexpected error FAILS the job rather than leaving it IN_PROGRESS."""
        try:
            self._run_steps(job)
        except Exception as exc:
            self.finish(job, FAILED, f"Export failed: internal emulator error {type(exc).__name__}: {exc}")
        finally:
            with self._state.lock:
                job.files_pending = 0

    @staticmethod
    def _timeline(job: Job, file_count: int) -> list[tuple[float, int, int]]:
        """The job's events, in order, as (seconds after start, WRITE_FILE or END_JOB, file index)."""
        duration = job.duration_seconds
        dues = [duration * (i + 1) / (file_count + 1) for i in range(file_count)]
        if job.late_files_seconds > 0 and dues:
            dues[-1] = duration + job.late_files_seconds
        # A forced failure happens half-way, after the files due by then: failed jobs can leave partial output.
        fail_at = duration / 2 if job.forced_failure and not job.never_ends else None
        events = [
            (due + job.file_delay_seconds, WRITE_FILE, i)
            for i, due in enumerate(dues)
            if fail_at is None or due < fail_at
        ]
        if not job.never_ends:
            events.append((fail_at if fail_at is not None else duration, END_JOB, -1))
        return sorted(events)

    def _run_steps(self, job: Job) -> None:
        """Play the job's timeline: write files when due, end it, keep writing late files after COMPLETED."""
        clock = self._state.clock
        try:
            s3 = self._state.s3_client_factory()
            s3.head_bucket(Bucket=job.bucket)
        except (ClientError, BotoCoreError) as exc:
            self.finish(job, FAILED, f"Export failed: destination bucket '{job.bucket}' is not accessible: {exc}")
            return
        chunks = [
            job.selection[i : i + job.records_per_file] for i in range(0, len(job.selection), job.records_per_file)
        ]
        timeline = job.timeline
        # Each event's alarm is set before the one before it is released: a read at the moment they
        # share waits for both (`settle_due`).
        job.next_alarm = clock.alarm(job.started_clock + timeline[0][0]) if timeline else None
        try:
            for step, (_, kind, index) in enumerate(timeline):
                # The clock stands at the event until it is done: a poll due later sees it, one due earlier does not.
                alarm = job.next_alarm
                assert alarm is not None
                try:
                    if not clock.sleep_until(alarm, job.cancel.is_set):
                        return
                    if kind == END_JOB:
                        if job.forced_failure:
                            message = (
                                f"Export of object type {job.object_type} failed "
                                "(forced by the emulator's fail_object_types)"
                            )
                            self.finish(job, FAILED, message)
                        else:
                            self.finish(job, COMPLETED)
                        continue
                    if job.status == FAILED or not self._write(s3, job, chunks[index]):
                        return
                finally:
                    following = step + 1 < len(timeline)
                    job.next_alarm = clock.alarm(job.started_clock + timeline[step + 1][0]) if following else None
                    clock.release(alarm)
        finally:
            if job.next_alarm is not None:
                clock.release(job.next_alarm)
                job.next_alarm = None
        if job.never_ends:
            job.cancel.wait()  # IN_PROGRESS, counting toward the quota, until reset or finished by control

    def _write(self, s3: Any, job: Job, chunk: list[dict[str, Any]]) -> bool:
        """Write one file of ``job`` as the service; False (the job FAILED if it still could) when it cannot."""
        key = new_file_key(job.folder)
        denial = self._service_denial(job, key)
        if denial is not None:
            self.finish(job, FAILED, denial)
            return False
        body = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in chunk).encode("utf-8")
        try:
            s3.put_object(
                Bucket=job.bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=job.kms_key
            )
        except (ClientError, BotoCoreError) as exc:
            self.finish(job, FAILED, f"Export failed writing s3://{job.bucket}/{key}: {exc}")
            return False
        with self._state.lock:
            job.files.append(key)
            job.file_written_ms.append(self._state.now_ms())
            job.files_pending -= 1
            job.records += len(chunk)
        return True
