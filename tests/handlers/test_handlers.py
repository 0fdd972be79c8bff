"""Each handler from its sample event, and the handler chain of one export, on moto + the emulator."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from cpexport.errors import ExportBusy, ExportQuotaExceeded, TransientServiceError
from cpexport.models import (
    CheckedExport,
    ExportTask,
    FailedExport,
    NotifyInput,
    PlanInput,
    StartedExport,
)

from local.emulator.synthetic import generate
from tests.handlers.conftest import DOMAIN, Stack, load_event, load_handler

DAY1 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
HOUR = 3600 * 1000


@pytest.mark.parametrize(
    ("event", "model"),
    [
        ("plan", PlanInput),
        ("start_export", ExportTask),
        ("check_export", StartedExport),
        ("index_export", CheckedExport),
        ("record_failure", FailedExport),
        ("record_failure_caught", FailedExport),
        ("notify", NotifyInput),
        ("notify_rejected", NotifyInput),
    ],
)
def test_every_sample_event_is_a_valid_input_of_its_function(event, model):
    assert model.model_validate(load_event(event))


def seed(stack: Stack, object_type: str, count: int, start_ms: int, end_ms: int, seed_value: int = 1) -> list[dict]:
    objects = generate(object_type, count, start_ms, end_ms, seed_value)
    stack.emulator.seed(DOMAIN, object_type, objects)
    return objects


def until_finished(check, started: dict[str, Any], attempts: int = 200, pause: float = 0.02) -> dict[str, Any]:
    state = started
    for _ in range(attempts):
        state = check(state)
        if state["status"] != "IN_PROGRESS":
            return state
        time.sleep(pause)
    raise AssertionError(f"export never finished: {state}")


def until_indexed(index, checked: dict[str, Any], attempts: int = 20) -> dict[str, Any]:
    """Call Index as the state machine does: again after SETTLING (the Wait is the caller's) and READY."""
    state = checked
    for _ in range(attempts):
        state = index(state)
        if state["status"] not in ("SETTLING", "READY"):
            return state
    raise AssertionError(f"files never settled: {state}")


def exported_ids(stack: Stack, manifest: dict[str, Any]) -> list[str]:
    import json

    import boto3

    s3 = boto3.client("s3")
    ids = []
    listed = s3.get_object(Bucket=stack.bucket, Key=manifest["fileList"])["Body"].read().decode()
    for file in [json.loads(line) for line in listed.splitlines() if line.strip()]:
        body = s3.get_object(Bucket=stack.bucket, Key=file["key"])["Body"].read().decode()
        ids += [json.loads(line)["id"] for line in body.splitlines() if line.strip()]
    return ids


def test_the_handler_chain_exports_exactly_the_window_and_advances_the_watermark(stack):
    # Given 250 profiles updated on day 1 and 7 updated after the window ends
    inside = seed(stack, "_profile", 250, DAY1, DAY1 + 23 * HOUR)
    seed(stack, "_profile", 7, DAY1 + 23 * HOUR + 1_800_000, DAY1 + 24 * HOUR, seed_value=2)
    plan, start, check = load_handler("plan"), load_handler("start_export"), load_handler("check_export")
    index, notify = load_handler("index_export"), load_handler("notify")

    # When the sample plan runs (clock 2026-11-02T00:00Z) and each export goes through start/check/index
    planned = plan(load_event("plan"))
    assert [(t["objectType"], t["window"]) for t in planned["exports"]] == [
        ("_profile", {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T23:30:00Z"}),
        ("_order", {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T23:30:00Z"}),
    ]
    results = []
    for task in planned["exports"]:
        finished = until_finished(check, start(task))
        assert finished["status"] == "COMPLETED"
        first_listing = index(finished)
        assert first_listing["status"] == "SETTLING"  # never indexed on the first look after COMPLETED
        results.append(until_indexed(index, first_listing))
    sent = notify(
        {
            "executionArn": planned["executionArn"],
            "correlationId": planned["correlationId"],
            "results": results,
            "skipped": planned["skipped"],
        }
    )

    # Then the manifest lists files holding exactly the profiles of the window
    profile = results[0]
    manifest = stack.read_json(profile["manifestKey"])
    assert sorted(exported_ids(stack, manifest)) == sorted(o["id"] for o in inside)
    assert manifest["recordCount"] == profile["records"] == 250
    assert manifest["fileCount"] == profile["files"] == 7  # 40 records per file
    assert manifest["fileList"] == profile["manifestKey"].removesuffix(".json") + ".jsonl"
    assert profile["manifestKey"].endswith("/_profile.manifest.json")  # beside the data folder, not in it
    # and the watermark moved to the window's end, with the run in the index
    assert stack.watermark("_profile") == "2026-11-01T23:30:00Z"
    assert [(r["status"], r["records"], r["requestKey"]) for r in stack.runs("_profile")] == [
        ("SUCCEEDED", "250", "scheduled:2026-11-02T00:00:00Z")
    ]
    # and an empty object type still succeeds with zero files
    assert (results[1]["status"], results[1]["files"]) == ("SUCCEEDED", 0)
    assert stack.watermark("_order") == "2026-11-01T23:30:00Z"
    # and on-call got one message with filterable attributes, other systems one event per export
    (message,) = stack.messages(stack.notifications_queue_url)
    assert sent["status"] == "SUCCEEDED"
    assert message["Subject"].startswith("Customer Profiles export SUCCEEDED: demo-domain: 2 exported, 0 failed")
    assert message["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    assert "demo-domain / _profile: SUCCEEDED" in message["Message"]
    events = stack.messages(stack.events_queue_url)
    assert sorted((e["detail-type"], e["detail"]["objectType"]) for e in events) == [
        ("Customer Profiles Export Succeeded", "_order"),
        ("Customer Profiles Export Succeeded", "_profile"),
    ]


def test_a_redelivered_start_for_the_same_window_adopts_the_job_instead_of_starting_another(stack):
    stack.emulator.configure(job_duration_seconds=1.0)
    start = load_handler("start_export")
    task = load_event("start_export")
    first = start(task)
    # Another execution (a re-delivered schedule tick) asks for the same window
    second = start(task | {"executionArn": task["executionArn"] + "-again"})
    assert (first["adopted"], second["adopted"]) == (False, True)
    assert len(stack.emulator.jobs()) == 1


def test_a_retried_invocation_in_the_same_execution_returns_the_first_result(stack):
    start = load_handler("start_export")
    task = load_event("start_export")
    assert start(task) == start(task)
    assert len(stack.emulator.jobs()) == 1


def test_a_second_window_waits_while_a_job_runs_and_then_starts_where_the_first_ended(stack):
    stack.emulator.configure(job_duration_seconds=0.5)
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    task = load_event("start_export")
    first = start(task)
    later = task | {
        "executionArn": task["executionArn"] + "-2",
        "window": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T23:30:00Z"},
        "requestKey": "scheduled:2026-11-03T00:00:00Z",
    }
    with pytest.raises(ExportBusy, match=re.escape("the job of 2026-11-01T00:00:00Z..2026-11-01T23:30:00Z")):
        start(later)
    assert len(stack.emulator.jobs()) == 1
    until_indexed(index, until_finished(check, first))
    # After the first is indexed, the overlapping window shrinks to what is left
    second = start(later)
    assert second["window"] == {"start": "2026-11-01T23:30:00Z", "end": "2026-11-02T23:30:00Z"}
    until_indexed(index, until_finished(check, second))
    assert stack.watermark("_profile") == "2026-11-02T23:30:00Z"
    assert len(stack.emulator.jobs()) == 2


def test_a_stale_status_after_an_update_is_not_taken_for_the_new_job(stack):
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    task = load_event("start_export")
    until_indexed(index, until_finished(check, start(task)))
    stack.emulator.configure(stale_status_seconds=0.6, job_duration_seconds=0.1)
    nxt = task | {"window": {"start": "2026-11-01T23:30:00Z", "end": "2026-11-02T23:30:00Z"}}
    started = start(nxt)
    # List still shows the previous job: COMPLETED, but for the previous window
    checked = check(started)
    assert checked["status"] == "IN_PROGRESS"
    finished = until_finished(check, checked)
    assert finished["status"] == "COMPLETED"
    assert stack.emulator.jobs()[-1]["status"] == "COMPLETED"


def test_a_failed_job_is_recorded_and_the_watermark_stays_so_the_next_run_retries_the_window(stack):
    stack.emulator.configure(fail_object_types=["_profile"])
    start, check = load_handler("start_export"), load_handler("check_export")
    record, notify = load_handler("record_failure"), load_handler("notify")
    task = load_event("start_export")
    failed = until_finished(check, start(task))
    assert failed["status"] == "FAILED" and failed["statusMessage"]
    result = record(failed)
    assert result["status"] == "FAILED"
    assert stack.watermark("_profile") is None
    (run,) = stack.runs("_profile")
    assert run["status"] == "FAILED" and failed["statusMessage"] in run["message"]
    verdict = notify({"executionArn": task["executionArn"], "results": [result], "skipped": []})
    assert verdict["status"] == "FAILED"
    (message,) = stack.messages(stack.notifications_queue_url)
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert "the next run exports this window again" in message["Message"]
    # A replay of the same tick re-runs the window as a new job with a window of its own: its end a
    # second earlier (windows are never reused, so the failed job's status can never be read as its own)
    stack.emulator.configure(fail_object_types=[])
    rerun = start(task | {"executionArn": task["executionArn"] + "-next"})
    assert rerun["status"] == "SUBMITTED"
    assert rerun["window"] == {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T23:29:59Z"}
    assert until_finished(check, rerun)["status"] == "COMPLETED"
    assert len(stack.emulator.jobs()) == 2


def test_throttling_that_outlasts_botocore_retries_is_a_transient_error_and_starts_nothing(stack):
    stack.emulator.configure(throttle_rate=1.0)
    with pytest.raises(TransientServiceError, match="ThrottlingException"):
        load_handler("start_export")(load_event("start_export"))
    stack.emulator.configure(throttle_rate=0.0)
    assert stack.emulator.jobs() == []


def test_the_account_wide_job_quota_is_reported_as_its_own_error(stack):
    stack.emulator.configure(max_concurrent_jobs=0)
    with pytest.raises(ExportQuotaExceeded):
        load_handler("start_export")(load_event("start_export"))
    assert stack.emulator.jobs() == []


def test_a_job_that_outlasts_the_timeout_is_reported_timed_out_and_keeps_the_watermark(stack, monkeypatch):
    monkeypatch.setenv("EXPORT_TIMEOUT_HOURS", "0.01")  # 36 s of poll waits
    from cpexport.config import get_settings

    get_settings.cache_clear()
    stack.emulator.configure(job_duration_seconds=30)
    start, check, record = load_handler("start_export"), load_handler("check_export"), load_handler("record_failure")
    state = start(load_event("start_export"))
    statuses = []
    while state.get("status") not in ("TIMED_OUT", "COMPLETED") and len(statuses) < 10:
        state = check(state)
        statuses.append(state["status"])
    assert statuses[-1] == "TIMED_OUT"
    assert state["poll"]["waitedSeconds"] >= 36
    result = record(state)
    assert result["status"] == "TIMED_OUT" and "cannot be cancelled" in result["message"]
    assert stack.watermark("_profile") is None


def test_a_rejected_request_notifies_once_and_emits_a_failed_event(stack):
    verdict = load_handler("notify")(load_event("notify_rejected"))
    assert verdict["status"] == "FAILED"
    (message,) = stack.messages(stack.notifications_queue_url)
    assert "request rejected (InvalidExportRequest)" in message["Subject"]
    assert "unknown-domain is not a configured domain" in message["Message"]
    (event,) = stack.messages(stack.events_queue_url)
    assert event["detail-type"] == "Customer Profiles Export Failed" and event["detail"]["status"] == "REJECTED"


def test_a_caught_error_is_recorded_with_its_class_and_message(stack):
    result = load_handler("record_failure")(load_event("record_failure_caught"))
    assert result["status"] == "FAILED"
    assert result["message"].startswith("ExportBusy: demo-domain/_profile: a job for another window")
    assert result["reported"] is True


def test_plan_emits_the_watermark_age_the_stale_export_alarm_watches(stack, capsys):
    """The alarm in template.yaml and the metric the Plan function emits must agree on every dimension."""
    from samtranslator.yaml_helper import yaml_parse

    from tests.handlers.conftest import ROOT

    alarm = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]["StaleExportAlarm"]["Properties"]
    load_handler("plan")(load_event("plan"))
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (metric,) = [m for m in emitted if alarm["MetricName"] in m]
    (definition,) = metric["_aws"]["CloudWatchMetrics"]
    assert definition["Namespace"] == alarm["Namespace"]
    assert sorted(definition["Dimensions"][0]) == sorted(d["Name"] for d in alarm["Dimensions"])
    assert metric["service"] == "customer-profiles-export"
    assert metric["StackName"] == "customer-profiles-export"
    # The first run's window starts at the initial start, 24.5 hours before the sample clock
    assert metric[alarm["MetricName"]] == [24.0]
