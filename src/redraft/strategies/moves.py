"""The shared moves strategies are built from: sample, critique, refine, score, vote.

Each move goes through ``ctx.generate`` (so it is counted, cached, budgeted and traced) and
returns plain data. Prompts live here, in one place, so every method refines the same way
unless it says otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ..context import SolveContext
from ..verifiers.base import Score, Verifier
from ..voting import Vote, weighted_vote


@dataclass(frozen=True)
class Candidate:
    """One solution text, its extracted answer, and where it came from (for the trace)."""

    text: str
    answer: str | None
    origin: str = "draft"  # draft | refine | global | local | ...
    round: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "answer": self.answer, "origin": self.origin, "round": self.round}


CRITIQUE_PROMPT = """Problem:
{question}

Proposed solution:
{solution}

Review the proposed solution step by step. Point out any error in reasoning or arithmetic, and say
which step is wrong. If everything is correct, say so. Do not write a new solution."""

REFINE_PROMPT = """Problem:
{question}

Previous solution:
{solution}

Feedback on the previous solution:
{feedback}

Using the feedback, write an improved solution from the start. If the previous solution was
correct, you may keep it. {instruction}"""


def final_instruction(ctx: SolveContext) -> str:
    """The task's own answer-format instruction (e.g. "put the final answer in \\boxed{}")."""
    prompt = ctx.task.messages(ctx.problem)[-1]["content"]
    return prompt.rsplit("\n\n", 1)[-1] if "\n\n" in prompt else ""


async def sample(ctx: SolveContext, n: int, *, temperature: float = 0.7, max_tokens: int = 768,
                 round: int = 0, role: str = "solver") -> list[Candidate]:
    """n independent drafts from the task's plain prompt."""
    completions = await ctx.generate(ctx.task.messages(ctx.problem), role=role, n=n,
                                     temperature=temperature, max_tokens=max_tokens,
                                     label="sample")
    return [Candidate(c.text, ctx.extract(c.text), "draft", round) for c in completions]


async def critique(ctx: SolveContext, candidate: Candidate, *, role: str = "reviewer", max_tokens: int = 512,
                   prompt: str = CRITIQUE_PROMPT) -> str:
    """Self-feedback: the model reviews a solution (no external signal)."""
    content = prompt.format(question=ctx.problem.question, solution=candidate.text)
    [reply] = await ctx.generate([{"role": "user", "content": content}], role=role, max_tokens=max_tokens,
                                 label="critique")
    return reply.text


async def refine(ctx: SolveContext, candidate: Candidate, feedback: str, *, round: int, role: str = "refiner",
                 temperature: float = 0.0, max_tokens: int = 768, origin: str = "refine",
                 prompt: str = REFINE_PROMPT) -> Candidate:
    """Rewrite a solution given feedback on it."""
    content = prompt.format(question=ctx.problem.question, solution=candidate.text, feedback=feedback,
                            instruction=final_instruction(ctx))
    [reply] = await ctx.generate([{"role": "user", "content": content}], role=role, temperature=temperature,
                                 max_tokens=max_tokens, label=origin)
    return Candidate(reply.text, ctx.extract(reply.text), origin, round)


async def score_all(ctx: SolveContext, verifier: Verifier, candidates: Sequence[Candidate]) -> list[Score]:
    """Score candidates concurrently (their model calls batch in llama.cpp's parallel slots)."""
    return list(await asyncio.gather(*(verifier.score(ctx, c.text) for c in candidates)))


def vote(ctx: SolveContext, candidates: Sequence[Candidate], weights: Sequence[float] | None = None) -> Vote:
    """Majority (or weighted) vote over the candidates' answers, by the task's notion of same answer."""
    return weighted_vote([c.answer for c in candidates], weights, ctx.task.answer_key)


def best(candidates: Sequence[Candidate], scores: Sequence[Score]) -> int:
    """Index of the highest-scored candidate; ties go to the earliest."""
    return max(range(len(candidates)), key=lambda i: (scores[i].value, -i))
