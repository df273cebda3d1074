"""The one door through which a strategy reaches models: counted, cached, budgeted and traced.

A strategy never calls a backend directly. ``SolveContext.generate`` picks the model for the
role, serves identical deterministic calls (seeded samples one by one) from the cache, enforces
the per-problem budget, adds the call to the problem's cost under its role, and appends it to the
trace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
        completions: list[Completion] = []
        from_cache = 0
        try:
            completions, from_cache = await self._complete(model, messages, params)
        finally:
            used = sum(c.completion_tokens for c in completions)
            self.budget.settle(n * allowed, min(used, n * allowed))
        cached = from_cache == len(completions)
        prompt_tokens = sum(c.prompt_tokens for c in completions)
        completion_tokens = sum(c.completion_tokens for c in completions)
        seconds = max((c.seconds for c in completions), default=0.0)  # samples run concurrently
        self.cost.add(role, n, prompt_tokens, completion_tokens, seconds, cached)
        self.trace.append({
            "type": "call", "role": role, "label": label, "n": n, "temperature": temperature,
            "max_tokens": allowed, "seed": seed, "cached": cached,
            **({"cached_samples": from_cache} if 0 < from_cache < len(completions) else {}), "messages": messages,
            "outputs": [c.text for c in completions], "finish": [c.finish_reason for c in completions],
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "seconds": round(seconds, 4),
        })
        return completions

    async def _complete(self, model: Model, messages: list[Message],
                        params: GenerationParams) -> tuple[list[Completion], int]:
        """The call's completions, from the cache where it has them, and how many came from it.

        Unseeded sampling is never cached. Seeded samples are cached one by one, sample i under the
        key of the single request seeded ``seed + i`` (how the llama.cpp backend issues it), so a
        call for more samples reuses a smaller call's: a grid's self-consistency at n=5 draws only
        two samples beyond the n=3 one matched to another cell."""
        if self.cache is None or (params.temperature > 0 and params.seed is None):
            return await model.generate(messages, params), 0
        whole = self.cache.get(cache_key(model, messages, params))  # n > 1: a call stored whole (older DBs)
        if whole is not None:
            return whole, len(whole)
        if params.n == 1 or params.seed is None:
            completions = await model.generate(messages, params)
            self.cache.put(cache_key(model, messages, params), completions)
            return completions, 0
        keys = [cache_key(model, messages, params.for_single(i)) for i in range(params.n)]
        stored = [self.cache.get(key) for key in keys]
        have = next((i for i, hit in enumerate(stored) if not hit), params.n)  # the cached prefix
        served = [hit[0] for hit in stored[:have] if hit]
        if have == params.n:
            return served, have
        fresh = await model.generate(messages, replace(params, n=params.n - have, seed=params.seed + have))
        for key, completion in zip(keys[have:], fresh, strict=False):
            self.cache.put(key, [completion])
        return served + fresh, have

    def note(self, event: str, **data: Any) -> None:
        """Record a decision (a vote, a score, a stop) in the trace."""
        self.trace.append({"type": event, **data})

    def extract(self, text: str) -> str | None:
        return self.task.extract(text, self.problem)

    @property
    def remaining_tokens(self) -> int | None:
        return self.budget.remaining_tokens


__all__ = ["BudgetExhausted", "CallCache", "Result", "SolveContext", "cache_key", "derived_seed"]
