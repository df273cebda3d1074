"""Per-round accuracy of the code refinement runs (self_debug, pgs): what each round fixes and breaks.

For every run of a round-recording strategy in the database, the answer the method would have
returned after each round (the trace's ``round`` events, ``answer=``) is graded with the task's
own hidden tests in the sandbox; a problem that stopped early keeps its last answer in later
rounds. "Fixes" at round r: problems wrong after round r-1 and right after round r; "breaks":
the reverse. Fractions are of all problems in the run. A second table says how each problem's
loop ended (its last round's decision): its visible checks passed (at the draft, or after
revising), a revision repeated code already tested, or the rounds ran out. For pgs, a third
table says what became of each problem's Tester after its repairs: no usable test file, every
property invalid, at least one valid property (one that loads and fails only by an assertion or
an error inside the candidate; without one, pgs is self-debugging on the visible examples), or no
candidate that loaded to check them on; the exception types that made properties invalid
(recorded by pgs runs since the trace's ``reasons`` field exists; older runs show "–"); and the
problems where a round asked for a revision on property violations alone (the visible examples
passed: what the properties add over self_debug), with how many of those the hidden tests say
were fixed or broken (final against draft).

Usage: python benchmarks/code_rounds.py --db benchmarks/humaneval.db
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from redraft.report.metrics import default_label
from redraft.store import Store
from redraft.strategies.pgs import VIOLATION_HEADER
from redraft.tasks import load_task

ROUND_STRATEGIES = ("self_debug", "pgs")


def round_answers(trace: list[dict], final: str | None) -> list[str | None]:
    answers = [event.get("answer") for event in trace if event.get("type") == "round"]
    return answers or [final]


def ending(trace: list[dict]) -> str:
    rounds = [event for event in trace if event.get("type") == "round"]
    if not rounds:
        return "other"
    decision = str(rounds[-1].get("decision", ""))
    if decision == "stop: all checks pass":
        return "checks pass at the draft" if len(rounds) == 1 else "checks pass after revising"
    if decision.startswith("stop: repeats"):
        return "revision repeats tested code"
    return "rounds spent" if decision == "stop: rounds spent" else "other"


def last_check(trace: list[dict]) -> dict | None:
    """A pgs problem's last property check (its ``properties`` event), None if none was recorded."""
    return next((event for event in reversed(trace) if event.get("type") == "properties"), None)


def valid_properties(trace: list[dict]) -> int | None:
    """The valid properties of a pgs problem's last property check (None: no check recorded)."""
    check = last_check(trace)
    return len(check.get("valid") or []) if check else None


TESTER_OUTCOMES = ("no usable test file", "every property invalid", "a valid property", "no candidate loaded")


def tester_outcome(trace: list[dict]) -> str:
    """What became of a pgs problem's Tester, after its repairs."""
    writes = [event for event in trace if event.get("type") == "tester"]
    if not writes or not writes[-1].get("usable"):
        return "no usable test file"
    valid = valid_properties(trace)
    if valid is None:  # properties are checked on the first candidate that loads
        return "no candidate loaded"
    return "a valid property" if valid else "every property invalid"


def property_driven(trace: list[dict]) -> bool:
    """Whether a pgs round asked for a revision on property violations alone (its visible examples passed)."""
    return any(event.get("type") == "round" and event.get("decision") == "revise"
               and (event.get("critiques") or [""])[0].startswith(VIOLATION_HEADER) for event in trace)


def drop_reasons(trace: list[dict]) -> list[str]:
    """Why the last check dropped properties: the exception's type (recorded since the reasons field exists)."""
    reasons = (last_check(trace) or {}).get("reasons") or {}
    return [re.split(r"[:(\s]", reason.strip(), maxsplit=1)[0] or "?" for reason in reasons.values()]


ENDINGS = ("checks pass at the draft", "checks pass after revising", "revision repeats tested code",
           "rounds spent", "other")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    store = Store(args.db)
    tasks: dict[str, object] = {}
    endings: list[str] = []
    testers: list[str] = []
    print("### Refinement rounds: accuracy after each round, and what each round fixes and breaks\n")
    print("| run | model | problems | round | accuracy | fixes | breaks |")
    print("|---|---|---|---|---|---|---|")
    for run in store.list_runs():
        if run.strategy not in ROUND_STRATEGIES:
            continue
        records = store.results(run.id)
        if not records:
            continue
        key = f"{run.task}|{sorted(run.task_options.items())}"
        if key not in tasks:
            tasks[key] = load_task(run.task, **run.task_options)
        task = tasks[key]
        by_id = {p.id: p for p in task.problems(ids=[r.problem_id for r in records])}
        per_problem = [(by_id[r.problem_id], round_answers(r.trace, r.answer)) for r in records]
        depth = max(len(answers) for _, answers in per_problem)
        jobs = {(problem.id, answer): (problem, answer) for problem, answers in per_problem for answer in answers}
        with ThreadPoolExecutor(4) as pool:  # identical programs are graded once
            verdicts = pool.map(lambda job, task=task: task.grade(job[0], job[1], "").correct, jobs.values())
            grades = dict(zip(jobs, verdicts, strict=True))
        correct = [[grades[(problem.id, answers[min(r, len(answers) - 1)])] for r in range(depth)]
                   for problem, answers in per_problem]
        total = len(correct)
        for r in range(depth):
            accuracy = sum(row[r] for row in correct) / total
            fixes = sum(row[r] and not row[r - 1] for row in correct) / total if r else 0.0
            breaks = sum(row[r - 1] and not row[r] for row in correct) / total if r else 0.0
            print(f"| {default_label(run)} | {run.model} | {total} | {r} | {100 * accuracy:.1f}% | "
                  f"{100 * fixes:.1f}% | {100 * breaks:.1f}% |")
        counts = [sum(ending(r.trace) == kind for r in records) for kind in ENDINGS]
        endings.append(f"| {default_label(run)} | {run.model} | {total} | " + " | ".join(map(str, counts)) + " |")
        if run.strategy == "pgs":
            outcomes = Counter(tester_outcome(r.trace) for r in records)
            reasons = Counter(reason for r in records for reason in drop_reasons(r.trace))
            driven = [row for r, row in zip(records, correct, strict=True) if property_driven(r.trace)]
            testers.append(f"| {default_label(run)} | {run.model} | {total} | "
                           + " | ".join(str(outcomes[kind]) for kind in TESTER_OUTCOMES)
                           + f" | {sum(valid_properties(r.trace) or 0 for r in records)} | {len(driven)} | "
                           + f"{sum(row[-1] and not row[0] for row in driven)} | "
                           + f"{sum(row[0] and not row[-1] for row in driven)} | "
                           + (", ".join(f"{kind} {n}" for kind, n in reasons.most_common(4)) or "–") + " |")
    if endings:
        print("\n### How each problem's refinement loop ended (problems)\n")
        print("| run | model | problems | " + " | ".join(ENDINGS) + " |")
        print("|---" * (3 + len(ENDINGS)) + "|")
        print("\n".join(endings))
    if testers:
        print("\n### pgs: what became of the Tester's properties (problems; after its repairs)\n")
        print("| run | model | problems | " + " | ".join(TESTER_OUTCOMES)
              + " | valid properties in all | revised on properties alone | of those, fixed | of those, broken"
              + " | why properties were dropped (most common) |")
        print("|---" * (8 + len(TESTER_OUTCOMES)) + "|")
        print("\n".join(testers))


if __name__ == "__main__":
    main()
