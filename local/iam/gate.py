"""The door every signed request to moto passes: who is calling, is the signature right, may they, within limits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from local.iam.enforcement import Enforcer
from local.iam.errors import ServiceError
from local.iam.operations import ApiCall
from local.iam.principals import Credentials

LimitCheck = Callable[[ApiCall], None]
"""Raises a `ServiceError` when a request exceeds a service limit."""


@dataclass(frozen=True)
class SignedRequest:
    """How to check a request's SigV4 signature, in the called service's own error shapes."""

    access_key_id: str | None
    verify_signature: Callable[[Credentials], None]  # raises SignatureDoesNotMatch
    reject_unknown_key: Callable[[], NoReturn]  # raises InvalidClientTokenId (or S3's InvalidAccessKeyId)


@dataclass
class RequestGate:
    """Authenticates and authorizes (when the enforcer is on), then applies the service limits (always)."""

    enforcer: Enforcer
    limits: Sequence[LimitCheck] = field(default_factory=tuple)

    def admit(self, call: ApiCall, signed: SignedRequest) -> None:
        """Return if AWS would accept the request; raise the error AWS would answer otherwise."""
        if self.enforcer.enabled:
            if not signed.access_key_id:
                raise ServiceError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
            principal = self.enforcer.broker.resolve(signed.access_key_id)
            if principal is None:
                signed.reject_unknown_key()
            signed.verify_signature(principal.credentials)
            self.enforcer.authorize(call, principal)
        for limit in self.limits:
            limit(call)
