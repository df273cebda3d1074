"""Load: 200 concurrent requests (half streamed) against a scripted backend, after a warm-up burst."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import openai
from serve_support import answer_42, scripted_server

from redraft.models.scripted import ScriptedModel
from redraft.store import Store

CONCURRENT = 200
WARM_UP = CONCURRENT  # a first burst of the same size, so the second measures what is retained
MAX_RSS_GROWTH_MB = 20


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _one(client: openai.AsyncOpenAI, index: int) -> tuple[str, str]:
    """(problem id, content) of one request; odd ones stream."""
    question = [{"role": "user", "content": f"Question {index}: what is 6*7?"}]
    if index % 2:
        stream = await client.chat.completions.create(model="self_consistency@n=3:scripted", messages=question,
                                                      stream=True)
        content, problem = "", ""
        async for chunk in stream:
            content += "".join(choice.delta.content or "" for choice in chunk.choices)
            problem = (chunk.model_extra.get("redraft") or {}).get("problem", problem)
        return problem, content
    reply = await client.chat.completions.create(model="self_consistency@n=3:scripted", messages=question)
    return reply.model_extra["redraft"]["problem"], reply.choices[0].message.content


async def _burst(url: str, size: int) -> tuple[list[tuple[str, str]], float]:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(_one(client, i) for i in range(size)))
        return list(results), time.perf_counter() - started


def test_200_concurrent_requests_all_answered_none_lost_memory_bounded(db_path: Path, record_property) -> None:
    backend = ScriptedModel(responder=answer_42, delay=0.01)
    with scripted_server(db_path, models={"scripted": backend}, max_concurrency=8) as (url, app, store):
        warm, _ = asyncio.run(_burst(url, WARM_UP))
        rss_before = rss_mb()
        results, seconds = asyncio.run(_burst(url, CONCURRENT))
        rss_after = rss_mb()
        stats = app.state.scheduler.stats()
        run_id = app.state.runs.run_ids()[0]
    assert all(content == "Six times seven is 42. \\boxed{42}" for _, content in warm + results)
    problem_ids = {problem for problem, _ in results}
    assert len(problem_ids) == CONCURRENT  # every request answered, each as its own problem
    records = Store(db_path).results(run_id)
    assert problem_ids <= {r.problem_id for r in records} and len(records) == WARM_UP + CONCURRENT
    assert all(r.error is None for r in records)
    assert len(backend.calls) == WARM_UP + CONCURRENT
    # the bound held and was used: two 3-sample calls fill 6 of 8 units, a third waits its turn (FIFO)
    assert stats["peak"] == 6 and stats["in_use"] == 0 and stats["waiting"] == 0
    report = (f"{CONCURRENT} concurrent requests answered in {seconds:.2f} s ({CONCURRENT / seconds:.0f} req/s); "
              f"RSS {rss_before:.0f} -> {rss_after:.0f} MB")
    print(report)
    record_property("serve_load", report)
    assert rss_after - rss_before < MAX_RSS_GROWTH_MB, report
