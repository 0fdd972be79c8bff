"""IAM policy evaluation offline: the installed CLI's evaluator (`cpexport_cli.policy`), one for both.

`cpexport verify` evaluates the bucket and key policies AWS returns with the same rules the offline
stack enforces, so a statement the offline stack refuses is one `verify` reports.
"""

from cpexport_cli.policy import (
    Caller,
    Decision,
    Request,
    StatementMatch,
    UnsupportedPolicyElement,
    account_of,
    applicable_statements,
    arn_match,
    conditions_hold,
    decide,
    delegates_to_account,
    evaluate_identity,
    evaluate_resource_policy,
    is_account_principal,
    statements_of,
    wildcard_match,
)

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
