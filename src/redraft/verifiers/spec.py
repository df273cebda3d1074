"""Building a verifier from a one-line spec, for the CLI and config files.

Grammar (whitespace around tokens is ignored)::

    spec    := name                          "judge"
             | name ":" args                 "step_judge:split=lines,max_tokens=256"
             | name "(" args ")"             "step_judge(split=lines)"  (the form to use inside args)
    args    := arg ("," arg)*
    arg     := key "=" value
    value   := a number, true/false, a word, or a nested spec in the "name(args)" form

- ``name`` is a registered verifier (built-in, or a user class registered with ``@register_verifier``).
- Ordinary verifiers take their constructor's keyword options; a value is converted to the
  option's annotated type (int, float, bool), anything else stays a string.
- ``weighted`` takes ``member=weight`` pairs, where each member is itself a spec:
  ``weighted:judge=0.7,self_certainty=0.3`` or ``weighted:step_judge(split=lines)=1,judge=1``.
- ``gate`` takes nested specs as values: ``gate:verifier=judge,threshold=0.6,then=rollout(k=4)``.

Every malformed spec fails with one ``SpecError`` line saying what and where.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from ..options import coerce_text
from .base import VERIFIERS, Verifier, load_builtins


class SpecError(ValueError):
    """A verifier spec that does not parse or names an unknown verifier or option."""


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unbalanced ')' in {text!r}")
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SpecError(f"unbalanced '(' in {text!r}")
    parts.append("".join(current))
    return parts


def parse_spec(spec: str) -> tuple[str, list[tuple[str, str]]]:
    """``"name:k=v,k2=v2"`` or ``"name(k=v)"`` -> (name, [(key, value), ...]) in written order."""
    text = spec.strip()
    if not text:
        raise SpecError("empty verifier spec")
    paren, colon = text.find("("), text.find(":")
    if paren != -1 and (colon == -1 or paren < colon):
        if not text.endswith(")"):
            split_top_level(text, ",")  # names an unbalanced '(' when that is the problem
            raise SpecError(f"verifier spec {spec!r}: text after the closing ')'")
        name, body = text[:paren].strip(), text[paren + 1:-1]
    elif colon != -1:
        name, body = text[:colon].strip(), text[colon + 1:]
    else:
        name, body = text, ""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise SpecError(f"verifier spec {spec!r}: {name!r} is not a verifier name")
    args: list[tuple[str, str]] = []
    if body.strip():
        for part in split_top_level(body, ","):
            pieces = split_top_level(part, "=")
            if len(pieces) != 2 or not pieces[0].strip() or not pieces[1].strip():
                raise SpecError(f"verifier spec {spec!r}: expected key=value, got {part.strip()!r}")
            args.append((pieces[0].strip(), pieces[1].strip()))
    return name, args


def coerce(name: str, key: str, value: str, kind: Any) -> Any:
    """Convert a spec value to the option's annotated type (bool, int, float; else the string)."""
    try:
        return coerce_text(value, kind)
    except ValueError as exc:
        raise SpecError(f"verifier {name}: option {key}={value!r} is {exc}") from None


def option_types(cls: type[Verifier]) -> dict[str, Any]:
    """The keyword options a verifier class accepts, with their annotated types."""
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an unresolvable annotation: keep values as strings
        hints = {}
    return {p.name: hints.get(p.name, str) for p in list(signature.parameters.values())[1:]
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def build_from_args(cls: type[Verifier], name: str, args: list[tuple[str, str]]) -> Verifier:
    """The default way a verifier is built from spec args: keyword options of its constructor."""
    types = option_types(cls)
    options: dict[str, Any] = {}
    for key, value in args:
        if key not in types:
            known = ", ".join(sorted(types)) or "none"
            raise SpecError(f"verifier {name} has no option {key!r} (its options: {known})")
        if key in options:
            raise SpecError(f"verifier {name}: option {key!r} given twice")
        options[key] = coerce(name, key, value, types[key])
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"verifier {name}: {exc}") from None


def make_verifier_from_spec(spec: str) -> Verifier:
    """Build a verifier from a spec string (grammar in this module's docstring)."""
    name, args = parse_spec(spec)
    load_builtins()
    if name not in VERIFIERS:
        raise SpecError(f"unknown verifier {name!r}: choose one of {', '.join(sorted(VERIFIERS))}")
    cls = VERIFIERS[name]
    from_spec = getattr(cls, "from_spec_args", None)
    if from_spec is not None:  # combinators parse their own args (nested specs)
        return from_spec(args)
    return build_from_args(cls, name, args)


def spec_uses_oracle(spec: str) -> bool:
    """Whether the verifier a spec builds reads the answer key anywhere inside it."""
    return bool(getattr(make_verifier_from_spec(spec), "uses_oracle", False))
