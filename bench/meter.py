"""Counting the pipeline's own S3 and DynamoDB requests, per stack and object type, on the offline stack.

The harness's request gate passes every signed request to moto through its limit checks; a meter
appended there sees each one (it never refuses). Only the pipeline's callers count: role sessions
of a stack's roles (functions, the state machine). The administrator (the benchmark itself) and the
service's own writes (the emulator writing export files as AppIntegrations) are left out.

A request names its object type in its key or prefix (`.../{type}/...`, `.../{type}.manifest...`) or
its DynamoDB partition (`EXPORT#{domain}#{type}`); a request that names none (a listing of the
domain's request folders, an idempotency record) is the stack's, shared by its exports.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from local.iam.operations import ApiCall

_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
METERED_SERVICES = ("s3", "dynamodb")
SHARED = ""  # the object type of a request that names none


def s3_tier(operation: str) -> str:
    """S3's price tier of an operation: `put` (PUT, COPY, POST, LIST) or `get` (GET and the rest)."""
    if operation.startswith(("List", "Put", "Create", "Upload", "Complete", "Copy", "Post")):
        return "put"
    return "get"


def dynamodb_tier(operation: str) -> str:
    """DynamoDB's request unit of an operation: `write` or `read`."""
    if operation.startswith(("Put", "Update", "Delete", "BatchWrite", "TransactWrite")):
        return "write"
    return "read"


@dataclass
class RequestMeter:
    """A gate check that counts requests by (stack, service, tier, object type); it never refuses one."""

    resolve_role: Any  # access key id -> role name, or None for a non-role caller
    stacks_by_role: dict[str, str] = field(default_factory=dict)
    object_types: dict[str, tuple[str, ...]] = field(default_factory=dict)  # stack -> its object types
    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    _roles: dict[str, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, call: ApiCall) -> None:
        if call.service not in METERED_SERVICES:
            return
        found = _ACCESS_KEY.search(call.headers.get("Authorization", call.headers.get("authorization", "")))
        if found is None:
            return
        key = found.group(1)
        if key not in self._roles:
            self._roles[key] = self.resolve_role(key)
        stack = self.stacks_by_role.get(self._roles[key] or "")
        if stack is None:
            return
        tier = s3_tier(call.operation) if call.service == "s3" else dynamodb_tier(call.operation)
        object_type = self._object_type(stack, call)
        with self._lock:
            self.counts[(stack, call.service, tier, object_type)] += 1

    def _object_type(self, stack: str, call: ApiCall) -> str:
        if call.service == "s3":
            text = unquote(call.path) + " " + " ".join(str(value) for value in call.params.values())
            for object_type in self.object_types.get(stack, ()):
                if f"/{object_type}/" in text or f"/{object_type}." in text:
                    return object_type
            return SHARED
        body = call.body.decode("utf-8", "replace")
        for object_type in self.object_types.get(stack, ()):
            if f'#{object_type}"' in body:
                return object_type
        return SHARED

    def of(self, stack: str, object_type: str) -> dict[str, int]:
        """The requests of one export, `{"s3_put": n, "s3_get": n, "dynamodb_write": n, "dynamodb_read": n}`."""
        totals = {"s3_put": 0, "s3_get": 0, "dynamodb_write": 0, "dynamodb_read": 0}
        with self._lock:
            for (owner, service, tier, named), count in self.counts.items():
                if owner == stack and named == object_type:
                    totals[f"{service}_{tier}"] += count
        return totals

    def reset(self) -> None:
        """Forget what was counted (between phases of a scenario)."""
        with self._lock:
            self.counts.clear()


def install(stack: Any, object_types: dict[str, tuple[str, ...]]) -> RequestMeter:
    """Append a meter to the offline account's request gate, for the given stacks and their object types.

    `stack` is an `OfflineStack`; `object_types` maps each of its stacks' names to its object types.
    """
    account = stack.account

    def resolve_role(access_key_id: str) -> str | None:
        principal = account.broker.resolve(access_key_id)
        return principal.role_name if principal is not None and principal.role_name else None

    meter = RequestMeter(resolve_role=resolve_role, object_types=dict(object_types))
    for deployed in [stack, *stack.others]:
        for role in deployed.deployment.of_type("AWS::IAM::Role"):
            meter.stacks_by_role[role.physical_id.rsplit("/", 1)[-1]] = deployed.stack_name
    account.gate.limits = (*account.gate.limits, meter)
    return meter
