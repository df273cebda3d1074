"""``step_judge``: a prompted process judge. Split the solution into steps, judge each, find the first error.

One call judges every step: the steps are numbered, and the model writes "Step k: correct" or
"Step k: incorrect" for each, then a critique of the first incorrect step. Choices the issue left
open, stated here:

- a step's value is P(correct) at its verdict word when the backend returns log-probabilities
  (renormalised over correct/incorrect among the top alternatives), else the parsed verdict
  (1.0 / 0.0); a step the judge skipped gets 0.5 (no evidence) and is left out of the aggregate
  (small judges often merge or skip the last steps; counting them as 0.5 would cap every ``min``);
- the first error is the first step whose value is below 0.5;
- the outcome value aggregates the step values with ``aggregate``: ``min`` (default, the usual PRM
  reduction: a solution is as good as its worst step), ``mean``, ``last`` or ``prod``;
- the feedback names the first wrong step, quotes it, and gives the judge's critique of it.
"""

from __future__ import annotations

import math
import re

from ..context import SolveContext
from ..steps import SPLIT_MODES, split_steps
from .base import Score, Verifier, register_verifier
from .token_probs import verdict_probability

STEP_JUDGE_PROMPT = """Problem:
{question}

A proposed solution, split into numbered steps:

{steps}

Check each step in order: is its reasoning sound and its arithmetic right, given the problem and
the steps before it? For each step write exactly one line "Step k: correct" or "Step k: incorrect".
Then write "Critique:" followed by what is wrong in the first incorrect step and how to fix it,
or "Critique: none" if every step is correct."""

_STEP_VERDICT = re.compile(r"step\s*(\d+)\s*\**\s*[:.)-]?\s*\**\s*(correct|incorrect|wrong|right)\b", re.IGNORECASE)
_CRITIQUE = re.compile(r"critique\s*\**\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
POSITIVE = ("correct", "right")
NEGATIVE = ("incorrect", "wrong")
AGGREGATES = ("min", "mean", "last", "prod")


def number_steps(steps: list[str]) -> str:
    return "\n".join(f"[Step {index + 1}] {step}" for index, step in enumerate(steps))


def parse_step_verdicts(text: str, count: int) -> dict[int, tuple[bool, int]]:
    """Step index (0-based) -> (judged correct, character index of the verdict word); the first
    verdict given for a step wins, steps outside 1..count are ignored."""
    verdicts: dict[int, tuple[bool, int]] = {}
    for match in _STEP_VERDICT.finditer(text):
        index = int(match.group(1)) - 1
        if 0 <= index < count and index not in verdicts:
            verdicts[index] = (match.group(2).lower() in POSITIVE, match.start(2))
    return verdicts


def parse_critique(text: str) -> str | None:
    match = _CRITIQUE.search(text)
    if not match:
        return None
    critique = match.group(1).strip()
    return None if critique.lower().rstrip(".") in ("", "none", "n/a") else critique


def aggregate(values: list[float], how: str) -> float:
    if how == "min":
        return min(values)
    if how == "mean":
        return sum(values) / len(values)
    if how == "last":
        return values[-1]
    return math.prod(values)


@register_verifier
class StepJudgeVerifier(Verifier):
    name = "step_judge"

    def __init__(self, role: str = "judge", split: str = "auto", aggregate: str = "min", max_tokens: int = 512,
                 logprobs: bool = True, top_logprobs: int = 10) -> None:
        if split not in SPLIT_MODES:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLIT_MODES)}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {aggregate!r}: choose one of {', '.join(AGGREGATES)}")
        self.role = role
        self.split = split
        self.aggregate = aggregate
        self.max_tokens = max_tokens
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        steps = split_steps(solution, self.split)
        if not steps:
            return Score(0.0, (), None, "the solution is empty")
        prompt = STEP_JUDGE_PROMPT.format(question=ctx.problem.question, steps=number_steps(steps))
        [reply] = await ctx.generate([{"role": "user", "content": prompt}], role=self.role,
                                     max_tokens=self.max_tokens, logprobs=self.logprobs,
                                     top_logprobs=self.top_logprobs if self.logprobs else 0, label="step_judge")
        verdicts = parse_step_verdicts(reply.text, len(steps))
        values, judged = [], []
        for index in range(len(steps)):
            if index not in verdicts:
                values.append(0.5)
                continue
            judged.append(index)
            correct, at = verdicts[index]
            probability = verdict_probability(reply.logprobs, reply.text, at, POSITIVE, NEGATIVE)
            values.append(probability if probability is not None else (1.0 if correct else 0.0))
        first_error = next((i for i, v in enumerate(values) if v < 0.5), None)
        critique = parse_critique(reply.text)
        if first_error is not None:
            feedback = f"Step {first_error + 1} looks wrong:\n{steps[first_error]}"
            if critique:
                feedback += f"\nCritique: {critique}"
        else:
            feedback = critique
        value = aggregate([values[i] for i in judged], self.aggregate) if judged else 0.5
        return Score(value, tuple(values), first_error, feedback)
