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
  ``outcome_verifier``) as it runs with it (set in the file, else its default: ``judge`` for dser,
  hsr, iad, glore and magicore), else, for a strategy with none, the file's ``baseline_verifier``
  (default ``rating``); an oracle verifier makes the baseline (and the pilot) an oracle run, marked
  as such.

``baseline_options`` (``max_tokens``, ``temperature``) apply to the pilot and both baselines, so
they can sample like the refinement strategy does (e.g. the same ``max_tokens``). A baseline matched
at ``n = 1`` decodes greedily (temperature 0) whatever the temperature: a single sample at 0.7 is a
weaker use of one sample's tokens than the greedy answer, and comparing a refinement that spends
about one draft against it would credit the refinement with what greedy decoding buys.

So the refinement run is executed first and the baselines' ``n`` are derived from what it actually
spent; the chosen ``n`` and the numbers behind it are stored with the experiment and shown in the
report, beside each run's measured tokens, so how close the match came is visible.

The experiment itself lives in additive tables of the run database (created here, not in
store.py): ``experiments`` (name, spec) and ``experiment_cells`` (which run played which part for
which grid cell, and when it last did). The experiment's view is one run per cell of the file as it
was last run: each cell's newest run (after ``limit:`` is widened, the longer run), and nothing of a
cell since dropped from the file; earlier runs stay in the database, out of the view. A run can play
several parts (a self-consistency run matched to two refinement cells keeps both matches).
``experiment_runs`` (one row per run) is still written for older readers; an experiment recorded only
there (before ``experiment_cells``) is shown from it, as it was.

Every cell is checked when the file is read (``--dry-run`` too): each strategy is built with its
options, and every verifier they name is built, by the same code a run uses, so a bad cell fails at
once with one line naming the file and the cell rather than hours into the grid.
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
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .options import coerce_text
from .store import ProblemRecord, RunInfo, Store

if TYPE_CHECKING:
    from .strategies.base import Strategy

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
CREATE TABLE IF NOT EXISTS experiment_cells (
    experiment_id TEXT NOT NULL REFERENCES experiments(id),
    cell TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id),
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    matched_to TEXT,
    detail TEXT NOT NULL,
    linked REAL NOT NULL,
    current INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (experiment_id, cell, run_id)
);
"""

# Strategies that are baselines themselves: they get no matched baselines unless asked.
BASELINE_STRATEGIES = frozenset({"cot", "self_consistency", "best_of_n"})
CELL_KINDS = ("cell", "pilot", "matched_self_consistency", "matched_best_of_n")
MATCHED_KINDS = CELL_KINDS[1:]  # the parts a refinement cell's matched baselines play
# the option a strategy scores whole solutions with: best-of-N's verifier, and what `verifiers:` sets
SCORING_FIELDS = ("verifier", "outcome_verifier")


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
    verifier_field: str = "verifier"  # the option the verifier choices set (or outcome_verifier)


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


def _keys(keys: Any) -> str:
    return ", ".join(sorted(map(str, keys)))


def _integer(value: Any, what: str, minimum: int | None = None) -> int:
    """An integer as YAML gives it (or as text); a float, a boolean or a word is refused."""
    if isinstance(value, str):
        try:
            value = coerce_text(value.strip(), int)
        except ValueError:
            raise ExperimentError(f"{what} should be an integer, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExperimentError(f"{what} should be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise ExperimentError(f"{what} should be an integer of at least {minimum}, not {value}")
    return value


def _boolean(value: Any, what: str) -> bool:
    if isinstance(value, str):
        try:
            value = coerce_text(value.strip(), bool)
        except ValueError:
            pass
    if not isinstance(value, bool):
        raise ExperimentError(f"{what} should be true or false, not {value!r}")
    return value


def _budget(value: Any) -> int | None:
    if value is None or value in ("none", "null"):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExperimentError(f"budgets: each entry is a positive integer (completion tokens per problem) or null,"
                              f" not {value!r}")
    return value


def _task_options(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The options a run records for this task, in the same shape `redraft run` writes them, so an
    experiment adopts (and resumes) runs made by hand with the same settings."""
    options: dict[str, Any] = {}
    if entry.get("data"):
        options["data"] = str(entry["data"])
    if name == "arithmetic":
        options.update(steps=_integer(entry.get("steps", 3), f"task {name}: steps", 1),
                       count=_integer(entry.get("count", 200), f"task {name}: count", 1))
        if "seed" in entry:
            options["seed"] = _integer(entry["seed"], f"task {name}: seed")
    return options


def check_strategy(name: str, options: dict[str, Any]) -> Strategy:
    """The strategy a cell's runs will build, and every verifier it names, built now by the same code
    (``make_strategy``, ``make_verifier``), so a bad option, value or verifier fails here. Values go
    in as text, so the options' own parsing (``redraft.options``) checks their types too."""
    from .strategies import StrategyError, make_strategy

    as_text: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, (list, dict)):
            raise ExperimentError(f"option {key} takes one value, not {value!r}")
        as_text[str(key)] = value if isinstance(value, str) else "none" if value is None else str(value)
    try:
        return make_strategy(name, as_text)  # also builds every verifier an option names
    except StrategyError as exc:
        raise ExperimentError(str(exc)) from None


def scoring_verifier(strategy: Strategy) -> str | None:
    """The verifier a strategy scores whole solutions with: its ``verifier`` or ``outcome_verifier``
    as it runs (set explicitly, else its Options default); None when it has none or it is empty."""
    for name in SCORING_FIELDS:
        value = getattr(strategy.options, name, None)
        if value:
            return str(value)
    return None


def matched_verifier(strategy: str, options: dict[str, Any], fallback: str) -> str:
    """Best-of-N's verifier when matched to this refinement cell: the strategy's own, else ``fallback``."""
    from .strategies import make_strategy

    return scoring_verifier(make_strategy(strategy, options)) or fallback


def parse_spec(data: Any, *, name: str = "experiment", base_dir: Path | None = None,
               source: str | None = None) -> ExperimentSpec:
    """Validate a parsed YAML document into a spec; every problem gets one clear message."""
    from .strategies import STRATEGIES, load_builtins
    from .tasks import TASKS

    if not isinstance(data, dict):
        raise ExperimentError("an experiment file is a mapping (tasks:, models:, strategies:, ...)")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ExperimentError(f"unknown key(s) {_keys(unknown)}; known: {_keys(_TOP_KEYS)}")
    default_limit = data.get("limit")
    default_offset = _integer(data.get("offset") or 0, "offset", 0)
    if default_limit is not None:
        _integer(default_limit, "limit", 1)

    tasks = []
    for entry in _as_list(data.get("tasks"), "tasks"):
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "name" not in entry:
            raise ExperimentError(f"each task is a name or a mapping with name:, not {entry!r}")
        task_name = str(entry["name"])
        bad = set(entry) - _TASK_KEYS
        if bad:
            raise ExperimentError(f"task {task_name}: unknown key(s) {_keys(bad)}")
        if task_name not in TASKS:
            raise ExperimentError(f"unknown task {task_name!r}: choose one of {', '.join(TASKS)}")
        if entry.get("data") and base_dir is not None and not Path(str(entry["data"])).is_absolute():
            entry = {**entry, "data": str((base_dir / str(entry["data"])).resolve())}
        limit = entry.get("limit", default_limit)
        ids = entry.get("ids")
        tasks.append(TaskSpec(task_name, _task_options(task_name, entry),
                              _integer(limit, f"task {task_name}: limit", 1) if limit is not None else None,
                              _integer(entry.get("offset", default_offset), f"task {task_name}: offset", 0),
                              tuple(str(i) for i in _as_list(ids, "ids")) if ids else None))
    if not tasks:
        raise ExperimentError("the experiment needs at least one task")

    models = [str(m) for m in _as_list(data.get("models"), "models")]
    if not models:
        raise ExperimentError("the experiment needs at least one model")
    budgets = [_budget(b) for b in _as_list(data.get("budgets"), "budgets")] or [None]

    load_builtins()
    baseline = str(data.get("baseline", "cot"))
    if baseline not in STRATEGIES:
        raise ExperimentError(f"baseline: {baseline!r} is not a strategy; choose one of {_keys(STRATEGIES)}")
    baseline_verifier = str(data.get("baseline_verifier", "rating"))
    baseline_options = data.get("baseline_options") or {}
    if not isinstance(baseline_options, dict) or set(baseline_options) - {"max_tokens", "temperature"}:
        raise ExperimentError("baseline_options takes max_tokens and temperature (shared by SC and best-of-N)")
    try:
        check_strategy("best_of_n", {**baseline_options, "n": 1, "verifier": baseline_verifier})
    except ExperimentError as exc:
        raise ExperimentError(f"baseline_verifier / baseline_options: {exc}") from None

    global_verifiers = data.get("verifiers")
    matched_default = _boolean(data.get("matched_baselines", True), "matched_baselines")
    strategies = []
    for position, entry in enumerate(_as_list(data.get("strategies"), "strategies"), 1):
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "name" not in entry:
            raise ExperimentError(f"each strategy is a name or a mapping with name:, not {entry!r}")
        strategy_name = str(entry["name"])
        where = f"strategies entry {position} ({strategy_name})"
        bad = set(entry) - _STRATEGY_KEYS
        if bad:
            raise ExperimentError(f"{where}: unknown key(s) {_keys(bad)}")
        if strategy_name not in STRATEGIES:
            raise ExperimentError(f"{where}: unknown strategy {strategy_name!r}: choose one of {_keys(STRATEGIES)}")
        options, sweep = entry.get("options") or {}, entry.get("sweep") or {}
        for key, value in (("options", options), ("sweep", sweep)):
            if not isinstance(value, dict):
                raise ExperimentError(f"{where}: {key}: should be a mapping of option: value, not {value!r}")
        fields = {f.name for f in dataclasses.fields(STRATEGIES[strategy_name].Options)}
        verifier_field = next((f for f in SCORING_FIELDS if f in fields), None)
        if "verifiers" in entry and verifier_field is None:
            raise ExperimentError(f"{where}: verifiers: sets a verifier or outcome_verifier option, and"
                                  f" {strategy_name} has no verifier option")
        chosen = verifier_field in options or verifier_field in sweep
        verifiers = entry.get("verifiers", None if chosen else global_verifiers)
        verifier_choices = tuple(str(v) for v in _as_list(verifiers, "verifiers")) if verifier_field else ()
        matched = (_boolean(entry["matched_baselines"], f"{where}: matched_baselines") if "matched_baselines" in entry
                   else matched_default and strategy_name not in BASELINE_STRATEGIES)
        sweep_keys = sorted(sweep)
        for values in itertools.product(*(_as_list(sweep[k], f"{where}: sweep {k}") for k in sweep_keys)):
            cell_options = {**options, **dict(zip(sweep_keys, values, strict=True))}
            strategy = StrategySpec(strategy_name, cell_options, matched, verifier_choices or None,
                                    verifier_field or "verifier")
            for options_here in strategy_cells(strategy):
                try:
                    built = check_strategy(strategy_name, options_here)
                    if matched:  # the pilot and best-of-N this cell will get
                        check_strategy("best_of_n", {**baseline_options, "n": 1,
                                                     "verifier": scoring_verifier(built) or baseline_verifier})
                except ExperimentError as exc:
                    raise ExperimentError(f"{where}, cell {cell_label(strategy_name, options_here, None)}: {exc}") \
                        from None
            strategies.append(strategy)
    if not strategies:
        raise ExperimentError("the experiment needs at least one strategy")

    db = data.get("db")
    if db is not None and base_dir is not None and not Path(str(db)).is_absolute():
        db = str(base_dir / str(db))
    return ExperimentSpec(
        name=str(data.get("name") or name), tasks=tasks, models=models, budgets=budgets, strategies=strategies,
        baseline=baseline, baseline_verifier=baseline_verifier, baseline_options=dict(baseline_options),
        seed=_integer(data.get("seed", 0), "seed"), concurrency=_integer(data.get("concurrency", 4), "concurrency", 1),
        parallel=_integer(data.get("parallel", 8), "parallel", 1), db=None if db is None else str(db), source=source,
        raw=data)


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read an experiment file; relative ``db:`` and task ``data:`` paths are relative to the file.
    Every problem, the cells' included, is one ExperimentError line that starts with the file's path."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"experiment file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ExperimentError(f"{path}: not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{path}: cannot read it ({exc})") from None
    try:
        return parse_spec(data, name=path.stem, base_dir=path.parent, source=str(path))
    except ExperimentError as exc:
        raise ExperimentError(f"{path}: {exc}") from None


# -- cells -------------------------------------------------------------------------------------------------

def cell_label(strategy: str, options: dict[str, Any], budget: int | None) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items(), key=lambda item: str(item[0])))
    text = f"{strategy}({shown})" if shown else strategy
    return text + (f" @{budget}tok" if budget is not None else "")


def strategy_cells(strategy: StrategySpec) -> list[dict[str, Any]]:
    """The options of each cell a strategy entry (one sweep point) makes: one per verifier choice."""
    if not strategy.verifiers:
        return [dict(strategy.options)]
    return [{**strategy.options, strategy.verifier_field: verifier} for verifier in strategy.verifiers]


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
    part_of: str | None = None  # a pilot's or matched baseline's refinement cell (its key)

    @property
    def label(self) -> str:
        return cell_label(self.strategy, self.options, self.budget)

    @property
    def key(self) -> str:
        """Which cell of the grid this is, whatever slice of the task it runs on (``limit:`` may be
        widened) and whatever n a matched baseline gets: the experiment shows one run per key."""
        if self.part_of is not None:
            return json.dumps([self.kind, self.part_of])
        return json.dumps([self.task.name, self.task.options, self.model, self.budget, self.strategy, self.options],
                          sort_keys=True, default=str)


def expand_cells(spec: ExperimentSpec, task: TaskSpec, model: str, budget: int | None) -> list[Cell]:
    """The grid's own cells for one (task, model, budget), verifier choices expanded."""
    return [Cell(task, model, budget, strategy.name, options, matched=strategy.matched_baselines)
            for strategy in spec.strategies for options in strategy_cells(strategy)]


def current_cells(spec: ExperimentSpec) -> set[str]:
    """The keys of every part the spec's grid has: its cells, and their pilots and matched baselines."""
    keys = set()
    for cell in plan(spec):
        keys.add(cell.key)
        if cell.matched:
            keys.update(json.dumps([kind, cell.key]) for kind in MATCHED_KINDS)
    return keys


def plan(spec: ExperimentSpec) -> list[Cell]:
    """Every grid cell, without the matched baselines (their n depends on results)."""
    return [cell for model in spec.models for task in spec.tasks for budget in spec.budgets
            for cell in expand_cells(spec, task, model, budget)]


def matched_n(target_tokens: float, unit_tokens: float) -> int:
    """Samples whose expected cost is nearest the target: max(1, round(target / per-sample cost))."""
    if unit_tokens <= 0:
        return 1
    return max(1, round(target_tokens / unit_tokens))


def baseline_options(shared: dict[str, Any], n: int) -> dict[str, Any]:
    """A matched baseline's options at ``n`` samples: one sample is drawn greedily (module docstring)."""
    return {**shared, "n": n, **({"temperature": 0.0} if n == 1 else {})}


# -- the experiment tables ------------------------------------------------------------------------------------

def ensure_tables(store: Store) -> None:
    store.db.executescript(EXPERIMENT_SCHEMA)


def has_tables(store: Store, table: str = "experiment_runs") -> bool:
    row = store.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    return row is not None


def save_experiment(store: Store, spec: ExperimentSpec) -> None:
    """Record the spec, and which recorded cells it still has: the others leave the experiment's view."""
    ensure_tables(store)
    now = time.time()
    store.db.execute(
        "INSERT INTO experiments (id, created, updated, spec, source) VALUES (?,?,?,?,?)"
        " ON CONFLICT(id) DO UPDATE SET updated=excluded.updated, spec=excluded.spec, source=excluded.source",
        (spec.name, now, now, json.dumps(spec.raw, sort_keys=True, default=str), spec.source))
    keys = current_cells(spec)
    recorded = store.db.execute("SELECT DISTINCT cell FROM experiment_cells WHERE experiment_id = ?",
                                (spec.name,)).fetchall()
    for (cell,) in recorded:
        store.db.execute("UPDATE experiment_cells SET current = ? WHERE experiment_id = ? AND cell = ?",
                         (int(cell in keys), spec.name, cell))


def link_run(store: Store, experiment: str, run: RunInfo, cell: Cell) -> None:
    """``run`` plays ``cell``'s part (now): one row per (cell, run), so a baseline matched to several
    refinement cells keeps each match with its own detail."""
    now, detail = time.time(), json.dumps(cell.detail, default=str)
    store.db.execute(
        "INSERT INTO experiment_cells (experiment_id, cell, run_id, kind, label, matched_to, detail, linked, current)"
        " VALUES (?,?,?,?,?,?,?,?,1) ON CONFLICT(experiment_id, cell, run_id) DO UPDATE SET kind=excluded.kind,"
        " label=excluded.label, matched_to=excluded.matched_to, detail=excluded.detail, linked=excluded.linked,"
        " current=1",
        (experiment, cell.key, run.id, cell.kind, cell.label, cell.matched_to, detail, now))
    # the one-row-per-run table older readers know: its first match, with that match's own detail
    store.db.execute(
        "INSERT INTO experiment_runs (experiment_id, run_id, kind, label, matched_to, detail, added)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT(experiment_id, run_id) DO UPDATE SET"
        " kind=CASE WHEN experiment_runs.kind='cell' THEN 'cell' ELSE excluded.kind END,"
        " detail=CASE WHEN experiment_runs.matched_to IS NULL AND excluded.matched_to IS NOT NULL"
        " THEN excluded.detail ELSE experiment_runs.detail END,"
        " matched_to=COALESCE(experiment_runs.matched_to, excluded.matched_to)",
        (experiment, run.id, cell.kind, cell.label, cell.matched_to, detail, now))


@dataclass
class Match:
    """A baseline's (or pilot's) match to one refinement run, with how its n was chosen."""

    kind: str
    refinement: str
    detail: dict[str, Any]


@dataclass
class ExperimentRun:
    run: RunInfo
    kind: str  # its main part: cell, else a matched baseline, else pilot
    label: str
    matched_to: str | None  # its first match's refinement run (see ``matches`` for all)
    detail: dict[str, Any]
    matches: list[Match] = field(default_factory=list)


PART_ORDER = ("cell", "matched_self_consistency", "matched_best_of_n", "pilot")


def list_experiments(store: Store) -> list[str]:
    if not has_tables(store):
        return []
    return [row[0] for row in store.db.execute("SELECT id FROM experiments ORDER BY created")]


def experiment_runs(store: Store, experiment: str) -> list[ExperimentRun]:
    """The experiment's view: for each cell of the file as last run, its newest run, each run once
    (with every part it plays), in the order the runs joined the experiment."""
    if experiment not in list_experiments(store):
        raise ExperimentError(f"no experiment {experiment!r} in {store.path}")
    rows = store.db.execute("SELECT rowid, * FROM experiment_cells WHERE experiment_id = ? AND current = 1"
                            " ORDER BY linked DESC, rowid DESC", (experiment,)).fetchall() \
        if has_tables(store, "experiment_cells") else []
    if not rows:  # recorded before experiment_cells (or nothing current): every run it ever had
        legacy = store.db.execute("SELECT * FROM experiment_runs WHERE experiment_id = ? ORDER BY added",
                                  (experiment,))
        return [_member(store, [row]) for row in legacy]
    newest: dict[str, Any] = {}
    for row in rows:
        newest.setdefault(row["cell"], row)
    parts: dict[str, list[Any]] = {}
    for row in sorted(newest.values(), key=lambda r: r["rowid"]):
        parts.setdefault(row["run_id"], []).append(row)
    return [_member(store, run_rows) for run_rows in parts.values()]


def _member(store: Store, rows: list[Any]) -> ExperimentRun:
    main = min(rows, key=lambda r: PART_ORDER.index(r["kind"]) if r["kind"] in PART_ORDER else len(PART_ORDER))
    matches = [Match(r["kind"], r["matched_to"], json.loads(r["detail"])) for r in rows if r["matched_to"]]
    first = matches[0] if matches else None
    return ExperimentRun(store.get_run(main["run_id"]), main["kind"], main["label"],
                         first.refinement if first else None, first.detail if first else json.loads(main["detail"]),
                         matches)


def experiment_spec(store: Store, experiment: str) -> dict[str, Any]:
    row = store.db.execute("SELECT spec FROM experiments WHERE id = ?", (experiment,)).fetchone()
    return json.loads(row[0]) if row else {}


# -- running ---------------------------------------------------------------------------------------------------

Say = Callable[[str], None]
# what watches a cell's run: given its label and run, a context that takes each solved problem's record
Track = Callable[[str, RunInfo], AbstractContextManager[Callable[[ProblemRecord], None] | None]]


class ExperimentRunner:
    """Runs an experiment's cells in order, deriving the matched baselines from finished runs."""

    def __init__(self, spec: ExperimentSpec, store: Store, *, open_model: Callable[[str], Any] | None = None,
                 say: Say = print, track: Track | None = None) -> None:
        self.spec = spec
        self.store = store
        self.open_model = open_model or self._load_model
        self.say = say
        self.track = track
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
        # each refinement's matched baselines run right after it, so an experiment cut short has
        # every refinement it finished already compared at matched compute
        for cell in expand_cells(self.spec, task_spec, model_name, budget):
            run = await self._run_cell(cell, model)
            if cell.matched:
                await self._run_matched(cell, run, model)

    async def _run_matched(self, cell: Cell, ref_run: RunInfo, model: Any) -> None:
        """A pilot, then self-consistency and best-of-N sized to spend what ``ref_run`` spent."""
        task_spec, model_name, budget = cell.task, cell.model, cell.budget
        target = _mean_completion_tokens(self.store, ref_run)
        verifier = matched_verifier(cell.strategy, cell.options, self.spec.baseline_verifier)
        shared = self.spec.baseline_options
        # the pilot measures what one sampled draft, and one draft plus its score, cost here
        pilot_run = await self._run_cell(Cell(task_spec, model_name, budget, "best_of_n",
                                              {**shared, "n": 1, "verifier": verifier}, kind="pilot",
                                              part_of=cell.key), model)
        draft_tokens = _mean_completion_tokens(self.store, pilot_run, role="solver")
        candidate_tokens = _mean_completion_tokens(self.store, pilot_run)
        n_sc = matched_n(target, draft_tokens)
        await self._run_cell(Cell(task_spec, model_name, budget, "self_consistency", baseline_options(shared, n_sc),
                                  kind="matched_self_consistency", matched_to=ref_run.id,
                                  detail={"target_tokens": target, "unit_tokens": draft_tokens, "n": n_sc,
                                          "unit": f"solver tokens of pilot {pilot_run.id}"},
                                  part_of=cell.key), model)
        n_bon = matched_n(target, candidate_tokens)
        await self._run_cell(Cell(task_spec, model_name, budget, "best_of_n",
                                  {**baseline_options(shared, n_bon), "verifier": verifier},
                                  kind="matched_best_of_n", matched_to=ref_run.id,
                                  detail={"target_tokens": target, "unit_tokens": candidate_tokens, "n": n_bon,
                                          "unit": f"draft+score tokens of pilot {pilot_run.id}"},
                                  part_of=cell.key), model)

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
            with self.track(cell.label, run) if self.track else nullcontext() as on_done:
                if isinstance(model, RayPool):  # workers on a Ray cluster, each with its own copy of the model
                    summary = await model.execute(self.store, run, task, strategy, budget_tokens=cell.budget,
                                                  run_seed=self.spec.seed, on_done=on_done)
                else:
                    summary = await execute_run(self.store, run, task, strategy, {"solver": model},
                                                concurrency=self.spec.concurrency, budget_tokens=cell.budget,
                                                run_seed=self.spec.seed, on_done=on_done)
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

def default_page(spec_file: str | Path, name: str) -> Path:
    """Where an experiment's HTML page goes unless told: beside its file (examples/small.html)."""
    return Path(spec_file).parent / f"{name}.html"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("experiment", help="run a grid from a YAML file (resumable), then report it")
    parser.add_argument("file", help="experiment YAML file")
    parser.add_argument("--db", default=None, help="SQLite file (default: the file's db:, $REDRAFT_DB, ./redraft.db)")
    parser.add_argument("--dry-run", action="store_true", help="list the grid's cells and stop")
    parser.add_argument("-o", "--output", default=None, help="report file (default: NAME.html beside FILE)")
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

    from .progress import RunProgress

    console = Console(stderr=True)
    spec = load_spec(args.file)
    cells = plan(spec)
    matched = sum(c.matched for c in cells)
    if args.dry_run:
        for cell in cells:
            verifier = matched_verifier(cell.strategy, cell.options, spec.baseline_verifier) if cell.matched else ""
            print(f"{cell.task.name}\t{cell.model}\t{cell.label}"
                  + (f"\t+ matched SC/BoN (BoN verifier {verifier})" if cell.matched else ""))
        print(f"{len(cells)} cells, {matched} with matched baselines (self_consistency and best_of_n)")
        return 0
    store = Store(args.db or spec.db)
    console.print(f"experiment [bold]{spec.name}[/bold]: {len(cells)} cells"
                  f" (+ matched baselines for {matched}) in {store.path}", soft_wrap=True)
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
    def track(label: str, run: RunInfo) -> RunProgress:
        return RunProgress.for_run(console, store, run, label)

    runs = await ExperimentRunner(spec, store, open_model=open_model, say=say, track=track).run()
    console.print(f"{len(runs)} runs in experiment {spec.name}")
    if not args.no_report:
        from .report import build_report, write_report

        report = build_report(store, experiment=spec.name)
        output = Path(args.output) if args.output else default_page(args.file, spec.name)
        write_report(report, output, "html")
        console.print(f"report: {output}", soft_wrap=True, highlight=False)  # a path to copy, unwrapped
    return 0
