"""Two stacks of this template (samconfig.toml's default and prod) fit in one account and Region."""

from __future__ import annotations

import tomllib

import pytest

from tests.build.cloudformation import NAME_PROPERTY, ROOT, deploy

# The longest stack name CloudFormation accepts.
LONGEST_STACK_NAME = "s" + "-x" * 63 + "z"

# Name limits of the resources this template names itself (the service's documented maximum).
NAME_LIMITS = {
    "AWS::Lambda::LayerVersion": 140,
    "AWS::KMS::Alias": 256,
    "AWS::Logs::LogGroup": 512,
    "AWS::CloudWatch::Dashboard": 255,
    "AWS::Glue::Database": 255,
    "AWS::Athena::WorkGroup": 128,
}


def samconfig_stack_names() -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return {env: section["global"]["parameters"]["stack_name"] for env, section in config.items() if env != "version"}


def physical_names(stack_name: str) -> dict[str, str]:
    deployment = deploy("shop", stack_name=stack_name)
    return {
        logical_id: deployment.physical_name(logical_id)
        for logical_id, resource in deployment.resources.items()
        if NAME_PROPERTY[resource["Type"]] is not None
    }


def test_every_resource_type_has_a_known_naming_rule():
    deployment = deploy("shop")
    unknown = {r["Type"] for r in deployment.resources.values()} - set(NAME_PROPERTY)
    assert not unknown, f"say in tests/build/cloudformation.py which property names {sorted(unknown)}"


@pytest.mark.parametrize("stack_name", ["customer-profiles-export", LONGEST_STACK_NAME], ids=["default", "longest"])
def test_every_name_the_template_sets_derives_from_the_stack_name(stack_name):
    deployment = deploy("shop", stack_name=stack_name)
    given, generated = {}, set()
    for logical_id, resource in deployment.resources.items():
        prop = NAME_PROPERTY[resource["Type"]]
        if prop and prop.split(".")[0] in (resource.get("Properties") or {}):
            given[logical_id] = deployment.physical_name(logical_id)
        elif prop:
            generated.add(deployment.physical_name(logical_id))
    assert given, "the layer and the log groups are named by the template"
    for logical_id, name in given.items():
        # Unique per stack: the stack's name, or a name CloudFormation generated for this stack (a function's).
        # (Glue names cannot hold `-`: the database reads the stack name's `-` as `_`.)
        derived = stack_name in name or stack_name.replace("-", "_") in name
        assert derived or any(g in name for g in generated), f"{logical_id} is named {name!r}"
        limit = NAME_LIMITS.get(deployment.resources[logical_id]["Type"])
        assert limit is not None, f"{logical_id}: add the name limit of its type to NAME_LIMITS"
        assert len(name) <= limit, f"{logical_id}: {name!r} is longer than {limit}"


def test_the_schedule_and_the_layer_are_not_named_alike_in_every_stack():
    deployment = deploy("shop")
    schedules = deployment.of_type("AWS::Scheduler::Schedule")
    assert set(schedules) == {
        "ExportStateMachineSchedule",
        "ExportStateMachineReconcile",
        "MaintenanceStateMachineSchedule",
    }
    for schedule in schedules.values():
        assert "Name" not in schedule["Properties"], "a fixed schedule name collides between stacks"
        assert schedule["Properties"].get("GroupName", "default") == "default"
    (layer,) = deployment.of_type("AWS::Lambda::LayerVersion")
    assert deployment.physical_name(layer) == "customer-profiles-export-common"


def test_default_and_prod_share_no_name():
    stacks = samconfig_stack_names()
    assert set(stacks) >= {"default", "prod"}
    default, prod = (physical_names(stacks[env]) for env in ("default", "prod"))
    assert set(default) == set(prod)
    clashes = {logical_id for logical_id in default if default[logical_id] == prod[logical_id]}
    assert not clashes
