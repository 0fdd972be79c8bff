"""A tick or a request that cannot start the state machine: retries, then the dead-letter queue AWS would use.

Scheduler sends to its DLQ with the schedule's role (which must allow sqs:SendMessage); EventBridge
delivers to a rule target's DLQ only when the queue policy lets events.amazonaws.com send for that
rule, and drops the event otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.harness.firing import DeliveryFailed
from local.harness.stack import OfflineStack
from tests.strict.conftest import policy_document

# Before InitialStartTime + lag: a tick that plans nothing, so a started execution ends at once.
QUIET_TICK = datetime(2026, 11, 1, 0, 10, tzinfo=UTC)
REQUEST = {
    "Source": "customer-profiles-export.requests",
    "DetailType": "Customer Profiles Export Requested",
    "Detail": json.dumps({"domainName": "strict", "scheduledTime": "2026-11-01T00:10:00Z"}),
    "EventBusName": "default",
}


def _queue_url(stack: OfflineStack, output: str) -> str:
    return stack.outputs[output]


def _drain(stack: OfflineStack, output: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=_queue_url(stack, output), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        for message in batch:
            messages.append(message)
            sqs.delete_message(QueueUrl=_queue_url(stack, output), ReceiptHandle=message["ReceiptHandle"])
    return messages


def _visible(stack: OfflineStack, output: str) -> int:
    # The queue attribute behind CloudWatch's ApproximateNumberOfMessagesVisible metric.
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=_queue_url(stack, output), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


@pytest.fixture
def queues(stack: OfflineStack) -> Iterator[OfflineStack]:
    """Both dead-letter queues empty before and after the test."""
    for output in ("ScheduleDeadLetterQueueUrl", "ExportRequestDeadLetterQueueUrl"):
        _drain(stack, output)
    yield stack
    stack.fail_next_trigger_starts(0)
    for output in ("ScheduleDeadLetterQueueUrl", "ExportRequestDeadLetterQueueUrl"):
        _drain(stack, output)


def test_a_throttled_tick_is_retried_and_then_started(queues: OfflineStack) -> None:
    stack = queues
    stack.fail_next_trigger_starts(1)

    arn = stack.fire_schedule(scheduled_time=QUIET_TICK)

    assert stack.wait_execution(arn)["status"] == "SUCCEEDED"
    assert stack.deliveries[-1].attempts == 2
    assert _visible(stack, "ScheduleDeadLetterQueueUrl") == 0


def test_a_tick_that_never_starts_lands_in_the_schedule_dlq_and_the_alarm_would_fire(queues: OfflineStack) -> None:
    # Given Step Functions throttling every start (more than the retries)
    stack = queues
    stack.fail_next_trigger_starts(10)

    # When the schedule fires
    with pytest.raises(DeliveryFailed) as failed:
        stack.fire_schedule(scheduled_time=QUIET_TICK)

    # Then after its retries the tick is in the schedule's dead-letter queue, sent with its role
    outcome = failed.value.outcome
    assert outcome.dead_lettered and outcome.attempts == 1 + stack.account.triggers.retry_attempts
    assert _visible(stack, "ScheduleDeadLetterQueueUrl") >= 1  # the alarm's metric
    (message,) = _drain(stack, "ScheduleDeadLetterQueueUrl")
    assert json.loads(message["Body"]) == {"scheduledTime": "2026-11-01T00:10:00Z"}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "ThrottlingException"
    assert attributes["TARGET_ARN"] == stack.state_machine_arn()
    # and the alarm on that queue exists in CloudWatch, watching that metric
    alarm = stack.client("cloudwatch").describe_alarms(AlarmNames=[stack.physical_id("ScheduleDeadLetterAlarm")])
    (described,) = alarm["MetricAlarms"]
    assert described["MetricName"] == "ApproximateNumberOfMessagesVisible"
    queue_name = _queue_url(stack, "ScheduleDeadLetterQueueUrl").rsplit("/", 1)[-1]
    assert described["Dimensions"] == [{"Name": "QueueName", "Value": queue_name}]


def test_a_tick_for_a_missing_state_machine_goes_to_the_dlq_without_retries(queues: OfflineStack) -> None:
    # Given the schedule's target state machine deleted (then re-created under the same ARN)
    stack = queues
    sfn = stack.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn())
    sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    try:
        with pytest.raises(DeliveryFailed) as failed:
            stack.fire_schedule(scheduled_time=QUIET_TICK)
    finally:
        recreated = sfn.create_state_machine(
            name=machine["name"], definition=machine["definition"], roleArn=machine["roleArn"]
        )
        assert recreated["stateMachineArn"] == machine["stateMachineArn"]

    assert failed.value.outcome.attempts == 1  # not retryable
    assert failed.value.outcome.error_code == "StateMachineDoesNotExist"
    assert failed.value.outcome.dead_lettered
    assert _visible(stack, "ScheduleDeadLetterQueueUrl") == 1


def test_a_schedule_role_without_sqs_send_message_loses_the_tick(queues: OfflineStack) -> None:
    stack = queues
    iam = stack.client("iam")
    role = stack.physical_id("ExportStateMachineScheduleRole")
    name = next(n for n in iam.list_role_policies(RoleName=role)["PolicyNames"] if "SQS" in n)
    document = policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    iam.delete_role_policy(RoleName=role, PolicyName=name)
    stack.fail_next_trigger_starts(10)
    try:
        with pytest.raises(DeliveryFailed) as failed:
            stack.fire_schedule(scheduled_time=QUIET_TICK)
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))

    assert not failed.value.outcome.dead_lettered
    assert "sqs:SendMessage" in str(failed.value.outcome.dropped_reason)
    assert _visible(stack, "ScheduleDeadLetterQueueUrl") == 0


def _rule_arn(stack: OfflineStack) -> str:
    return f"arn:aws:events:us-east-1:{stack.account_id}:rule/{stack.physical_id('ExportStateMachineExportRequested')}"


def test_without_a_queue_policy_a_request_that_cannot_start_is_dropped(queues: OfflineStack) -> None:
    # Given the request DLQ without the template's queue policy for EventBridge (as before it was added)
    stack = queues
    sqs = stack.client("sqs")
    queue_url = stack.outputs["ExportRequestDeadLetterQueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": ""})
    stack.fail_next_trigger_starts(10)

    # When a request cannot start the state machine
    try:
        result = stack.put_events([REQUEST])
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})

    # Then PutEvents succeeded, nothing started, and the event is dropped, not dead-lettered
    assert result.response["FailedEntryCount"] == 0 and result.execution_arns == []
    outcome = stack.deliveries[-1]
    assert outcome.source_arn == _rule_arn(stack) and not outcome.dead_lettered
    assert "does not let events.amazonaws.com send" in str(outcome.dropped_reason)
    assert _visible(stack, "ExportRequestDeadLetterQueueUrl") == 0


def test_a_request_that_cannot_start_reaches_the_request_dlq(queues: OfflineStack) -> None:
    stack = queues
    stack.fail_next_trigger_starts(10)

    stack.put_events([REQUEST])

    assert _visible(stack, "ExportRequestDeadLetterQueueUrl") == 1


@pytest.mark.parametrize("matching_rule", [True, False])
def test_a_queue_policy_for_the_rule_lets_eventbridge_dead_letter(queues: OfflineStack, matching_rule: bool) -> None:
    # Given a queue policy on the request DLQ for events.amazonaws.com, scoped to a rule's ARN
    stack = queues
    sqs = stack.client("sqs")
    url = _queue_url(stack, "ExportRequestDeadLetterQueueUrl")
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = _rule_arn(stack) if matching_rule else _rule_arn(stack) + "-other"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    stack.fail_next_trigger_starts(10)
    try:
        # When a request cannot start the state machine
        stack.put_events([REQUEST])
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})

    # Then it is dead-lettered only when the policy names this rule
    messages = _drain(stack, "ExportRequestDeadLetterQueueUrl")
    if not matching_rule:
        assert messages == []
        return
    (message,) = messages
    assert json.loads(message["Body"])["detail"] == json.loads(REQUEST["Detail"])
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["RULE_ARN"] == _rule_arn(stack)
    assert attributes["ERROR_CODE"] == "ThrottlingException"
