"""The fixture template deploys into moto as CloudFormation would create it."""

from __future__ import annotations

import json

from local.harness import OfflineStack


def test_outputs_hold_the_templates_outputs_and_nothing_else(stack: OfflineStack) -> None:
    # Given the deployed fixture app / When its outputs are read
    outputs = stack.outputs

    # Then they are exactly the template's Outputs, with real values
    assert set(outputs) == {
        "WorkflowArn",
        "DataBucketName",
        "TopicArn",
        "CounterTableName",
        "WorkerFunctionName",
        "PartnerBusName",
    }
    assert outputs["WorkflowArn"] == stack.state_machine_arn("Workflow")
    assert outputs["CounterTableName"] == stack.physical_id("CounterTable")
    stack.client("s3").head_bucket(Bucket=outputs["DataBucketName"])


def test_conditions_leave_out_resources_of_a_false_condition(stack: OfflineStack) -> None:
    assert "Topic" in stack.resources
    assert "ProdOnlyTopic" not in stack.resources


def test_deployed_definition_has_its_substitutions_applied(stack: OfflineStack) -> None:
    # When the executing backend describes the state machine
    described = stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn())
    definition = json.loads(described["definition"])
    worker_arn = stack.client("lambda").get_function(FunctionName=stack.outputs["WorkerFunctionName"])

    # Then every ${...} became the real ARN
    assert "${" not in described["definition"]
    assert definition["States"]["Work"]["Resource"] == worker_arn["Configuration"]["FunctionArn"]
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"] == stack.outputs["TopicArn"]
    # and $$ context paths survive untouched
    assert definition["States"]["Flaky"]["ResultSelector"]["execution.$"] == "$$.Execution.Name"


def test_functions_are_deployed_with_globals_merged(stack: OfflineStack) -> None:
    lam = stack.client("lambda")
    poller = lam.get_function_configuration(FunctionName=stack.physical_id("PollerFunction"))
    worker = lam.get_function_configuration(FunctionName=stack.physical_id("WorkerFunction"))

    assert (poller["Timeout"], poller["MemorySize"]) == (5, 256)
    assert worker["Timeout"] == 30
    layer = stack.physical_id(next(k for k in stack.resources if k.startswith("CommonLayer")))
    assert layer.startswith("arn:aws:lambda:us-east-1:123456789012:layer:")
    # moto's CloudFormation drops a function's Layers; the harness takes them from the template
    # (see test_layer_package_imports_and_context_is_lambda_like).
    assert "Layers" not in worker or worker["Layers"] == []


def test_resources_moto_skips_are_created_through_the_service_apis(stack: OfflineStack) -> None:
    # The schedule (SAM ScheduleV2), with its role, input and state as SAM generated them
    schedule = stack.client("scheduler").get_schedule(Name=stack.physical_id("WorkflowNightly"))
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["Target"]["Arn"] == stack.state_machine_arn()
    assert schedule["Target"]["RoleArn"].endswith(stack.physical_id("WorkflowNightlyRole"))
    # the bucket policy, with its intrinsics resolved
    policy = json.loads(stack.client("s3").get_bucket_policy(Bucket=stack.outputs["DataBucketName"])["Policy"])
    assert policy["Statement"][0]["Resource"][1] == f"arn:aws:s3:::{stack.outputs['DataBucketName']}/*"
    # the queue policy, naming the rule's real ARN
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=stack.physical_id("AuditQueue").rsplit("/", 1)[-1])["QueueUrl"]
    queue_policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    rule_arn = queue_policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert rule_arn.endswith(":rule/" + stack.physical_id("WeeklyRule").rsplit("/", 1)[-1])
    # the alarm, its Fn::If resolved by the Stage condition (test -> 5)
    (alarm,) = stack.client("cloudwatch").describe_alarms(AlarmNames=[stack.physical_id("AuditQueueAlarm")])[
        "MetricAlarms"
    ]
    assert (alarm["Threshold"], alarm["AlarmActions"]) == (5.0, [stack.outputs["TopicArn"]])
