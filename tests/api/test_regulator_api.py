"""The regulator's side of the AI register over real HTTP (issue 7): every operator's systems in one list,
trusted-list requests included, refused and removed (L-AI-TRUSTED), sandbox applications approved with a time
limit so the obligations they relax show as relaxed (L-AI-SANDBOX). Operators get 403 on these routes, and no
organization decides on its own systems even with a key carrying the regulator role."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from conftest import LiveServer, Tenant, make_authority, make_tenant
from qorgau.api.app import route_table
from qorgau.core import auth
from qorgau.core.calendar import local_date
from qorgau.core.db import utcnow
from qorgau.core.platform import Platform

from .aisystems_helpers import HIGH_RISK, RELAXABLE_RULE, answers


def key_with(platform: Platform, server: LiveServer, tenant: Tenant, *roles: str) -> httpx.Client:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="key", roles=list(roles),
                                        actor="test")
    return server.client(secret)


@pytest.fixture
def regulator(platform: Platform, live_server: LiveServer) -> httpx.Client:
    supervisor = make_authority(platform, make_tenant(platform, "agency", 33))  # the authorized body
    with key_with(platform, live_server, supervisor, "regulator") as c:
        yield c


@pytest.fixture
def operator(platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> httpx.Client:
    with key_with(platform, live_server, tenant_a, "admin", "dpo") as c:
        yield c


def high_risk_with_audit(c: httpx.Client, code: str = "grid-forecast") -> tuple[int, int]:
    r = c.post("/api/v1/ai-register/systems", json={"code": code, "name": "Grid load forecast",
                                                     "facts": answers(HIGH_RISK)})
    assert r.status_code == 201, r.text
    system_id = r.json()["id"]
    r = c.post(f"/api/v1/ai-register/systems/{system_id}/audits", json={
        "auditor": "Audit Partners LLP", "audited_on": "2026-02-02", "covers_training_data": True,
        "prohibited_functionality_found": False, "result": "passed"})
    assert r.status_code == 201, r.text
    return system_id, r.json()["id"]


REGULATOR_ROUTES = [
    ("GET", "/api/v1/regulator/ai-systems"), ("GET", "/api/v1/regulator/trusted-requests"),
    ("POST", "/api/v1/regulator/trusted-requests/1/decision"), ("POST", "/api/v1/regulator/trusted-requests/1/removal"),
    ("GET", "/api/v1/regulator/sandbox"), ("POST", "/api/v1/regulator/sandbox/1/decision"),
    ("POST", "/api/v1/regulator/sandbox/1/closure"),
    # the leak register (issue 8)
    ("GET", "/api/v1/regulator/leaks/incidents"), ("GET", "/api/v1/regulator/leaks/incidents/1"),
    ("POST", "/api/v1/regulator/leaks/incidents/1/status"), ("POST", "/api/v1/regulator/leaks/incidents/1/publication"),
    ("POST", "/api/v1/regulator/leaks/incidents/1/unpublication"), ("POST", "/api/v1/regulator/leaks/incidents/1/notes"),
    ("POST", "/api/v1/regulator/leaks/incidents/1/info-requests"),
    ("POST", "/api/v1/regulator/leaks/incidents/1/takedowns"),
    ("POST", "/api/v1/regulator/leaks/incidents/1/takedowns/1/resolution"),
]


def test_operators_are_refused_every_regulator_route(live_server: LiveServer, operator: httpx.Client) -> None:
    routes = {(m, p) for m, p in route_table(live_server.app) if p.startswith("/api/v1/regulator/")}
    assert len(routes) == len(REGULATOR_ROUTES)  # a new regulator route joins this list
    for method, url in REGULATOR_ROUTES:
        r = operator.request(method, url, json={"include": True, "reason": "x", "approve": False})
        assert r.status_code == 403, f"{method} {url}: {r.status_code}"
        assert r.json()["error"]["code"] == "forbidden"
    with live_server.client() as anonymous:
        assert anonymous.get("/api/v1/regulator/ai-systems").status_code == 401


def test_the_regulator_lists_every_operators_systems(live_server: LiveServer, tenant_a: Tenant, tenant_b: Tenant,
                                                     operator: httpx.Client, regulator: httpx.Client) -> None:
    high_risk_with_audit(operator)
    with live_server.client(tenant_b.api_key) as b:
        r = b.post("/api/v1/ai-register/systems", json={"code": "chat", "name": "Chat assistant",
                                                         "facts": answers({"functions.interacts_with_people": True})})
        assert r.status_code == 201, r.text
    listed = regulator.get("/api/v1/regulator/ai-systems").json()
    assert {(s["operator_bin"], s["code"], s["risk_level"]) for s in listed} == {
        (tenant_a.bin, "grid-forecast", "high"), (tenant_b.bin, "chat", "medium")}
    high = regulator.get("/api/v1/regulator/ai-systems", params={"risk": "high"}).json()
    assert [s["code"] for s in high] == ["grid-forecast"]


def test_a_trusted_list_request_is_included_then_removed(live_server: LiveServer, tenant_a: Tenant,
                                                         operator: httpx.Client, regulator: httpx.Client) -> None:
    system_id, audit_id = high_risk_with_audit(operator)
    r = operator.post(f"/api/v1/ai-register/systems/{system_id}/trusted-requests",
                      json={"sector": "energy", "audit_id": audit_id})
    assert r.status_code == 201, r.text
    entry_id = r.json()["id"]

    pending = regulator.get("/api/v1/regulator/trusted-requests", params={"status": "requested"}).json()
    assert [(e["id"], e["operator_bin"]) for e in pending] == [(entry_id, tenant_a.bin)]
    url = f"/api/v1/regulator/trusted-requests/{entry_id}"
    assert regulator.post(f"{url}/decision", json={}).json()["error"]["field"] == "include"
    refusal = regulator.post(f"{url}/decision", json={"include": False})
    assert refusal.status_code == 422 and refusal.json()["error"]["field"] == "reason"
    # the operator itself cannot include its own system, even with a key that carries the regulator role
    with live_server.client(tenant_a.api_key) as own:
        assert own.post(f"{url}/decision", json={"include": True}).status_code == 403

    r = regulator.post(f"{url}/decision", json={"include": True})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "included" and r.json()["decided_by"].startswith("apikey:")
    with live_server.client() as anyone:
        listed = anyone.get("/api/v1/public/trusted-systems", params={"sector": "energy"}).json()
        assert [(e["system_code"], e["operator_bin"], e["status"]) for e in listed] == [
            ("grid-forecast", tenant_a.bin, "included")]
        assert "requested_by" not in listed[0] and "reason" not in listed[0]
    assert regulator.post(f"{url}/decision", json={"include": True}).status_code == 409  # decided already

    assert regulator.post(f"{url}/removal", json={}).json()["error"]["field"] == "reason"
    r = regulator.post(f"{url}/removal", json={"reason": "The audit was withdrawn by the auditor"})
    assert r.status_code == 200 and r.json()["status"] == "removed"
    with live_server.client() as anyone:
        assert anyone.get("/api/v1/public/trusted-systems").json() == []
    assert [e["status"] for e in operator.get("/api/v1/ai-register/trusted-requests").json()] == ["removed"]


def test_an_approved_sandbox_relaxes_the_obligations_it_grants(operator: httpx.Client,
                                                               regulator: httpx.Client) -> None:
    system_id, _ = high_risk_with_audit(operator)
    r = operator.post("/api/v1/ai-register/sandbox", json={
        "title": "Grid pilot", "description": "A new forecasting model", "system_ids": [system_id],
        "requested_relaxations": [RELAXABLE_RULE]})
    assert r.status_code == 201, r.text
    application_id = r.json()["id"]
    assert [a["id"] for a in regulator.get("/api/v1/regulator/sandbox", params={"status": "submitted"}).json()] == [
        application_id]

    url = f"/api/v1/regulator/sandbox/{application_id}/decision"
    today = local_date(utcnow())
    assert regulator.post(url, json={"approve": True}).json()["error"]["field"] == "ends_on"
    too_long = regulator.post(url, json={"approve": True, "ends_on": (today + timedelta(days=800)).isoformat()})
    assert too_long.status_code == 422 and too_long.json()["error"]["field"] == "ends_on"
    r = regulator.post(url, json={"approve": True, "ends_on": (today + timedelta(days=180)).isoformat(),
                                  "conditions": "Monthly reports to the regulator"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["granted_relaxations"] == [RELAXABLE_RULE]
    assert r.json()["active"] is True

    duties = {o["rule_id"]: o for o in operator.get("/api/v1/ai-register/obligations",
                                                    params={"system_id": system_id}).json()}
    assert duties[RELAXABLE_RULE]["status"] == "relaxed" and duties[RELAXABLE_RULE]["sandbox_id"] == application_id
    assert duties["ai.high.risk-management"]["status"] == "open"  # not relaxable, not asked for

    closure = regulator.post(f"/api/v1/regulator/sandbox/{application_id}/closure",
                             json={"reason": "Conditions not met"})
    assert closure.status_code == 200 and closure.json()["status"] == "closed"
    duties = {o["rule_id"]: o for o in operator.get("/api/v1/ai-register/obligations",
                                                    params={"system_id": system_id}).json()}
    assert duties[RELAXABLE_RULE]["status"] == "open"


def test_a_regulator_key_of_an_operator_is_refused_every_regulator_route(platform: Platform, live_server: LiveServer,
                                                                         tenant_a: Tenant) -> None:
    """An operator may give its own keys the regulator role; only the authorized body's count across operators."""
    with key_with(platform, live_server, tenant_a, "regulator") as self_made:
        for method, url in REGULATOR_ROUTES:
            r = self_made.request(method, url, json={"include": True, "reason": "x", "approve": False})
            assert r.status_code == 403, f"{method} {url}: {r.status_code}"
            assert r.json()["error"]["field"] == "organization"
