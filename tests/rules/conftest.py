"""Fixture packs and facts catalogue for the rule engine's tests (tests/rules/fixtures/), and a clean global book."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qorgau.rules import RuleBook, engine, load_rulebook

FIXTURES = Path(__file__).parent / "fixtures"
FACTS = FIXTURES / "facts.yaml"
PACKS = FIXTURES / "packs"
STRICTER = FIXTURES / "stricter"


@pytest.fixture(scope="session")
def book() -> RuleBook:
    return load_rulebook([PACKS, STRICTER], facts=FACTS)


@pytest.fixture
def fresh_global() -> Iterator[None]:
    """Tests that swap the process-wide book get it back as it was afterwards."""
    saved = engine._book
    engine._book = None
    try:
        yield
    finally:
        engine._book = saved
