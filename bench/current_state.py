"""The current-state table against the view over every export: bytes read and wall time, as the days add up.

In one process, on moto's Glue and S3 (in-process `mock_aws`), with the offline Athena (`local.athena`)
running the production SQL of `cpexport.current_state` and `cpexport.catalog`:

- day 0 exports every object of one domain (one partition, JSON Lines files of `records_per_file`
  lines, as the service writes them); each later day exports the objects that changed that day (a
  fixed share, `synthetic.mutate`) as one more partition, registered in Glue (`partition_input`);
- after each day its partition is merged into the `_state` Iceberg table (`merge_statement`), timed,
  with the bytes it read; a VACUUM (snapshots expired at once) keeps only the current data file, so
  moto's memory stays bounded (not timed; reads only ever touch the current snapshot);
- at each checkpoint the current count is asked of the state table (the saved query "Current count by
  object type", over `current_by_type`) and of the type's `*_current` view (newest version per id over
  every export), and at the last one an id's lookup of each; each with the bytes read from S3 (the whole
  sizes of the objects the engine read) and its wall time;
- then a reconcile: some objects leave the domain, a full export of the live ones is merged, and
  `record_deleted_statement` + `apply_deleted_statement` run, timed, with their bytes.

`python -m bench.current_state --sizes full --out f.json` writes the section; `bench.__main__` runs it
in a process of its own.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OBJECT_TYPE = "_order"
DOMAIN = "bench-domain"
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "bench-exports"
PREFIX = "exports"
DATABASE = "bench_current_state"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
T0_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
HISTORY_MS = 30 * DAY_MS  # day 0's objects were last updated in the 30 days before it


def _day_label(day: int) -> str:
    return f"{day}d"


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


class Simulation:
    """One domain's exports of one object type, day by day, and the state table they are merged into."""

    def __init__(self, glue: Any, s3: Any, records_per_file: int) -> None:
        from cpexport.catalog import catalog_plan, exports_root_location
        from cpexport.clients.glue import GlueCatalog

        from local.athena.executor import AthenaEngine

        self.glue, self.s3 = glue, s3
        self.records_per_file = records_per_file
        self.engine = AthenaEngine(glue=glue, s3=s3)
        plan = catalog_plan(DATABASE, [OBJECT_TYPE], exports_root_location(BUCKET, PREFIX, ACCOUNT))
        GlueCatalog(glue).ensure_catalog(plan)
        self.table = plan.tables[0]
        self.export_bytes = 0
        self.export_files = 0

    def export(self, objects: list[dict[str, Any]], start_ms: int, end_ms: int, *, backfill: bool) -> tuple[str, ...]:
        """Write one export job's files (requested an hour after its window) and register its partition."""
        from cpexport.catalog import partition_input, partition_values

        from local.emulator.layout import export_folder, new_file_key

        request_ms = end_ms + HOUR_MS
        folder = export_folder(PREFIX, ACCOUNT, DOMAIN, request_ms, start_ms, end_ms, OBJECT_TYPE)
        ordered = sorted(objects, key=lambda o: (o["lastUpdated"], o["id"]))
        for i in range(0, len(ordered), self.records_per_file):
            body = "".join(json.dumps(o) + "\n" for o in ordered[i : i + self.records_per_file]).encode()
            self.s3.put_object(Bucket=BUCKET, Key=new_file_key(folder), Body=body)
            self.export_bytes += len(body)
            self.export_files += 1
        values = partition_values(DOMAIN, _at(start_ms), _at(end_ms), _at(request_ms), backfill)
        self.glue.create_partition(
            DatabaseName=DATABASE,
            TableName=self.table["Name"],
            PartitionInput=partition_input(self.table, values, f"s3://{BUCKET}/{folder}/"),
        )
        return tuple(values)

    def run(self, sql: str) -> tuple[Any, float]:
        """One statement through the offline Athena: its result and wall seconds."""
        began = time.perf_counter()
        result = self.engine.execute(sql, DATABASE)
        return result, time.perf_counter() - began


def _timed(simulation: Simulation, sql: str) -> dict[str, Any]:
    result, seconds = simulation.run(sql)
    return {
        "bytes": result.bytes_scanned,
        "seconds": round(seconds, 3),
        "files": len(result.files_read),
        "rows": result.rows,
        "update_count": result.update_count,
    }


def simulate(
    objects: int,
    changed_per_day: int,
    checkpoints: tuple[int, ...],
    records_per_file: int,
    deleted_before_reconcile: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole simulation on moto (the caller holds `mock_aws`); the `current` section."""
    progress = progress or functools.partial(print, flush=True)
    import boto3
    from cpexport.catalog import CURRENT_COUNT_BY_OBJECT_TYPE, state_table_name, view_name
    from cpexport.current_state import PartitionRef, create_statements, merge_statement, vacuum_statement

    from local.emulator.synthetic import generate, mutate

    began = time.monotonic()
    glue = boto3.client("glue", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    sim = Simulation(glue, s3, records_per_file)
    state, view = state_table_name(OBJECT_TYPE), view_name(OBJECT_TYPE)
    for statement in create_statements(DATABASE, OBJECT_TYPE, BUCKET, PREFIX):
        sim.run(statement)
    # A weekly VACUUM on AWS keeps 5 days of snapshots; here every merge's old file goes at once (memory).
    sim.run(f"ALTER TABLE {DATABASE}.{state} SET TBLPROPERTIES ('vacuum_max_snapshot_age_seconds'='0')")

    def merge(values: tuple[str, ...], expected: int) -> dict[str, Any]:
        figures = _timed(sim, merge_statement(DATABASE, OBJECT_TYPE, [PartitionRef(values)]))
        if figures["update_count"] != expected:
            raise RuntimeError(f"a merge changed {figures['update_count']} rows, not {expected}")
        sim.run(vacuum_statement(DATABASE, state))
        return figures

    live = {o["id"]: o for o in generate(OBJECT_TYPE, objects, T0_MS - HISTORY_MS, T0_MS, seed=1)}
    initial = merge(sim.export(list(live.values()), T0_MS - HISTORY_MS, T0_MS, backfill=True), objects)
    progress(f"  day 0: {objects:,} objects merged in {initial['seconds']:.2f} s")
    merges: list[dict[str, Any]] = []
    section: dict[str, Any] = {
        "object_type": OBJECT_TYPE,
        "objects": objects,
        "changed_per_day": changed_per_day,
        "records_per_file": records_per_file,
        "days": max(checkpoints),
        "table_bytes": {},
        "view_bytes": {},
        "table_seconds": {},
        "view_seconds": {},
        "lookup_bytes": {"table": {}, "view": {}},
        "lookup_seconds": {"table": {}, "view": {}},
        "counts": {},
        "export_bytes": {},
        "merge_seconds_by_checkpoint": {},
    }
    for day in range(1, max(checkpoints) + 1):
        start = T0_MS + (day - 1) * DAY_MS
        changed = mutate(list(live.values()), changed_per_day, start, seed=day, spread_ms=DAY_MS)
        live.update((o["id"], o) for o in changed)
        merges.append(merge(sim.export(changed, start, start + DAY_MS, backfill=False), len(changed)))
        if day not in checkpoints:
            continue
        label = _day_label(day)
        table = _timed(sim, CURRENT_COUNT_BY_OBJECT_TYPE)
        over_view = _timed(sim, f"SELECT domain, count(*) AS objects FROM {view} GROUP BY domain ORDER BY domain")
        counts = {"table": int(table["rows"][0][2]), "view": int(over_view["rows"][0][1])}
        if counts != {"table": objects, "view": objects}:
            raise RuntimeError(f"after {label} the current counts are {counts}, not {objects}")
        section["table_bytes"][label], section["table_seconds"][label] = table["bytes"], table["seconds"]
        section["view_bytes"][label], section["view_seconds"][label] = over_view["bytes"], over_view["seconds"]
        section["counts"][label] = counts
        section["export_bytes"][label] = sim.export_bytes
        section["merge_seconds_by_checkpoint"][label] = round(statistics.median(m["seconds"] for m in merges), 3)
        progress(
            f"  {label}: count over the table {table['bytes']:,} bytes in {table['seconds']:.2f} s, over the view"
            f" {over_view['bytes']:,} bytes in {over_view['seconds']:.2f} s; merges so far, median"
            f" {section['merge_seconds_by_checkpoint'][label]:.2f} s ({time.monotonic() - began:.0f} s in)"
        )
        if day == max(checkpoints):
            wanted = changed[0]  # changed today: the view must rank its versions to find it
            for source, name in (("table", f"{DATABASE}.{state}"), ("view", view)):
                found = _timed(sim, f"SELECT id, lastupdated FROM {name} WHERE id = '{wanted['id']}'")  # nosec B608
                if found["rows"] != [[wanted["id"], str(wanted["lastUpdated"])]]:
                    raise RuntimeError(f"the lookup over the {source} found {found['rows']}")
                section["lookup_bytes"][source][label] = found["bytes"]
                section["lookup_seconds"][source][label] = found["seconds"]
            progress(
                f"  {label} lookup: table {section['lookup_bytes']['table'][label]:,} bytes, view"
                f" {section['lookup_bytes']['view'][label]:,} bytes"
            )
    daily = [m["seconds"] for m in merges]
    section["merges"] = len(merges)
    section["merge_seconds"] = round(statistics.median(daily), 3)
    section["merge_seconds_max"] = round(max(daily), 3)
    section["merge_bytes"] = int(statistics.median(m["bytes"] for m in merges))
    section["merge_bytes_max"] = max(m["bytes"] for m in merges)
    section["initial_merge"] = {"seconds": initial["seconds"], "bytes": initial["bytes"], "rows": objects}
    section["reconcile"] = _reconcile(sim, live, deleted_before_reconcile, max(checkpoints))
    section["reconcile_seconds"] = section["reconcile"]["seconds"]
    section["reconcile_bytes"] = section["reconcile"]["bytes"]
    last, first = _day_label(max(checkpoints)), _day_label(min(checkpoints))
    section["table_bytes_last_over_first"] = round(section["table_bytes"][last] / section["table_bytes"][first], 3)
    section["table_over_view_bytes"] = round(section["table_bytes"][last] / section["view_bytes"][last], 5)
    section["wall_s"] = round(time.monotonic() - began, 1)
    return section


def _reconcile(sim: Simulation, live: dict[str, dict[str, Any]], leaving: int, days: int) -> dict[str, Any]:
    """Objects leave the domain; a full export of the rest is merged, then the reconcile's two statements."""
    from cpexport.catalog import CURRENT_COUNT_BY_OBJECT_TYPE
    from cpexport.current_state import (
        PartitionRef,
        apply_deleted_statement,
        merge_statement,
        reconcile_cutoff,
        reconcile_label,
        record_deleted_statement,
    )

    gone = random.Random("reconcile").sample(sorted(live), leaving)
    remaining = [o for i, o in live.items() if i not in set(gone)]
    start, end = T0_MS - HISTORY_MS, T0_MS + days * DAY_MS
    ref = PartitionRef(sim.export(remaining, start, end, backfill=True))
    requested = _at(end + HOUR_MS)
    merged = _timed(sim, merge_statement(DATABASE, OBJECT_TYPE, [ref]))
    cutoff = reconcile_cutoff(_at(end), requested)
    label = reconcile_label(ref, "bench")
    recorded = _timed(sim, record_deleted_statement(DATABASE, OBJECT_TYPE, [ref], cutoff, label, requested, requested))
    applied = _timed(sim, apply_deleted_statement(DATABASE, OBJECT_TYPE, DOMAIN, requested + timedelta(seconds=1)))
    count = int(_timed(sim, CURRENT_COUNT_BY_OBJECT_TYPE)["rows"][0][2])
    if (recorded["update_count"], applied["update_count"], count) != (leaving, leaving, len(remaining)):
        raise RuntimeError(
            f"the reconcile recorded {recorded['update_count']}, removed {applied['update_count']},"
            f" left {count} (expected {leaving}, {leaving}, {len(remaining)})"
        )
    return {
        "left_the_domain": leaving,
        "full_export_objects": len(remaining),
        "full_export_merge_seconds": merged["seconds"],
        "full_export_merge_bytes": merged["bytes"],
        "record_deleted_seconds": recorded["seconds"],
        "record_deleted_bytes": recorded["bytes"],
        "apply_deleted_seconds": applied["seconds"],
        "apply_deleted_bytes": applied["bytes"],
        "seconds": round(recorded["seconds"] + applied["seconds"], 3),
        "bytes": recorded["bytes"] + applied["bytes"],
        "count_after": count,
    }


def measure(
    objects: int, changed_per_day: int, checkpoints: tuple[int, ...], records_per_file: int, leaving: int
) -> dict[str, Any]:
    """The simulation on an in-process moto account (fake credentials, nothing leaves the process)."""
    for name, value in (
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ):
        os.environ[name] = value
    from moto import mock_aws

    # sqlglot warns that VACUUM falls back to a Command, at every merge: the engine parses it by hand.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    with mock_aws():
        return simulate(objects, changed_per_day, checkpoints, records_per_file, leaving)


def main(argv: list[str] | None = None) -> int:
    from bench.sizes import SIZES

    parser = argparse.ArgumentParser(prog="python -m bench.current_state", description=__doc__)
    parser.add_argument("--sizes", choices=sorted(SIZES), default="full")
    parser.add_argument("--days", type=int, nargs="+", default=None, help="checkpoints (default: the size's)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sizes = SIZES[args.sizes]
    checkpoints = tuple(args.days) if args.days else sizes.current_days
    section = measure(
        sizes.current_objects,
        sizes.current_changed_per_day,
        checkpoints,
        sizes.current_records_per_file,
        sizes.current_leaving,
    )
    args.out.write_text(json.dumps(section, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
