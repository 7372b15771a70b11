"""The consent dashboards' queries: the operator's view and the citizen's portal.

Read-only, over the consent module's tables (:mod:`qorgau.consent.models`, :mod:`qorgau.consent.outbox`)
and its service (:class:`~qorgau.consent.service.ConsentService`); every change still goes through the
service. Operator queries take a tenant-scoped session (the ORM filters every row to the operator); the
citizen queries open one session per operator, scoped to it.

* Operator (``/consents``): consents by purpose (active / withdrawn / expired — a consent past its term
  counts as expired at once, as the decision point sees it — / superseded), withdrawals today (Asia/Almaty
  calendar day), processors' confirmations with time-to-stop and the statutory 15-working-day deadline
  (L-PD-WITHDRAW), transfers awaiting the subject's notice within 10 working days (L-PD-TRANSFER).
* Citizen (``/me``): the citizen's consents at every operator (by operator, purpose, data), each with its
  history and receipts; "who has my data" — operators and the processors and third parties that received
  the citizen's data (recorded transfers), with whether they confirmed stopping after a withdrawal.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..core import auth
from ..core.calendar import ALMATY, local_date, working_days_between
from ..core.db import utcnow
from ..core.errors import Conflict, NotFound
from .citizens import Citizens, citizens_for
from .models import (
    ACTIVE,
    EXPIRED,
    SUPERSEDED,
    WITHDRAWN,
    Consent,
    ConsentEvent,
    ConsentWithdrawal,
    Counterparty,
    ProcessorNotification,
    Transfer,
)
from .outbox import OutboxMessage
from .purposes import Taxonomy
from .service import ConsentService, LegalBasisRef, Withdrawal, consent_for

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = [
    "CategoryView", "CitizenConsent", "ConsentRow", "CounterpartyStops", "NotificationRow", "OperatorData",
    "OperatorOverview", "PurposeCounts", "RecipientView", "TransferNotice", "WithdrawalRow", "citizen_consent",
    "citizen_overview", "consents_by_purpose", "day_bounds", "operator_overview", "processor_confirmations",
    "transfers_awaiting_notice", "withdraw_for_citizen", "withdrawals_on",
]

PORTAL_CHANNEL = "non_state_service"  # L-PD-CONSENT, Art.8-2: the portal is a non-state service
RECENT_NOTIFICATIONS = 100


# --- shared helpers ----------------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A Kazakhstan calendar day (Asia/Almaty) as a half-open UTC interval."""
    start = datetime.combine(day, time(0), tzinfo=ALMATY)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=ALMATY)


def _purpose_name(taxonomy: Taxonomy, code: str, language: str) -> str:
    purpose = taxonomy.purpose(code)
    return purpose.name(language) if purpose is not None else code


@dataclass(frozen=True)
class CategoryView:
    code: str
    name: str
    sensitive: bool


def _categories(taxonomy: Taxonomy, codes: Sequence[str], language: str) -> list[CategoryView]:
    out = []
    for code in codes:
        category = taxonomy.category(code)
        out.append(CategoryView(code, category.name(language) if category else code,
                                bool(category and category.sensitive)))
    return out


# --- the operator's view ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PurposeCounts:
    code: str
    name: str
    active: int = 0
    withdrawn: int = 0
    expired: int = 0
    superseded: int = 0

    @property
    def total(self) -> int:
        return self.active + self.withdrawn + self.expired + self.superseded


def consents_by_purpose(session: Session, taxonomy: Taxonomy, *, language: str,
                        now: datetime | None = None) -> list[PurposeCounts]:
    """Per purpose: how many consents are active, withdrawn, expired (stored, or active past their term),
    superseded. Purposes in taxonomy order, unknown codes (a purpose later removed) after them."""
    now = now or utcnow()
    effective = case(
        (and_(Consent.status == ACTIVE, Consent.valid_until.is_not(None), Consent.valid_until <= now), EXPIRED),
        else_=Consent.status)
    # Group over a subquery: PostgreSQL would not match a CASE with a bound parameter in SELECT to the
    # same CASE in GROUP BY (each gets its own parameter).
    each = select(Consent.purpose.label("purpose"), effective.label("status")).subquery()
    rows = session.execute(select(each.c.purpose, each.c.status, func.count())
                           .group_by(each.c.purpose, each.c.status)).all()
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for purpose, status, n in rows:
        counts[purpose][status] = counts[purpose].get(status, 0) + int(n)
    order = {code: i for i, code in enumerate(taxonomy.purposes)}
    out = []
    for code in sorted(counts, key=lambda c: (order.get(c, len(order)), c)):
        by = counts[code]
        out.append(PurposeCounts(code, _purpose_name(taxonomy, code, language), by.get(ACTIVE, 0),
                                 by.get(WITHDRAWN, 0), by.get(EXPIRED, 0), by.get(SUPERSEDED, 0)))
    return out


@dataclass(frozen=True)
class WithdrawalRow:
    withdrawal_id: int
    consent_id: int
    purpose: str
    purpose_name: str
    withdrawn_at: datetime
    channel: str
    by_subject: bool      # through the citizen portal (a citizen account), not by operator staff
    refused: bool
    shredded: bool
    notifications: int
    receipt_id: str


def withdrawals_on(session: Session, taxonomy: Taxonomy, day: date, *, language: str) -> list[WithdrawalRow]:
    """The withdrawals recorded on ``day`` (Asia/Almaty), newest first."""
    start, end = day_bounds(day)
    notified = (select(ProcessorNotification.withdrawal_id, func.count().label("n"))
                .group_by(ProcessorNotification.withdrawal_id).subquery())
    rows = session.execute(
        select(ConsentWithdrawal, Consent.purpose, func.coalesce(notified.c.n, 0))
        .join(Consent, Consent.id == ConsentWithdrawal.consent_id)
        .outerjoin(notified, notified.c.withdrawal_id == ConsentWithdrawal.id)
        .where(ConsentWithdrawal.withdrawn_at >= start, ConsentWithdrawal.withdrawn_at < end)
        .order_by(ConsentWithdrawal.withdrawn_at.desc(), ConsentWithdrawal.id.desc())).all()
    citizen_actors = _citizen_actors(session, {w.actor for w, _, _ in rows})
    return [WithdrawalRow(w.id, w.consent_id, purpose, _purpose_name(taxonomy, purpose, language), w.withdrawn_at,
                          w.channel, w.actor in citizen_actors, w.refused, w.shredded, int(n), w.receipt_id)
            for w, purpose, n in rows]


def _citizen_actors(session: Session, actors: set[str]) -> set[str]:
    """Which of these ``user:<id>`` actors are citizen accounts (they may belong to another organization)."""
    ids = {int(a[5:]) for a in actors if a.startswith("user:") and a[5:].isdigit()}
    if not ids:
        return set()
    rows = session.execute(select(auth.User.id, auth.User.roles).where(auth.User.id.in_(ids))
                           .execution_options(qorgau_cross_tenant=True)).all()
    return {f"user:{uid}" for uid, roles in rows if "citizen" in (roles or [])}


@dataclass(frozen=True)
class NotificationRow:
    """One processor's notification: delivery, confirmation, time to stop, the statutory deadline."""

    id: int
    consent_id: int
    counterparty_id: int
    counterparty_name: str
    counterparty_kind: str
    created_at: datetime
    deadline: date
    confirmed_at: datetime | None
    delivery: str              # "pending" | "delivered" | "dead" | "none" (no webhook: told by other means)
    delivery_attempts: int
    last_error: str | None
    overdue: bool              # unconfirmed after the deadline
    confirmed_late: bool       # confirmed, but after the deadline
    working_days_left: int | None   # open and in time: working days until the deadline (0 = today)
    working_days_late: int | None   # overdue: working days past the deadline

    @property
    def time_to_stop(self) -> timedelta | None:
        return None if self.confirmed_at is None else self.confirmed_at - self.created_at

    @property
    def working_days_to_stop(self) -> int | None:
        if self.confirmed_at is None:
            return None
        return working_days_between(self.created_at, self.confirmed_at)


@dataclass(frozen=True)
class CounterpartyStops:
    """Per processor / third party: how fast it confirms stopping, and whether it is past the law's deadline."""

    counterparty_id: int
    name: str
    kind: str
    country: str
    notified: int
    confirmed: int
    pending: int
    overdue: int
    confirmed_late: int
    median_time_to_stop: timedelta | None
    max_time_to_stop: timedelta | None

    @property
    def flagged(self) -> bool:
        """Past the statutory 15 working days (L-PD-WITHDRAW): something unconfirmed or confirmed late."""
        return self.overdue > 0 or self.confirmed_late > 0


def _notification_rows(session: Session, today: date, *, limit: int | None = None,
                       open_only: bool = False) -> list[NotificationRow]:
    stmt = (select(ProcessorNotification, Counterparty.name, Counterparty.kind, OutboxMessage.status,
                   OutboxMessage.attempts, OutboxMessage.last_error)
            .join(Counterparty, Counterparty.id == ProcessorNotification.counterparty_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == ProcessorNotification.outbox_message_id)
            .order_by(ProcessorNotification.created_at.desc(), ProcessorNotification.id.desc()))
    if open_only:
        stmt = stmt.where(ProcessorNotification.confirmed_at.is_(None))
    if limit is not None:
        stmt = stmt.limit(limit)
    out = []
    for n, name, kind, status, attempts, error in session.execute(stmt).all():
        confirmed_day = local_date(n.confirmed_at) if n.confirmed_at is not None else None
        overdue = n.confirmed_at is None and today > n.deadline
        out.append(NotificationRow(
            n.id, n.consent_id, n.counterparty_id, name, kind, n.created_at, n.deadline, n.confirmed_at,
            status or "none", int(attempts or 0), error, overdue,
            confirmed_day is not None and confirmed_day > n.deadline,
            working_days_between(today, n.deadline) if n.confirmed_at is None and not overdue else None,
            working_days_between(n.deadline, today) if overdue else None))
    return out


def processor_confirmations(session: Session, today: date) -> tuple[list[CounterpartyStops], list[NotificationRow]]:
    """Per counterparty statistics over every notification, and the latest notifications (open ones first,
    then by time). ``today`` is a Kazakhstan calendar date (:func:`qorgau.core.calendar.local_date`)."""
    everything = _notification_rows(session, today)
    by_cp: dict[int, list[NotificationRow]] = defaultdict(list)
    for row in everything:
        by_cp[row.counterparty_id].append(row)
    counterparties = {c.id: c for c in session.scalars(select(Counterparty).where(Counterparty.id.in_(list(by_cp))))} \
        if by_cp else {}
    stats = []
    for cp_id, rows in by_cp.items():
        cp = counterparties[cp_id]
        times = sorted(t for r in rows if (t := r.time_to_stop) is not None)
        stats.append(CounterpartyStops(
            cp_id, cp.name, cp.kind, cp.country, len(rows), len(times), sum(r.confirmed_at is None for r in rows),
            sum(r.overdue for r in rows), sum(r.confirmed_late for r in rows),
            timedelta(seconds=statistics.median(t.total_seconds() for t in times)) if times else None,
            times[-1] if times else None))
    stats.sort(key=lambda s: (not s.flagged, -s.overdue, -s.pending, s.name))
    latest = sorted(everything, key=lambda r: (r.confirmed_at is not None, not r.overdue, r.deadline,
                                               -r.created_at.timestamp()))[:RECENT_NOTIFICATIONS]
    return stats, latest


@dataclass(frozen=True)
class TransferNotice:
    """A transfer the subject must be told of within 10 working days (L-PD-TRANSFER), not yet told."""

    id: int
    consent_id: int
    counterparty_name: str
    counterparty_kind: str
    country: str
    transferred_at: datetime
    deadline: date | None
    overdue: bool
    working_days_left: int | None


def transfers_awaiting_notice(session: Session, today: date, *, limit: int = 200) -> list[TransferNotice]:
    rows = session.execute(
        select(Transfer, Counterparty.name, Counterparty.kind)
        .join(Counterparty, Counterparty.id == Transfer.counterparty_id)
        .where(Transfer.notify_subject.is_(True), Transfer.subject_notified_at.is_(None))
        .order_by(Transfer.notify_deadline, Transfer.id).limit(limit)).all()
    out = []
    for t, name, kind in rows:
        overdue = t.notify_deadline is not None and today > t.notify_deadline
        left = working_days_between(today, t.notify_deadline) if t.notify_deadline and not overdue else None
        out.append(TransferNotice(t.id, t.consent_id, name, kind, t.country, t.transferred_at, t.notify_deadline,
                                  overdue, left))
    return out


@dataclass(frozen=True)
class OperatorOverview:
    today: date
    purposes: list[PurposeCounts]
    withdrawals_today: list[WithdrawalRow]
    processors: list[CounterpartyStops]
    notifications: list[NotificationRow]
    transfers: list[TransferNotice]

    @property
    def totals(self) -> dict[str, int]:
        keys = ("active", "withdrawn", "expired", "superseded")
        return {k: sum(getattr(p, k) for p in self.purposes) for k in keys}

    @property
    def overdue_notifications(self) -> int:
        return sum(p.overdue for p in self.processors)

    @property
    def overdue_transfers(self) -> int:
        return sum(t.overdue for t in self.transfers)


def operator_overview(service: ConsentService, session: Session, *, language: str,
                      now: datetime | None = None) -> OperatorOverview:
    """Everything the operator's consent page shows, from one read session."""
    now = now or utcnow()
    today = local_date(now)
    taxonomy = service.taxonomy(session)
    processors, notifications = processor_confirmations(session, today)
    return OperatorOverview(today, consents_by_purpose(session, taxonomy, language=language, now=now),
                            withdrawals_on(session, taxonomy, today, language=language), processors, notifications,
                            transfers_awaiting_notice(session, today))


# --- the citizen's portal ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CounterpartyView:
    id: int
    name: str
    kind: str
    country: str
    bin: str | None
    registration: str | None


@dataclass(frozen=True)
class HistoryEvent:
    at: datetime
    event: str
    channel: str | None
    to_status: str
    by_you: bool


@dataclass(frozen=True)
class CitizenConsent:
    """One consent as its subject sees it (Art.8 p.4 fields, status, withdrawal outcome)."""

    organization_id: int
    id: int
    receipt_id: str
    purpose: str
    purpose_name: str
    categories: list[CategoryView]
    valid_until: datetime | None
    status: str
    given_at: datetime
    channel: str
    withdrawn_at: datetime | None
    third_party_transfer: bool
    counterparties: list[CounterpartyView]
    cross_border: bool
    countries: list[str]
    public_sources: bool
    other: str | None
    sensitive: bool
    notify_on_transfer: bool
    withdrawal_refused: bool = False
    withdrawal_basis: LegalBasisRef | None = None
    shredded: bool = False
    withdrawal_receipt_id: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)

    @property
    def can_withdraw(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True)
class RecipientView:
    """A processor or third party that received the citizen's data from an operator."""

    counterparty: CounterpartyView
    categories: list[CategoryView]
    first_at: datetime
    last_at: datetime
    transfers: int
    notified_of_transfer: bool | None   # None: the consent did not ask for a notice
    withdrawal_told_at: datetime | None
    stop_confirmed_at: datetime | None
    stop_deadline: date | None
    stop_overdue: bool


@dataclass(frozen=True)
class OperatorData:
    """The citizen's data at one operator: consents (active first, newest first), and who received the data."""

    organization_id: int
    name: str
    bin: str
    is_demo: bool
    consents: list[CitizenConsent]
    recipients: list[RecipientView]
    allowed: list[CounterpartyView]  # named in an active consent: may receive data, none recorded yet

    @property
    def active(self) -> int:
        return sum(c.status == ACTIVE for c in self.consents)


def _counterparty_view(cp: Counterparty) -> CounterpartyView:
    return CounterpartyView(cp.id, cp.name, cp.kind, cp.country, cp.bin, cp.foreign_registration)


def _citizen_consents(service: ConsentService, session: Session, subject_ids: set[int], *, language: str,
                      actor: str, with_history: bool, now: datetime,
                      taxonomy: Taxonomy | None = None) -> list[CitizenConsent]:
    rows = [c for sid in sorted(subject_ids) for c in service.consents_of_subject_id(session, sid)]
    # What still applies first (active, newest first), then the rest, newest first.
    rows.sort(key=lambda c: (c.status_at(now) != ACTIVE, -c.given_at.timestamp(), -c.id))
    if not rows:
        return []
    taxonomy = taxonomy or service.taxonomy(session)
    cp_ids = {i for c in rows for i in c.counterparty_ids}
    counterparties = ({c.id: c for c in session.scalars(select(Counterparty).where(Counterparty.id.in_(cp_ids)))}
                      if cp_ids else {})
    ids = [c.id for c in rows]
    withdrawals = {w.consent_id: w for w in session.scalars(
        select(ConsentWithdrawal).where(ConsentWithdrawal.consent_id.in_(ids)))}
    history: dict[int, list[HistoryEvent]] = defaultdict(list)
    if with_history:
        for e in session.scalars(select(ConsentEvent).where(ConsentEvent.consent_id.in_(ids))
                                 .order_by(ConsentEvent.at, ConsentEvent.id)):
            history[e.consent_id].append(HistoryEvent(e.at, e.event, e.channel, e.to_status, e.actor == actor))
    bases = {}
    basis_ids = [w.legal_basis_id for w in withdrawals.values() if w.refused and w.legal_basis_id]
    if basis_ids:
        from .models import LegalBasis

        bases = {b.id: LegalBasisRef(b.id, b.kind, b.purpose, b.reference)
                 for b in session.scalars(select(LegalBasis).where(LegalBasis.id.in_(basis_ids)))}
    out = []
    for c in rows:
        w = withdrawals.get(c.id)
        out.append(CitizenConsent(
            c.organization_id, c.id, c.receipt_id, c.purpose, _purpose_name(taxonomy, c.purpose, language),
            _categories(taxonomy, c.data_categories, language), c.valid_until, c.status_at(now), c.given_at,
            c.channel, c.withdrawn_at, c.third_party_transfer,
            [_counterparty_view(counterparties[i]) for i in c.counterparty_ids if i in counterparties],
            c.cross_border, list(c.countries), c.public_sources, c.other, c.sensitive, c.notify_on_transfer,
            bool(w and w.refused), bases.get(w.legal_basis_id) if w and w.legal_basis_id else None,
            bool(w and w.shredded), w.receipt_id if w else None, history.get(c.id, [])))
    return out


def _recipients(session: Session, consents: list[CitizenConsent], taxonomy: Taxonomy, *, language: str,
                today: date) -> tuple[list[RecipientView], list[CounterpartyView]]:
    ids = [c.id for c in consents]
    if not ids:
        return [], []
    transfers = session.execute(select(Transfer, Counterparty).join(Counterparty, Counterparty.id ==
                                Transfer.counterparty_id).where(Transfer.consent_id.in_(ids))
                                .order_by(Transfer.transferred_at)).all()
    notices = session.execute(select(ProcessorNotification).where(ProcessorNotification.consent_id.in_(ids))).scalars()
    told: dict[int, list[ProcessorNotification]] = defaultdict(list)
    for n in notices:
        told[n.counterparty_id].append(n)
    grouped: dict[int, list[tuple[Transfer, Counterparty]]] = defaultdict(list)
    for t, cp in transfers:
        grouped[cp.id].append((t, cp))
    out = []
    for cp_id, items in grouped.items():
        cp = items[0][1]
        codes: list[str] = []
        for t, _ in items:
            codes.extend(code for code in t.data_categories if code not in codes)
        needs_notice = [t for t, _ in items if t.notify_subject]
        latest_notice = max(told.get(cp_id, []), key=lambda n: n.created_at, default=None)
        out.append(RecipientView(
            _counterparty_view(cp), _categories(taxonomy, codes, language), items[0][0].transferred_at,
            items[-1][0].transferred_at, len(items),
            all(t.subject_notified_at is not None for t in needs_notice) if needs_notice else None,
            latest_notice.created_at if latest_notice else None,
            latest_notice.confirmed_at if latest_notice else None,
            latest_notice.deadline if latest_notice else None,
            bool(latest_notice and latest_notice.overdue(today))))
    received = set(grouped)
    allowed: dict[int, CounterpartyView] = {}
    for c in consents:
        if c.status == ACTIVE:
            for cp in c.counterparties:
                if cp.id not in received:
                    allowed.setdefault(cp.id, cp)
    return out, list(allowed.values())


def citizen_overview(platform: Platform, user_id: int, *, language: str, with_history: bool = False,
                     citizens: Citizens | None = None, service: ConsentService | None = None) -> list[OperatorData]:
    """The citizen's consents and recipients at every operator holding their data, in operator order.

    Operators are found by the citizen's verified IIN (each operator's own blind index) and by subjects the
    citizen withdrew through the portal (kept after a crypto-shred); each is read in a session scoped to it.
    """
    citizens = citizens or citizens_for(platform)
    service = service or consent_for(platform)
    actor = f"user:{user_id}"
    now = utcnow()
    today = local_date(now)
    subjects: dict[int, tuple[str, str, bool, set[int]]] = {}
    for s in citizens.subjects(user_id):
        subjects.setdefault(s.organization_id, (s.organization_name, s.organization_bin, s.organization_is_demo,
                                                set()))[3].add(s.subject_id)
    out = []
    for org_id, (name, bin_, is_demo, ids) in subjects.items():
        with platform.db.reader(org_id) as session:
            taxonomy = service.taxonomy(session)
            consents = _citizen_consents(service, session, ids, language=language, actor=actor,
                                         with_history=with_history, now=now, taxonomy=taxonomy)
            if not consents:
                continue
            recipients, allowed = _recipients(session, consents, taxonomy, language=language, today=today)
        out.append(OperatorData(org_id, name, bin_, is_demo, consents, recipients, allowed))
    return out


def _subject_ids(citizens: Citizens, session: Session, user_id: int, organization_id: int) -> set[int]:
    """The citizen's subjects at this operator, found in ``session`` (scoped to it)."""
    from ..vault import vault_for
    from .citizens import CitizenSubjectLink

    ids = {link for link in session.scalars(select(CitizenSubjectLink.subject_id).where(
        CitizenSubjectLink.user_id == user_id, CitizenSubjectLink.organization_id == organization_id))}
    found = vault_for(citizens.platform).lookup(session, "KZ_IIN", citizens.verified_iin(session, user_id))
    if found is not None:
        ids.add(found)
    return ids


def citizen_consent(platform: Platform, user_id: int, organization_id: int, consent_id: int, *,
                    language: str) -> tuple[OperatorData, CitizenConsent]:
    """One of the citizen's consents with its history; :class:`NotFound` for anyone else's (or an unknown
    operator), with the same message either way."""
    citizens, service = citizens_for(platform), consent_for(platform)
    with platform.db.reader() as session:
        org = session.get(auth.Organization, organization_id)
        if org is None:
            raise NotFound("no such consent among yours", field="consent_id")
        name, bin_, is_demo = org.name, org.bin, org.is_demo
    with platform.db.reader(organization_id) as session:
        consent = session.scalar(select(Consent).where(Consent.id == consent_id))
        if consent is None or consent.subject_id not in _subject_ids(citizens, session, user_id, organization_id):
            raise NotFound("no such consent among yours", field="consent_id")
        views = _citizen_consents(service, session, {consent.subject_id}, language=language,
                                  actor=f"user:{user_id}", with_history=True, now=utcnow())
    view = next(v for v in views if v.id == consent_id)
    return OperatorData(organization_id, name, bin_, is_demo, [view], [], []), view


def withdraw_for_citizen(platform: Platform, user_id: int, organization_id: int, consent_id: int, *,
                         idempotency_key: str | None = None) -> Withdrawal:
    """The citizen withdraws one of their own consents (L-PD-WITHDRAW) through the portal, a non-state
    service (L-PD-CONSENT). One transaction at the operator: the ownership check, the link that keeps the
    citizen's history after a crypto-shred, and :meth:`ConsentService.withdraw` (audit, receipt, processor
    notifications) commit together. A repeated withdrawal returns the first one."""
    citizens, service = citizens_for(platform), consent_for(platform)
    with platform.db.reader() as session:
        if session.get(auth.Organization, organization_id) is None:
            raise NotFound("no such consent among yours", field="consent_id")
    with platform.db.transaction(organization_id) as session:
        consent = session.scalar(select(Consent).where(Consent.id == consent_id))
        if consent is None or consent.subject_id not in _subject_ids(citizens, session, user_id, organization_id):
            raise NotFound("no such consent among yours", field="consent_id")
        if consent.status_at(utcnow()) != ACTIVE and session.scalar(
                select(ConsentWithdrawal.id).where(ConsentWithdrawal.consent_id == consent_id)) is None:
            raise Conflict("this consent is no longer active: there is nothing to withdraw", field="consent_id")
        citizens.remember_subject(session, user_id, organization_id, consent.subject_id)
        return service.withdraw(session, consent_id, channel=PORTAL_CHANNEL, actor=f"user:{user_id}",
                                idempotency_key=idempotency_key)


def citizen_receipt(platform: Platform, user_id: int, organization_id: int, consent_id: int,
                    kind: str) -> dict[str, Any]:
    """A signed receipt of one of the citizen's consents: ``consent`` (as it stands now) or ``withdrawal``."""
    citizens, service = citizens_for(platform), consent_for(platform)
    with platform.db.reader() as session:
        if session.get(auth.Organization, organization_id) is None:
            raise NotFound("no such consent among yours", field="consent_id")
    # The consent receipt signs with a key created on first use: a write transaction, not a reader.
    with platform.db.transaction(organization_id) as session:
        consent = session.scalar(select(Consent).where(Consent.id == consent_id))
        if consent is None or consent.subject_id not in _subject_ids(citizens, session, user_id, organization_id):
            raise NotFound("no such consent among yours", field="consent_id")
        if kind == "withdrawal":
            withdrawal = service.withdrawal_of(session, consent_id)
            if withdrawal is None:
                raise NotFound("this consent was not withdrawn", field="consent_id")
            return withdrawal.receipt
        return service.receipt(session, consent_id)
