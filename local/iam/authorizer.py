"""`MotoAuthorizer`: the emulator's `Authorizer` (local/emulator/auth.py) answered from moto's IAM state.

The AppIntegrations emulator verifies SigV4 with `credentials`, asks `is_allowed` for the caller's
own permissions (app-integrations:*, and dependent actions such as profile:CreateSnapshot or
kms:CreateGrant), and `service_may` whether a resource policy (the bucket policy, the key policy)
lets the service principal (app-integrations.amazonaws.com) act on the destination.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from local.iam.enforcement import Enforcer
from local.iam.principals import Credentials, Principal


@dataclass(frozen=True)
class CallerCredentials:
    """The same shape as `local.emulator.auth.CallerCredentials` (used until that module exists)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    principal_arn: str


class AccessRequestLike(Protocol):
    """What the emulator passes: `local.emulator.auth.AccessRequest`."""

    @property
    def action(self) -> str: ...

    @property
    def resource(self) -> str: ...

    @property
    def context(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class AccessRequest:
    """A stand-in for `local.emulator.auth.AccessRequest` in this package's own tests."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def _credentials_class() -> Any:
    try:
        from local.emulator import auth
    except ImportError:
        return CallerCredentials
    return getattr(auth, "CallerCredentials", CallerCredentials)


_ROLE_SESSION = re.compile(r"arn:aws[\w-]*:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)")
_USER = re.compile(r"arn:aws[\w-]*:iam::(?P<account>\d{12}):user/(?:.*/)?(?P<user>[^/]+)")


class MotoAuthorizer:
    """Implements the emulator's Authorizer protocol against moto's in-process IAM/STS and resources."""

    def __init__(self, enforcer: Enforcer) -> None:
        self.enforcer = enforcer
        self._credentials_class = _credentials_class()

    def credentials(self, access_key_id: str) -> Any:
        """The caller's credentials for SigV4 verification, or None for an unknown key."""
        principal = self.enforcer.broker.resolve(access_key_id)
        if principal is None:
            return None
        secret = principal.credentials
        return self._credentials_class(
            access_key_id=secret.access_key_id,
            secret_access_key=secret.secret_access_key,
            session_token=secret.session_token,
            principal_arn=principal.arn,
        )

    def is_allowed(self, principal_arn: str, request: AccessRequestLike) -> bool:
        """Whether the caller's identity policies (and the resource's policy, for KMS) allow the action."""
        principal = self._principal(principal_arn)
        if principal is None:
            return False
        context = self.enforcer.context_for(principal, request.context)
        return self.enforcer.principal_may(principal, request.action, request.resource, context)

    def service_may(self, service_principal: str, request: AccessRequestLike) -> bool:
        """Whether the resource policy of `request.resource` (bucket or key) grants the service principal."""
        context = {"aws:SecureTransport": "true", **dict(request.context)}
        return self.enforcer.service_may(service_principal, request.action, request.resource, context)

    def _principal(self, arn: str) -> Principal | None:
        broker = self.enforcer.broker
        anonymous = Credentials("", "")
        if (match := _ROLE_SESSION.fullmatch(arn)) is not None:
            return Principal(arn, match.group("account"), anonymous, role_name=match.group("role"))
        if (match := _USER.fullmatch(arn)) is not None:
            admin = broker.admin
            is_admin = admin.arn == arn
            return Principal(arn, match.group("account"), anonymous, is_admin=is_admin, user_name=match.group("user"))
        return None
