"""Intervals for accuracies: Wilson for one proportion, paired bootstrap for differences."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def wilson_interval(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    if total == 0:
        return (0.0, 0.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(values: Sequence[float], reps: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of the mean (for paired differences pass per-problem differences)."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    count = len(values)
    means = sorted(sum(values[rng.randrange(count)] for _ in range(count)) / count for _ in range(reps))
    low = means[int((1 - level) / 2 * reps)]
    high = means[min(reps - 1, int((1 + level) / 2 * reps))]
    return (low, high)
