"""Option values given as text (command line, spec strings, request names) turned into typed values."""

from __future__ import annotations

import types
import typing
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def coerce_text(value: str, kind: Any) -> Any:
    """``value`` as the annotated ``kind``: bool, int, float, an optional of one (``none`` -> None),
    else the text itself. Raises ValueError naming the expected type."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        kinds = [k for k in typing.get_args(kind) if k is not type(None)]
        if value.lower() == "none" and len(kinds) < len(typing.get_args(kind)):
            return None
        kind = kinds[0] if len(kinds) == 1 else str
    try:
        if kind is bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValueError
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise ValueError(f"not a valid {kind.__name__}") from None
    return value
