"""Splitting a solution into steps, for step-level verifiers and local refinement."""

from __future__ import annotations

import itertools
import re

SPLIT_MODES = ("auto", "lines", "marked", "paragraphs")
_MARKED = re.compile(r"(?im)^\s*(?:#+\s*)?(?:step\s*\d+\s*[:.)-]|\d+[.)]\s)")


def split_steps(solution: str, mode: str = "auto") -> list[str]:
    """Steps of a solution, in order; joining them with "\\n" gives the solution back up to whitespace.

    - ``marked``: a new step at each line starting "Step k:" or "k." / "k)";
    - ``paragraphs``: blank-line separated blocks;
    - ``lines``: every non-empty line;
    - ``auto``: marked if there are at least two markers, else paragraphs if at least two, else lines.
    """
    if mode not in SPLIT_MODES:
        raise ValueError(f"unknown step split {mode!r}: choose one of {', '.join(SPLIT_MODES)}")
    text = solution.strip()
    if not text:
        return []
    if mode in ("marked", "auto"):
        starts = [m.start() for m in _MARKED.finditer(text)]
        if len(starts) >= 2 or (mode == "marked" and starts):
            if starts[0] != 0:
                starts.insert(0, 0)
            bounds = starts + [len(text)]
            return [text[a:b].strip() for a, b in itertools.pairwise(bounds) if text[a:b].strip()]
        if mode == "marked":
            return [text]
    if mode in ("paragraphs", "auto"):
        blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
        if len(blocks) >= 2 or mode == "paragraphs":
            return blocks
    return [line.strip() for line in text.splitlines() if line.strip()]


def prefix_through(steps: list[str], last_step: int) -> str:
    """The solution up to and including step ``last_step`` (for rollouts and local refinement)."""
    return "\n".join(steps[: last_step + 1])
