"""``redraft report RUN_OR_EXPERIMENT [-o FILE] [--format html|md|csv]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..store import Store, default_db_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="an experiment's or runs' report: one self-contained HTML page, Markdown or CSV",
        description="TARGET is an experiment file (.yaml), an experiment name, a run id (or several, comma-"
                    "separated), or 'all' for every run in the database.")
    parser.add_argument("target", metavar="RUN_OR_EXPERIMENT")
    parser.add_argument("-o", "--output", help="file to write (default for html: NAME.html, beside the experiment"
                                               " file when TARGET is one; md/csv: stdout)")
    parser.add_argument("--format", choices=("html", "md", "csv"), default=None,
                        help="default: from the output's suffix, else html")
    parser.add_argument("--baseline", default=None, help="strategy to pair every run against (default: the"
                                                          " experiment's baseline, else cot)")
    parser.add_argument("--per-problem", action="store_true", help="csv: one row per run and problem")
    parser.add_argument("--db", default=None, help="SQLite file (default: the experiment file's db:, $REDRAFT_DB,"
                                                   " ./redraft.db)")
    parser.set_defaults(func=cmd_report)


def open_existing(db: str | Path | None) -> Store:
    """The run database at ``db`` (default: $REDRAFT_DB, ./redraft.db); refused, not created, when missing."""
    from ..experiment import ExperimentError

    path = Path(db) if db else default_db_path()
    if not path.is_file():
        raise ExperimentError(f"no run database at {path} (give --db, or make runs first)")
    return Store(path)


def resolve_target(target: str, db: str | None) -> tuple[Store, str | None, list[str] | None]:
    """(store, experiment name or None, run ids or None for all runs)."""
    from ..experiment import ExperimentError, list_experiments, load_spec

    if target.endswith((".yaml", ".yml")):
        spec = load_spec(target)
        store = open_existing(db or spec.db)
        if spec.name not in list_experiments(store):
            raise ExperimentError(f"experiment {spec.name!r} has not been run into {store.path}"
                                  f" (run it with: redraft experiment {target})")
        return store, spec.name, None
    store = open_existing(db)
    if target == "all":
        return store, None, None
    if target in list_experiments(store):
        return store, target, None
    run_ids = []
    for part in target.split(","):
        try:
            run_ids.append(store.get_run(part.strip()).id)
        except KeyError:
            known = list_experiments(store)
            hint = f"; experiments there: {', '.join(known)}" if known else ""
            raise ExperimentError(f"{part.strip()!r} is neither an experiment nor a run in {store.path}{hint}") \
                from None
    return store, None, run_ids


def cmd_report(args: argparse.Namespace) -> int:
    from . import build_report, render

    store, experiment, run_ids = resolve_target(args.target, args.db)
    fmt = args.format or {".md": "md", ".csv": "csv"}.get(Path(args.output).suffix if args.output else "", "html")
    report = build_report(store, experiment=experiment, run_ids=run_ids, baseline=args.baseline)
    if not report.runs:
        raise ValueError(f"nothing to report: no runs in {store.path}")
    if fmt == "csv" and args.per_problem:
        from .tables import render_csv

        text = render_csv(report, per_problem=True)
    else:
        text = render(report, fmt)
    output = args.output
    if output is None and fmt == "html" and experiment and args.target.endswith((".yaml", ".yml")):
        from ..experiment import default_page

        output = str(default_page(args.target, experiment))  # beside the file, as `redraft experiment` writes it
    if output is None and fmt == "html":
        output = f"{experiment or (run_ids[0] if run_ids and len(run_ids) == 1 else 'report')}.html"
    if output is None or output == "-":
        sys.stdout.write(text)
    else:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output} ({len(report.runs)} runs)", file=sys.stderr)
    return 0
