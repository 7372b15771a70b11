"""Audits and trusted lists of high-risk AI systems (L-AI-TRUSTED; AI law Art.19–20, DC Art.100 p.4): the operator
records audits and asks for inclusion, the regulator of another organization decides, the public sees the list."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from qorgau.aisystems.governance import governance_for
from qorgau.core import auth
from qorgau.core.audit import AuditEntry
from qorgau.core.auth import Principal
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform

from .governance_helpers import gv_rules, high_risk, principal, record_audit, register  # noqa: F401

pytestmark = pytest.mark.usefixtures("gv_rules")


def _request(platform: Platform, org: int, system_id: int, audit_id: int, sector: str = "energy") -> int:
    with platform.db.transaction(org) as s:
        return governance_for(platform).request_trusted(s, system_id, sector=sector, audit_id=audit_id,
                                                        actor="user:1").id


def test_a_high_risk_system_with_a_passed_audit_enters_the_trusted_list(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    audit_id = record_audit(gov, platform, tenant_a.org_id, system)
    entry_id = _request(platform, tenant_a.org_id, system, audit_id)

    with platform.db.reader() as s:
        assert gov.trusted_list(s) == []  # requested is not listed
    regulator = principal(platform, tenant_b, "regulator")
    with platform.db.transaction() as s:
        queue = gov.trusted_requests(s, status="requested", actor=regulator)
        assert [e.id for e in queue] == [entry_id]
        view = gov.decide_trusted(s, entry_id, include=True, reason=None, actor=regulator)
    assert view.status == "included" and view.decided_by == regulator.actor

    with platform.db.reader() as s:
        listed = gov.trusted_list(s, sector="energy")
    assert [(e.system_id, e.operator_bin, e.sector) for e in listed] == [(system, tenant_a.bin, "energy")]
    public = listed[0].to_public_dict()
    assert "requested_by" not in public and "reason" not in public and public["register_id"].startswith("KZ-AI-")
    with platform.db.reader() as s:
        assert gov.trusted_list(s, sector="health") == []

    # The regulator's decision is in the operator's audit log: ids and statuses, no free text.
    with platform.db.reader() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "aisystems.trusted_included"))
    assert entry.organization_id == tenant_a.org_id and entry.actor == regulator.actor
    assert entry.details["status"] == "included" and entry.details["system_id"] == system

    # Removal needs a reason and takes it off the public list.
    with platform.db.transaction() as s:
        with pytest.raises(InvalidInput) as err:
            gov.remove_trusted(s, entry_id, reason=" ", actor=regulator)
        assert err.value.field == "reason"
    with platform.db.transaction() as s:
        assert gov.remove_trusted(s, entry_id, reason="audit withdrawn by the auditor", actor=regulator).status == "removed"
    with platform.db.reader() as s:
        assert gov.trusted_list(s) == []


@pytest.mark.parametrize(("facts", "field"), [
    ({"failure__impact": "material_damage"}, "risk_level"),       # medium risk
    ({"functions__social_scoring": True}, "prohibited"),          # high risk but prohibited
    ({"failure__impact": None}, "risk_level"),                    # risk undecided (facts missing)
])
def test_only_a_currently_high_risk_not_prohibited_system_may_be_requested(platform, tenant_a, facts, field):
    gov = governance_for(platform)
    overrides = {"failure__impact": "social_emergency", **facts}
    system = register(platform, tenant_a.org_id, "candidate", **overrides)
    audit_id = record_audit(gov, platform, tenant_a.org_id, system)
    with pytest.raises(InvalidInput) as err:
        _request(platform, tenant_a.org_id, system, audit_id)
    assert err.value.field == field


@pytest.mark.parametrize(("audit", "field"), [
    ({"result": "failed"}, "audit.result"),
    ({"covers_training_data": False}, "audit.covers_training_data"),
    ({"result": "failed", "prohibited_functionality_found": True}, "audit.result"),
])
def test_the_audit_must_pass_cover_training_data_and_find_nothing_prohibited(platform, tenant_a, audit, field):
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    audit_id = record_audit(gov, platform, tenant_a.org_id, system, **audit)
    with pytest.raises(InvalidInput) as err:
        _request(platform, tenant_a.org_id, system, audit_id)
    assert err.value.field == field


def test_an_audit_that_found_prohibited_functionality_cannot_pass_and_bad_input_names_the_field(platform, tenant_a):
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    cases = [({"result": "passed", "prohibited_functionality_found": True}, "result"),
             ({"result": "maybe"}, "result"),
             ({"audited_on": date.today() + timedelta(days=30)}, "audited_on"),
             ({"auditor": ""}, "auditor"),
             ({"covers_training_data": "yes"}, "covers_training_data"),
             ({"report_sha256": "not-a-digest"}, "report_sha256"),
             ({"summary": "call the auditor at +7 701 234 56 78"}, "summary")]
    for overrides, field in cases:
        with pytest.raises(InvalidInput) as err:
            record_audit(gov, platform, tenant_a.org_id, system, **overrides)
        assert err.value.field == field, overrides
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.audits(s, system) == []  # nothing half-written


def test_the_request_names_an_audit_of_the_same_system_and_is_not_duplicated(platform, tenant_a):
    gov = governance_for(platform)
    first = high_risk(platform, tenant_a.org_id, "grid-a")
    second = high_risk(platform, tenant_a.org_id, "grid-b")
    audit_of_second = record_audit(gov, platform, tenant_a.org_id, second)
    with pytest.raises(NotFound) as err:
        _request(platform, tenant_a.org_id, first, audit_of_second)
    assert err.value.field == "audit_id"
    with pytest.raises(InvalidInput) as err:
        _request(platform, tenant_a.org_id, second, audit_of_second, sector="spaceflight")
    assert err.value.field == "sector"
    _request(platform, tenant_a.org_id, second, audit_of_second)
    with pytest.raises(Conflict) as err:
        _request(platform, tenant_a.org_id, second, audit_of_second)
    assert err.value.field == "sector"
    _request(platform, tenant_a.org_id, second, audit_of_second, sector="finance")  # another sector's list


def test_regulator_only_actions_are_refused_to_operators_and_to_the_operators_own_regulator(platform, tenant_a,
                                                                                          tenant_b):
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    entry_id = _request(platform, tenant_a.org_id, system, record_audit(gov, platform, tenant_a.org_id, system))
    refused = [principal(platform, tenant_a, "admin"), principal(platform, tenant_a, "dpo"),
               principal(platform, tenant_b, "admin"),
               f"user:{tenant_b.users['dpo'][0]}",       # looked up: not a regulator
               "system:cli", None]
    for actor in refused:
        with platform.db.transaction() as s:
            with pytest.raises(PermissionDenied) as err:
                gov.decide_trusted(s, entry_id, include=True, actor=actor)
            assert err.value.field == "actor"
    # An operator can never include its own system, even with a key or user that holds the regulator role.
    for actor in (principal(platform, tenant_a, "regulator"), f"apikey:{tenant_a.api_key_id}"):
        with platform.db.transaction() as s:
            with pytest.raises(PermissionDenied) as err:
                gov.decide_trusted(s, entry_id, include=True, actor=actor)
            assert "own" in err.value.message
    # A regulator acts with an unscoped session, not inside an operator's tenant.
    with platform.db.transaction(tenant_b.org_id) as s:
        with pytest.raises(PermissionDenied) as err:
            gov.decide_trusted(s, entry_id, include=True, actor=principal(platform, tenant_b, "regulator"))
    # The cross-organization queue is the regulator's too.
    with platform.db.reader() as s:
        with pytest.raises(PermissionDenied):
            gov.trusted_requests(s, actor=principal(platform, tenant_a, "admin"))
    with platform.db.reader() as s:
        entry = gov.trusted_requests(s, actor=f"user:{tenant_b.users['regulator'][0]}")[0]
    assert entry.status == "requested"  # nothing was decided by the refused attempts


def test_a_refusal_needs_a_reason_and_a_decided_request_cannot_be_decided_again(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    entry_id = _request(platform, tenant_a.org_id, system, record_audit(gov, platform, tenant_a.org_id, system))
    regulator = principal(platform, tenant_b, "regulator")
    with platform.db.transaction() as s:
        with pytest.raises(InvalidInput) as err:
            gov.decide_trusted(s, entry_id, include=False, reason=None, actor=regulator)
        assert err.value.field == "reason"
    with platform.db.transaction() as s:
        view = gov.decide_trusted(s, entry_id, include=False, reason="audit scope too narrow", actor=regulator)
    assert view.status == "refused" and view.reason == "audit scope too narrow"
    with platform.db.transaction() as s:
        with pytest.raises(Conflict) as err:
            gov.decide_trusted(s, entry_id, include=True, actor=regulator)
        assert err.value.field == "status"
    with platform.db.reader() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "aisystems.trusted_refused"))
    assert "audit scope" not in str(entry.details)  # the reason stays out of the audit log


def test_inclusion_rechecks_the_current_classification(platform, tenant_a, tenant_b):
    from qorgau.aisystems.register import register_for

    from .governance_helpers import answers

    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    entry_id = _request(platform, tenant_a.org_id, system, record_audit(gov, platform, tenant_a.org_id, system))
    with platform.db.transaction(tenant_a.org_id) as s:  # the operator re-answers: no longer high risk
        register_for(platform).update_questionnaire(s, system, facts=answers(failure__impact="minimal"),
                                                    actor="user:1")
    with platform.db.transaction() as s:
        with pytest.raises(InvalidInput) as err:
            gov.decide_trusted(s, entry_id, include=True, actor=principal(platform, tenant_b, "regulator"))
        assert err.value.field == "risk_level"


def test_operators_see_only_their_own_systems_audits_and_requests(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    audit_id = record_audit(gov, platform, tenant_a.org_id, system)
    _request(platform, tenant_a.org_id, system, audit_id)
    with platform.db.reader(tenant_b.org_id) as s:
        with pytest.raises(NotFound):
            gov.audits(s, system)
        assert gov.trusted_requests(s) == []
    with pytest.raises(NotFound) as err:
        record_audit(gov, platform, tenant_b.org_id, system)
    assert err.value.field == "system_id"
    with pytest.raises(NotFound):
        _request(platform, tenant_b.org_id, system, audit_id)
    with platform.db.reader(tenant_a.org_id) as s:
        assert [a.id for a in gov.audits(s, system)] == [audit_id]
        (entry,) = gov.trusted_requests(s)
        assert gov.trusted_entry(s, entry.id).status == "requested"
    with platform.db.reader(tenant_b.org_id) as s:
        with pytest.raises(NotFound):
            gov.trusted_entry(s, entry.id)


def test_an_operator_that_grants_itself_the_regulator_role_decides_nothing_for_others(platform, tenant_a, tenant_b):
    """The regulator role counts only in the authorized body: an operator's admin can hand its staff the role,
    but that must not let them include their rivals' systems or read every operator's queue."""
    gov = governance_for(platform)
    system = high_risk(platform, tenant_a.org_id)
    entry_id = _request(platform, tenant_a.org_id, system, record_audit(gov, platform, tenant_a.org_id, system))
    with platform.db.reader() as s:
        user = auth.get_user(s, tenant_b.users["regulator"][0])
        self_made = Principal("user", user.id, user.organization_id, frozenset(user.roles))
    for attempt in (lambda s: gov.decide_trusted(s, entry_id, include=True, actor=self_made),
                    lambda s: gov.trusted_requests(s, actor=self_made),
                    lambda s: gov.sandboxes(s, actor=self_made)):
        with platform.db.transaction() as s:
            with pytest.raises(PermissionDenied) as err:
                attempt(s)
            assert err.value.field == "organization"
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.trusted_requests(s)[0].status == "requested"  # nothing was decided
