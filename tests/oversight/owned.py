"""Oversight objects owned by one tenant, made through the service API (for the route walk's OWNED_BY and for
tests that need "another organization's" AI system, decision type, decision or objection)."""

from __future__ import annotations

from typing import Any

from qorgau.consent.decision import SubjectRef
from qorgau.consent.service import consent_for
from qorgau.core import auth
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number

_KEY = "_oversight_test_objects"


def subject_iin(serial: int) -> str:
    """A checksum-valid synthetic IIN (born 1985-05-05, female) for oversight test subjects."""
    return synthetic_kz_number("8505054", serial)


def oversight_objects(platform: Platform, tenant: Any) -> dict[str, Any]:
    """An AI system, a decision type of the tenant's own, a decision (about a subject under a legal basis,
    approved by the tenant's reviewer) and an objection to it — created once per tenant and platform."""
    from qorgau.oversight.service import Factor, Submission, oversight_for

    cache = platform.__dict__.setdefault(_KEY, {})
    if tenant.org_id in cache:
        return cache[tenant.org_id]
    service = oversight_for(platform)
    code = f"scoring-{tenant.org_id}"
    type_code = f"own_type_{tenant.org_id}"
    with platform.db.transaction(tenant.org_id) as s:
        consent_for(platform).add_legal_basis(s, kind="contract", purpose="credit.scoring",
                                              reference="Loan agreement terms, art. 7", actor="test")
        service.register_system(s, code=code, name=f"Scoring of {tenant.org_id}", risk_class="high",
                                autonomy="medium", webhook_url="http://127.0.0.1:9/unreachable", actor="test")
        service.set_decision_type(
            s, type_code, actor="test", names={"kk": "Өз шешім түрі", "ru": "Собственный тип", "en": "Own type"},
            outcome_schema={"type": "enum", "values": ["yes", "no"]}, legal_effect=True, purpose="credit.scoring")
    with platform.db.transaction(tenant.org_id) as s:
        decision = service.submit(s, Submission(
            system=code, idempotency_key="owned-1",
            subject=SubjectRef(identifier_type="KZ_IIN", identifier=subject_iin(tenant.org_id)),
            decision_type="loan", proposed_outcome="approve", factors=[Factor("income", 0.7, "Income")],
            model_version="m-1", confidence=0.9), actor="test").decision
    with platform.db.transaction(tenant.org_id) as s:
        reviewer = auth.get_user(s, tenant.users["reviewer"][0])
        service.review(s, decision.id, user=reviewer, action="approve", expected_version=decision.version,
                       rationale="income confirmed")
        objection = service.object(s, decision.id, channel="written", filed_by="test")
    objects = {"system_code": code, "type_code": type_code, "decision_id": decision.id,
               "objection_id": objection.id}
    cache[tenant.org_id] = objects
    return objects
