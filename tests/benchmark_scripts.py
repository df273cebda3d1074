"""For the tests of the benchmark tooling: a script under benchmarks/ as a module, and a small GSM8K file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def load_benchmark_script(name: str) -> ModuleType:
    """benchmarks/NAME.py, imported (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def gsm8k_task(directory: Path, records: list[tuple[str, str]]):
    """A gsm8k task over a train.jsonl written in ``directory`` from (question, answer) records."""
    from redraft.tasks import load_task

    data = directory / "train.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in records))
    return load_task("gsm8k", str(data))
