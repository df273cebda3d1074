"""One served request from parsed body to stored result: the strategy, its context, its trace events.

Progress reaches a listener through the trace itself: the context's trace is a list whose
``append`` also hands each event on, so every call, score, critique and decision a strategy
records is seen as it happens, with no change to any strategy. The context also announces each
call when it is asked for (``call_started``: role, label, n), and the scheduled model when the
call gets its units (``generation_started``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..accounting import Budget, BudgetExhausted
from ..context import Result, SolveContext
from ..models.base import Completion, Message, Model
from ..store import ProblemRecord, RunInfo
from ..strategies import Strategy, StrategyError, make_strategy, options_of
from ..tasks.base import Problem, TaskView
from .errors import bad_request
from .protocol import ChatRequest
from .records import ServedRuns
from .scheduler import ScheduledModel, Scheduler
from .task import ServedTask

Listener = Callable[[dict[str, Any]], None]


class ObservedTrace(list):
    """A trace list that tells ``listener`` of each event appended to it."""

    def __init__(self, listener: Listener | None) -> None:
        super().__init__()
        self._listener = listener

    def append(self, event: dict[str, Any]) -> None:
        super().append(event)
        if self._listener is not None:
            self._listener(progress_event(event))


@dataclass
class ObservedContext(SolveContext):
    """A SolveContext that also announces each model call as it is asked for (role, label, n), before
    it waits for the scheduler; the finished call arrives later as the trace's "call" event."""

    listener: Listener | None = field(default=None, repr=False)

    async def generate(self, messages: list[Message], **options: Any) -> list[Completion]:
        if self.listener is not None:
            self.listener({"type": "call_started", "role": options.get("role", "solver"),
                           "label": options.get("label", ""), "n": options.get("n", 1)})
        return await super().generate(messages, **options)


def progress_event(event: dict[str, Any]) -> dict[str, Any]:
    """What a client sees of a trace event: everything but the prompt it already knows."""
    return {key: value for key, value in event.items() if key != "messages"}


@dataclass
class Job:
    request: ChatRequest
    strategy: Strategy
    task: ServedTask
    problem: Problem
    run: RunInfo
    position: int
    backend: Model


@dataclass
class Outcome:
    result: Result
    ctx: SolveContext
    stopped: str | None  # why the method stopped early (budget), else None
    wall_seconds: float
    extension: dict[str, Any] = field(default_factory=dict)

    @property
    def finish_reason(self) -> str:
        return "length" if self.stopped else "stop"


class RefinementService:
    def __init__(self, models: dict[str, Model], scheduler: Scheduler, runs: ServedRuns, *,
                 cache: bool = True, seed: int = 0) -> None:
        self.models = models
        self.scheduler = scheduler
        self.runs = runs
        self.cache = cache
        self.seed = seed
        self.active = 0
        self.served = 0

    def prepare(self, request: ChatRequest) -> Job:
        """Build the strategy and register the request as a problem of its run (bad options: 400)."""
        try:
            strategy = make_strategy(request.name.method, request.options)
        except (StrategyError, TypeError, ValueError) as exc:
            raise bad_request(str(exc), "invalid_method_options", "model") from None
        if strategy.uses_oracle():
            raise bad_request("the oracle verifier needs an answer key, and a served question has none",
                              "invalid_method_options", "model")
        backend = self.models[request.name.backend]
        run = self.runs.run_for(method=strategy.name, options=options_of(strategy), backend=request.name.backend,
                                model_identity=backend.identity, task_format=request.task_format,
                                uses_oracle=False)
        problem_id, position = self.runs.new_problem(run)
        problem = Problem(id=problem_id, question=request.question, info={"history": request.history})
        return Job(request, strategy, ServedTask(request.task_format), problem, run, position, backend)

    async def solve(self, job: Job, listener: Listener | None = None) -> Outcome:
        """Run the method; store the result however it ends (done, stopped, failed or cancelled)."""
        started = time.perf_counter()
        models: dict[str, Model] = {"solver": ScheduledModel(job.backend, self.scheduler, listener)}
        ctx = ObservedContext(problem=job.problem, task=TaskView(job.task), models=models,
                              budget=Budget(job.request.budget), cache=self.runs.store if self.cache else None,
                              run_seed=self.seed, trace=ObservedTrace(listener), listener=listener)
        result, stopped, error = Result(None, ""), None, None
        self.active += 1
        try:
            result = await job.strategy.solve(ctx)
        except BudgetExhausted as exc:
            stopped = f"budget exhausted: {exc}"
            ctx.note("budget_exhausted", reason=str(exc))
        except asyncio.CancelledError:
            error = "cancelled: the client went away"
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.active -= 1
            self.served += 1
            wall = time.perf_counter() - started
            info = {**(result.info or {}), "served": self._served_info(job)}
            self.runs.save(ProblemRecord(
                job.run.id, job.problem.id, job.position, result.answer, False, "served question: no answer key",
                result.text, info, list(ctx.trace), ctx.cost, wall, error or stopped))
        return Outcome(result, ctx, stopped, wall, self._extension(job, result, ctx, stopped))

    def _served_info(self, job: Job) -> dict[str, Any]:
        return {"model": job.request.name.backend, "budget": job.request.budget, "task": job.request.task_format}

    def _extension(self, job: Job, result: Result, ctx: SolveContext, stopped: str | None) -> dict[str, Any]:
        return {
            "answer": result.answer, "method": job.strategy.name, "options": options_of(job.strategy),
            "backend": job.request.name.backend, "task": job.request.task_format, "budget": job.request.budget,
            "run": job.run.id, "problem": job.problem.id, "show": f"redraft show {job.run.id} {job.problem.id}",
            "stopped": stopped, "calls": ctx.cost.calls, "cost_by_role": ctx.cost.to_dict(), "info": result.info,
        }
