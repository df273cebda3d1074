"""Model backends behind one async interface, and ``load_model`` to open one by name."""

from __future__ import annotations

from .base import Completion, GenerationParams, Message, Model, ModelError, TokenLogprob
from .fetch import Say, resolve_model_file
from .registry import BUILTIN_MODELS, DEFAULT_MODEL

__all__ = [
    "BUILTIN_MODELS", "DEFAULT_MODEL", "Completion", "GenerationParams", "Message", "Model",
    "ModelError", "TokenLogprob", "load_model",
]


def load_model(name: str, *, base_url: str | None = None, parallel: int = 8,
               say: Say = lambda _: None) -> Model:
    """Open a model by name.

    - a built-in name (``qwen2.5-coder-1.5b``, ``qwen2.5-coder-0.5b``, ``smollm2-135m``) or a
      path to a ``.gguf`` file: embedded llama.cpp;
    - ``openai:MODEL``: an OpenAI-compatible server at ``base_url`` / ``OPENAI_BASE_URL``;
    - ``hf:PATH``: Hugging Face transformers (a saved model directory, a ``.gguf`` file or a
      built-in name), e.g. a model ``redraft train`` wrote; needs the ``train`` extra.
    """
    if name.startswith("hf:"):
        from .transformers_backend import open_transformers_model

        return open_transformers_model(name.removeprefix("hf:"), say)
    if name.startswith("openai:"):
        from .openai_compat import OpenAICompatibleModel

        return OpenAICompatibleModel(name.removeprefix("openai:"), base_url=base_url)
    path, sha256 = resolve_model_file(name, say)
    from .llamacpp import LlamaCppModel

    display = name if name in BUILTIN_MODELS else path.name
    say(f"loading {display} into llama.cpp")
    return LlamaCppModel(path, sha256, name=display, parallel=parallel)
