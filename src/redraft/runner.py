"""Run a strategy over a task's problems with bounded concurrency, storing each problem as it finishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .accounting import Budget, BudgetExhausted, Cost
from .context import Result, SolveContext
from .models.base import Model
from .stats import wilson_interval
from .store import ProblemRecord, RunInfo, Store
from .strategies.base import Strategy
from .tasks.base import Problem, Task, TaskView

Progress = Callable[[ProblemRecord], None]


@dataclass
class RunSummary:
    run_id: str
    problems: int
    correct: int
    cost: Cost = field(default_factory=Cost)
    wall_seconds: float = 0.0
    errors: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.problems if self.problems else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.problems)

    def per_problem(self, value: float) -> float:
        return value / self.problems if self.problems else 0.0


def summarize(store: Store, run: RunInfo) -> RunSummary:
    records = store.results(run.id)
    summary = RunSummary(run.id, len(records), sum(r.correct for r in records))
    for record in records:
        summary.cost.merge(record.cost)
        summary.wall_seconds += record.wall_seconds
        summary.errors += record.error is not None
    return summary


async def solve_one(strategy: Strategy, task: Task, problem: Problem, models: dict[str, Model], *,
                    budget_tokens: int | None = None, cache: Any = None, run_seed: int = 0,
                    uses_oracle: bool = False) -> tuple[Result, SolveContext, str | None]:
    """Solve one problem; the strategy's own failures to finish (budget) are recorded, not raised.

    ``uses_oracle`` hands the strategy the answer key as a grading function (ctx.oracle): only for
    runs labelled as oracle runs."""
    oracle = None
    if uses_oracle:
        def oracle(text: str) -> bool:
            return task.grade(problem, task.extract(text, problem), text).correct
    ctx = SolveContext(problem=problem, task=TaskView(task), models=models, budget=Budget(budget_tokens),
                       cache=cache, run_seed=run_seed, oracle=oracle)
    error = None
    try:
        result = await strategy.solve(ctx)
    except BudgetExhausted as exc:
        error = f"budget exhausted: {exc}"
        ctx.note("budget_exhausted", reason=str(exc))
        result = Result(None, "")
    return result, ctx, error


async def solve_and_grade(strategy: Strategy, task: Task, problem: Problem, position: int, run: RunInfo,
                          models: dict[str, Model], *, budget_tokens: int | None = None, run_seed: int = 0,
                          cache: Any = None) -> ProblemRecord:
    """Solve one problem of ``run`` and grade it: the record the store keeps."""
    started = time.perf_counter()
    result, ctx, error = await solve_one(strategy, task, problem, models, budget_tokens=budget_tokens, cache=cache,
                                         run_seed=run_seed, uses_oracle=run.uses_oracle)
    grade = await asyncio.to_thread(task.grade, problem, result.answer, result.text)
    return ProblemRecord(run.id, problem.id, position, result.answer, grade.correct, grade.detail, result.text,
                         result.info, ctx.trace, ctx.cost, time.perf_counter() - started, error)


async def execute_run(store: Store, run: RunInfo, task: Task, strategy: Strategy, models: dict[str, Model], *,
                      concurrency: int = 4, budget_tokens: int | None = None, run_seed: int = 0,
                      on_done: Progress | None = None) -> RunSummary:
    """Solve every problem of ``run`` not yet stored. Backend errors stop the run (resume later); a
    problem is stored only once fully solved and graded."""
    by_id = {p.id: p for p in task.problems(ids=run.problem_ids)}
    done = store.done_problem_ids(run.id)
    todo = [(position, by_id[pid]) for position, pid in enumerate(run.problem_ids) if pid not in done]
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(position: int, problem: Problem) -> None:
        async with slots:
            record = await solve_and_grade(strategy, task, problem, position, run, models, budget_tokens=budget_tokens,
                                           run_seed=run_seed, cache=store)
            store.save_result(record)
            if on_done is not None:
                on_done(record)

    jobs = [asyncio.create_task(one(position, problem)) for position, problem in todo]
    try:
        await asyncio.gather(*jobs)
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
    store.mark_finished(run.id)
    return summarize(store, run)
