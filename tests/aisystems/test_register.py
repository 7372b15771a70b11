"""The AI systems register: registration with the questionnaire, classification by the real rule packs with
citations, missing facts, bad input, optimistic concurrency, obligations, oversight integration, tenancy and
the audit trail. Runs on SQLite, and on PostgreSQL when QORGAU_TEST_DATABASE_URL is set (the ``platform``
fixture is parametrized by backend)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from qorgau.aisystems.models import (
    AUTONOMY_LEVELS,
    RISK_CLASSES,
    AiClassification,
    AiObligation,
    AiSystem,
    AiSystemProfile,
)
from qorgau.aisystems.register import AiRegister, register_for
from qorgau.core import audit
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.oversight.service import oversight_for
from qorgau.rules import rulebook

from conftest import Tenant
from oversight.helpers import submission
from aisystems.conftest import chatbot, credit_scoring, emotion_detector, register_system

ANSWERED_IN_FULL = credit_scoring()


def _aisystems_audit(platform: Platform, org: int) -> list[audit.AuditEntry]:
    with platform.db.reader(org) as s:
        return list(s.scalars(select(audit.AuditEntry).where(audit.AuditEntry.action.like("aisystems.%"))
                              .order_by(audit.AuditEntry.id)))


def test_register_with_full_questionnaire_classifies_with_citations(platform: Platform, tenant_a: Tenant,
                                                                     register: AiRegister) -> None:
    record = register_system(platform, tenant_a.org_id, "scoring", credit_scoring(), description="Loan scoring")
    c = record.classification
    assert c is not None and c.persisted and c.seq == 1 and c.trigger == "questionnaire"
    # failure.impact "material_damage" is medium risk; a human makes the final choice: low autonomy (Art. 17)
    assert (c.risk_level, c.autonomy_level) == ("medium", "low")
    assert c.risk_level in RISK_CLASSES and c.autonomy_level in AUTONOMY_LEVELS
    assert not c.prohibited and c.missing_facts == [] and c.undecided == []
    assert [r["rule_id"] for r in c.risk_reasons] == ["ai.risk.medium"]
    assert c.risk_reasons[0]["citation"] == {"law": "AI law", "article": "17", "paragraph": "1",
                                             "legal_id": "L-AI-RISK"}
    assert c.autonomy_reasons[0]["citation"]["legal_id"] == "L-AI-AUTONOMY"
    assert all(set(r["title"]) == {"kk", "ru", "en"} and r["explanation"]["en"] for r in c.obligations)
    codes = {o["effect"]["code"] for o in c.obligations}
    assert {"explain_results", "provide_decision_data"} <= codes  # decisions about people with legal effect
    assert "label_machine_readable" not in codes  # no synthetic content
    book = rulebook()
    assert c.packs_digest == book.digest and {p["id"] for p in c.packs} == {p.id for p in book.packs}
    # the first classification's diff is against nothing
    assert c.diff["risk_level"] == [None, "medium"] and "ai.user.explanation" in c.diff["obligations"]["added"]
    assert record.register_id is not None and record.register_id.startswith("KZ-AI-")
    assert record.profile_version == 1 and record.facts == ANSWERED_IN_FULL and not record.public
    # oversight reads the classified class and autonomy
    assert (record.risk_class, record.autonomy) == ("medium", "low")
    assert record.classified_by == f"rules:{book.digest[:12]}"
    assert {o.code for o in record.obligations} == codes and all(o.status == "open" for o in record.obligations)
    with platform.db.reader(tenant_a.org_id) as s:
        again = register.system(s, record.id)
        summary = register.systems(s)
        assert register.system_by_code(s, "scoring").id == record.id
    assert again.classification is not None and again.classification.id == c.id
    assert json.loads(json.dumps(again.to_dict()))["classification"]["risk_reasons"][0]["rule_id"] == "ai.risk.medium"
    assert [(x.code, x.risk_level, x.open_obligations, x.missing_facts) for x in summary] == \
        [("scoring", "medium", len(codes), 0)]
    actions = [e.action for e in _aisystems_audit(platform, tenant_a.org_id)]
    assert actions == ["aisystems.registered", "aisystems.classified"]


def test_missing_required_facts_are_listed_with_their_questions(platform: Platform, tenant_a: Tenant) -> None:
    partial = {"system": {"sector": "finance", "purpose": "Scores card payments for fraud.", "owner_name": " "},
               "functions": {"decisions_about_people": True}}
    record = register_system(platform, tenant_a.org_id, "antifraud", partial)
    c = record.classification
    assert c is not None and c.risk_level is None and c.autonomy_level is None and not c.decided
    missing = {m["path"]: m for m in c.missing_facts}
    assert {"failure.impact", "oversight.human_final_choice", "system.state_system"} <= set(missing)
    assert "system.owner_name" in missing and "system.owner_name" not in record.facts  # empty: not answered
    impact = missing["failure.impact"]
    assert impact["required"] is True and set(impact["question"]) == {"kk", "ru", "en"}
    assert all(impact["question"][lang] for lang in ("kk", "ru", "en"))
    assert "ai.risk.high" in impact["decides"]  # the rules this answer would decide
    assert {u["rule_id"] for u in c.undecided} >= {"ai.risk.minimal", "ai.autonomy.low"}
    # undecided: the new system keeps minimal/low until the facts are given
    assert (record.risk_class, record.autonomy) == ("minimal", "low")
    # answering the missing facts decides it
    with platform.db.transaction(tenant_a.org_id) as s:
        done = register_for(platform).update_questionnaire(s, record.id, facts=credit_scoring(), actor="user:1",
                                                           expected_version=1)
    assert done.classification is not None and done.classification.decided
    assert done.classification.missing_facts == []
    assert set(done.classification.diff["missing_facts"]["removed"]) >= {"failure.impact"}
    assert done.classification.diff["risk_level"] == [None, "medium"]


@pytest.mark.parametrize(("facts", "field"), [
    ({"system.sector": "finance", "system.colour": "blue"}, "facts.system.colour"),
    ({"nonsense": {"x": True}}, "facts.nonsense.x"),
    ({"functions.emotion_recognition": "yes"}, "facts.functions.emotion_recognition"),
    ({"system.sector": "banking"}, "facts.system.sector"),
    ({"users.vulnerable_groups": ["children", "pets"]}, "facts.users.vulnerable_groups"),
    ({"users.vulnerable_groups": "children"}, "facts.users.vulnerable_groups"),
    ({"audit.date": "last spring"}, "facts.audit.date"),
    ({"system.purpose": 42}, "facts.system.purpose"),
    ({"system.purpose": "Call 87012345678 for details"}, "facts.system.purpose"),
])
def test_bad_facts_name_the_fact_and_store_nothing(platform: Platform, tenant_a: Tenant, register: AiRegister,
                                                   facts: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err, platform.db.transaction(tenant_a.org_id) as s:
        register.register_system(s, code="bad", name="Bad", facts=facts, actor="user:1")
    assert err.value.field == field
    assert "blue" not in err.value.message and "87012345678" not in err.value.message
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.scalar(select(func.count()).select_from(AiSystem)) == 0
        assert s.scalar(select(func.count()).select_from(AiSystemProfile)) == 0
    assert _aisystems_audit(platform, tenant_a.org_id) == []
    # the same bad answer in an update leaves the stored questionnaire as it was
    record = register_system(platform, tenant_a.org_id, "good", credit_scoring())
    with pytest.raises(InvalidInput) as err2, platform.db.transaction(tenant_a.org_id) as s:
        register.update_questionnaire(s, record.id, facts=facts, actor="user:1")
    assert err2.value.field == field
    with platform.db.reader(tenant_a.org_id) as s:
        kept = register.system(s, record.id)
        assert s.scalar(select(func.count()).select_from(AiClassification)) == 1
    assert kept.profile_version == 1 and kept.facts == credit_scoring()


def test_other_bad_input_names_the_field(platform: Platform, tenant_a: Tenant, register: AiRegister) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"code": "Bad Code"}, "code"), ({"name": ""}, "name"), ({"public": "yes"}, "public"),
        ({"actor": ""}, "actor"), ({"webhook_url": "ftp://example.org/hook"}, "webhook_url"),
        ({"description": "mail me at someone@example.org"}, "description"),
    ]
    for override, field in cases:
        kwargs: dict[str, Any] = dict(code="ok", name="OK", facts=credit_scoring(), actor="user:1")
        kwargs.update(override)
        with pytest.raises(InvalidInput) as err, platform.db.transaction(tenant_a.org_id) as s:
            register.register_system(s, **kwargs)
        assert err.value.field == field, override
    record = register_system(platform, tenant_a.org_id, "ok", credit_scoring())
    with pytest.raises(Conflict) as conflict, platform.db.transaction(tenant_a.org_id) as s:
        register.register_system(s, code="ok", name="Again", facts=credit_scoring(), actor="user:1")
    assert conflict.value.field == "code"
    with platform.db.reader(tenant_a.org_id) as s:
        with pytest.raises(InvalidInput) as lang:
            register.questionnaire("de")
        assert lang.value.field == "lang"
        with pytest.raises(InvalidInput) as trig:
            register.classify(s, record.id, trigger="whenever", actor="user:1", persist=False)
        assert trig.value.field == "trigger"
        with pytest.raises(NotFound):
            register.system(s, record.id + 100)
    with pytest.raises(PermissionDenied), platform.db.reader() as s:
        register.systems(s)  # an operator method needs a tenant-bound session


def test_a_preview_before_the_ai_law_claims_no_risk_class_and_keeps_the_stored_one(
        platform: Platform, tenant_a: Tenant, register: AiRegister) -> None:
    from datetime import date

    record = register_system(platform, tenant_a.org_id, "scoring-2025", credit_scoring())
    with platform.db.reader(tenant_a.org_id) as s:
        preview = register.classify(s, record.id, as_of=date(2025, 6, 1), actor="user:1", persist=False)
        assert not preview.persisted and preview.law_in_force is False
        assert preview.risk_level is None and preview.autonomy_level is None and preview.risk_reasons == []
        assert preview.to_dict()["law_in_force"] is False
        now = register.classify(s, record.id, actor="user:1", persist=False)
        assert now.law_in_force is True and now.risk_level == "medium"
    with platform.db.reader(tenant_a.org_id) as s:
        system = s.get(AiSystem, record.id)
        assert system is not None and system.risk_class == "medium"  # the preview changed nothing stored
        assert len(register.history(s, record.id)) == 1


def test_questionnaire_comes_from_the_catalogue_in_each_language(register: AiRegister) -> None:
    catalog = rulebook().facts.subjects["ai_system"]
    for lang in ("kk", "ru", "en"):
        groups = register.questionnaire(lang)
        assert [g.id for g in groups] == [g.id for g in catalog.groups]
        facts = {f.path: f for g in groups for f in g.facts}
        assert facts["failure.impact"].question == catalog.by_path["failure.impact"].question[lang]
        assert facts["failure.impact"].required and "social_emergency" in facts["failure.impact"].values
    assert register.questionnaire("ru")[0].title != register.questionnaire("en")[0].title


def test_update_with_a_stale_version_is_a_conflict_and_changes_nothing(platform: Platform, tenant_a: Tenant,
                                                                       register: AiRegister) -> None:
    record = register_system(platform, tenant_a.org_id, "scoring", credit_scoring())
    with platform.db.transaction(tenant_a.org_id) as s:
        first = register.update_questionnaire(s, record.id, facts={"system.model_versions": "gbm-scoring 2.4"},
                                              expected_version=1, actor="user:2")
    assert first.profile_version == 2 and first.facts["system.model_versions"] == "gbm-scoring 2.4"
    assert first.facts["failure.impact"] == "material_damage"  # answers are merged, not replaced
    with pytest.raises(Conflict) as err, platform.db.transaction(tenant_a.org_id) as s:
        register.update_questionnaire(s, record.id, facts={"failure.impact": "infrastructure"},
                                      expected_version=1, actor="user:3")
    assert err.value.field == "expected_version"
    with platform.db.reader(tenant_a.org_id) as s:
        now = register.system(s, record.id)
        history = register.history(s, record.id)
    assert now.profile_version == 2 and now.facts["failure.impact"] == "material_damage"
    assert [h.seq for h in history] == [2, 1] and now.risk_class == "medium"
    # clearing an answer with None
    with platform.db.transaction(tenant_a.org_id) as s:
        cleared = register.update_questionnaire(s, record.id, facts={"system.model_versions": None},
                                                expected_version=2, actor="user:2")
    assert "system.model_versions" not in cleared.facts and cleared.profile_version == 3


def test_a_prohibited_system_is_suspended_and_oversight_refuses_its_decisions(platform: Platform,
                                                                               tenant_a: Tenant,
                                                                               register: AiRegister) -> None:
    record = register_system(platform, tenant_a.org_id, "emotions", emotion_detector())
    c = record.classification
    assert c is not None and c.prohibited
    assert [p["rule_id"] for p in c.prohibitions] == ["ai.prohibited.emotion-recognition"]
    assert c.prohibitions[0]["citation"]["legal_id"] == "L-AI-PROHIBITED"
    assert c.prohibitions[0]["effect"] == {"type": "prohibition", "practice": "emotion_recognition"}
    assert record.status == "suspended"
    service = oversight_for(platform)
    with pytest.raises(InvalidInput) as err, platform.db.transaction(tenant_a.org_id) as s:
        service.submit(s, submission("k-1", system="emotions"), actor="apikey:1")
    assert err.value.field == "system" and "suspended" in err.value.message
    with platform.db.reader(tenant_a.org_id) as s:
        assert register.systems(s, prohibited=True)[0].code == "emotions"
        assert register.systems(s, prohibited=False) == []
    # the callers now consent: no longer prohibited, and the system the rules suspended is active again
    with platform.db.transaction(tenant_a.org_id) as s:
        fixed = register.update_questionnaire(s, record.id, facts={"legal.emotion_recognition_consent": True},
                                              actor="user:1")
    assert fixed.classification is not None and not fixed.classification.prohibited
    assert fixed.classification.diff["prohibitions"] == {"added": [], "removed": ["ai.prohibited.emotion-recognition"]}
    assert fixed.status == "active"
    # a system someone suspended by hand is not re-activated by a classification
    with platform.db.transaction(tenant_a.org_id) as s:
        oversight_for(platform).update_system(s, "emotions", actor="user:1", status="suspended")
    with platform.db.transaction(tenant_a.org_id) as s:
        again = register.classify(s, record.id, actor="user:1")
    assert again.seq == 3
    with platform.db.reader(tenant_a.org_id) as s:
        assert register.system(s, record.id).status == "suspended"


def test_a_system_declared_through_oversight_gets_its_questionnaire(platform: Platform, tenant_a: Tenant,
                                                                     register: AiRegister) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        oversight_for(platform).register_system(s, code="legacy", name="Legacy", risk_class="high",
                                                autonomy="medium", actor="user:1")
    with platform.db.reader(tenant_a.org_id) as s:
        before = register.system_by_code(s, "legacy")
    assert before.classification is None and before.register_id is None and before.classified_by == "declared"
    record = register_system(platform, tenant_a.org_id, "legacy", credit_scoring())
    assert record.id == before.id and record.register_id is not None
    assert (record.risk_class, record.autonomy) == ("medium", "low") and record.classified_by.startswith("rules:")
    with pytest.raises(Conflict), platform.db.transaction(tenant_a.org_id) as s:
        register.register_system(s, code="legacy", name="Again", facts=credit_scoring(), actor="user:1")


def test_undecided_facts_never_lower_a_class_already_decided(platform: Platform, tenant_a: Tenant,
                                                             register: AiRegister) -> None:
    record = register_system(platform, tenant_a.org_id, "grid", credit_scoring(**{"failure.impact": "infrastructure"}))
    assert record.risk_class == "high"
    with platform.db.transaction(tenant_a.org_id) as s:
        cleared = register.update_questionnaire(s, record.id, facts={"failure.impact": None}, actor="user:1")
    assert cleared.classification is not None and cleared.classification.risk_level is None
    assert cleared.risk_class == "high"  # what oversight reads stays high while the answer is missing


def test_mark_an_obligation_met(platform: Platform, tenant_a: Tenant, register: AiRegister) -> None:
    record = register_system(platform, tenant_a.org_id, "bot", chatbot())
    by_code = {o.code: o for o in record.obligations}
    assert {"inform_ai_use", "label_machine_readable", "label_visible_warning", "user_agreement"} <= set(by_code)
    label = by_code["label_machine_readable"]
    assert label.citation["legal_id"] == "L-AI-LABEL" and label.title["en"] and label.status == "open"
    with platform.db.transaction(tenant_a.org_id) as s:
        met = register.mark_obligation_met(s, label.id, evidence="C2PA manifest spec DOC-2026-114", actor="user:5")
    assert met.status == "met" and met.met_by == "user:5" and met.evidence == "C2PA manifest spec DOC-2026-114"
    with pytest.raises(Conflict), platform.db.transaction(tenant_a.org_id) as s:
        register.mark_obligation_met(s, label.id, evidence="again", actor="user:5")
    with pytest.raises(InvalidInput) as err, platform.db.transaction(tenant_a.org_id) as s:
        register.mark_obligation_met(s, by_code["inform_ai_use"].id, evidence="  ", actor="user:5")
    assert err.value.field == "evidence"
    with platform.db.reader(tenant_a.org_id) as s:
        assert [o.code for o in register.obligations(s, status="met")] == ["label_machine_readable"]
        assert label.id not in {o.id for o in register.obligations(s, system_id=record.id, status="open")}
        with pytest.raises(InvalidInput):
            register.obligations(s, status="done")
    entry = [e for e in _aisystems_audit(platform, tenant_a.org_id) if e.action == "aisystems.obligation_met"][0]
    assert entry.details["code"] == "label_machine_readable" and "C2PA" not in json.dumps(entry.details)


def test_other_organizations_cannot_see_or_classify_a_system(platform: Platform, tenant_a: Tenant,
                                                             tenant_b: Tenant, register: AiRegister) -> None:
    record = register_system(platform, tenant_a.org_id, "scoring", credit_scoring())
    obligation = record.obligations[0]
    with platform.db.transaction(tenant_b.org_id) as s:
        assert register.systems(s) == [] and register.obligations(s) == []
        for call in (lambda: register.system(s, record.id),
                     lambda: register.classify(s, record.id, actor="user:9"),
                     lambda: register.classify(s, record.id, actor="user:9", persist=False),
                     lambda: register.history(s, record.id),
                     lambda: register.update_questionnaire(s, record.id, facts={}, actor="user:9"),
                     lambda: register.obligations(s, system_id=record.id),
                     lambda: register.mark_obligation_met(s, obligation.id, evidence="x", actor="user:9"),
                     lambda: register.system_by_code(s, "scoring")):
            with pytest.raises(NotFound):
                call()
    # the same code is free in the other organization
    other = register_system(platform, tenant_b.org_id, "scoring", chatbot())
    assert other.id != record.id and other.register_id != record.register_id
    with platform.db.reader(tenant_a.org_id) as s:
        assert [x.code for x in register.systems(s)] == ["scoring"]
        assert register.system(s, record.id).classification.risk_level == "medium"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(AiObligation)) == len(record.obligations)


def test_audit_entries_carry_ids_codes_and_levels_never_free_text(platform: Platform, tenant_a: Tenant,
                                                                  register: AiRegister) -> None:
    secret_words = ["Scores retail loan", "Alpha Bank JSC", "gbm-scoring", "Very private description",
                    "Top secret name", "INTERNAL-EVIDENCE-REF"]
    with platform.db.transaction(tenant_a.org_id) as s:
        record = register.register_system(s, code="scoring", name="Top secret name",
                                          description="Very private description", facts=credit_scoring(),
                                          actor="user:1")
    with platform.db.transaction(tenant_a.org_id) as s:
        register.update_questionnaire(s, record.id, facts={"system.purpose": "Scores retail loans v2"},
                                      actor="user:1")
        register.classify(s, record.id, actor="user:1")
        register.mark_obligation_met(s, record.obligations[0].id, evidence="INTERNAL-EVIDENCE-REF", actor="user:1")
    entries = _aisystems_audit(platform, tenant_a.org_id)
    assert {e.action for e in entries} == {"aisystems.registered", "aisystems.questionnaire_updated",
                                           "aisystems.classified", "aisystems.obligation_met"}
    for entry in entries:
        text = json.dumps(entry.details, ensure_ascii=False)
        assert not any(word in text for word in secret_words), entry.action
    updated = [e for e in entries if e.action == "aisystems.questionnaire_updated"][0]
    assert updated.details["facts_changed"] == ["system.purpose"]  # the path, not the answer
    classified = [e for e in entries if e.action == "aisystems.classified"]
    assert [e.details["trigger"] for e in classified] == ["questionnaire", "questionnaire", "manual"]
    assert classified[0].details["risk_level"] == "medium"
    assert "Top secret name" not in repr(record) and "Scores" not in repr(record)


def test_the_demo_registers_classified_systems(platform: Platform, register: AiRegister) -> None:
    from qorgau.aisystems.demo import DEMO_SYSTEMS, seed_aisystems_demo
    from qorgau.core.demo import DEMO_BIN, seed_demo

    assert seed_demo(platform) is not None  # consent, oversight and this module's demo
    assert not seed_aisystems_demo(platform)  # once only
    with platform.db.reader() as s:
        org = auth_org(s, DEMO_BIN)
    with platform.db.reader(org) as s:
        listed = {x.code: x for x in register.systems(s)}
    assert set(listed) == {code for code, *_ in DEMO_SYSTEMS}
    assert listed["demo-callcentre-emotions"].prohibited and listed["demo-callcentre-emotions"].status == "suspended"
    assert listed["demo-scoring"].classified_by.startswith("rules:") and listed["demo-scoring"].risk_level == "medium"
    assert listed["demo-antifraud"].risk_level is None and listed["demo-antifraud"].missing_facts > 0
    assert listed["demo-chatbot"].public and listed["demo-egov-routing"].public
    with platform.db.reader() as s:
        public = {i.name for i in register.public_register(s, operator_bin=DEMO_BIN).items}
    assert public == {"DEMO — customer-service chatbot", "DEMO — e-government application routing"}


def auth_org(session: Any, bin_: str) -> int:
    from qorgau.core import auth

    org = auth.find_organization_by_bin(session, bin_)
    assert org is not None
    return org.id
