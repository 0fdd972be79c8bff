"""Triggers on the offline stack: schedule ticks as EventBridge Scheduler sends them, and export
requests from other systems through the EventBridge rule, with their result events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from local.observe import versions
from tests.e2e_local.conftest import DAY0, Seeder, deploy

pytestmark = pytest.mark.e2e
REQUESTED = "Customer Profiles Export Requested"
SOURCE = "customer-profiles-export.requests"


@pytest.fixture(scope="module")
def deployed():
    yield from deploy({"DomainNames": "crm,web", "ObjectTypes": "_profile,_order"})


def request(detail: object, source: str = SOURCE) -> dict:
    return {"Source": source, "DetailType": REQUESTED, "Detail": json.dumps(detail), "EventBusName": "default"}


def test_a_redelivered_schedule_tick_exports_the_same_window_and_starts_no_second_job(stack):
    stack, observer = stack
    Seeder(stack, "crm").add("_profile", 30, DAY0, DAY0 + timedelta(hours=20), seed=11)
    stack.emulator_control.configure(job_duration_seconds=300)
    tick_time = DAY0 + timedelta(days=1)
    # The same tick delivered twice, the second while the first is still exporting
    first = stack.fire_schedule(scheduled_time=tick_time)
    second = stack.fire_schedule(scheduled_time=tick_time)
    results = [stack.wait_execution(arn, timeout=180) for arn in (first, second)]
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"], results
    inputs = [json.loads(r["input"]) for r in results]
    assert inputs[0] == inputs[1] == {"scheduledTime": "2026-11-02T00:00:00Z"}
    jobs = stack.emulator_control.jobs()
    # 2 domains x 2 object types: one job each, never a duplicate
    assert len(jobs) == 4
    assert len({(j["domainName"], j["objectType"], j["startTimeMs"], j["endTimeMs"]) for j in jobs}) == 4
    assert observer.watermark("crm", "_profile") == "2026-11-01T23:30:00Z"
    # and each job is reported once: one run record, one Succeeded event, whichever execution adopted it
    succeeded = [e for e in observer.result_events() if e["detail-type"] == "Customer Profiles Export Succeeded"]
    assert sorted((e["detail"]["domainName"], e["detail"]["objectType"]) for e in succeeded) == [
        ("crm", "_order"),
        ("crm", "_profile"),
        ("web", "_order"),
        ("web", "_profile"),
    ]
    assert all(len(observer.runs(d, t)) == 1 for d in ("crm", "web") for t in ("_profile", "_order"))


def test_a_valid_request_exports_a_backfill_and_emits_a_succeeded_event(stack):
    stack, observer = stack
    objects = Seeder(stack, "web").add("_order", 18, DAY0 + timedelta(days=2), DAY0 + timedelta(days=3), seed=12)
    before = observer.watermark("web", "_order")
    detail = {
        "domainName": "web",
        "objectTypes": ["_order"],
        "startTime": "2026-11-03T00:00:00Z",
        "endTime": "2026-11-04T00:00:00Z",
        "correlationId": "crm-backfill-7",
    }
    (arn,) = stack.put_events([request(detail)]).execution_arns
    result = stack.wait_execution(arn, timeout=120)
    assert result["status"] == "SUCCEEDED", result
    (event,) = observer.result_events()
    assert event["detail-type"] == "Customer Profiles Export Succeeded"
    assert event["source"] == "customer-profiles-export"
    body = event["detail"]
    assert (body["domainName"], body["objectType"], body["correlationId"]) == ("web", "_order", "crm-backfill-7")
    assert body["window"] == {"start": "2026-11-03T00:00:00Z", "end": "2026-11-04T00:00:00Z"}
    assert body["records"] == 18 and body["files"] >= 1 and body["bytes"] > 0
    assert body["executionArn"] == arn
    manifest_key = body["manifest"].split("/", 3)[3]
    assert versions(observer.manifest_records(manifest_key)) == versions(objects)
    # A backfill never moves the watermark
    assert observer.watermark("web", "_order") == before


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"domainName": "billing"}, "domainName: billing is not a configured domain (configured: crm, web)"),
        ({"objectTypes": ["_case"]}, "objectTypes: _case is not a configured object type"),
        ({"startTime": "last tuesday"}, "startTime: must be an ISO 8601 date-time"),
        ({"startTime": "20261001"}, "startTime: must be an ISO 8601 date-time"),
        ({"startTime": "0001-01-01T00:00:00Z"}, "startTime: must not be before 1970"),
        ({"scheduledTime": "2030-01-01T00:00:00Z"}, "scheduledTime: 2030-01-01T00:00:00Z is in the future"),
        ({"domain_name": "crm"}, "domain_name: is not a known field"),
        ({"startTime": "2026-11-05T00:00:00Z", "endTime": "2026-11-04T00:00:00Z"}, "must be before endTime"),
        (
            {"startTime": "2026-11-01T00:00:00Z", "endTime": "2099-01-01T00:00:00Z"},
            "endTime: 2099-01-01T00:00:00Z is later than",
        ),
        ({"domainName": "crm", "objectType": "_profile"}, "objectType: is not a known field"),
        ({"objectTypes": "_profile"}, "objectTypes: Input should be a valid list"),
    ],
)
def test_a_bad_request_fails_fast_with_a_clear_error_one_notification_and_no_state_change(stack, detail, expected):
    stack, observer = stack
    jobs_before = len(stack.emulator_control.jobs())
    watermarks_before = {(d, t): observer.watermark(d, t) for d in ("crm", "web") for t in ("_profile", "_order")}
    runs_before = sum(len(observer.runs(d, t)) for d, t in watermarks_before)

    (arn,) = stack.put_events([request(detail)]).execution_arns
    result = stack.wait_execution(arn, timeout=60)

    assert result["status"] == "FAILED" and result["error"] == "ExportRequestRejected"
    (message,) = observer.notifications()
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert "request rejected (InvalidExportRequest)" in message["Subject"]
    assert expected in message["Message"]
    assert "nothing was changed" in message["Message"]
    (event,) = observer.result_events()
    assert event["detail-type"] == "Customer Profiles Export Failed" and expected in event["detail"]["message"]
    assert len(stack.emulator_control.jobs()) == jobs_before
    assert {(d, t): observer.watermark(d, t) for d, t in watermarks_before} == watermarks_before
    assert sum(len(observer.runs(d, t)) for d, t in watermarks_before) == runs_before


@pytest.mark.parametrize("raw", [[], "hello", 42, None])
def test_an_input_that_is_not_an_object_is_rejected_with_one_notification(stack, raw):
    stack, observer = stack
    result = stack.wait_execution(stack.start_execution(json.dumps(raw)), timeout=60)
    assert result["status"] == "FAILED" and result["error"] == "ExportRequestRejected"
    (message,) = observer.notifications()
    assert "input: must be a JSON object" in message["Message"]
    assert "stackTrace" not in message["Message"]
    (event,) = observer.result_events()
    assert event["detail"]["status"] == "REJECTED"


def test_an_event_from_another_source_or_detail_type_starts_nothing(stack):
    stack, _ = stack
    assert stack.put_events([request({}, source="someone.else")]).execution_arns == []
    other = {"Source": SOURCE, "DetailType": "Something Else", "Detail": "{}", "EventBusName": "default"}
    assert stack.put_events([other]).execution_arns == []
