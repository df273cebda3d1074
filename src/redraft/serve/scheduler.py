"""One bound on concurrent generations, shared by every request the server is working on.

A generation of ``n`` samples takes ``n`` units (at most the whole capacity), because a backend
decodes ``n`` sequences for it. Waiters are served first come, first served: a large request at
the head of the queue is not starved by a stream of small ones behind it.

Cancelling a waiting or running call (a client that went away) gives its units back at once,
also when the cancel lands in the same event-loop turn as the grant. Backends stop the work of a
cancelled call: the embedded llama.cpp backend streams its decode and ends it at the next token.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..models.base import Completion, GenerationParams, Message, Model


@dataclass(eq=False)  # a waiter is itself, not its field values
class _Waiter:
    units: int
    granted: asyncio.Future[None]


class Scheduler:
    def __init__(self, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max concurrency must be at least 1, not {max_concurrency}")
        self.capacity = max_concurrency
        self.in_use = 0
        self.peak = 0
        self.generations = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, units: int) -> int:
        """Wait for ``units`` (cut to the capacity); return how many were taken, for ``release``."""
        units = max(1, min(units, self.capacity))
        if not self._waiters and self.in_use + units <= self.capacity:
            self._take(units)
            return units
        waiter = _Waiter(units, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self._wake()  # the head may have been this waiter; let the next ones in
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self.release(units)  # granted in the same turn it was cancelled: give it back
            raise
        return units

    def release(self, units: int) -> None:
        self.in_use -= units
        self._wake()

    def _take(self, units: int) -> None:
        self.in_use += units
        self.generations += 1
        self.peak = max(self.peak, self.in_use)

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters[0]
            if waiter.granted.done():  # cancelled while queued, not yet unwound: it takes nothing
                self._waiters.popleft()
                continue
            if self.in_use + waiter.units > self.capacity:
                return
            self._waiters.popleft()
            self._take(waiter.units)
            waiter.granted.set_result(None)

    def stats(self) -> dict[str, int]:
        return {"capacity": self.capacity, "in_use": self.in_use, "waiting": self.waiting, "peak": self.peak,
                "generations": self.generations}


class ScheduledModel:
    """A backend seen through the scheduler: same name and identity (so the call cache still
    matches), every ``generate`` holding ``n`` units while it runs. ``on_start`` hears of each
    generation when it gets its units, for progress events."""

    def __init__(self, model: Model, scheduler: Scheduler,
                 on_start: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.model = model
        self.scheduler = scheduler
        self.name = model.name
        self.identity = model.identity
        self._on_start = on_start

    async def generate(self, messages: list[Message], params: GenerationParams) -> list[Completion]:
        units = await self.scheduler.acquire(params.n)
        try:
            if self._on_start is not None:
                self._on_start({"type": "generation_started", "n": params.n, "max_tokens": params.max_tokens,
                                "temperature": params.temperature})
            return await self.model.generate(messages, params)
        finally:
            self.scheduler.release(units)

    async def close(self) -> None:
        """The shared backend outlives a request; the server closes it on shutdown."""
