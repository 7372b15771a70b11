"""Re-classification: previews under the law as of another date, obligations reconciled across
classifications (kept / void / new; due dates in working days), sandbox relaxations, and re-classification
when the rule packs change (at server start and on demand)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qorgau.aisystems.models import AiClassification, RulePackVersion
from qorgau.aisystems.register import AiRegister, register_for
from qorgau.core import audit
from qorgau.core.calendar import add_working_days, local_date
from qorgau.core.db import utcnow
from qorgau.core.platform import Platform
from qorgau.rules import reload_rulebook, rulebook

from conftest import LiveServer, Tenant, make_authority
from aisystems.conftest import chatbot, credit_scoring, emotion_detector, register_system

# An operator's own pack (as `rules_extra_dirs` would add): people talking to the system must be told within
# 5 working days of the classification. Written into a copy of the real packs to change "the law".
EXTRA_PACK = """\
pack: test.extra
version: "1"
subject: ai_system
title: {kk: "Сынақ", ru: "Тест", en: "Test pack"}
source: {kk: "Сынақ", ru: "Тест", en: "Test source"}
rules:
  - id: test.extra.disclose-bot
    citation: {law: "AI law", article: "16", legal_id: L-AI-USER}
    status: plan
    title: {kk: "Ботты ашу", ru: "Раскрыть бота", en: "Disclose the bot"}
    explanation: {kk: "Түсіндірме", ru: "Объяснение", en: "Tell people they talk to a bot."}
    effective_from: 2026-01-18
    when: 'functions.interacts_with_people'
    effect: {type: obligation, code: disclose_bot, deadline: {working_days: 5, from: classification}}
    examples:
      - {name: "bot", facts: {functions: {interacts_with_people: true}}, fires: true}
      - {name: "batch", facts: {functions: {interacts_with_people: false}}, fires: false}
"""


def _count(platform: Platform, model: type) -> int:
    with platform.db.reader() as s:
        return s.scalar(select(func.count()).select_from(model).execution_options(qorgau_cross_tenant=True)) or 0


def test_preview_under_2025_and_2026_law_differs_and_is_not_stored(platform: Platform, tenant_a: Tenant,
                                                                    register: AiRegister) -> None:
    facts = emotion_detector(**{"deployment.data_in_kz": False})
    record = register_system(platform, tenant_a.org_id, "emotions", facts)
    assert record.classification is not None and record.classification.prohibited
    with platform.db.reader() as s:
        entries_before = audit.count_entries(s)
    with platform.db.reader(tenant_a.org_id) as s:  # a read-only session: a preview writes nothing
        old = register.classify(s, record.id, as_of=date(2025, 12, 1), actor="user:1", persist=False)
        new = register.classify(s, record.id, as_of=date(2026, 2, 1), actor="user:1", persist=False)
    assert old.id is None and old.seq is None and not old.persisted and old.as_of == date(2025, 12, 1)
    # before 18 Jan 2026 the AI law was not in force: no prohibition, no AI-law duty — the PD law's were
    assert not old.prohibited and old.prohibitions == [] and old.risk_reasons == []
    assert [o["rule_id"] for o in old.obligations] == ["ai.pd.localization"]
    assert new.prohibited and [p["rule_id"] for p in new.prohibitions] == ["ai.prohibited.emotion-recognition"]
    assert {o["rule_id"] for o in new.obligations} > {"ai.pd.localization", "ai.label.inform-ai-use"}
    # the preview's diff is against the stored classification
    assert old.diff["prohibitions"]["removed"] == ["ai.prohibited.emotion-recognition"]
    assert new.diff == {}
    with platform.db.reader(tenant_a.org_id) as s:
        assert len(register.history(s, record.id)) == 1
        assert register.system(s, record.id).status == "suspended"
        assert audit.count_entries(s) == entries_before


def test_obligations_are_kept_voided_and_reopened_across_classifications(platform: Platform, tenant_a: Tenant,
                                                                         register: AiRegister) -> None:
    record = register_system(platform, tenant_a.org_id, "bot", chatbot())
    first = {o.code: o for o in record.obligations}
    assert {"inform_ai_use", "label_machine_readable", "label_visible_warning"} <= set(first)
    with platform.db.transaction(tenant_a.org_id) as s:
        register.mark_obligation_met(s, first["label_visible_warning"].id, evidence="UI spec 7.2", actor="user:1")
    # the bot stops producing synthetic content: the labelling duties no longer apply
    with platform.db.transaction(tenant_a.org_id) as s:
        second = register.update_questionnaire(s, record.id, facts={"functions.synthetic_content": False},
                                               expected_version=1, actor="user:1")
    now = {o.code: o for o in second.obligations}
    assert now["label_machine_readable"].status == "void"
    assert now["label_visible_warning"].status == "met"  # met stays met: its evidence is history
    assert now["inform_ai_use"].status == "open" and now["inform_ai_use"].id == first["inform_ai_use"].id
    assert now["inform_ai_use"].classification_id == first["inform_ai_use"].classification_id  # kept as it was
    assert second.classification is not None
    assert second.classification.diff["obligations"] == {
        "added": [], "removed": ["ai.label.machine-readable", "ai.label.visible-warning"]}
    with platform.db.reader(tenant_a.org_id) as s:
        assert "label_machine_readable" not in {o.code for o in register.obligations(s, status="open")}
    # and back: the void duty is re-opened (same row), the met one stays met
    with platform.db.transaction(tenant_a.org_id) as s:
        third = register.update_questionnaire(s, record.id, facts={"functions.synthetic_content": True},
                                              expected_version=2, actor="user:1")
    again = {o.code: o for o in third.obligations}
    assert again["label_machine_readable"].status == "open"
    assert again["label_machine_readable"].id == first["label_machine_readable"].id
    assert third.classification is not None
    assert again["label_machine_readable"].classification_id == third.classification.id
    assert again["label_visible_warning"].status == "met"
    assert [h.seq for h in register_history(platform, tenant_a.org_id, record.id)] == [3, 2, 1]


def register_history(platform: Platform, org: int, system_id: int) -> list:
    with platform.db.reader(org) as s:
        return register_for(platform).history(s, system_id)


def test_a_sandbox_relaxes_a_relaxable_obligation(platform: Platform, tenant_a: Tenant, tenant_b: Tenant,
                                                  register: AiRegister) -> None:
    from qorgau.aisystems.governance import governance_for

    record = register_system(platform, tenant_a.org_id, "grid", credit_scoring(**{"failure.impact": "infrastructure"}))
    assert record.risk_class == "high"
    audit_duty = {o.code: o for o in record.obligations}["audit_training_data"]
    assert audit_duty.status == "open"
    governance = governance_for(platform)
    with platform.db.transaction(tenant_a.org_id) as s:
        application = governance.apply_sandbox(
            s, title="Grid pilot", description="Testing the grid model before its audit", system_ids=[record.id],
            requested_relaxations=["ai.high.audit"], actor=f"user:{tenant_a.users['dpo'][0]}")
    make_authority(platform, tenant_b)  # the regulator's organization is the authorized body
    with platform.db.transaction() as s:
        governance.decide_sandbox(s, application.id, approve=True, ends_on=local_date(utcnow()) + timedelta(days=90),
                                  actor=f"user:{tenant_b.users['regulator'][0]}")
    with platform.db.reader(tenant_a.org_id) as s:
        relaxed = {o.code: o for o in register.system(s, record.id).obligations}
        current = register.system(s, record.id).classification
    assert relaxed["audit_training_data"].status == "relaxed"
    assert relaxed["audit_training_data"].sandbox_id == application.id
    assert relaxed["risk_management"].status == "open"  # not relaxable
    assert current is not None
    item = [o for o in current.obligations if o["rule_id"] == "ai.high.audit"][0]
    assert item["obligation_status"] == "relaxed" and item["sandbox_id"] == application.id


def test_changed_packs_reclassify_every_system_once(platform: Platform, tenant_a: Tenant, tenant_b: Tenant,
                                                    register: AiRegister, packs_copy: Path) -> None:
    reload_rulebook()  # registered under the real packs
    bot = register_system(platform, tenant_a.org_id, "bot", chatbot())
    scoring = register_system(platform, tenant_b.org_id, "scoring", credit_scoring())
    first = register.reclassify_if_packs_changed(platform)
    assert first.reclassified == 0  # classified under these very packs already
    assert {v["id"] for v in first.new_versions} == {p.id for p in rulebook().packs}
    unchanged = register.reclassify_if_packs_changed(platform)
    assert not unchanged.changed and unchanged.reclassified == 0 and unchanged.new_versions == []
    classifications = _count(platform, AiClassification)
    # "the law" changes: the operator's own pack is added
    (packs_copy / "extra.yaml").write_text(EXTRA_PACK, encoding="utf-8")
    book = reload_rulebook([packs_copy])
    report = register.reclassify_if_packs_changed(platform)
    assert report.changed and report.reclassified == 2 and report.errors == 0 and report.changed_systems == 1
    assert report.packs_digest == book.digest
    assert [v["id"] for v in report.new_versions] == ["test.extra"]
    diffs = {item["code"]: item["diff"] for item in report.systems}
    assert diffs == {"bot": {"obligations": {"added": ["test.extra.disclose-bot"], "removed": []}}, "scoring": {}}
    assert _count(platform, AiClassification) == classifications + 2
    with platform.db.reader(tenant_a.org_id) as s:
        current = register.system(s, bot.id)
    assert current.classification is not None and current.classification.trigger == "pack_change"
    assert current.classification.created_by == "system:rules" and current.classification.packs_digest == book.digest
    assert current.classified_by == f"rules:{book.digest[:12]}"
    disclose = {o.code: o for o in current.obligations}["disclose_bot"]
    # due in 5 working days (Kazakhstan's calendar) from the classification's date
    assert disclose.due_on == add_working_days(current.classification.as_of, 5)
    assert disclose.due_on > current.classification.as_of
    with platform.db.reader(tenant_b.org_id) as s:
        other = register.system(s, scoring.id)
    assert other.classification is not None and other.classification.diff == {}
    assert "disclose_bot" not in {o.code for o in other.obligations}
    with platform.db.reader() as s:
        seen = set(s.execute(select(RulePackVersion.pack_id, RulePackVersion.digest)).all())
    assert {(p.id, p.digest) for p in book.packs} <= seen
    # nothing changed since: nothing re-runs
    again = register.reclassify_if_packs_changed(platform)
    assert not again.changed and again.reclassified == 0
    assert _count(platform, AiClassification) == classifications + 2
    # back to the real packs (the extra pack removed): its duty is void again
    reload_rulebook()
    with platform.db.transaction() as s:  # the same on one unscoped session
        back = register.reclassify_if_packs_changed(s)
    assert back.reclassified == 2 and back.new_versions == []
    with platform.db.reader(tenant_a.org_id) as s:
        assert {o.code: o.status for o in register.system(s, bot.id).obligations}["disclose_bot"] == "void"


def test_the_server_reclassifies_at_startup_after_a_pack_change(platform: Platform, tenant_a: Tenant,
                                                                register: AiRegister, packs_copy: Path) -> None:
    reload_rulebook()
    bot = register_system(platform, tenant_a.org_id, "bot", chatbot())
    (packs_copy / "extra.yaml").write_text(EXTRA_PACK, encoding="utf-8")
    reload_rulebook([packs_copy])
    with LiveServer(platform) as server, server.client() as client:
        assert client.get("/health").status_code == 200
    with platform.db.reader(tenant_a.org_id) as s:
        current = register.system(s, bot.id)
    assert current.classification is not None and current.classification.trigger == "pack_change"
    assert "disclose_bot" in {o.code for o in current.obligations}


def test_a_broken_pack_keeps_the_current_book_and_classifications(platform: Platform, tenant_a: Tenant,
                                                                   register: AiRegister, packs_copy: Path) -> None:
    from qorgau.rules import RulePackError

    reload_rulebook()
    bot = register_system(platform, tenant_a.org_id, "bot", chatbot())
    digest = rulebook().digest
    (packs_copy / "extra.yaml").write_text(EXTRA_PACK.replace("functions.interacts_with_people'",
                                                              "functions.no_such_fact'", 1), encoding="utf-8")
    with pytest.raises(RulePackError):
        reload_rulebook([packs_copy])
    assert rulebook().digest == digest
    report = register.reclassify_if_packs_changed(platform)
    assert report.reclassified == 0
    with platform.db.reader(tenant_a.org_id) as s:
        assert len(register.history(s, bot.id)) == 1
