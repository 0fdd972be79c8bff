"""Real handlers run in Lambda sandboxes (worker processes) with their deployed environment, layers and context."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from local.harness import OfflineStack


def _invoke(stack: OfflineStack, logical_id: str, event: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    response = stack.client("lambda").invoke(
        FunctionName=stack.physical_id(logical_id), Payload=json.dumps(event).encode()
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_environment_from_globals_and_function_reaches_the_handler(stack: OfflineStack) -> None:
    # When the state machine runs the worker's "env" action
    result = stack.run_execution({"action": "env"})

    # Then Globals and function variables arrive with intrinsics resolved by CloudFormation
    env = json.loads(result["output"])["env"]
    assert result["status"] == "SUCCEEDED"
    assert env["STAGE"] == "test"
    assert env["COUNTER_TABLE"] == stack.outputs["CounterTableName"]  # Ref to a table -> its name
    assert env["BUCKET_NAME"] == stack.outputs["DataBucketName"]
    assert env["TOPIC_ARN"] == stack.outputs["TopicArn"]
    assert env["QUALIFIED_NAME"] == f"test-{stack.outputs['DataBucketName']}"
    assert env["GREETING"] == "hi"  # the parameter override
    assert env["REGIONS"] == "eu-west-1+us-east-1"  # a CommaDelimitedList Default is a list
    assert env["SECOND_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == stack.outputs["WorkerFunctionName"]


def test_environment_applies_during_import_and_is_restored_after(stack: OfflineStack) -> None:
    payload, error = _invoke(stack, "WorkerFunction", {"action": "env"})

    assert error is None
    assert payload["greetingAtImport"] == "hi"
    assert "GREETING" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def test_layer_package_imports_and_context_is_lambda_like(stack: OfflineStack) -> None:
    payload, _ = _invoke(stack, "WorkerFunction", {"action": "env"})

    assert payload["layerVersion"] == "1.0.0"
    context = payload["context"]
    assert context["function_name"] == stack.outputs["WorkerFunctionName"]
    assert context["memory_limit_in_mb"] == 256
    assert context["invoked_function_arn"].endswith(":function:" + stack.outputs["WorkerFunctionName"])
    assert context["aws_request_id"]
    assert 25_000 < context["remaining_ms"] <= 30_000  # the function's Timeout is 30 s


def test_two_functions_with_app_py_run_in_sandboxes_of_their_own(stack: OfflineStack) -> None:
    worker, _ = _invoke(stack, "WorkerFunction", {"action": "sandbox"})
    poller, _ = _invoke(stack, "PollerFunction", {"target": 1})

    assert poller == {"target": 1, "polls": 1, "done": True}
    # The worker's app.py is the task root's module "app", in a process that is not this one
    assert worker["module"] == "app" and worker["pid"] != os.getpid()
    assert worker["cwd"].endswith("functions/worker")
    assert stack.account.runtime.workers("WorkerFunction") == stack.account.runtime.workers("PollerFunction") == 1
    # and no handler module was imported into the test process
    assert not [name for name in sys.modules if name.startswith("_offline_lambda_") or name == "fixturelib"]


def test_handler_exception_is_an_unhandled_function_error(stack: OfflineStack) -> None:
    payload, error = _invoke(stack, "WorkerFunction", {"action": "boom"})

    assert error == "Unhandled"
    assert payload["errorType"] == "PermanentError"
    assert payload["errorMessage"] == "cannot continue"
    assert any("app.py" in line for line in payload["stackTrace"])


def test_a_handler_past_its_function_timeout_fails_as_sandbox_timedout(stack: OfflineStack) -> None:
    # Given a function whose Timeout is 1 s, asked to work for 3 s
    payload, error = _invoke(stack, "SleepyFunction", {"action": "sleep", "seconds": 3})

    # Then Lambda's answer is the timeout error
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]

    # and the state machine sees it under that name (its Catch matches Sandbox.Timedout)
    result = stack.run_execution({"action": "sleep", "seconds": 3})
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["error"]["Error"] == "Sandbox.Timedout"
    # while a handler within its Timeout is unaffected
    assert _invoke(stack, "SleepyFunction", {"action": "sleep", "seconds": 0.1}) == ({"slept": 0.1}, None)
