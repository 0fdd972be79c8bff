"""Plan: which domain x object type exports this execution runs, and over which windows.

A malformed request is *answered*, not raised: the plan carries a `rejection` that the state
machine routes to one notification and one REJECTED event, and nothing starts. (Raising would
count as a Lambda error and page on-call through the Lambda alarm for someone else's bad input.)

An accepted request also gets the export catalog ready (`ensure_export_catalog`): the tables that
each export's partition is added to, and the views over them, for every configured object type.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from cpexport.catalog import (
    CatalogPlan,
    catalog_plan,
    database_name,
    deleted_table_name,
    exports_root_location,
    state_table_name,
)
from cpexport.config import Settings
from cpexport.current_state import create_statements
from cpexport.errors import InvalidExportRequest
from cpexport.models import (
    DOMAIN_NAME_PATTERN,
    ExportRequest,
    ExportTask,
    ExportWindow,
    PlanInput,
    PlanOutput,
    Rejection,
    SkippedExport,
    render_utc,
)
from cpexport.windows import latest_safe_end, next_window, truncate_to_second

# EventBridge Scheduler may start an execution a little before its scheduled time; a clock later
# than the execution's start by more than this is refused (it would move watermarks into the future).
SCHEDULER_SKEW = timedelta(minutes=5)
_EXCERPT_LIMIT = 1000
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


class WatermarkReader(Protocol):
    def get_watermark(self, domain_name: str, object_type: str) -> datetime | None: ...


class CatalogWriter(Protocol):
    def ensure_catalog(self, plan: CatalogPlan) -> dict[str, str]: ...


class CatalogReader(Protocol):
    def has_table(self, database: str, name: str) -> bool: ...


def missing_current_tables(settings: Settings, catalog: CatalogReader) -> list[str]:
    """The `CREATE TABLE IF NOT EXISTS` of every configured object type's current-state tables not in
    the catalog yet (the state machine runs them through Athena before any export is merged)."""
    database = database_name(settings.stack_name)
    statements = []
    for object_type in settings.object_types:
        names = (state_table_name(object_type), deleted_table_name(object_type))
        ddl = create_statements(database, object_type, settings.export_bucket_name, settings.export_prefix)
        statements += [sql for name, sql in zip(names, ddl, strict=True) if not catalog.has_table(database, name)]
    return statements


def ensure_export_catalog(settings: Settings, catalog: CatalogWriter) -> dict[str, str]:
    """Create (or bring up to date) the tables and views of every configured object type; idempotent.

    Once per accepted execution, before any export: a new object type gets its table before its first
    export is indexed, and an unchanged catalog costs only reads. Returns table name -> what was done.
    """
    plan = catalog_plan(
        database_name(settings.stack_name),
        settings.object_types,
        exports_root_location(settings.export_bucket_name, settings.export_prefix, settings.account_id),
    )
    return catalog.ensure_catalog(plan)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each naming the field: what an on-call engineer or a caller can act on."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "input"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known field"
        problems.append(f"{field}: {message}")
    return "; ".join(problems)


def parse_request(raw: Any) -> ExportRequest:
    """Validate the execution input; InvalidExportRequest names every bad field."""
    if not isinstance(raw, dict):
        shown = json.dumps(raw)[:100]
        raise InvalidExportRequest(
            f"invalid export request: input: must be a JSON object, got {type(raw).__name__} {shown}"
        )
    try:
        return ExportRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidExportRequest(f"invalid export request: {describe_validation_error(exc)}") from None


def request_key(request: ExportRequest, execution_name: str) -> str:
    """What makes two executions the same request: a tick's time, a sender's correlation id, or nothing.

    A reconcile tick is another request than the export tick of the same moment.
    """
    kind = "reconcile-scheduled" if request.reconcile else "scheduled"
    if request.scheduled_time is not None and request.correlation_id is None:
        return f"{kind}:{render_utc(request.scheduled_time)}"
    if request.correlation_id is not None:
        return f"correlation:{request.correlation_id}"
    return f"execution:{execution_name}"


def rejection_of(raw: Any, reason: InvalidExportRequest) -> Rejection:
    """The rejection of a malformed request: the reason, and a bounded, printable excerpt of the request."""
    domain = raw.get("domainName") if isinstance(raw, dict) else None
    correlation = raw.get("correlationId") if isinstance(raw, dict) else None
    try:
        excerpt = json.dumps(raw, sort_keys=True, ensure_ascii=True)
    except (TypeError, ValueError):
        excerpt = repr(raw)
    if len(excerpt) > _EXCERPT_LIMIT:
        excerpt = excerpt[: _EXCERPT_LIMIT - 20] + f"... ({len(excerpt)} chars)"
    return Rejection(
        message=str(reason)[:4000],
        domain_name=domain if isinstance(domain, str) and DOMAIN_NAME_PATTERN.match(domain) else None,
        correlation_id=_PRINTABLE.sub("?", correlation)[:128] if isinstance(correlation, str) else None,
        request_excerpt=excerpt,
    )


def plan_exports(plan_input: PlanInput, settings: Settings, state: WatermarkReader) -> PlanOutput:
    """Decide the exports of one execution, or reject its request.

    The clock is the schedule's `scheduledTime` when given (a re-delivered tick plans the same
    windows), else the execution's start; it may not be later than the execution's start (plus the
    Scheduler's skew). Each window ends SafetyLag before the clock.
    """
    execution_name = plan_input.execution_arn.rsplit(":", 1)[-1]
    try:
        return _plan(plan_input, settings, state, execution_name)
    except InvalidExportRequest as reason:
        return PlanOutput(
            exports=[],
            skipped=[],
            clock=plan_input.execution_start_time,
            correlation_id=execution_name,
            execution_arn=plan_input.execution_arn,
            max_concurrency=settings.max_concurrent_exports,
            rejection=rejection_of(plan_input.request, reason),
        )


def _plan(plan_input: PlanInput, settings: Settings, state: WatermarkReader, execution_name: str) -> PlanOutput:
    request = parse_request(plan_input.request)
    started = plan_input.execution_start_time
    if request.scheduled_time is not None and request.scheduled_time > started + SCHEDULER_SKEW:
        raise InvalidExportRequest(
            f"invalid export request: scheduledTime: {render_utc(request.scheduled_time)} is in the future "
            f"(the execution started at {render_utc(started)}); a clock may not run ahead of the execution, "
            "or watermarks would move past data that does not exist yet"
        )
    clock = request.scheduled_time or started
    domains = _select(
        [request.domain_name] if request.domain_name else None, settings.domain_names, "domainName", "domain"
    )
    object_types = _select(request.object_types, settings.object_types, "objectTypes", "object type")
    correlation_id = request.correlation_id or execution_name
    key = request_key(request, execution_name)
    safe_end = latest_safe_end(clock, settings.safety_lag_minutes)

    backfill: ExportWindow | None = None
    if request.start_time is not None:
        end = request.end_time or safe_end
        if end > safe_end:
            raise InvalidExportRequest(
                f"invalid export request: endTime: {render_utc(end)} is later than {render_utc(safe_end)}, "
                f"the newest time an export is sure to include ({settings.safety_lag_minutes} minutes before "
                f"{render_utc(clock)}); objects updated later could be missing"
            )
        start = truncate_to_second(request.start_time)
        if start >= truncate_to_second(end):
            raise InvalidExportRequest(
                f"invalid export request: startTime: {render_utc(start)} leaves an empty window before {render_utc(end)}"
            )
        backfill = ExportWindow(start=start, end=truncate_to_second(end))

    exports: list[ExportTask] = []
    skipped: list[SkippedExport] = []
    for domain_name in domains:
        for object_type in object_types:
            if backfill is not None:
                window: ExportWindow | None = backfill
                watermark = None
            elif request.reconcile:
                watermark = state.get_watermark(domain_name, object_type)
                window = _reconcile_window(watermark, settings)
                if window is None:
                    skipped.append(
                        SkippedExport(
                            domain_name=domain_name,
                            object_type=object_type,
                            reason="nothing to reconcile: no export has moved the watermark past InitialStartTime yet",
                            watermark=watermark,
                        )
                    )
                    continue
            else:
                watermark = state.get_watermark(domain_name, object_type)
                window = next_window(watermark, settings.initial_start_time, clock, settings.safety_lag_minutes)
            if window is None:
                skipped.append(
                    SkippedExport(
                        domain_name=domain_name,
                        object_type=object_type,
                        reason=f"nothing new: the watermark is already at {render_utc(safe_end)} or later",
                        watermark=watermark,
                    )
                )
                continue
            exports.append(
                ExportTask(
                    domain_name=domain_name,
                    object_type=object_type,
                    window=window,
                    backfill=backfill is not None or request.reconcile,
                    reconcile=request.reconcile,
                    verification=request.verification,
                    execution_arn=plan_input.execution_arn,
                    correlation_id=correlation_id,
                    request_key=key,
                    clock=clock if request.reconcile else None,
                    planned_at=started if request.reconcile else None,
                )
            )
    return PlanOutput(
        exports=exports,
        skipped=skipped,
        clock=clock,
        correlation_id=correlation_id,
        execution_arn=plan_input.execution_arn,
        max_concurrency=settings.max_concurrent_exports,
    )


def _reconcile_window(watermark: datetime | None, settings: Settings) -> ExportWindow | None:
    """InitialStartTime to the watermark: everything exported so far, as one full export (none before a first export)."""
    start = truncate_to_second(settings.initial_start_time)
    if watermark is None or truncate_to_second(watermark) <= start:
        return None
    return ExportWindow(start=start, end=truncate_to_second(watermark))


def _select(requested: list[str] | None, configured: list[str], field: str, noun: str) -> list[str]:
    if not requested:
        return list(configured)
    unknown = [item for item in requested if item not in configured]
    if unknown:
        raise InvalidExportRequest(
            f"invalid export request: {field}: {', '.join(unknown)} is not a configured {noun} "
            f"(configured: {', '.join(configured)})"
        )
    return requested
