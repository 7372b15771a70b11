"""Races (issue 6): two reviewers acting at once — exactly one wins, the other sees a clear conflict; a
resubmitted idempotency key never creates a second decision. Real threads, each with its own session, on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import Tenant
from qorgau.consent.outbox import OutboxMessage
from qorgau.core.errors import Conflict
from qorgau.core.platform import Platform
from qorgau.oversight.models import AiDecision, DecisionReview
from qorgau.oversight.service import OversightService, oversight_for

from .helpers import consent, submission, submit, system, user


@pytest.fixture
def service(platform: Platform) -> OversightService:
    return oversight_for(platform)


@pytest.fixture
def org(platform: Platform, service: OversightService, tenant_a: Tenant) -> int:
    system(service, platform, tenant_a.org_id)
    consent(platform, tenant_a.org_id, 1)
    return tenant_a.org_id


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start every call at the same moment (a barrier) and collect each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 — the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def count(platform: Platform, org: int, model: Any) -> int:
    with platform.db.reader(org) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_concurrent_duplicate_submissions_create_exactly_one_decision(
        platform: Platform, service: OversightService, org: int) -> None:
    def once() -> Any:
        with platform.db.transaction(org) as s:
            return service.submit(s, submission("dup-1", serial=1), actor="apikey:1")

    results = run_together([once] * 8)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, [type(e).__name__ for e in errors]
    assert len({r.decision.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert count(platform, org, AiDecision) == 1


def test_concurrent_duplicates_for_a_new_subject_create_one_subject_and_one_decision(
        platform: Platform, service: OversightService, org: int) -> None:
    """The subject is not in the vault yet: every racer tokenizes it; still one subject, one decision."""
    def once() -> Any:
        with platform.db.transaction(org) as s:
            return service.submit(s, submission("dup-new", serial=77), actor="apikey:1")

    results = run_together([once] * 6)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({r.decision.id for r in results}) == 1 and sum(r.created for r in results) == 1
    assert len({r.decision.subject_pseudonym for r in results}) == 1
    assert count(platform, org, AiDecision) == 1
    assert count(platform, org, OutboxMessage) == 1  # refused (no consent): told once


def test_concurrent_different_bodies_under_one_key_one_wins_the_rest_conflict(
        platform: Platform, service: OversightService, org: int) -> None:
    def with_outcome(outcome: str) -> Callable[[], Any]:
        def once() -> Any:
            with platform.db.transaction(org) as s:
                return service.submit(s, submission("dup-2", proposed_outcome=outcome), actor="apikey:1")
        return once

    results = run_together([with_outcome("approve"), with_outcome("decline")] * 2)
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert {type(e) for e in lost} <= {Conflict} and all(e.field == "idempotency_key" for e in lost)
    assert len({r.decision.id for r in won}) == 1 and len({r.decision.proposed_outcome for r in won}) == 1
    assert count(platform, org, AiDecision) == 1


@pytest.mark.parametrize("actions", [("approve", "reject"), ("approve", "approve"), ("reject", "amend"),
                                     ("escalate", "approve")])
def test_two_reviewers_acting_on_the_same_version_exactly_one_wins(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant, actions: tuple[str, str]) -> None:
    d = submit(service, platform, org, "k").decision
    people = [user(platform, org, tenant_a.users[role][0]) for role in ("reviewer", "dpo")]
    extra = {"approve": {}, "reject": {"rationale": "no"}, "amend": {"outcome": "decline", "rationale": "lower"},
             "escalate": {}}

    def act(i: int) -> Callable[[], Any]:
        def once() -> Any:
            with platform.db.transaction(org) as s:
                return service.review(s, d.id, user=people[i], action=actions[i], expected_version=d.version,
                                      **extra[actions[i]])
        return once

    results = run_together([act(0), act(1)])
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], Conflict) and lost[0].field in ("expected_version", "status")
    assert won[0].version == d.version + 1
    assert count(platform, org, DecisionReview) == 1
    with platform.db.reader(org) as s:
        assert service.get(s, d.id).status == won[0].status
    final = won[0].status in ("approved", "amended", "rejected")
    assert count(platform, org, OutboxMessage) == (1 if final else 0)


def test_many_reviewers_racing_on_many_decisions_never_double_decide(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    ids = [submit(service, platform, org, f"k{i}").decision.id for i in range(5)]
    people = [user(platform, org, tenant_a.users[role][0]) for role in ("reviewer", "dpo", "admin")]

    def act(person: Any, decision_id: int) -> Callable[[], Any]:
        def once() -> Any:
            with platform.db.transaction(org) as s:
                return service.review(s, decision_id, user=person, action="approve", expected_version=1)
        return once

    results = run_together([act(p, i) for i in ids for p in people])
    outcomes = Counter("won" if not isinstance(r, Exception) else type(r).__name__ for r in results)
    assert outcomes == {"won": 5, "Conflict": 10}
    assert count(platform, org, DecisionReview) == 5 and count(platform, org, OutboxMessage) == 5


def test_a_deadline_sweep_racing_a_reviewer_never_applies_a_decision_twice(
        platform: Platform, service: OversightService, org: int, tenant_a: Tenant) -> None:
    from datetime import timedelta

    d = submit(service, platform, org, "k").decision
    assert d.deadline_at is not None
    who = user(platform, org, tenant_a.users["reviewer"][0])

    def sweep() -> Any:
        with platform.db.transaction(org) as s:
            return service.sweep_deadlines(s, now=d.deadline_at + timedelta(seconds=1))

    def approve() -> Any:
        with platform.db.transaction(org) as s:
            return service.review(s, d.id, user=who, action="approve", expected_version=1)

    swept, approved = run_together([sweep, approve])
    with platform.db.reader(org) as s:
        final = service.get(s, d.id)
    if isinstance(approved, Conflict):
        assert swept == {"escalated": 1, "rejected": 0, "timed_out": 0} and final.status == "escalated"
    else:
        assert swept == {"escalated": 0, "rejected": 0, "timed_out": 0} and final.status == "approved"
    assert final.version == 2


def test_a_policy_or_system_change_takes_effect_for_the_next_submission_in_every_service_instance(
        platform: Platform, org: int) -> None:
    """Two service instances on one database (as two processes would be): what one changes, the other's very
    next submission obeys — the submission path keeps nothing that could go stale."""
    from datetime import timedelta

    from qorgau.core.errors import InvalidInput

    first, second = OversightService(platform), OversightService(platform)
    d = submit(first, platform, org, "k-1").decision  # warms whatever the first instance keeps
    assert d.deadline_at == d.submitted_at + timedelta(hours=24) and not d.four_eyes
    with platform.db.transaction(org) as s:
        second.set_decision_type(s, "loan", actor="user:1", review_hours=3, four_eyes=True)
    d = submit(first, platform, org, "k-2").decision
    assert d.deadline_at == d.submitted_at + timedelta(hours=3) and d.four_eyes and d.approvals_needed == 2
    with platform.db.transaction(org) as s:
        second.update_system(s, "scoring", actor="user:1", risk_class="high")
    assert submit(first, platform, org, "k-3").decision.risk_class == "high"
    with platform.db.transaction(org) as s:
        second.set_decision_type(s, "loan", actor="user:1", active=False)
    with pytest.raises(InvalidInput) as caught:
        submit(first, platform, org, "k-4")
    assert caught.value.field == "decision_type"
    with platform.db.transaction(org) as s:
        second.set_decision_type(s, "loan", actor="user:1", active=True)
        second.update_system(s, "scoring", actor="user:1", status="suspended")
    with pytest.raises(InvalidInput) as caught:
        submit(first, platform, org, "k-5")
    assert caught.value.field == "system"
