"""AI decisions over real HTTP (issue 6): an AI system submits → the decision waits → a person reviews → the
status shows it effective and the system's webhook learns it (signed). Bad input names the field; a
resubmitted idempotency key never makes a second decision; of two reviewers acting at once exactly one wins."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from conftest import LiveServer, Tenant
from consent.receiver import Receiver
from oversight.owned import oversight_objects, subject_iin
from qorgau.api.routes.oversight import DecisionOut, ExplanationOut, ObjectionOut
from qorgau.core import auth
from qorgau.core.platform import Platform


def person(platform: Platform, server: LiveServer, tenant: Tenant, role: str) -> httpx.Client:
    """A logged-in user of ``tenant`` with ``role`` (session cookie + CSRF token), as the web UI calls the API."""
    _, username, password = tenant.users[role]
    with platform.db.transaction() as s:
        cookie = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
        csrf = auth.resolve_session(s, cookie).csrf_token
    return httpx.Client(base_url=server.url, cookies={"qorgau_session": cookie},
                        headers={"X-CSRF-Token": csrf or ""}, timeout=30)


def machine(platform: Platform, server: LiveServer, tenant: Tenant, *roles: str) -> httpx.Client:
    """An API key of ``tenant`` holding ``roles`` (the AI service's own key)."""
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="AI service", roles=list(roles),
                                        actor="test")
    return server.client(secret)


def register(c: httpx.Client, code: str = "scoring-v2", *, risk: str = "high", autonomy: str = "medium",
             webhook_url: str | None = None) -> dict[str, Any]:
    r = c.post("/api/v1/ai-systems", json={"code": code, "name": "Credit scoring", "risk_class": risk,
                                           "autonomy": autonomy, "webhook_url": webhook_url})
    assert r.status_code == 201, r.text
    return r.json()


def legal_basis(c: httpx.Client, purpose: str = "credit.scoring") -> None:
    r = c.post("/api/v1/consent/legal-bases", json={"kind": "contract", "purpose": purpose,
                                                    "reference": "Loan agreement, art. 7"})
    assert r.status_code == 201, r.text


def proposal(serial: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "system": "scoring-v2", "subject": {"identifier_type": "KZ_IIN", "identifier": subject_iin(serial)},
        "decision_type": "credit_limit", "proposed_outcome": 500000,
        "factors": [{"code": "income", "weight": 0.6, "label": "Monthly income", "value": 450000},
                    {"code": "arrears", "weight": -0.3, "label": "Arrears in the last year"}],
        "model_version": "scoring-2.4.1", "confidence": 0.82, "input_ref": "s3://bank/applications/77"}
    body.update(overrides)
    return body


@pytest.fixture
def ready(platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> httpx.Client:
    """Tenant A with a high-risk AI system and a contract basis for credit scoring (automated processing is
    lawful, L-PD-AUTO), as an admin API key."""
    c = live_server.client(tenant_a.api_key)
    register(c)
    legal_basis(c)
    return c


def test_a_decision_takes_effect_only_after_a_person_approves_it(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> None:
    with Receiver() as receiver, live_server.client(tenant_a.api_key) as admin:
        created = register(admin, webhook_url=receiver.url)
        receiver.secret = created["webhook_secret"]
        assert receiver.secret and created["system"]["risk_class"] == "high"
        assert receiver.secret not in admin.get("/api/v1/ai-systems/scoring-v2").text
        legal_basis(admin)

        with machine(platform, live_server, tenant_a, "reviewer") as ai:
            r = ai.post("/api/v1/decisions", json=proposal(), headers={"Idempotency-Key": "application-77"})
            assert r.status_code == 201, r.text
            decision = r.json()
            assert r.headers["location"] == f"/api/v1/decisions/{decision['id']}"
            assert decision["status"] == "pending" and decision["path"] == "review"
            assert decision["effective"] is False and decision["final_outcome"] is None
            assert decision["basis"] == "legal_basis" or decision["legal_basis_id"]
            assert decision["subject_pseudonym"].startswith("ps_") and subject_iin(1) not in r.text
            assert decision["deadline_at"] and decision["version"] >= 1
            # polling: still pending
            assert ai.get(f"/api/v1/decisions/{decision['id']}").json()["status"] == "pending"

        with person(platform, live_server, tenant_a, "reviewer") as reviewer:
            queue = reviewer.get("/api/v1/decisions").json()
            assert [d["id"] for d in queue["items"]] == [decision["id"]]
            opened = reviewer.post(f"/api/v1/decisions/{decision['id']}/open")
            assert opened.status_code == 200, opened.text
            # a high-risk system's decision is approved with a written rationale
            r = reviewer.post(f"/api/v1/decisions/{decision['id']}/review",
                              json={"action": "approve", "expected_version": opened.json()["version"]})
            assert r.status_code == 422 and r.json()["error"]["field"] == "rationale"
            r = reviewer.post(f"/api/v1/decisions/{decision['id']}/review",
                              json={"action": "approve", "expected_version": opened.json()["version"],
                                    "rationale": "income confirmed by the salary statement"})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "approved" and r.json()["effective"] is True

        with live_server.client(tenant_a.api_key) as ai:
            final = ai.get(f"/api/v1/decisions/{decision['id']}").json()
            assert set(final) == set(DecisionOut.model_fields)  # the documented schema is the real shape
            assert final["status"] == "approved" and final["effective"] and final["final_outcome"] == 500000
            assert final["decided_by"] and final["effective_at"]
            assert ai.get("/api/v1/decisions").json()["items"] == []  # the queue is empty now
            reviews = ai.get(f"/api/v1/decisions/{decision['id']}/reviews").json()
            assert [(x["action"], x["actor"]) for x in reviews] == [("approve", f"user:{tenant_a.users['reviewer'][0]}")]
            assert reviews[0]["seconds_spent"] is not None and reviews[0]["seconds_spent"] >= 0

        # the AI system learns the outcome from a signed webhook (the server's own dispatcher delivers it)
        assert receiver.wait_for(lambda: len(receiver.received) >= 1, 30)
        got = receiver.received[0]
        assert got.signature_ok and got.event == "decision.decided" and got.body["topic"] == "decision.decided"
        assert got.body["decision"] == final  # the webhook carries exactly what polling shows
        assert subject_iin(1) not in str(got.body)
        assert len(receiver.received) == 1  # one message per final state


def test_a_resubmitted_idempotency_key_never_makes_a_second_decision(
        live_server: LiveServer, ready: httpx.Client) -> None:
    first = ready.post("/api/v1/decisions", json=proposal(idempotency_key="application-1"))
    assert first.status_code == 201, first.text
    again = ready.post("/api/v1/decisions", json=proposal(), headers={"Idempotency-Key": "application-1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = ready.post("/api/v1/decisions", json=proposal(proposed_outcome=900000, idempotency_key="application-1"))
    assert changed.status_code == 409 and changed.json()["error"]["field"] == "idempotency_key"
    both = ready.post("/api/v1/decisions", json=proposal(idempotency_key="a"), headers={"Idempotency-Key": "b"})
    assert both.status_code == 422 and both.json()["error"]["field"] == "idempotency_key"
    page = ready.get("/api/v1/decisions", params={"view": "all", "total": "true"}).json()
    assert [d["id"] for d in page["items"]] == [first.json()["id"]]


@pytest.mark.parametrize("override, field", [
    ({"system": "no-such-system"}, "system"),
    ({"subject": {"identifier_type": "KZ_IIN", "identifier": "850505400019"}}, "subject.identifier"),
    ({"subject": {}}, "subject"),
    ({"decision_type": "horoscope"}, "decision_type"),
    ({"factors": []}, "factors"),
    ({"factors": [{"code": "income", "weight": 1.5}]}, "factors.0.weight"),
    ({"factors": [{"code": "income", "weight": 0.0}, {"code": "age", "weight": 0.0}]}, "factors"),
    ({"factors": [{"code": "income", "weight": 0.5}, {"code": "income", "weight": 0.2}]}, "factors.1.code"),
    ({"factors": [{"code": "income", "weight": "heavy"}]}, "factors.0.weight"),
    ({"proposed_outcome": -5}, "proposed_outcome"),
    ({"proposed_outcome": "a lot"}, "proposed_outcome"),
    ({"proposed_outcome": "1e999"}, "proposed_outcome"),  # sent as the bare JSON number (parses to inf)
    ({"confidence": 1.5}, "confidence"),
    ({"model_version": None}, "model_version"),
    ({"favourite_colour": "blue"}, "favourite_colour"),
])
def test_bad_submissions_are_refused_naming_the_field_and_write_nothing(
        ready: httpx.Client, override: dict[str, Any], field: str) -> None:
    raw = json.dumps(proposal(**override))
    if override.get("proposed_outcome") == "1e999":
        raw = raw.replace('"1e999"', "1e999")
    r = ready.post("/api/v1/decisions", content=raw, headers={"Idempotency-Key": "bad-1",
                                                              "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 and r.status_code in (404, 422), r.text
    assert r.json()["error"]["field"] == field, r.text
    assert "850505400019" not in r.text and subject_iin(1) not in r.text
    assert ready.get("/api/v1/decisions", params={"view": "all"}).json()["items"] == []


def test_a_submission_needs_an_idempotency_key(ready: httpx.Client) -> None:
    r = ready.post("/api/v1/decisions", json=proposal())
    assert r.status_code == 422 and r.json()["error"]["field"] == "idempotency_key"


def test_two_reviewers_at_once_one_wins_the_other_gets_a_clear_conflict(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, ready: httpx.Client) -> None:
    decision = ready.post("/api/v1/decisions", json=proposal(idempotency_key="race")).json()
    first, second = person(platform, live_server, tenant_a, "reviewer"), person(platform, live_server, tenant_a, "dpo")
    for c in (first, second):
        assert c.post(f"/api/v1/decisions/{decision['id']}/open").status_code == 200
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def act(c: httpx.Client, action: str) -> None:
        body = {"action": action, "expected_version": decision["version"], "rationale": "checked the income data"}
        barrier.wait()
        answers.append(c.post(f"/api/v1/decisions/{decision['id']}/review", json=body))

    threads = [threading.Thread(target=act, args=(first, "approve")), threading.Thread(target=act, args=(second, "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    first.close()
    second.close()
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    loser = next(r for r in answers if r.status_code == 409).json()["error"]
    assert loser["code"] == "conflict" and loser["message"]
    winner = next(r for r in answers if r.status_code == 200).json()
    final = ready.get(f"/api/v1/decisions/{decision['id']}").json()
    assert final["status"] == winner["status"] in ("approved", "rejected")
    assert len(ready.get(f"/api/v1/decisions/{decision['id']}/reviews").json()) == 1


def test_reviews_are_made_by_people_with_a_reviewer_role(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, ready: httpx.Client) -> None:
    decision = ready.post("/api/v1/decisions", json=proposal(idempotency_key="who")).json()
    url = f"/api/v1/decisions/{decision['id']}/review"
    body = {"action": "approve", "expected_version": decision["version"], "rationale": "checked"}
    # an API key is not a person, even with every role
    r = ready.post(url, json=body)
    assert r.status_code == 403 and r.json()["error"]["field"] == "authorization"
    with person(platform, live_server, tenant_a, "regulator") as regulator:
        assert regulator.post(url, json=body).status_code == 403
        assert regulator.get(f"/api/v1/decisions/{decision['id']}").status_code == 200  # supervision reads
        assert regulator.post("/api/v1/decisions", json=proposal(idempotency_key="reg")).status_code == 403
    with person(platform, live_server, tenant_a, "citizen") as citizen:
        assert citizen.get(f"/api/v1/decisions/{decision['id']}").status_code == 403
    with machine(platform, live_server, tenant_a, "reviewer") as ai:
        assert ai.put("/api/v1/decision-types/credit_limit", json={"four_eyes": True}).status_code == 403
        assert ai.post("/api/v1/ai-systems", json={"code": "x", "name": "X", "risk_class": "minimal",
                                                   "autonomy": "low"}).status_code == 403
    with person(platform, live_server, tenant_a, "reviewer") as reviewer:
        stale = reviewer.post(url, json={**body, "expected_version": decision["version"] + 5})
        assert stale.status_code == 409
        no_reason = reviewer.post(url, json={"action": "reject", "expected_version": decision["version"]})
        assert no_reason.status_code == 422 and no_reason.json()["error"]["field"] == "rationale"
        bad_amend = reviewer.post(url, json={"action": "amend", "expected_version": decision["version"],
                                             "outcome": -1, "rationale": "too high"})
        assert bad_amend.status_code == 422 and bad_amend.json()["error"]["field"] == "outcome"
        amended = reviewer.post(url, json={"action": "amend", "expected_version": decision["version"],
                                           "outcome": 300000, "rationale": "income covers a smaller limit"})
        assert amended.status_code == 200, amended.text
        assert amended.json()["status"] == "amended" and amended.json()["final_outcome"] == 300000
        again = reviewer.post(url, json={"action": "approve", "expected_version": amended.json()["version"]})
        assert again.status_code == 409  # already decided


def test_four_eyes_needs_two_different_reviewers(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, ready: httpx.Client) -> None:
    r = ready.put("/api/v1/decision-types/credit_limit", json={"four_eyes": True, "review_hours": 8})
    assert r.status_code == 200, r.text
    assert r.json()["four_eyes"] is True and r.json()["source"] == "organization"
    listed = {t["code"]: t for t in ready.get("/api/v1/decision-types").json()}
    assert listed["credit_limit"]["four_eyes"] and listed["loan"]["four_eyes"] is False
    assert set(listed["loan"]["names"]) == {"kk", "ru", "en"}
    bad = ready.put("/api/v1/decision-types/credit_limit", json={"review_hours": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "review_hours"
    bad = ready.put("/api/v1/decision-types/credit_limit", json={"outcome_schema": {"type": "colour"}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "outcome_schema.type"

    decision = ready.post("/api/v1/decisions", json=proposal(idempotency_key="4eyes")).json()
    assert decision["four_eyes"] and decision["approvals_needed"] == 2
    url = f"/api/v1/decisions/{decision['id']}/review"
    with person(platform, live_server, tenant_a, "reviewer") as one, person(platform, live_server, tenant_a, "dpo") as two:
        r = one.post(url, json={"action": "approve", "expected_version": decision["version"], "rationale": "ok"})
        assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["approvals"] == 1
        assert r.json()["effective"] is False
        same = one.post(url, json={"action": "approve", "expected_version": r.json()["version"], "rationale": "ok"})
        assert same.status_code == 403
        done = two.post(url, json={"action": "approve", "expected_version": r.json()["version"], "rationale": "ok"})
        assert done.status_code == 200 and done.json()["status"] == "approved" and done.json()["effective"]


def test_an_objection_goes_to_another_reviewer_within_three_working_days(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, ready: httpx.Client) -> None:
    decision = ready.post("/api/v1/decisions", json=proposal(idempotency_key="objected")).json()
    with person(platform, live_server, tenant_a, "reviewer") as reviewer:
        r = reviewer.post(f"/api/v1/decisions/{decision['id']}/review",
                          json={"action": "approve", "expected_version": decision["version"], "rationale": "ok"})
        assert r.status_code == 200
    text = "Менің табысым дұрыс есептелмеді"
    r = ready.post(f"/api/v1/decisions/{decision['id']}/objections", json={"channel": "written", "text": text})
    assert r.status_code == 201, r.text
    objection = r.json()
    assert set(objection) == set(ObjectionOut.model_fields)
    assert objection["status"] == "open" and objection["due_on"] and objection["overdue"] is False
    assert objection["text"] is None and text not in r.text
    listed = ready.get("/api/v1/objections", params={"open": "true"}).json()
    assert [o["id"] for o in listed] == [objection["id"]] and text not in str(listed)
    bad = ready.post(f"/api/v1/decisions/{decision['id']}/objections", json={"channel": "pigeon"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "channel"

    url = f"/api/v1/objections/{objection['id']}/decision"
    with person(platform, live_server, tenant_a, "reviewer") as reviewer:
        assert reviewer.get(f"/api/v1/objections/{objection['id']}", params={"text": "true"}).json()["text"] == text
        same = reviewer.post(url, json={"action": "uphold", "rationale": "checked again"})
        assert same.status_code == 403  # the reviewer who decided it may not judge the objection
    with person(platform, live_server, tenant_a, "dpo") as dpo:
        r = dpo.post(url, json={"action": "overturn", "rationale": "income was misread", "outcome": 200000})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "overturned" and r.json()["decided_by"]
    final = ready.get(f"/api/v1/decisions/{decision['id']}").json()
    assert final["final_outcome"] == 200000
    assert ready.get("/api/v1/objections", params={"open": "true"}).json() == []


def test_the_explanation_is_plain_language_in_three_languages(ready: httpx.Client) -> None:
    decision = ready.post("/api/v1/decisions", json=proposal(idempotency_key="explain")).json()
    texts = {}
    for lang in ("kk", "ru", "en"):
        r = ready.get(f"/api/v1/decisions/{decision['id']}/explanation", params={"lang": lang})
        assert r.status_code == 200, r.text
        e = r.json()
        assert set(e) == set(ExplanationOut.model_fields)
        assert e["lang"] == lang and e["decision_type_name"] and e["rights_text"]
        assert [f["label"] for f in e["factors"]][:1] == ["Monthly income"]
        texts[lang] = e["decision_type_name"]
    assert len(set(texts.values())) == 3
    r = ready.get(f"/api/v1/decisions/{decision['id']}/explanation", params={"lang": "de"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "lang"


def test_the_queue_pages_by_deadline_with_a_cursor(ready: httpx.Client) -> None:
    ids = [ready.post("/api/v1/decisions", json=proposal(serial=i, idempotency_key=f"q-{i}")).json()["id"]
           for i in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, "total": "true"}
        if cursor:
            params["cursor"] = cursor
        page = ready.get("/api/v1/decisions", params=params).json()
        assert page["total"] == 5
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert ready.get("/api/v1/decisions", params={"cursor": "garbage!"}).status_code == 422
    assert ready.get("/api/v1/decisions", params={"system": "scoring-v2", "decision_type": "loan"}).json()["items"] == []
    assert len(ready.get("/api/v1/decisions", params={"view": "all", "status": "pending"}).json()["items"]) == 5
    assert ready.get("/api/v1/decisions", params={"status": "escalated", "total": "true"}).json()["total"] == 0
    r = ready.get("/api/v1/decisions", params={"status": "approved"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "status"


def test_systems_sweep_and_reviewer_statistics(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, ready: httpx.Client) -> None:
    no_hook = ready.post("/api/v1/ai-systems/scoring-v2/rotate-secret")
    assert no_hook.status_code == 422 and no_hook.json()["error"]["field"] == "webhook_url"
    r = ready.patch("/api/v1/ai-systems/scoring-v2", json={"autonomy": "low", "webhook_url": "http://127.0.0.1:9/h"})
    assert r.status_code == 200 and r.json()["autonomy"] == "low" and r.json()["webhook_url"] == "http://127.0.0.1:9/h"
    secret = ready.post("/api/v1/ai-systems/scoring-v2/rotate-secret")
    assert secret.status_code == 200 and secret.json()["secret"]
    assert secret.json()["secret"] not in ready.get("/api/v1/ai-systems/scoring-v2").text
    r = ready.patch("/api/v1/ai-systems/scoring-v2", json={"webhook_url": None, "name": "Scoring"})
    assert r.status_code == 200 and r.json()["webhook_url"] is None and r.json()["name"] == "Scoring"
    assert ready.patch("/api/v1/ai-systems/scoring-v2", json={"risk_class": "extreme"}).json()["error"]["field"] == "risk_class"
    assert [s["code"] for s in ready.get("/api/v1/ai-systems").json()] == ["scoring-v2"]
    duplicate = ready.post("/api/v1/ai-systems", json={"code": "scoring-v2", "name": "Again", "risk_class": "high",
                                                       "autonomy": "low"})
    assert duplicate.status_code == 409 or duplicate.status_code == 422
    assert duplicate.json()["error"]["field"] == "code"

    decision = ready.post("/api/v1/decisions", json=proposal(idempotency_key="stats")).json()
    with person(platform, live_server, tenant_a, "reviewer") as reviewer:
        reviewer.post(f"/api/v1/decisions/{decision['id']}/open")
        assert reviewer.post(f"/api/v1/decisions/{decision['id']}/review",
                             json={"action": "approve", "expected_version": decision["version"],
                                   "rationale": "ok"}).status_code == 200
    stats = ready.get("/api/v1/oversight/reviewer-stats", params={"days": 30}).json()
    mine = [x for x in stats if x["user_id"] == tenant_a.users["reviewer"][0]]
    assert mine and mine[0]["reviewed"] == 1 and mine[0]["approvals"] == 1 and mine[0]["rubber_stamp"] is False
    swept = ready.post("/api/v1/oversight/sweep")
    assert swept.status_code == 200 and all(isinstance(v, int) for v in swept.json().values())


def test_another_organization_reaches_none_of_these_objects(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, tenant_b: Tenant) -> None:
    objects = oversight_objects(platform, tenant_a)
    with live_server.client(tenant_b.api_key) as intruder:
        assert intruder.get(f"/api/v1/decisions/{objects['decision_id']}").status_code == 404
        assert intruder.get(f"/api/v1/ai-systems/{objects['system_code']}").status_code == 404
        assert intruder.get(f"/api/v1/decision-types/{objects['type_code']}").status_code == 404
        assert intruder.get(f"/api/v1/objections/{objects['objection_id']}").status_code == 404
        assert intruder.get("/api/v1/decisions", params={"view": "all"}).json()["items"] == []
        assert intruder.get("/api/v1/objections").json() == []
        # B cannot submit through A's system either
        r = intruder.post("/api/v1/decisions", json=proposal(system=objects["system_code"], idempotency_key="x"))
        assert r.status_code in (404, 422) and r.json()["error"]["field"] == "system"


def test_the_api_reference_documents_the_oversight_routes(live_server: LiveServer) -> None:
    with live_server.client() as c:
        spec = c.get("/api/openapi.json").json()
    assert {"/api/v1/decisions", "/api/v1/decisions/{decision_id}/review", "/api/v1/ai-systems",
            "/api/v1/objections/{objection_id}/decision", "/api/v1/decision-types/{type_code}"} <= set(spec["paths"])
    decision = spec["components"]["schemas"]["DecisionViewOut"]["properties"]
    assert {"system", "effective", "final_outcome", "version"} <= set(decision) and "system_code" not in decision
