"""Who is calling: access keys resolved to principals through moto's in-process IAM and STS backends.

Three kinds of callers exist offline:
- the administrator: the IAM user `offline-admin` (created by `CredentialBroker.create_admin`, with an
  allow-everything inline policy), whose keys `python -m local serve` prints; the conventional
  `testing`/`testing` pair of local AWS tools means that same administrator;
- IAM users created by tests, with their own policies;
- assumed-role sessions: each Lambda sandbox, the state machine's interpreter, the Scheduler and
  EventBridge run with temporary credentials of their role, obtained the way the service would (the
  role's trust policy must let that service assume it, else the call fails as it does on AWS).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from local.iam.policy import Caller, Decision, Request, evaluate_resource_policy

PARTITION = "aws"
ADMIN_USER_NAME = "offline-admin"
# The key pair local AWS tools use by convention; offline it is the administrator.
CONVENTIONAL_ACCESS_KEY_ID = "testing"
CONVENTIONAL_SECRET_ACCESS_KEY = "testing"
ADMIN_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "OfflineAdministrator", "Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
)


class UntrustedRole(Exception):
    """A service tried to assume a role whose trust policy does not let it (AWS refuses it too)."""


@dataclass(frozen=True)
class Credentials:
    """A key pair, with the session token of temporary credentials."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        """As the AWS_* variables a process (a Lambda sandbox) reads."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    def client_arguments(self) -> dict[str, str]:
        """As keyword arguments of `boto3.client`."""
        arguments = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        if self.session_token:
            arguments["aws_session_token"] = self.session_token
        return arguments


@dataclass(frozen=True)
class Principal:
    """The identity behind an access key."""

    arn: str
    account_id: str
    credentials: Credentials
    is_admin: bool = False
    user_name: str = ""
    role_name: str = ""

    @property
    def caller(self) -> Caller:
        """As the caller of a request (for resource policies)."""
        return Caller(arn=self.arn, account_id=self.account_id)


@dataclass(frozen=True)
class PolicySource:
    """One identity-based policy: its name, its kind (`role`, `user`, `group`, `aws-managed`,
    `user-managed`, as `iam:SimulatePrincipalPolicy` names them) and its document."""

    name: str
    kind: str
    document: str


def _managed_document(policy: Any) -> str:
    return _text(next(version.document for version in policy.versions if version.is_default))


def _attached(policy: Any) -> PolicySource:
    kind = "aws-managed" if str(policy.arn).startswith(f"arn:{PARTITION}:iam::aws:") else "user-managed"
    return PolicySource(str(policy.name), kind, _managed_document(policy))


def _text(document: Any) -> str:
    # moto keeps some documents as parsed dicts, some as JSON text.
    return document if isinstance(document, str) else json.dumps(document)


class CredentialBroker:
    """Resolves access keys and hands out role credentials, reading moto's backends in-process."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._admin: Principal | None = None
        self._sessions: dict[tuple[str, str], Credentials] = {}
        self._lock = threading.Lock()

    @property
    def _iam(self) -> Any:
        return iam_backends[self.account_id][PARTITION]

    @property
    def _sts(self) -> Any:
        return sts_backends[self.account_id][PARTITION]

    # ------------------------------------------------------------------ the administrator
    def create_admin(self) -> Credentials:
        """Create the administrator user (once per moto state) and return its access key."""
        with self._lock:
            if self._admin is not None and ADMIN_USER_NAME in self._iam.users:
                return self._admin.credentials
            iam = self._iam
            if ADMIN_USER_NAME not in iam.users:
                iam.create_user(self.region, ADMIN_USER_NAME)
                iam.put_user_policy(ADMIN_USER_NAME, "AdministratorAccess", ADMIN_POLICY)
            key = iam.create_access_key(ADMIN_USER_NAME)
            credentials = Credentials(key.access_key_id, key.secret_access_key)
            user = iam.get_user(ADMIN_USER_NAME)
            self._admin = Principal(user.arn, self.account_id, credentials, is_admin=True, user_name=ADMIN_USER_NAME)
            self._sessions.clear()
            return credentials

    @property
    def admin(self) -> Principal:
        """The administrator (after `create_admin`)."""
        if self._admin is None:
            raise RuntimeError("create_admin() first")
        return self._admin

    # ------------------------------------------------------------------ resolving keys
    def resolve(self, access_key_id: str) -> Principal | None:
        """The principal of an access key, or None when no such key exists (InvalidClientTokenId)."""
        if access_key_id == CONVENTIONAL_ACCESS_KEY_ID and self._admin is not None:
            return Principal(
                self._admin.arn,
                self.account_id,
                Credentials(CONVENTIONAL_ACCESS_KEY_ID, CONVENTIONAL_SECRET_ACCESS_KEY),
                is_admin=True,
                user_name=ADMIN_USER_NAME,
            )
        for user in list(self._iam.users.values()):
            for key in user.access_keys:
                if key.access_key_id == access_key_id and key.status == "Active":
                    credentials = Credentials(key.access_key_id, key.secret_access_key)
                    is_admin = self._admin is not None and user.name == ADMIN_USER_NAME
                    return Principal(user.arn, self.account_id, credentials, is_admin=is_admin, user_name=user.name)
        session = self._sts.get_assumed_role_from_access_key(access_key_id)
        if session is None:
            return None
        role_name = session.role_arn.split("/")[-1]
        credentials = Credentials(session.access_key_id, session.secret_access_key, session.session_token)
        arn = f"arn:{PARTITION}:sts::{self.account_id}:assumed-role/{role_name}/{session.session_name}"
        return Principal(arn, self.account_id, credentials, role_name=role_name)

    def exists(self, principal: Principal) -> bool:
        """Whether the principal's role or user exists (an administrator or a session of one that does)."""
        if principal.role_name:
            return principal.role_name in {role.name for role in self._iam.roles.values()}
        return bool(principal.user_name) and principal.user_name in self._iam.users

    def identity_policies(self, principal: Principal) -> list[str]:
        """Every identity-based policy document of the principal (inline, attached, groups)."""
        return [source.document for source in self.identity_policy_sources(principal)]

    def identity_policy_sources(self, principal: Principal) -> list[PolicySource]:
        """Every identity-based policy of the principal with its name and kind, as IAM's simulator names them."""
        iam = self._iam
        sources: list[PolicySource] = []
        if principal.role_name:
            if principal.role_name not in {role.name for role in iam.roles.values()}:
                return []  # a deleted role's sessions can do nothing
            for name in iam.list_role_policies(principal.role_name):
                sources.append(PolicySource(name, "role", _text(iam.get_role_policy(principal.role_name, name)[1])))
            attached, _ = iam.list_attached_role_policies(principal.role_name)
            sources.extend(_attached(policy) for policy in attached)
        elif principal.user_name:
            user = iam.get_user(principal.user_name)
            sources.extend(PolicySource(name, "user", _text(document)) for name, document in user.policies.items())
            attached, _ = iam.list_attached_user_policies(principal.user_name)
            sources.extend(_attached(policy) for policy in attached)
            for group in iam.get_groups_for_user(principal.user_name):
                sources.extend(
                    PolicySource(name, "group", _text(document)) for name, document in group.policies.items()
                )
                attached, _ = iam.list_attached_group_policies(group.name)
                sources.extend(_attached(policy) for policy in attached)
        return sources

    # ------------------------------------------------------------------ service roles
    def role_credentials(self, role_arn: str, service: str) -> Credentials:
        """Temporary credentials of `role_arn`, assumed the way `service` (e.g. lambda.amazonaws.com) does.

        Raises `UntrustedRole` when the role does not exist or its trust policy does not let the
        service assume it. Sessions are cached per (role, service): moto does not expire them.
        """
        with self._lock:
            cached = self._sessions.get((role_arn, service))
        if cached is not None:
            return cached
        try:
            role = self._iam.get_role_by_arn(role_arn)
        except Exception as error:
            raise UntrustedRole(f"{service} cannot assume {role_arn}: the role does not exist") from error
        trust = evaluate_resource_policy(
            role.assume_role_policy_document,
            Request("sts:AssumeRole", role_arn),
            Caller(service=service),
        )
        if trust is not Decision.ALLOW:
            raise UntrustedRole(f"{service} cannot assume {role_arn}: its trust policy does not allow {service}")
        session = self._sts.assume_role(
            region_name=self.region,
            role_session_name=f"{service.split('.')[0]}-{uuid.uuid4().hex[:12]}",
            role_arn=role_arn,
            policy="",
            duration=43200,
            external_id="",
        )
        credentials = Credentials(session.access_key_id, session.secret_access_key, session.session_token)
        with self._lock:
            self._sessions[(role_arn, service)] = credentials
        return credentials

    def forget_sessions(self) -> None:
        """Drop cached role sessions (the next `role_credentials` assumes afresh)."""
        with self._lock:
            self._sessions.clear()
