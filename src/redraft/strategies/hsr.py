"""HSR: Eigen-1's Hierarchical Solution Refinement with Quality-Aware Iterative Reasoning (Tang et al., 2025).

Algorithm, as this module runs it::

    round 0   n drafts; the verifier scores each (its quality)
    round r   (r = 1 .. rounds)                                                    -- QAIR
              if every candidate's quality >= quality_threshold: stop
              for each candidate i in turn whose quality is below the threshold:    -- HSR
                  anchor = candidate i; peers = all the others, with their scores
                  repair = the model repairs the anchor using its peers as references
                  the verifier scores the repair; it replaces the anchor unless it scores lower
    return the verifier-weighted vote over the candidates (or the best-scored one: final=best)

Choices the abstract leaves open, and why:

- *Retrieval is not part of this strategy.* Eigen-1's monitor-based RAG is a separate layer;
  this module is the refinement half (HSR + QAIR) on its own.
- *"In turn" is sequential.* Anchors are repaired one after another and a repair replaces its
  anchor before the next anchor's turn, so later anchors are repaired by already-repaired peers
  (the hierarchy). This costs the batching of parallel calls, which we accept for fidelity.
- *Quality-aware.* The verifier's score is the quality; only candidates below
  ``quality_threshold`` become anchors, rounds stop once all pass, and a repair that scores
  lower than its anchor is discarded (``keep_better``), so strong solutions are not diluted (the
  failure of "averaging across all candidates" the abstract names).
- *Final answer.* The abstract reports that reasoning tasks favour consensus, so the default is
  a verifier-weighted vote over the final candidates; ``final=best`` takes the top score.
- *Budget.* On BudgetExhausted the strategy returns the final rule over the candidates as they
  stand (every completed, scored repair is already in place); drafts never scored fall back to
  their majority answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from ..verifiers import make_verifier
from ..verifiers.base import Score, Verifier
from .base import Strategy, register_strategy, require, require_choice
from .moves import (
    Candidate,
    final_instruction,
    gather_within_budget,
    note_final,
    note_round,
    sample,
    text_for_answer,
    vote,
)

REPAIR_PROMPT = """Problem:
{question}

Anchor solution, to be repaired (verifier score {score:.2f}, 0 = surely wrong, 1 = surely right):
{solution}

Peer solutions to the same problem, with their verifier scores:
{peers}

Use the peers as references to repair the anchor: complete missing reasoning, correct wrong numbers,
replace a wrong method with a peer's better one, and make the presentation clear. Keep what is
already right in the anchor. Write the repaired solution in full. {instruction}"""

FINAL_CHOICES = ("vote", "best")


@dataclass
class HsrOptions:
    n: int = 3
    rounds: int = 2
    verifier: str = "judge"
    quality_threshold: float = 0.7
    keep_better: bool = True
    final: str = "vote"
    temperature: float = 0.7
    repair_temperature: float = 0.0
    max_tokens: int = 768

    def __post_init__(self) -> None:
        require_choice("final", self.final, FINAL_CHOICES)
        require(self.n >= 2, "needs n >= 2 (an anchor needs peers)")


@register_strategy
class Hsr(Strategy):
    name = "hsr"
    Options = HsrOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        verifier = make_verifier(opts.verifier)
        candidates = await sample(ctx, opts.n, temperature=opts.temperature, max_tokens=opts.max_tokens)
        found, exhausted = await gather_within_budget([verifier.score(ctx, c.text) for c in candidates])
        if exhausted:
            answer = vote(ctx, candidates).answer
            ctx.note("budget_exhausted", reason="budget spent while scoring the drafts", round=0)
            note_round(ctx, 0, candidates, found, decision="budget: majority vote of the drafts", answer=answer)
            note_final(ctx, answer, 0)
            return Result(answer, text_for_answer(ctx, candidates, answer), {"rounds": 0, "budget_exhausted": True})
        scores: list[Score] = [s for s in found if s is not None]
        round_done = 0
        self._note(ctx, 0, candidates, scores, self._decision(scores, 0), [])
        try:
            while round_done < opts.rounds and any(s.value < opts.quality_threshold for s in scores):
                round_done += 1
                repairs = await self._round(ctx, verifier, candidates, scores, round_done)
                self._note(ctx, round_done, candidates, scores, self._decision(scores, round_done), repairs)
        except BudgetExhausted as exc:
            exhausted = True
            ctx.note("budget_exhausted", reason=str(exc), round=round_done)
            self._note(ctx, round_done, candidates, scores, "budget: stop", [])
        answer, text = self._final(ctx, candidates, scores)
        note_final(ctx, answer, round_done)
        return Result(answer, text, {"rounds": round_done, "budget_exhausted": exhausted})

    async def _round(self, ctx: SolveContext, verifier: Verifier, candidates: list[Candidate], scores: list[Score],
                     round: int) -> list[dict]:
        """Each low-quality candidate in turn is repaired by its peers; updates the lists in place."""
        opts = self.options
        repairs = []
        for index in range(len(candidates)):
            if scores[index].value >= opts.quality_threshold:
                continue
            repaired = await self._repair(ctx, candidates, scores, index, round)
            repaired_score = await verifier.score(ctx, repaired.text)
            kept = not (opts.keep_better and repaired_score.value < scores[index].value)
            repairs.append({"anchor": index, "before": scores[index].value, "after": repaired_score.value,
                            "answer_before": candidates[index].answer, "answer_after": repaired.answer,
                            "kept": "repair" if kept else "anchor"})
            if kept:
                candidates[index], scores[index] = repaired, repaired_score
        return repairs

    async def _repair(self, ctx: SolveContext, candidates: list[Candidate], scores: list[Score], anchor: int,
                      round: int) -> Candidate:
        peers = "\n\n".join(f"Peer {n} (score {scores[i].value:.2f}):\n{candidates[i].text}"
                            for n, i in enumerate((i for i in range(len(candidates)) if i != anchor), start=1))
        content = REPAIR_PROMPT.format(question=ctx.problem.question, solution=candidates[anchor].text,
                                       score=scores[anchor].value, peers=peers, instruction=final_instruction(ctx))
        [reply] = await ctx.generate([{"role": "user", "content": content}], role="refiner",
                                     temperature=self.options.repair_temperature, max_tokens=self.options.max_tokens,
                                     label="repair")
        return Candidate(reply.text, ctx.extract(reply.text), "repair", round)

    def _decision(self, scores: list[Score], round: int) -> str:
        if all(s.value >= self.options.quality_threshold for s in scores):
            return "stop: all above quality threshold"
        return "stop: round limit" if round >= self.options.rounds else "repair low-quality anchors"

    def _note(self, ctx: SolveContext, round: int, candidates: list[Candidate], scores: list[Score], decision: str,
              repairs: list[dict]) -> None:
        answer, _ = self._final(ctx, candidates, scores)
        note_round(ctx, round, candidates, scores, decision=decision, critiques=[s.feedback for s in scores],
                   answer=answer, repairs=repairs)

    def _final(self, ctx: SolveContext, candidates: list[Candidate], scores: list[Score]) -> tuple[str | None, str]:
        if self.options.final == "best":
            best = max(range(len(candidates)), key=lambda i: (scores[i].value, -i))
            return candidates[best].answer, candidates[best].text
        answer = vote(ctx, candidates, [s.value for s in scores]).answer
        return answer, text_for_answer(ctx, candidates, answer, scores)
