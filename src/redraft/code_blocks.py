"""Fenced code blocks in a model's reply: one reading of ```python ... ``` for every module."""

from __future__ import annotations

import re

# the tag may be left off (```\n...```), which models often do when they answer with code only
_ANY_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)
# only blocks tagged as Python: a bare block in a math solution is often a pasted output, not code
_PYTHON_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def fenced_blocks(text: str, python_tag_required: bool = False) -> list[str]:
    """The closed fenced blocks of ``text`` in order, their contents only."""
    return (_PYTHON_BLOCK if python_tag_required else _ANY_BLOCK).findall(text)
