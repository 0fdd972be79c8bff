"""What `make demo` ends with: the saved queries and a question about live profiles, answered offline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cpexport.catalog import CURRENT_COUNT_BY_OBJECT_TYPE, OBJECTS_CHANGED_PER_DAY, state_table_name

from local.athena.engine import AthenaStandIn

# A question about live profiles by an attribute, in the workgroup's dialect: the current-state table holds
# the newest version of each profile that still exists (reconciles remove the deleted and merged-away ones).
PROFILES_BY_LOYALTY_TIER = (
    "SELECT element_at(attributes, 'loyaltyTier') AS loyalty_tier, count(*) AS profiles\n"
    f"FROM {state_table_name('_profile')}\nGROUP BY 1\nORDER BY 2 DESC, 1"
)

Query = Callable[[str], list[dict[str, Any]]]
"""Runs one SQL statement in the workgroup's dialect and returns its rows."""


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["  (no rows)"]
    names = list(rows[0])
    widths = [max(len(name), *(len(str(row[name])) for row in rows)) for name in names]
    lines = ["  " + "  ".join(name.ljust(width) for name, width in zip(names, widths, strict=True))]
    lines += ["  " + "  ".join(str(row[n]).ljust(w) for n, w in zip(names, widths, strict=True)) for row in rows]
    return lines


def typed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A result row with its counts as integers (Athena's GetQueryResults answers every value as text)."""
    return {name: int(value) if isinstance(value, str) and value.isdigit() else value for name, value in row.items()}


def answer_questions(
    query: Query, *, with_profiles: bool = True, out: Callable[[str], None] = print
) -> dict[str, list[dict[str, Any]]]:
    """Run the saved queries (and, `with_profiles`, live profiles by loyalty tier) through `query`.

    Prints each answer as a table and returns the rows (counts as integers) by question title.
    """
    questions = [
        ("Objects changed per day", OBJECTS_CHANGED_PER_DAY),
        ("Current count by object type", CURRENT_COUNT_BY_OBJECT_TYPE),
    ]
    if with_profiles:
        questions.append(("Live profiles by loyalty tier", PROFILES_BY_LOYALTY_TIER))
    answers: dict[str, list[dict[str, Any]]] = {}
    for title, sql in questions:
        answers[title] = [typed(row) for row in query(sql)]
        out(f"\nAthena (offline), {title}:")
        for line in _table(answers[title]):
            out(line)
    return answers


def print_answers(
    database: str, *, glue: Any, s3: Any, out: Callable[[str], None] = print
) -> dict[str, list[dict[str, Any]]]:
    """Load the database into DuckDB, then `answer_questions` on it."""
    with AthenaStandIn(database, glue=glue, s3=s3) as athena:
        views = {row["name"] for row in athena.query("SELECT view_name AS name FROM duckdb_views()")}
        tables = {row["name"] for row in athena.query("SELECT table_name AS name FROM duckdb_tables()")}
        return answer_questions(athena.query, with_profiles=state_table_name("_profile") in views | tables, out=out)
