"""Make benchmark databases fit to commit: WAL folded in, bulky cache entries dropped, vacuumed.

The benchmark databases are committed so every RESULTS.md table can be regenerated and a later
session resumes the runs where this one stopped. Finished problems (``results``) and runs are kept
whole. From the call cache, entries whose completions carry per-token log-probabilities are
dropped: they are most of the bytes (top-k alternatives for every token), and a cache miss only
means a call is made again when needed; the certainty each sample showed is already in its
problem's trace.

Stop the runs writing a database first: a database in use is refused, not copied half-written.
With ``--copy-to DIR`` the database may stay in use: a consistent copy (SQLite's online backup) is
made in DIR and the copy is cleaned, e.g. to commit a running benchmark's progress with
``git update-index --cacheinfo`` while the run goes on.

Usage: python benchmarks/snapshot_db.py [--copy-to DIR] benchmarks/spine.db [more.db ...]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path


def snapshot(path: Path) -> str:
    before = path.stat().st_size + _size(path.with_name(path.name + "-wal"))
    db = sqlite3.connect(path, timeout=1.0, isolation_level=None)
    try:
        try:
            db.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            raise SystemExit(f"{path}: in use ({exc}); stop the run writing it first") from exc
        rows = db.execute("SELECT key, completions FROM call_cache").fetchall()
        bulky = [(key,) for key, text in rows if any(c.get("logprobs") for c in json.loads(text))]
        db.executemany("DELETE FROM call_cache WHERE key = ?", bulky)
        dropped = len(bulky)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=DELETE")  # a committed file must be whole on its own
    finally:
        db.close()
    after = path.stat().st_size
    return (f"{path}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"
            f" ({dropped} cache entries with log-probabilities dropped)")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def copy_live(path: Path, folder: Path) -> Path:
    """A consistent copy of a database that may be in use, through SQLite's online backup."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    target.unlink(missing_ok=True)
    source, copy = sqlite3.connect(path, timeout=30.0), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("databases", nargs="+", type=Path)
    parser.add_argument("--copy-to", type=Path,
                        help="clean a consistent copy in this folder; the original is untouched")
    args = parser.parse_args(argv)
    for path in args.databases:
        if not path.is_file():
            print(f"{path}: no such database", file=sys.stderr)
            return 2
        print(snapshot(copy_live(path, args.copy_to) if args.copy_to else path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
