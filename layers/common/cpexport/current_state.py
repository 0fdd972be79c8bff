"""The current-state tables: Apache Iceberg tables kept by Athena `MERGE INTO` (pure SQL text, no boto3).

Per object type two Iceberg tables in the stack's Glue database:

- `{stem}_state`: the newest version of each **live** object (the current view's columns: the
  object's columns, the export it came from, its source file). Every indexed export is merged into
  it: newest version wins, with the views' tie rules (`lastupdated`, then `requested_at`,
  `window_end`, `source_file`), so a replayed or out-of-order merge changes nothing.
- `{stem}_deleted`: the objects a **reconcile** (a full export) found gone: `(domain, id,
  lastupdated)` of the version that was deleted, `deleted_by` (the reconcile's window and request)
  and `detected_at`. A merge never brings back a version a reconcile saw deleted; a newer version
  (the id shows up again) is current again.

A reconcile compares the full export with the state table: an id whose newest known version was
updated before the full export's cutoff (its window end, and 30 minutes before its request: the
service's lag) and that is absent from it was deleted (or merged away). Newer ids prove nothing.

The SQL is Athena's dialect (Trino DML, Hive DDL), written once: the state machine sends it to
Athena (`athena:startQueryExecution.sync`), the CLI sends it too, and offline `local/athena`
translates the same text to DuckDB with sqlglot. Every name in it comes from `catalog` (checked
patterns) and every value is a rendered time or a checked domain name, hence bandit's B608 waivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cpexport.catalog import (
    ID,
    PARTITION_KEY_NAMES,
    Column,
    current_view_columns,
    data_columns,
    deleted_table_name,
    is_standard,
    state_table_name,
    table_name,
)
from cpexport.errors import ConfigurationError
from cpexport.models import (
    DOMAIN_NAME_PATTERN,
    CatalogPartition,
    CurrentStateStatements,
    CurrentStateUpdate,
    render_utc,
    to_epoch_ms,
)

# Beside the exports' `{prefix}/{account}/` folder, never inside it: raw retention expires that folder only.
CURRENT_STATE_FOLDER = "current-state"
# Data from the last 30 minutes may be missing from an export (the service's documented lag).
SERVICE_LAG = timedelta(minutes=30)
# Table property naming, per domain, the cutoff of the last reconcile: the table is exact as of then.
EXACT_AS_OF_PROPERTY = "exact_as_of"
_TIE_ORDER = ("lastupdated", "requested_at", "window_end", "source_file")


def current_state_location(bucket: str, export_prefix: str, table: str) -> str:
    """`s3://bucket/{prefix}/current-state/{table}/`: a folder of its own (Iceberg needs one, not a bucket root)."""
    head = f"{export_prefix.strip('/')}/" if export_prefix.strip("/") else ""
    return f"s3://{bucket}/{head}{CURRENT_STATE_FOLDER}/{table}/"


def exact_property(domain_name: str) -> str:
    """The table property holding a domain's last reconcile cutoff."""
    return f"{EXACT_AS_OF_PROPERTY}.{_domain(domain_name)}"


DELETED_COLUMNS: tuple[Column, ...] = (
    Column("domain", "string", "Customer Profiles domain"),
    ID,
    Column("lastupdated", "bigint", "the last version known before the object was deleted (epoch ms)"),
    Column("deleted_by", "string", "the reconcile that found it gone: its window and request"),
    Column("detected_at", "string", "when that reconcile's full export was requested, UTC"),
    Column("confirm_after", "string", "removed from the state table once the watermark reaches this, UTC"),
)


def _domain(domain_name: str) -> str:
    if not DOMAIN_NAME_PATTERN.match(domain_name):
        raise ConfigurationError(f"not a Customer Profiles domain name: {domain_name!r}")
    return domain_name


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ddl(database: str, table: str, columns: Sequence[Column], location: str) -> str:
    body = ",\n  ".join(f"`{column.name}` {column.type}" for column in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{table} (\n  {body}\n)\n"
        f"LOCATION {_literal(location)}\n"
        "TBLPROPERTIES ('table_type'='ICEBERG', 'format'='parquet')"
    )


def create_statements(database: str, object_type: str, bucket: str, export_prefix: str) -> list[str]:
    """`CREATE TABLE IF NOT EXISTS` of both Iceberg tables of an object type (idempotent)."""
    state, deleted = state_table_name(object_type), deleted_table_name(object_type)
    return [
        _ddl(
            database,
            state,
            current_view_columns(object_type),
            current_state_location(bucket, export_prefix, state),
        ),
        _ddl(
            database,
            deleted,
            DELETED_COLUMNS,
            current_state_location(bucket, export_prefix, deleted),
        ),
    ]


@dataclass(frozen=True)
class PartitionRef:
    """One export partition: its values in the order of `catalog.PARTITION_KEY_NAMES`."""

    values: tuple[str, ...]

    def predicate(self, alias: str) -> str:
        """`alias.domain = '...' AND alias.window_start = '...' AND ...`."""
        return " AND ".join(
            f"{alias}.{key} = {_literal(value)}" for key, value in zip(PARTITION_KEY_NAMES, self.values, strict=True)
        )


def _partitions_predicate(partitions: Sequence[PartitionRef], alias: str) -> str:
    if not partitions:
        raise ValueError("a merge needs at least one export partition")
    domains = {partition.values[0] for partition in partitions}
    for domain in domains:
        _domain(domain)
    if len(partitions) == 1:
        return partitions[0].predicate(alias)
    return "(" + " OR ".join(f"({partition.predicate(alias)})" for partition in partitions) + ")"


def _parsed_columns(object_type: str, alias: str) -> str:
    """The current view's columns read from the raw table (custom types parse `id`/`lastUpdated` off the line)."""
    partitions = ", ".join(f"{alias}.{key}" for key in PARTITION_KEY_NAMES)
    if is_standard(object_type):
        columns = ", ".join(f"{alias}.{column.name}" for column in data_columns(object_type))
    else:
        columns = (
            f"json_extract_scalar({alias}.line, '$.id') AS id, "
            f"TRY_CAST(json_extract_scalar({alias}.line, '$.lastUpdated') AS bigint) AS lastupdated, "
            f"{alias}.line AS object"
        )
    return f'{columns}, {partitions}, {alias}."$path" AS source_file'


def _newer(source: str, target: str) -> str:
    # (s.lastupdated, s.requested_at, s.window_end, s.source_file) > (t. ...), lexicographically.
    clause = f"{source}.{_TIE_ORDER[-1]} > {target}.{_TIE_ORDER[-1]}"
    for column in reversed(_TIE_ORDER[:-1]):
        clause = f"{source}.{column} > {target}.{column} OR ({source}.{column} = {target}.{column} AND ({clause}))"
    return clause


def merge_statement(database: str, object_type: str, partitions: Sequence[PartitionRef]) -> str:
    """`MERGE INTO {stem}_state` from one indexed export's partitions: newest version wins, idempotent.

    The source holds one row per (domain, id) (Athena refuses a target row matched twice): the
    export's newest version of each id, ranked as the views rank, less any version a reconcile saw
    deleted (an id updated after its deletion is current again).
    """
    columns = [column.name for column in current_view_columns(object_type)]
    raw, state, deleted = table_name(object_type), state_table_name(object_type), deleted_table_name(object_type)
    ranking = ", ".join(f"{column} DESC" for column in _TIE_ORDER)
    updates = ", ".join(f"{column} = s.{column}" for column in columns if column not in ("domain", "id"))
    inserted = ", ".join(columns)
    values = ", ".join(f"s.{column}" for column in columns)
    return (
        f"MERGE INTO {database}.{state} AS t\n"  # nosec B608
        "USING (\n"
        f"  SELECT {', '.join(f'v.{column}' for column in columns)}\n"
        "  FROM (\n"
        f"    SELECT parsed.*, row_number() OVER (PARTITION BY domain, id ORDER BY {ranking}) AS version_rank\n"
        f"    FROM (SELECT {_parsed_columns(object_type, 'r')} FROM {database}.{raw} AS r\n"
        f"          WHERE {_partitions_predicate(partitions, 'r')}) AS parsed\n"
        "    WHERE id IS NOT NULL AND lastupdated IS NOT NULL\n"
        "  ) AS v\n"
        f"  LEFT JOIN {database}.{deleted} AS d\n"
        "    ON d.domain = v.domain AND d.id = v.id AND d.lastupdated >= v.lastupdated\n"
        "  WHERE v.version_rank = 1 AND d.id IS NULL\n"
        ") AS s\n"
        "ON t.domain = s.domain AND t.id = s.id\n"
        f"WHEN MATCHED AND ({_newer('s', 't')}) THEN UPDATE SET {updates}\n"
        f"WHEN NOT MATCHED THEN INSERT ({inserted}) VALUES ({values})"
    )


def reconcile_cutoff(window_end: datetime, requested_at: datetime) -> datetime:
    """Objects last updated before this are in a full export if they exist: its window end, or 30 minutes
    before its request when that is earlier (data from the last 30 minutes may be missing)."""
    return min(window_end, requested_at - SERVICE_LAG)


def reconcile_label(partition: PartitionRef, request_key: str) -> str:
    """What `deleted_by` says: the full export's window and request time, and the request it answered."""
    domain, start, end, requested, _ = partition.values
    return f"reconcile {domain} {start}..{end} requested {requested} ({request_key})"


def record_deleted_statement(
    database: str,
    object_type: str,
    partitions: Sequence[PartitionRef],
    cutoff: datetime,
    label: str,
    detected_at: datetime,
    confirm_after: datetime,
) -> str:
    """`MERGE INTO {stem}_deleted`: live ids older than the cutoff that the full export does not hold (idempotent).

    These are candidates: an object updated after the full export's window is absent from it too, and
    only an export covering the time since (the watermark past `confirm_after`) tells the two apart.
    """
    raw, state, deleted = table_name(object_type), state_table_name(object_type), deleted_table_name(object_type)
    domains = {partition.values[0] for partition in partitions}
    if len(domains) != 1:
        raise ValueError(f"a reconcile covers one domain, not {sorted(domains)}")
    domain = _domain(domains.pop())
    raw_id = "r.id" if is_standard(object_type) else "json_extract_scalar(r.line, '$.id')"
    return (
        f"MERGE INTO {database}.{deleted} AS d\n"  # nosec B608
        "USING (\n"
        "  SELECT c.domain, c.id, c.lastupdated\n"
        f"  FROM {database}.{state} AS c\n"
        f"  LEFT JOIN (SELECT DISTINCT {raw_id} AS id FROM {database}.{raw} AS r\n"
        f"             WHERE {_partitions_predicate(partitions, 'r')}) AS present\n"
        "    ON present.id = c.id\n"
        f"  WHERE c.domain = {_literal(domain)} AND c.lastupdated < {to_epoch_ms(cutoff)} AND present.id IS NULL\n"
        ") AS s\n"
        "ON d.domain = s.domain AND d.id = s.id AND d.lastupdated = s.lastupdated\n"
        "WHEN NOT MATCHED THEN INSERT (domain, id, lastupdated, deleted_by, detected_at, confirm_after) "
        f"VALUES (s.domain, s.id, s.lastupdated, {_literal(label)}, {_literal(render_utc(detected_at))}, "
        f"{_literal(render_utc(confirm_after))})"
    )


def apply_deleted_statement(database: str, object_type: str, domain_name: str, watermark: datetime) -> str:
    """`MERGE INTO {stem}_state ... DELETE`: every candidate whose reconcile the watermark has passed leaves the
    state table, unless a newer version of it arrived meanwhile (the object lived on: it was only updated
    after the full export's window). Idempotent."""
    state, deleted = state_table_name(object_type), deleted_table_name(object_type)
    return (
        f"MERGE INTO {database}.{state} AS t\n"  # nosec B608
        "USING (\n"
        f"  SELECT domain, id, max(lastupdated) AS lastupdated FROM {database}.{deleted}\n"
        f"  WHERE domain = {_literal(_domain(domain_name))} AND confirm_after <= {_literal(render_utc(watermark))}\n"
        "  GROUP BY domain, id\n"
        ") AS s\n"
        "ON t.domain = s.domain AND t.id = s.id\n"
        "WHEN MATCHED AND t.lastupdated <= s.lastupdated THEN DELETE"
    )


def exact_statement(database: str, object_type: str, domain_name: str, cutoff: datetime) -> str:
    """Record on the state table since when a domain's rows are exact (the reconcile's cutoff)."""
    return (
        f"ALTER TABLE {database}.{state_table_name(object_type)} "
        f"SET TBLPROPERTIES ({_literal(exact_property(domain_name))}={_literal(render_utc(cutoff))})"
    )


def clear_statement(database: str, object_type: str, domain_name: str) -> str:
    """Forget a domain's rows of the state table (a rebuild merges every export again afterwards)."""
    return f"DELETE FROM {database}.{state_table_name(object_type)} WHERE domain = {_literal(_domain(domain_name))}"  # nosec B608


def count_statement(database: str, object_type: str, domain_name: str) -> str:
    """How many live objects of a domain the state table holds."""
    return (
        f"SELECT count(*) AS objects FROM {database}.{state_table_name(object_type)} "  # nosec B608
        f"WHERE domain = {_literal(_domain(domain_name))}"
    )


def partition_ref_of(name: str) -> PartitionRef:
    """The values of a Hive partition name `domain=.../window_start=.../...` (as run records keep it)."""
    pairs = [part.split("=", 1) for part in name.split("/")]
    keys = tuple(key for key, _ in pairs)
    if keys != PARTITION_KEY_NAMES:
        raise ValueError(f"not an export partition name: {name!r}")
    return PartitionRef(tuple(value for _, value in pairs))


def vacuum_statement(database: str, table: str) -> str:
    """Expire old snapshots and remove orphan files (backticks: a table name may begin with `_`)."""
    return f"VACUUM `{database}`.`{table}`"


def confirmation_moment(clock: datetime, planned_at: datetime, requested_at: datetime) -> datetime:
    """When a reconcile's candidates can be told apart from objects updated after its window: once the
    watermark passes the moment its job looked (its clock, plus however long it waited for its job)."""
    waited = max(requested_at - planned_at, timedelta(0))
    moment = clock + waited
    return moment.replace(microsecond=0) + (timedelta(seconds=1) if moment.microsecond else timedelta(0))


def update_for_export(
    database: str,
    object_type: str,
    domain_name: str,
    partitions: Sequence[CatalogPartition],
    *,
    reconcile: bool,
    window_end: datetime,
    requested_at: datetime,
    request_key: str,
    looked_at: datetime | None = None,
    watermark: datetime | None = None,
    pending: PendingReconcile | None = None,
) -> CurrentStateUpdate:
    """What the state machine does to the current-state table after an export is indexed: merge it; for a
    reconcile, record the ids it lacks as candidates; for an incremental export whose watermark passed a
    pending reconcile, remove the candidates still at their old version and mark the table exact."""
    refs = [PartitionRef(tuple(partition.values)) for partition in partitions]
    update = CurrentStateUpdate(
        database=database,
        table=state_table_name(object_type),
        deleted_table=deleted_table_name(object_type),
        reconcile=reconcile,
    )
    if not refs:
        return update
    merge = merge_statement(database, object_type, refs)
    if reconcile:
        cutoff = reconcile_cutoff(window_end, requested_at)
        label = reconcile_label(refs[0], request_key)
        after = looked_at or requested_at
        statements = CurrentStateStatements(
            merge=merge,
            record_deleted=record_deleted_statement(database, object_type, refs, cutoff, label, requested_at, after),
        )
        return update.model_copy(
            update={"statements": statements, "reconcile_label": label, "cutoff": cutoff, "confirm_after": after}
        )
    if pending is not None and watermark is not None and watermark >= pending.confirm_after:
        statements = CurrentStateStatements(
            merge=merge,
            apply_deleted=apply_deleted_statement(database, object_type, domain_name, watermark),
            exact=exact_statement(database, object_type, domain_name, pending.cutoff),
        )
        return update.model_copy(
            update={"statements": statements, "exact_as_of": pending.cutoff, "confirmed_reconcile": pending.label}
        )
    return update.model_copy(update={"statements": CurrentStateStatements(merge=merge)})


@dataclass(frozen=True)
class PendingReconcile:
    """The newest reconcile of an object type (the state table's RECONCILE item): its candidates wait in
    `{stem}_deleted` until the watermark passes `confirm_after`; `confirmed_by` names the export that carried
    its deletions to the table (None before one did)."""

    label: str
    cutoff: datetime
    confirm_after: datetime
    confirmed_by: str | None = None
