"""The citizen's leak pages (/me/leaks) over real HTTP, the way a browser uses them: verify a phone with the code
read from the sink, an e-mail by its link, check my data, subscribe, read a notification; 429 pages; no access
for anonymous callers and staff. SQLite only (the pages are thin over the service tested on both backends)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from qorgau.core.platform import Platform
from qorgau.leaks.citizens import leak_citizens_for

from .citizens_helpers import last_email_link, last_sms_code, make_incident, publish_segment, test_iin, verify_iin

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PHONE = "+77011234567"


@pytest.fixture
def backend() -> str:
    return "sqlite"


def csrf_from(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@pytest.fixture
def browser(live_server, tenant_a) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """The tenant's citizen, signed in through the login form."""
    _, username, password = tenant_a.users["citizen"]
    with httpx.Client(base_url=live_server.url, timeout=30, follow_redirects=False,
                      headers={"Accept-Language": "en"}) as client:
        page = client.get("/login")
        r = client.post("/login", data={"username": username, "password": password, "next": "/me/leaks",
                                        "csrf_token": csrf_from(page.text)})
        assert r.status_code == 303
        yield client


def test_anonymous_visitors_are_sent_to_the_login_page_and_staff_get_403(live_server, tenant_a) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30, follow_redirects=False) as anonymous:
        r = anonymous.get("/me/leaks")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = anonymous.post("/me/leaks/check", data={"csrf_token": "x" * 40})
        assert r.status_code in (303, 403) and "incident" not in r.text
    _, username, password = tenant_a.users["dpo"]
    with httpx.Client(base_url=live_server.url, timeout=30, follow_redirects=False) as staff:
        page = staff.get("/login")
        staff.post("/login", data={"username": username, "password": password, "next": "/",
                                   "csrf_token": csrf_from(page.text)})
        assert staff.get("/me/leaks").status_code == 403


def test_a_citizen_verifies_a_phone_with_the_code_and_checks_their_data(
        platform: Platform, browser: httpx.Client, tenant_b) -> None:
    page = browser.get("/me/leaks")
    assert page.status_code == 200
    assert "Demo sink: nothing is sent" in page.text and 'href="/me/leaks" aria-current="page"' in page.text
    token = csrf_from(page.text)
    r = browser.post("/me/leaks/phone", data={"csrf_token": token, "phone": "+7 701 123 45 67"})
    assert r.status_code == 303
    code_page = r.headers["location"]
    form = browser.get(code_page)
    assert form.status_code == 200 and "4567" not in form.text and "+7 701 *** ** 67" in form.text
    wrong = browser.post(code_page, data={"csrf_token": token, "code": "12345"})
    assert wrong.status_code == 422 and "The code has 6 digits." in wrong.text
    r = browser.post(code_page, data={"csrf_token": token, "code": last_sms_code(platform, PHONE)})
    assert r.status_code == 303 and r.headers["location"] == "/me/leaks?notice=phone_verified"
    page = browser.get(r.headers["location"])
    assert "Your phone number is verified." in page.text and 'data-kind="phone"' in page.text
    identifier_id = re.search(r'data-kind="phone" data-id="(\d+)"', page.text).group(1)
    r = browser.post(f"/me/leaks/identifiers/{identifier_id}/subscription", data={"csrf_token": token, "on": "1"})
    assert r.status_code == 303
    incident = make_incident(platform, tenant_b.org_id, advice={"en": "Change the password of your bank app."})
    tokens = publish_segment(platform, incident, [("phone", PHONE)])
    assert leak_citizens_for(platform).notify_new_tokens(incident, tokens) == 1
    results = browser.post("/me/leaks/check", data={"csrf_token": token})
    assert results.status_code == 200
    assert 'data-testid="incident"' in results.text and "Org beta" in results.text
    assert "Reported by the operator, not yet verified by the authorized body" in results.text
    assert "Change the password of your bank app." in results.text and PHONE not in results.text
    note = re.search(r'data-testid="notification" data-id="(\d+)"', results.text).group(1)
    r = browser.post(f"/me/leaks/notifications/{note}/seen", data={"csrf_token": token})
    assert r.status_code == 303
    # a form without the session's CSRF token changes nothing
    assert browser.post("/me/leaks/check", data={"csrf_token": "forged" * 7}).status_code == 403


def test_the_email_link_lands_on_a_confirmation_button(platform: Platform, browser: httpx.Client, tenant_a) -> None:
    token = csrf_from(browser.get("/me/leaks").text)
    sent = browser.post("/me/leaks/email", data={"csrf_token": token, "email": "Aigerim@Example.kz"})
    assert sent.status_code == 200 and "We sent a link to" in sent.text and "aigerim@" not in sent.text.lower()
    link, selector, secret = last_email_link(platform, "aigerim@example.kz")
    landing = browser.get(link)  # the link names this server (the request's base URL)
    assert landing.status_code == 200 and "Yes, this address is mine" in landing.text
    # Opening the link confirms nothing by itself (mail scanners open links): the button does.
    assert leak_citizens_for(platform).identifiers(tenant_a.users["citizen"][0]) == []
    r = browser.post(f"/me/leaks/email/{selector}", data={"csrf_token": token, "secret": secret})
    assert r.status_code == 303 and r.headers["location"] == "/me/leaks?notice=email_verified"
    again = browser.post(f"/me/leaks/email/{selector}", data={"csrf_token": token, "secret": secret})
    assert again.status_code == 409 and "already used" in again.text


def test_a_verified_iin_is_listed_and_cannot_be_removed(platform: Platform, browser: httpx.Client,
                                                        tenant_a) -> None:
    verify_iin(platform, tenant_a.users["citizen"][0], test_iin(5))
    page = browser.get("/me/leaks")
    assert 'data-kind="iin"' in page.text and test_iin(5) not in page.text
    identifier_id = re.search(r'data-kind="iin" data-id="(\d+)"', page.text).group(1)
    r = browser.post(f"/me/leaks/identifiers/{identifier_id}/remove", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 409 and "Turn its notifications off instead" in r.text


def test_too_many_checks_show_a_429_page_with_retry_after(platform: Platform, browser: httpx.Client) -> None:
    token = csrf_from(browser.get("/me/leaks").text)
    for _ in range(platform.settings.leaks_citizen_lookups_per_hour):
        assert browser.post("/me/leaks/check", data={"csrf_token": token}).status_code == 200
    r = browser.post("/me/leaks/check", data={"csrf_token": token})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and "Too many requests" in r.text


def test_the_pages_speak_kazakh_and_russian(platform: Platform, browser: httpx.Client) -> None:
    for lang, words in (("kk", "Менің деректерім ағып кетулерде"), ("ru", "Мои данные в утечках")):
        browser.cookies.set("qorgau_lang", lang)
        page = browser.get("/me/leaks")
        assert words in page.text, lang
