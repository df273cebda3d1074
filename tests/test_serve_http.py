"""The server over real HTTP on loopback: the official openai client, streaming, errors, auth, storage."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from serve_support import answer_42, scripted_server

from redraft.cli import main
from redraft.models.scripted import ScriptedModel
from redraft.store import Store

KEY = "sk-test-5ecret-key-value"


def test_openai_client_plain_reply_counts_every_token_and_names_the_trace(db_path: Path, capsys) -> None:
    with scripted_server(db_path) as (url, app, store):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="self_consistency@n=3:scripted",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 6*7?"}])
        reply = raw.parse()
        run_id, problem_id = raw.headers["x-redraft-run"], raw.headers["x-redraft-problem"]
    assert reply.choices[0].message.content == "Six times seven is 42. \\boxed{42}"
    assert reply.choices[0].finish_reason == "stop"
    extension = reply.model_extra["redraft"]
    assert extension["answer"] == "42" and extension["method"] == "self_consistency"
    assert extension["options"]["n"] == 3 and extension["run"] == run_id and extension["problem"] == problem_id
    # three samples of 6 words each, all counted
    assert reply.usage.completion_tokens == 18
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 18
    assert raw.headers["x-redraft-trace"] == f"{run_id} {problem_id}"
    # stored like a run: show opens it
    stored = Store(db_path)
    [record] = stored.results(run_id)
    assert record.problem_id == problem_id and record.answer == "42" and record.cost.completion_tokens == 18
    assert stored.get_run(run_id).problem_ids == [problem_id]
    sent = record.trace[0]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."} and sent[1]["content"].startswith("What is 6*7?")
    capsys.readouterr()
    assert main(["show", run_id, problem_id, "--db", str(db_path)]) == 0
    assert "answer: 42" in capsys.readouterr().out


def test_openai_client_streaming_gets_progress_in_extension_and_answer_as_content(db_path: Path) -> None:
    with scripted_server(db_path) as (url, app, store):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(
            model="self_consistency@n=3:scripted", messages=[{"role": "user", "content": "What is 6*7?"}],
            stream=True, stream_options={"include_usage": True}, extra_body={"redraft": {"budget": 500}})
        chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "Six times seven is 42. \\boxed{42}"
    events = [c.model_extra["redraft"]["event"] for c in chunks if "event" in (c.model_extra.get("redraft") or {})]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds.index("call_started") < kinds.index("generation_started")
    assert kinds.index("generation_started") < kinds.index("call") < kinds.index("vote")
    assert next(e for e in events if e["type"] == "call_started") == {"type": "call_started", "role": "solver",
                                                                      "label": "sample", "n": 3}
    call = next(e for e in events if e["type"] == "call")
    assert call["n"] == 3 and len(call["outputs"]) == 3 and "messages" not in call
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals[0].choices[0].finish_reason == "stop" and finals[0].model_extra["redraft"]["answer"] == "42"
    assert finals[0].model_extra["redraft"]["budget"] == 500
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 18


def test_models_and_health_list_what_is_on_offer(db_path: Path) -> None:
    with scripted_server(db_path, methods=["cot", "self_consistency"]) as (url, app, store):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        ids = sorted(m.id for m in client.models.list())
        health = httpx.get(f"{url}/health").json()
    assert ids == ["cot:scripted", "scripted", "self_consistency:scripted"]
    assert health["status"] == "ok" and health["models"] == ["scripted"] and health["scheduler"]["capacity"] == 4


@pytest.fixture(scope="module")
def shared_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the many bad-request cases (budget cap 1000)."""
    with scripted_server(tmp_path_factory.mktemp("serve") / "runs.db", max_budget=1000) as (url, app, store):
        yield url


def _post(url: str, body: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(f"{url}/v1/chat/completions", content=data,
                      headers={"content-type": "application/json", **(headers or {})}, timeout=10)


def _question(model: str, **extra: object) -> str:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "What is 6*7?"}], **extra})


@pytest.mark.parametrize(("body", "status", "code", "words"), [
    ("{not json", 400, "invalid_json", "not valid JSON"),
    ("[1, 2]", 400, "invalid_request", "JSON object"),
    (_question("nosuch:scripted"), 404, "model_not_found", "unknown method 'nosuch'"),
    (_question("cot:nosuch"), 404, "model_not_found", "unknown model 'nosuch'"),
    (_question("cot@n:scripted"), 400, "invalid_model", "key=value"),
    (_question("self_consistency@bogus=1:scripted"), 400, "invalid_method_options", "no option bogus"),
    (_question("cot:scripted", redraft={"budget": 10**6}), 400, "budget_too_large", "maximum of 1000"),
    (_question("cot:scripted", redraft={"budget": -3}), 400, "invalid_request", "positive whole number"),
    (_question("cot:scripted", n=2), 400, "unsupported_parameter", "n must be 1"),
    (json.dumps({"model": "cot:scripted", "messages": []}), 400, "invalid_request", "non-empty list"),
    (json.dumps({"model": "cot:scripted", "messages": [{"role": "assistant", "content": "hi"}]}), 400,
     "invalid_request", "last message must be the user's question"),
])
def test_bad_requests_get_openai_shaped_errors(shared_url: str, body: str, status: int, code: str,
                                               words: str) -> None:
    response = _post(shared_url, body)
    after = _post(shared_url, _question("cot:scripted"))
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"] and error["type"] == "invalid_request_error"
    assert after.status_code == 200  # and the server goes on serving


def test_oversized_body_is_refused_with_413_declared_or_chunked(db_path: Path) -> None:
    big = _question("cot:scripted", padding="x" * 5000)
    with scripted_server(db_path, max_body_bytes=2000) as (url, app, store):
        declared = _post(url, big)

        def pieces():  # no content-length: the server must stop reading at the limit itself
            for start in range(0, len(big), 500):
                yield big[start:start + 500].encode()

        chunked = httpx.post(f"{url}/v1/chat/completions", content=pieces(), timeout=10)
        small = _post(url, _question("cot:scripted"))
    for response in (declared, chunked):
        assert response.status_code == 413
        assert "limit of 2000 bytes" in response.json()["error"]["message"]
    assert small.status_code == 200


def test_bearer_key_is_required_compared_and_never_logged(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with scripted_server(db_path, api_key=KEY) as (url, app, store):
        missing = _post(url, _question("cot:scripted"))
        wrong = _post(url, _question("cot:scripted"), {"authorization": "Bearer sk-wrong"})
        models_without = httpx.get(f"{url}/v1/models")
        health = httpx.get(f"{url}/health")
        good = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        reply = good.chat.completions.create(model="cot:scripted", messages=[{"role": "user", "content": "6*7?"}])
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="incorrect API key"):
            bad.chat.completions.create(model="cot:scripted", messages=[{"role": "user", "content": "6*7?"}])
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]["message"]
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong" not in wrong.text
    assert models_without.status_code == 401 and health.status_code == 200
    assert reply.choices[0].message.content.endswith("\\boxed{42}")
    assert caplog.records, "the server logged nothing: the check below would be empty"
    assert all(KEY not in record.getMessage() and "sk-wrong" not in record.getMessage()
               for record in caplog.records)


def test_unknown_path_and_method_are_openai_shaped(db_path: Path) -> None:
    with scripted_server(db_path) as (url, app, store):
        missing = httpx.get(f"{url}/v1/nothing")
        wrong_verb = httpx.get(f"{url}/v1/chat/completions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong_verb.status_code == 405 and wrong_verb.json()["error"]["code"] == "method_not_allowed"


def test_budget_stops_the_method_and_says_so(db_path: Path) -> None:
    with scripted_server(db_path) as (url, app, store):
        response = _post(url, _question("self_consistency@n=4:scripted", redraft={"budget": 2}))
    body = response.json()
    assert response.status_code == 200
    # 4 samples cannot each get one token from a budget of 2: the method stops before any call
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["redraft"]["stopped"].startswith("budget exhausted") and body["usage"]["completion_tokens"] == 0


def test_client_disconnect_cancels_the_work_and_frees_the_scheduler(db_path: Path) -> None:
    slow = ScriptedModel(responder=answer_42, delay=30.0)
    fast = ScriptedModel(responder=answer_42)
    with scripted_server(db_path, models={"slow": slow, "scripted": fast}) as (url, app, store):
        port = int(url.rsplit(":", 1)[1])
        body = _question("cot:slow", stream=True).encode()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        first = sock.recv(65536)
        assert b"200" in first.split(b"\r\n")[0]
        _wait_for(lambda: app.state.scheduler.in_use == 1)
        sock.close()
        _wait_for(lambda: app.state.scheduler.in_use == 0 and app.state.service.active == 0)
        [record] = Store(db_path).results(app.state.runs.run_ids()[0])
        healthy = _post(url, _question("cot:scripted"))
    assert record.error == "cancelled: the client went away"
    assert len(slow.calls) >= 1 and healthy.status_code == 200


def test_plain_request_disconnect_also_cancels(db_path: Path) -> None:
    slow = ScriptedModel(responder=answer_42, delay=30.0)
    with scripted_server(db_path, models={"slow": slow}) as (url, app, store):

        async def leave_early() -> None:
            async with httpx.AsyncClient() as client:
                with pytest.raises(httpx.TimeoutException):
                    await client.post(f"{url}/v1/chat/completions", content=_question("cot:slow"), timeout=0.5)

        asyncio.run(leave_early())
        _wait_for(lambda: app.state.service.active == 0 and app.state.scheduler.in_use == 0)
        [record] = Store(db_path).results(app.state.runs.run_ids()[0])
    assert record.error == "cancelled: the client went away"


def _wait_for(condition, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_quiet_stretches_of_a_stream_get_keepalive_comments_clients_skip(db_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import redraft.serve.app as serve_app

    monkeypatch.setattr(serve_app, "KEEPALIVE_SECONDS", 0.05)
    slow = ScriptedModel(responder=answer_42, delay=0.4)
    with scripted_server(db_path, models={"slow": slow}) as (url, app, store):
        with httpx.stream("POST", f"{url}/v1/chat/completions", content=_question("cot:slow", stream=True),
                          timeout=10) as response:
            raw = response.read().decode()
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        content = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="cot:slow", messages=[{"role": "user", "content": "6*7?"}], stream=True) if c.choices)
    assert ": keep-alive" in raw and raw.rstrip().endswith("data: [DONE]")
    assert content == "Six times seven is 42. \\boxed{42}"
