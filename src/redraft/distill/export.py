"""Stored runs -> training sets: ``sft``, ``dpo``, ``refine`` and ``steps``, in the formats TRL reads.

Every record is one JSON object with the columns its trainer needs and a ``provenance`` object
(run, problem, task, model and model identity, strategy, round, source, ...). Labels come from the
task's grader, re-applied to every sampled solution (``attempts.py``), never from a verifier's
belief, except the step values of ``steps`` (see there).

- ``sft`` (STaR / rejection-sampling fine-tuning): correct solutions as conversational
  prompt-completion pairs (the plain task prompt -> the solution), so the loss falls on the
  solution only. De-duplicated (whitespace-insensitive) per problem, at most ``per_problem`` kept
  (a seeded random choice among the distinct correct ones, so the cap does not favour the first
  samples), truncated outputs dropped, and optionally only problems whose greedy draft was wrong.
- ``dpo`` (Iterative RPO): (prompt, chosen, rejected) with a correct chosen and an incorrect
  rejected solution to the same problem from the same model; at most ``pairs_per_problem`` pairs,
  drawn at random (seeded) from all correct x incorrect combinations, as Iterative RPO does. How
  each pair was drawn is in its ``pair`` column.
- ``refine`` (GLoRe / PTR / EVOLVE): from each refinement call whose draft was wrong and whose
  result is right: the refiner's prompt (question, draft, critique) -> the corrected solution.
  ``refinement`` is ``global`` (the whole solution rewritten: GLoRe's global refiner, Self-Refine's
  revise) or ``local`` (continued from the steps before the first error); write them apart.
- ``steps`` (SORM / Math-Shepherd): a solution's steps with per-step values, in TRL's stepwise
  supervision format (``prompt``, ``completions``, ``labels``): from the ``rollout`` verifier's
  continuations re-graded with the key (``rollout_scores_in``), or from trace events that recorded
  a step verifier's Score (``step_scores_in``).
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..steps import SPLIT_MODES, prefix_through, split_steps
from ..store import Store
from ..strategies import hsr, iad, moves, self_debug
from ..verifiers.rollout import CONTINUE_PROMPT
from .attempts import (
    Attempt,
    ProblemTrace,
    RunError,
    call_rounds,
    greedy_draft,
    known_test_split,
    load_problem_traces,
    normalized,
    resolve_runs,
)

FORMATS = ("sft", "dpo", "refine", "steps")
# call labels of refinement moves (``moves.refine`` labels its call with the candidate's origin), and of the
# strategies' own whole-solution rewrites: self_debug's revision, HSR's repair, IAD's improved solution
REFINE_LABELS = ("refine", "global", "local", "revise", "repair", "iad")


@dataclass
class ExportOptions:
    # all formats
    sources: tuple[str, ...] | None = None  # keep attempts of these sources only ("draft", "refine", "final", ...)
    keep_truncated: bool = False  # outputs cut off at max_tokens are dropped unless set
    holdout_questions: frozenset[str] = frozenset()  # never export these problems (held-out evaluation)
    seed: int = 0
    # sft
    per_problem: int = 4
    only_hard: bool = False  # only problems whose greedy draft was wrong
    # dpo
    pairs_per_problem: int = 4
    rejected_needs_answer: bool = False  # rejected must give a (wrong) answer, not none at all
    # steps
    step_threshold: float = 0.5  # a step is labelled good when its value is at least this


@dataclass
class Export:
    format: str
    records: list[dict[str, Any]]
    stats: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # one line each: test-split runs let through, oracle runs

    def by_refinement(self) -> dict[str, list[dict[str, Any]]]:
        """``refine`` records split into their kinds (global / local), to be written apart."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in self.records:
            groups[record.get("refinement", "all")].append(record)
        return dict(groups)


def export_runs(store: Store, run_ids: Sequence[str], fmt: str, options: ExportOptions | None = None, *,
                allow_test_split: bool = False) -> Export:
    """Build one training set of format ``fmt`` from stored runs (the Python API behind ``redraft distill``).

    Each run is used once however often it is named. A run on a known test split (``known_test_split``)
    raises ``RunError`` unless ``allow_test_split``, which exports it with a line in ``Export.warnings``;
    runs that used the oracle are exported (``provenance.uses_oracle``) with a warning line too."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not run_ids:
        raise ValueError("give at least one run")
    options = options or ExportOptions()
    runs = resolve_runs(store, run_ids)
    warnings: list[str] = []
    for run in runs:
        reason = known_test_split(run.task, run.task_options)
        if reason is not None and not allow_test_split:
            raise RunError(f"run {run.id}: {reason}, and training labels must come from a train split "
                           f"(--allow-test-split / allow_test_split=True exports it anyway)")
        if reason is not None:
            warnings.append(f"run {run.id} is on a test split ({reason}): do not evaluate the trained model on it")
        if run.uses_oracle:
            warnings.append(f"run {run.id} used the oracle (the answer key) while solving: its records say "
                            f"provenance.uses_oracle")
    items = load_problem_traces(store, [run.id for run in runs])
    held = normalized_questions(options.holdout_questions)
    kept = [item for item in items if normalized(item.problem.question) not in held]
    stats = {"problems": len({item.key for item in items}), "held_out_skipped": len(items) - len(kept),
             "attempts": sum(len(i.attempts) for i in kept),
             "attempts_correct": sum(a.correct for i in kept for a in i.attempts)}
    builder = {"sft": sft_records, "dpo": dpo_records, "refine": refine_records, "steps": step_records}[fmt]
    records = builder(kept, options, stats)
    stats["records"] = len(records)
    return Export(fmt, records, stats, warnings)


def normalized_questions(questions: Iterable[str]) -> set[str]:
    return {normalized(q) for q in questions}


def usable(attempt: Attempt, options: ExportOptions) -> bool:
    if attempt.truncated and not options.keep_truncated:
        return False
    return options.sources is None or attempt.source in options.sources


def group_by_problem(items: Sequence[ProblemTrace], *,
                     by_model: bool = False) -> dict[tuple[str, ...], list[ProblemTrace]]:
    groups: dict[tuple[str, ...], list[ProblemTrace]] = defaultdict(list)
    for item in items:
        key = (*item.key, item.run.model_identity) if by_model else item.key
        groups[key].append(item)
    return groups


# -- sft -------------------------------------------------------------------------------------------------------

def sft_records(items: Sequence[ProblemTrace], options: ExportOptions, stats: dict[str, int]) -> list[dict[str, Any]]:
    records = []
    stats.update(sft_no_greedy_draft=0, sft_easy_skipped=0, sft_problems_with_correct=0)
    groups = group_by_problem(items)
    if options.only_hard and groups and not any(greedy_draft(item) for item in items):
        raise ValueError("--only-hard needs each problem's greedy draft: include a greedy run (e.g. cot) "
                         "of the same task and problems")
    for group in groups.values():
        if options.only_hard:
            greedy = next((g for g in map(greedy_draft, group) if g is not None), None)
            if greedy is None:
                stats["sft_no_greedy_draft"] += 1
                continue
            if greedy.correct:
                stats["sft_easy_skipped"] += 1
                continue
        pool: dict[str, tuple[ProblemTrace, Attempt]] = {}
        for item in group:
            for attempt in item.attempts:
                if attempt.correct and usable(attempt, options):
                    pool.setdefault(normalized(attempt.text), (item, attempt))
        if not pool:
            continue
        stats["sft_problems_with_correct"] += 1
        chosen = list(pool.values())
        rng = random.Random(f"sft:{options.seed}:{group[0].key}")
        if len(chosen) > options.per_problem:
            chosen = rng.sample(chosen, options.per_problem)
        for item, attempt in chosen:
            records.append({
                "prompt": item.plain_prompt,
                "completion": [{"role": "assistant", "content": attempt.text}],
                "answer": attempt.answer,
                "provenance": item.attempt_provenance(attempt),
            })
    return records


# -- dpo -------------------------------------------------------------------------------------------------------

def dpo_records(items: Sequence[ProblemTrace], options: ExportOptions, stats: dict[str, int]) -> list[dict[str, Any]]:
    records = []
    stats.update(dpo_problems_paired=0, dpo_all_correct=0, dpo_all_wrong=0)
    for group in group_by_problem(items, by_model=True).values():
        correct: dict[str, tuple[ProblemTrace, Attempt]] = {}
        wrong: dict[str, tuple[ProblemTrace, Attempt]] = {}
        for item in group:
            for attempt in item.attempts:
                if not usable(attempt, options):
                    continue
                if attempt.correct:
                    correct.setdefault(normalized(attempt.text), (item, attempt))
                elif attempt.answer is not None or not options.rejected_needs_answer:
                    wrong.setdefault(normalized(attempt.text), (item, attempt))
        if not correct or not wrong:
            stats["dpo_all_wrong" if not correct else "dpo_all_correct"] += 1
            continue
        stats["dpo_problems_paired"] += 1
        combos = [(c, w) for c in correct.values() for w in wrong.values()]
        rng = random.Random(f"dpo:{options.seed}:{group[0].key}")
        picked = rng.sample(combos, min(options.pairs_per_problem, len(combos)))
        rule = {"rule": "random correct x incorrect, same problem and model", "seed": options.seed,
                "correct_candidates": len(correct), "incorrect_candidates": len(wrong),
                "rejected_needs_answer": options.rejected_needs_answer}
        for (c_item, chosen), (w_item, rejected) in picked:
            records.append({
                "prompt": c_item.plain_prompt,
                "chosen": [{"role": "assistant", "content": chosen.text}],
                "rejected": [{"role": "assistant", "content": rejected.text}],
                "pair": {**rule, "chosen_answer": chosen.answer, "rejected_answer": rejected.answer},
                "provenance": {"chosen": c_item.attempt_provenance(chosen),
                               "rejected": w_item.attempt_provenance(rejected)},
            })
    return records


# -- refine ----------------------------------------------------------------------------------------------------

def template_pattern(template: str) -> re.Pattern[str]:
    """A regex that reads the fields back out of a formatted prompt template."""
    parts = re.split(r"\{(\w+)(?::[^}]*)?\}", template)  # a field may carry a format spec: {score:.2f}
    pattern = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>.*?)" for index, part in enumerate(parts))
    return re.compile(f"^{pattern}$", re.DOTALL)


# (kind, pattern): the refinement prompts of redraft's shared moves and of the strategies that rewrite a
# whole solution from a single prompt; other prompts fall back to the conversation or to matching drafts
REFINE_TEMPLATES = [
    ("local", template_pattern(moves.LOCAL_REFINE_PROMPT)),
    ("global", template_pattern(moves.GLOBAL_REFINE_PROMPT)),
    ("global", template_pattern(moves.REFINE_PROMPT)),
    ("global", template_pattern(hsr.REPAIR_PROMPT)),
    ("global", template_pattern(iad.IAD_PROMPT)),
]
# self_debug revises in the conversation: the draft is an assistant turn, the feedback the user turn after it
CONVERSATION_FEEDBACK = [template_pattern(self_debug.EXPLAIN_PROMPT), template_pattern(self_debug.FIX_PROMPT)]


def read_refine_prompt(content: str) -> tuple[str, dict[str, str]] | None:
    for kind, pattern in REFINE_TEMPLATES:
        match = pattern.match(content)
        if match:
            return kind, match.groupdict()
    return None


def refine_records(items: Sequence[ProblemTrace], options: ExportOptions,
                   stats: dict[str, int]) -> list[dict[str, Any]]:
    records = []
    stats.update(refine_calls=0, refine_draft_unknown=0, refine_wrong_to_right=0, refine_other_flips=0)
    for item in items:
        rounds = _rounds(item)
        for index, event in enumerate(item.record.trace):
            if event.get("type") != "call" or event.get("label") not in REFINE_LABELS or not event.get("messages"):
                continue
            content = event["messages"][-1].get("content", "")
            parsed = read_refine_prompt(content)
            kind = parsed[0] if parsed else ("local" if event["label"] == "local" else "global")
            fields = parsed[1] if parsed else conversation_fields(event["messages"])
            for sample, output in enumerate(event.get("outputs", [])):
                stats["refine_calls"] += 1
                finish = (event.get("finish") or [None] * (sample + 1))[sample]
                if finish == "length" and not options.keep_truncated:
                    continue
                draft = _draft_of(item, kind, fields, content, index)
                if draft is None:
                    stats["refine_draft_unknown"] += 1
                    continue
                prefix = fields.get("prefix", "") if kind == "local" else ""
                corrected = f"{prefix.rstrip()}\n{output.lstrip()}" if prefix.strip() else output
                _, draft_right, _ = item.grade(draft)
                answer, right, detail = item.grade(corrected)
                if draft_right or not right:
                    stats["refine_other_flips"] += 1
                    continue
                stats["refine_wrong_to_right"] += 1
                records.append({
                    "prompt": event["messages"],
                    "completion": [{"role": "assistant", "content": output}],
                    "refinement": kind,
                    "question": item.problem.question,
                    "draft": draft,
                    "critique": fields.get("feedback") or fields.get("critique") or fields.get("peers") or "",
                    "corrected": corrected,
                    "answer": answer,
                    "provenance": item.provenance(round=rounds[index], source=event["label"], call=index,
                                                  sample=sample, temperature=_float(event.get("temperature")),
                                                  grade=detail, role=event.get("role")),
                })
    return records


def conversation_fields(messages: Sequence[dict[str, Any]]) -> dict[str, str]:
    """A revision made in the conversation (self_debug): the first assistant turn is the draft, the user
    turn after it carries the feedback (an explain-first revision's later "Now fix it." is not it)."""
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        fields = {"solution": str(message.get("content", ""))}
        for later in messages[index + 1:]:
            if later.get("role") == "user":
                text = str(later.get("content", ""))
                match = next((m for m in (p.match(text) for p in CONVERSATION_FEEDBACK) if m), None)
                fields["feedback"] = match["feedback"].strip() if match else text
                break
        return fields
    return {}


def _rounds(item: ProblemTrace) -> list[int | None]:
    return call_rounds(item.record.trace)


def _draft_of(item: ProblemTrace, kind: str, fields: dict[str, str], content: str, index: int) -> str | None:
    """The draft the refinement call at trace event ``index`` started from, or None when it is unknown.

    Global: the solution its prompt quotes, else the longest known attempt it quotes. Local: the prompt
    holds only the kept prefix, so the draft is the one attempt made before the call (not itself a local
    refinement) that starts with that prefix; when several do (an empty prefix, "(nothing yet)", fits
    every one), the one quoted by the earlier call that wrote this call's critique; else unknown."""
    if kind == "local" and "prefix" in fields:
        prefix = normalized(fields["prefix"])
        prefix = "" if prefix == "(nothing yet)" else prefix
        drafts = {normalized(a.text): a.text for a in item.attempts
                  if a.source != "local" and a.call is not None and a.call < index
                  and (not prefix or normalized(a.text) == prefix or normalized(a.text).startswith(prefix + " "))}
        critique = normalized(fields.get("critique", ""))
        if len(drafts) > 1 and critique:
            quoting = " ".join(normalized(m.get("content", "")) for event in item.record.trace[:index]
                               if event.get("type") == "call"
                               and any(normalized(o) == critique for o in event.get("outputs", []))
                               for m in event.get("messages", []))
            drafts = {flat: text for flat, text in drafts.items() if flat in quoting}
        return next(iter(drafts.values())) if len(drafts) == 1 else None
    if "solution" in fields:
        return fields["solution"].strip()
    quoted = [a.text for a in item.attempts if normalized(a.text) and normalized(a.text) in normalized(content)]
    return max(quoted, key=len) if quoted else None


# -- steps -----------------------------------------------------------------------------------------------------

@dataclass
class StepScore:
    """A step verifier's verdict on one solution, as found in a trace."""

    solution: str
    values: list[float] | None
    first_error: int | None
    step_texts: list[str] | None
    split: str
    source: str  # which verifier / event recorded it
    rollout_answers: list[list[str | None]] | None = None
    event: int = 0
    regraded: bool = False  # values re-measured with the answer key from the rollouts themselves


def step_scores_in(trace: Sequence[dict[str, Any]]) -> list[StepScore]:
    """Step verdicts recorded in a trace. Two shapes are read:

    1. an event carrying one Score (``Score.to_dict()`` keys) and the solution it scored, e.g.
       ``ctx.note("score", verifier="rollout", solution=text, split="auto", **score.to_dict())``;
       optional ``step_texts`` (the steps as the verifier split them; else ``split_steps(solution,
       split)``) and ``rollout_answers`` (per step, the answers its rollouts reached, which the
       exporter re-grades with the task's key);
    2. a ``round`` note with ``step_scores``: a list of Score dicts (or None) aligned with its
       ``candidates``.
    """
    found: list[StepScore] = []
    for index, event in enumerate(trace):
        if event.get("type") == "call":
            continue
        if isinstance(event.get("solution"), str) and ({"steps", "values", "first_error", "first_drop"} & set(event)):
            found.append(_step_score(event, event["solution"], index))
        for candidate, score in zip(event.get("candidates") or [], event.get("step_scores") or [], strict=False):
            if isinstance(score, dict) and isinstance(candidate, dict) and isinstance(candidate.get("text"), str):
                found.append(_step_score({**score, "verifier": score.get("verifier", event.get("verifier"))},
                                         candidate["text"], index))
    return [s for s in found if s.values is not None or s.first_error is not None or s.rollout_answers]


ROLLOUT_LABEL = re.compile(r"^rollout_step_(\d+)$")
CONTINUE_PATTERN = template_pattern(CONTINUE_PROMPT)


@dataclass(frozen=True)
class RolloutCall:
    index: int  # trace event
    step: int  # the prefix runs through this step
    prefix: str  # normalized
    outputs: list[str]


def rollout_scores_in(item: ProblemTrace) -> list[StepScore]:
    """Step values re-measured with the key from the ``rollout`` verifier's own calls.

    That verifier labels the k continuations of the prefix through step i ``rollout_step_{i}`` (the
    prefix prefilled as an assistant turn, or quoted in its ``CONTINUE_PROMPT``) and, after scoring one
    solution, notes ``rollout_values`` (``rolled_out`` positions, one value per step, the consensus).
    Rollouts go to the solution they were made for: an attempt, split as in ``SPLIT_MODES`` order,
    claims a ``rollout_values`` note with as many values as it has steps whose last value agrees with
    its own answer, and, for each rolled-out position, an earlier call not yet claimed whose prefix is
    exactly its own prefix through that step. Each note and call is claimed once, so a solution never
    gets the rollouts of another one sharing its first steps, and an attempt never scored gets none.
    A step's value is the fraction of its continuations (prefix + continuation) the grader accepts
    (Math-Shepherd's soft estimate with the answer key, not the verifier's consensus). A step with
    no rollout of its own takes the next rolled-out step's value, as the verifier does, and the
    last step is the solution itself."""
    calls: list[RolloutCall] = []
    notes: list[tuple[int, dict[str, Any]]] = []
    for index, event in enumerate(item.record.trace):
        match = ROLLOUT_LABEL.match(str(event.get("label", ""))) if event.get("type") == "call" else None
        prefix = _rollout_prefix(event.get("messages") or []) if match else None
        if match and prefix is not None:
            calls.append(RolloutCall(index, int(match.group(1)), normalized(prefix), list(event.get("outputs", []))))
        if event.get("type") == "rollout_values" and isinstance(event.get("values"), list) \
                and isinstance(event.get("rolled_out"), list):
            notes.append((index, event))
    claimed: set[int] = set()  # trace events (calls and notes) already attributed to a solution
    found = []
    for attempt in item.attempts:
        claim = _claim_rollouts(item, attempt, calls, notes, claimed)
        if claim is None:
            continue
        steps, outputs = claim
        values: list[float | None] = [
            sum(item.grade(text)[1] for text in outputs[i]) / len(outputs[i]) if outputs.get(i) else None
            for i in range(len(steps))]
        values[-1] = 1.0 if attempt.correct else 0.0
        for index in range(len(values) - 2, -1, -1):
            if values[index] is None:
                values[index] = values[index + 1]
        found.append(StepScore(attempt.text, [float(v) for v in values if v is not None], None, steps, "auto",
                               "rollout", event=attempt.call or 0, regraded=True))
    return found


def _rollout_prefix(messages: Sequence[dict[str, Any]]) -> str | None:
    """The prefix a rollout call continued: its prefilled assistant turn, or the one its prompt quotes."""
    if not messages:
        return None
    last = messages[-1]
    if last.get("role") == "assistant":
        return str(last.get("content", ""))
    match = CONTINUE_PATTERN.match(str(last.get("content", "")))
    return match.group("prefix") if match else None


def _claim_rollouts(item: ProblemTrace, attempt: Attempt, calls: Sequence[RolloutCall],
                    notes: Sequence[tuple[int, dict[str, Any]]],
                    claimed: set[int]) -> tuple[list[str], dict[int, list[str]]] | None:
    """(steps, graded texts per rolled-out step) of the rollouts made for this attempt, claiming them."""
    own = item.task.answer_key(attempt.answer) if attempt.answer is not None else None
    for mode in SPLIT_MODES:
        steps = split_steps(attempt.text, mode)
        for note_index, note in notes:
            positions = note["rolled_out"]
            consensus = note.get("consensus")
            final = 1.0 if consensus is not None and own == consensus else 0.0
            if note_index in claimed or not positions or len(note["values"]) != len(steps) \
                    or note["values"][-1] != final:
                continue
            picked: dict[int, RolloutCall] = {}
            for position in positions:
                if not isinstance(position, int) or not 0 <= position < len(steps) - 1:
                    break
                prefix = normalized(prefix_through(steps, position))
                call = next((c for c in calls if c.index < note_index and c.step == position and c.prefix == prefix
                             and c.index not in claimed and c not in picked.values()), None)
                if call is None:
                    break
                picked[position] = call
            else:
                claimed.update([note_index, *(c.index for c in picked.values())])
                return steps, {position: [f"{prefix_through(steps, position)}\n{t}" for t in call.outputs]
                               for position, call in picked.items()}
    return None


def _step_score(data: dict[str, Any], solution: str, index: int) -> StepScore:
    values = data.get("steps", data.get("values"))  # Score.to_dict() names, or the rollout verifier's note
    split = data.get("split") or "auto"
    if split not in SPLIT_MODES:
        split = "auto"
    return StepScore(solution=solution, values=[float(v) for v in values] if values is not None else None,
                     first_error=data.get("first_error", data.get("first_drop")),
                     step_texts=data.get("step_texts"), split=split,
                     source=str(data.get("verifier") or data.get("type") or "unknown"),
                     rollout_answers=data.get("rollout_answers"), event=index)


def step_records(items: Sequence[ProblemTrace], options: ExportOptions,
                 stats: dict[str, int]) -> list[dict[str, Any]]:
    """Values, in order of preference: the ``rollout`` verifier's own calls re-graded with the key
    (``rollout_scores_in``), then recorded Scores (``step_scores_in``).

    Record fields: ``labels`` is the PRM label (the column TRL's PRMTrainer reads), one bool per step;
    ``values`` are the values those labels are thresholded from; ``verifier_values`` is what the
    verifier itself recorded (its belief, None when nothing was recorded or the values come from its
    own rollout calls re-graded), kept apart so it is never mistaken for a label.

    Label rule (the papers leave the threshold to the user): a step is good when its value is at
    least ``step_threshold``; with rollout answers recorded, the value is the fraction the grader
    accepts (Math-Shepherd's soft estimate against the key); with only ``first_error``, steps before
    it are good and the rest bad. The last step is the whole solution, so its value is the grader's
    verdict on it (1.0 or 0.0) and so is its label, whatever the verifier believed."""
    records = []
    stats.update(steps_scored=0, steps_mismatched=0, steps_duplicate=0)
    seen: set[tuple[Any, ...]] = set()
    for item in items:
        rounds = _rounds(item)
        # rollouts re-graded with the key come first, so they win the de-duplication below
        for score in [*rollout_scores_in(item), *step_scores_in(item.record.trace)]:
            stats["steps_scored"] += 1
            steps = score.step_texts or split_steps(score.solution, score.split)
            values = score.values
            value_source = "grader:rollout_calls" if score.regraded else f"verifier:{score.source}"
            if score.rollout_answers is not None and len(score.rollout_answers) == len(steps):
                values = [_fraction_correct(item, answers) for answers in score.rollout_answers]
                value_source = "grader:rollouts"
            if values is None:
                values = [1.0 if i < score.first_error else 0.0 for i in range(len(steps))]
                value_source = f"verifier:{score.source}:first_error"
            if not steps or len(values) != len(steps):
                stats["steps_mismatched"] += 1
                continue
            key = (item.key, normalized(score.solution))
            if key in seen:
                stats["steps_duplicate"] += 1
                continue
            seen.add(key)
            _, correct, detail = item.grade(score.solution)
            values = [*values[:-1], 1.0 if correct else 0.0]
            labels = [value >= options.step_threshold for value in values]
            labels[-1] = correct
            records.append({
                "prompt": item.plain_prompt[-1]["content"],
                "completions": steps,
                "labels": labels,
                "values": values,
                "verifier_values": None if score.regraded else score.values,
                "first_error": score.first_error,
                "provenance": item.provenance(round=rounds[score.event], source=value_source, call=score.event,
                                              threshold=options.step_threshold, grade=detail),
            })
    return records


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _fraction_correct(item: ProblemTrace, answers: Sequence[str | None]) -> float:
    if not answers:
        return 0.0
    graded = [a is not None and item.task.grade(item.problem, a, a).correct for a in answers]
    return sum(graded) / len(graded)


# -- writing ---------------------------------------------------------------------------------------------------

def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def refine_paths(path: str | Path) -> dict[str, Path]:
    """Where ``refine`` records go: FILE.global.jsonl and FILE.local.jsonl beside the given FILE.jsonl."""
    path = Path(path)
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return {kind: path.with_name(f"{stem}.{kind}.jsonl") for kind in ("global", "local")}


def write_export(export: Export, path: str | Path) -> dict[str, int]:
    """Write an export; ``refine`` goes to two files (global and local kept apart). Returns counts per file."""
    if export.format != "refine":
        return {str(path): write_jsonl(export.records, path)}
    groups = export.by_refinement()
    return {str(target): write_jsonl(groups.get(kind, []), target) for kind, target in refine_paths(path).items()}
