"""Raw export retention on the deployed stack: partitions go before their files, nothing else is touched.

The stack keeps raw exports 7 days. An export requested now and one requested 9 days later are in
the bucket, with files beside the exports' prefix (Athena results, another team's Iceberg tables).
At that later moment the daily partition job runs as its schedule would, then S3 lifecycle does what
it would have done by then (offline: at the first moment it may).

Offline, an object's creation time is moto's wall clock at PutObject and a job's request time the
emulator's clock: the later export is made by setting the emulator's clock 9 days ahead and dating
its objects to that moment, as if both had happened then.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.s3.models import s3_backends

from local.harness.stack import OfflineStack
from local.observe import PipelineObserver
from tests.e2e_local.conftest import DAY0, Seeder, deploy, ms, tick

DOMAIN = "ret"
RETENTION_DAYS = 7
SCHEDULE = "ExpireRawPartitionsFunctionDaily"
# Beside the exports: the Athena results folder, an Iceberg table of another team, and keys that
# share the exports' prefix text without being under `{ExportPrefix}/{account}/`.
OUTSIDE = ("athena-results/q1.csv", "iceberg/profile/metadata/v1.json", "exports/iceberg/profile/data.parquet")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OfflineStack, PipelineObserver]]:
    yield from deploy(
        {"DomainNames": DOMAIN, "ObjectTypes": "_profile", "RawExportRetentionDays": str(RETENTION_DAYS)},
        lambda_log=tmp_path_factory.mktemp("retention") / "lambdas.log",
    )


def _date_objects(stack: OfflineStack, names: set[str], created: datetime) -> None:
    """Make these objects look created at `created` (moto stamps the wall clock)."""
    bucket = s3_backends[stack.account.account_id]["aws"].buckets[stack.outputs["ExportBucketName"]]
    for name in names:
        for key in bucket.keys.getlist(name):
            key.last_modified = created.astimezone(UTC).replace(tzinfo=None)


def _partitions(stack: OfflineStack) -> list[dict[str, Any]]:
    glue = stack.client("glue")
    database = stack.outputs["GlueDatabaseName"]
    return list(glue.get_partitions(DatabaseName=database, TableName="profile_versions")["Partitions"])


def _keys(stack: OfflineStack, prefix: str = "") -> list[str]:
    s3 = stack.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.outputs["ExportBucketName"], Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _files_of(stack: OfflineStack, partition: dict[str, Any]) -> list[str]:
    location = partition["StorageDescriptor"]["Location"]
    prefix = location.split("/", 3)[3]  # s3://bucket/<prefix>
    return _keys(stack, prefix)


def test_old_partitions_go_before_their_files_and_nothing_else_is_touched(
    stack: tuple[OfflineStack, PipelineObserver],
) -> None:
    offline, observer = stack
    seeder = Seeder(offline, DOMAIN)
    seeder.add("_profile", 6, DAY0, DAY0 + timedelta(hours=20), seed=1)
    seeder.add("_profile", 4, DAY0 + timedelta(days=1), DAY0 + timedelta(days=1, hours=20), seed=2)
    export_root = f"exports/{offline.account.account_id}/{DOMAIN}/"

    # Given an export requested now ...
    assert tick(offline, 1)["status"] == "SUCCEEDED"
    # ... other teams' objects beside the exports, as old ...
    s3 = offline.client("s3")
    for key in OUTSIDE:
        s3.put_object(Bucket=offline.outputs["ExportBucketName"], Key=key, Body=b"not an export")
    # ... and, once more than the retention has passed, another export (its files created then)
    later = datetime.now(UTC) + timedelta(days=RETENTION_DAYS + 2)
    existing = set(_keys(offline))
    offline.emulator_control.configure(now_ms=ms(later))
    try:
        assert tick(offline, 2)["status"] == "SUCCEEDED"
    finally:
        offline.emulator_control.configure(clock_offset_ms=0)
    _date_objects(offline, set(_keys(offline)) - existing, later)
    before = {p["Values"][3]: p for p in _partitions(offline)}
    assert len(before) == 2
    old, new = sorted(before)
    old_stamp = old.replace("-", "").replace(":", "").removesuffix("Z")

    # When the day's partition job runs, then S3 lifecycle catches up with the same moment
    result = offline.run_function_schedule(SCHEDULE, later)
    expired = offline.apply_lifecycle(later)

    # Then the old export's partition and its files (manifest included) are gone
    after = {p["Values"][3]: p for p in _partitions(offline)}
    assert set(after) == {new}
    assert result["tables"] == [{"objectType": "_profile", "table": "profile_versions", "dropped": 1, "kept": 1}]
    assert _files_of(offline, before[old]) == []
    assert not [key for key in _keys(offline, export_root) if key.endswith(".manifest.json") and old_stamp in key]
    assert expired.expired and all(key.startswith(f"exports/{offline.account.account_id}/") for key in expired.expired)
    # And no partition points at a missing file: the newer one still has every file of its manifest
    for partition in after.values():
        assert _files_of(offline, partition), partition["Values"]
    (manifest,) = [key for key in _keys(offline, export_root) if key.endswith(".manifest.json")]
    assert {f["key"] for f in observer.manifest_files(manifest)} <= set(_keys(offline, export_root))
    # And nothing outside the exports' prefix was expired, however old
    assert set(OUTSIDE) <= set(_keys(offline))


def test_the_lifecycle_rule_is_exactly_the_exports_prefix(stack: tuple[OfflineStack, PipelineObserver]) -> None:
    offline, _ = stack
    rules = offline.client("s3").get_bucket_lifecycle_configuration(Bucket=offline.outputs["ExportBucketName"])
    (rule,) = rules["Rules"]
    assert rule["Filter"] == {"Prefix": f"exports/{offline.account.account_id}/"}
    assert rule["Expiration"] == {"Days": RETENTION_DAYS}
