"""``probe``: a verifier redraft trains itself. Logistic regression on the solver's own embeddings.

Features: the solver model's mean-pooled, L2-normalised last-layer embedding of
"question + blank line + solution", computed by llama.cpp in embedding mode. xllamacpp serves
embeddings only from a server opened with ``CommonParams.embedding = True`` and a pooling type,
so the probe opens a second llama.cpp instance of the same GGUF file for them (the generating
instance keeps its own settings).

Labels: correctness of stored candidates. ``collect_examples`` reads runs from the SQLite store,
takes every solver-role sample in each problem's trace (a self-consistency run stores all its
samples), and grades it with the task's grader. Train on a split the probe will not be measured on.

Model: L2-regularised logistic regression fitted by Newton's method on standardised features
(numpy only). Saved as one ``.npz`` holding the weights and a JSON header: format version, the
embedding model's identity (``gguf:<sha256>``) and name, pooling, dimension, the runs and counts it
was trained on. Loading checks the format version, and scoring refuses a probe whose model identity
differs from the embedding model's: a probe is only meaningful on the embeddings it was fitted to.

Train one with ``train_probe`` (or ``benchmarks/verifier_quality.py``, which cross-validates one by
problem), then use ``probe:path=PROBE.npz``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..context import SolveContext
from .base import Score, Verifier, register_verifier

PROBE_FORMAT = 1
POOLINGS = ("mean", "last", "cls")


class ProbeError(RuntimeError):
    """A probe file that is missing, of another format, or fitted to another model's embeddings."""


class Embedder(Protocol):
    identity: str  # "gguf:<sha256>" of the model that makes the embeddings

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """(one row per text, input tokens used)."""
        ...


def probe_text(question: str, solution: str) -> str:
    return f"{question}\n\n{solution}"


class LlamaCppEmbedder:
    """Embeddings from a GGUF model through a second, embedding-mode llama.cpp server."""

    def __init__(self, model: str, pooling: str = "mean", n_ctx: int = 4096) -> None:
        import xllamacpp

        from ..models.fetch import resolve_model_file
        from ..models.llamacpp import default_threads

        path, sha256 = resolve_model_file(model)
        self.identity = f"gguf:{sha256}"
        self.name = model
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.embedding = True
        params.pooling_type = getattr(xllamacpp.llama_pooling_type, f"LLAMA_POOLING_TYPE_{pooling.upper()}")
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_ctx  # a pooled embedding needs the whole input in one batch
        params.n_parallel = 1
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = default_threads()
        params.warmup = False
        params.verbosity = -1
        self._server = xllamacpp.Server(params)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        with self._lock:
            reply = self._server.handle_embeddings({"input": list(texts)})
        if "error" in reply:
            raise ProbeError(f"llama.cpp embeddings failed: {reply['error']}")
        rows = sorted(reply["data"], key=lambda item: item["index"])
        return np.array([row["embedding"] for row in rows], dtype=np.float64), int(reply["usage"]["prompt_tokens"])


_EMBEDDERS: dict[tuple[str, str], LlamaCppEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def llamacpp_embedder(model: str, pooling: str = "mean") -> LlamaCppEmbedder:
    """One embedding server per (model, pooling) per process."""
    with _EMBEDDERS_LOCK:
        if (model, pooling) not in _EMBEDDERS:
            _EMBEDDERS[(model, pooling)] = LlamaCppEmbedder(model, pooling)
        return _EMBEDDERS[(model, pooling)]


@dataclass
class LogisticProbe:
    weights: np.ndarray  # over standardised features
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[bool], l2: float = 1.0, iterations: int = 50,
            meta: dict[str, Any] | None = None) -> LogisticProbe:
        """L2-regularised logistic regression by Newton's method (the bias is not penalised)."""
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
            raise ProbeError("fit needs a 2-d feature matrix and one label per row")
        if y.min() == y.max():
            raise ProbeError("fit needs both correct and incorrect examples")
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-8
        z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
        theta = np.zeros(z.shape[1])
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0
        for _ in range(iterations):
            p = 1 / (1 + np.exp(-(z @ theta)))
            gradient = z.T @ (p - y) + penalty * theta
            hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(z.shape[1])
            step = np.linalg.solve(hessian, gradient)
            theta -= step
            if np.abs(step).max() < 1e-8:
                break
        info = dict(meta or {})
        info.update(examples=len(y), positives=int(y.sum()), l2=l2)
        return cls(theta[:-1], float(theta[-1]), mean, scale, info)

    def predict(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return 1 / (1 + np.exp(-(z @ self.weights + self.bias)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"format": PROBE_FORMAT, **self.meta}, sort_keys=True, default=str)
        with open(path, "wb") as handle:  # a file handle keeps numpy from appending ".npz"
            np.savez(handle, weights=self.weights, bias=np.array([self.bias]), mean=self.mean,
                     scale=self.scale, header=np.array(header))
        return path

    @classmethod
    def load(cls, path: str | Path) -> LogisticProbe:
        path = Path(path)
        if not path.is_file():
            raise ProbeError(f"probe file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["header"]))
                probe = cls(data["weights"], float(data["bias"][0]), data["mean"], data["scale"], meta)
        except (ValueError, KeyError, OSError) as exc:
            raise ProbeError(f"{path} is not a redraft probe file: {exc}") from None
        if meta.get("format") != PROBE_FORMAT:
            raise ProbeError(f"{path}: probe format {meta.get('format')}, this redraft reads format {PROBE_FORMAT}")
        return probe


@dataclass(frozen=True)
class Example:
    problem_id: str
    question: str
    text: str
    correct: bool


def collect_examples(store: Any, run_ids: Sequence[str], task: Any) -> list[Example]:
    """Every distinct solver sample in the given runs' traces, graded against the task's key."""
    examples: list[Example] = []
    for run_id in run_ids:
        for record in store.results(run_id):
            problem = task.problems(ids=[record.problem_id])[0]
            seen: set[str] = set()
            for event in record.trace:
                if event.get("type") != "call" or event.get("role") != "solver":
                    continue
                for text in event.get("outputs", ()):
                    if text in seen:
                        continue
                    seen.add(text)
                    correct = task.grade(problem, task.extract(text, problem), text).correct
                    examples.append(Example(problem.id, problem.question, text, correct))
    return examples


def train_probe(examples: Sequence[Example], embedder: Embedder, *, model_name: str = "", pooling: str = "mean",
                l2: float = 1.0, runs: Sequence[str] = (), batch: int = 8) -> LogisticProbe:
    """Embed the examples and fit a probe, recording what it was fitted to."""
    rows = []
    for start in range(0, len(examples), batch):
        chunk = examples[start:start + batch]
        embedded, _ = embedder.embed([probe_text(e.question, e.text) for e in chunk])
        rows.append(embedded)
    features = np.vstack(rows)
    meta = {"model_identity": embedder.identity, "model": model_name, "pooling": pooling,
            "dim": int(features.shape[1]), "runs": list(runs), "created": time.time(),
            "problems": len({e.problem_id for e in examples})}
    return LogisticProbe.fit(features, [e.correct for e in examples], l2=l2, meta=meta)


@register_verifier
class ProbeVerifier(Verifier):
    name = "probe"

    def __init__(self, path: str = "", model: str = "", role: str = "probe") -> None:
        if not path:
            raise ValueError("probe needs path=PROBE.npz (train one with redraft.verifiers.probe.train_probe)")
        self.probe = LogisticProbe.load(path)
        self.path = path
        self.model = model or str(self.probe.meta.get("model", ""))
        self.pooling = str(self.probe.meta.get("pooling", "mean"))
        self.role = role
        self.embedder: Embedder | None = None  # opened on first use; tests may set their own

    def _embedder(self) -> Embedder:
        if self.embedder is None:
            if not self.model:
                raise ProbeError(f"{self.path} does not name its model: give probe:model=NAME_OR_GGUF")
            self.embedder = llamacpp_embedder(self.model, self.pooling)
        expected = self.probe.meta.get("model_identity")
        if self.embedder.identity != expected:
            raise ProbeError(f"probe {self.path} was fitted to embeddings of {expected}, "
                             f"not of {self.embedder.identity}")
        return self.embedder

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        embedder = self._embedder()
        started = time.perf_counter()
        features, tokens = await asyncio.to_thread(embedder.embed, [probe_text(ctx.problem.question, solution)])
        ctx.cost.add(self.role, 1, tokens, 0, time.perf_counter() - started, False)
        return Score(float(self.probe.predict(features)[0]))
