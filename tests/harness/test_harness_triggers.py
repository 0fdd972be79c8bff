"""Schedules and EventBridge events start the state machine with the input AWS would give it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from local.harness import OfflineStack


def test_fire_schedule_delivers_the_scheduled_time(stack: OfflineStack) -> None:
    # Given the ScheduleV2 event of the fixture state machine
    assert stack.schedules() == {"WorkflowNightly": stack.state_machine_arn(), "WeeklyRule": stack.state_machine_arn()}

    # When it fires for 02:00 UTC on 1 May 2024
    arn = stack.fire_schedule("WorkflowNightly", scheduled_time=datetime(2024, 5, 1, 2, 0, tzinfo=UTC))
    result = stack.wait_execution(arn)

    # Then the input carries the keywords EventBridge Scheduler fills in
    assert result["status"] == "SUCCEEDED"
    execution_input = json.loads(result["input"])
    assert execution_input["scheduledTime"] == "2024-05-01T02:00:00Z"
    assert execution_input["scheduleArn"] == "arn:aws:scheduler:us-east-1:123456789012:schedule/default/WorkflowNightly"
    assert json.loads(result["output"])["message"] == "hi, scheduler"


def test_fire_schedule_defaults_to_now(stack: OfflineStack) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    result = stack.wait_execution(stack.fire_schedule("WorkflowNightly"))

    scheduled = datetime.strptime(json.loads(result["input"])["scheduledTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert scheduled.replace(tzinfo=UTC) >= before


def test_a_disabled_scheduled_rule_fires_only_when_forced(stack: OfflineStack) -> None:
    # Given a scheduled EventBridge rule that is DISABLED, with an InputTransformer
    with pytest.raises(RuntimeError, match="DISABLED"):
        stack.fire_schedule("WeeklyRule")
    with pytest.raises(ValueError, match="Name the schedule"):
        stack.fire_schedule()

    # When it is fired anyway
    arn = stack.fire_schedule("WeeklyRule", datetime(2024, 6, 3, 8, 30, tzinfo=UTC), force=True)

    # Then the target got the scheduled event through its transformer
    execution_input = json.loads(stack.wait_execution(arn)["input"])
    assert execution_input == {"action": "greet", "name": "weekly", "at": "2024-06-03T08:30:00Z"}


def _order(amount: float, channel: str = "web") -> dict[str, str]:
    detail = {"amount": amount, "channel": channel, "action": "greet", "name": f"order {amount}"}
    return {"Source": "fixture.orders", "DetailType": "OrderPlaced", "Detail": json.dumps(detail)}


def test_put_events_routes_by_pattern_and_applies_input_path(stack: OfflineStack) -> None:
    # When orders above and below the numeric threshold, and one from an excluded channel, arrive
    result = stack.put_events([_order(150), _order(50), _order(500, channel="test")])

    # Then only the matching one starts an execution, with the event's detail as input (InputPath)
    assert len(result.execution_arns) == 1
    execution = stack.wait_execution(result.execution_arns[0])
    assert json.loads(execution["input"]) == json.loads(_order(150)["Detail"])
    assert json.loads(execution["output"])["message"] == "hi, order 150"
    assert result.response["FailedEntryCount"] == 0


def test_put_events_applies_the_input_transformer(stack: OfflineStack) -> None:
    # Given a refund event (prefix match on the source, exists on refundId)
    entry = {
        "Source": "fixture.payments",
        "DetailType": "Refunded",
        "Detail": json.dumps({"refundId": "r-42", "cents": 250}),
    }

    result = stack.put_events([entry, {**entry, "Detail": json.dumps({"cents": 1})}])

    assert len(result.execution_arns) == 1
    execution = stack.wait_execution(result.execution_arns[0])
    assert json.loads(execution["input"]) == {"action": "greet", "name": "refund r-42", "cents": 250}


def test_put_events_honours_the_rules_bus_and_a_constant_input(stack: OfflineStack) -> None:
    # Given a rule on the partner bus only
    bus = stack.outputs["PartnerBusName"]
    ping = {"Source": "fixture.partner", "DetailType": "Ping", "Detail": json.dumps({"ignored": True})}

    # When the same event is put on the default bus and on the partner bus (by name and by ARN)
    on_default = stack.put_events([ping])
    on_partner = stack.put_events([{**ping, "EventBusName": bus}])
    bus_arn = f"arn:aws:events:us-east-1:123456789012:event-bus/{bus}"
    by_arn = stack.put_events([{**ping, "EventBusName": bus_arn}])

    # Then only the partner bus starts an execution, with the target's constant Input
    assert on_default.execution_arns == []
    assert len(on_partner.execution_arns) == len(by_arn.execution_arns) == 1
    execution = stack.wait_execution(on_partner.execution_arns[0])
    assert json.loads(execution["input"]) == {"action": "greet", "name": "partner"}


def test_events_put_by_a_handler_start_executions_too(stack: OfflineStack) -> None:
    # When code other than the harness (here a plain boto3 client, as a handler would) puts an event
    detail = {"refundId": "r-7", "cents": 5}
    stack.client("events").put_events(
        Entries=[{"Source": "fixture.payments", "DetailType": "Refunded", "Detail": json.dumps(detail)}]
    )

    # Then the rule's state machine runs on it
    sfn = stack.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=stack.state_machine_arn())["executions"]
    inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in executions]
    assert {"action": "greet", "name": "refund r-7", "cents": 5} in inputs


def test_events_reach_moto_rules_with_other_targets(stack: OfflineStack, unique: str) -> None:
    # Given a rule (not from the template) that sends audit events to an SQS queue
    sqs, events = stack.client("sqs"), stack.client("events")
    queue_url = sqs.create_queue(QueueName=f"audit-{unique}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"audit-{unique}", EventPattern=json.dumps({"source": [f"fixture.audit.{unique}"]}))
    events.put_targets(Rule=f"audit-{unique}", Targets=[{"Id": "queue", "Arn": queue_arn}])

    # When an audit event is put through the harness
    result = stack.put_events([{"Source": f"fixture.audit.{unique}", "DetailType": "Audit", "Detail": "{}"}])

    # Then no execution starts and the queue receives the event
    assert result.execution_arns == []
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(messages[0]["Body"])["source"] == f"fixture.audit.{unique}"
