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
