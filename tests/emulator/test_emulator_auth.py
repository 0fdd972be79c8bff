"""Authentication (SigV4 verified for real) and authorization (every action and dependent action), via boto3."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from local.emulator import CallerCredentials, EmulatorControl, EmulatorServer, Grant, PolicyAuthorizer
from local.emulator.synthetic import generate
from tests.emulator.emulator_helpers import (
    ACCOUNT,
    DAY_MS,
    DOMAIN,
    NO_RETRY,
    REGION,
    create_data_integration,
    create_export,
    last_status,
    list_keys,
    now_ms,
    on_demand,
    wait_status,
)

ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/ExportRole/export-session"
ROLE_KEY = CallerCredentials("ASIAEXPORTROLE", "role-secret", "role-session-token", ROLE)
AI = f"arn:aws:app-integrations:{REGION}:{ACCOUNT}"
PROFILE_DOMAIN = f"arn:aws:profile:{REGION}:{ACCOUNT}:domains/{DOMAIN}"
SERVICE = "app-integrations.amazonaws.com"
SIGNATURE_MISMATCH = "The request signature we calculated does not match the signature you provided"


def denial(action: str, resource: str) -> str:
    """AWS's AccessDeniedException message for a missing identity-based permission."""
    return (
        f"User: {ROLE} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def export_role_grants(kms_key_arn: str) -> list[Grant]:
    """What the pipeline's role needs for Customer Profiles exports (least privilege, as the reference lists)."""
    return [
        Grant("app-integrations:CreateDataIntegration", f"{AI}:data-integration/*"),
        Grant("app-integrations:TagResource", f"{AI}:data-integration/*"),
        Grant("app-integrations:GetDataIntegration", f"{AI}:data-integration/*"),
        Grant("app-integrations:DeleteDataIntegration", f"{AI}:data-integration/*"),
        Grant("app-integrations:CreateDataIntegrationAssociation", f"{AI}:data-integration/*"),
        Grant("app-integrations:UpdateDataIntegrationAssociation", f"{AI}:data-integration-association/*"),
        Grant("app-integrations:ListDataIntegrations", "*"),
        Grant("app-integrations:ListDataIntegrationAssociations", "*"),
        Grant("profile:GetDomain", PROFILE_DOMAIN),
        Grant("profile:GetProfileObjectType", f"{PROFILE_DOMAIN}/object-types/*"),
        Grant("profile:CreateSnapshot", PROFILE_DOMAIN),
        Grant("profile:GetSnapshot", PROFILE_DOMAIN),
        Grant(
            "kms:CreateGrant",
            kms_key_arn,
            {"kms:GrantIsForAWSResource": "true", "kms:ViaService": f"app-integrations.{REGION}.amazonaws.com"},
        ),
    ]


def documented_service_grants(bucket: str) -> list[Grant]:
    """The bucket and key policy statements the AWS docs require, as grants to the service principal."""
    scoped = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:*-*:{REGION}:{ACCOUNT}:data-integration/*"}
    return [Grant("s3:PutObject", f"arn:aws:s3:::{bucket}/*", scoped), Grant("kms:GenerateDataKey*", "*")]


def without(grants: Iterable[Grant], action: str) -> list[Grant]:
    return [g for g in grants if g.action != action]


@pytest.fixture
def role_emulator(
    make_emulator: Callable[..., EmulatorServer], boto_session: boto3.session.Session, bucket: str, kms_key_arn: str
) -> Callable[..., tuple[EmulatorServer, Any]]:
    """An emulator whose only key is the export role's, with given grants; returns it and the role's client."""

    def make(
        grants: list[Grant] | None = None, service_grants: list[Grant] | None = None, **config: Any
    ) -> tuple[EmulatorServer, Any]:
        authorizer = PolicyAuthorizer(
            [ROLE_KEY],
            {ROLE: export_role_grants(kms_key_arn) if grants is None else grants},
            {SERVICE: documented_service_grants(bucket) if service_grants is None else service_grants},
        )
        emu = make_emulator(authorizer=authorizer, **config)
        client = boto3.client(
            "appintegrations",
            endpoint_url=emu.url,
            region_name=REGION,
            aws_access_key_id=ROLE_KEY.access_key_id,
            aws_secret_access_key=ROLE_KEY.secret_access_key,
            aws_session_token=ROLE_KEY.session_token,
            config=NO_RETRY,
        )
        return emu, client

    return make


def skew_client_clock(monkeypatch: pytest.MonkeyPatch, skew: timedelta) -> None:
    """Make botocore's signers (pure Python and, when installed, CRT) sign with a clock ``skew`` off."""

    def skewed(remove_tzinfo: bool = True) -> datetime:
        now = datetime.now(UTC) + skew
        return now.replace(tzinfo=None) if remove_tzinfo else now

    monkeypatch.setattr(botocore.auth, "get_current_datetime", skewed)
    try:
        import botocore.crt.auth as crt_auth
    except ImportError:  # awscrt absent: only the pure-Python signer exists
        return
    monkeypatch.setattr(crt_auth, "get_current_datetime", skewed)


def error_of(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as err:
        call()
    response = err.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def send_signed(
    emu: EmulatorServer,
    *,
    service: str = "app-integrations",
    region: str = REGION,
    body: bytes = b"",
    sent_body: bytes | None = None,
    method: str = "GET",
    path: str = "/dataIntegrations",
    authorization: str | None = None,
) -> tuple[int, str, str]:
    """Sign a raw request with botocore's signer (optionally tampering with it); return status, code, message."""
    request = AWSRequest(method=method, url=f"{emu.url}{path}", data=body)
    SigV4Auth(Credentials("testing", "testing"), service, region).add_auth(request)
    headers = dict(request.headers.items())
    if authorization is not None:
        headers["Authorization"] = authorization
    raw = urllib.request.Request(
        f"{emu.url}{path}", data=body if sent_body is None else sent_body, headers=headers, method=method
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(raw) as response:
            return response.status, "", ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["x-amzn-ErrorType"], json.loads(exc.read())["Message"]


# ----------------------------------------------------------------- authentication


def test_wrong_secret_is_refused_by_the_recomputed_signature(emu: EmulatorServer) -> None:
    # Given the right access key with a wrong secret
    client = boto3.client(
        "appintegrations",
        endpoint_url=emu.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="not-the-secret",
        config=NO_RETRY,
    )

    # When it calls, Then the signature does not verify: 403 with AWS's message, modeled code by default
    code, message, status = error_of(client.list_data_integrations)
    assert (code, status) == ("AccessDeniedException", 403)
    assert message.startswith(SIGNATURE_MISMATCH)

    # And with authentication_errors=aws, the code AWS front ends send
    EmulatorControl(emu.url).configure(authentication_errors="aws")
    assert error_of(client.list_data_integrations)[:1] == ("InvalidSignatureException",)


def test_unknown_access_key_is_unrecognized(emu: EmulatorServer, boto_session: Any) -> None:
    client = boto3.client(
        "appintegrations",
        endpoint_url=emu.url,
        region_name=REGION,
        aws_access_key_id="AKIANOBODYKNOWS",
        aws_secret_access_key="testing",
        config=NO_RETRY,
    )
    code, message, status = error_of(client.list_data_integrations)
    assert (code, message, status) == (
        "AccessDeniedException",
        "The security token included in the request is invalid.",
        403,
    )
    EmulatorControl(emu.url).configure(authentication_errors="aws")
    assert error_of(client.list_data_integrations)[0] == "UnrecognizedClientException"


@pytest.mark.parametrize(
    ("skew", "needle"),
    [(timedelta(minutes=-6), "Signature expired: "), (timedelta(minutes=6), "Signature not yet current: ")],
)
def test_a_date_outside_five_minutes_is_refused(
    emu: EmulatorServer, boto_session: Any, monkeypatch: pytest.MonkeyPatch, skew: timedelta, needle: str
) -> None:
    # Given a client whose clock is six minutes off
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    skew_client_clock(monkeypatch, skew)

    # When it calls, Then the signature is refused as stale (or early), as AWS does
    _, message, _ = error_of(client.list_data_integrations)
    assert message.startswith(needle)
    EmulatorControl(emu.url).configure(authentication_errors="aws")
    assert error_of(client.list_data_integrations)[0] == "InvalidSignatureException"


def test_a_small_clock_skew_is_accepted(
    emu: EmulatorServer, boto_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    skew_client_clock(monkeypatch, timedelta(minutes=-3))
    assert client.list_data_integrations()["DataIntegrations"] == []


def test_signature_covers_the_body(emu: EmulatorServer) -> None:
    # Given a request signed over one body but sent with another (same length)
    signed = b'{"Name": "di-a"}'
    status, code, message = send_signed(emu, method="POST", body=signed, sent_body=b'{"Name": "di-b"}')

    # Then the recomputed signature differs
    assert (status, code) == (403, "AccessDeniedException")
    assert message.startswith(SIGNATURE_MISMATCH)


def test_signature_for_another_service_is_refused(emu: EmulatorServer) -> None:
    status, _, message = send_signed(emu, service="profile")
    assert status == 403
    assert message == "Credential should be scoped to correct service: 'app-integrations'. "


def test_the_raw_signer_reference_request_is_accepted(emu: EmulatorServer) -> None:
    # The same helper without tampering passes: the refusals above are about what was changed
    assert send_signed(emu)[0] == 200


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/app-integrations/aws4_request", "Incomplete"),
        ("AWS4-HMAC-SHA1 Credential=a, SignedHeaders=host, Signature=00", "Incomplete"),
        ("AWS4-HMAC-SHA256 Credential=testing/x, SignedHeaders=host, Signature=00", "Incomplete"),
    ],
)
def test_malformed_authorization_is_refused(emu: EmulatorServer, authorization: str, code: str) -> None:
    EmulatorControl(emu.url).configure(authentication_errors="aws")
    status, error_code, _ = send_signed(emu, authorization=authorization)
    assert status == 403
    assert error_code == "IncompleteSignatureException"


def test_unsigned_request_is_missing_a_token_in_aws_style(emu: EmulatorServer) -> None:
    EmulatorControl(emu.url).configure(authentication_errors="aws")
    request = urllib.request.Request(f"{emu.url}/dataIntegrations")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request)
    assert (err.value.code, err.value.headers["x-amzn-ErrorType"]) == (403, "MissingAuthenticationTokenException")


@pytest.mark.parametrize("token", [None, "another-token"])
def test_a_session_key_needs_its_own_token(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]], token: str | None
) -> None:
    # Given the role's temporary key used without its session token, or with another one
    emu, good = role_emulator()
    bad = boto3.client(
        "appintegrations",
        endpoint_url=emu.url,
        region_name=REGION,
        aws_access_key_id=ROLE_KEY.access_key_id,
        aws_secret_access_key=ROLE_KEY.secret_access_key,
        aws_session_token=token,
        config=NO_RETRY,
    )

    # Then the call is refused as an invalid token, while the right token works
    assert error_of(bad.list_data_integrations)[1] == "The security token included in the request is invalid."
    assert good.list_data_integrations()["DataIntegrations"] == []


# ----------------------------------------------------------------- authorization of the caller


def test_the_export_roles_grants_allow_the_whole_flow(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]], s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given the least-privilege grants the reference lists, and the documented bucket and key policies
    emu, client = role_emulator()
    start = now_ms() - 3 * DAY_MS
    EmulatorControl(emu.url).seed(DOMAIN, "_profile", generate("_profile", 3, start, start + DAY_MS, seed=3))

    # When the role creates, tags, exports, updates, lists, reads
    create_data_integration(client, kms_key_arn, Tags={"team": "data"})
    created = client.create_data_integration_association(
        DataIntegrationIdentifier="di-profile",
        DestinationURI=f"s3://{bucket}/x",
        ExecutionConfiguration=on_demand(start, start + DAY_MS),
    )
    wait_status(client, "di-profile")
    client.update_data_integration_association(
        DataIntegrationIdentifier="di-profile",
        DataIntegrationAssociationIdentifier=created["DataIntegrationAssociationId"],
        ExecutionConfiguration=on_demand(start + DAY_MS, start + 2 * DAY_MS),
    )

    # Then everything succeeds and the service wrote the files
    assert wait_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
    assert client.get_data_integration(Identifier="di-profile")["Tags"] == {"team": "data"}
    assert len(list_keys(s3, bucket)) == 1


@pytest.mark.parametrize(
    ("missing", "resource", "tags"),
    [
        ("app-integrations:CreateDataIntegration", f"{AI}:data-integration/*", False),
        ("app-integrations:TagResource", f"{AI}:data-integration/*", True),
        ("profile:GetDomain", PROFILE_DOMAIN, False),
        ("profile:GetProfileObjectType", f"{PROFILE_DOMAIN}/object-types/_profile", False),
    ],
)
def test_create_data_integration_needs_its_action_and_each_dependent_action(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]],
    kms_key_arn: str,
    missing: str,
    resource: str,
    tags: bool,
) -> None:
    # Given a role lacking one permission
    _, client = role_emulator(without(export_role_grants(kms_key_arn), missing))

    # When it creates a data integration, Then AccessDeniedException names the action and its resource
    extra = {"Tags": {"team": "data"}} if tags else {}
    code, message, status = error_of(lambda: create_data_integration(client, kms_key_arn, **extra))
    assert (code, status) == ("AccessDeniedException", 403)
    assert message == denial(missing, resource)

    # And nothing was created
    assert client.list_data_integrations()["DataIntegrations"] == []


def test_kms_create_grant_is_checked_with_the_service_context(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]], kms_key_arn: str
) -> None:
    # Given kms:CreateGrant allowed only via the service in another Region
    grants = without(export_role_grants(kms_key_arn), "kms:CreateGrant")
    grants.append(Grant("kms:CreateGrant", kms_key_arn, {"kms:ViaService": "app-integrations.eu-west-1.amazonaws.com"}))
    _, client = role_emulator(grants)

    # Then creating a data integration with the key is denied for kms:CreateGrant on the key
    assert error_of(lambda: create_data_integration(client, kms_key_arn))[1] == denial("kms:CreateGrant", kms_key_arn)


@pytest.mark.parametrize("missing", ["profile:CreateSnapshot", "profile:GetSnapshot"])
def test_starting_an_export_needs_the_snapshot_actions_on_the_domain(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]],
    make_emulator: Callable[..., EmulatorServer],
    kms_key_arn: str,
    bucket: str,
    missing: str,
) -> None:
    # Given a role lacking one snapshot action
    emu, client = role_emulator(without(export_role_grants(kms_key_arn), missing))
    create_data_integration(client, kms_key_arn)

    # When it creates the association, Then it is denied for that action on the domain, and nothing is associated
    message = error_of(
        lambda: client.create_data_integration_association(
            DataIntegrationIdentifier="di-profile",
            DestinationURI=f"s3://{bucket}",
            ExecutionConfiguration=on_demand(now_ms() - DAY_MS),
        )
    )[1]
    assert message == denial(missing, PROFILE_DOMAIN)
    assert (
        client.list_data_integration_associations(DataIntegrationIdentifier="di-profile")["DataIntegrationAssociations"]
        == []
    )
    assert EmulatorControl(emu.url).jobs() == []


def test_update_needs_its_action_on_the_association_arn_and_the_snapshot_actions(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]], kms_key_arn: str, bucket: str
) -> None:
    # Given an association made with full grants
    emu, client = role_emulator()
    export = create_export(client, kms_key_arn, f"s3://{bucket}")
    assoc_arn = f"{AI}:data-integration-association/{export.id}/{export.association_id}"

    def update() -> Any:
        return client.update_data_integration_association(
            DataIntegrationIdentifier=export.name,
            DataIntegrationAssociationIdentifier=export.association_id,
            ExecutionConfiguration=on_demand(now_ms() - DAY_MS),
        )

    # When the role loses UpdateDataIntegrationAssociation, then profile:GetSnapshot
    for missing, resource in (
        ("app-integrations:UpdateDataIntegrationAssociation", assoc_arn),
        ("profile:GetSnapshot", PROFILE_DOMAIN),
    ):
        emu.authorizer = PolicyAuthorizer(
            [ROLE_KEY],
            {ROLE: without(export_role_grants(kms_key_arn), missing)},
            {SERVICE: documented_service_grants(bucket)},
        )
        # Then each denial names the action and its resource, and no job starts
        assert error_of(update)[1] == denial(missing, resource)
    assert EmulatorControl(emu.url).jobs() == []


def test_grants_scoped_to_one_data_integration_deny_the_others(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]], kms_key_arn: str, bucket: str
) -> None:
    # Given two data integrations, and a role that may associate only the first
    emu, client = role_emulator()
    first = create_data_integration(client, kms_key_arn)
    second = create_data_integration(client, kms_key_arn, name="di-asset", object_type="_asset")
    grants = without(export_role_grants(kms_key_arn), "app-integrations:CreateDataIntegrationAssociation")
    grants.append(Grant("app-integrations:CreateDataIntegrationAssociation", first["Arn"]))
    emu.authorizer = PolicyAuthorizer([ROLE_KEY], {ROLE: grants}, {SERVICE: documented_service_grants(bucket)})

    # Then the first associates and the second is denied on its own ARN
    client.create_data_integration_association(DataIntegrationIdentifier="di-profile", DestinationURI=f"s3://{bucket}")
    message = error_of(
        lambda: client.create_data_integration_association(
            DataIntegrationIdentifier="di-asset", DestinationURI=f"s3://{bucket}"
        )
    )[1]
    assert message == denial("app-integrations:CreateDataIntegrationAssociation", second["Arn"])


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("app-integrations:GetDataIntegration", lambda c: c.get_data_integration(Identifier="di-profile")),
        (
            "app-integrations:DeleteDataIntegration",
            lambda c: c.delete_data_integration(DataIntegrationIdentifier="di-profile"),
        ),
        ("app-integrations:ListDataIntegrations", lambda c: c.list_data_integrations()),
        (
            "app-integrations:ListDataIntegrationAssociations",
            lambda c: c.list_data_integration_associations(DataIntegrationIdentifier="di-profile"),
        ),
    ],
)
def test_reads_and_delete_are_authorized_on_their_resource(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]],
    kms_key_arn: str,
    bucket: str,
    action: str,
    call: Callable[[Any], Any],
) -> None:
    # Given a data integration, and then a role without one action
    emu, client = role_emulator()
    di = create_data_integration(client, kms_key_arn)
    emu.authorizer = PolicyAuthorizer(
        [ROLE_KEY],
        {ROLE: without(export_role_grants(kms_key_arn), action)},
        {SERVICE: documented_service_grants(bucket)},
    )

    # Then the call is denied on the data integration's ARN (List operations: on "*")
    resource = "*" if action.split(":")[1].startswith("List") else di["Arn"]
    assert error_of(lambda: call(client))[1] == denial(action, resource)


def test_existence_is_revealed_only_to_callers_allowed_the_action(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]], kms_key_arn: str
) -> None:
    # Given a role without GetDataIntegration, and a missing data integration
    emu, client = role_emulator(without(export_role_grants(kms_key_arn), "app-integrations:GetDataIntegration"))

    # Then asking for it is AccessDenied (on the ARN its Id would have), not ResourceNotFound
    missing_id = "00000000-0000-4000-8000-000000000000"
    code, message, _ = error_of(lambda: client.get_data_integration(Identifier=missing_id))
    assert (code, message) == (
        "AccessDeniedException",
        denial("app-integrations:GetDataIntegration", f"{AI}:data-integration/{missing_id}"),
    )

    # And with the permission, ResourceNotFound
    emu.authorizer = PolicyAuthorizer([ROLE_KEY], {ROLE: export_role_grants(kms_key_arn)})
    assert error_of(lambda: client.get_data_integration(Identifier=missing_id))[0] == "ResourceNotFoundException"


def test_input_is_validated_before_authorization(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]], kms_key_arn: str
) -> None:
    # Given a role allowed nothing, When it sends an invalid request, Then InvalidRequestException comes first
    _, client = role_emulator(grants=[])
    code, _, _ = error_of(
        lambda: client.create_data_integration(
            Name="has space", KmsKey=kms_key_arn, SourceURI="AmazonConnect://AppIntegrations"
        )
    )
    assert code == "InvalidRequestException"


# ----------------------------------------------------------------- the service writing to S3 with KMS


@pytest.mark.parametrize(
    ("service_grants", "needle"),
    [
        ([Grant("kms:GenerateDataKey*", "*")], "is not authorized to perform s3:PutObject on arn:aws:s3:::"),
        (
            [
                Grant(
                    "s3:PutObject",
                    "arn:aws:s3:::*",
                    {"aws:SourceAccount": "111122223333", "aws:SourceArn": "arn:aws:*-*:*:111122223333:*"},
                ),
                Grant("kms:GenerateDataKey*", "*"),
            ],
            "is not authorized to perform s3:PutObject on arn:aws:s3:::",
        ),
        (None, "is not authorized to perform kms:GenerateDataKey on arn:aws:kms:"),
    ],
    ids=["no-bucket-statement", "bucket-statement-for-another-account", "no-key-statement"],
)
def test_the_service_needs_the_bucket_and_key_policy_to_write(
    role_emulator: Callable[..., tuple[EmulatorServer, Any]],
    s3: Any,
    bucket: str,
    kms_key_arn: str,
    service_grants: list[Grant] | None,
    needle: str,
) -> None:
    # Given a bucket or key policy that does not grant the service (the caller may do everything)
    if service_grants is None:
        service_grants = without(documented_service_grants(bucket), "kms:GenerateDataKey*")
    emu, client = role_emulator(service_grants=service_grants)
    start = now_ms() - 3 * DAY_MS
    EmulatorControl(emu.url).seed(DOMAIN, "_profile", generate("_profile", 3, start, start + DAY_MS, seed=5))

    # When an export runs
    create_export(client, kms_key_arn, f"s3://{bucket}/denied", execution=on_demand(start, start + DAY_MS))

    # Then the job FAILS with a message naming the service, the action and where to look, and writes nothing
    status = wait_status(client, "di-profile")["LastExecutionStatus"]
    assert status["ExecutionStatus"] == "FAILED"
    assert SERVICE in status["StatusMessage"] and needle in status["StatusMessage"]
    assert "policy" in status["StatusMessage"] and len(status["StatusMessage"]) <= 255
    assert list_keys(s3, bucket) == []
    assert last_status(client, "di-profile")["LastExecutionStatus"] == status
