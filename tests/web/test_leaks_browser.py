"""The leak register's story in a real browser (Debian Chromium through Playwright; issue 8, L-PD-BREACH,
L-PD-LEAK-REGISTER, L-PD-RIGHTS): an operator's DPO files a late incident report through the form (the late
reason is required and named next to its field), sees it listed with its deadline and the late flag, uploads a
small CSV leak file, reviews the masked samples and the rejected line, and confirms; the authorized body's
regulator verifies the incident with a note and publishes it with advice in kk/ru/en; a citizen whose verified
IIN is in the file sees the incident on ``/me/leaks`` (never the IIN itself), verifies a phone with the code from
the demo SMS sink and subscribes; the public transparency page draws its charts, in Kazakh too.

Only setup without a UI goes through services: the citizen's verified identity (the identity provider) and
making the second organization the authorized body. Screenshots in ``test-output/screenshots/leaks-*.png``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import make_authority  # tests/conftest.py
from leaks.citizens_helpers import last_sms_code, verify_iin
from leaks.ingest_helpers import invalid_iin, valid_iins

from qorgau.core.calendar import ALMATY
from qorgau.core.demo import seed_demo
from qorgau.core.platform import Platform
from qorgau.leaks.incidents import incidents_for
from qorgau.leaks.register import leak_index_for, leak_keys_for, mask
from qorgau.leaks.transparency import transparency_for
from qorgau.web.aisystems import local_time

from .test_browser import expect, log_in, shot  # the browser/page fixtures come from tests/web/conftest.py

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

pytestmark = pytest.mark.browser

TITLE = "Customer database found on a forum"
PERSON = "Aigerim Sadykova"
CITIZEN_PHONE_TYPED = "+7 701 555 12 34"
CITIZEN_PHONE = "+77015551234"
PHONES = [("+7 701 555 12 34", CITIZEN_PHONE), ("8 (702) 555-00-01", "+77025550001"),
          ("+77475550002", "+77475550002")]
EMAILS = [("Dana.Bekova@Mail.kz", "dana.bekova@mail.kz"), ("arman@example.kz", "arman@example.kz"),
          ("s.nurlanov@bank.kz", "s.nurlanov@bank.kz")]
ADVICE = {"kk": "Банк қосымшасының құпиясөзін ауыстырыңыз.",
          "ru": "Смените пароль банковского приложения.",
          "en": "Change the password of your bank app and watch for calls in the bank's name."}


def _local_input(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _leak_csv(iins: list[str], bad_iin: str) -> bytes:
    """A header, three people with an IIN, a phone and an e-mail each, and (line 5) one IIN failing its check."""
    lines = ["ИИН,Телефон,Email"]
    lines += [f"{iin},{phone},{email}" for iin, (phone, _), (email, _) in zip(iins, PHONES, EMAILS)]
    lines.append(f"{bad_iin},,")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _full_values(iins: list[str], bad_iin: str) -> list[str]:
    """Every identifier of the file, as uploaded and normalized: none may appear on a page."""
    values = [*iins, bad_iin]
    for raw, normalized in (*PHONES, *EMAILS):
        values += [raw, normalized]
    values += [n[1:] for _, n in PHONES]                                 # 77015551234 without the plus
    values += [re.sub(r"\D", "", raw) for raw, _ in PHONES]              # the digits as typed
    return values


def _assert_no_full_value(page: Any, values: list[str]) -> None:
    html = page.content()
    text = page.locator("body").inner_text()
    for value in values:
        assert value not in html and value not in text, "a full identifier is shown on the page"


def test_the_leak_register_story(page: Any, server: LiveServer, platform: Platform, tenant_a: Tenant,
                                 tenant_b: Tenant) -> None:
    iins = valid_iins(3, start=4200)
    bad_iin = invalid_iin(valid_iins(1, start=6100)[0])
    full_values = _full_values(iins, bad_iin)
    citizen_id, citizen_name, citizen_password = tenant_a.users["citizen"]
    verify_iin(platform, citizen_id, iins[0])  # the identity provider's part: no UI for it here
    make_authority(platform, tenant_b)

    # --- 1. the operator's DPO files a late report ---------------------------------------------------------
    _, username, password = tenant_a.users["dpo"]
    log_in(page, server, username, password)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Leaks", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Leaks")
    expect(page.get_by_test_id("no-incidents")).to_be_visible()
    page.get_by_test_id("new-incident").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("File an incident report")
    shot(page, "leaks-01-report-form")

    discovered = (datetime.now(ALMATY) - timedelta(days=10)).replace(hour=9, minute=30, second=0, microsecond=0)
    page.get_by_label("Responsible person", exact=True).fill(PERSON)
    page.get_by_label("Responsible person's contact").fill("dpo@alpha.kz, +7 727 000 00 00")
    page.get_by_label("Sector of the operator").select_option("bank")
    page.get_by_label("Short title of the incident").fill(TITLE)
    page.get_by_label("Nature of the breach").select_option("hacking")
    page.get_by_label("What happened").fill("A copy of the customer database was offered for sale on a forum.")
    page.get_by_label("Breach started").fill(_local_input(discovered - timedelta(days=2)))
    page.get_by_label("Breach discovered").fill(_local_input(discovered))
    page.get_by_label("People affected").fill("3000")
    page.get_by_label("Records affected").fill("3400")
    page.get_by_role("checkbox", name="Customers").check()
    for data_class in ("IIN", "Phone number", "Email address", "Full name"):
        page.get_by_role("checkbox", name=data_class, exact=True).check()
    page.get_by_label("Measures taken").fill("Access to the backup server closed; passwords rotated.")
    page.get_by_role("button", name="File the report").click()

    # more than 1 working day after the discovery: the late reason is required, named next to its field
    expect(page.get_by_test_id("form-error")).to_be_visible()
    error = page.locator("#late_reason-error")
    expect(error).to_have_text("The report is later than the legal deadline: say why it is late.")
    late_reason = page.get_by_label("Reason for the late report")
    expect(late_reason).to_have_attribute("aria-invalid", "true")
    expect(late_reason).to_have_attribute("aria-describedby", "late_reason-error")
    expect(page.get_by_label("Short title of the incident")).to_have_value(TITLE)  # what was typed stays
    expect(page.get_by_label("Breach discovered")).to_have_value(_local_input(discovered))
    expect(page.get_by_role("checkbox", name="Email address", exact=True)).to_be_checked()
    error.scroll_into_view_if_needed()
    shot(page, "leaks-02-late-reason-required")

    late_reason.fill("The leak was reported to us by a journalist only on Friday evening.")
    page.get_by_role("button", name="File the report").click()
    expect(page).to_have_url(re.compile(r"/leaks/incidents/\d+\?done=filed$"))
    incident_id = int(re.search(r"/leaks/incidents/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    expect(page.get_by_test_id("notice")).to_have_text("The report was filed with the authorized body.")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.get_by_test_id("late").first).to_have_text("Late")
    expect(page.get_by_test_id("responsible-person")).to_contain_text(PERSON)
    reference = page.get_by_test_id("reference").inner_text()
    assert reference.startswith("KZ-LEAK-")
    shot(page, "leaks-03-incident-filed")

    deadline = local_time(incidents_for(platform).deadline_for(discovered))
    page.get_by_role("link", name="Our incident reports").click()
    expect(page.get_by_test_id("incidents").locator("tbody tr")).to_have_count(1)  # the refused submit filed nothing
    row = page.get_by_test_id("incidents").locator(f'tr[data-incident="{incident_id}"]')
    expect(row).to_have_class(re.compile(r"\bis-late\b"))
    expect(row.get_by_test_id("late")).to_have_text("Late")
    expect(row.locator("td").nth(2)).to_have_text(_local_input(discovered).replace("T", " "))
    expect(row.locator("td").nth(3)).to_have_text(deadline)
    expect(row).to_contain_text(reference)
    expect(row).to_contain_text("Received")
    shot(page, "leaks-04-incidents-late")

    # --- 2. the leak file: upload, review (masked), confirm ------------------------------------------------
    row.get_by_role("link", name=reference).click()
    page.get_by_test_id("upload-link").click()
    expect(page).to_have_url(f"{server.url}/leaks/incidents/{incident_id}/uploads/new")
    expect(page.get_by_test_id("no-uploads")).to_be_visible()
    page.get_by_label(re.compile(r"^File \(CSV")).set_input_files(
        {"name": "forum-dump.csv", "mimeType": "text/csv", "buffer": _leak_csv(iins, bad_iin)})
    page.get_by_label("Format").select_option("csv")
    shot(page, "leaks-05-upload-form")
    page.get_by_role("button", name="Upload and review").click()

    expect(page).to_have_url(re.compile(r"/leaks/uploads/[A-Za-z0-9_-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Review the upload")
    for kind in ("iin", "phone", "email"):
        expect(page.get_by_test_id(f"count-{kind}")).to_have_text("3")
    counts = page.get_by_test_id("counts")
    for kind, normalized in ([("iin", v) for v in iins] + [("phone", n) for _, n in PHONES]
                             + [("email", n) for _, n in EMAILS]):
        expect(counts.locator(f'tr[data-kind="{kind}"]')).to_contain_text(mask(kind, normalized))
    rejected = page.get_by_test_id("rejected").locator("tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected.locator("td").first).to_have_text("5")
    expect(rejected).to_contain_text("An IIN-like number fails the checksum or the birth date")
    expect(page.get_by_test_id("expires")).to_contain_text("This upload expires in")
    _assert_no_full_value(page, full_values)
    shot(page, "leaks-06-upload-review")

    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"/leaks/uploads/[A-Za-z0-9_-]+\?done=confirmed$"))
    expect(page.get_by_test_id("notice")).to_have_text("The identifiers were committed to the register.")
    expect(page.get_by_test_id("status")).to_have_text("Committed to the register")
    expect(page.get_by_test_id("committed")).to_contain_text("Identifiers committed: 9")
    _assert_no_full_value(page, full_values)
    shot(page, "leaks-07-upload-confirmed")
    index = leak_index_for(platform)
    index.refresh()
    assert index.lookup(leak_keys_for(platform).token("iin", iins[0])) == (incident_id,)
    page.get_by_role("button", name="Log out").click()

    # --- 3. the authorized body verifies and publishes -----------------------------------------------------
    _, username, password = tenant_b.users["regulator"]
    log_in(page, server, username, password)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Leaks", exact=True).click()
    expect(page).to_have_url(f"{server.url}/leaks/regulator")  # the authority's regulator has no "our reports"
    expect(page.get_by_role("heading", level=1)).to_have_text("Authorized body: incident reports")
    queued = page.get_by_test_id("queue").locator(f'tr[data-incident="{incident_id}"]')
    expect(queued).to_contain_text("Org alpha")
    expect(queued).to_contain_text(TITLE)
    expect(queued.get_by_test_id("late")).to_be_visible()
    shot(page, "leaks-08-regulator-queue")
    queued.get_by_role("link", name=reference).click()
    expect(page).to_have_url(f"{server.url}/leaks/regulator/{incident_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.get_by_test_id("report")).to_contain_text("9")  # identifiers committed
    expect(page.get_by_text("The leak was reported to us by a journalist only on Friday evening.")).to_be_visible()
    expect(page.get_by_test_id("publish-form")).to_have_count(0)  # only a verified incident is published
    page.get_by_label("New status").select_option("verified")
    page.get_by_label("Note (the operator sees it)").fill("The sample matches the operator's customer records.")
    shot(page, "leaks-09-regulator-verify")
    page.get_by_role("button", name="Change the status").click()
    expect(page).to_have_url(f"{server.url}/leaks/regulator/{incident_id}?done=status")
    expect(page.get_by_test_id("notice")).to_have_text("The status was changed.")
    expect(page.locator("h1 + .lead [data-status]")).to_have_attribute("data-status", "verified")
    history = page.get_by_test_id("history")
    expect(history.locator('[data-event="status"]')).to_contain_text(
        "The sample matches the operator's customer records.")

    publish = page.get_by_test_id("publish-form")
    publish.get_by_label("Advice to citizens (Қазақша)").fill(ADVICE["kk"])
    publish.get_by_label("Advice to citizens (Русский)").fill(ADVICE["ru"])
    publish.get_by_label("Advice to citizens (English)").fill(ADVICE["en"])
    shot(page, "leaks-10-regulator-publish")
    publish.get_by_role("button", name="Publish").click()
    expect(page).to_have_url(f"{server.url}/leaks/regulator/{incident_id}?done=published")
    expect(page.get_by_test_id("notice")).to_have_text("The incident was published.")
    expect(page.locator("h1 + .lead")).to_contain_text("Published")
    expect(history.locator('[data-event="published"]')).to_have_count(1)
    expect(page.get_by_role("button", name="Unpublish")).to_be_visible()
    shot(page, "leaks-11-regulator-published")
    page.get_by_role("button", name="Log out").click()

    # --- 4. the citizen: my data in leaks, a phone by SMS code, a subscription ---------------------------
    log_in(page, server, citizen_name, citizen_password)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="My data").click()
    page.get_by_role("link", name="My data in leaks").first.click()
    expect(page).to_have_url(f"{server.url}/me/leaks")
    expect(page.get_by_role("heading", level=1)).to_have_text("My data in leaks")
    mine = page.get_by_test_id("identifier")
    expect(mine).to_have_count(1)
    expect(mine.first).to_have_attribute("data-kind", "iin")
    expect(mine.first).to_contain_text(mask("iin", iins[0]))
    page.get_by_test_id("check").get_by_role("button", name="Check my data").click()
    results = page.get_by_test_id("results")
    card = results.locator(f'[data-testid="incident"][data-incident="{incident_id}"]')
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Org alpha")
    expect(card).to_contain_text(reference)
    expect(card).to_have_attribute("data-status", "verified")
    expect(card).to_contain_text("Verified by the authorized body")
    expect(card).to_contain_text(ADVICE["en"])
    expect(card).to_contain_text("Hacking")
    expect(card).to_contain_text(mask("iin", iins[0]))
    _assert_no_full_value(page, full_values)
    shot(page, "leaks-12-citizen-check")

    page.get_by_label("Phone number", exact=True).fill(CITIZEN_PHONE_TYPED)
    page.get_by_role("button", name="Send a code").click()
    expect(page).to_have_url(re.compile(r"/me/leaks/phone/[A-Za-z0-9_-]+$"))
    expect(page.get_by_role("heading", level=2)).to_have_text(f"We sent a code to {mask('phone', CITIZEN_PHONE)}")
    expect(page.get_by_test_id("sink-note")).to_be_visible()
    _assert_no_full_value(page, full_values)
    shot(page, "leaks-13-citizen-code")
    page.get_by_label("Code from the SMS").fill(last_sms_code(platform, CITIZEN_PHONE))
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(f"{server.url}/me/leaks?notice=phone_verified")
    expect(page.get_by_role("status")).to_have_text("Your phone number is verified.")
    phone = page.locator('[data-testid="identifier"][data-kind="phone"]')
    expect(phone).to_contain_text(mask("phone", CITIZEN_PHONE))
    expect(phone).to_contain_text("Notifications off")
    phone.get_by_role("button", name=re.compile(r"^Notify me about new leaks")).click()
    expect(page).to_have_url(f"{server.url}/me/leaks?notice=subscribed")
    expect(page.get_by_role("status")).to_have_text("You will be notified when a new leak contains this identifier.")
    phone = page.locator('[data-testid="identifier"][data-kind="phone"]')
    expect(phone).to_contain_text("Notifications on")
    # the verified phone is in the same leak: the incident now lists both of my identifiers, masked
    page.get_by_test_id("check").get_by_role("button", name="Check my data").click()
    card = page.get_by_test_id("results").locator(f'[data-testid="incident"][data-incident="{incident_id}"]')
    expect(card).to_contain_text(mask("phone", CITIZEN_PHONE))
    expect(card).to_contain_text(mask("iin", iins[0]))
    _assert_no_full_value(page, full_values)
    shot(page, "leaks-14-citizen-phone-subscribed")
    page.get_by_role("button", name="Log out").click()

    # --- 5. the public transparency page, anonymous, in English and Kazakh --------------------------------
    page.goto(f"{server.url}/leaks/transparency")
    expect(page.get_by_role("heading", level=1)).to_have_text("Leaked personal data: public statistics")
    expect(page.get_by_role("navigation", name="Modules")).to_have_count(0)  # not logged in
    for chart in ("sector", "sector-people", "data_class", "month", "nature"):
        expect(page.get_by_test_id(f"chart-{chart}").locator("svg[role=img] title")).to_have_count(1)
    expect(page.get_by_test_id("chart-sector").locator('svg g[data-key="bank"] rect')).to_have_count(1)
    expect(page.get_by_test_id("total-incidents")).to_have_text("<10")  # one incident: suppressed
    listed = page.get_by_test_id("incidents").locator(f'tr[data-reference="{reference}"]')
    expect(listed).to_contain_text("Org alpha")
    expect(listed).to_contain_text("Banks")
    expect(listed).to_contain_text("≈ 3 000")
    page.get_by_test_id("chart-sector").locator("summary").click()
    expect(page.get_by_test_id("table-sector").locator('tr[data-key="bank"]')).to_be_visible()
    _assert_no_full_value(page, full_values)
    shot(page, "leaks-15-transparency")

    page.get_by_role("button", name="Қазақша").click()
    expect(page.locator("html")).to_have_attribute("lang", "kk")
    expect(page).to_have_url(re.compile(r"/leaks/transparency$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ағып кеткен дербес деректер: ашық статистика")
    expect(page.get_by_role("heading", level=2, name="Салалар бойынша оқиғалар")).to_be_visible()
    expect(page.get_by_role("heading", level=2, name="Осы көлемдегі жарияланған оқиғалар")).to_be_visible()
    expect(page.get_by_test_id("chart-sector").locator("svg[role=img]")).to_have_count(1)
    expect(page.get_by_test_id("incidents").locator(f'tr[data-reference="{reference}"]')).to_be_visible()
    shot(page, "leaks-16-transparency-kk")


def test_the_transparency_page_charts_the_demo_register_in_kazakh_and_russian(page: Any, server: LiveServer,
                                                                             platform: Platform) -> None:
    """With the demo register (57 published incidents) the charts have real bars next to suppressed cells."""
    assert seed_demo(platform) is not None
    page.goto(f"{server.url}/")
    page.get_by_role("link", name="Leaked personal data: public statistics").click()  # the footer link
    expect(page).to_have_url(f"{server.url}/leaks/transparency")
    with platform.db.reader() as session:
        stats = transparency_for(platform).statistics(session)
    total = stats.total.incidents
    assert total is not None and total >= 10
    expect(page.get_by_test_id("total-incidents")).to_have_text(f"{total:,}".replace(",", " "))
    for chart in ("sector", "sector-people", "data_class", "month", "nature"):
        svg = page.get_by_test_id(f"chart-{chart}").locator("svg[role=img]")
        expect(svg).to_have_count(1)
        bars = svg.locator("rect:not([fill=none])")
        assert bars.count() >= 1, f"no visible bar in the {chart} chart"
        for k in range(bars.count()):  # a visible bar lies inside the drawing, right of the labels
            x, width = float(bars.nth(k).get_attribute("x")), float(bars.nth(k).get_attribute("width"))
            assert width > 0 and x + width <= float(svg.get_attribute("viewBox").split()[2])
    sector_table = page.get_by_test_id("table-sector")
    page.get_by_test_id("chart-sector").locator("summary").click()
    expect(sector_table.locator("tfoot")).to_contain_text(f"{total:,}".replace(",", " "))
    expect(sector_table.locator("tbody tr.is-suppressed").first).to_contain_text("<10")
    expect(page.get_by_test_id("incidents").locator("tbody tr")).to_have_count(min(total, 100))
    shot(page, "leaks-17-transparency-demo")

    page.get_by_role("button", name="Қазақша").click()
    expect(page.locator("html")).to_have_attribute("lang", "kk")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ағып кеткен дербес деректер: ашық статистика")
    expect(page.get_by_test_id("chart-sector").locator("svg title").first).to_have_text("Салалар бойынша оқиғалар")
    shot(page, "leaks-18-transparency-demo-kk")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_test_id("chart-sector").locator("svg")).to_be_visible()
    shot(page, "leaks-19-transparency-demo-ru")
