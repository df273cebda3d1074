"""program_output: the solution's own program, run in the real sandbox, against the answer it states."""

from __future__ import annotations

import asyncio

import pytest

from redraft.context import SolveContext
from redraft.models.scripted import ScriptedModel
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.tasks.base import TaskView
from redraft.verifiers import make_verifier_from_spec
from redraft.verifiers.program_output import ProgramOutputVerifier, last_python_block


def score(solution: str, **options):
    task = ArithmeticTask(count=1)
    ctx = SolveContext(problem=task.problems()[0], task=TaskView(task), models={"solver": ScriptedModel([])})
    result = asyncio.run(ProgramOutputVerifier(**options).score(ctx, solution))
    return result, ctx


def solution(code: str, claimed_output: str, answer: str) -> str:
    return (f"Let's compute it.\n```python\n{code}\n```\n```output\n{claimed_output}\n```\n"
            f"The answer is \\boxed{{{answer}}}.")


def test_a_made_up_output_is_caught_by_running_the_program():
    result, ctx = score(solution("may = 48 / 2\nprint(48 + may)", "48.0", "48"))
    assert result.value == 0.0
    assert "prints 72.0 when run" in result.feedback and "answer is 48" in result.feedback
    assert any(event.get("type") == "execute" and event["status"] == "passed" for event in ctx.trace)


def test_an_answer_the_program_agrees_with_scores_one():
    result, _ = score(solution("print(3 * 4 - 2)", "10", "10"))
    assert result.value == 1.0


def test_the_last_block_is_the_one_that_runs():
    text = "```python\nprint(1)\n```\nNo, better:\n```python\nprint(6 * 7)\n```\nThe answer is 42."
    assert last_python_block(text).strip() == "print(6 * 7)"
    assert score(text)[0].value == 1.0


@pytest.mark.parametrize(("text", "why"), [
    ("The answer is 5.", "no Python program"),
    (solution("raise ValueError('boom')", "5", "5"), "does not run"),
    (solution("while True:\n    pass", "5", "5"), "does not run"),
    (solution("print('done')", "5", "5"), "prints no number"),
])
def test_no_evidence_is_neither_right_nor_wrong_and_says_why(text, why):
    result, _ = score(text, wall_seconds=1.0)
    assert result.value == 0.5
    assert why in result.feedback


def test_hostile_code_stays_in_the_sandbox(tmp_path):
    target = tmp_path / "pwned"
    result, _ = score(solution(f"open({str(target)!r}, 'w').write('x')\nprint(5)", "5", "5"))
    assert not target.exists()
    assert result.value == 0.5  # the write is refused, so the program fails


def test_by_spec_with_options_and_a_bad_option():
    verifier = make_verifier_from_spec("program_output:no_evidence=0.3,wall_seconds=2")
    assert verifier.no_evidence == 0.3 and verifier.limits.wall_seconds == 2
    with pytest.raises(ValueError, match="no_evidence must be in"):
        ProgramOutputVerifier(no_evidence=2)
