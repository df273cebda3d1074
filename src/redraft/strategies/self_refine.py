"""Self-Refine: draft, get feedback, revise; stop after k rounds or when the feedback is satisfied.

The algorithm (Self-Refine, Madaan et al. 2023; the family LITERATURE.md calls the baseline for
every refinement method)::

    y[0] = draft(x)                                  greedy, the task's own prompt
    for t = 0, 1, 2, ...:
        feedback[t], satisfied = FEEDBACK(x, y[t])   a named verifier, or self-critique with a verdict
        if satisfied or t == rounds: stop
        y[t+1] = REFINE(x, y[t], feedback[t])
    return y[t]                                      (select=best: the best-scored y instead)

Choices the sources leave open, and what this module does:

- Feedback. ``verifier=""`` (default): the model critiques its own solution and ends with
  "Verdict: CORRECT/INCORRECT" (``moves.self_check``); satisfied = CORRECT. A reply with no verdict
  counts as not satisfied (refining is then still allowed to keep the solution). With
  ``verifier=NAME`` (any registered verifier, e.g. ``rating``; ``oracle`` for ceiling runs):
  satisfied = score >= ``accept_threshold``; the refiner sees the verifier's feedback text, or,
  when it gives none (the oracle), one line saying the verifier rejected the solution.
- The last revision is not given feedback when nothing would use it (``select=last``): its
  feedback could only stop a loop that is ending anyway. With ``select=best`` it is scored.
- A revision with no extractable answer (truncated by the budget or by max_tokens) does not
  replace a solution that has one, and stops the loop: the refiner is greedy, so asking again
  with the same input would give the same text.
- Budget: when the budget runs out after the first draft, the strategy stops and returns the
  current solution (select=last) or the best-scored so far (select=best), noting
  ``budget_exhausted``. If even the first draft cannot be paid for, BudgetExhausted propagates
  and the runner records the problem as stopped by the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from ..verifiers import make_verifier
from ..verifiers.base import Verifier
from . import moves
from .base import Strategy, register_strategy, require, require_choice
from .moves import Candidate

SELECTIONS = ("last", "best")


@dataclass
class SelfRefineOptions:
    rounds: int = 3  # most revisions
    verifier: str = ""  # "" = self-critique with a verdict; else a registered verifier's name
    accept_threshold: float = 0.8  # a verifier score at or above this stops the loop
    select: str = "last"  # last revision (the paper) or best-scored one
    temperature: float = 0.0
    max_tokens: int = 768
    feedback_max_tokens: int = 512

    def __post_init__(self) -> None:
        require_choice("select", self.select, SELECTIONS)
        require(self.rounds >= 0, "rounds must be >= 0")


@register_strategy
class SelfRefine(Strategy):
    name = "self_refine"
    Options = SelfRefineOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        verifier = make_verifier(opts.verifier) if opts.verifier else None

        [current] = await moves.sample(ctx, 1, temperature=opts.temperature, max_tokens=opts.max_tokens)
        history: list[tuple[Candidate, float | None]] = []  # every solution, with its score once known
        round_index = 0
        try:
            while True:
                last_round = round_index == opts.rounds
                if last_round and opts.select == "last":
                    history.append((current, None))
                    moves.note_round(ctx, round_index, [current], decision="stop: rounds done",
                                     answer=current.answer)
                    break
                feedback, satisfied, score = await self._feedback(ctx, verifier, current)
                history.append((current, score))
                decision = ("stop: satisfied" if satisfied else "stop: rounds done" if last_round
                            else "refine")
                moves.note_round(ctx, round_index, [current], [score], critiques=[feedback], decision=decision,
                                 answer=self._pick(history).answer, satisfied=satisfied,
                                 verifier=opts.verifier or "self_check")
                if satisfied or last_round:
                    break
                revised = await moves.refine(ctx, current, feedback, round=round_index + 1,
                                             temperature=opts.temperature, max_tokens=opts.max_tokens)
                round_index += 1
                if revised.answer is None and current.answer is not None:
                    moves.note_round(ctx, round_index, [current], decision="stop: revision gave no answer",
                                     answer=self._pick(history).answer, rejected=revised.to_dict())
                    break
                current = revised
        except BudgetExhausted as exc:
            ctx.note("budget_exhausted", reason=str(exc), round=round_index)
            if not history or history[-1][0] is not current:  # a revision the budget left unjudged
                history.append((current, None))
                moves.note_round(ctx, round_index, [current], decision="stop: budget",
                                 answer=self._pick(history).answer)
        chosen = self._pick(history)
        moves.note_final(ctx, chosen.answer, chosen.round, select=opts.select)
        return Result(chosen.answer, chosen.text, {"rounds": round_index})

    async def _feedback(self, ctx: SolveContext, verifier: Verifier | None,
                        candidate: Candidate) -> tuple[str, bool, float | None]:
        """(feedback text for the refiner, whether it is satisfied, a score in [0, 1] if there is one)."""
        opts = self.options
        if verifier is None:
            text, verdict = await moves.self_check(ctx, candidate, max_tokens=opts.feedback_max_tokens)
            return text, verdict is True, None if verdict is None else float(verdict)
        score = await verifier.score(ctx, candidate.text)
        satisfied = score.value >= opts.accept_threshold
        text = score.feedback or (f"A verifier ({opts.verifier}) judged this solution "
                                  f"{'acceptable' if satisfied else 'wrong'} (score {score.value:.2f}).")
        return text, satisfied, score.value

    def _pick(self, history: list[tuple[Candidate, float | None]]) -> Candidate:
        if self.options.select == "last":
            return history[-1][0]
        # best score; unscored solutions rank below scored ones, ties go to the later (more refined)
        return max(enumerate(history), key=lambda item: (item[1][1] is not None, item[1][1] or 0.0, item[0]))[1][0]
