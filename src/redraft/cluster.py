"""Solve a run's problems on a Ray cluster (``redraft run --ray``), for when one machine is too slow.

Ray does the cluster work (placement, transport, failure detection); redraft adds only this:

- one actor per worker, each opening its *own* model on the node it lands on (a llama.cpp model
  can't travel; the node loads it from its cache or the PyPI carriers, and for ``openai:`` models
  every worker talks to the same server). The task and strategy travel pickled, so a data file
  need not exist on the workers;
- the driver alone writes the SQLite store, each problem as it comes back, so ``--resume`` and
  "every problem stored exactly once" are the single-machine guarantees unchanged;
- every worker must report the same model identity (the GGUF sha256), or the run is refused;
- a worker that dies (node lost, out of memory) has its unfinished problems handed to the others;
  the run fails only when no worker is left, and then it resumes like any other run.

The call cache lives in the driver's database and is not consulted by workers: identical
temperature-0 calls are recomputed on the cluster (resume still skips every stored problem).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models.base import Model, ModelError
from .runner import Progress, RunSummary, solve_and_grade, summarize
from .store import RunInfo, Store
from .strategies.base import Strategy
from .tasks.base import Problem, Task

ModelOpener = Callable[[], Model]


class ClusterError(Exception):
    """Ray is missing, unreachable, or lost every worker."""


def connect(address: str) -> Any:
    """Join the Ray cluster at ``address`` ("auto": the one `ray start` made on this machine), or
    start a private one on this machine with ``address="local"``."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterError("--ray needs Ray: pip install 'redraft[ray]'") from exc
    if not ray.is_initialized():
        # Ray runs its workers at nice 15; a private instance exists only to run models, which then
        # lost every contest for the CPU (10x slower beside one other busy process, measured)
        local = {"address": None, "_system_config": {"worker_niceness": 0}} if address == "local" else {}
        try:
            ray.init(**(local or {"address": address}), include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"cannot reach a Ray cluster at {address!r}: {exc}") from exc
    return ray


class _Worker:
    """A Ray actor: one model, solving and grading the problems the driver hands it, for any run."""

    def __init__(self, open_model: ModelOpener, cpus: float) -> None:
        # llama.cpp gets the cores Ray reserved for this worker, not every core of a shared node
        os.environ.setdefault("REDRAFT_THREADS", str(max(1, round(cpus))))
        self.model = open_model()
        self.parts: tuple[str, Task, Strategy, dict[str, Problem]] | None = None

    def identity(self) -> str:
        return self.model.identity

    async def solve(self, parts: list[Any], run: RunInfo, position: int, problem_id: str,
                    budget_tokens: int | None, run_seed: int) -> Any:
        # ``parts`` wraps the ref of the run's (task, strategy) in a list, so Ray hands over the ref
        # and the worker fetches and unpickles it once per run rather than once per problem
        if self.parts is None or self.parts[0] != run.id:
            task, strategy = await parts[0]
            self.parts = (run.id, task, strategy, {p.id: p for p in task.problems()})
        _, task, strategy, problems = self.parts
        return await solve_and_grade(strategy, task, problems[problem_id], position, run, {"solver": self.model},
                                     budget_tokens=budget_tokens, run_seed=run_seed)

    async def close(self) -> None:
        await self.model.close()


@dataclass
class RayPool:
    """Workers on a Ray cluster, each holding the model ``open_model`` opens on its node; it stands
    where a Model would (``identity``, ``close``) and runs whole runs with ``execute``.
    ``concurrency`` is problems in flight per worker."""

    open_model: ModelOpener
    workers: int = 0  # 0: one per alive node
    cpus_per_worker: float = 1.0
    concurrency: int = 1
    address: str = "auto"

    def __post_init__(self) -> None:
        self.ray = connect(self.address)
        if self.workers <= 0:
            self.workers = max(1, sum(node["Alive"] for node in self.ray.nodes()))
        # SPREAD: one model per node before doubling up, since each worker holds a full copy
        actor = self.ray.remote(num_cpus=self.cpus_per_worker)(_Worker).options(scheduling_strategy="SPREAD")
        self.actors = [actor.remote(self.open_model, self.cpus_per_worker) for _ in range(self.workers)]
        try:
            self.identity = self._agreed_identity()
        except ModelError:
            self._kill()
            raise

    def _agreed_identity(self) -> str:
        """The model identity every worker reports; a worker that can't open its model, or a node
        with different weights, refuses the pool."""
        identities = []
        for actor in self.actors:
            try:
                identities.append(self.ray.get(actor.identity.remote()))
            except self.ray.exceptions.RayError as exc:
                raise ModelError(f"a Ray worker could not open the model: {_cause(exc)}") from exc
        if len(set(identities)) > 1:
            raise ModelError(f"Ray workers disagree on the model: {sorted(set(identities))}")
        return identities[0]

    async def execute(self, store: Store, run: RunInfo, task: Task, strategy: Strategy, *,
                      budget_tokens: int | None = None, run_seed: int = 0,
                      on_done: Progress | None = None) -> RunSummary:
        """Solve every problem of ``run`` not yet stored, like ``runner.execute_run`` on one machine."""
        parts = [self.ray.put((task, strategy))]
        done = store.done_problem_ids(run.id)
        queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        for position, problem_id in enumerate(run.problem_ids):
            if problem_id not in done:
                queue.put_nowait((position, problem_id))
        alive = dict(enumerate(self.actors))
        deaths: list[str] = []

        async def feed(index: int) -> None:
            while index in alive and not queue.empty():
                position, problem_id = queue.get_nowait()
                try:
                    record = await alive[index].solve.remote(parts, run, position, problem_id, budget_tokens,
                                                             run_seed)
                except self.ray.exceptions.RayActorError as exc:
                    queue.put_nowait((position, problem_id))  # a live worker takes it
                    if alive.pop(index, None) is not None:
                        deaths.append(_cause(exc))
                    return
                except self.ray.exceptions.RayTaskError as exc:  # the backend failed: stop, resume later
                    cause = exc.cause if isinstance(exc.cause, Exception) else exc
                    raise (cause if isinstance(cause, ModelError) else ClusterError(_cause(exc))) from exc
                store.save_result(record)
                if on_done is not None:
                    on_done(record)

        # rounds, because a problem handed back by a dying worker may arrive after the others drained
        while alive and not queue.empty():
            feeders = [asyncio.create_task(feed(index)) for index in alive for _ in range(max(1, self.concurrency))]
            try:
                await asyncio.gather(*feeders)
            finally:
                for feeder in feeders:
                    feeder.cancel()
        self.actors = list(alive.values())
        if not queue.empty():
            raise ClusterError(f"every Ray worker died (last: {deaths[-1]}); {queue.qsize()} problems left: "
                               "finished ones are stored, resume with --resume")
        store.mark_finished(run.id)
        return summarize(store, run)

    async def close(self) -> None:
        for actor in self.actors:
            try:
                await actor.close.remote()
            except self.ray.exceptions.RayError:
                pass  # already dead
        self._kill()

    def _kill(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def _cause(exc: BaseException) -> str:
    """The first line of what went wrong on the worker, without Ray's wrapping."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return text[-1] if text else type(cause).__name__
