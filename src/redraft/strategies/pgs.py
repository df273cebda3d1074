"""Property-Generated Solver (PGS): a Tester writes property-based tests, a Generator fixes violations.

The Tester (role ``tester``) reads only the specification, never the code, and writes
``hypothesis`` tests of *properties* (invariants such as output type, length or ordering
relations, round trips, agreement with a brute-force definition on small inputs), not
input/output pairs: properties are easier to state correctly than exact outputs, so the tests
are less likely to share the code's mistakes (the paper's "cycle of self-deception"). Each
version of the Generator's code runs, in the sandbox, the visible examples and every property;
a violation comes back with hypothesis's shrunk counterexample ("Failing test case: f(n=9)") as
the Generator's feedback, and it revises (the revision loop is self_debug's). Choices the paper
leaves open, made here:

- The Tester's file is the last fenced block of its reply with a ``given`` decorator (``@given``,
  ``@hypothesis.given``); a reply cut off by the token limit keeps its whole statements before the
  cut, since small models often start repeating one test until the limit.
- The Tester writes its properties once, from the specification, before the first check; when
  its reply has no usable test, or every property turns out invalid on the first candidate that
  loads, it is shown the error and repairs its file, at most ``tester_repairs`` times.
- A property is *invalid*, and dropped, when the property file does not load, or when it fails
  with an error raised in the test's own code rather than an AssertionError or an error inside
  the candidate (NameError in the test, hypothesis' InvalidArgument/Unsatisfiable/health
  checks): that is the Tester's bug, not the Generator's. If no property is valid, PGS degrades
  to self-debugging on the visible examples.
- Hypothesis runs derandomized (repeatable), ``max_examples`` examples per property, no
  deadline, no example database.
- Feedback lists the first failing visible example (ground truth from the spec) and up to
  ``feedback_properties`` violated properties with their counterexamples.
- Stop when the visible examples and all valid properties pass, after ``rounds`` revisions, when
  a revision repeats code already checked (as in self_debug, with its ``repeat_temperature``), or
  when the budget ends. The returned version passes the most visible examples, then the most
  properties; ties go to the earliest.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ..code_blocks import fenced_blocks
from ..context import Result, SolveContext
from ..models.base import Message
from ..sandbox import Limits, Outcome, TestResult
from ..verifiers.execution import failure_feedback, run_visible, visible_tests
from .base import Strategy, register_strategy, require
from .moves import Candidate
from .self_debug import Version, refine_loop

TESTER_PROMPT = """You are a software tester. Here is the specification of a Python function `{entry_point}`:

```python
{spec}
```

Write property-based tests for it with the `hypothesis` library. Test *properties* that every correct
implementation must have (for example: the type of the result, relations between input and output sizes,
ordering, invariants under permuting or extending the input, round trips, agreement with a simple
brute-force definition on small inputs), not specific input/output pairs. Keep generated inputs small
and valid for the specification.

Write 2 to 4 test functions named `test_...`, each decorated with `@given(...)`, that call `{entry_point}`
(it is already defined; do not define or import it). Import what you use from hypothesis. Reply with one
```python code block."""

VIOLATION_HEADER = "This property of the specification is violated"  # code_rounds counts revisions by it
REPAIR_SUFFIX = "Reply with the whole corrected test file in one ```python code block."

HYPOTHESIS_SETUP = """from hypothesis import settings as _redraft_settings
_redraft_settings.register_profile("redraft", max_examples={max_examples}, deadline=None, database=None,
                                   derandomize=True, print_blob=False)
_redraft_settings.load_profile("redraft")
"""

_TESTER_FAULTS = ("InvalidArgument", "Unsatisfiable", "FailedHealthCheck", "HypothesisDeprecationWarning",
                  "NameError", "ImportError", "ModuleNotFoundError", "SyntaxError", "Flaky")


_EXCEPTION_LINE = re.compile(r"[\w.]*(Error|Exception|Exit|Interrupt|Warning|" + "|".join(_TESTER_FAULTS) + r")\b")
_GIVEN = re.compile(r"@\s*(?:[A-Za-z_]\w*\.)*given\s*\(")  # @given(...), @hypothesis.given(...)
_OPEN_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n")


def property_code(text: str) -> str | None:
    """The Tester's test file: the last fenced block with a ``given`` decorator.

    A reply cut off by the token limit (an opening fence that never closes, often after the model
    starts repeating itself) keeps its complete top-level statements: the tests written before the
    cut still count."""
    blocks = fenced_blocks(text)
    if text.count("```") % 2:  # the last fence opened and never closed
        blocks.append(_parsable_prefix(_OPEN_FENCE.sub("", text[text.rindex("```"):], count=1)))
    elif not blocks:  # no fence at all: the reply may be bare code
        blocks.append(_parsable_prefix(text))
    return next((b for b in reversed(blocks) if _GIVEN.search(b)), None)


def _parsable_prefix(code: str) -> str:
    """The longest run of whole top-level statements from the start of ``code`` that parses."""
    lines = code.splitlines()
    starts = [i for i, line in enumerate(lines) if line and not line[0].isspace() and i > 0] + [len(lines)]
    for end in reversed(starts):
        candidate = "\n".join(lines[:end])
        try:
            ast.parse(candidate)
        except SyntaxError:
            continue
        return candidate + "\n"
    return ""


def property_names(code: str, entry_point: str) -> list[str]:
    """Test functions in the Tester's code, each once (a later ``def`` of the same name replaces the
    earlier, as in Python); a ``def`` of the entry point itself is not allowed."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if entry_point in names:
        return []
    return list(dict.fromkeys(n for n in names if n.startswith("test")))


def strip_entry_point(code: str, entry_point: str) -> str:
    """Drop any ``from solution import f`` line a tester adds despite being told (the function is in scope)."""
    return "\n".join(line for line in code.splitlines()
                     if not re.match(rf"\s*from\s+\S+\s+import\s+.*\b{re.escape(entry_point)}\b", line))


def tester_fault(result: TestResult) -> bool:
    """Whether a failing property is the Tester's bug rather than a violation by the candidate."""
    error = result.error or ""
    if result.passed or result.kind in ("AssertionError", "ExceptionGroup", "MultipleFailures"):
        return False
    frames = re.findall(r'File "([^"]+)", line \d+', error)
    if frames and frames[-1] == "solution.py":
        return False  # the candidate raised: a real violation
    last = error.strip().splitlines()[-1] if error.strip() else ""
    return any(fault in last for fault in _TESTER_FAULTS) or result.kind not in (None, "AssertionError")


@dataclass
class PGSOptions:
    rounds: int = 3
    max_tokens: int = 768
    tester_max_tokens: int = 768
    tester_repairs: int = 1
    max_examples: int = 50
    feedback_properties: int = 2
    test_seconds: float = 20.0
    explain: bool = False
    repeat_temperature: float = 0.0  # as self_debug's: re-draw a revision that repeats tested code

    def __post_init__(self) -> None:
        require(min(self.rounds, self.tester_repairs, self.feedback_properties) >= 0,
                "rounds, tester_repairs and feedback_properties must be >= 0")
        require(self.max_examples >= 1 and self.test_seconds > 0, "max_examples must be >= 1 and test_seconds > 0")
        require(self.repeat_temperature >= 0, "repeat_temperature must be >= 0")


@register_strategy
class PropertyGeneratedSolver(Strategy):
    name = "pgs"
    Options = PGSOptions

    async def solve(self, ctx: SolveContext) -> Result:
        opts = self.options
        limits = Limits(wall_seconds=opts.test_seconds, cpu_seconds=opts.test_seconds)
        entry_point = ctx.problem.info.get("entry_point") or ""
        tester = _Tester(self, ctx, entry_point)
        properties = await tester.write()
        valid: list[str] | None = None  # property names, fixed by the first candidate that loads

        async def check(ctx: SolveContext, candidate: Candidate, round: int) -> Version:
            nonlocal valid, properties
            if candidate.answer is None:
                return Version(candidate, (-1, -1), "Your reply contains no ```python code block with the function.",
                               False, 0.0)
            visible = visible_tests(ctx.problem)
            shown = await run_visible(ctx, candidate.answer, limits, visible)
            violations: list[TestResult] = []
            passed_properties = 0
            # a candidate that does not load says nothing about the properties: wait for one that does
            while properties is not None and (valid is None or valid) and shown.load_error is None:
                code, names = properties
                outcome = await self._run_properties(ctx, candidate.answer, code, names, limits)
                results = _by_name(outcome, names)
                if valid is None:  # the Tester's own bugs show on the first run: drop those properties
                    valid = [n for n in names if not (n in results and tester_fault(results[n]))]
                    dropped = {n: _exception_line(results[n].error) for n in names if n not in valid}
                    ctx.note("properties", valid=valid, dropped=list(dropped), reasons=dropped)
                    if not valid and tester.repairs_left > 0:  # show the Tester its error, once per repair
                        error = next((results[n].error for n in names if n in results), outcome.reason)
                        properties, valid = await tester.repair(f"Your tests do not run:\n{error}"), None
                        continue
                violations = [results[n] for n in valid if n in results and not results[n].passed]
                violations += [TestResult(-1, n, False, f"not run: {outcome.reason}") for n in valid
                               if n not in results]
                passed_properties = len(valid) - len(violations)
                break
            n_visible = shown.n_passed if visible else int(shown.passed)
            feedback = _feedback(shown, visible, violations[:opts.feedback_properties], properties)
            done = (shown.passed or (not visible and shown.load_error is None)) and not violations
            checks = max(1, len(visible)) + len(valid or [])
            return Version(candidate, (n_visible, passed_properties), feedback, done,
                           (n_visible + passed_properties) / checks)

        return await refine_loop(ctx, check, rounds=opts.rounds, explain=opts.explain, max_tokens=opts.max_tokens,
                                 repeat_temperature=opts.repeat_temperature)

    async def _run_properties(self, ctx: SolveContext, candidate: str, code: str, names: list[str],
                              limits: Limits) -> Outcome:
        setup = HYPOTHESIS_SETUP.format(max_examples=self.options.max_examples)
        # the property file is test 0 (its own load errors land there), then one test per property
        tests = [code, *(f"{name}()" for name in names)]
        outcome = await run_visible(ctx, candidate, limits, tests=[setup + "\n" + tests[0], *tests[1:]])
        return outcome


class _Tester:
    """The Tester role: writes the properties from the spec, and repairs them when they do not run."""

    def __init__(self, strategy: PropertyGeneratedSolver, ctx: SolveContext, entry_point: str) -> None:
        self.ctx, self.entry_point = ctx, entry_point
        self.max_tokens = strategy.options.tester_max_tokens
        self.repairs_left = strategy.options.tester_repairs
        spec = ctx.problem.question.strip()
        if f"def {entry_point}" not in spec:  # MBPP: a description only; the example shows the signature
            spec = "\n".join([f"# {line}" for line in spec.splitlines()]
                              + [f"# Example: {test}" for test in visible_tests(ctx.problem)])
        self.messages: list[Message] = [{"role": "user", "content": TESTER_PROMPT.format(entry_point=entry_point,
                                                                                         spec=spec)}]

    async def write(self) -> tuple[str, list[str]] | None:
        while True:
            [reply] = await self.ctx.generate(self.messages, role="tester", max_tokens=self.max_tokens,
                                              label="properties")
            self.messages.append({"role": "assistant", "content": reply.text})
            code = property_code(reply.text)
            names = property_names(code, self.entry_point) if code else []
            self.ctx.note("tester", properties=names, usable=bool(names))
            if code and names:
                return strip_entry_point(code, self.entry_point), names
            if self.repairs_left <= 0:
                return None
            self._ask(f"Your reply has no usable tests: write `test_...` functions decorated with @given in one "
                      f"```python block, and do not define `{self.entry_point}` yourself.")

    async def repair(self, problem: str) -> tuple[str, list[str]] | None:
        self._ask(problem[:1500] + "\n\nFix the tests (not the function).")
        return await self.write()

    def _ask(self, text: str) -> None:
        self.repairs_left -= 1
        self.messages.append({"role": "user", "content": text + " " + REPAIR_SUFFIX})


def _by_name(outcome: Outcome, names: list[str]) -> dict[str, TestResult]:
    """Property results by name; when the property file itself fails, every property is the Tester's fault."""
    results = {t.index: t for t in outcome.tests}
    definition = results.get(0)
    if definition is not None and not definition.passed:
        return {n: TestResult(i + 1, n, False, definition.error, "InvalidArgument") for i, n in enumerate(names)}
    return {name: results[i + 1] for i, name in enumerate(names) if i + 1 in results}


def _feedback(shown: Outcome, visible: list[str], violations: list[TestResult],
              properties: tuple[str, list[str]] | None) -> str:
    parts = []
    if not shown.passed or not violations:
        parts.append(failure_feedback(shown, visible))
    for violation in violations:
        name = violation.source.removesuffix("()")
        source = _function_source(properties[0], name) if properties else name
        error = _without_library_frames(violation.error or "").strip()
        parts.append(f"{VIOLATION_HEADER} (the counterexample is shrunk):\n"
                     f"{source}\n\n{error}")
    return "\n\n".join(parts)[:3000]


def _without_library_frames(traceback: str) -> str:
    """Drop hypothesis' own frames: the model should read its code, the property and the counterexample."""
    kept: list[str] = []
    skipping = False
    for line in traceback.splitlines():
        if line.startswith('  File "'):
            skipping = "site-packages" in line
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _exception_line(error: str | None) -> str:
    """The ``SomeError: message`` line of a traceback (why a property was dropped), for the trace.

    Not simply the last line: hypothesis prints its falsifying example after the exception."""
    lines = (error or "").strip().splitlines()
    found = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (found or lines or [""])[-1][:200]


def _function_source(code: str, name: str) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return name
    lines = code.splitlines()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            return "\n".join(lines[start - 1:node.end_lineno])
    return name
