"""`cpexport rebuild-current`: catch a current-state table up with every indexed export, or rebuild it.

Every successful export is in the run index with its partitions. Merging an export is idempotent and
order-free (newest version wins; a version a reconcile saw deleted never comes back), so catching up
is merging every export the run index names whose raw partition still exists, then applying the
deletions of every reconcile the watermark has confirmed again. `--rebuild` first forgets the domain's rows. Raw partitions dropped by
`RawExportRetentionDays` cannot be merged again: they are counted and named, and the table keeps
what it already took from them (a rebuild would lose it: refused unless every partition exists).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cpexport.catalog import database_name, state_table_name, table_name
from cpexport.clients.athena import Athena
from cpexport.clients.glue import GlueCatalog
from cpexport.clients.state_table import StateTable
from cpexport.current_state import (
    PartitionRef,
    apply_deleted_statement,
    clear_statement,
    count_statement,
    create_statements,
    merge_statement,
    partition_ref_of,
)

from cpexport_cli.errors import CliError


@dataclass
class RebuildReport:
    """What `rebuild-current` did for one domain and object type."""

    domain_name: str
    object_type: str
    table: str
    exports_merged: int = 0
    expired: list[str] = field(default_factory=list)
    rebuilt: bool = False
    objects: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "domainName": self.domain_name,
            "objectType": self.object_type,
            "table": self.table,
            "exportsMerged": self.exports_merged,
            "expiredPartitions": self.expired,
            "rebuilt": self.rebuilt,
            "objects": self.objects,
        }


def indexed_partitions(state: StateTable, domain_name: str, object_type: str) -> list[list[PartitionRef]]:
    """The partitions of every successful export of the run index, oldest recorded first."""
    runs = sorted(state.list_runs(domain_name, object_type), key=lambda item: str(item.get("recordedAt", "")))
    exports = []
    for item in runs:
        if item.get("status") != "SUCCEEDED":
            continue
        names = [str(p["name"]) for p in item.get("partitions") or [] if isinstance(p, dict) and p.get("name")]
        if names:
            exports.append([partition_ref_of(name) for name in names])
    return exports


def rebuild_current(
    *,
    stack_name: str,
    bucket: str,
    export_prefix: str,
    workgroup: str,
    domain_name: str,
    object_type: str,
    rebuild: bool,
    state: StateTable,
    catalog: GlueCatalog,
    athena: Athena,
    progress: Callable[[str], None],
) -> RebuildReport:
    """Merge every indexed export (still queryable) into the object type's current-state table, then apply
    every reconcile's deletions; with `rebuild`, forget the domain's rows first."""
    database = database_name(stack_name)
    report = RebuildReport(domain_name, object_type, f"{database}.{state_table_name(object_type)}")

    def run(sql: str, what: str) -> str:
        outcome = athena.run(sql, workgroup=workgroup, database=database)
        if not outcome.succeeded:
            raise CliError(f"{what} failed ({outcome.state}): {outcome.reason or 'no reason given'}")
        return outcome.query_execution_id

    exports = indexed_partitions(state, domain_name, object_type)
    raw = table_name(object_type)
    existing = {tuple(p["Values"]) for p in catalog.partitions(database, raw)}
    alive = []
    for refs in exports:
        gone = [ref for ref in refs if ref.values not in existing]
        report.expired += ["/".join(ref.values) for ref in gone]
        kept = [ref for ref in refs if ref.values in existing]
        if kept:
            alive.append(kept)
    if rebuild and report.expired:
        raise CliError(
            f"{len(report.expired)} raw partition(s) of {domain_name}/{object_type} no longer exist (raw retention): "
            "a rebuild would lose what the table took from them; catch up without --rebuild"
        )
    for sql in create_statements(database, object_type, bucket, export_prefix):
        run(sql, "creating the current-state tables")
    if rebuild:
        progress(f"forgetting {domain_name}'s rows of {report.table}")
        run(clear_statement(database, object_type, domain_name), "clearing the table")
        report.rebuilt = True
    for number, refs in enumerate(alive, start=1):
        progress(f"[{number}/{len(alive)}] merging export {'/'.join(refs[0].values[1:4])}")
        run(merge_statement(database, object_type, refs), "a merge")
        report.exports_merged += 1
    watermark = state.get_watermark(domain_name, object_type)
    if watermark is not None:
        # Only the candidates an export since their reconcile confirmed (the watermark passed them).
        progress("applying the deletions of every confirmed reconcile")
        run(apply_deleted_statement(database, object_type, domain_name, watermark), "applying deletions")
    counted = athena.rows(run(count_statement(database, object_type, domain_name), "counting"))
    report.objects = int(counted[0]["objects"] or 0) if counted else 0
    return report
