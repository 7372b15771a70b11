"""The oversight service (issue 6): paths, bad input, idempotency, reviews, deadlines, objections, the
outbox, reviewer statistics, tenant isolation and the absence of personal data in everything it writes."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import Tenant
from consent.receiver import Receiver
from qorgau.consent.dispatcher import Dispatcher
from qorgau.consent.outbox import OutboxMessage
from qorgau.consent.service import SubjectRef, consent_for
from qorgau.core import audit
from qorgau.core.calendar import ALMATY
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.oversight.models import AiDecision
from qorgau.oversight.service import Factor, OversightService, Submission, oversight_for

from .helpers import FACTORS, consent, iin, new_user, review, submission, submit, subject, system, user


@pytest.fixture
def service(platform: Platform) -> OversightService:
    return oversight_for(platform)


@pytest.fixture
def org(platform: Platform, service: OversightService, tenant_a: Tenant) -> int:
    """tenant_a with a medium-risk, low-autonomy scoring system and a consent of subject 1 to credit scoring."""
    system(service, platform, tenant_a.org_id)
    consent(platform, tenant_a.org_id, 1)
    return tenant_a.org_id


def reviewer(platform: Platform, tenant: Tenant, role: str = "reviewer") -> Any:
    return user(platform, tenant.org_id, tenant.users[role][0])


def messages(platform: Platform, org_id: int) -> list[OutboxMessage]:
    with platform.db.reader(org_id) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def decision_count(platform: Platform, org_id: int) -> int:
    with platform.db.reader(org_id) as s:
        return int(s.scalar(select(func.count()).select_from(AiDecision)) or 0)


# --- paths --------------------------------------------------------------------------------------------


def test_without_consent_automated_processing_is_refused_and_the_system_is_told(
        platform: Platform, service: OversightService, org: int) -> None:
    result = submit(service, platform, org, "k-refused", serial=2)  # subject 2 never consented
    d = result.decision
    assert result.created and d.path == "refused" and d.status == "refused" and not d.effective
    assert d.reason in ("no_consent", "unknown_subject") and d.final_outcome is None and d.deadline_at is None
    [message] = messages(platform, org)
    assert message.topic == "decision.decided" and json.loads(message.payload)["decision"]["status"] == "refused"


def test_with_consent_a_decision_with_legal_effect_waits_for_a_human(
        platform: Platform, service: OversightService, org: int) -> None:
    d = submit(service, platform, org, "k-pending").decision
    assert d.path == "review" and d.status == "pending" and d.level == "reviewer" and not d.effective
    assert d.basis == "consent" and d.consent_id is not None and d.legal_effect
    assert d.deadline_at == d.submitted_at + timedelta(hours=24)  # loan: review_hours 24
    assert d.subject_pseudonym is not None and d.subject_pseudonym.startswith("ps_")
    assert d.final_outcome is None and d.approvals_needed == 1
    assert messages(platform, org) == []  # nothing final yet: the AI system waits


def test_a_low_risk_decision_without_legal_effect_takes_effect_automatically(
        platform: Platform, service: OversightService, org: int) -> None:
    system(service, platform, org, "offers", risk_class="minimal", autonomy="low")
    consent(platform, org, 1, "marketing.personalization")
    d = submit(service, platform, org, "k-auto", system="offers", decision_type="offer",
               proposed_outcome="show").decision
    assert d.path == "automatic" and d.status == "automatic" and d.effective and d.final_outcome == "show"
    assert d.effective_at is not None and not d.legal_effect
    assert [m.topic for m in messages(platform, org)] == ["decision.decided"]


@pytest.mark.parametrize(("risk_class", "autonomy"), [("high", "low"), ("minimal", "medium"), ("minimal", "high")])
def test_a_high_risk_or_autonomous_system_forces_review_even_without_legal_effect(
        platform: Platform, service: OversightService, org: int, risk_class: str, autonomy: str) -> None:
    system(service, platform, org, "offers", risk_class=risk_class, autonomy=autonomy)
    consent(platform, org, 1, "marketing.personalization")
    d = submit(service, platform, org, "k", system="offers", decision_type="offer", proposed_outcome="show").decision
    assert d.status == "pending" and d.risk_class == risk_class and d.autonomy == autonomy


def test_a_policy_of_always_holds_every_decision_of_the_type(
        platform: Platform, service: OversightService, org: int) -> None:
    system(service, platform, org, "offers", risk_class="minimal", autonomy="low")
    consent(platform, org, 1, "marketing.personalization")
    with platform.db.transaction(org) as s:
        info = service.set_decision_type(s, "offer", actor="user:1", review="always", review_hours=2)
    assert info.source == "organization" and info.review == "always" and info.names["en"] == "Personal offer"
    d = submit(service, platform, org, "k", system="offers", decision_type="offer", proposed_outcome="show").decision
    assert d.status == "pending" and d.deadline_at == d.submitted_at + timedelta(hours=2)


def test_a_legal_basis_allows_automated_processing_without_consent(
        platform: Platform, service: OversightService, org: int) -> None:
    with platform.db.transaction(org) as s:
        consent_for(platform).add_legal_basis(s, kind="law", purpose="credit", reference="Law on credit bureaus",
                                              actor="user:1")
    d = submit(service, platform, org, "k", serial=7).decision
    assert d.status == "pending" and d.basis == "law" and d.legal_basis_id is not None


# --- bad input ----------------------------------------------------------------------------------------


def _bad_iin() -> str:
    good = iin(1)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


BAD = [
    ({"system": "no-such-system"}, "system"),
    ({"system": "Bad Code!"}, "system"),
    ({"subject": SubjectRef(identifier_type="KZ_IIN", identifier=_bad_iin())}, "subject.identifier"),
    ({"subject": SubjectRef(pseudonym="ps_" + "q" * 26)}, "subject.pseudonym"),
    ({"subject": SubjectRef(pseudonym="not-a-pseudonym")}, "subject.pseudonym"),
    ({"factors": []}, "factors"),
    ({"factors": [Factor("income", 1.5)]}, "factors[0].weight"),
    ({"factors": [Factor("income", float("nan"))]}, "factors[0].weight"),
    ({"factors": [Factor("a", 0.0), Factor("b", 0.0)]}, "factors"),
    ({"factors": [Factor("a", 0.5), Factor("a", 0.2)]}, "factors[1].code"),
    ({"factors": [Factor("a", 0.5)] * 51}, "factors"),
    ({"factors": [Factor("iin", 0.5, value=iin(3))]}, "factors[0].value"),
    ({"proposed_outcome": "maybe"}, "proposed_outcome"),
    ({"decision_type": "credit_limit", "proposed_outcome": -5}, "proposed_outcome"),
    ({"decision_type": "credit_limit", "proposed_outcome": 10 ** 12}, "proposed_outcome"),
    ({"decision_type": "credit_limit", "proposed_outcome": "100"}, "proposed_outcome"),
    ({"decision_type": "no_such_type"}, "decision_type"),
    ({"confidence": 1.2}, "confidence"),
    ({"confidence": -0.1}, "confidence"),
    ({"idempotency_key": "has spaces"}, "idempotency_key"),
    ({"model_version": ""}, "model_version"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_input_names_the_field_and_stores_nothing(
        platform: Platform, service: OversightService, org: int, overrides: dict[str, Any], field: str) -> None:
    before = decision_count(platform, org)
    with pytest.raises(InvalidInput) as caught:
        submit(service, platform, org, "k-bad", **overrides)
    assert caught.value.field == field
    assert iin(1) not in caught.value.message and _bad_iin() not in caught.value.message
    assert iin(3) not in caught.value.message
    assert decision_count(platform, org) == before and messages(platform, org) == []


def test_an_unknown_system_of_another_organization_is_not_found_by_its_code(
        platform: Platform, service: OversightService, org: int, tenant_b: Tenant) -> None:
    with pytest.raises(InvalidInput) as caught:
        submit(service, platform, tenant_b.org_id, "k")  # "scoring" belongs to tenant_a
    assert caught.value.field == "system"


def test_a_suspended_system_may_not_submit(platform: Platform, service: OversightService, org: int) -> None:
    with platform.db.transaction(org) as s:
        service.update_system(s, "scoring", actor="user:1", status="suspended")
    with pytest.raises(InvalidInput) as caught:
        submit(service, platform, org, "k")
    assert caught.value.field == "system"


# --- idempotency --------------------------------------------------------------------------------------


def test_a_replayed_submission_returns_the_same_decision(
        platform: Platform, service: OversightService, org: int) -> None:
    first = submit(service, platform, org, "k-1")
    again = submit(service, platform, org, "k-1")
    assert first.created and not again.created and again.decision.id == first.decision.id
    assert decision_count(platform, org) == 1


def test_the_same_key_with_a_different_body_is_a_conflict(
        platform: Platform, service: OversightService, org: int) -> None:
    submit(service, platform, org, "k-1")
    for change in ({"proposed_outcome": "decline"}, {"serial": 2}, {"confidence": 0.5},
                   {"factors": [Factor("income", 0.7)]}):
        serial = change.pop("serial", 1)
        with pytest.raises(Conflict) as caught:
            submit(service, platform, org, "k-1", serial, **change)
        assert caught.value.field == "idempotency_key"
    assert decision_count(platform, org) == 1


def test_the_same_key_from_another_system_is_another_decision(
        platform: Platform, service: OversightService, org: int) -> None:
    system(service, platform, org, "scoring-b")
    a = submit(service, platform, org, "k-1")
    b = submit(service, platform, org, "k-1", system="scoring-b")
    assert a.decision.id != b.decision.id and b.created


# --- reviewing ----------------------------------------------------------------------------------------


def test_an_approval_makes_the_decision_effective_and_records_the_time_spent(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = submit(service, platform, org, "k").decision
    who = reviewer(platform, tenant_a)
    done = review(service, platform, org, d.id, who, "approve")
    assert done.status == "approved" and done.effective and done.final_outcome == "approve"
    assert done.decided_by == f"user:{who.id}" and done.version == d.version + 1
    with platform.db.reader(org) as s:
        [r] = service.reviews(s, d.id)
    assert r.action == "approve" and r.agreed_with_model is True and r.seconds_spent is not None
    assert r.seconds_spent >= 0
    [message] = messages(platform, org)
    assert message.topic == "decision.decided" and json.loads(message.payload)["decision"]["status"] == "approved"


def test_time_spent_is_unknown_when_the_reviewer_never_opened_the_decision(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = submit(service, platform, org, "k").decision
    review(service, platform, org, d.id, reviewer(platform, tenant_a), "approve", open_first=False)
    with platform.db.reader(org) as s:
        [r] = service.reviews(s, d.id)
    assert r.seconds_spent is None


def test_a_stale_version_or_a_decided_decision_is_a_conflict(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = submit(service, platform, org, "k").decision
    who = reviewer(platform, tenant_a)
    with pytest.raises(Conflict) as caught:
        review(service, platform, org, d.id, who, "approve", version=d.version + 5)
    assert caught.value.field == "expected_version"
    review(service, platform, org, d.id, who, "approve")
    with pytest.raises(Conflict):
        review(service, platform, org, d.id, reviewer(platform, tenant_a, "dpo"), "reject", rationale="no")


def test_amend_and_reject_need_a_rationale_and_amend_a_valid_outcome(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    who = reviewer(platform, tenant_a)
    d = submit(service, platform, org, "k").decision
    for action, kwargs, field in (("amend", {"outcome": "decline"}, "rationale"), ("reject", {}, "rationale"),
                                  ("amend", {"rationale": "too risky"}, "outcome"),
                                  ("amend", {"outcome": "maybe", "rationale": "x"}, "outcome"),
                                  ("approve", {"outcome": "decline"}, "outcome"),
                                  ("shrug", {}, "action")):
        with pytest.raises(InvalidInput) as caught:
            review(service, platform, org, d.id, who, action, **kwargs)
        assert caught.value.field == field
    done = review(service, platform, org, d.id, who, "amend", outcome="decline", rationale="debt ratio too high")
    assert done.status == "amended" and done.final_outcome == "decline" and done.effective
    d2 = submit(service, platform, org, "k2").decision
    done2 = review(service, platform, org, d2.id, who, "reject", rationale="income not verified")
    assert done2.status == "rejected" and not done2.effective and done2.final_outcome is None


def test_approving_a_high_risk_decision_needs_a_rationale(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    system(service, platform, org, "hr", risk_class="high")
    d = submit(service, platform, org, "k", system="hr").decision
    who = reviewer(platform, tenant_a)
    with pytest.raises(InvalidInput) as caught:
        review(service, platform, org, d.id, who, "approve")
    assert caught.value.field == "rationale"
    assert review(service, platform, org, d.id, who, "approve", rationale="checked the income proof").status == "approved"


def test_four_eyes_needs_two_different_reviewers(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    consent(platform, org, 1, "state.social")
    d = submit(service, platform, org, "k", decision_type="benefit", proposed_outcome="grant").decision
    assert d.four_eyes and d.approvals_needed == 2
    first, second = reviewer(platform, tenant_a), reviewer(platform, tenant_a, "dpo")
    half = review(service, platform, org, d.id, first, "approve", rationale="eligible")
    assert half.status == "pending" and half.approvals == 1 and not half.effective
    with pytest.raises(PermissionDenied):
        review(service, platform, org, d.id, first, "approve", rationale="still eligible")
    assert messages(platform, org) == []
    done = review(service, platform, org, d.id, second, "approve", rationale="agree")
    assert done.status == "approved" and done.approvals == 2 and done.effective
    assert len(messages(platform, org)) == 1


def test_only_reviewers_review_and_escalated_decisions_need_a_senior(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = submit(service, platform, org, "k").decision
    for role in ("citizen", "regulator"):
        with pytest.raises(PermissionDenied):
            review(service, platform, org, d.id, reviewer(platform, tenant_a, role), "approve", open_first=False)
    plain = reviewer(platform, tenant_a)
    up = review(service, platform, org, d.id, plain, "escalate", rationale="unusual income pattern")
    assert up.status == "escalated" and up.level == "senior" and not up.effective
    with pytest.raises(PermissionDenied):
        review(service, platform, org, d.id, plain, "approve")
    with pytest.raises(InvalidInput):
        review(service, platform, org, d.id, reviewer(platform, tenant_a, "dpo"), "escalate")
    done = review(service, platform, org, d.id, reviewer(platform, tenant_a, "dpo"), "reject", rationale="fraud risk")
    assert done.status == "rejected"


def test_the_queue_is_ordered_by_deadline_and_pages_with_a_cursor(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    with platform.db.transaction(org) as s:
        consent_for(platform).add_legal_basis(s, kind="law", purpose="credit", reference="Law", actor="user:1")
    with platform.db.transaction(org) as s:
        service.set_decision_type(s, "credit_limit", actor="user:1", review_hours=1)
    ids = [submit(service, platform, org, f"k{i}", serial=10 + i).decision.id for i in range(7)]
    short = [submit(service, platform, org, f"c{i}", serial=30 + i, decision_type="credit_limit",
                    proposed_outcome=100000).decision.id for i in range(3)]
    review(service, platform, org, ids[0], reviewer(platform, tenant_a), "escalate")
    seen: list[int] = []
    cursor = None
    with platform.db.reader(org) as s:
        while True:
            page = service.queue(s, limit=3, cursor=cursor, with_total=True)
            assert page.total == 10
            seen += [d.id for d in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen[:3] == short  # 1-hour deadlines first
        assert sorted(seen) == sorted(ids + short) and len(seen) == len(set(seen))
        assert [d.id for d in service.queue(s, level="senior").items] == [ids[0]]
        assert {d.id for d in service.queue(s, decision_type="credit_limit").items} == set(short)
        assert service.queue(s, statuses=["escalated"]).items[0].id == ids[0]
        assert service.queue(s, overdue_only=True).items == []
        with pytest.raises(InvalidInput) as caught:
            service.queue(s, cursor="garbage")
        assert caught.value.field == "cursor"
        everything = service.list_decisions(s, limit=4)
        assert [d.id for d in everything.items] == sorted(ids + short, reverse=True)[:4]
        rest = service.list_decisions(s, limit=50, cursor=everything.next_cursor)
        assert len(rest.items) == 6 and rest.next_cursor is None


# --- deadlines ----------------------------------------------------------------------------------------


def test_past_its_deadline_a_decision_is_escalated_then_timed_out_never_approved(
        platform: Platform, service: OversightService, org: int) -> None:
    d = submit(service, platform, org, "k").decision
    assert d.deadline_at is not None
    with platform.db.transaction(org) as s:
        assert service.sweep_deadlines(s, now=d.deadline_at - timedelta(seconds=1)) == \
            {"escalated": 0, "rejected": 0, "timed_out": 0}
    later = d.deadline_at + timedelta(minutes=1)
    with platform.db.transaction(org) as s:
        assert service.sweep_deadlines(s, now=later)["escalated"] == 1
        up = service.get(s, d.id)
    assert up.status == "escalated" and up.level == "senior" and up.deadline_at == later + timedelta(hours=24)
    assert messages(platform, org) == []
    with platform.db.transaction(org) as s:
        assert service.sweep_deadlines(s, now=later + timedelta(hours=25))["timed_out"] == 1
        out = service.get(s, d.id)
    assert out.status == "timed_out" and not out.effective and out.final_outcome is None
    assert out.decided_by == "system:oversight-deadline"
    [message] = messages(platform, org)
    assert json.loads(message.payload)["decision"]["status"] == "timed_out"
    with platform.db.transaction(org) as s:  # nothing left to sweep
        assert sum(service.sweep_deadlines(s, now=later + timedelta(days=30)).values()) == 0


def test_a_type_whose_policy_is_reject_is_rejected_at_its_deadline(
        platform: Platform, service: OversightService, org: int) -> None:
    consent(platform, org, 1, "employment.recruitment")
    d = submit(service, platform, org, "k", decision_type="hiring", proposed_outcome="invite").decision
    assert d.deadline_at is not None
    with platform.db.transaction(org) as s:
        assert service.sweep_deadlines(s, now=d.deadline_at + timedelta(seconds=1))["rejected"] == 1
        out = service.get(s, d.id)
    assert out.status == "rejected" and not out.effective and out.reason == "review_timeout"
    assert len(messages(platform, org)) == 1


# --- objections (L-PD-AUTO) -----------------------------------------------------------------------------


def _decided(platform: Platform, service: OversightService, org: int, tenant: Tenant, key: str = "k") -> Any:
    d = submit(service, platform, org, key).decision
    return review(service, platform, org, d.id, reviewer(platform, tenant), "approve")


@pytest.mark.parametrize(("filed_local", "due"), [
    (datetime(2026, 11, 20, 17, 0), date(2026, 11, 25)),   # Friday → Mon, Tue, Wed
    (datetime(2026, 12, 14, 9, 0), date(2026, 12, 18)),    # 16 December (Independence Day) is not a working day
    (datetime(2026, 11, 22, 23, 30), date(2026, 11, 25)),  # Sunday late evening in Almaty (Sunday 18:30 UTC)
])
def test_an_objection_is_due_in_three_working_days(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant, filed_local: datetime,
        due: date) -> None:
    d = _decided(platform, service, org, tenant_a)
    with platform.db.transaction(org) as s:
        o = service.object(s, d.id, channel="portal", filed_by="citizen:1",
                           now=filed_local.replace(tzinfo=ALMATY).astimezone(timezone.utc))
    assert o.due_on == due and o.status == "open"


def test_an_objection_goes_to_another_reviewer_and_overturning_it_tells_the_system(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = _decided(platform, service, org, tenant_a)
    other = new_user(platform, org, "alpha-reviewer-2", ["reviewer"])
    with platform.db.transaction(org) as s:
        o = service.object(s, d.id, channel="portal", filed_by="citizen:1", text="My income is higher than that")
    assert o.assigned_user_id == other.id and o.assigned_to == "alpha-reviewer-2"
    assert not o.overdue and o.text is None
    with platform.db.reader(org) as s:
        assert service.get_objection(s, o.id, include_text=True).text == "My income is higher than that"
    original = reviewer(platform, tenant_a)
    with platform.db.transaction(org) as s, pytest.raises(PermissionDenied):
        service.decide_objection(s, o.id, user=original, action="overturn", rationale="x")
    with platform.db.transaction(org) as s, pytest.raises(Conflict):
        service.object(s, d.id, channel="portal", filed_by="citizen:1")  # one open objection at a time
    with platform.db.transaction(org) as s, pytest.raises(InvalidInput) as caught:
        service.decide_objection(s, o.id, user=other, action="overturn", rationale="x", outcome="maybe")
    assert caught.value.field == "outcome"
    with platform.db.transaction(org) as s:
        decided = service.decide_objection(s, o.id, user=user(platform, org, other.id), action="overturn",
                                           rationale="payslips confirm the income", outcome="decline")
        after = service.get(s, d.id)
    assert decided.status == "overturned" and decided.decided_by == f"user:{other.id}"
    assert after.status == "amended" and after.final_outcome == "decline" and after.version == d.version + 1
    topics = [m.topic for m in messages(platform, org)]
    assert topics == ["decision.decided", "decision.changed"]
    with platform.db.transaction(org) as s, pytest.raises(Conflict):
        service.decide_objection(s, o.id, user=user(platform, org, other.id), action="uphold", rationale="again")


def test_an_objection_goes_to_the_one_reviewer_who_took_no_part(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = submit(service, platform, org, "k").decision
    # reviewer escalates, dpo approves — admin is the only reviewer-role user left
    review(service, platform, org, d.id, reviewer(platform, tenant_a), "escalate")
    review(service, platform, org, d.id, reviewer(platform, tenant_a, "dpo"), "approve")
    admin = reviewer(platform, tenant_a, "admin")
    with platform.db.transaction(org) as s:
        o = service.object(s, d.id, channel="written", filed_by="user:1")
    assert o.assigned_user_id == admin.id
    with platform.db.transaction(org) as s:
        upheld = service.decide_objection(s, o.id, user=admin, action="uphold", rationale="the decision stands")
    assert upheld.status == "upheld"
    with platform.db.reader(org) as s:
        assert service.get(s, d.id).status == "approved"
    assert [m.topic for m in messages(platform, org)] == ["decision.decided"]


def test_when_every_reviewer_took_part_the_objection_waits_unassigned_for_an_uninvolved_one(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    consent(platform, org, 1, "state.social")
    d = submit(service, platform, org, "k", decision_type="benefit", proposed_outcome="grant").decision
    review(service, platform, org, d.id, reviewer(platform, tenant_a), "approve", rationale="eligible")
    review(service, platform, org, d.id, reviewer(platform, tenant_a, "dpo"), "escalate")
    done = review(service, platform, org, d.id, reviewer(platform, tenant_a, "admin"), "approve", rationale="ok")
    assert done.status == "approved"
    with platform.db.transaction(org) as s:
        o = service.object(s, d.id, channel="portal", filed_by="citizen:1")
    assert o.assigned_user_id is None and o.assigned_to is None
    for role in ("reviewer", "dpo", "admin"):
        with platform.db.transaction(org) as s, pytest.raises(PermissionDenied):
            service.decide_objection(s, o.id, user=reviewer(platform, tenant_a, role), action="overturn",
                                     rationale="x")
    newcomer = new_user(platform, org, "alpha-reviewer-3", ["reviewer"])
    with platform.db.transaction(org) as s:
        overturned = service.decide_objection(s, o.id, user=newcomer, action="overturn", rationale="not eligible")
        after = service.get(s, d.id)
    assert overturned.status == "overturned"
    assert after.status == "rejected" and not after.effective and after.final_outcome is None  # annulled
    assert [m.topic for m in messages(platform, org)] == ["decision.decided", "decision.changed"]


def test_an_open_objection_past_its_due_date_is_overdue(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = _decided(platform, service, org, tenant_a)
    with platform.db.transaction(org) as s:
        o = service.object(s, d.id, channel="api", filed_by="apikey:1",
                           now=datetime(2026, 1, 12, 6, 0, tzinfo=timezone.utc))
    assert o.overdue
    with platform.db.reader(org) as s:
        assert [x.id for x in service.objections(s, overdue_only=True)] == [o.id]
        assert [x.id for x in service.objections(s, open_only=True)] == [o.id]


def test_an_objection_to_a_decision_still_under_review_is_refused(
        platform: Platform, service: OversightService, org: int) -> None:
    d = submit(service, platform, org, "k").decision
    with platform.db.transaction(org) as s, pytest.raises(Conflict):
        service.object(s, d.id, channel="portal", filed_by="citizen:1")


# --- the outbox ---------------------------------------------------------------------------------------


def test_each_final_state_is_delivered_once_signed_and_without_the_identifier(
        platform: Platform, service: OversightService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    with Receiver() as receiver:
        receiver.secret = system(service, platform, org, webhook_url=receiver.url)
        consent(platform, org, 1)
        pending = submit(service, platform, org, "k-1").decision
        refused = submit(service, platform, org, "k-2", serial=2).decision
        review(service, platform, org, pending.id, reviewer(platform, tenant_a), "approve")
        submit(service, platform, org, "k-1")  # a replay sends nothing
        d = Dispatcher(platform, poll_seconds=0.02, backoff_seconds=0.01, backoff_cap_seconds=0.05)
        try:
            while d.run_once():
                pass
        finally:
            d.stop()
        assert receiver.wait_for(lambda: len(receiver.received) >= 2)
        got = list(receiver.received)
    assert len(got) == 2 and all(r.signature_ok and r.event == "decision.decided" for r in got)
    by_id = {r.body["decision"]["id"]: r.body["decision"] for r in got}
    assert by_id[pending.id]["status"] == "approved" and by_id[refused.id]["status"] == "refused"
    raw = json.dumps([r.body for r in got])
    assert iin(1) not in raw and iin(2) not in raw
    assert by_id[pending.id]["subject_pseudonym"] == pending.subject_pseudonym


# --- evidence that review is meaningful -----------------------------------------------------------------


def test_a_reviewer_who_approves_everything_in_seconds_is_flagged_a_careful_one_is_not(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    with platform.db.transaction(org) as s:
        consent_for(platform).add_legal_basis(s, kind="law", purpose="credit", reference="Law", actor="user:1")
    stamp, careful = reviewer(platform, tenant_a), reviewer(platform, tenant_a, "dpo")
    for i in range(25):
        d = submit(service, platform, org, f"s{i}", serial=100 + i).decision
        review(service, platform, org, d.id, stamp, "approve")
    for i in range(25):
        d = submit(service, platform, org, f"c{i}", serial=200 + i, confidence=0.3 if i % 5 == 0 else 0.9).decision
        if i % 5 == 0:
            review(service, platform, org, d.id, careful, "reject", rationale="the model was unsure")
        else:
            review(service, platform, org, d.id, careful, "approve")
    with platform.db.reader(org) as s:
        stats = {st.user_id: st for st in service.reviewer_stats(s)}
    fast, slow = stats[stamp.id], stats[careful.id]
    assert fast.reviewed == 25 and fast.approval_rate == 1.0 and fast.median_seconds is not None
    assert fast.median_seconds < 2 and fast.rubber_stamp
    assert slow.reviewed == 25 and slow.rejections == 5 and slow.override_rate == 0.2 and not slow.rubber_stamp
    assert slow.agreement_with_confidence == 1.0 and fast.decision_type == "loan"


def test_fewer_than_twenty_reviews_are_not_enough_evidence(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    with platform.db.transaction(org) as s:
        consent_for(platform).add_legal_basis(s, kind="law", purpose="credit", reference="Law", actor="user:1")
    who = reviewer(platform, tenant_a)
    for i in range(19):
        d = submit(service, platform, org, f"s{i}", serial=100 + i).decision
        review(service, platform, org, d.id, who, "approve")
    with platform.db.reader(org) as s:
        [st] = service.reviewer_stats(s)
    assert st.reviewed == 19 and not st.rubber_stamp


# --- explanation (L-AI-DECISION, L-AI-USER) -------------------------------------------------------------


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_the_subject_gets_the_key_factors_in_plain_words(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant, lang: str) -> None:
    d = _decided(platform, service, org, tenant_a)
    with platform.db.reader(org) as s:
        e = service.explanation(s, d.id, lang)
    names = {"kk": "Несие беру туралы шешім", "ru": "Решение о выдаче кредита", "en": "Loan decision"}
    assert e.decision_type_name == names[lang]
    assert e.outcome_text == {"kk": "Несие беріледі", "ru": "Кредит одобрен", "en": "Loan approved"}[lang]
    assert [f["code"] for f in e.factors] == ["income", "debt_ratio", "history"]  # strongest first
    assert e.factors[0]["label"] == "Monthly income" and e.factors[0]["value"] == 450000
    assert e.factors[0]["direction_text"] != e.factors[1]["direction_text"]
    assert len(e.rights_text) == 3 and "3" in e.rights_text[1]
    with platform.db.reader(org) as s, pytest.raises(InvalidInput):
        service.explanation(s, d.id, "de")


# --- systems and decision types -------------------------------------------------------------------------


def test_systems_are_registered_once_with_a_secret_shown_once(
        platform: Platform, service: OversightService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    secret = system(service, platform, org, "scoring")
    assert secret is not None and secret.startswith("whsec_")
    with platform.db.transaction(org) as s, pytest.raises(Conflict):
        service.register_system(s, code="scoring", name="Again", risk_class="high", autonomy="low", actor="u:1")
    for kwargs, field in (({"risk_class": "extreme"}, "risk_class"), ({"autonomy": "total"}, "autonomy"),
                          ({"webhook_url": "ftp://x"}, "webhook_url"), ({"code": "Bad Code"}, "code")):
        fields = dict(code="other", name="Other", risk_class="minimal", autonomy="low", actor="u:1") | kwargs
        with platform.db.transaction(org) as s, pytest.raises(InvalidInput) as caught:
            service.register_system(s, **fields)
        assert caught.value.field == field
    with platform.db.transaction(org) as s:
        new = service.rotate_system_secret(s, "scoring", actor="u:1")
        view = service.update_system(s, "scoring", actor="u:1", risk_class="high", webhook_url=None)
    assert new != secret and view.risk_class == "high" and view.webhook_url is None
    with platform.db.reader(org) as s:
        assert [v.code for v in service.list_systems(s)] == ["scoring"]
        with pytest.raises(NotFound):
            service.get_system(s, "nope")


def test_decision_types_merge_platform_defaults_with_the_operators_policies(
        platform: Platform, service: OversightService, tenant_a: Tenant, tenant_b: Tenant) -> None:
    org = tenant_a.org_id
    with platform.db.transaction(org) as s:
        custom = service.set_decision_type(
            s, "tenancy", actor="user:1", names={"kk": "Жалға беру", "ru": "Аренда жилья", "en": "Tenancy"},
            outcome_schema={"type": "enum", "values": ["accept", "decline"]}, purpose="credit.scoring",
            four_eyes=True)
        with pytest.raises(InvalidInput) as caught:
            service.set_decision_type(s, "other", actor="user:1", names={"kk": "a", "ru": "b", "en": "c"},
                                      outcome_schema={"type": "enum", "values": ["a"]}, purpose="no.such.purpose")
        assert caught.value.field == "purpose"
    with platform.db.transaction(org) as s:
        for fields, field in (({"on_timeout": "approve"}, "on_timeout"), ({"review_hours": 0}, "review_hours"),
                              ({"outcome_schema": {"type": "enum", "values": []}}, "outcome_schema.values"),
                              ({"colour": "red"}, "colour")):
            with pytest.raises(InvalidInput) as caught:
                service.set_decision_type(s, "loan", actor="user:1", **fields)
            assert caught.value.field == field
    assert custom.source == "organization" and custom.four_eyes and custom.review == "by_risk"
    with platform.db.reader(org) as s:
        codes = {t.code for t in service.decision_types(s)}
        assert {"credit_limit", "loan", "benefit", "hiring", "insurance", "fraud_block", "tenancy"} <= codes
        with pytest.raises(NotFound) as missing:
            service.decision_type(s, "nothing")
        assert missing.value.field == "decision_type"
    with platform.db.reader(tenant_b.org_id) as s:
        assert "tenancy" not in {t.code for t in service.decision_types(s)}


# --- tenant isolation -----------------------------------------------------------------------------------


def test_another_organization_cannot_see_or_act_on_a_decision(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant, tenant_b: Tenant) -> None:
    d = _decided(platform, service, org, tenant_a)
    pending = submit(service, platform, org, "k-2").decision
    b = tenant_b.org_id
    b_reviewer = reviewer(platform, tenant_b)
    with platform.db.transaction(b) as s:
        for call in (lambda: service.get(s, d.id), lambda: service.reviews(s, d.id),
                     lambda: service.explanation(s, d.id, "en"),
                     lambda: service.open(s, pending.id, user=b_reviewer),
                     lambda: service.review(s, pending.id, user=b_reviewer, action="approve", expected_version=1),
                     lambda: service.object(s, d.id, channel="portal", filed_by="citizen:9")):
            with pytest.raises(NotFound):
                call()
        assert service.queue(s).items == [] and service.list_decisions(s).items == []
        assert service.reviewer_stats(s) == [] and service.objections(s) == []
        assert service.subject_decisions(s, 1) == []
        assert sum(service.sweep_deadlines(s, now=datetime.now(timezone.utc) + timedelta(days=9)).values()) == 0
    # a user of B acting in A's session is refused too
    with platform.db.transaction(org) as s, pytest.raises(PermissionDenied):
        service.review(s, pending.id, user=b_reviewer, action="approve", expected_version=1)
    with platform.db.reader(org) as s:
        assert service.get(s, pending.id).status == "pending"


# --- no personal data -----------------------------------------------------------------------------------


def test_no_identifier_factor_value_rationale_or_objection_text_reaches_the_audit_log_or_repr(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    secret_reason = "Applicant Aigerim Bekova lied about her salary"
    d = submit(service, platform, org, "k").decision
    done = review(service, platform, org, d.id, reviewer(platform, tenant_a), "amend", outcome="decline",
                  rationale=secret_reason)
    with platform.db.transaction(org) as s:
        o = service.object(s, d.id, channel="portal", filed_by="citizen:1", text="Aigerim objects strongly")
        service.decide_objection(s, o.id, user=reviewer(platform, tenant_a, "admin"), action="uphold",
                                 rationale=secret_reason)
    with platform.db.reader(org) as s:
        entries = [e for e in audit.list_entries(s, limit=200) if e.action.startswith("oversight.")]
        reviews = service.reviews(s, d.id)
        objection = service.get_objection(s, o.id)
        row = s.get(AiDecision, d.id)
    assert {e.action for e in entries} >= {"oversight.submit", "oversight.amend", "oversight.object",
                                          "oversight.objection_uphold", "oversight.system_register"}
    dumped = json.dumps([e.details for e in entries], ensure_ascii=False) + "".join(
        f"{e.object_id}{e.actor}" for e in entries)
    shown = " ".join(repr(x) for x in (d, done, *reviews, objection, row, submission("k"), subject(1), *FACTORS))
    for text in (dumped, shown):
        assert iin(1) not in text and "450000" not in text and "Aigerim" not in text and "salary" not in text
    assert "decline" not in dumped


def test_a_submission_by_pseudonym_finds_the_same_subject(
        platform: Platform, service: OversightService, org: int) -> None:
    first = submit(service, platform, org, "k-1").decision
    assert first.subject_pseudonym is not None
    again = submit(service, platform, org, "k-2", subject=SubjectRef(pseudonym=first.subject_pseudonym)).decision
    assert again.status == "pending" and again.subject_pseudonym == first.subject_pseudonym
    with platform.db.reader(org) as s:
        sid = service.subject_id_of(s, first.id)
        assert [x.id for x in service.subject_decisions(s, sid)] == [again.id, first.id]


def test_a_submission_is_a_plain_dataclass_that_accepts_factor_mappings(
        platform: Platform, service: OversightService, org: int) -> None:
    sub = Submission(system="scoring", idempotency_key="k-map", subject=subject(1), decision_type="loan",
                     proposed_outcome="approve", factors=[{"code": "income", "weight": 0.4}],  # type: ignore[list-item]
                     model_version="m")
    with platform.db.transaction(org) as s:
        d = service.submit(s, sub, actor="apikey:1").decision
    assert d.factors == [{"code": "income", "weight": 0.4, "label": None, "value": None}]


def test_another_organizations_pseudonym_is_unknown_here(
        platform: Platform, service: OversightService, org: int, tenant_b: Tenant) -> None:
    mine = submit(service, platform, org, "k-1").decision
    system(service, platform, tenant_b.org_id)
    assert mine.subject_pseudonym is not None
    with pytest.raises(InvalidInput) as caught:
        submit(service, platform, tenant_b.org_id, "k-1", subject=SubjectRef(pseudonym=mine.subject_pseudonym))
    assert caught.value.field == "subject.pseudonym"


def test_a_batch_is_all_or_nothing_and_names_the_bad_item(
        platform: Platform, service: OversightService, org: int) -> None:
    good = [submission(f"b{i}", serial=1) for i in range(3)]
    with platform.db.transaction(org) as s, pytest.raises(InvalidInput) as caught:
        service.submit_many(s, [*good, submission("b9", proposed_outcome="maybe")], actor="apikey:1")
    assert caught.value.field == "submissions[3].proposed_outcome"
    assert decision_count(platform, org) == 0
    with platform.db.transaction(org) as s:
        results = service.submit_many(s, [*good, good[0]], actor="apikey:1")  # a repeat inside the batch
    assert [r.created for r in results] == [True, True, True, False]
    assert results[3].decision.id == results[0].decision.id and decision_count(platform, org) == 3
    with platform.db.transaction(org) as s, pytest.raises(InvalidInput) as empty:
        service.submit_many(s, [], actor="apikey:1")
    assert empty.value.field == "submissions"


# --- the driver-level submission path (bench/oversight.py: >= 1,000 submissions/s) -----------------------


def test_a_submitted_row_reads_back_exactly_as_the_submission_answered(
        platform: Platform, service: OversightService, org: int) -> None:
    """The insert bypasses the ORM: what the ORM loads back (JSON, timestamps, flags) equals the answer."""
    system(service, platform, org, "offers", risk_class="minimal", autonomy="low")
    consent(platform, org, 1, "marketing.personalization")
    answers = [submit(service, platform, org, "k-pending").decision,
               submit(service, platform, org, "k-refused", serial=2).decision,
               submit(service, platform, org, "k-auto", system="offers", decision_type="offer",
                      proposed_outcome="show").decision]
    assert [d.status for d in answers] == ["pending", "refused", "automatic"]
    with platform.db.reader(org) as s:
        for answer in answers:
            assert service.get(s, answer.id).to_dict() == answer.to_dict()
            row = s.scalar(select(AiDecision).where(AiDecision.id == answer.id))
            assert row is not None and row.organization_id == org and row.submitted_by == "apikey:1"
            assert row.escalated_at is None and row.version == 1


def test_the_hot_path_reads_only_this_organizations_rows(
        platform: Platform, service: OversightService, org: int, tenant_b: Tenant) -> None:
    """Same system code, same idempotency key and a stricter policy in another organization: none of it is
    seen here (the driver-level statements filter every table on the organization themselves)."""
    other = tenant_b.org_id
    system(service, platform, other)  # also "scoring"
    consent(platform, other, 1)
    with platform.db.transaction(other) as s:
        service.set_decision_type(s, "loan", actor="user:1", review_hours=2)
        service.update_system(s, "scoring", actor="user:1", risk_class="high")
    theirs = submit(service, platform, other, "k-1").decision
    mine = submit(service, platform, org, "k-1").decision
    assert mine.id != theirs.id and mine.risk_class == "medium" and theirs.risk_class == "high"
    assert mine.deadline_at == mine.submitted_at + timedelta(hours=24)
    assert theirs.deadline_at == theirs.submitted_at + timedelta(hours=2)
    assert decision_count(platform, org) == 1 and decision_count(platform, other) == 1
    with platform.db.transaction(other) as s:
        service.set_decision_type(s, "loan", actor="user:1", active=False)
    assert submit(service, platform, org, "k-2").created  # their switched-off type is still on here
    with pytest.raises(InvalidInput) as caught:
        submit(service, platform, other, "k-2")
    assert caught.value.field == "decision_type"


def test_a_batch_repeating_a_key_creates_one_decision_and_answers_the_repeat_as_a_replay(
        platform: Platform, service: OversightService, org: int) -> None:
    with platform.db.transaction(org) as s:
        results = service.submit_many(s, [submission("k-1"), submission("k-2"), submission("k-1")],
                                      actor="apikey:1")
    assert [r.created for r in results] == [True, True, False]
    assert results[2].decision.id == results[0].decision.id and decision_count(platform, org) == 2
    with pytest.raises(Conflict) as caught, platform.db.transaction(org) as s:
        service.submit_many(s, [submission("k-3"), submission("k-3", proposed_outcome="decline")], actor="apikey:1")
    assert caught.value.field == "submissions[1].idempotency_key"
    assert decision_count(platform, org) == 2  # all or nothing


def test_every_submission_writes_exactly_one_audit_entry(
        platform: Platform, service: OversightService, org: int) -> None:
    def entries() -> list[Any]:
        with platform.db.reader(org) as s:
            return list(s.scalars(select(audit.AuditEntry).where(audit.AuditEntry.action == "oversight.submit")))

    first = submit(service, platform, org, "k-1").decision
    submit(service, platform, org, "k-1")  # a replay changes nothing
    with platform.db.transaction(org) as s:
        batch = service.submit_many(s, [submission(f"b-{i}") for i in range(3)], actor="apikey:1")
    ids = sorted(e.object_id for e in entries())
    assert ids == sorted(str(d) for d in [first.id] + [r.decision.id for r in batch])


def test_reading_an_objections_text_is_audited_without_the_text(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    d = _decided(platform, service, org, tenant_a)
    with platform.db.transaction(org) as s:
        o = service.object(s, d.id, channel="portal", filed_by="citizen:1", text="Менің табысым жоғары 791028302728")
    with platform.db.transaction(org) as s:
        assert service.get_objection(s, o.id).text is None  # no text, nothing to audit
        read = service.get_objection(s, o.id, include_text=True, actor="user:7")
    assert read.text is not None and "791028302728" in read.text
    with platform.db.reader(org) as s:
        entries = [e for e in audit.list_entries(s, limit=50) if e.action == "oversight.objection_text_read"]
    assert len(entries) == 1 and entries[0].actor == "user:7" and entries[0].object_id == str(o.id)
    assert "791028302728" not in json.dumps(entries[0].details) and "табыс" not in json.dumps(entries[0].details)
