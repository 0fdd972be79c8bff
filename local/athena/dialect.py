"""What DuckDB needs to run the catalog's Athena SQL unchanged: three Athena functions and the types.

The catalog's views and saved queries are written once, in Athena's (Trino) dialect, within the
subset both engines share: SELECT, UNION ALL, subqueries, row_number() OVER, CAST, TRY_CAST,
count(DISTINCT), GROUP BY ordinals, struct fields as `column.field`. Where Athena has a function
DuckDB lacks or defines differently, a DuckDB macro of the same name gives Athena's meaning:

| Athena | DuckDB has | macro |
|---|---|---|
| `from_unixtime(seconds)` -> timestamp with time zone (UTC) | `to_timestamp` | same value, session time zone UTC |
| `json_extract_scalar(json, path)` -> scalar as text, NULL for an object, array or invalid JSON | `json_extract_string` (returns objects as text, fails on invalid JSON) | NULL for those |
| `element_at(map, key)` -> the value or NULL | `element_at` returns a list | `map[key]` |

Anything else in a query is DuckDB's own meaning: keep new SQL inside the shared subset, or add a
macro here with a test that it behaves as Athena documents.
"""

from __future__ import annotations

from typing import Any

ATHENA_MACROS = (
    "CREATE OR REPLACE MACRO from_unixtime(seconds) AS to_timestamp(seconds)",
    "CREATE OR REPLACE MACRO json_extract_scalar(document, path) AS CASE "
    "WHEN NOT json_valid(document) THEN NULL "
    "WHEN json_type(json_extract(document, path)) IN ('OBJECT', 'ARRAY') THEN NULL "
    "ELSE json_extract_string(document, path) END",
    "CREATE OR REPLACE MACRO element_at(container, key) AS container[key]",
)
# Athena's sessions run in UTC: casts of timestamps with a zone to dates must agree.
SESSION_SETTINGS = ("SET TimeZone = 'UTC'",)

_PRIMITIVES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN"}


def duckdb_type(tree: tuple[Any, ...]) -> str:
    """The DuckDB type of a parsed Hive type (as DuckDB's DESCRIBE spells it)."""
    kind = tree[0]
    if kind == "struct":
        return "STRUCT(" + ", ".join(f"{_identifier(name)} {duckdb_type(field)}" for name, field in tree[1]) + ")"
    if kind == "map":
        return f"MAP({duckdb_type(tree[1])}, {duckdb_type(tree[2])})"
    if kind == "array":
        return f"{duckdb_type(tree[1])}[]"
    return _PRIMITIVES[kind]


def _identifier(name: str) -> str:
    return name if name.isidentifier() and name.islower() else '"' + name.replace('"', '""') + '"'
