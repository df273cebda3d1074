"""Strategies by name: ``make_strategy("self_consistency", {"n": 8})``."""

from __future__ import annotations

import importlib
import pkgutil

from .base import (
    STRATEGIES,
    Strategy,
    StrategyError,
    default_options,
    make_strategy,
    non_default_options,
    options_of,
    register_strategy,
)

__all__ = ["STRATEGIES", "Strategy", "StrategyError", "default_options", "load_builtins", "make_strategy",
           "non_default_options", "options_of", "register_strategy"]

_NOT_STRATEGIES = {"base", "moves"}


def load_builtins() -> None:
    """Import every module of this package, so each built-in strategy registers itself."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_STRATEGIES:
            importlib.import_module(f"{__name__}.{module.name}")
