"""MBPP (Mostly Basic Python Problems): a description and asserts; graded in the sandbox.

Accepts both published formats, as a JSON list or JSONL: the original (``text``, ``code``,
``test_list``, ``test_setup_code``) and the sanitized one (``prompt``, ``code``, ``test_list``,
``test_imports``). The first assert is shown to the model as the example (and is the visible
test for the execution verifier and code strategies); the others stay with the grader. A
candidate is correct when it passes *all* asserts, the visible one included, as in the MBPP paper.

``load_task("mbpp", data=PATH)`` reads a file; ``data="hub"`` or ``"hub:sanitized"`` (split
``test``) or ``"hub:full:validation"`` reads google-research-datasets/mbpp from the Hugging Face
hub when it is reachable, and fails fast when it is not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .. import sandbox
from ..models.base import Message
from .base import Grade, Problem, Task, TaskError
from .humaneval import extract_code, failure_detail

HUB_REPO = "google-research-datasets/mbpp"
INSTRUCTION = ("You are an expert Python programmer. Write a Python function for this task. Reply with the "
               "whole function (and any imports it needs) in one ```python code block.")


def _records_from_file(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise TaskError(f"mbpp: file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}: not valid JSON ({exc.msg})") from None
        return [r for r in records if isinstance(r, dict)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return records


def _records_from_hub(spec: str) -> list[dict[str, Any]]:
    """``hub[:config[:split]]``: config ``sanitized`` (default) or ``full``, split ``test`` (default)."""
    from ..models.fetch import hub_reachable

    parts = spec.split(":")
    config = parts[1] if len(parts) > 1 and parts[1] else "sanitized"
    split = parts[2] if len(parts) > 2 and parts[2] else "test"
    if not hub_reachable():
        raise TaskError(f"mbpp: the Hugging Face hub is not reachable; give --data PATH to an MBPP JSON/JSONL file "
                        f"(wanted {HUB_REPO} {config}/{split})")
    try:
        import pyarrow.parquet as parquet
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise TaskError(f"mbpp: reading the hub copy needs {exc.name} (pip install pyarrow)") from None
    try:
        path = hf_hub_download(HUB_REPO, f"{config}/{split}-00000-of-00001.parquet", repo_type="dataset")
    except Exception as exc:  # the hub's many error types: one line for the user
        raise TaskError(f"mbpp: could not fetch {config}/{split} from {HUB_REPO}: {exc}") from None
    return parquet.read_table(path).to_pylist()


def entry_point(code: str, first_test: str) -> str | None:
    """The function the tests call: the first function the reference defines that the first assert names."""
    names = re.findall(r"^def\s+(\w+)\s*\(", code, flags=re.MULTILINE)
    return next((n for n in names if re.search(rf"\b{re.escape(n)}\s*\(", first_test)), names[0] if names else None)


class MBPPTask(Task):
    name = "mbpp"
    kind = "code"

    def __init__(self, data: str, timeout: float = 10.0) -> None:
        super().__init__()
        self.timeout = timeout
        records = _records_from_hub(data) if data.startswith("hub") else _records_from_file(Path(data))
        for number, record in enumerate(records, start=1):
            missing = [k for k in ("code", "test_list") if k not in record]
            description = record.get("prompt") or record.get("text")
            if missing or not description:
                raise TaskError(f"mbpp: record {number} lacks {', '.join(missing) or 'prompt/text'}")
            tests = list(record["test_list"])
            if not tests:
                raise TaskError(f"mbpp: record {number} has an empty test_list")
            setup = "".join(line + "\n" for line in record.get("test_imports") or [])
            setup += (record.get("test_setup_code") or "").strip() + ("\n" if record.get("test_setup_code") else "")
            info = {"entry_point": entry_point(record["code"], tests[0]), "visible_tests": tests[:1],
                    "test_setup": setup, "description": description}
            problem_id = f"mbpp/{record.get('task_id', number)}"
            self.add(Problem(id=problem_id, question=description, info=info), {"tests": tests, "code": record["code"]})

    def messages(self, problem: Problem) -> list[Message]:
        example = problem.info["visible_tests"][0]
        content = f"{INSTRUCTION}\n\nTask: {problem.question}\nYour code should pass this test:\n{example}"
        return [{"role": "user", "content": content}]

    def extract(self, text: str, problem: Problem) -> str | None:
        return extract_code(text, "", problem.info["entry_point"] or "")

    def grade(self, problem: Problem, answer: str | None, text: str) -> Grade:
        if answer is None:
            return Grade(False, "no code in the reply")
        tests = self.reference(problem)["tests"]
        limits = sandbox.Limits(wall_seconds=self.timeout, cpu_seconds=self.timeout)
        outcome = sandbox.run(answer, tests, setup=problem.info["test_setup"], limits=limits)
        if outcome.passed:
            return Grade(True, f"all {len(tests)} tests passed")
        return Grade(False, failure_detail(outcome))
