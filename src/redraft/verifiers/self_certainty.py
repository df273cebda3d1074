"""``self_certainty``: confidence from the solver's own token distribution.

Three signals per candidate, from the per-token top-k log-probabilities of its own sampling:

- mean token log-probability of the sampled tokens;
- mean entropy of the next-token distribution;
- self-certainty ("Scalable Best-of-N Selection via Self-Certainty"): the mean over tokens of
  KL(U || p), the divergence of the next-token distribution from uniform. The paper sums over the
  whole vocabulary; backends return only the top-k alternatives, so here p is the top-k
  distribution renormalised and U is uniform over those k tokens:
  KL = -log k - (1/k) * sum_j log p_j. It is 0 for a flat top-k and grows with a peaked one.

``signal`` picks which one becomes ``Score.value``, each mapped monotonically into [0, 1] (so
rankings and AUROC are those of the raw signal): ``logprob`` -> exp(mean log-prob), the geometric
mean token probability; ``entropy`` -> 1 - mean entropy / log k; ``self_certainty`` ->
KL / (1 + KL) (1 - exp(-KL) would saturate: peaked top-10 distributions give KL of 5-7 nats).
The feedback line carries all three raw numbers.

Where the logprobs come from (a verifier only gets the candidate's text, and a chat-completions
API cannot re-score a given text):

1. ``recorded``: the strategy sampled with ``logprobs=True, top_logprobs=k`` and called
   ``record_certainty(ctx, completions)``, which notes the three numbers in the trace keyed by the
   text's sha256. The verifier reads them: no extra calls, and the numbers are stored with the run.
2. ``replay``: otherwise the verifier finds the traced call that produced this exact text and
   repeats it with the same messages, temperature, token limit and seed (sample i of an n-sample
   call has seed + i, as the llama.cpp backend issues it), now with logprobs. This costs as much as
   the original sample, under this verifier's role. It is only used if the replay reproduces the
   text exactly; if not (a backend that does not reproduce seeded samples), the score is 0.5 (no
   evidence) and a "certainty_replay_mismatch" event goes in the trace, so the failure is counted,
   never hidden. Measured: llama.cpp with parallel slots reproduced a lone seeded sample, but only
   2 of 8 samples of an n=8 call (batch composition changes the numerics), so replay is a fallback;
   record the logprobs at sampling time wherever the strategy can.

``source``: ``auto`` (recorded, else replay), ``recorded`` (never spend calls) or ``replay``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..context import SolveContext
from ..models.base import Completion, TokenLogprob
from .base import Score, Verifier, register_verifier

SIGNALS = ("self_certainty", "logprob", "entropy")
SOURCES = ("auto", "recorded", "replay")


class NoLogprobs(RuntimeError):
    """The candidate's token log-probabilities are neither recorded nor reproducible."""


@dataclass(frozen=True)
class Certainty:
    mean_logprob: float
    mean_entropy: float  # nats, over the renormalised top-k
    self_certainty: float  # mean KL(U_k || p_k), nats
    tokens: int
    top_k: int  # the smallest number of alternatives seen at a position (the k of the top-k)

    def value(self, signal: str) -> float:
        if signal == "logprob":
            return math.exp(self.mean_logprob)
        if signal == "entropy":
            return 1.0 - self.mean_entropy / math.log(self.top_k) if self.top_k > 1 else 0.5
        return self.self_certainty / (1.0 + self.self_certainty)

    def describe(self) -> str:
        return (f"mean logprob {self.mean_logprob:.3f}, mean entropy {self.mean_entropy:.3f} nats, "
                f"self-certainty {self.self_certainty:.3f} (top-{self.top_k}, {self.tokens} tokens)")


def certainty_of(logprobs: Sequence[TokenLogprob]) -> Certainty:
    """The three signals of one completion's logprobs. Positions with fewer than 2 alternatives add to
    the mean log-prob only (entropy and divergence from uniform need a distribution)."""
    if not logprobs:
        raise NoLogprobs("the completion has no tokens with log-probabilities")
    entropies, divergences, widths = [], [], []
    for token in logprobs:
        alternatives = dict(token.top)  # de-duplicates the sampled token listed among the alternatives
        if len(alternatives) < 2:
            continue
        top = max(alternatives.values())
        weights = [math.exp(lp - top) for lp in alternatives.values()]
        total = sum(weights)
        probs = [w / total for w in weights]
        k = len(probs)
        entropies.append(-sum(p * math.log(p) for p in probs if p > 0))
        divergences.append(-math.log(k) - sum(math.log(max(p, 1e-300)) for p in probs) / k)
        widths.append(k)
    mean_logprob = sum(t.logprob for t in logprobs) / len(logprobs)
    if not entropies:
        return Certainty(mean_logprob, 0.0, 0.0, len(logprobs), 1)
    return Certainty(mean_logprob, sum(entropies) / len(entropies), sum(divergences) / len(divergences),
                     len(logprobs), min(widths))


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_certainty(ctx: SolveContext, completions: Sequence[Completion]) -> None:
    """Note each completion's certainty in the trace, so ``self_certainty`` scores it with no extra call.

    Call right after ``ctx.generate(..., logprobs=True, top_logprobs=k)``."""
    for completion in completions:
        if completion.logprobs:
            ctx.note("certainty", text_sha=text_key(completion.text), **asdict(certainty_of(completion.logprobs)))


def recorded_certainty(trace: Sequence[dict[str, Any]], text: str) -> Certainty | None:
    key = text_key(text)
    for event in reversed(trace):
        if event.get("type") == "certainty" and event.get("text_sha") == key:
            return Certainty(event["mean_logprob"], event["mean_entropy"], event["self_certainty"],
                             event["tokens"], event["top_k"])
    return None


def producing_call(trace: Sequence[dict[str, Any]], text: str) -> tuple[dict[str, Any], int] | None:
    """The traced call whose outputs include ``text``, and the sample's index in it."""
    for event in trace:
        if event.get("type") == "call" and text in event.get("outputs", ()):
            return event, event["outputs"].index(text)
    return None


@register_verifier
class SelfCertaintyVerifier(Verifier):
    name = "self_certainty"

    def __init__(self, signal: str = "self_certainty", source: str = "auto", top_logprobs: int = 10,
                 role: str = "certainty") -> None:
        if signal not in SIGNALS:
            raise ValueError(f"unknown signal {signal!r}: choose one of {', '.join(SIGNALS)}")
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
        if top_logprobs < 2:
            raise ValueError("top_logprobs must be at least 2 (entropy needs a distribution)")
        self.signal = signal
        self.source = source
        self.top_logprobs = top_logprobs
        self.role = role

    async def score(self, ctx: SolveContext, solution: str) -> Score:
        certainty = recorded_certainty(ctx.trace, solution) if self.source != "replay" else None
        if certainty is None:
            if self.source == "recorded":
                raise NoLogprobs("self_certainty (source=recorded): no certainty recorded for this candidate; "
                                 "sample with logprobs=True and call record_certainty(ctx, completions)")
            certainty = await self._replay(ctx, solution)
            if certainty is None:
                return Score(0.5, feedback="self-certainty unavailable: the replayed sample differed")
        return Score(min(max(certainty.value(self.signal), 0.0), 1.0), feedback=certainty.describe())

    async def _replay(self, ctx: SolveContext, solution: str) -> Certainty | None:
        found = producing_call(ctx.trace, solution)
        if found is None:
            raise NoLogprobs("self_certainty: no recorded logprobs and no traced call produced this text, "
                             "so there is nothing to replay")
        call, index = found
        seed = call.get("seed")
        if seed is not None and call.get("n", 1) > 1:
            seed += index
        [replayed] = await ctx.generate(call["messages"], role=self.role, temperature=call["temperature"],
                                        max_tokens=call["max_tokens"], seed=seed, logprobs=True,
                                        top_logprobs=self.top_logprobs, label="certainty_replay")
        if replayed.text != solution or not replayed.logprobs:
            ctx.note("certainty_replay_mismatch", text_sha=text_key(solution), reproduced=replayed.text == solution)
            return None
        record_certainty(ctx, [replayed])
        return certainty_of(replayed.logprobs)
