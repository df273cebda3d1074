"""A tiny OpenAI-compatible upstream on loopback that misbehaves on request, for fault tests.

The requested ``model`` picks the behaviour; every request is counted per model, so a test can
see how often the client retried:

- ``ok``: a proper chat completion;
- ``flaky500``: 500 on the first request, then ok;
- ``always500``: always 500 with an OpenAI-shaped error body;
- ``slow``: never answers within the client's timeout (sleeps ``slow_seconds``);
- ``drop``: closes the connection without a reply;
- ``garbage``: 200 with a body that is not JSON;
- ``wrongshape``: 200 with JSON that is no chat completion;
- ``badrequest``: 400 (not retried by the client).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any


class FakeUpstream:
    def __init__(self, slow_seconds: float = 5.0) -> None:
        self.slow_seconds = slow_seconds
        self.requests: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: several requests per connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = json.loads(await reader.readexactly(length)) if length else {}
                if not await self._answer(body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # a cancelled handler ends quietly: the fake is being shut down
        finally:
            writer.close()

    async def _answer(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        """Write the reply for ``body``; False when the connection should be closed."""
        model = str(body.get("model"))
        self.requests[model] += 1
        if model == "drop":
            return False
        if model == "slow":
            await asyncio.sleep(self.slow_seconds)
            return False
        if model == "garbage":
            self._write(writer, 200, b'{"id": "x", "choices": [ {"mess')
        elif model == "wrongshape":
            self._write(writer, 200, json.dumps({"hello": "world"}).encode())
        elif model == "always500" or (model == "flaky500" and self.requests[model] == 1):
            self._write(writer, 500, json.dumps({"error": {"message": "upstream exploded", "type": "server_error"}})
                        .encode())
        elif model == "badrequest":
            self._write(writer, 400, json.dumps({"error": {"message": "bad knob", "type": "invalid_request_error"}})
                        .encode())
        else:
            words = "The answer is \\boxed{42}"
            reply = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": words},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}
            self._write(writer, 200, json.dumps(reply).encode())
        await writer.drain()
        return True

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, payload: bytes) -> None:
        reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(payload)}\r\n\r\n".encode() + payload)
