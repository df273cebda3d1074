"""A verifier scores a candidate solution: the signal that decides when, where and how to refine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from ..context import SolveContext


@dataclass(frozen=True)
class Score:
    value: float  # in [0, 1]: belief the candidate is correct
    steps: tuple[float, ...] | None = None  # per-step values, when the verifier sees steps
    first_error: int | None = None  # index of the first step judged wrong
    feedback: str | None = None  # a critique a refiner can use

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "steps": list(self.steps) if self.steps is not None else None,
                "first_error": self.first_error, "feedback": self.feedback}


class Verifier(ABC):
    """Subclasses set ``name`` and implement ``score``. Model calls go through ``ctx.generate`` under ``role``."""

    name: ClassVar[str] = ""
    role: str = "judge"
    uses_oracle: ClassVar[bool] = False

    @abstractmethod
    async def score(self, ctx: SolveContext, solution: str) -> Score: ...


VERIFIERS: dict[str, type[Verifier]] = {}


def register_verifier(cls: type[Verifier]) -> type[Verifier]:
    """Class decorator: makes a verifier available by ``cls.name`` (user code may register its own)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    VERIFIERS[cls.name] = cls
    return cls


def load_builtins() -> None:
    """Import every module of this package, so each built-in verifier registers itself."""
    import importlib
    import pkgutil

    from .. import verifiers

    for module in pkgutil.iter_modules(verifiers.__path__):
        if module.name != "base":
            importlib.import_module(f"{verifiers.__name__}.{module.name}")


def make_verifier(name: str, **options: Any) -> Verifier:
    """A verifier by registered name and options, or by a spec string such as "step_judge:split=lines"
    or "weighted:judge=0.7,self_certainty=0.3" (grammar in ``verifiers/spec.py``)."""
    if not options and any(mark in name for mark in ":("):
        from .spec import make_verifier_from_spec

        return make_verifier_from_spec(name)
    load_builtins()
    if name not in VERIFIERS:
        raise ValueError(f"unknown verifier {name!r}: choose one of {', '.join(sorted(VERIFIERS))}")
    try:
        return VERIFIERS[name](**options)
    except TypeError as exc:
        raise ValueError(f"verifier {name}: {exc}") from None
