"""Athena, offline: the stack's Glue catalog (moto) read into DuckDB, and the same SQL run on it.

For each table of the database, its partitions are read from Glue; the files under each
partition's location are read from S3 (boto3 `get_object`, so the moto endpoint and its SSE-KMS
objects work without DuckDB's httpfs) and decoded by the table's SerDe as Athena would; the rows,
with the partition columns and `"$path"`, become a DuckDB table of the same name in a schema
named like the database. Views are created from the SQL stored in the catalog (Athena's view
encoding), and their columns are checked against the ones the catalog declares: a view whose SQL
no longer gives those columns fails, as Athena refuses a stale view.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import duckdb
from cpexport.catalog import parse_hive_type, view_definition, view_name
from cpexport.clients.glue import GlueCatalog

from local.athena.dialect import ATHENA_MACROS, SESSION_SETTINGS, duckdb_type
from local.athena.serde import decode, split_lines

PATH_COLUMN = "$path"
PartitionFilter = Callable[[dict[str, str]], bool]
"""Whether a partition (partition key -> value) is to be read."""


class StaleView(RuntimeError):
    """A view's SQL no longer gives the columns the catalog says it has (Athena: 'View is stale')."""


@dataclass(frozen=True)
class PartitionFiles:
    """One partition of a table and the files its location holds."""

    table: str
    values: list[str]
    location: str
    keys: list[str]


def _split_location(location: str) -> tuple[str, str]:
    if not location.startswith("s3://"):
        raise ValueError(f"not an S3 location: {location!r}")
    bucket, _, prefix = location[len("s3://") :].partition("/")
    return bucket, prefix


def _is_hidden(key: str) -> bool:
    # Athena skips objects whose name starts with `_` or `.`.
    return key.rsplit("/", 1)[-1].startswith(("_", "."))


class AthenaStandIn:
    """A DuckDB copy of one Glue database's tables and views, queried with Athena's SQL."""

    def __init__(self, database: str, *, glue: Any | None = None, s3: Any | None = None) -> None:
        self.database = database
        self._glue = glue if glue is not None else boto3.client("glue")
        self._catalog = GlueCatalog(self._glue)
        self._s3 = s3 if s3 is not None else boto3.client("s3")
        self._workdir = tempfile.TemporaryDirectory(prefix="athena-standin-")
        self.connection = duckdb.connect()
        for statement in (*SESSION_SETTINGS, *ATHENA_MACROS):
            self.connection.execute(statement)
        self.connection.execute(f'CREATE SCHEMA "{database}"')
        self.connection.execute(f"SET search_path = '{database}'")
        self.loaded_files: dict[str, list[PartitionFiles]] = {}
        # Views whose tables do not exist (yet): name -> why; querying one fails, as on Athena.
        self.unavailable_views: dict[str, str] = {}
        # The size of every S3 object read (URI -> bytes): what the query scanned, as whole files.
        self.bytes_read: dict[str, int] = {}

    def __enter__(self) -> AthenaStandIn:
        return self.load()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop the DuckDB copy and its scratch files."""
        self.connection.close()
        self._workdir.cleanup()

    # -------------------------------------------------------------------------------- loading
    def load(self) -> AthenaStandIn:
        """Read every table (with its partitions' files) and then every view of the database."""
        tables = list(self._catalog.tables(self.database))
        for table in tables:
            if table.get("TableType") == "VIRTUAL_VIEW":
                continue
            if str((table.get("Parameters") or {}).get("table_type", "")).upper() == "ICEBERG":
                self._load_iceberg_table(table)
            else:
                self._load_table(table)
        self._create_views([t for t in tables if t.get("TableType") == "VIRTUAL_VIEW"])
        return self

    def _load_iceberg_table(self, table: dict[str, Any]) -> None:
        # The current snapshot's Parquet files, as the offline Athena engine reads them (one reader of the model).
        from local.athena.executor import AthenaEngine, QueryResult  # the engine builds on this module

        read = QueryResult("DML")
        AthenaEngine(glue=self._glue, s3=self._s3)._load_iceberg(self, table, self.database, read)
        location = table["StorageDescriptor"]["Location"]
        self.loaded_files[table["Name"]] = [PartitionFiles(table["Name"], [], location, read.files_read)]

    def catalog_partitions(self) -> Iterator[PartitionFiles]:
        """Every partition of every table of the database, with its files (nothing loaded into DuckDB)."""
        for table in self._catalog.tables(self.database):
            if table.get("TableType") != "VIRTUAL_VIEW":
                yield from self.partition_files(table)

    def partition_files(self, table: dict[str, Any], keep: PartitionFilter | None = None) -> Iterator[PartitionFiles]:
        """Each partition of a table (those `keep` accepts) with the (visible) files under its location."""
        names = [k["Name"] for k in table.get("PartitionKeys", [])]
        for partition in self._catalog.partitions(self.database, table["Name"]):
            if keep is not None and not keep(dict(zip(names, partition["Values"], strict=True))):
                continue
            location = partition["StorageDescriptor"]["Location"]
            bucket, prefix = _split_location(location)
            keys: list[str] = []
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []) if not _is_hidden(item["Key"]))
            yield PartitionFiles(table["Name"], list(partition["Values"]), location, sorted(keys))

    def load_table(self, table: dict[str, Any], keep: PartitionFilter | None = None) -> None:
        """Read one Hive table of the catalog (only the partitions `keep` accepts) into DuckDB."""
        self._load_table(table, keep)

    def create_views(self, views: list[dict[str, Any]]) -> None:
        """Create these catalog views (in any order: a view may read another) and check their columns."""
        self._create_views(views)

    def _load_table(self, table: dict[str, Any], keep: PartitionFilter | None = None) -> None:
        name = table["Name"]
        descriptor = table["StorageDescriptor"]
        serde = descriptor["SerdeInfo"]["SerializationLibrary"]
        columns = [(c["Name"], parse_hive_type(c["Type"])) for c in descriptor["Columns"]]
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        rows_file = Path(self._workdir.name) / f"{name}.jsonl"
        partitions = list(self.partition_files(table, keep))
        with rows_file.open("w", encoding="utf-8") as rows:
            for partition in partitions:
                bucket, _ = _split_location(partition.location)
                fixed = dict(zip(keys, partition.values, strict=True))
                for key in partition.keys:
                    raw = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    self.bytes_read[f"s3://{bucket}/{key}"] = len(raw)
                    body = raw.decode("utf-8")
                    for line in split_lines(body):
                        row = decode(serde, line, columns) | fixed | {PATH_COLUMN: f"s3://{bucket}/{key}"}
                        rows.write(json.dumps(row, default=str) + "\n")
        self.loaded_files[name] = partitions
        types = {column: duckdb_type(tree) for column, tree in columns}
        types |= {key: "VARCHAR" for key in keys} | {PATH_COLUMN: "VARCHAR"}
        spec = "{" + ", ".join(f"'{column}': '{kind}'" for column, kind in types.items()) + "}"
        self.connection.execute(
            f'CREATE TABLE "{self.database}"."{name}" AS SELECT * FROM read_json(?, format = '
            f"'newline_delimited', columns = {spec})",
            [str(rows_file)],
        )

    def _create_views(self, views: list[dict[str, Any]]) -> None:
        # A view may read another view: create them in rounds until none is left.
        pending = list(views)
        while pending:
            failed: list[tuple[dict[str, Any], Exception]] = []
            for view in pending:
                sql = view_definition(view["ViewOriginalText"])["originalSql"]
                try:
                    self.connection.execute(f'CREATE VIEW "{self.database}"."{view["Name"]}" AS {sql}')
                except duckdb.CatalogException as exc:
                    failed.append((view, exc))
                    continue
                self._check_columns(view)
            if len(failed) == len(pending):
                # A view over a table that does not exist yet (the current-state tables before the first
                # export): Athena stores it and fails the queries that read it, so does the stand-in.
                missing = [(view, exc) for view, exc in failed if "does not exist" in str(exc)]
                if len(missing) != len(failed):
                    raise next(exc for _, exc in failed if (_, exc) not in missing)
                self.unavailable_views = {str(view["Name"]): str(exc).splitlines()[0] for view, exc in missing}
                return
            pending = [view for view, _ in failed]

    def _check_columns(self, view: dict[str, Any]) -> None:
        declared = [(c["Name"], duckdb_type(parse_hive_type(c["Type"]))) for c in view["StorageDescriptor"]["Columns"]]
        actual = self.connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self.database, view["Name"]],
        ).fetchall()
        if [(n, t.replace('"', "")) for n, t in actual] != [(n, t.replace('"', "")) for n, t in declared]:
            raise StaleView(f"{self.database}.{view['Name']}: the catalog declares {declared}, its SQL gives {actual}")

    # -------------------------------------------------------------------------------- querying
    def query(self, sql: str, parameters: list[Any] | None = None) -> list[dict[str, Any]]:
        """Run Athena SQL (unqualified names resolve in the database) and return the rows as dicts."""
        cursor = self.connection.execute(sql, parameters or [])
        names = [column[0] for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def current_state(
    database: str, object_type: str, *, glue: Any | None = None, s3: Any | None = None
) -> list[dict[str, Any]]:
    """The rows of an object type's current-state view, computed by DuckDB from the catalog and S3.

    The bucket is the one the partitions point at (the stack's export bucket).
    """
    with AthenaStandIn(database, glue=glue, s3=s3) as athena:
        return athena.query(f"SELECT * FROM {view_name(object_type)}")


def current_versions(
    database: str, object_type: str, *, glue: Any | None = None, s3: Any | None = None
) -> dict[tuple[str, str], int]:
    """(domain, id) -> lastUpdated of every object the current-state view shows."""
    return {
        (row["domain"], row["id"]): row["lastupdated"] for row in current_state(database, object_type, glue=glue, s3=s3)
    }


def catalog_partitions(database: str, *, glue: Any | None = None, s3: Any | None = None) -> list[PartitionFiles]:
    """Every partition of every table of the database, with the files its location holds."""
    athena = AthenaStandIn(database, glue=glue, s3=s3)
    try:
        return list(athena.catalog_partitions())
    finally:
        athena.close()
