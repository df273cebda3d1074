"""The real embedded model (smollm2-135m through llama.cpp) through `redraft run`, and a kill -9 resume."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.model

SHORT = ["-o", "max_tokens=48"]  # plumbing, not reasoning: keep each answer short


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "redraft.cli", *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


def rows(db, sql, *params):
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def test_run_lands_graded_accounted_problems_in_the_database(db_path):
    proc = run_cli("run", "--task", "arithmetic", "--model", "smollm2-135m", "--limit", "3", "--db", str(db_path),
                   "--strategy", "self_consistency", "--n", "2", *SHORT, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "self_consistency" in proc.stdout
    [(run_id, model_identity, finished)] = rows(db_path, "SELECT id, model_identity, finished FROM runs")
    assert model_identity.startswith("gguf:b179c952") and finished is not None
    results = rows(db_path, "SELECT problem_id, completion_tokens, prompt_tokens, calls, trace, correct "
                            "FROM results WHERE run_id=? ORDER BY position", run_id)
    assert [r[0] for r in results] == ["0", "1", "2"]
    for _, completion_tokens, prompt_tokens, calls, trace, correct in results:
        assert 0 < completion_tokens <= 2 * 48 and prompt_tokens > 0 and calls == 1
        assert '"type": "vote"' in trace
        assert correct in (0, 1)
    show = run_cli("show", run_id, "0", "--db", str(db_path))
    assert show.returncode == 0 and "vote" in show.stdout and "answer:" in show.stdout


def test_killed_run_resumes_with_every_problem_done_exactly_once(db_path):
    args = ["run", "--task", "arithmetic", "--model", "smollm2-135m", "--limit", "8", "--concurrency", "1",
            "--db", str(db_path), *SHORT, "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "redraft.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            done = rows(db_path, "SELECT COUNT(*) FROM results")[0][0]
        except sqlite3.OperationalError:
            done = 0
        if done >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = dict(rows(db_path, "SELECT problem_id, finished FROM results"))
    assert 2 <= len(before) < 8
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} already done" in resumed.stderr.replace("\n", " ")
    after = rows(db_path, "SELECT problem_id, COUNT(*), MIN(finished) FROM results GROUP BY problem_id")
    assert sorted(int(r[0]) for r in after) == list(range(8))
    assert all(count == 1 for _, count, _ in after)
    assert all(before[pid] == finished for pid, _, finished in after if pid in before)  # not redone
    assert len(rows(db_path, "SELECT id FROM runs")) == 1


def test_solve_shows_attempts_answer_and_cost():
    proc = run_cli("solve", "What is 2 plus 3?", "--model", "smollm2-135m", "--strategy", "self_consistency",
                   "--n", "2", *SHORT)
    assert proc.returncode == 0, proc.stderr
    assert "answer:" in proc.stdout and "[1]" in proc.stdout
    assert "completion tokens" in proc.stdout
