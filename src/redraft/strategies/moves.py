"""The shared moves strategies are built from: sample, critique, refine, score, vote.

Each move goes through ``ctx.generate`` (so it is counted, cached, budgeted and traced) and
returns plain data. Prompts live here, in one place, so every method refines the same way
unless it says otherwise.

Trace convention (every refinement strategy follows it, so a report can compute accuracy per
round and flips against the first drafts without knowing the method):

- ``ctx.note("round", round=k, candidates=[c.to_dict(), ...], scores=[float | None, ...],
  critiques=[str | None, ...], decision="...", **extra)`` once per round; round 0 is the first
  drafts. ``candidates`` are the candidates *alive* after the round (the ones a final answer
  would be chosen from if the strategy stopped here), ``scores``/``critiques`` align with them
  (None where the method did not score or critique one). ``decision`` says in a few words what
  the method decided (e.g. "hard: refine", "easy: vote", "stop: accepted"); extra keys are free.
  An optional extra ``answer=`` is the answer the method would return if it stopped after this
  round (its selection rule applied to the live candidates); reports use it for accuracy per round
  and fall back to the majority of the candidates' answers when it is absent.
- ``ctx.note("final", answer=..., round=k, **extra)`` once, with the round the answer came from.
- ``ctx.note("budget_exhausted", reason=..., round=k)`` when a strategy stops early because the
  budget ran out and returns its best so far (``note_round``/``note_final`` help write these).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..accounting import BudgetExhausted
from ..context import SolveContext
from ..steps import split_steps
from ..verifiers.base import Score, Verifier
from ..voting import Vote, mean_token_entropy, vote_by, weighted_vote


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


# -- trace helpers (see the convention in the module docstring) --------------------------------------------

def note_round(ctx: SolveContext, round: int, candidates: Sequence[Candidate],
               scores: Sequence[Score | float | None] | None = None, *, decision: str,
               critiques: Sequence[str | None] | None = None, **extra: Any) -> None:
    """Record one round: the live candidates, their scores and critiques, and the decision taken."""
    if scores is None:
        scores = [None] * len(candidates)
    values = [s.value if isinstance(s, Score) else s for s in scores]
    ctx.note("round", round=round, candidates=[c.to_dict() for c in candidates], scores=values,
             critiques=list(critiques) if critiques is not None else [None] * len(candidates),
             decision=decision, **extra)


def note_final(ctx: SolveContext, answer: str | None, round: int, **extra: Any) -> None:
    ctx.note("final", answer=answer, round=round, **extra)


T = TypeVar("T")


async def gather_within_budget(awaitables: Sequence[Awaitable[T]]) -> tuple[list[T | None], bool]:
    """Run concurrently; return each result (None for those the budget stopped) and whether it ran out.

    Unlike a bare ``asyncio.gather``, calls that did finish are kept, so a strategy can still use
    them, and no call is left running in the background. Errors other than the budget re-raise.
    """
    outcomes = await asyncio.gather(*awaitables, return_exceptions=True)
    results: list[T | None] = []
    exhausted = False
    for outcome in outcomes:
        if isinstance(outcome, BudgetExhausted):
            exhausted = True
            results.append(None)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results.append(outcome)
    return results, exhausted


# -- step-targeted moves (step verifiers: where is the error?) -----------------------------------------------

def weakest_steps(score: Score, limit: int = 2) -> list[int]:
    """Indices of the lowest-valued steps (the first error first, if the verifier named one), in step order."""
    if not score.steps:
        return [score.first_error] if score.first_error is not None else []
    chosen = sorted(range(len(score.steps)), key=lambda i: (score.steps[i], i))[:limit]
    if score.first_error is not None and score.first_error not in chosen:
        chosen = [score.first_error, *chosen[: max(limit - 1, 0)]]
    return sorted(chosen)


def error_step(score: Score) -> int | None:
    """Where to refine from: the verifier's first error, else its lowest-valued step, else None."""
    if score.first_error is not None:
        return score.first_error
    if score.steps:
        return min(range(len(score.steps)), key=lambda i: (score.steps[i], i))
    return None


REVIEW_STEPS_PROMPT = """Problem:
{question}

Proposed solution, split into steps, each with a correctness score from a step verifier (0 = surely
wrong, 1 = surely right):
{scored_steps}

The verifier finds these steps the weakest: {weak}. Review those steps closely: say exactly what is
wrong in each (reasoning, arithmetic, or a misread of the problem) and how to fix it. If a weak step is
in fact right, say so. Do not write a new solution."""


def scored_steps_text(steps: Sequence[str], score: Score) -> str:
    lines = []
    for index, step in enumerate(steps):
        value = score.steps[index] if score.steps is not None and index < len(score.steps) else None
        mark = f" (score {value:.2f})" if value is not None else ""
        lines.append(f"Step {index + 1}{mark}: {step}")
    return "\n".join(lines)


async def review_steps(ctx: SolveContext, candidate: Candidate, score: Score, *, weak_limit: int = 2,
                       step_split: str = "auto", role: str = "reviewer", max_tokens: int = 512) -> str:
    """A Reviewer's feedback targeted at the weakest steps by a step verifier's scores (MAgICoRe)."""
    steps = split_steps(candidate.text, step_split) or [candidate.text]
    weak = weakest_steps(score, weak_limit)
    weak_text = ", ".join(f"step {i + 1}" for i in weak) if weak else "none in particular (review every step)"
    content = REVIEW_STEPS_PROMPT.format(question=ctx.problem.question, scored_steps=scored_steps_text(steps, score),
                                         weak=weak_text)
    [reply] = await ctx.generate([{"role": "user", "content": content}], role=role, max_tokens=max_tokens,
                                 label="review")
    return reply.text


GLOBAL_REFINE_PROMPT = """Problem:
{question}

Draft solution (it may contain mistakes):
{solution}

Write a corrected solution to the problem from the start. {instruction}"""


async def global_refine(ctx: SolveContext, candidate: Candidate, *, round: int, role: str = "refiner",
                        temperature: float = 0.0, max_tokens: int = 768) -> Candidate:
    """GLoRe's global refiner: sees only the question and the draft, no critique, rewrites it all."""
    return await refine(ctx, candidate, "", round=round, role=role, temperature=temperature,
                        max_tokens=max_tokens, origin="global", prompt=GLOBAL_REFINE_PROMPT)


LOCAL_REFINE_PROMPT = """Problem:
{question}

The beginning of a solution, believed correct so far:
{prefix}

Critique of the step that came next in the previous attempt:
{critique}

Continue the solution from where it stops: redo that step correctly and finish the solution. Write
only the continuation. {instruction}"""


async def local_refine(ctx: SolveContext, prefix: str, critique: str, *, round: int, role: str = "refiner",
                       temperature: float = 0.0, max_tokens: int = 768) -> Candidate:
    """GLoRe's local refiner: continues from the steps before the first error, guided by a critique.

    The candidate's text is the kept prefix followed by the continuation."""
    content = LOCAL_REFINE_PROMPT.format(question=ctx.problem.question, prefix=prefix.strip() or "(nothing yet)",
                                         critique=critique, instruction=final_instruction(ctx))
    [reply] = await ctx.generate([{"role": "user", "content": content}], role=role, temperature=temperature,
                                 max_tokens=max_tokens, label="local")
    text = f"{prefix.rstrip()}\n{reply.text.lstrip()}" if prefix.strip() else reply.text
    return Candidate(text, ctx.extract(text), "local", round)


# -- voting variants, verdicts and named verifiers (self_refine, try_again, pdr, tick, ...) ----------------

async def sample_with_entropy(ctx: SolveContext, n: int, *, temperature: float = 0.7, max_tokens: int = 768,
                              round: int = 0, role: str = "solver",
                              top_logprobs: int = 5) -> tuple[list[Candidate], list[float]]:
    """n drafts like ``sample``, with each chain's mean token entropy (for inverse-entropy voting)."""
    completions = await ctx.generate(ctx.task.messages(ctx.problem), role=role, n=n, temperature=temperature,
                                     max_tokens=max_tokens, logprobs=True, top_logprobs=top_logprobs,
                                     label="sample")
    candidates = [Candidate(c.text, ctx.extract(c.text), "draft", round) for c in completions]
    return candidates, [mean_token_entropy(c.logprobs or []) for c in completions]


def vote_with(ctx: SolveContext, candidates: Sequence[Candidate], method: str = "majority", *,
              scores: Sequence[Score | float] | None = None, entropies: Sequence[float] | None = None) -> Vote:
    """Vote over the candidates' answers by ``method`` (see ``redraft.voting.VOTE_METHODS``)."""
    values = [s.value if isinstance(s, Score) else float(s) for s in scores] if scores is not None else None
    return vote_by(method, [c.answer for c in candidates], ctx.task.answer_key, scores=values, entropies=entropies)


VERDICT_CRITIQUE_PROMPT = CRITIQUE_PROMPT + """

End your reply with one line: "Verdict: CORRECT" if the solution is right, or "Verdict: INCORRECT"."""


def parse_verdict(text: str) -> bool | None:
    """The last "Verdict: CORRECT/INCORRECT" line as True/False; None when the reply gives none."""
    found = re.findall(r"verdict\W{0,3}\s*(correct|incorrect|wrong|right)", text, flags=re.IGNORECASE)
    if not found:
        return None
    return found[-1].lower() in ("correct", "right")


async def self_check(ctx: SolveContext, candidate: Candidate, *, role: str = "reviewer",
                     max_tokens: int = 512) -> tuple[str, bool | None]:
    """Self-critique that ends in a verdict: (critique text, whether the model judged it correct)."""
    text = await critique(ctx, candidate, role=role, max_tokens=max_tokens, prompt=VERDICT_CRITIQUE_PROMPT)
    return text, parse_verdict(text)


def text_for_answer(ctx: SolveContext, candidates: Sequence[Candidate], answer: str | None,
                    scores: Sequence[Score | float | None] | None = None) -> str:
    """The text to show for a voted answer: the best-scored candidate that gave it (ties: the earliest)."""
    if not candidates:
        return ""
    key = ctx.task.answer_key(answer) if answer is not None else None
    supporters = [i for i, c in enumerate(candidates)
                  if c.answer is not None and ctx.task.answer_key(c.answer) == key]
    if not supporters:
        return candidates[0].text

    def value(i: int) -> float:
        score = scores[i] if scores is not None else None
        return score.value if isinstance(score, Score) else float(score or 0.0)

    return candidates[max(supporters, key=lambda i: (value(i), -i))].text
