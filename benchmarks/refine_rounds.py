"""Per-round accuracy, flips and sample counts of refinement runs, read from their traces.

Usage: python benchmarks/refine_rounds.py --db benchmarks/refine_b.db [--title TEXT]

Relies on the trace convention of ``redraft.strategies.moves``: a ``round`` event per round with
``answer=`` (the answer the method would give if it stopped there) and a ``final`` event. A
problem that stopped before round k counts with its final answer at round k, so "after round k"
is the accuracy of the method cut off at k rounds. Flips compare the round-0 answer (first
drafts, the method's own selection over them) with the final answer. Runs without round events
(baselines) show only their final accuracy.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from redraft.runner import summarize
from redraft.stats import wilson_interval
from redraft.store import Store
from redraft.tasks import load_task

SHOWN_OPTIONS = ("n", "k", "refiners", "rounds", "max_rounds", "iterations", "chains", "beam", "refine_top",
                 "verifier", "outcome_verifier", "step_verifier")


def round_answers(trace: list[dict[str, Any]]) -> dict[int, str | None]:
    """Answer after each round (the last note of a round wins, e.g. a budget stop inside it)."""
    return {event["round"]: event.get("answer") for event in trace if event["type"] == "round"}


def describe(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items() if k in SHOWN_OPTIONS)


def run_row(store: Store, run: Any, task: Any) -> list[str]:
    """One table row: accuracy, accuracy after each round, flips, samples and cost of a run."""
    records = store.results(run.id)
    problems = {p.id: p for p in task.problems(ids=[r.problem_id for r in records])}

    def correct(problem_id: str, answer: str | None) -> bool:
        return task.grade(problems[problem_id], answer, "").correct

    summary = summarize(store, run)
    low, high = wilson_interval(summary.correct, summary.problems)
    per_round: list[int] = []
    right_to_wrong = wrong_to_right = budget_stops = 0
    decisions: Counter[str] = Counter()
    traced = False
    for record in records:
        answers = round_answers(record.trace)
        budget_stops += any(e["type"] == "budget_exhausted" for e in record.trace) or record.error is not None
        if not answers:
            continue
        traced = True
        last = max(answers)
        decisions[next(e["decision"] for e in record.trace if e["type"] == "round")] += 1
        per_round.extend([0] * (last + 1 - len(per_round)))
        for k in range(len(per_round)):
            # a round the problem never reached counts with its final answer
            answer = record.answer if k > last else answers[max(r for r in answers if r <= k)]
            per_round[k] += correct(record.problem_id, answer)
        first = correct(record.problem_id, answers[0])
        right_to_wrong += first and not record.correct
        wrong_to_right += (not first) and record.correct
    n = len(records)
    drafts = sum(r.cost.by_role["solver"].samples for r in records if "solver" in r.cost.by_role)
    refinements = sum(r.cost.by_role["refiner"].samples for r in records if "refiner" in r.cost.by_role)
    return [run.strategy, describe(run.strategy_options), str(run.settings.get("budget_tokens")), str(n),
            f"{100 * summary.accuracy:.1f}% ({100 * low:.0f}–{100 * high:.0f})",
            " / ".join(f"{100 * c / n:.0f}%" for c in per_round) if traced else "-",
            str(right_to_wrong) if traced else "-", str(wrong_to_right) if traced else "-",
            f"{drafts / n:.1f}", f"{refinements / n:.1f}", f"{summary.per_problem(summary.cost.completion_tokens):.0f}",
            f"{summary.per_problem(summary.cost.calls):.1f}",
            str(budget_stops), ", ".join(f"{d}: {c}" for d, c in decisions.most_common(3)) or "-"]


HEADER = ["strategy", "options", "budget", "problems", "accuracy (95% CI)", "after round 0 / 1 / 2 ...",
          "right→wrong", "wrong→right", "drafts/p", "refinements/p", "out tok/p", "calls/p", "budget stops",
          "round-0 decisions"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--title", default="refinement runs: accuracy per round and flips")
    args = parser.parse_args()
    store = Store(args.db)
    tasks: dict[str, Any] = {}
    print(f"### {args.title}\n")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for run in store.list_runs():
        if not store.done_problem_ids(run.id):
            continue
        key = repr((run.task, sorted(run.task_options.items())))
        if key not in tasks:
            tasks[key] = load_task(run.task, **run.task_options)
        print("| " + " | ".join(run_row(store, run, tasks[key])) + " |")
    print("\n\"after round k\": accuracy if the method had stopped after round k (round 0 = its own selection over"
          " the first drafts). Flips: round-0 answer vs final answer. drafts/refinements: solver and refiner"
          " samples per problem. \"round-0 decisions\": e.g. magicore's easy/hard gate, glore's accept/refine.")


if __name__ == "__main__":
    main()
