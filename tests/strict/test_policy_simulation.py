"""`iam:SimulatePrincipalPolicy` offline: the answer the request gate would give the role's real call."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from local.harness.stack import OfflineStack
from tests.strict.conftest import client_as, role_arn


def _results(stack: OfflineStack, role: str, actions: list[str], resources: list[str], **extra):
    answer = stack.client("iam").simulate_principal_policy(
        PolicySourceArn=role_arn(stack, role), ActionNames=actions, ResourceArns=resources, **extra
    )
    return {(r["EvalActionName"], r["EvalResourceName"]): r for r in answer["EvaluationResults"]}


def test_a_role_is_allowed_what_its_policy_grants_on_its_resources_and_nothing_else(stack: OfflineStack) -> None:
    # Given the Plan function's role: GetItem on the state table, nothing on the idempotency table
    state = f"arn:aws:dynamodb:{stack.region}:{stack.account_id}:table/{stack.outputs['StateTableName']}"
    other = f"arn:aws:dynamodb:{stack.region}:{stack.account_id}:table/{stack.outputs['IdempotencyTableName']}"

    # When its policies are simulated for both tables
    results = _results(stack, "PlanFunctionRole", ["dynamodb:GetItem", "dynamodb:PutItem"], [state, other])

    # Then only the grant the template made is allowed, and the statement's policy is named
    decisions = {key: result["EvalDecision"] for key, result in results.items()}
    assert decisions == {
        ("dynamodb:GetItem", state): "allowed",
        ("dynamodb:PutItem", state): "implicitDeny",
        ("dynamodb:GetItem", other): "implicitDeny",
        ("dynamodb:PutItem", other): "implicitDeny",
    }
    (matched,) = results[("dynamodb:GetItem", state)]["MatchedStatements"]
    assert matched == {"SourcePolicyId": "PlanFunctionRolePolicy0", "SourcePolicyType": "role"}
    # and the role's real calls get the same answers from the request gate
    ddb = client_as(stack, "dynamodb", "PlanFunctionRole")
    ddb.get_item(TableName=stack.outputs["StateTableName"], Key={"pk": {"S": "x"}, "sk": {"S": "y"}})
    with pytest.raises(ClientError):
        ddb.put_item(TableName=stack.outputs["StateTableName"], Item={"pk": {"S": "x"}, "sk": {"S": "y"}})


def test_a_condition_is_met_only_by_the_context_keys_the_request_carries(stack: OfflineStack) -> None:
    # Given the grant StartExport's role has on the export key: CreateGrant only for an AWS resource
    key = stack.outputs["ExportKeyArn"]
    context = [
        {"ContextKeyName": "kms:GrantIsForAWSResource", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"}
    ]

    # When it is simulated with and without the key CreateDataIntegration's grant carries
    carried = _results(stack, "StartExportFunctionRole", ["kms:CreateGrant"], [key], ContextEntries=context)
    bare = _results(stack, "StartExportFunctionRole", ["kms:CreateGrant"], [key])

    # Then only the real call's context is allowed, and the missing key is named
    assert carried[("kms:CreateGrant", key)]["EvalDecision"] == "allowed"
    assert bare[("kms:CreateGrant", key)]["EvalDecision"] == "implicitDeny"
    assert bare[("kms:CreateGrant", key)]["MissingContextValues"] == ["kms:GrantIsForAWSResource"]


def test_an_unknown_role_is_no_such_entity_and_a_role_may_not_simulate_without_the_grant(stack: OfflineStack) -> None:
    iam = stack.client("iam")
    with pytest.raises(ClientError) as missing:
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{stack.account_id}:role/not-a-role", ActionNames=["s3:GetObject"]
        )
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"

    # A role of the stack has no iam:SimulatePrincipalPolicy: the gate refuses it on the simulated role
    with pytest.raises(ClientError) as denied:
        client_as(stack, "iam", "PlanFunctionRole").simulate_principal_policy(
            PolicySourceArn=role_arn(stack, "NotifyFunctionRole"), ActionNames=["sns:Publish"]
        )
    assert "iam:SimulatePrincipalPolicy" in str(denied.value)
    assert role_arn(stack, "NotifyFunctionRole") in str(denied.value)
