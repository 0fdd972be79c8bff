"""Following an execution: a live table on a terminal, one line per change elsewhere (logs, CI, pipes)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cpexport_cli.story import ExecutionStory

_STYLE = {"SUCCEEDED": "green", "FAILED": "bold red", "TIMED_OUT": "bold red", "SKIPPED": "dim"}


def _window(window: object) -> str:
    if isinstance(window, dict) and window.get("start"):
        return f"{window['start']}..{window['end']}"
    return "-"


class ExecutionProgress:
    """Shows each export's step as the execution moves on (on stderr: stdout keeps the result)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self._live: Live | None = None
        self._shown: dict[str, str] = {}

    def __enter__(self) -> ExecutionProgress:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, error, trace)

    def update(self, story: ExecutionStory) -> None:
        """Show the story as it stands."""
        if self._live is not None:
            self._live.update(self._table(story))
            return
        elapsed = f"{time.monotonic() - self.started:6.1f}s"
        lines = {"execution": f"execution {story.name}: {story.status}"}
        for export in story.exports.values():
            lines[export.label] = f"{export.label} {_window(export.window)}: {export.phase}"
        for key, line in lines.items():
            if self._shown.get(key) != line:
                self._shown[key] = line
                self.console.print(f"{elapsed} {line}", highlight=False)

    def _table(self, story: ExecutionStory) -> Table:
        table = Table(
            title=f"{story.name}: {story.status} ({time.monotonic() - self.started:.0f}s)", title_justify="left"
        )
        for column in ("object type", "window", "step"):
            table.add_column(column)
        for export in story.exports.values():
            table.add_row(
                export.label, _window(export.window), Text(export.phase, style=_STYLE.get(export.outcome, "cyan"))
            )
        return table
