"""The AWS API through boto3 alone: every operation, identifiers, pagination and every modeled error."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local.emulator import EmulatorServer
from tests.emulator.emulator_helpers import (
    ACCOUNT,
    CREDS,
    DAY_MS,
    DOMAIN,
    NO_RETRY,
    REGION,
    SOURCE_URI,
    create_data_integration,
    create_export,
    now_ms,
    object_config,
    on_demand,
    wait_status,
)

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


# ----------------------------------------------------------------- data integrations


def test_create_and_get_data_integration_round_trip(client: Any, kms_key_arn: str) -> None:
    # Given a data integration created as the docs describe
    created = create_data_integration(client, kms_key_arn, Description="profiles export", Tags={"team": "data"})

    # When it is read back by name
    got = client.get_data_integration(Identifier="di-profile")

    # Then the ARN embeds a UUID4 Id and every field round-trips
    assert created["Arn"] == f"arn:aws:app-integrations:{REGION}:{ACCOUNT}:data-integration/{created['Id']}"
    assert re.fullmatch(UUID_RE, created["Id"])
    for key in ("Arn", "Id", "Name", "KmsKey", "SourceURI", "ObjectConfiguration", "Description", "Tags"):
        assert got[key] == created[key]
    assert got["ObjectConfiguration"] == object_config()
    assert created["ClientToken"]


@pytest.mark.parametrize("how", ["name", "id", "arn"])
def test_identifier_accepts_name_id_and_arn(client: Any, kms_key_arn: str, bucket: str, how: str) -> None:
    # Given a data integration
    di = create_data_integration(client, kms_key_arn)
    identifier = {"name": di["Name"], "id": di["Id"], "arn": di["Arn"]}[how]

    # When every identifier-taking operation is called with the name, the Id or the (URL-encoded) ARN
    got = client.get_data_integration(Identifier=identifier)
    assoc = client.create_data_integration_association(
        DataIntegrationIdentifier=identifier, DestinationURI=f"s3://{bucket}"
    )
    listed = client.list_data_integration_associations(DataIntegrationIdentifier=identifier)
    client.update_data_integration_association(
        DataIntegrationIdentifier=identifier,
        DataIntegrationAssociationIdentifier=assoc["DataIntegrationAssociationId"],
        ExecutionConfiguration=on_demand(now_ms() - DAY_MS, now_ms() - DAY_MS // 2),
    )

    # Then they all resolve to the same data integration
    assert got["Id"] == di["Id"]
    assert listed["DataIntegrationAssociations"][0]["DataIntegrationArn"] == di["Arn"]


def test_association_identifier_accepts_id_and_arn(client: Any, kms_key_arn: str, bucket: str) -> None:
    # Given an association
    export = create_export(client, kms_key_arn, f"s3://{bucket}")
    arn = client.list_data_integration_associations(DataIntegrationIdentifier=export.name)[
        "DataIntegrationAssociations"
    ][0]["DataIntegrationAssociationArn"]

    # Then its ARN has the documented form and Update accepts it as well as the Id
    assert arn == (
        f"arn:aws:app-integrations:{REGION}:{ACCOUNT}:data-integration-association/{export.id}/{export.association_id}"
    )
    for identifier in (export.association_id, arn):
        client.update_data_integration_association(
            DataIntegrationIdentifier=export.name,
            DataIntegrationAssociationIdentifier=identifier,
            ExecutionConfiguration=on_demand(now_ms() - DAY_MS, now_ms() - DAY_MS // 2),
        )
        assert wait_status(client, export.name)["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"


def test_list_data_integrations_paginates(client: Any, kms_key_arn: str) -> None:
    # Given seven data integrations
    names = [f"di-{i}" for i in range(7)]
    for i, name in enumerate(names):
        create_data_integration(client, kms_key_arn, name=name, object_type=f"type{i}")

    # When listed three at a time, by hand and with boto3's paginator
    first = client.list_data_integrations(MaxResults=3)
    pages = list(client.get_paginator("list_data_integrations").paginate(PaginationConfig={"PageSize": 3}))

    # Then pages hold at most three summaries (Arn, Name, SourceURI only) and together all seven, in order
    assert len(first["DataIntegrations"]) == 3 and first["NextToken"]
    assert [len(p["DataIntegrations"]) for p in pages] == [3, 3, 1]
    assert "NextToken" not in pages[-1]
    listed = [d for p in pages for d in p["DataIntegrations"]]
    assert [d["Name"] for d in listed] == names
    assert all(set(d) == {"Arn", "Name", "SourceURI"} for d in listed)


def test_list_pagination_survives_deletion_between_pages(client: Any, kms_key_arn: str) -> None:
    # Given four data integrations and a first page of two
    for i in range(4):
        create_data_integration(client, kms_key_arn, name=f"di-{i}", object_type=f"type{i}")
    first = client.list_data_integrations(MaxResults=2)

    # When one already listed is deleted before the next page
    client.delete_data_integration(DataIntegrationIdentifier="di-0")
    second = client.list_data_integrations(MaxResults=2, NextToken=first["NextToken"])

    # Then the next page still starts after the last one seen
    assert [d["Name"] for d in second["DataIntegrations"]] == ["di-2", "di-3"]


def test_list_associations_paginator(client: Any, kms_key_arn: str, bucket: str) -> None:
    # Given an association
    export = create_export(client, kms_key_arn, f"s3://{bucket}/pre", execution=None)

    # When listed with boto3's paginator
    pages = list(
        client.get_paginator("list_data_integration_associations").paginate(DataIntegrationIdentifier=export.arn)
    )

    # Then it appears once, with its destination and no job yet
    summaries = [s for p in pages for s in p["DataIntegrationAssociations"]]
    assert len(summaries) == 1
    assert summaries[0]["DestinationURI"] == f"s3://{bucket}/pre"
    assert "LastExecutionStatus" not in summaries[0]


def test_invalid_next_token_is_rejected(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidRequestException, match="NextToken"):
        client.list_data_integrations(NextToken="not-a-token")


def test_delete_data_integration(client: Any, kms_key_arn: str) -> None:
    # Given a data integration with no association
    create_data_integration(client, kms_key_arn)

    # When it is deleted
    client.delete_data_integration(DataIntegrationIdentifier="di-profile")

    # Then it is gone
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="di-profile"):
        client.get_data_integration(Identifier="di-profile")
    assert client.list_data_integrations()["DataIntegrations"] == []


def test_delete_is_refused_once_associated(client: Any, kms_key_arn: str, bucket: str) -> None:
    # Given an associated data integration
    create_export(client, kms_key_arn, f"s3://{bucket}")

    # When deleting it, Then the service refuses with a clear message
    with pytest.raises(client.exceptions.InvalidRequestException, match="has an association"):
        client.delete_data_integration(DataIntegrationIdentifier="di-profile")
    assert client.get_data_integration(Identifier="di-profile")["Name"] == "di-profile"


def test_duplicate_name_is_refused(client: Any, kms_key_arn: str) -> None:
    create_data_integration(client, kms_key_arn)
    with pytest.raises(client.exceptions.DuplicateResourceException, match="di-profile"):
        create_data_integration(client, kms_key_arn)


def test_client_token_makes_create_idempotent(client: Any, kms_key_arn: str) -> None:
    # Given a create with an explicit ClientToken
    first = create_data_integration(client, kms_key_arn, ClientToken="token-1")

    # When the same request is retried
    again = create_data_integration(client, kms_key_arn, ClientToken="token-1")

    # Then the same data integration comes back instead of a DuplicateResourceException
    assert again["Id"] == first["Id"]
    assert len(client.list_data_integrations()["DataIntegrations"]) == 1


def test_unknown_identifiers_raise_resource_not_found(client: Any, kms_key_arn: str, bucket: str) -> None:
    missing_arn = f"arn:aws:app-integrations:{REGION}:{ACCOUNT}:data-integration/00000000-0000-4000-8000-000000000000"
    for identifier in ("nope", "00000000-0000-4000-8000-000000000000", missing_arn):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_data_integration(Identifier=identifier)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.list_data_integration_associations(DataIntegrationIdentifier=identifier)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.delete_data_integration(DataIntegrationIdentifier=identifier)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.create_data_integration_association(
                DataIntegrationIdentifier=identifier, DestinationURI=f"s3://{bucket}"
            )
    # An unknown association of a known data integration
    create_export(client, kms_key_arn, f"s3://{bucket}")
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="DataIntegrationAssociationIdentifier"):
        client.update_data_integration_association(
            DataIntegrationIdentifier="di-profile",
            DataIntegrationAssociationIdentifier="00000000-0000-4000-8000-000000000000",
            ExecutionConfiguration=on_demand(now_ms() - DAY_MS, now_ms() - DAY_MS // 2),
        )


def test_second_association_is_refused(client: Any, kms_key_arn: str, bucket: str) -> None:
    # Given an associated data integration
    create_export(client, kms_key_arn, f"s3://{bucket}")

    # When a second association is attempted, Then InvalidRequestException says to use Update
    with pytest.raises(client.exceptions.InvalidRequestException, match="UpdateDataIntegrationAssociation"):
        client.create_data_integration_association(
            DataIntegrationIdentifier="di-profile", DestinationURI=f"s3://{bucket}/other"
        )


# ----------------------------------------------------------------- server-side validation


def _create_di_kwargs(kms_key_arn: str, **overrides: Any) -> dict[str, Any]:
    kwargs = {
        "Name": "di-profile",
        "KmsKey": kms_key_arn,
        "SourceURI": SOURCE_URI,
        "ObjectConfiguration": object_config(),
    }
    kwargs.update(overrides)
    return {k: v for k, v in kwargs.items() if v is not None}


@pytest.mark.parametrize(
    ("overrides", "field", "constraint"),
    [
        ({"Name": "has space"}, "Name", "regular expression pattern"),
        ({"Name": "x" * 256}, "Name", "length less than or equal to 255"),
        ({"Name": ""}, "Name", "length greater than or equal to 1"),
        ({"Name": None}, "Name", "must not be null"),
        ({"KmsKey": None}, "KmsKey", "must not be null"),
        ({"KmsKey": "   "}, "KmsKey", "regular expression pattern"),
        ({"Description": "d" * 1001}, "Description", "length less than or equal to 1000"),
        ({"SourceURI": "not a uri"}, "SourceURI", "regular expression pattern"),
        ({"Tags": {"k": "v" * 257}}, "Tags.k", "length less than or equal to 256"),
        ({"Name": 12}, "Name", "type string"),
    ],
)
def test_create_data_integration_enforces_the_model(
    raw_client: Any, kms_key_arn: str, overrides: dict[str, Any], field: str, constraint: str
) -> None:
    # Given a request breaking one constraint of botocore's model (client-side validation off)
    # When it is sent, Then the server answers InvalidRequestException naming the member and the constraint
    with pytest.raises(raw_client.exceptions.InvalidRequestException) as err:
        raw_client.create_data_integration(**_create_di_kwargs(kms_key_arn, **overrides))
    message = err.value.response["Error"]["Message"]
    assert f"at '{field}'" in message and constraint in message
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"SourceURI": "Salesforce://AppFlow/x"}, "SourceURI must be 'AmazonConnect://AppIntegrations'"),
        ({"SourceURI": None}, "SourceURI must be"),
        ({"ObjectConfiguration": None}, "ObjectConfiguration is required"),
        ({"ObjectConfiguration": {"Other": {"domainName": [DOMAIN]}}}, "ObjectConfiguration must be"),
        (
            {"ObjectConfiguration": {"CustomerProfiles": {"domainName": [DOMAIN]}}},
            "ObjectConfiguration.CustomerProfiles must have exactly the keys",
        ),
        (
            {"ObjectConfiguration": {"CustomerProfiles": {"domainName": ["a", "b"], "objectType": ["_profile"]}}},
            "ObjectConfiguration.CustomerProfiles.domainName must list exactly one",
        ),
        (
            {
                "ObjectConfiguration": {
                    "CustomerProfiles": {"domainName": [DOMAIN], "objectType": ["_profile", "_asset"]}
                }
            },
            "ObjectConfiguration.CustomerProfiles.objectType must list exactly one",
        ),
        (
            {"ObjectConfiguration": {"CustomerProfiles": {"domainName": ["bad domain"], "objectType": ["_profile"]}}},
            "domainName[0]",
        ),
        ({"KmsKey": "alias/my-key"}, "KmsKey must be the ARN of a KMS key"),
        ({"KmsKey": "arn:aws:s3:::bucket"}, "KmsKey must be the ARN of a KMS key"),
    ],
)
def test_create_data_integration_enforces_export_rules(
    raw_client: Any, kms_key_arn: str, overrides: dict[str, Any], needle: str
) -> None:
    with pytest.raises(raw_client.exceptions.InvalidRequestException) as err:
        raw_client.create_data_integration(**_create_di_kwargs(kms_key_arn, **overrides))
    assert needle in err.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("execution", "needle"),
    [
        ({"ExecutionMode": "WEEKLY"}, "Member must satisfy enum value set: [ON_DEMAND, SCHEDULED]"),
        ({"ExecutionMode": "SCHEDULED", "ScheduleConfiguration": {"ScheduleExpression": "rate(1 day)"}}, "ON_DEMAND"),
        ({"ExecutionMode": "ON_DEMAND"}, "OnDemandConfiguration is required"),
        ({"ExecutionMode": "ON_DEMAND", "OnDemandConfiguration": {}}, "OnDemandConfiguration.StartTime' failed"),
        (on_demand(0) | {"OnDemandConfiguration": {"StartTime": "2024-01-01"}}, "StartTime must be epoch milliseconds"),
        (
            {"ExecutionMode": "ON_DEMAND", "OnDemandConfiguration": {"StartTime": "1", "EndTime": "soon"}},
            "EndTime must be epoch milliseconds",
        ),
        (on_demand(1_715_000_000_000, 1_715_000_000_000), "must be before EndTime"),
        (on_demand(1_716_000_000_000, 1_715_000_000_000), "must be before EndTime"),
        (on_demand(now_ms() + DAY_MS), "must be before the current time"),
        ({"ExecutionMode": "ON_DEMAND", "OnDemandConfiguration": {"StartTime": 1715000000000}}, "type string"),
    ],
)
def test_execution_configuration_is_validated(
    raw_client: Any, kms_key_arn: str, bucket: str, execution: dict[str, Any], needle: str
) -> None:
    # Given a data integration
    create_data_integration(raw_client, kms_key_arn)

    # When an association is created with a bad ExecutionConfiguration, Then InvalidRequestException names it
    with pytest.raises(raw_client.exceptions.InvalidRequestException) as err:
        raw_client.create_data_integration_association(
            DataIntegrationIdentifier="di-profile", DestinationURI=f"s3://{bucket}", ExecutionConfiguration=execution
        )
    assert needle in err.value.response["Error"]["Message"]
    assert "ExecutionConfiguration" in err.value.response["Error"]["Message"]
    # And nothing was associated, so a valid retry succeeds
    raw_client.create_data_integration_association(
        DataIntegrationIdentifier="di-profile", DestinationURI=f"s3://{bucket}"
    )


def test_update_requires_execution_configuration_server_side(raw_client: Any, kms_key_arn: str, bucket: str) -> None:
    export = create_export(raw_client, kms_key_arn, f"s3://{bucket}")
    with pytest.raises(raw_client.exceptions.InvalidRequestException, match="ExecutionConfiguration' failed"):
        raw_client.update_data_integration_association(
            DataIntegrationIdentifier=export.name, DataIntegrationAssociationIdentifier=export.association_id
        )


@pytest.mark.parametrize(
    ("destination", "needle"),
    [
        (None, "DestinationURI is required"),
        ("https://bucket/x", "must start with s3://"),
        ("s3://Bad_Bucket", "invalid S3 bucket"),
        ("s3://" + "b" * 1000, "length less than or equal to 1000"),
    ],
)
def test_destination_uri_is_validated(raw_client: Any, kms_key_arn: str, destination: str | None, needle: str) -> None:
    create_data_integration(raw_client, kms_key_arn)
    kwargs: dict[str, Any] = {"DataIntegrationIdentifier": "di-profile"}
    if destination is not None:
        kwargs["DestinationURI"] = destination
    with pytest.raises(raw_client.exceptions.InvalidRequestException) as err:
        raw_client.create_data_integration_association(**kwargs)
    assert needle in err.value.response["Error"]["Message"]


def test_max_results_range_comes_from_the_model(raw_client: Any) -> None:
    for bad in (0, 51):
        with pytest.raises(raw_client.exceptions.InvalidRequestException, match="MaxResults"):
            raw_client.list_data_integrations(MaxResults=bad)


# ----------------------------------------------------------------- transport-level behaviour


def test_unsigned_request_is_denied(emu: EmulatorServer) -> None:
    # Given a plain HTTP GET without SigV4
    request = urllib.request.Request(f"{emu.url}/dataIntegrations")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # Then the service answers 403 AccessDeniedException in rest-json form
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(request)
    assert err.value.code == 403
    assert err.value.headers["x-amzn-ErrorType"] == "AccessDeniedException"


def test_request_signed_for_another_region_is_denied(emu: EmulatorServer) -> None:
    other = boto3.client(
        "appintegrations", endpoint_url=emu.url, config=NO_RETRY, **{**CREDS, "region_name": "eu-west-1"}
    )
    with pytest.raises(other.exceptions.AccessDeniedException, match="eu-west-1"):
        other.list_data_integrations()


def test_operations_outside_the_export_flow_are_unsupported(client: Any) -> None:
    with pytest.raises(client.exceptions.UnsupportedOperationException, match="ListApplications"):
        client.list_applications()


def test_endpoint_env_variable_reaches_the_emulator(
    emu: EmulatorServer, kms_key_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given only the standard per-service endpoint variable (no endpoint_url argument)
    monkeypatch.setenv("AWS_ENDPOINT_URL_APPINTEGRATIONS", emu.url)
    plain = boto3.client("appintegrations", config=Config(retries={"total_max_attempts": 1}), **CREDS)

    # When the client is used, Then it talks to the emulator
    create_data_integration(plain, kms_key_arn)
    assert [d["Name"] for d in plain.list_data_integrations()["DataIntegrations"]] == ["di-profile"]


def test_arn_identifier_is_sent_url_encoded(client: Any, kms_key_arn: str) -> None:
    # The ARN contains ':' and '/', so botocore percent-encodes it as one path segment
    di = create_data_integration(client, kms_key_arn)
    assert urllib.parse.quote(di["Arn"], safe="") != di["Arn"]
    assert client.get_data_integration(Identifier=di["Arn"])["Id"] == di["Id"]
