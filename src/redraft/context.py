"""The one door through which a strategy reaches models: counted, cached, budgeted and traced.

A strategy never calls a backend directly. ``SolveContext.generate`` picks the model for the
role, serves identical deterministic calls from the cache, enforces the per-problem budget,
adds the call to the problem's cost under its role, and appends it to the trace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .accounting import Budget, BudgetExhausted, Cost
from .models.base import Completion, GenerationParams, Message, Model
from .tasks.base import Problem, TaskView


class CallCache(Protocol):
    def get(self, key: str) -> list[Completion] | None: ...

    def put(self, key: str, completions: list[Completion]) -> None: ...


def cache_key(model: Model, messages: list[Message], params: GenerationParams) -> str:
    payload = json.dumps([model.identity, messages, vars(params)], sort_keys=True, default=list)
    return hashlib.sha256(payload.encode()).hexdigest()


def derived_seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class Result:
    """A strategy's output: the final answer (extracted) and the text it came from."""

    answer: str | None
    text: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SolveContext:
    problem: Problem
    task: TaskView
    models: dict[str, Model]  # by role; "solver" must be present, other roles fall back to it
    budget: Budget = field(default_factory=Budget)
    cache: CallCache | None = None
    run_seed: int = 0
    # The answer key, as a grading function of a candidate's text. Set by the runner only for
    # runs configured with the oracle verifier (ceiling experiments); None otherwise.
    oracle: Callable[[str], bool] | None = None
    cost: Cost = field(default_factory=Cost)
    trace: list[dict[str, Any]] = field(default_factory=list)
    _call_index: int = 0

    def model_for(self, role: str) -> Model:
        return self.models.get(role) or self.models["solver"]

    async def generate(
        self,
        messages: list[Message],
        *,
        role: str = "solver",
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 768,
        stop: tuple[str, ...] = (),
        seed: int | None = None,
        logprobs: bool = False,
        top_logprobs: int = 0,
        label: str = "",
    ) -> list[Completion]:
        """Sample ``n`` completions. Raises BudgetExhausted when the budget cannot pay for one token each."""
        model = self.model_for(role)
        call_index = self._call_index
        self._call_index += 1
        if seed is None and temperature > 0:
            # a seed derived from (run, problem, call order) makes sampled calls repeatable, so a
            # resumed run and a grid sharing the database reuse them from the cache
            seed = derived_seed(self.run_seed, self.problem.id, role, call_index)
        allowed = self.budget.reserve(n, max_tokens)
        params = GenerationParams(n, temperature, allowed, tuple(stop), seed, logprobs, top_logprobs)
        key = cache_key(model, messages, params)
        cacheable = temperature == 0 or seed is not None
        completions = self.cache.get(key) if (self.cache is not None and cacheable) else None
        cached = completions is not None
        try:
            if completions is None:
                completions = await model.generate(messages, params)
                if self.cache is not None and cacheable:
                    self.cache.put(key, completions)
        finally:
            used = sum(c.completion_tokens for c in completions) if completions else 0
            self.budget.settle(n * allowed, min(used, n * allowed))
        prompt_tokens = sum(c.prompt_tokens for c in completions)
        completion_tokens = sum(c.completion_tokens for c in completions)
        seconds = max((c.seconds for c in completions), default=0.0)  # samples run concurrently
        self.cost.add(role, n, prompt_tokens, completion_tokens, seconds, cached)
        self.trace.append({
            "type": "call", "role": role, "label": label, "n": n, "temperature": temperature,
            "max_tokens": allowed, "seed": seed, "cached": cached, "messages": messages,
            "outputs": [c.text for c in completions], "finish": [c.finish_reason for c in completions],
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "seconds": round(seconds, 4),
        })
        return completions

    def note(self, event: str, **data: Any) -> None:
        """Record a decision (a vote, a score, a stop) in the trace."""
        self.trace.append({"type": event, **data})

    def extract(self, text: str) -> str | None:
        return self.task.extract(text, self.problem)

    @property
    def remaining_tokens(self) -> int | None:
        return self.budget.remaining_tokens


__all__ = ["BudgetExhausted", "CallCache", "Result", "SolveContext", "cache_key", "derived_seed"]
