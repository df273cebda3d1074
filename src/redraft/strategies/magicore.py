"""MAgICoRe: Multi-Agent, Iterative, Coarse-to-Fine Refinement (Chen et al., 2024).

Algorithm, as this module runs it::

    round 0   Solver samples k drafts; the outcome verifier scores each
              gate(pool): easy  iff  agreement >= agreement_threshold  and  confidence >= confidence_threshold
    easy  ->  verifier-weighted vote over the pool (coarse aggregation); stop
    hard  ->  for round r = 1 .. max_rounds:
                  targets  = the refine_top highest-scored candidates of the pool
                  step verifier scores each target's steps          (where is it weak?)
                  Reviewer writes feedback aimed at the weakest steps (targeted feedback)
                  Refiner rewrites each target with that feedback
                  outcome verifier re-scores the refined solutions; they replace their targets
                  gate(pool): easy -> stop
              verifier-weighted vote over the pool

Choices the abstract leaves open, and why:

- *Gate.* ``agreement`` is the share of the k candidates whose answer is the verifier-weighted
  vote's winner (no answer counts as disagreeing); ``confidence`` is the mean outcome score of
  those supporters. Both must reach their thresholds (0.5 each by default) for "easy": the
  abstract names both signals; requiring both is the conservative reading (refine when unsure).
- *Which candidates are refined.* The ``refine_top`` highest-scored (default 3 of k=5), not all:
  refining everything is the over-correction the paper warns about, and the top candidates
  carry most of the weight of the final weighted vote, so repairing them is what moves it.
- *Pool update.* Refined solutions replace the ones they came from, so the pool keeps k
  members and agreement stays comparable across rounds; the untouched candidates keep voting.
- *Signals.* The outcome verifier (``outcome_verifier``, default ``judge``) provides the vote
  weights and the gate's confidence; the step verifier (``step_verifier``, default
  ``step_judge``) is called only on targets of hard problems, since it is the costly one. The
  Reviewer sees each step with its score and is pointed at the ``weak_steps`` lowest (the
  verifier's first error always among them); the step verifier's own critique is not passed on,
  so the Reviewer's feedback is the only feedback (the paper's Reviewer is a separate agent).
- *Budget.* On BudgetExhausted the strategy returns the weighted vote over the pool as it stood
  after the last completed round (the unweighted majority of the drafts if they were never
  scored); a partly finished round changes nothing but is kept in the trace.

Roles: solver (drafts), reviewer, refiner; the verifiers use their own roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from ..verifiers import make_verifier
from ..verifiers.base import Score, Verifier
from .base import Strategy, register_strategy, require
from .moves import (
    Candidate,
    gather_within_budget,
    note_final,
    note_round,
    refine,
    review_steps,
    sample,
    text_for_answer,
    vote,
)


@dataclass
class MagicoreOptions:
    k: int = 5
    temperature: float = 0.7
    max_tokens: int = 768
    outcome_verifier: str = "judge"
    step_verifier: str = "step_judge"
    agreement_threshold: float = 0.5
    confidence_threshold: float = 0.5
    refine_top: int = 3
    max_rounds: int = 3
    weak_steps: int = 2
    step_split: str = "auto"
    review_max_tokens: int = 512

    def __post_init__(self) -> None:
        require(self.k >= 1 and self.refine_top >= 1 and self.max_rounds >= 0,
                "needs k >= 1, refine_top >= 1 and max_rounds >= 0")


@dataclass(frozen=True)
class Gate:
    easy: bool
    answer: str | None
    agreement: float
    confidence: float


def gate(ctx: SolveContext, pool: list[Candidate], scores: list[Score], agreement_threshold: float,
         confidence_threshold: float) -> Gate:
    """Easy iff enough candidates agree with the weighted winner and the verifier trusts them."""
    winner = vote(ctx, pool, [s.value for s in scores])
    if winner.answer is None:
        return Gate(False, None, 0.0, 0.0)
    key = ctx.task.answer_key(winner.answer)
    supporters = [i for i, c in enumerate(pool) if c.answer is not None and ctx.task.answer_key(c.answer) == key]
    agreement = len(supporters) / len(pool)
    confidence = sum(scores[i].value for i in supporters) / len(supporters)
    easy = agreement >= agreement_threshold and confidence >= confidence_threshold
    return Gate(easy, winner.answer, agreement, confidence)


@register_strategy
class Magicore(Strategy):
    name = "magicore"
    Options = MagicoreOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        outcome = make_verifier(opts.outcome_verifier)
        stepwise = make_verifier(opts.step_verifier)
        pool = await sample(ctx, opts.k, temperature=opts.temperature, max_tokens=opts.max_tokens)
        round_done = 0
        try:
            scores = await self._score(outcome, ctx, pool)
        except BudgetExhausted as exc:
            fallback = vote(ctx, pool)
            ctx.note("budget_exhausted", reason=str(exc), round=0)
            note_round(ctx, 0, pool, decision="budget: drafts unscored, majority vote", answer=fallback.answer)
            return self._finish(ctx, pool, None, fallback.answer, 0, exhausted=True)
        verdict = gate(ctx, pool, scores, opts.agreement_threshold, opts.confidence_threshold)
        note_round(ctx, 0, pool, scores, decision="easy: weighted vote" if verdict.easy else "hard: refine",
                   answer=verdict.answer, agreement=verdict.agreement, confidence=verdict.confidence)
        exhausted = False
        try:
            while not verdict.easy and round_done < opts.max_rounds:
                pool, scores, critiques, step_scores = await self._refine_round(ctx, outcome, stepwise, pool,
                                                                                scores, round_done + 1)
                round_done += 1
                verdict = gate(ctx, pool, scores, opts.agreement_threshold, opts.confidence_threshold)
                decision = ("easy: stop" if verdict.easy else
                            "hard: stop at round limit" if round_done == opts.max_rounds else "hard: refine again")
                note_round(ctx, round_done, pool, scores, decision=decision, critiques=critiques,
                           answer=verdict.answer, agreement=verdict.agreement, confidence=verdict.confidence,
                           step_scores=step_scores)
        except BudgetExhausted as exc:
            exhausted = True
            ctx.note("budget_exhausted", reason=str(exc), round=round_done)
        final = vote(ctx, pool, [s.value for s in scores])
        return self._finish(ctx, pool, scores, final.answer, round_done, exhausted=exhausted, easy=verdict.easy)

    async def _score(self, verifier: Verifier, ctx: SolveContext, candidates: list[Candidate]) -> list[Score]:
        scores, exhausted = await gather_within_budget([verifier.score(ctx, c.text) for c in candidates])
        if exhausted:
            raise BudgetExhausted("budget spent while scoring")
        return [s for s in scores if s is not None]

    async def _refine_round(self, ctx: SolveContext, outcome: Verifier, stepwise: Verifier, pool: list[Candidate],
                            scores: list[Score], round: int
                            ) -> tuple[list[Candidate], list[Score], list[str | None], list[dict | None]]:
        """One Reviewer/Refiner round on the top candidates.

        Returns the new pool, its scores, and per pool member the review and step scores that
        produced it (None for members left alone)."""
        opts = self.options
        ranked = sorted(range(len(pool)), key=lambda i: (-scores[i].value, i))
        targets = ranked[: opts.refine_top]
        step_scores = await self._score(stepwise, ctx, [pool[i] for i in targets])
        reviews, exhausted = await gather_within_budget([
            review_steps(ctx, pool[i], step_score, weak_limit=opts.weak_steps, step_split=opts.step_split,
                         max_tokens=opts.review_max_tokens)
            for i, step_score in zip(targets, step_scores, strict=True)])
        if exhausted:
            raise BudgetExhausted("budget spent while reviewing")
        refined, exhausted = await gather_within_budget([
            refine(ctx, pool[i], review or "", round=round, max_tokens=opts.max_tokens)
            for i, review in zip(targets, reviews, strict=True)])
        if exhausted:
            raise BudgetExhausted("budget spent while refining")
        new = [c for c in refined if c is not None]
        new_scores = await self._score(outcome, ctx, new)
        pool, scores = list(pool), list(scores)
        critiques: list[str | None] = [None] * len(pool)
        steps: list[dict | None] = [None] * len(pool)
        for i, candidate, score, review, step_score in zip(targets, new, new_scores, reviews, step_scores,
                                                           strict=True):
            pool[i], scores[i], critiques[i], steps[i] = candidate, score, review, step_score.to_dict()
        return pool, scores, critiques, steps

    def _finish(self, ctx: SolveContext, pool: list[Candidate], scores: list[Score] | None, answer: str | None,
                round: int, *, exhausted: bool, easy: bool | None = None) -> Result:
        note_final(ctx, answer, round, easy=easy)
        text = text_for_answer(ctx, pool, answer, scores)
        return Result(answer, text, {"rounds": round, "easy": easy, "budget_exhausted": exhausted})
