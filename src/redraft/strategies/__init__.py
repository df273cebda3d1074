"""Strategies by name: ``make_strategy("self_consistency", {"n": 8})``."""

from __future__ import annotations

import importlib

from .base import STRATEGIES, Strategy, StrategyError, make_strategy, options_of, register_strategy

__all__ = ["STRATEGIES", "Strategy", "StrategyError", "load_builtins", "make_strategy", "options_of",
           "register_strategy"]

BUILTIN_MODULES = ["cot", "self_consistency", "best_of_n"]


def load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")
