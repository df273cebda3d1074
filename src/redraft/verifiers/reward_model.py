"""``reward_model``: a trained outcome or process reward model, in-process (transformers) or over HTTP.

Heads (``head=``):

- ``sequence`` (ORM): ``AutoModelForSequenceClassification`` over the chat-formatted (question,
  solution); value = sigmoid(logit) for a one-logit head, else softmax[``positive_label``].
- ``token`` (PRM, Qwen2.5-Math-PRM style): the steps are joined with a separator token
  (``step_tag``, default ``<extra_0>``, appended after every step) and the model's per-token
  two-class logits at each separator give P(step correct) = softmax[``positive_label``].
  Loaded with ``AutoModelForTokenClassification``, or ``AutoModel`` with ``trust_remote_code=true``
  (Qwen2.5-Math-PRM ships its own head code and returns the logits first).
- ``lm_tags`` (PRM, Math-Shepherd style): a causal LM; every step ends with ``step_tag`` (e.g.
  ``ки``) and the step's value is softmax over the logits of ``good_token`` and ``bad_token`` at
  the tag, P(good).

For the step heads the outcome value is ``aggregate`` of the step values (``min`` by default), the
first error is the first step below 0.5. Over HTTP (``endpoint=http://host:port``):
``api=classify`` posts to vLLM's ``/classify`` (``{"model", "input"}`` -> ``data[0].probs``) and
``api=pooling`` to ``/pooling`` for a PRM served with ``--task reward`` (``data[0].data``: one row of
class probabilities per step tag, or a flat score).

Plugging in a real model (none can be fetched on this machine; the tests build tiny random ones):
``reward_model:model=Skywork/Skywork-Reward-Llama-3.1-8B,head=sequence`` (an ORM);
``reward_model:model=Qwen/Qwen2.5-Math-PRM-7B,head=token,trust_remote_code=true``;
``reward_model:model=peiyi9979/math-shepherd-mistral-7b-prm,head=lm_tags,step_tag=ки``;
``reward_model:endpoint=http://localhost:8000,api=classify,served_name=MODEL``.
A local directory works wherever a hub id does. Needs ``pip install 'redraft[reward]'``.

Accounting: a reward-model call produces no completion tokens, so it does not draw on the
completion-token budget; it is added to the problem's cost under this verifier's role (one call,
its input tokens as prompt tokens) and noted in the trace.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from ..context import SolveContext
from ..steps import SPLIT_MODES, split_steps
from .base import Score, Verifier, register_verifier
from .step_judge import AGGREGATES, aggregate

HEADS = ("sequence", "token", "lm_tags")
APIS = ("classify", "pooling")
PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


class RewardModelError(RuntimeError):
    """A reward model that cannot be loaded or called, or that answered in an unexpected shape."""


_LOADED: dict[tuple[str, str, bool, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def _transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        raise RewardModelError("reward_model with model= needs torch and transformers: "
                               "pip install 'redraft[reward]'") from None
    return torch, transformers


def load_reward_model(path: str, head: str, trust_remote_code: bool = False, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer), loaded once per process per (path, head, remote code, device)."""
    key = (path, head, trust_remote_code, device)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _, transformers = _transformers()
            loader = {"sequence": transformers.AutoModelForSequenceClassification,
                      "token": transformers.AutoModel if trust_remote_code else
                      transformers.AutoModelForTokenClassification,
                      "lm_tags": transformers.AutoModelForCausalLM}[head]
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
                model = loader.from_pretrained(path, trust_remote_code=trust_remote_code)
            except (OSError, ValueError) as exc:
                raise RewardModelError(f"could not load reward model {path!r}: {exc}") from None
            model.to(device).eval()
            _LOADED[key] = (model, tokenizer)
        return _LOADED[key]


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    weights = [math.exp(x - top) for x in row]
    total = sum(weights)
    return [w / total for w in weights]


def _probability(row: list[float] | float, positive_label: int, logits: bool) -> float:
    """P(positive) from one output row. Logits: one -> sigmoid, several -> softmax. A server's output
    (``logits=False``) is taken as probabilities when it looks like them (in [0, 1], summing to 1 for
    several classes), else as logits."""
    row = [float(row)] if isinstance(row, int | float) else [float(x) for x in row]
    if len(row) == 1:
        x = row[0]
        return x if not logits and 0.0 <= x <= 1.0 else 1 / (1 + math.exp(-x))
    if not logits and all(0.0 <= x <= 1.0 for x in row) and abs(sum(row) - 1) < 1e-3:
        return row[positive_label]
    return _softmax(row)[positive_label]


@register_verifier
class RewardModelVerifier(Verifier):
    name = "reward_model"

    def __init__(self, model: str = "", head: str = "sequence", endpoint: str = "", api: str = "classify",
                 served_name: str = "", step_tag: str = "", good_token: str = "+", bad_token: str = "-",
                 split: str = "auto", aggregate: str = "min", positive_label: int = -1,
                 trust_remote_code: bool = False, device: str = "cpu", max_length: int = 4096,
                 timeout: float = 120.0, role: str = "reward_model") -> None:
        if bool(model) == bool(endpoint):
            raise ValueError("reward_model needs exactly one of model=PATH_OR_HUB_ID or endpoint=URL")
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}: choose one of {', '.join(HEADS)}")
        if api not in APIS:
            raise ValueError(f"unknown api {api!r}: choose one of {', '.join(APIS)}")
        if split not in SPLIT_MODES:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLIT_MODES)}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {aggregate!r}: choose one of {', '.join(AGGREGATES)}")
        self.model, self.head, self.endpoint, self.api = model, head, endpoint.rstrip("/"), api
        self.served_name = served_name or model
        self.step_tag = step_tag or {"token": "<extra_0>", "lm_tags": "ки"}.get(head, "")
        self.good_token, self.bad_token = good_token, bad_token
        self.split, self.aggregate, self.positive_label = split, aggregate, positive_label
        self.trust_remote_code, self.device, self.max_length = trust_remote_code, device, max_length
        self.timeout = timeout
        self.role = role

    # -- input formatting ------------------------------------------------------------------------
    def format_input(self, question: str, steps: list[str], tokenizer: Any | None) -> str:
        """The text the reward model reads, in the format of the head's usual training."""
        if self.head == "sequence":
            solution = "\n".join(steps)
            if tokenizer is not None and getattr(tokenizer, "chat_template", None):
                return tokenizer.apply_chat_template(
                    [{"role": "user", "content": question}, {"role": "assistant", "content": solution}],
                    tokenize=False)
            return f"{question}\n\n{solution}"
        if self.head == "token":
            tagged = "".join(step + self.step_tag for step in steps)
            if tokenizer is not None and getattr(tokenizer, "chat_template", None):
                return tokenizer.apply_chat_template(
                    [{"role": "system", "content": PRM_SYSTEM}, {"role": "user", "content": question},
                     {"role": "assistant", "content": tagged}], tokenize=False)
            return f"{question}\n\n{tagged}"
        return question + "\n" + "\n".join(f"{step} {self.step_tag}" for step in steps)

    # -- in-process scoring --------------------------------------------------------------------------
    def _single_token(self, tokenizer: Any, text: str) -> int:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise RewardModelError(f"reward_model: {text!r} is {len(ids)} tokens for this tokenizer, it must be one")
        return ids[0]

    def score_locally(self, question: str, steps: list[str]) -> tuple[list[float], int]:
        """(values: one per step for a PRM head, one in all for an ORM, input tokens)."""
        torch, _ = _transformers()
        model, tokenizer = load_reward_model(self.model, self.head, self.trust_remote_code, self.device)
        text = self.format_input(question, steps, tokenizer)
        encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_length,
                            add_special_tokens=self.head != "sequence" or not getattr(tokenizer, "chat_template", None))
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        tokens = int(encoded["input_ids"].shape[1])
        with torch.no_grad():
            output = model(**encoded)
        logits = output[0] if isinstance(output, tuple) else output.logits
        if self.head == "sequence":
            return [_probability(logits[0].float().tolist(), self.positive_label, True)], tokens
        ids = encoded["input_ids"][0]
        tag = self._single_token(tokenizer, self.step_tag)
        positions = (ids == tag).nonzero().flatten().tolist()
        if self.head == "token":
            rows = [logits[0, p].float().tolist() for p in positions]
            values = [_probability(row, self.positive_label, True) for row in rows]
        else:
            good, bad = self._single_token(tokenizer, self.good_token), self._single_token(tokenizer, self.bad_token)
            values = [_softmax([logits[0, p, good].item(), logits[0, p, bad].item()])[0] for p in positions]
        if len(values) != len(steps):
            raise RewardModelError(f"reward_model: found {len(values)} step tags for {len(steps)} steps "
                                   f"(input truncated at {self.max_length} tokens, or a step contains the tag)")
        return values, tokens

    # -- over HTTP ---------------------------------------------------------------------------------------
    def score_remotely(self, question: str, steps: list[str]) -> tuple[list[float], int]:
        text = self.format_input(question, steps, None)
        body = {"model": self.served_name, "input": [text] if self.api == "classify" else text}
        request = urllib.request.Request(f"{self.endpoint}/{self.api}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise RewardModelError(f"reward_model: {self.endpoint}/{self.api} failed: {exc}") from None
        try:
            item = reply["data"][0]
            tokens = int(reply.get("usage", {}).get("prompt_tokens", 0))
            if self.api == "classify":
                return [_probability(item["probs"], self.positive_label, False)], tokens
            data = item["data"]
        except (KeyError, IndexError, TypeError):
            raise RewardModelError(f"reward_model: unexpected reply from {self.endpoint}/{self.api}: "
                                   f"{str(reply)[:200]}") from None
        if data and isinstance(data[0], list):
            return [_probability(row, self.positive_label, False) for row in data], tokens
        return [_probability(data, self.positive_label, False)], tokens

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        steps = split_steps(solution, self.split) if self.head != "sequence" else [solution.strip()]
        if not steps or not steps[0]:
            return Score(0.0, None, None, "the solution is empty")
        started = time.perf_counter()
        run = self.score_remotely if self.endpoint else self.score_locally
        values, tokens = await asyncio.to_thread(run, ctx.problem.question, steps)
        seconds = time.perf_counter() - started
        ctx.cost.add(self.role, 1, tokens, 0, seconds, False)
        ctx.note("reward_model", model=self.model or self.endpoint, head=self.head, values=values, tokens=tokens)
        if self.head == "sequence":
            return Score(min(max(values[0], 0.0), 1.0))
        if len(values) != len(steps):
            raise RewardModelError(f"reward_model: {len(values)} step scores for {len(steps)} steps")
        first_error = next((i for i, v in enumerate(values) if v < 0.5), None)
        feedback = f"Step {first_error + 1} scored {values[first_error]:.2f}:\n{steps[first_error]}" \
            if first_error is not None else None
        return Score(aggregate(values, self.aggregate), tuple(values), first_error, feedback)
