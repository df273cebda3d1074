"""DSER: Deep Self-Evolving Reasoning (2025).

Algorithm, as this module runs it::

    round 0   `chains` independent drafts, one per chain
    round t   (t = 1 .. iterations), all live chains at once:
              report = verifier(chain's current solution)             -- verify
              the chain's solution = refine(solution, report)          -- refine (a stochastic transition)
    return the majority vote over the chains' final answers

Choices the abstract leaves open, and why:

- *Always step.* DSER treats a chain as a Markov chain whose transitions only need
  P(improve) > P(degrade); it relies on long horizons, not on trusting the verifier. So by
  default every iteration refines, even when the verification passes (a verified solution may
  be kept by the refiner, the prompt allows it). ``stop_when_verified=true`` instead freezes a
  chain once its score reaches ``verified_threshold`` (cheaper, and closer to classic
  verify-then-refine).
- *Verifier.* A name (default ``judge``: the model checking its own solution, which is the
  weak self-verification the paper studies); its feedback is the verification report the refiner
  sees; a verifier without feedback is reported as its score alone.
- *Transitions are sampled* at ``refine_temperature`` (0.7): the chain is meant to be stochastic,
  and independent chains must not collapse onto one greedy path.
- *Transitions to no answer are rejected.* A refinement whose text has no final answer (cut
  off by ``max_tokens`` or by the budget) leaves the chain where it was: a chain's state stays a
  complete solution, which the final vote needs.
- *Vote.* Plain majority over the chains' last answers (as in the paper); ties go to the chain
  listed first.
- *Budget.* On BudgetExhausted the strategy votes over each chain's latest solution: a chain's
  state is always a complete solution, so chains that finished the interrupted step keep it.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    sample,
    text_for_answer,
    vote,
)


@dataclass
class DserOptions:
    chains: int = 4
    iterations: int = 3
    verifier: str = "judge"
    stop_when_verified: bool = False
    verified_threshold: float = 0.5
    temperature: float = 0.7
    refine_temperature: float = 0.7
    max_tokens: int = 768

    def __post_init__(self) -> None:
        require(self.chains >= 1 and self.iterations >= 0, "needs chains >= 1 and iterations >= 0")


def report_of(score: Score) -> str:
    """The verification report the refiner sees."""
    head = f"A verifier rated this solution {score.value:.2f} (0 = surely wrong, 1 = surely right)."
    return f"{head}\n{score.feedback.strip()}" if score.feedback else head


@register_strategy
class Dser(Strategy):
    name = "dser"
    Options = DserOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        verifier = make_verifier(opts.verifier)
        chains = await sample(ctx, opts.chains, temperature=opts.temperature, max_tokens=opts.max_tokens)
        frozen = [False] * len(chains)
        note_round(ctx, 0, chains, decision="evolve", answer=vote(ctx, chains).answer)
        exhausted = False
        round_done = 0
        while round_done < opts.iterations and not exhausted and not all(frozen):
            round_done += 1
            live = [i for i in range(len(chains)) if not frozen[i]]
            steps, exhausted = await gather_within_budget([self._step(ctx, verifier, chains[i], round_done)
                                                           for i in live])
            verified: list[float | None] = [None] * len(chains)
            critiques: list[str | None] = [None] * len(chains)
            rejected: list[int] = []
            for i, step in zip(live, steps, strict=True):
                if step is None:
                    continue
                score, new = step
                verified[i], critiques[i] = score.value, report_of(score)
                if new is None:
                    frozen[i] = True
                elif new.answer is None and chains[i].answer is not None:
                    rejected.append(i)  # no final answer (cut off): the chain keeps its solution
                else:
                    chains[i] = new
            decision = ("budget: stop" if exhausted else "stop: all chains verified" if all(frozen)
                        else "stop: iteration limit" if round_done == opts.iterations else "evolve")
            note_round(ctx, round_done, chains, decision=decision, critiques=critiques, verified=verified,
                       frozen=list(frozen), rejected=rejected, answer=vote(ctx, chains).answer)
        if exhausted:
            ctx.note("budget_exhausted", reason="budget spent during an evolution step", round=round_done)
        final = vote(ctx, chains)
        note_final(ctx, final.answer, round_done, agreement=final.agreement)
        return Result(final.answer, text_for_answer(ctx, chains, final.answer),
                      {"rounds": round_done, "agreement": final.agreement, "budget_exhausted": exhausted})

    async def _step(self, ctx: SolveContext, verifier: Verifier, current: Candidate,
                    round: int) -> tuple[Score, Candidate | None]:
        """Verify, then refine; the new solution is None when the chain stops (verified and stop_when_verified)."""
        opts = self.options
        score = await verifier.score(ctx, current.text)
        if opts.stop_when_verified and score.value >= opts.verified_threshold:
            return score, None
        new = await refine(ctx, current, report_of(score), round=round, temperature=opts.refine_temperature,
                           max_tokens=opts.max_tokens)
        return score, new
