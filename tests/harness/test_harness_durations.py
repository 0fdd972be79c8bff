"""Every duration is declared once, with whether the time scale applies (`local.durations`), and the
offline stack deploys the functions' wall-clock rules scaled from that declaration."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import cpexport
import pytest
from cpexport.config import ENV_NAMES, Settings, load_settings

from local import durations
from local.demo import add_arguments as demo_arguments
from local.durations import DURATIONS, Scaling, of_setting, scaled_rules, scaled_wall_clock_rules
from local.emulator.config import EmulatorConfig, FaultRule
from local.harness.account import OfflineAccount
from local.harness.sam import load_template, package_template, transform_template
from local.soak.runner import SoakRun
from tests.e2e_local.conftest import TIME_SCALE as E2E_TIME_SCALE

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "local" / "harness" / "README.md"
# A duration names its unit (`..._seconds`, `...Hours`): that is how a new one is found.
UNIT = re.compile(r"_(SECONDS|MINUTES|HOURS|DAYS|MS|MILLISECONDS)$", re.I)
PARAMETER_UNIT = re.compile(r"(Seconds|Minutes|Hours|Days)$")
UNIT_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86_400}
WHERE = " ".join(d.where for d in DURATIONS)


def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def function_variables(parsed: dict[str, Any]) -> set[str]:
    """Every environment variable the template gives a function (Globals included)."""
    found = set(parsed["Globals"]["Function"]["Environment"]["Variables"])
    for resource in parsed["Resources"].values():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            found |= set(((resource["Properties"].get("Environment") or {}).get("Variables")) or {})
    return found


# ---------------------------------------------------------------------------------------------- completeness
def test_every_duration_like_function_variable_of_the_template_is_declared() -> None:
    # Given every variable the template sets on a function, When the duration-like ones are picked
    durations_set = {name for name in function_variables(template()) if UNIT.search(name)}
    # Then each is a setting's variable declared with its scaling
    assert durations_set, "the template's functions lost their duration settings?"
    assert durations_set <= {d.env for d in DURATIONS}, durations_set - {d.env for d in DURATIONS}


def test_every_duration_like_setting_is_declared() -> None:
    duration_like = {name for name in Settings.model_fields if UNIT.search(name)}
    assert duration_like <= durations.declared_settings(), duration_like - durations.declared_settings()
    assert {ENV_NAMES[name] for name in duration_like} <= {d.env for d in DURATIONS}


def test_every_duration_like_parameter_is_declared_and_its_default_is_the_settings() -> None:
    parameters = template()["Parameters"]
    declared = {d.parameter for d in DURATIONS if d.parameter}
    assert {name for name in parameters if PARAMETER_UNIT.search(name)} <= declared | set(re.findall(r"`(\w+)`", WHERE))
    for duration in DURATIONS:
        if duration.parameter and duration.setting:
            # The template's Default and the settings model's default are the same duration
            unit = UNIT_SECONDS[PARAMETER_UNIT.search(duration.parameter).group(1)]  # type: ignore[union-attr]
            assert float(parameters[duration.parameter]["Default"]) * unit == duration.seconds, duration.parameter


def test_every_duration_constant_of_the_pipeline_package_is_declared() -> None:
    # Given every module of the Lambda layer's package
    found = set()
    for module_info in pkgutil.walk_packages(cpexport.__path__, "cpexport."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if name.isupper() and (isinstance(value, timedelta) or re.search(r"_(SECONDS|MINUTES|HOURS|DAYS)$", name)):
                found.add(name)
    # Then each constant that is a duration is named by a declared row
    assert found, "no duration constant found: the scan is broken"
    assert {name for name in found if name not in WHERE} == set()


def test_every_timing_field_of_the_state_machines_is_declared() -> None:
    declared = set(re.findall(r"`(\w+)`", " ".join(d.where for d in DURATIONS if d.where.startswith("ASL"))))
    fields: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            fields.update(k for k in node if re.search(r"Seconds|Timestamp|Heartbeat", k))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for asl in (ROOT / "statemachine").glob("*.asl.json"):
        walk(json.loads(asl.read_text()))
    # A Timestamp wait or a heartbeat would need its own declaration (the interpreter patches scale seconds only)
    assert fields <= declared, fields - declared


def test_every_duration_knob_of_the_emulator_is_declared() -> None:
    knobs = {name for name in EmulatorConfig.model_fields if re.search(r"_(seconds|minutes)$|duration", name)}
    scaled = set(durations.EMULATOR_DURATION_KNOBS)
    assert knobs - scaled <= set(re.findall(r"`(\w+)`", WHERE)), knobs - scaled
    assert scaled <= set(EmulatorConfig.model_fields)
    assert {name for name in FaultRule.model_fields if name.endswith("_seconds")} == set(durations.FAULT_RULE_DURATIONS)


def test_the_readme_table_is_the_generated_one() -> None:
    found = re.search(
        r"<!-- durations-table:begin[^>]*-->\n(.*?)<!-- durations-table:end -->", README.read_text(), re.S
    )
    assert found, "local/harness/README.md lost its durations-table markers"
    assert found.group(1) == durations.duration_table(), "regenerate with: python -m local.durations"


# ---------------------------------------------------------------------------------------------- the holder deadline
FULL_ENVIRONMENT = {
    "STACK_NAME": "s",
    "ACCOUNT_ID": "123456789012",
    "AWS_REGION": "us-east-1",
    "DOMAIN_NAMES": "d",
    "OBJECT_TYPES": "_profile",
    "EXPORT_BUCKET_NAME": "bucket",
    "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/k",
    "STATE_TABLE_NAME": "t",
    "INITIAL_START_TIME": "2026-11-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"EXPORT_TIMEOUT_HOURS": "1"},
        {"EXPORT_TIMEOUT_HOURS": "0.05", "INDEX_SETTLE_SECONDS": "10", "INDEX_SETTLE_ATTEMPTS": "3"},
        {"INDEX_SETTLE_SECONDS": "3600"},
        {"LEASE_HOLDER_DEADLINE_SECONDS": "7200", "EXPORT_TIMEOUT_HOURS": "1"},
    ],
)
def test_the_holder_deadline_is_derived_from_the_inputs_the_product_derives_it_from(variables: dict[str, str]) -> None:
    # Given a function's environment, When the product reads its settings and the offline stack its rules
    product = load_settings(FULL_ENVIRONMENT | variables).holder_deadline_seconds
    rule = of_setting("lease_holder_deadline_seconds")
    # Then the deadline on AWS is the product's, and offline it is that, scaled, with its floor
    assert durations.aws_seconds(rule, variables) == product
    for time_scale in (0.1, 0.01, 0.002):
        scaled = int(scaled_rules(variables, time_scale)["LEASE_HOLDER_DEADLINE_SECONDS"])
        assert scaled == max(rule.floor_seconds, round(product * time_scale))


def test_the_declared_defaults_are_the_settings_model_defaults() -> None:
    settings = load_settings(FULL_ENVIRONMENT)
    assert of_setting("unsubmitted_lease_ttl_seconds").seconds == settings.unsubmitted_lease_ttl_seconds
    assert of_setting("ambiguous_submit_grace_seconds").seconds == settings.ambiguous_submit_grace_seconds
    assert of_setting("lease_holder_deadline_seconds").seconds == settings.holder_deadline_seconds
    assert of_setting("export_timeout_hours").seconds == settings.export_timeout_hours * 3600


# ---------------------------------------------------------------------------------------------- scaling
def transformed(parameters: dict[str, str]) -> dict[str, Any]:
    packaged, _ = package_template(template(), ROOT, lambda hint, data: ("artifacts", hint))
    return transform_template(packaged, parameters)


def pipeline_functions(deployed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]["Environment"]["Variables"]
        for logical_id, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def test_every_pipeline_function_is_deployed_with_its_wall_clock_rules_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the real template with a one-hour export timeout, transformed as the harness deploys it
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    parameters = {"DomainNames": "d", "ExportTimeoutHours": "1"}
    plain = transformed(parameters)

    # When it is customized for time scale 0.01, and for AWS's speed
    scaled = scaled_wall_clock_rules(0.01, parameters)(json.loads(json.dumps(plain)))
    unchanged = scaled_wall_clock_rules(1.0, parameters)(json.loads(json.dumps(plain)))

    # Then every function gets the TTL and the grace x 0.01 (floored) and the holder deadline from its
    # own ExportTimeoutHours: (1 h + 10 x 120 s + 1 h) x 0.01 = 84 s; at scale 1 nothing changes
    functions = pipeline_functions(scaled)
    assert functions and all(
        {k: v for k, v in variables.items() if k in {r.env for r in durations.wall_clock_rules()}}
        == {
            "UNSUBMITTED_LEASE_TTL_SECONDS": "12",
            "AMBIGUOUS_SUBMIT_GRACE_SECONDS": "5",
            "LEASE_HOLDER_DEADLINE_SECONDS": "84",
        }
        for variables in functions.values()
    )
    assert unchanged == plain


def test_a_function_that_does_not_read_the_settings_is_left_alone() -> None:
    deployed = {
        "Resources": {
            "Other": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Environment": {"Variables": {"GREETING": "hi"}}},
            }
        }
    }
    assert scaled_wall_clock_rules(0.01)(json.loads(json.dumps(deployed))) == deployed


def test_a_rule_set_by_an_intrinsic_the_harness_cannot_resolve_is_refused() -> None:
    deployed = {
        "Resources": {
            "Start": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Environment": {"Variables": {"EXPORT_TIMEOUT_HOURS": {"Fn::GetAtt": ["X", "Y"]}}}},
            }
        }
    }
    with pytest.raises(ValueError, match="EXPORT_TIMEOUT_HOURS"):
        scaled_wall_clock_rules(0.01)(deployed)


def test_the_emulator_runs_at_the_stacks_time_scale() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        OfflineAccount(time_scale=0.01, emulator_options={"time_scale": 0.1})


def test_the_time_scales_of_the_demo_the_soak_and_the_e2e_tests_keep_awss_orderings() -> None:
    # Start waits out a dead Start's lease and an ambiguous submission within its ExportBusy retries on
    # AWS; at these scales the floored rules still end within the scaled retries
    smallest = durations.smallest_faithful_time_scale()
    for time_scale in (_demo_default_time_scale(), SoakRun(seed=0, schedules=1).time_scale, E2E_TIME_SCALE, 0.01):
        assert time_scale >= smallest
        budget = durations.start_busy_budget_seconds() * time_scale
        assert all(
            int(scaled_rules({}, time_scale)[r.env]) < budget  # type: ignore[index]
            for r in durations.wall_clock_rules()
            if r.outlasted_by_start_retries
        )


def _demo_default_time_scale() -> float:
    parser = argparse.ArgumentParser()
    demo_arguments(parser)
    return float(parser.parse_args([]).time_scale)


def test_only_the_environment_rules_have_floors() -> None:
    assert all((d.floor_seconds > 0) == (d.scaling is Scaling.ENVIRONMENT) for d in DURATIONS)
