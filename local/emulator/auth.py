"""Who may do what: the one object the emulator asks about keys, identity policies and resource policies.

``Authorizer`` is the contract (a moto-backed implementation lives with the harness); this module also
holds the two small implementations the emulator ships: ``StaticAuthorizer`` (an all-allowed
administrator, the default) and ``PolicyAuthorizer`` (explicit grants, for tests that prove denials).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from local.emulator.errors import AccessDeniedError

SERVICE_PRINCIPAL = "app-integrations.amazonaws.com"  # the principal export jobs write to S3 and KMS as
DEFAULT_ACCOUNT_ID = "123456789012"
# The dummy keys offline callers sign with: ``testing`` (the README, the harness) and the pair moto's
# ``mock_aws`` puts into the environment while it is active (so in-process handler tests keep working).
OFFLINE_KEYS = {"testing": "testing", "FOOBARKEY": "FOOBARSECRET"}


@dataclass(frozen=True)
class CallerCredentials:
    """An access key as the emulator knows it: its secret, its session token and whose it is.

    ``session_token`` None: a long-term key. The emulator then does not look at the request's
    X-Amz-Security-Token (AWS would refuse a stray one; the offline stack signs with ``testing`` plus a
    dummy token). A key with a token must be used with exactly that token.
    """

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    principal_arn: str  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION or arn:aws:iam::ACCOUNT:user/NAME


@dataclass(frozen=True)
class AccessRequest:
    """One IAM question: may ``action`` be done on ``resource`` with these condition keys."""

    action: str  # "app-integrations:CreateDataIntegration", "profile:CreateSnapshot", "kms:CreateGrant", "s3:PutObject"
    resource: str  # an ARN
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys


class Authorizer(Protocol):
    """Answers the emulator's authentication and authorization questions."""

    def credentials(self, access_key_id: str) -> CallerCredentials | None:
        """The key's secret, token and principal; None = unknown key."""
        ...

    def is_allowed(self, principal_arn: str, request: AccessRequest) -> bool:
        """Whether the caller's identity policies allow ``request``."""
        ...

    def service_may(self, service_principal: str, request: AccessRequest) -> bool:
        """Whether the resource policy (bucket / KMS key) grants ``request`` to the service principal."""
        ...


def denial_message(principal_arn: str, request: AccessRequest) -> str:
    """AccessDeniedException's message in AWS's words for a missing identity-based permission."""
    return (
        f"User: {principal_arn} is not authorized to perform: {request.action} on resource: {request.resource} "
        f"because no identity-based policy allows the {request.action} action"
    )


def require_allowed(authorizer: Authorizer, principal_arn: str, request: AccessRequest) -> None:
    """Raise AccessDeniedException (AWS's message) unless the caller's policies allow ``request``."""
    if not authorizer.is_allowed(principal_arn, request):
        raise AccessDeniedError(denial_message(principal_arn, request))


class StaticAuthorizer:
    """Fixed keys, each an administrator: every action allowed, and the service may write anywhere.

    ``keys`` maps an access key id to its secret (a long-term key of ``arn:aws:iam::ACCOUNT:user/KEY``)
    or to full ``CallerCredentials``. Default: ``OFFLINE_KEYS`` (``testing``/``testing`` and moto's
    ``mock_aws`` pair ``FOOBARKEY``/``FOOBARSECRET``).
    """

    def __init__(
        self, keys: Mapping[str, str | CallerCredentials] | None = None, *, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> None:
        self._keys: dict[str, CallerCredentials] = {}
        for key_id, value in (keys if keys is not None else OFFLINE_KEYS).items():
            if isinstance(value, CallerCredentials):
                self._keys[key_id] = value
            else:
                self._keys[key_id] = CallerCredentials(
                    access_key_id=key_id,
                    secret_access_key=value,
                    session_token=None,
                    principal_arn=f"arn:aws:iam::{account_id}:user/{key_id}",
                )

    def credentials(self, access_key_id: str) -> CallerCredentials | None:
        """The key's credentials; None for a key not given at construction."""
        return self._keys.get(access_key_id)

    def is_allowed(self, principal_arn: str, request: AccessRequest) -> bool:
        """Always: every known key is an administrator."""
        return True

    def service_may(self, service_principal: str, request: AccessRequest) -> bool:
        """Always: bucket and key policies are assumed to grant the service."""
        return True


@lru_cache(maxsize=1024)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: '*' any run of characters (':' and '/' included), '?' exactly one.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches an IAM-style ``pattern`` (``*`` and ``?``)."""
    return _wildcard(pattern, ignore_case).match(value) is not None


@dataclass(frozen=True)
class Grant:
    """One Allow statement: an action and a resource (IAM wildcards), plus StringLike conditions.

    ``conditions`` maps a condition key to a pattern the request's context value must match; a key
    missing from the request's context does not match (as IAM treats a missing key in StringLike).
    """

    action: str
    resource: str = "*"
    conditions: Mapping[str, str] = field(default_factory=dict)

    def allows(self, request: AccessRequest) -> bool:
        """Whether this statement allows ``request``."""
        if not wildcard_match(self.action, request.action, ignore_case=True):
            return False
        if not wildcard_match(self.resource, request.resource):
            return False
        return all(
            key in request.context and wildcard_match(pattern, request.context[key])
            for key, pattern in self.conditions.items()
        )


class PolicyAuthorizer:
    """Keys plus explicit Allow grants: what a caller's identity policies and the resource policies allow.

    Anything not granted is denied (IAM's implicit deny). ``identity_grants`` maps a principal ARN to its
    grants; ``service_grants`` maps a service principal (``app-integrations.amazonaws.com``) to what the
    bucket and key policies grant it.
    """

    def __init__(
        self,
        credentials: Iterable[CallerCredentials],
        identity_grants: Mapping[str, Iterable[Grant]],
        service_grants: Mapping[str, Iterable[Grant]] | None = None,
    ) -> None:
        self._keys = {c.access_key_id: c for c in credentials}
        self._identity = {principal: tuple(grants) for principal, grants in identity_grants.items()}
        self._service = {principal: tuple(grants) for principal, grants in (service_grants or {}).items()}

    def credentials(self, access_key_id: str) -> CallerCredentials | None:
        """The key's credentials; None for an unknown key."""
        return self._keys.get(access_key_id)

    def is_allowed(self, principal_arn: str, request: AccessRequest) -> bool:
        """Whether any of the principal's grants allows ``request``."""
        return any(grant.allows(request) for grant in self._identity.get(principal_arn, ()))

    def service_may(self, service_principal: str, request: AccessRequest) -> bool:
        """Whether any resource-policy grant to the service principal allows ``request``."""
        return any(grant.allows(request) for grant in self._service.get(service_principal, ()))
