"""Progress and logs for terminals and batch jobs alike.

On a terminal a rich progress bar; otherwise (sbatch writes stderr to a file, where a live bar would look like a
hang or fill the log with cursor codes) one plain line every ``interval`` seconds and at the end. Everything goes
to stderr so that ``--json`` keeps stdout a clean data channel.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True)


_muted = False


def mute() -> None:
    """Silence :func:`log` and progress bars for the rest of the process (the non-writing ranks of a
    distributed run: one log per job, not one per process). Errors are still printed by the CLI."""
    global _muted
    _muted = True


def log(message: str) -> None:
    """One line on stderr (plain text, no markup)."""
    if not _muted:
        print(message, file=sys.stderr, flush=True)


class ProgressReporter:
    """``with ProgressReporter(total, "preprocess") as bar: bar.advance(1, failed=0)``."""

    def __init__(self, total: int, description: str, interval: float = 30.0, enabled: bool = True) -> None:
        self.total = total
        self.description = description
        self.interval = interval
        self.enabled = enabled and not _muted
        self.done = 0
        self.notes: dict[str, int] = {}
        self.status = ""
        self._bar: Progress | None = None
        self._task = None
        self._start = 0.0
        self._last = 0.0

    def __enter__(self) -> ProgressReporter:
        self._start = self._last = time.monotonic()
        if self.enabled and _console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[notes]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=_console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, notes="")
        return self

    def advance(self, n: int = 1, status: str | None = None, **notes: int) -> None:
        """Count ``n`` items; integer ``notes`` accumulate (failed=1), ``status`` replaces the free text."""
        self.done += n
        if status is not None:
            self.status = status
        for key, value in notes.items():
            self.notes[key] = self.notes.get(key, 0) + value
        if self._bar is not None:
            self._bar.update(self._task, advance=n, notes=self._notes_text())
        elif self.enabled and time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            log(self._line())

    def _notes_text(self) -> str:
        return " ".join([*(f"{k}={v}" for k, v in self.notes.items() if v), self.status]).strip()

    def _line(self) -> str:
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        notes = self._notes_text()
        return (
            f"{self.description}: {self.done}/{self.total} ({pct:.1f}%) {rate:.2f}/s "
            f"elapsed {elapsed:.0f}s{' ' + notes if notes else ''}"
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
        elif self.enabled:
            log(self._line())
