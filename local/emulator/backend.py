"""The emulated service as one object: a thin façade over its rooms.

Where a change belongs:
- ``operations.py``: an API operation or one of the service's validation rules;
- ``jobs.py``: what an export job selects, writes and when;
- ``faults.py``: injected faults, eventually consistent views, quotas;
- ``state.py``: the records and the lock the three share;
- ``config.py``: the knobs (each declared once);
- ``profiles.py``: what Customer Profiles does to a domain's objects (delete, merge).

Every public method is thread-safe.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any

from local.clock import Clock
from local.emulator.auth import Authorizer, StaticAuthorizer
from local.emulator.config import EmulatorConfig
from local.emulator.errors import InvalidRequestError
from local.emulator.faults import FaultModel
from local.emulator.jobs import JobRunner
from local.emulator.operations import DOMAIN_NAME, OBJECT_TYPE_NAME, Operations
from local.emulator.profiles import DomainObjects, delete_objects, live_objects, merge_profiles
from local.emulator.state import EmulatorState, S3ClientFactory

MAX_OBJECT_BYTES = 250 * 1024  # Customer Profiles quota: one object is at most 250 KB of JSON.


def _require_object(body: Any, shape: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequestError(f"body must be a JSON object {shape}")
    return body


def _domain_name(domain: Any) -> str:
    if not isinstance(domain, str) or not DOMAIN_NAME.match(domain):
        raise InvalidRequestError(f"domainName must be 1-64 of a-z, A-Z, 0-9, _ and - (got {domain!r})")
    return domain


def _object_type_name(object_type: Any) -> str:
    if not isinstance(object_type, str) or not OBJECT_TYPE_NAME.match(object_type):
        raise InvalidRequestError(f"objectType must be an object type name such as _profile (got {object_type!r})")
    return object_type


class Backend:
    """The emulated AppIntegrations service of one account and Region."""

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        config: EmulatorConfig,
        s3_client_factory: S3ClientFactory,
        authorizer: Authorizer | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._state = EmulatorState(
            region=region,
            account_id=account_id,
            config=config,
            s3_client_factory=s3_client_factory,
            authorizer=authorizer if authorizer is not None else StaticAuthorizer(account_id=account_id),
            clock=clock,
        )
        self._faults = FaultModel(self._state)
        self._jobs = JobRunner(self._state, self._faults)
        self._operations = Operations(self._state, self._jobs, self._faults)

    @property
    def region(self) -> str:
        """The Region this service answers for."""
        return self._state.region

    @property
    def account_id(self) -> str:
        """The account this service answers for."""
        return self._state.account_id

    @property
    def authorizer(self) -> Authorizer:
        """Who may call and what the caller and the service may do (kept across ``reset``)."""
        return self._state.authorizer

    @authorizer.setter
    def authorizer(self, authorizer: Authorizer) -> None:
        with self._state.lock:
            self._state.authorizer = authorizer

    # ----------------------------------------------------------------- config and control

    @property
    def config(self) -> EmulatorConfig:
        """The current configuration (a copy: change it through ``update_config``)."""
        with self._state.lock:
            return self._state.config.model_copy(deep=True)

    def update_config(self, partial: Mapping[str, Any]) -> EmulatorConfig:
        """Merge ``partial`` into the configuration (validated as a whole) and return the result."""
        state = self._state
        with state.lock:
            merged = {**state.config.model_dump(), **partial}
            new = EmulatorConfig.model_validate(merged)
            state.config = new
            if "random_seed" in partial:
                state.rng = random.Random(new.random_seed)
            if "fault_rules" in partial:
                state.arm_fault_rules()
            return new.model_copy(deep=True)

    def now_ms(self) -> int:
        """The emulator clock in epoch milliseconds."""
        with self._state.lock:
            return self._state.now_ms()

    def reset(self) -> None:
        """Forget everything (stopping running jobs) and restore the configuration given at construction."""
        with self._state.lock:
            self._state.clear()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop every running job and wait briefly for their threads."""
        with self._state.lock:
            for job in self._state.jobs.values():
                job.cancel.set()
            threads = list(self._state.threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def seed_objects(self, body: Any) -> dict[str, Any]:
        """Upsert Customer Profiles objects by id; ``body`` is ``{"domainName", "objectType", "objects"}``."""
        if not isinstance(body, dict):
            raise InvalidRequestError("body must be a JSON object with domainName, objectType and objects")
        domain = _domain_name(body.get("domainName"))
        object_type = _object_type_name(body.get("objectType"))
        objects = body.get("objects")
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
        with self._state.lock:
            store = self._state.objects.setdefault((domain, object_type), {})
            for obj in checked:
                store[obj["id"]] = json.loads(json.dumps(obj))
            return {"domainName": domain, "objectType": object_type, "upserted": len(checked), "total": len(store)}

    def _domain_objects(self, domain: str) -> DomainObjects:
        """The domain's stores by object type: the state's own dicts (caller holds the lock)."""
        return {t: store for (d, t), store in self._state.objects.items() if d == domain}

    def delete_objects(self, body: Any) -> dict[str, Any]:
        """Delete objects by id; ``body`` is ``{"domainName", "objectType", "ids"}``.

        DeleteProfileObject; for ``_profile`` DeleteProfile, which also deletes the objects of other
        types that reference the profile. Answers ``{"domainName", "deleted": {type: [ids]}, "changed": {}}``.
        Export jobs select when they start, so only jobs started after this call leave the objects out.
        """
        request = _require_object(body, '{"domainName", "objectType", "ids": [...]}')
        domain = _domain_name(request.get("domainName"))
        object_type = _object_type_name(request.get("objectType"))
        with self._state.lock:
            effect = delete_objects(self._domain_objects(domain), object_type, request.get("ids"))
            return {"domainName": domain, **effect.as_dict()}

    def merge_profiles(self, body: Any) -> dict[str, Any]:
        """Merge profiles (MergeProfiles); ``body`` is ``{"domainName", "mainProfileId", "profileIdsToBeMerged", "atMs"}``.

        ``atMs`` (epoch ms) is when the merge happens, default the emulator's now. The knob
        ``merge_updates_last_updated`` decides whether moved objects' ``lastUpdated`` becomes that time.
        Answers ``{"domainName", "mainProfileId", "atMs", "deleted": {type: [ids]}, "changed": {type: [ids]}}``.
        """
        request = _require_object(body, '{"domainName", "mainProfileId", "profileIdsToBeMerged": [...], "atMs"}')
        domain = _domain_name(request.get("domainName"))
        at_ms = request.get("atMs")
        if at_ms is not None and (isinstance(at_ms, bool) or not isinstance(at_ms, int) or at_ms < 0):
            raise InvalidRequestError(f"atMs must be a non-negative integer of epoch milliseconds (got {at_ms!r})")
        with self._state.lock:
            when = at_ms if at_ms is not None else self._state.now_ms()
            effect = merge_profiles(
                self._domain_objects(domain),
                request.get("mainProfileId"),
                request.get("profileIdsToBeMerged"),
                when,
                moved_objects_updated=self._state.config.merge_updates_last_updated,
            )
            return {"domainName": domain, "mainProfileId": request["mainProfileId"], "atMs": when, **effect.as_dict()}

    def live_objects(self, domain: Any, object_type: Any) -> dict[str, Any]:
        """The objects of a domain and type that exist now: ``{"domainName", "objectType", "objects": [...]}``.

        Each entry is ``{"id", "lastUpdated", "object"}`` (sorted by id): what a current-state table
        built from the exports should converge to.
        """
        domain = _domain_name(domain)
        object_type = _object_type_name(object_type)
        with self._state.lock:
            objects = json.loads(json.dumps(live_objects(self._domain_objects(domain), object_type)))
        return {"domainName": domain, "objectType": object_type, "objects": objects}

    def jobs_snapshot(self) -> list[dict[str, Any]]:
        """Every job ever started (since the last reset), oldest first."""
        with self._state.lock:
            return [job.snapshot() for job in self._state.jobs.values()]

    def finish_job(self, job_id: str, status: str, message: str | None = None) -> dict[str, Any]:
        """End an IN_PROGRESS job (e.g. a never-ending one) as COMPLETED or FAILED; return its snapshot."""
        with self._state.lock:
            return self._jobs.finish_by_control(job_id, status, message).snapshot()

    def faults_snapshot(self) -> list[dict[str, Any]]:
        """Every armed fault rule with how often it fired and how many faults it has left."""
        return self._faults.rules_snapshot()

    # ----------------------------------------------------------------- API

    def before_call(self, operation: str, principal_arn: str | None = None) -> None:
        """Apply the fault-injection knobs that refuse a call before it takes effect."""
        self._faults.before_call(operation, principal_arn)

    def after_call(self, operation: str) -> None:
        """Answer a call that took effect with a fault anyway, if an ``after`` fault rule fires."""
        self._faults.after_call(operation)

    def handle(self, operation: str, params: Mapping[str, Any], principal_arn: str | None = None) -> dict[str, Any]:
        """Run one (already model-validated) operation for ``principal_arn`` and return its output members.

        Every action and dependent action is authorized for ``principal_arn``; None is a trusted
        in-process call that skips IAM (the server always passes the authenticated caller).
        """
        return self._operations.handle(operation, params, principal_arn)
