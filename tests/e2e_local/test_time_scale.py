"""A scaled offline stack is AWS at another speed: scheduled days served at a small time scale, with
AppIntegrations throttling, failing and answering errors for Updates that did or did not start a job,
reach the outcomes AWS's rules give (`local.durations`: the functions' wall-clock rules scale too)."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from local.durations import scaled_rules
from local.observe import missing_versions
from tests.e2e_local.conftest import DAY0, Seeder, deploy, ms

pytestmark = pytest.mark.e2e
DOMAIN = "scaled"
TIME_SCALE = 0.01
# The reads the pipeline makes of AppIntegrations: throttled 20 % of the time, then 12.5 % internal errors.
READS = ("GetDataIntegration", "ListDataIntegrationAssociations", "ListDataIntegrations")
FLAKY_READS = [
    *({"operation": read, "fault": "ThrottlingException", "rate": 0.2} for read in READS),
    *({"operation": read, "fault": "InternalServiceError", "rate": 0.125} for read in READS),
]
UPDATE = "UpdateDataIntegrationAssociation"
# On AWS an execution that meets one ambiguous Update passes within minutes; a failed run at this scale
# would take Start's whole ExportBusy budget (20,450 s x 0.01).
TICK_TIMEOUT = 300


@pytest.fixture(scope="module")
def deployed():
    yield from deploy({"DomainNames": DOMAIN, "ObjectTypes": "_profile"}, time_scale=TIME_SCALE)


def test_the_functions_run_with_their_wall_clock_rules_scaled(stack):
    stack, _observer = stack
    lambda_client = stack.client("lambda")
    configuration = lambda_client.get_function_configuration(FunctionName=stack.physical_id("StartExportFunction"))
    deployed = configuration["Environment"]["Variables"]
    # 20 min x 0.01 = 12 s, 5 min x 0.01 = 3 s -> its 5 s floor, (24 h + 10 x 2 min + 1 h) x 0.01 = 912 s
    assert {name: deployed[name] for name in scaled_rules({}, TIME_SCALE)} == {
        "UNSUBMITTED_LEASE_TTL_SECONDS": "12",
        "AMBIGUOUS_SUBMIT_GRACE_SECONDS": "5",
        "LEASE_HOLDER_DEADLINE_SECONDS": "912",
    }


def test_ambiguous_and_throttled_answers_served_scaled_reach_the_outcomes_of_awss_rules(stack):
    stack, observer = stack
    seeder = Seeder(stack, DOMAIN)
    control = stack.emulator_control
    days = {
        # Day 1 creates the association while a third of the reads fail (botocore and Retry absorb them)
        1: {"fault_rules": FLAKY_READS},
        # Day 2: the Update is refused with a 500: no job started, but Start cannot know. On AWS the
        # retry waits out the 5-minute grace within its ExportBusy retries, gives the window up and
        # exports the next one; with an unscaled grace the scaled retries ran out first (FAILED), and
        # every later day waited on that window's lease
        2: {"fault_rules": [{"operation": UPDATE, "fault": "InternalServiceError", "count": 1}, *FLAKY_READS]},
        # Day 3: the Update starts its job but answers throttling, and List shows the previous job for a
        # while: the retry waits within the grace, then adopts the job
        3: {
            "fault_rules": [{"operation": UPDATE, "fault": "ThrottlingException", "phase": "after", "count": 1}],
            "stale_status_seconds": 120,
        },
        # Day 4: nothing blocks the next day
        4: {"fault_rules": FLAKY_READS},
    }
    for day, faults in days.items():
        seeder.add(
            "_profile", 20, DAY0 + timedelta(days=day - 1), DAY0 + timedelta(days=day - 1, hours=23), seed=40 + day
        )
        control.configure(**{"random_seed": day, "stale_status_seconds": 0, **faults})
        arn = stack.fire_schedule(scheduled_time=DAY0 + timedelta(days=day))
        result = stack.wait_execution(arn, timeout=TICK_TIMEOUT)
        assert result["status"] == "SUCCEEDED", (day, _why(stack, arn), observer.notifications())
    control.configure(fault_rules=[], stale_status_seconds=0)

    # Then every window was exported: the windows tile time from the first to the last tick's safe end
    watermark = "2026-11-04T23:30:00Z"
    assert observer.watermark(DOMAIN, "_profile") == watermark
    runs = [r for r in observer.runs(DOMAIN, "_profile") if r["status"] == "SUCCEEDED"]
    assert runs[0]["windowStart"] == "2026-11-01T00:00:00Z" and runs[-1]["windowEnd"] == watermark
    assert all(earlier["windowEnd"] == later["windowStart"] for earlier, later in pairwise(runs))
    exported = observer.exported_versions(DOMAIN, "_profile")
    assert not missing_versions(seeder.seeded["_profile"], exported, ms(DAY0 + timedelta(days=4)))
    # and nothing was left behind: no lease, no ledger item that still claims a job runs
    assert _left_behind(stack, observer) == []
    # Day 2's refused Update started nothing, day 3's throttled one started the job it adopted: 4 jobs in all
    assert len(control.jobs()) == 4


def _left_behind(stack: Any, observer: Any) -> list[str]:
    items = stack.client("dynamodb").query(
        TableName=observer.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"EXPORT#{DOMAIN}#_profile"}},
    )["Items"]
    return [
        f"{item['sk']['S']}: {item.get('state', {}).get('S', '')}"
        for item in items
        if item["sk"]["S"] == "LEASE"
        or (item["sk"]["S"].startswith("JOB#") and item["state"]["S"] in ("SUBMITTING", "SUBMITTED"))
    ]


def _why(stack: Any, arn: str) -> list[str]:
    """The errors the execution's Lambda tasks raised, for the assertion message."""
    return [
        str(event.get("lambdaFunctionFailedEventDetails", {}).get("cause", ""))[:200]
        for event in stack.execution_history(arn)
        if event["type"] == "LambdaFunctionFailed"
    ][-5:]
