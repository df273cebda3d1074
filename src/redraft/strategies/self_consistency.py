"""Self-consistency: n samples, majority over extracted answers (ties: the earliest answer wins)."""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Result, SolveContext
from ..voting import majority_vote
from .base import Strategy, register_strategy


@dataclass
class SelfConsistencyOptions:
    n: int = 8
    temperature: float = 0.7
    max_tokens: int = 768


@register_strategy
class SelfConsistency(Strategy):
    name = "self_consistency"
    Options = SelfConsistencyOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        samples = await ctx.generate(ctx.task.messages(ctx.problem), n=opts.n, temperature=opts.temperature,
                                     max_tokens=opts.max_tokens, label="sample")
        answers = [ctx.extract(s.text) for s in samples]
        vote = majority_vote(answers, ctx.task.answer_key)
        ctx.note("vote", answers=answers, tally=vote.tally, winner=vote.answer, agreement=vote.agreement)
        text = samples[vote.index].text if vote.index is not None else samples[0].text
        return Result(vote.answer, text, {"agreement": vote.agreement})
