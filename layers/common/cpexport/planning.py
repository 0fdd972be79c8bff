"""Plan: which domain x object type exports this execution runs, and over which windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from cpexport.config import Settings
from cpexport.errors import InvalidExportRequest
from cpexport.models import (
    ExportRequest,
    ExportTask,
    ExportWindow,
    PlanInput,
    PlanOutput,
    SkippedExport,
    render_utc,
)
from cpexport.windows import latest_safe_end, next_window, truncate_to_second


class WatermarkReader(Protocol):
    def get_watermark(self, domain_name: str, object_type: str) -> datetime | None: ...


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
        raise InvalidExportRequest(
            f"invalid export request: input: must be a JSON object, got {type(raw).__name__} {str(raw)[:100]!r}"
        )
    try:
        return ExportRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidExportRequest(f"invalid export request: {describe_validation_error(exc)}") from None


def plan_exports(plan_input: PlanInput, settings: Settings, state: WatermarkReader) -> PlanOutput:
    """Decide the exports of one execution.

    The clock is the schedule's `scheduledTime` when given (a re-delivered tick plans the same
    windows), else the execution's start. Each window ends SafetyLag before the clock.
    """
    request = parse_request(plan_input.request)
    clock = request.scheduled_time or plan_input.execution_start_time
    domains = _select(request.domain_name and [request.domain_name], settings.domain_names, "domainName", "domain")
    object_types = _select(request.object_types, settings.object_types, "objectTypes", "object type")
    execution_name = plan_input.execution_arn.rsplit(":", 1)[-1]
    correlation_id = request.correlation_id or execution_name
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
                    backfill=backfill is not None,
                    execution_arn=plan_input.execution_arn,
                    correlation_id=correlation_id,
                )
            )
    return PlanOutput(
        exports=exports,
        skipped=skipped,
        clock=clock,
        correlation_id=correlation_id,
        execution_arn=plan_input.execution_arn,
        max_concurrency=settings.max_concurrent_exports,
        source=request.source,
    )


def _select(requested: list[str] | str | None, configured: list[str], field: str, noun: str) -> list[str]:
    if not requested:
        return list(configured)
    assert isinstance(requested, list)
    unknown = [item for item in requested if item not in configured]
    if unknown:
        raise InvalidExportRequest(
            f"invalid export request: {field}: {', '.join(unknown)} is not a configured {noun} "
            f"(configured: {', '.join(configured)})"
        )
    return requested
