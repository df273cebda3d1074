"""Verifiers made of verifiers: ``weighted`` (a weighted mean) and ``gate`` (a threshold).

``weighted``: value = sum(w_i * v_i) / sum(w_i). Members run concurrently. The per-step values
and first error come from the heaviest member that has steps (ties: the first written), since
step indices of different verifiers need not line up; the feedback joins every member's, each
labelled with its verifier's name.

``gate``: passes a candidate when the inner verifier's value is at least ``threshold``.
Without ``then``, the value is 1.0 (pass) or 0.0 (fail). With ``then``, a passing candidate
gets ``then``'s score (which is only computed for candidates that pass: a cheap check in front
of an expensive one) and a failing one gets 0.0. A failing candidate keeps the inner
verifier's steps, first error and feedback, so a refiner knows why it failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..context import SolveContext
from .base import Score, Verifier, register_verifier
from .spec import SpecError, make_verifier_from_spec


def _resolve(member: Verifier | str) -> Verifier:
    return make_verifier_from_spec(member) if isinstance(member, str) else member


@register_verifier
class WeightedVerifier(Verifier):
    """Weighted mean of member verifiers: weighted:judge=0.7,self_certainty=0.3 (member spec = weight)."""

    name = "weighted"

    def __init__(self, members: Sequence[tuple[Verifier | str, float]]) -> None:
        if not members:
            raise ValueError("weighted needs at least one member verifier")
        resolved = [(_resolve(verifier), float(weight)) for verifier, weight in members]
        if any(weight < 0 for _, weight in resolved) or sum(w for _, w in resolved) <= 0:
            raise ValueError("weighted: weights must be non-negative and not all zero")
        self.members = resolved
        self.uses_oracle = any(v.uses_oracle for v, _ in resolved)  # type: ignore[misc]

    @classmethod
    def from_spec_args(cls, args: list[tuple[str, str]]) -> WeightedVerifier:
        members: list[tuple[Verifier | str, float]] = []
        for member_spec, weight in args:
            try:
                members.append((member_spec, float(weight)))
            except ValueError:
                raise SpecError(f"weighted: weight of {member_spec!r} must be a number, got {weight!r}") from None
        try:
            return cls(members)
        except ValueError as exc:
            raise SpecError(str(exc)) from None

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        scores = await asyncio.gather(*(v.score(ctx, solution) for v, _ in self.members))
        return weighted_score([(v.name, s, w) for s, (v, w) in zip(scores, self.members, strict=True)])


def weighted_score(members: Sequence[tuple[str, Score, float]]) -> Score:
    """The weighted verifier's score from its members' (name, score, weight), as the module docstring says;
    also used to combine scores stored earlier without scoring again."""
    total = sum(weight for _, _, weight in members)
    value = sum(score.value * weight for _, score, weight in members) / total
    with_steps = [(weight, -i, score) for i, (_, score, weight) in enumerate(members) if score.steps is not None]
    steps, first_error = None, None
    if with_steps:
        _, _, chosen = max(with_steps, key=lambda item: (item[0], item[1]))
        steps, first_error = chosen.steps, chosen.first_error
    feedback = "\n\n".join(f"[{name}] {score.feedback}" for name, score, _ in members if score.feedback)
    return Score(min(max(value, 0.0), 1.0), steps, first_error, feedback or None)


@register_verifier
class GateVerifier(Verifier):
    """Threshold gate: 0 below the threshold, else 1 or the then= verifier's score (gate:verifier=judge,then=...)."""

    name = "gate"

    def __init__(self, verifier: Verifier | str, threshold: float = 0.5, then: Verifier | str | None = None) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"gate: threshold must be in [0, 1], got {threshold}")
        self.inner = _resolve(verifier)
        self.threshold = threshold
        self.then = _resolve(then) if then is not None else None
        self.uses_oracle = self.inner.uses_oracle or bool(self.then and self.then.uses_oracle)  # type: ignore[misc]

    @classmethod
    def from_spec_args(cls, args: list[tuple[str, str]]) -> GateVerifier:
        options = dict(args)
        unknown = set(options) - {"verifier", "threshold", "then"}
        if unknown or len(options) != len(args):
            raise SpecError(f"gate takes verifier=SPEC, threshold=NUMBER, then=SPEC once each (got {args})")
        if "verifier" not in options:
            raise SpecError("gate needs verifier=SPEC")
        try:
            threshold = float(options.get("threshold", 0.5))
        except ValueError:
            raise SpecError(f"gate: threshold must be a number, got {options['threshold']!r}") from None
        try:
            return cls(options["verifier"], threshold, options.get("then"))
        except ValueError as exc:
            raise SpecError(str(exc)) from None

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        inner = await self.inner.score(ctx, solution)
        passed = inner.value >= self.threshold
        ctx.note("gate", verifier=self.inner.name, value=inner.value, threshold=self.threshold, passed=passed)
        if not passed:
            return Score(0.0, inner.steps, inner.first_error, inner.feedback)
        if self.then is None:
            return Score(1.0, inner.steps, inner.first_error, inner.feedback)
        return await self.then.score(ctx, solution)
