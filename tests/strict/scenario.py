"""One run of everything the pipeline's roles do, observed as a user would, for comparing template variants.

`run_scenario` yields `(step, observation)` pairs lazily, so a caller comparing with the full
template's run can stop at the first difference. Steps, cheapest first:

0. deployment checks AWS makes (the state machine role may deliver logs),
1. a schedule tick that creates the data integration and association (schedule role, every function
   but RecordFailure, SNS, result events, KMS on S3 and SNS),
2. an export request through EventBridge that updates the association (the rule's role),
3. a failing export (RecordFailure),
4. a rejected request,
5. a tick Step Functions refuses: the schedule's dead-letter queue (the schedule role's sqs:SendMessage),
6. Iceberg maintenance of the tables the first run made (the maintenance role and its schedule's),
7. a maintenance whose VACUUM never finishes: the alert on the topic (sns:Publish, the notification key),
8. a maintenance tick Step Functions refuses (its schedule role's sqs:SendMessage).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from local.emulator.synthetic import generate
from local.harness.deployment import DeploymentError, check_state_machine_role
from local.harness.firing import DeliveryFailed
from local.harness.stack import DeployedStack, OfflineStack
from local.observe import PipelineObserver
from tests.strict.conftest import DOMAIN

MAINTENANCE_SCHEDULE = "MaintenanceStateMachineSchedule"
RECONCILE_SCHEDULE = "ExportStateMachineReconcile"
DAY0 = datetime(2026, 11, 1, tzinfo=UTC)
OBJECT_TYPE = "_profile"
Observation = dict[str, Any]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def clear_state(stack: DeployedStack, observer: PipelineObserver) -> None:
    """Empty the stack's tables, bucket and queues so every run starts from the same state.

    The bucket too: the job ledger is emptied with the table, and a job's files are found by its window,
    so a previous run's folder of the same window would be indexed with this run's (in a real account
    the ledger keeps windows unique and such a folder cannot exist).
    """
    s3 = stack.client("s3")
    bucket = stack.outputs["ExportBucketName"]
    # The catalog goes with the bucket: a current-state table would point to deleted Iceberg metadata.
    glue = stack.client("glue")
    database = stack.outputs["GlueDatabaseName"]
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
        for table in page["TableList"]:
            glue.delete_table(DatabaseName=database, Name=table["Name"])
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    ddb = stack.client("dynamodb")
    for output, keys in (("StateTableName", ("pk", "sk")), ("IdempotencyTableName", ("id",))):
        table = stack.outputs[output]
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                ddb.delete_item(TableName=table, Key={key: item[key] for key in keys})
    sqs = stack.client("sqs")
    for output in ("ScheduleDeadLetterQueueUrl", "ExportRequestDeadLetterQueueUrl"):
        # Received and deleted: AWS (and moto) allow one PurgeQueue a minute.
        url = stack.outputs[output]
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    observer.notifications()
    observer.result_events()


def _run(stack: DeployedStack, observer: PipelineObserver, execution_arn: str | None) -> Observation:
    if execution_arn is None:
        return {"started": False}
    result = stack.wait_execution(execution_arn, timeout=120)
    return {
        "status": result["status"],
        "error": result.get("error"),
        "notifications": sorted(
            (n["MessageAttributes"]["status"]["Value"], n["Subject"]) for n in observer.notifications()
        ),
        "events": sorted((e["detail-type"], e["detail"].get("status")) for e in observer.result_events()),
        "watermark": observer.watermark(DOMAIN, OBJECT_TYPE),
        # the run index on-call reads (a failure must be recorded there too)
        "runs": sorted((r["status"], r["windowStart"], r["windowEnd"]) for r in observer.runs(DOMAIN, OBJECT_TYPE)),
    }


def _refused_tick(offline: OfflineStack, stack: DeployedStack, schedule: str | None, moment: datetime) -> Observation:
    """Step Functions refuses every start of a tick: Scheduler retries, then dead-letters it (its role's SQS grant)."""
    offline.fail_next_trigger_starts(100)
    try:
        stack.fire_schedule(schedule, scheduled_time=moment)
        return {"dead_lettered": None}
    except DeliveryFailed as failed:
        return {"dead_lettered": failed.outcome.dead_lettered, "error": failed.outcome.error_code}
    finally:
        offline.fail_next_trigger_starts(0)


def run_scenario(
    offline: OfflineStack, stack: DeployedStack, observer: PipelineObserver
) -> Iterator[tuple[str, Observation]]:
    """Run the steps on `stack` (the primary one or another of the same account) and yield what was seen."""
    offline.emulator_control.reset()
    clear_state(stack, observer)
    offline.emulator_control.seed(
        DOMAIN, OBJECT_TYPE, generate(OBJECT_TYPE, 25, _ms(DAY0), _ms(DAY0 + timedelta(hours=20)), seed=3)
    )

    try:
        for machine in stack.deployment.plan.state_machines:
            role = stack.deployment.hidden[machine.role_output or ""]
            logging = machine.logging_output
            check_state_machine_role(offline.account, stack.stack_name, machine.logical_id, role, logging)
        yield "deployment checks", {"refused": None}
    except DeploymentError as refused:
        yield "deployment checks", {"refused": str(refused).split(": ", 2)[-1].split(" (")[0]}

    try:
        tick = stack.fire_schedule(scheduled_time=DAY0 + timedelta(days=1))
    except DeliveryFailed as failed:
        yield "first scheduled run", {"started": False, "error": failed.outcome.error_code}
        return
    yield "first scheduled run", _run(stack, observer, tick)

    request = {
        "Source": "customer-profiles-export.requests",
        "DetailType": "Customer Profiles Export Requested",
        "Detail": json.dumps({"domainName": DOMAIN, "scheduledTime": "2026-11-03T00:00:00Z"}),
        "EventBusName": "default",
    }
    started = stack.put_events([request]).execution_arns
    yield "request updating the association", _run(stack, observer, started[0] if started else None)

    offline.emulator_control.configure(fail_object_types=[OBJECT_TYPE])
    failing = stack.start_execution({"scheduledTime": "2026-11-04T00:00:00Z"})
    yield "failing export", _run(stack, observer, failing)
    offline.emulator_control.configure(fail_object_types=[])

    yield "rejected request", _run(stack, observer, stack.start_execution({"domainName": "no-such-domain"}))

    yield "tick refused by Step Functions", _refused_tick(offline, stack, None, DAY0 + timedelta(days=5))

    # The reconcile schedule starts a full export with its own role, and dead-letters a refused tick.
    try:
        reconcile = stack.fire_schedule(RECONCILE_SCHEDULE, scheduled_time=DAY0 + timedelta(days=6))
    except DeliveryFailed as failed:
        yield "reconcile", {"started": False, "error": failed.outcome.error_code}
        return
    yield "reconcile", _run(stack, observer, reconcile)

    yield (
        "reconcile tick refused by Step Functions",
        _refused_tick(offline, stack, RECONCILE_SCHEDULE, DAY0 + timedelta(days=13)),
    )

    try:
        maintenance = stack.fire_schedule(MAINTENANCE_SCHEDULE, scheduled_time=DAY0 + timedelta(days=7))
    except DeliveryFailed as failed:
        yield "maintenance", {"started": False, "error": failed.outcome.error_code}
        return
    yield "maintenance", _run(stack, observer, maintenance)

    offline.account.athena_faults.need_more_vacuum_runs(100)
    try:
        failing_maintenance = stack.start_execution({}, state_machine="MaintenanceStateMachine")
        yield "maintenance that never finishes", _run(stack, observer, failing_maintenance)
    finally:
        offline.account.athena_faults.need_more_vacuum_runs(0)

    yield (
        "maintenance tick refused by Step Functions",
        _refused_tick(offline, stack, MAINTENANCE_SCHEDULE, DAY0 + timedelta(days=14)),
    )


def first_difference(
    offline: OfflineStack,
    stack: DeployedStack,
    observer: PipelineObserver,
    baseline: list[tuple[str, Observation]],
) -> tuple[str, Observation, Observation] | None:
    """The first step whose observation differs from the baseline's (the run stops there), or None."""
    for (step, seen), (_, expected) in zip(run_scenario(offline, stack, observer), baseline, strict=True):
        if seen != expected:
            return step, expected, seen
    return None
