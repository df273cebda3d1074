"""The ``redraft`` command line: solve, run, runs, show, models."""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import inspect
import json
import os
import sqlite3
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cluster import ClusterError, RayPool
from .experiment import ExperimentError
from .models import BUILTIN_MODELS, DEFAULT_MODEL, ModelError, load_model
from .models.base import Model
from .progress import RunProgress
from .runner import RunSummary, execute_run, solve_one, summarize
from .store import Store
from .strategies import STRATEGIES, StrategyError, default_options, load_builtins, make_strategy, options_of
from .tasks import TASKS, Problem, TaskError, load_task
from .tasks.arithmetic import ArithmeticTask

console = Console(stderr=True)
# piped output gets room for the whole table rather than rich's 80-column default
out = Console(width=None if sys.stdout.isatty() else 160)


class UsageError(Exception):
    pass


def _parse_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"option {pair!r} should look like key=value")
        key, value = pair.split("=", 1)
        options[key.strip().replace("-", "_")] = value.strip()
    return options


def _strategy_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = _parse_options(args.option or [])
    if getattr(args, "n", None) is not None:
        options["n"] = args.n
    return options


def _open_model(args: argparse.Namespace) -> Model:
    return load_model(args.model, base_url=args.base_url, parallel=args.parallel,
                      say=lambda message: console.print(f"[dim]{message}[/dim]"))


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.data:
        options["data"] = args.data
    if args.task == "arithmetic":
        options.update(steps=args.steps, count=args.count)
    return options


# -- run ------------------------------------------------------------------------------------------------

async def cmd_run(args: argparse.Namespace) -> int:
    store = Store(args.db)
    if args.resume and args.resume != "latest":
        run = store.get_run(args.resume)
        task = load_task(run.task, **run.task_options)
        strategy = make_strategy(run.strategy, run.strategy_options)
        model_name = run.model
        settings = run.settings
    else:
        if not args.task:
            raise UsageError("give --task (or --resume RUN)")
        task_options = _task_options(args)
        task = load_task(args.task, **task_options)
        strategy = make_strategy(args.strategy, _strategy_options(args))
        problems = task.problems(limit=args.limit, offset=args.offset, ids=args.ids.split(",") if args.ids else None)
        if not problems:
            raise UsageError("the slice selects no problems")
        settings = {"budget_tokens": args.budget, "seed": args.seed}
        model_name = args.model
        run = None
    args.model = model_name
    backend = _open_ray_pool(args) if args.ray else _open_model(args)
    try:
        identity = backend.identity
        if run is None:
            config = dict(task=args.task, task_options=task_options, strategy=strategy.name,
                          strategy_options=options_of(strategy), model_identity=identity,
                          settings=settings, problem_ids=[p.id for p in problems])
            run = store.find_latest(config, default_options(strategy)) if args.resume == "latest" else None
            if run is None:
                run = store.create_run(model=model_name, uses_oracle=strategy.uses_oracle(), **config)
        elif run.model_identity != identity:
            raise UsageError(f"run {run.id} used {run.model_identity}, but {model_name} is {identity}")
        done = len(store.done_problem_ids(run.id))
        console.print(f"run [bold]{run.id}[/bold]: {run.task} × {run.strategy} × {run.model}"
                      f" ({len(run.problem_ids)} problems, {done} already done)", soft_wrap=True)
        summary = await _run_with_progress(store, run, task, strategy, backend, args, settings)
    finally:
        await backend.close()
    _print_summary(summary, run.strategy, run.model, run.uses_oracle)
    console.print(f"[dim]stored in {store.path}; see it with: redraft show {run.id}[/dim]")
    return 0


def _open_ray_pool(args: argparse.Namespace) -> RayPool:
    count = f"{args.workers} Ray worker(s)" if args.workers else "Ray workers (one per node)"
    console.print(f"[dim]starting {count} for {args.model}[/dim]")
    # the base URL travels to the workers (their environment is their node's); a key never does
    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
    open_model = functools.partial(load_model, args.model, base_url=base_url, parallel=args.parallel)
    return RayPool(open_model, workers=args.workers, cpus_per_worker=args.worker_cpus,
                   concurrency=args.concurrency, address=args.ray)


async def _run_with_progress(store: Store, run: Any, task: Any, strategy: Any, backend: Model | RayPool,
                             args: argparse.Namespace, settings: dict[str, Any]) -> RunSummary:
    with RunProgress.for_run(console, store, run, run.strategy, quiet=args.quiet) as on_done:
        budget, seed = settings.get("budget_tokens"), settings.get("seed", 0)
        if isinstance(backend, RayPool):
            return await backend.execute(store, run, task, strategy, budget_tokens=budget, run_seed=seed,
                                         on_done=on_done)
        return await execute_run(store, run, task, strategy, {"solver": backend}, concurrency=args.concurrency,
                                 budget_tokens=budget, run_seed=seed, on_done=on_done)


def _print_summary(summary: RunSummary, strategy: str, model: str, uses_oracle: bool) -> None:
    low, high = summary.interval
    table = Table(title=f"run {summary.run_id}" + ("  [ORACLE VERIFIER]" if uses_oracle else ""))
    # per problem ("/p"): completion ("out") and prompt ("in") tokens, calls, model and wall seconds
    for column in ("strategy", "model", "problems", "accuracy", "95% CI", "out tok/p", "in tok/p", "calls/p",
                   "model s/p", "wall s/p"):
        table.add_column(column, justify="right" if column not in ("strategy", "model") else "left")
    table.add_row(
        strategy, model, str(summary.problems), f"{100 * summary.accuracy:.1f}%",
        f"{100 * low:.1f}–{100 * high:.1f}%", f"{summary.per_problem(summary.cost.completion_tokens):.0f}",
        f"{summary.per_problem(summary.cost.prompt_tokens):.0f}", f"{summary.per_problem(summary.cost.calls):.1f}",
        f"{summary.per_problem(summary.cost.seconds):.1f}", f"{summary.per_problem(summary.wall_seconds):.1f}",
    )
    out.print(table)
    if summary.errors:
        console.print(f"[yellow]{summary.errors} problem(s) stopped early (see the error column in show)[/yellow]")


# -- solve ----------------------------------------------------------------------------------------------

async def cmd_solve(args: argparse.Namespace) -> int:
    strategy = make_strategy(args.strategy, _strategy_options(args))
    task = ArithmeticTask(count=0)  # its prompt format and number extraction, with no key
    problem = Problem(id="question", question=args.question)
    model = _open_model(args)
    store = Store(args.db) if args.db else None
    try:
        result, ctx, error = await solve_one(strategy, task, problem, {"solver": model}, budget_tokens=args.budget,
                                             cache=store, run_seed=args.seed)
    finally:
        await model.close()
    _print_trace(ctx.trace)
    if error:
        console.print(f"[yellow]{error}[/yellow]")
    cost = ctx.cost
    out.print(f"[bold]answer:[/bold] {result.answer}")
    out.print(f"[dim]cost: {cost.calls} calls, {cost.prompt_tokens} prompt + {cost.completion_tokens} completion "
              f"tokens, {cost.seconds:.1f} s of model time[/dim]")
    return 0


def _print_trace(trace: list[dict[str, Any]]) -> None:
    for index, event in enumerate(trace):
        if event["type"] == "call":
            head = (f"[bold cyan]#{index} {event['role']}[/bold cyan] {event.get('label', '')} "
                    f"n={event['n']} T={event['temperature']} "
                    f"({event['prompt_tokens']}+{event['completion_tokens']} tok"
                    f"{', cached' if event.get('cached') else ''})")
            out.print(head)
            for sample, text in enumerate(event["outputs"]):
                prefix = f"  [{sample}] " if event["n"] > 1 else "  "
                out.print(prefix + text.strip().replace("\n", "\n  "), markup=False, highlight=False)
        else:
            data = {k: v for k, v in event.items() if k != "type"}
            out.print(f"[bold magenta]#{index} {event['type']}[/bold magenta] "
                      + json.dumps(data, default=str)[:600], highlight=False)


# -- runs / show / models -----------------------------------------------------------------------------------

def cmd_runs(args: argparse.Namespace) -> int:
    store = Store(args.db)
    if args.delete:
        try:
            deleted = store.delete_run(args.delete)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        out.print(f"deleted run {args.delete} and its {deleted} results from {store.path} (the call cache stays)")
        return 0
    table = Table(title=str(store.path))
    for column in ("run", "task", "strategy", "model", "done", "accuracy", "tok/problem", "status"):
        table.add_column(column)
    for run in store.list_runs():
        summary = summarize(store, run)
        table.add_row(run.id + (" [ORACLE]" if run.uses_oracle else ""), run.task, run.strategy, run.model,
                      f"{summary.problems}/{len(run.problem_ids)}", f"{100 * summary.accuracy:.1f}%",
                      f"{summary.per_problem(summary.cost.completion_tokens):.0f}",
                      "finished" if run.finished else "open")
    out.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = Store(args.db)
    try:
        run = store.get_run(args.run)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    records = store.results(run.id)
    if args.problem is None:
        summary = summarize(store, run)
        _print_summary(summary, run.strategy, run.model, run.uses_oracle)
        table = Table()
        for column in ("#", "problem", "answer", "correct", "tokens", "calls", "note"):
            table.add_column(column)
        for record in records:
            table.add_row(str(record.position), record.problem_id, str(record.answer),
                          "✓" if record.correct else "✗", str(record.cost.completion_tokens),
                          str(record.cost.calls), record.error or record.grade_detail[:60])
        out.print(table)
        return 0
    matches = [r for r in records if r.problem_id == args.problem]
    if not matches:
        raise UsageError(f"run {run.id} has no finished problem {args.problem!r}")
    record = matches[0]
    _print_trace(record.trace)
    out.print(f"[bold]answer:[/bold] {record.answer}   [bold]correct:[/bold] {record.correct} ({record.grade_detail})")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models.fetch import cache_dir

    table = Table(title=f"built-in models (cache: {cache_dir()})")
    for column in ("name", "file", "size", "sha256", "cached"):
        table.add_column(column)
    for spec in BUILTIN_MODELS.values():
        cached = (cache_dir() / spec.filename).exists()
        table.add_row(spec.name + (" (default)" if spec.name == DEFAULT_MODEL else ""), spec.filename,
                      f"{spec.size / 1e6:,.0f} MB", spec.sha256[:12] + "…", "yes" if cached else "no")
    out.print(table)
    if args.fetch:
        from .models.fetch import resolve_model_file

        path, _ = resolve_model_file(args.fetch, say=lambda m: console.print(f"[dim]{m}[/dim]"))
        out.print(f"{args.fetch}: {path}")
    return 0


# -- parser ---------------------------------------------------------------------------------------------------

# Commands that live beside their feature: each module has ``register(subparsers)``, which adds its
# parser and sets ``func`` (a plain or async function of the parsed args returning an exit code).
EXTENSION_COMMANDS: list[str] = ["redraft.catalog", "redraft.serve.command", "redraft.distill.command",
                                 "redraft.experiment", "redraft.report.command", "redraft.verifiers.probe_command"]


def build_parser() -> argparse.ArgumentParser:
    load_builtins()
    parser = argparse.ArgumentParser(prog="redraft",
                                     description="Draft, check and refine LLM answers; measure what it buys.")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"built-in name ({', '.join(BUILTIN_MODELS)}), a .gguf path, or openai:MODEL")
        p.add_argument("--base-url", help="OpenAI-compatible server for openai:MODEL (or OPENAI_BASE_URL)")
        p.add_argument("--parallel", type=int, default=8, help="llama.cpp parallel slots")
        p.add_argument("--budget", type=int, default=None, help="completion-token budget per problem")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--db", default=None, help="SQLite file (default: $REDRAFT_DB or ./redraft.db)")

    def strategy_args(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument("--strategy", default=default, help=f"one of {', '.join(sorted(STRATEGIES))}")
        p.add_argument("--n", type=int, default=None, help="samples, for strategies that take n")
        p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="a strategy option")

    solve = sub.add_parser("solve", help="solve one question and show every attempt")
    solve.add_argument("question")
    strategy_args(solve, "cot")
    model_args(solve)

    run = sub.add_parser("run", help="run a strategy over a task and store it")
    run.add_argument("--task", help=f"one of {', '.join(TASKS)}")
    run.add_argument("--data", help="the task's data file (JSONL)")
    run.add_argument("--limit", type=int)
    run.add_argument("--offset", type=int, default=0)
    run.add_argument("--ids", help="comma-separated problem ids")
    run.add_argument("--steps", type=int, default=3, help="arithmetic: operations per problem")
    run.add_argument("--count", type=int, default=200, help="arithmetic: problems generated")
    run.add_argument("--concurrency", type=int, default=4, help="problems solved at once")
    run.add_argument("--resume", nargs="?", const="latest", default=None,
                     help="resume RUN, or with no value the latest run of this configuration "
                          "(a finished one is only reported)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                     help="solve on a Ray cluster: its address, 'auto' (the one `ray start` made here; the "
                          "default) or 'local' (a private one on this machine); --concurrency is then per worker")
    run.add_argument("--workers", type=int, default=0,
                     help="Ray workers, each with its own model (default: one per node)")
    run.add_argument("--worker-cpus", type=float, default=1.0,
                     help="CPUs Ray reserves for each worker (and llama.cpp's threads there)")
    strategy_args(run, "cot")
    model_args(run)

    runs = sub.add_parser("runs", help="list stored runs")
    runs.add_argument("--db", default=None)
    runs.add_argument("--delete", metavar="RUN", help="delete the run with this exact id and its results")

    show = sub.add_parser("show", help="a run's problems, or one problem's full trace")
    show.add_argument("run")
    show.add_argument("problem", nargs="?")
    show.add_argument("--db", default=None)

    models = sub.add_parser("models", help="list built-in models; --fetch NAME to obtain one")
    models.add_argument("--fetch", metavar="NAME")

    for module_name in EXTENSION_COMMANDS:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return asyncio.run(cmd_run(args))
        if args.command == "solve":
            return asyncio.run(cmd_solve(args))
        if args.command == "runs":
            return cmd_runs(args)
        if args.command == "show":
            return cmd_show(args)
        if args.command == "models":
            return cmd_models(args)
        if hasattr(args, "func"):
            outcome = args.func(args)
            return asyncio.run(outcome) if inspect.iscoroutine(outcome) else int(outcome)
    except (UsageError, TaskError, StrategyError, ModelError, ClusterError, ExperimentError, ValueError,
            sqlite3.Error, OSError) as exc:
        # one line, no traceback: a bad experiment file, an unreadable or locked database, a path that is
        # not there (ValueError covers the verifier and option errors; the text is shown as is, not as markup)
        console.print(f"[red]redraft: error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; finished problems are stored, resume with --resume[/yellow]")
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
