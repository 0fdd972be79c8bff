"""Read what the pipeline left behind on the offline stack: S3 manifests and files, the state
table, SNS notifications (as a queue subscriber receives them, and as published) and result events.
Used by `make demo` and the end-to-end tests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cpexport.catalog import state_table_name
from cpexport.clients.athena import Athena
from cpexport.current_state import merge_statement, partition_ref_of

from local.harness.stack import OfflineStack

RESULT_SOURCE = "customer-profiles-export"


@dataclass(frozen=True)
class Version:
    """One version of a Customer Profiles object: its id and when it was last updated."""

    id: str
    last_updated: int


def versions(objects: Iterable[dict[str, Any]]) -> set[Version]:
    """The (id, lastUpdated) versions of seeded or exported objects."""
    return {Version(str(o["id"]), int(o["lastUpdated"])) for o in objects}


class PipelineObserver:
    """Subscribes to the stack's topic and result events, and reads its bucket and state table."""

    def __init__(self, stack: OfflineStack, name: str = "observer") -> None:
        self.stack = stack
        self.outputs = stack.outputs
        self.bucket = self.outputs["ExportBucketName"]
        self.table = self.outputs["StateTableName"]
        self._s3 = stack.client("s3")
        self._ddb = stack.client("dynamodb")
        self._sqs = stack.client("sqs")
        self.notifications_queue = self._queue(f"{name}-notifications")
        self._published_seen = len(self._topic_sent())
        self.events_queue = self._queue(f"{name}-result-events")
        stack.client("sns").subscribe(
            TopicArn=self.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=self._arn(self.notifications_queue)
        )
        events = stack.client("events")
        events.put_rule(
            Name=f"{name}-results",
            EventBusName=self.outputs.get("EventBusName", "default"),
            EventPattern=json.dumps({"source": [RESULT_SOURCE]}),
        )
        events.put_targets(
            Rule=f"{name}-results",
            EventBusName=self.outputs.get("EventBusName", "default"),
            Targets=[{"Id": "queue", "Arn": self._arn(self.events_queue)}],
        )

    # ----------------------------------------------------------------- current state (Athena offline)
    def athena(self, sql: str) -> list[dict[str, str | None]]:
        """Run one statement through the stack's workgroup as the administrator; its rows (none for DML)."""
        athena = Athena(self.stack.client("athena"), sleep=lambda _: time.sleep(0.02))
        outcome = athena.run(
            sql, workgroup=self.outputs["AthenaWorkGroupName"], database=self.outputs["GlueDatabaseName"]
        )
        if not outcome.succeeded:
            raise RuntimeError(f"Athena (offline) {outcome.state}: {outcome.reason}\n{sql[:300]}")
        return athena.rows(outcome.query_execution_id)

    def current_table(self, domain_name: str, object_type: str) -> dict[str, int]:
        """id -> lastupdated of a domain's rows in its object type's current-state table (empty before one exists)."""
        table = state_table_name(object_type)
        if not self._has_table(table):
            return {}
        rows = self.athena(
            f"SELECT id, lastupdated FROM {table} WHERE domain = '{domain_name}'"  # nosec B608: test code, checked names
        )
        return {str(row["id"]): int(str(row["lastupdated"])) for row in rows}

    def replay_merge(self, object_type: str, partition_names: list[str]) -> None:
        """Run an export's MERGE into the current-state table again (it must change nothing)."""
        refs = [partition_ref_of(name) for name in partition_names]
        self.athena(merge_statement(self.outputs["GlueDatabaseName"], object_type, refs))

    def _has_table(self, table: str) -> bool:
        glue = self.stack.client("glue")
        try:
            glue.get_table(DatabaseName=self.outputs["GlueDatabaseName"], Name=table)
        except glue.exceptions.EntityNotFoundException:
            return False
        return True

    def _queue(self, name: str) -> str:
        return str(self._sqs.create_queue(QueueName=name)["QueueUrl"])

    def _arn(self, queue_url: str) -> str:
        attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while True:
            batch = self._sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def notifications(self) -> list[dict[str, Any]]:
        """SNS messages published since the last call (subject, message, attributes)."""
        return self._drain(self.notifications_queue)

    def published(self) -> list[dict[str, Any]]:
        """Messages published on the notification topic since the last call, as SNS took them: `Message`
        whole (with MessageStructure json, every protocol's message), `Subject`, `MessageAttributes`
        (name -> value). A queue subscriber sees only the `default` part; moto records the whole."""
        sent = self._topic_sent()[self._published_seen :]
        self._published_seen += len(sent)
        return [
            {
                "MessageId": message_id,
                "Message": message,
                "Subject": subject,
                "MessageAttributes": {name: str(value.get("Value", "")) for name, value in (attributes or {}).items()},
            }
            for message_id, message, subject, attributes, _group in sent
        ]

    def _topic_sent(self) -> list[Any]:
        # moto's SNS runs in this process (the offline stack's server thread) and keeps every publish.
        from moto.sns.models import sns_backends

        account = self.stack.account
        topic = sns_backends[account.account_id][account.region].topics[self.outputs["NotificationTopicArn"]]
        return list(topic.sent_notifications)

    def result_events(self) -> list[dict[str, Any]]:
        """Succeeded/Failed events put on the bus since the last call."""
        return self._drain(self.events_queue)

    # -- state table --------------------------------------------------------------------------
    def watermark(self, domain_name: str, object_type: str) -> str | None:
        item = self._ddb.get_item(
            TableName=self.table, Key={"pk": {"S": f"EXPORT#{domain_name}#{object_type}"}, "sk": {"S": "WATERMARK"}}
        ).get("Item")
        return item["watermark"]["S"] if item and "watermark" in item else None

    def runs(self, domain_name: str, object_type: str) -> list[dict[str, Any]]:
        """The run index of an object type, oldest window first."""
        response = self._ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues={":pk": {"S": f"EXPORT#{domain_name}#{object_type}"}, ":run": {"S": "RUN#"}},
        )
        return [{key: _plain(value) for key, value in item.items()} for item in response["Items"]]

    # -- bucket -------------------------------------------------------------------------------
    def keys(self, prefix: str = "") -> list[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def read_json(self, key: str) -> Any:
        return json.loads(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def records(self, key: str) -> list[dict[str, Any]]:
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def manifest_files(self, manifest_key: str) -> list[dict[str, Any]]:
        """The files a manifest lists (`key`, `size`, `etag`, `records`): its summary names the JSON Lines list."""
        return self.records(self.read_json(manifest_key)["fileList"])

    def manifest_records(self, manifest_key: str) -> list[dict[str, Any]]:
        """Every record of the files a manifest lists."""
        return [record for file in self.manifest_files(manifest_key) for record in self.records(file["key"])]

    def exported_versions(self, domain_name: str, object_type: str) -> set[Version]:
        """Every object version exported for an object type, read through the run index's manifests."""
        found: set[Version] = set()
        for run in self.runs(domain_name, object_type):
            if run.get("status") == "SUCCEEDED" and run.get("manifestKey"):
                found |= versions(self.manifest_records(run["manifestKey"]))
        return found


def missing_versions(seeded: Iterable[dict[str, Any]], exported: set[Version], watermark_ms: int) -> set[Version]:
    """Seeded versions last updated before the watermark that no manifest holds: the lost ones."""
    return {v for v in versions(seeded) if v.last_updated < watermark_ms} - exported


def _plain(value: dict[str, Any]) -> Any:
    kind, raw = next(iter(value.items()))
    if kind == "N":
        return int(raw) if raw.lstrip("-").isdigit() else float(raw)
    # A run's `partitions` is a list of maps: read nested values too (soak and tests take their names).
    if kind == "L":
        return [_plain(item) for item in raw]
    if kind == "M":
        return {key: _plain(item) for key, item in raw.items()}
    if kind == "NULL":
        return None
    return raw
