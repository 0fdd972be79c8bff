"""The export pipeline end to end on the offline stack: schedule ticks over several days."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from local.observe import missing_versions, versions
from tests.chat_contract import chat_of, sns_problems
from tests.e2e_local.conftest import DAY0, Seeder, deploy, ms, run, tick

pytestmark = pytest.mark.e2e
DOMAIN = "shop"


@pytest.fixture(scope="module")
def deployed():
    yield from deploy({"DomainNames": DOMAIN, "ObjectTypes": "_profile,_order,_asset,_case"})


def test_scheduled_days_export_every_object_once_with_windows_that_tile_time(stack):
    stack, observer = stack
    seeder = Seeder(stack, DOMAIN)
    # Day 1: profiles, orders and assets updated through the day (cases: none yet)
    seeder.add("_profile", 150, DAY0, DAY0 + timedelta(hours=23), seed=1)
    seeder.add("_order", 60, DAY0, DAY0 + timedelta(hours=23), seed=2)
    seeder.add("_asset", 30, DAY0, DAY0 + timedelta(hours=23), seed=3)

    # First tick: the associations are created, every type exports [initial, day 2 - 30 min)
    first = tick(stack, day=1)
    assert first["status"] == "SUCCEEDED", first
    jobs = stack.emulator_control.jobs()
    assert len(jobs) == 4 and {j["objectType"] for j in jobs} == {"_profile", "_order", "_asset", "_case"}
    first_end = "2026-11-01T23:30:00Z"
    assert {observer.watermark(DOMAIN, t) for t in ("_profile", "_order", "_asset", "_case")} == {first_end}

    # Objects keep changing: day 2 brings new profiles and updates, some inside the lag
    seeder.add("_profile", 40, DAY0 + timedelta(hours=23, minutes=30), DAY0 + timedelta(days=1, hours=23), seed=4)
    seeder.add("_case", 12, DAY0 + timedelta(days=1), DAY0 + timedelta(days=1, hours=12), seed=5)
    late = seeder.add("_order", 5, DAY0 + timedelta(days=1, hours=23, minutes=40), DAY0 + timedelta(days=2), seed=6)

    # Second tick: updates (not creates) the same associations, windows start where the first ended
    second = tick(stack, day=2)
    assert second["status"] == "SUCCEEDED", second
    jobs = stack.emulator_control.jobs()
    assert len(jobs) == 8
    assert len({j["associationId"] for j in jobs}) == 4  # one association per object type, updated
    profile_runs = observer.runs(DOMAIN, "_profile")
    assert [(r["windowStart"], r["windowEnd"]) for r in profile_runs] == [
        ("2026-11-01T00:00:00Z", first_end),
        (first_end, "2026-11-02T23:30:00Z"),
    ]
    # The second run exported exactly the profiles changed since the first
    second_profiles = versions(observer.manifest_records(profile_runs[1]["manifestKey"]))
    expected = {
        v for v in versions(seeder.seeded["_profile"]) if ms(DAY0 + timedelta(hours=23, minutes=30)) <= v.last_updated
    }
    assert second_profiles == expected and len(expected) == 40

    # Third tick picks up what fell inside the lag last time
    third = tick(stack, day=3)
    assert third["status"] == "SUCCEEDED", third
    assert versions(late) <= observer.exported_versions(DOMAIN, "_order")

    # Nothing seeded before a watermark is missing from the manifests, nothing exported twice
    for object_type, seeded in seeder.seeded.items():
        watermark = observer.watermark(DOMAIN, object_type)
        assert watermark == "2026-11-03T23:30:00Z"
        exported = observer.exported_versions(DOMAIN, object_type)
        assert missing_versions(seeded, exported, ms(DAY0 + timedelta(days=2, hours=23, minutes=30))) == set()
        records = [
            r["id"]
            for run_ in observer.runs(DOMAIN, object_type)
            for r in observer.manifest_records(run_["manifestKey"])
        ]
        assert len(records) == len(set(records)) == len(seeded)

    # On-call got one message per execution, with a readable subject
    messages = observer.notifications()
    assert len(messages) == 3
    assert all(m["MessageAttributes"]["status"]["Value"] == "SUCCEEDED" for m in messages)
    assert any("shop: 4 exported, 0 failed" in m["Subject"] for m in messages)


def test_a_tick_with_nothing_new_skips_every_type_and_starts_no_job(stack):
    stack, observer = stack
    before = len(stack.emulator_control.jobs())
    again = tick(stack, day=3)  # same scheduled time as the last tick of the previous test, or earlier
    assert again["status"] == "SUCCEEDED"
    assert len(stack.emulator_control.jobs()) == before
    (message,) = observer.notifications()
    assert "0 exported, 0 failed, 4 up to date" in message["Subject"]


def test_a_failed_export_is_reported_and_its_window_retried_by_the_next_run(stack):
    stack, observer = stack
    stack.emulator_control.configure(fail_object_types=["_order"])
    failed = tick(stack, day=4)
    assert failed["status"] == "FAILED" and failed["error"] == "ExportFailed"
    assert observer.watermark(DOMAIN, "_order") == "2026-11-03T23:30:00Z"
    assert observer.watermark(DOMAIN, "_profile") == "2026-11-04T23:30:00Z"
    (message,) = observer.notifications()
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert message["Subject"].startswith("Customer Profiles export FAILED: shop: 3 exported, 1 failed")
    assert "shop / _order: FAILED" in message["Message"] and "fail_object_types" in message["Message"]
    # Chat gets the same verdict as a custom notification, with the command that exports the window now
    (published,) = observer.published()
    assert sns_problems(published["Message"], published["Subject"], published["MessageAttributes"]) == []
    chat = chat_of(published["Message"])
    assert chat["content"]["title"].endswith("PARTIALLY FAILED: shop (3 exported, 1 failed)")
    assert chat["metadata"]["threadId"] == failed["executionArn"]
    steps = " ".join(chat["content"]["nextSteps"])
    assert "cpexport run --domain shop --type _order --wait --stack-name e2e" in steps
    failure = observer.runs(DOMAIN, "_order")[-1]
    assert failure["status"] == "FAILED"
    events = observer.result_events()
    assert (
        sorted(e["detail-type"] for e in events)
        == ["Customer Profiles Export Failed"] + ["Customer Profiles Export Succeeded"] * 3
    )

    stack.emulator_control.configure(fail_object_types=[])
    recovered = tick(stack, day=5)
    assert recovered["status"] == "SUCCEEDED"
    order_runs = [r for r in observer.runs(DOMAIN, "_order") if r["status"] == "SUCCEEDED"]
    assert (order_runs[-1]["windowStart"], order_runs[-1]["windowEnd"]) == (
        "2026-11-03T23:30:00Z",
        "2026-11-05T23:30:00Z",
    )


def test_a_stale_status_after_an_update_does_not_end_the_poll_early(stack):
    stack, observer = stack
    seeder = Seeder(stack, DOMAIN)
    objects = seeder.add("_profile", 25, DAY0 + timedelta(days=5), DAY0 + timedelta(days=5, hours=12), seed=9)
    # List shows the previous (COMPLETED) job for a while after each update, and the job takes time
    stack.emulator_control.configure(stale_status_seconds=300, job_duration_seconds=600)
    result = run(stack, {"scheduledTime": "2026-11-07T00:00:00Z", "objectTypes": ["_profile"]})
    assert result["status"] == "SUCCEEDED", result
    (last,) = observer.runs(DOMAIN, "_profile")[-1:]
    assert versions(objects) <= versions(observer.manifest_records(last["manifestKey"]))
    assert last["records"] == 25


def test_more_object_types_than_the_job_quota_allows_wait_for_a_slot_and_all_export(stack):
    stack, _observer = stack
    stack.emulator_control.configure(max_concurrent_jobs=2, job_duration_seconds=120)
    result = run(stack, {"scheduledTime": "2026-11-08T00:00:00Z"}, timeout=240)
    assert result["status"] == "SUCCEEDED", result
    jobs = [
        j for j in stack.emulator_control.jobs() if j["endTimeMs"] == ms(DAY0 + timedelta(days=6, hours=23, minutes=30))
    ]
    assert len(jobs) == 4
    history = stack.execution_history(result["executionArn"])
    retried = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert any("ExportQuotaExceeded" in json.dumps(e, default=str) for e in retried)
