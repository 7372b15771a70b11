"""The oversight story in a real browser (Debian Chromium through Playwright): a reviewer works the queue with
the keyboard — j to the first decision, Enter to open it, a to approve, a rationale, Ctrl+Enter — and a citizen
objects to the decision in the portal and sees the 3-working-day due date. Screenshots in
``test-output/screenshots/``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from qorgau.core import auth
from qorgau.core.platform import Platform
from qorgau.oversight.service import oversight_for

from .test_browser import expect, log_in, shot  # the browser/page fixtures come from tests/web/conftest.py
from .test_oversight_pages import ME, consent_to, register, submit, verify_citizen

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

pytestmark = pytest.mark.browser


def test_a_reviewer_approves_a_decision_with_the_keyboard(page: Any, server: LiveServer, platform: Platform,
                                                         tenant_a: Tenant) -> None:
    oversight = oversight_for(platform)
    register(oversight, platform, tenant_a.org_id)
    consent_to(platform, tenant_a.org_id, ME)
    first = submit(oversight, platform, tenant_a.org_id, "loan-1")
    submit(oversight, platform, tenant_a.org_id, "loan-2", outcome="approve", confidence=0.4)
    _, username, password = tenant_a.users["reviewer"]
    log_in(page, server, username, password)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="AI decisions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("AI decisions")
    queue = page.get_by_test_id("queue")
    expect(queue.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("count-queue")).to_have_text("2")
    shot(page, "oversight-01-queue")

    page.keyboard.press("j")  # the first decision (earliest deadline)
    expect(queue.locator(f'tr[data-decision="{first}"]')).to_have_class(re.compile("is-selected"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/decisions/{first}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Decision #{first}")
    expect(page.get_by_test_id("factors").locator("tbody tr")).to_have_count(3)
    expect(page.locator("svg.factor-bar-svg rect.factor-against")).to_have_count(2)
    expect(page.locator("[data-outcome-field]")).to_be_hidden()  # shown only for "amend"
    shot(page, "oversight-02-decision")

    page.keyboard.press("m")
    expect(page.locator("[data-outcome-field]")).to_be_visible()
    expect(page.locator("#outcome")).to_be_focused()
    page.evaluate("document.activeElement.blur()")  # shortcuts are off while typing in a field
    page.keyboard.press("a")
    expect(page.locator("input[name=action][value=approve]")).to_be_checked()
    expect(page.locator("[data-outcome-field]")).to_be_hidden()
    expect(page.locator("#rationale")).to_be_focused()
    page.keyboard.type("Income checked against the bank statement.")
    shot(page, "oversight-03-approve")
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(f"{server.url}/decisions?done={first}")
    expect(page.get_by_test_id("notice")).to_have_text(f"Your review of decision #{first} was recorded.")
    expect(queue.locator("tbody tr")).to_have_count(1)
    shot(page, "oversight-04-queue-after")
    with platform.db.reader(tenant_a.org_id) as session:
        view = oversight.get(session, first)
        review = oversight.reviews(session, first)[-1]
    assert view.status == "approved" and review.rationale == "Income checked against the bank statement."
    assert review.seconds_spent is not None


def test_a_citizen_objects_to_a_decision_in_the_portal(page: Any, server: LiveServer, platform: Platform,
                                                      tenant_a: Tenant) -> None:
    oversight = oversight_for(platform)
    register(oversight, platform, tenant_a.org_id)
    consent_to(platform, tenant_a.org_id, ME)
    decision = submit(oversight, platform, tenant_a.org_id, "loan-1")
    with platform.db.transaction(tenant_a.org_id) as session:
        reviewer = auth.get_user(session, tenant_a.users["reviewer"][0])
        view = oversight.open(session, decision, user=reviewer)
        oversight.review(session, decision, user=reviewer, action="approve", expected_version=view.version,
                         rationale="Income below the threshold.")
    verify_citizen(platform, tenant_a)
    _, username, password = tenant_a.users["citizen"]
    log_in(page, server, username, password)
    page.goto(f"{server.url}/me")
    mine = page.get_by_test_id("my-decisions")
    expect(mine.get_by_test_id("my-decision")).to_have_count(1)
    expect(mine).to_contain_text("Loan declined")
    expect(mine).to_contain_text("Monthly income")
    shot(page, "oversight-05-portal")
    mine.get_by_role("link", name=re.compile("Why\\? The key factors")).click()
    expect(page.get_by_test_id("plain-factors")).to_contain_text("strongly weighed against the outcome")
    expect(page.get_by_test_id("rights").locator("li")).to_have_count(3)
    shot(page, "oversight-06-explanation")
    page.get_by_role("link", name="Object / ask for human review").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Object / ask for human review")
    page.get_by_label("What is wrong with this decision? (optional)").fill("My income is higher than that.")
    shot(page, "oversight-07-object")
    page.get_by_role("button", name="Yes, send my objection").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Your objection was sent.")
    with platform.db.reader(tenant_a.org_id) as session:
        objection = oversight.objections(session, decision_id=decision)[0]
    expect(page.get_by_test_id("objection")).to_contain_text(objection.due_on.isoformat())
    expect(page.get_by_role("link", name="Object / ask for human review")).to_have_count(0)
    shot(page, "oversight-08-objected")
    page.get_by_role("button", name="Қазақша").click()
    expect(page.get_by_role("heading", level=2, name="Сіздің құқықтарыңыз")).to_be_visible()
    shot(page, "oversight-09-objected-kk")
