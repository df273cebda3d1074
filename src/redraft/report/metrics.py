"""Metrics of stored runs, computed from the traces in the database alone (nothing is re-run).

Choices the issue left open, stated:

- Accuracy's 95% interval is a percentile bootstrap over problems (2000 resamples, fixed seed);
  a paired difference bootstraps the per-problem differences on the problems both runs finished.
- Samples: every output of a ``call`` event whose role writes solutions (``solver``, ``refiner``)
  plus every candidate a ``round`` event lists; critiques and verifier replies are not samples.
  Each sample's answer is extracted and graded by the task's grader here, after the fact (the
  strategy never saw these grades). pass@k is the share of problems with at least one correct
  sample, k being what the run drew (its mean is shown beside it).
- First-sample accuracy: the first solution output of the trace. Selection efficiency is
  (accuracy - first-sample accuracy) / (pass@k - first-sample accuracy), undefined when the
  denominator is 0.
- Rounds follow the convention in ``redraft.strategies.moves``: a round's answer is its ``answer=``
  or else the majority of its candidates' answers. A problem whose strategy stopped before round r
  counts with its final answer for round r (stopping is a decision that keeps the answer). The
  first draft is round 0's answer, or the first sample when a run has no round events; flips and
  the confidence/critique decomposition compare it with the final answer.
- Verifier scores: every non-call event with a ``scores`` list aligned with ``candidates`` (or
  ``answers``); each (candidate, score) pair counts once per problem. AUROC is the Mann-Whitney
  statistic (ties count half); calibration uses 5 equal-width bins, with ECE and Brier score.
- Pareto front (in the report): runs not dominated in (fewer completion tokens, higher accuracy),
  oracle runs excluded since they used the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..stats import bootstrap_interval
from ..store import ProblemRecord, RunInfo, Store
from ..voting import majority_vote

SOLUTION_ROLES = frozenset({"solver", "refiner"})
COST_FIELDS = ("calls", "samples", "prompt_tokens", "completion_tokens", "seconds", "cached_calls")


# -- grading samples after the fact --------------------------------------------------------------------------

class Grader:
    """The tasks of stored runs, loaded once, with every (problem, answer) graded once."""

    def __init__(self) -> None:
        self._tasks: dict[str, Any] = {}
        self._problems: dict[tuple[str, str], Any] = {}
        self._grades: dict[tuple[str, str, str | None], bool] = {}
        self.failures: dict[str, str] = {}

    @staticmethod
    def _task_key(run: RunInfo) -> str:
        return json.dumps([run.task, run.task_options], sort_keys=True)

    def task(self, run: RunInfo) -> Any | None:
        """The run's task, or None when it cannot be loaded here (e.g. its data file is missing)."""
        from ..tasks import load_task

        key = self._task_key(run)
        if key not in self._tasks:
            try:
                self._tasks[key] = load_task(run.task, **run.task_options)
            except Exception as exc:  # a report still shows what needs no grader
                self._tasks[key] = None
                self.failures[key] = f"{run.task}: {exc}"
        return self._tasks[key]

    def problem(self, run: RunInfo, problem_id: str) -> Any | None:
        task = self.task(run)
        if task is None:
            return None
        key = (self._task_key(run), problem_id)
        if key not in self._problems:
            found = task.problems(ids=[problem_id])
            self._problems[key] = found[0] if found else None
        return self._problems[key]

    def reference(self, run: RunInfo, problem_id: str) -> str | None:
        task, problem = self.task(run), self.problem(run, problem_id)
        return None if problem is None else str(task.reference(problem))

    def extract(self, run: RunInfo, problem_id: str, text: str) -> str | None:
        task, problem = self.task(run), self.problem(run, problem_id)
        return None if problem is None else task.extract(text, problem)

    def answer_key(self, run: RunInfo, answer: str) -> str:
        task = self.task(run)
        return task.answer_key(answer) if task is not None else answer.strip()

    def grade(self, run: RunInfo, problem_id: str, answer: str | None, text: str = "") -> bool | None:
        """Whether ``answer`` is right; None when the task cannot be loaded."""
        task, problem = self.task(run), self.problem(run, problem_id)
        if problem is None:
            return None
        if answer is None:
            return False
        key = (self._task_key(run), problem_id, answer)
        if key not in self._grades:
            self._grades[key] = bool(task.grade(problem, answer, text).correct)
        return self._grades[key]


# -- per problem ------------------------------------------------------------------------------------------------

@dataclass
class ProblemMetrics:
    record: ProblemRecord
    question: str | None
    reference: str | None
    samples: int  # solution samples drawn
    any_correct: bool | None  # pass@k for this problem
    first_correct: bool | None
    draft_correct: bool | None  # round 0's answer (or the first sample)
    round_correct: list[bool]  # after each round the trace records
    scored: list[tuple[float, bool, str]]  # (verifier score, graded correct, verifier name)
    # grades the report shows beside the trace: event index -> one grade per output / candidate
    trace_grades: dict[int, list[bool | None]] = field(default_factory=dict)
    trace_answers: dict[int, list[str | None]] = field(default_factory=dict)  # extracted, for call outputs
    round_answer_grades: dict[int, bool | None] = field(default_factory=dict)
    round_answers: dict[int, str | None] = field(default_factory=dict)  # event index -> the round's answer


def _round_answer(event: dict[str, Any], grader: Grader, run: RunInfo) -> str | None:
    if "answer" in event:
        return event["answer"]
    answers = [c.get("answer") for c in event.get("candidates") or [] if isinstance(c, dict)]
    return majority_vote(answers, lambda a: grader.answer_key(run, a)).answer


def analyse_problem(run: RunInfo, record: ProblemRecord, grader: Grader) -> ProblemMetrics:
    pid = record.problem_id
    problem = grader.problem(run, pid)
    can_grade = problem is not None
    trace_grades: dict[int, list[bool | None]] = {}
    trace_answers: dict[int, list[str | None]] = {}
    round_answer_grades: dict[int, bool | None] = {}
    round_answers: dict[int, str | None] = {}
    sample_grades: list[bool | None] = []
    rounds: dict[int, bool | None] = {}
    scored: dict[str, tuple[float, bool, str]] = {}
    default_verifier = str(run.strategy_options.get("verifier") or "verifier")
    for index, event in enumerate(record.trace):
        kind = event.get("type")
        if kind == "call":
            if event.get("role") in SOLUTION_ROLES:
                answers = [grader.extract(run, pid, text) for text in event.get("outputs", [])]
                grades = [grader.grade(run, pid, answer, text) if can_grade else None
                          for answer, text in zip(answers, event.get("outputs", []), strict=True)]
                trace_grades[index] = grades
                trace_answers[index] = answers
                sample_grades.extend(grades)
            continue
        candidates = [c for c in event.get("candidates") or [] if isinstance(c, dict)]
        if candidates:
            grades = [grader.grade(run, pid, c.get("answer"), c.get("text", "")) if can_grade else None
                      for c in candidates]
            trace_grades[index] = grades
            sample_grades.extend(grades)
        if kind == "round" and isinstance(event.get("round"), int):
            answer = _round_answer(event, grader, run)
            grade = grader.grade(run, pid, answer) if can_grade else None
            rounds[event["round"]] = grade
            round_answer_grades[index] = grade
            round_answers[index] = answer
        scores = event.get("scores")
        answers = [c.get("answer") for c in candidates] if candidates else event.get("answers")
        if can_grade and isinstance(scores, list) and isinstance(answers, list) and len(answers) == len(scores):
            name = str(event.get("verifier") or default_verifier)
            seen: dict[str, int] = {}
            for position, (score, answer) in enumerate(zip(scores, answers, strict=True)):
                if not isinstance(score, (int, float)) or isinstance(score, bool):
                    continue
                # a candidate carried into later rounds is the same (origin, round, text): count it once;
                # identical samples within one event are distinct draws and each count
                if candidates:
                    c = candidates[position]
                    identity = json.dumps([c.get("origin"), c.get("round"), c.get("text"), score])
                else:
                    identity = json.dumps([index, position])
                seen[identity] = seen.get(identity, -1) + 1
                text = candidates[position].get("text", "") if candidates else ""
                scored[f"{identity}#{seen[identity]}"] = (float(score), bool(grader.grade(run, pid, answer, text)),
                                                          name)
    first = next((g for g in sample_grades if g is not None), None) if can_grade else None
    if not can_grade:
        any_correct = None
    else:
        any_correct = record.correct or any(bool(g) for g in sample_grades)
    round_list: list[bool] = []
    if rounds and can_grade:
        last = max(rounds)
        for r in range(last + 1):
            value = rounds.get(r)
            round_list.append(bool(value) if value is not None else (round_list[-1] if round_list else False))
        draft = rounds.get(0)
        draft = bool(draft) if draft is not None else first
    else:
        draft = first
    return ProblemMetrics(record, problem.question if problem is not None else None,
                          grader.reference(run, pid), len(sample_grades), any_correct, first, draft, round_list,
                          list(scored.values()), trace_grades, trace_answers, round_answer_grades,
                          round_answers)


# -- per run ------------------------------------------------------------------------------------------------------

@dataclass
class Paired:
    """``run`` minus ``other`` on the problems both finished."""

    other_id: str
    other_label: str
    shared: int
    difference: float
    interval: tuple[float, float]


@dataclass
class VerifierMetrics:
    name: str
    pairs: int
    positives: int
    auroc: float | None
    ece: float
    brier: float
    bins: list[dict[str, float]]  # low, high, count, mean score, accuracy


@dataclass
class RunMetrics:
    run: RunInfo
    label: str
    kind: str = "run"
    matched_to: str | None = None  # its first match's refinement run
    detail: dict[str, Any] = field(default_factory=dict)  # how that match's n was chosen
    problems: list[ProblemMetrics] = field(default_factory=list)
    # every refinement run this one is a matched baseline of, with how n was chosen for it
    matches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    accuracy: float = 0.0
    interval: tuple[float, float] = (0.0, 0.0)
    per_problem: dict[str, float] = field(default_factory=dict)  # cost totals / problems
    by_role: dict[str, dict[str, float]] = field(default_factory=dict)  # role -> cost field / problem
    pass_at_k: float | None = None
    mean_k: float = 0.0
    first_sample_accuracy: float | None = None
    selection_efficiency: float | None = None
    round_accuracy: list[float] = field(default_factory=list)
    draft_accuracy: float | None = None
    right_to_wrong: int = 0
    wrong_to_right: int = 0
    p_stay_right: float | None = None
    p_become_right: float | None = None
    verifiers: list[VerifierMetrics] = field(default_factory=list)
    paired: Paired | None = None
    versus_matched: list[Paired] = field(default_factory=list)  # a refinement run minus its matched baselines
    errors: int = 0

    @property
    def n(self) -> int:
        return len(self.problems)

    @property
    def uses_oracle(self) -> bool:
        return self.run.uses_oracle

    @property
    def budget(self) -> int | None:
        return self.run.settings.get("budget_tokens")

    @property
    def group(self) -> str:
        """Runs on the same task configuration share a chart."""
        options = {k: v for k, v in self.run.task_options.items() if k != "data"}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        return f"{self.run.task} ({shown})" if shown else self.run.task


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def auroc(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """P(score of a right candidate > score of a wrong one), ties half; None without both kinds."""
    positives = [s for s, ok in pairs if ok]
    negatives = [s for s, ok in pairs if not ok]
    if not positives or not negatives:
        return None
    wins = 0.0
    for p in positives:
        for q in negatives:
            wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / (len(positives) * len(negatives))


def calibration(pairs: Sequence[tuple[float, bool]], bins: int = 5) -> tuple[float, float, list[dict[str, float]]]:
    """(ECE, Brier, bins) of scores in [0, 1] read as probabilities of being right.

    A score outside [0, 1] (a verifier that broke the Score contract) counts as its nearest bound
    everywhere, so ECE and Brier stay within [0, 1]."""
    pairs = [(min(max(s, 0.0), 1.0), ok) for s, ok in pairs]
    table = []
    ece = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(s, ok) for s, ok in pairs if low <= s < high or (b == bins - 1 and s == 1.0)]
        if not inside:
            table.append({"low": low, "high": high, "count": 0, "score": 0.0, "accuracy": 0.0})
            continue
        score = _mean([s for s, _ in inside])
        accuracy = _mean([float(ok) for _, ok in inside])
        ece += len(inside) / len(pairs) * abs(accuracy - score)
        table.append({"low": low, "high": high, "count": len(inside), "score": score, "accuracy": accuracy})
    brier = _mean([(s - float(ok)) ** 2 for s, ok in pairs])
    return ece, brier, table


def paired_difference(mine: RunMetrics, other: RunMetrics) -> Paired | None:
    theirs = {p.record.problem_id: p.record.correct for p in other.problems}
    diffs = [float(p.record.correct) - float(theirs[p.record.problem_id])
             for p in mine.problems if p.record.problem_id in theirs]
    if not diffs:
        return None
    return Paired(other.run.id, other.label, len(diffs), _mean(diffs), bootstrap_interval(diffs))


def run_metrics(store: Store, run: RunInfo, grader: Grader, *, label: str | None = None, kind: str = "run",
                matched_to: str | None = None, detail: dict[str, Any] | None = None,
                matches: list[tuple[str, dict[str, Any]]] | None = None) -> RunMetrics:
    records = store.results(run.id)
    metrics = RunMetrics(run, label or default_label(run), kind, matched_to, dict(detail or {}))
    metrics.matches = list(matches) if matches is not None else [(matched_to, metrics.detail)] if matched_to else []
    metrics.problems = [analyse_problem(run, record, grader) for record in records]
    if not records:
        return metrics
    count = len(records)
    correct = [float(r.correct) for r in records]
    metrics.accuracy = _mean(correct)
    metrics.interval = bootstrap_interval(correct)
    metrics.errors = sum(r.error is not None for r in records)
    metrics.per_problem = {
        "completion_tokens": sum(r.cost.completion_tokens for r in records) / count,
        "prompt_tokens": sum(r.cost.prompt_tokens for r in records) / count,
        "calls": sum(r.cost.calls for r in records) / count,
        "seconds": sum(r.cost.seconds for r in records) / count,
        "wall_seconds": sum(r.wall_seconds for r in records) / count,
    }
    roles: dict[str, dict[str, float]] = {}
    for record in records:
        for role, cost in record.cost.by_role.items():
            entry = roles.setdefault(role, dict.fromkeys(COST_FIELDS, 0.0))
            for name in COST_FIELDS:
                entry[name] += getattr(cost, name) / count
    metrics.by_role = roles

    graded = [p for p in metrics.problems if p.any_correct is not None]
    if graded:
        metrics.pass_at_k = _mean([float(bool(p.any_correct)) for p in graded])
        metrics.mean_k = _mean([float(p.samples) for p in graded])
        firsts = [float(bool(p.first_correct)) for p in graded]
        metrics.first_sample_accuracy = _mean(firsts)
        accuracy = _mean([float(p.record.correct) for p in graded])
        headroom = metrics.pass_at_k - metrics.first_sample_accuracy
        metrics.selection_efficiency = (accuracy - metrics.first_sample_accuracy) / headroom if headroom > 0 else None

        with_draft = [p for p in graded if p.draft_correct is not None]
        if with_draft:
            metrics.draft_accuracy = _mean([float(bool(p.draft_correct)) for p in with_draft])
            right = [p for p in with_draft if p.draft_correct]
            wrong = [p for p in with_draft if not p.draft_correct]
            metrics.right_to_wrong = sum(not p.record.correct for p in right)
            metrics.wrong_to_right = sum(p.record.correct for p in wrong)
            metrics.p_stay_right = _mean([float(p.record.correct) for p in right]) if right else None
            metrics.p_become_right = _mean([float(p.record.correct) for p in wrong]) if wrong else None

        depth = max((len(p.round_correct) for p in graded), default=0)
        if depth:
            per_round = []
            for r in range(depth):
                per_round.append(_mean([float(p.round_correct[r] if r < len(p.round_correct) else p.record.correct)
                                        for p in graded]))
            metrics.round_accuracy = per_round

        by_verifier: dict[str, list[tuple[float, bool]]] = {}
        for p in graded:
            for score, ok, name in p.scored:
                by_verifier.setdefault(name, []).append((score, ok))
        for name, pairs in sorted(by_verifier.items()):
            ece, brier, bins = calibration(pairs)
            metrics.verifiers.append(VerifierMetrics(name, len(pairs), sum(ok for _, ok in pairs), auroc(pairs),
                                                     ece, brier, bins))
    return metrics


def default_label(run: RunInfo) -> str:
    """The strategy with the options that tell its runs apart (max_tokens and defaults are left out)."""
    from ..strategies import non_default_options

    changed = non_default_options(run.strategy, run.strategy_options)
    keep = {"n", "verifier", "rounds"}
    shown = {k: v for k, v in run.strategy_options.items() if k in keep or k in changed}
    shown.pop("max_tokens", None)
    text = run.strategy + (f"({', '.join(f'{k}={v}' for k, v in sorted(shown.items()))})" if shown else "")
    budget = run.settings.get("budget_tokens")
    return text + (f" @{budget}tok" if budget is not None else "")


def pareto_front(points: Iterable[tuple[str, float, float]]) -> set[str]:
    """Ids of (id, tokens, accuracy) points no other point beats on both (fewer tokens, higher accuracy)."""
    points = list(points)
    front = set()
    for pid, tokens, accuracy in points:
        dominated = any((t <= tokens and a >= accuracy) and (t < tokens or a > accuracy) for _, t, a in points)
        if not dominated:
            front.add(pid)
    return front


def pair_runs(metrics: Sequence[RunMetrics], baseline: str) -> None:
    """Set each run's paired difference against the ``baseline`` strategy's run on the same task and
    model (same budget if there is one), and each refinement run's against its matched baselines."""
    for mine in metrics:
        if mine.run.strategy == baseline:
            continue
        candidates = [m for m in metrics if m.run.strategy == baseline and m.run.task == mine.run.task
                      and m.run.task_options == mine.run.task_options
                      and m.run.model_identity == mine.run.model_identity and m.problems]
        candidates.sort(key=lambda m: (m.budget != mine.budget, m.run.strategy_options != {},
                                       -len({p.record.problem_id for p in m.problems}
                                            & {p.record.problem_id for p in mine.problems})))
        if candidates:
            mine.paired = paired_difference(mine, candidates[0])
    by_id = {m.run.id: m for m in metrics}
    for other in metrics:
        # a grid cell can double as a matched baseline (same configuration), and one baseline can be
        # matched to several refinement runs: each of them is compared with it
        for refinement, _ in other.matches:
            if refinement in by_id and refinement != other.run.id:
                paired = paired_difference(by_id[refinement], other)
                if paired is not None:
                    by_id[refinement].versus_matched.append(paired)
