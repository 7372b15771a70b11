"""Login throttling: wrong passwords per account name and per client address, with lockouts that expire.

Failed logins were audited but not slowed down, so a password could be guessed at the speed of argon2.
This module counts wrong passwords in the ``login_throttle`` table (not the audit log, which is
append-only and would keep the counters forever):

* **per account name** — ``login_max_failures`` wrong passwords within ``login_failure_window_seconds``
  lock the name for ``login_lockout_seconds``; every further lockout without a successful login in
  between doubles it, up to ``login_lockout_max_seconds``. A successful login resets the account.
* **per client address** — the same, with ``login_address_max_failures``, so one client trying many
  account names is stopped too. A successful login does *not* reset the address (an attacker with one
  valid account could otherwise clear it). IPv6 addresses count per /64: one host usually owns a whole
  /64 and could rotate through it.

While either is locked every attempt is refused *before* the password is checked, so the right password
does not get in either, and the message says when to try again (:class:`LoginThrottled`, HTTP 429).

**No enumeration.** Names that belong to no account are counted and locked exactly like real ones, so a
lock reveals nothing about whether an account exists; wrong-password answers still cost the same argon2
work either way (:func:`qorgau.core.auth.authenticate_password`).

**No personal data at rest.** A client address is personal data, and a "username" field sometimes holds a
mistyped password. Neither is stored: rows are keyed by HMAC-SHA256 with a platform data key
(``dk-login-throttle``, wrapped by the master key like every data key). Logs never name an account or an
address; the audit log gets ``auth.login_locked`` with the user's id, only for accounts that exist.
Rows quiet for ``login_throttle_retention_hours`` are pruned.

Adapters call :meth:`LoginThrottle.authenticate` (web login) and :meth:`LoginThrottle.change_password`
(web and API password change) inside their write transaction and must **commit on failure** (catch the
exception inside the ``with`` block), or the counters roll back with it. ``qorgau users unlock NAME``
calls :meth:`LoginThrottle.unlock`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import audit, auth
from .db import Base, utcnow
from .errors import AuthenticationRequired, InvalidInput, QorgauError
from .platform import shared

if TYPE_CHECKING:
    from .platform import Platform
    from .settings import Settings

__all__ = ["ACCOUNT", "ADDRESS", "LoginAttempts", "LoginThrottle", "LoginThrottled", "ThrottlePolicy",
           "login_throttle_for", "normalize_address"]

log = logging.getLogger("qorgau.auth")

KEY_ID = "dk-login-throttle"
KEY_PURPOSE = "login-throttle"
ACCOUNT = "account"
ADDRESS = "address"
PRUNE_EVERY = timedelta(minutes=10)


class LoginAttempts(Base):
    """Wrong passwords of one account name or one client address, keyed by a keyed hash of it."""

    __tablename__ = "login_throttle"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)       # "account" | "address"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)   # HMAC-SHA256, hex
    failures: Mapped[int] = mapped_column(Integer, default=0)             # in the current window
    window_started_at: Mapped[datetime]
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)             # since the last success
    locked_until: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"LoginAttempts(scope={self.scope!r}, failures={self.failures}, lockouts={self.lockouts})"


class LoginThrottled(QorgauError):
    """Too many wrong passwords: refused until ``until`` whatever the password."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, until: datetime, now: datetime) -> None:
        self.until = until
        self.retry_after_seconds = max(1, math.ceil((until - now).total_seconds()))
        super().__init__(f"too many failed login attempts; try again in {self.retry_after_minutes} min "
                         f"(after {until.strftime('%H:%M')} UTC)", field="password")

    @property
    def retry_after_minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_seconds / 60))


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    address_max_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=5)
    lockout_max: timedelta = timedelta(hours=1)
    retention: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ThrottlePolicy":
        return cls(
            max_failures=settings.login_max_failures,
            address_max_failures=settings.login_address_max_failures,
            window=timedelta(seconds=settings.login_failure_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
            lockout_max=timedelta(seconds=max(settings.login_lockout_max_seconds, settings.login_lockout_seconds)),
            retention=timedelta(hours=settings.login_throttle_retention_hours),
        )

    def lockout_for(self, lockouts: int) -> timedelta:
        """The ``lockouts``-th lockout in a row: base, 2×base, 4×base, … up to the cap."""
        seconds = self.lockout.total_seconds() * 2 ** min(max(lockouts - 1, 0), 30)
        return min(timedelta(seconds=seconds), self.lockout_max)

    def limit(self, scope: str) -> int:
        return self.max_failures if scope == ACCOUNT else self.address_max_failures


def normalize_address(address: str | None) -> str | None:
    """The unit an address is counted in: an IPv4 address, or an IPv6 /64 (None when unknown)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:100] or None  # not an IP (a test client, a Unix socket): count it as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _normalize_username(username: str) -> str:
    return username.strip().lower()[:200]


class LoginThrottle:
    """The platform's login throttle. Share one per process (:func:`login_throttle_for`).

    ``clock`` is injectable so tests can move time forward instead of sleeping through a lockout.
    """

    def __init__(self, platform: Platform, policy: ThrottlePolicy | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.platform = platform
        self.policy = policy or ThrottlePolicy.from_settings(platform.settings)
        self.clock = clock
        self._key: bytes | None = None
        self._lock = threading.Lock()
        self._last_prune: datetime | None = None

    def __repr__(self) -> str:
        return f"LoginThrottle(policy={self.policy!r})"

    # -- the adapters' entry points --------------------------------------------------------------

    def authenticate(self, session: Session, username: str, password: str, *, address: str | None) -> auth.User:
        """:func:`auth.authenticate_password` behind the throttle.

        Raises :class:`LoginThrottled` while the name or the address is locked (the password is not
        checked) and when this failure starts a lockout; :class:`AuthenticationRequired` for a wrong
        password. Either way the caller commits, so the failure is counted.
        """
        keys = self._keys(username, address)
        now = self.clock()
        self._refuse_if_locked(session, keys, now)
        try:
            user = auth.authenticate_password(session, username, password)
        except AuthenticationRequired:
            self._count_failure(session, keys, now, username)
            raise
        self._reset(session, keys[ACCOUNT])
        return user

    def change_password(self, session: Session, user_id: int, old_password: str, new_password: str, *,
                        address: str | None) -> None:
        """:func:`auth.change_password` behind the throttle: guessing the current password from a
        stolen session counts against the same account as guessing it at the login form."""
        user = auth.get_user(session, user_id)
        keys = self._keys(user.username, address)
        now = self.clock()
        self._refuse_if_locked(session, keys, now)
        try:
            auth.change_password(session, user_id, old_password, new_password)
        except InvalidInput as exc:
            if exc.field == "old_password":
                self._count_failure(session, keys, now, user.username)
            raise
        self._reset(session, keys[ACCOUNT])

    def unlock(self, session: Session, username: str, *, actor: str) -> bool:
        """Forget an account's failures and lockout (``qorgau users unlock``); True if it was locked.

        The account must exist (a name that does not is only ever locked by guessing; it unlocks by
        itself). Client address locks are not touched: they expire.
        """
        user = auth.find_user(session, username)
        row = session.get(LoginAttempts, (ACCOUNT, self._hash(ACCOUNT, _normalize_username(user.username))),
                          with_for_update=True)
        was_locked = row is not None and row.locked_until is not None and row.locked_until > self.clock()
        if row is not None:
            session.delete(row)
        audit.record(session, actor=actor, action="auth.login_unlock", object_type="user", object_id=str(user.id),
                     organization_id=user.organization_id, details={"was_locked": was_locked})
        return was_locked

    def locked_until(self, session: Session, *, username: str | None = None,
                     address: str | None = None) -> datetime | None:
        """When the name or the address is unlocked again, or None if neither is locked now."""
        keys = self._keys(username, address)
        rows = self._rows(session, keys, for_update=False)
        now = self.clock()
        ends = [row.locked_until for row in rows if row.locked_until is not None and row.locked_until > now]
        return max(ends) if ends else None

    def prune(self, session: Session) -> int:
        """Delete rows quiet for the retention period and not locked; returns how many."""
        now = self.clock()
        result = session.execute(
            delete(LoginAttempts)
            .where(LoginAttempts.last_failure_at < now - self.policy.retention,
                   or_(LoginAttempts.locked_until.is_(None), LoginAttempts.locked_until <= now))
        )
        self._last_prune = now
        return result.rowcount or 0

    # -- internals -------------------------------------------------------------------------------

    def _keys(self, username: str | None, address: str | None) -> dict[str, str]:
        keys: dict[str, str] = {}
        if username is not None:
            keys[ACCOUNT] = self._hash(ACCOUNT, _normalize_username(username))
        unit = normalize_address(address)
        if unit is not None:
            keys[ADDRESS] = self._hash(ADDRESS, unit)
        return keys

    def _hash(self, scope: str, value: str) -> str:
        return hmac.new(self._secret(), scope.encode() + b"\x00" + value.encode("utf-8"), "sha256").hexdigest()

    def _secret(self) -> bytes:
        """The HMAC key, created in its own transaction the first time (never inside a caller's one
        that might roll back and leave this process hashing with a key nobody stored)."""
        if self._key is not None:
            return self._key
        with self._lock:
            if self._key is None:
                keyring = self.platform.keyring
                try:
                    with self.platform.db.transaction() as session:
                        self._key = keyring.get_or_create(session, KEY_ID, KEY_PURPOSE)
                except IntegrityError:  # another process created it first
                    with self.platform.db.reader() as session:
                        self._key = keyring.data_key(session, KEY_ID)
        return self._key

    def prepare(self) -> "LoginThrottle":
        """Make sure the HMAC key exists; call before opening the transaction the throttle will use."""
        self._secret()
        return self

    def _rows(self, session: Session, keys: dict[str, str], *, for_update: bool) -> list[LoginAttempts]:
        rows = []
        for scope, key in sorted(keys.items()):
            row = session.get(LoginAttempts, (scope, key), with_for_update=for_update, populate_existing=for_update)
            if row is not None:
                rows.append(row)
        return rows

    def _refuse_if_locked(self, session: Session, keys: dict[str, str], now: datetime) -> None:
        # FOR UPDATE: concurrent attempts on one name queue here, so N parallel guesses cannot all
        # slip past the check before the first failure is counted (SQLite: BEGIN IMMEDIATE already).
        ends = [row.locked_until for row in self._rows(session, keys, for_update=True)
                if row.locked_until is not None and row.locked_until > now]
        if ends:
            raise LoginThrottled(max(ends), now)

    def _count_failure(self, session: Session, keys: dict[str, str], now: datetime, username: str) -> None:
        """Count one wrong password against each key; raise :class:`LoginThrottled` if a lock starts."""
        started: dict[str, datetime] = {}
        for scope, key in sorted(keys.items()):
            row = self._row_for_update(session, scope, key, now)
            if now - row.last_failure_at >= self.policy.retention:
                row.lockouts = 0  # quiet long enough: the escalation is forgotten
            if row.window_started_at + self.policy.window <= now:
                row.failures, row.window_started_at = 0, now
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= self.policy.limit(scope):
                row.lockouts += 1
                row.locked_until = now + self.policy.lockout_for(row.lockouts)
                row.failures, row.window_started_at = 0, now
                started[scope] = row.locked_until
        session.flush()
        if self._last_prune is None or now - self._last_prune >= PRUNE_EVERY:
            self.prune(session)
        if not started:
            return
        for scope, until in started.items():
            # Never the name or the address: only that a lock started, and for how long.
            log.warning("login throttle: %s locked for %d s", scope, (until - now).total_seconds())
        if ACCOUNT in started:
            self._audit_lock(session, username, started[ACCOUNT], now)
        raise LoginThrottled(max(started.values()), now)

    def _row_for_update(self, session: Session, scope: str, key: str, now: datetime) -> LoginAttempts:
        row = session.get(LoginAttempts, (scope, key), with_for_update=True, populate_existing=True)
        if row is not None:
            return row
        try:
            with session.begin_nested():
                row = LoginAttempts(scope=scope, key_hash=key, failures=0, window_started_at=now,
                                    last_failure_at=now, lockouts=0, locked_until=None)
                session.add(row)
        except IntegrityError:  # a concurrent attempt inserted it first (PostgreSQL)
            row = session.get(LoginAttempts, (scope, key), with_for_update=True, populate_existing=True)
            assert row is not None
        return row

    @staticmethod
    def _audit_lock(session: Session, username: str, until: datetime, now: datetime) -> None:
        user = session.scalar(select(auth.User).where(auth.User.username == _normalize_username(username))
                              .execution_options(qorgau_cross_tenant=True))
        if user is None:
            return  # a name nobody has: nothing to attach the entry to
        audit.record(session, actor=f"user:{user.id}", action="auth.login_locked", object_type="user",
                     object_id=str(user.id), organization_id=user.organization_id,
                     details={"seconds": int((until - now).total_seconds())})

    def _reset(self, session: Session, account_key: str) -> None:
        session.execute(delete(LoginAttempts).where(LoginAttempts.scope == ACCOUNT,
                                                    LoginAttempts.key_hash == account_key))


_ATTRIBUTE = "_qorgau_login_throttle"


def login_throttle_for(platform: Platform) -> LoginThrottle:
    """The platform's one :class:`LoginThrottle` (web, API and CLI share it), its key ready.

    Call it *before* opening the write transaction it will be used in.
    """
    return shared(platform, _ATTRIBUTE, LoginThrottle).prepare()
