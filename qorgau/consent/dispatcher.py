"""Webhook delivery from the transactional outbox (:mod:`qorgau.consent.outbox`): signed, retried, leased.

**At-least-once delivery, plus an idempotency key for the receiver.** A message is marked delivered only
after the receiver answered 2xx; a dispatcher that dies between the receiver's answer and that mark (or
whose POST timed out after the receiver acted) leaves the message to be sent again when its lease ends.
So a receiver may see the same message more than once, and must deduplicate on the ``Idempotency-Key``
header (the same key on every attempt): then each notification *takes effect* exactly once. No system
that talks HTTP can promise more; anyone who says "exactly-once delivery" means this.

Every POST carries::

    Content-Type: application/json
    Idempotency-Key: consent.withdrawn:wr_…:12          (stable across attempts)
    Qorgau-Event: consent.withdrawn
    Qorgau-Delivery: 41.3                                (message id . attempt)
    Qorgau-Signature: t=1763855400,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``v1`` is the hex HMAC-SHA256, keyed with the receiver's signing secret (the whole ``whsec_…`` string,
UTF-8), of ``t`` + ``"."`` + the raw request body. A receiver recomputes it over the bytes it received,
compares in constant time and rejects a ``t`` more than 5 minutes from its clock (replays). Example in
``docs/consent.md``; :func:`verify_signature` is the reference implementation.

Retries: any answer other than 2xx (redirects are not followed), a timeout or a connection error is
retried after ``base · 2^(attempt−1)`` seconds (capped), with jitter (a random half of that delay),
honouring ``Retry-After`` on 429/503. After ``max_attempts`` or once older than the maximum age a message
is dead-lettered (``status = dead``; ``qorgau consent outbox retry ID`` gives it another round).

Several dispatchers may run (the API server's thread and any number of ``qorgau consent dispatcher``
processes): see the outbox module for how claims, leases and fencing keep them from stepping on each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select, update

from .. import __version__
from ..core.db import utcnow
from .outbox import DEAD, DELIVERED, PENDING, OutboxMessage, add_waker, open_secret, remove_waker

if TYPE_CHECKING:
    from ..core.platform import Platform

log = logging.getLogger("qorgau.consent.dispatcher")

SIGNATURE_HEADER = "Qorgau-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "Qorgau-Event"
DELIVERY_HEADER = "Qorgau-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300
USER_AGENT = f"qorgau-webhooks/{__version__}"


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``Qorgau-Signature`` header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str | bytes, body: bytes, header: str, *, now: float | None = None,
                     tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """What a receiver does: parse ``t=…,v1=…`` (several ``v1`` allowed, during a secret rotation), check the
    timestamp is within ``tolerance`` seconds and an HMAC matches, in constant time."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, c) for c in candidates)


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before the attempt after ``attempt`` (1-based): exponential, capped, half of it random."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


@dataclass(frozen=True)
class Claimed:
    """A message this dispatcher holds (``attempt`` is the fencing token: the attempts count it set)."""

    id: int
    organization_id: int
    topic: str
    idempotency_key: str
    url: str
    payload: bytes
    secret: bytes
    attempt: int
    max_attempts: int
    expires_at: datetime

    def __repr__(self) -> str:
        return f"Claimed(id={self.id}, topic={self.topic!r}, attempt={self.attempt}, secret=<hidden>)"


@dataclass(frozen=True)
class Outcome:
    message_id: int
    delivered: bool
    status_code: int | None
    error: str | None
    retry_after: float | None = None


class Dispatcher:
    """Claims due messages and POSTs them. ``run_once`` for one round; ``start``/``stop`` for a thread."""

    def __init__(self, platform: Platform, *, owner: str | None = None, batch: int = 32, workers: int = 8,
                 poll_seconds: float | None = None, lease_seconds: float | None = None,
                 timeout_seconds: float | None = None, backoff_seconds: float | None = None,
                 backoff_cap_seconds: float | None = None,
                 periodic: Sequence[tuple[float, Callable[[], Any]]] = ()) -> None:
        settings = platform.settings
        self.platform = platform
        self.owner = owner or f"{socket.gethostname()[:32]}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.batch = batch
        self.poll = settings.consent_dispatcher_poll_seconds if poll_seconds is None else poll_seconds
        self.lease = settings.consent_dispatcher_lease_seconds if lease_seconds is None else lease_seconds
        self.timeout = settings.consent_webhook_timeout_seconds if timeout_seconds is None else timeout_seconds
        self.backoff_base = settings.consent_webhook_backoff_seconds if backoff_seconds is None else backoff_seconds
        self.backoff_cap = (settings.consent_webhook_backoff_cap_seconds if backoff_cap_seconds is None
                            else backoff_cap_seconds)
        self.periodic = [(interval, fn, [0.0]) for interval, fn in periodic]
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="qorgau-webhook")
        self._client = httpx.Client(timeout=self.timeout, follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT})
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def __repr__(self) -> str:
        return f"Dispatcher(owner={self.owner!r}, delivered={self.delivered}, failed={self.failed})"

    # -- claiming --------------------------------------------------------------------------------

    def claim(self, now: datetime | None = None) -> list[Claimed]:
        """Take up to ``batch`` due messages in one short transaction (lease = ``lease_seconds``)."""
        now = now or utcnow()
        lease_until = now + timedelta(seconds=self.lease)
        table = OutboxMessage.__table__
        out: list[Claimed] = []
        with self.platform.db.transaction() as session:
            dialect = session.get_bind().dialect.name
            # Dead-letter what is past its maximum age or out of attempts (and not held by anyone).
            session.execute(update(table).where(
                table.c.status == PENDING, table.c.next_attempt_at <= now,
                (table.c.expires_at <= now) | (table.c.attempts >= table.c.max_attempts))
                .values(status=DEAD, lease_owner=None, lease_until=None,
                        last_error=_dead_reason_expr(table, now)))
            stmt = (select(table.c.id, table.c.organization_id, table.c.topic, table.c.idempotency_key, table.c.url,
                           table.c.payload, table.c.secret_sealed, table.c.attempts, table.c.max_attempts,
                           table.c.expires_at)
                    .where(table.c.status == PENDING, table.c.next_attempt_at <= now)
                    .order_by(table.c.next_attempt_at, table.c.id).limit(self.batch))
            if dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = session.execute(stmt).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            session.execute(update(table).where(table.c.id.in_(ids)).values(
                attempts=table.c.attempts + 1, lease_owner=self.owner, lease_until=lease_until,
                next_attempt_at=lease_until, last_attempt_at=now,
                first_attempt_at=_coalesce(table.c.first_attempt_at, now)))
            for r in rows:
                secret = open_secret(session, self.platform.keyring, r.organization_id, r.secret_sealed)
                out.append(Claimed(r.id, r.organization_id, r.topic, r.idempotency_key, r.url, r.payload.encode(),
                                   secret, r.attempts + 1, r.max_attempts, r.expires_at))
        return out

    # -- delivering ------------------------------------------------------------------------------

    def deliver(self, message: Claimed) -> Outcome:
        """POST one message; never raises (every failure is an outcome to record)."""
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: message.idempotency_key,
            EVENT_HEADER: message.topic,
            DELIVERY_HEADER: f"{message.id}.{message.attempt}",
            SIGNATURE_HEADER: sign(message.secret, message.payload, timestamp),
        }
        try:
            response = self._client.post(message.url, content=message.payload, headers=headers)
        except httpx.TimeoutException:
            return Outcome(message.id, False, None, "timeout")
        except httpx.HTTPError as exc:
            return Outcome(message.id, False, None, type(exc).__name__)
        except Exception as exc:  # a bad URL at delivery time, a TLS library error…: retried, never fatal
            return Outcome(message.id, False, None, type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Outcome(message.id, True, response.status_code, None)
        retry_after = _retry_after(response) if response.status_code in (429, 503) else None
        return Outcome(message.id, False, response.status_code, f"HTTP {response.status_code}", retry_after)

    def record(self, message: Claimed, outcome: Outcome, now: datetime | None = None) -> bool:
        """Write the outcome if the lease is still ours; False if another dispatcher took the message over."""
        now = now or utcnow()
        table = OutboxMessage.__table__
        if outcome.delivered:
            values: dict[str, Any] = {"status": DELIVERED, "delivered_at": now, "last_status": outcome.status_code,
                                      "last_error": None}
        elif message.attempt >= message.max_attempts or now >= message.expires_at:
            values = {"status": DEAD, "last_status": outcome.status_code,
                      "last_error": (outcome.error or "failed")[:200]}
        else:
            delay = backoff(message.attempt, self.backoff_base, self.backoff_cap)
            if outcome.retry_after is not None:
                delay = min(self.backoff_cap, max(delay, outcome.retry_after))
            values = {"status": PENDING, "next_attempt_at": now + timedelta(seconds=delay),
                      "last_status": outcome.status_code, "last_error": (outcome.error or "failed")[:200]}
        values.update(lease_owner=None, lease_until=None)
        with self.platform.db.transaction() as session:
            result = session.execute(update(table).where(
                table.c.id == message.id, table.c.lease_owner == self.owner, table.c.attempts == message.attempt,
                table.c.status == PENDING).values(**values))
            return bool(result.rowcount)

    def run_once(self) -> int:
        """Claim one batch, deliver it (concurrently), record the outcomes. Returns how many were tried."""
        claimed = self.claim()
        if not claimed:
            return 0
        for message, outcome in zip(claimed, self._pool.map(self.deliver, claimed)):
            if self.record(message, outcome):
                if outcome.delivered:
                    self.delivered += 1
                else:
                    self.failed += 1
                    log.info("webhook %s attempt %d failed: %s", message.id, message.attempt, outcome.error)
        return len(claimed)

    # -- running ---------------------------------------------------------------------------------

    def _run_periodic(self) -> None:
        now = time.monotonic()
        for interval, fn, last in self.periodic:
            if now - last[0] >= interval:
                last[0] = now
                try:
                    fn()
                except Exception as exc:  # a sweep failing must not stop deliveries
                    log.warning("periodic task failed: %s", type(exc).__name__)

    def run_forever(self) -> None:
        """Deliver until :meth:`stop`; sleeps ``poll_seconds`` when idle, or until a local commit wakes it."""
        add_waker(self._wake)
        try:
            while not self._stop.is_set():
                self._run_periodic()
                # Cleared *before* the round: a commit that wakes us while we claim is not lost (the wait
                # below returns at once), and one that lands after the wait is picked up by the next round.
                self._wake.clear()
                try:
                    busy = self.run_once()
                except Exception as exc:  # the database went away, …: log the type, retry after a pause
                    log.warning("dispatcher round failed: %s", type(exc).__name__)
                    busy = 0
                    self._stop.wait(min(5.0, self.poll * 4))
                if busy < self.batch:
                    self._wake.wait(self.poll)
        finally:
            remove_waker(self._wake)

    def start(self) -> "Dispatcher":
        self._thread = threading.Thread(target=self.run_forever, name="qorgau-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            self._client.close()


def _coalesce(column: Any, value: datetime) -> Any:
    from sqlalchemy import func

    return func.coalesce(column, value)


def _dead_reason_expr(table: Any, now: datetime) -> Any:
    from sqlalchemy import case, literal

    return case((table.c.expires_at <= now, literal("expired: older than the maximum age")),
                else_=literal("dead: out of attempts"))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds()) if when.tzinfo else None


def start_in_server(platform: Platform) -> Dispatcher | None:
    """The API server's dispatcher thread (``QORGAU_CONSENT_DISPATCHER``), with the periodic sweeps: consent
    expiry, the AI-decision review deadlines (escalate or reject, never approve — L-PD-AUTO), and hourly the
    AI governance job (ended sandboxes closed, today's maturity index stored)."""
    if not platform.settings.consent_dispatcher:
        return None
    from qorgau.aisystems.governance import run_periodic as governance_periodic
    from qorgau.oversight.service import sweep_all
    from qorgau.leaks.ingest import run_periodic as leaks_ingest_periodic  # leak uploads: expiry, merges
    from qorgau.leaks.citizens import leak_citizens_for  # leak notices whose message failed are retried

    from .service import expire_all

    return Dispatcher(platform, periodic=[(60.0, lambda: expire_all(platform)),
                                          (60.0, lambda: sweep_all(platform)),
                                          (3600.0, lambda: governance_periodic(platform)),
                                          (3600.0, lambda: leaks_ingest_periodic(platform)),
                                          (600.0, lambda: leak_citizens_for(platform).deliver_pending())]).start()


__all__ = ["DELIVERY_HEADER", "EVENT_HEADER", "IDEMPOTENCY_HEADER", "SIGNATURE_HEADER", "Claimed", "Dispatcher",
           "Outcome", "backoff", "sign", "start_in_server", "verify_signature"]
