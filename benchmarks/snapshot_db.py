"""Make benchmark databases fit to commit: WAL folded in, bulky cache entries dropped, vacuumed.

The benchmark databases are committed so every RESULTS.md table can be regenerated and a later
session resumes the runs where this one stopped. Finished problems (``results``) and runs are kept
whole. From the call cache, entries whose completions carry per-token log-probabilities are
dropped: they are most of the bytes (top-k alternatives for every token), and a cache miss only
means a call is made again when needed; the certainty each sample showed is already in its
problem's trace.

Stop the runs writing a database first: a database in use is refused, not copied half-written.

Usage: python benchmarks/snapshot_db.py benchmarks/spine.db [more.db ...]
"""

from __future__ import annotations

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
        dropped = db.execute("DELETE FROM call_cache WHERE completions LIKE '%\"logprobs\"%'").rowcount
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=DELETE")  # a committed file must be whole on its own
    finally:
        db.close()
    after = path.stat().st_size
    return f"{path}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB ({dropped} cache entries with log-probabilities dropped)"


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    for name in argv:
        path = Path(name)
        if not path.is_file():
            print(f"{path}: no such database", file=sys.stderr)
            return 2
        print(snapshot(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
