"""Citizen sign-in through OpenID Connect over real HTTP: the portal's verify page, ``/me/verify/oidc`` and its
callback, against the local IdP of tests/consent/oidc_idp.py (SQLite: the pages are thin over the provider,
whose checks tests/consent/test_oidc.py runs on both backends)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from conftest import LiveServer, Tenant
from qorgau.consent.citizens import citizens_for
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings

from .oidc_idp import TestIdP
from .owned import subject_iin

IIN = subject_iin(7101)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def idp() -> Iterator[TestIdP]:
    with TestIdP() as server:
        server.user.claims = {"iin": IIN}
        yield server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, idp: TestIdP) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0,
                    oidc_issuer=idp.issuer, oidc_client_id=idp.client_id, oidc_client_secret=idp.client_secret,
                    oidc_display_name="TestID")


@contextlib.contextmanager
def browser(server: LiveServer, tenant: Tenant, role: str = "citizen", lang: str = "en") -> Iterator[httpx.Client]:
    """A cookie-keeping client signed in as ``role``; it follows no redirect by itself."""
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False,
                      headers={"Accept-Language": lang}) as client:
        _uid, username, password = tenant.users[role]
        page = client.get("/login")
        answer = client.post("/login", data={"username": username, "password": password, "next": "/",
                                             "csrf_token": CSRF.search(page.text).group(1)})  # type: ignore[union-attr]
        assert answer.status_code == 303, answer.status_code
        yield client


def to_idp_and_back(client: httpx.Client, idp: TestIdP) -> tuple[httpx.Response, str]:
    """Start, let the IdP sign the user in, and return (the start's response, the callback URL)."""
    start = client.get("/me/verify/oidc")
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(f"{idp.issuer}/authorize?")
    at_idp = client.get(start.headers["location"])
    assert at_idp.status_code == 302
    return start, at_idp.headers["location"]


def test_a_citizen_signs_in_at_the_idp_and_their_iin_is_verified(live_server: LiveServer, platform: Platform,
                                                                tenant_a: Tenant, idp: TestIdP) -> None:
    with browser(live_server, tenant_a) as client:
        blocked = client.get("/me")
        assert blocked.status_code == 403 and 'href="/me/verify/oidc"' in blocked.text
        page = client.get("/me/verify")
        assert page.status_code == 200
        assert "Sign in with TestID" in page.text and "Fallback: an enrollment code" in page.text
        assert 'id="demo-provider"' not in page.text and 'action="/me/verify"' in page.text

        start, callback = to_idp_and_back(client, idp)
        cookie_header = start.headers["set-cookie"]
        assert "qorgau_oidc=" in cookie_header and "Path=/me/verify/oidc" in cookie_header
        assert "HttpOnly" in cookie_header and "samesite=lax" in cookie_header.lower()
        assert callback.startswith(f"{live_server.url}/me/verify/oidc/callback?")
        done = client.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/me?notice=verified"
        assert 'qorgau_oidc=""' in done.headers["set-cookie"] or "Max-Age=0" in done.headers["set-cookie"]
        me = client.get(done.headers["location"])
        assert me.status_code == 200 and "Your identity is verified" in me.text
        verified = client.get("/me/verify")
        assert "<code>oidc</code>" in verified.text
        for html in (page.text, me.text, verified.text):
            assert IIN not in html
    with platform.db.reader() as session:
        assert citizens_for(platform).verified_iin(session, tenant_a.users["citizen"][0]) == IIN


def test_a_callback_with_someone_else_s_state_is_refused_on_the_verify_page(
        live_server: LiveServer, platform: Platform, tenant_a: Tenant, idp: TestIdP) -> None:
    with browser(live_server, tenant_a) as client:
        _start, callback = to_idp_and_back(client, idp)
        parts = urlsplit(callback)
        params = dict(parse_qsl(parts.query))
        forged = f"{live_server.url}{parts.path}?{urlencode({**params, 'state': 'forged-state'})}"
        page = client.get(forged)
        assert page.status_code == 400
        assert "does not belong to the sign-in started in this browser session" in page.text
        assert params["code"] not in page.text and 'id="oidc-error"' in page.text
        # the cookie was dropped with the refusal: the genuine callback no longer has a login to finish
        again = client.get(callback)
        assert again.status_code == 400 and "No sign-in is in progress" in again.text
        # another browser session of the same user cannot finish a login this one started
        _start, callback = to_idp_and_back(client, idp)
    with browser(live_server, tenant_a) as other_session:
        assert other_session.get(callback).status_code == 400
    with platform.db.reader() as session:
        assert not citizens_for(platform).is_verified(session, tenant_a.users["citizen"][0])


def test_an_invalid_token_is_explained_without_showing_it(live_server: LiveServer, tenant_a: Tenant,
                                                          idp: TestIdP) -> None:
    idp.corrupt_signature = True
    with browser(live_server, tenant_a) as client:
        _start, callback = to_idp_and_back(client, idp)
        page = client.get(callback)
        assert page.status_code == 422
        assert "failed verification: its signature does not verify" in page.text
        assert "eyJ" not in page.text  # no JWT (base64url of '{"') anywhere in the page


def test_the_messages_are_translated(live_server: LiveServer, tenant_a: Tenant, idp: TestIdP) -> None:
    idp.claim_overrides = {"aud": "another-client"}
    with browser(live_server, tenant_a, lang="ru") as client:
        client.post("/language", data={"lang": "ru", "next": "/me/verify",
                                       "csrf_token": CSRF.search(client.get("/me/verify").text).group(1)})  # type: ignore[union-attr]
        page = client.get("/me/verify")
        assert "Войти через TestID" in page.text
        _start, callback = to_idp_and_back(client, idp)
        refused = client.get(callback)
        assert refused.status_code == 422 and "выдан для другого приложения" in refused.text


def test_an_idp_that_is_down_is_a_clear_error(live_server: LiveServer, tenant_a: Tenant, idp: TestIdP) -> None:
    idp.stop()
    with browser(live_server, tenant_a) as client:
        page = client.get("/me/verify/oidc")
        assert page.status_code == 503 and "cannot be reached right now" in page.text
        assert 'action="/me/verify"' in page.text  # the fallback stays usable


def test_an_iin_already_linked_to_another_citizen_is_a_conflict(live_server: LiveServer, platform: Platform,
                                                                tenant_a: Tenant, tenant_b: Tenant,
                                                                idp: TestIdP) -> None:
    with browser(live_server, tenant_a) as first:
        _start, callback = to_idp_and_back(first, idp)
        assert first.get(callback).status_code == 303
    idp.user.sub = "a-second-account-of-the-same-person"
    with browser(live_server, tenant_b) as second:
        _start, callback = to_idp_and_back(second, idp)
        page = second.get(callback)
        assert page.status_code == 409 and "already linked to another account" in page.text
        assert IIN not in page.text
    with platform.db.reader() as session:
        assert not citizens_for(platform).is_verified(session, tenant_b.users["citizen"][0])


def test_only_signed_in_citizens_use_the_oidc_routes(live_server: LiveServer, tenant_a: Tenant) -> None:
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=30) as anonymous:
        for path in ("/me/verify/oidc", "/me/verify/oidc/callback?state=x&code=y"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    with browser(live_server, tenant_a, role="dpo") as staff:
        assert staff.get("/me/verify/oidc").status_code == 403
        assert staff.get("/me/verify/oidc/callback?state=x&code=y").status_code == 403


def test_without_an_issuer_the_enrollment_code_is_marked_as_the_demo_provider(tmp_path: Path,
                                                                              tenant_a: Tenant) -> None:
    plain = Platform.initialize(Settings(data_dir=tmp_path / "plain", sth_interval_seconds=0))
    try:
        from conftest import make_tenant

        tenant = make_tenant(plain, "plain", 33)
        with LiveServer(plain) as server, browser(server, tenant) as client:
            page = client.get("/me/verify")
            assert page.status_code == 200 and 'id="demo-provider"' in page.text
            assert "not for production identity proofing" in page.text and "Sign in with" not in page.text
            assert client.get("/me/verify/oidc").status_code == 404
            assert client.get("/me/verify/oidc/callback?state=x&code=y").status_code == 404
            client.post("/language", data={"lang": "kk", "next": "/me/verify", "csrf_token": CSRF.search(
                page.text).group(1)})  # type: ignore[union-attr]
            assert "демо" in client.get("/me/verify").text.lower()
    finally:
        plain.close()
