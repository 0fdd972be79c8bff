"""Everything the emulator knows about the wire format comes from botocore's service model.

Routing (method + requestUri), where each input member lives (uri, querystring, header, body),
server-side validation (required, types, enums, patterns, lengths, ranges) and the output
shapes are all read from ``botocore/data/appintegrations/2020-07-29/service-2.json``, so an
upgrade of botocore changes the emulator with it instead of drifting from a hand-written copy.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from local.emulator.errors import ApiError, InvalidRequestError, UnknownOperationError

SERVICE_NAME = "appintegrations"

# The operations the emulator implements; others in the model answer UnsupportedOperationException.
IMPLEMENTED_OPERATIONS = (
    "CreateDataIntegration",
    "GetDataIntegration",
    "ListDataIntegrations",
    "DeleteDataIntegration",
    "CreateDataIntegrationAssociation",
    "UpdateDataIntegrationAssociation",
    "ListDataIntegrationAssociations",
)


class UnsupportedOperationError(ApiError):
    """``UnsupportedOperationException`` (400 in the model): an operation the emulator does not serve."""

    code = "UnsupportedOperationException"
    default_status = 400


@functools.cache
def service_model() -> ServiceModel:
    """Return botocore's (cached) service model for AppIntegrations."""
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


def error_status(code: str, default: int) -> int:
    """Return the HTTP status the model gives error shape ``code`` (``default`` if not modeled)."""
    model = service_model()
    try:
        shape = model.shape_for(code)
    except Exception:
        return default
    status = shape.metadata.get("error", {}).get("httpStatusCode")
    return int(status) if status is not None else default


@dataclass(frozen=True)
class Route:
    """One operation's HTTP binding compiled from the model."""

    operation: str
    method: str
    regex: re.Pattern[str]
    literal_segments: int


def _compile_route(op: OperationModel) -> Route:
    uri = op.http["requestUri"].split("?", 1)[0]
    parts = [p for p in uri.split("/") if p]
    pattern = ""
    literals = 0
    for part in parts:
        label = re.fullmatch(r"\{([A-Za-z0-9_]+)(\+?)\}", part)
        if label:
            # Greedy labels ({Name+}) may span segments; plain ones are one raw (still encoded) segment.
            body = ".+" if label.group(2) else "[^/]+"
            pattern += f"/(?P<{label.group(1)}>{body})"
        else:
            pattern += "/" + re.escape(part)
            literals += 1
    return Route(op.name, op.http["method"].upper(), re.compile(f"^{pattern or '/'}$"), literals)


@functools.cache
def routes() -> tuple[Route, ...]:
    """Return the compiled routes of every operation in the model, most literal first."""
    model = service_model()
    compiled = [_compile_route(model.operation_model(name)) for name in model.operation_names]
    # Prefer literal segments over labels when two templates could match the same path.
    return tuple(sorted(compiled, key=lambda r: -r.literal_segments))


def match_route(method: str, raw_path: str) -> tuple[str, dict[str, str]]:
    """Find the operation for ``method`` and the raw (percent-encoded) path; return it and its URI labels.

    Labels are decoded after matching so an encoded ARN (``%2F``) stays one segment.
    """
    path = raw_path.split("?", 1)[0] or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    for route in routes():
        if route.method != method.upper():
            continue
        found = route.regex.match(path)
        if found:
            return route.operation, {k: unquote(v) for k, v in found.groupdict().items()}
    raise UnknownOperationError(f"No operation matches {method.upper()} {path}")


def _query_value(shape: Shape, raw: list[str], name: str) -> Any:
    if shape.type_name == "list":
        return raw
    value = raw[-1]
    if shape.type_name in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            raise InvalidRequestError(
                f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
                "Member must be an integer"
            ) from None
    if shape.type_name == "boolean":
        return value.lower() == "true"
    return value


def parse_request(
    operation: str, labels: Mapping[str, str], raw_query: str, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """Turn an HTTP request into the operation's input parameters, keyed by member name as in the model."""
    op = service_model().operation_model(operation)
    shape = op.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    query = parse_qs(raw_query, keep_blank_values=True)
    body_doc: dict[str, Any] = {}
    has_body_members = any("location" not in m.serialization for m in shape.members.values())
    if has_body_members and body.strip():
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(decoded, dict):
            raise InvalidRequestError("The request body must be a JSON object")
        body_doc = decoded
    for member_name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", member_name)
        if location == "uri":
            if wire_name in labels:
                params[member_name] = labels[wire_name]
        elif location == "querystring":
            if wire_name in query:
                params[member_name] = _query_value(member, query[wire_name], member_name)
        elif location == "header":
            lowered = {k.lower(): v for k, v in headers.items()}
            if wire_name.lower() in lowered:
                params[member_name] = lowered[wire_name.lower()]
        elif wire_name in body_doc:
            params[member_name] = body_doc[wire_name]
    return params


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (int, float),
    "float": (int, float),
    "timestamp": (int, float, str),
    "blob": (str,),
}


def validate_value(shape: Shape, value: Any, path: str) -> list[str]:
    """Validate ``value`` against ``shape`` recursively; return AWS-style constraint messages (empty if valid)."""
    errors: list[str] = []
    expected = _TYPE_CHECKS.get(shape.type_name)
    wrong_bool = isinstance(value, bool) and shape.type_name not in ("boolean",)
    if expected is not None and (not isinstance(value, expected) or wrong_bool):
        return [
            f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: Member must be of type {shape.type_name}"
        ]
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        for req in shape.required_members:
            if value.get(req) is None:
                errors.append(
                    f"Value null at '{_join(path, req)}' failed to satisfy constraint: Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                errors.extend(validate_value(member, value[name], _join(path, name)))
        return errors
    if shape.type_name in ("list", "map", "string"):
        size = len(value)
        unit = "length" if shape.type_name == "string" else "size"
        if "min" in meta and size < meta["min"]:
            errors.append(
                f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
                f"Member must have {unit} greater than or equal to {meta['min']}"
            )
        if "max" in meta and size > meta["max"]:
            errors.append(
                f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
                f"Member must have {unit} less than or equal to {meta['max']}"
            )
    if shape.type_name == "string":
        enum: list[str] = meta.get("enum", [])
        if enum and value not in enum:
            errors.append(
                f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = meta.get("pattern")
        # Smithy patterns are not implicitly anchored: a search, not a full match.
        if pattern and re.search(pattern, value) is None:
            errors.append(
                f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
    elif shape.type_name in ("integer", "long"):
        if "min" in meta and value < meta["min"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {meta['min']}"
            )
        if "max" in meta and value > meta["max"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {meta['max']}"
            )
    elif isinstance(shape, ListShape):
        for i, item in enumerate(value):
            errors.extend(validate_value(shape.member, item, f"{path}[{i}]"))
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            errors.extend(validate_value(shape.key, key, f"{path} key"))
            errors.extend(validate_value(shape.value, item, f"{path}.{key}"))
    return errors


def validation_message(errors: list[str]) -> str:
    """Render constraint messages the way AWS front ends do ("N validation errors detected: ...")."""
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} validation {noun} detected: " + "; ".join(errors)


def validate_input(operation: str, params: Mapping[str, Any]) -> None:
    """Raise InvalidRequestError if ``params`` break any constraint of the operation's input shape."""
    shape = service_model().operation_model(operation).input_shape
    if shape is None:
        return
    errors = validate_value(shape, dict(params), "")
    if errors:
        raise InvalidRequestError(validation_message(errors))


def serialize_output(operation: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Render ``data`` as the operation's rest-json body, refusing any member the output shape lacks.

    A member outside the model is an emulator bug; failing loudly keeps responses conformant.
    """
    shape = service_model().operation_model(operation).output_shape
    if shape is None:
        if data:
            raise AssertionError(f"{operation} has no output shape but got {sorted(data)}")
        return {}
    body: dict[str, Any] = _serialize(shape, data, operation)
    return body


def _serialize(shape: Shape, value: Any, path: str) -> Any:
    if isinstance(shape, StructureShape):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key not in shape.members:
                raise AssertionError(f"{path}.{key} is not a member of {shape.name}")
            if item is None:
                continue
            member = shape.members[key]
            if member.serialization.get("location"):
                raise AssertionError(f"{path}.{key}: only body members are supported in outputs")
            out[member.serialization.get("name", key)] = _serialize(member, item, f"{path}.{key}")
        return out
    if isinstance(shape, ListShape):
        return [_serialize(shape.member, item, f"{path}[]") for item in value]
    if isinstance(shape, MapShape):
        return {k: _serialize(shape.value, v, f"{path}.{k}") for k, v in value.items()}
    return value
