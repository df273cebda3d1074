"""The task a served question belongs to: a prompt format and an answer extractor, and no key.

Two formats, chosen per request (``redraft.task``) or server-wide (``--task``):

- ``math`` (default): what ``redraft solve`` uses. The question gets the instruction to put a
  number in ``\\boxed{}``; the answer is that number (boxed, then ``####``, then the last number),
  and votes compare numbers as values.
- ``qa``: for questions without a numeric answer. The question gets the instruction to put the
  final answer in ``\\boxed{}``; the answer is the boxed text, or, when the model boxed nothing,
  the whole reply (pass-through). Votes compare answers with case and spacing folded, and as
  numbers when both parse as one.

Earlier turns of the conversation (system prompt, previous user and assistant messages) come
before the question unchanged, from ``Problem.info["history"]``.
"""

from __future__ import annotations

import re

from ..answers import extract_number, last_boxed, normalize_number
from ..models.base import Message
from ..tasks.base import Grade, Problem, Task
from ..tasks.gsm8k import MATH_INSTRUCTION

QA_INSTRUCTION = "Think it through, then put the final answer, as short as it can be, in \\boxed{}."

TASK_FORMATS = ("math", "qa")


class ServedTask(Task):
    """A task with no problems loaded and no key: served questions are graded by nobody."""

    kind = "math"

    def __init__(self, answer_format: str = "math") -> None:
        super().__init__()
        if answer_format not in TASK_FORMATS:
            raise ValueError(f"unknown task format {answer_format!r}: choose one of {', '.join(TASK_FORMATS)}")
        self.answer_format = answer_format
        self.name = f"served-{answer_format}"

    def messages(self, problem: Problem) -> list[Message]:
        instruction = MATH_INSTRUCTION if self.answer_format == "math" else QA_INSTRUCTION
        history = [dict(m) for m in problem.info.get("history", [])]
        return [*history, {"role": "user", "content": f"{problem.question}\n\n{instruction}"}]

    def extract(self, text: str, problem: Problem) -> str | None:
        if self.answer_format == "math":
            return extract_number(text)
        boxed = last_boxed(text)
        if boxed:
            return boxed
        return text.strip() or None

    def answer_key(self, a: str) -> str:
        number = normalize_number(a) if self.answer_format == "math" or _looks_numeric(a) else None
        if number is not None:
            return number
        return " ".join(a.split()).casefold().rstrip(".")

    def same_answer(self, a: str, b: str) -> bool:
        return self.answer_key(a) == self.answer_key(b)

    def grade(self, problem: Problem, answer: str | None, text: str) -> Grade:
        return Grade(False, "served question: no answer key")


def _looks_numeric(text: str) -> bool:
    return re.fullmatch(r"\s*[-$]?\d[\d,]*(\.\d+)?\s*%?\s*\.?", text) is not None
