"""Served requests stored like runs, so ``redraft runs``, ``redraft show`` and distillation read them.

One stored run per server session and configuration (method with its full options, backend,
answer format); each request is one problem of it, with id ``req-<12 hex>``. Grouping by
configuration keeps a day of traffic on one method one run to report on, and a new session
starts new runs, so a run never mixes two servers' settings. The request's id is added to the
run's problem list when it starts, and its result (trace, cost, answer; ``correct`` is always
false: nobody holds a key) is stored when it ends, cancelled and failed requests included, with
the reason in ``error``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..store import ProblemRecord, RunInfo, Store


class ServedRuns:
    def __init__(self, store: Store, session: str, settings: dict[str, Any]) -> None:
        self.store = store
        self.session = session
        self.settings = settings
        self._runs: dict[str, RunInfo] = {}
        self._next_position: dict[str, int] = {}

    def run_for(self, *, method: str, options: dict[str, Any], backend: str, model_identity: str,
                task_format: str, uses_oracle: bool) -> RunInfo:
        key = json.dumps([method, options, backend, task_format], sort_keys=True, default=str)
        run = self._runs.get(key)
        if run is None:
            run = self.store.create_run(
                task=f"served-{task_format}", task_options={"format": task_format}, strategy=method,
                strategy_options=options, model=backend, model_identity=model_identity,
                settings={**self.settings, "served": True, "session": self.session}, problem_ids=[],
                uses_oracle=uses_oracle)
            self._runs[key] = run
            self._next_position[run.id] = 0
        return run

    def new_problem(self, run: RunInfo) -> tuple[str, int]:
        """A fresh problem id in ``run`` and its position; listed in the run at once."""
        problem_id = f"req-{uuid.uuid4().hex[:12]}"
        position = self._next_position[run.id]
        self._next_position[run.id] = position + 1
        # appended inside SQLite: the list is never read back and rewritten from here
        self.store.db.execute("UPDATE runs SET problem_ids = json_insert(problem_ids, '$[#]', ?) WHERE id = ?",
                              (problem_id, run.id))
        return problem_id, position

    def save(self, record: ProblemRecord) -> None:
        self.store.save_result(record)

    def run_ids(self) -> list[str]:
        return [run.id for run in self._runs.values()]
