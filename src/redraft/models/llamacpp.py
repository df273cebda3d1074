"""Embedded llama.cpp, in-process, through ``xllamacpp``.

Why xllamacpp over llama-cpp-python: it installs from prebuilt CPU wheels in seconds (the other
compiles for ~6 minutes here, on every fresh CI machine), and it embeds llama.cpp's own server
loop, so requests issued from several threads are decoded together in parallel slots with
continuous batching: the way to get more tokens/s from n samples on 2 cores.

n > 1 is served as n concurrent single requests (seeds ``seed``, ``seed+1``, ...): a single
request with ``n=8`` is decoded one choice after another and reports the usage of one choice,
while concurrent slots batch the decode and give exact per-sample token counts. The shared
prompt prefix is reused from llama.cpp's prompt cache.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .base import Completion, GenerationParams, Message, ModelError, TokenLogprob


class LlamaCppModel:
    def __init__(
        self,
        path: Path,
        sha256: str,
        name: str | None = None,
        n_ctx_per_slot: int = 4096,
        parallel: int = 8,
        threads: int | None = None,
    ) -> None:
        import xllamacpp

        self.name = name or path.stem
        self.identity = f"gguf:{sha256}"
        self.path = path
        self.parallel = parallel
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = parallel
        params.n_ctx = n_ctx_per_slot * parallel
        # REDRAFT_THREADS: fewer threads than cores pays when other processes share the CPU, since
        # llama.cpp's threads wait on each other at every step and a descheduled one stalls all
        threads = threads or int(os.environ.get("REDRAFT_THREADS", "0")) or min(os.cpu_count() or 2, 8)
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.warmup = False
        params.verbosity = int(os.environ.get("REDRAFT_LLAMA_VERBOSITY", "-1"))
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # llama.cpp raises plain RuntimeErrors on a bad file
            raise ModelError(f"llama.cpp could not load {path}: {exc}") from exc
        # one thread per slot, of our own: the default executor has only cpu_count + 4 workers,
        # which would cap concurrent samples below the slots and starve other to_thread users
        self._threads = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="llamacpp")
        self._slots = asyncio.Semaphore(parallel)
        self._closed = False

    def _request(self, messages: list[Message], params: GenerationParams) -> Completion:
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = max(params.top_logprobs, 1)
        started = time.perf_counter()
        try:
            reply = self._server.handle_chat_completions(body)
        except ValueError as exc:
            raise ModelError(f"llama.cpp refused the request: {exc}") from exc
        seconds = time.perf_counter() - started
        if "error" in reply:
            raise ModelError(f"llama.cpp error: {reply['error']}")
        choice = reply["choices"][0]
        usage = reply.get("usage", {})
        return Completion(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
            logprobs=_logprobs(choice) if params.logprobs else None,
        )

    async def _one(self, messages: list[Message], params: GenerationParams) -> Completion:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._threads, self._request, messages, params)

    async def generate(self, messages: list[Message], params: GenerationParams) -> list[Completion]:
        if self._closed:
            raise ModelError(f"{self.name} is closed")
        if params.n == 1:
            return [await self._one(messages, params)]
        return list(await asyncio.gather(*(self._one(messages, params.for_single(i)) for i in range(params.n))))

    async def close(self) -> None:
        self._closed = True
        self._threads.shutdown(wait=True)
        server, self._server = self._server, None
        del server  # the destructor stops llama.cpp's loop and frees the weights


def _logprobs(choice: dict[str, Any]) -> list[TokenLogprob] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        return None
    return [
        TokenLogprob(
            token=item.get("token", ""),
            logprob=float(item.get("logprob", 0.0)),
            top=tuple((alt.get("token", ""), float(alt.get("logprob", 0.0))) for alt in item.get("top_logprobs", [])),
        )
        for item in content
    ]
