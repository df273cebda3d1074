"""A run's progress over its problems, for whoever watches it.

On a terminal, a live bar. Rich draws nothing live when its console is not a terminal, so on a log
(``nohup ... > log``, CI) a run printed nothing until it ended, and a day-long experiment's log could
not say how far it got: there, a line at most every ``every`` seconds, and one at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .store import ProblemRecord, RunInfo, Store


class RunProgress:
    """Call it with each solved problem's record (``on_done`` of ``runner.execute_run``), inside ``with``."""

    def __init__(self, console: Console, label: str, total: int, *, done: int = 0, correct: int = 0,
                 quiet: bool = False, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.console, self.label, self.total = console, label, total
        self.done, self.correct = done, correct
        self.new = self.new_tokens = 0  # problems solved (and their tokens) since this started
        self.quiet, self.every, self.clock = quiet, every, clock
        self._bar: Progress | None = None
        self._task: Any = None
        self._started = self._last_line = clock()
        self._unreported = False

    @classmethod
    def for_run(cls, console: Console, store: Store, run: RunInfo, label: str, **options: Any) -> RunProgress:
        """Progress of a stored run, counting the problems it already has."""
        records = store.results(run.id)
        return cls(console, label, len(run.problem_ids), done=len(records),
                   correct=sum(r.correct for r in records), **options)

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    def __enter__(self) -> RunProgress:
        if self.live and not self.quiet:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("acc {task.fields[acc]}"), TextColumn("{task.fields[tok]} tok/problem"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done,
                                            acc=self.accuracy, tok="-")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._unreported and not self.quiet:
            self.console.print(self.line(), highlight=False)

    def __call__(self, record: ProblemRecord) -> None:
        self.done += 1
        self.correct += record.correct
        self.new += 1
        self.new_tokens += record.cost.completion_tokens
        if self._bar is not None:
            self._bar.update(self._task, advance=1, acc=self.accuracy, tok=f"{self.new_tokens / self.new:.0f}")
            return
        self._unreported = True
        now = self.clock()
        if not self.quiet and (now - self._last_line >= self.every or self.done == self.total):
            self.console.print(self.line(), highlight=False)
            self._last_line, self._unreported = now, False

    @property
    def accuracy(self) -> str:
        return f"{100 * self.correct / self.done:.1f}%" if self.done else "-"

    def line(self) -> str:
        """One log line: how far, how well, at what cost, and (from this session's pace) how long to go."""
        elapsed = self.clock() - self._started
        text = f"  {self.label}: {self.done}/{self.total} done, acc {self.accuracy}"
        if self.new:
            text += f", {self.new_tokens / self.new:.0f} tok/problem, {_duration(elapsed)} elapsed"
            left = self.total - self.done
            if left > 0:
                text += f", about {_duration(elapsed / self.new * left)} to go"
        return text


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 90 else f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"
