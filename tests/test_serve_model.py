"""One short real-model request through the server: the embedded llama.cpp backend behind the API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from serve_support import scripted_server

from redraft.models import load_model

pytestmark = pytest.mark.model


def test_embedded_model_streams_a_self_consistency_answer(db_path: Path) -> None:
    model = load_model("smollm2-135m", parallel=2)
    try:
        with scripted_server(db_path, models={"smollm2-135m": model}, max_concurrency=2) as (url, app, store):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)
            chunks = list(client.chat.completions.create(
                model="self_consistency@n=2,max_tokens=12:smollm2-135m", stream=True,
                messages=[{"role": "user", "content": "What is 2 plus 3?"}],
                stream_options={"include_usage": True}))
    finally:
        asyncio.run(model.close())
    events = [c.model_extra["redraft"]["event"]["type"] for c in chunks
              if "event" in (c.model_extra.get("redraft") or {})]
    assert events.count("generation_started") == 1 and "call" in events and "vote" in events
    usage = chunks[-1].usage
    assert usage is not None and 2 <= usage.completion_tokens <= 24  # two samples of at most 12 tokens
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # some answer text came back


def test_a_client_that_disconnects_stops_the_embedded_decode(db_path: Path) -> None:
    import json
    import socket
    import time

    model = load_model("smollm2-135m", parallel=1)
    try:
        with scripted_server(db_path, models={"smollm2-135m": model}, max_concurrency=1) as (url, app, store):
            port = int(url.rsplit(":", 1)[1])
            body = json.dumps({"model": "cot@max_tokens=3000:smollm2-135m", "stream": True, "messages": [
                {"role": "user", "content": "Write the numbers from 1 to 3000, one per line."}]}).encode()
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            assert b"200" in sock.recv(65536).split(b"\r\n")[0]
            deadline = time.monotonic() + 30
            while model.in_flight == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)
            assert model.in_flight == 1  # decoding: 3000 tokens take far longer than this
            sock.close()
            gone = time.monotonic()
            while model.in_flight and time.monotonic() - gone < 10:
                time.sleep(0.01)
            stopped_after = time.monotonic() - gone
    finally:
        asyncio.run(model.close())
    assert model.in_flight == 0 and stopped_after < 3.0, "the decode outlived its client"
