"""The execution's one notification for on-call, and result events for other systems."""

from __future__ import annotations

import json
from typing import Any, Protocol

from cpexport.config import Settings
from cpexport.models import ExportResult, ExportStatus, NotifyInput, NotifyOutput, render_utc
from cpexport.observability import logger

SUBJECT_LIMIT = 100  # SNS rejects longer subjects
DETAIL_TYPE_SUCCEEDED = "Customer Profiles Export Succeeded"
DETAIL_TYPE_FAILED = "Customer Profiles Export Failed"


def _size(num_bytes: int) -> str:
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{num_bytes} B"


def overall_status(notify: NotifyInput) -> str:
    """FAILED when the plan failed or any export did not succeed."""
    if notify.plan_error is not None:
        return "FAILED"
    bad = {ExportStatus.FAILED, ExportStatus.TIMED_OUT}
    return "FAILED" if any(result.status in bad for result in notify.results) else "SUCCEEDED"


def domains_of(notify: NotifyInput) -> list[str]:
    names = {r.domain_name for r in notify.results} | {s.domain_name for s in notify.skipped}
    if not names and notify.request and isinstance(notify.request.get("domainName"), str):
        names.add(notify.request["domainName"])
    return sorted(names)


def build_subject(notify: NotifyInput) -> str:
    """A subject that reads well in an inbox: status, domain, counts."""
    status = overall_status(notify)
    domains = domains_of(notify)
    where = domains[0] if len(domains) == 1 else f"{len(domains)} domains" if domains else "request"
    if notify.plan_error is not None:
        subject = f"Customer Profiles export {status}: {where}: request rejected ({notify.plan_error.Error})"
    else:
        counts = _counts(notify)
        records = sum(r.records for r in notify.results)
        subject = (
            f"Customer Profiles export {status}: {where}: {counts['succeeded']} exported, {counts['failed']} failed, "
            f"{counts['skipped']} up to date, {records:,} records"
        )
    return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 3] + "..."


def _line(result: ExportResult, bucket: str) -> list[str]:
    window = f"{render_utc(result.window.start)} .. {render_utc(result.window.end)}" if result.window else "no window"
    head = f"- {result.domain_name} / {result.object_type}: {result.status.value}, window {window}"
    if result.status == ExportStatus.SKIPPED:
        return [f"- {result.domain_name} / {result.object_type}: up to date ({result.message})"]
    if result.status == ExportStatus.SUCCEEDED:
        lines = [f"{head}: {result.files} files, {result.records:,} records, {_size(result.bytes)}"]
        if result.manifest_key:
            lines.append(f"    manifest: s3://{bucket}/{result.manifest_key}")
        return lines
    watermark = render_utc(result.watermark) if result.watermark else "unset (initial start)"
    return [
        f"{head}",
        f"    reason: {result.message or 'unknown'}",
        f"    the watermark stays at {watermark}; the next run exports this window again",
    ]


def build_message(notify: NotifyInput, bucket: str) -> str:
    """The body: a human summary per object type, then the JSON detail."""
    status = overall_status(notify)
    lines = [f"Customer Profiles export {status}", f"Execution: {notify.execution_arn}"]
    if notify.correlation_id:
        lines.append(f"Correlation id: {notify.correlation_id}")
    lines.append("")
    if notify.plan_error is not None:
        lines += [
            "The export request was rejected before anything started; nothing was changed.",
            f"Error: {notify.plan_error.Error}",
            f"Reason: {notify.plan_error.message}",
            f"Request: {json.dumps(notify.request, sort_keys=True)}",
        ]
    for result in notify.results:
        lines += _line(result, bucket)
    for skipped in notify.skipped:
        lines.append(f"- {skipped.domain_name} / {skipped.object_type}: up to date ({skipped.reason})")
    if not notify.results and not notify.skipped and notify.plan_error is None:
        lines.append("Nothing was planned.")
    lines += ["", "Detail (JSON):", json.dumps(notify.to_wire(), indent=2, sort_keys=True)]
    return "\n".join(lines)


def build_attributes(notify: NotifyInput) -> dict[str, list[str] | str]:
    """Message attributes for subscription filter policies: `status` and `domain`."""
    return {"status": overall_status(notify), "domain": domains_of(notify) or ["unknown"]}


def result_events(notify: NotifyInput, bucket: str) -> list[tuple[str, dict[str, Any]]]:
    """One result event per export, for downstream jobs to chain on."""
    events: list[tuple[str, dict[str, Any]]] = []
    for result in notify.results:
        if result.status == ExportStatus.SKIPPED:
            continue
        detail = {
            "domainName": result.domain_name,
            "objectType": result.object_type,
            "window": result.window.to_wire() if result.window else None,
            "status": result.status.value,
            "files": result.files,
            "records": result.records,
            "bytes": result.bytes,
            "manifest": f"s3://{bucket}/{result.manifest_key}" if result.manifest_key else None,
            "message": result.message,
            "watermark": render_utc(result.watermark) if result.watermark else None,
            "correlationId": notify.correlation_id,
            "executionArn": notify.execution_arn,
        }
        kind = DETAIL_TYPE_SUCCEEDED if result.status == ExportStatus.SUCCEEDED else DETAIL_TYPE_FAILED
        events.append((kind, detail))
    if notify.plan_error is not None:
        events.append(
            (
                DETAIL_TYPE_FAILED,
                {
                    "domainName": (notify.request or {}).get("domainName"),
                    "status": "REJECTED",
                    "error": notify.plan_error.Error,
                    "message": notify.plan_error.message,
                    "correlationId": notify.correlation_id,
                    "executionArn": notify.execution_arn,
                },
            )
        )
    return events


class Publisher(Protocol):
    def publish(self, topic_arn: str, subject: str, message: str, attributes: dict[str, list[str] | str]) -> str: ...
    def put_events(self, bus_name: str, source: str, entries: list[tuple[str, dict[str, Any]]]) -> int: ...


def notify_on_call(notify: NotifyInput, settings: Settings, publisher: Publisher) -> NotifyOutput:
    """Publish the execution's notification and result events; return the execution's verdict."""
    subject = build_subject(notify)
    message_id = None
    if settings.topic_arn:
        message_id = publisher.publish(
            settings.topic_arn,
            subject,
            build_message(notify, settings.export_bucket_name),
            build_attributes(notify),
        )
    failed_events = publisher.put_events(
        settings.event_bus_name, settings.event_source, result_events(notify, settings.export_bucket_name)
    )
    if failed_events:
        logger.warning("some result events were not accepted by EventBridge", extra={"failed": failed_events})
    counts = _counts(notify)
    logger.info("notified", extra={"subject": subject, **counts})
    return NotifyOutput(
        status="FAILED" if overall_status(notify) == "FAILED" else "SUCCEEDED",
        subject=subject,
        message_id=message_id,
        **counts,
    )


def _counts(notify: NotifyInput) -> dict[str, int]:
    statuses = [result.status for result in notify.results]
    return {
        "succeeded": statuses.count(ExportStatus.SUCCEEDED),
        "failed": statuses.count(ExportStatus.FAILED) + statuses.count(ExportStatus.TIMED_OUT),
        "skipped": statuses.count(ExportStatus.SKIPPED) + len(notify.skipped),
    }
