"""What EventBridge and EventBridge Scheduler do to a target's input before starting an execution.

moto never fires schedules and cannot start a state machine from a rule, so the harness computes
the execution input itself: the pure functions here render it. Which rule matches an event is
left to moto's own EventBridge matcher (`moto.events.models.EventPattern`: exact values, prefix,
suffix, anything-but, exists, numeric, equals-ignore-case, wildcard, cidr, `$or`).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any


def render_scheduler_input(
    template: str, scheduled_time: datetime, schedule_arn: str, execution_id: str, attempt: int = 1
) -> str:
    """Replace the context keywords EventBridge Scheduler fills in a target's Input."""
    keywords = {
        "<aws.scheduler.scheduled-time>": format_utc(scheduled_time),
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for keyword, value in keywords.items():
        template = template.replace(keyword, value)
    return template


def format_utc(moment: datetime) -> str:
    """`2022-03-22T18:59:43Z`: the format of Scheduler's scheduled-time and of an event's time."""
    # isoformat, not strftime: %Y does not zero-pad years below 1000 on every platform.
    return to_utc(moment).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def to_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive input is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def normalize_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a target receives it, from moto's internal form (epoch `time`, `ingestion-time`)."""
    normalized = {key: value for key, value in event.items() if key != "ingestion-time"}
    moment = normalized.get("time")
    if isinstance(moment, int | float):
        normalized["time"] = format_utc(datetime.fromtimestamp(moment, UTC))
    elif isinstance(moment, datetime):
        normalized["time"] = format_utc(moment)
    return normalized


def scheduled_event(rule_arn: str, scheduled_time: datetime, account_id: str, region: str) -> dict[str, Any]:
    """The event a scheduled EventBridge rule sends when it has no Input."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": format_utc(scheduled_time),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def json_path(document: Any, path: str) -> Any:
    """Resolve the simple JSONPath EventBridge allows in InputPath and InputPathsMap ($.a.b[0])."""
    if path in ("$", ""):
        return document
    if not path.startswith("$"):
        raise ValueError(f"Not a JSONPath: {path!r}")
    current = document
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:]):
        if index:
            if not isinstance(current, list) or int(index) >= len(current):
                return None
            current = current[int(index)]
        else:
            if not isinstance(current, dict) or name not in current:
                return None
            current = current[name]
    return current


def target_input(target: dict[str, Any], event: dict[str, Any], rule_arn: str, rule_name: str) -> str:
    """The input a rule target receives: Input, InputPath, InputTransformer, or the whole event."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        return json.dumps(json_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        return transform_input(transformer, event, rule_arn, rule_name)
    return json.dumps(event)


def transform_input(transformer: dict[str, Any], event: dict[str, Any], rule_arn: str, rule_name: str) -> str:
    """Apply an InputTransformer as EventBridge does.

    A placeholder inside a JSON string gets the value's text (strings unquoted); outside a string
    it gets the value as JSON. A path that matches nothing becomes null (or empty inside a string).
    """
    values: dict[str, Any] = {
        name: json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values.update(
        {
            "aws.events.rule-arn": rule_arn,
            "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": event.get("time"),
            "aws.events.event.json": event,
        }
    )
    template = str(transformer.get("InputTemplate", ""))
    rendered: list[str] = []
    in_string = False
    position = 0
    placeholder = re.compile(r"<([A-Za-z0-9_.\-]+)>")
    while position < len(template):
        char = template[position]
        match = placeholder.match(template, position)
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                text = value if isinstance(value, str) else ("" if value is None else json.dumps(value))
                rendered.append(json.dumps(text)[1:-1])
            else:
                rendered.append(json.dumps(value))
            position = match.end()
            continue
        if char == "\\" and in_string:
            rendered.append(template[position : position + 2])
            position += 2
            continue
        if char == '"':
            in_string = not in_string
        rendered.append(char)
        position += 1
    return "".join(rendered)
