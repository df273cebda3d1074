"""``rollout``: GLoRe's SORM idea without training. A step prefix is worth the fraction of k sampled
continuations from it that reach the consensus answer.

GLoRe trains a stepwise ORM on exactly these rollout labels; here the rollouts themselves are the
estimate, paid for at test time. Choices the paper leaves open (or that differ without training):

- target: the consensus (majority) answer of the problem's samples, i.e. the solver-role calls
  already in the trace, when they give at least ``min_samples`` answers; otherwise k fresh samples
  from the question alone. There is no answer key at test time, so "reaches the consensus" stands
  in for "is correct".
- step k's value: the fraction of k continuations of the prefix through step k whose answer is the
  consensus. The complete solution (the last step) needs no rollout: its value is 1 if its own
  answer is the consensus, else 0. The empty prefix (the question alone) is the baseline: the
  agreement of the problem's samples.
- continuation: ``prefill`` puts the prefix in a final assistant message for the model to continue
  (llama.cpp supports this; many OpenAI-compatible servers do not); ``prompt`` asks in a user turn
  to continue the given partial solution, which every chat backend can do.
- at most ``max_prefixes`` prefixes are rolled out, evenly spaced; a step between two rolled-out
  prefixes takes the value of the next one (a value belongs to a prefix, and the next evaluated
  prefix contains the step).
- first drop (``first_error``): the first step whose value falls below ``threshold`` from at or
  above it, or falls by more than ``min_drop`` from the previous prefix's value.
- the outcome value is the mean of the step values (``aggregate=mean``), or their ``min``, or the
  ``last`` (which reduces to "agrees with the majority").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..context import SolveContext
from ..steps import SPLIT_MODES, prefix_through, split_steps
from ..voting import majority_vote
from .base import Score, Verifier, register_verifier

CONTINUE_PROMPT = """{question}

Here is the beginning of a solution:

{prefix}

Continue this solution from where it stops, without repeating it, and finish it. {instruction}"""

AGGREGATES = ("mean", "min", "last")


def evaluated_positions(count: int, cap: int) -> list[int]:
    """Which proper prefixes (ending at steps 0..count-2) to roll out, at most ``cap``, evenly spaced."""
    proper = list(range(count - 1))
    if len(proper) <= cap:
        return proper
    if cap <= 0:
        return []
    return sorted({proper[round(i * (len(proper) - 1) / max(cap - 1, 1))] for i in range(cap)})


def first_drop(values: Sequence[float], baseline: float, threshold: float, min_drop: float) -> int | None:
    previous = baseline
    for index, value in enumerate(values):
        if (value < threshold <= previous) or (previous - value > min_drop):
            return index
        previous = value
    return None


@register_verifier
class RolloutVerifier(Verifier):
    name = "rollout"

    def __init__(self, k: int = 4, temperature: float = 0.7, max_tokens: int = 512, split: str = "auto",
                 max_prefixes: int = 6, threshold: float = 0.5, min_drop: float = 0.5, continue_as: str = "prefill",
                 aggregate: str = "mean", min_samples: int = 2, role: str = "rollout") -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        if split not in SPLIT_MODES:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLIT_MODES)}")
        if continue_as not in ("prefill", "prompt"):
            raise ValueError(f"continue_as must be prefill or prompt, got {continue_as!r}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {aggregate!r}: choose one of {', '.join(AGGREGATES)}")
        self.k, self.temperature, self.max_tokens = k, temperature, max_tokens
        self.split, self.max_prefixes = split, max_prefixes
        self.threshold, self.min_drop = threshold, min_drop
        self.continue_as, self.aggregate, self.min_samples = continue_as, aggregate, min_samples
        self.role = role
        # one consensus per problem, shared by the concurrent scoring of its candidates
        self._consensus: dict[tuple[int, str, int], asyncio.Task[tuple[str | None, float, str]]] = {}

    def _key(self, ctx: SolveContext, answer: str | None) -> str | None:
        return ctx.task.answer_key(answer) if answer is not None else None

    def traced_samples(self, ctx: SolveContext) -> list[str]:
        """The solver's own samples of this problem, as recorded in the trace."""
        return [text for event in ctx.trace if event.get("type") == "call" and event.get("role") == "solver"
                for text in event.get("outputs", ())]

    async def consensus(self, ctx: SolveContext) -> tuple[str | None, float, str]:
        """(consensus answer key, its agreement among the samples, where the samples came from)."""
        key = (id(ctx), ctx.problem.id, len(self.traced_samples(ctx)))  # new samples: a new consensus
        if key not in self._consensus:
            self._consensus[key] = asyncio.ensure_future(self._find_consensus(ctx))
        return await self._consensus[key]

    async def _find_consensus(self, ctx: SolveContext) -> tuple[str | None, float, str]:
        answers = [ctx.extract(text) for text in self.traced_samples(ctx)]
        source = "trace"
        if sum(a is not None for a in answers) < self.min_samples:
            fresh = await ctx.generate(ctx.task.messages(ctx.problem), role=self.role, n=self.k,
                                       temperature=self.temperature, max_tokens=self.max_tokens,
                                       label="rollout_consensus")
            answers, source = [ctx.extract(c.text) for c in fresh], "rollouts"
        vote = majority_vote(answers, ctx.task.answer_key)
        if vote.answer is None:
            return None, 0.0, source
        key = ctx.task.answer_key(vote.answer)
        return key, sum(self._key(ctx, a) == key for a in answers) / len(answers), source

    def continuation_messages(self, ctx: SolveContext, prefix: str) -> list[dict[str, str]]:
        messages = ctx.task.messages(ctx.problem)
        if self.continue_as == "prefill":
            return [*messages, {"role": "assistant", "content": prefix + "\n"}]
        instruction = messages[-1]["content"].rsplit("\n\n", 1)[-1] if "\n\n" in messages[-1]["content"] else ""
        return [{"role": "user", "content": CONTINUE_PROMPT.format(question=ctx.problem.question, prefix=prefix,
                                                                    instruction=instruction)}]

    async def prefix_value(self, ctx: SolveContext, prefix: str, target: str, step: int) -> float:
        completions = await ctx.generate(self.continuation_messages(ctx, prefix), role=self.role, n=self.k,
                                         temperature=self.temperature, max_tokens=self.max_tokens,
                                         label=f"rollout_step_{step}")
        # extract from prefix + continuation: a backend may or may not echo the prefilled prefix,
        # and the final answer is at the end either way
        reached = [self._key(ctx, ctx.extract(prefix + "\n" + c.text)) == target for c in completions]
        return sum(reached) / len(reached)

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        steps = split_steps(solution, self.split)
        if not steps:
            return Score(0.0, (), None, "the solution is empty")
        target, baseline, source = await self.consensus(ctx)
        own = self._key(ctx, ctx.extract(solution))
        final = 1.0 if target is not None and own == target else 0.0
        positions = evaluated_positions(len(steps), self.max_prefixes) if target is not None else []
        rolled = await asyncio.gather(*(self.prefix_value(ctx, prefix_through(steps, i), target, i)
                                        for i in positions)) if target is not None else []
        by_position: dict[int, float] = dict(zip(positions, rolled, strict=True))
        by_position[len(steps) - 1] = final
        values: list[float] = []
        for index in range(len(steps)):
            next_evaluated = min(p for p in by_position if p >= index)
            values.append(by_position[next_evaluated] if target is not None else 0.0)
        drop = first_drop(values, baseline, self.threshold, self.min_drop)
        info: dict[str, Any] = {"consensus": target, "baseline": baseline, "source": source,
                                "rolled_out": positions, "values": values, "first_drop": drop}
        ctx.note("rollout_values", **info)
        value = {"mean": sum(values) / len(values), "min": min(values), "last": values[-1]}[self.aggregate]
        feedback = None
        if target is None:
            feedback = "no sample gave an answer, so there is no consensus to roll out towards"
        elif drop is not None:
            before = baseline if drop == 0 else values[drop - 1]
            feedback = (f"After step {drop + 1}, continuations reach the consensus answer {target} "
                        f"{values[drop]:.0%} of the time (before it: {before:.0%}). Step {drop + 1} is likely "
                        f"where the solution goes wrong:\n{steps[drop]}")
        return Score(value, tuple(values), drop, feedback)
