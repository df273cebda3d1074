"""Shared fixtures: an isolated cache and database per test, and the scripted model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GSM8K_DEV = REPO.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
MODEL_CACHE = Path(os.path.expanduser("~/.cache/redraft"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model cache of the test's own, so fetch tests never touch the real one."""
    root = tmp_path / "cache"
    monkeypatch.setenv("REDRAFT_CACHE", str(root))
    return root / "models"
