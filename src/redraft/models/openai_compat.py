"""Any OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp server, Ollama, OpenAI).

Name form on the command line: ``openai:MODEL`` with the base URL from ``--base-url`` or
``OPENAI_BASE_URL`` and the key from ``OPENAI_API_KEY`` (or the variable named by
``api_key_env``). The official client retries the transient faults (connection errors,
timeouts, 408/409/429 and 5xx) with exponential backoff, up to ``max_retries`` times; a 4xx or a
malformed reply (not JSON, or JSON that is no chat completion) is not retried: it is not
transient, and a retry would pay for the tokens again. Every failure comes out as one
``ModelError`` line that names the reason. We bound concurrency ourselves so a big grid does not
flood the server.

n > 1 goes out as one request while the server honours it. Some servers refuse it (400/422) or
answer fewer choices; others answer but report the usage of one choice instead of all (llama.cpp's
server does, measured: n=2 choices of 20 tokens each came with ``completion_tokens=20``), which
would halve the cost redraft compares methods by. Such a reply is recognised (llama.cpp's
``timings`` field, or a total below what the choices cut off at ``max_tokens`` must have used), and
from then on n samples are n parallel single requests, whose usage is exact. The call that revealed
it is re-issued that way; its own tokens are logged as a warning, not counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from .base import Completion, GenerationParams, Message, ModelError, TokenLogprob

log = logging.getLogger(__name__)


class _UsageNotSummed(Exception):
    """An n > 1 reply whose usage cannot be the sum over its choices."""


class UpstreamStatusError(ModelError):
    """The server answered with an HTTP error status (kept, so callers need not parse the message)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class OpenAICompatibleModel:
    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 3,
        client: Any | None = None,
    ) -> None:
        import openai

        self.name = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.identity = f"openai:{self.base_url}:{model}"
        self._client = client or openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(api_key_env) or "none",  # local servers often want no key
            timeout=timeout,
            max_retries=max_retries,
        )
        self._openai = openai
        self._timeout = timeout
        self._attempts = max_retries + 1
        self._slots = asyncio.Semaphore(max_concurrency)
        self._n_supported = True  # cleared when the server refuses n > 1 or miscounts its usage

    async def _create(self, messages: list[Message], params: GenerationParams, n: int) -> list[Completion]:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
        }
        if n > 1:
            body["n"] = n
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.logprobs:
            body["logprobs"] = True
            if params.top_logprobs:
                body["top_logprobs"] = params.top_logprobs
        async with self._slots:
            started = time.perf_counter()
            try:
                reply = await self._client.chat.completions.create(**body)
            except self._openai.APIStatusError as exc:
                retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500
                tries = f" ({self._attempts} attempt(s))" if retried else ""
                raise UpstreamStatusError(f"{self.base_url} answered {exc.status_code}: {_message(exc)}{tries}",
                                          exc.status_code) from exc
            except self._openai.APITimeoutError as exc:
                raise ModelError(f"{self.base_url} did not answer within {self._timeout:g} s "
                                 f"({self._attempts} attempt(s))") from exc
            except self._openai.APIConnectionError as exc:
                cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
                raise ModelError(f"cannot reach {self.base_url}: {exc}{cause} ({self._attempts} attempt(s))") from exc
            except (self._openai.APIResponseValidationError, json.JSONDecodeError) as exc:
                raise ModelError(f"{self.base_url} sent a malformed reply: {exc}") from exc
            seconds = time.perf_counter() - started
        try:
            return self._completions(reply, params, seconds)
        except (AttributeError, TypeError, ValueError) as exc:  # JSON, but not a chat completion
            raise ModelError(f"{self.base_url} sent a malformed reply: {type(exc).__name__}: {exc}") from exc

    def _completions(self, reply: Any, params: GenerationParams, seconds: float) -> list[Completion]:
        choices = list(getattr(reply, "choices", None) or [])
        if not choices:
            raise ModelError(f"{self.base_url} returned no choices")
        usage = reply.usage
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        total_completion = int(getattr(usage, "completion_tokens", 0) or 0)
        if len(choices) > 1:
            cut_off = sum(params.max_tokens for c in choices if c.finish_reason == "length")
            llama_cpp = "timings" in (getattr(reply, "model_extra", None) or {})
            if llama_cpp or total_completion < max(cut_off, len(choices)):
                raise _UsageNotSummed(f"{len(choices)} choices reported {total_completion} completion tokens"
                                      + (" (llama.cpp server)" if llama_cpp else f", below the {cut_off} they used"))
        completions = []
        for choice in choices:
            logprobs = None
            if params.logprobs and choice.logprobs is not None and choice.logprobs.content is not None:
                logprobs = [
                    TokenLogprob(item.token, float(item.logprob),
                                 tuple((alt.token, float(alt.logprob)) for alt in (item.top_logprobs or [])))
                    for item in choice.logprobs.content
                ]
            completions.append(Completion(
                text=choice.message.content or "",
                finish_reason=choice.finish_reason or "stop",
                prompt_tokens=prompt_tokens,
                # usage is for the whole request; share it out, exact per choice when logprobs tell
                completion_tokens=len(logprobs) if logprobs is not None else total_completion // len(choices),
                seconds=seconds,
                logprobs=logprobs,
            ))
        return completions

    async def generate(self, messages: list[Message], params: GenerationParams) -> list[Completion]:
        if params.n > 1 and self._n_supported:
            try:
                completions = await self._create(messages, params, params.n)
                if len(completions) == params.n:
                    return completions
            except UpstreamStatusError as exc:
                if exc.status not in (400, 422):
                    raise
            except _UsageNotSummed as exc:
                log.warning("%s: n > 1 usage is not summed over choices (%s); sampling as parallel single "
                            "requests from now on (this call's tokens are not counted)", self.base_url, exc)
            self._n_supported = False  # the server refused, ignored or miscounted n: parallel singles
        results = await asyncio.gather(*(self._create(messages, params.for_single(i), 1) for i in range(params.n)))
        return [completions[0] for completions in results]

    async def close(self) -> None:
        await self._client.close()


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message", error))
        return str(error)
    return str(exc)
