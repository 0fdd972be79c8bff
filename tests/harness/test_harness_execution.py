"""The real state machine runs: Lambda tasks, scaled Wait and Retry, Catch on Python class names."""

from __future__ import annotations

import json
import time

from local.harness import OfflineStack
from tests.harness.conftest import TEMPLATE


def test_wait_loop_runs_scaled(stack: OfflineStack) -> None:
    # Given a poll loop of 3 Waits of 60 s (180 s unscaled)
    started = time.monotonic()

    # When it runs
    result = stack.run_execution({"action": "poll", "target": 3, "waitSeconds": 60})
    elapsed = time.monotonic() - started

    # Then it finishes in a fraction of that, having really waited the scaled time
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["polls"] == 3
    assert 3 * 60 * stack.time_scale * 0.9 <= elapsed < 180 * 0.1
    waits = [e for e in stack.execution_history(result["executionArn"]) if e["type"] == "WaitStateEntered"]
    assert len(waits) == 3


def test_retry_on_a_python_exception_class_then_success(stack: OfflineStack, unique: str) -> None:
    # Given a handler failing twice with TransientError, retried after 30 s then 60 s (unscaled)
    started = time.monotonic()

    result = stack.run_execution({"action": "flaky", "key": unique, "failTimes": 2})

    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["result"] == {"attempts": 3}
    assert time.monotonic() - started < 90 * 0.1
    failures = [
        e["lambdaFunctionFailedEventDetails"]["error"]
        for e in stack.execution_history(result["executionArn"])
        if e["type"] == "LambdaFunctionFailed"
    ]
    assert failures == []  # lambda:invoke reports task failures, not LambdaFunctionFailed
    task_errors = [
        e["taskFailedEventDetails"]["error"]
        for e in stack.execution_history(result["executionArn"])
        if e["type"] == "TaskFailed"
    ]
    assert task_errors == ["TransientError", "TransientError"]


def test_retries_exhausted_fall_to_the_catch(stack: OfflineStack, unique: str) -> None:
    result = stack.run_execution({"action": "flaky", "key": unique, "failTimes": 10})

    assert result["status"] == "FAILED"
    assert result["error"] == "GaveUp"


def test_catch_matches_the_python_class_name(stack: OfflineStack) -> None:
    # The handler raises the layer's PermanentError; the ASL's Catch names that class.
    layer_errors = (TEMPLATE.parent / "layers" / "common" / "fixturelib" / "errors.py").read_text()
    assert "class PermanentError(Exception)" in layer_errors

    result = stack.run_execution({"action": "boom"})

    assert result["status"] == "SUCCEEDED"
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "PermanentError"
    assert json.loads(error["Cause"])["errorMessage"] == "cannot continue"
    failed = [e for e in stack.execution_history(result["executionArn"]) if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed] == ["PermanentError"]


def test_sdk_integration_uses_a_substituted_arn(stack: OfflineStack) -> None:
    result = stack.run_execution({"action": "notify"})

    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["published"]["MessageId"]
