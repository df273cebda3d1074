"""Self-consistency: n samples, majority over extracted answers (ties: the earliest answer wins).

``certainty=k`` (k >= 2) samples with the top-k token log-probabilities and notes each sample's
self-certainty in the trace, so the ``self_certainty`` verifier can later score these very
samples with no extra call (e.g. ``benchmarks/verifier_quality.py`` reusing a stored run)."""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Result, SolveContext
from ..verifiers.self_certainty import record_certainty
from ..voting import majority_vote
from .base import Strategy, register_strategy


@dataclass
class SelfConsistencyOptions:
    n: int = 8
    temperature: float = 0.7
    max_tokens: int = 768
    certainty: int = 0  # top-k logprobs to sample with, recording each sample's self-certainty; 0: off

    def __post_init__(self) -> None:
        certainty_request(self.certainty)  # refuses a bad value when the strategy is made


def certainty_request(top_k: int) -> dict[str, object]:
    """The generate() arguments that make samples carry what ``record_certainty`` needs."""
    if top_k <= 0:
        return {}
    if top_k < 2:
        raise ValueError("certainty must be 0 (off) or at least 2 (top-k log-probabilities)")
    return {"logprobs": True, "top_logprobs": top_k}


@register_strategy
class SelfConsistency(Strategy):
    name = "self_consistency"
    Options = SelfConsistencyOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        samples = await ctx.generate(ctx.task.messages(ctx.problem), n=opts.n, temperature=opts.temperature,
                                     max_tokens=opts.max_tokens, label="sample", **certainty_request(opts.certainty))
        record_certainty(ctx, samples)
        answers = [ctx.extract(s.text) for s in samples]
        vote = majority_vote(answers, ctx.task.answer_key)
        ctx.note("vote", answers=answers, tally=vote.tally, winner=vote.answer, agreement=vote.agreement)
        text = samples[vote.index].text if vote.index is not None else samples[0].text
        return Result(vote.answer, text, {"agreement": vote.agreement})
