"""``rating``: the model rates a candidate 1-10 (a prompted outcome judge, the simplest scorer)."""

from __future__ import annotations

import re

from ..context import SolveContext
from .base import Score, Verifier, register_verifier

RATING_PROMPT = """Here is a problem and a proposed solution.

Problem:
{question}

Proposed solution:
{solution}

Check the solution carefully. Then rate how likely it is to be correct on a scale from 1 to 10,
ending your reply with a line of the form "Rating: N"."""


def parse_rating(text: str) -> float | None:
    """The last 'Rating: N' (or a lone trailing number) mapped to [0, 1]; None when absent."""
    found = re.findall(r"rating\s*[:=]?\s*(\d+(?:\.\d+)?)", text, flags=re.IGNORECASE)
    if not found:
        return None
    value = float(found[-1])
    return min(max((value - 1) / 9, 0.0), 1.0)


@register_verifier
class RatingVerifier(Verifier):
    name = "rating"

    def __init__(self, max_tokens: int = 384) -> None:
        self.max_tokens = max_tokens

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        prompt = RATING_PROMPT.format(question=ctx.problem.question, solution=solution)
        reply = (await ctx.generate([{"role": "user", "content": prompt}], role=self.role,
                                    max_tokens=self.max_tokens, label="rate"))[0].text
        value = parse_rating(reply)
        # an unparseable rating is no evidence either way
        return Score(0.5 if value is None else value, feedback=reply)
