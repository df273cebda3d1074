"""Best-of-N: n samples, each scored by a verifier, the highest score wins (ties: the earliest).

With a ``self_certainty`` verifier the samples are drawn with top-k log-probabilities (``certainty``,
default 10 then) and their certainty recorded, so scoring costs no call; ``certainty=k`` does the
same for any verifier (recording for later analysis)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..context import Result, SolveContext
from ..verifiers import make_verifier
from ..verifiers.self_certainty import record_certainty
from .base import Strategy, register_strategy
from .self_consistency import certainty_request


@dataclass
class BestOfNOptions:
    n: int = 8
    temperature: float = 0.7
    max_tokens: int = 768
    verifier: str = "rating"
    certainty: int = -1  # top-k logprobs recorded at sampling; -1: 10 if the verifier is self_certainty, else off

    def __post_init__(self) -> None:
        certainty_request(self.certainty)


@register_strategy
class BestOfN(Strategy):
    name = "best_of_n"
    Options = BestOfNOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        verifier = make_verifier(opts.verifier)
        top_k = opts.certainty if opts.certainty >= 0 else (10 if "self_certainty" in opts.verifier else 0)
        samples = await ctx.generate(ctx.task.messages(ctx.problem), n=opts.n, temperature=opts.temperature,
                                     max_tokens=opts.max_tokens, label="sample", **certainty_request(top_k))
        record_certainty(ctx, samples)
        scores = await asyncio.gather(*(verifier.score(ctx, s.text) for s in samples))
        values = [s.value for s in scores]
        best = max(range(len(samples)), key=lambda i: (values[i], -i))
        answers = [ctx.extract(s.text) for s in samples]
        ctx.note("select", verifier=opts.verifier, scores=values, answers=answers, chosen=best)
        return Result(answers[best], samples[best].text, {"score": values[best]})
