"""The decision point: "may operator O process subject S for purpose P (these data) now?" — the hot path.

**Linearizable withdrawal.** Once :meth:`ConsentService.withdraw` returns, no check that *starts* afterwards
— in any thread, process or server on the same database — returns allow for that consent. The argument:

1. ``withdraw`` changes the consent's status inside a transaction and returns only after it committed.
2. Every check reads the committed state with **one SQL statement** on a connection in autocommit mode,
   so the statement is its own transaction and its snapshot is taken when it starts: on PostgreSQL (READ
   COMMITTED) a statement sees every transaction committed before it began; on SQLite (WAL) a read
   transaction sees every commit finished before it began (commits publish through the shared WAL index).
3. A check that starts after ``withdraw`` returned therefore starts its statement after the commit, sees
   ``withdrawn`` and denies. No cache sits in between: nothing can hand out a stale "allow". (Checks that
   overlap the withdrawal may see either state — that is what "concurrent" means.)

The statement resolves the subject (pseudonym → ``vault_pseudonyms``, identifier → blind index →
``vault_lookups``), and reads the subject's consents for the purpose and its ancestors plus the legal bases
that cover them, through the indexes ``(organization_id, subject_id, purpose)`` and
``(organization_id, purpose)``. It is driver-level SQL for speed (no ORM on the hot path), so it adds
``organization_id = ?`` to every table itself; ``tests/consent/test_decision.py`` proves another
organization's rows are never found. Reading the vault's two lookup tables directly is the one place this
module touches another module's tables: resolving the subject inside the same statement is what makes a
check one round trip.

Each thread keeps its own database connection (created on first use; a forked child makes its own), in
autocommit mode, so a check costs one indexed query and no pool checkout.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.pool import NullPool

from ..core.db import make_engine
from ..core.errors import InvalidInput
from ..identifiers import is_valid_iin
from ..vault import crypto as vault_crypto
from ..vault.service import LOOKUP_TYPES, check_identifier
from .models import ACTIVE, EXPIRED, SUPERSEDED, WITHDRAWN
from .purposes import ancestors, check_purpose_code, default_taxonomy

if TYPE_CHECKING:
    from ..core.platform import Platform
    from ..vault.service import Vault

# Reasons (machine codes; the API and the client switch on them).
CONSENT_ACTIVE = "consent_active"
LEGAL_BASIS = "legal_basis"
NO_CONSENT = "no_consent"
WITHDRAWN_REASON = "withdrawn"
EXPIRED_REASON = "expired"
PURPOSE_NOT_COVERED = "purpose_not_covered"
CATEGORY_NOT_COVERED = "category_not_covered"
UNKNOWN_SUBJECT = "unknown_subject"
UNKNOWN_PURPOSE = "unknown_purpose"
SUBJECT_ERASED = "subject_erased"
REASONS: tuple[str, ...] = (CONSENT_ACTIVE, LEGAL_BASIS, NO_CONSENT, WITHDRAWN_REASON, EXPIRED_REASON,
                            PURPOSE_NOT_COVERED, CATEGORY_NOT_COVERED, UNKNOWN_SUBJECT, UNKNOWN_PURPOSE,
                            SUBJECT_ERASED)


@dataclass(frozen=True)
class SubjectRef:
    """Who the check is about: a vault pseudonym, or an identifier (e.g. ``("KZ_IIN", "…")``).

    Exactly one of the two. ``repr`` never shows the identifier (a pseudonym is not personal data by itself,
    but it is not shown either: logs don't need it).
    """

    pseudonym: str | None = None
    identifier_type: str | None = None
    identifier: str | None = None
    domain: str = "default"

    def __post_init__(self) -> None:
        has_pseudonym = self.pseudonym is not None
        has_identifier = self.identifier is not None or self.identifier_type is not None
        if has_pseudonym == has_identifier:
            raise InvalidInput("give the subject as a pseudonym or as an identifier type and value (one of the two)",
                               field="subject")
        if has_identifier and (not self.identifier_type or not self.identifier):
            raise InvalidInput("an identifier needs both its type and its value",
                               field="subject.identifier" if self.identifier_type else "subject.identifier_type")

    def __repr__(self) -> str:
        if self.pseudonym is not None:
            return f"SubjectRef(pseudonym=<hidden>, domain={self.domain!r})"
        return f"SubjectRef(identifier_type={self.identifier_type!r}, identifier=<hidden>)"

    __str__ = __repr__


@dataclass(frozen=True)
class Decision:
    """The answer. ``basis`` is ``"consent"``, a legal-basis kind (``"law"``, ``"contract"``…) or ``None``."""

    allow: bool
    basis: str | None
    consent_id: int | None
    legal_basis_id: int | None
    reason: str
    checked_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"allow": self.allow, "basis": self.basis, "consent_id": self.consent_id,
                "legal_basis_id": self.legal_basis_id, "reason": self.reason,
                "checked_at": self.checked_at.isoformat()}


_DOMAIN_OK: set[str] = set()
_CHAINS: dict[str, tuple[str, ...]] = {}  # validated purpose code -> the code and its ancestors
_MAX_CACHED_CODES = 10_000


def _sqlite_timestamp(at: datetime) -> str:
    """How SQLAlchemy stores a DateTime on SQLite (UTC, microseconds always), so SQL compares text."""
    if at.utcoffset():
        at = at.astimezone(timezone.utc)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (at.year, at.month, at.day, at.hour, at.minute, at.second,
                                                   at.microsecond)


def _chain(purpose: Any) -> tuple[str, ...]:
    chain = _CHAINS.get(purpose) if isinstance(purpose, str) else None
    if chain is None:
        chain = ancestors(check_purpose_code(purpose))
        if len(_CHAINS) < _MAX_CACHED_CODES:
            _CHAINS[purpose] = chain
    return chain


def _domain(domain: Any) -> str:
    if domain in _DOMAIN_OK:
        return domain
    import re

    if not isinstance(domain, str) or not re.fullmatch(r"[a-z0-9_-]{1,40}", domain):
        raise InvalidInput("domain must be 1–40 characters of a-z, 0-9, '_' and '-'", field="subject.domain")
    if len(_DOMAIN_OK) < 1000:
        _DOMAIN_OK.add(domain)
    return domain


def _subject_query(by: str, p: str) -> str:
    if by == "pseudonym":
        return (f"SELECT subject_id FROM vault_pseudonyms "
                f"WHERE organization_id = {p} AND domain = {p} AND pseudonym = {p}")
    return (f"SELECT subject_id FROM vault_lookups "
            f"WHERE organization_id = {p} AND entity_type = {p} AND blind_index = {p}")


def _statement(by: str, depth: int, p: str) -> str:
    """One statement: the subject's consents for the purpose and its ancestors, and the legal bases.

    Rows: ('c', consent id, purpose, status, categories, live, NULL) per consent; ('b', basis id, purpose, kind,
    NULL, live, subject id) per legal basis. ``live``: within its term at ``at``. The subject is a scalar
    subquery (a unique-index probe) rather than a join, so every planner — SQLite without statistics included
    — looks consents up by ``(organization_id, subject_id, purpose)`` instead of scanning a purpose's consents.
    Whether the subject exists at all only matters for the *reason* of a deny, so it is asked only then.
    """
    purposes = ", ".join([p] * depth)
    subject = _subject_query(by, p)
    return (
        f"SELECT 'c', c.id, c.purpose, c.status, CAST(c.data_categories AS TEXT), "
        f"CASE WHEN c.valid_until IS NULL OR c.valid_until > {p} THEN 1 ELSE 0 END, CAST(NULL AS INTEGER) "
        f"FROM consent_consents c "
        f"WHERE c.organization_id = {p} AND c.subject_id = ({subject}) AND c.purpose IN ({purposes}) "
        f"UNION ALL "
        f"SELECT 'b', b.id, b.purpose, b.kind, CAST(NULL AS TEXT), "
        f"CASE WHEN b.valid_from <= {p} AND (b.valid_until IS NULL OR b.valid_until > {p}) THEN 1 ELSE 0 END, "
        f"b.subject_id "
        f"FROM consent_legal_bases b "
        f"WHERE b.organization_id = {p} AND b.purpose IN ({purposes}) AND b.revoked_at IS NULL "
        f"AND (b.subject_id IS NULL OR b.subject_id = ({subject}))"
    )


class DecisionPoint:
    """Answers checks for one platform (database). Thread-safe; share one per process."""

    def __init__(self, platform: Platform, vault: Vault) -> None:
        self.platform = platform
        self.vault = vault
        url = platform.db.url
        # A dedicated engine without a pool: each thread holds one connection for its lifetime, so the
        # hot path never checks a connection out of (or competes for) the application's pool.
        self._engine = make_engine(url, poolclass=NullPool)
        self.dialect = self._engine.dialect.name
        self._sqlite = self.dialect == "sqlite"
        self._p = "?" if self._sqlite else "%s"
        self._local = threading.local()
        self._sql: dict[tuple[str, int], str] = {}
        self._blind_keys: dict[int, bytes] = {}
        self._stale: list[Any] = []  # connections inherited through fork(): kept alive, never used or closed
        self._open: list[Any] = []  # every thread's connection, so closing the platform closes them all
        self._lock = threading.Lock()
        # platform.close() disposes the main engine: close the hot path's connections with it.
        event.listen(platform.db.engine, "engine_disposed", lambda _engine: self.close())

    def __repr__(self) -> str:
        return f"DecisionPoint(db={self.dialect})"

    def close(self) -> None:
        """Close every thread's connection (a thread that checks again afterwards opens a new one)."""
        with self._lock:
            conns, self._open = self._open, []
            self._local = threading.local()
        pid = os.getpid()
        for owner_pid, conn in conns:
            if owner_pid == pid:
                try:
                    conn.close()
                except Exception:
                    pass
        self._engine.dispose()

    # -- connections ---------------------------------------------------------------------------

    def _cursor(self) -> Any:
        local = self._local
        cursor = getattr(local, "cursor", None)
        if cursor is not None and local.pid == os.getpid():
            return cursor
        conn = getattr(local, "conn", None)
        if conn is not None:
            self._stale.append(conn)  # the parent's connection: closing it here would close the parent's
        raw = self._engine.raw_connection()
        driver = raw.driver_connection
        if self.dialect == "postgresql":
            driver.autocommit = True  # each statement its own transaction (READ COMMITTED snapshot)
        # SQLite: core.db's connect hook already set isolation_level=None (autocommit), WAL, busy timeout.
        local.conn, local.pid, local.raw, local.cursor = driver, os.getpid(), raw, driver.cursor()
        with self._lock:
            self._open.append((local.pid, driver))
        return local.cursor

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        cursor = self._cursor()
        try:
            cursor.execute(sql, params)
            # fetchall() steps the statement to its end: on SQLite that ends the implicit read transaction,
            # so the next check on this connection takes a fresh snapshot.
            return cursor.fetchall()
        except Exception:
            # A broken connection (server restart, …) is dropped; the next check opens a new one.
            local = self._local
            conn, local.conn, local.cursor = local.conn, None, None
            try:
                conn.close()
            except Exception:
                pass
            raise

    def _timestamp(self, at: datetime) -> Any:
        return _sqlite_timestamp(at) if self._sqlite else at

    # -- subjects ------------------------------------------------------------------------------

    def _blind_key(self, organization_id: int) -> bytes | None:
        key = self._blind_keys.get(organization_id)
        if key is not None:
            return key
        with self.platform.db.reader(organization_id) as session:
            keys = self.vault._keys(session, organization_id, create=False)  # noqa: SLF001 (see module doc)
        if keys is None:
            return None  # the organization never stored a subject: nobody to find (not cached: it may)
        with self._lock:
            self._blind_keys[organization_id] = keys[0]
        return keys[0]

    def _subject_params(self, organization_id: int, subject: SubjectRef) -> tuple[str, tuple[Any, ...]]:
        pseudonym = subject.pseudonym
        if pseudonym is not None:
            if not isinstance(pseudonym, str) or len(pseudonym) != 29 or not pseudonym.startswith("ps_"):
                raise InvalidInput("pseudonym must be 'ps_' followed by 26 letters a-z", field="subject.pseudonym")
            return "pseudonym", (organization_id, _domain(subject.domain), pseudonym)
        entity_type, value = subject.identifier_type, subject.identifier
        if entity_type not in LOOKUP_TYPES:
            raise InvalidInput(f"identifier type must be one of {', '.join(sorted(LOOKUP_TYPES))}",
                               field="subject.identifier_type")
        if not isinstance(value, str) or not value.strip() or len(value) > 1000:
            raise InvalidInput("identifier value is required", field="subject.identifier")
        if entity_type == "KZ_IIN" and len(value) == 12 and value.isdigit() and is_valid_iin(value):
            normalized = value  # the common case, without the general normalizer (same result: tested)
        else:
            normalized, problem = check_identifier(entity_type, value)
            if problem is not None:
                raise InvalidInput(f"not a valid {entity_type}: {problem}", field="subject.identifier")
        key = self._blind_key(organization_id)
        # No vault keys yet: the organization never stored a subject. The statement still runs (with a blind
        # index nothing matches), so blanket legal bases answer exactly as they would for a stranger.
        blind = vault_crypto.blind_index(key, entity_type, normalized) if key is not None else b"\x00" * 32
        return "lookup", (organization_id, entity_type, blind)

    # -- the check -----------------------------------------------------------------------------

    def check(self, subject: SubjectRef, *, organization_id: int, purpose: str, data_categories: Any = (),
              at: datetime | None = None) -> Decision:
        """See :meth:`qorgau.consent.service.ConsentService.check`."""
        if at is None:
            when = datetime.now(timezone.utc)
        elif isinstance(at, datetime) and at.tzinfo is not None:
            when = at
        else:
            raise InvalidInput("'at' must be a timezone-aware timestamp", field="at")
        if type(organization_id) is not int:
            raise InvalidInput("organization_id must be an integer", field="organization_id")
        chain = _chain(purpose)
        categories = _categories(data_categories) if data_categories else ()
        by, subject_params = self._subject_params(organization_id, subject)
        slot = (by, len(chain))
        sql = self._sql.get(slot)
        if sql is None:
            sql = self._sql[slot] = _statement(by, len(chain), self._p)
        ts = self._timestamp(when)
        rows = self._execute(sql, (ts, organization_id, *subject_params, *chain, ts, ts, organization_id, *chain,
                                   *subject_params))
        decision = _decide(rows, chain, categories, when)
        if decision.reason == NO_CONSENT:
            # The deny path only (an allow never waits for these): say *why* there is no consent.
            decision = self._explain(decision, organization_id, chain[0], by, subject_params, ts)
        return decision

    def _explain(self, decision: Decision, organization_id: int, code: str, by: str,
                 subject_params: tuple[Any, ...], ts: Any) -> Decision:
        p = self._p
        found = self._execute(_subject_query(by, p), subject_params)
        if not found:
            return Decision(False, None, None, None, UNKNOWN_SUBJECT, decision.checked_at)
        if not default_taxonomy().has_purpose(code) and not self._execute(
                f"SELECT 1 FROM consent_purposes WHERE organization_id = {p} AND code = {p} AND active = {p}",
                (organization_id, code, True)):
            return Decision(False, None, None, None, UNKNOWN_PURPOSE, decision.checked_at)
        subject_id = found[0][0]
        narrower = self._execute(
            f"SELECT 1 FROM consent_consents WHERE organization_id = {p} AND subject_id = {p} AND status = {p} "
            f"AND substr(purpose, 1, {p}) = {p} AND (valid_until IS NULL OR valid_until > {p}) LIMIT 1",
            (organization_id, subject_id, ACTIVE, len(code) + 1, code + ".", ts))
        if narrower:
            # A consent to a narrower purpose (marketing.sms) does not cover the broader one (marketing).
            return Decision(False, None, None, None, PURPOSE_NOT_COVERED, decision.checked_at)
        return decision


def _categories(data_categories: Any) -> tuple[str, ...]:
    if not data_categories:
        return ()
    if isinstance(data_categories, str) or not isinstance(data_categories, (list, tuple, set, frozenset)):
        raise InvalidInput("data_categories must be a list of category codes", field="data_categories")
    for i, code in enumerate(data_categories):
        if not isinstance(code, str) or not code or len(code) > 40:
            raise InvalidInput("a data category is a code of up to 40 characters", field=f"data_categories.{i}")
    return tuple(data_categories)


def _loads(value: Any) -> list[str]:
    if isinstance(value, list):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode()
    return json.loads(value) if value else []


def _decide(rows: list[tuple[Any, ...]], chain: tuple[str, ...], categories: tuple[str, ...],
            when: datetime) -> Decision:
    best_consent: int | None = None
    category_gap = False
    expired = withdrawn = False
    basis: tuple[int, str] | None = None
    rank = {code: i for i, code in enumerate(chain)}  # the most specific purpose wins
    best_rank = len(chain)
    basis_rank = (len(chain), 0)
    for kind, row_id, purpose, status, cats, live, extra in rows:
        if kind == "c":
            if status == ACTIVE:
                if not live:
                    expired = True
                elif categories and not set(categories).issubset(_loads(cats)):
                    category_gap = True
                elif rank[purpose] < best_rank or (rank[purpose] == best_rank and best_consent is not None
                                                   and row_id > best_consent):
                    best_consent, best_rank = row_id, rank[purpose]
            elif status == WITHDRAWN:
                withdrawn = True
            elif status == EXPIRED:
                expired = True
            # SUPERSEDED: a newer consent for the same purpose replaced it; that one decides.
        elif live:  # a legal basis within its validity
            # A subject-specific basis beats a blanket one; a more specific purpose beats a broader one.
            key = (rank[purpose], 0 if extra is not None else 1)
            if basis is None or key < basis_rank:
                basis, basis_rank = (row_id, status), key
    if best_consent is not None:
        return Decision(True, "consent", best_consent, None, CONSENT_ACTIVE, when)
    if basis is not None:
        return Decision(True, basis[1], None, basis[0], LEGAL_BASIS, when)
    if category_gap:
        reason = CATEGORY_NOT_COVERED
    elif withdrawn:
        reason = WITHDRAWN_REASON
    elif expired:
        reason = EXPIRED_REASON
    else:
        reason = NO_CONSENT  # or unknown_subject / unknown_purpose / purpose_not_covered: see _explain
    return Decision(False, None, None, None, reason, when)


__all__ = ["REASONS", "Decision", "DecisionPoint", "SubjectRef", "SUPERSEDED"]
