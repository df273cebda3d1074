"""Prompted outcome judges: ``judge`` (a Yes/No verdict) and ``rating`` (a 1-10 rating).

``judge`` asks the model for a short critique and a final "Verdict: Yes" or "Verdict: No".
When the backend returns log-probabilities, the score is P(Yes) at the verdict token,
renormalised over Yes and No among the top alternatives (a graded belief, not a 0/1 word); when
it does not, or the verdict token cannot be located in the token stream, the score is the parsed
verdict (Yes 1.0, No 0.0, none 0.5: no evidence either way). The critique is the feedback.
With ``critique=false`` the judge answers Yes or No straight away (a few tokens instead of a few
hundred: the prompt-only outcome judge), and gives no feedback.
``rating`` is the parsed-rating judge: the model's own 1-10 rating mapped to [0, 1].
"""

from __future__ import annotations

import re

from ..context import SolveContext
from .base import Score, Verifier, register_verifier
from .token_probs import verdict_probability

RATING_PROMPT = """Here is a problem and a proposed solution.

Problem:
{question}

Proposed solution:
{solution}

Check the solution carefully. Then rate how likely it is to be correct on a scale from 1 to 10,
ending your reply with a line of the form "Rating: N"."""

JUDGE_PROMPT = """Problem:
{question}

Proposed solution:
{solution}

Is the proposed solution correct? Check its reasoning, its arithmetic and its final answer. Write a
short critique, then end your reply with the line "Verdict: Yes" if the solution is correct, or
"Verdict: No" if it is not."""

DIRECT_JUDGE_PROMPT = """Problem:
{question}

Proposed solution:
{solution}

Is the proposed solution correct, reasoning, arithmetic and final answer? Answer with one word: Yes or No."""

_DIRECT = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_VERDICT = re.compile(r"verdict\s*\**\s*[:=-]?\s*\**\s*(yes|no)\b", re.IGNORECASE)


def parse_rating(text: str) -> float | None:
    """The last 'Rating: N' (or a lone trailing number) mapped to [0, 1]; None when absent."""
    found = re.findall(r"rating\s*[:=]?\s*(\d+(?:\.\d+)?)", text, flags=re.IGNORECASE)
    if not found:
        return None
    value = float(found[-1])
    return min(max((value - 1) / 9, 0.0), 1.0)


def find_verdict(text: str) -> tuple[bool, int] | None:
    """The last "Verdict: Yes/No" in a reply: (is yes, character index of the word); None if absent."""
    matches = list(_VERDICT.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.group(1).lower() == "yes", last.start(1)


def critique_of(text: str) -> str:
    """The judge's reply without its verdict line."""
    return _VERDICT.sub("", text).strip()


@register_verifier
class JudgeVerifier(Verifier):
    """Outcome judge: a critique and a Yes/No verdict (or, with critique=false, the one word); the score is
    P(Yes) where log-probabilities allow."""

    name = "judge"

    def __init__(self, role: str = "judge", max_tokens: int = 384, logprobs: bool = True,
                 top_logprobs: int = 10, critique: bool = True) -> None:
        self.role = role
        self.critique = critique
        self.max_tokens = max_tokens if critique else min(max_tokens, 4)  # the verdict word, nothing after
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        template = JUDGE_PROMPT if self.critique else DIRECT_JUDGE_PROMPT
        prompt = template.format(question=ctx.problem.question, solution=solution)
        [reply] = await ctx.generate([{"role": "user", "content": prompt}], role=self.role,
                                     max_tokens=self.max_tokens, logprobs=self.logprobs,
                                     top_logprobs=self.top_logprobs if self.logprobs else 0, label="judge")
        verdict = find_verdict(reply.text) if self.critique else _direct_verdict(reply.text)
        if verdict is None:
            return Score(0.5, feedback=(reply.text.strip() or None) if self.critique else None)
        is_yes, at = verdict
        probability = verdict_probability(reply.logprobs, reply.text, at, ("yes",), ("no",))
        value = probability if probability is not None else (1.0 if is_yes else 0.0)
        return Score(value, feedback=(critique_of(reply.text) or None) if self.critique else None)


def _direct_verdict(text: str) -> tuple[bool, int] | None:
    """A reply that opens with Yes or No: (is yes, character index of the word)."""
    match = _DIRECT.match(text)
    return (match.group(1).lower() == "yes", match.start(1)) if match else None


@register_verifier
class RatingVerifier(Verifier):
    """Outcome judge: the model's own 1-10 rating, mapped to [0, 1]."""

    name = "rating"

    def __init__(self, role: str = "judge", max_tokens: int = 384) -> None:
        self.role = role
        self.max_tokens = max_tokens

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        prompt = RATING_PROMPT.format(question=ctx.problem.question, solution=solution)
        reply = (await ctx.generate([{"role": "user", "content": prompt}], role=self.role,
                                    max_tokens=self.max_tokens, label="rate"))[0].text
        value = parse_rating(reply)
        # an unparseable rating is no evidence either way
        return Score(0.5 if value is None else value, feedback=reply)
