"""Bad input gets one clear line and a non-zero exit, before any model is loaded."""

import subprocess
import sys

import pytest
from conftest import GSM8K_DEV


def redraft(*args, env=None):
    return subprocess.run([sys.executable, "-m", "redraft.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--task", "gsm9k"], "unknown task 'gsm9k'"),
        (["run", "--task", "arithmetic", "--strategy", "magic"], "unknown strategy 'magic'"),
        (["run", "--task", "arithmetic", "--model", "gpt-17"], "unknown model 'gpt-17'"),
        (["run", "--task", "gsm8k", "--data", "/no/such.jsonl"], "file not found: /no/such.jsonl"),
        (["run", "--task", "arithmetic", "-o", "bogus=1"], "has no option bogus"),
        (["run", "--task", "arithmetic", "--strategy", "magicore", "-o", "k=0"], "strategy magicore: needs k >= 1"),
        (["run", "--task", "arithmetic", "--strategy", "pdr", "-o", "vote=verifier"], "vote=verifier needs verifier"),
        (["run", "--task", "arithmetic", "--strategy", "best_of_n", "-o", "verifier=jduge"],
         "unknown verifier 'jduge'"),
        (["run", "--task", "arithmetic", "--model", "/tmp/none.gguf"], "model file not found"),
        (["show", "no-such-run"], "no run 'no-such-run'"),
        (["runs", "--delete", "no-such-run"], "no run 'no-such-run'"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    proc = redraft(*args, "--db", str(tmp_path / "x.db"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_malformed_line_is_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GSM8K_DEV.read_text().splitlines()[0] + "\n{broken\n")
    proc = redraft("run", "--task", "gsm8k", "--data", str(bad), "--db", str(tmp_path / "x.db"))
    assert proc.returncode == 2
    assert f"{bad}:2: not valid JSON" in proc.stderr
