"""Aggregating candidate answers: majority, weighted, and inverse-entropy weighted votes.

Ties break deterministically: the answer that appeared first among the candidates wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


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
