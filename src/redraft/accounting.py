"""What a problem cost: every model call by role, and the budget that bounds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BudgetExhausted(RuntimeError):
    """Raised by a call the remaining budget cannot pay for; strategies stop and return what they have."""


@dataclass
class Budget:
    """Per-problem limits. ``None`` means unlimited.

    Completion tokens are reserved before a call at ``n * max_tokens`` (with ``max_tokens`` cut
    to what is left) and the unused part is refunded after, so concurrent calls inside one
    problem can never spend more than the budget together.
    """

    completion_tokens: int | None = None
    calls: int | None = None
    reserved_tokens: int = 0
    reserved_calls: int = 0

    def reserve(self, n: int, max_tokens: int) -> int:
        """Reserve a call of ``n`` samples; return the ``max_tokens`` it may use per sample."""
        if self.calls is not None and self.reserved_calls + 1 > self.calls:
            raise BudgetExhausted(f"call budget of {self.calls} spent")
        if self.completion_tokens is not None:
            per_sample = min(max_tokens, (self.completion_tokens - self.reserved_tokens) // n)
            if per_sample < 1:
                raise BudgetExhausted(f"token budget of {self.completion_tokens} spent")
            max_tokens = per_sample
        self.reserved_calls += 1
        self.reserved_tokens += n * max_tokens
        return max_tokens

    def settle(self, reserved: int, used: int) -> None:
        self.reserved_tokens -= reserved - used

    @property
    def remaining_tokens(self) -> int | None:
        if self.completion_tokens is None:
            return None
        return self.completion_tokens - self.reserved_tokens


@dataclass
class RoleCost:
    calls: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached_calls: int = 0


@dataclass
class Cost:
    """Totals for one problem (or, summed, one run), with the split by role."""

    by_role: dict[str, RoleCost] = field(default_factory=dict)

    def add(self, role: str, samples: int, prompt_tokens: int, completion_tokens: int,
            seconds: float, cached: bool) -> None:
        entry = self.by_role.setdefault(role, RoleCost())
        entry.calls += 1
        entry.samples += samples
        entry.prompt_tokens += prompt_tokens
        entry.completion_tokens += completion_tokens
        entry.seconds += seconds
        entry.cached_calls += int(cached)

    def merge(self, other: Cost) -> None:
        for role, cost in other.by_role.items():
            entry = self.by_role.setdefault(role, RoleCost())
            for name in ("calls", "samples", "prompt_tokens", "completion_tokens", "seconds", "cached_calls"):
                setattr(entry, name, getattr(entry, name) + getattr(cost, name))

    def total(self, name: str) -> float:
        return sum(getattr(cost, name) for cost in self.by_role.values())

    @property
    def calls(self) -> int:
        return int(self.total("calls"))

    @property
    def prompt_tokens(self) -> int:
        return int(self.total("prompt_tokens"))

    @property
    def completion_tokens(self) -> int:
        return int(self.total("completion_tokens"))

    @property
    def seconds(self) -> float:
        return self.total("seconds")

    def to_dict(self) -> dict[str, Any]:
        return {role: vars(cost).copy() for role, cost in self.by_role.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cost:
        return cls({role: RoleCost(**values) for role, values in data.items()})
