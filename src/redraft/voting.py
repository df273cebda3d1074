"""Aggregating candidate answers: majority, weighted, and inverse-entropy weighted votes.

Ties break deterministically: the answer that appeared first among the candidates wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .models.base import TokenLogprob


@dataclass(frozen=True)
class Vote:
    answer: str | None  # the winning answer as first written by a candidate
    index: int | None  # the first candidate that gave it
    tally: dict[str, float]  # canonical answer -> total weight
    agreement: float  # winning weight / total weight, in [0, 1]


def weighted_vote(
    answers: Sequence[str | None],
    weights: Sequence[float] | None = None,
    canonical: Callable[[str], str] = str.strip,
) -> Vote:
    """Sum weights per canonical answer; candidates with no answer do not vote."""
    weights = list(weights) if weights is not None else [1.0] * len(answers)
    if len(weights) != len(answers):
        raise ValueError("one weight per answer")
    tally: dict[str, float] = {}
    first: dict[str, int] = {}
    for index, (answer, weight) in enumerate(zip(answers, weights, strict=True)):
        if answer is None:
            continue
        key = canonical(answer)
        tally[key] = tally.get(key, 0.0) + weight
        first.setdefault(key, index)
    if not tally:
        return Vote(None, None, {}, 0.0)
    best = max(tally, key=lambda k: (tally[k], -first[k]))
    total = sum(tally.values())
    index = first[best]
    return Vote(answers[index], index, tally, tally[best] / total if total > 0 else 0.0)


def majority_vote(answers: Sequence[str | None], canonical: Callable[[str], str] = str.strip) -> Vote:
    return weighted_vote(answers, None, canonical)


def inverse_entropy_weights(mean_entropies: Sequence[float]) -> list[float]:
    """Weight each chain by 1 / its mean token entropy ("The Sequential Edge"): confident chains count more."""
    return [1.0 / max(entropy, 1e-6) for entropy in mean_entropies]


# -- one entry point for the three variants, so any strategy can take a ``vote`` option ------------------

VOTE_METHODS = ("majority", "verifier", "inverse_entropy")


def mean_token_entropy(tokens: Sequence[TokenLogprob]) -> float:
    """Mean per-token entropy (nats) of a sampled chain, from the top alternatives each position reports.

    The alternatives are renormalised over the top-k the backend returned (a lower bound on the full
    entropy, the same for every chain of one run). A position with no alternatives counts its own
    surprisal, -log p(token). An empty chain has entropy 0.
    """
    if not tokens:
        return 0.0
    total = 0.0
    for token in tokens:
        if token.top:
            probs = [math.exp(logprob) for _, logprob in token.top]
            mass = sum(probs)
            total += -sum(p / mass * math.log(p / mass) for p in probs if p > 0)
        else:
            total += -token.logprob
    return total / len(tokens)


def vote_by(method: str, answers: Sequence[str | None], canonical: Callable[[str], str] = str.strip, *,
            scores: Sequence[float] | None = None, entropies: Sequence[float] | None = None) -> Vote:
    """``majority``; ``verifier`` (each answer weighted by its verifier score); ``inverse_entropy``
    (weighted by 1 / mean token entropy of its chain, "The Sequential Edge")."""
    if method == "majority":
        return weighted_vote(answers, None, canonical)
    if method == "verifier":
        if scores is None:
            raise ValueError("verifier-weighted voting needs a score per candidate")
        return weighted_vote(answers, scores, canonical)
    if method == "inverse_entropy":
        if entropies is None:
            raise ValueError("inverse-entropy voting needs each chain's mean token entropy (sample with logprobs)")
        return weighted_vote(answers, inverse_entropy_weights(entropies), canonical)
    raise ValueError(f"unknown vote {method!r}: choose one of {', '.join(VOTE_METHODS)}")
