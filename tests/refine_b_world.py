"""A scripted world for the refinement-strategy tests: a model that answers by prompt kind, and
verifiers that score by the candidate's answer (each spends one short model call, so budgets bite)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from redraft.answers import extract_number
from redraft.context import SolveContext
from redraft.models.scripted import ScriptedModel
from redraft.runner import solve_one
from redraft.strategies import make_strategy
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.verifiers import Score, Verifier, register_verifier

# What each verifier says, by extracted answer; tests set these (the registry is global, so the
# verifiers read module state rather than options).
OUTCOME: dict[str, float] = {}
STEPS: dict[str, Score] = {}
DEFAULT_OUTCOME = 0.1


def answer_of(text: str) -> str:
    return extract_number(text) or ""


@register_verifier
class TableOutcome(Verifier):
    """Outcome verifier: the score the test assigned to the candidate's answer."""

    name = "test_outcome"

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        await ctx.generate([{"role": "user", "content": f"VERIFY {solution}"}], role=self.role, max_tokens=8,
                           label="verify")
        answer = answer_of(solution)
        return Score(OUTCOME.get(answer, DEFAULT_OUTCOME), feedback=f"feedback on {answer}")


@register_verifier
class TableSteps(Verifier):
    """Step verifier: the per-step Score the test assigned to the candidate's answer."""

    name = "test_steps"

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        await ctx.generate([{"role": "user", "content": f"STEPCHECK {solution}"}], role=self.role, max_tokens=8,
                           label="stepcheck")
        return STEPS.get(answer_of(solution), Score(0.5))


def kind_of(prompt: str) -> str:
    """Which move wrote this prompt (by the markers of the prompts in moves.py and the strategies)."""
    markers = [("VERIFY ", "verify"), ("STEPCHECK ", "stepcheck"), ("correctness score from a step verifier", "review"),
               ("Continue the solution from where it stops", "local"), ("Draft solution (it may contain", "global"),
               ("Feedback on the previous solution", "refine"), ("Peer solutions", "repair"),
               ("Verifier's assessment", "iad"), ("Review the proposed solution step by step", "critique")]
    for marker, kind in markers:
        if marker in prompt:
            return kind
    return "draft"


@dataclass
class World:
    """A responder: drafts by sample index, and one reply (or function of the prompt) per move kind."""

    drafts: list[str] = field(default_factory=list)
    replies: dict[str, str | Callable[[str], str]] = field(default_factory=dict)
    seen: dict[str, list[str]] = field(default_factory=dict)

    def __call__(self, messages: list[dict[str, str]], params: object, index: int) -> str:
        prompt = messages[-1]["content"]
        kind = kind_of(prompt)
        self.seen.setdefault(kind, []).append(prompt)
        if kind == "draft":
            return self.drafts[index % len(self.drafts)]
        if kind in ("verify", "stepcheck"):
            return "ok"
        reply = self.replies.get(kind, "no change \\boxed{0}")
        return reply(prompt) if callable(reply) else reply

    def count(self, kind: str) -> int:
        return len(self.seen.get(kind, []))


def boxed(answer: str | int, words: int = 0) -> str:
    return " ".join(["pad"] * words + [f"so \\boxed{{{answer}}}"])


def solve(name: str, options: dict, world: World, budget: int | None = None):
    task = ArithmeticTask(count=1)
    model = ScriptedModel(responder=world)
    strategy = make_strategy(name, options)
    result, ctx, error = asyncio.run(solve_one(strategy, task, task.problems()[0], {"solver": model},
                                               budget_tokens=budget))
    return result, ctx, error


def events(ctx: SolveContext, kind: str) -> list[dict]:
    return [e for e in ctx.trace if e["type"] == kind]


def between(text: str, start: str, end: str) -> str:
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, flags=re.DOTALL)
    assert match, f"{start!r} ... {end!r} not in prompt"
    return match.group(1)
