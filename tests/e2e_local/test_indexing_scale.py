"""Indexing a large job with the real template: its records are counted by the Distributed Map.

One file per record (the emulator's `records_per_file`) and a low `InlineIndexMaxFiles` make a job of
a modest size "large": more files than the Index function counts itself, and more than one S3 listing
page (1,000 keys), so the Map's ItemReader must page through them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.harness.stack import DeployedStack, OfflineStack
from local.observe import PipelineObserver
from tests.e2e_local.conftest import DAY0, Seeder, deploy, run

pytestmark = pytest.mark.e2e
DOMAIN = "bigshop"
FILES = 1_200  # one record each: more files than one ListObjectsV2 page (1,000 keys)
INLINE_MAX = "100"
SCHEDULED = {"scheduledTime": "2026-11-02T00:00:00Z"}  # window [2026-11-01T00:00, 2026-11-01T23:30)


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[OfflineStack, PipelineObserver]]:
    yield from deploy(
        {"DomainNames": DOMAIN, "ObjectTypes": "_profile", "InlineIndexMaxFiles": INLINE_MAX},
        emulator_options={"records_per_file": 1},
    )


def _events(stack: DeployedStack, result: dict[str, Any]) -> list[str]:
    return [event["type"] for event in stack.execution_history(result["executionArn"])]


def _count_records_calls(stack: OfflineStack, function: str) -> list[Any]:
    return [i for i in stack.invocations if i.function_name == function]


def test_a_job_above_the_inline_threshold_is_counted_by_the_distributed_map(stack):
    stack, observer = stack
    # Given a job of 1,500 files of one record each, far above the inline threshold of 100 files
    Seeder(stack, DOMAIN).add("_profile", FILES, DAY0, DAY0 + timedelta(hours=20), seed=11)
    count_records = stack.physical_id("CountRecordsFunction")
    before = len(_count_records_calls(stack, count_records))

    # When the export runs
    result = run(stack, SCHEDULED, timeout=600)

    # Then it succeeds, counted by a Map run whose children were the real CountRecords function
    assert result["status"] == "SUCCEEDED", result
    events = _events(stack, result)
    assert "MapRunStarted" in events and "MapRunSucceeded" in events
    calls = _count_records_calls(stack, count_records)[before:]
    assert len([c for c in calls if c.error_type is None]) == FILES // 200 + (FILES % 200 > 0)  # 200 files a batch

    # The manifest lists every file of the job exactly once, with S3's ETag, and the totals add up
    (record,) = observer.runs(DOMAIN, "_profile")
    manifest = observer.read_json(record["manifestKey"])
    assert (manifest["counting"], manifest["fileCount"], manifest["recordCount"]) == ("distributed", FILES, FILES)
    assert (record["files"], record["records"]) == (FILES, FILES)
    listed = observer.manifest_files(record["manifestKey"])
    prefix = listed[0]["key"].rsplit("/", 1)[0] + "/"
    s3 = stack.client("s3")
    in_bucket = {
        item["Key"]: item["ETag"].strip('"')
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=observer.bucket, Prefix=prefix)
        for item in page["Contents"]
    }
    assert len(in_bucket) == FILES
    assert Counter(f["key"] for f in listed) == Counter(in_bucket.keys())  # each file once
    assert all(f["etag"] == in_bucket[f["key"]] and f["records"] == 1 for f in listed)
    assert observer.watermark(DOMAIN, "_profile") == "2026-11-01T23:30:00Z"
    # downstream jobs are told the same totals
    (event,) = observer.result_events()
    assert (event["detail"]["files"], event["detail"]["records"]) == (FILES, FILES)


def test_an_export_without_files_still_succeeds(stack):
    stack, observer = stack
    # Given an object type whose window holds nothing (the job writes no file)
    result = run(stack, {"scheduledTime": "2026-11-03T00:00:00Z"}, timeout=120)

    assert result["status"] == "SUCCEEDED", result
    runs = observer.runs(DOMAIN, "_profile")
    assert runs[-1]["windowEnd"] == "2026-11-02T23:30:00Z" and runs[-1]["files"] == 0
    assert observer.watermark(DOMAIN, "_profile") == "2026-11-02T23:30:00Z"


def test_with_record_counting_off_no_map_runs_and_the_manifest_has_no_record_counts(stack):
    offline, _ = stack
    # Given a stack of the same template deployed with CountRecords=false
    other = offline.add_stack(
        "e2e-nocount",
        {
            "DomainNames": "nocount",
            "ObjectTypes": "_profile",
            "InitialStartTime": "2026-11-01T00:00:00Z",
            "InlineIndexMaxFiles": INLINE_MAX,
            "CountRecords": "false",
        },
    )
    try:
        observer = PipelineObserver(other, name="nocount")  # type: ignore[arg-type]
        Seeder(offline, "nocount").add("_profile", 150, DAY0, DAY0 + timedelta(hours=20), seed=12)
        count_records = other.physical_id("CountRecordsFunction")

        # When a job of 150 files (above the threshold) is exported
        result = other.run_execution(SCHEDULED, timeout=300)

        # Then it succeeds without a Map run or a CountRecords call, and the manifest lists files, not records
        assert result["status"] == "SUCCEEDED", result
        assert "MapRunStarted" not in _events(other, result)
        assert _count_records_calls(offline, count_records) == []
        (record,) = observer.runs("nocount", "_profile")
        manifest = observer.read_json(record["manifestKey"])
        assert (manifest["counting"], manifest["fileCount"], manifest["recordCount"]) == ("listing", 150, None)
        assert {f["records"] for f in observer.manifest_files(record["manifestKey"])} == {None}
    finally:
        offline.remove_stack(other)
