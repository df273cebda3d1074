"""``execution``: run a code candidate on the problem's visible tests in the sandbox.

The visible tests are ``problem.info["visible_tests"]`` (HumanEval: the docstring's examples as
asserts; MBPP: the first assert), with ``problem.info["test_setup"]`` (imports) run first. The
score is the fraction that pass; the feedback is the first failure with its traceback. No model
calls. Choices the method leaves open:

- a problem without visible tests scores 1.0 when the code loads (it compiles and its top level
  runs) and 0.0 otherwise: execution can only say "it runs", and the feedback says so;
- a reply with no code scores 0.0;
- a candidate that times out, runs out of memory, floods its output or is refused by the
  sandbox scores the fraction of tests it finished before that (the outcome names the reason).
"""

from __future__ import annotations

from ..context import SolveContext
from ..sandbox import Limits, Outcome, run_async
from ..tasks.base import Problem
from .base import Score, Verifier, register_verifier

FEEDBACK_CHARS = 2000


def visible_tests(problem: Problem) -> list[str]:
    return list(problem.info.get("visible_tests") or [])


async def run_visible(ctx: SolveContext, code: str, limits: Limits | None = None,
                      tests: list[str] | None = None) -> Outcome:
    """Run ``code`` on the visible tests (or on ``tests``) and note the outcome in the trace."""
    tests = visible_tests(ctx.problem) if tests is None else tests
    outcome = await run_async(code, tests, setup=ctx.problem.info.get("test_setup", ""), limits=limits)
    ctx.note("execute", status=outcome.status, reason=outcome.reason, passed=outcome.n_passed, total=len(tests),
             seconds=round(outcome.seconds, 3))
    return outcome


def failure_feedback(outcome: Outcome, tests: list[str]) -> str:
    """What went wrong, as a refiner should read it: the failing test, the traceback, the output."""
    if outcome.passed:
        return f"All {len(tests)} visible test(s) passed." if tests else "The code runs without error."
    parts: list[str] = []
    if outcome.load_error:
        parts.append("The code fails before any test runs:\n" + outcome.load_error.strip())
    failure = outcome.first_failure
    if failure is not None:
        parts.append(f"This test fails:\n{failure.source.strip()}\n\n{(failure.error or '').strip()}")
    if not parts:
        parts.append(f"Running the tests: {outcome.reason}.")
    elif outcome.status not in ("failed",):
        parts.append(f"(The run stopped: {outcome.reason}.)")
    if outcome.stdout.strip():
        parts.append("Its printed output began:\n" + outcome.stdout.strip()[:400])
    text = "\n\n".join(parts)
    return text if len(text) <= FEEDBACK_CHARS else text[:FEEDBACK_CHARS] + "\n…"


def execution_score(outcome: Outcome, tests: list[str]) -> float:
    if not tests:
        return 1.0 if outcome.passed else 0.0
    return outcome.n_passed / len(tests)


@register_verifier
class ExecutionVerifier(Verifier):
    name = "execution"
    role = "executor"  # makes no model calls

    def __init__(self, wall_seconds: float = 10.0, memory_mb: int = 1024) -> None:
        self.limits = Limits(wall_seconds=wall_seconds, cpu_seconds=wall_seconds, memory_mb=memory_mb)

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        code = ctx.extract(solution)
        if code is None:
            return Score(0.0, feedback="The reply contains no code.")
        tests = visible_tests(ctx.problem)
        outcome = await run_visible(ctx, code, self.limits, tests)
        return Score(execution_score(outcome, tests), feedback=failure_feedback(outcome, tests))
