"""The ways an export used to be lost or reported twice, each on moto + the emulator through the real code.

Given / When / Then, with the handlers where the behaviour is the handler's, and the package's
functions where a test must choose the clock (a job adopted hours after it was submitted).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cpexport.clients import reset_clients
from cpexport.clients.appintegrations import AppIntegrations
from cpexport.clients.glue import GlueCatalog
from cpexport.clients.s3 import ExportBucket
from cpexport.clients.state_table import StateTable
from cpexport.config import get_settings
from cpexport.errors import (
    DataIntegrationConflict,
    DataIntegrationQuotaExceeded,
    ExportBusy,
    ExportFilesUnsettled,
    TransientServiceError,
)
from cpexport.exports import check_export, data_integration_name, start_export
from cpexport.indexing import index_export, record_failure
from cpexport.models import ExportResult, ExportTask, FailedExport, IndexingExport, PollingExport

from local.emulator.synthetic import generate
from tests.handlers.conftest import DOMAIN, Stack, catalog_ready, load_event, load_handler
from tests.handlers.test_handlers import DAY1, HOUR, exported_ids, until_finished, until_indexed

TICK_KEY = "scheduled:2026-11-02T00:00:00Z"


def task_for(**changes: Any) -> dict[str, Any]:
    return load_event("start_export") | changes


def reconfigure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    reset_clients()
    catalog_ready()


def test_domains_and_types_that_join_to_the_same_text_get_their_own_data_integrations(stack, monkeypatch):
    # Given domain acme with type eu-x, and domain acme-eu with type x: "-"-joined, they used to share one name
    reconfigure(monkeypatch, DOMAIN_NAMES="acme,acme-eu", OBJECT_TYPES="eu-x,x")
    stack.emulator.seed("acme", "eu-x", generate("_profile", 12, DAY1, DAY1 + HOUR, 1))
    theirs = generate("_profile", 9, DAY1, DAY1 + HOUR, 2)
    stack.emulator.seed("acme-eu", "x", theirs)
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")

    # When both are exported in one run
    results = {}
    for domain, object_type in (("acme", "eu-x"), ("acme-eu", "x")):
        started = start(task_for(domainName=domain, objectType=object_type))
        results[domain] = until_indexed(index, until_finished(check, started))

    # Then each has its own data integration and job, and acme-eu's objects are in its manifest
    assert data_integration_name("s", "acme", "eu-x") != data_integration_name("s", "acme-eu", "x")
    jobs = stack.emulator.jobs()
    assert sorted((j["domainName"], j["objectType"]) for j in jobs) == [("acme", "eu-x"), ("acme-eu", "x")]
    assert len({j["dataIntegrationArn"] for j in jobs}) == 2
    manifest = stack.read_json(results["acme-eu"]["manifestKey"])
    assert sorted(exported_ids(stack, manifest)) == sorted(o["id"] for o in theirs)


def test_an_existing_data_integration_that_exports_something_else_is_never_reused(stack):
    # Given a data integration with our name that exports another domain (created by someone else)
    settings = get_settings()
    name = data_integration_name(settings.stack_name, DOMAIN, "_profile")
    boto3.client("appintegrations", endpoint_url=stack.emulator.url).create_data_integration(
        Name=name,
        KmsKey=settings.kms_key_arn,
        SourceURI="AmazonConnect://AppIntegrations",
        ObjectConfiguration={"CustomerProfiles": {"domainName": ["other-domain"], "objectType": ["_profile"]}},
    )
    # When the export starts, Then it refuses with the conflict named, and no job runs
    with pytest.raises(DataIntegrationConflict, match="exports domain other-domain \\(expected demo-domain\\)"):
        load_handler("start_export")(task_for())
    assert stack.emulator.jobs() == []
    # and the failure is recorded (alerted) without moving anything
    caught = task_for(error={"Error": "DataIntegrationConflict", "Cause": '{"errorMessage": "conflict"}'})
    assert load_handler("record_failure")(caught)["status"] == "FAILED"
    assert stack.watermark("_profile") is None


def test_the_data_integration_quota_fails_at_once_naming_the_quota(stack):
    stack.emulator.configure(max_data_integrations=0)
    with pytest.raises(DataIntegrationQuotaExceeded, match="Service Quotas"):
        load_handler("start_export")(task_for())
    assert stack.emulator.jobs() == []


def _started(stack: Stack, now: datetime, **changes: Any) -> dict[str, Any]:
    settings = get_settings()
    task = ExportTask.model_validate(task_for(**changes))
    started = start_export(task, settings, StateTable(settings.state_table_name), AppIntegrations(), now=now)
    assert started is not None
    return started.to_wire()


def _index(stack: Stack, checked: dict[str, Any], now: datetime) -> ExportResult:
    settings = get_settings()
    state: dict[str, Any] = checked
    for _ in range(10):
        result = index_export(
            IndexingExport.model_validate(state),
            settings,
            ExportBucket(settings.export_bucket_name),
            StateTable(settings.state_table_name),
            GlueCatalog(),
            now=now,
        )
        if isinstance(result, ExportResult):
            return result
        state = result.to_wire()  # SETTLING, then READY
    raise AssertionError("files never settled")


def _finish(stack: Stack, started: dict[str, Any]) -> dict[str, Any]:
    settings = get_settings()
    state = started
    for _ in range(60):  # each check adds a poll wait to the simulated clock: stay below the timeout
        state = check_export(PollingExport.model_validate(state), settings, AppIntegrations()).to_wire()
        if state["status"] != "IN_PROGRESS":
            return state
        time.sleep(0.05)
    raise AssertionError("never finished")


def test_a_job_adopted_hours_after_it_was_submitted_is_indexed_with_all_its_files(stack):
    # Given a tick's job submitted and finished by execution A
    objects = generate("_profile", 130, DAY1, DAY1 + 20 * HOUR, 3)
    stack.emulator.seed(DOMAIN, "_profile", objects)
    now = datetime.now(UTC)
    first = _started(stack, now)
    finished = _finish(stack, first)

    # When the same tick, delivered again three hours later, adopts that job and indexes it
    later = now + timedelta(hours=3)
    adopted = _started(stack, later, executionArn=first["executionArn"] + "-redelivered")
    assert adopted["status"] == "ADOPTED" and adopted["window"] == first["window"]
    assert adopted["requestedAt"] == first["requestedAt"]  # the job's own submission, not the adoption
    result = _index(stack, finished | {"executionArn": adopted["executionArn"]}, now=later)

    # Then every file of the job is in its manifest: found by the job's window and request time
    manifest = stack.read_json(result.manifest_key or "")
    assert sorted(exported_ids(stack, manifest)) == sorted(o["id"] for o in objects)
    assert stack.watermark("_profile") == "2026-11-01T23:30:00Z"


def test_a_tick_delivered_twice_reports_its_job_once(stack):
    # Given two executions of the same tick that both follow the same job to the end
    stack.emulator.seed(DOMAIN, "_profile", generate("_profile", 40, DAY1, DAY1 + HOUR, 4))
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    notify = load_handler("notify")
    first = start(task_for())
    second = start(task_for(executionArn=task_for()["executionArn"] + "-again"))
    assert (first["status"], second["status"]) == ("SUBMITTED", "ADOPTED")
    done_first, done_second = until_finished(check, first), until_finished(check, second)

    # When both index it and notify
    results = [until_indexed(index, done) for done in (done_first, done_second)]
    for result, execution in zip(results, (first, second), strict=True):
        notify({"executionArn": execution["executionArn"], "correlationId": "tick", "results": [result]})

    # Then one run record, one Succeeded event, and the second execution names the first
    assert [r["reported"] for r in results] == [True, False]
    assert results[1]["reportedBy"] == first["executionArn"]
    assert len(stack.runs("_profile")) == 1
    events = stack.messages(stack.events_queue_url)
    assert [e["detail-type"] for e in events] == ["Customer Profiles Export Succeeded"]
    messages = stack.messages(stack.notifications_queue_url)
    assert [m["MessageAttributes"]["status"]["Value"] for m in messages] == ["SUCCEEDED", "SUCCEEDED"]
    assert any(f"already reported by execution {first['executionArn']}" in m["Message"] for m in messages)


def test_a_job_one_execution_timed_out_on_and_another_saw_complete_is_reported_as_exported(stack, monkeypatch):
    # Given a tick delivered twice: both executions follow the same job, the first gives up waiting
    # (found by the soak: the second indexed the job and moved the watermark, but the run index kept
    # TIMED_OUT, so no Succeeded event ever named the manifest)
    objects = generate("_profile", 40, DAY1, DAY1 + HOUR, 4)
    stack.emulator.seed(DOMAIN, "_profile", objects)
    # The job writes its files at once, then runs until the test ends it (however slow the machine)
    stack.emulator.configure(job_duration_seconds=0.2, never_ending_object_types=["_profile"])
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    record, notify = load_handler("record_failure"), load_handler("notify")
    first = start(task_for())
    second = start(task_for(executionArn=task_for()["executionArn"] + "-again"))
    assert (first["status"], second["status"]) == ("SUBMITTED", "ADOPTED")
    reconfigure(monkeypatch, EXPORT_TIMEOUT_HOURS="0.0001")
    timed_out = until_finished(check, first)
    assert timed_out["status"] == "TIMED_OUT"
    gave_up = record(timed_out)
    notify({"executionArn": first["executionArn"], "correlationId": "tick", "results": [gave_up]})

    # When the job completes and the second execution indexes it
    reconfigure(monkeypatch, EXPORT_TIMEOUT_HOURS="24")
    (job,) = stack.emulator.jobs()
    _until_written(stack, job["id"])
    stack.emulator.finish_job(job["id"], "COMPLETED")
    result = until_indexed(index, until_finished(check, second))
    notify({"executionArn": second["executionArn"], "correlationId": "tick", "results": [result]})

    # Then the job's outcome replaces the timeout in the run index, and both are reported
    assert result["status"] == "SUCCEEDED" and result["reported"] is True
    (run,) = stack.runs("_profile")
    assert run["status"] == "SUCCEEDED" and run["manifestKey"] == result["manifestKey"]
    assert run["supersededExecutionArn"] == first["executionArn"]
    assert sorted(exported_ids(stack, stack.read_json(result["manifestKey"]))) == sorted(o["id"] for o in objects)
    assert stack.watermark("_profile") == run["windowEnd"]
    events = [e["detail-type"] for e in stack.messages(stack.events_queue_url)]
    assert sorted(events) == ["Customer Profiles Export Failed", "Customer Profiles Export Succeeded"]
    messages = stack.messages(stack.notifications_queue_url)
    assert [m["MessageAttributes"]["status"]["Value"] for m in messages] == ["FAILED", "SUCCEEDED"]
    assert f"execution {first['executionArn']} stopped waiting for (TIMED_OUT) has ended" in messages[1]["Message"]


def test_a_timeout_recorded_after_the_job_was_reported_exported_changes_nothing(stack, monkeypatch):
    # Given the same two executions, the second indexing the job before the first gives up
    stack.emulator.seed(DOMAIN, "_profile", generate("_profile", 20, DAY1, DAY1 + HOUR, 6))
    stack.emulator.configure(job_duration_seconds=1)
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    record = load_handler("record_failure")
    first = start(task_for())
    second = start(task_for(executionArn=task_for()["executionArn"] + "-again"))
    stack.emulator.wait_idle(timeout=60)
    exported = until_indexed(index, until_finished(check, second))
    assert exported["reported"] is True

    # When the first execution then times out on it (it had stopped polling earlier)
    late = record(first | {"status": "TIMED_OUT", "statusMessage": "the export job did not finish within 1 hours"})

    # Then the success stays the record, and the timeout is not reported
    assert late["reported"] is False and late["reportedBy"] == second["executionArn"]
    (run,) = stack.runs("_profile")
    assert run["status"] == "SUCCEEDED" and "supersededExecutionArn" not in run


def test_a_failed_window_rerun_is_never_confused_with_the_failed_job_however_stale_the_listing(stack):
    # Given a failed job, and a listing that keeps showing it far longer than any grace period
    stack.emulator.seed(DOMAIN, "_profile", generate("_profile", 30, DAY1, DAY1 + HOUR, 5))
    stack.emulator.configure(fail_object_types=["_profile"])
    start, check, record = load_handler("start_export"), load_handler("check_export"), load_handler("record_failure")
    failed = until_finished(check, start(task_for()))
    record(failed)
    stack.emulator.configure(fail_object_types=[], stale_status_seconds=3, job_duration_seconds=0.2)

    # When the window is run again (a replay of the tick)
    rerun = start(task_for(executionArn=failed["executionArn"] + "-replay"))
    first_look = check(rerun)

    # Then the old FAILED status (another window) is not taken for the rerun's, which completes
    assert rerun["window"]["end"] != failed["window"]["end"]
    assert first_look["status"] == "IN_PROGRESS"
    # (each check adds a poll wait to the simulated clock: a few dozen checks stay far below the timeout)
    assert until_finished(check, first_look, attempts=30, pause=0.25)["status"] == "COMPLETED"


def test_after_a_timeout_the_object_type_stays_blocked_until_the_service_shows_the_job_ended(stack, monkeypatch):
    # Given a job past the timeout that still runs, a service that would accept an update meanwhile,
    # and a listing that lags behind
    reconfigure(monkeypatch, EXPORT_TIMEOUT_HOURS="0.0001")
    stack.emulator.configure(job_duration_seconds=3, update_while_in_progress="accept")
    start, check, record = load_handler("start_export"), load_handler("check_export"), load_handler("record_failure")
    timed_out = until_finished(check, start(task_for()))
    assert timed_out["status"] == "TIMED_OUT"
    assert record(timed_out)["status"] == "TIMED_OUT"

    # When the next tick starts while the first job still runs
    next_tick = task_for(
        executionArn=timed_out["executionArn"] + "-next",
        requestKey="scheduled:2026-11-03T00:00:00Z",
        window={"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T23:30:00Z"},
    )
    # Then it waits, and never starts a second job
    with pytest.raises(ExportBusy, match="has not ended"):
        start(next_tick)
    assert len(stack.emulator.jobs()) == 1
    # and once the service shows the job ended, the next window starts
    stack.emulator.wait_idle(timeout=60)
    started = start(next_tick)
    assert started["status"] == "SUBMITTED"
    jobs = stack.emulator.jobs()
    assert len(jobs) == 2 and jobs[1]["requestTimeMs"] >= jobs[0]["finishedTimeMs"]


def test_a_failure_of_ours_while_a_job_may_run_keeps_the_object_type_blocked(stack):
    # Given a submitted job whose Check step then broke (the job's state is unknown to us)
    stack.emulator.configure(job_duration_seconds=2)
    started = load_handler("start_export")(task_for())
    caught = started | {"error": {"Error": "TransientServiceError", "Cause": '{"errorMessage": "List throttled"}'}}
    assert record_failure(FailedExport.model_validate(caught), StateTable(get_settings().state_table_name)).reported
    # When a later request starts the object type, Then it waits for that job instead of starting another
    with pytest.raises(ExportBusy, match="has not ended"):
        load_handler("start_export")(
            task_for(
                executionArn="arn:aws:states:us-east-1:123456789012:execution:x:other",
                requestKey="execution:other",
                window={"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
            )
        )
    assert len(stack.emulator.jobs()) == 1


@pytest.mark.parametrize("fault", ["InternalServiceError", "ThrottlingException", "connection_dropped"])
@pytest.mark.parametrize("operation", ["CreateDataIntegrationAssociation", "UpdateDataIntegrationAssociation"])
def test_an_error_after_the_job_started_is_retried_into_adopting_that_job_not_a_second_one(stack, fault, operation):
    # Given (for Update) a first job already done, and a service that starts the next job but answers an error
    start, check = load_handler("start_export"), load_handler("check_export")
    if operation == "UpdateDataIntegrationAssociation":
        until_indexed(load_handler("index_export"), until_finished(check, start(task_for())))
    task = task_for(
        executionArn=task_for()["executionArn"] + "-later",
        requestKey="scheduled:2026-11-03T00:00:00Z",
        window={"start": "2026-11-01T23:30:00Z", "end": "2026-11-02T23:30:00Z"},
    )
    stack.emulator.configure(
        job_duration_seconds=1, fault_rules=[{"operation": operation, "fault": fault, "phase": "after", "count": 1}]
    )
    jobs_before = len(stack.emulator.jobs())

    # When Start fails and the state machine retries it
    with pytest.raises(TransientServiceError):
        start(task)
    retried = start(task)

    # Then the retry adopts the job the failed call started: one job, and it is followed to the end
    assert retried["status"] == "ADOPTED" and retried["window"] == task["window"]
    assert len(stack.emulator.jobs()) == jobs_before + 1
    assert until_finished(check, retried)["status"] == "COMPLETED"


def test_an_error_after_effect_with_a_listing_that_does_not_show_the_job_yet_waits_instead_of_starting_another(stack):
    # Given a Create that takes effect, answers an error, and a listing that leaves the new job out for a while
    stack.emulator.configure(
        job_duration_seconds=1,
        empty_status_seconds=600,
        fault_rules=[
            {"operation": "CreateDataIntegrationAssociation", "fault": "InternalServiceError", "phase": "after"}
        ],
    )
    start = load_handler("start_export")
    with pytest.raises(TransientServiceError):
        start(task_for())
    # When the retry cannot see the job, Then it waits (the answer may have hidden a success)
    with pytest.raises(ExportBusy, match="waiting for the service to show the job"):
        start(task_for())
    assert len(stack.emulator.jobs()) == 1
    # and once the listing shows the job, the retry adopts it
    stack.emulator.configure(empty_status_seconds=0, fault_rules=[])
    assert start(task_for())["status"] == "ADOPTED"
    assert len(stack.emulator.jobs()) == 1


def _ready(stack: Stack, objects: int, monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """A COMPLETED job of `objects` profiles (40 per file), up to the Index's first answer with a counting plan:
    READY (settled by two listings), or, for the Distributed Map, SETTLING (the Map's listing is the second)."""
    reconfigure(monkeypatch, **env)
    stack.emulator.seed(DOMAIN, "_profile", generate("_profile", objects, DAY1, DAY1 + 20 * HOUR, 7))
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    state = until_finished(check, start(task_for()))
    while state.get("counting") is None:
        state = index(state)
    return state


def _as_item_batcher(stack: Stack, ready: dict[str, Any]) -> list[dict[str, Any]]:
    """What the Distributed Map hands its children: the ItemReader's listing, in ItemBatcher batches."""
    counting = ready["counting"]
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=counting["prefix"])
    items = [
        {"Key": o["Key"], "Size": o["Size"], "ETag": o["ETag"]} for page in pages for o in page.get("Contents", [])
    ]
    size = counting["batchSize"]
    return [{"Items": items[i : i + size], "BatchInput": counting} for i in range(0, len(items), size)]


def test_a_large_job_is_counted_in_batches_and_its_manifest_lists_every_file_once(stack, monkeypatch):
    # Given a job of 30 files, above the inline threshold, listed once: handed to the Distributed Map
    ready = _ready(stack, 1_200, monkeypatch, INLINE_INDEX_MAX_FILES="10")
    assert (ready["status"], ready["counting"]["mode"]) == ("SETTLING", "distributed")
    # When the Distributed Map's children count their batches (one retried) and Index finishes
    count = load_handler("count_records")
    batches = _as_item_batcher(stack, ready | {"counting": ready["counting"] | {"batchSize": 7}})
    counted = [count(batch) for batch in batches]
    assert count(batches[0]) == counted[0]  # a retried child rewrites its own part
    result = load_handler("index_export")(ready | {"counted": counted})
    # Then the manifest lists each file once, with its records, and the totals add up
    manifest = stack.read_json(result["manifestKey"])
    listed = [json.loads(line) for line in _read(stack, manifest["fileList"]).splitlines()]
    assert len(listed) == len({f["key"] for f in listed}) == 30 == manifest["fileCount"]
    assert sum(f["records"] for f in listed) == 1_200 == manifest["recordCount"] == result["records"]
    assert manifest["counting"] == "distributed"


def test_files_that_change_after_they_settled_are_never_indexed(stack, monkeypatch):
    ready = _ready(stack, 200, monkeypatch)
    boto3.client("s3").put_object(Bucket=stack.bucket, Key=ready["counting"]["prefix"] + "late-file", Body=b"{}\n")
    with pytest.raises(ExportFilesUnsettled, match="changed while they were counted"):
        load_handler("index_export")(ready)
    assert stack.watermark("_profile") is None


def test_with_record_counting_off_the_manifest_lists_files_and_bytes_without_reading_them(stack, monkeypatch):
    ready = _ready(stack, 200, monkeypatch, COUNT_RECORDS="false")
    assert ready["counting"]["mode"] == "listing"
    result = load_handler("index_export")(ready)
    manifest = stack.read_json(result["manifestKey"])
    assert manifest["recordCount"] is None and manifest["fileCount"] == 5 and manifest["bytes"] > 0


def _read(stack: Stack, key: str) -> str:
    return boto3.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


def test_a_manifest_larger_than_one_upload_part_is_streamed_in_parts(stack):
    # 9 MB of lines: more than one 8 MiB part, so the multipart path writes it
    bucket = ExportBucket(stack.bucket)
    line = b"x" * 1_000
    written = bucket.write_lines("m/manifest.jsonl", (line for _ in range(9_000)), kms_key_arn=stack.kms_key_arn)
    body = _read(stack, "m/manifest.jsonl")
    assert written == 9_000 == len(body.splitlines())
    head = boto3.client("s3").head_object(Bucket=stack.bucket, Key="m/manifest.jsonl")
    assert head["ETag"].strip('"').endswith("-2")  # two parts


def test_a_submission_the_service_never_shows_is_marked_unconfirmed_and_the_next_window_submitted(stack, monkeypatch):
    # Given a Create refused by throttling (it never ran; the pipeline cannot know) and a 1 s grace
    reconfigure(monkeypatch, AMBIGUOUS_SUBMIT_GRACE_SECONDS="1")
    stack.emulator.configure(fault_rules=[{"operation": "CreateDataIntegrationAssociation", "count": 1}])
    start = load_handler("start_export")
    with pytest.raises(TransientServiceError):
        start(task_for())
    with pytest.raises(ExportBusy, match="waiting for the service to show the job"):
        start(task_for())
    # When the grace has passed and the listing still does not show it
    time.sleep(1.2)
    started = start(task_for())
    # Then the first window stays used (UNCONFIRMED: its job may yet appear) and the next one runs
    assert started["status"] == "SUBMITTED" and started["window"]["end"] == "2026-11-01T23:29:59Z"
    ledger = {
        job["sk"]: job["state"] for job in StateTable(get_settings().state_table_name).list_jobs(DOMAIN, "_profile")
    }
    assert ledger == {
        "JOB#2026-11-01T00:00:00Z#2026-11-01T23:30:00Z": "UNCONFIRMED",
        "JOB#2026-11-01T00:00:00Z#2026-11-01T23:29:59Z": "SUBMITTED",
    }
    assert len(stack.emulator.jobs()) == 1


class _StaleFirstRead(StateTable):
    """The state table, except that the first watermark read returns what it was before (an interleaving)."""

    def __init__(self, table: str, stale: Any) -> None:
        super().__init__(table)
        self._stale: list[Any] = [stale]

    def get_watermark(self, domain_name: str, object_type: str) -> Any:
        if self._stale:
            return self._stale.pop()
        return super().get_watermark(domain_name, object_type)


def test_a_duplicate_tick_that_read_the_watermark_before_the_first_finished_starts_no_second_job(stack):
    # Given the first execution of a tick that exported and indexed its window (watermark advanced)
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    until_indexed(index, until_finished(check, start(task_for())))
    assert stack.watermark("_profile") == "2026-11-01T23:30:00Z"
    # When the duplicate's Start read the watermark just before that advance (stale: unset)
    settings = get_settings()
    duplicate = ExportTask.model_validate(task_for(executionArn=task_for()["executionArn"] + "-again"))
    started = start_export(duplicate, settings, _StaleFirstRead(settings.state_table_name, None), AppIntegrations())
    # Then, reading it again under the lease, it finds the window exported: no second job
    assert started is None
    assert len(stack.emulator.jobs()) == 1
    assert StateTable(settings.state_table_name).get_lease(DOMAIN, "_profile") is None


def test_a_request_waits_for_the_execution_that_has_not_yet_recorded_its_ended_job(stack):
    # Given the next day's tick whose job (two days: the tick before it was dead-lettered) has ended on
    # the service, but whose execution is still settling and indexing it (the watermark has not moved)
    stack.emulator.seed(DOMAIN, "_profile", generate("_profile", 30, DAY1, DAY1 + 30 * HOUR, 7))
    stack.emulator.configure(job_duration_seconds=0.2)
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    two_days = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T23:30:00Z"}
    later_tick = start(
        task_for(executionArn=task_for()["executionArn"] + "-03", requestKey="scheduled:2026-11-03T00:00:00Z")
        | {"window": two_days}
    )
    ended = until_finished(check, later_tick)
    assert ended["status"] == "COMPLETED"

    # When the replay of the dead-lettered tick starts (its window, from the same watermark, is the first day)
    replay = task_for(executionArn=task_for()["executionArn"] + "-replay")
    # Then it waits instead of exporting a window that overlaps the one being indexed
    with pytest.raises(ExportBusy, match="has not recorded it yet"):
        start(replay)
    assert len(stack.emulator.jobs()) == 1
    # and once that execution has indexed its job, the replay finds its window exported: no second job
    assert until_indexed(index, ended)["status"] == "SUCCEEDED"
    assert stack.watermark("_profile") == two_days["end"]
    assert start(replay)["status"] == "SKIPPED"
    assert len(stack.emulator.jobs()) == 1


def test_an_execution_that_gave_up_on_its_job_does_not_hold_the_next_request_once_the_job_ended(stack):
    # Given a submitted job whose Check step then broke, recorded as a failure of ours
    stack.emulator.configure(job_duration_seconds=0.2)
    started = load_handler("start_export")(task_for())
    caught = started | {"error": {"Error": "TransientServiceError", "Cause": '{"errorMessage": "List throttled"}'}}
    record_failure(FailedExport.model_validate(caught), StateTable(get_settings().state_table_name))
    stack.emulator.wait_idle(timeout=60)
    # When the next request starts once the service shows that job ended
    nxt = load_handler("start_export")(
        task_for(executionArn=task_for()["executionArn"] + "-next", requestKey="scheduled:2026-11-03T00:00:00Z")
    )
    # Then it takes the object type over at once (the job's own execution will never index it)
    assert nxt["status"] == "SUBMITTED"
    assert len(stack.emulator.jobs()) == 2


def _until_written(stack: Any, job_id: str, timeout: float = 60) -> None:
    """Wait until the job has written every file it is due to write."""
    deadline = time.monotonic() + timeout
    while next(j for j in stack.emulator.jobs() if j["id"] == job_id)["filesPending"]:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still had files to write after {timeout} s")
        time.sleep(0.02)


def _gave_up_after_an_ambiguous_submission(stack: Stack, **fault: Any) -> dict[str, Any]:
    """A Start whose Create answered an error, then whose execution failed (its retries ran out)."""
    stack.emulator.configure(
        job_duration_seconds=0.2, fault_rules=[{"operation": "CreateDataIntegrationAssociation", **fault}]
    )
    task = task_for()
    with pytest.raises(TransientServiceError):
        load_handler("start_export")(task)
    stack.emulator.configure(fault_rules=[])
    busy = task | {"error": {"Error": "ExportBusy", "Cause": '{"errorMessage": "waiting for the service"}'}}
    record_failure(FailedExport.model_validate(busy), StateTable(get_settings().state_table_name))
    return task


def _ledger() -> dict[str, str]:
    jobs = StateTable(get_settings().state_table_name).list_jobs(DOMAIN, "_profile")
    return {job["sk"]: job["state"] for job in jobs}


def _next_request() -> dict[str, Any]:
    return load_handler("start_export")(
        task_for(
            executionArn=task_for()["executionArn"] + "-next",
            requestKey="scheduled:2026-11-03T00:00:00Z",
            window={"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T23:30:00Z"},
        )
    )


def test_a_job_whose_execution_gave_up_after_an_ambiguous_answer_is_closed_when_its_lease_is_taken_over(stack):
    # Given a Create that took effect but answered an error, and an execution that then gave up
    _gave_up_after_an_ambiguous_submission(stack, fault="InternalServiceError", phase="after", count=1)
    assert _ledger() == {"JOB#2026-11-01T00:00:00Z#2026-11-01T23:30:00Z": "SUBMITTING"}
    stack.emulator.wait_idle(timeout=60)
    # When the next request takes the object type over once the service shows that job ended
    assert _next_request()["status"] == "SUBMITTED"
    # Then the ledger no longer says the given-up job runs: it ran, and nobody follows it
    assert _ledger() == {
        "JOB#2026-11-01T00:00:00Z#2026-11-01T23:30:00Z": "ABANDONED",
        "JOB#2026-11-01T00:00:00Z#2026-11-02T23:30:00Z": "SUBMITTED",
    }


def test_a_submission_that_never_showed_is_closed_unconfirmed_when_its_lease_is_taken_over(stack, monkeypatch):
    # Given a Create refused by throttling (it never ran) and an execution that then gave up
    reconfigure(monkeypatch, UNSUBMITTED_LEASE_TTL_SECONDS="1")
    _gave_up_after_an_ambiguous_submission(stack, fault="ThrottlingException", count=1)
    # When the next request takes the lease over after the unsubmitted-lease TTL
    time.sleep(1.2)
    assert _next_request()["status"] == "SUBMITTED"
    # Then the first window's item is UNCONFIRMED (never shown), not left SUBMITTING
    assert _ledger() == {
        "JOB#2026-11-01T00:00:00Z#2026-11-01T23:30:00Z": "UNCONFIRMED",
        "JOB#2026-11-01T00:00:00Z#2026-11-02T23:30:00Z": "SUBMITTED",
    }
    assert len(stack.emulator.jobs()) == 1
