"""The DynamoDB state table: watermarks, export leases and the run index.

Items of one object type share the partition `EXPORT#{domain}#{objectType}`:
- `WATERMARK`: everything last-updated before `watermark` has been exported and indexed;
- `LEASE`: the window this pipeline is exporting right now (at most one job per object type);
- `RUN#{start}#{end}#{execution}`: one item per finished export (the run index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from cpexport.clients import client
from cpexport.clients.translate import error_code, translated
from cpexport.models import ExportWindow, render_utc


def partition_key(domain_name: str, object_type: str) -> str:
    return f"EXPORT#{domain_name}#{object_type}"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Lease:
    window: ExportWindow
    execution_arn: str
    acquired_at: datetime
    submitted_at: datetime | None


class StateTable:
    """Conditional reads and writes of the pipeline's state."""

    def __init__(self, table_name: str, api: Any | None = None) -> None:
        self.table_name = table_name
        self._api = api if api is not None else client("dynamodb")

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with translated("GetItem"):
            item = self._api.get_item(
                TableName=self.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            ).get("Item")
        return dict(item) if item else None

    # -- watermark ---------------------------------------------------------------------------
    def get_watermark(self, domain_name: str, object_type: str) -> datetime | None:
        """The object type's watermark, or None before its first export."""
        item = self._get(partition_key(domain_name, object_type), "WATERMARK")
        if not item or "watermark" not in item:
            return None
        return _parse(item["watermark"]["S"])

    def advance_watermark(
        self, domain_name: str, object_type: str, window: ExportWindow, initial_start: datetime, now: datetime
    ) -> bool:
        """Move the watermark from the window's start to its end; False when it was not at the start.

        The condition is the no-gap, no-double-advance guarantee: the watermark only moves
        forward, and only over a window that was really exported.
        """
        start, end = render_utc(window.start), render_utc(window.end)
        condition = "watermark = :start"
        values: dict[str, Any] = {":start": {"S": start}, ":end": {"S": end}, ":now": {"S": render_utc(now)}}
        if window.start == initial_start:
            condition = "attribute_not_exists(watermark) OR watermark = :start"
        try:
            with translated("UpdateItem"):
                self._api.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": partition_key(domain_name, object_type)}, "sk": {"S": "WATERMARK"}},
                    UpdateExpression="SET watermark = :end, updatedAt = :now, lastSuccessAt = :now",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- lease -------------------------------------------------------------------------------
    def get_lease(self, domain_name: str, object_type: str) -> Lease | None:
        """The export this pipeline has in flight for the object type, if any."""
        item = self._get(partition_key(domain_name, object_type), "LEASE")
        if not item:
            return None
        return Lease(
            window=ExportWindow(start=_parse(item["windowStart"]["S"]), end=_parse(item["windowEnd"]["S"])),
            execution_arn=item["executionArn"]["S"],
            acquired_at=_parse(item["acquiredAt"]["S"]),
            submitted_at=_parse(item["submittedAt"]["S"]) if "submittedAt" in item else None,
        )

    def put_lease(
        self,
        domain_name: str,
        object_type: str,
        window: ExportWindow,
        execution_arn: str,
        now: datetime,
        replacing: Lease | None,
    ) -> bool:
        """Take the lease; `replacing` is the (stale) lease we expect to find. False if we lost a race."""
        condition = "attribute_not_exists(pk)"
        values: dict[str, Any] = {}
        if replacing is not None:
            condition = "acquiredAt = :previous"
            values[":previous"] = {"S": render_utc(replacing.acquired_at)}
        try:
            with translated("PutItem"):
                self._api.put_item(
                    TableName=self.table_name,
                    Item={
                        "pk": {"S": partition_key(domain_name, object_type)},
                        "sk": {"S": "LEASE"},
                        "windowStart": {"S": render_utc(window.start)},
                        "windowEnd": {"S": render_utc(window.end)},
                        "executionArn": {"S": execution_arn},
                        "acquiredAt": {"S": render_utc(now)},
                    },
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_submitted(self, domain_name: str, object_type: str, window: ExportWindow, now: datetime) -> None:
        """Note on the lease that the job for its window has been submitted."""
        self._if_lease_window(
            "UpdateItem",
            self._api.update_item,
            domain_name,
            object_type,
            window,
            UpdateExpression="SET submittedAt = :now",
            ExpressionAttributeValues={":now": {"S": render_utc(now)}},
        )

    def release_lease(self, domain_name: str, object_type: str, window: ExportWindow) -> None:
        """Drop the lease if it is still ours (same window)."""
        self._if_lease_window("DeleteItem", self._api.delete_item, domain_name, object_type, window)

    def _if_lease_window(
        self, operation: str, call: Any, domain_name: str, object_type: str, window: ExportWindow, **request: Any
    ) -> None:
        """Run a write on the LEASE item only while it holds `window`; a lease already gone is fine."""
        values = request.pop("ExpressionAttributeValues", {})
        try:
            with translated(operation):
                call(
                    TableName=self.table_name,
                    Key={"pk": {"S": partition_key(domain_name, object_type)}, "sk": {"S": "LEASE"}},
                    ConditionExpression="windowStart = :start AND windowEnd = :end",
                    ExpressionAttributeValues={
                        ":start": {"S": render_utc(window.start)},
                        ":end": {"S": render_utc(window.end)},
                        **values,
                    },
                    **request,
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    # -- run index ---------------------------------------------------------------------------
    def put_run(self, domain_name: str, object_type: str, run: dict[str, Any]) -> str:
        """Record one finished export in the run index (keyed by window and execution); returns its sort key."""
        execution_name = str(run["executionArn"]).rsplit(":", 1)[-1]
        sort_key = f"RUN#{run['windowStart']}#{run['windowEnd']}#{execution_name}"
        item: dict[str, Any] = {
            "pk": {"S": partition_key(domain_name, object_type)},
            "sk": {"S": sort_key},
        }
        for name, value in run.items():
            if value is None:
                continue
            if isinstance(value, bool):
                item[name] = {"BOOL": value}
            elif isinstance(value, int | float):
                item[name] = {"N": str(value)}
            else:
                item[name] = {"S": str(value)}
        with translated("PutItem"):
            self._api.put_item(TableName=self.table_name, Item=item)
        return sort_key

    def list_runs(self, domain_name: str, object_type: str) -> list[dict[str, Any]]:
        """The run index of an object type, oldest window first, as plain dicts."""
        runs: list[dict[str, Any]] = []
        with translated("Query"):
            pages = self._api.get_paginator("query").paginate(
                TableName=self.table_name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
                ExpressionAttributeValues={
                    ":pk": {"S": partition_key(domain_name, object_type)},
                    ":run": {"S": "RUN#"},
                },
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    runs.append({name: _plain(value) for name, value in item.items()})
        return runs


def _plain(value: dict[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        number = value["N"]
        return int(number) if number.lstrip("-").isdigit() else float(number)
    if "BOOL" in value:
        return value["BOOL"]
    return value
