"""template.yaml as AWS would see it: sam validate --lint, and the translated triggers and alarms."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.harness.sam import load_template, package_template, transform_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    packaged, _ = package_template(load_template(ROOT / "template.yaml"), ROOT, lambda hint, data: ("bucket", hint))
    translated = transform_template(packaged, {"DomainNames": "shop"})
    return dict(translated["Resources"])


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def test_sam_validate_lint_passes():
    sam = Path(sys.executable).with_name("sam")
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template", str(ROOT / "template.yaml")],
        env=os.environ | {"SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schedule_sends_its_scheduled_time_with_retries_and_a_dead_letter_queue(resources):
    schedule = of_type(resources, "AWS::Scheduler::Schedule")["ExportStateMachineSchedule"]
    props = schedule["Properties"]
    assert json.loads(props["Target"]["Input"]) == {"scheduledTime": "<aws.scheduler.scheduled-time>"}
    assert props["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert props["Target"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}
    assert props["ScheduleExpressionTimezone"] == {"Ref": "ScheduleTimezone"}
    assert props["State"] == {"Ref": "ScheduleState"}
    assert "Fn::If" in props["FlexibleTimeWindow"]


def test_the_reconcile_schedule_asks_for_a_full_export_and_is_off_at_zero_days(resources):
    schedule = of_type(resources, "AWS::Scheduler::Schedule")["ExportStateMachineReconcile"]
    props = schedule["Properties"]
    assert json.loads(props["Target"]["Input"]) == {
        "scheduledTime": "<aws.scheduler.scheduled-time>",
        "reconcile": True,
    }
    assert props["Target"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}
    assert props["State"] == {"Fn::If": ["ReconcileOnSchedule", {"Ref": "ScheduleState"}, "DISABLED"]}


def test_the_maintenance_schedule_runs_weekly_by_default_and_follows_the_schedule_state(resources):
    schedule = of_type(resources, "AWS::Scheduler::Schedule")["MaintenanceStateMachineSchedule"]
    props = schedule["Properties"]
    assert props["Target"]["Arn"] == {"Ref": "MaintenanceStateMachine"}
    assert props["ScheduleExpression"] == {"Ref": "MaintenanceScheduleExpression"}
    assert props["ScheduleExpressionTimezone"] == {"Ref": "ScheduleTimezone"}
    assert props["State"] == {"Ref": "ScheduleState"}
    assert "Name" not in props  # CloudFormation names it: two stacks never collide
    assert props["Target"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}
    parameter = load_template(ROOT / "template.yaml")["Parameters"]["MaintenanceScheduleExpression"]
    assert parameter["Default"] == "cron(0 4 ? * SUN *)"


def test_each_state_machine_definition_uses_exactly_its_own_substitutions(resources):
    template = load_template(ROOT / "template.yaml")
    machines = of_type(template["Resources"], "AWS::Serverless::StateMachine")
    assert set(machines) == {"ExportStateMachine", "MaintenanceStateMachine"}
    for name, machine in machines.items():
        definition = (ROOT / machine["Properties"]["DefinitionUri"]).read_text()
        used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition))
        assert used == set(machine["Properties"]["DefinitionSubstitutions"]), name
        assert '"arn:aws:lambda' not in definition and '"arn:aws:sns:' not in definition, name


def _tasks(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in states.items():
        found.append((name, state))
        for branch in [state.get("ItemProcessor") or state.get("Iterator") or {}, *state.get("Branches", [])]:
            found += _tasks(branch.get("States", {}))
    return found


def test_every_sns_publish_of_a_state_machine_is_structured_for_email_and_chat():
    # Chat (Amazon Q Developer in chat applications) shows nothing but its custom notifications: a
    # plain-text publish would reach email and leave the chat channel silent.
    template = load_template(ROOT / "template.yaml")
    machines = of_type(template["Resources"], "AWS::Serverless::StateMachine")
    publishes = []
    for machine in machines.values():
        definition = json.loads((ROOT / machine["Properties"]["DefinitionUri"]).read_text())
        publishes += [(n, s) for n, s in _tasks(definition["States"]) if s.get("Resource", "").endswith("sns:publish")]
    assert publishes, "the maintenance alerts publish through the state machine"
    for name, state in publishes:
        assert state["Parameters"]["MessageStructure"] == "json", name
        assert state["Parameters"]["Message.$"] == "States.JsonToString($.alert)", name


def test_a_failed_maintenance_pages_on_call(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    watching = [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("Dimensions")
        == [{"Name": "StateMachineArn", "Value": {"Ref": "MaintenanceStateMachine"}}]
    ]
    assert [(p["MetricName"], p["Threshold"]) for p in watching] == [("ExecutionsFailed", 1)]


def test_export_requests_match_the_documented_detail_type_on_the_configured_bus(resources):
    rules = of_type(resources, "AWS::Events::Rule")
    (rule,) = [r for r in rules.values() if "EventPattern" in r["Properties"]]
    props = rule["Properties"]
    assert props["EventPattern"]["detail-type"] == ["Customer Profiles Export Requested"]
    assert props["EventPattern"]["source"] == [{"Ref": "ExportRequestSource"}]
    assert props["EventBusName"] == {"Ref": "EventBusName"}
    (target,) = props["Targets"]
    assert target["InputPath"] == "$.detail"
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ExportRequestDeadLetterQueue", "Arn"]}


def test_every_alarm_notifies_the_alarm_topic_and_covers_what_on_call_fears(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())
    watched = {a["Properties"].get("MetricName") for a in alarms.values()}
    assert {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionThrottled",
        "ApproximateNumberOfMessagesVisible",
        "OldestWatermarkAgeHours",
    } <= watched
    lambda_errors = alarms["LambdaErrorsAlarm"]["Properties"]["Metrics"]
    functions = {m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"] for m in lambda_errors if "MetricStat" in m}
    # The raw partition job exists only with a retention: an alarm of its own, with the same condition
    assert functions == set(of_type(resources, "AWS::Lambda::Function")) - {"ExpireRawPartitionsFunction"}
    retention = alarms["ExpireRawPartitionsErrorsAlarm"]
    assert retention["Condition"] == "RetainRawExports"
    assert retention["Properties"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ExpireRawPartitionsFunction"}}
    ]
    assert alarms["StaleExportAlarm"]["Properties"]["TreatMissingData"] == "breaching"


def test_the_dashboard_body_is_valid_json_with_the_promised_widgets(resources):
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body_template, _ = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    rendered = (
        body_template.replace("${AWS::Region}", "us-east-1")
        .replace("${StateMachine}", "arn")
        .replace("${StaleHours}", "36")
    )
    titles = {w["properties"]["title"] for w in json.loads(rendered)["widgets"]}
    assert {
        "Runs",
        "Run duration (ms)",
        "Files exported",
        "Bytes exported",
        "Export failures",
        "Watermark age per object type (hours)",
    } <= titles


def test_only_the_start_function_may_create_or_update_associations(resources):
    writers = set()
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a.endswith("DataIntegrationAssociation") or a == "app-integrations:*" for a in actions):
                    writers.add(name)
    assert writers == {"StartExportFunctionRole"}
