"""Chain of thought, greedy: one sample at temperature 0."""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Result, SolveContext
from .base import Strategy, register_strategy


@dataclass
class CotOptions:
    max_tokens: int = 768


@register_strategy
class ChainOfThought(Strategy):
    name = "cot"
    Options = CotOptions

    async def solve(self, ctx: SolveContext) -> Result:
        [draft] = await ctx.generate(ctx.task.messages(ctx.problem), max_tokens=self.options.max_tokens, label="draft")
        answer = ctx.extract(draft.text)
        ctx.note("final", answer=answer)
        return Result(answer, draft.text)
