"""Raw export retention in the template: nothing without it; with it, a rule on the exports' prefix only."""

from __future__ import annotations

import pytest

from tests.build.cloudformation import ACCOUNT, deploy

RETENTION_RESOURCES = {
    "ExpireRawPartitionsFunction",
    "ExpireRawPartitionsFunctionRole",
    "ExpireRawPartitionsFunctionDaily",
    "ExpireRawPartitionsFunctionDailyRole",
    "ExpireRawPartitionsFunctionLogGroup",
    "ExpireRawPartitionsErrorsAlarm",
}


def test_keeping_raw_exports_forever_adds_no_rule_schedule_or_function():
    # Given the default, RawExportRetentionDays 0
    deployment = deploy("shop")

    # Then nothing of retention exists: no lifecycle rule on the export bucket, no job, no schedule for it
    assert "LifecycleConfiguration" not in deployment.properties("ExportBucket")
    assert not RETENTION_RESOURCES & set(deployment.resources)
    schedules = set(deployment.of_type("AWS::Scheduler::Schedule"))
    assert not {name for name in schedules if name.startswith("ExpireRawPartitions")}
    assert {"ExportStateMachineSchedule", "ExportStateMachineReconcile"} <= schedules


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("exports", f"exports/{ACCOUNT}/"), ("data/cp", f"data/cp/{ACCOUNT}/"), ("", f"{ACCOUNT}/")],
    ids=["default prefix", "nested prefix", "bucket root"],
)
def test_seven_days_expire_exactly_the_exports_prefix_and_nothing_beside_it(prefix, expected):
    # Given a stack keeping raw exports 7 days
    deployment = deploy("shop", RawExportRetentionDays="7", ExportPrefix=prefix)

    # Then one rule, filtered to `{ExportPrefix}/{account}/` (cpexport.paths.domain_root's parent), expires after 7 days
    (rule,) = deployment.properties("ExportBucket")["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == expected
    assert "Filter" not in rule  # one filter, the prefix: no tag or size filter widening or narrowing it
    assert (rule["Status"], rule["ExpirationInDays"]) == ("Enabled", "7")
    # the Athena results and anything a prefix-sharing neighbour writes stay out of it
    for outside in ("athena-results/q.csv", "iceberg/profile/data.parquet", f"{prefix}-iceberg/x", f"{ACCOUNT}0/x"):
        assert not outside.startswith(expected), outside
    # And the partition job and its daily schedule exist
    assert set(deployment.resources) >= RETENTION_RESOURCES
    schedule = deployment.properties("ExpireRawPartitionsFunctionDaily")
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    assert schedule["Target"]["Input"] == '{"scheduledTime": "<aws.scheduler.scheduled-time>"}'
    variables = deployment.properties("ExpireRawPartitionsFunction")["Environment"]["Variables"]
    assert variables["RAW_EXPORT_RETENTION_DAYS"] == "7"


def test_the_access_log_buckets_own_rule_stays_as_it_was():
    deployment = deploy("shop", RawExportRetentionDays="7")
    (rule,) = deployment.properties("ExportAccessLogBucket")["LifecycleConfiguration"]["Rules"]
    assert (rule["Id"], rule["ExpirationInDays"]) == ("ExpireAccessLogsAfterAYear", 365)


def test_with_an_existing_bucket_the_stack_adds_no_rule_but_still_drops_partitions():
    # The bucket's owner adds the rule (README "Raw retention"); the job drops partitions all the same
    deployment = deploy("shop", RawExportRetentionDays="7", ExistingBucketName="their-bucket")
    assert "ExportBucket" not in deployment.resources
    assert "ExpireRawPartitionsFunction" in deployment.resources
