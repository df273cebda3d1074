"""``redraft serve`` as a user runs it: a subprocess, an upstream backend, a key from the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from fake_upstream import FakeUpstream
from serve_support import free_socket

from redraft.cli import main
from redraft.store import Store

KEY = "sk-cli-very-secret-0042"


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"redraft serve exited early: {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("redraft serve did not come up")


def test_redraft_serve_command_end_to_end(tmp_path: Path) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    db = tmp_path / "served.db"
    env = {**os.environ, "SERVE_TEST_KEY": KEY}
    with FakeUpstream() as upstream:
        process = subprocess.Popen(
            [sys.executable, "-m", "redraft.cli", "serve", "--model", "openai:ok", "--base-url", upstream.base_url,
             "--port", str(port), "--api-key-env", "SERVE_TEST_KEY", "--db", str(db), "--max-budget", "500",
             "--log-level", "debug"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, process)
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
            raw = client.chat.completions.with_raw_response.create(
                model="cot:openai:ok", messages=[{"role": "user", "content": "What is 6*7?"}])
            reply = raw.parse()
            with pytest.raises(openai.BadRequestError, match="maximum of 500"):
                client.chat.completions.create(model="openai:ok", messages=[{"role": "user", "content": "6*7?"}],
                                               extra_body={"redraft": {"budget": 501}})
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=f"{url}/v1", api_key="sk-guess", max_retries=0).models.list()
        finally:
            process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
    assert reply.choices[0].message.content == "The answer is \\boxed{42}" and reply.usage.completion_tokens == 4
    assert process.returncode == 0, err
    assert "POST /v1/chat/completions" in out + err  # the access log is there...
    assert KEY not in out + err and "sk-guess" not in out + err  # ...and echoes no key
    run_id, problem_id = raw.headers["x-redraft-trace"].split()
    [record] = Store(db).results(run_id)
    assert record.problem_id == problem_id and record.answer == "42"


def test_redraft_serve_refuses_a_missing_key_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    code = main(["serve", "--api-key-env", "NO_SUCH_KEY_VAR", "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code == 2 and "NO_SUCH_KEY_VAR" in err and "not set" in err


@pytest.mark.parametrize(("flags", "words"), [
    (["--default-budget", "600", "--max-budget", "500"], "--default-budget 600 is more than --max-budget 500"),
    (["--default-budget", "0"], "--default-budget must be a positive integer, not 0"),
    (["--default-budget", "-5"], "--default-budget must be a positive integer, not -5"),
    (["--max-budget", "0"], "--max-budget must be a positive integer, not 0"),
])
def test_redraft_serve_refuses_bad_budgets_at_startup(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      flags: list[str], words: str) -> None:
    code = main(["serve", *flags, "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened
