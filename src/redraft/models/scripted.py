"""A model that answers from a script: for testing a strategy's control flow, never for measuring."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from .base import Completion, GenerationParams, Message, TokenLogprob

Responder = Callable[[list[Message], GenerationParams, int], str]


@dataclass
class ScriptedCall:
    messages: list[Message]
    params: GenerationParams


@dataclass
class ScriptedModel:
    """Answers with ``responder(messages, params, sample_index)``, or pops from ``replies`` in order.

    Token counts are words, so tests can reason about budgets exactly. Every call is kept in
    ``calls`` so a test can check what reached the model.
    """

    replies: list[str] = field(default_factory=list)
    responder: Responder | None = None
    name: str = "scripted"
    identity: str = "scripted"
    delay: float = 0.0
    calls: list[ScriptedCall] = field(default_factory=list)

    def _reply(self, messages: list[Message], params: GenerationParams, index: int) -> str:
        if self.responder is not None:
            return self.responder(messages, params, index)
        if not self.replies:
            raise AssertionError("ScriptedModel ran out of replies")
        return self.replies.pop(0)

    async def generate(self, messages: list[Message], params: GenerationParams) -> list[Completion]:
        self.calls.append(ScriptedCall([dict(m) for m in messages], params))
        if self.delay:
            await asyncio.sleep(self.delay)
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        out = []
        for index in range(params.n):
            text = self._reply(messages, params, index)
            words = text.split()
            if len(words) > params.max_tokens:
                text, finish = " ".join(words[: params.max_tokens]), "length"
            else:
                finish = "stop"
            tokens = len(text.split())
            logprobs = [TokenLogprob(w, -0.1, ((w, -0.1),)) for w in text.split()] if params.logprobs else None
            out.append(Completion(text, finish, prompt_tokens, tokens, 0.001, logprobs))
        return out

    async def close(self) -> None:
        pass
