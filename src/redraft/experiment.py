"""Experiments: a grid of tasks × models × budgets × strategies (× verifier choices) from one YAML file.

Every cell is an ordinary run, executed by ``redraft.runner.execute_run`` against one SQLite store,
so model calls repeated across the grid are served from the call cache, and a killed experiment
picks up where it stopped: each cell reuses the newest run of exactly its configuration
(``Store.find_latest``) and solves only the problems not yet stored.

Matched-compute baselines. A refinement strategy (any strategy other than ``cot``,
``self_consistency`` and ``best_of_n``, unless the file says otherwise) gets two baselines on the
same problems, model and budget, at the same completion tokens per problem. ``T_ref`` is the
refinement run's mean completion tokens per problem, all roles together (solver, reviewer,
refiner, judge). A *pilot* run, ``best_of_n`` with ``n = 1`` (one draft sampled exactly as the
baselines sample, plus one verifier score), measures the per-sample costs:

- ``self_consistency`` gets ``n = max(1, round(T_ref / T_draft))``, ``T_draft`` being the pilot's
  mean solver-role completion tokens per problem (one sampled draft at the baselines' temperature;
  a greedy draft's length would be a worse guess of a sampled one's);
- ``best_of_n`` gets ``n = max(1, round(T_ref / T_candidate))``, ``T_candidate`` being the pilot's
  mean completion tokens per problem, draft and score together, so the verifier's own tokens are
  paid for out of the same budget. Its verifier is the refinement strategy's ``verifier`` (or
  ``outcome_verifier``) option when it has one, else the file's ``baseline_verifier`` (default
  ``rating``); an oracle verifier makes the baseline (and the pilot) an oracle run, marked as such.

``baseline_options`` (``max_tokens``, ``temperature``) apply to the pilot and both baselines, so
they can sample like the refinement strategy does (e.g. the same ``max_tokens``).

So the refinement run is executed first and the baselines' ``n`` are derived from what it actually
spent; the chosen ``n`` and the numbers behind it are stored with the experiment and shown in the
report, beside each run's measured tokens, so how close the match came is visible.

The experiment itself lives in two additive tables of the run database (created here, not in
store.py): ``experiments`` (name, spec) and ``experiment_runs`` (which run plays which part).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .store import RunInfo, Store

EXPERIMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    spec TEXT NOT NULL,
    source TEXT
);
CREATE TABLE IF NOT EXISTS experiment_runs (
    experiment_id TEXT NOT NULL REFERENCES experiments(id),
    run_id TEXT NOT NULL REFERENCES runs(id),
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    matched_to TEXT,
    detail TEXT NOT NULL,
    added REAL NOT NULL,
    PRIMARY KEY (experiment_id, run_id)
);
"""

# Strategies that are baselines themselves: they get no matched baselines unless asked.
BASELINE_STRATEGIES = frozenset({"cot", "self_consistency", "best_of_n"})
CELL_KINDS = ("cell", "pilot", "matched_self_consistency", "matched_best_of_n")


class ExperimentError(ValueError):
    """A malformed experiment file or an unknown experiment; the message is shown as is."""


# -- the spec ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskSpec:
    name: str
    options: dict[str, Any]  # as a run stores them (same shape as `redraft run` writes)
    limit: int | None = None
    offset: int = 0
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StrategySpec:
    name: str
    options: dict[str, Any]
    matched_baselines: bool
    verifiers: tuple[str, ...] | None  # None: keep the strategy's own verifier option


@dataclass
class ExperimentSpec:
    name: str
    tasks: list[TaskSpec]
    models: list[str]
    budgets: list[int | None]
    strategies: list[StrategySpec]
    baseline: str = "cot"
    baseline_verifier: str = "rating"
    baseline_options: dict[str, Any] = field(default_factory=dict)  # e.g. max_tokens for pilot and baselines
    seed: int = 0
    concurrency: int = 4
    parallel: int = 8
    db: str | None = None
    source: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


_TOP_KEYS = {"name", "db", "tasks", "models", "budgets", "strategies", "verifiers", "matched_baselines",
             "baseline", "baseline_verifier", "baseline_options", "seed", "concurrency", "parallel", "limit",
             "offset", "description"}
_TASK_KEYS = {"name", "data", "limit", "offset", "ids", "steps", "count", "seed"}
_STRATEGY_KEYS = {"name", "options", "sweep", "matched_baselines", "verifiers"}


def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, (str, int, dict)):
        return [value]
    raise ExperimentError(f"{what} should be a list, not {type(value).__name__}")


def _task_options(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The options a run records for this task, in the same shape `redraft run` writes them, so an
    experiment adopts (and resumes) runs made by hand with the same settings."""
    options: dict[str, Any] = {}
    if entry.get("data"):
        options["data"] = str(entry["data"])
    if name == "arithmetic":
        options.update(steps=int(entry.get("steps", 3)), count=int(entry.get("count", 200)))
        if "seed" in entry:
            options["seed"] = int(entry["seed"])
    return options


def parse_spec(data: Any, *, name: str = "experiment", base_dir: Path | None = None,
               source: str | None = None) -> ExperimentSpec:
    """Validate a parsed YAML document into a spec; every problem gets one clear message."""
    from .strategies import STRATEGIES, load_builtins
    from .tasks import TASKS

    if not isinstance(data, dict):
        raise ExperimentError("an experiment file is a mapping (tasks:, models:, strategies:, ...)")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ExperimentError(f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_TOP_KEYS))}")
    default_limit, default_offset = data.get("limit"), int(data.get("offset", 0) or 0)

    tasks = []
    for entry in _as_list(data.get("tasks"), "tasks"):
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "name" not in entry:
            raise ExperimentError(f"each task is a name or a mapping with name:, not {entry!r}")
        bad = set(entry) - _TASK_KEYS
        if bad:
            raise ExperimentError(f"task {entry['name']}: unknown key(s) {', '.join(sorted(bad))}")
        if entry["name"] not in TASKS:
            raise ExperimentError(f"unknown task {entry['name']!r}: choose one of {', '.join(TASKS)}")
        if entry.get("data") and base_dir is not None and not Path(entry["data"]).is_absolute():
            entry = {**entry, "data": str((base_dir / entry["data"]).resolve())}
        limit = entry.get("limit", default_limit)
        ids = entry.get("ids")
        tasks.append(TaskSpec(entry["name"], _task_options(entry["name"], entry),
                              int(limit) if limit is not None else None, int(entry.get("offset", default_offset)),
                              tuple(str(i) for i in _as_list(ids, "ids")) if ids else None))
    if not tasks:
        raise ExperimentError("the experiment needs at least one task")

    models = [str(m) for m in _as_list(data.get("models"), "models")]
    if not models:
        raise ExperimentError("the experiment needs at least one model")
    budgets_raw = _as_list(data.get("budgets"), "budgets") or [None]
    try:
        budgets = [None if b in (None, "none", "null") else int(b) for b in budgets_raw]
    except (TypeError, ValueError):
        raise ExperimentError(f"budgets are completion tokens per problem (integers or null), not {budgets_raw!r}") \
            from None

    load_builtins()
    global_verifiers = data.get("verifiers")
    matched_default = bool(data.get("matched_baselines", True))
    strategies = []
    for entry in _as_list(data.get("strategies"), "strategies"):
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "name" not in entry:
            raise ExperimentError(f"each strategy is a name or a mapping with name:, not {entry!r}")
        bad = set(entry) - _STRATEGY_KEYS
        if bad:
            raise ExperimentError(f"strategy {entry['name']}: unknown key(s) {', '.join(sorted(bad))}")
        if entry["name"] not in STRATEGIES:
            raise ExperimentError(f"unknown strategy {entry['name']!r}: choose one of {', '.join(sorted(STRATEGIES))}")
        options = dict(entry.get("options") or {})
        sweep = entry.get("sweep") or {}
        if not isinstance(options, dict) or not isinstance(sweep, dict):
            raise ExperimentError(f"strategy {entry['name']}: options: and sweep: are mappings")
        has_verifier = "verifier" in {f.name for f in dataclasses.fields(STRATEGIES[entry["name"]].Options)}
        verifiers = entry.get("verifiers", global_verifiers if "verifier" not in options else None)
        verifier_choices = tuple(str(v) for v in _as_list(verifiers, "verifiers")) if has_verifier else ()
        matched = bool(entry.get("matched_baselines", matched_default and entry["name"] not in BASELINE_STRATEGIES))
        sweep_keys = sorted(sweep)
        for values in itertools.product(*(_as_list(sweep[k], f"sweep {k}") for k in sweep_keys)):
            cell_options = {**options, **dict(zip(sweep_keys, values, strict=True))}
            strategies.append(StrategySpec(entry["name"], cell_options, matched, verifier_choices or None))
    if not strategies:
        raise ExperimentError("the experiment needs at least one strategy")

    baseline_options = data.get("baseline_options") or {}
    if not isinstance(baseline_options, dict) or set(baseline_options) - {"max_tokens", "temperature"}:
        raise ExperimentError("baseline_options takes max_tokens and temperature (shared by SC and best-of-N)")
    db = data.get("db")
    if db is not None and base_dir is not None and not Path(db).is_absolute():
        db = str(base_dir / db)
    return ExperimentSpec(
        name=str(data.get("name") or name), tasks=tasks, models=models, budgets=budgets, strategies=strategies,
        baseline=str(data.get("baseline", "cot")), baseline_verifier=str(data.get("baseline_verifier", "rating")),
        baseline_options=dict(baseline_options),
        seed=int(data.get("seed", 0)), concurrency=int(data.get("concurrency", 4)),
        parallel=int(data.get("parallel", 8)), db=db, source=source, raw=data)


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read an experiment file; relative ``db:`` and task ``data:`` paths are relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"experiment file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{path}: not valid YAML ({exc})") from None
    return parse_spec(data, name=path.stem, base_dir=path.parent, source=str(path))


# -- cells -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One run to make: what it is, and which part it plays in the experiment."""

    task: TaskSpec
    model: str
    budget: int | None
    strategy: str
    options: dict[str, Any]
    kind: str = "cell"
    matched: bool = False
    matched_to: str | None = None  # the refinement run a baseline is matched to
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        text = f"{self.strategy}({shown})" if shown else self.strategy
        if self.budget is not None:
            text += f" @{self.budget}tok"
        return text


def expand_cells(spec: ExperimentSpec, task: TaskSpec, model: str, budget: int | None) -> list[Cell]:
    """The grid's own cells for one (task, model, budget), verifier choices expanded."""
    cells = []
    for strategy in spec.strategies:
        for verifier in strategy.verifiers or (None,):
            options = dict(strategy.options)
            if verifier is not None:
                options["verifier"] = verifier
            cells.append(Cell(task, model, budget, strategy.name, options, matched=strategy.matched_baselines))
    return cells


def plan(spec: ExperimentSpec) -> list[Cell]:
    """Every grid cell, without the matched baselines (their n depends on results)."""
    return [cell for model in spec.models for task in spec.tasks for budget in spec.budgets
            for cell in expand_cells(spec, task, model, budget)]


def matched_n(target_tokens: float, unit_tokens: float) -> int:
    """Samples whose expected cost is nearest the target: max(1, round(target / per-sample cost))."""
    if unit_tokens <= 0:
        return 1
    return max(1, round(target_tokens / unit_tokens))


# -- the experiment tables ------------------------------------------------------------------------------------

def ensure_tables(store: Store) -> None:
    store.db.executescript(EXPERIMENT_SCHEMA)


def has_tables(store: Store) -> bool:
    row = store.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='experiment_runs'").fetchone()
    return row is not None


def save_experiment(store: Store, spec: ExperimentSpec) -> None:
    ensure_tables(store)
    now = time.time()
    store.db.execute(
        "INSERT INTO experiments (id, created, updated, spec, source) VALUES (?,?,?,?,?)"
        " ON CONFLICT(id) DO UPDATE SET updated=excluded.updated, spec=excluded.spec, source=excluded.source",
        (spec.name, now, now, json.dumps(spec.raw, sort_keys=True, default=str), spec.source))


def link_run(store: Store, experiment: str, run: RunInfo, cell: Cell) -> None:
    store.db.execute(
        "INSERT INTO experiment_runs (experiment_id, run_id, kind, label, matched_to, detail, added)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT(experiment_id, run_id) DO UPDATE SET"
        " kind=CASE WHEN experiment_runs.kind='cell' THEN 'cell' ELSE excluded.kind END,"
        " matched_to=COALESCE(experiment_runs.matched_to, excluded.matched_to),"
        " detail=CASE WHEN excluded.detail = '{}' THEN experiment_runs.detail ELSE excluded.detail END",
        (experiment, run.id, cell.kind, cell.label, cell.matched_to, json.dumps(cell.detail, default=str),
         time.time()))


@dataclass
class ExperimentRun:
    run: RunInfo
    kind: str
    label: str
    matched_to: str | None
    detail: dict[str, Any]


def list_experiments(store: Store) -> list[str]:
    if not has_tables(store):
        return []
    return [row[0] for row in store.db.execute("SELECT id FROM experiments ORDER BY created")]


def experiment_runs(store: Store, experiment: str) -> list[ExperimentRun]:
    if experiment not in list_experiments(store):
        raise ExperimentError(f"no experiment {experiment!r} in {store.path}")
    rows = store.db.execute("SELECT * FROM experiment_runs WHERE experiment_id = ? ORDER BY added", (experiment,))
    return [ExperimentRun(store.get_run(row["run_id"]), row["kind"], row["label"], row["matched_to"],
                          json.loads(row["detail"])) for row in rows]


def experiment_spec(store: Store, experiment: str) -> dict[str, Any]:
    row = store.db.execute("SELECT spec FROM experiments WHERE id = ?", (experiment,)).fetchone()
    return json.loads(row[0]) if row else {}


# -- running ---------------------------------------------------------------------------------------------------

Say = Callable[[str], None]


class ExperimentRunner:
    """Runs an experiment's cells in order, deriving the matched baselines from finished runs."""

    def __init__(self, spec: ExperimentSpec, store: Store, *, open_model: Callable[[str], Any] | None = None,
                 say: Say = print, on_problem: Callable[[Any], None] | None = None) -> None:
        self.spec = spec
        self.store = store
        self.open_model = open_model or self._load_model
        self.say = say
        self.on_problem = on_problem
        self._tasks: dict[str, Any] = {}

    def _load_model(self, name: str) -> Any:
        from .models import load_model

        return load_model(name, parallel=self.spec.parallel, say=self.say)

    def _task(self, spec: TaskSpec) -> Any:
        from .tasks import load_task

        key = json.dumps([spec.name, spec.options], sort_keys=True)
        if key not in self._tasks:
            self._tasks[key] = load_task(spec.name, **spec.options)
        return self._tasks[key]

    async def run(self) -> list[ExperimentRun]:
        save_experiment(self.store, self.spec)
        for model_name in self.spec.models:
            model = self.open_model(model_name)
            try:
                for task_spec in self.spec.tasks:
                    for budget in self.spec.budgets:
                        await self._run_group(task_spec, model_name, model, budget)
            finally:
                await model.close()
        return experiment_runs(self.store, self.spec.name)

    async def _run_group(self, task_spec: TaskSpec, model_name: str, model: Any, budget: int | None) -> None:
        cells = expand_cells(self.spec, task_spec, model_name, budget)
        refinements = [c for c in cells if c.matched]
        for cell in cells:
            await self._run_cell(cell, model)
        for cell in refinements:
            ref_run = await self._run_cell(cell, model)
            target = _mean_completion_tokens(self.store, ref_run)
            verifier = str(cell.options.get("verifier") or cell.options.get("outcome_verifier")
                           or self.spec.baseline_verifier)
            shared = self.spec.baseline_options
            # the pilot measures what one sampled draft, and one draft plus its score, cost here
            pilot_run = await self._run_cell(Cell(task_spec, model_name, budget, "best_of_n",
                                                  {**shared, "n": 1, "verifier": verifier}, kind="pilot"), model)
            draft_tokens = _mean_completion_tokens(self.store, pilot_run, role="solver")
            candidate_tokens = _mean_completion_tokens(self.store, pilot_run)
            n_sc = matched_n(target, draft_tokens)
            await self._run_cell(Cell(task_spec, model_name, budget, "self_consistency", {**shared, "n": n_sc},
                                      kind="matched_self_consistency", matched_to=ref_run.id,
                                      detail={"target_tokens": target, "unit_tokens": draft_tokens, "n": n_sc,
                                              "unit": f"solver tokens of pilot {pilot_run.id}"}), model)
            n_bon = matched_n(target, candidate_tokens)
            await self._run_cell(Cell(task_spec, model_name, budget, "best_of_n",
                                      {**shared, "n": n_bon, "verifier": verifier},
                                      kind="matched_best_of_n", matched_to=ref_run.id,
                                      detail={"target_tokens": target, "unit_tokens": candidate_tokens, "n": n_bon,
                                              "unit": f"draft+score tokens of pilot {pilot_run.id}"}), model)

    async def _run_cell(self, cell: Cell, model: Any) -> RunInfo:
        from .cluster import RayPool
        from .runner import execute_run
        from .strategies import default_options, make_strategy, options_of

        task = self._task(cell.task)
        strategy = make_strategy(cell.strategy, cell.options)
        problems = task.problems(limit=cell.task.limit, offset=cell.task.offset,
                                 ids=list(cell.task.ids) if cell.task.ids else None)
        if not problems:
            raise ExperimentError(f"task {cell.task.name}: the slice selects no problems")
        settings = {"budget_tokens": cell.budget, "seed": self.spec.seed}
        config = dict(task=cell.task.name, task_options=cell.task.options, strategy=strategy.name,
                      strategy_options=options_of(strategy), model_identity=model.identity, settings=settings,
                      problem_ids=[p.id for p in problems])
        run = self.store.find_latest(config, default_options(strategy))
        if run is None:
            run = self.store.create_run(model=cell.model, uses_oracle=strategy.uses_oracle(), **config)
        link_run(self.store, self.spec.name, run, cell)
        done = len(self.store.done_problem_ids(run.id))
        if done < len(run.problem_ids):
            self.say(f"{cell.kind} {cell.label} on {cell.task.name} × {cell.model}: run {run.id}"
                     f" ({done}/{len(run.problem_ids)} done)" + ("  [ORACLE]" if run.uses_oracle else ""))
            if isinstance(model, RayPool):  # workers on a Ray cluster, each with its own copy of the model
                summary = await model.execute(self.store, run, task, strategy, budget_tokens=cell.budget,
                                              run_seed=self.spec.seed, on_done=self.on_problem)
            else:
                summary = await execute_run(self.store, run, task, strategy, {"solver": model},
                                            concurrency=self.spec.concurrency, budget_tokens=cell.budget,
                                            run_seed=self.spec.seed, on_done=self.on_problem)
            self.say(f"  → {100 * summary.accuracy:.1f}% on {summary.problems}, "
                     f"{summary.per_problem(summary.cost.completion_tokens):.0f} completion tok/problem")
        return self.store.get_run(run.id)


def _mean_completion_tokens(store: Store, run: RunInfo, role: str | None = None) -> float:
    """Mean completion tokens per finished problem, of one role or (None) all of them."""
    records = store.results(run.id)
    if not records:
        return 0.0
    if role is None:
        return sum(r.cost.completion_tokens for r in records) / len(records)
    return sum(r.cost.by_role[role].completion_tokens for r in records if role in r.cost.by_role) / len(records)


# -- command line -----------------------------------------------------------------------------------------------

def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("experiment", help="run a grid from a YAML file (resumable), then report it")
    parser.add_argument("file", help="experiment YAML file")
    parser.add_argument("--db", default=None, help="SQLite file (default: the file's db:, $REDRAFT_DB, ./redraft.db)")
    parser.add_argument("--dry-run", action="store_true", help="list the grid's cells and stop")
    parser.add_argument("-o", "--output", default=None, help="report file (default: NAME.html)")
    parser.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                        help="solve on a Ray cluster ('auto', 'local' or an address; docs/cluster.md); the "
                             "file's concurrency is then per worker")
    parser.add_argument("--workers", type=int, default=0, help="Ray workers (default: one per node)")
    parser.add_argument("--worker-cpus", type=float, default=1.0,
                        help="CPUs Ray reserves for each worker (and llama.cpp's threads there)")
    parser.set_defaults(func=cmd_experiment)


async def cmd_experiment(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    spec = load_spec(args.file)
    cells = plan(spec)
    matched = sum(c.matched for c in cells)
    if args.dry_run:
        for cell in cells:
            print(f"{cell.task.name}\t{cell.model}\t{cell.label}" + ("\t+ matched SC/BoN" if cell.matched else ""))
        print(f"{len(cells)} cells, {matched} with matched baselines (self_consistency and best_of_n)")
        return 0
    store = Store(args.db or spec.db)
    console.print(f"experiment [bold]{spec.name}[/bold]: {len(cells)} cells"
                  f" (+ matched baselines for {matched}) in {store.path}")
    def say(message: str) -> None:
        console.print(message, highlight=False)

    open_model = None
    if args.ray:
        from .cluster import RayPool
        from .models import load_model

        def open_model(name: str) -> RayPool:
            say(f"starting Ray workers for {name}")
            # the workers' environment is their node's: the server URL travels, a key never does
            opener = functools.partial(load_model, name, base_url=os.environ.get("OPENAI_BASE_URL"),
                                       parallel=spec.parallel)
            return RayPool(opener, workers=args.workers, cpus_per_worker=args.worker_cpus,
                           concurrency=spec.concurrency, address=args.ray)
    runs = await ExperimentRunner(spec, store, open_model=open_model, say=say).run()
    console.print(f"{len(runs)} runs in experiment {spec.name}")
    if not args.no_report:
        from .report import build_report, write_report

        report = build_report(store, experiment=spec.name)
        output = Path(args.output or f"{spec.name}.html")
        write_report(report, output, "html")
        console.print(f"report: {output}")
    return 0
