"""Iceberg maintenance on its own schedule: the real maintenance state machine on the offline stack.

One stack (module scope), one export so that the current-state tables exist with data, then the
maintenance schedule fires: OPTIMIZE compacts, VACUUM removes unreferenced files, a VACUUM asking for
more runs is run again, and a table whose commits keep failing is alerted once and fails the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cpexport.catalog import current_view_columns, deleted_table_name, state_table_name, view_name

from local.harness.stack import OfflineStack
from local.observe import PipelineObserver
from tests.chat_contract import chat_of, sns_problems
from tests.e2e_local.conftest import DAY0, Seeder, deploy, tick

pytestmark = pytest.mark.e2e
DOMAIN = "shop"
OBJECT_TYPE = "_profile"
STATE = state_table_name(OBJECT_TYPE)
TABLES = {STATE, deleted_table_name(OBJECT_TYPE)}
MAINTENANCE = "MaintenanceStateMachineSchedule"


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[OfflineStack, PipelineObserver]]:
    yield from deploy({"DomainNames": DOMAIN, "ObjectTypes": OBJECT_TYPE})


@pytest.fixture
def exported(stack: tuple[OfflineStack, PipelineObserver]) -> tuple[OfflineStack, PipelineObserver]:
    """The stack after one scheduled export of the domain (done once: the tables keep their rows)."""
    offline, observer = stack
    if not observer.current_table(DOMAIN, OBJECT_TYPE):
        Seeder(offline, DOMAIN).add(OBJECT_TYPE, 12, DAY0, DAY0 + timedelta(hours=20), seed=5)
        assert tick(offline, 1)["status"] == "SUCCEEDED"
        observer.notifications()
    yield offline, observer
    offline.account.athena_faults.fail_next_commits(0)
    offline.account.athena_faults.need_more_vacuum_runs(0)


def maintain(stack: OfflineStack, day: int = 7) -> dict[str, Any]:
    """Fire the maintenance schedule as EventBridge Scheduler would, and wait for the run."""
    arn = stack.fire_schedule(MAINTENANCE, scheduled_time=DAY0 + timedelta(days=day))
    return stack.wait_execution(arn, timeout=120)


def task_failures(stack: OfflineStack, execution_arn: str) -> list[str]:
    """The causes of the execution's failed tasks (what to read when a run did not succeed)."""
    return [
        json.loads(event["taskFailedEventDetails"].get("cause") or "{}")
        .get("QueryExecution", {})
        .get("Status", {})
        .get("StateChangeReason", event["taskFailedEventDetails"].get("cause", ""))
        for event in stack.execution_history(execution_arn)
        if event["type"] == "TaskFailed"
    ]


def current_data_files(stack: OfflineStack, table: str) -> list[str]:
    """The data files of the table's current snapshot, read from the Iceberg metadata Glue points to."""
    glue_table = stack.client("glue").get_table(DatabaseName=stack.outputs["GlueDatabaseName"], Name=table)["Table"]
    bucket, key = glue_table["Parameters"]["metadata_location"].removeprefix("s3://").split("/", 1)
    metadata = json.loads(stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    current = metadata["current-snapshot-id"]
    snapshot = next(s for s in metadata["snapshots"] if s["snapshot-id"] == current)
    return list(snapshot["data-files"])


def stored_data_files(stack: OfflineStack, table: str) -> set[str]:
    """Every object in the table's `data/` folder."""
    bucket = stack.outputs["ExportBucketName"]
    prefix = f"exports/current-state/{table}/data/"
    pages = stack.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {f"s3://{bucket}/{item['Key']}" for page in pages for item in page.get("Contents", [])}


def spread_over_two_files(observer: PipelineObserver) -> None:
    """Leave the state table's rows as they are but in two data files (a row deleted and put back).

    The table's VACUUM age is set to 0 so that the files OPTIMIZE replaces are old enough to go at once
    (Athena's default keeps them five days).
    """
    columns = ", ".join(f'"{column.name}"' for column in current_view_columns(OBJECT_TYPE))
    some_id = sorted(observer.current_table(DOMAIN, OBJECT_TYPE))[0]
    where = f"domain = '{DOMAIN}' AND id = '{some_id}'"
    observer.athena(f"ALTER TABLE {STATE} SET TBLPROPERTIES ('vacuum_max_snapshot_age_seconds'='0')")
    observer.athena(f"DELETE FROM {STATE} WHERE {where}")  # nosec B608: test code, fixed names
    view = view_name(OBJECT_TYPE)
    observer.athena(f"INSERT INTO {STATE} ({columns}) SELECT {columns} FROM {view} WHERE {where}")  # nosec B608


def vacuums(stack: OfflineStack, execution_arn: str) -> int:
    """How many VACUUM queries the execution started."""
    return sum(
        "VACUUM" in event["taskScheduledEventDetails"]["parameters"]
        for event in stack.execution_history(execution_arn)
        if event["type"] == "TaskScheduled"
    )


def test_before_any_export_there_is_nothing_to_maintain_and_the_run_succeeds_quietly(stack):
    offline, observer = stack
    # Given a stack that has not exported yet: no current-state table exists

    # When the maintenance schedule fires
    result = maintain(offline)

    # Then the run succeeds and nobody is told anything
    assert result["status"] == "SUCCEEDED"
    assert observer.notifications() == []


def test_maintenance_compacts_the_table_into_one_file_and_vacuums_the_replaced_ones(exported):
    offline, observer = exported
    # Given a state table whose rows are spread over two data files, older files left behind
    spread_over_two_files(observer)
    rows = observer.current_table(DOMAIN, OBJECT_TYPE)
    assert len(current_data_files(offline, STATE)) == 2
    assert len(stored_data_files(offline, STATE)) > 2

    # When the maintenance schedule fires
    result = maintain(offline)

    # Then the run succeeds, the table holds the same rows in one data file, and no other file is left
    assert result["status"] == "SUCCEEDED", task_failures(offline, result["executionArn"])
    assert observer.current_table(DOMAIN, OBJECT_TYPE) == rows
    (compacted,) = current_data_files(offline, STATE)
    assert stored_data_files(offline, STATE) == {compacted}
    assert observer.notifications() == []


def test_a_vacuum_that_needs_more_runs_is_run_again_until_it_is_done(exported):
    offline, observer = exported
    rows = observer.current_table(DOMAIN, OBJECT_TYPE)
    # Given Athena answers ICEBERG_VACUUM_MORE_RUNS_NEEDED to the next two VACUUMs
    offline.account.athena_faults.need_more_vacuum_runs(2)

    # When the maintenance schedule fires
    arn = offline.fire_schedule(MAINTENANCE, scheduled_time=DAY0 + timedelta(days=14))
    result = offline.wait_execution(arn, timeout=120)

    # Then the run succeeds: VACUUM ran once per table, and twice more for the runs it asked for
    assert result["status"] == "SUCCEEDED"
    assert vacuums(offline, arn) == len(TABLES) + 2
    assert observer.current_table(DOMAIN, OBJECT_TYPE) == rows
    assert observer.notifications() == []


def test_a_table_whose_commits_keep_failing_is_alerted_once_and_fails_the_run(exported):
    offline, observer = exported
    # Given a state table with files to compact, and every Iceberg commit losing to another writer
    spread_over_two_files(observer)
    offline.account.athena_faults.fail_next_commits(1000)

    # When the maintenance schedule fires
    result = maintain(offline, day=21)

    # Then the run fails, and one alert on the notification topic names the table and the error
    assert (result["status"], result.get("error")) == ("FAILED", "MaintenanceFailed")
    (alert,) = observer.notifications()
    assert alert["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert alert["MessageAttributes"]["table"]["Value"] == STATE
    assert "maintenance failed" in alert["Subject"]
    assert STATE in alert["Message"] and "ICEBERG_COMMIT_ERROR" in alert["Message"]
    # And chat gets it as a custom notification in the run's thread, naming the table and how to see why
    (published,) = observer.published()
    assert sns_problems(published["Message"], published["Subject"], published["MessageAttributes"]) == []
    chat = chat_of(published["Message"])
    assert chat["content"]["title"].endswith("table maintenance FAILED")
    assert f"`{offline.outputs['GlueDatabaseName']}.{STATE}`" in chat["content"]["description"]
    assert chat["metadata"]["threadId"] == result["executionArn"]
    assert chat["metadata"]["relatedResources"][0] == result["executionArn"]
    assert chat["metadata"]["relatedResources"][1].endswith(f":table/{offline.outputs['GlueDatabaseName']}/{STATE}")
    assert f"--execution-arn {result['executionArn']}" in chat["content"]["nextSteps"][0]
