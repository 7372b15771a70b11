"""Incident reports over real HTTP (live_server): an operator files and amends, the authorized body works the
queue, another operator and a non-authority "regulator" learn nothing (issue 8; L-PD-BREACH)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import LiveServer, Tenant, make_authority, make_tenant

from qorgau.core import auth
from qorgau.core.platform import Platform

from .test_incidents import PERSON, report


@pytest.fixture
def regulator_key(platform: Platform) -> str:
    tenant = make_authority(platform, make_tenant(platform, "gamma", 33))
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="regulator", roles=["regulator"],
                                        actor="test")
    return secret


def test_an_operator_files_amends_and_answers_and_the_regulator_decides(
        live_server: LiveServer, tenant_a: Tenant, regulator_key: str) -> None:
    with live_server.client(tenant_a.api_key) as op, live_server.client(regulator_key) as rg:
        r = op.post("/api/v1/leaks/incidents", json=report())
        assert r.status_code == 201, r.text
        incident = r.json()
        iid = incident["id"]
        assert r.headers["location"] == f"/api/v1/leaks/incidents/{iid}"
        assert incident["reference"].startswith("KZ-LEAK-") and incident["status"] == "received"
        r = op.post(f"/api/v1/leaks/incidents/{iid}/addenda", json={"people_affected": 20000})
        assert r.status_code == 201 and r.json()["people_affected"] == 20000
        assert [i["id"] for i in op.get("/api/v1/leaks/incidents").json()] == [iid]

        queue = rg.get("/api/v1/regulator/leaks/incidents", params={"status": "received"}).json()
        assert [i["id"] for i in queue] == [iid] and queue[0]["operator_bin"] == tenant_a.bin
        assert rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/info-requests",
                       json={"text": "Send a sample, masked."}).json()["info_requested"] is True
        r = op.post(f"/api/v1/leaks/incidents/{iid}/responses", json={"text": "Attached to the addendum."})
        assert r.status_code == 200 and r.json()["info_requested"] is False
        r = rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/publication",
                    json={"advice": {"kk": "а", "ru": "б", "en": "c"}})
        assert r.status_code == 409 and r.json()["error"]["field"] == "status"
        r = rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/status", json={"status": "verified", "note": "ok"})
        assert r.status_code == 200 and r.json()["status"] == "verified"
        r = rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/publication",
                    json={"advice": {"kk": "Құпиясөзді өзгертіңіз.", "ru": "Смените пароль.",
                                     "en": "Change your password."}})
        assert r.status_code == 200 and r.json()["published"] is True
        rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/notes", json={"text": "internal only"})
        r = rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/takedowns",
                    json={"location": "https://forum.example/t/1", "addressee": "forum.example"})
        assert r.status_code == 201
        takedown = r.json()["id"]
        r = rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/takedowns/{takedown}/resolution",
                    json={"status": "removed"})
        assert r.status_code == 200 and r.json()["status"] == "removed"
        mine = op.get(f"/api/v1/leaks/incidents/{iid}").json()
        assert "internal only" not in str(mine["events"]) and mine["takedowns"][0]["status"] == "removed"
        assert mine["responsible_person"] == PERSON
        theirs = rg.get(f"/api/v1/regulator/leaks/incidents/{iid}").json()
        assert "internal only" in str(theirs["events"])
        r = rg.post(f"/api/v1/regulator/leaks/incidents/{iid}/unpublication", json={})
        assert r.status_code == 200 and r.json()["published"] is False


@pytest.mark.parametrize("changes, field", [
    ({"nature": "aliens"}, "nature"),
    ({"data_classes": ["iin", "x"]}, "data_classes.1"),
    ({"discovered_at": "2026-11-20T10:00:00"}, "discovered_at"),
    ({"started_at": (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()}, "discovered_at"),
    ({"discovered_at": (datetime.now(timezone.utc) - timedelta(days=9)).isoformat(), "started_at": None,
      "contained_at": None}, "late_reason"),
])
def test_bad_reports_name_the_field_and_write_nothing(live_server: LiveServer, tenant_a: Tenant,
                                                      changes: dict[str, Any], field: str) -> None:
    with live_server.client(tenant_a.api_key) as op:
        r = op.post("/api/v1/leaks/incidents", json=report(**changes))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field and PERSON not in r.text
        assert op.get("/api/v1/leaks/incidents").json() == []


def test_other_operators_and_a_self_made_regulator_learn_nothing(live_server: LiveServer, tenant_a: Tenant,
                                                                 tenant_b: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as op:
        iid = op.post("/api/v1/leaks/incidents", json=report()).json()["id"]
    # tenant B's key carries the regulator role, but B is not the authorized body
    with live_server.client(tenant_b.api_key) as other:
        assert other.get(f"/api/v1/leaks/incidents/{iid}").status_code == 404
        assert other.get("/api/v1/leaks/incidents").json() == []
        assert other.post(f"/api/v1/leaks/incidents/{iid}/addenda", json={"title": "x"}).status_code == 404
        assert other.get("/api/v1/regulator/leaks/incidents").status_code == 403
        r = other.post(f"/api/v1/regulator/leaks/incidents/{iid}/status", json={"status": "fabricated", "note": "x"})
        assert r.status_code == 403
    with live_server.client() as anonymous:
        assert anonymous.get("/api/v1/leaks/incidents").status_code == 401
        assert anonymous.get("/api/v1/regulator/leaks/incidents").status_code == 401
    with live_server.client(tenant_a.api_key) as op:
        assert op.get(f"/api/v1/leaks/incidents/{iid}").json()["status"] == "received"
