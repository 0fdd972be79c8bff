"""The CLI's pure parts and its checks on plain moto: samconfig, parameters, policies, schedule, subscriptions."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from cpexport.clients.appintegrations import AppIntegrations
from cpexport_cli.app import cli
from cpexport_cli.connection import AwsOptions, Connection
from cpexport_cli.deployment import Deployment, _split
from cpexport_cli.doctor import APPINTEGRATIONS_PRINCIPAL, BUCKET_ACTIONS, Doctor, Verdict, missing_grants
from cpexport_cli.errors import InvalidInput
from cpexport_cli.executions import console_url
from cpexport_cli.samconfig import read_sam_defaults
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

REGION = "us-east-1"
STATE_MACHINE = f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:stateMachine:exports"

SAMCONFIG = """
version = 0.1
[default.global.parameters]
stack_name = "from-global"
region = "eu-west-1"
[default.deploy.parameters]
stack_name = "from-deploy"
[prod.global.parameters]
stack_name = "prod-stack"
"""


def test_samconfig_gives_the_deploy_section_first_then_global(tmp_path: Path):
    path = tmp_path / "samconfig.toml"
    path.write_text(SAMCONFIG)

    default = read_sam_defaults(path, "default", required=True)
    prod = read_sam_defaults(path, "prod", required=True)

    assert (default.stack_name, default.region) == ("from-deploy", "eu-west-1")
    assert (prod.stack_name, prod.region) == ("prod-stack", None)


def test_samconfig_names_the_environments_it_has_when_asked_for_another(tmp_path: Path):
    path = tmp_path / "samconfig.toml"
    path.write_text(SAMCONFIG)

    with pytest.raises(InvalidInput, match=r"has no such environment \(it has: default, prod\)"):
        read_sam_defaults(path, "staging", required=True)


def test_the_command_refuses_to_guess_a_stack_without_samconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)

    result = CliRunner(mix_stderr=False).invoke(cli, ["status", "--region", REGION, "-o", "json"])

    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["type"] == "InvalidInput"
    assert "--stack-name" in result.stderr


def test_every_command_is_listed_in_the_help():
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == 0
    for command in ("status", "runs", "run", "replay", "backfill", "explain", "release-lease", "doctor"):
        assert f"  {command} " in result.output


def test_comma_delimited_parameters_are_read_as_cloudformation_and_moto_write_them():
    assert _split("_profile,_order") == ["_profile", "_order"]
    assert _split("['_profile', '_order']") == ["_profile", "_order"]
    assert _split("") == []


def test_console_url_follows_the_partition():
    arn = "arn:aws-cn:states:cn-north-1:123456789012:execution:m:e"
    assert console_url(arn, "cn-north-1").startswith("https://console.amazonaws.cn/states/home?region=cn-north-1#")
    assert console_url(arn.replace("aws-cn", "aws"), "eu-west-1").endswith(
        f"/executions/details/{arn.replace('aws-cn', 'aws')}"
    )


def _bucket_statement(actions: list[str]) -> dict:
    return {
        "Sid": "Allow AppIntegrations to write data to destination bucket",
        "Effect": "Allow",
        "Principal": {"Service": [APPINTEGRATIONS_PRINCIPAL]},
        "Action": actions,
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
    }


def test_the_documented_bucket_statement_grants_everything_and_a_shorter_one_does_not():
    resources = ("arn:aws:s3:::b", "arn:aws:s3:::b/*")
    documented = {"Statement": [_bucket_statement(list(BUCKET_ACTIONS))]}
    wildcard = {"Statement": [_bucket_statement(["s3:*"])]}
    short = {"Statement": [_bucket_statement(["s3:GetObject", "s3:ListBucket", "s3:PutObject"])]}

    assert missing_grants(documented, APPINTEGRATIONS_PRINCIPAL, BUCKET_ACTIONS, resources) == []
    assert missing_grants(wildcard, APPINTEGRATIONS_PRINCIPAL, BUCKET_ACTIONS, resources) == []
    assert missing_grants(short, APPINTEGRATIONS_PRINCIPAL, BUCKET_ACTIONS, resources) == [
        "s3:PutObjectAcl on arn:aws:s3:::b",
        "s3:PutObjectAcl on arn:aws:s3:::b/*",
    ]


def _deployment(**parameters: str) -> Deployment:
    return Deployment(
        stack_name="exports",
        stack_id=f"arn:aws:cloudformation:{REGION}:{DEFAULT_ACCOUNT_ID}:stack/exports/1",
        status="CREATE_COMPLETE",
        region=REGION,
        account_id=DEFAULT_ACCOUNT_ID,
        outputs={"StateMachineArn": STATE_MACHINE, "StateTableName": "t"},
        parameters={"DomainNames": "d", "ObjectTypes": "_profile", **parameters},
    )


@pytest.fixture
def moto_doctor():
    with mock_aws():
        connection = Connection(AwsOptions(region=REGION))
        appintegrations = AppIntegrations(api=object(), starter=object())
        yield lambda **parameters: Doctor(_deployment(**parameters), connection, appintegrations)


def _schedule(state: str, schedule_input: str) -> None:
    boto3.client("scheduler", region_name=REGION).create_schedule(
        Name="tick",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        State=state,
        Target={"Arn": STATE_MACHINE, "RoleArn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/r", "Input": schedule_input},
    )


def test_doctor_fails_a_schedule_disabled_against_the_stacks_schedule_state(moto_doctor):
    doctor = moto_doctor(ScheduleState="ENABLED")
    assert doctor.schedule().verdict == Verdict.FAIL  # none yet: nothing exports by itself

    _schedule("DISABLED", '{"scheduledTime": "<aws.scheduler.scheduled-time>"}')
    disabled = doctor.schedule()

    assert disabled.verdict == Verdict.FAIL
    assert "default/tick is DISABLED but ScheduleState is ENABLED" in disabled.details
    assert moto_doctor(ScheduleState="DISABLED").schedule().verdict == Verdict.WARN


def test_doctor_warns_of_a_schedule_that_sends_no_scheduled_time(moto_doctor):
    _schedule("ENABLED", "{}")

    result = moto_doctor(ScheduleState="ENABLED").schedule()

    assert result.verdict == Verdict.WARN
    assert any("does not send scheduledTime" in detail for detail in result.details)


def test_doctor_fails_when_the_only_alarm_subscription_is_unconfirmed(moto_doctor):
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    doctor = moto_doctor()
    doctor.deployment.outputs["AlarmTopicArn"] = topic
    assert doctor.alarm_subscriptions().summary == "the alarm topic has no subscription: nobody is paged"

    arn = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")["SubscriptionArn"]
    # AWS keeps an email subscription PendingConfirmation until someone clicks the link; moto confirms
    # at once, so the test puts back what AWS would show.
    sns_backends[DEFAULT_ACCOUNT_ID][REGION].subscriptions[arn].attributes["PendingConfirmation"] = "true"
    pending = doctor.alarm_subscriptions()

    assert pending.verdict == Verdict.FAIL
    assert pending.summary == "the alarm topic has only unconfirmed subscriptions: nobody is paged"
    assert pending.details == [
        "PENDING CONFIRMATION (never receives anything until confirmed): email:oncall@example.com"
    ]

    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:pager")
    assert doctor.alarm_subscriptions().verdict == Verdict.WARN


def test_doctor_finds_the_alarms_that_page_the_alarm_topic_and_fails_disabled_ones(moto_doctor):
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="alarms")["TopicArn"]
    doctor = moto_doctor()
    doctor.deployment.outputs["AlarmTopicArn"] = topic
    assert doctor.alarms().summary == "the stack has no CloudWatch alarms: nothing pages on-call"

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarm = {
        "Namespace": "AWS/States",
        "MetricName": "ExecutionsFailed",
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "AlarmActions": [topic],
    }
    cloudwatch.put_metric_alarm(AlarmName="exports-failed", **alarm)
    cloudwatch.put_metric_alarm(AlarmName="someone-elses", **{**alarm, "AlarmActions": []})
    assert doctor.alarms().summary == "1 alarms notify the alarm topic"

    cloudwatch.put_metric_alarm(AlarmName="exports-failed", ActionsEnabled=False, **alarm)
    disabled = doctor.alarms()
    assert disabled.verdict == Verdict.FAIL and disabled.details == ["exports-failed: actions disabled"]
