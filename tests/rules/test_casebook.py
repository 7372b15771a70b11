"""The casebook: realistic AI systems classified by Kazakhstan's packs exactly as a lawyer would expect.

Each system of ``casebook.yaml`` is evaluated with the built-in packs (law profile) as of its date; risk level,
autonomy, prohibited practices, autonomy violations, obligations (and notices, where given) must match exactly,
and the listed rule ids must be among the fired rules. A failure prints a readable diff of what differs and why.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

import qorgau.rules as rules_pkg
from qorgau.rules import Evaluation, RuleBook, load_rulebook

CASEBOOK = Path(__file__).parent / "casebook.yaml"
BUILTIN_PACKS = Path(rules_pkg.__file__).parent / "packs"
FACTS = Path(rules_pkg.__file__).parent / "facts.yaml"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, mappings merged key by key; any other value (lists too) replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_casebook(path: Path = CASEBOOK) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = doc["base_facts"]
    systems = []
    for entry in doc["systems"]:
        system = dict(entry)
        system["facts"] = deep_merge(base, entry.get("facts") or {})
        as_of = entry["as_of"]
        system["as_of"] = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of))
        systems.append(system)
    return systems


SYSTEMS = load_casebook()


@pytest.fixture(scope="module")
def kz_book() -> RuleBook:
    return load_rulebook([BUILTIN_PACKS], facts=FACTS)


def actual_of(ev: Evaluation) -> dict[str, Any]:
    return {
        "risk_level": ev.risk_level,
        "autonomy_level": ev.autonomy_level,
        "prohibitions": sorted({f.effect["practice"] for f in ev.prohibitions}),
        "autonomy_violation": bool(ev.autonomy_violations),
        "obligations": sorted({f.effect["code"] for f in ev.obligations}),
        "notices": sorted({f.effect["code"] for f in ev.notices}),
        "fired": sorted(f.rule_id for f in ev.fired),
    }


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Human-readable lines, one per difference; empty when the classification is as expected."""
    lines: list[str] = []
    for key in ("risk_level", "autonomy_level"):
        if expected.get(key) != actual[key]:
            lines.append(f"{key}: expected {expected.get(key)!r}, got {actual[key]!r}")
    if bool(expected.get("autonomy_violation", False)) != actual["autonomy_violation"]:
        lines.append(f"autonomy_violation: expected {bool(expected.get('autonomy_violation', False))}, "
                     f"got {actual['autonomy_violation']}")
    for key in ("prohibitions", "obligations", "notices"):
        if key == "notices" and "notices" not in expected:
            continue
        want, got = set(expected.get(key) or []), set(actual[key])
        if want != got:
            if want - got:
                lines.append(f"{key}: missing {sorted(want - got)}")
            if got - want:
                lines.append(f"{key}: unexpected {sorted(got - want)}")
    not_fired = sorted(set(expected.get("reasons") or []) - set(actual["fired"]))
    if not_fired:
        lines.append(f"reasons: rules expected to fire did not: {not_fired}")
    return lines


def test_the_casebook_has_at_least_forty_distinct_systems() -> None:
    names = [s["name"] for s in SYSTEMS]
    assert len(names) >= 40
    assert len(set(names)) == len(names), "system names must be unique"
    for system in SYSTEMS:
        assert system["description"].strip(), system["name"]
        assert {"risk_level", "autonomy_level", "prohibitions", "obligations", "reasons"} <= set(system["expected"])


def test_every_system_is_fully_decided_by_its_facts(kz_book: RuleBook) -> None:
    """The casebook answers every question the packs ask: nothing is left undecided."""
    undecided = {s["name"]: kz_book.evaluate(s["facts"], as_of=s["as_of"]).missing_facts for s in SYSTEMS}
    assert {name: missing for name, missing in undecided.items() if missing} == {}


def test_the_casebook_exercises_every_prohibition_and_obligation_rule(kz_book: RuleBook) -> None:
    """Every prohibition, obligation and level rule of the AI-law pack fires for some system of the casebook."""
    fired: set[str] = set()
    for s in SYSTEMS:
        fired.update(f.rule_id for f in kz_book.evaluate(s["facts"], as_of=s["as_of"]).fired)
    ai_pack = next(p for p in kz_book.packs if p.id == "kz.ai-law")
    never = sorted(r.id for r in ai_pack.rules if r.id not in fired)
    assert never == []


@pytest.mark.parametrize("system", SYSTEMS, ids=[s["name"] for s in SYSTEMS])
def test_system_is_classified_as_expected(kz_book: RuleBook, system: dict[str, Any]) -> None:
    ev = kz_book.evaluate(system["facts"], as_of=system["as_of"])
    actual = actual_of(ev)
    diff = differences(system["expected"], actual)
    if diff:
        fired = "\n    ".join(f"{f.rule_id} -> {f.effect}" for f in ev.fired) or "(none)"
        pytest.fail(f"{system['name']} as of {system['as_of']}: {system['description']}\n  "
                    + "\n  ".join(diff)
                    + f"\n  rules that fired:\n    {fired}"
                    + (f"\n  missing facts: {ev.missing_facts}" if ev.missing_facts else ""),
                    pytrace=False)
    assert ev.prohibited is bool(actual["prohibitions"] or actual["autonomy_violation"])


def test_the_same_system_is_classified_differently_before_and_after_the_laws(kz_book: RuleBook) -> None:
    """AI law from 18 Jan 2026; PD law Art. 19-1 from 1 Jan 2026 (L-PD-AUTO)."""
    system = next(s for s in SYSTEMS if s["name"] == "credit-scoring-no-consent")
    in_2025 = kz_book.evaluate(system["facts"], as_of=date(2025, 12, 31))
    early_2026 = kz_book.evaluate(system["facts"], as_of=date(2026, 1, 5))
    in_force = kz_book.evaluate(system["facts"], as_of=date(2026, 1, 18))
    assert not in_2025.prohibited and in_2025.autonomy_level is None
    assert [f.rule_id for f in early_2026.prohibitions] == ["ai.prohibited.automated-decision-without-basis"]
    assert early_2026.autonomy_level is None
    assert in_force.autonomy_level == "medium" and in_force.risk_level == "medium"
    assert "human_review_on_request" in {f.effect["code"] for f in in_force.obligations}


def test_a_missing_answer_leaves_the_classification_undecided(kz_book: RuleBook) -> None:
    """Drop the failure impact of a high-risk system: risk cannot be decided and the register must ask for it."""
    system = next(s for s in SYSTEMS if s["name"] == "power-grid-protection")
    facts = copy.deepcopy(system["facts"])
    del facts["failure"]
    ev = kz_book.evaluate(facts, as_of=system["as_of"])
    assert ev.risk_level is None
    assert "failure.impact" in ev.missing_facts
    assert "risk_management" not in {f.effect["code"] for f in ev.obligations}
