"""Pulling a final answer out of free text: ``\\boxed{}``, ``####``, or the last number."""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, with nested braces balanced."""
    start = text.rfind("\\boxed")
    while start != -1:
        brace = text.find("{", start)
        if brace == -1:
            break
        depth = 0
        for index in range(brace, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    return text[brace + 1:index].strip()
        start = text.rfind("\\boxed", 0, start)
    return None


def after_hashes(text: str) -> str | None:
    match = re.findall(r"####\s*([^\n]+)", text)
    return match[-1].strip() if match else None


def last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1] if found else None


def normalize_number(raw: str) -> str | None:
    """'$1,200.50' -> '1200.5'; '3/4' -> '0.75'; '\\frac{3}{4}' -> '0.75'; None if not a number."""
    text = raw.strip()
    text = re.sub(r"\\text\{[^}]*\}|\\,|\\!|\\\$|\$|%|,", "", text)
    text = re.sub(r"\\[dt]?frac\{([^}]*)\}\{([^}]*)\}", r"\1/\2", text)
    text = text.strip().rstrip(".")
    # keep the first number-looking token ("18 dollars" -> 18, "x = 5" -> 5)
    match = re.search(r"-?\d+(?:\.\d+)?(?:\s*/\s*-?\d+(?:\.\d+)?)?|-?\.\d+", text)
    if not match:
        return None
    token = match.group(0).replace(" ", "")
    try:
        value = Fraction(token) if "/" not in token else Fraction(*map(Fraction, token.split("/")))
    except (ValueError, ZeroDivisionError):
        return None
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), ".10g")


def extract_number(text: str) -> str | None:
    """The final numeric answer of a solution: boxed first, then '####', then the last number."""
    for candidate in (last_boxed(text), after_hashes(text)):
        if candidate:
            number = normalize_number(candidate)
            if number is not None:
                return number
    raw = last_number(text)
    return normalize_number(raw) if raw else None
