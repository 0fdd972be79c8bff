"""Starting executions (run, replay, backfill) after the pipeline's own planning accepts them, and following one."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cpexport.clients.state_table import StateTable
from cpexport.models import PlanInput, PlanOutput
from cpexport.planning import plan_exports

from cpexport_cli.deployment import Deployment
from cpexport_cli.errors import InvalidInput
from cpexport_cli.story import ExecutionStory, read_story

_CONSOLE_HOSTS = {
    "aws": "{region}.console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def execution_name(kind: str, now: datetime) -> str:
    """A readable, unique execution name (1-80 of letters, digits, - and _): who started it, what, when."""
    return f"cpexport-{kind}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution of that name has (or will have)."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def console_url(arn: str, region: str) -> str:
    """Where the execution is shown in the Step Functions console."""
    partition = arn.split(":")[1] if arn.count(":") > 1 else "aws"
    host = _CONSOLE_HOSTS.get(partition, _CONSOLE_HOSTS["aws"]).format(region=region)
    return f"https://{host}/states/home?region={region}#/v2/executions/details/{arn}"


def resolve_execution(deployment: Deployment, reference: str) -> str:
    """An execution ARN from an ARN or the name of an execution of the stack's state machine."""
    if reference.startswith("arn:"):
        return reference
    return execution_arn(deployment.state_machine_arn, reference)


def plan_request(
    deployment: Deployment, state: StateTable, request: dict[str, Any], name: str, now: datetime
) -> PlanOutput:
    """Plan the request exactly as the PlanExports state will, without starting anything.

    A request the pipeline would reject (a bad field, an unknown domain, a range inside the safety
    lag, a clock in the future) raises InvalidInput with the pipeline's own words.
    """
    plan_input = PlanInput(
        request=request,
        execution_arn=execution_arn(deployment.state_machine_arn, name),
        execution_start_time=now,
    )
    plan = plan_exports(plan_input, deployment.settings(), state)
    if plan.rejection is not None:
        raise InvalidInput(f"{plan.rejection.message}. Nothing was started.")
    return plan


@dataclass(frozen=True)
class StartedExecution:
    """An execution this command started."""

    execution_arn: str
    name: str
    console_url: str
    request: dict[str, Any]
    plan: PlanOutput

    def to_json(self) -> dict[str, Any]:
        return {
            "executionArn": self.execution_arn,
            "name": self.name,
            "consoleUrl": self.console_url,
            "input": self.request,
            "planned": [
                {"domainName": t.domain_name, "objectType": t.object_type, "window": t.window.to_wire()}
                for t in self.plan.exports
            ],
            "skipped": [s.to_wire() for s in self.plan.skipped],
        }


def start_execution(
    stepfunctions: Any, deployment: Deployment, request: dict[str, Any], name: str, plan: PlanOutput
) -> StartedExecution:
    """Start the state machine with `request` under `name`."""
    response = stepfunctions.start_execution(
        stateMachineArn=deployment.state_machine_arn, name=name, input=json.dumps(request)
    )
    arn = str(response["executionArn"])
    return StartedExecution(arn, name, console_url(arn, deployment.region), request, plan)


def read_history(stepfunctions: Any, arn: str) -> list[dict[str, Any]]:
    """Every history event of an execution, oldest first."""
    events: list[dict[str, Any]] = []
    for page in stepfunctions.get_paginator("get_execution_history").paginate(executionArn=arn, maxResults=1000):
        events.extend(page.get("events", []))
    return events


def tell_execution(stepfunctions: Any, arn: str) -> ExecutionStory:
    """The story of an execution as it stands now."""
    described = stepfunctions.describe_execution(executionArn=arn)
    return read_story(described, read_history(stepfunctions, arn))


class StillRunning(Exception):
    """The execution did not end within the time the caller was willing to wait."""


def follow_execution(
    stepfunctions: Any,
    arn: str,
    on_update: Callable[[ExecutionStory], None],
    poll_seconds: float = 5.0,
    timeout_seconds: float | None = None,
) -> ExecutionStory:
    """Re-read the execution until it leaves RUNNING, telling `on_update` each time; return its final story."""
    deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
    while True:
        story = tell_execution(stepfunctions, arn)
        on_update(story)
        if story.status != "RUNNING":
            return story
        if deadline is not None and time.monotonic() >= deadline:
            raise StillRunning(f"{arn} is still RUNNING after {timeout_seconds:g} s; it goes on without us")
        time.sleep(poll_seconds)
