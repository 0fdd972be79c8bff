"""Service limits moto does not enforce (or enforces differently), checked on every request in one place.

Each check takes the request as the gate sees it (`local.iam.ApiCall`) and raises `ServiceError`
with the code, status and message the service answers. Limits moto already enforces as AWS does are
left to moto and only tested: a state's input/output over 256 KB (`States.DataLimitExceeded`) and a
DynamoDB item over 400 KB (`ValidationException`). An execution input over 256 KB and an unnamed
execution are handled in `moto_patches` (`StepFunctionsParserBackend.start_execution`).

| service | limit | error |
|---|---|---|
| SNS Publish | Subject: ASCII printable (32..126), no line break, 1..100 characters | InvalidParameter |
| SNS Publish | Message + attribute names, types and values: at most 256 KB (UTF-8) | InvalidParameter |
| SNS Publish | attribute names (A-Za-z0-9_-., no AWS./Amazon. prefix, no leading/trailing/double dot, 256 max), types (String, Number, Binary, String.Array; custom suffix), String.Array a JSON array | InvalidParameterValue |
| EventBridge PutEvents | the entries of one request: at most 256 KB, counted as AWS documents | ValidationException |
| Lambda Invoke | payload: 6 MB (RequestResponse), 256 KB (Event) | RequestEntityTooLargeException (413) |
| Lambda | response over 6 MB; the function's Timeout | in `lambda_runtime` |
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from local.iam.errors import ServiceError
from local.iam.operations import ApiCall

SNS_SUBJECT_MAX = 100
SNS_MESSAGE_MAX_BYTES = 256 * 1024
EVENTS_REQUEST_MAX_BYTES = 256 * 1024
LAMBDA_SYNC_PAYLOAD_MAX_BYTES = 6 * 1024 * 1024
LAMBDA_ASYNC_PAYLOAD_MAX_BYTES = 256 * 1024

_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")
_ATTRIBUTE_TYPE = re.compile(r"^(String|Number|Binary)(\.[A-Za-z0-9_.\-]+)?$")


def _utf8(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def _sns_attributes(params: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """MessageAttributes of a query-protocol Publish (`MessageAttributes.entry.N.Name` ...)."""
    entries: dict[str, dict[str, str]] = {}
    for key, value in params.items():
        match = re.fullmatch(
            r"MessageAttributes\.entry\.(\d+)\.(Name|Value\.DataType|Value\.StringValue|Value\.BinaryValue)", key
        )
        if match:
            entries.setdefault(match.group(1), {})[match.group(2)] = str(value)
    attributes = params.get("MessageAttributes")
    if isinstance(attributes, dict):  # a JSON-protocol request
        for index, (name, value) in enumerate(attributes.items()):
            entries[f"json{index}"] = {
                "Name": name,
                "Value.DataType": str(value.get("DataType", "")),
                "Value.StringValue": str(value.get("StringValue", "")),
                "Value.BinaryValue": str(value.get("BinaryValue", "")),
            }
    return {entry["Name"]: entry for entry in entries.values() if "Name" in entry}


def check_sns_publish(call: ApiCall) -> None:
    """SNS Publish: subject, total size and message attributes."""
    if call.service != "sns" or call.operation != "Publish":
        return
    subject = call.params.get("Subject")
    if subject is not None:
        text = str(subject)
        if not text or len(text) > SNS_SUBJECT_MAX or any(not 32 <= ord(c) <= 126 for c in text):
            raise ServiceError(
                "InvalidParameter",
                "Invalid parameter: Subject (must be 1 to 100 printable ASCII characters, without line breaks)",
            )
    attributes = _sns_attributes(call.params)
    size = _utf8(call.params.get("Message", ""))
    for name, entry in attributes.items():
        data_type = entry.get("Value.DataType", "")
        value = entry.get("Value.StringValue") or entry.get("Value.BinaryValue") or ""
        size += _utf8(name) + _utf8(data_type) + _utf8(value)
        if (
            not _ATTRIBUTE_NAME.match(name)
            or name.lower().startswith(("aws.", "amazon."))
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
        ):
            raise ServiceError("InvalidParameterValue", f"The message attribute name '{name}' is invalid.")
        if not _ATTRIBUTE_TYPE.match(data_type):
            raise ServiceError(
                "InvalidParameterValue",
                f"The message attribute '{name}' has an invalid message attribute type, the set of supported "
                "type prefixes is Binary, Number, and String.",
            )
        if data_type.startswith("String.Array"):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list) or any(isinstance(v, dict | list) for v in parsed):
                raise ServiceError(
                    "InvalidParameterValue",
                    f"The message attribute '{name}' with type 'String.Array' has an invalid value: a JSON array "
                    "of strings, numbers, booleans or nulls is required.",
                )
    if size > SNS_MESSAGE_MAX_BYTES:
        raise ServiceError("InvalidParameter", "Invalid parameter: Message too long")


def _event_entry_size(entry: Mapping[str, Any]) -> int:
    # The calculation AWS documents for PutEvents entry sizes.
    size = 14 if entry.get("Time") else 0
    for key in ("Source", "DetailType", "Detail"):
        if entry.get(key):
            size += _utf8(entry[key])
    for resource in entry.get("Resources") or []:
        size += _utf8(resource)
    return size


def check_events_put(call: ApiCall) -> None:
    """EventBridge PutEvents: the entries of one request at most 256 KB."""
    if call.service != "events" or call.operation != "PutEvents":
        return
    total = sum(_event_entry_size(entry) for entry in call.params.get("Entries") or [])
    if total > EVENTS_REQUEST_MAX_BYTES:
        raise ServiceError("ValidationException", "Total size of the entries in the request is over the limit.")


def check_lambda_invoke(call: ApiCall) -> None:
    """Lambda Invoke: the request payload, by invocation type."""
    if call.service != "lambda" or call.operation != "Invoke":
        return
    headers = {key.lower(): value for key, value in call.headers.items()}
    invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
    limit = LAMBDA_ASYNC_PAYLOAD_MAX_BYTES if invocation_type == "Event" else LAMBDA_SYNC_PAYLOAD_MAX_BYTES
    if len(call.body) > limit:
        raise ServiceError(
            "RequestEntityTooLargeException",
            f"{len(call.body)} byte payload is too large for the {invocation_type} invocation type (limit {limit} bytes)",
            413,
        )


SERVICE_LIMITS: tuple[Callable[[ApiCall], None], ...] = (check_sns_publish, check_events_put, check_lambda_invoke)
"""Every limit check, in the order the gate applies them."""
