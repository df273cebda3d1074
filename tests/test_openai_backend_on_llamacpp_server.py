"""The OpenAI-compatible backend against a real OpenAI-compatible server: llama.cpp's own HTTP
server (xllamacpp starts it on loopback) with smollm2-135m. What users of vLLM, SGLang or a
llama.cpp server rely on: n samples, exact usage, logprobs, clean errors, and `redraft run`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redraft.models import GenerationParams, ModelError
from redraft.models.fetch import resolve_model_file
from redraft.models.openai_compat import OpenAICompatibleModel

pytestmark = pytest.mark.model

LONG = [{"role": "user", "content": "Write a long story about a cat who learns to sail."}]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    import xllamacpp

    path, _ = resolve_model_file("smollm2-135m")
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = 2
    params.n_ctx = 2048 * 2
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.warmup = False
    params.verbosity = -1
    server = xllamacpp.Server(params)
    yield server.listening_address + "/v1"
    del server


def test_n_samples_get_exact_usage_although_the_server_reports_one_choice(server_url: str) -> None:
    async def main() -> list:
        model = OpenAICompatibleModel("smollm2", base_url=server_url, timeout=120, max_retries=0)
        try:
            first = await model.generate(LONG, GenerationParams(n=2, max_tokens=16, temperature=1.0, seed=1))
            second = await model.generate(LONG, GenerationParams(n=2, max_tokens=16, temperature=1.0, seed=2))
        finally:
            await model.close()
        return [first, second, model._n_supported]

    first, second, n_supported = asyncio.run(main())
    # a story cut off at 16 tokens: every sample used exactly 16 (the server's n=2 usage said 16 in all)
    for completions in (first, second):
        assert len(completions) == 2 and all(c.text for c in completions)
        assert [c.finish_reason for c in completions] == ["length", "length"]
        assert [c.completion_tokens for c in completions] == [16, 16]
    assert not n_supported  # recognised once, then parallel single requests


def test_logprobs_and_a_refused_request_come_through_cleanly(server_url: str) -> None:
    async def main() -> tuple:
        model = OpenAICompatibleModel("smollm2", base_url=server_url, timeout=120, max_retries=0)
        try:
            [reply] = await model.generate(LONG, GenerationParams(max_tokens=8, temperature=0.0, logprobs=True,
                                                                  top_logprobs=3))
            with pytest.raises(ModelError) as refused:
                await model.generate([{"role": "user", "content": "word " * 5000}], GenerationParams(max_tokens=4))
        finally:
            await model.close()
        return reply, refused.value

    reply, refused = asyncio.run(main())
    assert reply.logprobs is not None and len(reply.logprobs) == 8 == reply.completion_tokens
    assert all(len(t.top) == 3 for t in reply.logprobs)
    assert "400" in str(refused) and "context" in str(refused)  # the server's reason, in one line


def test_redraft_run_through_the_server_lands_accounted_results(server_url: str, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    done = subprocess.run(
        [sys.executable, "-m", "redraft.cli", "run", "--task", "arithmetic", "--limit", "2", "--strategy",
         "self_consistency", "--n", "2", "-o", "max_tokens=48", "--model", "openai:smollm2", "--base-url",
         server_url, "--db", str(db), "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = sqlite3.connect(db).execute("SELECT trace, completion_tokens FROM results").fetchall()
    assert len(rows) == 2
    for trace, completion_tokens in rows:
        calls = [e for e in json.loads(trace) if e["type"] == "call"]
        assert sum(len(c["outputs"]) for c in calls) == 2  # two samples per problem, however they were sent
        assert 2 <= completion_tokens <= 96 and completion_tokens == sum(c["completion_tokens"] for c in calls)
