"""Reading a judge's decision off its token log-probabilities (shared by ``judge`` and ``step_judge``).

A prompted judge writes a verdict word ("Yes"/"No", "correct"/"incorrect"). When the backend
returns top log-probabilities, the probability of the positive word, renormalised over the
positive and negative words among the top alternatives at that position, is a graded score
where the parsed word is only 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..models.base import TokenLogprob


def token_starts(logprobs: Sequence[TokenLogprob], text: str) -> list[int] | None:
    """Character offset where each token starts in ``text``; None when the tokens do not spell the text
    (a backend that returns byte pieces or drops tokens), so callers fall back to the parsed word."""
    starts, offset = [], 0
    for token in logprobs:
        starts.append(offset)
        offset += len(token.token)
    if "".join(t.token for t in logprobs) != text:
        return None
    return starts


def token_at(logprobs: Sequence[TokenLogprob], text: str, char_index: int) -> int | None:
    """Index of the token that covers ``text[char_index]`` (the first token of a word), or None."""
    starts = token_starts(logprobs, text)
    if starts is None:
        return None
    for index in range(len(starts) - 1, -1, -1):
        if starts[index] <= char_index:
            return index if char_index < starts[index] + max(len(logprobs[index].token), 1) else None
    return None


def _word(token: str) -> str:
    return token.strip().strip("*_:.,!\"'`").lower()


def binary_probability(alternatives: Iterable[tuple[str, float]], positive: Iterable[str],
                       negative: Iterable[str]) -> float | None:
    """P(positive) / (P(positive) + P(negative)) over the alternatives at one position; None if neither
    word is among them. A word counts if the token is it or a prefix of it at least 2 letters long
    (so " incorrect" split as " in" + "correct" still counts as the negative word)."""
    positive, negative = tuple(positive), tuple(negative)
    mass = {"pos": 0.0, "neg": 0.0}
    seen: set[str] = set()
    for token, logprob in alternatives:
        if token in seen:  # the chosen token is often repeated among the alternatives
            continue
        seen.add(token)
        word = _word(token)
        if len(word) < 2 and word not in positive and word not in negative:
            continue
        is_pos = any(w == word or (len(word) >= 2 and w.startswith(word)) for w in positive)
        is_neg = any(w == word or (len(word) >= 2 and w.startswith(word)) for w in negative)
        if is_pos and not is_neg:
            mass["pos"] += math.exp(logprob)
        elif is_neg and not is_pos:
            mass["neg"] += math.exp(logprob)
    total = mass["pos"] + mass["neg"]
    return mass["pos"] / total if total > 0 else None


def verdict_probability(logprobs: Sequence[TokenLogprob] | None, text: str, char_index: int,
                        positive: Iterable[str], negative: Iterable[str]) -> float | None:
    """P(positive word) at the verdict word starting at ``text[char_index]``; None when not readable."""
    if not logprobs:
        return None
    index = token_at(logprobs, text, char_index)
    if index is None:
        return None
    token = logprobs[index]
    return binary_probability(((token.token, token.logprob), *token.top), positive, negative)
