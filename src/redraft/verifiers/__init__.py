"""Verifiers by name: ``make_verifier("rating")`` or from a spec string, ``make_verifier_from_spec(
"weighted:judge=0.7,self_certainty=0.3")`` (grammar in ``verifiers/spec.py``); register your own with
``@register_verifier``."""

from .base import VERIFIERS, Score, Verifier, make_verifier, register_verifier
from .spec import SpecError, make_verifier_from_spec, spec_uses_oracle

__all__ = ["VERIFIERS", "Score", "SpecError", "Verifier", "make_verifier", "make_verifier_from_spec",
           "register_verifier", "spec_uses_oracle"]
