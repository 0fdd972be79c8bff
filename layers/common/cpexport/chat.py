"""The execution's notification as chat renders it: a custom notification of Amazon Q Developer in chat
applications (formerly AWS Chatbot), which shows that format only and drops any other message.

The documented format: `version` "1.0", `source` "custom", an optional `id`, `content` (`textType`
"client-markdown", `title`, `description`, `nextSteps`, `keywords`) and `metadata` (`threadId`,
`summary`, `eventType`, `relatedResources`, `additionalContext`, `enableCustomActions`). AWS states no
length limits for these fields; the chat clients have theirs (a Slack header holds 150 characters, a
section 3,000), so each field keeps to the budgets below and says so where it was cut. The email (the
SNS message's `default`) keeps everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cpexport.config import Settings
from cpexport.models import ExportResult, ExportStatus, NotifyInput, render_utc

# Budgets of each field (see the module doc): what chat clients show without cutting it themselves.
TITLE_LIMIT = 150
DESCRIPTION_LIMIT = 3000
NEXT_STEPS_MAX = 5
NEXT_STEP_LIMIT = 300
KEYWORDS_MAX = 5
KEYWORD_LIMIT = 50
RELATED_RESOURCES_MAX = 10
SUMMARY_LIMIT = 100
CONTEXT_VALUE_LIMIT = 256
REASON_LIMIT = 300

_BAD = {ExportStatus.FAILED, ExportStatus.TIMED_OUT}
# Customer Profiles' own pattern for domain names and object types: safe as markdown and in a command.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A failure reason that is about the deployment, not the data: `cpexport doctor` checks policies and quotas.
_DEPLOYMENT_ERRORS = ("AccessDenied", "QuotaExceeded", "KMS", "ConfigurationError")


@dataclass(frozen=True)
class Verdict:
    """What an execution amounts to for on-call: the title's word and the notification's `eventType`."""

    word: str
    event_type: str
    emoji: str
    detail: str = ""


def cut(text: str, limit: int) -> str:
    """At most `limit` characters; a cut text ends with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def code(text: str, limit: int = REASON_LIMIT) -> str:
    """Text from a request or a service, shown verbatim: one line in a code span, never markdown."""
    flat = " ".join(text.replace("`", "'").split())
    return f"`{cut(flat, limit)}`"


def execution_name(execution_arn: str) -> str:
    """The execution's name (what `cpexport explain` takes), the ARN's last part."""
    return execution_arn.rsplit(":", 1)[-1]


def verdict_of(notify: NotifyInput) -> Verdict:
    """Rejected, broken, failed, partially failed, current state not merged, succeeded, or nothing new."""
    if notify.rejection is not None:
        return Verdict("REJECTED", "ExportRequestRejected", ":no_entry:", "request rejected")
    if notify.plan_error is not None:
        return Verdict("FAILED", "ExportRunBroken", ":x:", "the run broke before exporting")
    exported = [r for r in notify.results if r.reported and r.status != ExportStatus.SKIPPED]
    failed = [r for r in exported if r.status in _BAD]
    succeeded = [r for r in exported if r.status == ExportStatus.SUCCEEDED]
    counts = f"{len(succeeded)} exported, {len(failed)} failed"
    if failed and succeeded:
        return Verdict("PARTIALLY FAILED", "ExportPartiallyFailed", ":warning:", counts)
    if failed:
        return Verdict("FAILED", "ExportFailed", ":x:", counts)
    unmerged = [r for r in succeeded if _unmerged(r)]
    if unmerged:
        return Verdict("FAILED", "CurrentStateMergeFailed", ":x:", f"{len(unmerged)} current state(s) not merged")
    if succeeded:
        records = sum(r.records for r in succeeded)
        return Verdict("SUCCEEDED", "ExportSucceeded", ":white_check_mark:", f"{counts}, {records:,} records")
    return Verdict("SUCCEEDED", "ExportNothingNew", ":white_check_mark:", "nothing new to export")


def _unmerged(result: ExportResult) -> bool:
    return result.current_state is not None and result.current_state.error is not None


def _name(text: str) -> str:
    """A domain name as the title shows it: verbatim when it is one, in a code span when a request sent it."""
    return text if _PLAIN_NAME.match(text) else code(text, 64)


def _where(domains: list[str]) -> str:
    if len(domains) == 1:
        return _name(domains[0])
    return f"{len(domains)} domains" if domains else "request"


def build_title(notify: NotifyInput, domains: list[str]) -> str:
    """The verdict and the domain, e.g. `:x: Customer Profiles export FAILED: shop (3 exported, 1 failed)`."""
    verdict = verdict_of(notify)
    title = f"{verdict.emoji} Customer Profiles export {verdict.word}: {_where(domains)}"
    return cut(f"{title} ({verdict.detail})" if verdict.detail else title, TITLE_LIMIT)


def _window(result: ExportResult) -> str:
    if result.window is None:
        return "no window"
    return f"{render_utc(result.window.start)} .. {render_utc(result.window.end)}"


def human_size(num_bytes: int) -> str:
    """Bytes as people read them: 812 B, 12.3 KB, 4.0 GB."""
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{num_bytes} B"


def _export_line(result: ExportResult) -> str:
    """One export in one line: window, files and records, or the reason and where the watermark stays."""
    who = f"`{result.domain_name}` / `{result.object_type}`"
    if result.status == ExportStatus.SKIPPED:
        return f"\u2022 {who}: up to date ({code(result.message or 'nothing new', 120)})"
    if not result.reported:
        return f"\u2022 {who}: already reported by execution {code(execution_name(result.reported_by or '?'), 100)}"
    head = f"\u2022 {who} *{result.status.value}*, window {_window(result)}"
    if result.status == ExportStatus.SUCCEEDED:
        line = f"{head}: {result.files:,} files, {result.records:,} records, {human_size(result.bytes)}"
        update = result.current_state
        if update is not None and update.error is not None:
            line += (
                f"; current state *NOT merged* into `{update.database}.{update.table}` ({code(update.error.Error, 80)})"
            )
        elif update is not None and update.confirmed_reconcile and update.exact_as_of is not None:
            line += f"; `{update.table}` exact as of {render_utc(update.exact_as_of)}"
        return line
    if result.backfill:
        stays = "the backfill did not complete: request it again"
    else:
        watermark = render_utc(result.watermark) if result.watermark else "unset (initial start)"
        stays = f"the watermark stays at {watermark}: the next run exports this window again"
    return f"{head}: {code(result.message or 'unknown')}; {stays}"


def _description_lines(notify: NotifyInput, settings: Settings) -> tuple[list[str], list[str]]:
    """The lines that always show (the execution, what went wrong with the request) and one per export,
    failures first: if the description has to be cut, successes go before failures do."""
    head = [f"Execution {code(execution_name(notify.execution_arn), 100)} of stack `{settings.stack_name}`"]
    if notify.correlation_id and notify.correlation_id != execution_name(notify.execution_arn):
        head[0] += f", correlation id {code(notify.correlation_id, 100)}"
    if notify.rejection is not None:
        head += [
            "The request was rejected before anything started; nothing changed.",
            f"*{code(notify.rejection.error, 80)}*: {code(notify.rejection.message, 600)}",
        ]
    if notify.plan_error is not None:
        head += [
            "The run broke before exporting anything; nothing changed (the next run plans again).",
            f"*{code(notify.plan_error.Error, 80)}*: {code(notify.plan_error.message, 600)}",
        ]

    def rank(result: ExportResult) -> int:
        if result.reported and (result.status in _BAD or _unmerged(result)):
            return 0
        return 1 if result.reported and result.status == ExportStatus.SUCCEEDED else 2

    exports = [_export_line(result) for result in sorted(notify.results, key=rank)]
    exports += [
        f"\u2022 `{s.domain_name}` / `{s.object_type}`: up to date ({code(s.reason, 120)})" for s in notify.skipped
    ]
    if not exports and notify.rejection is None and notify.plan_error is None:
        exports.append("Nothing was planned.")
    return head, exports


def _cut_note(count: int, name: str) -> str:
    return (
        f"\u2026 and {count} more line(s) cut to fit the chat message; "
        f"the email and `cpexport explain {name}` have every export"
    )


def build_description(notify: NotifyInput, settings: Settings) -> str:
    """One line per export within DESCRIPTION_LIMIT; lines that do not fit are counted, not dropped silently."""
    head, exports = _description_lines(notify, settings)
    name = execution_name(notify.execution_arn)
    lines = list(head)
    for index, line in enumerate(exports):
        after = len(exports) - index - 1
        reserve = len(_cut_note(after, name)) + 1 if after else 0
        if len("\n".join([*lines, line])) + reserve > DESCRIPTION_LIMIT:
            lines.append(_cut_note(after + 1, name))
            break
        lines.append(line)
    return cut("\n".join(lines), DESCRIPTION_LIMIT)


def _cli(settings: Settings, command: str) -> str:
    """A `cpexport` command for this stack, as on-call pastes it."""
    return f"`cpexport {command} --stack-name {settings.stack_name} --region {settings.region}`"


def build_next_steps(notify: NotifyInput, settings: Settings) -> list[str]:
    """The `cpexport` commands that help, most useful first, at most NEXT_STEPS_MAX."""
    name = execution_name(notify.execution_arn)
    steps = [f"What happened, step by step: {_cli(settings, f'explain {name}')}"]
    if notify.rejection is not None:
        steps.append("Tell the sender: the message names the field and the problem; nothing was started")
    if notify.plan_error is not None:
        steps.append(f"Check the deployment (policies, catalog, quotas): {_cli(settings, 'doctor')}")
    failed = [r for r in notify.results if r.reported and r.status in _BAD]
    if failed:
        steps.append(f"Recent failures with the service's reason: {_cli(settings, 'runs --failed')}")
    for result in failed:
        where = f"--domain {result.domain_name} --type {result.object_type}"
        message = result.message or ""
        if "ExportBusy" in message:
            steps.append(
                f"Who holds {result.object_type}: {_cli(settings, f'status {where}')}; a lease no running job "
                f"explains: {_cli(settings, f'release-lease {where}')}"
            )
        elif result.backfill and result.window is not None:
            window = f"--from {render_utc(result.window.start)} --to {render_utc(result.window.end)}"
            steps.append(f"Request the backfill again: {_cli(settings, f'backfill {where} {window} --wait')}")
        else:
            steps.append(f"Export the window now, not at the next tick: {_cli(settings, f'run {where} --wait')}")
        if any(marker in message for marker in _DEPLOYMENT_ERRORS):
            steps.append(f"Check policies and quotas first: {_cli(settings, 'doctor')}")
    for result in notify.results:
        if result.reported and _unmerged(result):
            where = f"--domain {result.domain_name} --type {result.object_type}"
            steps.append(f"Catch the current-state table up: {_cli(settings, f'rebuild-current {where}')}")
    if len(steps) == 1 and notify.rejection is None:
        steps.append(f"Every object type's watermark and last run: {_cli(settings, 'status')}")
    unique = list(dict.fromkeys(steps))
    if len(unique) > NEXT_STEPS_MAX:
        unique = [
            *unique[: NEXT_STEPS_MAX - 1],
            f"More steps in the email; what needs attention, with its command: {_cli(settings, 'status')}",
        ]
    return [cut(step, NEXT_STEP_LIMIT) for step in unique]


def related_resources(notify: NotifyInput, settings: Settings) -> list[str]:
    """ARNs of the execution, the manifests it reports and the current-state tables it merged into."""
    partition = notify.execution_arn.split(":")[1] if notify.execution_arn.count(":") > 1 else "aws"
    found = [notify.execution_arn]
    for result in notify.results:
        if result.reported and result.manifest_key:
            found.append(f"arn:{partition}:s3:::{settings.export_bucket_name}/{result.manifest_key}")
    for result in notify.results:
        update = result.current_state
        if result.reported and update is not None:
            found.append(
                f"arn:{partition}:glue:{settings.region}:{settings.account_id}:table/{update.database}/{update.table}"
            )
    return list(dict.fromkeys(found))[:RELATED_RESOURCES_MAX]


def _keywords(notify: NotifyInput, domains: list[str]) -> list[str]:
    words = [verdict_of(notify).word, *(name for name in domains if _PLAIN_NAME.match(name))]
    return [cut(word, KEYWORD_LIMIT) for word in dict.fromkeys(words)][:KEYWORDS_MAX]


def chat_notification(
    notify: NotifyInput, settings: Settings, *, summary: str, status: str, domains: list[str]
) -> dict[str, Any]:
    """The custom notification of one execution; `summary`, `status` and `domains` as the email has them
    (its subject, its `status` attribute, its `domain` attribute).

    One thread per execution (`threadId` is its ARN), so a notification another delivery repeats lands
    in the same thread; `id` is the ARN too.
    """
    context = {
        "stack": settings.stack_name,
        "region": settings.region,
        "status": status,
        "domains": ",".join(domains),
        "execution": execution_name(notify.execution_arn),
        "correlationId": notify.correlation_id or "",
    }
    return {
        "version": "1.0",
        "source": "custom",
        "id": notify.execution_arn,
        "content": {
            "textType": "client-markdown",
            "title": build_title(notify, domains),
            "description": build_description(notify, settings),
            "nextSteps": build_next_steps(notify, settings),
            "keywords": _keywords(notify, domains),
        },
        "metadata": {
            "threadId": notify.execution_arn,
            "summary": cut(summary, SUMMARY_LIMIT),
            "eventType": verdict_of(notify).event_type,
            "relatedResources": related_resources(notify, settings),
            "additionalContext": {key: cut(value, CONTEXT_VALUE_LIMIT) for key, value in context.items() if value},
            "enableCustomActions": False,
        },
    }
