"""The grammar of the ``model`` field of a served request: which method, with which options, on which backend.

::

    model-field  :=  [ method [ "@" options ] ":" ] backend
    method       :=  a registered strategy name          (cot, self_consistency, best_of_n, magicore, ...)
    options      :=  key "=" value { "," key "=" value }  (the strategy's options; values may not hold "," or ":")
    backend      :=  a backend the server offers, exactly as given to ``redraft serve --model``
                     (qwen2.5-coder-1.5b, smollm2-135m, openai:gpt-4o-mini, ...)

Examples: ``magicore:qwen2.5-coder-1.5b``, ``self_consistency@n=8,temperature=0.8:qwen2.5-coder-1.5b``,
``cot:openai:gpt-4o-mini``, and a bare ``qwen2.5-coder-1.5b`` (the server's default method).

Reading: the text before the first ``:`` is the method (with its options) when its name is a
registered strategy; otherwise the whole field is a backend name. So a backend that itself
contains ``:`` (``openai:gpt-4o-mini``) needs no quoting, and a method name always wins over a
backend prefix of the same spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ModelNameError(ValueError):
    """The model field does not parse or names nothing on offer. ``kind`` says which part is wrong."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # "syntax" | "method" | "model"


@dataclass(frozen=True)
class ServedName:
    method: str
    options: dict[str, str] = field(default_factory=dict)
    backend: str = ""

    def __str__(self) -> str:
        return format_name(self.method, self.options, self.backend)


def format_name(method: str, options: dict[str, Any], backend: str) -> str:
    """The canonical spelling: options sorted, so equal requests name the same configuration."""
    if options:
        spelled = ",".join(f"{key}={options[key]}" for key in sorted(options))
        return f"{method}@{spelled}:{backend}"
    return f"{method}:{backend}"


def parse_options(text: str, method: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ModelNameError(f"option {pair!r} of method {method!r} should look like key=value", "syntax")
        if key in options:
            raise ModelNameError(f"option {key!r} of method {method!r} is given twice", "syntax")
        options[key.replace("-", "_")] = value
    return options


def parse_model_field(text: str, *, methods: set[str] | list[str], backends: set[str] | list[str],
                      default_method: str) -> ServedName:
    """Split a request's ``model`` into method, options and backend, checking each is on offer."""
    if not isinstance(text, str) or not text.strip():
        raise ModelNameError("the request needs a 'model' such as 'cot:<backend>' (see GET /v1/models)", "syntax")
    text = text.strip()
    head, colon, rest = text.partition(":")
    head_name, at, option_text = head.partition("@")
    head_name = head_name.strip()
    if colon and head_name in methods:
        method_name = head_name
        options = parse_options(option_text, method_name) if at else {}
        backend = rest.strip()
        if not backend:
            raise ModelNameError(f"{text!r} names method {method_name!r} but no backend after ':'", "syntax")
    elif at and colon:
        # "x@k=v:backend" can only mean a method, so an unknown x is an unknown method, not a backend
        raise ModelNameError(f"unknown method {head_name!r}: choose one of {', '.join(sorted(methods))}",
                             "method")
    else:
        method_name, options, backend = default_method, {}, text
    if backend not in backends:
        if colon and rest.strip() in backends:  # "magicor:qwen..." : a misspelt method, not a model
            raise ModelNameError(f"unknown method {head_name!r}: choose one of {', '.join(sorted(methods))}",
                                 "method")
        offered = ", ".join(sorted(backends)) or "none"
        raise ModelNameError(f"unknown model {backend!r}: this server offers {offered}", "model")
    return ServedName(method_name, options, backend)
