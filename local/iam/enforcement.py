"""Authorize each signed request as AWS would: identity policies, resource policies, dependent actions.

`Enforcer.authorize(call, principal)` raises `AccessDenied` with the error code and message the
called service uses; moto_patches turns it into moto's error response. The administrator is allowed
everything; every other principal needs each `Check` of `operations.checks_for` to be allowed:

- explicit Deny in an identity or resource policy wins;
- KMS keys: allowed when the key policy allows the caller, or grants the caller's account (IAM
  delegation) and an identity policy allows;
- S3 buckets, SQS queues, SNS topics, Lambda functions: allowed when an identity policy or the
  resource policy allows (same account);
- everything else: an identity policy must allow.

Requests are taken as made over HTTPS (`aws:SecureTransport` true): AWS endpoints are HTTPS, the
offline endpoint's plain HTTP is an artifact of running on loopback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from local.iam.errors import ServiceError
from local.iam.operations import ApiCall, Check, UnmappedOperation, checks_for
from local.iam.policy import (
    Caller,
    Decision,
    Request,
    delegates_to_account,
    evaluate_identity,
    evaluate_resource_policy,
)
from local.iam.principals import CredentialBroker, Principal
from local.iam.resources import ResourceDirectory

LOG = logging.getLogger("local.iam")

# Error code and HTTP status of an authorization failure, per service (what the SDKs raise).
_DENIED_BY_SERVICE = {
    "sns": ("AuthorizationError", 403),
    "s3": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
    "iam": ("AccessDenied", 403),
    "cloudformation": ("AccessDenied", 403),
    "monitoring": ("AccessDenied", 403),
    "lambda": ("AccessDeniedException", 403),
}
# A dependent KMS action denied: the error the calling service reports.
_KMS_DENIED_BY_SERVICE = {"sns": ("KMSAccessDenied", 400), "s3": ("AccessDenied", 403)}


class AccessDenied(ServiceError):
    """A request AWS would refuse for lack of permission."""


@dataclass(frozen=True)
class Denial:
    """One refused request, kept for tests and for the harness's own diagnostics."""

    principal: str
    action: str
    resource: str
    reason: str
    at: datetime


@dataclass
class Enforcer:
    """The offline stack's authorization; `enabled=False` lets every signed request through."""

    broker: CredentialBroker
    directory: ResourceDirectory
    enabled: bool = True
    denials: list[Denial] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def context_for(self, principal: Principal, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The global condition keys of a request by `principal`."""
        principal_arn = principal.arn
        if principal.role_name:
            principal_arn = f"arn:aws:iam::{principal.account_id}:role/{principal.role_name}"
        return {
            "aws:SecureTransport": "true",
            "aws:PrincipalArn": principal_arn,
            "aws:PrincipalAccount": principal.account_id,
            "aws:RequestedRegion": self.directory.region,
            "aws:SourceIp": "127.0.0.1",
            "aws:CurrentTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **dict(extra or {}),
        }

    def authorize(self, call: ApiCall, principal: Principal) -> None:
        """Raise `AccessDenied` unless AWS would let `principal` make `call`."""
        if not self.enabled or principal.is_admin:
            return
        if call.service == "sts" and call.operation == "GetCallerIdentity":
            return  # always allowed, even under an explicit Deny
        try:
            checks = checks_for(call, self.directory)
        except UnmappedOperation as unmapped:
            LOG.error("offline IAM: %s (denied for %s)", unmapped, principal.arn)
            self._record(principal, f"{call.service}:{call.operation}", "?", str(unmapped))
            code, status = _DENIED_BY_SERVICE.get(call.service, ("AccessDeniedException", 400))
            raise AccessDenied(code, f"Offline stack: {unmapped}", status) from None
        for check in checks:
            decision, where = self.decide(principal, check)
            if decision is not Decision.ALLOW:
                self._deny(call, principal, check, decision, where)

    def decide(self, principal: Principal, check: Check) -> tuple[Decision, str]:
        """The decision for one check, and which kind of policy decided it."""
        request = Request(check.action, check.resource, self.context_for(principal, check.context))
        identity = evaluate_identity(self.broker.identity_policies(principal), request)
        caller = principal.caller
        if check.action.startswith("kms:"):
            key_policy = self.directory.key_policy(check.resource)
            direct = evaluate_resource_policy(key_policy, request, caller)
            if Decision.DENY in (identity, direct):
                return Decision.DENY, "explicit deny"
            if direct is Decision.ALLOW:
                return Decision.ALLOW, "key policy"
            if identity is Decision.ALLOW and delegates_to_account(key_policy, request, caller):
                return Decision.ALLOW, "identity-based policy"
            if identity is Decision.ALLOW:
                return Decision.IMPLICIT_DENY, "key policy"
            return Decision.IMPLICIT_DENY, "identity-based policy"
        resource_policy = self._resource_policy(check)
        on_resource = evaluate_resource_policy(resource_policy, request, caller)
        if Decision.DENY in (identity, on_resource):
            where = "resource-based policy" if on_resource is Decision.DENY else "identity-based policy"
            return Decision.DENY, where
        if Decision.ALLOW in (identity, on_resource):
            return Decision.ALLOW, ""
        return Decision.IMPLICIT_DENY, "identity-based policy"

    def _resource_policy(self, check: Check) -> str | None:
        service = check.action.split(":", 1)[0]
        if service == "s3":
            bucket = check.resource.split(":::", 1)[-1].split("/", 1)[0]
            return self.directory.bucket_policy(bucket) if bucket != "*" else None
        if service == "sqs":
            return self.directory.queue_policy(check.resource)
        if service == "sns":
            return self.directory.topic_policy(check.resource)
        if service == "lambda":
            return self.directory.function_policy(check.resource)
        return None

    def _deny(self, call: ApiCall, principal: Principal, check: Check, decision: Decision, where: str) -> None:
        if decision is Decision.DENY:
            reason = f"with an explicit deny in {'a ' + where if where else 'a policy'}"
        elif where == "key policy":
            reason = "because no resource-based policy allows the " + check.action + " action"
        else:
            reason = f"because no identity-based policy allows the {check.action} action"
        message = (
            f"User: {principal.arn} is not authorized to perform: {check.action} on resource: {check.resource} {reason}"
        )
        self._record(principal, check.action, check.resource, reason)
        LOG.info("offline IAM denied: %s", message)
        if check.dependent:
            code, status = _KMS_DENIED_BY_SERVICE.get(call.service, ("AccessDeniedException", 400))
        else:
            code, status = _DENIED_BY_SERVICE.get(call.service, ("AccessDeniedException", 400))
        raise AccessDenied(code, message, status)

    def _record(self, principal: Principal, action: str, resource: str, reason: str) -> None:
        with self._lock:
            self.denials.append(Denial(principal.arn, action, resource, reason, datetime.now(UTC)))

    def service_may(self, service: str, action: str, resource: str, context: Mapping[str, str]) -> bool:
        """Whether a resource policy lets an AWS service principal act on a resource (no IAM role involved)."""
        request = Request(action, resource, dict(context))
        caller = Caller(service=service)
        if action.startswith("kms:"):
            document = self.directory.key_policy(resource)
        else:
            document = self._resource_policy(Check(action, resource))
        return evaluate_resource_policy(document, request, caller) is Decision.ALLOW

    def principal_may(self, principal: Principal, action: str, resource: str, context: Mapping[str, str]) -> bool:
        """Whether `principal` may do `action` on `resource` (identity and resource policies)."""
        if not self.enabled or principal.is_admin:
            return True
        decision, _ = self.decide(principal, Check(action, resource, context=dict(context)))
        return decision is Decision.ALLOW
