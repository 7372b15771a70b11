"""Helpers of the governance tests (trusted lists, sandbox, maturity index): a small rule pack of their own
(so the expected risk levels, obligations and relaxable flags are fixed by the test, not by the evolving real
packs), questionnaires answering every fact of the real catalogue, and systems registered and classified
through the register service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import make_authority

from qorgau.aisystems.governance import AiGovernance, governance_for
from qorgau.aisystems.register import register_for
from qorgau.core import auth
from qorgau.core.auth import Principal
from qorgau.core.platform import Platform
from qorgau.rules import engine as rules_engine
from qorgau.rules import reload_rulebook, rulebook

LABEL_RULE = "gv.obligation.label"          # relaxable, 10 working days from the classification
OVERSIGHT_RULE = "gv.obligation.oversight"  # not relaxable
PROHIBITED_RULE = "gv.prohibited.social-scoring"

PACK = """\
pack: gv.test
version: "1"
subject: ai_system
profile: law
title: {kk: "Тест", ru: "Тест", en: "Governance test pack"}
source: {kk: "Заң", ru: "Закон", en: "Test law"}
rules:
  - id: gv.risk.high
    citation: {law: "AI law", article: "17", paragraph: "1", legal_id: L-AI-RISK}
    status: text
    title: {kk: "Жоғары", ru: "Высокий", en: "High risk"}
    explanation: {kk: "x", ru: "x", en: "Failure causes an emergency"}
    effective_from: 2026-01-18
    when: 'failure.impact in ["social_emergency", "manmade_emergency", "defence", "security"]'
    effect: {type: risk_level, level: high}
    examples:
      - {name: emergency, facts: {failure: {impact: social_emergency}}, fires: true}
      - {name: shop, facts: {failure: {impact: minimal}}, fires: false}
  - id: gv.risk.medium
    citation: {law: "AI law", article: "17", paragraph: "1", legal_id: L-AI-RISK}
    status: text
    title: {kk: "Орта", ru: "Средний", en: "Medium risk"}
    explanation: {kk: "x", ru: "x", en: "Failure causes damage"}
    effective_from: 2026-01-18
    when: 'failure.impact in ["material_damage", "moral_harm", "reduced_effectiveness"]'
    effect: {type: risk_level, level: medium}
    examples:
      - {name: damage, facts: {failure: {impact: material_damage}}, fires: true}
      - {name: none, facts: {failure: {impact: minimal}}, fires: false}
  - id: gv.autonomy.low
    citation: {law: "AI law", article: "17", paragraph: "2", legal_id: L-AI-AUTONOMY}
    status: text
    title: {kk: "Төмен", ru: "Низкая", en: "Low autonomy"}
    explanation: {kk: "x", ru: "x", en: "A human makes the final choice"}
    effective_from: 2026-01-18
    when: 'oversight.human_final_choice'
    effect: {type: autonomy_level, level: low}
    examples:
      - {name: human, facts: {oversight: {human_final_choice: true}}, fires: true}
      - {name: machine, facts: {oversight: {human_final_choice: false}}, fires: false}
  - id: gv.prohibited.social-scoring
    citation: {law: "AI law", article: "X", legal_id: L-AI-PROHIBITED}
    status: report
    title: {kk: "Әлеуметтік скоринг", ru: "Социальный скоринг", en: "Social scoring"}
    explanation: {kk: "x", ru: "x", en: "Forbidden"}
    effective_from: 2026-01-18
    when: 'functions.social_scoring'
    effect: {type: prohibition, practice: social_scoring}
    examples:
      - {name: scoring, facts: {functions: {social_scoring: true}}, fires: true}
      - {name: not, facts: {functions: {social_scoring: false}}, fires: false}
  - id: gv.obligation.label
    citation: {law: "AI law", article: "21", legal_id: L-AI-LABEL}
    status: report
    title: {kk: "Белгі", ru: "Маркировка", en: "Label synthetic results"}
    explanation: {kk: "x", ru: "x", en: "x"}
    effective_from: 2026-01-18
    when: 'functions.synthetic_content'
    effect: {type: obligation, code: label_synthetic, deadline: {working_days: 10, from: classification}, relaxable: true}
    examples:
      - {name: generator, facts: {functions: {synthetic_content: true}}, fires: true}
      - {name: classifier, facts: {functions: {synthetic_content: false}}, fires: false}
  - id: gv.obligation.oversight
    citation: {law: "AI law", article: "16", legal_id: L-AI-DUTIES}
    status: report
    title: {kk: "Бақылау", ru: "Надзор", en: "Human oversight"}
    explanation: {kk: "x", ru: "x", en: "x"}
    effective_from: 2026-01-18
    when: 'functions.decisions_about_people'
    effect: {type: obligation, code: human_oversight, deadline: {working_days: 20, from: classification}, relaxable: false}
    examples:
      - {name: decides, facts: {functions: {decisions_about_people: true}}, fires: true}
      - {name: not, facts: {functions: {decisions_about_people: false}}, fires: false}
"""


# The real personal-data pack stays in: other modules read their legal deadlines from it (oversight's 3 working
# days for objections, L-PD-AUTO); its rules are about processing, not AI systems, so they don't touch the
# classifications these tests expect.
PD_PACK = Path(__file__).resolve().parents[2] / "qorgau" / "rules" / "packs" / "kz" / "pd-law.yaml"


@pytest.fixture
def gv_rules(tmp_path: Path) -> Iterator[None]:
    """The governance test pack (plus the real PD pack) as the current rule book; the book that was current
    before comes back."""
    folder = tmp_path / "gv-packs"
    folder.mkdir()
    (folder / "gv.yaml").write_text(PACK, encoding="utf-8")
    previous = rules_engine._book
    reload_rulebook([folder, PD_PACK] if PD_PACK.exists() else [folder])
    yield
    if previous is not None:
        rules_engine._set(previous)
    else:
        reload_rulebook()


def answers(**overrides: Any) -> dict[str, Any]:
    """Every fact of the real catalogue answered (a minimal-risk, human-decided system with nothing prohibited),
    then ``overrides`` (flat paths; ``None`` leaves a fact unanswered)."""
    defaults: dict[str, Any] = {
        "system.sector": "finance", "system.state_system": False, "users.vulnerable_groups": ["none"],
        "failure.impact": "minimal", "oversight.human_final_choice": True, "oversight.human_can_correct": True,
        "deployment.data_in_kz": True, "legal.allowed_by_law": [], "training.provenance_documented": True,
        "training.lawful_basis": True, "legal.automated_processing_consent": True,
    }
    out: dict[str, Any] = {}
    for group in rulebook().facts.subjects["ai_system"].groups:
        for fact in group.facts:
            if fact.path in defaults:
                value = defaults[fact.path]
            elif fact.type == "bool":
                value = False
            elif fact.type == "enum":
                value = list(fact.values)[0]
            elif fact.type == "enum_list":
                value = []
            elif fact.type == "int":
                value = 0
            elif fact.type == "date":
                value = "2026-02-02"
            else:
                value = f"answer to {fact.path}"
            out[fact.path] = value
    for path, value in overrides.items():
        path = path.replace("__", ".")
        if value is None:
            out.pop(path, None)
        else:
            out[path] = value
    return out


def register(platform: Platform, org: int, code: str, **facts: Any) -> int:
    """Register a system with :func:`answers` (keyword paths use ``__`` for ``.``); returns its id."""
    with platform.db.transaction(org) as s:
        record = register_for(platform).register_system(s, code=code, name=f"System {code}",
                                                        facts=answers(**facts), actor="user:1")
    return record.id


def high_risk(platform: Platform, org: int, code: str = "grid", **facts: Any) -> int:
    return register(platform, org, code, failure__impact="social_emergency", **facts)


def record_audit(gov: AiGovernance, platform: Platform, org: int, system_id: int, **overrides: Any) -> int:
    fields: dict[str, Any] = dict(auditor="Audit Firm LLP", audited_on=date(2026, 3, 2), covers_training_data=True,
                                  prohibited_functionality_found=False, result="passed",
                                  summary="Training data provenance checked", report_sha256="ab" * 32,
                                  actor="user:1")
    fields.update(overrides)
    with platform.db.transaction(org) as s:
        return gov.record_audit(s, system_id, **fields).id


def principal(platform: Platform, tenant: Any, role: str) -> Principal:
    """The tenant's user of ``role`` as the API would resolve it (a regulator's organization is made the
    authorized body, as the platform's administrator would)."""
    if role == "regulator":
        make_authority(platform, tenant)
    user_id = tenant.users[role][0]
    with platform.db.reader() as s:
        user = auth.get_user(s, user_id)
        return Principal("user", user.id, user.organization_id, frozenset(user.roles))


def obligations(platform: Platform, org: int, system_id: int) -> dict[str, tuple[str, int | None]]:
    """rule id → (status, sandbox id) of a system's obligations, through the register."""
    with platform.db.reader(org) as s:
        return {o.rule_id: (o.status, o.sandbox_id)
                for o in register_for(platform).obligations(s, system_id=system_id)}


__all__ = ["LABEL_RULE", "OVERSIGHT_RULE", "PROHIBITED_RULE", "answers", "governance_for", "gv_rules",
           "high_risk", "obligations", "principal", "record_audit", "register"]
