"""Reading a chat-completions request and writing the replies: plain JSON and stream chunks.

Request fields read: ``model`` (see naming.py), ``messages``, ``stream``, ``stream_options.include_usage``
and the extension object ``redraft``::

    "redraft": {"budget": 4000,               # completion tokens the method may spend (capped by the server)
                "options": {"n": 8},          # strategy options; these override ones in the model name
                "task": "math" | "qa"}        # answer format (see task.py)

Sampling fields of the OpenAI API (temperature, top_p, max_tokens, seed, stop, ...) are accepted and
ignored: the method sets its own sampling, and the budget bounds what it spends. Fields that would
change the kind of reply (n > 1, tools, logprobs, a non-text response_format) are refused with 400.

The reply's ``content`` is the final solution text; the extracted answer, the run and problem
ids (``redraft show RUN PROBLEM``) and any early stop come in the extension field ``redraft``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..models.base import Message
from .errors import ApiError, bad_request
from .naming import ModelNameError, ServedName, parse_model_field
from .task import TASK_FORMATS

_HISTORY_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_REFUSED_FIELDS = {"tools": "tools", "functions": "function calling", "tool_choice": "tool_choice",
                   "audio": "audio output", "prediction": "predicted outputs"}
_REDRAFT_KEYS = {"budget", "options", "task"}


@dataclass(frozen=True)
class Offer:
    """What the server serves and the limits it sets on a request."""

    methods: frozenset[str]
    backends: frozenset[str]
    default_method: str
    default_task: str
    max_budget: int
    default_budget: int


@dataclass
class ChatRequest:
    name: ServedName
    options: dict[str, Any]  # from the name, overridden by redraft.options
    question: str
    history: list[Message]
    budget: int
    task_format: str
    stream: bool
    include_usage: bool


def parse_chat_request(body: Any, offer: Offer) -> ChatRequest:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    try:
        name = parse_model_field(body.get("model"), methods=offer.methods, backends=offer.backends,
                                 default_method=offer.default_method)
    except ModelNameError as exc:
        if exc.kind == "syntax":
            raise bad_request(str(exc), "invalid_model", "model") from None
        raise ApiError(404, str(exc), code="model_not_found", param="model") from None
    for field_name, what in _REFUSED_FIELDS.items():
        if body.get(field_name):
            raise bad_request(f"{what} is not supported by a refinement server", "unsupported_parameter", field_name)
    if body.get("n") not in (None, 1):
        raise bad_request("n must be 1: the method decides how many drafts to sample", "unsupported_parameter", "n")
    if body.get("logprobs"):
        raise bad_request("logprobs are not returned for a refined answer", "unsupported_parameter", "logprobs")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise bad_request("only text responses are supported", "unsupported_parameter", "response_format")
    history, question = _split_messages(body.get("messages"))
    extension = body.get("redraft") or {}
    if not isinstance(extension, dict):
        raise bad_request("'redraft' must be an object with budget, options and task", param="redraft")
    unknown = set(extension) - _REDRAFT_KEYS
    if unknown:
        raise bad_request(f"unknown redraft field(s) {', '.join(sorted(unknown))} (known: budget, options, task)",
                          param="redraft")
    budget = _budget(extension.get("budget"), offer)
    extra_options = extension.get("options") or {}
    if not isinstance(extra_options, dict):
        raise bad_request("redraft.options must be an object of strategy options", param="redraft.options")
    task_format = extension.get("task") or offer.default_task
    if task_format not in TASK_FORMATS:
        raise bad_request(f"redraft.task must be one of {', '.join(TASK_FORMATS)}, not {task_format!r}",
                          param="redraft.task")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise bad_request("stream must be true or false", param="stream")
    stream_options = body.get("stream_options") or {}
    include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
    return ChatRequest(name, {**name.options, **extra_options}, question, history, budget, task_format, stream,
                       include_usage)


def _budget(value: Any, offer: Offer) -> int:
    if value is None:
        return offer.default_budget
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"redraft.budget must be a positive whole number of tokens, not {value!r}",
                          param="redraft.budget")
    if value > offer.max_budget:
        raise bad_request(f"redraft.budget {value} is over this server's maximum of {offer.max_budget} tokens",
                          "budget_too_large", "redraft.budget")
    return value


def _text_of(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text ones can be reasoned over here
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(f"messages[{index}]: only text content is supported, not {kind!r}",
                                  param=f"messages[{index}].content")
            texts.append(part["text"])
        return "\n".join(texts)
    raise bad_request(f"messages[{index}].content must be a string or a list of text parts",
                      param=f"messages[{index}].content")


def _split_messages(messages: Any) -> tuple[list[Message], str]:
    """The conversation before the last message, and the last message: the question."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of chat messages", param="messages")
    conversation: list[Message] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{index}] must be an object with role and content", param="messages")
        role = message.get("role")
        if role not in _HISTORY_ROLES:
            raise bad_request(f"messages[{index}].role {role!r} is not supported (system, developer, user, assistant)",
                              param=f"messages[{index}].role")
        conversation.append({"role": _HISTORY_ROLES[role], "content": _text_of(message.get("content"), index)})
    if conversation[-1]["role"] != "user":
        raise bad_request("the last message must be the user's question", param="messages")
    question = conversation[-1]["content"]
    if not question.strip():
        raise bad_request("the question (the last user message) is empty", param="messages")
    return conversation[:-1], question


# -- replies ----------------------------------------------------------------------------------------------

def usage_of(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(completion_id: str, model: str, created: int, content: str, finish_reason: str,
                    usage: dict[str, int], extension: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None,
                     "finish_reason": finish_reason}],
        "usage": usage, "system_fingerprint": None, "redraft": extension,
    }


def chunk_body(completion_id: str, model: str, created: int, delta: dict[str, Any] | None,
               finish_reason: str | None = None, extension: dict[str, Any] | None = None,
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk``. ``delta=None`` makes the choice-less usage chunk."""
    chunk: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                             "model": model, "system_fingerprint": None}
    chunk["choices"] = [] if delta is None else [
        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    if usage is not None:
        chunk["usage"] = usage
    if extension is not None:
        chunk["redraft"] = extension
    return chunk


def now() -> int:
    return int(time.time())
