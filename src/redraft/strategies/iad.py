"""IAD: Iterative Agent Decoding ("Review, Refine, Repeat", Chakraborty et al., 2025).

Algorithm, as this module runs it::

    round 0   n drafts; the verifier scores each; pool = the pool_size best
    round r   (r = 1 .. rounds, while the best score < accept_threshold)
              parents  = the beam best of the pool
              each parent is refined with its own score and the verifier's feedback on it,
                  and (contrastive) the best and worst other solutions of the pool with their scores
              the verifier scores the children; pool = the pool_size best of pool + children
    return the best-scored candidate of the pool

Choices the abstract leaves open, and why:

- *Feedback design.* The abstract says IAD's feedback is "optimized to extract maximal signal
  from reward scores" without the recipe. Here a parent is shown with its numeric score and the
  verifier's critique, plus (``contrastive=true``) the best- and worst-scored other members of
  the pool with their scores, so the model sees what scores high and what scores low; with
  ``contrastive=false`` only the parent's own score and critique are given.
- *Dynamic pool.* Parents and children compete on score for ``pool_size`` places (ties: the older
  candidate stays), so a refinement that the verifier does not prefer is dropped and a good
  early draft is never lost: selection is BoN-like, refinement is what adds new candidates.
- *Sampling.* Children are sampled at ``refine_temperature`` (0.7), as each round is a new
  decode; the paper's ablation separates feedback from sampling diversity, which this
  strategy can reproduce with ``contrastive=false`` or a verifier that gives no feedback.
- *Stopping.* Fixed ``rounds``, or earlier when the best score reaches ``accept_threshold``.
- *Budget.* On BudgetExhausted the strategy returns the best-scored candidate of the pool as it
  stood after the last completed round (children scored before the budget ran out are kept);
  if the drafts were never scored, their majority answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Result, SolveContext
from ..verifiers import make_verifier
from ..verifiers.base import Score, Verifier
from .base import Strategy, register_strategy, require
from .moves import (
    Candidate,
    final_instruction,
    gather_within_budget,
    note_final,
    note_round,
    sample,
    vote,
)

IAD_PROMPT = """Problem:
{question}

Your previous solution:
{solution}

Verifier's assessment of it: score {score:.2f} (0 = surely wrong, 1 = surely right).
{feedback}
{contrast}
Write a new, improved solution that would score higher. {instruction}"""

CONTRAST_BEST = """For comparison, the highest-scored other solution so far (score {score:.2f}):
{text}
"""

CONTRAST_WORST = """and the lowest-scored one (score {score:.2f}):
{text}
"""


@dataclass
class IadOptions:
    n: int = 4
    rounds: int = 3
    beam: int = 2
    pool_size: int = 4
    verifier: str = "judge"
    accept_threshold: float = 0.9
    contrastive: bool = True
    temperature: float = 0.7
    refine_temperature: float = 0.7
    max_tokens: int = 768

    def __post_init__(self) -> None:
        require(min(self.n, self.beam, self.pool_size) >= 1 and self.rounds >= 0,
                "needs n, beam, pool_size >= 1 and rounds >= 0")


@dataclass
class Scored:
    candidate: Candidate
    score: Score


def ranked(pool: list[Scored]) -> list[Scored]:
    """Best first; ties keep the earlier (older) member first."""
    return [pool[i] for i in sorted(range(len(pool)), key=lambda i: (-pool[i].score.value, i))]


@register_strategy
class Iad(Strategy):
    name = "iad"
    Options = IadOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        verifier = make_verifier(opts.verifier)
        drafts = await sample(ctx, opts.n, temperature=opts.temperature, max_tokens=opts.max_tokens)
        scores, exhausted = await gather_within_budget([verifier.score(ctx, c.text) for c in drafts])
        if exhausted and all(s is None for s in scores):
            answer = vote(ctx, drafts).answer
            ctx.note("budget_exhausted", reason="budget spent while scoring the drafts", round=0)
            note_round(ctx, 0, drafts, decision="budget: drafts unscored, majority vote", answer=answer)
            note_final(ctx, answer, 0)
            text = next((c.text for c in drafts if c.answer == answer), drafts[0].text)
            return Result(answer, text, {"rounds": 0, "budget_exhausted": True})
        pool = ranked([Scored(c, s) for c, s in zip(drafts, scores, strict=True) if s is not None])[: opts.pool_size]
        round_done = 0
        self._note(ctx, 0, pool, "budget: stop" if exhausted else self._decision(pool, 0))
        while not exhausted and round_done < opts.rounds and pool[0].score.value < opts.accept_threshold:
            round_done += 1
            pool, exhausted = await self._round(ctx, verifier, pool, round_done)
            self._note(ctx, round_done, pool, "budget: stop" if exhausted else self._decision(pool, round_done))
        if exhausted:
            ctx.note("budget_exhausted", reason="budget spent", round=round_done)
        best = pool[0].candidate
        note_final(ctx, best.answer, best.round, score=pool[0].score.value)
        return Result(best.answer, best.text, {"rounds": round_done, "score": pool[0].score.value,
                                               "budget_exhausted": exhausted})

    def _decision(self, pool: list[Scored], round: int) -> str:
        if pool[0].score.value >= self.options.accept_threshold:
            return "stop: accepted"
        return "stop: round limit" if round >= self.options.rounds else "refine the best"

    def _note(self, ctx: SolveContext, round: int, pool: list[Scored], decision: str) -> None:
        note_round(ctx, round, [p.candidate for p in pool], [p.score for p in pool], decision=decision,
                   critiques=[p.score.feedback for p in pool], answer=pool[0].candidate.answer)

    async def _round(self, ctx: SolveContext, verifier: Verifier, pool: list[Scored],
                     round: int) -> tuple[list[Scored], bool]:
        """Refine the beam best, score the children, keep the pool_size best; (pool, budget ran out)."""
        opts = self.options
        parents = pool[: opts.beam]
        children, exhausted = await gather_within_budget([self._refine(ctx, parent, pool, round)
                                                          for parent in parents])
        born = [c for c in children if c is not None]
        scores, spent = await gather_within_budget([verifier.score(ctx, c.text) for c in born])
        exhausted = exhausted or spent
        scored = [Scored(c, s) for c, s in zip(born, scores, strict=True) if s is not None]
        return ranked(pool + scored)[: opts.pool_size], exhausted

    async def _refine(self, ctx: SolveContext, parent: Scored, pool: list[Scored], round: int) -> Candidate:
        opts = self.options
        others = [p for p in pool if p is not parent]
        contrast = ""
        if opts.contrastive and others:
            best, worst = others[0], others[-1]
            contrast = "\n" + CONTRAST_BEST.format(score=best.score.value, text=best.candidate.text)
            if worst is not best:
                contrast += "\n" + CONTRAST_WORST.format(score=worst.score.value, text=worst.candidate.text)
        content = IAD_PROMPT.format(question=ctx.problem.question, solution=parent.candidate.text,
                                    score=parent.score.value, feedback=(parent.score.feedback or "").strip(),
                                    contrast=contrast, instruction=final_instruction(ctx))
        [reply] = await ctx.generate([{"role": "user", "content": content}], role="refiner",
                                     temperature=opts.refine_temperature, max_tokens=opts.max_tokens, label="iad")
        return Candidate(reply.text, ctx.extract(reply.text), "refine", round)

