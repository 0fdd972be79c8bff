"""IAM policy evaluation as AWS documents it (local/iam/policy.py), without moto."""

from __future__ import annotations

import json

import pytest

from local.iam.policy import (
    Caller,
    Decision,
    Request,
    UnsupportedPolicyElement,
    arn_match,
    delegates_to_account,
    evaluate_identity,
    evaluate_resource_policy,
)

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/state"
ROLE = Caller(arn="arn:aws:sts::123456789012:assumed-role/fn-role/session", account_id="123456789012")


def _policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_an_allow_scoped_to_the_table_allows_that_table_only() -> None:
    policy = _policy({"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Put*"], "Resource": TABLE})

    assert evaluate_identity([policy], Request("dynamodb:PutItem", TABLE)) is Decision.ALLOW
    assert evaluate_identity([policy], Request("dynamodb:getitem", TABLE)) is Decision.ALLOW  # actions ignore case
    assert evaluate_identity([policy], Request("dynamodb:DeleteItem", TABLE)) is Decision.IMPLICIT_DENY
    assert evaluate_identity([policy], Request("dynamodb:GetItem", TABLE + "x")) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_and_not_action_excludes() -> None:
    allow = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    deny = _policy({"Effect": "Deny", "NotAction": "dynamodb:GetItem", "Resource": TABLE})

    assert evaluate_identity([allow, deny], Request("dynamodb:PutItem", TABLE)) is Decision.DENY
    assert evaluate_identity([allow, deny], Request("dynamodb:GetItem", TABLE)) is Decision.ALLOW


def test_wildcards_are_only_star_and_question_mark() -> None:
    policy = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket.a/*"})

    assert evaluate_identity([policy], Request("s3:GetObject", "arn:aws:s3:::bucket.a/k")) is Decision.ALLOW
    # a "." in the pattern is literal, not "any character"
    assert evaluate_identity([policy], Request("s3:GetObject", "arn:aws:s3:::bucketXa/k")) is Decision.IMPLICIT_DENY
    assert arn_match(
        "arn:aws:*-*:us-east-1:123456789012:data-integration/*",
        "arn:aws:app-integrations:us-east-1:123456789012:data-integration/x",
    )
    assert not arn_match(
        "arn:aws:*-*:us-east-1:123456789012:data-integration/*", "arn:aws:s3:us-east-1:123456789012:data-integration/x"
    )


def test_an_allow_whose_condition_fails_does_not_apply() -> None:
    # moto's own evaluator turned this into a deny
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    )

    assert (
        evaluate_identity([policy], Request("sqs:SendMessage", "q", {"aws:SecureTransport": "false"}))
        is Decision.IMPLICIT_DENY
    )
    assert (
        evaluate_identity([policy], Request("sqs:SendMessage", "q", {"aws:securetransport": "true"})) is Decision.ALLOW
    )


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, {"aws:SourceAccount": "123456789012"}, True),
        ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, {}, False),
        ({"StringNotEquals": {"aws:SourceAccount": "999"}}, {}, True),  # negated: a missing key holds
        ({"StringLike": {"s3:prefix": ["exports/*", "other"]}}, {"s3:prefix": "exports/a"}, True),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/r*"}},
            {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/rx"},
            True,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r"}},
            {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/q"},
            False,
        ),
        ({"StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}, {}, True),
        ({"Null": {"aws:SourceArn": "true"}}, {}, True),
        ({"Null": {"aws:SourceArn": "false"}}, {}, False),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}}, {"aws:TagKeys": ["a", "b"]}, False),
    ],
)
def test_condition_operators(condition: dict[str, object], context: dict[str, object], holds: bool) -> None:
    policy = _policy({"Effect": "Allow", "Action": "x:Y", "Resource": "*", "Condition": condition})

    expected = Decision.ALLOW if holds else Decision.IMPLICIT_DENY
    assert evaluate_identity([policy], Request("x:Y", "r", context)) is expected  # type: ignore[arg-type]


def test_an_unknown_condition_operator_fails_loudly() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": "x:Y",
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}},
        }
    )

    with pytest.raises(UnsupportedPolicyElement, match="DateGreaterThan"):
        evaluate_identity([policy], Request("x:Y", "r", {"aws:CurrentTime": "2026-01-01"}))


BUCKET_POLICY = _policy(
    {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    },
    {
        "Effect": "Allow",
        "Principal": {"Service": ["app-integrations.amazonaws.com"]},
        "Action": ["s3:PutObject"],
        "Resource": ["arn:aws:s3:::b/*"],
        "Condition": {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnEquals": {"aws:SourceArn": "arn:aws:*-*:us-east-1:123456789012:data-integration/*"},
        },
    },
)


def test_a_bucket_policy_grants_the_service_principal_only_with_its_conditions() -> None:
    service = Caller(service="app-integrations.amazonaws.com")
    good = {
        "aws:SecureTransport": "true",
        "aws:SourceAccount": "123456789012",
        "aws:SourceArn": "arn:aws:app-integrations:us-east-1:123456789012:data-integration/abc",
    }

    assert (
        evaluate_resource_policy(BUCKET_POLICY, Request("s3:PutObject", "arn:aws:s3:::b/k", good), service)
        is Decision.ALLOW
    )
    other_account = {**good, "aws:SourceAccount": "210987654321"}
    assert (
        evaluate_resource_policy(BUCKET_POLICY, Request("s3:PutObject", "arn:aws:s3:::b/k", other_account), service)
        is Decision.IMPLICIT_DENY
    )
    insecure = {**good, "aws:SecureTransport": "false"}
    assert (
        evaluate_resource_policy(BUCKET_POLICY, Request("s3:PutObject", "arn:aws:s3:::b/k", insecure), service)
        is Decision.DENY
    )
    someone = Caller(service="events.amazonaws.com")
    assert (
        evaluate_resource_policy(BUCKET_POLICY, Request("s3:PutObject", "arn:aws:s3:::b/k", good), someone)
        is Decision.IMPLICIT_DENY
    )


def test_an_account_principal_delegates_to_iam_and_does_not_allow_by_itself() -> None:
    key_policy = _policy(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    )
    request = Request("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k")

    assert evaluate_resource_policy(key_policy, request, ROLE) is Decision.IMPLICIT_DENY
    assert delegates_to_account(key_policy, request, ROLE)
    stranger = Caller(arn="arn:aws:iam::210987654321:user/x", account_id="210987654321")
    assert not delegates_to_account(key_policy, request, stranger)


def test_a_role_named_in_a_principal_matches_its_sessions() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/fn-role"},
            "Action": "sqs:SendMessage",
            "Resource": "*",
        }
    )

    assert evaluate_resource_policy(policy, Request("sqs:SendMessage", "q"), ROLE) is Decision.ALLOW


def test_a_trust_policy_admits_only_its_service() -> None:
    trust = _policy(
        {"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}
    )

    assert (
        evaluate_resource_policy(trust, Request("sts:AssumeRole", "role"), Caller(service="lambda.amazonaws.com"))
        is Decision.ALLOW
    )
    assert (
        evaluate_resource_policy(trust, Request("sts:AssumeRole", "role"), Caller(service="states.amazonaws.com"))
        is Decision.IMPLICIT_DENY
    )
