"""IAM on the offline stack: each role reaches only what the template grants, as on AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.harness.stack import OfflineStack
from local.iam.authorizer import AccessRequest, MotoAuthorizer
from local.iam.principals import Credentials, UntrustedRole
from tests.strict.conftest import DOMAIN, as_role, client_as, policy_document, role_arn


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_function_role_may_do_what_its_policy_grants_on_its_own_table_only(stack: OfflineStack, unique: str) -> None:
    # Given the Plan function's role (DynamoDBReadPolicy on the state table)
    ddb = client_as(stack, "dynamodb", "PlanFunctionRole")
    table = stack.outputs["StateTableName"]
    key = {"pk": {"S": f"EXPORT#{unique}"}, "sk": {"S": "WATERMARK"}}

    # When it reads and writes
    assert "Item" not in ddb.get_item(TableName=table, Key=key)
    with pytest.raises(ClientError) as denied:
        ddb.put_item(TableName=table, Item=key)

    # Then the write is refused as AWS refuses it, naming the action and the table
    assert _code(denied) == "AccessDeniedException"
    message = str(denied.value)
    assert "dynamodb:PutItem" in message and f":table/{table}" in message and "PlanFunctionRole" in message
    # and the idempotency table is not the state table: its grant does not reach it
    with pytest.raises(ClientError):
        ddb.get_item(TableName=stack.outputs["IdempotencyTableName"], Key={"id": {"S": unique}})


def test_the_notify_role_publishes_to_its_topic_only(stack: OfflineStack) -> None:
    sns = client_as(stack, "sns", "NotifyFunctionRole")

    sns.publish(TopicArn=stack.outputs["NotificationTopicArn"], Message="ok", Subject="offline")
    with pytest.raises(ClientError) as denied:
        sns.publish(TopicArn=stack.outputs["AlarmTopicArn"], Message="not mine")

    assert _code(denied) == "AuthorizationError"


@pytest.fixture
def user_without_kms(stack: OfflineStack, unique: str) -> Iterator[Credentials]:
    """An IAM user allowed S3 on the export bucket and SNS publish, but no KMS action."""
    iam = stack.client("iam")
    name = f"no-kms-{unique}"
    bucket = stack.outputs["ExportBucketName"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": stack.outputs["NotificationTopicArn"]},
        ],
    }
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="no-kms", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    yield Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def test_sse_kms_needs_the_callers_own_kms_permissions(
    stack: OfflineStack, user_without_kms: Credentials, unique: str
) -> None:
    # Given an object in the export bucket, encrypted with the export key (the bucket's default)
    bucket = stack.outputs["ExportBucketName"]
    stack.client("s3").put_object(Bucket=bucket, Key=f"kms/{unique}", Body=b"secret")
    s3 = stack.client("s3", user_without_kms)

    # When a caller allowed s3:PutObject/GetObject but no KMS action writes or reads it
    with pytest.raises(ClientError) as put_denied:
        s3.put_object(Bucket=bucket, Key=f"kms/{unique}-2", Body=b"x")
    with pytest.raises(ClientError) as get_denied:
        s3.get_object(Bucket=bucket, Key=f"kms/{unique}")

    # Then S3 refuses both for the dependent KMS action on the export key
    key_arn = stack.outputs["ExportKeyArn"]
    assert _code(put_denied) == "AccessDenied" and "kms:GenerateDataKey" in str(put_denied.value)
    assert key_arn in str(put_denied.value)
    assert _code(get_denied) == "AccessDenied" and "kms:Decrypt" in str(get_denied.value)
    # while the Index function's role (granted kms:Decrypt/GenerateDataKey) may
    index_s3 = client_as(stack, "s3", "IndexExportFunctionRole")
    index_s3.put_object(
        Bucket=bucket, Key=f"kms/{unique}-3", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn
    )
    assert index_s3.get_object(Bucket=bucket, Key=f"kms/{unique}")["Body"].read() == b"secret"


def test_publishing_to_an_encrypted_topic_needs_the_topic_keys_permissions(
    stack: OfflineStack, user_without_kms: Credentials
) -> None:
    sns = stack.client("sns", user_without_kms)

    with pytest.raises(ClientError) as denied:
        sns.publish(TopicArn=stack.outputs["NotificationTopicArn"], Message="m")

    assert _code(denied) == "KMSAccessDenied"
    assert "kms:GenerateDataKey" in str(denied.value)


def test_an_operation_the_table_does_not_know_is_denied_loudly(stack: OfflineStack) -> None:
    ddb = client_as(stack, "dynamodb", "StartExportFunctionRole")

    with pytest.raises(ClientError) as denied:
        ddb.list_backups()

    assert "dynamodb:ListBackups has no entry in local/iam/operations.py" in str(denied.value)
    assert stack.account.enforcer.denials[-1].action == "dynamodb:ListBackups"


def test_a_wrong_secret_is_refused_even_for_a_known_key(stack: OfflineStack) -> None:
    real = as_role(stack, "PlanFunctionRole")
    forged = Credentials(real.access_key_id, "not-the-secret", real.session_token)

    with pytest.raises(ClientError) as refused:
        stack.client("dynamodb", forged).list_tables()

    assert _code(refused) in ("SignatureDoesNotMatch", "InvalidSignatureException")


def test_enforcement_can_be_switched_off_for_debugging(stack: OfflineStack, unique: str) -> None:
    ddb = client_as(stack, "dynamodb", "PlanFunctionRole")
    item = {"pk": {"S": f"EXPORT#{unique}"}, "sk": {"S": "DEBUG"}}
    stack.account.enforcer.enabled = False  # what OfflineStack(enforce_iam=False) sets
    try:
        ddb.put_item(TableName=stack.outputs["StateTableName"], Item=item)
    finally:
        stack.account.enforcer.enabled = True
    with pytest.raises(ClientError):
        ddb.put_item(TableName=stack.outputs["StateTableName"], Item=item)


def test_a_role_is_only_assumable_by_the_service_its_trust_policy_names(stack: OfflineStack) -> None:
    broker = stack.account.broker

    broker.role_credentials(role_arn(stack, "ExportStateMachineScheduleRole"), "scheduler.amazonaws.com")
    with pytest.raises(UntrustedRole, match="trust policy"):
        broker.role_credentials(role_arn(stack, "ExportStateMachineScheduleRole"), "lambda.amazonaws.com")


def test_the_state_machine_role_needs_lambda_invoke_for_each_task(stack: OfflineStack) -> None:
    # Given the state machine role without the statement that lets it invoke the Plan function
    iam = stack.client("iam")
    role = stack.physical_id("ExportStateMachineRole")
    name = next(n for n in iam.list_role_policies(RoleName=role)["PolicyNames"] if n.endswith("Policy0"))
    document = policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    assert "PlanFunction" in json.dumps(document)
    iam.delete_role_policy(RoleName=role, PolicyName=name)
    try:
        # When an execution starts
        result = stack.run_execution({"domainName": DOMAIN}, timeout=60)
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))

    # Then its first task fails with AWS's access-denied message for lambda:InvokeFunction
    assert result["status"] == "FAILED"
    history = json.dumps(stack.execution_history(result["executionArn"]), default=str)
    assert "ExportStateMachineRole" in history
    assert "is not authorized to perform: lambda:InvokeFunction" in history


def _authorizer(stack: OfflineStack) -> MotoAuthorizer:
    return MotoAuthorizer(stack.account.enforcer)


def test_moto_authorizer_resolves_keys_to_principals(stack: OfflineStack) -> None:
    authorizer = _authorizer(stack)
    start_role = as_role(stack, "StartExportFunctionRole")

    conventional: Any = authorizer.credentials("testing")
    admin: Any = authorizer.credentials(stack.admin_credentials.access_key_id)
    session: Any = authorizer.credentials(start_role.access_key_id)

    assert conventional.principal_arn == admin.principal_arn == stack.account.broker.admin.arn
    assert conventional.secret_access_key == "testing"
    assert session.session_token == start_role.session_token
    assert ":assumed-role/" in session.principal_arn and "StartExportFunctionRole" in session.principal_arn
    assert authorizer.credentials("AKIAUNKNOWN") is None


def test_moto_authorizer_answers_identity_and_key_policy_questions(stack: OfflineStack) -> None:
    authorizer = _authorizer(stack)
    start: Any = authorizer.credentials(as_role(stack, "StartExportFunctionRole").access_key_id)
    check: Any = authorizer.credentials(as_role(stack, "CheckExportFunctionRole").access_key_id)
    integration = f"arn:aws:app-integrations:us-east-1:{stack.account_id}:data-integration/abc"
    key = stack.outputs["ExportKeyArn"]

    create = AccessRequest("app-integrations:CreateDataIntegration", integration)
    assert authorizer.is_allowed(start.principal_arn, create)
    assert not authorizer.is_allowed(check.principal_arn, create)
    grant = AccessRequest("kms:CreateGrant", key, {"kms:GrantIsForAWSResource": "true"})
    assert authorizer.is_allowed(start.principal_arn, grant)  # identity policy + key policy's account grant
    assert not authorizer.is_allowed(check.principal_arn, grant)
    assert authorizer.is_allowed(stack.account.broker.admin.arn, create)


def test_moto_authorizer_answers_resource_policy_questions_for_the_service(stack: OfflineStack) -> None:
    authorizer = _authorizer(stack)
    bucket = stack.outputs["ExportBucketName"]
    source = {
        "aws:SourceAccount": stack.account_id,
        "aws:SourceArn": f"arn:aws:app-integrations:us-east-1:{stack.account_id}:data-integration/abc",
    }
    write = AccessRequest("s3:PutObject", f"arn:aws:s3:::{bucket}/exports/x", source)

    assert authorizer.service_may("app-integrations.amazonaws.com", write)
    assert not authorizer.service_may("app-integrations.amazonaws.com", AccessRequest(write.action, write.resource))
    assert not authorizer.service_may("events.amazonaws.com", write)
    key = AccessRequest("kms:GenerateDataKey", stack.outputs["ExportKeyArn"])
    assert authorizer.service_may("app-integrations.amazonaws.com", key)
    notification_key = stack.physical_id("NotificationKey")
    assert not authorizer.service_may(
        "app-integrations.amazonaws.com", AccessRequest("kms:GenerateDataKey", notification_key)
    )
