"""How results reach the terminal: rich tables and colour for people, one JSON document for scripts.

Results go to stdout; progress, warnings and errors go to stderr, so `--output json` stays parseable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import click
from cpexport.models import render_utc
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cpexport_cli.doctor import CheckResult, Verdict
from cpexport_cli.lease_release import LeaseRelease, Outcome
from cpexport_cli.runs import RunRecord
from cpexport_cli.status import Attention, ObjectTypeStatus, describe_window, human_duration
from cpexport_cli.verify import Step
from cpexport_cli.verify import Verdict as StepVerdict

ATTENTION_STYLE = {Attention.OK: "green", Attention.WARN: "yellow", Attention.ALERT: "bold red"}
VERDICT_STYLE = {Verdict.OK: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red"}
STATUS_STYLE = {"SUCCEEDED": "green", "FAILED": "bold red", "TIMED_OUT": "bold red", "RUNNING": "cyan"}
# Piped output is read by grep and by people in a log: wide enough not to wrap a row.
_PIPE_WIDTH = 220


def console(stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr); colour only on a terminal, and never with NO_COLOR."""
    made = Console(stderr=stderr, soft_wrap=True, highlight=False)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made = Console(stderr=stderr, soft_wrap=True, highlight=False, width=_PIPE_WIDTH)
    return made


def emit_json(document: Any) -> None:
    """The one JSON document a command prints with `--output json`."""
    click.echo(json.dumps(document, indent=2, default=str))


def human_bytes(size: int | None) -> str:
    """1.2 MB, 340 KB, 12 B."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def show_status(rows: list[ObjectTypeStatus], now: datetime, stack_name: str) -> None:
    """The status table, then what needs attention, worst first."""
    out = console()
    table = Table(title=f"{stack_name}: exports at {render_utc(now)}", title_justify="left")
    for column in ("object type", "watermark", "last success", "last run", "job now", "lease", "stale alarm"):
        table.add_column(column, overflow="fold")
    for row in rows:
        run = row.last_run
        last_run = Text("-")
        if run is not None:
            last_run = Text(run.status + run.kind, style=STATUS_STYLE.get(run.status, ""))
            last_run.append(f"\n{run.window_start}..{run.window_end}", style="")
        job = row.job
        if job.running:
            job_text = Text(f"IN_PROGRESS for {human_duration(job.elapsed)}", style="cyan")
            job_text.append(f"\n{describe_window(job.window)}", style="")
        elif job.status:
            job_text = Text(f"last job {job.status}\n{describe_window(job.window)}")
        else:
            job_text = Text("unreadable" if job.error else "no job yet", style="yellow" if job.error else "")
        lease = Text("-")
        if row.lease is not None:
            holder = row.lease.lease.execution_arn.rsplit(":", 1)[-1]
            running = row.lease.execution_status == "RUNNING"
            lease = Text(
                f"held {human_duration(now - row.lease.lease.acquired_at)} by a {row.lease.execution_status} execution",
                style="" if running else "yellow",
            )
            lease.append(f"\n{holder}", style="")
        stale = Text(
            f"{'FIRES' if row.stale.would_fire else 'quiet'} {row.stale.age_hours:.1f}h/{row.stale.threshold_hours:g}h",
            style="bold red" if row.stale.would_fire else "green",
        )
        table.add_row(
            Text(f"{row.domain_name}/{row.object_type}", style=ATTENTION_STYLE[row.attention]),
            f"{render_utc(row.watermark)}\n{human_duration(now - row.watermark)} ago" if row.watermark else "-",
            f"{human_duration(now - row.last_success_at)} ago" if row.last_success_at else "-",
            last_run,
            job_text,
            lease,
            stale,
        )
    out.print(table)
    needing = [row for row in rows if row.reasons]
    for row in sorted(needing, key=lambda r: -r.attention):
        for level, message in row.reasons:
            out.print(
                Text(f"{level.label.upper():5} ", style=ATTENTION_STYLE[level])
                + Text(f"{row.domain_name}/{row.object_type}: {message}")
            )
    alerts = sum(1 for row in rows if row.attention == Attention.ALERT)
    warnings = sum(1 for row in rows if row.attention == Attention.WARN)
    verdict = "everything is exported" if not alerts else "needs attention"
    out.print(
        Text(
            f"{len(rows)} object type(s): {alerts} alert(s), {warnings} warning(s), "
            f"{len(rows) - alerts - warnings} ok: {verdict}",
            style="bold red" if alerts else ("yellow" if warnings else "green"),
        )
    )


def show_runs(records: list[RunRecord], bucket: str | None) -> None:
    """The run index, newest first."""
    out = console()
    table = Table()
    for column in (
        "recorded",
        "object type",
        "window",
        "status",
        "files",
        "records",
        "size",
        "manifest",
        "correlation id",
        "execution",
    ):
        table.add_column(column, justify="right" if column in {"files", "records", "size"} else "left", overflow="fold")
    for record in records:
        manifest = record.to_json(bucket)["manifest"] or "-"
        status = Text(record.status + record.kind, style=STATUS_STYLE.get(record.status, ""))
        table.add_row(
            record.recorded_at,
            f"{record.domain_name}/{record.object_type}",
            f"{record.window_start}..{record.window_end}",
            status,
            "-" if record.files is None else str(record.files),
            "-" if record.records is None else str(record.records),
            human_bytes(record.bytes),
            manifest,
            record.correlation_id or "-",
            record.execution_name or "-",
        )
    out.print(table)
    for record in records:
        if record.failed and record.message:
            out.print(
                Text(f"{record.status} ", style="bold red")
                + Text(
                    f"{record.domain_name}/{record.object_type} {record.window_start}..{record.window_end}: {record.message}"
                )
            )
    if not records:
        out.print("no runs recorded")


def show_lines(lines: Iterable[str], stderr: bool = False) -> None:
    """Plain sentences, each on its line (a status word is coloured)."""
    out = console(stderr)
    for line in lines:
        text = Text(line)
        for word, style in STATUS_STYLE.items():
            text.highlight_words([word], style=style)
        out.print(text)


def show_doctor(results: list[CheckResult], stack_name: str) -> None:
    """Each check with its verdict and details, then the overall verdict."""
    out = console()
    for result in results:
        out.print(
            Text(f"{result.verdict.label.upper():4} ", style=VERDICT_STYLE[result.verdict])
            + Text(f"{result.name}: {result.summary}")
        )
        for detail in result.details:
            out.print(f"       {detail}")
    worst = max((r.verdict for r in results), default=Verdict.OK)
    failed = [r.name for r in results if r.verdict == Verdict.FAIL]
    out.print(
        Text(
            f"{stack_name}: "
            + (f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "every check passed"),
            style=VERDICT_STYLE[worst],
        )
    )


STEP_STYLE = {
    StepVerdict.OK: "green",
    StepVerdict.SKIPPED: "dim",
    StepVerdict.WARN: "yellow",
    StepVerdict.FAIL: "bold red",
}


def show_step(step: Step) -> None:
    """One step of `verify` on one line; the fix and the details of a step that did not pass beneath it."""
    out = console()
    out.print(
        Text(f"{step.verdict.label.upper():7} ", style=STEP_STYLE[step.verdict]) + Text(f"{step.name}: {step.summary}")
    )
    if step.verdict in (StepVerdict.FAIL, StepVerdict.WARN):
        if step.fix:
            out.print(Text("        fix: ", style="bold") + Text(step.fix))
        for detail in step.details:
            out.print(Text(f"        {detail}"))  # details hold [brackets]: never read as markup


def show_verdict(steps: list[Step], stack_name: str) -> None:
    """The last line of `verify`: which steps failed, or that the night is proven."""
    failed = [step.name for step in steps if step.verdict == StepVerdict.FAIL]
    worst = max((step.verdict for step in steps), default=StepVerdict.OK)
    skipped = sum(1 for step in steps if step.verdict == StepVerdict.SKIPPED)
    if failed:
        text = f"{stack_name}: {len(failed)} step(s) failed: {', '.join(failed)}"
    else:
        text = f"{stack_name}: every step passed" + (f" ({skipped} not run)" if skipped else "")
    console().print(Text(text, style=STEP_STYLE[worst] if failed or worst == StepVerdict.WARN else "green"))


def show_release(release: LeaseRelease) -> None:
    """What was checked, and whether the lease was released."""
    out = console()
    styles = {Outcome.OK: "green", Outcome.FORCED: "yellow", Outcome.NEEDS_FORCE: "yellow", Outcome.REFUSED: "bold red"}
    for check in release.checks:
        out.print(
            Text(f"{check.outcome.value.upper():11} ", style=styles[check.outcome])
            + Text(f"{check.name}: {check.detail}")
        )
    style = "green" if release.released or release.lease is None else "bold red"
    out.print(Text(release.message, style=style))


def now_utc() -> datetime:
    """The clock every command reads once."""
    return datetime.now(UTC)
