"""Every solution a stored run produced, re-graded by the task's grader, with where it came from.

A run's result keeps only the final answer's grade. Training data needs a label on *every*
solution the run sampled: each output of a call made with the task's plain prompt (a draft),
each candidate a refinement strategy recorded in a ``round`` note (see the trace convention in
``redraft.strategies.moves``), and the final text. The task is rebuilt from the run's stored
``task``/``task_options``, so labels come from the same grader that graded the run.

Choices the sources leave open, stated here:
- an attempt's round: a call belongs to the round of the next ``round`` note after it (calls of
  round k are made before ``note_round(k)``); traces with no round notes are all round 0; calls
  after the last round note (e.g. a final rerank) get round None.
- the same text seen twice in one problem's trace (a draft that is also a round-0 candidate) is
  one attempt, with the provenance of its first appearance (the call, which knows its sampling
  temperature and finish reason).
- "the greedy draft" of a problem is the first output of a temperature-0 call with the plain
  prompt, in the first run (in the order given) that has one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from ..store import ProblemRecord, RunInfo, Store
from ..tasks import Problem, Task, load_task


def normalized(text: str) -> str:
    """Whitespace-insensitive form of a solution, for de-duplication."""
    return " ".join(text.split())


def task_key(run: RunInfo) -> str:
    """Runs with the same key share problems (same task, same options, so the same ids mean the same problems)."""
    return f"{run.task}:{json.dumps(run.task_options, sort_keys=True)}"


@dataclass(frozen=True)
class Attempt:
    """One solution text, graded, with its provenance."""

    text: str
    answer: str | None
    correct: bool
    grade: str
    source: str  # "draft" (plain prompt), a round candidate's origin ("refine", "global", ...), or "final"
    round: int | None
    call: int | None  # index of the trace event that produced it
    sample: int | None  # index among that call's outputs
    finish: str | None  # "stop" | "length" | None when unknown
    temperature: float | None

    @property
    def truncated(self) -> bool:
        return self.finish == "length"


@dataclass
class ProblemTrace:
    """One problem of one run: the problem, its grader's task, the stored record and its graded attempts."""

    run: RunInfo
    task: Task
    problem: Problem
    record: ProblemRecord
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (task_key(self.run), self.problem.id)

    @property
    def plain_prompt(self) -> list[dict[str, str]]:
        return self.task.messages(self.problem)

    def grade(self, text: str) -> tuple[str | None, bool, str]:
        answer = self.task.extract(text, self.problem)
        verdict = self.task.grade(self.problem, answer, text)
        return answer, verdict.correct, verdict.detail

    def provenance(self, **extra: Any) -> dict[str, Any]:
        """Where a record came from. Options are JSON strings so every record has the same schema."""
        run = self.run
        return {
            "run": run.id, "problem": self.problem.id, "task": run.task,
            "task_options": json.dumps(run.task_options, sort_keys=True), "model": run.model,
            "model_identity": run.model_identity, "strategy": run.strategy,
            "strategy_options": json.dumps(run.strategy_options, sort_keys=True),
            "uses_oracle": run.uses_oracle, **extra,
        }

    def attempt_provenance(self, attempt: Attempt) -> dict[str, Any]:
        return self.provenance(round=attempt.round, source=attempt.source, call=attempt.call, sample=attempt.sample,
                               temperature=attempt.temperature, grade=attempt.grade)


def call_rounds(trace: Sequence[dict[str, Any]]) -> list[int | None]:
    """For each trace event, the round it belongs to (see the module docstring)."""
    rounds: list[int | None] = [None] * len(trace)
    has_rounds = any(event.get("type") == "round" for event in trace)
    upcoming: int | None = None if has_rounds else 0
    for index in range(len(trace) - 1, -1, -1):
        event = trace[index]
        if event.get("type") == "round" and isinstance(event.get("round"), int):
            upcoming = event["round"]
        rounds[index] = upcoming
    return rounds


def collect_attempts(item: ProblemTrace) -> list[Attempt]:
    """Every distinct solution text in one problem's trace, graded (see the module docstring)."""
    trace = item.record.trace
    plain = item.plain_prompt
    rounds = call_rounds(trace)
    finish_of: dict[str, str] = {}
    for event in trace:
        if event.get("type") == "call":
            for text, finish in zip(event.get("outputs", []), event.get("finish", []), strict=False):
                finish_of.setdefault(normalized(text), finish)
    seen: set[str] = set()
    attempts: list[Attempt] = []

    def add(text: str, source: str, round_: int | None, call: int | None, sample: int | None,
            finish: str | None, temperature: float | None) -> None:
        key = normalized(text)
        if not key or key in seen:
            return
        seen.add(key)
        answer, correct, detail = item.grade(text)
        attempts.append(Attempt(text, answer, correct, detail, source, round_, call, sample, finish, temperature))

    for index, event in enumerate(trace):
        kind = event.get("type")
        if kind == "call" and event.get("messages") == plain:
            finishes = event.get("finish") or []
            for sample, text in enumerate(event.get("outputs", [])):
                finish = finishes[sample] if sample < len(finishes) else None
                temperature = event.get("temperature")
                add(text, "draft", rounds[index], index, sample, finish,
                    None if temperature is None else float(temperature))
        elif kind == "round":
            for candidate in event.get("candidates") or []:
                if isinstance(candidate, dict) and isinstance(candidate.get("text"), str):
                    text = candidate["text"]
                    round_ = candidate.get("round", event.get("round"))
                    # a local refinement's text is prefix + continuation: its call output is only the tail
                    finish = finish_of.get(normalized(text)) or _finish_of_tail(text, finish_of)
                    add(text, str(candidate.get("origin", "candidate")), round_, index, None, finish, None)
    final_round = next((e.get("round") for e in reversed(trace) if e.get("type") == "final"), None)
    if item.record.text:
        add(item.record.text, "final", final_round, None, None, finish_of.get(normalized(item.record.text)), None)
    return attempts


def _finish_of_tail(text: str, finish_of: dict[str, str]) -> str | None:
    flat = normalized(text)
    for output, finish in finish_of.items():
        if output and flat.endswith(output):
            return finish
    return None


def greedy_draft(item: ProblemTrace) -> Attempt | None:
    """The first output of a temperature-0 call with the plain prompt, or None."""
    for attempt in item.attempts:
        if attempt.source == "draft" and attempt.temperature == 0 and attempt.sample == 0:
            return attempt
    return None


class RunError(ValueError):
    """A run to export is missing or unusable; the message is shown as is."""


_TEST_NAME = re.compile(r"(?<![a-z])test(?![a-z])|math[-_ ]?500")


def known_test_split(task: str, task_options: dict[str, Any]) -> str | None:
    """Why a run's problems are a known evaluation (test) split, or None when they are not known to be.

    Training labels must come from a train split: a model fine-tuned on a benchmark's test problems
    is then "evaluated" on problems it was trained on, and every later number on that benchmark is
    contaminated. Read from what the task records of where its problems came from (``run.task`` and
    ``run.task_options["data"]``): gsm8k without a data file reads the hub's test split; humaneval has
    only a test split; mbpp from the hub reads split ``test`` unless ``hub:CONFIG:SPLIT`` names another;
    a data file whose name says ``test`` (or MATH-500, a subset of MATH's test split) is one. Generated
    tasks (arithmetic) and other files pass: keeping their held-out seeds or files apart is the caller's
    job (``--holdout-run``)."""
    data = task_options.get("data")
    if task == "humaneval":
        return "humaneval has only a test split"
    if task == "gsm8k" and not data:
        return "gsm8k without --data reads the hub's test split"
    if task == "mbpp" and (not data or str(data).startswith("hub")):
        parts = str(data or "hub").split(":")
        split = parts[2] if len(parts) > 2 and parts[2] else "test"
        return "mbpp from the hub reads its test split" if split == "test" else None
    if data and _TEST_NAME.search(PurePath(str(data)).name.lower()):
        return f"its data file {data} is a test split (by its name)"
    return None


def resolve_runs(store: Store, run_ids: Iterable[str]) -> list[RunInfo]:
    """The runs named by full or partial ids, each once, in the order given."""
    runs: dict[str, RunInfo] = {}
    for run_id in run_ids:
        try:
            run = store.get_run(run_id)
        except KeyError as exc:
            raise RunError(str(exc.args[0])) from None
        runs.setdefault(run.id, run)
    return list(runs.values())


def load_problem_traces(store: Store, run_ids: Iterable[str]) -> list[ProblemTrace]:
    """Every finished problem of the given runs (each run once), with its task rebuilt and its attempts graded.

    Problems whose strategy raised (``error`` set) still count: their calls happened."""
    tasks: dict[str, Task] = {}
    items: list[ProblemTrace] = []
    for run in resolve_runs(store, run_ids):
        key = task_key(run)
        if key not in tasks:
            tasks[key] = load_task(run.task, **run.task_options)
        task = tasks[key]
        records = store.results(run.id)
        if not records:
            continue
        by_id = {p.id: p for p in task.problems(ids=[r.problem_id for r in records])}
        for record in records:
            item = ProblemTrace(run, task, by_id[record.problem_id], record)
            item.attempts = collect_attempts(item)
            items.append(item)
    return items
