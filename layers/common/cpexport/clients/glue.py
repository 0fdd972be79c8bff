"""The Glue Data Catalog: creating the stack's tables and views, registering each export's partitions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from cpexport.catalog import OBJECT_TYPE_PARAMETER, CatalogPlan, ExportPartition, export_partitions, partition_input
from cpexport.clients import client
from cpexport.clients.translate import error_code, translated
from cpexport.errors import CatalogConflict, ConfigurationError

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
# BatchDeletePartition takes at most this many partitions a call.
DELETE_BATCH = 25


def _contains(existing: Any, wanted: Any) -> bool:
    """Whether `existing` holds everything `wanted` says (Glue adds fields of its own to what it returns)."""
    if isinstance(wanted, Mapping):
        return isinstance(existing, Mapping) and all(_contains(existing.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(existing, list)
            and len(existing) == len(wanted)
            and all(_contains(e, w) for e, w in zip(existing, wanted, strict=True))
        )
    return bool(existing == wanted)


class GlueCatalog:
    """One stack's Glue database, through the Glue API (paginators, botocore retries)."""

    def __init__(self, api: Any | None = None) -> None:
        self._api = api if api is not None else client("glue")

    # -------------------------------------------------------------------------------- partitions
    def register_partition(self, database: str, table: str, partition: Mapping[str, Any]) -> bool:
        """Add a partition; True if added, False if it was already there at the same location.

        A partition of the same values at another location means another export claims this
        export's identity: CatalogConflict, nothing is changed.
        """
        try:
            with translated("CreatePartition"):
                self._api.create_partition(DatabaseName=database, TableName=table, PartitionInput=dict(partition))
            return True
        except ClientError as exc:
            if error_code(exc) == "EntityNotFoundException":
                raise self._missing(database, table) from exc
            if error_code(exc) != "AlreadyExistsException":
                raise
        with translated("GetPartition"):
            existing = self._api.get_partition(
                DatabaseName=database, TableName=table, PartitionValues=list(partition["Values"])
            )["Partition"]
        location = existing.get("StorageDescriptor", {}).get("Location")
        wanted = partition["StorageDescriptor"]["Location"]
        if location != wanted:
            raise CatalogConflict(
                f"{database}.{table}: partition {partition['Values']} already points at {location}, not {wanted}; "
                "it is left as it is"
            )
        return False

    def register_export(
        self, database: str, bucket: str, manifest_key: str, manifest: Mapping[str, Any]
    ) -> list[ExportPartition]:
        """Register the partitions of an indexed export (see `catalog.export_partitions`); idempotent.

        Call it after the manifest is written and before the run is recorded: once it returns, the
        export answers queries. Reads the object type's table first, so partitions share its format.
        """
        partitions = export_partitions(bucket, manifest_key, manifest)
        for partition in partitions:
            table = self.table(database, partition.table)
            if (table.get("Parameters") or {}).get(OBJECT_TYPE_PARAMETER) != partition.object_type:
                raise CatalogConflict(
                    f"{database}.{partition.table} is not the table of object type {partition.object_type!r}"
                )
            self.register_partition(
                database, partition.table, partition_input(table, partition.values, partition.location)
            )
        return partitions

    def partitions(self, database: str, table: str) -> Iterator[dict[str, Any]]:
        """Every partition of a table (GetPartitions pages)."""
        with translated("GetPartitions"):
            for page in self._api.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
                yield from page.get("Partitions", [])

    def delete_partitions(self, database: str, table: str, values: Sequence[list[str]]) -> int:
        """Drop the partitions with these values (BatchDeletePartition, 25 a call); how many are gone.

        A partition that is already gone (a retried run) counts as dropped; any other error of an
        entry raises, naming it, after the batches before it were dropped.
        """
        dropped = 0
        for first in range(0, len(values), DELETE_BATCH):
            batch = values[first : first + DELETE_BATCH]
            with translated("BatchDeletePartition"):
                answer = self._api.batch_delete_partition(
                    DatabaseName=database,
                    TableName=table,
                    PartitionsToDelete=[{"Values": list(partition)} for partition in batch],
                )
            errors = [
                error
                for error in answer.get("Errors", [])
                if error.get("ErrorDetail", {}).get("ErrorCode") != "EntityNotFoundException"
            ]
            if errors:
                detail = errors[0].get("ErrorDetail", {})
                raise CatalogConflict(
                    f"{database}.{table}: partition {errors[0].get('PartitionValues')} was not dropped: "
                    f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
                )
            dropped += len(batch)
        return dropped

    # ---------------------------------------------------------------------------- tables, views
    def has_table(self, database: str, name: str) -> bool:
        """Whether the database has this table or view (GetTable)."""
        try:
            self.table(database, name)
        except ConfigurationError:
            return False
        return True

    def table(self, database: str, name: str) -> dict[str, Any]:
        """A table or view (GetTable); ConfigurationError when the catalog lacks it."""
        try:
            with translated("GetTable"):
                found: dict[str, Any] = self._api.get_table(DatabaseName=database, Name=name)["Table"]
                return found
        except ClientError as exc:
            if error_code(exc) == "EntityNotFoundException":
                raise self._missing(database, name) from exc
            raise

    def tables(self, database: str) -> Iterator[dict[str, Any]]:
        """Every table and view of the database (GetTables pages)."""
        with translated("GetTables"):
            for page in self._api.get_paginator("get_tables").paginate(DatabaseName=database):
                yield from page.get("TableList", [])

    def ensure_table(self, database: str, table_input: Mapping[str, Any]) -> str:
        """Create the table or view, or update it when it differs; `created`, `updated` or `unchanged`.

        A table of the same name made for another object type (or by someone else) is never
        overwritten: CatalogConflict.
        """
        name = str(table_input["Name"])
        try:
            with translated("GetTable"):
                existing = self._api.get_table(DatabaseName=database, Name=name)["Table"]
        except ClientError as exc:
            if error_code(exc) != "EntityNotFoundException":
                raise
            return self._create(database, table_input)
        ours = (table_input.get("Parameters") or {}).get(OBJECT_TYPE_PARAMETER)
        theirs = (existing.get("Parameters") or {}).get(OBJECT_TYPE_PARAMETER)
        if ours != theirs or existing.get("TableType") != table_input.get("TableType"):
            raise CatalogConflict(f"{database}.{name} exists and is not this stack's {table_input.get('TableType')}")
        if _contains(existing, table_input):
            return UNCHANGED
        with translated("UpdateTable"):
            self._api.update_table(DatabaseName=database, TableInput=dict(table_input))
        return UPDATED

    def ensure_catalog(self, plan: CatalogPlan) -> dict[str, str]:
        """Every table, then every view of the plan, each ensured; name -> what was done."""
        return {str(item["Name"]): self.ensure_table(plan.database, item) for item in [*plan.tables, *plan.views]}

    def _create(self, database: str, table_input: Mapping[str, Any]) -> str:
        try:
            with translated("CreateTable"):
                self._api.create_table(DatabaseName=database, TableInput=dict(table_input))
        except ClientError as exc:
            if error_code(exc) == "EntityNotFoundException":
                raise ConfigurationError(
                    f"Glue database {database} does not exist: template.yaml's GlueDatabase creates it"
                ) from exc
            if error_code(exc) == "AlreadyExistsException":  # created meanwhile by a concurrent caller
                return self.ensure_table(database, table_input)
            raise
        return CREATED

    @staticmethod
    def _missing(database: str, table: str) -> ConfigurationError:
        return ConfigurationError(
            f"Glue table {database}.{table} does not exist: the catalog's tables and views are created by "
            "GlueCatalog.ensure_catalog for the configured object types"
        )
