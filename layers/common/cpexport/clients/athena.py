"""Athena: run one query to its end and read its rows (the CLI's `rebuild-current`; the state machine
runs its queries natively with `athena:startQueryExecution.sync`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cpexport.clients import client

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
FIRST_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class QueryOutcome:
    """How a query ended: its id, state and (when it failed) Athena's reason and error category."""

    query_execution_id: str
    state: str
    reason: str | None = None
    error_type: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"


class Athena:
    """Start a query in the stack's workgroup and wait for it (a person is waiting: the CLI shows progress)."""

    def __init__(self, api: Any | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._api = api if api is not None else client("athena")
        self._sleep = sleep

    def run(
        self, sql: str, *, workgroup: str, database: str, poll_seconds: float = 1.0, timeout_seconds: float = 1800
    ) -> QueryOutcome:
        """Run one statement to its end; a statement still running after `timeout_seconds` raises TimeoutError.

        The first looks come soon and the interval doubles up to `poll_seconds`: most of the statements
        a rebuild runs one after the other end within a second, and a fixed interval would wait it out.
        """
        started = self._api.start_query_execution(
            QueryString=sql,
            WorkGroup=workgroup,
            QueryExecutionContext={"Database": database, "Catalog": "AwsDataCatalog"},
        )["QueryExecutionId"]
        deadline = time.monotonic() + timeout_seconds
        interval = min(FIRST_POLL_SECONDS, poll_seconds)
        while True:
            execution = self._api.get_query_execution(QueryExecutionId=started)["QueryExecution"]
            status = execution["Status"]
            if status["State"] in TERMINAL:
                error = status.get("AthenaError") or {}
                return QueryOutcome(
                    query_execution_id=started,
                    state=status["State"],
                    reason=status.get("StateChangeReason"),
                    error_type=error.get("ErrorType") if isinstance(error, dict) else None,
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"Athena query {started} still {status['State']} after {timeout_seconds:.0f} s")
            self._sleep(interval)
            interval = min(interval * 2, poll_seconds)

    def rows(self, query_execution_id: str) -> list[dict[str, str | None]]:
        """A finished query's rows (the first row of Athena's result set names the columns)."""
        rows: list[list[str | None]] = []
        for page in self._api.get_paginator("get_query_results").paginate(QueryExecutionId=query_execution_id):
            for row in page["ResultSet"]["Rows"]:
                rows.append([cell.get("VarCharValue") for cell in row["Data"]])
        if not rows:
            return []
        names = [str(name) for name in rows[0]]
        return [dict(zip(names, row, strict=True)) for row in rows[1:]]
