"""Hugging Face transformers as a redraft backend: for models redraft trained itself (``hf:DIR``).

``load_model("hf:PATH")`` opens a saved model directory (``redraft train`` writes one), a ``.gguf``
file, or a built-in name (transformers reads GGUF through the ``gguf`` package and dequantizes it
to float32), so a fine-tuned model and its base are evaluated by the same runner and backend.

Choices:
- identity: ``hf:`` + sha256 over the weight files (``*.safetensors``/``*.bin``, or the GGUF),
  so cached completions never cross models and a retrained directory is a new model.
- batching: CPU decoding of a small model is far faster in batches. Concurrent greedy requests
  with the same ``max_tokens``/``stop`` are decoded together in one left-padded batch. A sampled
  request (temperature > 0) runs alone, its n samples as one batch under its own seed, so its
  result depends only on the request, as the call cache assumes.
- threads: ``REDRAFT_TORCH_THREADS`` (or ``threads=``) sets torch's CPU threads. On a 2-core machine
  shared with other processes one thread decoded ~15x faster than two (measured: a batch of 16 x 32
  tokens took 7 s against 105 s), because OpenMP threads spin-wait against the other processes.
- stop strings end a completion (they are cut off, as the OpenAI API does); ``finish_reason`` is
  "stop" for end-of-sequence or a stop string, "length" otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Completion, GenerationParams, Message, ModelError, TokenLogprob

MAX_BATCH_ROWS = 16


def weights_identity(path: Path) -> str:
    """sha256 over the model's weight files, in name order (the GGUF file itself for a GGUF)."""
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf"))
    if not files:
        raise ModelError(f"no weight files (*.safetensors, *.bin) in {path}")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def load_hf(path: Path, *, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) from a saved directory or a GGUF file."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ModelError("the transformers backend needs the train extra: pip install 'redraft[train]'") from None
    kwargs: dict[str, Any] = {}
    source = path
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"{path}: expected a model directory or a .gguf file")
        source, kwargs = path.parent, {"gguf_file": path.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(source), dtype=getattr(torch, dtype), **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"transformers could not load {path}: {exc}") from exc
    if "gguf_file" in kwargs:
        # transformers dequantizes GGUF weights to float on load but still marks the model as
        # GGUF-quantized, which makes Trainer refuse it and save_pretrained write a quantization
        # config; the weights are plain floats, so drop the marker
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


@dataclass
class _Request:
    messages: list[Message]
    params: GenerationParams
    future: asyncio.Future[list[Completion]]
    loop: asyncio.AbstractEventLoop


@dataclass
class _Queue:
    items: list[_Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)


class TransformersModel:
    def __init__(self, path: str | Path, *, name: str | None = None, identity: str | None = None,
                 max_batch_rows: int = MAX_BATCH_ROWS, threads: int | None = None) -> None:
        import torch

        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise ModelError(f"no model at {self.path}")
        threads = threads or int(os.environ.get("REDRAFT_TORCH_THREADS", "0"))
        if threads:
            torch.set_num_threads(threads)
        self.name = name or self.path.name
        self.identity = identity or f"hf:{weights_identity(self.path)}"
        self.model, self.tokenizer = load_hf(self.path)
        self.max_batch_rows = max_batch_rows
        self._queue = _Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._serve, name=f"hf-{self.name}", daemon=True)
        self._worker.start()

    # -- the Model protocol ---------------------------------------------------------------------------------
    async def generate(self, messages: list[Message], params: GenerationParams) -> list[Completion]:
        if self._closed:
            raise ModelError(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        request = _Request(messages, params, loop.create_future(), loop)
        with self._queue.lock:
            self._queue.items.append(request)
        self._queue.wake.set()
        return await request.future

    async def close(self) -> None:
        self._closed = True
        self._queue.wake.set()
        await asyncio.to_thread(self._worker.join, 60)

    # -- the decoding thread --------------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._closed:
            self._queue.wake.wait(0.5)
            batch = self._take()
            if not batch:
                continue
            try:
                results = self._decode(batch)
            except Exception as exc:  # hand the failure to every waiting caller, keep serving
                error = ModelError(f"transformers generation failed: {exc}")
                for request in batch:
                    request.loop.call_soon_threadsafe(_settle, request.future, None, error)
                continue
            for request, completions in zip(batch, results, strict=True):
                request.loop.call_soon_threadsafe(_settle, request.future, completions, None)

    def _take(self) -> list[_Request]:
        """The next batch: the oldest request, plus waiting greedy requests that decode the same way."""
        with self._queue.lock:
            items = self._queue.items
            if not items:
                self._queue.wake.clear()
                return []
            first = items.pop(0)
            batch, rows = [first], first.params.n
            if first.params.temperature == 0 and not first.params.logprobs:
                for request in list(items):
                    p = request.params
                    if (p.temperature == 0 and not p.logprobs and p.max_tokens == first.params.max_tokens
                            and p.stop == first.params.stop and rows + p.n <= self.max_batch_rows):
                        items.remove(request)
                        batch.append(request)
                        rows += p.n
            return batch

    def _decode(self, batch: list[_Request]) -> list[list[Completion]]:
        import torch

        params = batch[0].params
        prompts, owners = [], []
        for position, request in enumerate(batch):
            text = self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            copies = request.params.n if request.params.temperature > 0 else 1  # greedy copies are identical
            prompts.extend([text] * copies)
            owners.extend([position] * copies)
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        settings: dict[str, Any] = {"max_new_tokens": max(1, params.max_tokens),
                                    "pad_token_id": self.tokenizer.pad_token_id, "return_dict_in_generate": True}
        if params.temperature > 0:
            settings.update(do_sample=True, temperature=params.temperature, top_k=0, top_p=1.0)
        else:
            settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            settings.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if params.logprobs:
            settings["output_logits"] = True
        started = time.perf_counter()
        generator_state = None
        if params.temperature > 0 and params.seed is not None:
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(params.seed)
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, **settings)
        finally:
            if generator_state is not None:
                torch.random.set_rng_state(generator_state)
        seconds = time.perf_counter() - started
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output.sequences[:, prompt_length:]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        rows: list[Completion] = []
        for row in range(new_tokens.shape[0]):
            rows.append(self._completion(new_tokens[row], int(prompt_tokens[row]), params, seconds,
                                         output.logits if params.logprobs else None, row))
        results: list[list[Completion]] = [[] for _ in batch]
        for owner, completion in zip(owners, rows, strict=True):
            results[owner].append(completion)
        for position, request in enumerate(batch):
            if request.params.temperature == 0 and request.params.n > 1:
                results[position] = results[position] * request.params.n
        return results

    def _completion(self, tokens: Any, prompt_tokens: int, params: GenerationParams, seconds: float,
                    logits: Any, row: int) -> Completion:
        ids = tokens.tolist()
        eos = self._eos_ids()
        finish = "length"
        length = len(ids)
        for index, token in enumerate(ids):
            if token in eos:
                length, finish = index, "stop"
                break
        text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
        for stop in params.stop:
            cut = text.find(stop)
            if cut != -1:
                text, finish = text[:cut], "stop"
        logprobs = None
        if logits is not None:
            logprobs = self._logprobs(ids[:length], logits, row, max(params.top_logprobs, 1))
        completion_tokens = length + (1 if finish == "stop" and length < len(ids) else 0)
        return Completion(text, finish, prompt_tokens, completion_tokens, seconds, logprobs)

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        found = set(ids if isinstance(ids, list) else [ids]) if ids is not None else set()
        if self.tokenizer.eos_token_id is not None:
            found.add(self.tokenizer.eos_token_id)
        return found

    def _logprobs(self, ids: list[int], logits: Any, row: int, top: int) -> list[TokenLogprob]:
        import torch

        out = []
        for step, token in enumerate(ids):
            distribution = torch.log_softmax(logits[step][row].float(), dim=-1)
            values, indices = distribution.topk(top)
            alternatives = tuple((self.tokenizer.decode([int(i)]), float(v))
                                 for v, i in zip(values, indices, strict=True))
            out.append(TokenLogprob(self.tokenizer.decode([token]), float(distribution[token]), alternatives))
        return out


def _settle(future: asyncio.Future[list[Completion]], value: list[Completion] | None,
            error: Exception | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value or [])


def open_transformers_model(target: str, say: Any = lambda _: None) -> TransformersModel:
    """``hf:TARGET``: a directory or .gguf path, or a built-in name (its pinned GGUF, dequantized)."""
    from .fetch import resolve_model_file
    from .registry import BUILTIN_MODELS

    if target in BUILTIN_MODELS:
        path, sha256 = resolve_model_file(target, say)
        say(f"loading {target} into transformers (dequantized from {path.name})")
        return TransformersModel(path, name=f"hf:{target}", identity=f"hf:gguf:{sha256}")
    path = Path(target).expanduser()
    if not path.exists():
        raise ModelError(f"hf:{target}: no such directory or file (or built-in name: {', '.join(BUILTIN_MODELS)})")
    say(f"loading {path} into transformers")
    return TransformersModel(path, name=f"hf:{path.name}")
