"""The law as code: rule packs (YAML, CEL conditions) over a catalogue of facts, evaluated as of a date.

``rulebook()`` is the process-wide book of the built-in packs (``qorgau/rules/packs/**.yaml``) plus the operator's
own (setting ``rules_extra_dirs``); ``reload_rulebook()`` replaces it only with a fully valid new one.
See :mod:`qorgau.rules.engine` for evaluation, :mod:`qorgau.rules.loader` for the pack format and its checks.
"""

from __future__ import annotations

from .engine import (
    Deadline,
    Evaluation,
    ExampleResult,
    Finding,
    RuleBook,
    default_profiles,
    load_rulebook,
    normalize_profiles,
    reload_rulebook,
    rulebook,
)
from .facts import Fact, FactCatalog, FactGroup, facts_from_flat, load_catalog
from .loader import Citation, Example, Pack, Rule, RulePackError

__all__ = [
    "Citation", "Deadline", "Evaluation", "Example", "ExampleResult", "Fact", "FactCatalog", "FactGroup", "Finding",
    "Pack", "Rule", "RuleBook", "RulePackError", "default_profiles", "facts_from_flat", "load_catalog",
    "load_rulebook", "normalize_profiles", "reload_rulebook", "rulebook",
]
