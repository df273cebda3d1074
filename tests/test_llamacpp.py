"""The embedded llama.cpp backend on the real smollm2-135m: whole completions out of a streamed
decode, and a cancelled caller stopping the decode at once (what a disconnected client relies on)."""

from __future__ import annotations

import asyncio
import time

import pytest

from redraft.models import GenerationParams, load_model

pytestmark = pytest.mark.model

LONG = [{"role": "user", "content": "Write the numbers from 1 to 3000, one per line, and nothing else."}]


def test_streamed_decode_returns_whole_completions_with_logprobs() -> None:
    async def main() -> None:
        model = load_model("smollm2-135m", parallel=2)
        try:
            [first] = await model.generate([{"role": "user", "content": "What is 2 plus 3?"}],
                                           GenerationParams(max_tokens=16, temperature=0.0, logprobs=True,
                                                            top_logprobs=3))
            [again] = await model.generate([{"role": "user", "content": "What is 2 plus 3?"}],
                                           GenerationParams(max_tokens=16, temperature=0.0))
        finally:
            await model.close()
        assert first.text and first.text == again.text  # greedy: the same text with or without logprobs
        assert first.finish_reason in ("stop", "length") and first.prompt_tokens > 5
        # one logprob per generated token; an end-of-sequence token is counted but has no text
        assert first.logprobs is not None and first.completion_tokens <= 16
        assert len(first.logprobs) == first.completion_tokens - (first.finish_reason == "stop")
        assert all(len(t.top) == 3 and t.logprob <= 0.0 for t in first.logprobs)
        assert again.logprobs is None

    asyncio.run(main())


def test_cancelling_a_generation_stops_the_decode_and_frees_the_slot() -> None:
    async def main() -> None:
        model = load_model("smollm2-135m", parallel=1)
        try:
            work = asyncio.create_task(model.generate(LONG, GenerationParams(max_tokens=3000, temperature=0.0)))
            await asyncio.sleep(1.5)
            assert not work.done() and model.in_flight == 1  # 3000 tokens take far longer than 1.5 s here
            work.cancel()
            cancelled_at = time.perf_counter()
            while model.in_flight and time.perf_counter() - cancelled_at < 5:
                await asyncio.sleep(0.01)
            stopped_after = time.perf_counter() - cancelled_at
            assert model.in_flight == 0, "the decode kept running after its caller was cancelled"
            assert work.cancelled()
            # the only slot is free again: a short request gets through at once
            [reply] = await asyncio.wait_for(
                model.generate(LONG, GenerationParams(max_tokens=4, temperature=0.0)), timeout=30)
        finally:
            await model.close()
        assert stopped_after < 2.0 and reply.completion_tokens == 4

    asyncio.run(main())
