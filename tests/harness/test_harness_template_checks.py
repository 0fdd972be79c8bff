"""What CloudFormation does with a template before and while it creates it, and moto does not.

Parameters outside their constraints and failed Rules refuse the stack before anything exists;
`AWS::LanguageExtensions`' Fn::ForEach is expanded with the stack's parameters (SAM CLI's own
implementation); a role whose inline policies exceed IAM's quota fails the deployment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.harness import OfflineStack
from local.harness.deployment import ROLE_INLINE_POLICIES_QUOTA, DeploymentError, inline_policy_size
from local.harness.parameters import ParameterRefused, check_parameters

CHECKED = {
    "Parameters": {
        "Names": {
            "Type": "CommaDelimitedList",
            "AllowedPattern": "^[a-z0-9-]{1,8}$",
        },
        "Size": {"Type": "String", "Default": "small", "AllowedValues": ["small", "large"]},
        "Label": {"Type": "String", "Default": "ok", "MaxLength": 5, "MinLength": 1},
        "Days": {"Type": "Number", "Default": 7, "MinValue": 0, "MaxValue": 30},
        "Prefix": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^[a-z]*$",
            "ConstraintDescription": "lower-case letters only",
        },
    },
    "Rules": {
        "NotTheMargin": {
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Contains": [["1", "2"], {"Ref": "Days"}]}]},
                    "AssertDescription": "Days must be 0 or at least 3.",
                }
            ]
        },
        "LargeOnlyWithFewNames": {
            "RuleCondition": {"Fn::Equals": [{"Ref": "Size"}, "large"]},
            "Assertions": [{"Assert": {"Fn::EachMemberIn": [{"Ref": "Names"}, ["a", "b"]]}}],
        },
    },
}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"Names": "a,Bad"}, "Parameter 'Names' must match pattern ^[a-z0-9-]{1,8}$; got 'Bad'"),
        ({"Names": "a,,b"}, "got ''"),
        ({"Names": "a,waytoolong"}, "must match pattern"),
        ({"Size": "medium"}, "Parameter 'Size' must be one of AllowedValues"),
        ({"Label": "toolong"}, "must contain at most 5 characters"),
        ({"Label": ""}, "must contain at least 1 characters"),
        ({"Days": "31"}, "must be a number not greater than 30"),
        ({"Days": "-1"}, "must be a number not less than 0"),
        ({"Days": "seven"}, "must be a number"),
        (
            {"Prefix": "A"},
            "Parameter 'Prefix' failed to satisfy constraint: lower-case letters only (must match pattern ^[a-z]*$; got 'A')",
        ),
        ({"Days": "2"}, "Template rule NotTheMargin: Days must be 0 or at least 3."),
        ({"Size": "large", "Names": "a,c"}, "rule LargeOnlyWithFewNames failed"),
    ],
)
def test_a_value_the_template_refuses_is_named(values: dict[str, str], message: str) -> None:
    given = {"Names": "a, b-2", "Size": "small", "Label": "ok", "Days": "7", "Prefix": ""} | values
    with pytest.raises(ParameterRefused) as refused:
        check_parameters(CHECKED, given)
    assert message in str(refused.value)


def test_values_within_every_constraint_pass() -> None:
    # list items are trimmed as CloudFormation trims them; a rule whose condition is false is not asserted
    check_parameters(CHECKED, {"Names": "a, b-2", "Size": "small", "Label": "ok", "Days": "0", "Prefix": ""})
    check_parameters(CHECKED, {"Names": "a,b", "Size": "large", "Label": "ok", "Days": "3", "Prefix": "x"})


def test_a_rule_function_not_evaluated_offline_raises() -> None:
    template = {"Rules": {"R": {"Assertions": [{"Assert": {"Fn::ValueOf": ["Subnet", "VpcId"]}}]}}}
    with pytest.raises(ValueError, match="Fn::ValueOf"):
        check_parameters(template, {})


def _write(tmp_path: Path, template: dict) -> Path:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    return path


def _stack_names(stack: OfflineStack) -> list[str]:
    return [
        s["StackName"]
        for s in stack.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]


def test_a_parameter_the_template_refuses_fails_the_deployment_before_anything_exists(
    stack: OfflineStack, tmp_path: Path
) -> None:
    # Given a template whose queue names must be lower case
    template = {
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "AllowedPattern": "^[a-z]{1,10}$"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    }

    # When it is deployed with an upper-case item
    with pytest.raises(DeploymentError) as refused:
        stack.add_stack("refused", {"Names": "ok,NotOk"}, template_path=_write(tmp_path, template))

    # Then the deployment fails as CloudFormation's ValidationError, and no stack was created
    assert "refused: ValidationError: Parameter 'Names' must match pattern" in str(refused.value)
    assert "refused" not in _stack_names(stack)


LOOPED = {
    "Transform": ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"],
    "Parameters": {"Names": {"Type": "CommaDelimitedList"}},
    "Resources": {
        "Table": {"Type": "AWS::Serverless::SimpleTable"},
        "Fn::ForEach::Queues": [
            "Name",
            {"Ref": "Names"},
            {
                "Queue&{Name}": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {
                        "QueueName": {"Fn::Sub": "${AWS::StackName}-${Name}"},
                        "Tags": [{"Key": "table", "Value": {"Ref": "Table"}}],
                    },
                }
            },
        ],
    },
    "Outputs": {
        "Fn::ForEach::QueueUrls": [
            "Name",
            {"Ref": "Names"},
            {"Url&{Name}": {"Value": {"Ref": "Queue&{Name}"}}},
        ]
    },
}


def test_fn_foreach_is_expanded_with_the_stacks_parameters(stack: OfflineStack, tmp_path: Path) -> None:
    # When a template with AWS::LanguageExtensions and SAM is deployed with three names
    looped = stack.add_stack("looped", {"Names": "eu-west,us_east,ap"}, template_path=_write(tmp_path, LOOPED))
    try:
        # Then one queue per name exists, its logical id the name's letters and digits, its
        # properties the name itself, and the SAM resource beside them was transformed
        queues = {logical_id for logical_id in looped.resources if logical_id.startswith("Queue")}
        assert queues == {"Queueeuwest", "Queueuseast", "Queueap"}
        sqs = stack.client("sqs")
        for name in ("eu-west", "us_east", "ap"):
            sqs.get_queue_url(QueueName=f"looped-{name}")
        assert looped.resources["Table"].resource_type == "AWS::DynamoDB::Table"
        assert set(looped.outputs) == {"Urleuwest", "Urluseast", "Urlap"}
    finally:
        stack.remove_stack(looped)


def test_a_foreach_giving_one_logical_id_twice_fails_the_deployment(stack: OfflineStack, tmp_path: Path) -> None:
    # `&{}` keeps letters and digits only: "a-b" and "ab" give the same logical id
    with pytest.raises(DeploymentError, match="produced logical IDs that conflict") as refused:
        stack.add_stack("colliding", {"Names": "a-b,ab"}, template_path=_write(tmp_path, LOOPED))
    assert "Fn::ForEach::Queues" in str(refused.value) and "Queueab" in str(refused.value)
    assert "colliding" not in _stack_names(stack)


def test_a_role_whose_inline_policies_exceed_iams_quota_fails_the_deployment(
    stack: OfflineStack, tmp_path: Path
) -> None:
    # Given a role with one inline policy per name (as template.yaml grants each domain)
    template = {
        "Transform": "AWS::LanguageExtensions",
        "Parameters": {"Names": {"Type": "CommaDelimitedList"}},
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "Fn::ForEach::Grants": [
                "Name",
                {"Ref": "Names"},
                {
                    "Grant&{Name}": {
                        "Type": "AWS::IAM::Policy",
                        "Properties": {
                            "PolicyName": {"Fn::Sub": "grant-${Name}"},
                            "Roles": [{"Ref": "Role"}],
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "sqs:SendMessage",
                                        "Resource": {
                                            "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Name}"
                                        },
                                    }
                                ],
                            },
                        },
                    }
                },
            ],
        },
    }
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": f"arn:aws:sqs:us-east-1:123456789012:{'q' * 40}",
            }
        ],
    }
    fits = ROLE_INLINE_POLICIES_QUOTA // inline_policy_size(document)
    names = [f"{'q' * 38}{n:02d}" for n in range(fits + 1)]
    path = _write(tmp_path, template)

    # When as many names as fit are deployed, the stack is created
    within = stack.add_stack("within-quota", {"Names": ",".join(names[:fits])}, template_path=path)
    stack.remove_stack(within)

    # When one more is deployed, IAM's quota refuses it and the stack is rolled back
    with pytest.raises(DeploymentError, match="LimitExceeded: Maximum policy size of 10240 bytes exceeded"):
        stack.add_stack("over-quota", {"Names": ",".join(names)}, template_path=path)
    assert "over-quota" not in _stack_names(stack)


def test_policy_size_counts_the_json_without_white_space() -> None:
    assert inline_policy_size('{"Version": "2012-10-17",\n  "Statement": []}') == len(
        '{"Version":"2012-10-17","Statement":[]}'
    )
