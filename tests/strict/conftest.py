"""The real template.yaml on the offline stack, IAM enforced: one deployment for the package.

Tests act as the stack's own roles (`as_role`) to show what each role may and may not do, and
restore anything they change (role policies, queue policies, trigger faults).
"""

from __future__ import annotations

import ast
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.harness.stack import OfflineStack
from local.iam.principals import Credentials

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "strict"
# Every job with a file is counted by the indexing Distributed Map (InlineIndexMaxFiles 0): the scenario
# then exercises the Map's permissions (the state machine's and CountRecords').
PARAMETERS = {
    "DomainNames": DOMAIN,
    "ObjectTypes": "_profile",
    "InitialStartTime": "2026-11-01T00:00:00Z",
    "InlineIndexMaxFiles": "0",
}
TIME_SCALE = 0.01

SERVICE_OF_ROLE = {
    "ExportStateMachineRole": "states.amazonaws.com",
    "ExportStateMachineScheduleRole": "scheduler.amazonaws.com",
    "ExportStateMachineExportRequestedRole": "events.amazonaws.com",
    "MaintenanceStateMachineRole": "states.amazonaws.com",
    "MaintenanceStateMachineScheduleRole": "scheduler.amazonaws.com",
}


@pytest.fixture(scope="package")
def strict_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineStack]:
    """The real template, deployed once for tests/strict (handler logs to a file, not the terminal)."""
    logging.getLogger("moto").setLevel(logging.ERROR)
    log = tmp_path_factory.mktemp("strict") / "lambdas.log"
    with OfflineStack(
        ROOT / "template.yaml", PARAMETERS, time_scale=TIME_SCALE, stack_name="strict", lambda_log=log
    ) as stack:
        yield stack


@pytest.fixture
def stack(strict_stack: OfflineStack) -> OfflineStack:
    """The package's stack with the emulator reset and every Lambda cold again."""
    strict_stack.reset()
    return strict_stack


def role_arn(stack: OfflineStack, logical_id: str) -> str:
    """The ARN of one of the stack's IAM roles."""
    return f"arn:aws:iam::{stack.account_id}:role/{stack.physical_id(logical_id)}"


def as_role(stack: OfflineStack, logical_id: str) -> Credentials:
    """Credentials of a stack role, assumed by the service that uses it (Lambda for function roles)."""
    service = SERVICE_OF_ROLE.get(logical_id, "lambda.amazonaws.com")
    return stack.account.broker.role_credentials(role_arn(stack, logical_id), service)


def client_as(stack: OfflineStack, service: str, logical_id: str) -> Any:
    """A boto3 client signed as one of the stack's roles."""
    return stack.client(service, as_role(stack, logical_id))


def policy_document(value: Any) -> dict[str, Any]:
    """GetRolePolicy's document as a dict: moto answers a CloudFormation-created one as a Python repr."""
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = ast.literal_eval(value)
    assert isinstance(parsed, dict)
    # SAM writes no Version; moto's PutRolePolicy (unlike CloudFormation) requires one.
    return {"Version": "2012-10-17", **parsed}


@pytest.fixture
def unique() -> str:
    """A key no other test uses (moto is not reset between tests)."""
    return uuid.uuid4().hex[:12]
