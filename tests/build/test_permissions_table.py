"""The table of what each role calls (`cpexport_cli.permissions`) against the code and the template.

The offline stack authorizes every request with the table's actions and dependent actions, and
`cpexport verify` simulates its rows on AWS; these tests keep it honest on both ends: every boto3
call a client of `cpexport.clients` makes has a row, and every action the template grants a role is
one a row of that role explains.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase
from pathlib import Path

import boto3
import pytest
from cpexport_cli import permissions

from tests.build.cloudformation import ROOT, attached_policy_statements, deploy, role_statements

CLIENTS = ROOT / "layers" / "common" / "cpexport" / "clients"


def _iam_prefix(client_name: str) -> str:
    model = boto3.session.Session(region_name="us-east-1").client(client_name).meta.service_model
    return str(model.signing_name or model.endpoint_prefix)


def _api_name(client_name: str, method: str) -> str:
    client = boto3.session.Session(region_name="us-east-1").client(client_name)
    return str(client.meta.method_to_api_mapping[method])


def client_calls(source: Path) -> set[tuple[str, str]]:
    """(client name, method) of every boto3 call a module makes: `self._x.method(...)` and paginators,
    where `self._x` was assigned a `client("service")`."""
    tree = ast.parse(source.read_text())
    services: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            created = [
                call.args[0].value
                for call in ast.walk(node.value)
                if isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "client"
                and call.args
                and isinstance(call.args[0], ast.Constant)
            ]
            if created:
                services[node.targets[0].attr] = str(created[0])
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)):
            continue
        owner = node.value.attr
        if owner not in services or not isinstance(node.value.value, ast.Name):
            continue
        found.add((services[owner], node.attr))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_paginator"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr in services
        ):
            found.add((services[node.func.value.attr], str(node.args[0].value)))  # type: ignore[attr-defined]
    return {(service, method) for service, method in found if method != "get_paginator"}


CALLS = sorted({call for module in sorted(CLIENTS.glob("*.py")) for call in client_calls(module)})


def test_the_clients_calls_are_found():
    # the grep itself: a client module that stopped matching would make the next test pass vacuously
    assert ("appintegrations", "update_data_integration_association") in CALLS
    assert ("s3", "list_objects_v2") in CALLS and ("events", "put_events") in CALLS
    assert len({service for service, _ in CALLS}) >= 7


@pytest.mark.parametrize(("client_name", "method"), CALLS, ids=[f"{s}.{m}" for s, m in CALLS])
def test_every_operation_a_client_calls_has_a_row(client_name: str, method: str):
    key = (_iam_prefix(client_name), _api_name(client_name, method))

    assert key in permissions.OPERATIONS, (
        f"{client_name}.{method} ({key[0]}:{key[1]}) has no row in cli/cpexport_cli/permissions.py OPERATIONS: "
        "add the IAM action(s) it is authorized as, its dependent actions, and the roles that call it"
    )


def test_every_call_of_a_role_names_an_operation_of_the_table():
    for role, calls in permissions.ROLE_CALLS.items():
        for call in calls:
            assert (call.service, call.operation) in permissions.OPERATIONS, (role, call)


def _explained(role: str) -> set[str]:
    actions = set()
    for call in permissions.ROLE_CALLS[role]:
        for action in call.actions:
            actions.add(action)
            actions.update(dependent.action for dependent in permissions.dependents(action))
    return actions


@pytest.fixture(scope="module")
def every_role():
    """A deployment with every conditional role (raw retention on, a Slack channel)."""
    return deploy(
        "shop,outlet", RawExportRetentionDays="7", ChatSlackWorkspaceId="T012ABCDEF", ChatSlackChannelId="C012ABCDEF"
    )


def test_the_table_names_every_role_the_template_creates(every_role):
    assert set(permissions.ROLE_CALLS) == set(every_role.of_type("AWS::IAM::Role"))


def test_every_action_the_template_grants_a_role_is_explained_by_a_row_of_that_role(every_role):
    unexplained = []
    for role in every_role.of_type("AWS::IAM::Role"):
        explained = _explained(role)
        statements = role_statements(every_role, role) + attached_policy_statements(every_role, role)
        for statement in statements:
            for granted in statement["Action"]:
                if not any(fnmatchcase(action.lower(), granted.lower()) for action in explained):
                    unexplained.append(f"{role}: {granted}")
    assert unexplained == [], "granted by template.yaml, called by no row of cli/cpexport_cli/permissions.py"
