"""The one interface every backend speaks: async ``generate`` returning counted completions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


class ModelError(RuntimeError):
    """A backend failed in a way the caller should see as one clear line."""


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # the most likely alternatives at this position


@dataclass
class Completion:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    logprobs: list[TokenLogprob] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.logprobs is not None:
            data["logprobs"] = [[t.token, t.logprob, [list(a) for a in t.top]] for t in self.logprobs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        data = dict(data)
        raw = data.pop("logprobs", None)
        logprobs = None
        if raw is not None:
            logprobs = [TokenLogprob(tok, lp, tuple((a, b) for a, b in top)) for tok, lp, top in raw]
        return cls(logprobs=logprobs, **data)


@dataclass(frozen=True)
class GenerationParams:
    n: int = 1
    temperature: float = 0.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0

    def for_single(self, index: int) -> GenerationParams:
        """The i-th of n samples as its own request, with its own derived seed."""
        seed = None if self.seed is None else self.seed + index
        return GenerationParams(1, self.temperature, self.max_tokens, self.stop, seed,
                                self.logprobs, self.top_logprobs)


@runtime_checkable
class Model(Protocol):
    """A language model backend.

    ``identity`` names the exact weights and backend (e.g. the GGUF sha256), so cached
    completions are never served across different models.
    """

    name: str
    identity: str

    async def generate(self, messages: list[Message], params: GenerationParams) -> list[Completion]: ...

    async def close(self) -> None: ...


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    by_role: dict[str, dict[str, float]] = field(default_factory=dict)
