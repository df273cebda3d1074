"""``program_output``: a math solution that writes a program is held to what the program prints.

Small models often write a right Python program for a word problem and then make up its printed
output: in the hand check of 30 wrong GSM8K candidates of qwen2.5-coder-1.5b
(benchmarks/results/verifier_audit/audit-step_judge.md), 8 were right programs followed by an
invented ``output`` block. This verifier runs the solution's last Python block in the sandbox and
compares the last number the program prints with the solution's final answer. No model calls.
Choices the idea leaves open:

- 1.0 when they agree; 0.0 when the program prints another number (the feedback names both, so a
  refiner learns what the program really gives); ``no_evidence`` (0.5) when there is no program,
  it prints no number, or it fails: a program that crashes says little about the arithmetic in
  the prose, and the feedback says which case it was;
- only the last fenced ``python`` block runs: earlier ones are usually drafts the text replaces;
- the block runs as ``__main__`` under the sandbox's limits (``wall_seconds``, ``memory_mb``).
"""

from __future__ import annotations

from ..answers import last_number
from ..code_blocks import fenced_blocks
from ..context import SolveContext
from ..sandbox import Limits
from .base import Score, Verifier, register_verifier
from .execution import run_visible

ERROR_CHARS = 600


def last_python_block(text: str) -> str | None:
    blocks = fenced_blocks(text, python_tag_required=True)
    return blocks[-1] if blocks else None


@register_verifier
class ProgramOutputVerifier(Verifier):
    name = "program_output"
    role = "executor"  # makes no model calls

    def __init__(self, wall_seconds: float = 5.0, memory_mb: int = 512, no_evidence: float = 0.5) -> None:
        if not 0.0 <= no_evidence <= 1.0:
            raise ValueError(f"no_evidence must be in [0, 1], got {no_evidence}")
        self.limits = Limits(wall_seconds=wall_seconds, cpu_seconds=wall_seconds, memory_mb=memory_mb)
        self.no_evidence = no_evidence

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        code = last_python_block(solution)
        if code is None:
            return Score(self.no_evidence, feedback="The solution contains no Python program to run.")
        outcome = await run_visible(ctx, code, self.limits, tests=[])  # as __main__, noted in the trace
        if not outcome.passed:
            error = (outcome.load_error or outcome.stderr or outcome.reason).strip()[-ERROR_CHARS:]
            return Score(self.no_evidence, feedback=f"The solution's program does not run ({outcome.reason}):\n{error}")
        printed = last_number(outcome.stdout)
        if printed is None:
            return Score(self.no_evidence, feedback="The solution's program prints no number.")
        answer = ctx.extract(solution)
        if answer is not None and ctx.task.same_answer(printed, answer):
            return Score(1.0, feedback=f"The solution's program prints {printed}, as its answer says.")
        return Score(0.0, feedback=f"The solution's program prints {printed} when run, but the solution's answer "
                                   f"is {answer if answer is not None else 'missing'}; the arithmetic in the text "
                                   "does not match the program.")
