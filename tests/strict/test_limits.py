"""Service limits the offline stack enforces as AWS does (local/harness/limits.py, and moto's own)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from local.harness.stack import OfflineStack

KB = 1024


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.mark.parametrize(
    "subject",
    ["x" * 101, "two\nlines", "caf\u00e9", "tab\there", ""],
    ids=["101 characters", "newline", "non-ASCII", "control character", "empty"],
)
def test_sns_refuses_a_subject_aws_refuses(stack: OfflineStack, subject: str) -> None:
    sns = stack.client("sns")

    with pytest.raises(ClientError) as refused:
        sns.publish(TopicArn=stack.outputs["AlarmTopicArn"], Message="m", Subject=subject)

    assert _code(refused) == "InvalidParameter" and "Subject" in str(refused.value)


def test_sns_accepts_a_100_character_printable_subject(stack: OfflineStack) -> None:
    subject = "Customer Profiles export FAILED: " + "d" * 67
    assert len(subject) == 100

    stack.client("sns").publish(TopicArn=stack.outputs["AlarmTopicArn"], Message="m", Subject=subject)


def test_sns_counts_message_attributes_in_the_256_kb(stack: OfflineStack) -> None:
    sns = stack.client("sns")
    message = "m" * (256 * KB - 40)
    small = {"status": {"DataType": "String", "StringValue": "OK"}}
    large = {"status": {"DataType": "String", "StringValue": "x" * 40}}

    sns.publish(TopicArn=stack.outputs["AlarmTopicArn"], Message=message, MessageAttributes=small)
    with pytest.raises(ClientError) as refused:
        sns.publish(TopicArn=stack.outputs["AlarmTopicArn"], Message=message, MessageAttributes=large)

    assert _code(refused) == "InvalidParameter" and "too long" in str(refused.value)


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("AWS.reserved", {"DataType": "String", "StringValue": "v"}),
        ("two..dots", {"DataType": "String", "StringValue": "v"}),
        ("ok", {"DataType": "Strung", "StringValue": "v"}),
        ("domain", {"DataType": "String.Array", "StringValue": "not a JSON array"}),
        ("domain", {"DataType": "String.Array", "StringValue": '[{"nested": true}]'}),
    ],
)
def test_sns_refuses_malformed_message_attributes(stack: OfflineStack, name: str, attribute: dict[str, str]) -> None:
    with pytest.raises(ClientError) as refused:
        stack.client("sns").publish(
            TopicArn=stack.outputs["AlarmTopicArn"], Message="m", MessageAttributes={name: attribute}
        )

    assert _code(refused) == "InvalidParameterValue"


def test_dynamodb_refuses_an_item_over_400_kb(stack: OfflineStack) -> None:
    with pytest.raises(ClientError) as refused:
        stack.client("dynamodb").put_item(
            TableName=stack.outputs["StateTableName"],
            Item={"pk": {"S": "big"}, "sk": {"S": "big"}, "blob": {"S": "x" * (401 * KB)}},
        )

    assert _code(refused) == "ValidationException" and "size" in str(refused.value).lower()


def test_eventbridge_refuses_entries_over_256_kb_in_one_request(stack: OfflineStack) -> None:
    entry = {"Source": "limits.test", "DetailType": "Big", "Detail": json.dumps({"x": "y" * (130 * KB)})}
    events = stack.client("events")

    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=[entry, entry])

    assert _code(refused) == "ValidationException"


@pytest.mark.parametrize(
    ("invocation_type", "size", "limit"),
    [("RequestResponse", 6 * KB * KB + 10, 6 * KB * KB), ("Event", 256 * KB + 10, 256 * KB)],
)
def test_lambda_refuses_a_payload_over_its_invocation_types_limit(
    stack: OfflineStack, invocation_type: str, size: int, limit: int
) -> None:
    payload = json.dumps({"x": "y" * (size - 10)}).encode()

    with pytest.raises(ClientError) as refused:
        stack.client("lambda").invoke(
            FunctionName=stack.physical_id("PlanFunction"), InvocationType=invocation_type, Payload=payload
        )

    assert _code(refused) == "RequestEntityTooLargeException"
    assert f"limit {limit} bytes" in str(refused.value)


def test_an_execution_input_over_256_kb_is_refused(stack: OfflineStack) -> None:
    with pytest.raises(ClientError) as refused:
        stack.client("stepfunctions").start_execution(
            stateMachineArn=stack.state_machine_arn(),
            name=f"big-{uuid.uuid4().hex[:8]}",
            input=json.dumps({"x": "y" * (256 * KB)}),
        )

    assert _code(refused) == "ValidationException" and "262144" in str(refused.value)


def test_an_unnamed_execution_gets_a_uuid_name_as_on_aws(stack: OfflineStack) -> None:
    sfn = stack.client("stepfunctions")
    quiet = json.dumps({"scheduledTime": "2026-11-01T00:10:00Z"})

    arns = [
        sfn.start_execution(stateMachineArn=stack.state_machine_arn(), input=quiet)["executionArn"] for _ in range(2)
    ]

    names = [arn.rsplit(":", 1)[-1] for arn in arns]
    assert names[0] != names[1]
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", n) for n in names)
    assert all(stack.wait_execution(arn)["status"] == "SUCCEEDED" for arn in arns)


def test_a_state_output_over_256_kb_fails_the_execution_with_data_limit_exceeded(stack: OfflineStack) -> None:
    # Given a state machine whose Pass state outputs 300 KB
    sfn = stack.client("stepfunctions")
    definition = {"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": {"x": "y" * (300 * KB)}, "End": True}}}
    role = sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn())["roleArn"]
    machine = sfn.create_state_machine(
        name=f"big-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )

    result = stack.run_execution({}, state_machine=machine["stateMachineArn"])

    assert (result["status"], result["error"]) == ("FAILED", "States.DataLimitExceeded")
