"""Running executions of a deployed state machine: start, wait, read the history."""

from __future__ import annotations

import json
import time
from typing import Any

from local.harness.firing import execution_name


def start_execution(sfn: Any, state_machine_arn: str, input: dict[str, Any] | str | None, name: str | None) -> str:
    """Start an execution (named, unless `name` is None... then a fresh name); return its ARN."""
    payload = input if isinstance(input, str) else json.dumps(input or {})
    response = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name or execution_name("offline"), input=payload
    )
    return str(response["executionArn"])


def wait_execution(sfn: Any, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    """Poll until the execution leaves RUNNING; return `describe_execution`'s answer."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")
        time.sleep(0.05)


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every history event of an execution, oldest first."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]
