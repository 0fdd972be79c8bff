"""What an execution did, read from its Step Functions history: the plan, each export, the verdict.

The history holds every state's input and output, which are the pipeline's models
(`cpexport.models`): PlanOutput after PlanExports, StartedExport after StartExport, CheckedExport
after each CheckExport, ExportResult after IndexExport or RecordFailure. Events of parallel Map
iterations interleave; each event is attributed to its export by following `previousEventId` back
to a state whose input names the domain and object type.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cpexport.models import ErrorInfo, render_utc

# The states inside the Map iteration (statemachine/export.asl.json).
# After IndexExport: the export goes into its current-state table; DropStatements' output is the final result.
CURRENT_STATE_STATES = (
    "MergeWanted?",
    "MergeIntoCurrent",
    "Reconcile?",
    "RecordDeleted",
    "ApplyDeleted",
    "MarkExact",
    "CurrentStateUpdated",
    "CurrentStateNotUpdated",
    "DropStatements",
)
ITERATION_STATES = frozenset(
    {
        "StartExport",
        "AlreadyExported?",
        "NothingLeftToExport",
        "WaitForExport",
        "CheckExport",
        "ExportFinished?",
        "IndexExport",
        "FilesSettled?",
        "WaitForFiles",
        "Indexed",
        "RecordFailure",
        "FailureNotRecorded",
        *CURRENT_STATE_STATES,
    }
)
NOTIFY_STATES = ("Notify", "NotifyRejected", "NotifyBroken")
_PHASES = {
    "StartExport": "starting the job",
    "AlreadyExported?": "starting the job",
    "WaitForExport": "waiting for the job",
    "CheckExport": "checking the job",
    "ExportFinished?": "checking the job",
    "IndexExport": "indexing the files",
    "FilesSettled?": "indexing the files",
    "WaitForFiles": "waiting for the files to settle",
    "RecordFailure": "recording the failure",
    "MergeIntoCurrent": "merging into the current-state table",
    "RecordDeleted": "recording what the reconcile found deleted",
    "ApplyDeleted": "removing what the reconcile found deleted",
    "MarkExact": "marking the current-state table exact",
}


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _time(value: Any) -> str | None:
    if isinstance(value, datetime):
        return render_utc(value)
    return str(value) if value else None


@dataclass
class ExportStory:
    """One domain x object type of the execution: from its planned window to its outcome."""

    domain_name: str
    object_type: str
    window: dict[str, str] | None = None
    backfill: bool = False
    reconcile: bool = False
    verification: bool = False
    submission: str | None = None  # SUBMITTED, ADOPTED or SKIPPED (already exported by another execution)
    data_integration_name: str | None = None
    polls: int = 0
    statuses: list[str] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    state: str | None = None
    result: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.domain_name}/{self.object_type}"

    @property
    def kind(self) -> str:
        """What kind of export it is, in words beside its window (nothing for a scheduled or run-now export)."""
        if self.reconcile:
            return " (reconcile)"
        if self.verification:
            return " (verification)"
        return " (backfill)" if self.backfill else ""

    @property
    def outcome(self) -> str:
        """SUCCEEDED, FAILED, TIMED_OUT, SKIPPED, or what the export is doing now."""
        if self.result is not None:
            return str(self.result.get("status", "UNKNOWN"))
        if self.submission == "SKIPPED":
            return "SKIPPED"
        return "RUNNING"

    @property
    def phase(self) -> str:
        """The export's step in words (for a progress display)."""
        if self.result is not None or self.submission == "SKIPPED":
            return self.outcome
        if self.state in {"WaitForExport", "CheckExport", "ExportFinished?"} and self.polls:
            return f"{_PHASES[self.state]} (poll {self.polls}, {self.statuses[-1] if self.statuses else '?'})"
        return _PHASES.get(self.state or "", "queued")

    def to_json(self) -> dict[str, Any]:
        return {
            "domainName": self.domain_name,
            "objectType": self.object_type,
            "window": self.window,
            "backfill": self.backfill,
            "reconcile": self.reconcile,
            "verification": self.verification,
            "submission": self.submission,
            "dataIntegrationName": self.data_integration_name,
            "polls": self.polls,
            "statuses": self.statuses,
            "retries": dict(self.retries),
            "lastError": self.last_error,
            "outcome": self.outcome,
            "result": self.result,
        }


@dataclass
class ExecutionStory:
    """An execution as on-call wants it told."""

    execution_arn: str
    name: str
    status: str
    started_at: str | None = None
    stopped_at: str | None = None
    request: Any = None
    clock: str | None = None
    correlation_id: str | None = None
    planned: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    rejection: dict[str, Any] | None = None
    plan_error: str | None = None
    exports: dict[tuple[str, str], ExportStory] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None
    failure: dict[str, str | None] | None = None

    def export(self, domain_name: str, object_type: str) -> ExportStory:
        key = (domain_name, object_type)
        if key not in self.exports:
            self.exports[key] = ExportStory(domain_name, object_type)
        return self.exports[key]

    @property
    def request_kind(self) -> str:
        """A scheduled tick, a backfill, or a run now, in words."""
        request = self.request if isinstance(self.request, dict) else {}
        scope = ""
        if request.get("domainName"):
            scope += f" of domain {request['domainName']}"
        if request.get("objectTypes"):
            scope += f" ({', '.join(map(str, request['objectTypes']))})"
        if request.get("reconcile"):
            return f"a reconcile{scope}: a full export from InitialStartTime to each watermark"
        if request.get("verification"):
            end = request.get("endTime") or "the newest safe time"
            return f"a verification{scope}: a backfill of {request.get('startTime')}..{end} (cpexport verify)"
        if request.get("startTime"):
            end = request.get("endTime") or "the newest safe time"
            return f"a backfill{scope} of {request['startTime']}..{end}"
        if request.get("scheduledTime"):
            return f"the schedule's tick of {request['scheduledTime']}{scope}"
        return f"a run now{scope or ' of every configured domain and object type'}"

    def to_json(self) -> dict[str, Any]:
        return {
            "executionArn": self.execution_arn,
            "name": self.name,
            "status": self.status,
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
            "request": self.request,
            "requestKind": self.request_kind,
            "clock": self.clock,
            "correlationId": self.correlation_id,
            "planned": self.planned,
            "skipped": self.skipped,
            "rejection": self.rejection,
            "planError": self.plan_error,
            "exports": [story.to_json() for story in self.exports.values()],
            "verdict": self.verdict,
            "failure": self.failure,
            "story": narrate(self),
        }


def read_story(described: dict[str, Any], history: list[dict[str, Any]]) -> ExecutionStory:
    """Build the story of an execution from `describe_execution` and its whole history (oldest first)."""
    story = ExecutionStory(
        execution_arn=str(described["executionArn"]),
        name=str(described.get("name") or str(described["executionArn"]).rsplit(":", 1)[-1]),
        status=str(described.get("status", "UNKNOWN")),
        started_at=_time(described.get("startDate")),
        stopped_at=_time(described.get("stopDate")),
        request=_json(described.get("input")),
    )
    by_id = {int(event["id"]): event for event in history}
    owners: dict[int, tuple[str, str] | None] = {}

    def owner(event_id: int) -> tuple[str, str] | None:
        """The (domain, object type) an event belongs to, following previousEventId back."""
        chain: list[int] = []
        found: tuple[str, str] | None = None
        current: int | None = event_id
        while current and current in by_id and current not in owners:
            chain.append(current)
            event = by_id[current]
            details = _details(event)
            if details.get("name") in ITERATION_STATES:
                payload = _json(details.get("input") or details.get("output"))
                if isinstance(payload, dict) and payload.get("domainName") and payload.get("objectType"):
                    found = (str(payload["domainName"]), str(payload["objectType"]))
                    break
            current = int(event.get("previousEventId") or 0)
        else:
            found = owners.get(current or 0)
        for visited in chain:
            owners[visited] = found
        return found

    for event in history:
        _read_event(story, event, owner)
    return story


def _read_event(story: ExecutionStory, event: dict[str, Any], owner: Any) -> None:
    kind = str(event.get("type", ""))
    details = _details(event)
    name = details.get("name")
    if kind == "ExecutionStarted" and story.request is None:
        story.request = _json(details.get("input"))
    elif kind in {"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}:
        story.failure = {"error": details.get("error"), "cause": details.get("cause")}
    elif kind == "TaskStateExited" and name == "PlanExports":
        _read_plan(story, _json(details.get("output")))
    elif kind == "TaskStateExited" and name in NOTIFY_STATES:
        verdict = _json(details.get("output"))
        story.verdict = verdict if isinstance(verdict, dict) else None
    elif kind == "TaskStateEntered" and name == "NotifyBroken":
        payload = _json(details.get("input")) or {}
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and story.plan_error is None:
            info = ErrorInfo.model_validate(error)
            story.plan_error = f"{info.Error}: {info.message}"
    key = owner(int(event["id"])) if story.exports is not None else None
    if key is None:
        return
    export = story.export(*key)
    if kind.endswith("StateEntered") and name in ITERATION_STATES:
        export.state = str(name)
        payload = _json(details.get("input"))
        if name == "StartExport" and isinstance(payload, dict):
            export.window = payload.get("window")
            export.backfill = bool(payload.get("backfill", False))
            export.reconcile = bool(payload.get("reconcile", False))
            export.verification = bool(payload.get("verification", False))
    elif kind.endswith("StateExited") and name in ITERATION_STATES:
        _read_exit(export, str(name), _json(details.get("output")))
    elif kind in {"LambdaFunctionFailed", "LambdaFunctionTimedOut", "TaskFailed", "TaskTimedOut"}:
        error = str(details.get("error") or kind)
        export.retries[f"{export.state or 'task'}: {error}"] += 1
        cause = details.get("cause")
        export.last_error = f"{error}: {ErrorInfo(Error=error, Cause=cause).message}" if cause else error


def _read_plan(story: ExecutionStory, plan: Any) -> None:
    if not isinstance(plan, dict):
        return
    story.clock = plan.get("clock")
    story.correlation_id = plan.get("correlationId")
    story.rejection = plan.get("rejection")
    story.skipped = list(plan.get("skipped") or [])
    story.planned = [
        {
            "domainName": task.get("domainName"),
            "objectType": task.get("objectType"),
            "window": task.get("window"),
            "backfill": task.get("backfill", False),
            "reconcile": task.get("reconcile", False),
            "verification": task.get("verification", False),
        }
        for task in plan.get("exports") or []
    ]
    for task in story.planned:
        export = story.export(str(task["domainName"]), str(task["objectType"]))
        export.window = task["window"]
        export.backfill = bool(task["backfill"])
        export.reconcile = bool(task["reconcile"])
        export.verification = bool(task["verification"])


def _read_exit(export: ExportStory, state: str, output: Any) -> None:
    if not isinstance(output, dict):
        return
    if state == "StartExport":
        export.submission = output.get("status")
        export.data_integration_name = output.get("dataIntegrationName") or export.data_integration_name
        export.window = output.get("window") or export.window
    elif state == "CheckExport":
        export.polls += 1
        export.statuses.append(str(output.get("status")))
    elif state in {"IndexExport", "RecordFailure", "FailureNotRecorded"} and output.get("status") != "SETTLING":
        export.result = output
    elif state == "DropStatements":
        export.result = output  # the indexed result with the current-state outcome (merged, error)


def _window_text(window: Any) -> str:
    if isinstance(window, dict) and window.get("start") and window.get("end"):
        return f"{window['start']}..{window['end']}"
    return "no window"


def _statuses_text(statuses: list[str]) -> str:
    runs: list[tuple[str, int]] = []
    for status in statuses:
        if runs and runs[-1][0] == status:
            runs[-1] = (status, runs[-1][1] + 1)
        else:
            runs.append((status, 1))
    return ", then ".join(f"{status} x{count}" if count > 1 else status for status, count in runs)


def narrate(story: ExecutionStory) -> list[str]:
    """The story in sentences, one per line: what a person reads at 3 a.m."""
    lines = [
        f"Execution {story.name} {story.status}"
        + (f", started {story.started_at}" if story.started_at else "")
        + (f", ended {story.stopped_at}" if story.stopped_at else "")
        + ".",
        f"Request: {story.request_kind}"
        + (f", correlation id {story.correlation_id}" if story.correlation_id else "")
        + (f", clock {story.clock}" if story.clock else "")
        + ".",
    ]
    if story.rejection:
        lines.append(
            f"Rejected before anything started: {story.rejection.get('message')}. Nothing changed: no job, "
            "no watermark moved."
        )
    if story.plan_error:
        lines.append(f"The run broke before exporting: {story.plan_error}. Nothing was exported; watermarks stay.")
    if story.planned:
        lines.append(f"Plan: {len(story.planned)} export(s).")
        for task in story.planned:
            kind = (
                " (reconcile)"
                if task.get("reconcile")
                else " (verification)"
                if task.get("verification")
                else " (backfill)"
                if task.get("backfill")
                else ""
            )
            lines.append(f"  - {task['domainName']}/{task['objectType']}: {_window_text(task['window'])}{kind}")
    for skipped in story.skipped:
        lines.append(f"  - {skipped.get('domainName')}/{skipped.get('objectType')}: skipped, {skipped.get('reason')}")
    for export in story.exports.values():
        lines.extend(_narrate_export(export, story.status))
    if story.verdict and story.verdict.get("subject"):
        lines.append(f"Notification: {story.verdict['subject']}.")
    if story.failure and story.status != "SUCCEEDED":
        error, cause = story.failure.get("error"), story.failure.get("cause")
        if error or cause:
            lines.append(f"Execution {story.status}: {error or ''}{': ' if error and cause else ''}{cause or ''}")
    if story.status in {"ABORTED", "FAILED", "TIMED_OUT"} and story.verdict is None and story.planned:
        lines.append(
            "The execution ended before it notified: an export it started may still hold its LEASE "
            "(see cpexport status; cpexport release-lease frees one whose job has ended)."
        )
    return lines


def _current_state_lines(export: ExportStory) -> list[str]:
    state = (export.result or {}).get("currentState")
    if not isinstance(state, dict):
        return []
    table = f"{state.get('database')}.{state.get('table')}"
    error = state.get("error")
    if isinstance(error, dict):
        return [
            f"  Current state: NOT merged into {table} ({error.get('Error')}); catch it up with: "
            f"cpexport rebuild-current --domain {export.domain_name} --type {export.object_type}"
        ]
    if not state.get("merged"):
        return []
    line = f"  Current state: merged into {table}"
    if state.get("reconcile") and state.get("confirmAfter"):
        line += (
            f"; what the full export no longer holds is recorded in {state.get('database')}."
            f"{state.get('deletedTable')} and leaves the table with the first export past {state['confirmAfter']}"
        )
    if state.get("confirmedReconcile") and state.get("exactAsOf"):
        line += f"; a reconcile's deletions were removed, exact as of {state['exactAsOf']}"
    return [line + "."]


def _narrate_export(export: ExportStory, execution_status: str) -> list[str]:
    head = f"{export.label} {_window_text(export.window)}{export.kind}:"
    parts = []
    if export.submission == "SUBMITTED":
        parts.append(f"job submitted (data integration {export.data_integration_name})")
    elif export.submission == "ADOPTED":
        parts.append(
            f"adopted the job already running for this window (data integration {export.data_integration_name})"
        )
    elif export.submission == "SKIPPED":
        parts.append("nothing left to export: another execution already exported this window")
    if export.polls:
        parts.append(f"polled {export.polls} time(s): {_statuses_text(export.statuses)}")
    for what, count in export.retries.items():
        parts.append(f"{what} x{count}")
    result = export.result
    lines = [f"{head} {'; '.join(parts)}." if parts else head]
    if result is not None:
        status = result.get("status")
        watermark = result.get("watermark")
        if status == "SUCCEEDED":
            manifest = result.get("manifestKey")
            lines.append(
                f"  SUCCEEDED: {result.get('files', 0)} file(s), {result.get('records', 0)} record(s), "
                f"{result.get('bytes', 0)} bytes" + (f", manifest {manifest}" if manifest else "") + "."
            )
            if export.backfill:
                kind = "reconcile" if export.reconcile else "verification" if export.verification else "backfill"
                lines.append(f"  A {kind}: the watermark did not move.")
            elif watermark:
                lines.append(f"  The watermark moved to {watermark}.")
            lines.extend(_current_state_lines(export))
        else:
            lines.append(f"  {status}: {result.get('message') or 'no reason given'}.")
            if export.backfill:
                lines.append("  A backfill: no watermark is involved; start the backfill again to export this range.")
            elif watermark:
                lines.append(f"  The watermark stays at {watermark}: the next run exports this window again.")
            else:
                lines.append("  No watermark yet: the next run starts again from InitialStartTime.")
            if status == "TIMED_OUT":
                lines.append("  The job may still run (jobs cannot be cancelled); it keeps the object type's lease.")
    elif export.submission != "SKIPPED":
        if execution_status == "RUNNING":
            lines.append(f"  Now: {export.phase}.")
        else:
            lines.append(
                f"  No outcome recorded (last step {export.state or 'none'}"
                + (f", last error {export.last_error}" if export.last_error else "")
                + ")."
            )
    return lines
