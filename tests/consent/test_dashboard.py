"""The consent dashboards' queries: the operator's view (by purpose, withdrawals today, processors' time to
stop and the 15-working-day deadline, transfers awaiting notice) and the citizen's (my consents at every
operator, withdrawal through the portal, history that survives a crypto-shred). Tenant isolation for each."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import Tenant
from qorgau.consent import dashboard
from qorgau.consent import service as service_module
from qorgau.consent.citizens import citizens_for
from qorgau.consent.receipts import verify_receipt
from qorgau.consent.service import ConsentService, SubjectRef
from qorgau.core import audit
from qorgau.core.calendar import ALMATY, add_working_days, local_date
from qorgau.core.db import utcnow
from qorgau.core.errors import Conflict, NotFound
from qorgau.core.platform import Platform

from .helpers import give, processor, withdraw
from .owned import subject_iin

IIN = subject_iin(7070)
ME = SubjectRef(identifier_type="KZ_IIN", identifier=IIN)
STRANGER = SubjectRef(identifier_type="KZ_IIN", identifier=subject_iin(8080))


def overview(platform: Platform, consents: ConsentService, org_id: int, **kwargs: Any) -> dashboard.OperatorOverview:
    with platform.db.reader(org_id) as session:
        return dashboard.operator_overview(consents, session, language="en", **kwargs)


def verified_citizen(platform: Platform, tenant: Tenant, iin: str = IIN) -> int:
    service = citizens_for(platform)
    with platform.db.transaction() as session:
        code = service.issue_enrollment(session, iin, actor="test").code
    user_id = tenant.users["citizen"][0]
    service.verify(user_id, code, actor=f"user:{user_id}")
    return user_id


def transfer(consents: ConsentService, platform: Platform, org_id: int, consent_id: int, counterparty_id: int,
             categories: list[str] | None = None) -> Any:
    with platform.db.transaction(org_id) as session:
        return consents.record_transfer(session, consent_id, counterparty_id,
                                        data_categories=categories or ["PHONE_NUMBER"], actor="user:1")


# --- the operator's view ------------------------------------------------------------------------------


def test_consents_are_counted_by_purpose_and_a_consent_past_its_term_counts_as_expired(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant) -> None:
    soon = utcnow() + timedelta(hours=1)
    give(consents, platform, tenant_a.org_id, ME)
    give(consents, platform, tenant_a.org_id, ME)  # supersedes the first
    short = give(consents, platform, tenant_a.org_id, STRANGER, valid_until=soon)
    gone = give(consents, platform, tenant_a.org_id, STRANGER, purpose="marketing.email",
                data_categories=["EMAIL_ADDRESS"])
    withdraw(consents, platform, tenant_a.org_id, gone.id)
    for n in range(3):  # another operator's consents never count here
        give(consents, platform, tenant_b.org_id, SubjectRef(identifier_type="KZ_IIN", identifier=subject_iin(n)))
    now = overview(platform, consents, tenant_a.org_id)
    sms = next(p for p in now.purposes if p.code == "marketing.sms")
    assert (sms.name, sms.active, sms.superseded, sms.expired, sms.total) == ("Advertising by SMS", 2, 1, 0, 3)
    later = overview(platform, consents, tenant_a.org_id, now=soon + timedelta(seconds=1))
    sms = next(p for p in later.purposes if p.code == "marketing.sms")
    assert (sms.active, sms.expired) == (1, 1)  # as the decision point sees it, before the sweep runs
    assert {p.code: p.withdrawn for p in later.purposes}["marketing.email"] == 1
    assert later.totals == {"active": 1, "withdrawn": 1, "expired": 1, "superseded": 1}
    assert short.id  # the expiring one is the stranger's
    other = overview(platform, consents, tenant_b.org_id)
    assert other.totals["active"] == 3 and other.withdrawals_today == []


def test_withdrawals_today_follow_the_kazakhstan_calendar_day(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant) -> None:
    cp = processor(consents, platform, tenant_a.org_id).counterparty
    mine = give(consents, platform, tenant_a.org_id, ME, counterparties=[cp.id])
    transfer(consents, platform, tenant_a.org_id, mine.id, cp.id)
    withdraw(consents, platform, tenant_a.org_id, mine.id)
    theirs = give(consents, platform, tenant_b.org_id, ME)
    withdraw(consents, platform, tenant_b.org_id, theirs.id)
    now = utcnow()
    with platform.db.reader(tenant_a.org_id) as session:
        taxonomy = consents.taxonomy(session)
        today = dashboard.withdrawals_on(session, taxonomy, local_date(now), language="ru")
        yesterday = dashboard.withdrawals_on(session, taxonomy, local_date(now) - timedelta(days=1), language="ru")
    assert [(w.consent_id, w.purpose_name, w.notifications, w.by_subject) for w in today] == \
        [(mine.id, "Рекламные SMS-рассылки", 1, False)]
    assert yesterday == []
    start, end = dashboard.day_bounds(local_date(now))
    assert start <= now < end and start.astimezone(ALMATY).hour == 0 and end - start == timedelta(days=1)


def test_processors_time_to_stop_and_the_statutory_deadline(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fast = processor(consents, platform, tenant_a.org_id, name="Fast processor", serial=601).counterparty
    slow = processor(consents, platform, tenant_a.org_id, name="Slow processor", serial=602).counterparty
    quiet = processor(consents, platform, tenant_a.org_id, name="Quiet processor", serial=603, url=None).counterparty
    ids = [fast.id, slow.id, quiet.id]
    first = give(consents, platform, tenant_a.org_id, ME, counterparties=ids)
    for cp in ids:
        transfer(consents, platform, tenant_a.org_id, first.id, cp)
    notices = {n.counterparty_id: n for n in withdraw(consents, platform, tenant_a.org_id, first.id).notifications}
    deadline = notices[fast.id].deadline
    assert deadline == add_working_days(utcnow(), 15)
    with platform.db.transaction(tenant_a.org_id) as session:
        consents.confirm_stopped(session, notices[fast.id].id, actor="counterparty:fast")
    late_moment = datetime.combine(deadline + timedelta(days=3), datetime.min.time(), tzinfo=ALMATY) + timedelta(hours=12)
    monkeypatch.setattr(service_module, "utcnow", lambda: late_moment.astimezone(timezone.utc))
    with platform.db.transaction(tenant_a.org_id) as session:
        consents.confirm_stopped(session, notices[slow.id].id, actor="counterparty:slow")
    monkeypatch.undo()

    in_time = deadline  # on the deadline day itself a confirmation is still in time
    with platform.db.reader(tenant_a.org_id) as session:
        stats, rows = dashboard.processor_confirmations(session, in_time)
    by = {s.name: s for s in stats}
    assert by["Fast processor"].confirmed == 1 and not by["Fast processor"].flagged
    assert by["Fast processor"].median_time_to_stop < timedelta(minutes=5)
    assert by["Slow processor"].confirmed_late == 1 and by["Slow processor"].flagged
    assert by["Slow processor"].max_time_to_stop > timedelta(days=15)
    assert by["Quiet processor"].pending == 1 and by["Quiet processor"].overdue == 0
    quiet_row = next(r for r in rows if r.counterparty_id == quiet.id)
    assert quiet_row.delivery == "none" and quiet_row.working_days_left == 0 and not quiet_row.overdue
    assert next(r for r in rows if r.counterparty_id == fast.id).delivery == "pending"
    slow_row = next(r for r in rows if r.counterparty_id == slow.id)
    assert slow_row.confirmed_late and slow_row.working_days_to_stop > 15

    after = deadline + timedelta(days=1)
    with platform.db.reader(tenant_a.org_id) as session:
        stats, rows = dashboard.processor_confirmations(session, after)
    quiet_stats = next(s for s in stats if s.name == "Quiet processor")
    assert quiet_stats.overdue == 1 and quiet_stats.flagged and stats[0].flagged
    assert rows[0].counterparty_id == quiet.id and rows[0].overdue and rows[0].working_days_late >= 0
    # another operator sees none of it
    with platform.db.reader(tenant_b.org_id) as session:
        assert dashboard.processor_confirmations(session, after) == ([], [])


def test_transfers_waiting_for_the_subject_s_notice(platform: Platform, consents: ConsentService,
                                                    tenant_a: Tenant, tenant_b: Tenant) -> None:
    bureau = processor(consents, platform, tenant_a.org_id, name="Credit bureau", kind="third_party",
                       url=None, serial=701).counterparty
    consent = give(consents, platform, tenant_a.org_id, ME, counterparties=[bureau.id], third_party_transfer=True,
                   notify_on_transfer=True)
    moved = transfer(consents, platform, tenant_a.org_id, consent.id, bureau.id)
    today = local_date(utcnow())
    with platform.db.reader(tenant_a.org_id) as session:
        [row] = dashboard.transfers_awaiting_notice(session, today)
        [late] = dashboard.transfers_awaiting_notice(session, moved.notify_deadline + timedelta(days=1))
    assert (row.id, row.counterparty_name, row.working_days_left, row.overdue) == (moved.id, "Credit bureau", 10, False)
    assert late.overdue
    with platform.db.reader(tenant_b.org_id) as session:
        assert dashboard.transfers_awaiting_notice(session, today) == []
    with platform.db.transaction(tenant_a.org_id) as session:
        consents.mark_subject_notified(session, moved.id, actor="user:1")
    with platform.db.reader(tenant_a.org_id) as session:
        assert dashboard.transfers_awaiting_notice(session, today) == []


# --- the citizen's view --------------------------------------------------------------------------------


def test_a_citizen_sees_their_consents_at_every_operator_and_nobody_else_s(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant) -> None:
    cp = processor(consents, platform, tenant_b.org_id, name="Mailer", serial=801).counterparty
    a = give(consents, platform, tenant_a.org_id, ME, purpose="credit.scoring",
             data_categories=["credit_history", "health"])
    b = give(consents, platform, tenant_b.org_id, ME, purpose="marketing.email", data_categories=["EMAIL_ADDRESS"],
             counterparties=[cp.id])
    transfer(consents, platform, tenant_b.org_id, b.id, cp.id, ["EMAIL_ADDRESS"])
    give(consents, platform, tenant_b.org_id, STRANGER)
    user_id = verified_citizen(platform, tenant_a)
    operators = dashboard.citizen_overview(platform, user_id, language="kk", with_history=True)
    assert [(o.organization_id, [c.id for c in o.consents]) for o in operators] == \
        [(tenant_a.org_id, [a.id]), (tenant_b.org_id, [b.id])]
    scoring = operators[0].consents[0]
    assert scoring.purpose_name == "Кредиттік скоринг"
    assert [(c.name, c.sensitive) for c in scoring.categories] == [("Кредиттік тарих", False),
                                                                   ("Денсаулық туралы деректер", True)]
    assert scoring.status == "active" and scoring.can_withdraw and scoring.history[0].event == "given"
    [mailer] = operators[1].recipients
    assert mailer.counterparty.name == "Mailer" and mailer.withdrawal_told_at is None
    assert operators[0].bin == tenant_a.bin and operators[1].bin == tenant_b.bin
    # someone else's consent, or an unknown operator, is simply not found
    stranger = next(c for c in consents_of(platform, consents, tenant_b.org_id, STRANGER))
    for org, consent_id in ((tenant_b.org_id, stranger), (tenant_a.org_id, b.id), (999_999, a.id)):
        with pytest.raises(NotFound):
            dashboard.citizen_consent(platform, user_id, org, consent_id, language="en")
        with pytest.raises(NotFound):
            dashboard.withdraw_for_citizen(platform, user_id, org, consent_id)
        with pytest.raises(NotFound):
            dashboard.citizen_receipt(platform, user_id, org, consent_id, "consent")
    assert consents.check(STRANGER, organization_id=tenant_b.org_id, purpose="marketing.sms").allow


def consents_of(platform: Platform, consents: ConsentService, org_id: int, subject: SubjectRef) -> list[int]:
    with platform.db.reader(org_id) as session:
        return [c.id for c in consents.consents_of_subject(session, subject)]


def test_withdrawing_through_the_portal_stops_processing_and_the_history_survives_the_shred(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    cp = processor(consents, platform, tenant_a.org_id, name="Gateway", serial=901).counterparty
    only = give(consents, platform, tenant_a.org_id, ME, counterparties=[cp.id])
    transfer(consents, platform, tenant_a.org_id, only.id, cp.id)
    user_id = verified_citizen(platform, tenant_a)
    key = "portal-test-key-1"
    done = dashboard.withdraw_for_citizen(platform, user_id, tenant_a.org_id, only.id, idempotency_key=key)
    assert done.channel == "non_state_service" and done.actor == f"user:{user_id}"
    assert done.shredded  # the only consent: nothing of the operator's remains, the vault key is destroyed
    assert not consents.check(ME, organization_id=tenant_a.org_id, purpose="marketing.sms").allow
    again = dashboard.withdraw_for_citizen(platform, user_id, tenant_a.org_id, only.id, idempotency_key=key)
    assert again.repeated and again.withdrawal_id == done.withdrawal_id
    # the IIN no longer finds the subject at this operator (its lookups went with the key) ...
    found = citizens_for(platform).subjects(user_id)
    assert [(s.organization_id, s.found_by) for s in found] == [(tenant_a.org_id, "link")]
    # ... but the citizen still sees their own withdrawn consent, its history and both receipts
    [operator] = dashboard.citizen_overview(platform, user_id, language="en")
    [consent] = operator.consents
    assert consent.status == "withdrawn" and consent.shredded and consent.withdrawal_receipt_id
    _, detail = dashboard.citizen_consent(platform, user_id, tenant_a.org_id, only.id, language="en")
    assert [e.event for e in detail.history][-1] == "withdrawn" and detail.history[-1].by_you
    with platform.db.reader() as session:
        key_hex = consents.receipt_public_key(session)
    for kind in ("withdrawal", "consent"):
        document = dashboard.citizen_receipt(platform, user_id, tenant_a.org_id, only.id, kind)
        assert verify_receipt(document, public_key=key_hex).valid
    [recipient] = operator.recipients
    assert recipient.withdrawal_told_at is not None and recipient.stop_confirmed_at is None
    with platform.db.reader(tenant_a.org_id) as session:
        [entry] = audit.list_entries(session, action="consent.withdraw", limit=5)
    assert entry.actor == f"user:{user_id}"


def test_a_replaced_consent_cannot_be_withdrawn_and_nothing_changes(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    old = give(consents, platform, tenant_a.org_id, ME)
    new = give(consents, platform, tenant_a.org_id, ME)  # supersedes the old one
    user_id = verified_citizen(platform, tenant_a)
    with pytest.raises(Conflict) as exc:
        dashboard.withdraw_for_citizen(platform, user_id, tenant_a.org_id, old.id)
    assert exc.value.field == "consent_id"
    assert consents.check(ME, organization_id=tenant_a.org_id, purpose="marketing.sms").consent_id == new.id
    assert citizens_for(platform).subjects(user_id)[0].found_by == "iin"  # no link was written either
    with platform.db.reader() as session:
        from qorgau.consent.citizens import CitizenSubjectLink
        from sqlalchemy import select

        assert session.scalar(select(CitizenSubjectLink.id)) is None
