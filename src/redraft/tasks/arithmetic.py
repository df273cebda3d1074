"""Generated multi-step word problems with exact integer answers: seeded, reproducible, instant.

``steps`` is the difficulty knob: the number of operations a solver must chain.
"""

from __future__ import annotations

import random

from .base import Problem
from .gsm8k import NumericTask

_NAMES = ["Ada", "Bo", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"]
_ITEMS = ["apples", "marbles", "stamps", "coins", "books", "shells", "pencils", "cards"]


def make_problem(rng: random.Random, steps: int) -> tuple[str, int]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    value = rng.randint(2, 30)
    sentences = [f"{name} has {value} {item}."]
    for _ in range(steps):
        op = rng.choice(["add", "sub", "mul", "div"])
        if op == "add":
            amount = rng.randint(2, 40)
            value += amount
            sentences.append(f"Then {name} gets {amount} more {item}.")
        elif op == "sub" and value > 2:
            amount = rng.randint(1, value - 1)
            value -= amount
            sentences.append(f"Then {name} gives away {amount} {item}.")
        elif op == "mul" and value <= 200:
            factor = rng.randint(2, 4)
            value *= factor
            sentences.append(f"Then the number of {item} {name} has is multiplied by {factor}.")
        else:
            divisors = [d for d in (2, 3, 4, 5) if value % d == 0]
            if divisors:
                divisor = rng.choice(divisors)
                value //= divisor
                sentences.append(f"Then {name} keeps only 1/{divisor} of the {item}.")
            else:
                amount = rng.randint(2, 15)
                value += amount
                sentences.append(f"Then {name} finds {amount} {item}.")
    sentences.append(f"How many {item} does {name} have now?")
    return " ".join(sentences), value


class ArithmeticTask(NumericTask):
    name = "arithmetic"

    def __init__(self, count: int = 200, steps: int = 3, seed: int = 0) -> None:
        super().__init__()
        rng = random.Random(f"arithmetic:{seed}:{steps}")
        for index in range(count):
            question, answer = make_problem(rng, steps)
            self.add(Problem(id=str(index), question=question), str(answer))
