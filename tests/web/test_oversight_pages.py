"""The oversight pages over real HTTP: the review queue, a decision, objections, reviewer statistics and the
citizen's "Decisions about me".

Who may see what, a reviewer's action recorded with its time spent, a stale form answered with who decided
instead of an error page, re-identification only with a purpose (and audited), an objection decided by someone
who took no part in the decision, a citizen who sees only decisions about them, and the pages in kk/ru/en.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from qorgau.consent.citizens import citizens_for
from qorgau.consent.service import SubjectRef, consent_for
from qorgau.core import audit
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number
from qorgau.oversight.service import Factor, OversightService, Submission, oversight_for

from .conftest import browser_client, csrf_from, log_in

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

IIN = synthetic_kz_number("8807214", 3131)
STRANGER_IIN = synthetic_kz_number("9502125", 4141)
ME = SubjectRef(identifier_type="KZ_IIN", identifier=IIN)
STRANGER = SubjectRef(identifier_type="KZ_IIN", identifier=STRANGER_IIN)
VERSION = re.compile(r'name="expected_version" value="(\d+)"')
FACTORS = [Factor("monthly_income", -0.62, "Monthly income", "below 150 000 KZT"),
           Factor("credit_history", 0.31, "Credit history", "no late payments"),
           Factor("existing_loans", -0.12, "Existing loans")]


@pytest.fixture
def oversight(platform: Platform) -> OversightService:
    return oversight_for(platform)


@contextlib.contextmanager
def signed_in(server: LiveServer, tenant: Tenant, role: str, lang: str = "en") -> Iterator[httpx.Client]:
    _, username, password = tenant.users[role]
    with browser_client(server, **{"Accept-Language": lang}) as client:
        assert log_in(client, username, password).status_code == 303
        yield client


def register(oversight: OversightService, platform: Platform, org_id: int, code: str = "scoring-v2",
             risk_class: str = "high", autonomy: str = "medium") -> None:
    with platform.db.transaction(org_id) as session:
        oversight.register_system(session, code=code, name=f"Scoring {code}", risk_class=risk_class,
                                  autonomy=autonomy, actor="test")


def consent_to(platform: Platform, org_id: int, subject: SubjectRef, purpose: str = "credit.scoring") -> None:
    with platform.db.transaction(org_id) as session:
        consent_for(platform).give(
            session, subject, purpose=purpose, data_categories=["credit_history"], valid_until=None,
            third_party_transfer=False, counterparties=[], cross_border=False, countries=[], public_sources=False,
            other=None, channel="written", evidence_ref=None, evidence_sha256=None, actor="test")


def submit(oversight: OversightService, platform: Platform, org_id: int, key: str, *,
           subject: SubjectRef = ME, decision_type: str = "loan", outcome: Any = "decline",
           system: str = "scoring-v2", confidence: float | None = 0.82) -> int:
    with platform.db.transaction(org_id) as session:
        return oversight.submit(session, Submission(
            system=system, idempotency_key=key, subject=subject, decision_type=decision_type,
            proposed_outcome=outcome, factors=FACTORS, model_version="credit-2026.11", confidence=confidence),
            actor="test").decision.id


def verify_citizen(platform: Platform, tenant: Tenant, iin: str = IIN) -> None:
    user_id = tenant.users["citizen"][0]
    with platform.db.transaction() as session:
        code = citizens_for(platform).issue_enrollment(session, iin, actor="test").code
    citizens_for(platform).verify(user_id, code, actor=f"user:{user_id}")


@pytest.fixture
def world(platform: Platform, oversight: OversightService, tenant_a: Tenant, tenant_b: Tenant) -> dict[str, Any]:
    """Two loan decisions about me at operator A (pending), one about a stranger at operator B."""
    register(oversight, platform, tenant_a.org_id)
    register(oversight, platform, tenant_b.org_id)
    consent_to(platform, tenant_a.org_id, ME)
    consent_to(platform, tenant_b.org_id, STRANGER)
    first = submit(oversight, platform, tenant_a.org_id, "loan-1")
    second = submit(oversight, platform, tenant_a.org_id, "loan-2", outcome="approve", confidence=0.55)
    theirs = submit(oversight, platform, tenant_b.org_id, "loan-3", subject=STRANGER)
    return {"first": first, "second": second, "theirs": theirs}


def act(client: httpx.Client, decision_id: int, action: str, rationale: str = "", outcome: str = "",
        version: str | None = None) -> httpx.Response:
    page = client.get(f"/decisions/{decision_id}")
    assert page.status_code == 200, page.status_code
    match = VERSION.search(page.text)
    assert match, "no review form on the page"
    return client.post(f"/decisions/{decision_id}/review", data={
        "csrf_token": csrf_from(page.text), "action": action, "rationale": rationale, "outcome": outcome,
        "expected_version": version or match.group(1)})


# --- who may see what ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/decisions", "/decisions/1", "/decisions/reviewers", "/decisions/objections/1",
                                  "/me/decisions/1/1", "/me/decisions/1/1/object"])
def test_oversight_pages_ask_for_a_login(server: LiveServer, path: str) -> None:
    with browser_client(server) as client:
        response = client.get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_only_reviewers_work_the_queue(server: LiveServer, tenant_a: Tenant, world: dict[str, Any]) -> None:
    decision = world["first"]
    for role in ("citizen", "regulator"):
        with signed_in(server, tenant_a, role) as client:
            page = client.get("/decisions")
            assert page.status_code == 200 and 'data-testid="queue"' not in page.text
            assert "The review queue is shown to reviewers" in page.text and "L-PD-AUTO" in page.text
            assert client.get(f"/decisions/{decision}").status_code == 403
            assert client.get("/decisions/objections/1").status_code == 403
    with signed_in(server, tenant_a, "regulator") as client:
        assert client.get("/decisions/reviewers").status_code == 200  # the regulator reads the evidence
    with signed_in(server, tenant_a, "citizen") as client:
        assert client.get("/decisions/reviewers").status_code == 403
    for role in ("reviewer", "dpo", "admin"):
        with signed_in(server, tenant_a, role) as client:
            page = client.get("/decisions")
            assert page.status_code == 200 and f'data-decision="{decision}"' in page.text, role


def test_the_queue_shows_deadlines_filters_and_only_this_operator_s_decisions(
        server: LiveServer, tenant_a: Tenant, world: dict[str, Any]) -> None:
    with signed_in(server, tenant_a, "reviewer") as client:
        page = client.get("/decisions")
        assert page.headers["cache-control"] == "no-store"
        text = page.text
        assert f'data-decision="{world["first"]}"' in text and f'data-decision="{world["second"]}"' in text
        assert f'data-decision="{world["theirs"]}"' not in text  # operator B's decision
        assert 'data-testid="count-queue">2<' in text and "Loan declined" in text and "82%" in text
        assert IIN not in text and "ps_" in text  # pseudonyms, never the identifier
        assert 'data-testid="count-escalated"' not in text  # the escalated queue is for senior reviewers
        assert "Credit limit" in client.get("/decisions", params={"type": "credit_limit"}).text
        empty = client.get("/decisions", params={"type": "credit_limit"})
        assert 'data-testid="queue-empty"' in empty.text
        assert 'data-testid="queue-empty"' in client.get("/decisions", params={"overdue": "1"}).text
        garbage = client.get("/decisions", params={"cursor": "not-a-cursor", "system": "no-such-system"})
        assert garbage.status_code == 200 and "That page of the queue no longer exists" in garbage.text
    with signed_in(server, tenant_a, "dpo") as client:
        assert 'data-testid="count-escalated">0<' in client.get("/decisions").text


def test_the_queue_pages_with_the_service_s_cursor(server: LiveServer, platform: Platform, oversight: OversightService,
                                                   tenant_a: Tenant, world: dict[str, Any]) -> None:
    for n in range(30):
        submit(oversight, platform, tenant_a.org_id, f"bulk-{n}")
    with signed_in(server, tenant_a, "reviewer") as client:
        first = client.get("/decisions").text
        link = re.search(r'href="(/decisions\?[^"]*cursor=[^"]+)"', first)
        assert link and first.count("data-row-link") == 25
        second = client.get(link.group(1).replace("&amp;", "&")).text
    ids = lambda html: set(re.findall(r'data-decision="(\d+)"', html))  # noqa: E731
    assert len(ids(second)) == 32 - 25 and not ids(first) & ids(second)


# --- a decision --------------------------------------------------------------------------------------


def test_a_reviewer_opens_a_decision_and_approves_it_with_the_time_spent_recorded(
        server: LiveServer, platform: Platform, oversight: OversightService, tenant_a: Tenant,
        world: dict[str, Any]) -> None:
    decision = world["first"]
    with signed_in(server, tenant_a, "reviewer") as client:
        page = client.get(f"/decisions/{decision}")
        text = page.text
        assert page.status_code == 200 and "Model output" in text and "Loan declined" in text
        assert "credit-2026.11" in text and "Scoring scoring-v2" in text and "High risk" in text
        assert 'data-factor="monthly_income"' in text and "-0.62" in text and "Monthly income" in text
        assert '<svg class="factor-bar-svg"' in text and "<kbd>a</kbd>" in text
        assert IIN not in text
        assert f"#{world['second']}" in text  # the subject's previous decision
        missing = act(client, decision, "approve")  # high risk: approving needs a rationale
        assert missing.status_code == 422 and "Write a rationale" in missing.text
        done = act(client, decision, "approve", rationale="Income checked against the statement.")
        assert done.status_code == 303 and done.headers["location"] == f"/decisions?done={decision}"
        assert f"Your review of decision #{decision} was recorded." in client.get(done.headers["location"]).text
    with platform.db.reader(tenant_a.org_id) as session:
        view = oversight.get(session, decision)
        reviews = oversight.reviews(session, decision)
    assert view.status == "approved" and view.final_outcome == "decline"
    assert reviews[-1].action == "approve" and reviews[-1].seconds_spent is not None  # page open → action


def test_two_reviewers_at_once_the_second_sees_who_decided(server: LiveServer, platform: Platform,
                                                          oversight: OversightService, tenant_a: Tenant,
                                                          world: dict[str, Any]) -> None:
    decision = world["first"]
    with signed_in(server, tenant_a, "reviewer") as first, signed_in(server, tenant_a, "dpo") as second:
        mine = first.get(f"/decisions/{decision}")
        theirs = second.get(f"/decisions/{decision}")
        version = VERSION.search(theirs.text).group(1)  # type: ignore[union-attr]
        won = first.post(f"/decisions/{decision}/review", data={
            "csrf_token": csrf_from(mine.text), "action": "reject", "rationale": "Income is sufficient.",
            "expected_version": VERSION.search(mine.text).group(1)})  # type: ignore[union-attr]
        assert won.status_code == 303
        lost = second.post(f"/decisions/{decision}/review", data={
            "csrf_token": csrf_from(theirs.text), "action": "approve", "rationale": "Looks right.",
            "expected_version": version})
    assert lost.status_code == 409 and lost.headers["content-type"].startswith("text/html")
    assert "Another reviewer has already acted on this decision" in lost.text
    assert "Rejected by a reviewer" in lost.text and f"user:{tenant_a.users['reviewer'][0]}" in lost.text
    assert 'data-testid="review-form"' not in lost.text  # decided: nothing left to do
    with platform.db.reader(tenant_a.org_id) as session:
        assert oversight.get(session, decision).status == "rejected"
        assert [r.action for r in oversight.reviews(session, decision)] == ["reject"]


def test_amending_takes_an_outcome_of_the_type_s_schema_and_a_rationale(
        server: LiveServer, platform: Platform, oversight: OversightService, tenant_a: Tenant,
        world: dict[str, Any]) -> None:
    decision = world["first"]
    with signed_in(server, tenant_a, "reviewer") as client:
        bad = act(client, decision, "amend", rationale="Wrong outcome.", outcome="maybe")
        assert bad.status_code == 422 and "Enter an outcome the decision type allows." in bad.text
        assert 'value="maybe"' not in bad.text or "selected" not in bad.text
        no_reason = act(client, decision, "reject")
        assert no_reason.status_code == 422 and "Write a rationale" in no_reason.text
        assert act(client, decision, "amend", rationale="Income was misread.", outcome="approve").status_code == 303
        forged = client.post(f"/decisions/{decision}/review", data={"action": "approve", "expected_version": "1"})
        assert forged.status_code == 403  # no CSRF token
    with platform.db.reader(tenant_a.org_id) as session:
        view = oversight.get(session, decision)
    assert view.status == "amended" and view.final_outcome == "approve"


def test_escalated_decisions_are_for_senior_reviewers(server: LiveServer, tenant_a: Tenant,
                                                      world: dict[str, Any]) -> None:
    decision = world["first"]
    with signed_in(server, tenant_a, "reviewer") as client:
        assert act(client, decision, "escalate", rationale="Unusual income pattern.").status_code == 303
        assert f'data-decision="{decision}"' not in client.get("/decisions").text
        page = client.get(f"/decisions/{decision}")
        assert "only a senior reviewer" in page.text and 'data-testid="review-form"' not in page.text
    with signed_in(server, tenant_a, "dpo") as client:
        queue = client.get("/decisions", params={"level": "senior"}).text
        assert f'data-decision="{decision}"' in queue and 'data-testid="count-escalated">1<' in queue
        assert act(client, decision, "reject", rationale="Confirmed: insufficient income.").status_code == 303


def test_re_identification_needs_a_vault_role_and_a_purpose_and_is_audited(
        server: LiveServer, platform: Platform, tenant_a: Tenant, world: dict[str, Any]) -> None:
    decision = world["first"]

    def reidentifications() -> int:
        with platform.db.reader(tenant_a.org_id) as session:
            return sum(e.action == "vault.detokenize" for e in audit.list_entries(session, limit=500))

    with signed_in(server, tenant_a, "reviewer") as client:
        page = client.get(f"/decisions/{decision}")
        assert 'data-testid="reidentify"' not in page.text
        denied = client.post(f"/decisions/{decision}/reidentify",
                             data={"csrf_token": csrf_from(page.text), "purpose": "decision-review"})
        assert denied.status_code == 403 and IIN not in denied.text
    with signed_in(server, tenant_a, "dpo") as client:
        page = client.get(f"/decisions/{decision}")
        assert 'data-testid="reidentify"' in page.text and IIN not in page.text
        token = csrf_from(page.text)
        no_reason = client.post(f"/decisions/{decision}/reidentify", data={"csrf_token": token, "purpose": ""})
        assert no_reason.status_code == 422 and "Choose why you re-identify" in no_reason.text
        free_text = client.post(f"/decisions/{decision}/reidentify",
                                data={"csrf_token": token, "purpose": "because I want to"})
        assert free_text.status_code == 422 and IIN not in free_text.text
        assert reidentifications() == 0
        assert client.post(f"/decisions/{decision}/reidentify",
                           data={"purpose": "decision-review"}).status_code == 403  # no CSRF token
        shown = client.post(f"/decisions/{decision}/reidentify",
                            data={"csrf_token": token, "purpose": "decision-review"})
        assert shown.status_code == 200 and IIN in shown.text and 'data-testid="identity"' in shown.text
        assert shown.headers["cache-control"] == "no-store"
        assert IIN not in client.get(f"/decisions/{decision}").text  # shown once, not remembered
    assert reidentifications() == 1
    with platform.db.reader(tenant_a.org_id) as session:
        entry = next(e for e in audit.list_entries(session, limit=500) if e.action == "vault.detokenize")
    assert entry.details["purpose"] == "decision-review" and IIN not in str(entry.details)


def test_another_operator_s_decision_is_not_found(server: LiveServer, tenant_a: Tenant,
                                                 world: dict[str, Any]) -> None:
    theirs = world["theirs"]
    with signed_in(server, tenant_a, "dpo") as client:
        token = csrf_from(client.get("/decisions").text)
        assert client.get(f"/decisions/{theirs}").status_code == 404
        assert client.post(f"/decisions/{theirs}/review", data={
            "csrf_token": token, "action": "approve", "rationale": "x", "expected_version": "1"}).status_code == 404
        assert client.post(f"/decisions/{theirs}/reidentify", data={
            "csrf_token": token, "purpose": "decision-review"}).status_code == 404
        for path in ("/decisions/abc", "/decisions/-1", "/decisions/99999999999999999999", "/decisions/objections/x"):
            response = client.get(path)
            assert 400 <= response.status_code < 500 and response.headers["content-type"].startswith("text/html")


# --- objections and the citizen's portal -------------------------------------------------------------------


def test_a_citizen_sees_only_decisions_about_them_explained_in_their_language(
        server: LiveServer, platform: Platform, tenant_a: Tenant, tenant_b: Tenant, world: dict[str, Any]) -> None:
    verify_citizen(platform, tenant_a)
    with signed_in(server, tenant_a, "citizen") as client:
        page = client.get("/me")
        assert page.status_code == 200 and 'data-testid="my-decisions"' in page.text
        assert f'data-decision="{world["first"]}"' in page.text and f'data-decision="{world["second"]}"' in page.text
        assert f'data-decision="{world["theirs"]}"' not in page.text and IIN not in page.text
        detail = client.get(f"/me/decisions/{tenant_a.org_id}/{world['first']}")
        assert detail.status_code == 200 and "Monthly income" in detail.text
        assert "strongly weighed against the outcome" in detail.text and "3 working days" in detail.text
        assert "Object / ask for human review" not in detail.text  # still under review: nothing to object to yet
        assert client.get(f"/me/decisions/{tenant_b.org_id}/{world['theirs']}").status_code == 404
        assert client.get(f"/me/decisions/{tenant_b.org_id}/{world['first']}").status_code == 404  # wrong operator
        assert client.get(f"/me/decisions/999999/{world['first']}").status_code == 404
    with signed_in(server, tenant_a, "citizen", "kk") as client:
        kazakh = client.get(f"/me/decisions/{tenant_a.org_id}/{world['first']}").text
        assert "Несие беру туралы шешім" in kazakh and "Сіздің құқықтарыңыз" in kazakh
    with signed_in(server, tenant_a, "reviewer") as client:
        assert client.get(f"/me/decisions/{tenant_a.org_id}/{world['first']}").status_code == 403


def test_a_citizen_objects_and_a_different_reviewer_decides_within_three_working_days(
        server: LiveServer, platform: Platform, oversight: OversightService, tenant_a: Tenant,
        world: dict[str, Any]) -> None:
    decision = world["first"]
    verify_citizen(platform, tenant_a)
    with signed_in(server, tenant_a, "reviewer") as reviewer:
        assert act(reviewer, decision, "approve", rationale="Checked the income statement.").status_code == 303
    base = f"/me/decisions/{tenant_a.org_id}/{decision}"
    with signed_in(server, tenant_a, "citizen") as citizen:
        detail = citizen.get(base)
        assert "Object / ask for human review" in detail.text
        confirm = citizen.get(f"{base}/object")
        assert confirm.status_code == 200 and "Yes, send my objection" in confirm.text
        token = csrf_from(confirm.text)
        assert citizen.post(f"{base}/object", data={"text": "My income is higher."}).status_code == 403  # no CSRF
        not_confirmed = citizen.post(f"{base}/object", data={"csrf_token": token, "text": "x"})
        assert not_confirmed.status_code == 303 and not_confirmed.headers["location"] == f"{base}/object"
        done = citizen.post(f"{base}/object", data={"csrf_token": token, "confirm": "yes",
                                                    "text": "My income is higher than the model thinks."})
        assert done.status_code == 303 and done.headers["location"] == f"{base}?notice=objected"
        again = citizen.post(f"{base}/object", data={"csrf_token": token, "confirm": "yes", "text": ""})
        assert again.status_code == 303  # a double submit: the first objection stands
        page = citizen.get(done.headers["location"]).text
        assert "Your objection was sent." in page and 'data-testid="objection"' in page
    with platform.db.reader(tenant_a.org_id) as session:
        objections = oversight.objections(session, decision_id=decision)
    assert len(objections) == 1 and objections[0].channel == "portal"
    objection = objections[0]
    assert objection.due_on.isoformat() in page
    with signed_in(server, tenant_a, "reviewer") as reviewer:
        queue = reviewer.get("/decisions").text
        assert f'data-objection="{objection.id}"' in queue and objection.due_on.isoformat() in queue
        own = reviewer.get(f"/decisions/objections/{objection.id}")
        assert own.status_code == 200 and 'data-testid="own-review"' in own.text
        assert 'data-testid="objection-form"' not in own.text
        refused = reviewer.post(f"/decisions/objections/{objection.id}/decide", data={
            "csrf_token": csrf_from(own.text), "action": "overturn", "rationale": "I changed my mind."})
        assert refused.status_code == 403 and "different reviewer" in refused.text
    with signed_in(server, tenant_a, "dpo") as dpo:
        page = dpo.get(f"/decisions/objections/{objection.id}")
        assert "My income is higher than the model thinks." in page.text  # unsealed for the one who decides
        token = csrf_from(page.text)
        empty = dpo.post(f"/decisions/objections/{objection.id}/decide",
                         data={"csrf_token": token, "action": "uphold", "rationale": ""})
        assert empty.status_code == 422 and "Write a rationale" in empty.text
        ruled = dpo.post(f"/decisions/objections/{objection.id}/decide",
                         data={"csrf_token": token, "action": "overturn", "rationale": "Income verified.",
                               "outcome": "approve"})
        assert ruled.status_code == 200 and "The objection was decided." in ruled.text
        twice = dpo.post(f"/decisions/objections/{objection.id}/decide",
                         data={"csrf_token": token, "action": "uphold", "rationale": "Again."})
        assert twice.status_code == 409 and "This objection has already been decided." in twice.text
        assert 'data-testid="objection-form"' not in twice.text
    with signed_in(server, tenant_a, "citizen") as citizen:
        final = citizen.get(base).text
    assert "Overturned: the decision was changed" in final and "Loan approved" in final
    with platform.db.reader(tenant_a.org_id) as session:
        assert oversight.get(session, decision).final_outcome == "approve"


# --- the evidence that review is meaningful ----------------------------------------------------------------


def test_rubber_stamping_is_flagged_on_the_reviewer_dashboard(
        server: LiveServer, platform: Platform, oversight: OversightService, tenant_a: Tenant) -> None:
    from qorgau.core import auth

    register(oversight, platform, tenant_a.org_id, code="quick", risk_class="medium", autonomy="medium")
    consent_to(platform, tenant_a.org_id, ME)
    ids = [submit(oversight, platform, tenant_a.org_id, f"q-{n}", system="quick") for n in range(20)]
    with platform.db.transaction(tenant_a.org_id) as session:
        user = auth.get_user(session, tenant_a.users["reviewer"][0])
        for decision in ids:  # open and approve at once: the rubber stamp
            view = oversight.open(session, decision, user=user)
            oversight.review(session, decision, user=user, action="approve", expected_version=view.version)
    with signed_in(server, tenant_a, "regulator") as client:
        page = client.get("/decisions/reviewers")
    assert page.status_code == 200 and 'data-testid="rubber-stamp"' in page.text
    assert 'data-testid="rubber-stamp-alert"' in page.text and "alpha-reviewer" in page.text
    assert "100%" in page.text and "Loan decision" in page.text
    with signed_in(server, tenant_a, "admin", "ru") as client:
        assert "Возможно формальное утверждение" in client.get("/decisions/reviewers", params={"days": "30"}).text


# --- languages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang, heading, queue", [
    ("kk", "№{id} шешім", "Тексеру кезегі"), ("ru", "Решение № {id}", "Очередь на проверку"),
    ("en", "Decision #{id}", "Review queue"),
])
def test_the_pages_speak_kazakh_russian_and_english(server: LiveServer, tenant_a: Tenant, world: dict[str, Any],
                                                    lang: str, heading: str, queue: str) -> None:
    decision = world["first"]
    with signed_in(server, tenant_a, "reviewer", lang) as client:
        page = client.get(f"/decisions/{decision}")
        assert f'<html lang="{lang}">' in page.text and heading.format(id=decision) in page.text
        assert queue in client.get("/decisions").text
