"""The API operations: the service's own validation rules, then what each operation does to the state.

Input has already passed botocore's model (types, enums, patterns, lengths) in the server; the rules
here are the ones the model cannot express (the Customer Profiles export shape, one association per
data integration, windows, identifiers).

Each operation runs in AWS's order: validate the input, authorize the operation's own action on its
resource (before revealing whether the resource exists), resolve the resource, authorize the dependent
actions (Service Authorization Reference), then the checks that depend on state (duplicates, quotas,
a job in progress) and the change itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cpexport_cli import permissions

from local.emulator.auth import AccessRequest, require_allowed
from local.emulator.errors import DuplicateResourceError, InvalidRequestError, ResourceNotFoundError
from local.emulator.faults import FaultModel
from local.emulator.jobs import JobRunner
from local.emulator.layout import parse_destination
from local.emulator.state import IN_PROGRESS, Association, DataIntegration, EmulatorState

SOURCE_URI = "AmazonConnect://AppIntegrations"
OBJECT_CONFIGURATION_KEY = "CustomerProfiles"
DEFAULT_PAGE_SIZE = 50

_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
DOMAIN_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Customer Profiles DomainName constraint.
OBJECT_TYPE_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z_0-9-]{0,254}$")  # Customer Profiles ObjectTypeName.
_EPOCH_MS = re.compile(r"^\d{1,15}$")


def _encode_token(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": kind, "after": seq}).encode()).decode()


def _decode_token(kind: str, token: str) -> int:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        if doc["k"] == kind and isinstance(doc["after"], int):
            return int(doc["after"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise InvalidRequestError("NextToken is invalid or was issued by another operation")


def _fingerprint(params: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True, default=str)


def parse_customer_profiles_object_configuration(value: Any, field_name: str) -> tuple[str, str]:
    """Check ``{"CustomerProfiles": {"domainName": [d], "objectType": [t]}}``; return (domain, object type)."""
    if not isinstance(value, dict) or set(value) != {OBJECT_CONFIGURATION_KEY}:
        raise InvalidRequestError(
            f"{field_name} must be {{'CustomerProfiles': {{'domainName': [<domain>], 'objectType': [<type>]}}}} "
            f"for a Customer Profiles export (got keys {sorted(value) if isinstance(value, dict) else value!r})"
        )
    inner = value[OBJECT_CONFIGURATION_KEY]
    if not isinstance(inner, dict) or set(inner) != {"domainName", "objectType"}:
        got = sorted(inner) if isinstance(inner, dict) else inner
        raise InvalidRequestError(
            f"{field_name}.CustomerProfiles must have exactly the keys domainName and objectType (got {got!r})"
        )
    found: dict[str, str] = {}
    for key, pattern, what in (
        ("domainName", DOMAIN_NAME, "a Customer Profiles domain name (1-64 of a-z, A-Z, 0-9, _ and -)"),
        ("objectType", OBJECT_TYPE_NAME, "an object type name such as _profile"),
    ):
        items = inner[key]
        if not isinstance(items, list) or len(items) != 1:
            count = len(items) if isinstance(items, list) else "not a list"
            raise InvalidRequestError(
                f"{field_name}.CustomerProfiles.{key} must list exactly one value (got {count}); "
                "use one data integration per domain and object type"
            )
        if not isinstance(items[0], str) or not pattern.match(items[0]):
            raise InvalidRequestError(f"{field_name}.CustomerProfiles.{key}[0] must be {what} (got {items[0]!r})")
        found[key] = items[0]
    return found["domainName"], found["objectType"]


class Operations:
    """The seven export operations of AppIntegrations, over the shared state."""

    def __init__(self, state: EmulatorState, jobs: JobRunner, faults: FaultModel) -> None:
        self._state = state
        self._jobs = jobs
        self._faults = faults

    def handle(self, operation: str, params: Mapping[str, Any], principal_arn: str | None) -> dict[str, Any]:
        """Run one (already model-validated) operation for ``principal_arn`` (None: trusted, no IAM)."""
        handler: Callable[[Mapping[str, Any], str | None], dict[str, Any]] = getattr(self, "_op_" + operation)
        if operation == "ListDataIntegrationAssociations":
            self._jobs.settle_due()  # (a job ending at this very moment of a held clock has ended)
        with self._state.lock:
            return handler(params, principal_arn)

    # ----------------------------------------------------------------- IAM

    def _authorize(
        self, principal_arn: str | None, action: str, resource: str, context: Mapping[str, str] | None = None
    ) -> None:
        if principal_arn is not None:
            request = AccessRequest(action=action, resource=resource, context=dict(context or {}))
            require_allowed(self._state.authorizer, principal_arn, request)

    def _profile_domain_arn(self, domain: str) -> str:
        state = self._state
        return f"arn:aws:profile:{state.region}:{state.account_id}:domains/{domain}"

    def _authorize_dependents(
        self, principal_arn: str | None, action: str, domain: str, object_type: str, kms_key: str | None = None
    ) -> None:
        """The dependent actions of `action` (the product's table, `cpexport_cli.permissions`), checked for the caller.

        Starting an export is a snapshot of the domain taken for the caller; creating a data
        integration reads the domain and has the service take a grant on the key for itself.
        """
        domain_arn = self._profile_domain_arn(domain)
        resources = {
            permissions.DOMAIN: domain_arn,
            permissions.OBJECT_TYPE: f"{domain_arn}/object-types/{object_type}",
            permissions.REQUESTED_KEY: kms_key,
        }
        for dependent in permissions.dependents(action):
            resource = resources[dependent.resource]
            if resource is not None:
                self._authorize(principal_arn, dependent.action, resource, dependent.condition_keys(self._state.region))

    def _find_data_integration(self, identifier: str) -> DataIntegration | None:
        try:
            return self._resolve_data_integration(identifier)
        except ResourceNotFoundError:
            return None

    def _data_integration_resource(self, identifier: str) -> str:
        """The ARN IAM checks for ``identifier`` (name, Id or ARN), whether or not it exists."""
        di = self._find_data_integration(identifier)
        if di is not None:
            return di.arn
        return identifier if identifier.startswith("arn:") else self._state.data_integration_arn(identifier)

    def _association_resource(self, di_identifier: str, assoc_identifier: str) -> str:
        """The association ARN IAM checks, whether or not it exists."""
        if assoc_identifier.startswith("arn:"):
            return assoc_identifier
        di = self._find_data_integration(di_identifier)
        di_id = di.id if di is not None else di_identifier.rsplit("/", 1)[-1]
        return self._state.association_arn(di_id, assoc_identifier)

    # ----------------------------------------------------------------- identifiers and paging

    def _resolve_data_integration(self, identifier: str) -> DataIntegration:
        state = self._state
        if identifier.startswith("arn:"):
            for di in state.data_integrations.values():
                if di.arn == identifier:
                    return di
        elif identifier in state.data_integrations:
            return state.data_integrations[identifier]
        else:
            for di in state.data_integrations.values():
                if di.name == identifier:
                    return di
        raise ResourceNotFoundError(
            f"Data integration '{identifier}' was not found (give its name, Id or ARN, "
            f"in {state.region} account {state.account_id})"
        )

    def _resolve_association(self, di: DataIntegration, identifier: str) -> Association:
        assoc = self._state.associations.get(di.association_id or "")
        if assoc is not None and identifier in (assoc.id, assoc.arn):
            return assoc
        raise ResourceNotFoundError(
            f"DataIntegrationAssociationIdentifier '{identifier}' does not name an association of data "
            f"integration '{di.name}' (give the association Id or ARN)"
        )

    @staticmethod
    def _page(kind: str, items: list[Any], params: Mapping[str, Any]) -> tuple[list[Any], str | None]:
        """Page ``items`` (sorted by ``seq``) with MaxResults/NextToken; tokens survive deletions."""
        after = _decode_token(kind, params["NextToken"]) if params.get("NextToken") else 0
        size = params.get("MaxResults") or DEFAULT_PAGE_SIZE
        remaining = [item for item in items if item.seq > after]
        page = remaining[:size]
        token = _encode_token(kind, page[-1].seq) if len(remaining) > size else None
        return page, token

    # ----------------------------------------------------------------- data integrations

    def _op_CreateDataIntegration(self, params: Mapping[str, Any], principal_arn: str | None) -> dict[str, Any]:
        state = self._state
        source_uri = params.get("SourceURI")
        if source_uri != SOURCE_URI:
            raise InvalidRequestError(
                f"SourceURI must be '{SOURCE_URI}' for a Customer Profiles export data integration (got {source_uri!r})"
            )
        if "ObjectConfiguration" not in params:
            raise InvalidRequestError(
                "ObjectConfiguration is required for a Customer Profiles export: "
                "{'CustomerProfiles': {'domainName': [<domain>], 'objectType': [<type>]}}"
            )
        domain, object_type = parse_customer_profiles_object_configuration(
            params["ObjectConfiguration"], "ObjectConfiguration"
        )
        kms_key = params["KmsKey"]
        if not _KMS_KEY_ARN.match(kms_key):
            raise InvalidRequestError(
                f"KmsKey must be the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<key-id>), got {kms_key!r}"
            )
        # The new data integration's ARN is not known before it exists: IAM sees the wildcard form.
        new_resource = state.data_integration_arn("*")
        self._authorize(principal_arn, "app-integrations:CreateDataIntegration", new_resource)
        if params.get("Tags"):
            self._authorize(principal_arn, "app-integrations:TagResource", new_resource)
        self._authorize_dependents(
            principal_arn, "app-integrations:CreateDataIntegration", domain, object_type, kms_key=kms_key
        )
        token = params.get("ClientToken")
        fingerprint = _fingerprint(params)
        if token:
            for di in state.data_integrations.values():
                if di.client_token == token:
                    if di.request_fingerprint != fingerprint:
                        raise InvalidRequestError(
                            "ClientToken was already used for a CreateDataIntegration request with other parameters"
                        )
                    return self._describe(di, include_token=True)
        name = params["Name"]
        for other in state.data_integrations.values():
            if other.name == name:
                raise DuplicateResourceError(f"A data integration named '{name}' already exists (Id {other.id})")
        self._faults.check_data_integration_quota()
        di_id = str(uuid.uuid4())
        di = DataIntegration(
            id=di_id,
            name=name,
            arn=state.data_integration_arn(di_id),
            kms_key=kms_key,
            source_uri=source_uri,
            object_configuration=json.loads(json.dumps(params["ObjectConfiguration"])),
            domain=domain,
            object_type=object_type,
            seq=state.next_seq(),
            description=params.get("Description"),
            tags=dict(params["Tags"]) if params.get("Tags") else None,
            schedule_configuration=params.get("ScheduleConfig"),
            file_configuration=params.get("FileConfiguration"),
            client_token=token,
            request_fingerprint=fingerprint,
        )
        state.data_integrations[di_id] = di
        return self._describe(di, include_token=True)

    @staticmethod
    def _describe(di: DataIntegration, *, include_token: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Arn": di.arn,
            "Id": di.id,
            "Name": di.name,
            "Description": di.description,
            "KmsKey": di.kms_key,
            "SourceURI": di.source_uri,
            "ScheduleConfiguration": di.schedule_configuration,
            "Tags": di.tags,
            "FileConfiguration": di.file_configuration,
            "ObjectConfiguration": di.object_configuration,
        }
        if include_token:
            out["ClientToken"] = di.client_token
        return out

    def _op_GetDataIntegration(self, params: Mapping[str, Any], principal_arn: str | None) -> dict[str, Any]:
        identifier = params["Identifier"]
        resource = self._data_integration_resource(identifier)
        self._authorize(principal_arn, "app-integrations:GetDataIntegration", resource)
        return self._describe(self._resolve_data_integration(identifier), include_token=False)

    def _op_ListDataIntegrations(self, params: Mapping[str, Any], principal_arn: str | None) -> dict[str, Any]:
        self._authorize(principal_arn, "app-integrations:ListDataIntegrations", "*")
        items = sorted(self._state.data_integrations.values(), key=lambda d: d.seq)
        page, token = self._page("ListDataIntegrations", items, params)
        return {
            "DataIntegrations": [{"Arn": d.arn, "Name": d.name, "SourceURI": d.source_uri} for d in page],
            "NextToken": token,
        }

    def _op_DeleteDataIntegration(self, params: Mapping[str, Any], principal_arn: str | None) -> dict[str, Any]:
        identifier = params["DataIntegrationIdentifier"]
        resource = self._data_integration_resource(identifier)
        self._authorize(principal_arn, "app-integrations:DeleteDataIntegration", resource)
        di = self._resolve_data_integration(identifier)
        if di.association_id is not None:
            raise InvalidRequestError(
                f"Data integration '{di.name}' has an association ({di.association_id}) and cannot be deleted; "
                "associations cannot be deleted either, so an associated data integration is permanent"
            )
        del self._state.data_integrations[di.id]
        return {}

    # ----------------------------------------------------------------- associations

    def _op_CreateDataIntegrationAssociation(
        self, params: Mapping[str, Any], principal_arn: str | None
    ) -> dict[str, Any]:
        state = self._state
        destination = params.get("DestinationURI")
        if destination is None:
            raise InvalidRequestError(
                "DestinationURI is required for a Customer Profiles export (s3://bucket[/prefix])"
            )
        try:
            bucket, prefix = parse_destination(destination)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        if "ObjectConfiguration" in params:
            parse_customer_profiles_object_configuration(params["ObjectConfiguration"], "ObjectConfiguration")
        execution = params.get("ExecutionConfiguration")
        window = self._check_execution(execution) if execution is not None else None
        identifier = params["DataIntegrationIdentifier"]
        resource = self._data_integration_resource(identifier)
        self._authorize(principal_arn, "app-integrations:CreateDataIntegrationAssociation", resource)
        di = self._resolve_data_integration(identifier)
        self._authorize_dependents(
            principal_arn, "app-integrations:CreateDataIntegrationAssociation", di.domain, di.object_type
        )
        token = params.get("ClientToken")
        existing = state.associations.get(di.association_id or "")
        if existing is not None and token and existing.client_token == token:
            return {"DataIntegrationAssociationId": existing.id, "DataIntegrationArn": di.arn}
        if existing is not None:
            raise InvalidRequestError(
                f"Data integration '{di.name}' is already associated (association {existing.id}); a data "
                "integration can be associated only once: use UpdateDataIntegrationAssociation to export again"
            )
        if window is not None:
            self._faults.check_job_quota()
        assoc_id = str(uuid.uuid4())
        assoc = Association(
            id=assoc_id,
            arn=state.association_arn(di.id, assoc_id),
            data_integration_id=di.id,
            destination_uri=destination,
            bucket=bucket,
            prefix=prefix,
            seq=state.next_seq(),
            client_id=params.get("ClientId"),
            object_configuration=params.get("ObjectConfiguration"),
            client_association_metadata=params.get("ClientAssociationMetadata"),
            client_token=token,
        )
        state.associations[assoc_id] = assoc
        di.association_id = assoc_id
        if window is not None and execution is not None:
            job = self._jobs.start(di, assoc, execution, *window)
            assoc.current_job_id = assoc.first_job_id = job.id
            assoc.created_at = self._state.clock.monotonic()
        return {"DataIntegrationAssociationId": assoc_id, "DataIntegrationArn": di.arn}

    def _op_UpdateDataIntegrationAssociation(
        self, params: Mapping[str, Any], principal_arn: str | None
    ) -> dict[str, Any]:
        state = self._state
        execution = params["ExecutionConfiguration"]
        window = self._check_execution(execution)
        di_identifier = params["DataIntegrationIdentifier"]
        assoc_identifier = params["DataIntegrationAssociationIdentifier"]
        resource = self._association_resource(di_identifier, assoc_identifier)
        self._authorize(principal_arn, "app-integrations:UpdateDataIntegrationAssociation", resource)
        di = self._resolve_data_integration(di_identifier)
        assoc = self._resolve_association(di, assoc_identifier)
        self._authorize_dependents(
            principal_arn, "app-integrations:UpdateDataIntegrationAssociation", di.domain, di.object_type
        )
        current = state.jobs.get(assoc.current_job_id or "")
        if current is not None and current.status == IN_PROGRESS and state.config.update_while_in_progress == "reject":
            raise InvalidRequestError(
                f"The last export job of association {assoc.id} is still IN_PROGRESS; wait until it is "
                "COMPLETED or FAILED before updating the ExecutionConfiguration"
            )
        self._faults.check_job_quota()
        job = self._jobs.start(di, assoc, execution, *window)
        assoc.previous_job_id = assoc.current_job_id
        assoc.current_job_id = job.id
        assoc.switched_at = self._state.clock.monotonic()
        return {}

    def _op_ListDataIntegrationAssociations(
        self, params: Mapping[str, Any], principal_arn: str | None
    ) -> dict[str, Any]:
        self._authorize(principal_arn, "app-integrations:ListDataIntegrationAssociations", "*")
        di = self._resolve_data_integration(params["DataIntegrationIdentifier"])
        items = [a for a in self._state.associations.values() if a.data_integration_id == di.id]
        page, token = self._page("ListDataIntegrationAssociations", sorted(items, key=lambda a: a.seq), params)
        return {"DataIntegrationAssociations": [self._summary(di, a) for a in page], "NextToken": token}

    def _summary(self, di: DataIntegration, assoc: Association) -> dict[str, Any]:
        view = self._faults.association_view(assoc)
        return {
            "DataIntegrationAssociationArn": assoc.arn,
            "DataIntegrationArn": di.arn,
            "ClientId": assoc.client_id,
            "DestinationURI": assoc.destination_uri,
            "LastExecutionStatus": view.last_execution_status,
            "ExecutionConfiguration": view.execution_configuration,
        }

    # ----------------------------------------------------------------- windows

    def _check_execution(self, execution: Mapping[str, Any]) -> tuple[int, int | None]:
        """Validate an ExecutionConfiguration for an export; return (start_ms, end_ms or None for "now")."""
        mode = execution.get("ExecutionMode")
        if mode != "ON_DEMAND":
            raise InvalidRequestError(
                f"ExecutionConfiguration.ExecutionMode must be ON_DEMAND for a Customer Profiles export (got {mode!r})"
            )
        on_demand = execution.get("OnDemandConfiguration")
        if not isinstance(on_demand, dict):
            raise InvalidRequestError(
                "ExecutionConfiguration.OnDemandConfiguration is required when ExecutionMode is ON_DEMAND"
            )
        values: dict[str, int | None] = {}
        for key in ("StartTime", "EndTime"):
            raw = on_demand.get(key)
            if raw is None:
                values[key] = None
                continue
            if not isinstance(raw, str) or not _EPOCH_MS.match(raw):
                raise InvalidRequestError(
                    f"ExecutionConfiguration.OnDemandConfiguration.{key} must be epoch milliseconds as a string "
                    f"of digits, e.g. '1715278292014' (got {raw!r})"
                )
            values[key] = int(raw)
        start, end = values["StartTime"], values["EndTime"]
        if start is None:
            raise InvalidRequestError("ExecutionConfiguration.OnDemandConfiguration.StartTime is required")
        limit = end if end is not None else self._state.now_ms()
        if start >= limit:
            what = f"EndTime ({end})" if end is not None else f"the current time ({limit}) since EndTime is omitted"
            raise InvalidRequestError(
                f"ExecutionConfiguration.OnDemandConfiguration.StartTime ({start}) must be before {what}"
            )
        return start, end
