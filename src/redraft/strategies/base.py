"""A strategy is one method: options (a dataclass) and ``solve(ctx) -> Result``.

Registered by name so the CLI, experiments and the server can build any of them from
``name`` + ``{option: value}``; unknown names and options get one clear message.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, get_type_hints

from ..context import Result, SolveContext
from ..options import coerce_text


class StrategyError(ValueError):
    pass


# For an Options.__post_init__: a refused value stops make_strategy, before any run is created or
# model loaded (make_strategy names the strategy in the message).
def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def require_choice(option: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    require(value in choices, f"{option}={value!r}: choose one of {', '.join(choices)}")


@dataclasses.dataclass
class NoOptions:
    pass


class Strategy(ABC):
    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @abstractmethod
    async def solve(self, ctx: SolveContext) -> Result: ...

    def verifier_names(self) -> list[str]:
        """Verifiers this configuration uses (so a run can say whether the oracle was one)."""
        return [v for k, v in dataclasses.asdict(self.options).items() if k.endswith("verifier") and v]

    def uses_oracle(self) -> bool:
        """Whether any verifier of this configuration reads the answer key (its runs are labelled)."""
        from ..verifiers.base import VERIFIERS, load_builtins

        load_builtins()
        return any("oracle" in spec or getattr(VERIFIERS.get(spec), "uses_oracle", False)
                   for spec in self.verifier_names())


STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    STRATEGIES[cls.name] = cls
    return cls


def _coerce(name: str, value: Any, kind: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return coerce_text(value, kind)
    except ValueError as exc:
        raise StrategyError(f"option {name}={value!r} is {exc}") from None


def make_strategy(name: str, options: dict[str, Any] | None = None) -> Strategy:
    from . import load_builtins

    load_builtins()
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}: choose one of {', '.join(sorted(STRATEGIES))}")
    cls = STRATEGIES[name]
    options = dict(options or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    hints = get_type_hints(cls.Options)
    unknown = set(options) - set(fields)
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise StrategyError(f"strategy {name} has no option {', '.join(sorted(unknown))} (its options: {known})")
    values = {key: _coerce(key, value, hints.get(key)) for key, value in options.items()}
    try:
        built = cls.Options(**values)
    except ValueError as exc:  # an Options.__post_init__ that refuses a value
        raise StrategyError(f"strategy {name}: {exc}") from None
    check_verifier_options(name, built)
    return cls(built)


def check_verifier_options(name: str, options: Any) -> None:
    """Build every verifier an option names (``verifier``, ``outcome_verifier``, ...), so a misspelt
    verifier or a bad spec stops here rather than at the first problem."""
    from ..verifiers import make_verifier

    for key, value in dataclasses.asdict(options).items():
        if key.endswith("verifier") and value:
            try:
                make_verifier(str(value))
            except ValueError as exc:  # SpecError is one
                raise StrategyError(f"strategy {name}: option {key}={value!r}: {exc}") from None


def non_default_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options a run of strategy ``name`` set away from its defaults (all of them for a strategy
    not registered, e.g. one a user registered in another process)."""
    from . import load_builtins

    load_builtins()
    cls = STRATEGIES.get(name)
    defaults = dataclasses.asdict(cls.Options()) if cls is not None else {}
    missing = object()
    return {key: value for key, value in options.items() if defaults.get(key, missing) != value}


def options_of(strategy: Strategy) -> dict[str, Any]:
    return dataclasses.asdict(strategy.options)


def default_options(strategy: Strategy) -> dict[str, Any]:
    """The options this strategy would have with none given."""
    return dataclasses.asdict(type(strategy).Options())
