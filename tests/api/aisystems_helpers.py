"""The AI systems register in tests (issue 7): questionnaire answers, and register objects owned by one tenant made
through the services (for the route walk's OWNED_BY and for tests that need "another organization's" objects)."""

from __future__ import annotations

from datetime import date
from typing import Any

from qorgau.core.platform import Platform
from qorgau.rules import rulebook

# L-AI-RISK: a failure that harms the economy makes a system high-risk; "material damage" is medium.
HIGH_RISK = {"failure.impact": "economy"}
MEDIUM_RISK = {"failure.impact": "material_damage"}
# L-AI-PROHIBITED: emotion recognition without the person's consent or a law allowing it (from 2026-01-18).
EMOTION_RECOGNITION = {"functions.emotion_recognition": True, "legal.emotion_recognition_consent": False}
# A fact the catalogue does not mark public: never in the public register.
PRIVATE_MODEL = "internal-model-rev-7f3c"
RELAXABLE_RULE = "ai.high.audit"  # an obligation rule marked relaxable: true (the sandbox may relax it)
_KEY = "_aisystems_test_objects"


def answers(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A complete questionnaire (flat fact paths) for a credit-scoring system whose final choice a person makes:
    every required fact answered (booleans false, first enum values), then ``changes``."""
    facts: dict[str, Any] = {}
    for group in rulebook().facts.subjects["ai_system"].groups:
        for fact in group.facts:
            if fact.type == "bool":
                facts[fact.path] = False
            elif fact.type == "enum":
                facts[fact.path] = list(fact.values)[0]
            elif fact.type == "enum_list":
                facts[fact.path] = []
            elif fact.type == "string" and fact.required:
                facts[fact.path] = "Scoring of loan applications"
    facts.update({
        "system.sector": "finance", "system.purpose": "Credit scoring of loan applications",
        "system.owner_name": "Bank's retail lending department", "system.model_versions": PRIVATE_MODEL,
        "users.affected": "1k-100k", "inputs.personal_data": True, "functions.decisions_about_people": True,
        "functions.legal_effect": True, "deployment.data_in_kz": True, "oversight.human_final_choice": True,
        "oversight.human_can_correct": True, "training.lawful_basis": True, "training.provenance_documented": True,
        **MEDIUM_RISK,
    })
    facts.update(changes or {})
    return facts


def aisystems_objects(platform: Platform, tenant: Any) -> dict[str, Any]:
    """A private high-risk system with obligations, a passed audit, a trusted-list request and a sandbox
    application — created once per tenant and platform."""
    from qorgau.aisystems.governance import governance_for
    from qorgau.aisystems.register import register_for

    cache = platform.__dict__.setdefault(_KEY, {})
    if tenant.org_id in cache:
        return cache[tenant.org_id]
    governance = governance_for(platform)
    with platform.db.transaction(tenant.org_id) as s:
        record = register_for(platform).register_system(
            s, code=f"register-{tenant.org_id}", name=f"Register system of {tenant.org_id}",
            facts=answers(HIGH_RISK), public=False, actor="test")
        audit = governance.record_audit(s, record.id, auditor="Audit Partners LLP", audited_on=date(2026, 2, 2),
                                        covers_training_data=True, prohibited_functionality_found=False,
                                        result="passed", actor="test")
        trusted = governance.request_trusted(s, record.id, sector="finance", audit_id=audit.id, actor="test")
        sandbox = governance.apply_sandbox(s, title="Pilot", description="Testing a new scoring model",
                                           system_ids=[record.id], requested_relaxations=[RELAXABLE_RULE],
                                           actor="test")
    assert record.obligations, "a high-risk system has obligations"
    objects = {"system_id": record.id, "obligation_id": record.obligations[0].id, "audit_id": audit.id,
               "trusted_id": trusted.id, "application_id": sandbox.id, "register_id": record.register_id}
    cache[tenant.org_id] = objects
    return objects
