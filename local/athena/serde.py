"""How Athena turns one line of an exported file into a row: the two SerDes the catalog uses.

The OpenX JSON SerDe follows the behaviour Trino (Athena engine 3) documents for it
(trino-hive-formats, `line/openxjson/README.md`): a line that does not start with `{` or `[`, or
that does not parse (`ignore.malformed.json`), is a row of NULLs; keys match columns and struct
fields case-insensitively; map keys keep their case; text columns take any JSON value as its
canonical JSON; numbers that do not fit are NULL; an object where a number is expected fails the
query. The raw-line SerDe (LazySimpleSerDe, one string column) gives each line whole.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from cpexport.catalog import JSON_SERDE, RAW_LINE_SERDE

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_INTEGER_RANGES = {"bigint": 63, "int": 31}
# LazySimpleSerDe's default text for NULL.
_HIVE_NULL = "\\N"


class SerdeError(ValueError):
    """A value Athena cannot read as its column's type: the query fails, as it would on Athena."""


def split_lines(body: str) -> list[str]:
    """The lines of a text file as Hadoop's TextInputFormat reads them (no empty line after the last break)."""
    lines = _LINE_BREAK.split(body)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def decode(serde: str, line: str, columns: list[tuple[str, tuple[Any, ...]]]) -> dict[str, Any]:
    """One line as a row of the table's columns (name -> Python value), per the table's SerDe."""
    if serde == RAW_LINE_SERDE:
        (name, _), *rest = columns
        if rest:
            raise SerdeError("the raw-line SerDe reads tables of exactly one string column")
        return {name: None if line == _HIVE_NULL else line}
    if serde != JSON_SERDE:
        raise SerdeError(f"SerDe {serde} is not one the stand-in reads")
    nulls: dict[str, Any] = dict.fromkeys(name for name, _ in columns)
    if not line.lstrip().startswith(("{", "[")):
        return nulls
    try:
        # Text after the closing brace is ignored, as the SerDe does.
        document, _ = json.JSONDecoder(parse_float=Decimal).raw_decode(line.lstrip())
    except ValueError:
        return nulls  # ignore.malformed.json
    if not isinstance(document, dict):
        return nulls
    fields = _folded(document)
    return {name: _coerce(fields.get(name), tree) for name, tree in columns}


def _folded(document: dict[str, Any]) -> dict[str, Any]:
    # case.insensitive: the last of keys that differ only in case wins.
    return {str(key).lower(): value for key, value in document.items()}


def _canonical(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_canonical(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _coerce(value: Any, tree: tuple[Any, ...]) -> Any:
    if value is None:
        return None
    kind = tree[0]
    if kind == "string":
        return value if isinstance(value, str) else _canonical(value)
    if kind in _INTEGER_RANGES:
        return _integer(value, _INTEGER_RANGES[kind])
    if kind == "double":
        if isinstance(value, dict | list):
            raise SerdeError(f"a JSON {type(value).__name__} where a double is expected")
        try:
            return float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            return None
    if kind == "boolean":
        return isinstance(value, str | bool) and str(value).lower() == "true"
    if kind == "struct":
        if isinstance(value, str) and not value.strip():
            return None
        if not isinstance(value, dict):
            raise SerdeError(f"a JSON {type(value).__name__} where an object (struct) is expected")
        fields = _folded(value)
        return {name: _coerce(fields.get(name), field) for name, field in tree[1]}
    if kind == "map":
        if isinstance(value, str) and not value.strip():
            return None
        if not isinstance(value, dict):
            raise SerdeError(f"a JSON {type(value).__name__} where an object (map) is expected")
        return {str(key): _coerce(item, tree[2]) for key, item in value.items()}
    if kind == "array":
        if value == "":
            return None
        items = value if isinstance(value, list) else [value]
        return [_coerce(item, tree[1]) for item in items]
    raise SerdeError(f"type {kind} is not one the stand-in reads")


def _integer(value: Any, bits: int) -> int | None:
    if isinstance(value, dict | list):
        raise SerdeError(f"a JSON {type(value).__name__} where an integer is expected")
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    integer = int(number)
    return integer if -(2**bits) <= integer < 2**bits else None
