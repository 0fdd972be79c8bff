"""A second stack in the same offline account and Region: side by side, or refused for a name collision."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from local.harness import OfflineStack
from local.harness.provisioners import DeploymentConflict
from local.harness.samconfig import environments, parse_parameter_overrides


def _schedules_named_per_stack(template: dict[str, Any]) -> dict[str, Any]:
    # What a template fixes to deploy twice: schedule names that include the stack name.
    changed = copy.deepcopy(template)
    for logical_id, resource in changed["Resources"].items():
        if resource["Type"] == "AWS::Scheduler::Schedule":
            resource["Properties"]["Name"] = {"Fn::Sub": "${AWS::StackName}-" + logical_id}
    return changed


def test_a_second_stack_deploys_beside_the_first_and_runs(stack: OfflineStack) -> None:
    second = stack.add_stack("second", {"Greeting": "bonjour"}, customize=_schedules_named_per_stack)
    try:
        # Its resources are its own
        assert second.state_machine_arn() != stack.state_machine_arn()
        assert second.outputs["CounterTableName"] != stack.outputs["CounterTableName"]
        # it runs with its own parameters, its schedule starting its own state machine
        result = second.wait_execution(second.fire_schedule("WorkflowNightly"))
        assert result["status"] == "SUCCEEDED"
        assert json.loads(result["output"])["message"] == "bonjour, scheduler"
        assert result["executionArn"].split(":")[6] == second.state_machine_arn().split(":")[6]
        # and an event both stacks' rules match starts one execution in each
        order = {
            "Source": "fixture.orders",
            "DetailType": "OrderPlaced",
            "Detail": json.dumps({"amount": 500, "channel": "web"}),
        }
        assert len(stack.put_events([order]).execution_arns) == 1
        started = {d.target_arn for d in stack.deliveries if d.execution_arn}
        assert {stack.state_machine_arn(), second.state_machine_arn()} <= started
    finally:
        stack.remove_stack(second)
    assert stack.client("scheduler").list_schedules()["Schedules"][0]["Name"] == "WorkflowNightly"


def test_a_schedule_name_taken_in_its_group_fails_the_deployment_clearly(stack: OfflineStack) -> None:
    # SAM names a ScheduleV2 schedule after its logical id: a second copy of the template collides
    with pytest.raises(DeploymentConflict) as conflict:
        stack.add_stack("third")

    message = str(conflict.value)
    assert "WorkflowNightly" in message and "schedule group 'default'" in message and "'offline'" in message
    # and, as CloudFormation rolls back, nothing of the failed stack remains
    names = [
        s["StackName"]
        for s in stack.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert "third" not in names


def test_samconfig_environments_are_read_as_sam_deploy_reads_them(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "app"\n'
        '[default.deploy.parameters]\nparameter_overrides = "A=\\"x y\\" B=2"\n'
        '[prod.deploy.parameters]\nstack_name = "app-prod"\nparameter_overrides = ["A=z"]\n'
        "[prod.build.parameters]\ncached = true\n"
    )

    found = environments(config)

    assert {name: (env.stack_name, env.parameters) for name, env in found.items()} == {
        "default": ("app", {"A": "x y", "B": "2"}),
        "prod": ("app-prod", {"A": "z"}),
    }
    with pytest.raises(ValueError, match="Key=Value"):
        parse_parameter_overrides("novalue")
