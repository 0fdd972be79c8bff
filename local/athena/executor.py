"""One Athena statement, executed offline against the Glue catalog and S3 (moto), as the caller.

```python
from local.athena.executor import AthenaEngine, AthenaQueryError, IcebergFaults
engine = AthenaEngine(glue=glue, s3=s3, faults=IcebergFaults())  # clients signed as the caller
result = engine.execute("MERGE INTO db.t AS x USING (...) AS s ON ...", database="db")
result.columns, result.rows, result.files_read, result.update_count
```

The statement is parsed with sqlglot (`read="athena"`); the tables it names (found by sqlglot, views
followed) are read into DuckDB, the Hive tables' partitions pruned by the statement's own equality
predicates on partition keys; the statement is translated with sqlglot (`write="duckdb"`) and run.
Iceberg tables are modelled as a metadata pointer in the Glue table's Parameters
(`metadata_location`) naming a metadata JSON object in S3 whose current snapshot lists Parquet data
files; a write commits a new metadata object and swaps the pointer only if it is still the one the
statement read (else `ICEBERG_COMMIT_ERROR`, as a concurrent commit answers on AWS). See README.md.

Rules written by hand because sqlglot has no parse for them (it falls back to a Command): the table
name and the WHERE of `OPTIMIZE t REWRITE DATA USING BIN_PACK [WHERE ...]` and the table of `VACUUM t`.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from botocore.exceptions import ClientError
from cpexport.catalog import parse_hive_type, view_definition
from sqlglot import exp

from local.athena.dialect import duckdb_type
from local.athena.engine import AthenaStandIn, PartitionFilter, _split_location

ICEBERG = "ICEBERG"
METADATA_LOCATION = "metadata_location"
PREVIOUS_METADATA_LOCATION = "previous_metadata_location"
# Athena's defaults for VACUUM (table properties of the same names override them).
DEFAULT_MAX_SNAPSHOT_AGE_SECONDS = 432_000
DEFAULT_MIN_SNAPSHOTS_TO_KEEP = 1
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "KMSAccessDenied"}
# One process holds the whole offline account: a lock makes "read the pointer, compare, swap" atomic,
# as Glue's UpdateTable with its version check is on AWS.
_COMMIT_LOCK = threading.Lock()
_OPTIMIZE = re.compile(
    r"^\s*(?P<table>\S+)\s+REWRITE\s+DATA\s+USING\s+BIN_PACK(?:\s+WHERE\s+(?P<where>.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


class AthenaQueryError(Exception):
    """The query FAILED: `error_type` is the code Athena puts before its message (ICEBERG_COMMIT_ERROR, ...)."""

    def __init__(self, error_type: str, message: str, *, category: int = 2, retryable: bool = False) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.category = category  # Athena's ErrorCategory: 1 system, 2 user, 3 other
        self.retryable = retryable

    @property
    def reason(self) -> str:
        """The text of `Status.StateChangeReason`."""
        return str(self)


@dataclass
class IcebergFaults:
    """Fault knobs of the offline Iceberg tables: the next `n` commits conflict, the next `n` VACUUMs need more runs."""

    commit_conflicts: int = 0
    vacuum_more_runs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_next_commits(self, count: int) -> None:
        """The next `count` commits fail with ICEBERG_COMMIT_ERROR (as if another writer won)."""
        with self._lock:
            self.commit_conflicts = count

    def need_more_vacuum_runs(self, count: int) -> None:
        """The next `count` VACUUMs answer ICEBERG_VACUUM_MORE_RUNS_NEEDED (after doing their work)."""
        with self._lock:
            self.vacuum_more_runs = count

    def take(self, knob: str) -> bool:
        """Consume one fault of `knob` if any is left."""
        with self._lock:
            left = int(getattr(self, knob))
            if left > 0:
                setattr(self, knob, left - 1)
                return True
            return False


@dataclass
class QueryResult:
    """What a statement gave: columns (name, Athena type), rows as Athena renders them, and what it touched."""

    statement_type: str  # DDL, DML or UTILITY, as GetQueryExecution says
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    update_count: int | None = None
    files_read: list[str] = field(default_factory=list)
    bytes_scanned: int = 0  # the sizes of the S3 objects in `files_read`: whole files (no column pruning)

    def read(self, uri: str, size: int) -> None:
        """Note one S3 object read, and its size."""
        self.files_read.append(uri)
        self.bytes_scanned += size


@dataclass
class _Iceberg:
    """An Iceberg table as a statement read it: the Glue table, its pointer and the metadata it names."""

    glue_table: dict[str, Any]
    pointer: str
    metadata: dict[str, Any]

    @property
    def location(self) -> str:
        return str(self.metadata["location"])

    @property
    def data_files(self) -> list[str]:
        snapshot = _current_snapshot(self.metadata)
        return list(snapshot["data-files"]) if snapshot else []


def _current_snapshot(metadata: dict[str, Any]) -> dict[str, Any] | None:
    current = metadata.get("current-snapshot-id")
    return next((s for s in metadata.get("snapshots", []) if s["snapshot-id"] == current), None)


def is_iceberg(table: dict[str, Any]) -> bool:
    """Whether a Glue table is an Iceberg table (Parameters `table_type` = ICEBERG, any case)."""
    return str((table.get("Parameters") or {}).get("table_type", "")).upper() == ICEBERG


def _hive_type(kind: exp.DataType) -> str:
    # Glue stores Athena DDL types in Hive's lower-case spelling, without blanks: struct<a:string,b:bigint>.
    return kind.sql(dialect="hive").lower().replace(": ", ":").replace(", ", ",")


def _athena_type(duck: str) -> str:
    duck = duck.upper()
    simple = {"VARCHAR": "varchar", "BIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double", "BOOLEAN": "boolean"}
    if duck in simple:
        return simple[duck]
    if duck.startswith("TIMESTAMP"):
        return "timestamp"
    if duck.startswith("STRUCT"):
        return "row"
    if duck.startswith("MAP"):
        return "map"
    if duck.endswith("[]"):
        return "array"
    return duck.lower()


def render(value: Any) -> str | None:
    """A value as Athena's result set renders it (text; NULL stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(render(v)) for v in value) + "]"
    if hasattr(value, "isoformat") and hasattr(value, "hour"):
        return f"{value.strftime('%Y-%m-%d %H:%M:%S')}.{value.microsecond // 1000:03d}"
    return str(value)


class AthenaEngine:
    """Executes Athena statements on the catalog and S3 the given clients reach (signed as the caller)."""

    def __init__(
        self,
        *,
        glue: Any,
        s3: Any,
        faults: IcebergFaults | None = None,
        before_commit: Callable[[str], None] | None = None,
    ) -> None:
        self._glue = glue
        self._s3 = s3
        self.faults = faults if faults is not None else IcebergFaults()
        # Called with "db.table" between a statement's read and its commit (tests: a concurrent writer).
        self.before_commit = before_commit

    # ---------------------------------------------------------------------------------- entry
    def execute(self, sql: str, database: str) -> QueryResult:
        """Run one statement; raise `AthenaQueryError` when Athena would answer FAILED."""
        try:
            statement = sqlglot.parse_one(sql, read="athena")
        except sqlglot.errors.ParseError as error:
            raise AthenaQueryError("SYNTAX_ERROR", str(error).splitlines()[0]) from None
        try:
            return self._dispatch(statement, database)
        except ClientError as error:
            raise _from_client_error(error) from None

    def _dispatch(self, statement: exp.Expr, database: str) -> QueryResult:
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            return self._create_table(statement, database)
        if isinstance(statement, exp.Alter):
            return self._alter(statement, database)
        if isinstance(statement, exp.Command):
            verb = str(statement.this).upper()
            text = statement.expression.name if statement.expression is not None else ""
            if verb == "OPTIMIZE":
                return self._optimize(text, database)
            if verb == "VACUUM":
                return self._vacuum(text, database)
            raise AthenaQueryError("NOT_SUPPORTED", f"{verb} is not a statement the offline Athena runs")
        if isinstance(statement, exp.Merge | exp.Delete | exp.Insert):
            return self._write(statement, database)
        if isinstance(statement, exp.Query):
            return self._select(statement, database)
        raise AthenaQueryError(
            "NOT_SUPPORTED", f"{type(statement).__name__} is not a statement the offline Athena runs"
        )

    # ---------------------------------------------------------------------------------- catalog and S3
    def _table_name(self, table: exp.Table, database: str) -> tuple[str, str]:
        # VACUUM is parsed as a Command: a backticked identifier keeps its backticks (name and database).
        return (table.db or database).strip("`").lower(), table.name.strip("`").lower()

    def _glue_table(self, database: str, name: str) -> dict[str, Any]:
        try:
            return dict(self._glue.get_table(DatabaseName=database, Name=name)["Table"])
        except ClientError as error:
            if error.response["Error"]["Code"] == "EntityNotFoundException":
                raise AthenaQueryError(
                    "TABLE_NOT_FOUND", f"Table awsdatacatalog.{database}.{name} does not exist"
                ) from None
            raise

    def _read_json(self, uri: str, read: QueryResult) -> dict[str, Any]:
        bucket, key = _split_location(uri)
        body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        read.read(uri, len(body))
        return dict(json.loads(body))

    def _iceberg(self, table: dict[str, Any], read: QueryResult) -> _Iceberg:
        pointer = str(table["Parameters"][METADATA_LOCATION])
        return _Iceberg(table, pointer, self._read_json(pointer, read))

    # ---------------------------------------------------------------------------------- loading
    def _session(self, database: str) -> AthenaStandIn:
        return AthenaStandIn(database, glue=self._glue, s3=self._s3)

    def _load(
        self, standin: AthenaStandIn, statement: exp.Expr, database: str, read: QueryResult
    ) -> dict[str, _Iceberg]:
        """Read the tables and views `statement` names into the session; the Iceberg ones are returned."""
        icebergs: dict[str, _Iceberg] = {}
        views: list[dict[str, Any]] = []
        seen: set[str] = set()
        pending: list[tuple[exp.Expr, str]] = [(statement, database)]
        while pending:
            tree, db = pending.pop()
            for name, keep in _referenced(tree, db).items():
                if name in seen:
                    continue
                seen.add(name)
                table = self._glue_table(db, name)
                if table.get("TableType") == "VIRTUAL_VIEW":
                    views.append(table)
                    sql = view_definition(table["ViewOriginalText"])["originalSql"]
                    pending.append((sqlglot.parse_one(sql, read="athena"), db))
                elif is_iceberg(table):
                    icebergs[name] = self._load_iceberg(standin, table, db, read)
                else:
                    standin.load_table(table, keep)
                    for partition in standin.loaded_files.get(name, []):
                        bucket, _ = _split_location(partition.location)
                        for key in partition.keys:
                            uri = f"s3://{bucket}/{key}"
                            read.read(uri, standin.bytes_read.get(uri, 0))
        standin.create_views(views)
        return icebergs

    def _load_iceberg(
        self, standin: AthenaStandIn, table: dict[str, Any], database: str, read: QueryResult
    ) -> _Iceberg:
        iceberg = self._iceberg(table, read)
        name = table["Name"]
        columns = ", ".join(
            f'"{c["Name"]}" {duckdb_type(parse_hive_type(c["Type"]))}' for c in table["StorageDescriptor"]["Columns"]
        )
        standin.connection.execute(f'CREATE TABLE "{database}"."{name}" ({columns})')
        files = []
        for uri in iceberg.data_files:
            bucket, key = _split_location(uri)
            local = Path(standin._workdir.name) / f"{uuid.uuid4().hex}.parquet"
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            local.write_bytes(body)
            read.read(uri, len(body))
            files.append(str(local))
        if files:
            standin.connection.execute(
                f'INSERT INTO "{database}"."{name}" BY NAME SELECT * FROM read_parquet(?)', [files]
            )
        return iceberg

    # ---------------------------------------------------------------------------------- statements
    def _select(self, statement: exp.Expr, database: str) -> QueryResult:
        result = QueryResult("DML")
        standin = self._session(database)
        try:
            self._load(standin, statement, database, result)
            cursor = standin.connection.execute(_duckdb(statement))
            described = cursor.description or []
            result.columns = [(str(c[0]), _athena_type(str(c[1]))) for c in described]
            result.rows = [[render(value) for value in row] for row in cursor.fetchall()]
        except duckdb.Error as error:
            raise AthenaQueryError("GENERIC_USER_ERROR", str(error).splitlines()[0]) from None
        finally:
            standin.close()
        return result

    def _write(self, statement: exp.Merge | exp.Delete | exp.Insert, database: str) -> QueryResult:
        target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
        if not isinstance(target, exp.Table):
            raise AthenaQueryError("NOT_SUPPORTED", "the target of a write must be a table")
        db, name = self._table_name(target, database)
        verb = {exp.Merge: "MERGE INTO", exp.Delete: "DELETE", exp.Insert: "INSERT INTO"}[type(statement)]
        if not is_iceberg(self._glue_table(db, name)):
            raise AthenaQueryError("NOT_SUPPORTED", f"{verb} is only supported for Iceberg tables")
        result = QueryResult("DML")
        standin = self._session(database)
        try:
            base = self._load(standin, statement, database, result)[name]
            connection = standin.connection
            qualified = f'"{db}"."{name}"'
            if isinstance(statement, exp.Merge):
                _refuse_multiple_matches(connection, statement)
            if isinstance(statement, exp.Insert):
                # The new rows alone become the appended data file: insert them into an empty twin first.
                connection.execute(f"CREATE TEMP TABLE __inserted AS SELECT * FROM {qualified} LIMIT 0")
                staged = statement.copy()
                if isinstance(staged.this, exp.Schema):
                    staged.this.set("this", exp.to_table("__inserted"))
                else:
                    staged.set("this", exp.to_table("__inserted"))
                result.update_count = _count(connection.execute(_duckdb(staged)))
                if result.update_count:
                    new_file = self._write_data(connection, "SELECT * FROM __inserted", base.location)
                    self._commit(db, base, [*base.data_files, new_file], "append")
            else:
                result.update_count = _count(connection.execute(_duckdb(statement)))
                if result.update_count:
                    # Copy-on-write: the table's rows after the statement, as one new data file.
                    self._commit(db, base, self._rewrite(connection, qualified, base.location), "overwrite")
        except duckdb.Error as error:
            raise AthenaQueryError("GENERIC_USER_ERROR", str(error).splitlines()[0]) from None
        finally:
            standin.close()
        return result

    def _rewrite(self, connection: Any, qualified: str, location: str) -> list[str]:
        if not _count(connection.execute(f"SELECT count(*) FROM {qualified}")):
            return []
        return [self._write_data(connection, f"SELECT * FROM {qualified}", location)]

    def _write_data(self, connection: Any, select: str, location: str) -> str:
        """The rows of `select` as a new Parquet data file under the table's `data/` folder; its URI."""
        bucket, prefix = _split_location(location)
        key = f"{prefix}data/{uuid.uuid4()}.parquet"
        with tempfile.TemporaryDirectory(prefix="athena-write-") as scratch:
            local = Path(scratch) / "data.parquet"
            connection.execute(f"COPY ({select}) TO '{local}' (FORMAT parquet)")
            self._s3.put_object(Bucket=bucket, Key=key, Body=local.read_bytes())
        return f"s3://{bucket}/{key}"

    def _commit(
        self,
        database: str,
        base: _Iceberg,
        data_files: list[str],
        operation: str,
        *,
        properties: dict[str, str] | None = None,
        snapshots: list[dict[str, Any]] | None = None,
    ) -> str:
        """Write a new metadata object and swap the Glue pointer if nobody committed since `base` was read."""
        name = str(base.glue_table["Name"])
        if self.before_commit is not None:
            self.before_commit(f"{database}.{name}")
        metadata: dict[str, Any] = json.loads(json.dumps(base.metadata))
        sequence = int(metadata.get("last-sequence-number", 0)) + 1
        metadata["last-sequence-number"] = sequence
        metadata["last-updated-ms"] = int(time.time() * 1000)
        if properties is not None:
            metadata["properties"] = {**metadata.get("properties", {}), **properties}
        if snapshots is not None:
            metadata["snapshots"] = snapshots
        elif properties is None:
            snapshot_id = uuid.uuid4().int >> 65
            snapshot = {
                "snapshot-id": snapshot_id,
                "sequence-number": sequence,
                "timestamp-ms": metadata["last-updated-ms"],
                "operation": operation,
                "data-files": data_files,
            }
            metadata["snapshots"] = [*metadata.get("snapshots", []), snapshot]
            metadata["current-snapshot-id"] = snapshot_id
        bucket, prefix = _split_location(base.location)
        key = f"{prefix}metadata/{sequence:05d}-{uuid.uuid4()}.metadata.json"
        pointer = f"s3://{bucket}/{key}"
        conflict = AthenaQueryError(
            "ICEBERG_COMMIT_ERROR", f"Failed to commit Iceberg update to table: {database}.{name}", retryable=True
        )
        if self.faults.take("commit_conflicts"):
            raise conflict
        with _COMMIT_LOCK:
            current = self._glue_table(database, name)
            if (current.get("Parameters") or {}).get(METADATA_LOCATION) != base.pointer:
                raise conflict
            self._s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(metadata).encode())
            parameters = {**current.get("Parameters", {}), **(properties or {})}
            parameters |= {METADATA_LOCATION: pointer, PREVIOUS_METADATA_LOCATION: base.pointer}
            self._glue.update_table(DatabaseName=database, TableInput=_table_input(current, parameters))
        return pointer

    def _create_table(self, statement: exp.Create, database: str) -> QueryResult:
        schema = statement.this
        table = schema.this if isinstance(schema, exp.Schema) else schema
        if not isinstance(table, exp.Table):
            raise AthenaQueryError("SYNTAX_ERROR", "CREATE TABLE needs a table name")
        db, name = self._table_name(table, database)
        properties = statement.args.get("properties")
        location = ""
        tblproperties: dict[str, str] = {}
        for prop in properties.expressions if properties is not None else []:
            if isinstance(prop, exp.LocationProperty):
                location = prop.this.name
            elif isinstance(prop, exp.Property):
                tblproperties[prop.this.name.lower()] = prop.args["value"].name
        if tblproperties.get("table_type", "").upper() != ICEBERG:
            raise AthenaQueryError(
                "NOT_SUPPORTED",
                "Only external table creation is supported (CREATE EXTERNAL TABLE), or an Iceberg table",
            )
        bucket, prefix = _split_location(location) if location.startswith("s3://") else ("", "")
        if not bucket or not prefix.strip("/"):
            raise AthenaQueryError(
                "INVALID_TABLE_PROPERTY",
                f"the location of an Iceberg table must be a folder, not a bucket root: {location!r}",
            )
        location = location if location.endswith("/") else location + "/"
        try:
            self._glue.get_table(DatabaseName=db, Name=name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "EntityNotFoundException":
                raise
        else:
            if statement.args.get("exists"):
                return QueryResult("DDL")
            raise AthenaQueryError("ALREADY_EXISTS", f"Table {db}.{name} already exists")
        columns = [
            {"Name": column.name.lower(), "Type": _hive_type(column.args["kind"])}
            for column in (schema.expressions if isinstance(schema, exp.Schema) else [])
        ]
        metadata = {
            "format-version": 2,
            "table-uuid": str(uuid.uuid4()),
            "location": location,
            "last-sequence-number": 0,
            "last-updated-ms": int(time.time() * 1000),
            "properties": tblproperties,
            "schema": columns,
            "current-snapshot-id": None,
            "snapshots": [],
        }
        key = f"{_split_location(location)[1]}metadata/00000-{uuid.uuid4()}.metadata.json"
        self._s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(metadata).encode())
        self._glue.create_table(
            DatabaseName=db,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {**tblproperties, "table_type": ICEBERG, METADATA_LOCATION: f"s3://{bucket}/{key}"},
                "StorageDescriptor": {"Columns": columns, "Location": location.rstrip("/")},
            },
        )
        return QueryResult("DDL")

    def _alter(self, statement: exp.Alter, database: str) -> QueryResult:
        table = statement.this
        db, name = self._table_name(table, database)
        glue_table = self._glue_table(db, name)
        for action in statement.args.get("actions") or []:
            if isinstance(action, exp.AlterSet):
                properties = {
                    p.this.name.lower(): p.args["value"].name
                    for holder in action.expressions
                    for p in holder.expressions
                    if isinstance(p, exp.Property)
                }
                if is_iceberg(glue_table):
                    base = self._iceberg(glue_table, QueryResult("DDL"))
                    self._commit(db, base, base.data_files, "properties", properties=properties)
                else:
                    parameters = {**glue_table.get("Parameters", {}), **properties}
                    self._glue.update_table(DatabaseName=db, TableInput=_table_input(glue_table, parameters))
            elif isinstance(action, exp.DropPartition):
                self._drop_partitions(glue_table, db, action)
            else:
                raise AthenaQueryError("NOT_SUPPORTED", f"ALTER TABLE {type(action).__name__} is not modelled offline")
        return QueryResult("DDL")

    def _drop_partitions(self, glue_table: dict[str, Any], database: str, action: exp.DropPartition) -> None:
        keys = [k["Name"] for k in glue_table.get("PartitionKeys", [])]
        for partition in action.expressions:
            wanted = {eq.this.name.lower(): eq.expression.name for eq in partition.expressions}
            if set(wanted) != set(keys):
                raise AthenaQueryError("INVALID_PARTITION", f"the partition must name every key of {keys}")
            values = [wanted[k] for k in keys]
            try:
                self._glue.delete_partition(DatabaseName=database, TableName=glue_table["Name"], PartitionValues=values)
            except ClientError as error:
                if error.response["Error"]["Code"] != "EntityNotFoundException" or not action.args.get("exists"):
                    raise

    def _optimize(self, text: str, database: str) -> QueryResult:
        match = _OPTIMIZE.match(text)
        if match is None:
            raise AthenaQueryError("SYNTAX_ERROR", "OPTIMIZE <table> REWRITE DATA USING BIN_PACK [WHERE ...] expected")
        db, name = self._table_name(exp.to_table(match["table"], dialect="athena"), database)
        glue_table = self._glue_table(db, name)
        if not is_iceberg(glue_table):
            raise AthenaQueryError("NOT_SUPPORTED", "OPTIMIZE is only supported for Iceberg tables")
        result = QueryResult("DML")
        standin = self._session(database)
        try:
            base = self._load_iceberg(standin, glue_table, db, result)
            if len(base.data_files) > 1:
                # Bin-packing of the whole table into one file (a WHERE does not narrow it offline).
                files = self._rewrite(standin.connection, f'"{db}"."{name}"', base.location)
                self._commit(db, base, files, "replace")
        finally:
            standin.close()
        return result

    def _vacuum(self, text: str, database: str) -> QueryResult:
        table = exp.to_table(text.strip().rstrip(";").strip(), dialect="athena")
        db, name = self._table_name(table, database)
        if name.startswith("_") and "`" not in text:
            raise AthenaQueryError("SYNTAX_ERROR", f"identifier {name} must be quoted with backticks in VACUUM")
        glue_table = self._glue_table(db, name)
        if not is_iceberg(glue_table):
            raise AthenaQueryError("NOT_SUPPORTED", "VACUUM is only supported for Iceberg tables")
        base = self._iceberg(glue_table, QueryResult("DDL"))
        properties = base.metadata.get("properties", {})
        max_age_ms = 1000 * int(properties.get("vacuum_max_snapshot_age_seconds", DEFAULT_MAX_SNAPSHOT_AGE_SECONDS))
        keep_at_least = int(properties.get("vacuum_min_snapshots_to_keep", DEFAULT_MIN_SNAPSHOTS_TO_KEEP))
        now_ms = int(time.time() * 1000)
        newest_first = sorted(base.metadata.get("snapshots", []), key=lambda s: s["sequence-number"], reverse=True)
        kept = [
            s
            for index, s in enumerate(newest_first)
            if index < keep_at_least
            or s["snapshot-id"] == base.metadata.get("current-snapshot-id")
            or now_ms - s["timestamp-ms"] < max_age_ms
        ]
        if len(kept) != len(newest_first):
            self._commit(db, base, base.data_files, "expire", snapshots=kept[::-1])
        referenced = {uri for s in kept for uri in s["data-files"]}
        bucket, prefix = _split_location(base.location)
        for item in self._objects(bucket, f"{prefix}data/"):
            uri = f"s3://{bucket}/{item['Key']}"
            old_enough = now_ms - item["LastModified"].timestamp() * 1000 >= max_age_ms
            if uri not in referenced and old_enough:
                try:
                    self._s3.delete_object(Bucket=bucket, Key=item["Key"])
                except ClientError as error:
                    # Athena's VACUUM without s3:DeleteObject "succeeds" and removes nothing.
                    if error.response["Error"]["Code"] not in _ACCESS_DENIED:
                        raise
        if self.faults.take("vacuum_more_runs"):
            raise AthenaQueryError(
                "ICEBERG_VACUUM_MORE_RUNS_NEEDED",
                "Removed files in this round of vacuum, but there are more files remaining. "
                "Please run another VACUUM command to process the remaining files",
                retryable=True,
            )
        return QueryResult("DML")

    def _objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])


def _count(cursor: Any) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _duckdb(statement: exp.Expr) -> str:
    tree = sqlglot.parse_one(statement.sql(dialect="athena"), read="athena")
    # sqlglot writes json_extract_scalar as DuckDB's `->>`, which fails on malformed JSON where Athena gives
    # NULL: keep the call, so the session's macro of that name (dialect.py) gives Athena's meaning.
    tree = tree.transform(
        lambda node: (
            exp.Anonymous(this="json_extract_scalar", expressions=[node.this, node.expression])
            if isinstance(node, exp.JSONExtractScalar)
            else node
        )
    )
    return tree.sql(dialect="duckdb")


def _refuse_multiple_matches(connection: Any, merge: exp.Merge) -> None:
    """Trino's rule, which DuckDB's MERGE lacks: a target row matched by two source rows fails the statement."""
    target = merge.this
    probe = (
        exp.select("1")
        .from_(target.copy())
        .join(merge.args["using"].copy(), on=merge.args["on"].copy())
        .group_by(exp.column("rowid", table=target.alias_or_name))
        .having("count(*) > 1")
        .limit(1)
    )
    if connection.execute(_duckdb(probe)).fetchone() is not None:
        raise AthenaQueryError(
            "MERGE_TARGET_ROW_MULTIPLE_MATCHES", "One MERGE target table row matched more than one source row"
        )


def _referenced(tree: exp.Expr, database: str) -> dict[str, PartitionFilter | None]:
    """Table name -> partition filter (None: every partition) of each table `tree` reads in `database`."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: dict[str, list[dict[str, set[str]] | None]] = {}
    for table in tree.find_all(exp.Table):
        name = table.name.strip("`").lower()
        if not name or (table.db and table.db.lower() != database) or (not table.db and name in ctes):
            continue
        found.setdefault(name, []).append(_equalities(table))
    return {name: _filter(constraints) for name, constraints in found.items()}


def _equalities(table: exp.Table) -> dict[str, set[str]] | None:
    """Column -> accepted literals, read off the top-level ANDs of the WHERE of the SELECT reading `table`."""
    select = table.parent_select
    if not isinstance(select, exp.Select) or table.find_ancestor(exp.Select) is not select:
        return None
    where = select.args.get("where")
    if where is None:
        return None
    sources = [t for t in select.find_all(exp.Table) if t.find_ancestor(exp.Select) is select]
    names = {table.alias_or_name.lower(), table.name.lower()}
    constraints: dict[str, set[str]] = {}
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        if not isinstance(conjunct, exp.EQ):
            continue
        column, literal = conjunct.this, conjunct.expression
        if isinstance(literal, exp.Column):
            column, literal = literal, column
        if not isinstance(column, exp.Column) or not isinstance(literal, exp.Literal) or not literal.is_string:
            continue
        qualifier = column.table.lower()
        if (qualifier and qualifier in names) or (not qualifier and len(sources) == 1):
            constraints.setdefault(column.name.lower(), set()).add(literal.name)
    return constraints


def _filter(constraints: list[dict[str, set[str]] | None]) -> PartitionFilter | None:
    """Keep a partition when some reference of the table accepts it; any unconstrained reference reads all."""
    if any(not c for c in constraints):
        return None
    readings = [c for c in constraints if c]

    def keep(partition: dict[str, str]) -> bool:
        return any(all(partition[key] in values for key, values in c.items() if key in partition) for c in readings)

    return keep


def _table_input(table: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The TableInput that UpdateTable needs to keep a table as it is but for its Parameters."""
    kept = (
        "Name",
        "Description",
        "Owner",
        "Retention",
        "StorageDescriptor",
        "PartitionKeys",
        "TableType",
        "ViewOriginalText",
    )
    return {k: table[k] for k in kept if k in table} | {"Parameters": parameters}


def _from_client_error(error: ClientError) -> AthenaQueryError:
    code = error.response["Error"]["Code"]
    message = error.response["Error"].get("Message", "")
    if code in _ACCESS_DENIED:
        if error.operation_name in ("GetObject", "PutObject", "DeleteObject", "ListObjectsV2", "HeadObject"):
            return AthenaQueryError("PERMISSION_DENIED", f"Permission denied on S3 path: {message}")
        return AthenaQueryError("PERMISSION_DENIED", f"Insufficient permissions to execute the query. {message}")
    return AthenaQueryError("GENERIC_INTERNAL_ERROR", f"{error.operation_name}: {code}: {message}", category=1)
