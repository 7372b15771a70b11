"""The consent story in a real browser (Debian Chromium through Playwright): the demo citizen logs in, sees
their consents at the demo operator, withdraws one after a confirmation, downloads the signed receipt and it
verifies; the operator's DPO sees the withdrawal among today's. Screenshots in ``test-output/screenshots/``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from qorgau.consent.receipts import verify_receipt
from qorgau.consent.demo import DEMO_CITIZEN_IIN
from qorgau.consent.service import SubjectRef, consent_for
from qorgau.core import auth
from qorgau.core.demo import DEMO_BIN, seed_demo
from qorgau.core.platform import Platform

from .test_browser import expect, shot  # the browser/page fixtures come from tests/web/conftest.py

if TYPE_CHECKING:
    from conftest import LiveServer  # tests/conftest.py

pytestmark = pytest.mark.browser


def first_login(page: Any, server: LiveServer, username: str, one_time: str, new_password: str,
                next_path: str) -> None:
    """Log in with the one-time password and choose a new one, as a person would."""
    page.goto(f"{server.url}/login?next={next_path}")
    page.locator("#username").fill(username)
    page.locator("#password").fill(one_time)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/account/password"))
    page.locator("#current_password").fill(one_time)
    page.locator("#new_password").fill(new_password)
    page.locator("#confirm_password").fill(new_password)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}{next_path}")


def test_the_demo_citizen_withdraws_a_consent_and_the_operator_sees_it(
        page: Any, browser: Any, server: LiveServer, platform: Platform, tmp_path: Path) -> None:  # noqa: F811
    logins = {login.username: login for login in seed_demo(platform) or []}
    citizen = logins["demo-citizen"]
    with platform.db.reader() as session:
        demo_org = auth.find_organization_by_bin(session, DEMO_BIN).id  # type: ignore[union-attr]
    first_login(page, server, citizen.username, citizen.one_time_password, "citizen-secret-2026", "/me")
    # demo-citizen's profile language is Kazakh
    expect(page.locator("html")).to_have_attribute("lang", "kk")
    expect(page.get_by_role("heading", level=1)).to_have_text("Менің келісімдерім")
    shot(page, "consent-01-portal-kk")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My consents")
    operator = page.get_by_test_id("operator")
    expect(operator).to_have_count(1)
    expect(operator.get_by_role("heading", level=2)).to_contain_text("Qorgau Demo Bank")
    cards = page.get_by_test_id("consent")
    expect(cards).to_have_count(5)  # the consent demo's four, plus the credit scoring the oversight demo relies on
    sms = page.locator('[data-testid="consent"][data-purpose="marketing.sms"]')
    expect(sms.locator("[data-status]")).to_have_text("Active")
    expect(sms).to_contain_text("Phone number")
    expect(sms).to_contain_text("SMS gateway")
    offers = page.locator('[data-testid="consent"][data-purpose="marketing.personalization"]')
    expect(offers.locator("[data-status]")).to_have_text("Withdrawn")
    shot(page, "consent-02-portal-en")

    sms.get_by_role("link", name=re.compile(r"^Withdraw —")).click()
    expect(page.get_by_role("heading", level=2)).to_contain_text("Advertising by SMS")
    shot(page, "consent-03-confirm")
    page.get_by_role("button", name="Yes, withdraw my consent").click()
    expect(page).to_have_url(re.compile(r"/withdrawal\?done=1$"))
    expect(page.get_by_test_id("withdrawal-done")).to_contain_text("Your consent is withdrawn.")
    expect(page.get_by_test_id("receipt-verified")).to_contain_text("signature on this receipt is valid")
    shot(page, "consent-04-receipt")
    with page.expect_download() as info:
        page.get_by_test_id("download-receipt").click()
    saved = tmp_path / "receipt.json"
    info.value.save_as(saved)
    pinned = httpx.get(f"{server.url}/api/v1/consent/receipt-key").json()["public_key"]
    assert verify_receipt(saved.read_bytes(), public_key=pinned).valid
    receipt = json.loads(saved.read_text())["receipt"]
    assert receipt["purpose"]["code"] == "marketing.sms" and receipt["outcome"] == "processing_stopped"
    assert receipt["counterparties_notified"][0]["name"].startswith("DEMO — SMS gateway")

    page.get_by_role("link", name="My consents").first.click()
    expect(sms.locator("[data-status]")).to_have_text("Withdrawn")
    expect(sms.get_by_role("link", name=re.compile(r"^Withdraw —"))).to_have_count(0)
    page.get_by_role("link", name="Who has my data").click()
    expect(page.get_by_test_id("recipient").first).to_be_visible()
    expect(page.get_by_text("credit bureau «Senim»")).to_be_visible()
    shot(page, "consent-05-who-has-my-data")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing may overflow sideways
    for path in ("/me", "/me/data", f"/me/consents/{demo_org}/1"):
        page.goto(f"{server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    shot(page, "consent-06-phone-consent")
    demo_citizen = SubjectRef(identifier_type="KZ_IIN", identifier=DEMO_CITIZEN_IIN)
    assert not consent_for(platform).check(demo_citizen, organization_id=demo_org, purpose="marketing.sms").allow

    # the operator's data protection officer, in another browser profile
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    try:
        staff = context.new_page()
        dpo = logins["demo-dpo"]
        first_login(staff, server, dpo.username, dpo.one_time_password, "dpo-secret-2026-x", "/consents")
        staff.get_by_role("button", name="English").click()
        today = staff.get_by_test_id("withdrawals-today")
        expect(today).to_contain_text("Advertising by SMS")
        expect(today).to_contain_text("the subject, in the citizen portal")
        expect(staff.get_by_test_id("processors")).to_contain_text("SMS gateway")
        expect(staff.get_by_test_id("transfers")).to_contain_text("credit bureau")
        shot(staff, "consent-07-operator")
    finally:
        context.close()
