"""The consent module's tables (L-PD-CONSENT, L-PD-CONSENT-FIELDS, L-PD-WITHDRAW, L-PD-TRANSFER).

Facts, one table each:

* :class:`Counterparty` — a processor or third party an operator shares data with; its webhook secret is
  sealed with the key ring, its confirmation token stored as a SHA-256 (shown once).
* :class:`OrganizationPurpose` — an operator's own purposes; the platform defaults live in
  ``purposes.yaml`` (data, not rows) and are merged with these by :mod:`qorgau.consent.purposes`.
* :class:`Consent` — the eight fields of Art.8 p.4 (the subject's full name lives only in the vault: the
  consent holds the vault subject id), channel, evidence (a reference and a hash, never the document),
  status. :class:`ConsentEvent` is its status history (who, when, channel).
* :class:`LegalBasis` — processing grounds other than consent (contract, law…), used by the decision
  point and to refuse a withdrawal with the reason the law allows.
* :class:`ConsentWithdrawal` — one per withdrawn consent: who, when, channel, the outcome and the signed
  receipt. :class:`ProcessorNotification` — one per counterparty told about it, with the 15-working-day
  deadline for its "stopped" confirmation. :class:`Transfer` — data of a subject sent to a counterparty,
  with the 10-working-day subject-notification deadline.
* :class:`DecisionVersion` — per subject (and per operator), a counter every decision-changing transaction
  increments; the decision point validates its remembered allows against it (linearizable withdrawal).
  :class:`ErasedLookup` — a tombstone for an identifier whose subject a withdrawal crypto-shredded.

No column holds personal data in the clear: subjects are vault ids, evidence is a hash, audit-style
details are ids and codes. Every table is tenant-scoped. ``repr`` shows ids and codes only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, TenantScoped, utcnow

# --- vocabularies (stable strings: they are stored, sent in webhooks and shown by the API) ----------

# Consent status. "expired" is also *computed* by the decision point the moment ``valid_until`` passes;
# the stored status catches up when the expiry sweep runs (ConsentService.expire_due).
ACTIVE = "active"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
SUPERSEDED = "superseded"
CONSENT_STATUSES: tuple[str, ...] = (ACTIVE, WITHDRAWN, EXPIRED, SUPERSEDED)

# L-PD-CONSENT (Art.7–8, 8-1, 8-2): how consent is given and withdrawn.
CHANNELS: tuple[str, ...] = ("state_service", "non_state_service", "written", "other_verifiable")

PROCESSOR = "processor"
THIRD_PARTY = "third_party"
COUNTERPARTY_KINDS: tuple[str, ...] = (PROCESSOR, THIRD_PARTY)

# Grounds other than consent (PD law Art.9 lists where consent is not needed). Those in
# WITHDRAWAL_BLOCKING_KINDS let an operator refuse to stop after a withdrawal (L-PD-WITHDRAW: "only where a
# law requires the processing or an obligation is unfulfilled").
LEGAL_BASIS_KINDS: tuple[str, ...] = ("contract", "law", "court_order", "vital_interest", "public_task")
WITHDRAWAL_BLOCKING_KINDS: frozenset[str] = frozenset({"contract", "law", "court_order"})

# Status-history events.
EVENT_GIVEN = "given"
EVENT_WITHDRAWN = "withdrawn"
EVENT_WITHDRAWAL_REFUSED = "withdrawal_refused"  # withdrawn, but processing continues under a legal basis
EVENT_EXPIRED = "expired"
EVENT_SUPERSEDED = "superseded"
EVENT_TRANSFER = "transfer"
EVENT_SUBJECT_NOTIFIED = "subject_notified"


class Counterparty(TenantScoped, Base):
    """A processor or third party the operator shares data with.

    ``bin`` for Kazakhstani legal entities, else ``foreign_registration`` (and ``country``, ISO 3166-1
    alpha-2). ``webhook_secret_sealed`` is the HMAC key of its webhooks, sealed with the key ring (the
    dispatcher needs it in the clear to sign). ``token_prefix``/``token_hash`` authenticate the
    counterparty's own "stopped" confirmations (``qcp_<prefix>_<secret>``, shown once).
    """

    __tablename__ = "consent_counterparties"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_consent_counterparties_org_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    bin: Mapped[str | None] = mapped_column(String(12))
    foreign_registration: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2), default="KZ")
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_prefix: Mapped[str | None] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"Counterparty(id={self.id}, org={self.organization_id}, kind={self.kind!r}, active={self.active})"


class OrganizationPurpose(TenantScoped, Base):
    """A purpose an operator added to the platform's taxonomy (or overrode: same code wins for that org).

    Codes are dotted paths (``marketing.sms``); ``parent`` is the code without its last segment, so the
    decision point derives a purpose's ancestors from the code alone, without a query.
    """

    __tablename__ = "consent_purposes"
    __table_args__ = (UniqueConstraint("organization_id", "code", name="uq_consent_purposes_org_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str | None] = mapped_column(String(64))
    name_kk: Mapped[str] = mapped_column(String(300))
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"OrganizationPurpose(id={self.id}, org={self.organization_id}, code={self.code!r})"


class Consent(TenantScoped, Base):
    """One consent (L-PD-CONSENT-FIELDS, Art.8 p.4):

    (1) the operator = ``organization_id`` (its BIN is on the organization); (2) the subject's full name =
    the vault subject ``subject_id`` (the name is sealed in the vault, shredded with it); (3) the term =
    ``valid_until`` (``None``: until the purpose is achieved); (4) ``third_party_transfer`` and to whom
    (``counterparty_ids``); (5) ``cross_border`` and ``countries``; (6) ``public_sources``; (7)
    ``data_categories``; (8) ``other``. Plus how it was given (``channel``, L-PD-CONSENT), the evidence
    (``evidence_ref`` + ``evidence_sha256`` of the signed document or e-signature — never the document),
    the status, and ISO/IEC TS 27560 / Kantara receipt fields (``receipt_id``, ``version``, ``sensitive``).
    """

    __tablename__ = "consent_consents"
    __table_args__ = (
        # The decision point's one query: (organization, subject, purpose) → consents.
        Index("ix_consent_consents_org_subject_purpose", "organization_id", "subject_id", "purpose"),
        Index("ix_consent_consents_org_purpose_status", "organization_id", "purpose", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    receipt_id: Mapped[str] = mapped_column(String(40), unique=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("vault_subjects.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    data_categories: Mapped[list[str]] = mapped_column(JSON)
    valid_until: Mapped[datetime | None]
    third_party_transfer: Mapped[bool] = mapped_column(Boolean, default=False)
    counterparty_ids: Mapped[list[int]] = mapped_column(JSON)
    cross_border: Mapped[bool] = mapped_column(Boolean, default=False)
    countries: Mapped[list[str]] = mapped_column(JSON)
    public_sources: Mapped[bool] = mapped_column(Boolean, default=False)
    other: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    evidence_ref: Mapped[str | None] = mapped_column(String(300))
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    notify_on_transfer: Mapped[bool] = mapped_column(Boolean, default=False)  # L-PD-TRANSFER
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)  # special categories (biometric, health)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    version: Mapped[int] = mapped_column(Integer, default=1)
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    given_by: Mapped[str] = mapped_column(String(64))
    withdrawn_at: Mapped[datetime | None]
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("consent_consents.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (f"Consent(id={self.id}, org={self.organization_id}, subject={self.subject_id}, "
                f"purpose={self.purpose!r}, status={self.status!r})")

    def status_at(self, at: datetime) -> str:
        """The status as the decision point sees it at ``at``: an active consent past its term is expired."""
        if self.status == ACTIVE and self.valid_until is not None and self.valid_until <= at:
            return EXPIRED
        return self.status


class ConsentEvent(TenantScoped, Base):
    """A consent's status history: given, withdrawn (or withdrawal refused), expired, superseded, transfers.

    ``details`` holds ids and codes only (it is shown to the subject and to the operator).
    """

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consent_consents.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def __repr__(self) -> str:
        return f"ConsentEvent(id={self.id}, consent={self.consent_id}, event={self.event!r})"


class LegalBasis(TenantScoped, Base):
    """A ground for processing other than consent: per purpose, for every subject or one (``subject_id``).

    ``reference`` names the law and article, the court decision or the contract number; it is shown to the
    subject when a withdrawal is refused because of it, so it must not hold personal data (checked).
    """

    __tablename__ = "consent_legal_bases"
    __table_args__ = (Index("ix_consent_legal_bases_org_purpose", "organization_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("vault_subjects.id"), index=True)
    reference: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(default=utcnow)
    valid_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"LegalBasis(id={self.id}, org={self.organization_id}, kind={self.kind!r}, purpose={self.purpose!r})"


class ConsentWithdrawal(TenantScoped, Base):
    """The one withdrawal of a consent (L-PD-WITHDRAW): who, when, through which channel, and the outcome.

    ``refused``: the consent is withdrawn, but processing continues under ``legal_basis_id`` (a reasoned
    refusal to stop, which the law allows); ``shredded``: the subject's vault key was destroyed because no
    consent or legal basis of this operator remained (``erasure_certificate_id``). ``receipt`` is the exact
    signed JSON handed to the subject; a repeated withdrawal returns it unchanged (idempotent).
    """

    __tablename__ = "consent_withdrawals"
    __table_args__ = (
        UniqueConstraint("consent_id", name="uq_consent_withdrawals_consent_id"),
        UniqueConstraint("organization_id", "idempotency_key", name="uq_consent_withdrawals_org_key"),
        Index("ix_consent_withdrawals_org_at", "organization_id", "withdrawn_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consent_consents.id"))
    withdrawn_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    refused: Mapped[bool] = mapped_column(Boolean, default=False)
    legal_basis_id: Mapped[int | None] = mapped_column(ForeignKey("consent_legal_bases.id"))
    shredded: Mapped[bool] = mapped_column(Boolean, default=False)
    erasure_certificate_id: Mapped[str | None] = mapped_column(String(32))
    receipt_id: Mapped[str] = mapped_column(String(40), unique=True)
    receipt: Mapped[str] = mapped_column(Text)

    def __repr__(self) -> str:
        return (f"ConsentWithdrawal(id={self.id}, consent={self.consent_id}, refused={self.refused}, "
                f"shredded={self.shredded})")


class Transfer(TenantScoped, Base):
    """Data of a subject, under a consent, sent to a counterparty (L-PD-TRANSFER).

    When the consent asks for it (``notify_subject``), the subject must be told within 10 working days:
    ``notify_deadline`` (Kazakhstan's working-day calendar) until ``subject_notified_at``.
    """

    __tablename__ = "consent_transfers"
    __table_args__ = (Index("ix_consent_transfers_org_pending", "organization_id", "notify_subject",
                            "subject_notified_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consent_consents.id"), index=True)
    counterparty_id: Mapped[int] = mapped_column(ForeignKey("consent_counterparties.id"), index=True)
    data_categories: Mapped[list[str]] = mapped_column(JSON)
    transferred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    cross_border: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_subject: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_deadline: Mapped[date | None] = mapped_column(Date)
    subject_notified_at: Mapped[datetime | None]
    subject_notified_by: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"Transfer(id={self.id}, consent={self.consent_id}, counterparty={self.counterparty_id})"


class ProcessorNotification(TenantScoped, Base):
    """A counterparty told that a consent was withdrawn, and its confirmation that it stopped.

    Delivery goes through the outbox (``outbox_message_id``: its state is the delivery state). The
    counterparty confirms "stopped" through the API; ``deadline`` is 15 working days after the withdrawal
    (L-PD-WITHDRAW), overdue when it passes unconfirmed. Time to stop = ``confirmed_at - created_at``.
    """

    __tablename__ = "consent_notifications"
    __table_args__ = (
        UniqueConstraint("withdrawal_id", "counterparty_id", name="uq_consent_notifications_withdrawal_cp"),
        Index("ix_consent_notifications_org_open", "organization_id", "confirmed_at", "deadline"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consent_consents.id"), index=True)
    withdrawal_id: Mapped[int] = mapped_column(ForeignKey("consent_withdrawals.id"), index=True)
    counterparty_id: Mapped[int] = mapped_column(ForeignKey("consent_counterparties.id"), index=True)
    outbox_message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[date] = mapped_column(Date)
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return (f"ProcessorNotification(id={self.id}, consent={self.consent_id}, "
                f"counterparty={self.counterparty_id}, confirmed={self.confirmed_at is not None})")

    def overdue(self, today: date) -> bool:
        """Unconfirmed after the statutory deadline (the deadline day itself is still in time)."""
        return self.confirmed_at is None and today > self.deadline


class DecisionVersion(TenantScoped, Base):
    """A counter the decision point validates its remembered "allow" answers against (linearizability).

    One row per (operator, vault subject): every transaction that changes what a check about the subject
    could answer — a consent given, withdrawn, superseded or expired, a legal basis naming the subject added
    or revoked — increments ``version`` *in the same transaction*. ``subject_id = 0`` is the operator's row,
    incremented when a legal basis for every subject is added or revoked. No foreign key on ``subject_id``
    (0 is not a subject). See :mod:`qorgau.consent.decision` for the argument.
    """

    __tablename__ = "consent_decision_versions"
    __table_args__ = (UniqueConstraint("organization_id", "subject_id",
                                       name="uq_consent_decision_versions_org_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    def __repr__(self) -> str:
        return f"DecisionVersion(org={self.organization_id}, subject={self.subject_id}, version={self.version})"


class ErasedLookup(TenantScoped, Base):
    """A tombstone: an identifier's blind index that found a subject whose identity a withdrawal shredded.

    The vault deletes a shredded subject's blind indexes (the identifier no longer finds them); this row
    keeps only the fact "this identifier belonged to an erased subject of this operator" — no subject id,
    nothing that links it to a consent — so a check by the identifier answers ``subject_erased`` rather
    than ``unknown_subject``. The blind index is a keyed HMAC (not reversible without the operator's key).
    """

    __tablename__ = "consent_erased_lookups"
    __table_args__ = (UniqueConstraint("organization_id", "entity_type", "blind_index",
                                       name="uq_consent_erased_lookups_org_type_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    blind_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"ErasedLookup(id={self.id}, org={self.organization_id}, type={self.entity_type!r})"
