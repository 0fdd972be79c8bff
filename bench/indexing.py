"""Indexing on the offline stack: a job of N files indexed by the real state machine, against bare S3 work.

For each size, an export job is started by the pipeline as usual; the emulator keeps it running
(`never_ending_object_types`) while the benchmark writes its N files straight into moto's S3, in the
service's layout and encrypted with the export key (writing 100,000 files through the API would
take longer than the benchmark may); then the job is ended COMPLETED and the pipeline polls, settles,
counts and writes the manifest. The index's wall time runs from the first IndexExport state to the
end of the export, without the settle Waits (deliberate pauses for late files, 120 s each on AWS,
reported apart). Right after, in the same process, the same folder is listed bare, and listed and
read in full with the parallelism the index used (sandboxes x read threads), as the baselines, by
the Index function's role (so both sides pay the offline IAM evaluation of every request), with SDK
clients set up as the pipeline's are (`cpexport.clients.timestamps`: the baselines do not pay for
parsing listings' dates with dateutil, which the pipeline no longer does either).

The threshold between the two ways of counting (`InlineIndexMaxFiles`: the Index function reads
every file itself up to that many files, a Distributed Map counts larger jobs) is measured: jobs of
a few sizes around it are indexed once each way (the Index function's `INLINE_INDEX_MAX_FILES`
switched between the runs) and the crossover is where the Distributed Map becomes the faster.

Run: `python -m bench.indexing --files 10000 100000 --out FILE`.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cpexport.indexing import READ_THREADS

from bench.history import split_by_iteration

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "bench"
INITIAL = datetime(2024, 1, 1, tzinfo=UTC)
RECORDS_PER_FILE = 10  # small files: the cost that grows is per file (a request each), not per byte
PARAMETERS = {
    "DomainNames": DOMAIN,
    "InitialStartTime": "2024-01-01T00:00:00Z",
    "MaxConcurrentExports": "20",
}
SETTLE_STATE = "WaitForFiles"
INDEX_STATE = "IndexExport"


def object_type_of(files: int) -> str:
    """The object type whose job has `files` files."""
    return f"files_{files}"


def write_files(stack: Any, job: dict[str, Any], count: int, kms_key_arn: str) -> float:
    """Put `count` files into the job's folder straight into moto's S3 (as the service would); seconds taken."""
    from moto.s3.models import s3_backends

    from local.emulator.layout import new_file_key

    backend = s3_backends[stack.account.account_id]["aws"]
    # One file's lines with a slot for its number: rendering 10 records per file a million times would
    # take longer than writing the files.
    template = "".join(
        json.dumps({"id": f"FILE-{n}", "lastUpdated": 1704067200000 + n, "Note": "x" * 60}) + "\n"
        for n in range(RECORDS_PER_FILE)
    )
    began = time.monotonic()
    for index in range(count):
        backend.put_object(
            job["bucket"],
            new_file_key(job["folder"]),
            template.replace("FILE", f"{index:07d}").encode(),
            encryption="aws:kms",
            kms_key_id=kms_key_arn,
            bucket_key_enabled=True,
            disable_notification=True,
        )
    return time.monotonic() - began


def _s3_client(client_arguments: dict[str, Any]) -> Any:
    """An S3 client as the pipeline makes one (response timestamps read as its clients read them)."""
    from cpexport.clients.timestamps import fast_timestamp_session

    return fast_timestamp_session().client("s3", **client_arguments)


def _read_slice(arguments: tuple[dict[str, Any], str, list[str], int]) -> int:
    """A worker process: read its keys with `threads` threads (what one counting sandbox does)."""
    client_arguments, bucket, keys, threads = arguments
    s3 = _s3_client(client_arguments)

    def read(key: str) -> int:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return int(body.count(b"\n"))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(read, keys))


def _reader_credentials(stack: Any) -> Any:
    """The Index function's role (it lists and reads a job's files): the baseline pays the same offline IAM
    checks per request as the index (the administrator's requests skip them)."""
    role = stack.client("lambda").get_function_configuration(FunctionName=_index_function(stack))["Role"]
    return stack.account.broker.role_credentials(role, "lambda.amazonaws.com")


def bare_work(stack: Any, bucket: str, folder: str, processes: int) -> dict[str, float]:
    """Seconds to list the folder, and to list it and read every file with `processes` x READ_THREADS."""
    credentials = _reader_credentials(stack)
    client_arguments = {
        "endpoint_url": stack.endpoint_url,
        "region_name": "us-east-1",
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
    }
    paginator = _s3_client(client_arguments).get_paginator("list_objects_v2")
    began = time.monotonic()
    keys = [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{folder}/")
        for item in page.get("Contents", [])
    ]
    listing = time.monotonic() - began
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pool.map(_read_slice, [(client_arguments, bucket, [], 1)] * processes)  # started and imported: off the clock
        began = time.monotonic()
        keys_again = [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{folder}/")
            for item in page.get("Contents", [])
        ]
        slices = [(client_arguments, bucket, keys_again[i::processes], READ_THREADS) for i in range(processes)]
        lines = sum(pool.map(_read_slice, slices))
        listing_and_reading = time.monotonic() - began
    return {
        "files": len(keys),
        "records": lines,
        "listing_s": round(listing, 3),
        "listing_and_reading_s": round(listing_and_reading, 3),
        "reading_processes": processes,
        "read_threads": READ_THREADS,
    }


def index_timing(history: list[dict[str, Any]], time_scale: float) -> dict[str, float]:
    """The index's wall time (first IndexExport to the export's end) without its settle Waits, from the history."""
    iterations, _ = split_by_iteration(history)
    (iteration,) = iterations
    events = iteration.events
    first = next(
        e for e in events if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == INDEX_STATE
    )
    end = events[-1]["timestamp"]
    settle, entered = 0.0, None
    for event in events:
        if event["type"] == "WaitStateEntered" and event["stateEnteredEventDetails"]["name"] == SETTLE_STATE:
            entered = event["timestamp"]
        elif event["type"] == "WaitStateExited" and entered is not None:
            settle += (event["timestamp"] - entered).total_seconds()
            entered = None
    total = (end - first["timestamp"]).total_seconds()
    return {
        "wall_s": round(total - settle, 3),
        "settle_waits": sum(
            1
            for e in events
            if e["type"] == "WaitStateEntered" and e["stateEnteredEventDetails"]["name"] == SETTLE_STATE
        ),
        "settle_wait_s_unscaled": round(settle / time_scale, 1),
        "history_events": len(events),
    }


def run_size(stack: Any, files: int, timeout_by_function: dict[str, int], tick: int) -> dict[str, Any]:
    """Index one job of `files` files; its figures."""
    control = stack.emulator_control
    object_type = object_type_of(files)
    clock = INITIAL + timedelta(days=tick)
    arn = stack.start_execution({"scheduledTime": clock.strftime("%Y-%m-%dT%H:%M:%SZ"), "objectTypes": [object_type]})
    job = _wait_for_job(control, object_type)
    kms_key_arn = stack.outputs["ExportKeyArn"]
    seeding = write_files(stack, job, files, kms_key_arn)
    print(f"  {files:,} files written into the job's folder in {seeding:.0f} s", flush=True)
    before = len(stack.invocations)
    control.finish_job(job["id"])
    described = stack.wait_execution(arn, timeout=3600)
    if described["status"] != "SUCCEEDED":
        failures = [
            e["stateEnteredEventDetails"]["input"][-800:]
            for e in stack.execution_history(arn)
            if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "RecordFailure"
        ]
        raise RuntimeError(f"indexing {files} files: execution {described['status']}: {failures[-1:]}")
    invocations = stack.invocations[before:]
    timing = index_timing(stack.execution_history(arn), stack.time_scale)
    functions: dict[str, Any] = {}
    for invocation in invocations:
        row = functions.setdefault(
            invocation.logical_id, {"invocations": 0, "peak_rss_mb": 0.0, "max_duration_s": 0.0, "errors": 0}
        )
        row["invocations"] += 1
        row["peak_rss_mb"] = max(row["peak_rss_mb"], round(invocation.max_rss_kb / 1024, 1))
        row["max_duration_s"] = max(row["max_duration_s"], round(invocation.duration_ms / 1000, 3))
        row["errors"] += invocation.error_type is not None
    for logical, row in functions.items():
        row["timeout_s"] = timeout_by_function.get(logical)
        row["max_timeout_fraction"] = round(row["max_duration_s"] / row["timeout_s"], 4) if row["timeout_s"] else None
    counters = [name for name in functions if name != INDEX_STATE + "Function" and "Count" in name]
    processes = max(1, max((stack.account.runtime.workers(name) for name in counters), default=0))
    baseline = bare_work(stack, job["bucket"], job["folder"], processes)
    print(
        f"  {files:,} files indexed in {timing['wall_s']:.1f} s (listing {baseline['listing_s']:.1f} s,"
        f" listing + reading {baseline['listing_and_reading_s']:.1f} s)",
        flush=True,
    )
    return {
        **timing,
        "files": files,
        "records_per_file": RECORDS_PER_FILE,
        "seeding_s": round(seeding, 1),
        "baseline": baseline,
        "ratio_to_listing": round(timing["wall_s"] / baseline["listing_s"], 3),
        "ratio_to_listing_and_reading": round(timing["wall_s"] / baseline["listing_and_reading_s"], 3),
        "peak_rss_mb": max(row["peak_rss_mb"] for row in functions.values()),
        "max_timeout_fraction": max(row["max_timeout_fraction"] or 0 for row in functions.values()),
        "functions": functions,
        "counting": "distributed" if counters else "inline",
    }


def _wait_for_job(control: Any, object_type: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [j for j in control.jobs() if j["objectType"] == object_type and j["status"] == "IN_PROGRESS"]
        if running:
            return dict(running[-1])
        time.sleep(0.2)
    raise TimeoutError(f"no export job of {object_type} started within {timeout:.0f} s")


def index_jobs(
    stack: Any,
    sizes: tuple[int, ...],
    threshold: tuple[int, ...] = (),
    alone: tuple[int, ...] = (),
    alone_after: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Index a job of each size (smallest first) on a deployed stack whose ObjectTypes include theirs,
    then each `threshold` size once inline and once by the Distributed Map, then (once `alone_after`
    exist: the machine is otherwise quiet) a job of each `alone` size."""
    lambda_client = stack.client("lambda")
    timeouts = {
        resource.logical_id: int(lambda_client.get_function_configuration(FunctionName=resource.physical_id)["Timeout"])
        for resource in stack.deployment.of_type("AWS::Lambda::Function")
    }
    results: dict[str, Any] = {"time_scale": stack.time_scale}
    for tick, files in enumerate(sorted(sizes), start=1):
        results[str(files)] = run_size(stack, files, timeouts, tick)
    if threshold:
        results["threshold"] = measure_threshold(stack, threshold, timeouts)
    if alone:
        _wait_for_files(alone_after)
    for tick, files in enumerate(sorted(alone), start=len(sizes) + 1):
        results[str(files)] = run_size(stack, files, timeouts, tick)
    return results


def _wait_for_files(paths: tuple[Path, ...]) -> None:
    while not all(path.exists() for path in paths):
        time.sleep(1)


def _index_function(stack: Any) -> str:
    (function,) = [
        r for r in stack.deployment.of_type("AWS::Lambda::Function") if r.logical_id == "IndexExportFunction"
    ]
    return str(function.physical_id)


def _set_inline_limit(stack: Any, value: str) -> None:
    """Set the Index function's INLINE_INDEX_MAX_FILES (its next invocation starts a sandbox with it)."""
    lambda_client = stack.client("lambda")
    name = _index_function(stack)
    variables = lambda_client.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lambda_client.update_function_configuration(
        # (moto answers numbers where AWS answers strings)
        FunctionName=name,
        Environment={"Variables": {k: str(v) for k, v in variables.items()} | {"INLINE_INDEX_MAX_FILES": value}},
    )


def measure_threshold(stack: Any, sizes: tuple[int, ...], timeouts: dict[str, int]) -> dict[str, Any]:
    """Each size indexed inline and by the Distributed Map; where the Distributed Map becomes faster."""
    from cpexport.config import Settings

    rows: dict[str, Any] = {}
    for files in sorted(sizes):
        row: dict[str, Any] = {}
        for tick, (way, limit) in enumerate((("inline", str(files)), ("distributed", "0")), start=1):
            _set_inline_limit(stack, limit)
            measured = run_size(stack, files, timeouts, tick)
            expected = "inline" if way == "inline" else "distributed"
            if measured["counting"] != expected:
                raise RuntimeError(f"{files} files were counted {measured['counting']}, not {expected}")
            row[way] = {k: measured[k] for k in ("wall_s", "peak_rss_mb", "max_timeout_fraction", "history_events")}
        row["distributed_over_inline"] = round(row["distributed"]["wall_s"] / row["inline"]["wall_s"], 3)
        rows[str(files)] = row
    _set_inline_limit(stack, "")
    return {
        "sizes": rows,
        "crossover_files": crossover(
            {int(n): (r["inline"]["wall_s"], r["distributed"]["wall_s"]) for n, r in rows.items()}
        ),
        "default_inline_index_max_files": Settings.model_fields["inline_index_max_files"].default,
    }


def crossover(times: dict[int, tuple[float, float]]) -> float | None:
    """The job size (files) at which the Distributed Map becomes faster than counting inline, from
    (inline, distributed) wall times per size: log-interpolated between the last size inline wins and
    the first the Distributed Map wins; None when one way wins everywhere."""
    import itertools
    import math

    ordered = sorted(times.items())
    for (small, (inline_a, dmap_a)), (large, (inline_b, dmap_b)) in itertools.pairwise(ordered):
        if dmap_a >= inline_a and dmap_b < inline_b:
            # where log(dmap/inline) crosses zero, on log(files)
            a, b = math.log(dmap_a / inline_a), math.log(dmap_b / inline_b)
            fraction = a / (a - b) if a != b else 0.5
            return round(math.exp(math.log(small) + fraction * (math.log(large) - math.log(small))))
    return None


def run(
    sizes: tuple[int, ...],
    time_scale: float,
    log_dir: Path,
    wait_for: tuple[Path, ...] = (),
    threshold: tuple[int, ...] = (),
    alone: tuple[int, ...] = (),
    alone_after: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Deploy a stack into a fresh offline account and index a job of each size, once `wait_for` exist
    (and of each `alone` size once `alone_after` exist)."""
    from local.harness.stack import OfflineStack

    logging.getLogger("moto").setLevel(logging.CRITICAL)
    logging.getLogger("local").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Tried to parse")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    object_types = [object_type_of(n) for n in sorted(set(sizes) | set(threshold) | set(alone))]
    with OfflineStack(
        ROOT / "template.yaml",
        PARAMETERS | {"ObjectTypes": ",".join(object_types)},
        time_scale=time_scale,
        stack_name="bench-index",
        lambda_log=log_dir / "index-lambdas.log",
    ) as stack:
        # The job stays IN_PROGRESS while its files are written, and ends when told.
        stack.emulator_control.configure(never_ending_object_types=object_types)
        _wait_for_files(wait_for)  # deployed; the benchmark says when to start
        return index_jobs(stack, sizes, threshold, alone, alone_after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.indexing", description=__doc__)
    parser.add_argument("--files", type=int, nargs="*", default=[])
    parser.add_argument("--alone-files", type=int, nargs="*", default=[], help="sizes indexed last, alone")
    parser.add_argument("--alone-after", type=Path, nargs="*", default=[], help="index those once these exist")
    parser.add_argument("--threshold-files", type=int, nargs="*", default=[], help="sizes indexed both ways")
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--wait-for", type=Path, nargs="*", default=[], help="start indexing once these exist")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as logs:
        results = run(
            tuple(args.files),
            args.time_scale,
            Path(logs),
            tuple(args.wait_for),
            tuple(args.threshold_files),
            tuple(args.alone_files),
            tuple(args.alone_after),
        )
    args.out.write_text(json.dumps({"index": results}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
