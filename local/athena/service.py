"""Athena's query lifecycle offline: a started query runs on a thread, as its caller, and ends SUCCEEDED or FAILED.

The harness hooks moto's Athena responses to `OfflineAthena.start` / `outcome` (see
`local/harness/moto_patches.py`). The engine's Glue and S3 calls go back through the moto endpoint
signed with the caller's credentials, so the caller's IAM policies (and KMS key permissions of
SSE-KMS objects) decide what the query may read and write, as Athena uses the caller's
credentials on AWS.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.athena.engine import _split_location
from local.athena.executor import AthenaEngine, AthenaQueryError, IcebergFaults, QueryResult

LOG = logging.getLogger("local.athena")

ClientArguments = Callable[[str | None], dict[str, str]]
"""The boto3 client keyword arguments (keys) of the caller behind an access key id."""


@dataclass
class QueryOutcome:
    """Where a query is: QUEUED, RUNNING, SUCCEEDED or FAILED, and what it gave."""

    state: str = "QUEUED"
    submitted: float = field(default_factory=time.time)
    completed: float | None = None
    statement_type: str = "DML"
    result: QueryResult | None = None
    error: AthenaQueryError | None = None

    def status(self) -> dict[str, Any]:
        """The `Status` of GetQueryExecution, as AWS shapes it (AthenaError only for a failure)."""
        status: dict[str, Any] = {"State": self.state, "SubmissionDateTime": self.submitted}
        if self.completed is not None:
            status["CompletionDateTime"] = self.completed
        if self.error is not None:
            status["StateChangeReason"] = self.error.reason
            status["AthenaError"] = {
                "ErrorCategory": self.error.category,
                "ErrorType": 1000 if self.error.category == 2 else 401,
                "Retryable": self.error.retryable,
                "ErrorMessage": self.error.reason,
            }
        return status


class OfflineAthena:
    """Runs started queries with the `AthenaEngine`, each as its caller, and keeps their outcomes."""

    def __init__(
        self, endpoint_url: str, region: str, client_arguments: ClientArguments, faults: IcebergFaults | None = None
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._client_arguments = client_arguments
        self.faults = faults if faults is not None else IcebergFaults()
        self._outcomes: dict[str, QueryOutcome] = {}
        self._lock = threading.Lock()

    def outcome(self, execution_id: str) -> QueryOutcome | None:
        """The outcome of a query this stand-in started (None: not one of ours)."""
        with self._lock:
            return self._outcomes.get(execution_id)

    def start(
        self,
        execution_id: str,
        query: str,
        database: str,
        output_location: str | None,
        access_key_id: str | None,
        on_end: Callable[[QueryOutcome], None],
    ) -> QueryOutcome:
        """Queue the query; a thread runs it and calls `on_end` once it SUCCEEDED or FAILED."""
        outcome = QueryOutcome(statement_type=_statement_type(query))
        with self._lock:
            self._outcomes[execution_id] = outcome
        arguments = self._client_arguments(access_key_id)
        worker = threading.Thread(
            target=self._run,
            args=(outcome, query, database, output_location, arguments, on_end),
            name=f"athena-query-{execution_id}",
            daemon=True,
        )
        worker.start()
        return outcome

    def _client(self, session: Any, service: str, arguments: dict[str, str]) -> Any:
        return session.client(service, region_name=self.region, endpoint_url=self.endpoint_url, **arguments)

    def _run(
        self,
        outcome: QueryOutcome,
        query: str,
        database: str,
        output_location: str | None,
        arguments: dict[str, str],
        on_end: Callable[[QueryOutcome], None],
    ) -> None:
        outcome.state = "RUNNING"
        # A session per query: boto3's default session is not safe to build clients from on many threads.
        session = boto3.session.Session()
        s3 = self._client(session, "s3", arguments)
        engine = AthenaEngine(glue=self._client(session, "glue", arguments), s3=s3, faults=self.faults)
        try:
            outcome.result = engine.execute(query, database)
            if output_location and outcome.result.columns:
                bucket, key = _split_location(output_location)
                s3.put_object(Bucket=bucket, Key=key, Body=_csv(outcome.result).encode("utf-8"))
            outcome.state = "SUCCEEDED"
        except AthenaQueryError as failed:
            outcome.error, outcome.state = failed, "FAILED"
        except Exception as unexpected:  # an engine bug must still end the query, as Athena's internal errors do
            LOG.exception("offline Athena failed on %r", query)
            outcome.error = AthenaQueryError("GENERIC_INTERNAL_ERROR", str(unexpected), category=1)
            outcome.state = "FAILED"
        outcome.completed = time.time()
        on_end(outcome)


def result_set(result: QueryResult) -> dict[str, Any]:
    """GetQueryResults' `ResultSet`: a SELECT's first row holds the column names; every value is text."""
    rows = [{"Data": [{"VarCharValue": name} for name, _ in result.columns]}] if result.columns else []
    rows += [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in result.rows]
    columns = [
        {
            "CatalogName": "hive",
            "SchemaName": "",
            "TableName": "",
            "Name": n,
            "Label": n,
            "Type": t,
            "Nullable": "UNKNOWN",
        }
        for n, t in result.columns
    ]
    return {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": columns}}


def _csv(result: QueryResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([name for name, _ in result.columns])
    writer.writerows([["" if v is None else v for v in row] for row in result.rows])
    return buffer.getvalue()


def _statement_type(query: str) -> str:
    first = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
    if first in ("CREATE", "ALTER", "DROP", "DESCRIBE", "SHOW", "MSCK"):
        return "DDL"
    return "DML"
