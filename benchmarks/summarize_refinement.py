"""Markdown table of refinement runs beside their matched baselines, from the stored traces alone.

Per run: accuracy (95% bootstrap CI), completion tokens and calls per problem, first-draft
accuracy, accuracy after each round, flips right->wrong and wrong->right against the first draft
(computed by ``redraft.report.metrics`` from the ``round``/``final`` trace events, see the
convention in ``redraft.strategies.moves``). Each refinement run is paired with the
``self_consistency`` and the ``best_of_n`` run of the same model, budget and problems whose
completion tokens per problem are closest to its own; the paired difference is on the problems
both finished. A row says plainly when the method loses to a matched baseline.

Usage: python benchmarks/summarize_refinement.py --db benchmarks/strategies_gsm8k.db [--title TEXT]
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from redraft.report.metrics import Grader, RunMetrics, paired_difference, run_metrics
from redraft.store import Store

BASELINES = ("cot", "self_consistency", "best_of_n")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def nearest(run: RunMetrics, pool: list[RunMetrics], strategy: str) -> RunMetrics | None:
    """The ``strategy`` run on the same model, budget and problems closest in tokens per problem."""
    same = [m for m in pool if m.run.strategy == strategy and m.run.model_identity == run.run.model_identity
            and m.budget == run.budget and m.run.problem_ids == run.run.problem_ids and m.problems]
    tokens = run.per_problem.get("completion_tokens", 0.0)
    return min(same, key=lambda m: abs(m.per_problem["completion_tokens"] - tokens), default=None)


def versus(run: RunMetrics, other: RunMetrics | None) -> str:
    if other is None:
        return "-"
    paired = paired_difference(run, other)
    if paired is None:
        return "-"
    low, high = paired.interval
    verdict = " **loses**" if paired.difference < 0 else ""
    return (f"{other.label} ({other.per_problem['completion_tokens']:.0f} tok): {100 * paired.difference:+.1f} pts "
            f"({100 * low:+.1f}, {100 * high:+.1f}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--title", default="refinement strategies at matched budgets")
    args = parser.parse_args()
    store = Store(args.db)
    grader = Grader()
    metrics = [m for m in (run_metrics(store, run, grader) for run in store.list_runs()) if m.problems]
    print(f"### {args.title}\n")
    print(f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; database `{args.db}`."
          " Rounds: accuracy of the answer the method would return after each round (round 0 = first"
          " draft; a problem that stopped early keeps its final answer). Flips are against the first draft.\n")
    print("| run | model | problems | accuracy (95% CI) | out tok/p | calls/p | first draft | per round |"
          " right→wrong | wrong→right | vs self-consistency (paired 95% CI) | vs best-of-N (paired 95% CI) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m in sorted(metrics, key=lambda m: (m.run.strategy in BASELINES, m.run.strategy, m.label)):
        low, high = m.interval
        refinement = m.run.strategy not in BASELINES
        rounds = " → ".join(pct(a) for a in m.round_accuracy) or "-"
        oracle = " [ORACLE]" if m.uses_oracle else ""
        print(f"| {m.label}{oracle} | {m.run.model} | {m.n} | {pct(m.accuracy)} ({pct(low)}–{pct(high)}) | "
              f"{m.per_problem['completion_tokens']:.0f} | {m.per_problem['calls']:.1f} | {pct(m.draft_accuracy)} | "
              f"{rounds} | {m.right_to_wrong if refinement else '-'} | {m.wrong_to_right if refinement else '-'} | "
              f"{versus(m, nearest(m, metrics, 'self_consistency')) if refinement else '-'} | "
              f"{versus(m, nearest(m, metrics, 'best_of_n')) if refinement else '-'} |")
    errors = sum(m.errors for m in metrics)
    if errors:
        print(f"\n{errors} problem(s) stopped by the budget before any answer (counted wrong).")
    if grader.failures:
        print("\nCould not grade: " + "; ".join(grader.failures.values()))


if __name__ == "__main__":
    main()
