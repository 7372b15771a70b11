"""What the navigation offers: a citizen gets "My data" (/me) and no operator modules; staff get the modules."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from qorgau.core import auth
from qorgau.core.platform import Platform
from qorgau.web.modules import MODULES

from .conftest import browser_client, log_in

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

NAV = re.compile(r'<nav class="main-nav"[^>]*>(.*?)</nav>', re.S)


def nav_links(html: str) -> list[str]:
    match = NAV.search(html)
    assert match, "no main navigation on the page"
    return re.findall(r'<a href="([^"]+)"', match.group(1))


@pytest.mark.parametrize(("lang", "label"), [("en", "My data"), ("ru", "Мои данные"), ("kk", "Менің деректерім")])
def test_a_citizen_is_offered_my_data_and_no_operator_modules(
        server: LiveServer, tenant_a: Tenant, lang: str, label: str) -> None:
    _, username, password = tenant_a.users["citizen"]
    with browser_client(server, **{"Accept-Language": lang}) as client:
        assert log_in(client, username, password).headers["location"] == "/"
        home = client.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/me"  # a citizen's overview
        page = client.get("/me")  # not yet verified: the enrollment-code form (403), with the navigation
        assert page.status_code == 403 and 'name="code"' in page.text
    links = nav_links(page.text)
    assert links == ["/me"]
    assert f'<a href="/me" aria-current="page">{label}</a>' in NAV.search(page.text).group(1)


def test_staff_get_the_modules_and_no_my_data_link(server: LiveServer, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    with browser_client(server) as client:
        log_in(client, username, password)
        page = client.get("/")
    assert page.status_code == 200
    assert nav_links(page.text) == ["/"] + [m.path for m in MODULES]


def test_staff_who_are_also_citizens_get_both(server: LiveServer, platform: Platform, tenant_a: Tenant) -> None:
    with platform.db.transaction() as s:
        auth.create_user(s, organization_id=tenant_a.org_id, username="alpha-both", display_name="Both",
                         roles=["dpo", "citizen"], actor="test", password="alpha-both-password-1")
    with browser_client(server) as client:
        log_in(client, "alpha-both", "alpha-both-password-1")
        page = client.get("/")
    assert page.status_code == 200
    assert nav_links(page.text) == ["/", "/me"] + [m.path for m in MODULES]


def test_a_citizen_error_page_offers_no_operator_modules(server: LiveServer, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["citizen"]
    with browser_client(server) as client:
        log_in(client, username, password)
        page = client.get("/audit")  # an operator page: refused, with the citizen's navigation
    assert page.status_code in (200, 403)
    assert nav_links(page.text) == ["/me"]
