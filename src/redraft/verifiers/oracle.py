"""``oracle``: the answer key as a verifier, for ceiling experiments only.

It scores 1.0 when the task's grader accepts the candidate and 0.0 otherwise: "what if the
verifier were perfect". It reads ``ctx.oracle``, which the runner sets only for runs labelled as
oracle runs (``uses_oracle``), so every run, table and export that used it says so.
"""

from __future__ import annotations

from ..context import SolveContext
from .base import Score, Verifier, register_verifier


class OracleUnavailable(RuntimeError):
    """The oracle verifier was used in a run that was not set up as an oracle run."""


@register_verifier
class OracleVerifier(Verifier):
    name = "oracle"
    uses_oracle = True

    def __init__(self, role: str = "oracle") -> None:
        self.role = role  # no model calls; kept so every verifier can be given a role

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        if ctx.oracle is None:
            raise OracleUnavailable(
                "the oracle verifier needs the answer key, which only oracle runs get (ctx.oracle is None): "
                "start the run with a strategy configured to use the oracle verifier")
        correct = bool(ctx.oracle(solution))
        return Score(1.0 if correct else 0.0, feedback=None if correct else "the answer key rejects this solution")
