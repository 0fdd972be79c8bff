"""Conformance, driven by botocore's model: every raw response of the emulator must fit the output shape.

The checker below is written against botocore's shapes only (not the emulator's code): unknown members,
types, enums, patterns and lengths of every value in every response body, plus botocore's own rest-json
parser and ParamValidator on the parsed result, plus status codes and error names of every error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.parsers import create_parser
from botocore.validate import ParamValidator

from local.emulator import EmulatorControl, EmulatorServer
from local.emulator.synthetic import generate
from tests.emulator.emulator_helpers import (
    DAY_MS,
    DOMAIN,
    NO_RETRY,
    SOURCE_URI,
    now_ms,
    object_config,
    on_demand,
    wait_status,
)

MODEL = botocore.session.get_session().get_service_model("appintegrations")
EXPORT_OPERATIONS = {
    "CreateDataIntegration",
    "GetDataIntegration",
    "ListDataIntegrations",
    "DeleteDataIntegration",
    "CreateDataIntegrationAssociation",
    "UpdateDataIntegrationAssociation",
    "ListDataIntegrationAssociations",
}
# Errors the emulator may raise beyond an operation's modeled list, on purpose:
# the brief (and the docs' quota) make Update subject to the concurrent-job quota too, and operations
# the emulator does not implement answer UnsupportedOperationException.
KNOWN_EXTRA_ERRORS = {
    ("UpdateDataIntegrationAssociation", "ResourceQuotaExceededException"),
    ("ListApplications", "UnsupportedOperationException"),
}


def check_value(shape: Shape, value: Any, path: str) -> list[str]:
    """Problems of ``value`` (decoded JSON) under ``shape``; empty when it conforms."""
    problems: list[str] = []
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        wire = {m.serialization.get("name", n): (n, m) for n, m in shape.members.items()}
        for key, item in value.items():
            if key not in wire:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
                continue
            problems.extend(check_value(wire[key][1], item, f"{path}.{key}"))
        return problems
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{path}: expected array"]
        # An empty page is returned as [] although the list shapes say min 1 (as AWS does); check the rest.
        if value and len(value) < shape.metadata.get("min", 0):
            problems.append(f"{path}: fewer than {shape.metadata['min']} items")
        if len(value) > shape.metadata.get("max", len(value)):
            problems.append(f"{path}: more than {shape.metadata['max']} items")
        for i, item in enumerate(value):
            problems.extend(check_value(shape.member, item, f"{path}[{i}]"))
        return problems
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{path}: expected object (map)"]
        for key, item in value.items():
            problems.extend(check_value(shape.key, key, f"{path}<key {key}>"))
            problems.extend(check_value(shape.value, item, f"{path}.{key}"))
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string, got {type(value).__name__}"]
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            problems.append(f"{path}: {value!r} not in enum {enum}")
        if "pattern" in shape.metadata and not re.search(shape.metadata["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {shape.metadata['pattern']}")
        if not shape.metadata.get("min", 0) <= len(value) <= shape.metadata.get("max", len(value)):
            problems.append(f"{path}: length {len(value)} outside the model's bounds")
        return problems
    if kind in ("integer", "long"):
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: expected integer"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected boolean"]
    return [f"{path}: shape type {kind} not expected in this API"]


@dataclass
class Exchange:
    """One call as seen on the wire."""

    operation: OperationModel
    status: int
    headers: dict[str, str]
    body: bytes
    parsed: dict[str, Any]


@pytest.fixture
def recorded(emu: EmulatorServer, boto_session: Any) -> tuple[Any, list[Exchange]]:
    """A client whose every exchange (success or error) is recorded."""
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    exchanges: list[Exchange] = []

    def capture(http_response: Any, parsed: dict[str, Any], model: OperationModel, **_: Any) -> None:
        exchanges.append(
            Exchange(model, http_response.status_code, dict(http_response.headers), http_response.content, parsed)
        )

    client.meta.events.register("after-call.appintegrations", capture)
    return client, exchanges


def expect_error(call: Callable[[], Any]) -> None:
    with pytest.raises(Exception) as err:
        call()
    assert hasattr(err.value, "response"), err.value


def run_every_operation(client: Any, ctl: EmulatorControl, bucket: str, kms_key_arn: str) -> None:
    """Drive all export operations with every optional member, through successes and errors."""
    start = now_ms() - 3 * DAY_MS
    ctl.seed(DOMAIN, "_profile", generate("_profile", 5, start, start + DAY_MS, seed=9))
    created = client.create_data_integration(
        Name="di-profile",
        Description="Customer profiles export",
        KmsKey=kms_key_arn,
        SourceURI=SOURCE_URI,
        ObjectConfiguration=object_config(),
        Tags={"team": "data", "env": "local"},
        FileConfiguration={"Folders": ["exports"], "Filters": {"f": ["a"]}},
        ScheduleConfig={"ScheduleExpression": "rate(1 day)", "FirstExecutionFrom": "1700000000", "Object": "obj"},
    )
    client.create_data_integration(
        Name="di-asset",
        KmsKey=kms_key_arn,
        SourceURI=SOURCE_URI,
        ObjectConfiguration=object_config(object_type="_asset"),
    )
    client.create_data_integration(
        Name="di-spare",
        KmsKey=kms_key_arn,
        SourceURI=SOURCE_URI,
        ObjectConfiguration=object_config(object_type="_case"),
    )
    for identifier in ("di-profile", created["Id"], created["Arn"]):
        client.get_data_integration(Identifier=identifier)
    client.list_data_integrations()
    client.list_data_integrations(MaxResults=1)
    assoc = client.create_data_integration_association(
        DataIntegrationIdentifier="di-profile",
        DestinationURI=f"s3://{bucket}/exports",
        ClientId="pipeline",
        ClientAssociationMetadata={"owner": "data-team"},
        ExecutionConfiguration=on_demand(start, start + DAY_MS),
    )
    client.list_data_integration_associations(DataIntegrationIdentifier="di-profile")  # IN_PROGRESS (if not done)
    wait_status(client, "di-profile")  # COMPLETED
    client.update_data_integration_association(
        DataIntegrationIdentifier="di-profile",
        DataIntegrationAssociationIdentifier=assoc["DataIntegrationAssociationId"],
        ExecutionConfiguration=on_demand(start + DAY_MS),
    )
    client.list_data_integration_associations(DataIntegrationIdentifier="di-profile", MaxResults=1)
    client.create_data_integration_association(
        DataIntegrationIdentifier="di-asset",
        DestinationURI="s3://missing-bucket-for-conformance",
        ExecutionConfiguration=on_demand(start),
    )
    wait_status(client, "di-asset")  # FAILED, with a StatusMessage
    spare = client.create_data_integration_association(
        DataIntegrationIdentifier="di-spare", DestinationURI=f"s3://{bucket}"
    )
    client.list_data_integration_associations(DataIntegrationIdentifier="di-spare")  # no job yet
    # A job that runs until the control API ends it: List is sure to show IN_PROGRESS, however slow the machine.
    ctl.configure(never_ending_object_types=["_case"])
    client.update_data_integration_association(
        DataIntegrationIdentifier="di-spare",
        DataIntegrationAssociationIdentifier=spare["DataIntegrationAssociationId"],
        ExecutionConfiguration=on_demand(start),
    )
    client.list_data_integration_associations(DataIntegrationIdentifier="di-spare")  # IN_PROGRESS
    ctl.finish_job(ctl.jobs()[-1]["id"], "FAILED", "Export failed: ended by the conformance test")
    client.list_data_integration_associations(DataIntegrationIdentifier="di-spare")  # FAILED with a message
    client.create_data_integration(
        Name="di-delete", KmsKey=kms_key_arn, SourceURI=SOURCE_URI, ObjectConfiguration=object_config(object_type="x")
    )
    client.delete_data_integration(DataIntegrationIdentifier="di-delete")

    # Errors, one per modeled kind the flow can meet
    expect_error(lambda: client.get_data_integration(Identifier="nope"))
    expect_error(lambda: client.delete_data_integration(DataIntegrationIdentifier="di-profile"))
    expect_error(
        lambda: client.create_data_integration(
            Name="di-profile", KmsKey=kms_key_arn, SourceURI=SOURCE_URI, ObjectConfiguration=object_config()
        )
    )
    expect_error(
        lambda: client.create_data_integration_association(
            DataIntegrationIdentifier="di-profile", DestinationURI=f"s3://{bucket}"
        )
    )
    expect_error(lambda: client.list_applications())
    # The update's job must be over, or the update below meets "job in progress" before the quota.
    wait_status(client, "di-profile")
    ctl.configure(max_concurrent_jobs=0)
    expect_error(
        lambda: client.update_data_integration_association(
            DataIntegrationIdentifier="di-profile",
            DataIntegrationAssociationIdentifier=assoc["DataIntegrationAssociationId"],
            ExecutionConfiguration=on_demand(start),
        )
    )
    ctl.configure(throttle_rate=1.0)
    expect_error(lambda: client.list_data_integrations())
    ctl.configure(throttle_rate=0.0, internal_error_rate=1.0)
    expect_error(lambda: client.list_data_integration_associations(DataIntegrationIdentifier="di-profile"))
    ctl.configure(internal_error_rate=0.0, access_denied_operations=["GetDataIntegration"])
    expect_error(lambda: client.get_data_integration(Identifier="di-profile"))


def test_every_response_conforms_to_botocores_model(
    recorded: tuple[Any, list[Exchange]], ctl: EmulatorControl, bucket: str, kms_key_arn: str
) -> None:
    # Given every export operation exercised through successes and errors
    client, exchanges = recorded
    run_every_operation(client, ctl, bucket, kms_key_arn)
    assert {x.operation.name for x in exchanges if x.status == 200} == EXPORT_OPERATIONS

    parser = create_parser("rest-json")
    problems: list[str] = []
    error_codes: set[str] = set()
    statuses: set[str] = set()
    for x in exchanges:
        op = x.operation
        if x.status < 300:
            # Then each success body fits the output shape, member by member
            body = json.loads(x.body) if x.body else {}
            if op.output_shape is not None:
                problems.extend(check_value(op.output_shape, body, op.name))
                # And botocore's own parser and validator agree with what the client got
                reparsed = parser.parse(
                    {"status_code": x.status, "headers": x.headers, "body": x.body}, op.output_shape
                )
                reparsed.pop("ResponseMetadata", None)
                parsed = {k: v for k, v in x.parsed.items() if k != "ResponseMetadata"}
                assert reparsed == parsed
                report = ParamValidator().validate(parsed, op.output_shape)
                assert not report.has_errors(), report.generate_report()
            for summary in body.get("DataIntegrationAssociations", []):
                if "LastExecutionStatus" in summary:
                    statuses.add(summary["LastExecutionStatus"]["ExecutionStatus"])
        else:
            # Then each error names a modeled error shape, with its modeled status and a Message
            code = x.headers.get("x-amzn-ErrorType", "").split(":")[0]
            error_codes.add(code)
            shape = MODEL.shape_for(code)
            assert shape.metadata.get("exception"), code
            assert x.status == shape.metadata["error"]["httpStatusCode"], (code, x.status)
            declared = {e.name for e in op.error_shapes}
            assert code in declared or (op.name, code) in KNOWN_EXTRA_ERRORS, (op.name, code)
            problems.extend(check_value(shape, json.loads(x.body), f"{op.name}!{code}"))
            assert isinstance(json.loads(x.body)["Message"], str) and json.loads(x.body)["Message"]
            assert x.parsed["Error"]["Code"] == code
    assert problems == []
    # And the scenario really covered every status and every error kind of the flow
    assert statuses == {"IN_PROGRESS", "COMPLETED", "FAILED"}
    assert error_codes == {
        "ResourceNotFoundException",
        "InvalidRequestException",
        "DuplicateResourceException",
        "UnsupportedOperationException",
        "ResourceQuotaExceededException",
        "ThrottlingException",
        "InternalServiceError",
        "AccessDeniedException",
    }


def test_routes_cover_the_models_http_bindings() -> None:
    """Every export operation's method and URI template in the model is served at that exact binding."""
    from local.emulator.model import match_route

    for name in EXPORT_OPERATIONS:
        op = MODEL.operation_model(name)
        path = re.sub(r"\{[^}]+\}", "x%2Fy", op.http["requestUri"])
        found, labels = match_route(op.http["method"], path)
        assert found == name
        assert all(v == "x/y" for v in labels.values())
