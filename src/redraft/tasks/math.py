"""MATH / MATH-500 (``problem``, ``solution``, ``answer``), graded by symbolic equivalence (math-verify)."""

from __future__ import annotations

from pathlib import Path

from ..answers import last_boxed
from ..models.base import Message
from .base import Grade, Problem, Task, read_jsonl

INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."


def _parse(answer: str):  # math-verify's parse wants the math delimited
    from math_verify import parse

    return parse(f"${answer}$")


class MathTask(Task):
    name = "math"
    kind = "math"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        for number, record in read_jsonl(path, ("problem",)):
            answer = record.get("answer") or last_boxed(str(record.get("solution", "")))
            if not answer:
                from .base import TaskError

                raise TaskError(f"{path}:{number}: no 'answer' field and no \\boxed{{}} in 'solution'")
            problem_id = str(record.get("unique_id", record.get("id", number - 1)))
            self.add(Problem(id=problem_id, question=str(record["problem"])), str(answer))

    def messages(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": f"{problem.question}\n\n{INSTRUCTION}"}]

    def extract(self, text: str, problem: Problem) -> str | None:
        return last_boxed(text)

    def answer_key(self, a: str) -> str:
        parsed = _parse(a)
        return str(parsed[0]) if parsed else a.strip()

    def same_answer(self, a: str, b: str) -> bool:
        from math_verify import verify

        return a.strip() == b.strip() or bool(verify(_parse(a), _parse(b)))

    def grade(self, problem: Problem, answer: str | None, text: str) -> Grade:
        from math_verify import verify

        key = self.reference(problem)
        if answer is None:
            return Grade(False, "no \\boxed{} answer")
        return Grade(bool(verify(_parse(key), _parse(answer))), f"expected {key}")
