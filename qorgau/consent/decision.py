"""The decision point: "may operator O process subject S for purpose P (these data) now?" — the hot path.

**Linearizable withdrawal.** Once :meth:`ConsentService.withdraw` returns, no check that *starts* afterwards
— in any thread, process or server on the same database — returns allow for that consent. The argument:

1. ``withdraw`` changes the consent's status inside a transaction and returns only after it committed. The
   same transaction increments the subject's **decision version** (``consent_decision_versions``); so does
   every other change that can alter a check's answer about the subject (a consent given, superseded or
   expired, a legal basis naming the subject added or revoked), and a legal basis for *every* subject
   increments the operator's row (``subject_id = 0``).
2. Every check reads committed state with **one SQL statement** on a connection in autocommit mode, so the
   statement is its own transaction and its snapshot is taken when it starts: on PostgreSQL (READ
   COMMITTED) a statement sees every transaction committed before it began; on SQLite (WAL) a read
   transaction sees every commit finished before it began (commits publish through the shared WAL index).
3. A check either runs the **full statement** (the subject's consents and the legal bases for the purpose
   and its ancestors, *and* the subject's and the operator's decision versions — one snapshot), or, when
   this process remembers an *allow* for the same question, the **validation statement**: the two version
   rows only (three unique-index probes). The remembered allow is returned only if both versions equal the
   ones read together with the data it was computed from — i.e. nothing that could change the answer has
   committed since — and ``at`` lies in the interval over which no term or validity in those rows flips.
4. A check that starts after ``withdraw`` returned starts its statement after the commit: the validation
   statement sees the new version, so the remembered allow is dropped, and the full statement sees
   ``withdrawn`` and denies. Denies are never remembered. (Checks that overlap the withdrawal may see either
   state — that is what "concurrent" means.)

Subjects are resolved inside the statement through the vault's public lookup API
(:mod:`qorgau.vault.lookup`: pseudonym → ``vault_pseudonyms``, identifier → keyed blind index →
``vault_lookups``). If the vault re-points an identifier (or a shred deletes its blind index) the resolved
subject id differs from the remembered one and the full statement runs. The SQL is driver-level for speed
(no ORM, no SQLAlchemy compile on the hot path), so it adds ``organization_id = ?`` to every table itself;
``tests/consent/test_decision.py`` proves another organization's rows are never found.

Each thread keeps its own database connection (created on first use; a forked child makes its own), in
autocommit mode, so a check costs one indexed statement and no pool checkout.
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
from ..vault.lookup import BY_IDENTIFIER, BY_PSEUDONYM, lookup_for, subject_id_sql
from ..vault.models import ACTIVE as VAULT_ACTIVE
from ..vault.models import ERASED as ERASED_SUBJECT
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

MAX_REMEMBERED = 200_000  # remembered allows per process (then forgotten all at once and rebuilt)


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


@dataclass(frozen=True, slots=True)
class _Remembered:
    """An allow, the decision versions read with it, and the ``at`` interval it holds for ([lo, hi))."""

    basis: str
    consent_id: int | None
    legal_basis_id: int | None
    reason: str
    versions: list[tuple[int | None, int, int]]  # [(operator's version, subject id, subject's version)]
    lo: datetime | None
    hi: datetime | None


_CHAINS: dict[str, tuple[str, ...]] = {}  # validated purpose code -> the code and its ancestors
_MAX_CACHED_CODES = 10_000


def _sqlite_timestamp(at: datetime) -> str:
    """How SQLAlchemy stores a DateTime on SQLite (UTC, microseconds always), so SQL compares text."""
    if at.utcoffset():
        at = at.astimezone(timezone.utc)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (at.year, at.month, at.day, at.hour, at.minute, at.second,
                                                   at.microsecond)


def _aware(value: Any) -> datetime | None:
    """A timestamp column as an aware datetime (SQLite hands back its text form)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def _chain(purpose: Any) -> tuple[str, ...]:
    chain = _CHAINS.get(purpose) if isinstance(purpose, str) else None
    if chain is None:
        chain = ancestors(check_purpose_code(purpose))
        if len(_CHAINS) < _MAX_CACHED_CODES:
            _CHAINS[purpose] = chain
    return chain


def _versions_sql(by: str, p: str) -> str:
    """The validation statement: one row (the operator's version or NULL, the subject id, its version), or
    none when the subject is not found, has no version row or is no longer active in the vault. Four
    unique-index probes.

    The vault status is part of it because a subject can be shredded through the vault directly (not by a
    withdrawal, which bumps the version): pseudonyms survive a shred, so without it a remembered allow would
    outlive the erasure.

    Parameters: the organization id twice, then those of :func:`qorgau.vault.lookup.subject_id_sql`."""
    return (f"SELECT (SELECT version FROM consent_decision_versions WHERE organization_id = {p} AND subject_id = 0), "
            f"v.subject_id, v.version FROM consent_decision_versions v "
            f"JOIN vault_subjects s ON s.id = v.subject_id AND s.status = '{VAULT_ACTIVE}' "
            f"WHERE v.organization_id = {p} AND v.subject_id = ({subject_id_sql(by, p)})")


def _statement(by: str, depth: int, p: str, timestamp_type: str = "TEXT") -> str:
    """The full statement: the subject's consents for the purpose and its ancestors, the legal bases, the
    subject's vault status and the decision versions — one snapshot.

    Rows (kind, id, purpose, status/kind, categories, live, extra, lo, hi):
    ``c`` per consent (live: within its term at ``at``; hi: ``valid_until``); ``b`` per legal basis (extra:
    its subject id or NULL; lo/hi: its validity); ``s`` the subject's vault status (absent: not found);
    ``v`` per decision version (id: subject id, 0 for the operator; live: the version). The subject is a
    scalar subquery (a unique-index probe) rather than a join, so every planner — SQLite without statistics
    included — looks consents up by ``(organization_id, subject_id, purpose)``.
    """
    purposes = ", ".join([p] * depth)
    subject = subject_id_sql(by, p)
    return (
        f"SELECT 'c', c.id, c.purpose, c.status, CAST(c.data_categories AS TEXT), "
        f"CASE WHEN c.valid_until IS NULL OR c.valid_until > {p} THEN 1 ELSE 0 END, CAST(NULL AS INTEGER), "
        f"CAST(NULL AS {timestamp_type}), c.valid_until "
        f"FROM consent_consents c "
        f"WHERE c.organization_id = {p} AND c.subject_id = ({subject}) AND c.purpose IN ({purposes}) "
        f"UNION ALL "
        f"SELECT 'b', b.id, b.purpose, b.kind, NULL, "
        f"CASE WHEN b.valid_from <= {p} AND (b.valid_until IS NULL OR b.valid_until > {p}) THEN 1 ELSE 0 END, "
        f"b.subject_id, b.valid_from, b.valid_until "
        f"FROM consent_legal_bases b "
        f"WHERE b.organization_id = {p} AND b.purpose IN ({purposes}) AND b.revoked_at IS NULL "
        f"AND (b.subject_id IS NULL OR b.subject_id = ({subject})) "
        f"UNION ALL "
        f"SELECT 's', s.id, NULL, s.status, NULL, NULL, NULL, NULL, NULL "
        f"FROM vault_subjects s WHERE s.organization_id = {p} AND s.id = ({subject}) "
        f"UNION ALL "
        f"SELECT 'v', v.subject_id, NULL, NULL, NULL, v.version, NULL, NULL, NULL "
        f"FROM consent_decision_versions v WHERE v.organization_id = {p} AND v.subject_id IN (0, ({subject}))"
    )


def _statement_params(ts: Any, organization_id: int, subject: tuple[Any, ...],
                      chain: tuple[str, ...]) -> tuple[Any, ...]:
    """The parameters of :func:`_statement`, in order."""
    return (ts, organization_id, *subject, *chain, ts, ts, organization_id, *chain, *subject,
            organization_id, *subject, organization_id, *subject)


class DecisionPoint:
    """Answers checks for one platform (database). Thread-safe; share one per process."""

    def __init__(self, platform: Platform, vault: Vault) -> None:
        self.platform = platform
        self.vault = vault
        self.lookup = lookup_for(platform)
        url = platform.db.url
        # A dedicated engine without a pool: each thread holds one connection for its lifetime, so the
        # hot path never checks a connection out of (or competes for) the application's pool.
        self._engine = make_engine(url, poolclass=NullPool)
        self.dialect = self._engine.dialect.name
        self._sqlite = self.dialect == "sqlite"
        self._p = "?" if self._sqlite else "%s"
        self._timestamp_type = "TEXT" if self._sqlite else "TIMESTAMPTZ"
        self._local = threading.local()
        self._sql: dict[tuple[str, int], str] = {}
        self._versions_sql = {by: _versions_sql(by, self._p) for by in (BY_PSEUDONYM, BY_IDENTIFIER)}
        # (subject parameters, purpose, categories) -> a remembered allow; validated on every use (module doc).
        self._remembered: dict[tuple[Any, ...], _Remembered] = {}
        self._stale: list[Any] = []  # connections inherited through fork(): kept alive, never used or closed
        self._open: list[Any] = []  # every thread's connection, so closing the platform closes them all
        self._lock = threading.Lock()
        # platform.close() disposes the main engine: close the hot path's connections with it.
        event.listen(platform.db.engine, "engine_disposed", lambda _engine: self.close())

    def __repr__(self) -> str:
        return f"DecisionPoint(db={self.dialect}, remembered={len(self._remembered)})"

    def close(self) -> None:
        """Close every thread's connection (a thread that checks again afterwards opens a new one)."""
        with self._lock:
            conns, self._open = self._open, []
            self._local = threading.local()
            self._remembered = {}
        pid = os.getpid()
        for owner_pid, conn in conns:
            if owner_pid == pid:
                try:
                    conn.close()
                except Exception:
                    pass
        self._engine.dispose()

    def forget(self) -> None:
        """Drop every remembered allow (never needed for correctness: they are validated on every use)."""
        self._remembered = {}

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
            # Server-side prepared statements from the first execution on (psycopg 3): the hot path's two
            # statements are parsed and planned once per connection.
            if hasattr(driver, "prepare_threshold"):
                driver.prepare_threshold = 0
        # SQLite: core.db's connect hook already set isolation_level=None (autocommit), WAL, busy timeout;
        # the sqlite3 module keeps compiled statements in its per-connection statement cache.
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

    def _subject_params(self, organization_id: int, subject: SubjectRef) -> tuple[str, tuple[Any, ...]]:
        if subject.pseudonym is not None:
            return BY_PSEUDONYM, self.lookup.pseudonym_params(organization_id, subject.pseudonym, subject.domain)
        return BY_IDENTIFIER, self.lookup.identifier_params(organization_id, subject.identifier_type,
                                                            subject.identifier)

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
        key = (subject_params, chain[0], categories)
        known = self._remembered.get(key)
        if known is not None and (known.lo is None or known.lo <= when) and (known.hi is None or when < known.hi):
            # The fast path: three unique-index probes in one statement, compared with what was read before.
            rows = self._execute(self._versions_sql[by], (organization_id, organization_id, *subject_params))
            if rows == known.versions:
                return Decision(True, known.basis, known.consent_id, known.legal_basis_id, known.reason, when)
        slot = (by, len(chain))
        sql = self._sql.get(slot)
        if sql is None:
            sql = self._sql[slot] = _statement(by, len(chain), self._p, self._timestamp_type)
        ts = self._timestamp(when)
        rows = self._execute(sql, _statement_params(ts, organization_id, subject_params, chain))
        decision, status, remember = _decide(rows, chain, categories, when)
        if decision.allow:
            if remember is not None:
                if len(self._remembered) >= MAX_REMEMBERED:
                    self._remembered = {}
                self._remembered[key] = remember
            return decision
        if status is None:
            # Nobody has this pseudonym or identifier (now). An identifier whose subject a withdrawal
            # erased left a tombstone: say so rather than "unknown".
            if by == BY_IDENTIFIER and self._execute(
                    f"SELECT 1 FROM consent_erased_lookups WHERE organization_id = {self._p} "
                    f"AND entity_type = {self._p} AND blind_index = {self._p}", subject_params):
                return Decision(False, None, None, None, SUBJECT_ERASED, when)
            return Decision(False, None, None, None, UNKNOWN_SUBJECT, when)
        if status == ERASED_SUBJECT:
            return Decision(False, None, None, None, SUBJECT_ERASED, when)
        if decision.reason == NO_CONSENT:
            # The deny path only (an allow never waits for these): say *why* there is no consent.
            subject_id = next(row[1] for row in rows if row[0] == "s")
            decision = self._explain(decision, organization_id, chain[0], subject_id, ts)
        return decision

    def _explain(self, decision: Decision, organization_id: int, code: str, subject_id: int, ts: Any) -> Decision:
        p = self._p
        if not default_taxonomy().has_purpose(code) and not self._execute(
                f"SELECT 1 FROM consent_purposes WHERE organization_id = {p} AND code = {p} AND active = {p}",
                (organization_id, code, True)):
            return Decision(False, None, None, None, UNKNOWN_PURPOSE, decision.checked_at)
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
    return tuple(sorted(set(data_categories))) if len(data_categories) > 1 else tuple(data_categories)


def _loads(value: Any) -> list[str]:
    if isinstance(value, list):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode()
    return json.loads(value) if value else []


def _decide(rows: list[tuple[Any, ...]], chain: tuple[str, ...], categories: tuple[str, ...],
            when: datetime) -> tuple[Decision, str | None, _Remembered | None]:
    """(the decision, the subject's vault status or None when not found, what to remember of an allow)."""
    best_consent: int | None = None
    category_gap = False
    expired = withdrawn = False
    basis: tuple[int, str] | None = None
    rank = {code: i for i, code in enumerate(chain)}  # the most specific purpose wins
    best_rank = len(chain)
    basis_rank = (len(chain), 0)
    status_of_subject: str | None = None
    subject_id: int | None = None
    versions: list[tuple[int, int]] = []
    flips: list[Any] = []  # the instants at which a row's liveness changes
    for kind, row_id, purpose, status, cats, live, extra, lo, hi in rows:
        if kind == "c":
            if hi is not None:
                flips.append(hi)
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
        elif kind == "b":
            flips.append(lo)
            if hi is not None:
                flips.append(hi)
            if live:  # a legal basis within its validity
                # A subject-specific basis beats a blanket one; a more specific purpose beats a broader one;
                # the lower id among equals (so the answer does not depend on the order rows come in).
                key = (rank[purpose], 0 if extra is not None else 1, row_id)
                if basis is None or key < basis_rank:
                    basis, basis_rank = (row_id, status), key
        elif kind == "s":
            status_of_subject, subject_id = status, row_id
        else:  # "v"
            versions.append((row_id, live))
    if best_consent is not None and status_of_subject == ERASED_SUBJECT:
        # Shredded through the vault while a consent was still active (a withdrawal would have ended it):
        # nobody can be identified any more, so no consent can be relied on. A legal basis still answers.
        best_consent = None
    if best_consent is not None:
        decision = Decision(True, "consent", best_consent, None, CONSENT_ACTIVE, when)
    elif basis is not None:
        decision = Decision(True, basis[1], None, basis[0], LEGAL_BASIS, when)
    else:
        if category_gap:
            reason = CATEGORY_NOT_COVERED
        elif withdrawn:
            reason = WITHDRAWN_REASON
        elif expired:
            reason = EXPIRED_REASON
        else:
            reason = NO_CONSENT  # or unknown_subject / unknown_purpose / purpose_not_covered: see _explain
        return Decision(False, None, None, None, reason, when), status_of_subject, None
    remember = None
    by_subject = dict(versions)
    if subject_id is not None and subject_id in by_subject:
        # Remembered only for a subject that has a version row (else nothing would invalidate it).
        lo_bound = hi_bound = None
        for instant in flips:
            moment = _aware(instant)
            assert moment is not None
            if moment <= when:
                if lo_bound is None or moment > lo_bound:
                    lo_bound = moment
            elif hi_bound is None or moment < hi_bound:
                hi_bound = moment
        remember = _Remembered(decision.basis or "", decision.consent_id, decision.legal_basis_id, decision.reason,
                               [(by_subject.get(0), subject_id, by_subject[subject_id])], lo_bound, hi_bound)
    return decision, status_of_subject, remember


__all__ = ["REASONS", "Decision", "DecisionPoint", "SubjectRef", "SUPERSEDED"]
