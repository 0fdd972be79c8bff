"""The services' own errors (throttling, internal errors) reach the pipeline's roles, never the administrator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.emulator.synthetic import generate
from local.harness.service_faults import ServiceFaultRule
from local.harness.stack import OfflineStack
from local.observe import PipelineObserver
from tests.strict.conftest import DOMAIN, as_role

DAY = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def faults(stack: OfflineStack):
    yield stack.service_faults
    stack.service_faults.configure([])


def test_a_fault_answers_the_pipelines_roles_with_the_services_error_and_spares_the_administrator(stack, faults):
    faults.configure([ServiceFaultRule("dynamodb", "GetItem", kind="throttle", count=1)])
    table = stack.outputs["StateTableName"]
    key = {"pk": {"S": "x"}, "sk": {"S": "y"}}
    stack.client("dynamodb").get_item(TableName=table, Key=key)  # the administrator: never faulted
    role = as_role(stack, "PlanFunctionRole")
    as_plan = boto3.client(
        "dynamodb",
        endpoint_url=stack.endpoint_url,
        region_name=stack.region,
        aws_access_key_id=role.access_key_id,
        aws_secret_access_key=role.secret_access_key,
        aws_session_token=role.session_token,
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        as_plan.get_item(TableName=table, Key=key)
    as_plan.get_item(TableName=table, Key=key)  # count=1: the next call goes through
    assert [rule.fired for rule in faults.fired()] == [1]


def test_the_pipeline_rides_out_throttled_state_writes_and_one_failed_publish(stack, faults):
    # Given DynamoDB throttling some writes of the pipeline's roles and SNS failing one publish
    observer = PipelineObserver(stack, name="faults")
    day = DAY + timedelta(days=1)
    start, end = int(DAY.timestamp() * 1000), int((DAY + timedelta(hours=20)).timestamp() * 1000)
    stack.emulator_control.seed(DOMAIN, "_profile", generate("_profile", 20, start, end, 5))
    faults.configure(
        [
            ServiceFaultRule("dynamodb", "PutItem", kind="throttle", count=3),
            ServiceFaultRule("dynamodb", "UpdateItem", kind="internal", count=2),
            ServiceFaultRule("sns", "Publish", kind="internal", count=1),
        ],
        seed=11,
    )
    # When a tick runs
    result = stack.wait_execution(stack.fire_schedule(scheduled_time=day), timeout=240)
    # Then it succeeds, on-call gets one message, and the faults really fired
    failures = [e for e in stack.execution_history(result["executionArn"]) if "Failed" in e["type"]]
    assert result["status"] == "SUCCEEDED", json.dumps(failures, default=str)[:3000]
    messages = observer.notifications()
    assert len(messages) == 1 and messages[0]["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    assert all(rule.fired >= 1 for rule in faults.fired()), faults.fired()
