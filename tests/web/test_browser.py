"""Stories in a real browser: Debian's headless Chromium driven by Playwright's sync API.

Never a downloaded browser: ``executable_path`` points at the system Chromium, and the tests skip
with a reason when it is missing. Screenshots land in ``test-output/screenshots/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qorgau.core import audit
from qorgau.core.demo import seed_demo
from qorgau.core.platform import Platform

# The Chromium fixtures (``browser``, ``page``) live in ``tests/web/conftest.py`` so every module shares one
# Playwright (two sync Playwrights in one process fail); the helpers are re-exported for other modules.
from .conftest import CHROMIUM_ARGS, chromium_path  # noqa: F401

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, server: LiveServer, username: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def expect(page: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(page)


# --- stories -------------------------------------------------------------------------------------


def test_first_login_with_a_one_time_password_sets_a_new_password(page: Any, server: LiveServer,
                                                                  platform: Platform) -> None:
    logins = seed_demo(platform)
    assert logins is not None
    demo = next(login for login in logins if login.username == "demo-admin")  # profile language: English
    page.goto(f"{server.url}/login")
    shot(page, "01-login")
    page.get_by_label("Username").fill(demo.username)
    page.get_by_label("Password").fill(demo.one_time_password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account/password"))
    expect(page.get_by_role("heading", name="Change password")).to_be_visible()

    page.get_by_label("Current password", exact=True).fill(demo.one_time_password)
    page.get_by_label("New password", exact=True).fill("my-own-secret-2026")
    page.get_by_label("Repeat the new password").fill("a-different-secret")
    page.get_by_role("button", name="Save the new password").click()
    error = page.locator("#confirm_password-error")
    expect(error).to_have_text("The two new passwords do not match.")
    expect(page.get_by_label("Repeat the new password")).to_have_attribute("aria-invalid", "true")
    shot(page, "02-password-error")

    page.get_by_label("Current password", exact=True).fill(demo.one_time_password)
    page.get_by_label("New password", exact=True).fill("my-own-secret-2026")
    page.get_by_label("Repeat the new password").fill("my-own-secret-2026")
    page.get_by_role("button", name="Save the new password").click()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_role("status")).to_have_text("Your password has been changed.")
    expect(page.locator("h1 .badge-demo")).to_have_text("DEMO")
    expect(page.get_by_role("navigation", name="Modules")).to_be_visible()
    shot(page, "03-dashboard-demo")


def test_a_tenant_user_logs_in_and_sees_the_dashboard(page: Any, server: LiveServer, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    log_in(page, server, username, password)
    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Org alpha")
    expect(page.locator(".badge-role")).to_have_text(["Data protection officer"])
    nav = page.get_by_role("navigation", name="Modules")
    for label in ("Discovery", "Vault", "Consents", "AI decisions", "AI systems", "Labels", "Leaks", "Audit"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(page.locator("h1 .badge-demo")).to_have_count(0)
    shot(page, "04-dashboard")

    nav.get_by_role("link", name="Labels").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Labels")
    expect(page.get_by_role("heading", name="Label a file")).to_be_visible()
    expect(page.get_by_text("This module is not yet enabled in this version.")).to_have_count(0)
    expect(page.locator("code.rule-id", has_text="L-AI-LABEL")).to_be_visible()
    expect(nav.get_by_role("link", name="Labels")).to_have_attribute("aria-current", "page")
    shot(page, "05-module-labels")


def test_switching_to_kazakh_translates_the_interface(page: Any, server: LiveServer, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["admin"]
    log_in(page, server, username, password)
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("button", name="Қазақша").click()
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("lang", "kk")
    nav = page.get_by_role("navigation", name="Модульдер")
    for label in ("Аудит журналы", "Келісімдер", "ЖИ шешімдері", "ЖИ жүйелері", "Таңбалау", "Ағып кетулер"):
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    expect(page.get_by_role("button", name="Шығу")).to_be_visible()
    expect(page.get_by_role("button", name="Қазақша")).to_have_attribute("aria-current", "true")
    shot(page, "06-dashboard-kk")
    nav.get_by_role("link", name="Таңбалау").click()
    expect(page.get_by_role("heading", name="Файлды таңбалау")).to_be_visible()
    shot(page, "07-module-labels-kk")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Маркировка")
    shot(page, "08-module-labels-ru")


def test_an_entry_s_inclusion_proof_verifies_on_the_server_and_in_the_browser(
        page: Any, server: LiveServer, platform: Platform, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["admin"]
    log_in(page, server, username, password)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Signed tree head")).to_be_visible()
    expect(page.get_by_text("✓ Signature valid")).to_be_visible()
    shot(page, "09-audit")
    with platform.db.reader(tenant_a.org_id) as session:
        entry_id = audit.list_entries(session, action="user.create", limit=1)[0].id
    page.get_by_label("Entry number").fill(str(entry_id))
    page.get_by_role("button", name="Verify", exact=True).click()  # htmx swaps the result in
    expect(page.get_by_test_id("server-result")).to_contain_text("✓ Included")
    browser_result = page.get_by_test_id("browser-result")
    expect(browser_result).to_have_attribute("data-verified", "true")
    expect(browser_result).to_contain_text("Verified in your browser")
    expect(page.locator("[data-browser-signature]")).to_contain_text("signature verified in your browser")
    expect(page).to_have_url(re.compile(rf"/audit/verify\?entry_id={entry_id}$"))
    server_root = page.get_by_test_id("server-root").inner_text()
    assert page.locator("[data-browser-root]").inner_text() == server_root
    shot(page, "10-audit-verified")

    # The same check on a full page load (a link from the entries table, no htmx involved).
    page.goto(f"{server.url}/audit")
    page.get_by_role("link", name=f"Verify entry {entry_id}").click()
    expect(page.get_by_test_id("browser-result")).to_have_attribute("data-verified", "true")


def test_a_tampered_proof_fails_in_the_browser(page: Any, server: LiveServer, platform: Platform,
                                               tenant_a: Tenant) -> None:
    """The browser check is independent: change one leaf byte in the page and it must fail."""
    _, username, password = tenant_a.users["admin"]
    log_in(page, server, username, password)
    with platform.db.reader(tenant_a.org_id) as session:
        entry_id = audit.list_entries(session, limit=1)[0].id
    page.goto(f"{server.url}/audit/verify?entry_id={entry_id}")
    expect(page.get_by_test_id("browser-result")).to_have_attribute("data-verified", "true")
    verdict = page.evaluate("""() => {
        const section = document.querySelector('[data-proof]');
        const clone = section.cloneNode(true);
        const leaf = clone.dataset.leaf;
        clone.dataset.leaf = (leaf[0] === '0' ? '1' : '0') + leaf.slice(1);
        delete clone.dataset.checked;
        clone.removeAttribute('data-checked');
        section.replaceWith(clone);
        document.dispatchEvent(new Event('DOMContentLoaded'));
        return new Promise(resolve => setTimeout(() => resolve(
            clone.querySelector('[data-browser-result]').dataset.verified), 1000));
    }""")
    assert verdict == "false"


def test_wrong_password_shows_an_error(page: Any, server: LiveServer, tenant_a: Tenant) -> None:
    _, username, _ = tenant_a.users["admin"]
    log_in(page, server, username, "definitely-wrong-1")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value(username)
    expect(page).to_have_url(re.compile(r"/login$"))
    shot(page, "11-login-wrong-password")


def test_another_organization_s_entry_is_not_found(page: Any, server: LiveServer, platform: Platform,
                                                   tenant_a: Tenant, tenant_b: Tenant) -> None:
    _, username, password = tenant_a.users["admin"]
    with platform.db.reader(tenant_b.org_id) as session:
        foreign = audit.list_entries(session, limit=1)[0].id
    log_in(page, server, username, password)
    page.goto(f"{server.url}/audit")
    page.get_by_label("Entry number").fill(str(foreign))
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Entry not found in your organization's audit log.")
    expect(page.locator("[data-proof]")).to_have_count(0)
    shot(page, "12-audit-not-found")


def test_logout_ends_the_session(page: Any, server: LiveServer, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["regulator"]
    log_in(page, server, username, password)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.url}/login")
    expect(page.get_by_role("status")).to_have_text("You have been logged out.")
    page.goto(f"{server.url}/audit")
    expect(page).to_have_url(re.compile(r"/login\?next=/audit$"))
    shot(page, "13-logged-out")


def test_pages_are_keyboard_friendly(page: Any, server: LiveServer, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["admin"]
    log_in(page, server, username, password)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    for landmark in ("banner", "navigation", "main", "contentinfo"):
        expect(page.get_by_role(landmark).first).to_be_attached()
    page.goto(f"{server.url}/no-such-page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    shot(page, "14-not-found")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing may overflow sideways
    page.goto(f"{server.url}/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "15-phone-dashboard")
