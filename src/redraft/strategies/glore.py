"""GLoRe: When, Where, and How to Improve LLM Reasoning via Global and Local Refinements (Havrilla et al., 2024).

Algorithm, as this module runs it::

    round 0   draft = one greedy solution; o = outcome_verifier(draft)          (when?)
              if o >= when_threshold: return draft
    round 1   s = step_verifier(draft); e = its first error                     (where?)
              global = global refiner(question, draft)                           (how, 1)
              local  = draft steps before e + local refiner(question, those steps, critique of step e)  (how, 2)
              return argmax over {draft, global, local} of outcome_verifier      (rerank)

Choices the abstract leaves open, and why:

- *No trained models.* GLoRe trains an ORM, a SORM and two refiners; here every role is
  prompted. The step verifier is a name (``step_verifier``: ``rollout`` approximates the SORM's
  "can the policy still reach a correct answer from here", ``step_judge`` is the cheap prompted
  one). The global refiner sees only the question and the draft (no critique), as in the paper.
- *Where the local refiner starts.* At the verifier's ``first_error``; if it names none, at its
  lowest-valued step; if it gives no step values, from the start (an empty prefix). The prefix is
  the draft's steps *before* that step, split with ``step_split`` (which should match the step
  verifier's split); the critique quotes the flagged step and adds the verifier's feedback. The
  local candidate's text is the kept prefix followed by the refiner's continuation.
- *Rerank ties* go to the earlier of draft, global, local: a refinement must be scored strictly
  higher to replace the draft, so the verifier's noise does not break correct drafts.
- *Ablations.* ``refiners=global|local|both`` runs one refiner or both (the claim to check is
  that both beat either alone); ``when_threshold=1.01`` refines every draft.
- *Budget.* On BudgetExhausted the strategy returns the best-scored of the candidates scored so
  far (the draft if nothing else was scored; the draft unscored if even that failed).

Roles: solver (draft), refiner (both refiners); the verifiers use their own roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from ..steps import split_steps
from ..verifiers import make_verifier
from ..verifiers.base import Score, Verifier
from .base import Strategy, register_strategy, require_choice
from .moves import (
    Candidate,
    error_step,
    gather_within_budget,
    global_refine,
    local_refine,
    note_final,
    note_round,
    sample,
)

REFINER_CHOICES = ("both", "global", "local")


@dataclass
class GloreOptions:
    refiners: str = "both"
    outcome_verifier: str = "judge"
    step_verifier: str = "step_judge"
    when_threshold: float = 0.5
    draft_temperature: float = 0.0
    max_tokens: int = 768
    step_split: str = "auto"

    def __post_init__(self) -> None:
        require_choice("refiners", self.refiners, REFINER_CHOICES)


def local_start(draft: str, score: Score, step_split: str) -> tuple[str, int | None, str | None]:
    """(prefix kept, index of the step to redo, that step's text) for the local refiner."""
    steps = split_steps(draft, step_split)
    index = error_step(score)
    if index is None or not steps:
        return "", None, None
    index = min(index, len(steps) - 1)  # a verifier that split differently may point past our last step
    return "\n".join(steps[:index]), index, steps[index]


def local_critique(index: int | None, step: str | None, score: Score) -> str:
    if index is None:
        where = "The verifier could not locate the error; the solution may be wrong anywhere."
    elif score.feedback and step and step in score.feedback:
        return score.feedback.strip()  # the verifier's feedback already quotes the step
    else:
        where = f"Step {index + 1} is likely the first wrong step:\n{step}"
    return f"{where}\n{score.feedback.strip()}" if score.feedback else where


@register_strategy
class Glore(Strategy):
    name = "glore"
    Options = GloreOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        outcome = make_verifier(opts.outcome_verifier)
        stepwise = make_verifier(opts.step_verifier) if opts.refiners != "global" else None
        [draft] = await sample(ctx, 1, temperature=opts.draft_temperature, max_tokens=opts.max_tokens)
        try:
            draft_score = await outcome.score(ctx, draft.text)
        except BudgetExhausted as exc:
            ctx.note("budget_exhausted", reason=str(exc), round=0)
            note_round(ctx, 0, [draft], decision="budget: draft unscored", answer=draft.answer)
            return self._finish(ctx, [draft], [None], 0, exhausted=True)
        refine_now = draft_score.value < opts.when_threshold
        note_round(ctx, 0, [draft], [draft_score], decision="refine" if refine_now else "accept draft",
                   critiques=[draft_score.feedback], answer=draft.answer)
        if not refine_now:
            return self._finish(ctx, [draft], [draft_score], 0, exhausted=False)
        candidates: list[Candidate] = [draft]
        scores: list[Score | None] = [draft_score]
        critiques: list[str | None] = [draft_score.feedback]
        try:
            await self._refine(ctx, outcome, stepwise, draft, candidates, scores, critiques)
        except BudgetExhausted as exc:
            ctx.note("budget_exhausted", reason=str(exc), round=1)
            note_round(ctx, 1, candidates, scores, critiques=critiques, answer=candidates[self._best(scores)].answer,
                       decision="budget: best scored so far")
            return self._finish(ctx, candidates, scores, 1, exhausted=True)
        chosen = self._best(scores)
        note_round(ctx, 1, candidates, scores, critiques=critiques, answer=candidates[chosen].answer,
                   decision=f"rerank: {candidates[chosen].origin}")
        return self._finish(ctx, candidates, scores, 1, exhausted=False)

    async def _refine(self, ctx: SolveContext, outcome: Verifier, stepwise: Verifier | None, draft: Candidate,
                      candidates: list[Candidate], scores: list[Score | None], critiques: list[str | None]) -> None:
        """Run the chosen refiners (concurrently) and score their outputs, appending to the lists."""
        opts = self.options
        local_critique_text: list[str] = []

        async def locate_then_refine_locally() -> Candidate:
            assert stepwise is not None
            step_score = await stepwise.score(ctx, draft.text)
            prefix, index, step = local_start(draft.text, step_score, opts.step_split)
            local_critique_text.append(local_critique(index, step, step_score))
            ctx.note("locate", round=1, first_error=index, prefix=prefix, step_score=step_score.to_dict())
            return await local_refine(ctx, prefix, local_critique_text[0], round=1, max_tokens=opts.max_tokens)

        jobs = []
        if opts.refiners in ("both", "global"):
            jobs.append(global_refine(ctx, draft, round=1, max_tokens=opts.max_tokens))
        if stepwise is not None:
            jobs.append(locate_then_refine_locally())
        refined, exhausted = await gather_within_budget(jobs)
        new = [c for c in refined if c is not None]
        for candidate in new:
            candidates.append(candidate)
            scores.append(None)
            critiques.append(local_critique_text[0] if candidate.origin == "local" else None)
        if exhausted:
            raise BudgetExhausted("budget spent while refining")
        new_scores, exhausted = await gather_within_budget([outcome.score(ctx, c.text) for c in new])
        for offset, score in enumerate(new_scores):
            scores[len(scores) - len(new) + offset] = score
        if exhausted:
            raise BudgetExhausted("budget spent while reranking")

    @staticmethod
    def _best(scores: list[Score | None]) -> int:
        """Highest outcome score among the scored candidates; ties go to the earliest (the draft first)."""
        scored = [i for i, s in enumerate(scores) if s is not None]
        return max(scored, key=lambda i: (scores[i].value, -i)) if scored else 0  # type: ignore[union-attr]

    def _finish(self, ctx: SolveContext, candidates: list[Candidate], scores: list[Score | None], round: int, *,
                exhausted: bool) -> Result:
        chosen = candidates[self._best(scores)]
        note_final(ctx, chosen.answer, round, origin=chosen.origin)
        return Result(chosen.answer, chosen.text, {"origin": chosen.origin, "refined": round > 0,
                                                   "budget_exhausted": exhausted})
