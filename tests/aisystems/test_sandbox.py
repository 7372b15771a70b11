"""The regulatory sandbox (L-AI-SANDBOX [plan]): an operator applies to relax relaxable obligations of some of its
systems, the regulator of another organization approves for at most 24 months, and while it runs the register
marks those obligations ``relaxed``; a withdrawal, closure or expiry re-opens them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from qorgau.aisystems.governance import add_months, governance_for
from qorgau.core.audit import AuditEntry
from qorgau.core.calendar import local_date
from qorgau.core.db import utcnow
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform

from .governance_helpers import (  # noqa: F401
    LABEL_RULE,
    OVERSIGHT_RULE,
    gv_rules,
    obligations,
    principal,
    register,
)

pytestmark = pytest.mark.usefixtures("gv_rules")


def _generator(platform: Platform, org: int, code: str = "generator") -> int:
    """A system with a relaxable obligation (labelling) and a non-relaxable one (human oversight)."""
    return register(platform, org, code, functions__synthetic_content=True, functions__decisions_about_people=True)


def _apply(platform: Platform, org: int, system_ids: list[int], relax: list[str] | None = None) -> int:
    with platform.db.transaction(org) as s:
        return governance_for(platform).apply_sandbox(
            s, title="Synthetic voices pilot", description="Testing labelled voices with 100 volunteers",
            system_ids=system_ids, requested_relaxations=relax or [LABEL_RULE], actor="user:1").id


def _today() -> date:
    return local_date(utcnow())


def test_an_approved_sandbox_relaxes_the_granted_obligation_until_it_is_withdrawn(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system = _generator(platform, tenant_a.org_id)
    assert obligations(platform, tenant_a.org_id, system) == {LABEL_RULE: ("open", None),
                                                              OVERSIGHT_RULE: ("open", None)}
    app_id = _apply(platform, tenant_a.org_id, [system])
    assert obligations(platform, tenant_a.org_id, system)[LABEL_RULE] == ("open", None)  # not decided yet

    regulator = principal(platform, tenant_b, "regulator")
    with platform.db.transaction() as s:
        view = gov.decide_sandbox(s, app_id, approve=True, ends_on=_today() + timedelta(days=180),
                                  conditions="monthly report to the regulator", actor=regulator)
    assert view.status == "approved" and view.active and view.granted_relaxations == [LABEL_RULE]
    assert view.starts_on == _today()
    # The register re-classified the member: the labelling duty is relaxed, human oversight is not.
    assert obligations(platform, tenant_a.org_id, system) == {LABEL_RULE: ("relaxed", app_id),
                                                              OVERSIGHT_RULE: ("open", None)}
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.active_relaxations(s, system, _today()) == {LABEL_RULE: app_id}
        assert gov.active_relaxations(s, system, _today() + timedelta(days=181)) == {}   # expired by then
        assert gov.active_relaxations(s, system, _today() - timedelta(days=1)) == {}     # not started yet

    with platform.db.transaction(tenant_a.org_id) as s:
        assert gov.withdraw_sandbox(s, app_id, actor="user:1").status == "withdrawn"
    assert obligations(platform, tenant_a.org_id, system)[LABEL_RULE] == ("open", None)
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.active_relaxations(s, system, _today()) == {}

    with platform.db.reader() as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.object_type == "ai_sandbox")
                                               .order_by(AuditEntry.id))]
        approved = s.scalar(select(AuditEntry).where(AuditEntry.action == "aisystems.sandbox_approved"))
    assert actions == ["aisystems.sandbox_applied", "aisystems.sandbox_approved", "aisystems.sandbox_withdrawn"]
    assert approved.organization_id == tenant_a.org_id and approved.details["granted"] == [LABEL_RULE]
    assert "monthly report" not in str(approved.details)


def test_only_relaxable_obligation_rules_can_be_requested(platform, tenant_a):
    system = _generator(platform, tenant_a.org_id)
    for relax, field in (([OVERSIGHT_RULE], "requested_relaxations.0"),          # relaxable: false
                         ([LABEL_RULE, "gv.risk.high"], "requested_relaxations.1"),  # not an obligation
                         (["no.such.rule"], "requested_relaxations.0"),
                         ([], "requested_relaxations")):
        with pytest.raises(InvalidInput) as err:
            with platform.db.transaction(tenant_a.org_id) as s:
                governance_for(platform).apply_sandbox(s, title="t", description="d", system_ids=[system],
                                                       requested_relaxations=relax, actor="user:1")
        assert err.value.field == field
    with pytest.raises(InvalidInput) as err:
        _apply(platform, tenant_a.org_id, [])
    assert err.value.field == "system_ids"
    with platform.db.reader(tenant_a.org_id) as s:
        assert governance_for(platform).sandboxes(s) == []


def test_approval_needs_an_end_date_at_most_24_months_after_the_start(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    app_id = _apply(platform, tenant_a.org_id, [_generator(platform, tenant_a.org_id)])
    regulator = principal(platform, tenant_b, "regulator")
    start = _today()
    for kwargs, field in (({}, "ends_on"),
                          ({"starts_on": start, "ends_on": add_months(start, 24) + timedelta(days=1)}, "ends_on"),
                          ({"starts_on": start, "ends_on": start - timedelta(days=1)}, "ends_on"),
                          ({"ends_on": start + timedelta(days=30), "granted_relaxations": [OVERSIGHT_RULE]},
                           "granted_relaxations.0")):
        with platform.db.transaction() as s:
            with pytest.raises(InvalidInput) as err:
                gov.decide_sandbox(s, app_id, approve=True, actor=regulator, **kwargs)
            assert err.value.field == field, kwargs
    with platform.db.transaction() as s:
        view = gov.decide_sandbox(s, app_id, approve=True, starts_on=start, ends_on=add_months(start, 24),
                                  actor=regulator)
    assert view.ends_on == add_months(start, 24)
    with platform.db.transaction() as s:
        with pytest.raises(Conflict):
            gov.decide_sandbox(s, app_id, approve=False, reason="again", actor=regulator)


def test_a_rejection_needs_a_reason_and_relaxes_nothing(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system = _generator(platform, tenant_a.org_id)
    app_id = _apply(platform, tenant_a.org_id, [system])
    regulator = principal(platform, tenant_b, "regulator")
    with platform.db.transaction() as s:
        with pytest.raises(InvalidInput) as err:
            gov.decide_sandbox(s, app_id, approve=False, actor=regulator)
        assert err.value.field == "reason"
    with platform.db.transaction() as s:
        assert gov.decide_sandbox(s, app_id, approve=False, reason="no safeguards described",
                                  actor=regulator).status == "rejected"
    assert obligations(platform, tenant_a.org_id, system)[LABEL_RULE] == ("open", None)
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.active_relaxations(s, system, _today()) == {}


def test_an_expired_sandbox_stops_relaxing_and_the_sweep_closes_it(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system = _generator(platform, tenant_a.org_id)
    app_id = _apply(platform, tenant_a.org_id, [system])
    ends = _today() + timedelta(days=10)
    with platform.db.transaction() as s:
        gov.decide_sandbox(s, app_id, approve=True, ends_on=ends, actor=principal(platform, tenant_b, "regulator"))
    assert obligations(platform, tenant_a.org_id, system)[LABEL_RULE] == ("relaxed", app_id)
    with platform.db.transaction() as s:  # nothing to do while it runs
        assert gov.sweep_sandboxes(s) == {"closed": 0, "reclassified": 0}
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.active_relaxations(s, system, ends) == {LABEL_RULE: app_id}
        assert gov.active_relaxations(s, system, ends + timedelta(days=1)) == {}
    with platform.db.transaction() as s:  # the day after the end
        assert gov.sweep_sandboxes(s, on=ends + timedelta(days=1)) == {"closed": 1, "reclassified": 1}
    with platform.db.reader(tenant_a.org_id) as s:
        (view,) = gov.sandboxes(s)
    assert view.status == "closed" and not view.active
    # The sweep re-classified as of today, when a closed sandbox relaxes nothing: the duty is open again.
    assert obligations(platform, tenant_a.org_id, system)[LABEL_RULE] == ("open", None)


def test_the_regulator_closes_a_running_sandbox(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system = _generator(platform, tenant_a.org_id)
    app_id = _apply(platform, tenant_a.org_id, [system])
    regulator = principal(platform, tenant_b, "regulator")
    with platform.db.transaction() as s:
        gov.decide_sandbox(s, app_id, approve=True, ends_on=_today() + timedelta(days=60), actor=regulator)
    with platform.db.transaction() as s:
        assert gov.close_sandbox(s, app_id, reason="conditions breached", actor=regulator).status == "closed"
    assert obligations(platform, tenant_a.org_id, system)[LABEL_RULE] == ("open", None)


def test_sandbox_decisions_are_the_regulators_of_another_organization(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    app_id = _apply(platform, tenant_a.org_id, [_generator(platform, tenant_a.org_id)])
    ends = _today() + timedelta(days=30)
    for actor in (principal(platform, tenant_a, "admin"), principal(platform, tenant_b, "dpo"),
                  principal(platform, tenant_a, "regulator"), f"apikey:{tenant_a.api_key_id}"):
        with platform.db.transaction() as s:
            with pytest.raises(PermissionDenied) as err:
                gov.decide_sandbox(s, app_id, approve=True, ends_on=ends, actor=actor)
            assert err.value.field == "actor"
    with platform.db.reader() as s:
        with pytest.raises(PermissionDenied):
            gov.sandboxes(s)  # the cross-organization list needs the regulator
        assert [v.id for v in gov.sandboxes(s, status="submitted", actor=principal(platform, tenant_b, "regulator"))] \
            == [app_id]


def test_operators_see_and_touch_only_their_own_applications(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system_a = _generator(platform, tenant_a.org_id)
    app_id = _apply(platform, tenant_a.org_id, [system_a])
    with pytest.raises(NotFound) as err:  # another organization's system cannot join b's sandbox
        _apply(platform, tenant_b.org_id, [system_a])
    assert err.value.field == "system_ids.0"
    with platform.db.transaction(tenant_b.org_id) as s:
        assert gov.sandboxes(s) == []
        with pytest.raises(NotFound):
            gov.withdraw_sandbox(s, app_id, actor="user:2")
    with platform.db.reader(tenant_a.org_id) as s:
        (view,) = gov.sandboxes(s)
    assert view.status == "submitted" and view.system_ids == [system_a]


def test_with_the_real_rule_packs_a_high_risk_system_is_listed_and_its_audit_duty_relaxed(platform, tenant_a,
                                                                                        tenant_b):
    """The same stories under the product's own packs (qorgau/rules/packs): the high-risk audit duty is relaxable."""
    from qorgau.rules import reload_rulebook, rulebook

    from .governance_helpers import high_risk, record_audit

    reload_rulebook()  # the real packs for this test (the fixture puts back whatever was current)
    relaxable = sorted(r.id for r in rulebook().rules() if r.relaxable)
    assert relaxable, "the real packs name at least one relaxable obligation"
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id, "real-grid", system__sector="energy")
    fired = obligations(platform, tenant_a.org_id, system)
    to_relax = [rule_id for rule_id in relaxable if rule_id in fired]
    assert to_relax, "a high-risk system carries a relaxable obligation"
    regulator = principal(platform, tenant_b, "regulator")

    audit_id = record_audit(gov, platform, tenant_a.org_id, system)
    with platform.db.transaction(tenant_a.org_id) as s:
        entry = gov.request_trusted(s, system, sector="energy", audit_id=audit_id, actor="user:1")
    with platform.db.transaction() as s:
        assert gov.decide_trusted(s, entry.id, include=True, actor=regulator).status == "included"

    app_id = _apply(platform, tenant_a.org_id, [system], relax=to_relax)
    with platform.db.transaction() as s:
        gov.decide_sandbox(s, app_id, approve=True, ends_on=_today() + timedelta(days=90), actor=regulator)
    after = obligations(platform, tenant_a.org_id, system)
    assert all(after[rule_id] == ("relaxed", app_id) for rule_id in to_relax)
    assert all(status == "open" for rule_id, (status, _) in after.items() if rule_id not in to_relax)


def test_a_system_declared_by_oversight_without_a_questionnaire_can_be_a_member(platform, tenant_a, tenant_b):
    from oversight.helpers import system as oversight_system

    from qorgau.oversight.service import oversight_for

    gov = governance_for(platform)
    oversight_system(oversight_for(platform), platform, tenant_a.org_id, "declared")
    with platform.db.reader(tenant_a.org_id) as s:
        declared = next(v.id for v in oversight_for(platform).list_systems(s) if v.code == "declared")
    generator = _generator(platform, tenant_a.org_id)
    app_id = _apply(platform, tenant_a.org_id, [declared, generator])
    with platform.db.transaction() as s:
        view = gov.decide_sandbox(s, app_id, approve=True, ends_on=_today() + timedelta(days=30),
                                  actor=principal(platform, tenant_b, "regulator"))
    assert view.system_ids == sorted([declared, generator])
    assert obligations(platform, tenant_a.org_id, generator)[LABEL_RULE] == ("relaxed", app_id)
    assert obligations(platform, tenant_a.org_id, declared) == {}


def test_the_servers_hourly_governance_job_sweeps_sandboxes_and_stores_todays_maturity(platform, tenant_a, tenant_b):
    from qorgau.aisystems.governance import run_periodic
    from qorgau.aisystems.models import MaturitySnapshot

    _generator(platform, tenant_a.org_id)
    run_periodic(platform)
    run_periodic(platform)  # an hour later: the same day's snapshot is updated, not duplicated
    with platform.db.reader(tenant_a.org_id) as s:
        rows = list(s.scalars(select(MaturitySnapshot)))
    assert [r.computed_on for r in rows] == [_today()] and rows[0].score is not None
    with platform.db.reader(tenant_b.org_id) as s:
        assert list(s.scalars(select(MaturitySnapshot))) == []  # nothing to judge there, nothing stored
