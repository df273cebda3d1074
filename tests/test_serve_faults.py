"""Backend faults from an upstream OpenAI-compatible server: retried where safe, else a clean 502."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fake_upstream import FakeUpstream
from serve_support import scripted_server

from redraft.models.base import GenerationParams, ModelError
from redraft.models.openai_compat import OpenAICompatibleModel, UpstreamStatusError

HI = [{"role": "user", "content": "What is 6*7?"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(slow_seconds=2) as fake:
        yield fake


def _model(upstream: FakeUpstream, name: str, retries: int = 1) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(name, base_url=upstream.base_url, timeout=0.3, max_retries=retries)


async def _generate(model: OpenAICompatibleModel, n: int = 1) -> list[str]:
    try:
        return [c.text for c in await model.generate(HI, GenerationParams(n=n))]
    finally:
        await model.close()


@pytest.mark.parametrize(("name", "attempts", "reason"), [
    ("always500", 2, "answered 500: upstream exploded (2 attempt(s))"),
    ("slow", 2, "did not answer within 0.3 s (2 attempt(s))"),
    ("drop", 2, "Server disconnected without sending a response"),
    ("garbage", 1, "malformed reply: Unterminated string"),
    ("wrongshape", 1, "returned no choices"),
    ("badrequest", 1, "answered 400: bad knob"),
])
def test_openai_compat_model_turns_each_fault_into_one_clear_model_error(upstream: FakeUpstream, name: str,
                                                                         attempts: int, reason: str) -> None:
    before = upstream.requests[name]
    with pytest.raises(ModelError) as caught:
        asyncio.run(_generate(_model(upstream, name)))
    assert upstream.requests[name] - before == attempts  # transient faults retried, the rest not
    assert reason in str(caught.value)


def test_openai_compat_model_retries_a_transient_500_and_succeeds() -> None:
    with FakeUpstream() as fresh:  # flaky500 fails only the first request a fake sees
        texts = asyncio.run(_generate(_model(fresh, "flaky500")))
        assert fresh.requests["flaky500"] == 2
    assert texts == ["The answer is \\boxed{42}"]


def test_a_server_error_on_n_samples_is_raised_not_mistaken_for_no_n_support(upstream: FakeUpstream) -> None:
    before = upstream.requests["always500"]
    model = _model(upstream, "always500", retries=0)
    with pytest.raises(UpstreamStatusError) as caught:
        asyncio.run(_generate(model, n=3))
    assert upstream.requests["always500"] - before == 1  # not re-sent as three singles
    assert caught.value.status == 500 and model._n_supported


def test_server_answers_502_with_the_reason_and_keeps_serving(db_path: Path) -> None:
    names = ["ok", "flaky500", "always500", "slow", "drop", "garbage", "wrongshape"]
    with FakeUpstream(slow_seconds=2) as upstream:
        models = {f"openai:{name}": _model(upstream, name) for name in names}
        with scripted_server(db_path, models=models) as (url, app, store):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)
            outcomes = {}
            for name in names:
                try:
                    reply = client.chat.completions.create(model=f"cot:openai:{name}", messages=HI)
                    outcomes[name] = (200, reply.choices[0].message.content)
                except openai.APIStatusError as exc:
                    outcomes[name] = (exc.status_code, exc.body["message"], exc.body["code"])
            stream = client.chat.completions.create(model="cot:openai:always500", messages=HI, stream=True)
            with pytest.raises(openai.APIError, match="answered 500"):
                list(stream)
            after = client.chat.completions.create(model="cot:openai:ok", messages=HI)
            health = client.get("/../health", cast_to=object)
        # the models' clients belong to the server's (now closed) loop: nothing left to close here
    assert outcomes["ok"] == (200, "The answer is \\boxed{42}")
    assert outcomes["flaky500"] == (200, "The answer is \\boxed{42}")  # retried upstream, invisible here
    expected = {"always500": "answered 500: upstream exploded", "slow": "did not answer within",
                "drop": "Server disconnected", "garbage": "malformed reply", "wrongshape": "returned no choices"}
    for name, words in expected.items():
        status, message, code = outcomes[name]
        assert status == 502 and code == "backend_error", name
        assert message.startswith("the backend failed: ") and words in message, name
    assert after.choices[0].message.content == "The answer is \\boxed{42}"
    assert health["status"] == "ok" and health["requests"]["active"] == 0
