"""Athena offline on the stack: queries really run, as their caller, and `startQueryExecution.sync` waits for them.

A state machine of one Athena task (created through the API with a role of the test's own) runs the
SQL of its input in the catalog fixture's workgroup and database.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.harness import OfflineStack
from local.harness.stack import DeployedStack

CATALOG_TEMPLATE = Path(__file__).parent / "fixtures" / "catalog.yaml"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def catalog(stack: OfflineStack, unique: str) -> Iterator[DeployedStack]:
    """The catalog fixture (a Glue database, an Athena workgroup) and the buckets its queries use."""
    deployed = stack.add_stack(
        f"athena-{unique}",
        {"DatabaseName": f"sales_{unique}", "WorkGroupName": f"sales-{unique}"},
        template_path=CATALOG_TEMPLATE,
    )
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=f"athena-{unique}-results")
    s3.create_bucket(Bucket=f"data-{unique}")
    try:
        yield deployed
    finally:
        stack.remove_stack(deployed)


def _state_machine(stack: OfflineStack, unique: str, *, deny: str | None = None, attempts: int = 0) -> str:
    """A one-Task state machine running `$.sql`, as a role allowed Athena, Glue and S3 (but `deny`)."""
    iam = stack.client("iam")
    role = f"athena-{unique}-{uuid.uuid4().hex[:6]}"
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["athena:*", "glue:*", "s3:*"], "Resource": "*"},
    ]
    if deny:
        statements.append({"Effect": "Deny", "Action": deny, "Resource": "*"})
    iam.put_role_policy(
        RoleName=role, PolicyName="query", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )
    definition = {
        "StartAt": "Query",
        "States": {
            "Query": {
                "Type": "Task",
                "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
                "Parameters": {
                    "QueryString.$": "$.sql",
                    "WorkGroup": f"sales-{unique}",
                    "QueryExecutionContext": {"Database": f"sales_{unique}", "Catalog": "AwsDataCatalog"},
                },
                "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": attempts}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Failed"}],
                "End": True,
            },
            "Failed": {"Type": "Pass", "End": True},
        },
    }
    return str(
        stack.client("stepfunctions").create_state_machine(name=role, definition=json.dumps(definition), roleArn=arn)[
            "stateMachineArn"
        ]
    )


def _run(stack: OfflineStack, machine: str, sql: str) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps({"sql": sql}))[
        "executionArn"
    ]
    result = stack.wait_execution(arn)
    assert result["status"] == "SUCCEEDED", result
    output: dict[str, Any] = json.loads(result["output"])
    return output


def _create(unique: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS sales_{unique}.current (id string, n bigint) "
        f"LOCATION 's3://data-{unique}/current/' TBLPROPERTIES ('table_type'='ICEBERG')"
    )


def _athena_query(stack: OfflineStack, unique: str, sql: str) -> dict[str, Any]:
    athena = stack.client("athena")
    started = athena.start_query_execution(
        QueryString=sql, WorkGroup=f"sales-{unique}", QueryExecutionContext={"Database": f"sales_{unique}"}
    )
    for _ in range(200):
        query = athena.get_query_execution(QueryExecutionId=started["QueryExecutionId"])["QueryExecution"]
        if query["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(query)
        time.sleep(0.05)
    raise AssertionError("the query did not end")


def test_a_sync_task_waits_for_the_query_and_outputs_get_query_execution(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    # Given a state machine with an Athena .sync task
    machine = _state_machine(stack, unique)
    # When it creates an Iceberg table and inserts a row
    created = _run(stack, machine, _create(unique))
    inserted = _run(stack, machine, f"INSERT INTO sales_{unique}.current VALUES ('a', 1)")
    # Then each output is GetQueryExecution's answer for a SUCCEEDED query
    assert created["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    assert created["QueryExecution"]["StatementType"] == "DDL"
    assert inserted["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    # and the CLI's direct calls read the row back, in Athena's result-set shape and CSV in the workgroup's location
    query = _athena_query(stack, unique, f"SELECT id, n FROM sales_{unique}.current")
    assert query["Status"]["State"] == "SUCCEEDED"
    rows = stack.client("athena").get_query_results(QueryExecutionId=query["QueryExecutionId"])["ResultSet"]["Rows"]
    assert [[d.get("VarCharValue") for d in r["Data"]] for r in rows] == [["id", "n"], ["a", "1"]]
    assert query["ResultConfiguration"]["OutputLocation"].startswith(f"s3://athena-{unique}-results/athena/")


def test_a_failed_query_fails_the_task_with_its_reason_in_the_cause_and_retry_runs_it_again(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    # Given a table, and a state machine that retries a failed query once
    machine = _state_machine(stack, unique, attempts=1)
    _run(stack, machine, _create(unique))
    # When the next commit conflicts: the retry's commit goes through
    stack.account.athena_faults.fail_next_commits(1)
    retried = _run(stack, machine, f"INSERT INTO sales_{unique}.current VALUES ('b', 2)")
    assert retried["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    # When every commit conflicts: the task fails with States.TaskFailed and ICEBERG_COMMIT_ERROR in the cause
    stack.account.athena_faults.fail_next_commits(2)
    failed = _run(stack, machine, f"INSERT INTO sales_{unique}.current VALUES ('c', 3)")["failure"]
    assert failed["Error"] == "States.TaskFailed"
    cause = json.loads(failed["Cause"])
    assert cause["QueryExecution"]["Status"]["State"] == "FAILED"
    assert "ICEBERG_COMMIT_ERROR" in cause["QueryExecution"]["Status"]["StateChangeReason"]


def test_a_role_without_s3_get_object_cannot_read_the_tables_data(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    # Given a table with a row
    allowed = _state_machine(stack, unique)
    _run(stack, allowed, _create(unique))
    _run(stack, allowed, f"INSERT INTO sales_{unique}.current VALUES ('a', 1)")
    # When a role denied s3:GetObject queries it
    denied = _state_machine(stack, unique, deny="s3:GetObject")
    failed = _run(stack, denied, f"SELECT count(*) FROM sales_{unique}.current")["failure"]
    # Then the query FAILED on the permission, as Athena reports it
    status = json.loads(failed["Cause"])["QueryExecution"]["Status"]
    assert status["State"] == "FAILED" and "Permission denied on S3 path" in status["StateChangeReason"]
    assert status["AthenaError"]["ErrorCategory"] == 2
