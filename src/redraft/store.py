"""Runs, finished problems and the call cache, in one embedded SQLite file.

Each finished problem is committed on its own, at once, so a run killed at any point (kill -9
included) loses at most the problems in flight; ``--resume`` skips what is stored. The
primary key (run, problem) makes "done exactly once" a property of the file, not of the code.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .accounting import Cost
from .models.base import Completion

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    task TEXT NOT NULL,
    task_options TEXT NOT NULL,
    strategy TEXT NOT NULL,
    strategy_options TEXT NOT NULL,
    model TEXT NOT NULL,
    model_identity TEXT NOT NULL,
    settings TEXT NOT NULL,
    problem_ids TEXT NOT NULL,
    uses_oracle INTEGER NOT NULL DEFAULT 0,
    finished REAL
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id),
    problem_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    answer TEXT,
    correct INTEGER NOT NULL,
    grade_detail TEXT NOT NULL,
    text TEXT NOT NULL,
    info TEXT NOT NULL,
    trace TEXT NOT NULL,
    cost TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    seconds REAL NOT NULL,
    wall_seconds REAL NOT NULL,
    error TEXT,
    finished REAL NOT NULL,
    PRIMARY KEY (run_id, problem_id)
);
CREATE TABLE IF NOT EXISTS call_cache (
    key TEXT PRIMARY KEY,
    completions TEXT NOT NULL,
    created REAL NOT NULL
);
"""


def default_db_path() -> Path:
    return Path(os.environ.get("REDRAFT_DB", "redraft.db"))


@dataclass
class RunInfo:
    id: str
    created: float
    task: str
    task_options: dict[str, Any]
    strategy: str
    strategy_options: dict[str, Any]
    model: str
    model_identity: str
    settings: dict[str, Any]
    problem_ids: list[str]
    uses_oracle: bool
    finished: float | None

    @property
    def config(self) -> dict[str, Any]:
        """What makes two runs the same experiment (for ``--resume`` without an id)."""
        return {"task": self.task, "task_options": self.task_options, "strategy": self.strategy,
                "strategy_options": self.strategy_options, "model_identity": self.model_identity,
                "settings": self.settings, "problem_ids": self.problem_ids}


@dataclass
class ProblemRecord:
    run_id: str
    problem_id: str
    position: int
    answer: str | None
    correct: bool
    grade_detail: str
    text: str
    info: dict[str, Any]
    trace: list[dict[str, Any]]
    cost: Cost
    wall_seconds: float
    error: str | None


class AmbiguousRunError(ValueError):
    """A partial run id that matches several runs (a ValueError, so the CLI shows it as one line)."""


class Store:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a killed process
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- runs ---------------------------------------------------------------------------------------
    def create_run(self, *, task: str, task_options: dict[str, Any], strategy: str,
                   strategy_options: dict[str, Any], model: str, model_identity: str,
                   settings: dict[str, Any], problem_ids: list[str], uses_oracle: bool) -> RunInfo:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.db.execute(
            "INSERT INTO runs (id, created, task, task_options, strategy, strategy_options, model,"
            " model_identity, settings, problem_ids, uses_oracle) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, time.time(), task, _dump(task_options), strategy, _dump(strategy_options), model,
             model_identity, _dump(settings), _dump(problem_ids), int(uses_oracle)),
        )
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunInfo:
        """The run with this id, else the one run whose id contains it (KeyError if none, AmbiguousRunError
        listing the candidates if several)."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            rows = self.db.execute("SELECT * FROM runs WHERE instr(id, ?) > 0 ORDER BY created DESC",
                                   (run_id,)).fetchall()
            if len(rows) > 1:
                raise AmbiguousRunError(f"{run_id!r} matches {len(rows)} runs in {self.path}: "
                                        f"{', '.join(r['id'] for r in rows)}; give more of the id")
            row = rows[0] if rows else None
        if row is None:
            raise KeyError(f"no run {run_id!r} in {self.path}")
        return _run_from_row(row)

    def list_runs(self) -> list[RunInfo]:
        return [_run_from_row(row) for row in self.db.execute("SELECT * FROM runs ORDER BY created")]

    def find_latest(self, config: dict[str, Any], option_defaults: dict[str, Any] | None = None) -> RunInfo | None:
        """The newest run of exactly this configuration, finished or not.

        ``option_defaults`` (the strategy's default options) fill options a stored run lacks, so a run
        made before an option was added still resumes as the same experiment."""
        for run in reversed(self.list_runs()):
            stored = run.config
            if option_defaults:
                stored["strategy_options"] = {**option_defaults, **stored["strategy_options"]}
            if stored == config:
                return run
        return None

    def delete_run(self, run_id: str) -> int:
        """Remove the run with exactly this id and its results (not the call cache, so a re-run of the
        same configuration is served from it); returns how many results went. KeyError if no such run."""
        if self.db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise KeyError(f"no run {run_id!r} in {self.path} (give the whole id to delete a run)")
        with self.db:  # one transaction: the run and its results go together or not at all
            self.db.execute("BEGIN")
            deleted = self.db.execute("DELETE FROM results WHERE run_id = ?", (run_id,)).rowcount
            self.db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        return deleted

    def mark_finished(self, run_id: str) -> None:
        self.db.execute("UPDATE runs SET finished = ? WHERE id = ?", (time.time(), run_id))

    # -- results ------------------------------------------------------------------------------------
    def done_problem_ids(self, run_id: str) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT problem_id FROM results WHERE run_id = ?", (run_id,))}

    def save_result(self, record: ProblemRecord) -> None:
        cost = record.cost
        self.db.execute(
            "INSERT INTO results (run_id, problem_id, position, answer, correct, grade_detail, text, info, trace,"
            " cost, prompt_tokens, completion_tokens, calls, seconds, wall_seconds, error, finished)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (record.run_id, record.problem_id, record.position, record.answer, int(record.correct),
             record.grade_detail, record.text, _dump(record.info), _dump(record.trace), _dump(cost.to_dict()),
             cost.prompt_tokens, cost.completion_tokens, cost.calls, cost.seconds, record.wall_seconds,
             record.error, time.time()),
        )

    def results(self, run_id: str) -> list[ProblemRecord]:
        rows = self.db.execute("SELECT * FROM results WHERE run_id = ? ORDER BY position", (run_id,))
        return [
            ProblemRecord(row["run_id"], row["problem_id"], row["position"], row["answer"], bool(row["correct"]),
                          row["grade_detail"], row["text"], json.loads(row["info"]), json.loads(row["trace"]),
                          Cost.from_dict(json.loads(row["cost"])), row["wall_seconds"], row["error"])
            for row in rows
        ]

    # -- the call cache (implements context.CallCache) ----------------------------------------------
    def get(self, key: str) -> list[Completion] | None:
        row = self.db.execute("SELECT completions FROM call_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return [Completion.from_dict(item) for item in json.loads(row[0])]

    def put(self, key: str, completions: list[Completion]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO call_cache (key, completions, created) VALUES (?,?,?)",
            (key, json.dumps([c.to_dict() for c in completions]), time.time()),
        )


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _run_from_row(row: sqlite3.Row) -> RunInfo:
    return RunInfo(
        id=row["id"], created=row["created"], task=row["task"], task_options=json.loads(row["task_options"]),
        strategy=row["strategy"], strategy_options=json.loads(row["strategy_options"]), model=row["model"],
        model_identity=row["model_identity"], settings=json.loads(row["settings"]),
        problem_ids=json.loads(row["problem_ids"]), uses_oracle=bool(row["uses_oracle"]), finished=row["finished"],
    )
