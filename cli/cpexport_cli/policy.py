"""IAM policy evaluation: identity policies and resource policies, as AWS's evaluation logic decides.

One evaluator for two users: the offline stack authorizes every request with it (`local/iam`), and
`cpexport verify` evaluates the bucket and key policies it reads from AWS with it (there is no AWS
API that simulates a resource policy for a service principal such as app-integrations.amazonaws.com).

Why not moto's `IAMPolicy`: it denies when an *Allow* statement's condition does not hold (AWS
ignores that statement), matches Action case-sensitively and Resource with an unescaped regex
(`.` matches anything), knows only `StringEquals`, silently ignores every other condition operator,
and has no Principal matching for service principals. A strict offline stack needs all of these, so
this module implements the documented rules in one place; unknown condition operators raise.

Rules implemented (IAM User Guide, "Policy evaluation logic" and "Condition operators"):
- an explicit Deny that applies wins; otherwise an Allow that applies allows; otherwise implicit deny;
- Action/NotAction match case-insensitively with `*` and `?`; Resource/NotResource case-sensitively;
- Principal/NotPrincipal: `*`, `{"AWS": ...}` (a principal ARN, an account id or
  `arn:aws:iam::ACCOUNT:root` for the whole account) and `{"Service": ...}`;
- Condition: every operator block and every key in it must hold (AND); several values of one key
  are alternatives (OR); keys are case-insensitive; `...IfExists` holds when the key is missing;
  negated operators hold when the key is missing; `ForAnyValue:` / `ForAllValues:` for multivalued keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any


class Decision(Enum):
    """The outcome of evaluating policies for one request."""

    ALLOW = "allow"
    DENY = "deny"  # an explicit Deny applies
    IMPLICIT_DENY = "implicit-deny"  # nothing allows it


class UnsupportedPolicyElement(ValueError):
    """A policy uses something this evaluator does not implement: fail loudly rather than guess."""


@dataclass(frozen=True)
class Caller:
    """Who makes a request: an IAM principal (`arn`, `account_id`) or an AWS service (`service`)."""

    arn: str = ""
    account_id: str = ""
    service: str = ""

    @property
    def is_service(self) -> bool:
        """True for a service principal such as `events.amazonaws.com`."""
        return bool(self.service)


@dataclass(frozen=True)
class Request:
    """One action on one resource, with the condition keys of its request context."""

    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards are only * and ?: every other character is literal (fnmatch would treat [..]).
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's `*` / `?` matching."""
    return _glob(pattern, ignore_case).match(value) is not None


def arn_match(pattern: str, arn: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts matched on its own, with wildcards."""
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return pattern == arn
    return all(wildcard_match(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _action_matches(patterns: Any, action: str) -> bool:
    return any(wildcard_match(str(p), action, ignore_case=True) for p in _as_list(patterns))


def _resource_matches(patterns: Any, resource: str) -> bool:
    return any(wildcard_match(str(p), resource) for p in _as_list(patterns))


def account_of(principal: str) -> str:
    """The account id an `AWS` principal element names (an id, a root ARN, or any principal ARN)."""
    if re.fullmatch(r"\d{12}", principal):
        return principal
    parts = principal.split(":")
    return parts[4] if len(parts) > 4 else ""


def is_account_principal(principal: str) -> bool:
    """`123456789012` or `arn:aws:iam::123456789012:root`: the account, i.e. "let IAM decide"."""
    return bool(re.fullmatch(r"\d{12}", principal)) or bool(re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:root", principal))


def _principal_matches(element: Any, caller: Caller) -> tuple[bool, bool]:
    """(matches, only_through_the_account): whether the Principal element names the caller."""
    if element == "*":
        return True, False
    if not isinstance(element, Mapping):
        raise UnsupportedPolicyElement(f"Principal {element!r}")
    unknown = set(element) - {"AWS", "Service", "Federated", "CanonicalUser"}
    if unknown:
        raise UnsupportedPolicyElement(f"Principal types {sorted(unknown)}")
    if caller.is_service:
        return caller.service in {str(s) for s in _as_list(element.get("Service"))}, False
    through_account = False
    for principal in (str(p) for p in _as_list(element.get("AWS"))):
        if principal == "*" or principal == caller.arn:
            return True, False
        if _assumed_role_session_of(caller.arn) == principal:
            return True, False
        if is_account_principal(principal) and account_of(principal) == caller.account_id:
            through_account = True
    return through_account, through_account


def _assumed_role_session_of(arn: str) -> str:
    # A role named in a Principal matches every session of that role.
    match = re.fullmatch(r"arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/.+", arn)
    return f"arn:{match.group(1)}:iam::{match.group(2)}:role/{match.group(3)}" if match else ""


_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _compare(operator: str, expected: str, actual: str) -> bool:
    if operator in ("StringEquals", "StringNotEquals"):
        return actual == expected
    if operator in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == expected.lower()
    if operator in ("StringLike", "StringNotLike"):
        return wildcard_match(expected, actual)
    if operator in ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"):
        return arn_match(expected, actual)
    if operator == "Bool":
        return actual.lower() == expected.lower()
    if operator.startswith("Numeric"):
        a, e = float(actual), float(expected)
        return {
            "NumericEquals": a == e,
            "NumericNotEquals": a != e,
            "NumericLessThan": a < e,
            "NumericLessThanEquals": a <= e,
            "NumericGreaterThan": a > e,
            "NumericGreaterThanEquals": a >= e,
        }[operator]
    raise UnsupportedPolicyElement(f"condition operator {operator}")


def _condition_holds(operator_text: str, key_values: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    qualifier, _, operator = operator_text.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedPolicyElement(f"condition qualifier {qualifier}")
    lowered = {key.lower(): value for key, value in context.items()}
    for key, expected_raw in key_values.items():
        expected = [str(v) for v in _as_list(expected_raw)]
        present = key.lower() in lowered
        actual = [str(v) for v in _as_list(lowered.get(key.lower()))]
        if operator == "Null":
            # Null: true means "the key is absent".
            if (expected[0].lower() == "true") != (not present):
                return False
            continue
        if not present:
            if if_exists or operator in _NEGATED or qualifier == "ForAllValues":
                continue
            return False
        negated = operator in _NEGATED
        outcomes = [any(_compare(operator, e, value) for e in expected) != negated for value in actual]
        holds = all(outcomes) if qualifier == "ForAllValues" else any(outcomes)
        if not holds:
            return False
    return True


def conditions_hold(condition: Mapping[str, Any] | None, context: Mapping[str, Any]) -> bool:
    """Whether every operator block of a statement's Condition holds in the request context."""
    return all(_condition_holds(op, keys, context) for op, keys in (condition or {}).items())


def statements_of(document: Mapping[str, Any] | str) -> list[dict[str, Any]]:
    """The statements of a policy document (a dict or its JSON text)."""
    if isinstance(document, str):
        return [dict(s) for s in _parsed_statements(document)]
    return [dict(s) for s in _as_list(document.get("Statement", []))]


@lru_cache(maxsize=1024)
def _parsed_statements(text: str) -> tuple[Mapping[str, Any], ...]:
    # Every request of a role evaluates the same few documents: parse each text once.
    import json

    return tuple(_as_list(json.loads(text).get("Statement", [])))


@dataclass(frozen=True)
class StatementMatch:
    """A statement that applies to a request, and whether it names the caller only as its account."""

    effect: str
    sid: str
    through_account: bool = False


def applicable_statements(
    documents: Iterable[Mapping[str, Any] | str], request: Request, caller: Caller | None = None
) -> list[StatementMatch]:
    """Statements of `documents` that apply to `request` (with `caller` for resource policies)."""
    found: list[StatementMatch] = []
    for document in documents:
        statements = _parsed_statements(document) if isinstance(document, str) else statements_of(document)
        for statement in statements:
            if "NotAction" in statement:
                if _action_matches(statement["NotAction"], request.action):
                    continue
            elif not _action_matches(statement.get("Action"), request.action):
                continue
            if "NotResource" in statement:
                if _resource_matches(statement["NotResource"], request.resource):
                    continue
            elif "Resource" in statement and not _resource_matches(statement["Resource"], request.resource):
                continue
            through_account = False
            if caller is not None:
                if "NotPrincipal" in statement:
                    raise UnsupportedPolicyElement("NotPrincipal")
                if "Principal" not in statement:
                    continue
                matches, through_account = _principal_matches(statement["Principal"], caller)
                if not matches:
                    continue
            if not conditions_hold(statement.get("Condition"), request.context):
                continue
            found.append(StatementMatch(str(statement.get("Effect")), str(statement.get("Sid", "")), through_account))
    return found


def decide(matches: Iterable[StatementMatch]) -> Decision:
    """Deny wins over Allow; nothing that applies means an implicit deny."""
    effects = [m.effect for m in matches]
    if "Deny" in effects:
        return Decision.DENY
    return Decision.ALLOW if "Allow" in effects else Decision.IMPLICIT_DENY


def evaluate_identity(documents: Iterable[Mapping[str, Any] | str], request: Request) -> Decision:
    """Evaluate a principal's identity-based policies for one request."""
    return decide(applicable_statements(documents, request))


def evaluate_resource_policy(document: Mapping[str, Any] | str | None, request: Request, caller: Caller) -> Decision:
    """Evaluate a resource-based policy for a caller; an account principal does not allow by itself."""
    if not document:
        return Decision.IMPLICIT_DENY
    matches = applicable_statements([document], request, caller)
    if any(m.effect == "Deny" for m in matches):
        return Decision.DENY
    direct = [m for m in matches if m.effect == "Allow" and not m.through_account]
    return Decision.ALLOW if direct else Decision.IMPLICIT_DENY


def delegates_to_account(document: Mapping[str, Any] | str | None, request: Request, caller: Caller) -> bool:
    """Whether the resource policy grants the action to the caller's account (so IAM policies count)."""
    if not document:
        return False
    return any(m.effect == "Allow" and m.through_account for m in applicable_statements([document], request, caller))


__all__ = [
    "Caller",
    "Decision",
    "Request",
    "StatementMatch",
    "UnsupportedPolicyElement",
    "account_of",
    "applicable_statements",
    "arn_match",
    "conditions_hold",
    "decide",
    "delegates_to_account",
    "evaluate_identity",
    "evaluate_resource_policy",
    "is_account_principal",
    "statements_of",
    "wildcard_match",
]
