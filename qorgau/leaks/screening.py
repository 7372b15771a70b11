"""Operators screen their customers against the leak register without revealing them (issue 8; L-PD-LEAK-REGISTER).

A bank or telco wants to know which of its customers' identifiers appear in a registered leak (to warn them, to
reset credentials, to watch for fraud). It must not send the identifiers to the register, and the register must
not become an enumeration oracle (an IIN has about 9·10⁸ possible values). The protocol (RFC 9497 VOPRF,
``qorgau/leaks/oprf.py``; the register's key in ``qorgau/leaks/register.py``):

1. ``key_info()`` — the suite, mode and the register's public key; the client pins it.
2. The client blinds ``"kind:normalized value"`` → ``evaluate(blinded)`` returns the evaluated elements and one
   batch DLEQ proof; the client verifies the proof against the pinned public key, unblinds and truncates the
   output to the 32-byte index token (:func:`qorgau.leaks.register.index_token`).
3. ``match(tokens)`` — which tokens appear in the index, with the incidents this operator may see.

What the register learns: how many elements an API key evaluated and how many tokens it matched, and the
tokens themselves in step 3 (pseudorandom values; the register could tell which *incidents* a token is in —
that is the answer — but not the identifier, except by evaluating candidates itself, which it can do anyway).
It never sees an identifier. What the operator learns: the PRF value of the identifiers it already holds.

**The barrier is the evaluation budget.** Without the key, tokens cannot be computed; every token costs one
evaluation here, so ``leaks.screen_evaluate`` (counted per *element*, per API key or user: by default 100,000 a
day with bursts of 10,000) is what stops an operator's key from enumerating 9·10⁸ IINs (it would take 25
years). ``leaks.screen_match`` (per token, per key) bounds the load, not the knowledge.

**Who may screen** (``require_screener``): users and API keys of an operator with the role ``admin`` or ``dpo``
(the operator's responsible people), and the authorized body's ``regulator``. Citizens and reviewers may not.

**What a match reveals** — the visibility rule of shared-interfaces.md: an incident is reported to an operator
when it is ``published`` or was filed by that operator, and never when its status is ``fabricated``; a token
found only in another operator's unpublished incident is reported exactly as a token found nowhere. The
authorized body sees every incident except fabricated ones (a fabricated report is not a leak).

Audit: one entry per call (``leaks.screening_evaluated`` / ``leaks.screening_matched``) with counts only. The
match path appends its entries in batches (at most :data:`AUDIT_FLUSH_SECONDS` later, and at once when
:data:`AUDIT_FLUSH_ENTRIES` are waiting) so that the benchmarked lookup does not pay one commit per request; a
crash of the process can lose the entries of that last fraction of a second (docs/leaks-screening.md).
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import rbcl
from sqlalchemy import event, select
from sqlalchemy.pool import NullPool

from ..core import audit
from ..core.auth import API_KEY_PREFIX, Organization, Principal, Role
from ..core.db import make_engine
from ..core.errors import AuthenticationRequired, InvalidInput, PermissionDenied
from ..core.platform import shared
from ..core.ratelimit import Limit
from . import oprf
from .register import (KEY_VERSION, TOKEN_BYTES, leak_index_for, leak_keys_for, leak_limiter_for)

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["IncidentRef", "KeyInfo", "Match", "ScreeningService", "decode_elements", "require_screener",
           "screening_for"]

EVALUATE_SCOPE = "leaks.screen_evaluate"
MATCH_SCOPE = "leaks.screen_match"
DAY = 86_400.0

# Defaults; a deployment overrides them with settings of the same names (``QORGAU_LEAKS_SCREEN_…``) when present.
DEFAULTS: dict[str, int] = {
    "leaks_screen_batch_max": 1_000,              # elements per evaluate call, tokens per match call
    "leaks_screen_evaluate_per_day": 100_000,     # OPRF evaluations per API key (or user) per day
    "leaks_screen_evaluate_burst": 10_000,
    "leaks_screen_match_per_day": 2_000_000,      # tokens matched per key per day (load, not knowledge)
    "leaks_screen_match_burst": 200_000,
}
AUDIT_FLUSH_SECONDS = 0.5
AUDIT_FLUSH_ENTRIES = 500
REFRESH_SECONDS = 1.0
_SCREEN_ROLES = frozenset({Role.ADMIN.value, Role.DPO.value})
_AUTHORITY_TTL = 10.0
_log = logging.getLogger("qorgau.leaks.screening")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    suite: str
    mode: str
    public_key: str  # base64
    key_version: int
    token_bytes: int
    max_batch: int

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "mode": self.mode, "public_key": self.public_key,
                "key_version": self.key_version, "token_bytes": self.token_bytes, "max_batch": self.max_batch}


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """What a screening operator may know of an incident: never the leaked values."""

    reference: str
    operator: str
    status: str
    published: bool
    own: bool
    discovered_on: str
    data_classes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "operator": self.operator, "status": self.status,
                "published": self.published, "own": self.own, "discovered_on": self.discovered_on,
                "data_classes": list(self.data_classes)}


@dataclass(frozen=True, slots=True)
class Match:
    index: int
    incidents: tuple[IncidentRef, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "incidents": [i.to_dict() for i in self.incidents]}


def _setting(platform: Platform, name: str) -> int:
    value = getattr(platform.settings, name, None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else DEFAULTS[name]


def decode_elements(values: object, field_name: str, *, max_items: int, size: int = 32) -> list[bytes]:
    """A JSON list of base64 strings → byte strings of ``size`` bytes; errors name ``field.i``, never the value."""
    if not isinstance(values, list):
        raise InvalidInput(f"{field_name} must be a list of base64 strings", field=field_name)
    if not values:
        raise InvalidInput(f"{field_name} must not be empty", field=field_name)
    if len(values) > max_items:
        raise InvalidInput(f"{field_name} holds more than {max_items} items", field=field_name)
    out = []
    for i, value in enumerate(values):
        where = f"{field_name}.{i}"
        if not isinstance(value, str) or len(value) > 4 * size:
            raise InvalidInput(f"{where} must be a base64 string of {size} bytes", field=where)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{where} is not valid base64", field=where) from None
        if len(data) != size:
            raise InvalidInput(f"{where} must be {size} bytes", field=where)
        out.append(data)
    return out


def _check_elements(blinded: Sequence[bytes]) -> None:
    """RFC 9497 DeserializeElement for each element, naming its index (``blinded.i``)."""
    identity = bytes(oprf.NE)
    valid = rbcl.crypto_core_ristretto255_is_valid_point
    for i, element in enumerate(blinded):
        if not isinstance(element, bytes) or len(element) != oprf.NE:
            raise InvalidInput(f"blinded.{i} must be {oprf.NE} bytes", field=f"blinded.{i}")
        if element == identity:
            raise InvalidInput(f"blinded.{i} is the identity element", field=f"blinded.{i}")
        if not valid(element):
            raise InvalidInput(f"blinded.{i} is not a valid ristretto255 element", field=f"blinded.{i}")


class _AuditBatcher:
    """Audit entries of the match path, appended with ``record_many`` in one transaction per batch."""

    def __init__(self, platform: Platform) -> None:
        self._platform = weakref.ref(platform)
        self._lock = threading.Lock()
        self._pending: list[audit.Event] = []
        self._timer: threading.Timer | None = None

    def add(self, event: audit.Event) -> None:
        with self._lock:
            self._pending.append(event)
            due = len(self._pending) >= AUDIT_FLUSH_ENTRIES
            if not due and self._timer is None:
                self._timer = threading.Timer(AUDIT_FLUSH_SECONDS, self._flush_logged)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 — the type only: details never carry values, but be strict
            _log.error("screening audit flush failed: %s", type(exc).__name__)

    def flush(self) -> int:
        with self._lock:
            events, self._pending = self._pending, []
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        platform = self._platform()
        if not events or platform is None:
            return 0
        with platform.db.transaction() as session:
            audit.record_many(session, events)
        return len(events)


class _HotReader:
    """The match path's two reads as driver-level statements on a per-thread connection of a dedicated engine
    (the ORM session machinery costs several times the indexed reads; the pattern of the consent decision
    point). Autocommit: every statement sees the latest committed state (a revoked key, a publication)."""

    def __init__(self, platform: Platform) -> None:
        self._engine = make_engine(platform.db.url, poolclass=NullPool)
        self._sqlite = self._engine.dialect.name == "sqlite"
        self._p = "?" if self._sqlite else "%s"
        self._local = threading.local()
        self._open: list[tuple[int, Any]] = []
        self._lock = threading.Lock()
        event.listen(platform.db.engine, "engine_disposed", lambda _engine: self.close())

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
            self._local = threading.local()
        for pid, conn in conns:
            if pid == os.getpid():
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
        self._engine.dispose()

    def _cursor(self) -> Any:
        local = self._local
        cursor = getattr(local, "cursor", None)
        if cursor is not None and local.pid == os.getpid():
            return cursor
        raw = self._engine.raw_connection()
        driver = raw.driver_connection
        if not self._sqlite:
            driver.autocommit = True
        local.raw, local.pid, local.cursor = raw, os.getpid(), driver.cursor()
        with self._lock:
            self._open.append((local.pid, driver))
        return local.cursor

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        cursor = self._cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        except Exception:
            self._local.cursor = None  # a broken connection: the next call opens a new one
            raise

    def api_key(self, presented: str) -> Principal:
        """``auth.resolve_api_key`` as one statement (same rules: prefix, SHA-256 of the secret, not revoked)."""
        if not presented.startswith(API_KEY_PREFIX) or presented.count("_") < 2:
            raise AuthenticationRequired("malformed API key")
        prefix, _, secret = presented[len(API_KEY_PREFIX):].partition("_")
        rows = self._execute("SELECT id, organization_id, roles, secret_hash, revoked_at FROM api_keys "
                             f"WHERE prefix = {self._p}", (prefix,))
        if not rows or not hmac.compare_digest(str(rows[0][3]), hashlib.sha256(secret.encode()).hexdigest()):
            raise AuthenticationRequired("unknown API key")
        key_id, org, roles, _, revoked = rows[0]
        if revoked is not None:
            raise AuthenticationRequired("this API key was revoked")
        return Principal("apikey", key_id, org, frozenset(json.loads(roles) if isinstance(roles, (str, bytes))
                                                          else roles))

    def incidents(self, ids: list[int]) -> list[tuple[Any, ...]]:
        """(id, reference, organization, status, published, discovered, data classes, operator name) of the
        non-fabricated incidents among ``ids`` (platform-wide: the caller applies the visibility rule)."""
        marks = ", ".join([self._p] * len(ids))
        rows = self._execute(
            "SELECT i.id, i.reference, i.organization_id, i.status, i.published, i.discovered_at, i.data_classes, "
            "o.name FROM leak_incidents i JOIN organizations o ON o.id = i.organization_id "
            f"WHERE i.id IN ({marks}) AND i.status <> 'fabricated'", tuple(ids))
        return [(iid, ref, org, status, bool(published), _date(discovered),
                 json.loads(classes) if isinstance(classes, (str, bytes)) else (classes or []), name)
                for iid, ref, org, status, published, discovered, classes, name in rows]


class ScreeningService:
    """Blinded evaluation and token matching for operators (``screening_for(platform)``)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.keys = leak_keys_for(platform)
        self.index = leak_index_for(platform)
        self.limiter = leak_limiter_for(platform)
        self.max_batch = min(_setting(platform, "leaks_screen_batch_max"), oprf.MAX_BATCH)
        self.limiter.configure(EVALUATE_SCOPE, Limit(_setting(platform, "leaks_screen_evaluate_per_day"), DAY,
                                                     _setting(platform, "leaks_screen_evaluate_burst")))
        self.limiter.configure(MATCH_SCOPE, Limit(_setting(platform, "leaks_screen_match_per_day"), DAY,
                                                  _setting(platform, "leaks_screen_match_burst")))
        self._refreshed = time.monotonic()
        self._refresh_lock = threading.Lock()
        self._authority: dict[int, tuple[float, bool]] = {}
        self._audit = _AuditBatcher(platform)
        # platform.close() disposes the engine: write the waiting audit entries first (the listener order)
        event.listen(platform.db.engine, "engine_disposed", lambda _engine: self._audit._flush_logged())
        self._hot = _HotReader(platform)
        atexit.register(_flush_quietly, weakref.ref(self._audit))

    def __repr__(self) -> str:
        return f"ScreeningService(key_version={self.keys.key_version})"

    # --- who may screen -----------------------------------------------------------------------------

    def _is_authority(self, organization_id: int) -> bool:
        now = time.monotonic()
        cached = self._authority.get(organization_id)
        if cached is not None and now - cached[0] < _AUTHORITY_TTL:
            return cached[1]
        with self.platform.db.reader() as session:
            flag = bool(session.execute(select(Organization.is_authority).where(Organization.id == organization_id)
                                        .execution_options(qorgau_cross_tenant=True)).scalar())
        self._authority[organization_id] = (now, flag)
        return flag

    def require_screener(self, principal: Principal) -> bool:
        """Refuse callers who may not screen; True when the caller acts for the authorized body (sees every
        non-fabricated incident)."""
        authority = principal.has_any(Role.REGULATOR) and self._is_authority(principal.organization_id)
        if authority or (principal.roles & _SCREEN_ROLES and principal.kind in ("apikey", "user")):
            return authority
        raise PermissionDenied("screening needs an operator's admin or dpo role (or the authorized body's "
                               "regulator)", field="roles")

    # --- the protocol -------------------------------------------------------------------------------

    def key_info(self) -> KeyInfo:
        return KeyInfo(suite=oprf.SUITE, mode="VOPRF", public_key=base64.b64encode(self.keys.public_key).decode(),
                       key_version=KEY_VERSION, token_bytes=TOKEN_BYTES, max_batch=self.max_batch)

    def evaluate(self, principal: Principal, blinded: Sequence[bytes]) -> tuple[list[bytes], bytes]:
        """Evaluate a batch of blinded elements under one DLEQ proof. Counted per element against
        ``leaks.screen_evaluate`` of this key: the enumeration barrier (L-PD-LEAK-REGISTER)."""
        self.require_screener(principal)
        if isinstance(blinded, (bytes, str)) or not isinstance(blinded, Sequence) or not blinded:
            raise InvalidInput("blinded must be a non-empty list of elements", field="blinded")
        if len(blinded) > self.max_batch:
            raise InvalidInput(f"blinded holds more than {self.max_batch} elements", field="blinded")
        _check_elements(blinded)
        self.limiter.hit(EVALUATE_SCOPE, principal.actor, cost=len(blinded))
        evaluated, proof = self.keys.blind_evaluate(blinded)
        with self.platform.db.transaction(principal.organization_id) as session:
            audit.record(session, actor=principal.actor, action="leaks.screening_evaluated",
                         object_type="leak_screening", object_id=principal.actor,
                         organization_id=principal.organization_id,
                         details={"elements": len(blinded), "key_version": KEY_VERSION})
        return evaluated, proof

    def _maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._refreshed < REFRESH_SECONDS:
            return
        with self._refresh_lock:
            if now - self._refreshed >= REFRESH_SECONDS:
                self._refreshed = now
                self.index.refresh()

    def match(self, principal: Principal, tokens: Sequence[bytes]) -> list[Match]:
        """Which tokens appear, each with the incidents this operator may see (published or its own, never
        fabricated); a token in nothing visible is simply absent from the answer. Counted per token."""
        authority = self.require_screener(principal)
        if isinstance(tokens, (bytes, str)) or not isinstance(tokens, Sequence) or not tokens:
            raise InvalidInput("tokens must be a non-empty list of tokens", field="tokens")
        if len(tokens) > self.max_batch:
            raise InvalidInput(f"tokens holds more than {self.max_batch} tokens", field="tokens")
        for i, token in enumerate(tokens):
            if not isinstance(token, bytes) or len(token) != TOKEN_BYTES:
                raise InvalidInput(f"tokens.{i} must be {TOKEN_BYTES} bytes", field=f"tokens.{i}")
        self.limiter.hit(MATCH_SCOPE, principal.actor, cost=len(tokens))
        self._maybe_refresh()
        hits = self._lookup(tokens)
        # The visibility read runs whether or not anything was found (an id that never exists when nothing was):
        # a token only in another operator's unpublished incident must not answer slower than one found nowhere.
        visible = self._visible(principal.organization_id, authority,
                                {incident for found in hits.values() for incident in found} or {-1})
        matches: list[Match] = []
        for i in sorted(hits):
            refs = tuple(visible[incident] for incident in hits[i] if incident in visible)
            if refs:
                matches.append(Match(i, refs))
        self._audit.add(audit.Event(principal.actor, "leaks.screening_matched", "leak_screening", principal.actor,
                                    principal.organization_id,
                                    {"tokens": len(tokens), "found": len(matches),
                                     "incidents": len({r.reference for m in matches for r in m.incidents})}))
        return matches

    def principal_for_api_key(self, presented: str) -> Principal:
        """The caller of the match path's fast layer, read on every call (a revoked key stops at once)."""
        return self._hot.api_key(presented)

    def flush_audit(self) -> int:
        """Write the match path's waiting audit entries now (tests, shutdown); returns how many."""
        return self._audit.flush()

    def _lookup(self, tokens: Sequence[bytes]) -> dict[int, tuple[int, ...]]:
        if len(tokens) <= 8:
            lookup = self.index.lookup
            return {i: found for i, token in enumerate(tokens) if (found := lookup(token))}
        result = self.index.lookup_many(list(tokens))
        hits: dict[int, list[int]] = {}
        for q, incident in zip(result.query.tolist(), result.incidents.tolist()):
            hits.setdefault(q, []).append(incident)
        return {q: tuple(v) for q, v in hits.items()}

    def _visible(self, organization_id: int, authority: bool, incident_ids: set[int]) -> dict[int, IncidentRef]:
        """The visibility rule for screening (shared-interfaces.md): published or own, never fabricated;
        the authorized body sees every non-fabricated incident. Read platform-wide (unscoped session)."""
        out: dict[int, IncidentRef] = {}
        for iid, reference, org, status, published, discovered, classes, name in self._hot.incidents(
                sorted(incident_ids)):
            own = org == organization_id
            if not (authority or own or published):
                continue  # another operator's unpublished incident: as if the token were not there
            out[iid] = IncidentRef(reference=reference, operator=name, status=status, published=published,
                                   own=own, discovered_on=discovered, data_classes=tuple(str(c) for c in classes))
        return out


def _date(value: datetime | str | None) -> str:
    """A timestamp column as ``YYYY-MM-DD`` (PostgreSQL returns datetimes, SQLite ISO text)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)[:10] if value else ""


def _flush_quietly(ref: weakref.ref[_AuditBatcher]) -> None:
    batcher = ref()
    if batcher is not None:
        try:
            batcher.flush()
        except Exception:  # noqa: BLE001 — at interpreter exit the database may already be closed
            pass


def require_screener(platform: Platform, principal: Principal) -> bool:
    return screening_for(platform).require_screener(principal)


def screening_for(platform: Platform) -> ScreeningService:
    return shared(platform, "_leak_screening", ScreeningService)
