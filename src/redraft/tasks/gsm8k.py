"""GSM8K: grade-school word problems; the key is the number after ``####``."""

from __future__ import annotations

import json
from pathlib import Path

from ..answers import extract_number, normalize_number
from ..models.base import Message
from .base import Grade, Problem, Task, TaskError, read_jsonl

MATH_INSTRUCTION = "Solve the problem step by step. Put the final answer, a number only, in \\boxed{}."


class NumericTask(Task):
    """Shared by tasks whose answer is a number: extraction, vote keys and numeric grading."""

    kind = "math"

    def messages(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": f"{problem.question}\n\n{MATH_INSTRUCTION}"}]

    def extract(self, text: str, problem: Problem) -> str | None:
        return extract_number(text)

    def answer_key(self, a: str) -> str:
        return normalize_number(a) or a.strip()

    def same_answer(self, a: str, b: str) -> bool:
        return self.answer_key(a) == self.answer_key(b)

    def grade(self, problem: Problem, answer: str | None, text: str) -> Grade:
        key = self.reference(problem)
        if answer is None:
            return Grade(False, "no answer")
        got = normalize_number(answer)
        if got is None:
            return Grade(False, f"not a number: {answer!r}")
        return Grade(abs(float(got) - float(key)) < 1e-6, f"expected {key}")


class GSM8KTask(NumericTask):
    name = "gsm8k"

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        if path is None:
            path = _hub_copy()
        for number, record in read_jsonl(path, ("question", "answer")):
            raw = str(record["answer"]).split("####")[-1]
            key = normalize_number(raw)
            if "####" not in str(record["answer"]) or key is None:
                raise TaskError(f"{path}:{number}: the answer has no '#### <number>' line")
            self.add(Problem(id=str(record.get("id", number - 1)), question=str(record["question"])), key)


def _hub_copy() -> Path:
    """The GSM8K test split from the hub (when this machine is online), cached as JSONL."""
    from ..models.fetch import cache_dir, hub_reachable

    target = cache_dir().parent / "data" / "gsm8k-test.jsonl"
    if target.is_file():
        return target
    if not hub_reachable():
        raise TaskError("gsm8k: give --data PATH to a GSM8K JSONL file (the hub is unreachable from here)")
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise TaskError("gsm8k: reading the hub copy needs pyarrow (pip install pyarrow)") from None
    from huggingface_hub import hf_hub_download

    source = hf_hub_download("openai/gsm8k", "main/test-00000-of-00001.parquet", repo_type="dataset")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for row in parquet.read_table(source).to_pylist():
            out.write(json.dumps({"question": row["question"], "answer": row["answer"]}) + "\n")
    tmp.replace(target)
    return target
