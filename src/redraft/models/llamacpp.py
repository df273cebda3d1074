"""Embedded llama.cpp, in-process, through ``xllamacpp``.

Why xllamacpp over llama-cpp-python: it installs from prebuilt CPU wheels in seconds (the other
compiles for ~6 minutes here, on every fresh CI machine), and it embeds llama.cpp's own server
loop, so requests issued from several threads are decoded together in parallel slots with
continuous batching: the way to get more tokens/s from n samples on 2 cores.

Every request is streamed from llama.cpp into a callback, even though callers get whole
completions: the callback is the only way to stop a decode midway, so a cancelled caller (a
served client that disconnected, a run that was interrupted) frees its slot at the next token
instead of decoding to ``max_tokens`` for nobody.

n > 1 is served as n concurrent single requests (seeds ``seed``, ``seed+1``, ...): a single
request with ``n=8`` is decoded one choice after another and reports the usage of one choice,
while concurrent slots batch the decode and give exact per-sample token counts. The shared
prompt prefix is reused from llama.cpp's prompt cache.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .base import Completion, GenerationParams, Message, ModelError, TokenLogprob


def default_threads() -> int:
    """llama.cpp's CPU threads: ``REDRAFT_THREADS``, else every core (at most 8)."""
    return int(os.environ.get("REDRAFT_THREADS", "0")) or min(os.cpu_count() or 2, 8)


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
        threads = threads or default_threads()
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
        self.in_flight = 0  # decodes running in llama.cpp right now (a cancelled one leaves at its next token)
        self._in_flight_lock = threading.Lock()  # worker threads count in and out concurrently

    def _request(self, messages: list[Message], params: GenerationParams, cancel: threading.Event) -> Completion:
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = max(params.top_logprobs, 1)
        reply = _StreamedReply(cancel)
        started = time.perf_counter()
        with self._in_flight_lock:
            self.in_flight += 1
        try:
            self._server.handle_chat_completions(body, reply.take)
        except ValueError as exc:
            raise ModelError(f"llama.cpp refused the request: {exc}") from exc
        finally:
            with self._in_flight_lock:
                self.in_flight -= 1
        seconds = time.perf_counter() - started
        if reply.error is not None:
            raise ModelError(f"llama.cpp error: {reply.error}")
        return Completion(
            text="".join(reply.text),
            finish_reason=reply.finish_reason or ("cancelled" if cancel.is_set() else "stop"),
            prompt_tokens=int(reply.usage.get("prompt_tokens", 0)),
            completion_tokens=int(reply.usage.get("completion_tokens", 0)),
            seconds=seconds,
            logprobs=_logprobs(reply.logprobs) if params.logprobs else None,
        )

    async def _one(self, messages: list[Message], params: GenerationParams) -> Completion:
        cancel = threading.Event()
        async with self._slots:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._threads, self._request, messages, params, cancel)
            except asyncio.CancelledError:
                cancel.set()  # the decode thread sees it at its next token and releases the slot
                raise

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


class _StreamedReply:
    """Collects llama.cpp's streamed chunks into one completion; asks it to stop once cancelled."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.text: list[str] = []
        self.logprobs: list[dict[str, Any]] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.error: Any = None

    def take(self, chunk: Any) -> bool:
        """Called by llama.cpp for every chunk; returning True stops the decode."""
        if not isinstance(chunk, dict) or "error" in chunk or chunk.get("type") == "server_error":
            self.error = chunk.get("error", chunk) if isinstance(chunk, dict) else chunk
            return True
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
            self.logprobs.extend((choice.get("logprobs") or {}).get("content") or ())
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        return self.cancel.is_set()


def _logprobs(content: list[dict[str, Any]]) -> list[TokenLogprob]:
    return [
        TokenLogprob(
            token=item.get("token", ""),
            logprob=float(item.get("logprob", 0.0)),
            top=tuple((alt.get("token", ""), float(alt.get("logprob", 0.0))) for alt in item.get("top_logprobs", [])),
        )
        for item in content
    ]
