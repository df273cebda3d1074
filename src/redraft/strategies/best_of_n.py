"""Best-of-N: n samples, each scored by a verifier, the highest score wins (ties: the earliest).

With a ``self_certainty`` verifier the samples are drawn with top-k log-probabilities (``certainty``,
default 10 then) and their certainty recorded, so scoring costs no call; ``certainty=k`` does the
same for any verifier (recording for later analysis).

*Budget.* Samples the verifier could not be paid for rank below every scored one; if none could be
scored the strategy falls back to the majority vote of the samples (noting ``budget_exhausted``),
since an unscored best-of-N is self-consistency. If the samples themselves cannot be paid for,
BudgetExhausted propagates."""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Result, SolveContext
from ..verifiers import make_verifier
from ..verifiers.self_certainty import record_certainty
from ..voting import majority_vote
from .base import Strategy, register_strategy
from .moves import gather_within_budget
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
        scores, exhausted = await gather_within_budget([verifier.score(ctx, s.text) for s in samples])
        values = [s.value if s is not None else None for s in scores]
        answers = [ctx.extract(s.text) for s in samples]
        if exhausted:
            ctx.note("budget_exhausted", reason=f"{values.count(None)} of {len(samples)} samples left unscored",
                     round=0)
        if all(v is None for v in values):
            vote = majority_vote(answers, ctx.task.answer_key)
            best = vote.index if vote.index is not None else 0
            ctx.note("select", verifier=opts.verifier, scores=values, answers=answers, chosen=best,
                     fallback="majority vote: no sample could be scored")
            return Result(answers[best], samples[best].text, {"score": None, "agreement": vote.agreement})
        best = max(range(len(samples)), key=lambda i: (values[i] is not None, values[i] or 0.0, -i))
        ctx.note("select", verifier=opts.verifier, scores=values, answers=answers, chosen=best)
        return Result(answers[best], samples[best].text, {"score": values[best]})
