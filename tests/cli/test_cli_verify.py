"""`cpexport verify` against the offline stack: a passing verification, and each way a deployment breaks one.

One stack for the module, deployed as `sam deploy` leaves it: no export has run, no watermark exists.
The first test verifies it as is (the verification's backfill creates the data integration); each
later test breaks one thing on the deployed stack (a role's statement, the key policy, the bucket
policy), shows that verify names it and exits 1, and puts it back.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cpexport.clients.state_table import StateTable
from cpexport.models import render_utc
from cpexport_cli.app import cli

from local.emulator.synthetic import generate
from local.harness.stack import OfflineStack
from tests.strict.conftest import policy_document

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "verify-a"
TIME_SCALE = 0.01
# Wide enough to hold some of the seeded objects (a few per hour over two days).
MINUTES = "180"

pytestmark = pytest.mark.e2e


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Deployed:
    stack: OfflineStack

    @property
    def options(self) -> list[str]:
        stack = self.stack
        return [
            "--stack-name",
            stack.stack_name,
            "--region",
            stack.region,
            "--endpoint-url",
            stack.endpoint_url,
            "--appintegrations-endpoint-url",
            str(stack.appintegrations_endpoint_url),
        ]

    def state(self) -> StateTable:
        return StateTable(self.stack.outputs["StateTableName"], api=self.stack.client("dynamodb"))

    def executions(self) -> list[str]:
        sfn = self.stack.client("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=self.stack.outputs["StateMachineArn"], maxResults=1000)
        return [e["executionArn"] for e in listed["executions"]]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    logging.getLogger("moto").setLevel(logging.ERROR)
    now = datetime.now(UTC)
    initial = (now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    parameters = {"DomainNames": DOMAIN, "ObjectTypes": "_profile,_order", "InitialStartTime": render_utc(initial)}
    log = tmp_path_factory.mktemp("verify") / "lambdas.log"
    with OfflineStack(
        ROOT / "template.yaml", parameters, time_scale=TIME_SCALE, stack_name="verify", lambda_log=log
    ) as stack:
        for seed, object_type in enumerate(("_profile", "_order")):
            objects = generate(object_type, 300, ms(initial), ms(now - timedelta(minutes=31)), seed)
            stack.emulator_control.seed(DOMAIN, object_type, objects)
        yield Deployed(stack)


def verify(deployed: Deployed, *arguments: str) -> tuple[Result, dict[str, Any]]:
    """`cpexport verify --output json` in this process; the JSON document and the result."""
    runner = CliRunner(mix_stderr=False, env={"COLUMNS": "250"})
    result = runner.invoke(
        cli,
        ["verify", *arguments, *deployed.options, "--output", "json", "--poll-seconds", "0.2"],
        catch_exceptions=False,
    )
    return result, json.loads(result.stdout)


def steps_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in document["steps"]}


def test_verify_proves_a_fresh_deployment_with_a_real_export_that_moves_no_watermark(deployed: Deployed):
    # Given a stack as sam deploy leaves it: no export yet, no watermark
    assert deployed.state().get_watermark(DOMAIN, "_profile") is None

    # When on-call verifies it
    result, document = verify(deployed, "--minutes", MINUTES)

    # Then every step passed, each on its line
    steps = steps_of(document)
    assert result.exit_code == 0, json.dumps(document["steps"], indent=1)
    assert {name: step["status"] for name, step in steps.items() if step["status"] != "ok"} == {}
    roles = [name for name in steps if name.startswith("permissions ")]
    assert "permissions StartExportFunctionRole" in roles and "permissions ExportStateMachineRole" in roles
    assert len(roles) == 13  # every role of the stack but the raw retention job's two (not deployed)
    assert list(steps)[len(roles) :] == [
        "service: bucket policy",
        "service: key policy",
        "export",
        "data integration",
        "job",
        "files",
        "manifest",
        "partition",
        "notification",
        "result event",
        "watermark and lease",
    ]
    # of the default domain and object type, as a verification, through the deployed state machine
    assert document["target"]["domainName"] == DOMAIN and document["target"]["objectType"] == "_profile"
    assert document["execution"]["input"]["verification"] is True
    assert "file(s) in S3, SSE-KMS with the stack's key" in steps["files"]["summary"]
    assert "COMPLETED" in steps["job"]["summary"]
    assert "Customer Profiles export verification SUCCEEDED" in steps["notification"]["summary"]
    # the run index says what it was, and the watermark never moved (there is none yet)
    (run,) = [r for r in deployed.state().list_runs(DOMAIN, "_profile") if r.get("verification")]
    assert run["status"] == "SUCCEEDED" and run["backfill"] is True
    assert deployed.state().get_watermark(DOMAIN, "_profile") is None
    assert deployed.state().get_lease(DOMAIN, "_profile") is None
    # and progress was shown while it waited for the job
    assert "Started verification cpexport-verify-" in result.stderr


def test_the_table_output_has_one_line_per_step_and_the_verdict(deployed: Deployed):
    runner = CliRunner(mix_stderr=False, env={"COLUMNS": "250"})
    result = runner.invoke(cli, ["verify", "--checks-only", *deployed.options], catch_exceptions=False)

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK      permissions ")
    assert "SKIPPED export: not run (--checks-only)" in result.stdout
    assert lines[-1] == "verify: every step passed (9 not run)"


@contextmanager
def without_statement(deployed: Deployed, role: str, sid: str) -> Iterator[None]:
    """The role's inline policy without one statement (as if removed by hand), restored afterwards."""
    stack = deployed.stack
    iam = stack.client("iam")
    name = stack.physical_id(role)
    (policy_name,) = iam.list_role_policies(RoleName=name)["PolicyNames"][:1]
    original = policy_document(iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"])
    variant = copy.deepcopy(original)
    variant["Statement"] = [s for s in variant["Statement"] if s.get("Sid") != sid]
    assert len(variant["Statement"]) == len(original["Statement"]) - 1, f"{role} has no statement {sid}"
    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(variant))
    try:
        yield
    finally:
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(original))


def test_a_missing_grant_names_the_role_the_action_and_the_resource_and_starts_nothing(deployed: Deployed):
    # Given StartExport's role without its grant on the export key (the service's dependent kms:CreateGrant)
    key = deployed.stack.outputs["ExportKeyArn"]
    before = deployed.executions()
    with without_statement(deployed, "StartExportFunctionRole", "LetAppIntegrationsTakeAGrantOnTheExportKey"):
        # When on-call verifies
        result, document = verify(deployed)

    # Then the step names the role, the action and the resource, with the fix; and it exits 1
    assert result.exit_code == 1
    step = steps_of(document)["permissions StartExportFunctionRole"]
    assert step["status"] == "fail"
    assert step["summary"].startswith("1 of ") and step["summary"].endswith(f"refused: kms:CreateGrant on {key}")
    assert step["details"] == [
        f"kms:CreateGrant on {key}: implicitDeny: no statement of the role's policies allows it "
        "[app-integrations:CreateDataIntegration needs it (creates it, once per object type)]"
    ]
    assert "StartExportFunctionRole" in step["fix"]
    # every other role passes, and no export was started: it would have failed
    failed = [s["name"] for s in document["steps"] if s["status"] == "fail"]
    assert failed == ["permissions StartExportFunctionRole"]
    assert steps_of(document)["export"]["status"] == "skipped"
    assert deployed.executions() == before


def _key_policy(deployed: Deployed) -> dict[str, Any]:
    kms = deployed.stack.client("kms")
    policy = kms.get_key_policy(KeyId=deployed.stack.outputs["ExportKeyArn"], PolicyName="default")["Policy"]
    return policy if isinstance(policy, dict) else json.loads(policy)  # moto keeps CloudFormation's as a dict


def test_a_key_policy_without_the_service_fails_the_service_check_as_the_export_would_fail(deployed: Deployed):
    # Given the export key's policy whose AppIntegrations statement lost its service principal
    stack = deployed.stack
    kms = stack.client("kms")
    key = stack.outputs["ExportKeyArn"]
    original = _key_policy(deployed)
    edited = copy.deepcopy(original)
    for statement in edited["Statement"]:
        if statement.get("Sid") == "Enable AppIntegrations access to KMS key":
            statement["Principal"].pop("Service")
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(edited))
    try:
        # When verified
        result, document = verify(deployed, "--checks-only")
        # and, to compare, the real export of a range that holds objects
        now = datetime.now(UTC)
        backfill = stack.run_execution(
            {
                "domainName": DOMAIN,
                "objectTypes": ["_order"],
                "startTime": render_utc(now - timedelta(days=1)),
                "endTime": render_utc(now - timedelta(hours=1)),
            },
            timeout=120,
        )
    finally:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(original))

    # Then verify names the key policy and what the service may not do
    assert result.exit_code == 1
    step = steps_of(document)["service: key policy"]
    assert step["status"] == "fail"
    assert "app-integrations.amazonaws.com" in step["summary"] and "kms:GenerateDataKey" in step["summary"]
    assert "Enable AppIntegrations access to KMS key" in step["fix"]
    # and the real export fails for the same reason
    assert backfill["status"] == "FAILED"
    history = json.dumps(stack.execution_history(backfill["executionArn"]), default=str)
    assert "not authorized to perform kms:GenerateDataKey" in history


def test_a_bucket_policy_without_the_services_conditions_is_a_finding(deployed: Deployed):
    # Given the bucket policy's statement for AppIntegrations without its aws:SourceAccount/aws:SourceArn condition
    s3 = deployed.stack.client("s3")
    bucket = deployed.stack.outputs["ExportBucketName"]
    original = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    edited = json.loads(original)
    for statement in edited["Statement"]:
        if statement.get("Sid") == "Allow AppIntegrations to write data to destination bucket":
            statement.pop("Condition")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(edited))
    try:
        # When verified
        result, document = verify(deployed, "--checks-only")
    finally:
        s3.put_bucket_policy(Bucket=bucket, Policy=original)

    # Then it is reported as a finding: any account's data integration could write into the bucket
    assert result.exit_code == 1
    step = steps_of(document)["service: bucket policy"]
    assert step["status"] == "fail"
    assert step["summary"].startswith("finding: ")
    assert "any account's data integration" in step["summary"]
    assert "aws:SourceAccount" in step["fix"]
    assert [s["name"] for s in document["steps"] if s["status"] == "fail"] == ["service: bucket policy"]
