"""A task: problems, the prompt format, answer extraction, and a grader that alone holds the key."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models.base import Message


class TaskError(ValueError):
    """Bad task input: unknown name, missing file, malformed line. Its message is shown as is."""


@dataclass(frozen=True)
class Problem:
    """What a strategy may see of a problem. Never the answer key."""

    id: str
    question: str
    info: dict[str, Any] = field(default_factory=dict)  # e.g. a code task's entry point and visible examples


@dataclass(frozen=True)
class Grade:
    correct: bool
    detail: str = ""


class Task(ABC):
    """Subclasses load problems and keys, and define prompt, extraction and grading.

    ``kind`` is "math" (answers compared as values) or "code" (answers are programs).
    """

    name: str = ""
    kind: str = "math"

    def __init__(self) -> None:
        self._problems: list[Problem] = []
        self._keys: dict[str, Any] = {}

    # -- loading -----------------------------------------------------------------------------------
    def add(self, problem: Problem, key: Any) -> None:
        self._problems.append(problem)
        self._keys[problem.id] = key

    def problems(self, limit: int | None = None, offset: int = 0, ids: Sequence[str] | None = None) -> list[Problem]:
        """A slice in the task's fixed order, so runs over the same slice compare."""
        if ids:
            wanted = set(ids)
            unknown = wanted - set(self._keys)
            if unknown:
                raise TaskError(f"{self.name}: no problem with id {', '.join(sorted(unknown)[:5])}")
            return [p for p in self._problems if p.id in wanted]
        chosen = self._problems[offset:]
        return chosen[:limit] if limit is not None else chosen

    def __len__(self) -> int:
        return len(self._problems)

    # -- format --------------------------------------------------------------------------------------
    @abstractmethod
    def messages(self, problem: Problem) -> list[Message]:
        """The prompt a plain solver gets."""

    @abstractmethod
    def extract(self, text: str, problem: Problem) -> str | None:
        """The final answer in a model's text, or None if it gave none."""

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two extracted answers count as one for voting."""
        return a.strip() == b.strip()

    def answer_key(self, a: str) -> str:
        """A canonical form of an answer, so votes can be counted by dictionary."""
        return a.strip()

    # -- grading (the key stays here) ------------------------------------------------------------------
    @abstractmethod
    def grade(self, problem: Problem, answer: str | None, text: str) -> Grade:
        """Grade a final answer against the key."""

    def reference(self, problem: Problem) -> Any:
        """The key itself: only for the oracle verifier and for reports after grading."""
        return self._keys[problem.id]


class TaskView:
    """What a strategy gets of a task: prompt format and extraction, no key, no grader."""

    def __init__(self, task: Task) -> None:
        self._task = task
        self.name = task.name
        self.kind = task.kind

    def messages(self, problem: Problem) -> list[Message]:
        return self._task.messages(problem)

    def extract(self, text: str, problem: Problem) -> str | None:
        return self._task.extract(text, problem)

    def same_answer(self, a: str, b: str) -> bool:
        return self._task.same_answer(a, b)

    def answer_key(self, a: str) -> str:
        return self._task.answer_key(a)


def read_jsonl(path: str | Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record); a malformed line stops with its file and line number named."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise TaskError(f"{path}:{number}: expected a JSON object")
            missing = [name for name in required if name not in record]
            if missing:
                raise TaskError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
            yield number, record
