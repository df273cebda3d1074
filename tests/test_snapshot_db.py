"""benchmarks/snapshot_db.py: a benchmark database made fit to commit keeps every run and result."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmark_scripts import load_benchmark_script

from redraft.models.base import Completion, TokenLogprob
from redraft.store import Store


def load_script():
    return load_benchmark_script("snapshot_db")


def _store_with_cache(path: Path) -> Store:
    store = Store(path)
    store.create_run(task="arithmetic", task_options={}, strategy="cot", strategy_options={}, model="scripted",
                     model_identity="scripted:v1", settings={}, problem_ids=["p0"], uses_oracle=False)
    plain = Completion("The answer is 4.", "stop", 10, 5, 0.1)
    with_logprobs = Completion("4", "stop", 10, 1, 0.1, logprobs=[TokenLogprob("4", -0.1, (("4", -0.1), ("5", -2.0)))])
    store.put("plain", [plain])
    store.put("bulky", [plain, with_logprobs])
    store.db.commit()
    return store


def test_snapshot_drops_only_cache_entries_with_logprobs_and_leaves_a_whole_file(tmp_path):
    snapshot_db = load_script()
    live = _store_with_cache(tmp_path / "bench.db")
    live.db.close()
    assert snapshot_db.main([str(tmp_path / "bench.db")]) == 0
    db = sqlite3.connect(tmp_path / "bench.db")
    assert [key for (key,) in db.execute("SELECT key FROM call_cache")] == ["plain"]
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no -wal file needed beside it
    assert not (tmp_path / "bench.db-wal").exists()


def test_copy_to_cleans_a_copy_of_a_database_in_use(tmp_path):
    snapshot_db = load_script()
    live = _store_with_cache(tmp_path / "bench.db")  # still open, as a running benchmark holds it
    assert snapshot_db.main(["--copy-to", str(tmp_path / "copy"), str(tmp_path / "bench.db")]) == 0
    copy = sqlite3.connect(tmp_path / "copy" / "bench.db")
    assert [key for (key,) in copy.execute("SELECT key FROM call_cache")] == ["plain"]
    assert live.get("bulky") is not None  # the original keeps its cache


def test_a_missing_database_is_refused_and_not_created(tmp_path, capsys):
    assert load_script().main([str(tmp_path / "missing.db")]) == 2
    assert "no such database" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()
