"""`cpexport verify`'s pure parts: the window it exports, the simulator's answers as AWS shapes them,
and the service's access judged from bucket and key policies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cpexport_cli.deployment import Deployment
from cpexport_cli.errors import InvalidInput
from cpexport_cli.verify import (
    Question,
    Scope,
    Verdict,
    choose_target,
    service_bucket_step,
    service_key_step,
    simulate,
    verification_request,
)

ACCOUNT = "123456789012"
REGION = "eu-west-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NOW = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)


def deployment() -> Deployment:
    return Deployment(
        stack_name="exports",
        stack_id=f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/exports/1",
        status="CREATE_COMPLETE",
        region=REGION,
        account_id=ACCOUNT,
        outputs={
            "StateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:exports",
            "StateTableName": "state",
            "ExportBucketName": "exports-bucket",
            "ExportKeyArn": KEY,
        },
        parameters={
            "DomainNames": "shop,outlet",
            "ObjectTypes": "_order,_profile",
            "ExportPrefix": "exports",
            "InitialStartTime": "2026-01-01T00:00:00Z",
        },
    )


class Watermarks:
    def __init__(self, watermark: datetime | None) -> None:
        self.watermark = watermark

    def get_watermark(self, domain_name: str, object_type: str) -> datetime | None:
        return self.watermark


def test_the_window_ends_a_minute_before_the_watermark_on_whole_minutes():
    watermark = datetime(2026, 11, 28, 9, 0, 45, tzinfo=UTC)

    target = choose_target(deployment(), Watermarks(watermark), None, None, 5, NOW)  # type: ignore[arg-type]

    # the first configured domain, and _profile although it is not the first type
    assert (target.domain_name, target.object_type) == ("shop", "_profile")
    assert (target.window.start, target.window.end) == (
        datetime(2026, 11, 28, 8, 54, tzinfo=UTC),
        datetime(2026, 11, 28, 8, 59, tzinfo=UTC),
    )
    request = verification_request(target, "cpexport-verify-1")
    assert request["verification"] is True and request["endTime"] == "2026-11-28T08:59:00Z"


def test_without_a_watermark_the_window_ends_a_minute_before_the_newest_safe_time():
    target = choose_target(deployment(), Watermarks(None), "outlet", "_order", 10, NOW)  # type: ignore[arg-type]

    # clock 12:00:30, SafetyLagMinutes 30: safe until 11:30:30; a minute before, on the minute
    assert (target.window.start, target.window.end) == (
        datetime(2026, 11, 28, 11, 19, tzinfo=UTC),
        datetime(2026, 11, 28, 11, 29, tzinfo=UTC),
    )


def test_a_domain_the_stack_does_not_export_is_refused():
    with pytest.raises(InvalidInput, match="--domain nope: not configured in stack exports"):
        choose_target(deployment(), Watermarks(None), "nope", None, 5, NOW)  # type: ignore[arg-type]


class _Simulator:
    """IAM's simulator as AWS answers with ResourceArns: a result per action, per resource inside it."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer, self.asked = answer, []

    def get_paginator(self, name: str) -> Any:
        simulator = self

        class Pages:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                simulator.asked.append(kwargs)
                return [simulator.answer]

        return Pages()


def test_a_resource_specific_answer_is_the_resources_and_the_context_keys_are_typed():
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/state"
    context = (("aws:SecureTransport", "true"), ("kms:ViaService", "s3.eu-west-1.amazonaws.com"))
    question = Question("PlanFunctionRole", "dynamodb:GetItem", table, context, "reads watermarks")
    iam = _Simulator(
        {
            "EvaluationResults": [
                {
                    "EvalActionName": "dynamodb:GetItem",
                    "EvalResourceName": "*",
                    "EvalDecision": "allowed",
                    "ResourceSpecificResults": [
                        {"EvalResourceName": table, "EvalResourceDecision": "implicitDeny", "MatchedStatements": []}
                    ],
                }
            ]
        }
    )

    answers = simulate(iam, f"arn:aws:iam::{ACCOUNT}:role/plan", [question])

    assert answers[question].decision == "implicitDeny"
    (asked,) = iam.asked
    assert asked["ResourceArns"] == [table] and asked["ActionNames"] == ["dynamodb:GetItem"]
    assert asked["ContextEntries"][0]["ContextKeyType"] == "boolean"
    assert asked["ContextEntries"][1] == {
        "ContextKeyName": "kms:ViaService",
        "ContextKeyValues": ["s3.eu-west-1.amazonaws.com"],
        "ContextKeyType": "string",
    }


class _Resources:
    """What the service steps read of the stack."""

    bucket = "exports-bucket"
    export_key = KEY
    account = ACCOUNT
    region = REGION
    partition = "aws"

    def arns(self, name: str, scope: Scope) -> list[str]:
        return {"ExportBucket": ["arn:aws:s3:::exports-bucket"]}.get(name, ["arn:aws:s3:::exports-bucket/exports/x"])

    def found(self, scope: Scope) -> tuple[None, None]:
        return None, None


SERVICE_STATEMENT = {
    "Sid": "Allow AppIntegrations to write data to destination bucket",
    "Effect": "Allow",
    "Principal": {"Service": ["app-integrations.amazonaws.com"]},
    "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:PutObjectAcl"],
    "Resource": ["arn:aws:s3:::exports-bucket", "arn:aws:s3:::exports-bucket/*"],
    "Condition": {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnEquals": {"aws:SourceArn": f"arn:aws:*-*:{REGION}:{ACCOUNT}:data-integration/*"},
    },
}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_the_documented_bucket_statement_passes_and_one_without_its_conditions_is_a_finding():
    scope = Scope("shop", "_profile")
    assert service_bucket_step(_Resources(), _policy(SERVICE_STATEMENT), scope).verdict == Verdict.OK  # type: ignore[arg-type]

    open_to_all = {key: value for key, value in SERVICE_STATEMENT.items() if key != "Condition"}
    step = service_bucket_step(_Resources(), _policy(open_to_all), scope)  # type: ignore[arg-type]
    assert step.verdict == Verdict.FAIL and step.summary.startswith("finding: ")

    no_put = dict(SERVICE_STATEMENT, Action=["s3:GetObject", "s3:ListBucket", "s3:PutObjectAcl"])
    refused = service_bucket_step(_Resources(), _policy(no_put), scope)  # type: ignore[arg-type]
    assert (
        refused.verdict == Verdict.FAIL and "s3:PutObject on arn:aws:s3:::exports-bucket/exports/x" in refused.summary
    )


def test_a_key_policy_must_name_the_service_not_only_the_account():
    scope = Scope("shop", "_profile")
    documented = {
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root"], "Service": ["app-integrations.amazonaws.com"]},
        "Action": ["kms:Encrypt*", "kms:Describe*", "kms:Decrypt*", "kms:GenerateDataKey*"],
        "Resource": "*",
    }
    assert service_key_step(_Resources(), _policy(documented), scope).verdict == Verdict.OK  # type: ignore[arg-type]

    account_only = dict(documented, Principal={"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]})
    step = service_key_step(_Resources(), _policy(account_only), scope)  # type: ignore[arg-type]
    assert step.verdict == Verdict.FAIL
    assert step.details == [
        f"refused: {action} on {KEY}"
        for action in ("kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey")
    ]


def test_a_role_the_table_does_not_know_is_named_not_skipped_in_silence():
    from cpexport_cli.deployment import StackResource
    from cpexport_cli.verify import StackResources

    deployed = deployment()
    roles = [
        StackResource("PlanFunctionRole", "AWS::IAM::Role", "exports-PlanFunctionRole-1", "CREATE_COMPLETE"),
        StackResource("NewerRole", "AWS::IAM::Role", "exports-NewerRole-1", "CREATE_COMPLETE"),
    ]
    resources = StackResources(
        Deployment(**{**deployed.__dict__, "resources": roles}),
        connection=None,  # type: ignore[arg-type]
        appintegrations=None,  # type: ignore[arg-type]
        now=NOW,
    )

    assert resources.unknown_roles() == ["NewerRole"]
    assert resources.role_arns() == {"PlanFunctionRole": f"arn:aws:iam::{ACCOUNT}:role/exports-PlanFunctionRole-1"}
