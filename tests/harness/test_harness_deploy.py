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
