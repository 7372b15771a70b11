"""Login throttling (qorgau.core.throttle) at the service level, on SQLite and PostgreSQL.

Time is a clock the test moves forward: no test sleeps through a lockout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from conftest import Tenant
from qorgau.core import audit, auth
from qorgau.core.errors import AuthenticationRequired, InvalidInput, NotFound
from qorgau.core.platform import Platform
from qorgau.core.throttle import (
    ACCOUNT,
    ADDRESS,
    LoginAttempts,
    LoginThrottle,
    LoginThrottled,
    ThrottlePolicy,
    login_throttle_for,
    normalize_address,
)

POLICY = ThrottlePolicy(max_failures=3, address_max_failures=5, window=timedelta(minutes=15),
                        lockout=timedelta(minutes=5), lockout_max=timedelta(minutes=30),
                        retention=timedelta(hours=24))
ADDR = "203.0.113.7"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(platform: Platform, clock: Clock) -> LoginThrottle:
    return LoginThrottle(platform, POLICY, clock=clock).prepare()


Attempt = Callable[..., str]


@pytest.fixture
def attempt(platform: Platform, throttle: LoginThrottle) -> Attempt:
    """One login through the throttle, committed whatever happens; returns what the caller saw."""

    def run(username: str, password: str, address: str | None = ADDR) -> str:
        with platform.db.transaction() as s:
            try:
                throttle.authenticate(s, username, password, address=address)
            except LoginThrottled:
                return "locked"
            except AuthenticationRequired:
                return "wrong"
        return "ok"

    return run


def test_three_wrong_passwords_lock_the_account_even_for_the_right_one(
        attempt: Attempt, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    assert [attempt(username, "wrong-password-1") for _ in range(3)] == ["wrong", "wrong", "locked"]
    assert attempt(username, password) == "locked"


def test_the_lockout_says_when_to_try_again_and_expires(
        platform: Platform, throttle: LoginThrottle, clock: Clock, attempt: Attempt, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    for _ in range(2):
        attempt(username, "wrong-password-1")
    with platform.db.transaction() as s:
        with pytest.raises(LoginThrottled) as err:
            throttle.authenticate(s, username, "wrong-password-1", address=ADDR)
    assert err.value.retry_after_seconds == 300 and err.value.retry_after_minutes == 5
    assert err.value.until == clock.now + timedelta(minutes=5)
    assert "try again in 5 min" in err.value.message and "09:05 UTC" in err.value.message
    assert err.value.status == 429 and err.value.code == "too_many_attempts"
    clock.advance(minutes=4, seconds=59)
    assert attempt(username, password) == "locked"
    clock.advance(seconds=1)
    assert attempt(username, password) == "ok"


def test_a_successful_login_resets_the_account_counter(
        platform: Platform, throttle: LoginThrottle, attempt: Attempt, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    assert [attempt(username, "wrong-password-1") for _ in range(2)] == ["wrong", "wrong"]
    assert attempt(username, password) == "ok"
    # Two more wrong ones are not the third of a series: the count started again.
    assert [attempt(username, "wrong-password-1") for _ in range(2)] == ["wrong", "wrong"]
    assert attempt(username, password) == "ok"


def test_failures_outside_the_window_do_not_add_up(clock: Clock, attempt: Attempt, tenant_a: Tenant) -> None:
    _, username, _ = tenant_a.users["dpo"]
    for _ in range(2):
        attempt(username, "wrong-password-1")
    clock.advance(minutes=16)
    assert [attempt(username, "wrong-password-1") for _ in range(2)] == ["wrong", "wrong"]
    assert attempt(username, "wrong-password-1") == "locked"


def test_repeated_lockouts_double_up_to_the_cap(
        platform: Platform, throttle: LoginThrottle, clock: Clock, attempt: Attempt, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    lengths = []
    for _ in range(5):
        for _ in range(3):
            attempt(username, "wrong-password-1", address=None)
        with platform.db.reader() as s:
            until = throttle.locked_until(s, username=username)
        assert until is not None
        lengths.append(round((until - clock.now).total_seconds() / 60))
        clock.now = until
    assert lengths == [5, 10, 20, 30, 30]
    # A successful login forgets the escalation.
    assert attempt(username, password, address=None) == "ok"
    for _ in range(3):
        attempt(username, "wrong-password-1", address=None)
    with platform.db.reader() as s:
        assert throttle.locked_until(s, username=username) == clock.now + timedelta(minutes=5)


def test_one_address_trying_many_names_is_locked(
        platform: Platform, throttle: LoginThrottle, attempt: Attempt, tenant_a: Tenant) -> None:
    names = [tenant_a.users[role][1] for role in ("admin", "dpo", "reviewer")] + ["ghost-1", "ghost-2"]
    assert [attempt(name, "wrong-password-1") for name in names] == ["wrong"] * 4 + ["locked"]
    # Every name from that address is refused now, the right password too ...
    _, username, password = tenant_a.users["regulator"]
    assert attempt(username, password) == "locked"
    # ... while the same account from another address still gets in.
    assert attempt(username, password, address="198.51.100.20") == "ok"


def test_an_ipv6_host_is_counted_by_its_64(attempt: Attempt, tenant_a: Tenant) -> None:
    for suffix in range(1, 6):
        attempt(f"ghost-{suffix}", "wrong-password-1", address=f"2001:db8:1:2::{suffix:x}")
    _, username, password = tenant_a.users["dpo"]
    assert attempt(username, password, address="2001:db8:1:2:ffff::1") == "locked"
    assert attempt(username, password, address="2001:db8:1:3::1") == "ok"


def test_normalize_address() -> None:
    assert normalize_address("203.0.113.7") == "203.0.113.7"
    assert normalize_address("::ffff:203.0.113.7") == "203.0.113.7"
    assert normalize_address("2001:db8::1") == "2001:db8::/64"
    assert normalize_address(None) is None and normalize_address("") is None
    assert normalize_address("testclient") == "testclient"


def test_unknown_names_are_locked_like_real_ones(attempt: Attempt, tenant_a: Tenant) -> None:
    real = [attempt(tenant_a.users["dpo"][1], "wrong-password-1", address=None) for _ in range(4)]
    ghost = [attempt("nobody-at-all", "wrong-password-1", address=None) for _ in range(4)]
    assert real == ghost == ["wrong", "wrong", "locked", "locked"]


def test_names_are_matched_case_and_space_insensitively(attempt: Attempt, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    for variant in (username.upper(), f" {username}", username):
        attempt(variant, "wrong-password-1", address=None)
    assert attempt(username, password, address=None) == "locked"


def test_neither_name_nor_address_is_stored_logged_or_audited(
        platform: Platform, throttle: LoginThrottle, attempt: Attempt, tenant_a: Tenant,
        caplog: pytest.LogCaptureFixture) -> None:
    user_id, username, _ = tenant_a.users["dpo"]
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        attempt(username, "wrong-password-1")
    for name in ("ghost-1", "ghost-2"):
        attempt(name, "wrong-password-1")
    with platform.db.reader() as s:
        rows = s.scalars(select(LoginAttempts)).all()
        entries = s.scalars(select(audit.AuditEntry)).all()
        locked = [e for e in entries if e.action == "auth.login_locked"]
    assert {r.scope for r in rows} == {ACCOUNT, ADDRESS} and len(rows) == 4
    stored = " ".join(f"{r.scope} {r.key_hash} {r!r}" for r in rows)
    for secret in (username, ADDR, "ghost-1"):
        assert secret not in stored and secret not in caplog.text
    assert "locked" in caplog.text  # the lock is logged, without saying whose
    assert len(locked) == 1 and locked[0].object_id == str(user_id) and locked[0].details == {"seconds": 300}
    for entry in entries:
        text = f"{entry.actor} {entry.object_type} {entry.object_id} {entry.details!r}"
        assert username not in text and ADDR not in text and "ghost" not in text


def test_keys_are_keyed_hashes_not_plain_ones(platform: Platform, throttle: LoginThrottle,
                                              attempt: Attempt) -> None:
    import hashlib

    attempt("someone", "wrong-password-1")
    with platform.db.reader() as s:
        hashes = set(s.scalars(select(LoginAttempts.key_hash)))
    plain = {hashlib.sha256(v.encode()).hexdigest() for v in ("someone", ADDR, "account\x00someone",
                                                              "address\x00" + ADDR)}
    assert len(hashes) == 2 and not hashes & plain
    # The same key in another process (another LoginThrottle on this platform) finds the same rows.
    other = LoginThrottle(platform, POLICY, clock=throttle.clock).prepare()
    assert other._keys("someone", ADDR) == throttle._keys("someone", ADDR)


def test_quiet_rows_are_pruned_but_active_locks_are_kept(
        platform: Platform, throttle: LoginThrottle, clock: Clock, attempt: Attempt) -> None:
    attempt("quiet-name", "wrong-password-1", address=None)
    for _ in range(3):
        attempt("locked-name", "wrong-password-1", address=None)
    with platform.db.transaction() as s:
        s.execute(LoginAttempts.__table__.update().values(locked_until=clock.now + timedelta(days=3))
                  .where(LoginAttempts.locked_until.is_not(None)))
    clock.advance(hours=25)
    with platform.db.transaction() as s:
        assert throttle.prune(s) == 1
    with platform.db.reader() as s:
        assert s.scalar(select(func.count()).select_from(LoginAttempts)) == 1
        assert throttle.locked_until(s, username="locked-name") is not None
        assert throttle.locked_until(s, username="quiet-name") is None


def test_failures_prune_old_rows_by_themselves(platform: Platform, throttle: LoginThrottle, clock: Clock,
                                               attempt: Attempt) -> None:
    attempt("old-name", "wrong-password-1", address=None)
    clock.advance(hours=25)
    attempt("new-name", "wrong-password-1", address=None)
    with platform.db.reader() as s:
        assert s.scalar(select(func.count()).select_from(LoginAttempts)) == 1


def test_unlock_ends_a_lockout_and_is_audited(platform: Platform, throttle: LoginThrottle, attempt: Attempt,
                                              tenant_a: Tenant) -> None:
    user_id, username, password = tenant_a.users["dpo"]
    for _ in range(3):
        attempt(username, "wrong-password-1", address=None)
    with platform.db.transaction() as s:
        assert throttle.unlock(s, username.upper(), actor="cli:test") is True
    with platform.db.transaction() as s:
        assert throttle.unlock(s, username, actor="cli:test") is False
        with pytest.raises(NotFound):
            throttle.unlock(s, "nobody-at-all", actor="cli:test")
    assert attempt(username, password, address=None) == "ok"
    with platform.db.reader() as s:
        entries = s.scalars(select(audit.AuditEntry).where(audit.AuditEntry.action == "auth.login_unlock")).all()
    assert [(e.object_id, e.details) for e in entries] == [(str(user_id), {"was_locked": True}),
                                                            (str(user_id), {"was_locked": False})]


def test_wrong_current_passwords_count_against_the_account(
        platform: Platform, throttle: LoginThrottle, attempt: Attempt, tenant_a: Tenant) -> None:
    user_id, username, password = tenant_a.users["dpo"]
    outcomes = []
    for _ in range(3):
        with platform.db.transaction(tenant_a.org_id) as s:
            try:
                throttle.change_password(s, user_id, "not-my-password", "a-brand-new-password", address=ADDR)
            except LoginThrottled:
                outcomes.append("locked")
            except InvalidInput as exc:
                outcomes.append(exc.field)
    assert outcomes == ["old_password", "old_password", "locked"]
    assert attempt(username, password) == "locked"  # the login is locked too
    with platform.db.transaction(tenant_a.org_id) as s:
        with pytest.raises(LoginThrottled):
            throttle.change_password(s, user_id, password, "a-brand-new-password", address=ADDR)


def test_a_right_current_password_changes_it_and_resets_the_account(
        platform: Platform, throttle: LoginThrottle, attempt: Attempt, tenant_a: Tenant) -> None:
    user_id, username, password = tenant_a.users["dpo"]
    attempt(username, "wrong-password-1")
    attempt(username, "wrong-password-1")
    with platform.db.transaction(tenant_a.org_id) as s:
        throttle.change_password(s, user_id, password, "a-brand-new-password", address=ADDR)
    assert [attempt(username, "wrong-password-1") for _ in range(2)] == ["wrong", "wrong"]
    assert attempt(username, "a-brand-new-password") == "ok"


def test_settings_make_the_policy(platform: Platform) -> None:
    settings = platform.settings.model_copy(update={"login_max_failures": 7, "login_lockout_seconds": 60,
                                                    "login_lockout_max_seconds": 30})
    policy = ThrottlePolicy.from_settings(settings)
    assert policy.max_failures == 7 and policy.lockout == timedelta(seconds=60)
    assert policy.lockout_max == timedelta(seconds=60)  # a cap below the base lockout is raised to it
    default = login_throttle_for(platform)
    assert default is login_throttle_for(platform)
    assert default.policy.max_failures == 5 and default.policy.address_max_failures == 20
    assert default.policy.lockout == timedelta(minutes=5) and default.policy.lockout_max == timedelta(hours=1)


def test_a_lockout_refuses_without_checking_the_password(
        platform: Platform, throttle: LoginThrottle, attempt: Attempt, tenant_a: Tenant,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, username, password = tenant_a.users["dpo"]
    for _ in range(3):
        attempt(username, "wrong-password-1", address=None)
    checked = []
    real = auth._verify
    monkeypatch.setattr(auth, "_verify", lambda h, p: checked.append(1) or real(h, p))
    assert attempt(username, password, address=None) == "locked"
    assert checked == []
