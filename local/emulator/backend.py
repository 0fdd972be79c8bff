"""State and behaviour of the emulated service: data integrations, associations, export jobs, seeded objects.

Every public method is thread-safe (one re-entrant lock); export jobs run on daemon threads and only
touch their own ``Job`` record under that lock.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.emulator.config import EmulatorConfig
from local.emulator.errors import (
    AccessDeniedError,
    DuplicateResourceError,
    InternalServiceError,
    InvalidRequestError,
    ResourceNotFoundError,
    ResourceQuotaExceededError,
    ThrottlingError,
)
from local.emulator.layout import export_folder, new_file_key, parse_destination

SOURCE_URI = "AmazonConnect://AppIntegrations"
OBJECT_CONFIGURATION_KEY = "CustomerProfiles"
STATUS_MESSAGE_MAX = 255  # LastExecutionStatus.StatusMessage is a NonBlankString of at most 255 characters.
MAX_OBJECT_BYTES = 250 * 1024  # Customer Profiles quota: one object is at most 250 KB of JSON.
DEFAULT_PAGE_SIZE = 50

_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_DOMAIN_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Customer Profiles DomainName constraint.
_OBJECT_TYPE = re.compile(r"^[a-zA-Z_][a-zA-Z_0-9-]{0,254}$")  # Customer Profiles ObjectTypeName.
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_EPOCH_MS = re.compile(r"^\d{1,15}$")

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"

S3ClientFactory = Callable[[], Any]


@dataclass
class DataIntegration:
    """One data integration (one Customer Profiles domain and object type)."""

    id: str
    name: str
    arn: str
    kms_key: str
    source_uri: str
    object_configuration: dict[str, Any]
    domain: str
    object_type: str
    seq: int
    description: str | None = None
    tags: dict[str, str] | None = None
    schedule_configuration: dict[str, Any] | None = None
    file_configuration: dict[str, Any] | None = None
    client_token: str | None = None
    request_fingerprint: str = ""
    association_id: str | None = None


@dataclass
class Association:
    """The single association of a data integration: a fixed destination plus its export jobs."""

    id: str
    arn: str
    data_integration_id: str
    destination_uri: str
    bucket: str
    prefix: str
    seq: int
    client_id: str | None = None
    object_configuration: dict[str, Any] | None = None
    client_association_metadata: dict[str, str] | None = None
    client_token: str | None = None
    current_job_id: str | None = None
    previous_job_id: str | None = None
    switched_at: float = 0.0  # time.monotonic() of the last Update, for stale_status_seconds.


@dataclass
class Job:
    """One on-demand export job."""

    id: str
    data_integration_id: str
    data_integration_name: str
    data_integration_arn: str
    association_id: str
    association_arn: str
    domain: str
    object_type: str
    start_ms: int
    end_ms: int
    request_ms: int
    execution_configuration: dict[str, Any]
    destination: str
    bucket: str
    prefix: str
    folder: str
    kms_key: str
    records_per_file: int
    duration_seconds: float
    forced_failure: bool
    selection: list[dict[str, Any]] = field(repr=False)
    status: str = IN_PROGRESS
    status_message: str | None = None
    files: list[str] = field(default_factory=list)
    records: int = 0
    finished_ms: int | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def snapshot(self) -> dict[str, Any]:
        """Return the job as shown by ``GET /_emulator/jobs``."""
        return {
            "id": self.id,
            "dataIntegrationName": self.data_integration_name,
            "dataIntegrationArn": self.data_integration_arn,
            "dataIntegrationId": self.data_integration_id,
            "associationId": self.association_id,
            "associationArn": self.association_arn,
            "domainName": self.domain,
            "objectType": self.object_type,
            "startTimeMs": self.start_ms,
            "endTimeMs": self.end_ms,
            "requestTimeMs": self.request_ms,
            "executionConfiguration": self.execution_configuration,
            "status": self.status,
            "statusMessage": self.status_message,
            "destination": self.destination,
            "bucket": self.bucket,
            "folder": self.folder,
            "files": list(self.files),
            "records": self.records,
            "recordsSelected": len(self.selection),
            "durationSeconds": self.duration_seconds,
            "finishedTimeMs": self.finished_ms,
        }


def _truncate(message: str, limit: int = STATUS_MESSAGE_MAX) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


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
        ("domainName", _DOMAIN_NAME, "a Customer Profiles domain name (1-64 of a-z, A-Z, 0-9, _ and -)"),
        ("objectType", _OBJECT_TYPE, "an object type name such as _profile"),
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


class Backend:
    """The emulated AppIntegrations service of one account and Region."""

    def __init__(
        self, *, region: str, account_id: str, config: EmulatorConfig, s3_client_factory: S3ClientFactory
    ) -> None:
        self.region = region
        self.account_id = account_id
        self._initial_config = config.model_copy(deep=True)
        self._config = config.model_copy(deep=True)
        self._s3_client_factory = s3_client_factory
        self._lock = threading.RLock()
        self._rng = random.Random(self._config.random_seed)
        self._seq = 0
        self._data_integrations: dict[str, DataIntegration] = {}
        self._associations: dict[str, Association] = {}
        self._jobs: dict[str, Job] = {}
        self._objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- config and control

    @property
    def config(self) -> EmulatorConfig:
        """The current configuration (a copy: change it through ``update_config``)."""
        with self._lock:
            return self._config.model_copy(deep=True)

    def update_config(self, partial: Mapping[str, Any]) -> EmulatorConfig:
        """Merge ``partial`` into the configuration (validated as a whole) and return the result."""
        with self._lock:
            merged = {**self._config.model_dump(), **partial}
            new = EmulatorConfig.model_validate(merged)
            self._config = new
            if "random_seed" in partial:
                self._rng = random.Random(new.random_seed)
            return new.model_copy(deep=True)

    def now_ms(self) -> int:
        """The emulator clock in epoch milliseconds."""
        with self._lock:
            return self._config.now_ms()

    def reset(self) -> None:
        """Forget everything (stopping running jobs) and restore the configuration given at construction."""
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
            self._data_integrations.clear()
            self._associations.clear()
            self._jobs.clear()
            self._objects.clear()
            self._config = self._initial_config.model_copy(deep=True)
            self._rng = random.Random(self._config.random_seed)
            self._threads = [t for t in self._threads if t.is_alive()]

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop every running job and wait briefly for their threads."""
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def seed_objects(self, body: Any) -> dict[str, Any]:
        """Upsert Customer Profiles objects by id; ``body`` is ``{"domainName", "objectType", "objects"}``."""
        if not isinstance(body, dict):
            raise InvalidRequestError("body must be a JSON object with domainName, objectType and objects")
        domain, object_type, objects = body.get("domainName"), body.get("objectType"), body.get("objects")
        if not isinstance(domain, str) or not _DOMAIN_NAME.match(domain):
            raise InvalidRequestError(f"domainName must be 1-64 of a-z, A-Z, 0-9, _ and - (got {domain!r})")
        if not isinstance(object_type, str) or not _OBJECT_TYPE.match(object_type):
            raise InvalidRequestError(f"objectType must be an object type name such as _profile (got {object_type!r})")
        if not isinstance(objects, list):
            raise InvalidRequestError("objects must be a list of JSON objects")
        checked: list[dict[str, Any]] = []
        for i, obj in enumerate(objects):
            if not isinstance(obj, dict):
                raise InvalidRequestError(f"objects[{i}] must be a JSON object")
            if not isinstance(obj.get("id"), str) or not obj["id"]:
                raise InvalidRequestError(f"objects[{i}].id must be a non-empty string")
            last_updated = obj.get("lastUpdated")
            if isinstance(last_updated, bool) or not isinstance(last_updated, int) or last_updated < 0:
                raise InvalidRequestError(
                    f"objects[{i}].lastUpdated must be a non-negative integer of epoch milliseconds "
                    f"(got {last_updated!r})"
                )
            size = len(json.dumps(obj, ensure_ascii=False).encode())
            if size > MAX_OBJECT_BYTES:
                raise InvalidRequestError(
                    f"objects[{i}] is {size} bytes of JSON; the Customer Profiles limit is 250 KB "
                    f"({MAX_OBJECT_BYTES} bytes)"
                )
            checked.append(obj)
        with self._lock:
            store = self._objects.setdefault((domain, object_type), {})
            for obj in checked:
                store[obj["id"]] = json.loads(json.dumps(obj))
            return {"domainName": domain, "objectType": object_type, "upserted": len(checked), "total": len(store)}

    def jobs_snapshot(self) -> list[dict[str, Any]]:
        """Every job ever started (since the last reset), oldest first."""
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    # ----------------------------------------------------------------- API plumbing

    def before_call(self, operation: str) -> None:
        """Apply the fault-injection knobs (denied operations, throttling, internal errors) to one API call."""
        with self._lock:
            cfg = self._config
            if operation in cfg.access_denied_operations:
                raise AccessDeniedError(
                    f"User is not authorized to perform: app-integrations:{operation} (denied by the emulator's "
                    "access_denied_operations)"
                )
            # Only draw when a rate is set, so enabling one knob does not shift the other's sequence.
            if cfg.throttle_rate > 0 and self._rng.random() < cfg.throttle_rate:
                raise ThrottlingError(f"Rate exceeded for {operation}")
            if cfg.internal_error_rate > 0 and self._rng.random() < cfg.internal_error_rate:
                raise InternalServiceError(f"An internal error occurred while processing {operation}")

    def handle(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run one (already model-validated) operation and return its output members."""
        handler: Callable[[Mapping[str, Any]], dict[str, Any]] = getattr(self, "_op_" + operation)
        with self._lock:
            return handler(params)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _data_integration_arn(self, di_id: str) -> str:
        return f"arn:aws:app-integrations:{self.region}:{self.account_id}:data-integration/{di_id}"

    def _association_arn(self, di_id: str, assoc_id: str) -> str:
        return (
            f"arn:aws:app-integrations:{self.region}:{self.account_id}:data-integration-association/{di_id}/{assoc_id}"
        )

    def _resolve_data_integration(self, identifier: str) -> DataIntegration:
        if identifier.startswith("arn:"):
            for di in self._data_integrations.values():
                if di.arn == identifier:
                    return di
        elif identifier in self._data_integrations:
            return self._data_integrations[identifier]
        else:
            for di in self._data_integrations.values():
                if di.name == identifier:
                    return di
        raise ResourceNotFoundError(
            f"Data integration '{identifier}' was not found (give its name, Id or ARN, "
            f"in {self.region} account {self.account_id})"
        )

    def _resolve_association(self, di: DataIntegration, identifier: str) -> Association:
        assoc = self._associations.get(di.association_id or "")
        if assoc is not None and identifier in (assoc.id, assoc.arn):
            return assoc
        raise ResourceNotFoundError(
            f"DataIntegrationAssociationIdentifier '{identifier}' does not name an association of data "
            f"integration '{di.name}' (give the association Id or ARN)"
        )

    def _page(self, kind: str, items: list[Any], params: Mapping[str, Any]) -> tuple[list[Any], str | None]:
        """Page ``items`` (sorted by ``seq``) with MaxResults/NextToken; tokens survive deletions."""
        after = _decode_token(kind, params["NextToken"]) if params.get("NextToken") else 0
        size = params.get("MaxResults") or DEFAULT_PAGE_SIZE
        remaining = [item for item in items if item.seq > after]
        page = remaining[:size]
        token = _encode_token(kind, page[-1].seq) if len(remaining) > size else None
        return page, token

    # ----------------------------------------------------------------- operations

    def _op_CreateDataIntegration(self, params: Mapping[str, Any]) -> dict[str, Any]:
        token = params.get("ClientToken")
        fingerprint = _fingerprint(params)
        if token:
            for di in self._data_integrations.values():
                if di.client_token == token:
                    if di.request_fingerprint != fingerprint:
                        raise InvalidRequestError(
                            "ClientToken was already used for a CreateDataIntegration request with other parameters"
                        )
                    return self._describe(di, include_token=True)
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
        name = params["Name"]
        for other in self._data_integrations.values():
            if other.name == name:
                raise DuplicateResourceError(f"A data integration named '{name}' already exists (Id {other.id})")
        quota = self._config.max_data_integrations
        if len(self._data_integrations) >= quota:
            raise ResourceQuotaExceededError(
                f"This account already has {quota} data integrations in {self.region} (quota max_data_integrations)"
            )
        di_id = str(uuid.uuid4())
        di = DataIntegration(
            id=di_id,
            name=name,
            arn=self._data_integration_arn(di_id),
            kms_key=kms_key,
            source_uri=source_uri,
            object_configuration=json.loads(json.dumps(params["ObjectConfiguration"])),
            domain=domain,
            object_type=object_type,
            seq=self._next_seq(),
            description=params.get("Description"),
            tags=dict(params["Tags"]) if params.get("Tags") else None,
            schedule_configuration=params.get("ScheduleConfig"),
            file_configuration=params.get("FileConfiguration"),
            client_token=token,
            request_fingerprint=fingerprint,
        )
        self._data_integrations[di_id] = di
        return self._describe(di, include_token=True)

    def _describe(self, di: DataIntegration, *, include_token: bool) -> dict[str, Any]:
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

    def _op_GetDataIntegration(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._describe(self._resolve_data_integration(params["Identifier"]), include_token=False)

    def _op_ListDataIntegrations(self, params: Mapping[str, Any]) -> dict[str, Any]:
        items = sorted(self._data_integrations.values(), key=lambda d: d.seq)
        page, token = self._page("ListDataIntegrations", items, params)
        return {
            "DataIntegrations": [{"Arn": d.arn, "Name": d.name, "SourceURI": d.source_uri} for d in page],
            "NextToken": token,
        }

    def _op_DeleteDataIntegration(self, params: Mapping[str, Any]) -> dict[str, Any]:
        di = self._resolve_data_integration(params["DataIntegrationIdentifier"])
        if di.association_id is not None:
            raise InvalidRequestError(
                f"Data integration '{di.name}' has an association ({di.association_id}) and cannot be deleted; "
                "associations cannot be deleted either, so an associated data integration is permanent"
            )
        del self._data_integrations[di.id]
        return {}

    def _op_CreateDataIntegrationAssociation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        di = self._resolve_data_integration(params["DataIntegrationIdentifier"])
        token = params.get("ClientToken")
        existing = self._associations.get(di.association_id or "")
        if existing is not None and token and existing.client_token == token:
            return {"DataIntegrationAssociationId": existing.id, "DataIntegrationArn": di.arn}
        if existing is not None:
            raise InvalidRequestError(
                f"Data integration '{di.name}' is already associated (association {existing.id}); a data "
                "integration can be associated only once: use UpdateDataIntegrationAssociation to export again"
            )
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
        if window is not None:
            self._check_quota()
        assoc_id = str(uuid.uuid4())
        assoc = Association(
            id=assoc_id,
            arn=self._association_arn(di.id, assoc_id),
            data_integration_id=di.id,
            destination_uri=destination,
            bucket=bucket,
            prefix=prefix,
            seq=self._next_seq(),
            client_id=params.get("ClientId"),
            object_configuration=params.get("ObjectConfiguration"),
            client_association_metadata=params.get("ClientAssociationMetadata"),
            client_token=token,
        )
        self._associations[assoc_id] = assoc
        di.association_id = assoc_id
        if window is not None and execution is not None:
            job = self._start_job(di, assoc, execution, *window)
            assoc.current_job_id = job.id
        return {"DataIntegrationAssociationId": assoc_id, "DataIntegrationArn": di.arn}

    def _op_UpdateDataIntegrationAssociation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        di = self._resolve_data_integration(params["DataIntegrationIdentifier"])
        assoc = self._resolve_association(di, params["DataIntegrationAssociationIdentifier"])
        execution = params["ExecutionConfiguration"]
        window = self._check_execution(execution)
        current = self._jobs.get(assoc.current_job_id or "")
        if current is not None and current.status == IN_PROGRESS and self._config.update_while_in_progress == "reject":
            raise InvalidRequestError(
                f"The last export job of association {assoc.id} is still IN_PROGRESS; wait until it is "
                "COMPLETED or FAILED before updating the ExecutionConfiguration"
            )
        self._check_quota()
        job = self._start_job(di, assoc, execution, *window)
        assoc.previous_job_id = assoc.current_job_id
        assoc.current_job_id = job.id
        assoc.switched_at = time.monotonic()
        return {}

    def _op_ListDataIntegrationAssociations(self, params: Mapping[str, Any]) -> dict[str, Any]:
        di = self._resolve_data_integration(params["DataIntegrationIdentifier"])
        items = [a for a in self._associations.values() if a.data_integration_id == di.id]
        page, token = self._page("ListDataIntegrationAssociations", sorted(items, key=lambda a: a.seq), params)
        return {"DataIntegrationAssociations": [self._summary(di, a) for a in page], "NextToken": token}

    def _summary(self, di: DataIntegration, assoc: Association) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "DataIntegrationAssociationArn": assoc.arn,
            "DataIntegrationArn": di.arn,
            "ClientId": assoc.client_id,
            "DestinationURI": assoc.destination_uri,
        }
        shown = self._jobs.get(assoc.current_job_id or "")
        stale_for = self._config.stale_status_seconds * self._config.time_scale
        if assoc.previous_job_id and time.monotonic() - assoc.switched_at < stale_for:
            # Emulates an eventually consistent read: the previous job is still what List returns.
            shown = self._jobs.get(assoc.previous_job_id) or shown
        if shown is not None:
            status: dict[str, Any] = {"ExecutionStatus": shown.status}
            if shown.status == FAILED and shown.status_message:
                status["StatusMessage"] = shown.status_message
            summary["LastExecutionStatus"] = status
            summary["ExecutionConfiguration"] = shown.execution_configuration
        return summary

    # ----------------------------------------------------------------- jobs

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
        limit = end if end is not None else self._config.now_ms()
        if start >= limit:
            what = f"EndTime ({end})" if end is not None else f"the current time ({limit}) since EndTime is omitted"
            raise InvalidRequestError(
                f"ExecutionConfiguration.OnDemandConfiguration.StartTime ({start}) must be before {what}"
            )
        return start, end

    def _check_quota(self) -> None:
        running = sum(1 for job in self._jobs.values() if job.status == IN_PROGRESS)
        limit = self._config.max_concurrent_jobs
        if running >= limit:
            raise ResourceQuotaExceededError(
                f"{running} export jobs are IN_PROGRESS in {self.region} for account {self.account_id}; "
                f"the quota of concurrent bulk export jobs is {limit}"
            )

    def _start_job(
        self,
        di: DataIntegration,
        assoc: Association,
        execution: Mapping[str, Any],
        start_ms: int,
        end_ms: int | None,
    ) -> Job:
        cfg = self._config
        request_ms = cfg.now_ms()
        end = end_ms if end_ms is not None else request_ms
        # The documented ingestion lag, worst case: anything this recent is not yet exportable.
        horizon = request_ms - int(cfg.lag_minutes * 60_000)
        store = self._objects.get((di.domain, di.object_type), {})
        selection = sorted(
            (
                json.loads(json.dumps(obj))
                for obj in store.values()
                if start_ms <= obj["lastUpdated"] < end and obj["lastUpdated"] < horizon
            ),
            key=lambda o: (o["lastUpdated"], o["id"]),
        )
        job = Job(
            id=str(uuid.uuid4()),
            data_integration_id=di.id,
            data_integration_name=di.name,
            data_integration_arn=di.arn,
            association_id=assoc.id,
            association_arn=assoc.arn,
            domain=di.domain,
            object_type=di.object_type,
            start_ms=start_ms,
            end_ms=end,
            request_ms=request_ms,
            execution_configuration=json.loads(json.dumps(execution)),
            destination=assoc.destination_uri,
            bucket=assoc.bucket,
            prefix=assoc.prefix,
            folder=export_folder(assoc.prefix, self.account_id, di.domain, request_ms, start_ms, end, di.object_type),
            kms_key=di.kms_key,
            records_per_file=cfg.records_per_file,
            duration_seconds=cfg.duration_for(di.object_type),
            forced_failure=di.object_type in cfg.fail_object_types,
            selection=selection,
        )
        self._jobs[job.id] = job
        thread = threading.Thread(target=self._run_job, args=(job,), name=f"export-{job.id[:8]}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()
        return job

    def _finish(self, job: Job, status: str, message: str | None = None) -> None:
        with self._lock:
            if job.status != IN_PROGRESS:
                return
            job.status = status
            job.status_message = _truncate(message) if message else None
            job.finished_ms = self._config.now_ms()

    def _run_job(self, job: Job) -> None:
        """Run a job on its thread; an unexpected error FAILS the job rather than leaving it IN_PROGRESS."""
        try:
            self._run_job_steps(job)
        except Exception as exc:
            self._finish(job, FAILED, f"Export failed: internal emulator error {type(exc).__name__}: {exc}")

    def _run_job_steps(self, job: Job) -> None:
        """Write the job's files spread over its duration, then COMPLETE (or FAIL)."""
        began = time.monotonic()

        def wait_until(offset: float) -> bool:
            """Sleep until ``offset`` seconds after the start; False if the job was cancelled meanwhile."""
            return not job.cancel.wait(max(0.0, began + offset - time.monotonic()))

        try:
            s3 = self._s3_client_factory()
            s3.head_bucket(Bucket=job.bucket)
        except (ClientError, BotoCoreError) as exc:
            self._finish(job, FAILED, f"Export failed: destination bucket '{job.bucket}' is not accessible: {exc}")
            return
        chunks = [
            job.selection[i : i + job.records_per_file] for i in range(0, len(job.selection), job.records_per_file)
        ]
        duration = job.duration_seconds
        # A forced failure happens half-way, after the files due by then: failed jobs can leave partial output.
        fail_at = duration / 2 if job.forced_failure else None
        for index, chunk in enumerate(chunks):
            due = duration * (index + 1) / (len(chunks) + 1)
            if fail_at is not None and due >= fail_at:
                break
            if not wait_until(due):
                return
            key = new_file_key(job.folder)
            body = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in chunk).encode("utf-8")
            try:
                s3.put_object(
                    Bucket=job.bucket,
                    Key=key,
                    Body=body,
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=job.kms_key,
                )
            except (ClientError, BotoCoreError) as exc:
                self._finish(job, FAILED, f"Export failed writing s3://{job.bucket}/{key}: {exc}")
                return
            with self._lock:
                job.files.append(key)
                job.records += len(chunk)
        if fail_at is not None:
            if wait_until(fail_at):
                self._finish(
                    job,
                    FAILED,
                    f"Export of object type {job.object_type} failed (forced by the emulator's fail_object_types)",
                )
            return
        if wait_until(duration):
            self._finish(job, COMPLETED)
