"""Best-of-N: n samples, each scored by a verifier, the highest score wins (ties: the earliest)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..context import Result, SolveContext
from ..verifiers import make_verifier
from .base import Strategy, register_strategy


@dataclass
class BestOfNOptions:
    n: int = 8
    temperature: float = 0.7
    max_tokens: int = 768
    verifier: str = "rating"


@register_strategy
class BestOfN(Strategy):
    name = "best_of_n"
    Options = BestOfNOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        verifier = make_verifier(opts.verifier)
        samples = await ctx.generate(ctx.task.messages(ctx.problem), n=opts.n, temperature=opts.temperature,
                                     max_tokens=opts.max_tokens, label="sample")
        scores = await asyncio.gather(*(verifier.score(ctx, s.text) for s in samples))
        values = [s.value for s in scores]
        best = max(range(len(samples)), key=lambda i: (values[i], -i))
        answers = [ctx.extract(s.text) for s in samples]
        ctx.note("select", verifier=opts.verifier, scores=values, answers=answers, chosen=best)
        return Result(answers[best], samples[best].text, {"score": values[best]})
