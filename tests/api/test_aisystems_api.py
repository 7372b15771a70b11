"""The AI systems register over real HTTP, as an operator (issue 7): register a system with its questionnaire →
the rule packs classify it → a changed answer re-classifies it and the history shows the diff → obligations
with due dates are met with evidence. Bad answers name ``facts.<path>`` and store nothing; a stale questionnaire
version is a 409; a preview "under the law as of" a date is never stored; another organization's system is
"not found"."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import LiveServer, Tenant
from qorgau.core import auth
from qorgau.core.platform import Platform

from .aisystems_helpers import EMOTION_RECOGNITION, HIGH_RISK, RELAXABLE_RULE, aisystems_objects, answers


def key_with(platform: Platform, server: LiveServer, tenant: Tenant, *roles: str) -> httpx.Client:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="key", roles=list(roles),
                                        actor="test")
    return server.client(secret)


def register(c: httpx.Client, code: str = "scoring-v3", changes: dict[str, Any] | None = None,
             **extra: Any) -> dict[str, Any]:
    r = c.post("/api/v1/ai-register/systems", json={"code": code, "name": "Credit scoring", "facts": answers(changes),
                                                     **extra})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def operator(platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> httpx.Client:
    with key_with(platform, live_server, tenant_a, "admin", "dpo") as c:
        yield c


def test_register_classify_change_an_answer_and_read_the_history_and_obligations(operator: httpx.Client) -> None:
    created = register(operator)
    assert created["webhook_secret"] is None  # no webhook asked for
    system_id = created["id"]
    first = created["classification"]
    assert first["risk_level"] == "medium" and first["autonomy_level"] == "low" and not first["prohibited"]
    assert first["trigger"] == "questionnaire" and first["persisted"] and first["missing_facts"] == []
    assert created["register_id"].startswith("KZ-AI-") and created["version"] == 1
    assert {o["rule_id"] for o in created["obligations"]} >= {"ai.user.explanation"}

    # the questionnaire's schema names every fact the answers use
    schema = operator.get("/api/v1/ai-register/questionnaire", params={"lang": "ru"}).json()
    paths = {f["path"] for g in schema for f in g["facts"]}
    assert set(answers()) <= paths and all(g["title"] for g in schema)

    # the failure would now harm the economy: high risk (L-AI-RISK), with the duties of high-risk systems
    r = operator.put(f"/api/v1/ai-register/systems/{system_id}/questionnaire",
                     json={"facts": {"failure": {"impact": "economy"}}, "expected_version": 1})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["version"] == 2 and updated["risk_class"] == "high"
    assert updated["classification"]["risk_level"] == "high"
    assert updated["classified_by"].startswith("rules:")

    history = operator.get(f"/api/v1/ai-register/systems/{system_id}/history").json()
    assert [h["seq"] for h in history] == [2, 1]  # newest first
    diff = history[0]["diff"]
    assert diff["risk_level"] == ["medium", "high"]
    assert RELAXABLE_RULE in diff["obligations"]["added"] and diff["obligations"]["removed"] == []
    assert "prohibitions" not in diff

    listed = operator.get("/api/v1/ai-register/systems", params={"risk": "high"}).json()
    assert [(s["id"], s["risk_level"]) for s in listed] == [(system_id, "high")]
    assert operator.get("/api/v1/ai-register/systems", params={"risk": "minimal"}).json() == []

    obligations = operator.get("/api/v1/ai-register/obligations", params={"system_id": system_id}).json()
    audit_duty = next(o for o in obligations if o["rule_id"] == RELAXABLE_RULE)
    assert audit_duty["status"] == "open" and audit_duty["citation"]["legal_id"] and audit_duty["title"]["kk"]
    r = operator.post(f"/api/v1/ai-register/obligations/{audit_duty['id']}/met",
                      json={"evidence": "Audit report No. 17 of 2026-02-02"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "met" and r.json()["met_at"]
    met = operator.get("/api/v1/ai-register/obligations", params={"status": "met"}).json()
    assert [o["id"] for o in met] == [audit_duty["id"]]

    # a manual re-classification stores a third one, unchanged
    r = operator.post(f"/api/v1/ai-register/systems/{system_id}/classification")
    assert r.status_code == 201, r.text
    assert r.json()["seq"] == 3 and r.json()["diff"] == {} and r.json()["trigger"] == "manual"
    shown = operator.get(f"/api/v1/ai-register/systems/{system_id}").json()
    assert shown["classification"]["seq"] == 3 and shown["facts"]["failure.impact"] == "economy"


@pytest.mark.parametrize("facts, field", [
    ({"functions.telepathy": True}, "facts.functions.telepathy"),
    ({"failure.impact": "catastrophic"}, "facts.failure.impact"),
    ({"functions.emotion_recognition": "yes"}, "facts.functions.emotion_recognition"),
    ({"users.vulnerable_groups": ["children", "martians"]}, "facts.users.vulnerable_groups"),
])
def test_a_bad_answer_names_the_fact_and_stores_nothing(operator: httpx.Client, facts: dict[str, Any],
                                                        field: str) -> None:
    r = operator.post("/api/v1/ai-register/systems", json={"code": "bad-one", "name": "X", "facts": answers(facts)})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert operator.get("/api/v1/ai-register/systems").json() == []
    # the same check on an update; the stored answers stay as they were
    system_id = register(operator)["id"]
    r = operator.put(f"/api/v1/ai-register/systems/{system_id}/questionnaire", json={"facts": facts})
    assert r.status_code == 422 and r.json()["error"]["field"] == field
    shown = operator.get(f"/api/v1/ai-register/systems/{system_id}").json()
    assert shown["version"] == 1 and len(operator.get(f"/api/v1/ai-register/systems/{system_id}/history").json()) == 1


@pytest.mark.parametrize("body, field", [
    ({"code": "x", "name": "X"}, "facts"),
    ({"code": "x", "name": "X", "facts": {}, "colour": "red"}, "colour"),
    ({"code": "x", "name": "X", "facts": [1]}, "facts"),
    ({"code": "x" * 65, "name": "X", "facts": {}}, "code"),
])
def test_a_malformed_registration_names_the_field(operator: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = operator.post("/api/v1/ai-register/systems", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == field


def test_a_second_system_with_the_same_code_is_a_conflict(operator: httpx.Client) -> None:
    register(operator)
    r = operator.post("/api/v1/ai-register/systems", json={"code": "scoring-v3", "name": "Y", "facts": answers()})
    assert r.status_code == 409 and r.json()["error"]["field"] == "code"


def test_a_stale_questionnaire_version_is_refused_and_changes_nothing(operator: httpx.Client) -> None:
    system_id = register(operator)["id"]
    url = f"/api/v1/ai-register/systems/{system_id}/questionnaire"
    first = operator.put(url, json={"facts": HIGH_RISK, "expected_version": 1})
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = operator.put(url, json={"facts": {"failure.impact": "minimal"}, "expected_version": 1})
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["code"] == "conflict" and stale.json()["error"]["field"] == "expected_version"
    shown = operator.get(f"/api/v1/ai-register/systems/{system_id}").json()
    assert shown["version"] == 2 and shown["facts"]["failure.impact"] == "economy"
    assert len(operator.get(f"/api/v1/ai-register/systems/{system_id}/history").json()) == 2


def test_a_preview_under_the_law_as_of_a_date_is_never_stored(operator: httpx.Client) -> None:
    created = register(operator, changes=EMOTION_RECOGNITION)
    system_id = created["id"]
    assert created["classification"]["prohibited"]  # L-AI-PROHIBITED, in force since 18 January 2026
    assert "ai.prohibited.emotion-recognition" in [p["rule_id"] for p in created["classification"]["prohibitions"]]
    url = f"/api/v1/ai-register/systems/{system_id}/classification"

    before = operator.get(url, params={"as_of": "2025-06-01"})
    assert before.status_code == 200, before.text
    before_law = before.json()
    after_law = operator.get(url, params={"as_of": "2026-06-01", "profile": "stricter"}).json()
    assert before_law["persisted"] is False and after_law["persisted"] is False
    assert before_law["as_of"] == "2025-06-01" and before_law["id"] is None
    assert not before_law["prohibited"] and before_law["prohibitions"] == []
    assert after_law["prohibited"] and "stricter" in after_law["profiles"]
    assert before_law["packs_digest"] == after_law["packs_digest"]  # the same packs, a different day
    assert before_law["diff"]["prohibitions"]["removed"] == ["ai.prohibited.emotion-recognition"]

    history = operator.get(f"/api/v1/ai-register/systems/{system_id}/history").json()
    assert len(history) == 1  # previews are not stored
    assert operator.get(url, params={"as_of": "2025-13-01"}).json()["error"]["field"] == "as_of"
    assert operator.get(url, params={"profile": "lenient"}).json()["error"]["field"] == "profile"


def test_audits_trusted_requests_sandbox_and_maturity(operator: httpx.Client) -> None:
    system_id = register(operator, changes=HIGH_RISK)["id"]
    base = f"/api/v1/ai-register/systems/{system_id}"
    bad = operator.post(f"{base}/audits", json={"auditor": "A", "audited_on": "2026-02-02", "result": "passed",
                                                 "covers_training_data": True,
                                                 "prohibited_functionality_found": True})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "result"  # DC Art.100 p.4
    r = operator.post(f"{base}/audits", json={"auditor": "Audit Partners LLP", "audited_on": "2026-02-02",
                                               "covers_training_data": True, "prohibited_functionality_found": False,
                                               "result": "passed", "report_sha256": "ab" * 32})
    assert r.status_code == 201, r.text
    audit_id = r.json()["id"]
    assert [a["id"] for a in operator.get(f"{base}/audits").json()] == [audit_id]

    r = operator.post(f"{base}/trusted-requests", json={"sector": "finance", "audit_id": audit_id})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requested"
    again = operator.post(f"{base}/trusted-requests", json={"sector": "finance", "audit_id": audit_id})
    assert again.status_code == 409
    assert [e["status"] for e in operator.get("/api/v1/ai-register/trusted-requests").json()] == ["requested"]

    not_relaxable = operator.post("/api/v1/ai-register/sandbox", json={
        "title": "Pilot", "description": "A new model", "system_ids": [system_id],
        "requested_relaxations": ["ai.user.explanation"]})
    assert not_relaxable.status_code == 422
    assert not_relaxable.json()["error"]["field"] == "requested_relaxations.0"
    r = operator.post("/api/v1/ai-register/sandbox", json={
        "title": "Pilot", "description": "A new model", "system_ids": [system_id],
        "requested_relaxations": [RELAXABLE_RULE]})
    assert r.status_code == 201, r.text
    application = r.json()
    assert application["status"] == "submitted" and application["system_ids"] == [system_id]
    assert operator.get(f"/api/v1/ai-register/sandbox/{application['id']}").json()["id"] == application["id"]
    r = operator.post(f"/api/v1/ai-register/sandbox/{application['id']}/withdraw")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert [a["status"] for a in operator.get("/api/v1/ai-register/sandbox").json()] == ["withdrawn"]
    assert operator.post(f"/api/v1/ai-register/sandbox/{application['id']}/withdraw").status_code == 409

    maturity = operator.get("/api/v1/ai-register/maturity").json()
    assert 0 <= maturity["score"] <= 100 and maturity["components"] and maturity["formula"]
    assert operator.get("/api/v1/ai-register/maturity/trend").json() == []
    snap = operator.post("/api/v1/ai-register/maturity/snapshot")
    assert snap.status_code == 200 and snap.json()["stored"] is True
    trend = operator.get("/api/v1/ai-register/maturity/trend").json()
    assert [p["score"] for p in trend] == [snap.json()["score"]] and trend[0]["on"] == snap.json()["computed_on"]


def test_another_organizations_register_is_not_found(platform: Platform, live_server: LiveServer,
                                                     tenant_a: Tenant, tenant_b: Tenant) -> None:
    owned = aisystems_objects(platform, tenant_a)
    with key_with(platform, live_server, tenant_b, "admin", "dpo") as intruder:
        system = f"/api/v1/ai-register/systems/{owned['system_id']}"
        for method, url, body in [
            ("GET", system, None), ("GET", f"{system}/history", None), ("GET", f"{system}/classification", None),
            ("POST", f"{system}/classification", None), ("GET", f"{system}/audits", None),
            ("PUT", f"{system}/questionnaire", {"facts": HIGH_RISK}),
            ("POST", f"{system}/audits", {"auditor": "X", "audited_on": "2026-02-02", "result": "failed",
                                          "covers_training_data": False, "prohibited_functionality_found": False}),
            ("POST", f"{system}/trusted-requests", {"sector": "finance", "audit_id": owned["audit_id"]}),
            ("POST", f"/api/v1/ai-register/obligations/{owned['obligation_id']}/met", {"evidence": "doc 1"}),
            ("GET", f"/api/v1/ai-register/sandbox/{owned['application_id']}", None),
            ("POST", f"/api/v1/ai-register/sandbox/{owned['application_id']}/withdraw", None),
        ]:
            r = intruder.request(method, url, json=body)
            assert r.status_code == 404, f"{method} {url}: {r.status_code} {r.text}"
        assert intruder.get("/api/v1/ai-register/systems").json() == []
        assert intruder.get("/api/v1/ai-register/obligations", params={"system_id": owned["system_id"]}
                            ).status_code == 404
        assert intruder.get("/api/v1/ai-register/obligations").json() == []
        r = intruder.post("/api/v1/ai-register/sandbox", json={
            "title": "Borrowed", "description": "x", "system_ids": [owned["system_id"]],
            "requested_relaxations": [RELAXABLE_RULE]})
        assert r.status_code == 404 and r.json()["error"]["field"] == "system_ids.0"
    with live_server.client(tenant_a.api_key) as owner:  # nothing of A's changed
        assert owner.get(f"/api/v1/ai-register/systems/{owned['system_id']}").json()["version"] == 1
        assert owner.get(f"/api/v1/ai-register/sandbox/{owned['application_id']}").json()["status"] == "submitted"


def test_readers_read_the_register_but_only_admins_and_dpos_change_it(platform: Platform, live_server: LiveServer,
                                                                      tenant_a: Tenant, operator: httpx.Client
                                                                      ) -> None:
    system_id = register(operator)["id"]
    with key_with(platform, live_server, tenant_a, "reviewer") as reviewer:
        assert reviewer.get(f"/api/v1/ai-register/systems/{system_id}").status_code == 200
        assert reviewer.get(f"/api/v1/ai-register/systems/{system_id}/classification").status_code == 200
        for method, url in [("POST", "/api/v1/ai-register/systems"),
                            ("PUT", f"/api/v1/ai-register/systems/{system_id}/questionnaire"),
                            ("POST", f"/api/v1/ai-register/systems/{system_id}/classification"),
                            ("POST", "/api/v1/ai-register/maturity/snapshot")]:
            r = reviewer.request(method, url, json={"code": "x", "name": "X", "facts": {}})
            assert r.status_code == 403, f"{method} {url}: {r.status_code}"
    with live_server.client() as anonymous:
        assert anonymous.get("/api/v1/ai-register/systems").status_code == 401
