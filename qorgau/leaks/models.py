"""The unified register of leaked data: its tables (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

* ``leak_incidents`` — an operator's incident report (initial filing or addendum) and the regulator's verdict.
* ``leak_incident_events`` — the incident's history: filing, addenda, status changes, notes, requests for
  more information and answers, publication, uploads committed.
* ``leak_takedowns`` — requests to remove data a leak made public (DC Art.17 p.7: not open data).
* ``leak_uploads`` — two-phase ingest of a leak file: parsed (counts, masked samples, rejected lines), then
  confirmed (tokens committed as one segment) or expired (spool deleted).
* ``leak_citizen_identifiers`` — identifiers a citizen proved they own (IIN by identity provider, phone by
  one-time code, email by link), stored only as the register's keyed token plus a mask for display; a
  subscribed one is intersected with every new segment.
* ``leak_verifications`` — pending phone/email challenges: the token and mask of the value being verified,
  the code or link secret as SHA-256 only, attempts and expiry. The phone or address itself is kept only sealed
  (AES-256-GCM), so that notices can be sent to it once verified.
* ``leak_notifications`` — one row per (citizen, incident): a subscriber is told once per incident.

No plaintext leaked identifier is ever stored in these tables: identifiers exist only as keyed OPRF tokens
(``qorgau/leaks/oprf.py``) in the segment index and here. Incident reports name the operator and may name its
responsible person (a staff contact, given for the regulator): never logged, never in audit details.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, TenantScoped, utcnow

# Vocabularies (stable strings: stored, returned by the API, translated in the UI).
FILINGS: tuple[str, ...] = ("initial", "addendum")
REPORTER_ROLES: tuple[str, ...] = ("operator", "processor", "third_party")
NATURES: tuple[str, ...] = ("hacking", "ransomware", "phishing", "insider", "unauthorized_disclosure",
                            "loss_theft", "misconfiguration", "scraping", "unknown")
SECTORS: tuple[str, ...] = ("bank", "finance", "telecom", "marketplace", "retail", "state", "health",
                            "education", "transport", "other")
SUBJECT_CATEGORIES: tuple[str, ...] = ("customers", "employees", "patients", "students", "citizens",
                                       "children", "applicants", "other")
# Data classes of a leak; the first group are the identifier kinds the register tokenizes.
TOKEN_KINDS: tuple[str, ...] = ("iin", "phone", "email")
DATA_CLASSES: tuple[str, ...] = ("iin", "phone", "email", "full_name", "date_of_birth", "address", "passport",
                                 "id_card", "bank_card", "bank_account", "password", "health", "biometric",
                                 "location", "vehicle", "other")
STATUSES: tuple[str, ...] = ("received", "verified", "disputed", "fabricated")
EVENT_KINDS: tuple[str, ...] = ("filed", "addendum", "status", "note", "info_request", "info_response",
                                "published", "unpublished", "upload_confirmed", "takedown_requested",
                                "takedown_resolved")
TAKEDOWN_STATUSES: tuple[str, ...] = ("requested", "removed", "refused")
UPLOAD_STATUSES: tuple[str, ...] = ("parsed", "confirmed", "expired", "discarded", "failed")
UPLOAD_FORMATS: tuple[str, ...] = ("csv", "jsonl", "xlsx", "text")
VERIFICATION_KINDS: tuple[str, ...] = ("phone", "email")
VERIFICATION_STATUSES: tuple[str, ...] = ("pending", "verified", "expired", "burned")


class LeakIncident(TenantScoped, Base):
    """One incident report. ``organization_id`` is the reporting operator; an addendum points at the initial
    filing with ``parent_id`` and carries what changed. ``deadline_at`` is 1 working day after ``discovered_at``
    (rule pack deadline ``pd.breach_notice``); a filing after it is ``late`` and needs ``late_reason``."""

    __tablename__ = "leak_incidents"
    __table_args__ = (UniqueConstraint("reference", name="uq_leak_incidents_reference"),
                      Index("ix_leak_incidents_status_published", "status", "published"),
                      Index("ix_leak_incidents_org_filed", "organization_id", "filed_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32))                 # KZ-LEAK-2026-000042
    filing: Mapped[str] = mapped_column(String(16), default="initial")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("leak_incidents.id"), index=True)
    reporter_role: Mapped[str] = mapped_column(String(16), default="operator")
    responsible_person: Mapped[str] = mapped_column(String(300))
    responsible_contact: Mapped[str | None] = mapped_column(String(300))
    sector: Mapped[str] = mapped_column(String(32), default="other")
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    discovered_at: Mapped[datetime] = mapped_column()
    contained_at: Mapped[datetime | None] = mapped_column()
    subjects_notified_at: Mapped[datetime | None] = mapped_column()
    nature: Mapped[str] = mapped_column(String(32))
    people_affected: Mapped[int | None] = mapped_column(Integer)
    records_affected: Mapped[int | None] = mapped_column(Integer)
    subject_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    data_classes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    consequences: Mapped[str | None] = mapped_column(Text)
    measures_taken: Mapped[str | None] = mapped_column(Text)
    measures_planned: Mapped[str | None] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    filed_by: Mapped[str] = mapped_column(String(64))
    deadline_at: Mapped[datetime] = mapped_column()
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    late_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="received")
    status_changed_at: Mapped[datetime | None] = mapped_column()
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[datetime | None] = mapped_column()
    advice: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"kk": …, "ru": …, "en": …} for citizens
    identifiers_committed: Mapped[int] = mapped_column(Integer, default=0)
    info_requested: Mapped[bool] = mapped_column(Boolean, default=False)  # an open request for more information
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (f"LeakIncident(id={self.id}, org={self.organization_id}, reference={self.reference!r}, "
                f"status={self.status!r}, published={self.published})")


class LeakIncidentEvent(TenantScoped, Base):
    """One step of an incident's history. ``text`` holds a note, a request or an answer as written by its author
    (the regulator's or the operator's words); ``details`` structured facts (status from/to, counts)."""

    __tablename__ = "leak_incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("leak_incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    by_authority: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"LeakIncidentEvent(id={self.id}, incident={self.incident_id}, kind={self.kind!r})"


class LeakTakedown(TenantScoped, Base):
    """A request to remove data the leak made public (DC Art.17 p.7). ``location`` is where it was found (a URL,
    a channel, a forum thread); ``addressee`` who must remove it (hosting provider, platform)."""

    __tablename__ = "leak_takedowns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("leak_incidents.id"), index=True)
    location: Mapped[str] = mapped_column(String(2000))
    addressee: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"LeakTakedown(id={self.id}, incident={self.incident_id}, status={self.status!r})"


class LeakUpload(TenantScoped, Base):
    """A leak file in two-phase ingest. ``public_id`` names it in URLs and CLI output. While ``parsed`` the
    extracted, normalized identifiers wait in ``spool_path`` (plaintext, under the data dir, mode 0600) until
    the uploader confirms or ``expires_at`` passes; either way the spool is deleted. ``counts`` per kind,
    ``samples`` are masked, ``rejected`` lists lines and reasons (never values), capped; ``rejected_total`` is
    the full count."""

    __tablename__ = "leak_uploads"
    __table_args__ = (UniqueConstraint("public_id", name="uq_leak_uploads_public_id"),
                      Index("ix_leak_uploads_status_expires", "status", "expires_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40))
    incident_id: Mapped[int] = mapped_column(ForeignKey("leak_incidents.id"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="parsed")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    samples: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rejected: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rejected_total: Mapped[int] = mapped_column(Integer, default=0)
    spool_path: Mapped[str | None] = mapped_column(String(1000))
    segment_name: Mapped[str | None] = mapped_column(String(200))
    tokens_committed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column()
    confirmed_at: Mapped[datetime | None] = mapped_column()
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"LeakUpload(id={self.id}, incident={self.incident_id}, status={self.status!r})"


class LeakCitizenIdentifier(Base):
    """An identifier a citizen proved is theirs, as the register's keyed token (32 bytes) and a display mask.
    ``subscribed`` ones are matched against every new segment. Platform-level: a citizen deals with every
    operator's incidents."""

    __tablename__ = "leak_citizen_identifiers"
    __table_args__ = (UniqueConstraint("user_id", "kind", "token", name="uq_leak_citizen_identifiers_user_kind_token"),
                      Index("ix_leak_citizen_identifiers_token", "token"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    token: Mapped[bytes] = mapped_column(LargeBinary(32))
    mask: Mapped[str] = mapped_column(String(64))
    verified_via: Mapped[str] = mapped_column(String(32))      # identity_provider / sms_code / email_link
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    subscribed_at: Mapped[datetime | None] = mapped_column()
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    # The phone or e-mail itself, sealed (AES-256-GCM, platform data key ``dk-leaks-contact``), only so a notice can
    # reach the citizen; NULL for the IIN. Deleted with the row when the citizen removes the identifier.
    contact_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return f"LeakCitizenIdentifier(id={self.id}, user={self.user_id}, kind={self.kind!r}, mask={self.mask!r})"


class LeakVerification(Base):
    """A pending proof of ownership of a phone (one-time code by SMS) or an email (a link). The secret is stored
    only as SHA-256; the value only as its token and mask. ``selector`` finds the row (public part of a link)."""

    __tablename__ = "leak_verifications"
    __table_args__ = (UniqueConstraint("selector", name="uq_leak_verifications_selector"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    selector: Mapped[str] = mapped_column(String(32))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    token: Mapped[bytes] = mapped_column(LargeBinary(32))
    mask: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    verified_at: Mapped[datetime | None] = mapped_column()
    # The value being verified, sealed like ``LeakCitizenIdentifier.contact_sealed``; moved to the identifier on
    # success and cleared when the challenge ends any other way.
    contact_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return f"LeakVerification(id={self.id}, user={self.user_id}, kind={self.kind!r}, status={self.status!r})"


class LeakNotification(Base):
    """A subscriber told about an incident that contains one of their identifiers: at most one per (user,
    incident), whatever number of their identifiers or segments matched."""

    __tablename__ = "leak_notifications"
    __table_args__ = (UniqueConstraint("user_id", "incident_id", name="uq_leak_notifications_user_incident"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("leak_incidents.id"), index=True)
    kinds: Mapped[list[Any]] = mapped_column(JSON, default=list)     # which of their identifier kinds matched
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    channel: Mapped[str | None] = mapped_column(String(16))
    seen_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"LeakNotification(id={self.id}, user={self.user_id}, incident={self.incident_id})"
