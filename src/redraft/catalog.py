"""``redraft strategies [NAME]`` and ``redraft verifiers [NAME]``: what can be run, with every option
and its default, read from the registries (so a user's registered class is listed too)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
from dataclasses import dataclass
from typing import Any, get_type_hints

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Option:
    name: str
    kind: str
    default: Any
    required: bool = False


@dataclass(frozen=True)
class Entry:
    name: str
    summary: str
    options: tuple[Option, ...]


def summary_of(cls: type) -> str:
    """The first paragraph of the class's own docstring, else of its module's, cut to one line's length."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or sys.modules[cls.__module__].__doc__ or "")
    paragraph = " ".join(doc.split("\n\n")[0].split()).replace("``", "")
    return paragraph if len(paragraph) <= SUMMARY_CHARS else paragraph[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"


SUMMARY_CHARS = 140


def _kind(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def strategy_entries() -> list[Entry]:
    from .strategies import STRATEGIES, load_builtins

    load_builtins()
    entries = []
    for name, cls in sorted(STRATEGIES.items()):
        hints = get_type_hints(cls.Options)
        options = tuple(Option(f.name, _kind(hints.get(f.name, f.type)), f.default)
                        for f in dataclasses.fields(cls.Options))
        entries.append(Entry(name, summary_of(cls), options))
    return entries


def verifier_entries() -> list[Entry]:
    from .verifiers import VERIFIERS
    from .verifiers.base import load_builtins
    from .verifiers.spec import option_types

    load_builtins()
    entries = []
    for name, cls in sorted(VERIFIERS.items()):
        types = option_types(cls)  # the keyword options a spec may set, as the spec parser reads them
        parameters = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name in types]
        # a combinator's options are specs with a grammar of their own (its summary shows it)
        combinator = "from_spec_args" in cls.__dict__
        options = tuple(Option(p.name, "spec" if combinator else _kind(types[p.name]),
                               None if p.default is p.empty else p.default, required=p.default is p.empty)
                        for p in parameters)
        entries.append(Entry(name, summary_of(cls), options))
    return entries


def _show(kind: str, entries: list[Entry], name: str | None, usage: str) -> int:
    out = Console(soft_wrap=False)
    if name is None:
        table = Table(title=f"{kind} ({usage})")
        for column in ("name", "what it does", "options"):
            table.add_column(column)
        for entry in entries:
            table.add_row(entry.name, entry.summary, ", ".join(o.name for o in entry.options) or "-")
        out.print(table)
        return 0
    found = {e.name: e for e in entries}
    if name not in found:
        raise ValueError(f"unknown {kind[:-1]} {name!r}: choose one of {', '.join(found)}")
    entry = found[name]
    out.print(f"{entry.name}: {entry.summary}", highlight=False)
    table = Table()
    for column in ("option", "type", "default"):
        table.add_column(column)
    for option in entry.options:
        table.add_row(option.name, option.kind, "required" if option.required else repr(option.default))
    out.print(table)
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    return _show("strategies", strategy_entries(), args.name, "redraft run --strategy NAME -o OPTION=VALUE")


def cmd_verifiers(args: argparse.Namespace) -> int:
    return _show("verifiers", verifier_entries(), args.name, "a strategy's verifier=NAME or NAME:OPTION=VALUE,...")


def register(sub: argparse._SubParsersAction) -> None:
    strategies = sub.add_parser("strategies", help="list the strategies, or one strategy's options and defaults")
    strategies.add_argument("name", nargs="?")
    strategies.set_defaults(func=cmd_strategies)
    verifiers = sub.add_parser("verifiers", help="list the verifiers, or one verifier's options and defaults")
    verifiers.add_argument("name", nargs="?")
    verifiers.set_defaults(func=cmd_verifiers)
