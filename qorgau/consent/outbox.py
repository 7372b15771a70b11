"""The transactional outbox: messages to other systems, committed with the change that caused them.

A module that must tell someone outside about a state change (a processor about a withdrawal, an AI
system's owner about a human decision) calls :func:`enqueue` *in the same transaction* as the change. The
message is then exactly as durable as the change: both commit or neither does — no "changed but forgot
to notify", no "notified about something that rolled back". :mod:`qorgau.consent.dispatcher` delivers
the messages as signed webhooks, with retries, from any number of processes.

Generic on purpose (the consent module is its first user, the AI-decisions module the next): a message is
a topic, a destination URL, a JSON payload, the HMAC secret to sign it with, and an idempotency key. The
secret is stored *sealed* with the key ring (AES-256-GCM under a data key wrapped by the master key) — a
copy of the sender's sealed secret taken at enqueue time, so a message is self-contained and the
dispatcher needs no module-specific code. Secret rotation: messages enqueued before a rotation are
signed with the secret current when they were enqueued (receivers accept both during a rotation window,
like Stripe's rolling secrets).

Delivery state per message (``status``): ``pending`` (due at ``next_attempt_at``; while a dispatcher holds
it, ``lease_owner``/``lease_until`` are set and ``next_attempt_at = lease_until``, so a crashed dispatcher's
message simply becomes due again when the lease ends), ``delivered`` (a 2xx answer), ``dead`` (dead-letter:
``max_attempts`` used or older than ``expires_at``). ``last_error`` holds a class of error ("HTTP 503",
"ConnectError"), never the response body.

Claiming is safe with several dispatchers: ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
``BEGIN IMMEDIATE`` write transaction on SQLite (claims are serialized by the database lock; each claim
is one short transaction). Results are written only if the lease is still ours (fencing on
``lease_owner`` and ``attempts``), so a dispatcher that lost its lease can never overwrite a newer state.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, event, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..core.db import Base, TenantScoped, tenant_of, utcnow
from ..core.errors import InvalidInput, NotFound

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
STATUSES: tuple[str, ...] = (PENDING, DELIVERED, DEAD)

DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_MAX_AGE = timedelta(days=3)
SECRET_KEY_PURPOSE = "outbox-webhook-secret"
MAX_PAYLOAD_BYTES = 64 * 1024


def secret_key_id(organization_id: int) -> str:
    """The data key that seals an organization's webhook secrets (one per organization)."""
    return f"dk-outbox-secret-{organization_id}"


def secret_aad(organization_id: int) -> bytes:
    return b"qorgau-outbox/v1\x00webhook-secret\x00org=%d" % organization_id


class OutboxMessage(TenantScoped, Base):
    """One message to deliver (see the module docstring for the life cycle)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The dispatcher's claim query: due pending messages, oldest first.
        Index("ix_outbox_messages_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[str] = mapped_column(Text)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    source_type: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_ATTEMPTS)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    first_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))

    def __repr__(self) -> str:
        return (f"OutboxMessage(id={self.id}, topic={self.topic!r}, status={self.status!r}, "
                f"attempts={self.attempts})")


# --- sealing secrets ------------------------------------------------------------------------------


def seal_secret(session: Session, keyring: Any, organization_id: int, secret: str) -> bytes:
    """Seal a webhook secret for ``organization_id`` (the data key is created on first use)."""
    key_id = secret_key_id(organization_id)
    keyring.get_or_create(session, key_id, SECRET_KEY_PURPOSE)
    return keyring.encrypt(session, key_id, secret.encode(), secret_aad(organization_id))


def open_secret(session: Session, keyring: Any, organization_id: int, sealed: bytes) -> bytes:
    return keyring.decrypt(session, bytes(sealed), secret_aad(organization_id))


def new_webhook_secret() -> str:
    """A fresh signing secret, ``whsec_`` + 256 random bits (shown to the receiver once)."""
    return "whsec_" + secrets.token_urlsafe(32)


# --- enqueueing -----------------------------------------------------------------------------------

_WAKE = "qorgau_outbox_wake"
_wakers: list[threading.Event] = []
_wakers_lock = threading.Lock()


def add_waker(event_: threading.Event) -> None:
    """Set ``event_`` whenever a transaction that enqueued messages commits in this process (the in-process
    dispatcher sleeps on it, so a withdrawal is delivered without waiting for the next poll)."""
    with _wakers_lock:
        _wakers.append(event_)


def remove_waker(event_: threading.Event) -> None:
    with _wakers_lock:
        if event_ in _wakers:
            _wakers.remove(event_)


@event.listens_for(Session, "after_commit")
def _wake_dispatchers(session: Session) -> None:
    if session.info.pop(_WAKE, False):
        with _wakers_lock:
            for waker in _wakers:
                waker.set()


@event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop(_WAKE, None)


@dataclass(frozen=True)
class Outgoing:
    """What :func:`enqueue` needs for one message."""

    topic: str
    url: str
    payload: Mapping[str, Any]
    secret_sealed: bytes
    idempotency_key: str
    source_type: str
    source_id: str


def enqueue(session: Session, messages: Sequence[Outgoing], *, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
            max_age: timedelta = DEFAULT_MAX_AGE, now: datetime | None = None) -> list[OutboxMessage]:
    """Add messages to the outbox in the caller's transaction (nothing is sent before it commits).

    The payload must be JSON-serializable and hold no personal data (it leaves the platform: ids,
    pseudonyms and codes only — the caller's responsibility, checked by the audit guard upstream).
    """
    org = tenant_of(session)
    if org is None:
        raise InvalidInput("the outbox needs a session scoped to one organization", field="organization_id")
    if max_attempts < 1:
        raise InvalidInput("max_attempts must be at least 1", field="max_attempts")
    now = now or utcnow()
    rows: list[OutboxMessage] = []
    for message in messages:
        body = json.dumps(message.payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        if len(body.encode()) > MAX_PAYLOAD_BYTES:
            raise InvalidInput(f"an outbox payload is limited to {MAX_PAYLOAD_BYTES} bytes", field="payload")
        row = OutboxMessage(
            organization_id=org, topic=message.topic, idempotency_key=message.idempotency_key, url=message.url,
            payload=body, secret_sealed=message.secret_sealed, source_type=message.source_type,
            source_id=message.source_id, status=PENDING, attempts=0, max_attempts=max_attempts,
            next_attempt_at=now, created_at=now, expires_at=now + max_age)
        session.add(row)
        rows.append(row)
    if rows:
        session.flush()
        session.info[_WAKE] = True
    return rows


# --- reading and operating --------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageState:
    """Delivery state of one message, for dashboards and the API (no payload, no secret)."""

    id: int
    topic: str
    status: str
    attempts: int
    max_attempts: int
    created_at: datetime
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    source_type: str
    source_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "status": self.status, "attempts": self.attempts,
                "max_attempts": self.max_attempts, "created_at": self.created_at,
                "next_attempt_at": self.next_attempt_at, "first_attempt_at": self.first_attempt_at,
                "delivered_at": self.delivered_at, "last_status": self.last_status, "last_error": self.last_error,
                "source_type": self.source_type, "source_id": self.source_id}


def _state(row: OutboxMessage) -> MessageState:
    return MessageState(row.id, row.topic, row.status, row.attempts, row.max_attempts, row.created_at,
                        row.next_attempt_at, row.first_attempt_at, row.delivered_at, row.last_status,
                        row.last_error, row.source_type, row.source_id)


def message_state(session: Session, message_id: int) -> MessageState:
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
    if row is None:
        raise NotFound("no outbox message with this id", field="message_id")
    return _state(row)


def list_messages(session: Session, *, status: str | None = None, topic: str | None = None,
                  limit: int = 100) -> list[MessageState]:
    """Messages of the session's organization, newest first."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(max(1, min(limit, 1000)))
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        stmt = stmt.where(OutboxMessage.status == status)
    if topic is not None:
        stmt = stmt.where(OutboxMessage.topic == topic)
    return [_state(row) for row in session.scalars(stmt)]


def counts(session: Session) -> dict[str, int]:
    """Messages per status (the session's organization, or all when unscoped)."""
    rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    return {status: 0 for status in STATUSES} | {status: int(n) for status, n in rows}


def retry_dead(session: Session, message_id: int, *, now: datetime | None = None) -> MessageState:
    """Give a dead-lettered message a fresh set of attempts (an operator's decision after fixing the cause)."""
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
    if row is None:
        raise NotFound("no outbox message with this id", field="message_id")
    if row.status != DEAD:
        raise InvalidInput("only dead-lettered messages can be retried", field="message_id")
    now = now or utcnow()
    row.status, row.attempts, row.next_attempt_at = PENDING, 0, now
    row.expires_at = now + (row.expires_at - row.created_at)
    row.lease_owner = row.lease_until = None
    session.flush()
    session.info[_WAKE] = True
    return _state(row)


def pending_due(session: Session, now: datetime | None = None) -> int:
    now = now or utcnow()
    return session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now)) or 0


__all__ = [
    "DEAD", "DEFAULT_MAX_AGE", "DEFAULT_MAX_ATTEMPTS", "DELIVERED", "PENDING", "STATUSES", "MessageState",
    "OutboxMessage", "Outgoing", "add_waker", "counts", "enqueue", "list_messages", "message_state",
    "new_webhook_secret", "open_secret", "pending_due", "remove_waker", "retry_dead", "seal_secret",
    "secret_key_id",
]
