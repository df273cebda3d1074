"""Try again: after an answer the verifier rejects, the only feedback is "try again".

"A Simple 'Try Again' Can Elicit Multi-Turn LLM Reasoning" (UFO: unary feedback as observation),
with the two mitigations "Feedback Friction" tried, each an option: temperature rising per round,
and previously tried (rejected) answers forbidden::

    conversation = [question]
    y[0] = solve(conversation)                           at temperature T[0]
    for t = 0, 1, ...:
        if VERIFY(y[t]) accepts or t == rounds: stop
        conversation += [y[t], "Your answer is incorrect. Let's try again."
                               (+ "Do not answer A, B: already tried" with forbid_tried)]
        T[t+1] = min(T[0] + (t+1) * temperature_step, temperature_max)
        y[t+1] = solve(conversation) at T[t+1]; with forbid_tried, resample (up to max_resamples
                 more times) while its answer is one already tried
    return y[t]  (select=best: the best-scored attempt)

Choices the abstracts leave open, and what this module does:

- The rejecting verifier is a name (``verifier``): ``rating`` by default (accept at score >=
  ``accept_threshold``); ``oracle`` is the answer key, the natural rejecter of ceiling experiments
  (as in Feedback Friction's near-perfect feedback): it needs an oracle run, which the run table
  and this strategy's trace and result info label (``oracle: true``).
- The model keeps the whole conversation (UFO is multi-turn), so it sees its own earlier attempts.
- Forbidding answers works twice over: the unary message lists the tried answers, and an attempt
  repeating one is rejected and resampled (rejection sampling as in Feedback Friction). A resample
  runs at temperature at least ``resample_temperature`` so it can differ; if every resample repeats
  a tried answer, the last one is kept. An attempt with no answer is never a repeat.
- Budget: when the budget runs out, the strategy returns the last attempt (or the best-scored
  with select=best) and notes ``budget_exhausted``; only a first draft the budget cannot pay for
  propagates BudgetExhausted.
- The attempt returned is the last (or best-scored) one that has an answer: an attempt cut off
  by the budget or max_tokens before its answer is never preferred to one with an answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from ..models.base import Message
from ..verifiers import make_verifier
from . import moves
from .base import Strategy, StrategyError, register_strategy, require, require_choice
from .moves import Candidate

UNARY_FEEDBACK = "Your answer is incorrect. Let's try again."
FORBID_NOTE = "Do not answer {answers}: already tried, and wrong."
SELECTIONS = ("last", "best")


@dataclass
class TryAgainOptions:
    rounds: int = 3  # most retries
    verifier: str = "rating"  # "oracle" for ceiling experiments (needs an oracle run)
    accept_threshold: float = 0.8
    temperature: float = 0.0  # first attempt
    temperature_step: float = 0.0  # Feedback Friction mitigation 1: added per retry (0 = off)
    temperature_max: float = 1.2
    forbid_tried: bool = False  # Feedback Friction mitigation 2
    max_resamples: int = 3
    resample_temperature: float = 0.7
    select: str = "last"
    max_tokens: int = 768

    def __post_init__(self) -> None:
        require_choice("select", self.select, SELECTIONS)
        require(self.rounds >= 0 and self.max_resamples >= 0, "rounds and max_resamples must be >= 0")


@register_strategy
class TryAgain(Strategy):
    name = "try_again"
    Options = TryAgainOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        verifier = make_verifier(opts.verifier)
        oracle = verifier.uses_oracle
        if oracle and ctx.oracle is None:
            raise StrategyError("try_again: verifier=oracle needs an oracle run (the answer key is not available)")
        conversation: list[Message] = list(ctx.task.messages(ctx.problem))
        [current] = await self._attempt(ctx, conversation, opts.temperature, 0, n=1)
        attempts: list[tuple[Candidate, float | None]] = []
        tried: list[str] = []
        round_index = 0
        try:
            while True:
                score = await verifier.score(ctx, current.text)
                attempts.append((current, score.value))
                accepted = score.value >= opts.accept_threshold
                last_round = round_index == opts.rounds
                decision = "stop: accepted" if accepted else "stop: rounds done" if last_round else "try again"
                moves.note_round(ctx, round_index, [current], [score.value], decision=decision,
                                 answer=self._pick(attempts).answer, verifier=opts.verifier, oracle=oracle,
                                 temperature=self._temperature(round_index), tried=list(tried))
                if accepted or last_round:
                    break
                if current.answer is not None and not self._seen(ctx, current.answer, tried):
                    tried.append(current.answer)
                feedback = UNARY_FEEDBACK
                if opts.forbid_tried and tried:
                    feedback += " " + FORBID_NOTE.format(answers=", ".join(tried))
                conversation = [*conversation, {"role": "assistant", "content": current.text},
                                {"role": "user", "content": feedback}]
                round_index += 1
                current = await self._retry(ctx, conversation, tried, round_index)
        except BudgetExhausted as exc:
            ctx.note("budget_exhausted", reason=str(exc), round=round_index)
            if not attempts or attempts[-1][0] is not current:  # an attempt the budget left unverified
                attempts.append((current, None))
                moves.note_round(ctx, round_index, [current], decision="stop: budget",
                                 answer=self._pick(attempts).answer, verifier=opts.verifier, oracle=oracle)
        chosen = self._pick(attempts)
        moves.note_final(ctx, chosen.answer, chosen.round, oracle=oracle)
        return Result(chosen.answer, chosen.text, {"rounds": round_index, "oracle": oracle, "tried": tried})

    def _temperature(self, round_index: int) -> float:
        opts = self.options
        if round_index == 0:
            return opts.temperature
        return min(opts.temperature + round_index * opts.temperature_step, max(opts.temperature_max, opts.temperature))

    async def _attempt(self, ctx: SolveContext, conversation: list[Message], temperature: float, round_index: int,
                       n: int, label: str = "attempt") -> list[Candidate]:
        completions = await ctx.generate(conversation, n=n, temperature=temperature,
                                         max_tokens=self.options.max_tokens, label=label)
        origin = "draft" if round_index == 0 else "retry"
        return [Candidate(c.text, ctx.extract(c.text), origin, round_index) for c in completions]

    async def _retry(self, ctx: SolveContext, conversation: list[Message], tried: list[str],
                     round_index: int) -> Candidate:
        opts = self.options
        temperature = self._temperature(round_index)
        [attempt] = await self._attempt(ctx, conversation, temperature, round_index, n=1)
        if not opts.forbid_tried:
            return attempt
        resamples = 0
        while attempt.answer is not None and self._seen(ctx, attempt.answer, tried) and resamples < opts.max_resamples:
            ctx.note("reject_repeat", round=round_index, answer=attempt.answer, resample=resamples + 1)
            resamples += 1
            [attempt] = await self._attempt(ctx, conversation, max(temperature, opts.resample_temperature),
                                            round_index, n=1, label="resample")
        return attempt

    @staticmethod
    def _seen(ctx: SolveContext, answer: str, tried: list[str]) -> bool:
        key = ctx.task.answer_key(answer)
        return any(ctx.task.answer_key(t) == key for t in tried)

    def _pick(self, attempts: list[tuple[Candidate, float | None]]) -> Candidate:
        """The last (or best-scored) attempt among those with an answer; an answerless one only if all are."""
        answered = [a for a in attempts if a[0].answer is not None] or attempts
        if self.options.select == "last":
            return answered[-1][0]
        return max(enumerate(answered), key=lambda item: (item[1][1] is not None, item[1][1] or 0.0, item[0]))[1][0]
