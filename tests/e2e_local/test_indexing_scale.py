"""Indexing a large job with the real template: its records are counted by the Distributed Map.

One file per record (the emulator's `records_per_file`) and a low `InlineIndexMaxFiles` make a job of
a modest size "large": more files than the Index function counts itself, and more than one S3 listing
page (1,000 keys), so the Map's ItemReader must page through them all.

A large job's folder is listed twice: once by the Index function, once by the Map's ItemReader a settle
period later (the settle's second listing). The listings are seen at the offline account's request gate.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from local.harness.stack import DeployedStack, OfflineStack
from local.iam.operations import ApiCall
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


def _states_entered(stack: DeployedStack, result: dict[str, Any]) -> list[str]:
    history = stack.execution_history(result["executionArn"])
    return [event["stateEnteredEventDetails"]["name"] for event in history if "stateEnteredEventDetails" in event]


def _count_records_calls(stack: OfflineStack, function: str) -> list[Any]:
    return [i for i in stack.invocations if i.function_name == function]


@dataclass
class FolderListings:
    """A request-gate check that never refuses: it notes each listing of an object type's export folder (the
    first page of a ListObjects(V2) without `max-keys`: with `max-keys=1` it only probes for files) and who
    made it.

    `on_listing(role, prefix)` runs before the request reaches S3: what it writes, the listing sees.
    """

    stack: OfflineStack
    on_listing: Callable[[str, str], None] = lambda role, prefix: None
    listings: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, call: ApiCall) -> None:
        # moto names a listing by its IAM action (ListBucket), whichever ListObjects it was
        if call.service != "s3" or call.operation not in {"ListBucket", "ListObjects", "ListObjectsV2"}:
            return
        prefix = str(call.params.get("prefix", ""))
        if not prefix.endswith("/_profile/") or "continuation-token" in call.params or call.params.get("max-keys"):
            return
        header = call.headers.get("Authorization", call.headers.get("authorization", ""))
        key = header.partition("Credential=")[2].partition("/")[0]
        principal = self.stack.account.broker.resolve(key)
        role = principal.role_name if principal is not None else ""
        if not role:
            return  # the administrator: this test itself
        with self._lock:
            self.listings.append((role, prefix))
        self.on_listing(role, prefix)


@contextmanager
def watching_listings(stack: OfflineStack, **options: Any) -> Iterator[FolderListings]:
    """Install a `FolderListings` at the offline account's request gate for the duration of the block."""
    gate = stack.account.gate
    listings = FolderListings(stack, **options)
    before = gate.limits
    gate.limits = (*before, listings)
    try:
        yield listings
    finally:
        gate.limits = before


def test_a_job_above_the_inline_threshold_is_counted_by_the_distributed_map(stack):
    stack, observer = stack
    # Given a job of 1,500 files of one record each, far above the inline threshold of 100 files
    Seeder(stack, DOMAIN).add("_profile", FILES, DAY0, DAY0 + timedelta(hours=20), seed=11)
    count_records = stack.physical_id("CountRecordsFunction")
    before = len(_count_records_calls(stack, count_records))

    # When the export runs
    with watching_listings(stack) as watched:
        result = run(stack, SCHEDULED, timeout=600)

    # Then it succeeds, counted by a Map run whose children were the real CountRecords function
    assert result["status"] == "SUCCEEDED", result
    events = _events(stack, result)
    assert events.count("MapRunStarted") == 1 and "MapRunSucceeded" in events
    # and the job's folder was listed twice, a settle wait apart: by the Index function, then by the Map
    assert len({prefix for _, prefix in watched.listings}) == 1, watched.listings
    roles = [role for role, _ in watched.listings]
    indexer, state_machine = stack.physical_id("IndexExportFunctionRole"), stack.physical_id("ExportStateMachineRole")
    # (the third listing is Athena's, as the state machine's role: the MERGE into the current-state table reads
    # the indexed partition once, after the index)
    assert roles == [indexer, state_machine, state_machine]
    assert _states_entered(stack, result).count("WaitForFiles") == 1
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


def test_files_that_arrive_as_the_map_lists_the_folder_are_counted_again_and_indexed_complete(stack):
    stack, observer = stack
    # Given a job of 150 files (above the threshold of 100) and a service that writes two more files just
    # as the Distributed Map lists the folder for the first time (after the Index function's first listing)
    Seeder(stack, DOMAIN).add("_profile", 150, DAY0 + timedelta(days=8), DAY0 + timedelta(days=8, hours=20), seed=13)
    s3, key_arn = stack.client("s3"), stack.outputs["ExportKeyArn"]
    map_role = stack.physical_id("ExportStateMachineRole")
    late: list[str] = []

    def service_writes(role: str, prefix: str) -> None:
        if role == map_role and not late:
            for name in ("0-late-file", "z-late-file"):
                late.append(prefix + name)
                s3.put_object(
                    Bucket=observer.bucket,
                    Key=prefix + name,
                    Body=b'{"id": "late"}\n',
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=key_arn,
                )

    # When the export runs
    with watching_listings(stack, on_listing=service_writes) as watched:
        result = run(stack, {"scheduledTime": "2026-11-10T00:00:00Z"}, timeout=300)

    # Then the first count differed from the first listing, the Map counted again after another settle wait,
    # and the export is indexed with every file: never short
    assert result["status"] == "SUCCEEDED", result
    assert _events(stack, result).count("MapRunStarted") == 2
    assert _states_entered(stack, result).count("WaitForFiles") == 2
    # (the last listing is Athena's MERGE reading the indexed partition, as the state machine's role)
    assert [role == map_role for role, _ in watched.listings] == [False, True, True, True]
    record = observer.runs(DOMAIN, "_profile")[-1]
    assert (record["windowEnd"], record["files"], record["records"]) == ("2026-11-09T23:30:00Z", 152, 152)
    listed = [f["key"] for f in observer.manifest_files(record["manifestKey"])]
    assert len(listed) == len(set(listed)) == 152 and set(late) <= set(listed)
    assert observer.watermark(DOMAIN, "_profile") == "2026-11-09T23:30:00Z"
