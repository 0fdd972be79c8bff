"""A large job's second settle listing is the Distributed Map's: the Index compares the children's totals with
the listing a settle period before, and finishes, counts again, or refuses.

The state machine is played by hand as the ASL runs it: IndexExport, then (SETTLING) the settle wait, then the
Distributed Map when the answer carries a counting plan (its ItemReader listing the folder, one CountRecords
child per batch), else IndexExport again. What the service writes meanwhile is written between the steps.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from cpexport.errors import ExportFilesUnsettled
from cpexport.paths import parse_stamp, render_stamp

from tests.handlers.conftest import Stack, load_event, load_handler
from tests.handlers.test_handlers import DAY1, HOUR, exported_ids, seed, until_finished
from tests.handlers.test_no_silent_loss import reconfigure

JOB_PROFILES = 1_200  # 40 records a file: 30 files, far above an inline threshold of 10
JOB_FILES = 30
LARGE = {"INLINE_INDEX_MAX_FILES": "10"}


def _completed(stack: Stack, monkeypatch: pytest.MonkeyPatch, profiles: int = JOB_PROFILES, **env: str) -> Any:
    """A COMPLETED job of `profiles` profiles of day 1 (40 per file), as CheckExport hands it to IndexExport."""
    reconfigure(monkeypatch, **(LARGE | env))
    objects = seed(stack, "_profile", profiles, DAY1, DAY1 + 20 * HOUR, seed_value=21)
    start, check = load_handler("start_export"), load_handler("check_export")
    finished = until_finished(check, start(load_event("start_export")))
    assert finished["status"] == "COMPLETED"
    return finished, objects


def _folder_items(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    """The folder as the Map's ItemReader hands it over: every page, in key order, AWS's item shape."""
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix)
    return [{"Key": o["Key"], "Size": o["Size"], "Etag": o["ETag"]} for page in pages for o in page.get("Contents", [])]


class StateMachine:
    """IndexExport -> FilesSettled? -> WaitForFiles -> ListedByCount? -> CountRecords | IndexExport, by hand."""

    def __init__(self, stack: Stack, batch_size: int | None = None) -> None:
        self.stack = stack
        self.batch_size = batch_size
        self.index, self.count = load_handler("index_export"), load_handler("count_records")
        self.map_runs = 0
        self.index_calls = 0

    def index_step(self, state: dict[str, Any]) -> dict[str, Any]:
        self.index_calls += 1
        return self.index(state)

    def map_run(self, state: dict[str, Any], while_counting: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """CountRecords: the ItemReader lists the folder, then each batch's child counts; ResultPath `$.counted`."""
        self.map_runs += 1
        counting = state["counting"]
        items = _folder_items(self.stack, counting["prefix"])
        while_counting()  # what the service writes after the Map listed the folder
        size = self.batch_size or counting["batchSize"]
        counted = [
            self.count({"Items": items[i : i + size], "BatchInput": counting}) for i in range(0, len(items), size)
        ]
        return state | {"counted": counted}

    def run(
        self,
        completed: dict[str, Any],
        during_wait: Callable[[int], None] = lambda _: None,
        while_counting: Callable[[int], None] = lambda _: None,
    ) -> dict[str, Any]:
        """Index a COMPLETED job to its end; `during_wait(n)` runs in the n-th settle wait, `while_counting(n)`
        after the n-th Map run listed the folder."""
        state = self.index_step(completed)
        waits = 0
        while state["status"] in ("SETTLING", "READY"):
            if state["status"] == "SETTLING":
                waits += 1
                during_wait(waits)
            if state["counting"] is not None and state["counting"]["mode"] == "distributed":
                state = self.map_run(state, lambda: while_counting(self.map_runs))
            state = self.index_step(state)
        return state


def _write_late_file(stack: Stack, prefix: str, name: str | None = None, records: int = 3) -> str:
    """A file the service writes into the job's folder after it reported COMPLETED (encrypted as the service does)."""
    key = f"{prefix}{name or uuid.uuid4()}"
    body = "".join(json.dumps({"id": f"late-{key[-12:]}-{i}"}) + "\n" for i in range(records))
    boto3.client("s3").put_object(
        Bucket=stack.bucket, Key=key, Body=body.encode(), ServerSideEncryption="aws:kms", SSEKMSKeyId=stack.kms_key_arn
    )
    return key


def _manifest_keys(stack: Stack, result: dict[str, Any]) -> list[str]:
    manifest = stack.read_json(result["manifestKey"])
    body = boto3.client("s3").get_object(Bucket=stack.bucket, Key=manifest["fileList"])["Body"].read().decode()
    return [json.loads(line)["key"] for line in body.splitlines() if line.strip()]


def test_the_first_listing_of_a_large_job_hands_its_distributed_counting_plan_to_the_settle_wait(stack, monkeypatch):
    # Given a COMPLETED job of 30 files, above the inline threshold of 10
    completed, _ = _completed(stack, monkeypatch)

    # When IndexExport lists it for the first time
    first = load_handler("index_export")(completed)

    # Then it is not settled yet, and the answer carries the Map's plan: the Map's listing will be the second
    assert (first["status"], first["settleAttempt"], first["settleSeconds"]) == ("SETTLING", 1, 120)
    assert first["listing"]["files"] == JOB_FILES and first["listing"]["lastKey"].startswith(
        first["counting"]["prefix"]
    )
    assert first["counting"]["mode"] == "distributed" and first["counted"] is None
    assert stack.watermark("_profile") is None


def test_counts_equal_to_the_listing_a_settle_period_before_finish_the_index_from_that_count(stack, monkeypatch):
    # Given a large job whose files do not change after COMPLETED
    completed, objects = _completed(stack, monkeypatch)
    machine = StateMachine(stack)

    # When the state machine indexes it
    result = machine.run(completed)

    # Then one Map run counted it and IndexExport ran twice: the first listing, then the comparison that finished
    assert (machine.map_runs, machine.index_calls) == (1, 2)
    assert (result["status"], result["files"], result["records"]) == ("SUCCEEDED", JOB_FILES, JOB_PROFILES)
    manifest = stack.read_json(result["manifestKey"])
    assert (manifest["counting"], manifest["fileCount"], manifest["recordCount"]) == ("distributed", 30, 1_200)
    assert sorted(exported_ids(stack, manifest)) == sorted(o["id"] for o in objects)
    assert stack.watermark("_profile") == "2026-11-01T23:30:00Z"
    assert [(r["status"], r["files"], r["records"]) for r in stack.runs("_profile")] == [("SUCCEEDED", "30", "1200")]


def test_files_written_during_the_settle_wait_are_counted_again_and_indexed_complete(stack, monkeypatch):
    # Given a large job, and a file the service writes during the first settle wait
    completed, objects = _completed(stack, monkeypatch)
    machine = StateMachine(stack)
    prefix = load_handler("index_export")(completed)["counting"]["prefix"]
    late: list[str] = []

    def service_writes(wait: int) -> None:
        if wait == 1:
            late.append(_write_late_file(stack, prefix))

    # When the state machine indexes it
    result = machine.run(completed, during_wait=service_writes)

    # Then the first count differed from the first listing, so the Map counted again, and the second count
    # agreed with the first: every file is indexed, each once
    assert (machine.map_runs, result["status"], result["files"]) == (2, "SUCCEEDED", JOB_FILES + 1)
    in_folder = [item["Key"] for item in _folder_items(stack, prefix)]
    listed = _manifest_keys(stack, result)
    assert sorted(listed) == sorted(in_folder) and len(listed) == len(set(listed)) and late[0] in listed
    assert result["records"] == JOB_PROFILES + 3 == stack.read_json(result["manifestKey"])["recordCount"]
    assert exported_ids(stack, stack.read_json(result["manifestKey"])).count(objects[0]["id"]) == 1
    assert stack.watermark("_profile") == "2026-11-01T23:30:00Z"


def test_a_file_written_after_the_map_listed_the_folder_is_seen_by_the_next_count_and_stale_parts_are_left_out(
    stack, monkeypatch
):
    # Given a large job whose files are still arriving: one during the first settle wait (so the first count
    # differs from the first listing), one after the first Map run listed the folder (while it counts) whose
    # key sorts before every other (so later counts start their batches at other keys: other part names)
    completed, _ = _completed(stack, monkeypatch)
    machine = StateMachine(stack, batch_size=7)
    prefix = load_handler("index_export")(completed)["counting"]["prefix"]
    late: list[str] = []

    def during_wait(wait: int) -> None:
        if wait == 1:
            late.append(_write_late_file(stack, prefix, name="zzzz-late"))

    def while_counting(run: int) -> None:
        if run == 1:
            late.append(_write_late_file(stack, prefix, name="0000-late"))

    # When the state machine indexes it
    result = machine.run(completed, during_wait=during_wait, while_counting=while_counting)

    # Then the second count saw the file the first one missed, a third agreed with it, and both files are indexed
    assert (machine.map_runs, result["status"], result["files"]) == (3, "SUCCEEDED", JOB_FILES + 2)
    listed = _manifest_keys(stack, result)
    assert set(late) <= set(listed)
    assert sorted(listed) == sorted(item["Key"] for item in _folder_items(stack, prefix))  # each file once
    # and the first count's parts are still in the parts folder, but the manifest took only the last count's
    parts = stack.keys(prefix.removesuffix("/") + ".manifest.parts/")
    assert len(parts) == 5 + 5  # 31 files in batches of 7, then 32 starting one key earlier: no name in common
    assert stack.read_json(result["manifestKey"])["fileCount"] == JOB_FILES + 2 == len(listed)


def test_files_that_never_stop_arriving_are_refused_once_the_attempts_run_out(stack, monkeypatch):
    # Given a large job whose folder gets a new file in every settle wait, and 3 settle attempts
    completed, _ = _completed(stack, monkeypatch, INDEX_SETTLE_ATTEMPTS="3")
    machine = StateMachine(stack)
    prefix = load_handler("index_export")(completed)["counting"]["prefix"]

    def service_writes(_: int) -> None:
        _write_late_file(stack, prefix)

    # When the state machine indexes it, Then it refuses after the third count, and nothing is indexed
    with pytest.raises(ExportFilesUnsettled, match="still changed after 3 listings"):
        machine.run(completed, during_wait=service_writes)
    assert machine.map_runs == 3
    assert stack.watermark("_profile") is None and stack.runs("_profile") == []
    manifests = [key for key in stack.keys(prefix.rsplit("/", 2)[0]) if key.endswith(".manifest.json")]
    assert manifests == []


def test_a_counted_answer_that_differs_is_settling_again_with_the_count_as_the_listing(stack, monkeypatch):
    # Given the first listing of a large job, and the Map's count after a file was added during the wait
    completed, _ = _completed(stack, monkeypatch)
    machine = StateMachine(stack)
    first = machine.index_step(completed)
    _write_late_file(stack, first["counting"]["prefix"], name="zzzz-late")

    # When IndexExport gets the Map's counts
    again = machine.index_step(machine.map_run(first))

    # Then it is SETTLING once more: attempt 2, the children's totals as the listing, the plan kept, counts cleared
    assert (again["status"], again["settleAttempt"], again["counted"]) == ("SETTLING", 2, None)
    assert again["listing"]["files"] == JOB_FILES + 1
    assert again["listing"]["lastKey"] == first["counting"]["prefix"] + "zzzz-late"
    assert again["listing"]["bytes"] > first["listing"]["bytes"]
    assert again["counting"] == first["counting"]
    assert stack.watermark("_profile") is None


def test_a_request_folder_that_appears_beside_the_counted_one_is_listed_and_indexed(stack, monkeypatch):
    # Given a large job, and a second request folder of the same window written during the settle wait
    # (a submission that ran twice): the Map lists only the first folder
    completed, _ = _completed(stack, monkeypatch)
    machine = StateMachine(stack)
    prefix = load_handler("index_export")(completed)["counting"]["prefix"]
    stamp = prefix.split("/")[-4]
    other = prefix.replace(f"/{stamp}/", f"/{render_stamp(parse_stamp(stamp) + timedelta(minutes=1))}/")
    late: list[str] = []

    def service_writes(wait: int) -> None:
        if wait == 1:
            late.append(_write_late_file(stack, other))

    # When the state machine indexes it
    result = machine.run(completed, during_wait=service_writes)

    # Then the file in the other folder is indexed too (listed by folders and counted by IndexExport)
    assert result["status"] == "SUCCEEDED" and result["files"] == JOB_FILES + 1
    assert late[0] in _manifest_keys(stack, result)
    manifest = stack.read_json(result["manifestKey"])
    assert len(manifest["requestStamps"]) == 2 and manifest["counting"] == "inline"


def test_a_small_job_is_still_settled_by_two_listings_of_the_index_and_counted_inline(stack, monkeypatch):
    # Given a COMPLETED job of 7 files, below the default inline threshold
    completed, objects = _completed(stack, monkeypatch, profiles=250, INLINE_INDEX_MAX_FILES="1000")
    index = load_handler("index_export")

    # When IndexExport runs as the state machine runs it
    first = index(completed)
    second = index(first)
    result = index(second)

    # Then the first answer carries no plan (the state machine's Choice reads `counting`: it is on the wire,
    # null), the second listing settles it, and it is counted inline
    assert first["status"] == "SETTLING" and "counting" in first and first["counting"] is None
    assert (second["status"], second["counting"]["mode"]) == ("READY", "inline")
    assert (result["status"], result["files"], result["records"]) == ("SUCCEEDED", 7, 250)
    assert stack.read_json(result["manifestKey"])["counting"] == "inline"
    assert sorted(exported_ids(stack, stack.read_json(result["manifestKey"]))) == sorted(o["id"] for o in objects)
