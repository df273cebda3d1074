"""Tasks by name: ``load_task("gsm8k", data=PATH)``."""

from __future__ import annotations

from typing import Any

from .base import Grade, Problem, Task, TaskError, TaskView

__all__ = ["TASKS", "Grade", "Problem", "Task", "TaskError", "TaskView", "load_task"]

TASKS = ["arithmetic", "gsm8k", "humaneval", "math", "mbpp"]


def load_task(name: str, data: str | None = None, **options: Any) -> Task:
    if name == "gsm8k":
        from .gsm8k import GSM8KTask

        return GSM8KTask(data)
    if name == "math":
        from .math import MathTask

        if data is None:
            raise TaskError("math: give --data PATH to a MATH / MATH-500 JSONL file")
        return MathTask(data)
    if name == "humaneval":
        from .humaneval import HumanEvalTask

        return HumanEvalTask(data)
    if name == "mbpp":
        from .mbpp import MBPPTask

        return MBPPTask(data or "hub")
    if name == "arithmetic":
        from .arithmetic import ArithmeticTask

        return ArithmeticTask(**{k: int(v) for k, v in options.items() if k in ("count", "steps", "seed")})
    raise TaskError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
