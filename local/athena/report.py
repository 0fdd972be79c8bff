"""What `make demo` ends with: the saved queries and a question about current profiles, answered offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cpexport.catalog import CURRENT_COUNT_BY_OBJECT_TYPE, OBJECTS_CHANGED_PER_DAY, view_name

from local.athena.engine import AthenaStandIn

# A question about current profiles by an attribute, in the workgroup's dialect.
PROFILES_BY_LOYALTY_TIER = (
    "SELECT element_at(attributes, 'loyaltyTier') AS loyalty_tier, count(*) AS profiles\n"
    f"FROM {view_name('_profile')}\nGROUP BY 1\nORDER BY 2 DESC, 1"
)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["  (no rows)"]
    names = list(rows[0])
    widths = [max(len(name), *(len(str(row[name])) for row in rows)) for name in names]
    lines = ["  " + "  ".join(name.ljust(width) for name, width in zip(names, widths, strict=True))]
    lines += ["  " + "  ".join(str(row[n]).ljust(w) for n, w in zip(names, widths, strict=True)) for row in rows]
    return lines


def answer_questions(athena: AthenaStandIn, out: Callable[[str], None] = print) -> dict[str, list[dict[str, Any]]]:
    """Run the saved queries (and, with a profile view, profiles by loyalty tier) on an open stand-in.

    Prints each answer as a table and returns the rows by question title.
    """
    views = {row["name"] for row in athena.query("SELECT view_name AS name FROM duckdb_views()")}
    questions = [("Objects changed per day", OBJECTS_CHANGED_PER_DAY)]
    questions.append(("Current count by object type", CURRENT_COUNT_BY_OBJECT_TYPE))
    if view_name("_profile") in views:
        questions.append(("Current profiles by loyalty tier", PROFILES_BY_LOYALTY_TIER))
    answers: dict[str, list[dict[str, Any]]] = {}
    for title, sql in questions:
        answers[title] = athena.query(sql)
        out(f"\nAthena (DuckDB offline), {title}:")
        for line in _table(answers[title]):
            out(line)
    return answers


def print_answers(
    database: str, *, glue: Any, s3: Any, out: Callable[[str], None] = print
) -> dict[str, list[dict[str, Any]]]:
    """Load the database into DuckDB, then `answer_questions`."""
    with AthenaStandIn(database, glue=glue, s3=s3) as athena:
        return answer_questions(athena, out)
