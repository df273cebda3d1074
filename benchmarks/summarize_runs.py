"""Markdown table of every run in a redraft database, with paired comparisons on shared problems.

Usage: python benchmarks/summarize_runs.py --db benchmarks/spine.db [--title TEXT] [--baseline cot]
"""

from __future__ import annotations

import argparse
import platform

from redraft.runner import summarize
from redraft.stats import bootstrap_interval
from redraft.store import Store
from redraft.strategies import non_default_options


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--title", default="runs")
    parser.add_argument("--baseline", default="cot", help="strategy to pair every other run against")
    args = parser.parse_args()
    store = Store(args.db)
    runs = store.list_runs()
    print(f"### {args.title}\n")
    print(f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; database `{args.db}`.\n")
    print("| task | strategy | options | model | problems | accuracy (95% CI) | vs baseline, same problems"
          " (paired 95% CI) | out tok/problem | in tok/problem | calls/problem | model s/problem |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        summary = summarize(store, run)
        if not summary.problems:
            continue
        low, high = summary.interval
        opts = ", ".join(f"{k}={v}" for k, v in non_default_options(run.strategy, run.strategy_options).items())
        paired = "-"
        if run.strategy != args.baseline:
            base = next((b for b in runs if b.strategy == args.baseline and b.model == run.model
                         and b.task == run.task), None)
            if base is not None:
                mine = {r.problem_id: r.correct for r in store.results(run.id)}
                theirs = {r.problem_id: r.correct for r in store.results(base.id)}
                shared = sorted(set(mine) & set(theirs))
                if shared:
                    diffs = [float(mine[p]) - float(theirs[p]) for p in shared]
                    d_low, d_high = bootstrap_interval(diffs)
                    mean = sum(diffs) / len(diffs)
                    paired = (f"{100 * mean:+.1f} pts on {len(shared)} "
                              f"({100 * d_low:+.1f}, {100 * d_high:+.1f})")
        print(f"| {run.task} | {run.strategy} | {opts} | {run.model} | {summary.problems} | "
              f"{100 * summary.accuracy:.1f}% ({100 * low:.1f}–{100 * high:.1f}) | {paired} | "
              f"{summary.per_problem(summary.cost.completion_tokens):.0f} | "
              f"{summary.per_problem(summary.cost.prompt_tokens):.0f} | "
              f"{summary.per_problem(summary.cost.calls):.1f} | {summary.per_problem(summary.cost.seconds):.1f} |")


if __name__ == "__main__":
    main()
