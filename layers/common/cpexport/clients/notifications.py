"""SNS notifications and EventBridge result events."""

from __future__ import annotations

import json
from typing import Any

from cpexport.clients import client
from cpexport.clients.translate import translated


class Notifications:
    """Publish to the on-call topic and put result events on the bus."""

    def __init__(self, sns: Any | None = None, events: Any | None = None) -> None:
        self._sns = sns if sns is not None else client("sns")
        self._events = events if events is not None else client("events")

    def publish(
        self,
        topic_arn: str,
        subject: str,
        message: str,
        attributes: dict[str, list[str] | str],
        message_structure: str | None = None,
    ) -> str:
        """Publish one message; list attributes become `String.Array` so filter policies match any element.

        `message_structure="json"`: `message` is a JSON object of one message per protocol (`default` required).
        """
        message_attributes: dict[str, Any] = {}
        for name, value in attributes.items():
            if isinstance(value, list):
                message_attributes[name] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
            else:
                message_attributes[name] = {"DataType": "String", "StringValue": value}
        structure = {"MessageStructure": message_structure} if message_structure else {}
        with translated("Publish"):
            response = self._sns.publish(
                TopicArn=topic_arn, Subject=subject, Message=message, MessageAttributes=message_attributes, **structure
            )
        return str(response["MessageId"])

    def put_events(self, bus_name: str, source: str, entries: list[tuple[str, dict[str, Any]]]) -> int:
        """Put (detail-type, detail) events on the bus, 10 per call; returns how many failed."""
        failed = 0
        for offset in range(0, len(entries), 10):
            batch = [
                {
                    "EventBusName": bus_name,
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
                for detail_type, detail in entries[offset : offset + 10]
            ]
            with translated("PutEvents"):
                failed += int(self._events.put_events(Entries=batch).get("FailedEntryCount", 0))
        return failed
