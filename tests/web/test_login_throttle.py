"""Login throttling over real HTTP: the web login, the web password change and ``POST /api/v1/me/password``.

The server's throttle runs on a clock the test moves forward, so no test waits out a lockout. Defaults
(qorgau.core.settings): 5 wrong passwords per account name, 20 per client address, 5-minute first lockout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from qorgau.core import audit, auth
from qorgau.core.platform import Platform
from qorgau.core.throttle import LoginAttempts, login_throttle_for

from .conftest import browser_client, csrf_from, log_in

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

WRONG = "not-the-password-1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(platform: Platform) -> Iterator[Clock]:
    clock = Clock()
    login_throttle_for(platform).clock = clock  # the server's own throttle (one per platform)
    yield clock


def fail(server: LiveServer, username: str, times: int, lang: str = "en") -> list[int]:
    with browser_client(server, **{"Accept-Language": lang}) as client:
        return [log_in(client, username, WRONG).status_code for _ in range(times)]


def test_five_wrong_passwords_lock_the_account_with_a_clear_message(
        server: LiveServer, clock: Clock, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    assert fail(server, username, 5) == [401, 401, 401, 401, 429]
    with browser_client(server, **{"Accept-Language": "en"}) as client:
        right = log_in(client, username, password)  # the right password during the lockout
    assert right.status_code == 429 and "qorgau_session" not in right.cookies
    assert right.headers["retry-after"] == "300"
    assert "Too many failed login attempts. Try again in 5 min (after 09:05 UTC)." in right.text
    with browser_client(server, **{"Accept-Language": "ru"}) as client:
        ru = log_in(client, username, password)
    assert "Повторите через 5 мин. (после 09:05 UTC)" in ru.text
    with browser_client(server, **{"Accept-Language": "kk"}) as client:
        kk = log_in(client, username, password)
    assert "5 минуттан кейін қайталап көріңіз" in kk.text


def test_the_lockout_expires(server: LiveServer, clock: Clock, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    fail(server, username, 5)
    clock.now += timedelta(minutes=4)
    with browser_client(server) as client:
        still = log_in(client, username, password)
    assert still.status_code == 429 and still.headers["retry-after"] == "60"
    clock.now += timedelta(minutes=1)
    with browser_client(server) as client:
        response = log_in(client, username, password)
        assert response.status_code == 303 and "qorgau_session" in response.cookies
        assert client.get("/").status_code == 200


def test_an_unknown_name_is_locked_exactly_like_a_real_one(
        server: LiveServer, clock: Clock, tenant_a: Tenant) -> None:
    real = fail(server, tenant_a.users["dpo"][1], 6)
    ghost = fail(server, "nobody-here", 6)
    assert real == ghost == [401, 401, 401, 401, 429, 429]


def test_one_address_trying_many_names_is_stopped(
        server: LiveServer, platform: Platform, clock: Clock, tenant_a: Tenant) -> None:
    statuses = []
    with browser_client(server) as client:
        for n in range(20):
            statuses.append(log_in(client, f"guess-{n}", WRONG).status_code)
        _, username, password = tenant_a.users["admin"]
        blocked = log_in(client, username, password)  # a real account, never tried, from the same address
    assert statuses == [401] * 19 + [429]
    assert blocked.status_code == 429 and "qorgau_session" not in blocked.cookies
    clock.now += timedelta(minutes=5)
    with browser_client(server) as client:
        assert log_in(client, username, password).status_code == 303


def test_a_successful_login_resets_the_count(server: LiveServer, clock: Clock, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    assert fail(server, username, 4) == [401] * 4
    with browser_client(server) as client:
        assert log_in(client, username, password).status_code == 303
    assert fail(server, username, 4) == [401] * 4


def test_no_name_or_address_in_logs_audit_or_the_table(
        server: LiveServer, platform: Platform, clock: Clock, tenant_a: Tenant,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user_id, username, _ = tenant_a.users["dpo"]
    fail(server, username, 5)
    fail(server, "nobody-here", 5)
    with platform.db.reader() as s:
        entries = s.scalars(select(audit.AuditEntry)).all()
        rows = s.scalars(select(LoginAttempts)).all()
    # The server's own log lines (the test client's httpx logs its URLs, which are no concern here).
    server_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("qorgau", "uvicorn")))
    assert "locked" in server_log
    for secret in (username, "nobody-here", "127.0.0.1"):
        assert secret not in server_log
        for e in entries:
            assert secret not in f"{e.actor} {e.object_type} {e.object_id} {e.details!r}"
        assert all(secret not in r.key_hash for r in rows)
    locked = [e for e in entries if e.action == "auth.login_locked"]
    assert [(e.object_id, e.organization_id) for e in locked] == [(str(user_id), tenant_a.org_id)]


def _session(platform: Platform, username: str, password: str) -> tuple[str, str]:
    with platform.db.transaction() as s:
        cookie = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
        csrf = auth.resolve_session(s, cookie).csrf_token
    assert csrf
    return cookie, csrf


def test_the_api_password_change_is_throttled(
        live_server: LiveServer, platform: Platform, clock: Clock, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    cookie, csrf = _session(platform, username, password)
    body = {"old_password": WRONG, "new_password": "a-brand-new-password"}
    with live_server.client(cookies={"qorgau_session": cookie}) as c:
        answers = [c.post("/api/v1/me/password", json=body, headers={"X-CSRF-Token": csrf}) for _ in range(5)]
        assert [r.status_code for r in answers] == [422] * 4 + [429]
        assert answers[0].json()["error"]["field"] == "old_password"
        locked = answers[-1]
        assert locked.headers["retry-after"] == "300"
        assert locked.json()["error"]["code"] == "too_many_attempts"
        assert "try again in 5 min" in locked.json()["error"]["message"]
        # The right current password is refused as well, and nothing changes.
        right = c.post("/api/v1/me/password", json={**body, "old_password": password},
                       headers={"X-CSRF-Token": csrf})
        assert right.status_code == 429
    # The same account is locked at the login form too.
    with browser_client(live_server) as client:
        assert log_in(client, username, password).status_code == 429
    clock.now += timedelta(minutes=5)
    with live_server.client(cookies={"qorgau_session": cookie}) as c:
        ok = c.post("/api/v1/me/password", json={**body, "old_password": password}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 204
    with browser_client(live_server) as client:
        assert log_in(client, username, "a-brand-new-password").status_code == 303


def test_the_web_password_change_is_throttled(server: LiveServer, clock: Clock, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    with browser_client(server, **{"Accept-Language": "en"}) as client:
        assert log_in(client, username, password).status_code == 303
        statuses = []
        for _ in range(5):
            form = client.get("/account/password")
            response = client.post("/account/password", data={
                "current_password": WRONG, "new_password": "a-brand-new-password",
                "confirm_password": "a-brand-new-password", "csrf_token": csrf_from(form.text)})
            statuses.append(response.status_code)
        assert statuses == [400] * 4 + [429]
        assert "Too many failed login attempts. Try again in 5 min" in response.text
    # The session itself still works (a lockout refuses password checks, it does not log anyone out).
        assert client.get("/").status_code == 200


def test_the_api_has_no_other_password_endpoint(live_server: LiveServer) -> None:
    # API callers authenticate with API keys (256-bit secrets, nothing to guess); the only API route that
    # takes a password is POST /api/v1/me/password, throttled above.
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        spec = c.get("/api/openapi.json")
    if spec.status_code != 200:
        pytest.skip("no OpenAPI document at /api/openapi.json")
    taking_passwords = []
    schemas = spec.json().get("components", {}).get("schemas", {})
    for path, methods in spec.json()["paths"].items():
        for op in methods.values():
            ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref", ""))
            props = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
            if any(name in props for name in ("password", "old_password")):
                taking_passwords.append((path, props.keys() >= {"old_password"}))
    # POST /users takes the *new* user's password (set by an admin), which guesses nothing.
    assert ("/api/v1/me/password", True) in taking_passwords
    assert all(path in {"/api/v1/me/password", "/api/v1/users"} for path, _ in taking_passwords)


@pytest.mark.browser
def test_in_a_browser_the_lockout_says_when_to_come_back(page: Any, server: LiveServer, clock: Clock,
                                                         tenant_a: Tenant) -> None:
    from .test_browser import expect, log_in as browser_log_in, shot

    _, username, password = tenant_a.users["admin"]
    for _ in range(4):
        browser_log_in(page, server, username, WRONG)
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    # Four wrong passwords stay under the limit: the right one gets in (and resets the count).
    browser_log_in(page, server, username, password)
    expect(page).to_have_url(f"{server.url}/")
    page.context.clear_cookies()
    for _ in range(5):
        browser_log_in(page, server, username, WRONG)
    expect(page.get_by_role("alert")).to_have_text(
        "Too many failed login attempts. Try again in 5 min (after 09:05 UTC).")
    browser_log_in(page, server, username, password)
    expect(page.get_by_role("alert")).to_contain_text("Try again in 5 min")
    expect(page).to_have_url(f"{server.url}/login")
    shot(page, "login-throttled")
