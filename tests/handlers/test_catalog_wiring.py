"""The catalog in the handler chain: Plan makes the tables ready, Index registers each export, Notify names it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from cpexport.catalog import database_name, partition_values, table_name, view_definition
from cpexport.config import get_settings
from cpexport.errors import CatalogConflict
from cpexport.models import render_utc
from cpexport.paths import parse_stamp

from tests.handlers.conftest import DOMAIN, ROOT, Stack, load_event, load_handler
from tests.handlers.test_handlers import DAY1, HOUR, seed, until_finished, until_indexed

DATABASE = database_name("customer-profiles-export")


def _tables() -> set[str]:
    pages = boto3.client("glue").get_paginator("get_tables").paginate(DatabaseName=DATABASE)
    return {table["Name"] for page in pages for table in page["TableList"]}


def _keys_under(stack: Stack, location: str) -> list[str]:
    prefix = location.removeprefix(f"s3://{stack.bucket}/")
    return sorted(stack.keys(prefix))


def _listed_files(stack: Stack, manifest: dict[str, Any]) -> list[str]:
    body = boto3.client("s3").get_object(Bucket=stack.bucket, Key=manifest["fileList"])["Body"].read().decode()
    return sorted(json.loads(line)["key"] for line in body.splitlines() if line.strip())


def test_an_indexed_export_is_a_partition_of_its_table_and_the_notification_and_event_name_it(stack):
    # Given a profile export run through Start, Check and Index
    seed(stack, "_profile", 90, DAY1, DAY1 + 20 * HOUR)
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    task = load_event("start_export")

    # When it is indexed and notified
    result = until_indexed(index, until_finished(check, start(task)))
    load_handler("notify")({"executionArn": task["executionArn"], "results": [result], "skipped": []})

    # Then the result names its table and one partition, which Glue holds at the export's folder
    assert (result["database"], result["table"]) == (DATABASE, "profile_versions")
    (partition,) = result["partitions"]
    manifest = stack.read_json(result["manifestKey"])
    stamp = manifest["requestStamps"][0]
    expected_values = partition_values(
        DOMAIN, parse_stamp("20261101T000000"), parse_stamp("20261101T233000"), parse_stamp(stamp), False
    )
    assert partition["values"] == expected_values
    stored = boto3.client("glue").get_partition(
        DatabaseName=DATABASE, TableName="profile_versions", PartitionValues=expected_values
    )["Partition"]
    assert stored["StorageDescriptor"]["Location"] == partition["location"]
    # and the partition's folder holds exactly the files the manifest lists (none of the manifest's own)
    assert _keys_under(stack, partition["location"]) == _listed_files(stack, manifest)
    assert len(_listed_files(stack, manifest)) == manifest["fileCount"] == 3
    # and the run index records where it is queryable
    (run,) = stack.runs("_profile")
    assert run["table"] == "profile_versions"
    assert run["partitions"] == [{"M": {"name": {"S": partition["name"]}, "location": {"S": partition["location"]}}}]
    # and on-call's message and the Succeeded event name table and partition
    (message,) = stack.messages(stack.notifications_queue_url)
    assert f"queryable: table {DATABASE}.profile_versions, partition {partition['name']}" in message["Message"]
    assert partition["name"] == (
        f"domain={DOMAIN}/window_start=2026-11-01T00:00:00Z/window_end=2026-11-01T23:30:00Z/"
        f"requested_at={render_utc(parse_stamp(stamp))}/backfill=false"
    )
    (event,) = stack.messages(stack.events_queue_url)
    assert (event["detail"]["database"], event["detail"]["table"]) == (DATABASE, "profile_versions")
    assert event["detail"]["partition"] == partition
    assert event["detail"]["partitions"] == [partition]


def test_plan_makes_every_configured_type_queryable_but_changes_nothing_for_a_rejected_request(stack, monkeypatch):
    # Given a custom object type added to the configuration, its table not there yet
    monkeypatch.setenv("OBJECT_TYPES", "_profile,_order,Loyalty-Card")
    get_settings.cache_clear()
    plan = load_handler("plan")
    assert table_name("Loyalty-Card") not in _tables()

    # When a malformed request is planned, Then it is rejected and the catalog is untouched
    rejected = plan(load_event("plan") | {"request": {"domainName": "no-such-domain"}})
    assert rejected["rejection"] is not None
    assert table_name("Loyalty-Card") not in _tables()

    # When an accepted request is planned, Then the new type has its table and view, and the stack-wide views list it
    planned = plan(load_event("plan"))
    assert {"custom__loyalty_0_card_versions", "custom__loyalty_0_card_current"} <= _tables()
    view = boto3.client("glue").get_table(DatabaseName=DATABASE, Name="current_by_type")["Table"]
    assert view["StorageDescriptor"]["Columns"][0]["Name"] == "object_type"
    assert "custom__loyalty_0_card_state" in view_definition(view["ViewOriginalText"])["originalSql"]
    # And the state machine is told to create its current-state tables (Athena DDL), which do not exist yet
    created = " ".join(planned["createTables"])
    assert "CREATE TABLE IF NOT EXISTS customer_profiles_export.custom__loyalty_0_card_state" in created
    assert "CREATE TABLE IF NOT EXISTS customer_profiles_export.custom__loyalty_0_card_deleted" in created


def test_a_partition_that_points_elsewhere_stops_the_index_and_nothing_moves(stack):
    # Given an export whose files have settled
    seed(stack, "_profile", 40, DAY1, DAY1 + 20 * HOUR)
    start, check, index = load_handler("start_export"), load_handler("check_export"), load_handler("index_export")
    task = load_event("start_export")
    settling = index(until_finished(check, start(task)))
    (stamp,) = settling["listing"]["requestStamps"]
    # and a partition of the same values that someone registered at another folder
    values = partition_values(
        DOMAIN, parse_stamp("20261101T000000"), parse_stamp("20261101T233000"), parse_stamp(stamp), False
    )
    glue = boto3.client("glue")
    table = glue.get_table(DatabaseName=DATABASE, Name="profile_versions")["Table"]
    elsewhere = table["StorageDescriptor"] | {"Location": "s3://somewhere-else/"}
    glue.create_partition(
        DatabaseName=DATABASE,
        TableName="profile_versions",
        PartitionInput={"Values": values, "StorageDescriptor": elsewhere},
    )

    # When the index finishes, Then it refuses with CatalogConflict (not retried by the state machine)
    with pytest.raises(CatalogConflict, match="already points at s3://somewhere-else/"):
        until_indexed(index, settling)

    # and nothing was recorded or moved: the partition is left as it was, the watermark stays
    assert stack.runs("_profile") == []
    assert stack.watermark("_profile") is None
    kept = glue.get_partition(DatabaseName=DATABASE, TableName="profile_versions", PartitionValues=values)
    assert kept["Partition"]["StorageDescriptor"]["Location"] == "s3://somewhere-else/"
    # and no state of the state machine retries it (it goes to RecordFailure and on-call)
    retried = _retried_errors(json.loads((ROOT / "statemachine" / "export.asl.json").read_text())["States"])
    assert not retried & {"CatalogConflict", "States.ALL", "States.TaskFailed"}


def _retried_errors(states: dict[str, Any]) -> set[str]:
    errors: set[str] = set()
    for state in states.values():
        # The functions' errors: an Athena task's failure is its own (States.TaskFailed for that query).
        if str(state.get("Resource", "")).startswith("arn:aws:states:::athena:"):
            continue
        errors |= {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        for nested in ("Iterator", "ItemProcessor"):
            if nested in state:
                errors |= _retried_errors(state[nested]["States"])
        for branch in state.get("Branches", []):
            errors |= _retried_errors(branch["States"])
    return errors
