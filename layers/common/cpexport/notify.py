"""The execution's one notification for on-call, and result events for other systems.

SNS refuses what would be lost silently otherwise: a Subject must be ASCII printable, without a
newline, at most 100 characters; a message at most 256 KB. Everything a request sent (a domain
name, a correlation id) is made to fit before it reaches either.

The one message is published with `MessageStructure=json`: every subscriber receives the text
(`default`: email, SQS, Lambda ...) but the https ones, which receive the chat notification of
`cpexport.chat` (Amazon Q Developer in chat applications subscribes to a topic with https and shows
nothing else).

A job is reported by one execution only (see `indexing`): results another execution of the same
request already reported are named in the message but get no event and do not fail this execution.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from cpexport.chat import chat_notification, human_size
from cpexport.config import Settings
from cpexport.errors import ExportError
from cpexport.models import ExportResult, ExportStatus, NotifyInput, NotifyOutput, render_utc
from cpexport.observability import logger, record_failed_events

SUBJECT_LIMIT = 100  # SNS rejects longer subjects
# SNS's limit is 256 KB for the message and its attributes together; keep a margin for attributes.
MESSAGE_LIMIT_BYTES = 256 * 1024 - 4 * 1024
DETAIL_TYPE_SUCCEEDED = "Customer Profiles Export Succeeded"
DETAIL_TYPE_FAILED = "Customer Profiles Export Failed"
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_DETAIL_MARK = "\nDetail (JSON):\n"


def printable(text: str, limit: int) -> str:
    """ASCII printable, one line, at most `limit` characters (what an SNS Subject accepts)."""
    flat = _NOT_PRINTABLE.sub("?", text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def reported(notify: NotifyInput) -> list[ExportResult]:
    """The results this execution reports (not those another execution of its request reported)."""
    return [result for result in notify.results if result.reported]


def current_state_failed(result: ExportResult) -> bool:
    """An indexed export that its current-state table did not take (Athena failed after every retry)."""
    return result.current_state is not None and result.current_state.error is not None


def overall_status(notify: NotifyInput) -> str:
    """FAILED when the request was rejected, the run broke, a reported export did not succeed, or an
    export could not be merged into its current-state table (on-call must catch the table up)."""
    if notify.plan_error is not None or notify.rejection is not None:
        return "FAILED"
    bad = {ExportStatus.FAILED, ExportStatus.TIMED_OUT}
    failed = any(result.status in bad or current_state_failed(result) for result in reported(notify))
    return "FAILED" if failed else "SUCCEEDED"


def domains_of(notify: NotifyInput) -> list[str]:
    names = {r.domain_name for r in notify.results} | {s.domain_name for s in notify.skipped}
    if not names and notify.rejection is not None and notify.rejection.domain_name:
        names.add(notify.rejection.domain_name)
    return sorted(names)


def is_verification(notify: NotifyInput) -> bool:
    """Whether the execution only verified a deployment (`cpexport verify`): on-call reads it as such."""
    results = reported(notify)
    return bool(results) and all(result.verification for result in results)


def build_subject(notify: NotifyInput) -> str:
    """A subject that reads well in an inbox: status, domain, counts."""
    status = overall_status(notify)
    if is_verification(notify):
        status = f"verification {status}"
    domains = domains_of(notify)
    where = domains[0] if len(domains) == 1 else f"{len(domains)} domains" if domains else "request"
    if notify.rejection is not None:
        subject = f"Customer Profiles export {status}: {where}: request rejected ({notify.rejection.error})"
    elif notify.plan_error is not None:
        subject = f"Customer Profiles export {status}: the run broke before exporting ({notify.plan_error.Error})"
    else:
        counts = _counts(notify)
        records = sum(r.records for r in reported(notify))
        subject = (
            f"Customer Profiles export {status}: {where}: {counts['succeeded']} exported, {counts['failed']} failed, "
            f"{counts['skipped']} up to date, {records:,} records"
        )
    return printable(subject, SUBJECT_LIMIT)


def _line(result: ExportResult, bucket: str) -> list[str]:
    window = f"{render_utc(result.window.start)} .. {render_utc(result.window.end)}" if result.window else "no window"
    kind = " (verification)" if result.verification else ""
    head = f"- {result.domain_name} / {result.object_type}: {result.status.value}{kind}, window {window}"
    if result.status == ExportStatus.SKIPPED:
        return [f"- {result.domain_name} / {result.object_type}: up to date ({result.message})"]
    if not result.reported:
        return [f"{head}: already reported by execution {result.reported_by}"]
    if result.status == ExportStatus.SUCCEEDED:
        lines = [f"{head}: {result.files} files, {result.records:,} records, {human_size(result.bytes)}"]
        if result.message:
            lines.append(f"    note: {result.message}")
        if result.manifest_key:
            lines.append(f"    manifest: s3://{bucket}/{result.manifest_key}")
        if result.table:
            lines.append(f"    queryable: table {result.database}.{result.table}, " + _partitions(result))
        lines += _current_state_lines(result)
        return lines
    if result.verification:
        stays = "a verification: no watermark is involved; run cpexport verify again once the reason is fixed"
    elif result.backfill:
        stays = "the backfill did not complete; request it again"
    else:
        watermark = render_utc(result.watermark) if result.watermark else "unset (initial start)"
        stays = f"the watermark stays at {watermark}; the next run exports this window again"
    return [f"{head}", f"    reason: {result.message or 'unknown'}", f"    {stays}"]


def _current_state_lines(result: ExportResult) -> list[str]:
    update = result.current_state
    if update is None:
        return []
    table = f"{update.database}.{update.table}"
    if update.error is not None:
        return [
            f"    current state: NOT merged into {table} ({update.error.Error}: {update.error.message[:300]})",
            "    the export itself is indexed and queryable; catch the table up with: "
            f"cpexport rebuild-current --domain {result.domain_name} --type {result.object_type}",
        ]
    if not update.merged:
        return [f"    current state: {table} not updated (the export had no partition to merge)"]
    lines = [f"    current state: merged into {table}"]
    if update.reconcile and update.confirm_after is not None:
        lines.append(
            f"    reconcile: ids older than {render_utc(update.cutoff) if update.cutoff else 'its cutoff'} that the full "
            f"export lacks are recorded in {update.database}.{update.deleted_table}; they leave {update.table} "
            f"once an export moves the watermark past {render_utc(update.confirm_after)} (it tells deleted objects "
            "from ones updated since)"
        )
    if update.confirmed_reconcile and update.exact_as_of is not None:
        lines.append(
            f"    reconcile confirmed: deleted and merged-away objects removed from {update.table}; "
            f"{result.domain_name} is exact as of {render_utc(update.exact_as_of)}"
        )
    return lines


def _partitions(result: ExportResult) -> str:
    names = [partition.name for partition in result.partitions]
    return ("partition " if len(names) == 1 else "partitions ") + "; ".join(names)


def build_message(notify: NotifyInput, bucket: str, limit: int = MESSAGE_LIMIT_BYTES) -> str:
    """The text: a human summary per object type, then the JSON detail; at most `limit` bytes once
    written as a JSON string (how the structured SNS message carries it)."""
    status = overall_status(notify)
    lines = [f"Customer Profiles export {status}", f"Execution: {notify.execution_arn}"]
    if notify.correlation_id:
        lines.append(f"Correlation id: {notify.correlation_id}")
    lines.append("")
    if notify.rejection is not None:
        lines += [
            "The export request was rejected before anything started; nothing was changed.",
            f"Error: {notify.rejection.error}",
            f"Reason: {notify.rejection.message}",
            f"Request: {notify.rejection.request_excerpt}",
        ]
    if notify.plan_error is not None:
        lines += [
            "The run broke before exporting anything; nothing was changed (the next run plans again).",
            f"Error: {notify.plan_error.Error}",
            f"Reason: {notify.plan_error.message}",
            "The stack trace is in the function's logs (search the execution ARN).",
        ]
    for result in notify.results:
        lines += _line(result, bucket)
    for skipped in notify.skipped:
        lines.append(f"- {skipped.domain_name} / {skipped.object_type}: up to date ({skipped.reason})")
    if not notify.results and not notify.skipped and notify.plan_error is None and notify.rejection is None:
        lines.append("Nothing was planned.")
    summary = "\n".join(lines)
    detail = json.dumps(_detail(notify), indent=2, sort_keys=True)
    return _fit(summary, detail, limit)


def _detail(notify: NotifyInput) -> dict[str, Any]:
    """The JSON detail: the notify input without error causes (they hold stack traces, kept in logs)."""
    detail = notify.to_wire()
    if notify.plan_error is not None:
        detail["planError"] = {"Error": notify.plan_error.Error, "message": notify.plan_error.message}
    return detail


def _json_size(text: str) -> int:
    """Bytes of `text` inside a JSON document (quotes, backslashes and newlines escaped)."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def _fit(summary: str, detail: str, limit: int) -> str:
    """Summary plus detail within `limit`: the detail is cut first, then the summary."""
    message = summary + "\n" + _DETAIL_MARK + detail
    if _json_size(message) <= limit:
        return message
    # Each pass cuts the raw text by what the escaped text was over: escaping only ever adds bytes.
    budget = limit - _json_size(summary) - 200
    while budget > 0:
        cut = detail.encode()[:budget].decode(errors="ignore")
        message = summary + "\n" + _DETAIL_MARK + cut + "\n... (detail cut to fit the SNS message limit)"
        over = _json_size(message) - limit
        if over <= 0:
            return message
        budget -= over
    budget = limit - 100
    while True:
        message = (
            summary.encode()[: max(budget, 0)].decode(errors="ignore")
            + "\n... (message cut to fit the SNS message limit)"
        )
        over = _json_size(message) - limit
        if over <= 0:
            return message
        budget -= over


def build_sns_message(notify: NotifyInput, settings: Settings) -> str:
    """The SNS message (`MessageStructure=json`): `default` the text, `https` the chat notification.

    The chat notification is small (its fields have budgets); the text gets what is left of SNS's limit.
    """
    chat = json.dumps(
        chat_notification(
            notify,
            settings,
            summary=build_subject(notify),
            status=overall_status(notify),
            domains=domains_of(notify),
        ),
        ensure_ascii=False,
    )
    envelope = len(json.dumps({"default": "", "https": chat}, ensure_ascii=False).encode())
    text = build_message(notify, settings.export_bucket_name, MESSAGE_LIMIT_BYTES - envelope)
    return json.dumps({"default": text, "https": chat}, ensure_ascii=False)


def build_attributes(notify: NotifyInput) -> dict[str, list[str] | str]:
    """Message attributes for subscription filter policies: `status` and `domain`."""
    return {"status": overall_status(notify), "domain": domains_of(notify) or ["unknown"]}


def result_events(notify: NotifyInput, bucket: str) -> list[tuple[str, dict[str, Any]]]:
    """One result event per export this execution reports, for downstream jobs to chain on."""
    events: list[tuple[str, dict[str, Any]]] = []
    for result in reported(notify):
        if result.status == ExportStatus.SKIPPED:
            continue
        detail: dict[str, Any] = {
            "domainName": result.domain_name,
            "objectType": result.object_type,
            "window": result.window.to_wire() if result.window else None,
            "status": result.status.value,
            "backfill": result.backfill,
            "verification": result.verification,
            "files": result.files,
            "records": result.records,
            "bytes": result.bytes,
            "manifest": f"s3://{bucket}/{result.manifest_key}" if result.manifest_key else None,
            "message": result.message,
            "watermark": render_utc(result.watermark) if result.watermark else None,
            "correlationId": notify.correlation_id,
            "executionArn": notify.execution_arn,
        }
        if result.table:
            # Where the export answers queries: its partition (a job that wrote into two request
            # folders has one per folder: `partitions` lists them all, `partition` is the first).
            partitions = [partition.to_wire() for partition in result.partitions]
            detail |= {
                "database": result.database,
                "table": result.table,
                "partition": partitions[0] if partitions else None,
                "partitions": partitions,
            }
        if result.current_state is not None:
            update = result.current_state
            detail["currentState"] = {
                "table": f"{update.database}.{update.table}",
                "merged": update.merged,
                "reconcile": update.reconcile,
                "confirmAfter": render_utc(update.confirm_after) if update.confirm_after else None,
                "confirmedReconcile": update.confirmed_reconcile,
                "exactAsOf": render_utc(update.exact_as_of) if update.exact_as_of else None,
                "error": update.error.Error if update.error else None,
            }
        detail["reconcile"] = result.reconcile
        kind = DETAIL_TYPE_SUCCEEDED if result.status == ExportStatus.SUCCEEDED else DETAIL_TYPE_FAILED
        events.append((kind, detail))
    if notify.rejection is not None or notify.plan_error is not None:
        rejection = notify.rejection
        events.append(
            (
                DETAIL_TYPE_FAILED,
                {
                    "domainName": rejection.domain_name if rejection else None,
                    "status": "REJECTED" if rejection else "BROKEN",
                    "error": rejection.error if rejection else notify.plan_error.Error,  # type: ignore[union-attr]
                    "message": rejection.message if rejection else notify.plan_error.message,  # type: ignore[union-attr]
                    "correlationId": (rejection.correlation_id if rejection else None) or notify.correlation_id,
                    "executionArn": notify.execution_arn,
                },
            )
        )
    return events


class Publisher(Protocol):
    def publish(
        self,
        topic_arn: str,
        subject: str,
        message: str,
        attributes: dict[str, list[str] | str],
        message_structure: str | None = None,
    ) -> str: ...
    def put_events(self, bus_name: str, source: str, entries: list[tuple[str, dict[str, Any]]]) -> int: ...


def notify_on_call(notify: NotifyInput, settings: Settings, publisher: Publisher) -> NotifyOutput:
    """Publish the execution's notification and result events; return the execution's verdict."""
    subject = build_subject(notify)
    message_id = None
    if settings.topic_arn:
        message_id = publisher.publish(
            settings.topic_arn,
            subject,
            build_sns_message(notify, settings),
            build_attributes(notify),
            message_structure="json",
        )
    # The message is out: from here a failure must not make the state machine retry (and send it twice).
    # Events that EventBridge does not take after botocore's retries are logged and counted
    # (ResultEventsFailed, alarmed), never raised.
    events = result_events(notify, settings.export_bucket_name)
    try:
        failed_events = publisher.put_events(settings.event_bus_name, settings.event_source, events)
    except ExportError as error:
        failed_events = len(events)
        logger.error("result events could not be put", extra={"error": str(error), "events": events})
    if failed_events:
        logger.warning("some result events were not accepted by EventBridge", extra={"failed": failed_events})
        record_failed_events(failed_events)
    counts = _counts(notify)
    logger.info("notified", extra={"subject": subject, **counts})
    return NotifyOutput(
        status="FAILED" if overall_status(notify) == "FAILED" else "SUCCEEDED",
        subject=subject,
        message_id=message_id,
        events=len(events),
        events_failed=failed_events,
        **counts,
    )


def _counts(notify: NotifyInput) -> dict[str, int]:
    statuses = [result.status for result in reported(notify)]
    return {
        "succeeded": statuses.count(ExportStatus.SUCCEEDED),
        "failed": statuses.count(ExportStatus.FAILED) + statuses.count(ExportStatus.TIMED_OUT),
        "skipped": statuses.count(ExportStatus.SKIPPED) + len(notify.skipped),
        "already_reported": len(notify.results) - len(statuses),
    }
