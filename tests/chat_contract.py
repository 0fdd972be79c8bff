"""What every SNS message the pipeline publishes must be, checked the same way in unit and end-to-end tests.

SNS: a Subject of 1 to 100 printable ASCII characters without a line break; the Message and its
attributes at most 256 KB; with `MessageStructure=json`, the Message a JSON object of strings with
the mandatory `default` key. Chat: the `https` message (what Amazon Q Developer in chat applications
receives) is a custom notification valid against `chat_notification.schema.json`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA = Path(__file__).with_name("chat_notification.schema.json")
SNS_MESSAGE_MAX_BYTES = 256 * 1024
SNS_SUBJECT_MAX = 100


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def chat_problems(chat: Any) -> list[str]:
    """Every way `chat` departs from the documented custom-notification format (empty: it is one)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator().iter_errors(chat)
    ]


def sns_problems(message: str, subject: str | None, attributes: dict[str, str] | None = None) -> list[str]:
    """Every SNS limit a structured publish breaks (empty: SNS accepts it, and each protocol's part is right)."""
    problems: list[str] = []
    if subject is not None and not (
        1 <= len(subject) <= SNS_SUBJECT_MAX and all(32 <= ord(char) <= 126 for char in subject)
    ):
        problems.append(f"subject is not 1-{SNS_SUBJECT_MAX} printable ASCII characters: {subject!r}")
    size = len(message.encode()) + sum(len(k.encode()) + len(v.encode()) for k, v in (attributes or {}).items())
    if size > SNS_MESSAGE_MAX_BYTES:
        problems.append(f"message and attributes are {size} bytes, over {SNS_MESSAGE_MAX_BYTES}")
    try:
        structure = json.loads(message)
    except ValueError:
        return [*problems, "not a structured (MessageStructure=json) message: chat would show nothing"]
    if not isinstance(structure, dict) or not isinstance(structure.get("default"), str):
        return [*problems, "the mandatory `default` message is missing"]
    problems += [f"`{key}` is not a string" for key, value in structure.items() if not isinstance(value, str)]
    if "https" not in structure:
        return [*problems, "no `https` message: chat would receive the text and show nothing"]
    try:
        chat = json.loads(structure["https"])
    except ValueError:
        return [*problems, "the `https` message is not JSON"]
    return problems + [f"chat: {problem}" for problem in chat_problems(chat)]


def chat_of(message: str) -> dict[str, Any]:
    """The custom notification inside a structured SNS message."""
    chat: dict[str, Any] = json.loads(json.loads(message)["https"])
    return chat
