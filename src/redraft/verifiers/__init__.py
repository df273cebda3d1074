"""Verifiers by name: ``make_verifier("rating")``; register your own with ``@register_verifier``."""

from .base import VERIFIERS, Score, Verifier, make_verifier, register_verifier

__all__ = ["VERIFIERS", "Score", "Verifier", "make_verifier", "register_verifier"]
