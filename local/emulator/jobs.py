"""The export job: select the seeded objects of a window, then write them to S3 over the job's duration.

Each job runs on its own daemon thread and touches its ``Job`` record only under the state's lock.
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
from local.emulator.layout import export_folder, new_file_key
from local.emulator.state import COMPLETED, FAILED, IN_PROGRESS, Association, DataIntegration, EmulatorState, Job

STATUS_MESSAGE_MAX = 255  # LastExecutionStatus.StatusMessage is a NonBlankString of at most 255 characters.


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

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

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
        )
        state.jobs[job.id] = job
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
            return True

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

    def _run_steps(self, job: Job) -> None:
        """Write the job's files spread over its duration, then COMPLETE (or FAIL)."""
        began = time.monotonic()

        def wait_until(offset: float) -> bool:
            """Sleep until ``offset`` seconds after the start; False if the job was cancelled meanwhile."""
            return not job.cancel.wait(max(0.0, began + offset - time.monotonic()))

        try:
            s3 = self._state.s3_client_factory()
            s3.head_bucket(Bucket=job.bucket)
        except (ClientError, BotoCoreError) as exc:
            self.finish(job, FAILED, f"Export failed: destination bucket '{job.bucket}' is not accessible: {exc}")
            return
        chunks = [
            job.selection[i : i + job.records_per_file] for i in range(0, len(job.selection), job.records_per_file)
        ]
        duration = job.duration_seconds
        # A forced failure happens half-way, after the files due by then: failed jobs can leave partial output.
        fail_at = duration / 2 if job.forced_failure else None
        for index, chunk in enumerate(chunks):
            due = duration * (index + 1) / (len(chunks) + 1)
            if fail_at is not None and due >= fail_at:
                break
            if not wait_until(due):
                return
            key = new_file_key(job.folder)
            denial = self._service_denial(job, key)
            if denial is not None:
                self.finish(job, FAILED, denial)
                return
            body = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in chunk).encode("utf-8")
            try:
                s3.put_object(
                    Bucket=job.bucket,
                    Key=key,
                    Body=body,
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=job.kms_key,
                )
            except (ClientError, BotoCoreError) as exc:
                self.finish(job, FAILED, f"Export failed writing s3://{job.bucket}/{key}: {exc}")
                return
            with self._state.lock:
                job.files.append(key)
                job.records += len(chunk)
        if fail_at is not None:
            if wait_until(fail_at):
                self.finish(
                    job,
                    FAILED,
                    f"Export of object type {job.object_type} failed (forced by the emulator's fail_object_types)",
                )
            return
        if wait_until(duration):
            self.finish(job, COMPLETED)
