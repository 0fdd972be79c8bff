"""`iam:SimulatePrincipalPolicy` offline, answered by the evaluator that enforces every request.

moto has no policy simulator. `cpexport verify` asks it, on AWS and offline alike, whether each role
of the stack may do each action the code calls on the real resource with the condition keys the real
call carries; offline the answer comes from the same identity policies and the same evaluation
(`cpexport_cli.policy`) that authorize the role's real requests, so a grant the simulation reports
missing is one the real call is refused for.

Modelled as AWS documents it: the identity-based policies of the user or role of
`PolicySourceArn` (inline, attached, its groups'), each action against each resource (`*` when none
is given), only the condition keys of `ContextEntries` (a key a condition needs but the request
does not carry is listed in `MissingContextValues`), and an optional `ResourcePolicy` evaluated for
`CallerArn` (a user; AWS takes no role there). The decision is `allowed`, `explicitDeny` or
`implicitDeny`, with the statements that decided it (`MatchedStatements`: the policy's name and kind;
no line and column positions). Not modelled: permissions boundaries, session policies, SCPs, paging
(`MaxItems`/`Marker`: every result is returned at once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cpexport_cli.policy import (
    Caller,
    Decision,
    Request,
    UnsupportedPolicyElement,
    applicable_statements,
    evaluate_resource_policy,
    statements_of,
    wildcard_match,
)

from local.iam.principals import CredentialBroker, Credentials, PolicySource, Principal

EVAL_DECISION = {Decision.ALLOW: "allowed", Decision.DENY: "explicitDeny", Decision.IMPLICIT_DENY: "implicitDeny"}
_SOURCE = re.compile(r"arn:aws[\w-]*:iam::(?P<account>\d{12}):(?P<kind>role|user)/(?:.*/)?(?P<name>[^/]+)")


class SimulationRefused(ValueError):
    """The request is not one AWS would simulate (AWS answers InvalidInput)."""


class NoSuchPrincipal(LookupError):
    """`PolicySourceArn` names a role or user that does not exist (AWS answers NoSuchEntity)."""


def context_of(entries: Iterable[Mapping[str, Any]]) -> dict[str, str | list[str]]:
    """The request context of `ContextEntries` (a multivalued key keeps its list)."""
    context: dict[str, str | list[str]] = {}
    for entry in entries:
        values = [str(value) for value in entry.get("ContextKeyValues") or []]
        kind = str(entry.get("ContextKeyType") or "string")
        context[str(entry["ContextKeyName"])] = values if kind.endswith("List") else (values[0] if values else "")
    return context


def principal_of(broker: CredentialBroker, source_arn: str) -> Principal:
    """The principal whose policies are simulated: a role or a user of the broker's account."""
    match = _SOURCE.fullmatch(source_arn)
    if match is None or match.group("account") != broker.account_id:
        raise SimulationRefused(f"PolicySourceArn {source_arn} is not a user or role of account {broker.account_id}")
    anonymous = Credentials("", "")
    if match.group("kind") == "role":
        return Principal(source_arn, broker.account_id, anonymous, role_name=match.group("name"))
    return Principal(source_arn, broker.account_id, anonymous, user_name=match.group("name"))


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    keys: set[str] = set()
    for block in (statement.get("Condition") or {}).values():
        keys.update(str(key) for key in block)
    return keys


def _relevant(statement: Mapping[str, Any], request: Request) -> bool:
    """Whether a statement's Action and Resource cover the request (its condition aside)."""

    def listed(value: Any) -> list[str]:
        return [str(item) for item in (value if isinstance(value, list) else [value])]

    if "NotAction" in statement:
        if any(wildcard_match(p, request.action, ignore_case=True) for p in listed(statement["NotAction"])):
            return False
    elif not any(wildcard_match(p, request.action, ignore_case=True) for p in listed(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        return not any(wildcard_match(p, request.resource) for p in listed(statement["NotResource"]))
    return "Resource" not in statement or any(
        wildcard_match(p, request.resource) for p in listed(statement["Resource"])
    )


def evaluate(
    sources: Sequence[PolicySource],
    action: str,
    resource: str,
    context: Mapping[str, str | list[str]],
    resource_policy: str | None = None,
    caller: Caller | None = None,
) -> dict[str, Any]:
    """One `EvaluationResult`: the decision for `action` on `resource` and the statements behind it."""
    request = Request(action, resource, dict(context))
    matched: list[tuple[str, str, str]] = []  # (effect, policy name, kind)
    missing: set[str] = set()
    for source in sources:
        for match in applicable_statements([source.document], request):
            matched.append((match.effect, source.name, source.kind))
        for statement in statements_of(source.document):
            if _relevant(statement, request):
                missing |= {key for key in _condition_keys(statement) if key.lower() not in _lowered(context)}
    on_resource = Decision.IMPLICIT_DENY
    if resource_policy:
        on_resource = evaluate_resource_policy(resource_policy, request, caller or Caller())
        for match in applicable_statements([resource_policy], request, caller or Caller()):
            matched.append((match.effect, "ResourcePolicy", "resource"))
    effects = {effect for effect, _, _ in matched}
    if "Deny" in effects or on_resource is Decision.DENY:
        decision, deciding = Decision.DENY, "Deny"
    elif "Allow" in effects:
        decision, deciding = Decision.ALLOW, "Allow"
    else:
        decision, deciding = Decision.IMPLICIT_DENY, ""
    statements = []
    for effect, name, kind in matched:
        entry = {"SourcePolicyId": name, "SourcePolicyType": kind}
        if effect == deciding and entry not in statements:
            statements.append(entry)
    return {
        "EvalActionName": action,
        "EvalResourceName": resource,
        "EvalDecision": EVAL_DECISION[decision],
        "MatchedStatements": statements,
        "MissingContextValues": sorted(missing),
    }


def _lowered(context: Mapping[str, Any]) -> set[str]:
    return {key.lower() for key in context}


def simulate_principal_policy(broker: CredentialBroker, params: Mapping[str, Any]) -> dict[str, Any]:
    """The `SimulatePrincipalPolicy` result for the request's parameters (as botocore's model names them)."""
    principal = principal_of(broker, str(params.get("PolicySourceArn") or ""))
    if not broker.exists(principal):
        raise NoSuchPrincipal(f"The role or user {principal.arn} cannot be found.")
    actions = [str(action) for action in params.get("ActionNames") or []]
    if not actions:
        raise SimulationRefused("ActionNames must name at least one action")
    resources = [str(resource) for resource in params.get("ResourceArns") or []] or ["*"]
    context = context_of(params.get("ContextEntries") or [])
    caller = None
    if params.get("CallerArn"):
        caller_arn = str(params["CallerArn"])
        caller = Caller(arn=caller_arn, account_id=caller_arn.split(":")[4] if caller_arn.count(":") >= 5 else "")
    sources = broker.identity_policy_sources(principal)
    try:
        results = [
            evaluate(sources, action, resource, context, params.get("ResourcePolicy"), caller)
            for action in actions
            for resource in resources
        ]
    except UnsupportedPolicyElement as unsupported:
        raise SimulationRefused(
            f"the policies use something the offline simulator does not model: {unsupported}"
        ) from None
    return {"EvaluationResults": results, "IsTruncated": False}
