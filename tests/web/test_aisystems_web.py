"""The AI systems register in a real browser (Debian Chromium through Playwright), plus a few plain-HTTP checks:
an operator registers a system through the questionnaire and sees its classification with citations, bad input
is shown next to its field, a prohibited system shows its practice and article, the law of another date is
previewed, editing the questionnaire leaves a diff in the history, the public register and the law need no login,
the regulator includes a system in the trusted list, and the maturity index draws its trend.
Screenshots in ``test-output/screenshots/``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import make_authority  # tests/conftest.py

from qorgau.aisystems.governance import governance_for
from qorgau.aisystems.models import MaturitySnapshot
from qorgau.aisystems.register import register_for
from qorgau.core.calendar import ALMATY
from qorgau.core.platform import Platform

from .conftest import browser_client, csrf_from
from .conftest import log_in as http_log_in
from .test_browser import expect, log_in, shot  # the browser/page fixtures come from tests/web/conftest.py

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

HIGH_IMPACT = "infrastructure"

# A complete questionnaire (every required fact answered) of a harmless chatbot: minimal risk, low autonomy.
BASE_FACTS: dict[str, Any] = {
    "system.sector": "telecom", "system.purpose": "Answers subscribers' questions about tariffs.",
    "system.state_system": False, "system.owner_name": "Org alpha", "users.affected": "1k-100k",
    "users.vulnerable_groups": ["none"], "inputs.personal_data": False, "inputs.biometric": False,
    "inputs.special_categories": False, "functions.decisions_about_people": False, "functions.legal_effect": False,
    "functions.synthetic_content": False, "functions.imitates_real_person": False,
    "functions.emotion_recognition": False, "functions.biometric_identification": False,
    "functions.biometric_categorization": False, "functions.protected_characteristics": False,
    "functions.social_scoring": False, "functions.subliminal_manipulation": False,
    "functions.exploits_vulnerabilities": False, "functions.prohibited_content": False,
    "functions.interacts_with_people": True, "deployment.public_places": False, "deployment.realtime": False,
    "deployment.critical_ict": False, "deployment.state_eresources": False, "deployment.data_in_kz": True,
    "deployment.cross_border": False, "failure.impact": "minimal", "oversight.human_final_choice": True,
    "oversight.human_can_correct": True, "legal.allowed_by_law": [], "training.provenance_documented": True,
    "training.personal_data": False,
}


def register(platform: Platform, tenant: Tenant, code: str, *, name: str | None = None, public: bool | None = None,
             **changes: Any) -> int:
    """A system registered through the register service, as an administrator of ``tenant``."""
    facts = {**BASE_FACTS, **{k.replace("__", "."): v for k, v in changes.items()}}
    with platform.db.transaction(tenant.org_id) as session:
        record = register_for(platform).register_system(
            session, code=code, name=name or code.replace("-", " ").title(), facts=facts, public=public,
            actor=f"user:{tenant.users['admin'][0]}")
    return record.id


def as_admin(page: Any, server: LiveServer, tenant: Tenant, role: str = "dpo") -> None:
    _, username, password = tenant.users[role]
    log_in(page, server, username, password)


# --- the operator -------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_operator_registers_a_system_through_the_questionnaire(page: Any, server: LiveServer,
                                                                  platform: Platform, tenant_a: Tenant) -> None:
    as_admin(page, server, tenant_a)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="AI systems", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("AI systems")
    expect(page.get_by_test_id("no-systems")).to_be_visible()
    page.get_by_test_id("new-system").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Register an AI system")
    # The questionnaire is the facts catalogue: its sections, questions, help texts and required marks.
    expect(page.locator("[data-group]")).to_have_count(10)
    sector = page.locator('[data-fact="system.sector"]')
    expect(sector).to_have_attribute("data-required", "")
    expect(sector.locator(".required-mark")).to_be_visible()
    expect(page.locator('[data-fact="system.state_system"] .field-hint')).to_contain_text("public register by default")

    page.locator("#f-code").fill("Grid Balancer!")  # not a code: upper case, space, "!"
    page.locator("#f-name").fill("Grid load balancer")
    page.get_by_label("In which sector is the system used?").select_option("energy")
    page.get_by_label("What is the system for (one or two sentences)?").fill("Balances the load of the power grid.")
    page.locator('[data-fact="failure.impact"] select').select_option(HIGH_IMPACT)
    page.locator('[data-fact="oversight.human_final_choice"]').get_by_label("No", exact=True).check()
    page.locator('[data-fact="oversight.human_can_correct"]').get_by_label("Yes", exact=True).check()
    page.locator('[data-fact="users.vulnerable_groups"]').get_by_label("Children").check()
    page.locator('[data-fact="users.vulnerable_groups"]').get_by_label("None").check()  # "none" clears the others
    expect(page.locator('[data-fact="users.vulnerable_groups"]').get_by_label("Children")).not_to_be_checked()
    page.get_by_test_id("save").click()

    # The server refuses the code, says so next to the field and keeps every answer.
    expect(page.locator("#f-code-error")).to_have_text(re.compile("lowercase Latin letters"))
    expect(page.locator("#f-code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-code")).to_be_focused()
    expect(page.locator("#f-code")).to_have_value("Grid Balancer!")
    expect(page.locator("#f-name")).to_have_value("Grid load balancer")
    expect(page.get_by_label("In which sector is the system used?")).to_have_value("energy")
    expect(page.locator('[data-fact="failure.impact"] select')).to_have_value(HIGH_IMPACT)
    expect(page.locator('[data-fact="oversight.human_final_choice"]').get_by_label("No", exact=True)).to_be_checked()
    expect(page.locator('[data-fact="users.vulnerable_groups"]').get_by_label("None")).to_be_checked()
    shot(page, "aisystems-01-questionnaire-error")
    with platform.db.reader(tenant_a.org_id) as session:
        assert register_for(platform).systems(session) == []  # nothing half-written

    page.locator("#f-code").fill("grid-balancer")
    page.get_by_test_id("save").click()
    expect(page).to_have_url(re.compile(r"/ai-systems/\d+\?done=registered$"))
    expect(page.get_by_test_id("notice")).to_have_text("The system was registered and classified.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grid load balancer")
    current = page.get_by_test_id("classification")
    expect(current.get_by_test_id("risk-level")).to_have_text("High risk")
    expect(current.get_by_test_id("autonomy-level")).to_have_text("Medium autonomy")
    reason = current.get_by_test_id("risk-reasons").locator('[data-rule="ai.risk.high"]')
    expect(reason).to_contain_text("L-AI-RISK")
    expect(reason).to_contain_text("AI law, Art. 17, p. 1")
    expect(current.get_by_test_id("autonomy-reasons")).to_contain_text("ai.autonomy.medium")
    obligations = current.get_by_test_id("classification-obligations")
    expect(obligations.locator('[data-rule="ai.high.risk-management"]')).to_contain_text("L-AI-DUTIES")
    # Questions left open are listed with a link back to them.
    missing = current.get_by_test_id("missing-facts")
    expect(missing).to_contain_text("inputs.personal_data")
    missing.get_by_role("link", name="Answer").first.click()
    expect(page).to_have_url(re.compile(r"/ai-systems/\d+/edit#f-"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit the questionnaire")
    page.go_back()
    shot(page, "aisystems-02-system")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "aisystems-03-system-390")

    page.get_by_role("link", name="Our systems").click()
    row = page.get_by_test_id("systems").locator('tr[data-system="grid-balancer"]')
    expect(row).to_contain_text("High risk")
    expect(row).to_contain_text("Medium autonomy")
    expect(row).to_contain_text("Not public")
    shot(page, "aisystems-04-list-390")


@pytest.mark.browser
def test_a_prohibited_system_shows_its_practice_and_article(page: Any, server: LiveServer, platform: Platform,
                                                           tenant_a: Tenant) -> None:
    system_id = register(platform, tenant_a, "mood-scoring", name="Mood scoring",
                         functions__emotion_recognition=True, functions__decisions_about_people=True,
                         functions__legal_effect=True, inputs__personal_data=True,
                         oversight__human_final_choice=False, legal__automated_processing_consent=False,
                         legal__emotion_recognition_consent=False)
    as_admin(page, server, tenant_a)
    page.goto(f"{server.url}/ai-systems/{system_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Prohibited")
    box = page.get_by_test_id("classification").get_by_test_id("prohibitions")
    emotion = box.locator('[data-rule="ai.prohibited.emotion-recognition"]')
    expect(emotion.locator("[data-practice]")).to_have_text("emotion_recognition")
    expect(emotion).to_contain_text("L-AI-PROHIBITED")
    automated = box.locator('[data-rule="ai.prohibited.automated-decision-without-basis"]')
    expect(automated).to_contain_text("PD law, Art. 19-1")
    expect(automated).to_contain_text("L-PD-AUTO")
    expect(page.get_by_test_id("prohibited")).to_have_text("Prohibited")
    shot(page, "aisystems-05-prohibited")
    page.goto(f"{server.url}/ai-systems")
    expect(page.get_by_test_id("systems").locator('tr[data-system="mood-scoring"]')).to_have_class("is-prohibited")


@pytest.mark.browser
def test_the_law_of_another_date_is_previewed_without_storing_anything(page: Any, server: LiveServer,
                                                                       platform: Platform, tenant_a: Tenant) -> None:
    system_id = register(platform, tenant_a, "grid", failure__impact=HIGH_IMPACT)
    as_admin(page, server, tenant_a)
    page.goto(f"{server.url}/ai-systems/{system_id}")
    expect(page.get_by_test_id("classification").get_by_test_id("risk-level")).to_have_text("High risk")
    as_of = page.get_by_test_id("as-of")
    as_of.get_by_label("Date").fill("2025-12-01")  # before the AI law came into force (18 January 2026)
    as_of.get_by_role("button", name="Show").click()
    preview = page.get_by_test_id("preview")
    expect(preview.get_by_test_id("preview-title")).to_have_text("Under the law as of 2025-12-01")
    expect(preview.get_by_test_id("risk-level")).not_to_have_text("High risk")
    expect(preview.get_by_test_id("law-not-in-force")).to_be_visible()  # not "minimal": the law was not in force
    expect(preview.get_by_test_id("risk-level")).to_have_text("Law not in force")
    expect(preview.locator('[data-rule="ai.high.risk-management"]')).to_have_count(0)
    expect(page.get_by_test_id("classification").get_by_test_id("risk-level")).to_have_text("High risk")
    shot(page, "aisystems-06-as-of")
    with platform.db.reader(tenant_a.org_id) as session:
        assert len(register_for(platform).history(session, system_id)) == 1  # the preview stored nothing

    as_of.get_by_label("Date").evaluate("e => { e.type = 'text'; e.value = '2026-02-31'; }")
    as_of.get_by_role("button", name="Show").click()
    expect(page.locator("#as_of-error")).to_have_text("Enter a date as YYYY-MM-DD.")


@pytest.mark.browser
def test_editing_the_questionnaire_leaves_a_diff_in_the_history(page: Any, server: LiveServer, platform: Platform,
                                                                tenant_a: Tenant) -> None:
    system_id = register(platform, tenant_a, "scoring", failure__impact="moral_harm")
    as_admin(page, server, tenant_a)
    page.goto(f"{server.url}/ai-systems/{system_id}")
    page.get_by_test_id("edit").click()
    expect(page.get_by_test_id("version")).to_have_text("1")
    expect(page.locator('[data-fact="failure.impact"] select')).to_have_value("moral_harm")
    interacts = page.locator('[data-fact="functions.interacts_with_people"]')
    expect(interacts.get_by_label("Yes", exact=True)).to_be_checked()
    page.locator('[data-fact="failure.impact"] select').select_option(HIGH_IMPACT)
    page.locator('[data-fact="training.provenance_documented"]').get_by_label("Don't know yet").check()
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("notice")).to_have_text("The questionnaire was saved and the system re-classified.")
    expect(page.get_by_test_id("classification").get_by_test_id("risk-level")).to_have_text("High risk")
    history = page.get_by_test_id("history")
    expect(history.locator(".history-item")).to_have_count(2)
    newest = history.locator('.history-item[data-seq="2"]')
    expect(newest.get_by_test_id("diff")).to_contain_text("Risk level: medium → high")
    expect(newest.get_by_test_id("diff")).to_contain_text("+ ai.high.risk-management")
    expect(newest.get_by_test_id("diff")).to_contain_text("+ training.provenance_documented")  # now unanswered
    shot(page, "aisystems-07-history")

    # Two editors: the second save of version 2 is refused with a clear message and keeps the answers.
    page.get_by_test_id("edit").click()
    expect(page.get_by_test_id("version")).to_have_text("2")
    with platform.db.transaction(tenant_a.org_id) as session:
        register_for(platform).update_questionnaire(session, system_id, facts={"system.stage": "pilot"},
                                                    expected_version=2, actor=f"user:{tenant_a.users['admin'][0]}")
    page.locator('[data-fact="failure.impact"] select').select_option("material_damage")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("Someone else saved this questionnaire")
    expect(page.get_by_test_id("form-error")).to_contain_text("version 3")
    expect(page.locator('[data-fact="failure.impact"] select')).to_have_value("material_damage")
    with platform.db.reader(tenant_a.org_id) as session:
        record = register_for(platform).system(session, system_id)
    assert record.facts["failure.impact"] == HIGH_IMPACT and record.profile_version == 3


@pytest.mark.browser
def test_an_obligation_is_marked_met_with_evidence(page: Any, server: LiveServer, platform: Platform,
                                                   tenant_a: Tenant) -> None:
    system_id = register(platform, tenant_a, "grid", failure__impact=HIGH_IMPACT)
    as_admin(page, server, tenant_a)
    page.goto(f"{server.url}/ai-systems/{system_id}")
    item = page.get_by_test_id("obligations").locator(".obligation").first
    code = item.get_attribute("data-obligation")
    item.get_by_role("button", name="Mark met").click()
    item = page.locator(f'.obligation[data-obligation="{code}"]')
    expect(item.locator(".field-error")).to_have_text(re.compile("Describe the evidence"))
    item.get_by_label("Evidence").fill("Order No. 17 of 2026-02-01")
    item.get_by_role("button", name="Mark met").click()
    expect(page.get_by_test_id("notice")).to_have_text("The obligation was marked as met.")
    met = page.locator(f'.obligation[data-obligation="{code}"]')
    expect(met.get_by_test_id("evidence")).to_have_text("Order No. 17 of 2026-02-01")
    expect(met.get_by_role("button", name="Mark met")).to_have_count(0)


# --- the regulator and the public ---------------------------------------------------------------------------


@pytest.mark.browser
def test_the_regulator_includes_a_system_in_the_trusted_list_and_it_appears_publicly(
        page: Any, server: LiveServer, platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> None:
    system_id = register(platform, tenant_a, "grid", name="Grid balancer", public=True, failure__impact=HIGH_IMPACT,
                         system__sector="energy")
    # The operator records the audit and asks for the trusted list in the browser.
    as_admin(page, server, tenant_a)
    page.goto(f"{server.url}/ai-systems/{system_id}")
    audits = page.get_by_test_id("audits")
    audits.get_by_text("Record an audit").click()
    audits.get_by_label("Auditor").fill("KZ Audit LLP")
    audits.get_by_label("Audit date").fill("2026-02-10")
    audits.get_by_label("Result").select_option("passed")
    audits.get_by_label("The audit covers the legality and quality of the training data").check()
    audits.get_by_role("button", name="Record the audit").click()
    expect(page.get_by_test_id("notice")).to_have_text("The audit was recorded.")
    trusted = page.get_by_test_id("trusted")
    expect(trusted.get_by_label("Sector")).to_have_value("energy")
    trusted.get_by_test_id("request-trusted").click()
    expect(page.get_by_test_id("notice")).to_contain_text("sent to the regulator")
    expect(page.get_by_test_id("trusted").get_by_test_id("trusted-status")).to_have_text("Requested")
    page.get_by_role("button", name="Log out").click()

    # The regulator (another organization) decides; refusing needs a reason.
    make_authority(platform, tenant_b)  # the authorized body's regulator decides
    _, username, password = tenant_b.users["regulator"]
    log_in(page, server, username, password)
    page.goto(f"{server.url}/ai-systems")
    page.get_by_test_id("regulator-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Regulator: AI systems")
    expect(page.get_by_test_id("all-systems").locator('tr[data-system="grid"]')).to_contain_text("Org alpha")
    request = page.get_by_test_id("trusted-requests").locator('[data-system="grid"]')
    expect(request).to_contain_text("KZ Audit LLP")
    request.get_by_label("Refuse", exact=True).check()
    request.get_by_role("button", name="Decide").click()
    request = page.get_by_test_id("trusted-requests").locator('[data-system="grid"]')
    expect(request.locator(".field-error")).to_have_text("Give a reason.")
    shot(page, "aisystems-08-regulator")
    request.get_by_label("Include in the trusted list").check()
    request.get_by_role("button", name="Decide").click()
    expect(page.get_by_test_id("notice")).to_have_text("The trusted-list request was decided.")
    expect(page.get_by_test_id("no-trusted-requests")).to_be_visible()
    expect(page.get_by_test_id("decided")).to_contain_text("Included")
    page.get_by_role("button", name="Log out").click()

    page.goto(f"{server.url}/register/trusted")
    row = page.get_by_test_id("trusted-list").locator('tr[data-system="grid"]')
    expect(row).to_contain_text("Grid balancer")
    expect(row).to_contain_text("KZ Audit LLP")
    expect(row).to_contain_text("Energy")
    row.get_by_role("link", name="Grid balancer").click()
    expect(page.get_by_test_id("trusted-status")).to_have_text("Included")


@pytest.mark.browser
def test_the_public_register_needs_no_login_and_shows_only_public_systems(
        page: Any, server: LiveServer, platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> None:
    register(platform, tenant_a, "tariff-bot", name="Tariff bot", public=True)
    register(platform, tenant_a, "internal-ranker", name="Internal ranker", public=False)
    register(platform, tenant_b, "traffic-cameras", name="Traffic cameras", failure__impact=HIGH_IMPACT,
             system__sector="transport", system__state_system=True)  # a state system: public by default
    page.goto(f"{server.url}/register")
    expect(page.get_by_role("heading", level=1)).to_have_text("Public register of AI systems")
    expect(page.get_by_role("navigation", name="Modules")).to_have_count(0)  # nobody is logged in
    cards = page.get_by_test_id("register").locator("[data-register-id]")
    expect(cards).to_have_count(2)
    expect(page.get_by_test_id("register")).not_to_contain_text("Internal ranker")
    expect(page.get_by_test_id("csv")).to_have_attribute("href", "/api/v1/public/ai-systems.csv")
    shot(page, "aisystems-09-public-register")

    page.get_by_label("Risk level").select_option("high")
    page.get_by_role("button", name="Filter").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Traffic cameras")
    expect(page.get_by_test_id("csv")).to_have_attribute("href", "/api/v1/public/ai-systems.csv?risk=high")
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Operator BIN").fill(tenant_a.bin)
    page.get_by_role("button", name="Filter").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Tariff bot")
    page.get_by_label("Operator BIN").fill("12")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#r-error")).to_have_text("A BIN is 12 digits.")
    page.goto(f"{server.url}/register?q=traffic")
    expect(cards).to_have_count(1)
    cards.first.get_by_role("link", name="Traffic cameras").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Traffic cameras")
    expect(page.get_by_test_id("risk-level")).to_have_text("High risk")
    expect(page.locator("main")).to_contain_text(tenant_b.bin)
    shot(page, "aisystems-10-public-system")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/register")
    shot(page, "aisystems-11-public-register-390")


@pytest.mark.browser
def test_the_law_renders_in_kazakh_russian_and_english(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/law")
    expect(page.get_by_role("heading", level=1)).to_have_text("The law as code")
    rule = page.locator('[data-rule="ai.risk.high"]')
    expect(rule.get_by_role("heading", level=3)).to_have_text("High-risk system")
    expect(rule).to_contain_text("L-AI-RISK")
    expect(rule.locator(".cel")).to_contain_text("failure.impact in")
    expect(page.locator('[data-pack="kz.stricter-proposals"] [data-testid="not-yet-law"]')).to_have_text("Not yet law")
    expect(page.locator('[data-pack="kz.ai-law"] [data-testid="not-yet-law"]')).to_have_count(0)
    english = rule.get_by_role("heading", level=3).text_content()
    shot(page, "aisystems-12-law-en")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Право как код")
    russian = rule.get_by_role("heading", level=3).text_content()
    page.get_by_role("button", name="Қазақша").click()
    expect(page.locator("html")).to_have_attribute("lang", "kk")
    expect(page.get_by_role("heading", level=1)).to_have_text("Құқық код ретінде")
    kazakh = rule.get_by_role("heading", level=3).text_content()
    assert len({english, russian, kazakh}) == 3
    assert re.search("[а-яА-Я]", russian) and re.search("[әғқңөұүһі]", kazakh.lower())
    shot(page, "aisystems-13-law-kk")


@pytest.mark.browser
def test_the_maturity_page_shows_the_score_the_formula_and_a_trend(page: Any, server: LiveServer,
                                                                   platform: Platform, tenant_a: Tenant) -> None:
    register(platform, tenant_a, "tariff-bot")
    register(platform, tenant_a, "half-answered", **{"failure__impact": None})
    governance = governance_for(platform)
    with platform.db.transaction(tenant_a.org_id) as session:
        view = governance.snapshot_maturity(session)
        # The systems are new, so earlier days have nothing to judge: the trend's earlier points are stored as
        # the daily job would have stored them (no service writes a past day's value with data).
        for days, score in ((40, 35.0), (20, 52.5)):
            session.add(MaturitySnapshot(organization_id=tenant_a.org_id, computed_on=view.computed_on
                                         - timedelta(days=days), score=score, formula_version=view.formula_version,
                                         breakdown=view.breakdown()))
    as_admin(page, server, tenant_a)
    page.goto(f"{server.url}/ai-systems/maturity")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Maturity index")
    with platform.db.reader(tenant_a.org_id) as session:
        view = governance.maturity(session)
    expect(page.get_by_test_id("score")).to_contain_text(f"{view.score:.1f}")
    classified = page.get_by_test_id("breakdown").locator("tbody tr").first
    expect(classified).to_be_visible()
    expect(page.get_by_test_id("formula")).to_contain_text("score = round(100")
    chart = page.get_by_test_id("trend-chart")
    expect(chart.locator("circle.chart-point")).to_have_count(3)
    expect(chart.locator("polyline.chart-line")).to_have_count(1)
    expect(chart.locator("circle.chart-point").first.locator("title")).to_have_text(
        f"{(view.computed_on - timedelta(days=40)).isoformat()}: 35.0")
    page.get_by_role("button", name="Record today's value for the trend").click()
    expect(page.get_by_test_id("notice")).to_have_text("Today's maturity index was recorded.")
    expect(chart.locator("circle.chart-point")).to_have_count(3)  # today's value replaced, not added
    shot(page, "aisystems-14-maturity")


@pytest.mark.browser
def test_a_sandbox_application_is_sent_and_approved(page: Any, server: LiveServer, platform: Platform,
                                                    tenant_a: Tenant, tenant_b: Tenant) -> None:
    register(platform, tenant_a, "grid", name="Grid balancer", failure__impact=HIGH_IMPACT)
    as_admin(page, server, tenant_a)
    page.goto(f"{server.url}/ai-systems/sandbox")
    form = page.get_by_test_id("apply-form")
    form.get_by_role("button", name="Send the application").click()
    expect(page.locator("#f-title-error")).to_have_text("This field is required.")
    form = page.get_by_test_id("apply-form")
    form.get_by_label("Title").fill("Grid pilot")
    form.get_by_label("What you want to test, and how risks are contained").fill("Three substations for a month.")
    form.get_by_label("Grid balancer").check()
    form.locator('input[name="relaxations"][value="ai.high.audit"]').check()
    form.get_by_role("button", name="Send the application").click()
    expect(page.get_by_test_id("notice")).to_have_text("The sandbox application was sent to the regulator.")
    expect(page.get_by_test_id("applications").get_by_test_id("sandbox-status")).to_have_text("Submitted")
    page.get_by_role("button", name="Log out").click()

    make_authority(platform, tenant_b)  # the authorized body's regulator decides
    _, username, password = tenant_b.users["regulator"]
    log_in(page, server, username, password)
    page.goto(f"{server.url}/ai-systems/regulator")
    app = page.get_by_test_id("sandbox-applications").locator("[data-application]").first
    expect(app.locator("[data-approve-only]")).to_be_hidden()
    app.get_by_label("Approve").check()
    expect(app.locator("[data-approve-only]")).to_be_visible()
    today = datetime.now(ALMATY).date()
    app.get_by_label("Ends on (at most 24 months)").fill((today + timedelta(days=900)).isoformat())
    app.get_by_label("Starts on").fill((today + timedelta(days=1)).isoformat())
    app.get_by_role("button", name="Decide").click()
    app = page.get_by_test_id("sandbox-applications").locator("[data-application]").first
    expect(app.locator(".field-error")).to_contain_text("at most 24 months")
    app.get_by_label("Ends on (at most 24 months)").fill((today + timedelta(days=180)).isoformat())
    app.get_by_role("button", name="Decide").click()
    expect(page.get_by_test_id("notice")).to_have_text("The sandbox application was decided.")
    expect(page.get_by_test_id("decided")).to_contain_text("Approved")


# --- plain HTTP: access and CSRF ----------------------------------------------------------------------------


def test_operator_pages_need_a_login_and_the_right_role(server: LiveServer, platform: Platform,
                                                        tenant_a: Tenant) -> None:
    system_id = register(platform, tenant_a, "tariff-bot", public=True)
    with browser_client(server, **{"Accept-Language": "en"}) as anonymous:
        assert anonymous.get("/ai-systems").status_code == 303
        assert anonymous.get(f"/ai-systems/{system_id}").headers["location"].startswith("/login")
        assert anonymous.get("/register").status_code == 200
        assert anonymous.get("/register/trusted").status_code == 200
        assert anonymous.get("/law").status_code == 200
        assert anonymous.get("/register/KZ-AI-2026-999999").status_code == 404
        assert anonymous.get("/register/not a number").status_code == 404
    _, username, password = tenant_a.users["reviewer"]
    with browser_client(server, **{"Accept-Language": "en"}) as reviewer:
        http_log_in(reviewer, username, password)
        page = reviewer.get(f"/ai-systems/{system_id}")
        assert page.status_code == 200 and "Edit the questionnaire" not in page.text  # read-only
        assert reviewer.get("/ai-systems/new").status_code == 403
        token = csrf_from(page.text)
        r = reviewer.post(f"/ai-systems/{system_id}/edit", data={"csrf_token": token, "system.stage": "pilot"})
        assert r.status_code == 403
        assert reviewer.get("/ai-systems/regulator").status_code == 403
    _, username, password = tenant_a.users["dpo"]
    with browser_client(server, **{"Accept-Language": "en"}) as dpo:
        http_log_in(dpo, username, password)
        r = dpo.post(f"/ai-systems/{system_id}/edit", data={"system.stage": "pilot", "csrf_token": "wrong" * 8})
        assert r.status_code == 403
        with platform.db.reader(tenant_a.org_id) as session:
            assert register_for(platform).system(session, system_id).profile_version == 1  # nothing changed
        page = dpo.get(f"/ai-systems/{system_id}/edit")
        assert page.status_code == 200
        form = {"csrf_token": csrf_from(page.text), "expected_version": "1", **{
            k: ("yes" if v is True else "no" if v is False else v) for k, v in BASE_FACTS.items()}}
        form["system.stage"] = "pilot"
        r = dpo.post(f"/ai-systems/{system_id}/edit", data=form)
        assert r.status_code == 303 and r.headers["location"] == f"/ai-systems/{system_id}?done=updated"
        with platform.db.reader(tenant_a.org_id) as session:
            record = register_for(platform).system(session, system_id)
        assert record.profile_version == 2 and record.facts["system.stage"] == "pilot"
        assert record.facts["users.vulnerable_groups"] == ["none"]


def test_another_organizations_system_is_not_found(server: LiveServer, platform: Platform, tenant_a: Tenant,
                                                   tenant_b: Tenant) -> None:
    system_id = register(platform, tenant_a, "tariff-bot")
    _, username, password = tenant_b.users["admin"]
    with browser_client(server, **{"Accept-Language": "en"}) as intruder:
        http_log_in(intruder, username, password)
        assert intruder.get(f"/ai-systems/{system_id}").status_code == 404
        assert intruder.get(f"/ai-systems/{system_id}/edit").status_code == 404
        page = intruder.get("/ai-systems")
        assert "tariff-bot" not in page.text
        r = intruder.post(f"/ai-systems/{system_id}/obligations/1/met",
                          data={"csrf_token": csrf_from(page.text), "evidence": "x"})
        assert r.status_code == 404


def test_a_system_known_only_from_oversight_gets_its_questionnaire(server: LiveServer, platform: Platform,
                                                                   tenant_a: Tenant) -> None:
    from qorgau.oversight.service import oversight_for

    with platform.db.transaction(tenant_a.org_id) as session:
        view, _ = oversight_for(platform).register_system(session, code="scoring", name="Credit scoring",
                                                          risk_class="high", autonomy="medium", actor="test")
    _, username, password = tenant_a.users["admin"]
    with browser_client(server, **{"Accept-Language": "en"}) as admin:
        http_log_in(admin, username, password)
        assert "No questionnaire yet" in admin.get("/ai-systems").text
        page = admin.get(f"/ai-systems/{view.id}/edit")
        assert page.status_code == 200
        form = {"csrf_token": csrf_from(page.text), "expected_version": "", **{
            k: ("yes" if v is True else "no" if v is False else v) for k, v in BASE_FACTS.items()}}
        form["failure.impact"] = HIGH_IMPACT
        r = admin.post(f"/ai-systems/{view.id}/edit", data=form)
        assert r.status_code == 303, r.text[:300]
        page = admin.get(r.headers["location"])
    assert 'data-risk="high"' in page.text and "KZ-AI-" in page.text
    with platform.db.reader(tenant_a.org_id) as session:
        record = register_for(platform).system(session, view.id)
    assert record.classified_by.startswith("rules:") and record.profile_version == 1


def test_a_regulator_cannot_decide_on_its_own_organizations_system(server: LiveServer, platform: Platform,
                                                                   tenant_a: Tenant) -> None:
    system_id = register(platform, tenant_a, "grid", failure__impact=HIGH_IMPACT)
    governance = governance_for(platform)
    admin = f"user:{tenant_a.users['admin'][0]}"
    with platform.db.transaction(tenant_a.org_id) as session:
        audit = governance.record_audit(session, system_id, auditor="KZ Audit LLP", audited_on=datetime.now(ALMATY)
                                        .date() - timedelta(days=3), covers_training_data=True,
                                        prohibited_functionality_found=False, result="passed", actor=admin)
        entry = governance.request_trusted(session, system_id, sector="energy", audit_id=audit.id, actor=admin)
    make_authority(platform, tenant_a)  # even the authorized body's own systems are not its to decide
    _, username, password = tenant_a.users["regulator"]
    with browser_client(server, **{"Accept-Language": "en"}) as regulator:
        http_log_in(regulator, username, password)
        page = regulator.get("/ai-systems/regulator")
        assert page.status_code == 200 and f'data-entry="{entry.id}"' in page.text
        r = regulator.post(f"/ai-systems/regulator/trusted/{entry.id}",
                           data={"csrf_token": csrf_from(page.text), "decision": "include"})
        assert r.status_code == 403
        assert "cannot decide on its own systems" in r.text
        r = regulator.post(f"/ai-systems/regulator/trusted/{entry.id}", data={"decision": "include"})
        assert r.status_code == 403  # no CSRF token
    with platform.db.reader(tenant_a.org_id) as session:
        assert [e.status for e in governance.trusted_requests(session)] == ["requested"]
