"""Self-Debugging / CYCLE: draft code, run the visible tests, feed the failure back, revise.

Round 0 is a greedy draft. Each later round runs the current version on the problem's visible
tests in the sandbox; if one fails, the model gets back, in the same conversation, the failing
test and its traceback (Self-Debugging's "unit test feedback"; CYCLE's execution feedback) and
writes the whole function again. Choices the papers leave open, made here:

- Feedback is the *first* failing test only, with its traceback and the start of the program's
  output: one concrete failure is easier for a small model to act on than a list.
- ``explain=true`` adds Self-Debugging's explanation step: before revising, the model explains
  its code line by line and says why the test fails, in the same conversation.
- The revision continues the chat (task prompt, the model's own reply, the feedback), rather
  than a fresh prompt, as in Self-Debugging's multi-turn setting.
- Stop when all visible tests pass, after ``rounds`` revisions, or when the budget runs out; also
  when a revision reproduces code already tested: it would fail the same way, and the next
  greedy revision would see the same conversation (small models often copy their code back
  verbatim). ``repeat_temperature`` > 0 first re-draws such a revision once at that temperature
  (Feedback Friction's remedy of sampling away from a repeated answer); 0 keeps the greedy loop.
- The returned version is the one passing the most visible tests; ties go to the *earliest*
  (a revision that does no better on the visible tests has no evidence it is better).
- Problems with no visible test use "the code loads" as the only test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..accounting import BudgetExhausted
from ..context import Result, SolveContext
from ..models.base import Message
from ..sandbox import Limits, Outcome
from ..verifiers.execution import execution_score, failure_feedback, run_visible, visible_tests
from .base import Strategy, register_strategy, require
from .moves import Candidate, note_final, note_round

FIX_PROMPT = """{feedback}

Fix the function so that it is correct for the task and passes the test. Reply with the whole corrected
function (and any imports it needs) in one ```python code block."""

EXPLAIN_PROMPT = """{feedback}

Before fixing anything, explain what your code does line by line, and say why it produces this failure.
Do not write code yet."""


@dataclass(frozen=True)
class Version:
    """One version of the program with what the checks said about it."""

    candidate: Candidate
    rank: tuple[int, ...]  # larger is better; compared lexicographically
    feedback: str
    done: bool  # every check passed: nothing left to fix
    score: float  # share of the checks passed, in [0, 1]: the round's verifier score in the trace


def best_version(versions: list[Version]) -> Version:
    """Highest rank; ties go to the earliest version."""
    return max(versions, key=lambda v: v.rank)  # max keeps the first of equals


def revision_messages(ctx: SolveContext, previous: Candidate, feedback: str) -> list[Message]:
    return [*ctx.task.messages(ctx.problem), {"role": "assistant", "content": previous.text},
            {"role": "user", "content": FIX_PROMPT.format(feedback=feedback)}]


async def revise(ctx: SolveContext, previous: Candidate, feedback: str, *, round: int, explain: bool,
                 max_tokens: int, temperature: float = 0.0) -> Candidate:
    """One revision in the same conversation, optionally preceded by the model's own explanation."""
    messages = revision_messages(ctx, previous, feedback)
    if explain:
        ask = [*messages[:-1], {"role": "user", "content": EXPLAIN_PROMPT.format(feedback=feedback)}]
        [explanation] = await ctx.generate(ask, role="refiner", max_tokens=max_tokens, label="explain")
        messages = [*ask, {"role": "assistant", "content": explanation.text},
                    {"role": "user", "content": FIX_PROMPT.format(feedback="Now fix it.")}]
    [reply] = await ctx.generate(messages, role="refiner", temperature=temperature, max_tokens=max_tokens,
                                 label="revise")
    return Candidate(reply.text, ctx.extract(reply.text), "revise", round)


async def check_visible(ctx: SolveContext, candidate: Candidate, limits: Limits) -> tuple[Outcome | None, str]:
    if candidate.answer is None:
        return None, "Your reply contains no ```python code block with the function."
    tests = visible_tests(ctx.problem)
    outcome = await run_visible(ctx, candidate.answer, limits, tests)
    return outcome, failure_feedback(outcome, tests)


Checker = Callable[[SolveContext, Candidate, int], Awaitable[Version]]


def repeated(candidate: Candidate, versions: list[Version]) -> Version | None:
    """The version already tested with this candidate's code, if any."""
    return next((v for v in versions if v.candidate.answer == candidate.answer), None)


async def refine_loop(ctx: SolveContext, check: Checker, *, rounds: int, explain: bool, max_tokens: int,
                      repeat_temperature: float = 0.0) -> Result:
    """Draft, check, revise until a version passes every check, ``rounds`` revisions are spent, or a
    revision repeats tested code (after one re-draw at ``repeat_temperature``, when it is > 0).

    ``check(ctx, candidate, round)`` returns a Version; the loop records each round per the trace
    convention (``answer`` is the answer the method would return if it stopped there).
    """
    versions: list[Version] = []
    try:
        [draft] = await ctx.generate(ctx.task.messages(ctx.problem), max_tokens=max_tokens, label="draft")
        current = Candidate(draft.text, ctx.extract(draft.text), "draft", 0)
        for round in range(rounds + 1):
            earlier = None
            if round > 0:
                feedback = versions[-1].feedback
                current = await revise(ctx, current, feedback, round=round, explain=explain, max_tokens=max_tokens)
                earlier = repeated(current, versions)
                if earlier is not None and repeat_temperature > 0:
                    ctx.note("repeat", round=round, of_round=earlier.candidate.round, redraw=repeat_temperature)
                    current = await revise(ctx, versions[-1].candidate, feedback, round=round, explain=explain,
                                           max_tokens=max_tokens, temperature=repeat_temperature)
                    earlier = repeated(current, versions)
            if earlier is not None:  # the same code fails the same checks: no need to run them again
                version = Version(current, earlier.rank, earlier.feedback, earlier.done, earlier.score)
            else:
                version = await check(ctx, current, round)
            versions.append(version)
            chosen = best_version(versions)
            stop = version.done or round == rounds or earlier is not None
            decision = ("stop: all checks pass" if version.done else
                        f"stop: repeats round {earlier.candidate.round}" if earlier is not None else
                        "stop: rounds spent" if stop else "revise")
            note_round(ctx, round, [current], [version.score], critiques=[version.feedback], decision=decision,
                       answer=chosen.candidate.answer, rank=list(version.rank), chosen_round=chosen.candidate.round)
            if stop:
                break
    except BudgetExhausted as exc:
        if not versions:
            raise
        ctx.note("budget_exhausted", reason=str(exc), round=len(versions) - 1)
    chosen = best_version(versions)
    note_final(ctx, chosen.candidate.answer, chosen.candidate.round, rank=list(chosen.rank))
    return Result(chosen.candidate.answer, chosen.candidate.text,
                  {"round": chosen.candidate.round, "rounds_run": len(versions) - 1, "rank": list(chosen.rank)})


@dataclass
class SelfDebugOptions:
    rounds: int = 3
    explain: bool = False
    max_tokens: int = 768
    test_seconds: float = 10.0
    repeat_temperature: float = 0.0  # re-draw a revision that repeats tested code at this temperature; 0: off

    def __post_init__(self) -> None:
        require(self.rounds >= 0 and self.test_seconds > 0, "rounds must be >= 0 and test_seconds > 0")
        require(self.repeat_temperature >= 0, "repeat_temperature must be >= 0")


@register_strategy
class SelfDebug(Strategy):
    name = "self_debug"
    Options = SelfDebugOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        limits = Limits(wall_seconds=opts.test_seconds, cpu_seconds=opts.test_seconds)

        async def check(ctx: SolveContext, candidate: Candidate, round: int) -> Version:
            outcome, feedback = await check_visible(ctx, candidate, limits)
            if outcome is None:
                return Version(candidate, (-1,), feedback, False, 0.0)
            tests = visible_tests(ctx.problem)
            # no visible tests: "it loads" is the one check
            passed = outcome.n_passed if tests else int(outcome.passed)
            return Version(candidate, (passed,), feedback, outcome.passed, execution_score(outcome, tests))

        return await refine_loop(ctx, check, rounds=opts.rounds, explain=opts.explain, max_tokens=opts.max_tokens,
                                 repeat_temperature=opts.repeat_temperature)
