"""The public AI register and the law as code over real HTTP, with no login (issue 7): only systems their operators
made public (and state systems) are shown, never a questionnaire answer the catalogue keeps private; the CSV is
open data with a header; filters and paging work; the rule packs are published with their citations."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from conftest import LiveServer, Tenant
from qorgau.core.platform import Platform

from .aisystems_helpers import EMOTION_RECOGNITION, HIGH_RISK, PRIVATE_MODEL, aisystems_objects, answers


def register(c: httpx.Client, code: str, changes: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    r = c.post("/api/v1/ai-register/systems", json={"code": code, "name": f"System {code}", "facts": answers(changes),
                                                     **extra})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def register_of_two(live_server: LiveServer, tenant_a: Tenant, tenant_b: Tenant) -> dict[str, dict[str, Any]]:
    """A: a public medium-risk scoring system, a private high-risk one; B: a minimal-risk state system (public by
    default) that recognizes emotions without consent (prohibited)."""
    with live_server.client(tenant_a.api_key) as a, live_server.client(tenant_b.api_key) as b:
        return {
            "public": register(a, "scoring-public", public=True),
            "private": register(a, "scoring-private", HIGH_RISK, public=False),
            "state": register(b, "e-gov-assistant", {"system.state_system": True, "system.sector":
                                                     "public_administration", "failure.impact": "minimal",
                                                     **EMOTION_RECOGNITION}),
        }


def test_anyone_sees_public_systems_only_and_never_private_answers(
        live_server: LiveServer, tenant_a: Tenant, tenant_b: Tenant, register_of_two: dict[str, Any]) -> None:
    with live_server.client() as anyone:
        r = anyone.get("/api/v1/public/ai-systems")
        assert r.status_code == 200, r.text
        page = r.json()
        shown = {item["register_id"]: item for item in page["items"]}
        assert set(shown) == {register_of_two["public"]["register_id"], register_of_two["state"]["register_id"]}
        assert page["total"] == 2
        assert PRIVATE_MODEL not in r.text and "scoring-private" not in r.text
        public = shown[register_of_two["public"]["register_id"]]
        assert public["operator_bin"] == tenant_a.bin and public["risk_level"] == "medium"
        assert public["purpose"] == "Credit scoring of loan applications"
        assert "system.model_versions" not in public["public_facts"] and public["public_facts"]["system.sector"]
        assert "organization_id" not in r.text and "facts" not in public
        state = shown[register_of_two["state"]["register_id"]]
        assert state["state_system"] and state["prohibited"]
        assert [p["rule_id"] for p in state["prohibited_practices"]] == ["ai.prohibited.emotion-recognition"]

        one = anyone.get(f"/api/v1/public/ai-systems/{register_of_two['public']['register_id']}")
        assert one.status_code == 200 and one.json() == public
        hidden = anyone.get(f"/api/v1/public/ai-systems/{register_of_two['private']['register_id']}")
        assert hidden.status_code == 404 and PRIVATE_MODEL not in hidden.text
        assert anyone.get("/api/v1/public/ai-systems/KZ-AI-1999-999999").status_code == 404
        assert anyone.get("/api/v1/public/ai-systems/not-a-number").status_code == 422


def test_filters_and_paging(live_server: LiveServer, tenant_a: Tenant, tenant_b: Tenant,
                            register_of_two: dict[str, Any]) -> None:
    def ids(**params: Any) -> list[str]:
        with live_server.client() as anyone:
            r = anyone.get("/api/v1/public/ai-systems", params=params)
            assert r.status_code == 200, r.text
            return [i["register_id"] for i in r.json()["items"]]

    public, state = register_of_two["public"]["register_id"], register_of_two["state"]["register_id"]
    assert ids(sector="public_administration") == [state]
    assert ids(risk="medium", operator_bin=tenant_a.bin) == [public]
    assert ids(operator_bin=tenant_b.bin) == [state] and ids(risk="minimal") == [state]
    assert ids(q="assistant") == [state] and ids(q="no such words") == []
    both = ids()
    assert ids(limit=1) + ids(limit=1, offset=1) == both and ids(offset=2) == []
    with live_server.client() as anyone:
        for params, field in [({"limit": 0}, "limit"), ({"risk": "extreme"}, "risk"),
                              ({"operator_bin": "12"}, "operator_bin"), ({"sector": "Not A Code"}, "sector")]:
            r = anyone.get("/api/v1/public/ai-systems", params=params)
            assert r.status_code == 422 and r.json()["error"]["field"] == field, params


def test_the_open_data_csv_has_a_header_and_public_rows(live_server: LiveServer,
                                                        register_of_two: dict[str, Any]) -> None:
    with live_server.client() as anyone:
        r = anyone.get("/api/v1/public/ai-systems.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert {"register_id", "operator_bin", "risk_level", "prohibited"} <= set(rows[0])
        assert sorted(row["register_id"] for row in rows) == sorted(
            [register_of_two["public"]["register_id"], register_of_two["state"]["register_id"]])
        assert PRIVATE_MODEL not in r.text and "scoring-private" not in r.text
        filtered = list(csv.DictReader(io.StringIO(
            anyone.get("/api/v1/public/ai-systems.csv", params={"risk": "medium"}).text)))
        assert [row["register_id"] for row in filtered] == [register_of_two["public"]["register_id"]]
        for params, field in [({"risk": "x"}, "risk"), ({"sector": "Not A Code"}, "sector")]:
            bad = anyone.get("/api/v1/public/ai-systems.csv", params=params)
            assert bad.status_code == 422 and bad.json()["error"]["field"] == field


def test_an_empty_register_is_still_a_csv_with_a_header(live_server: LiveServer) -> None:
    with live_server.client() as anyone:
        r = anyone.get("/api/v1/public/ai-systems.csv")
        assert r.status_code == 200 and r.text.splitlines()[0].startswith("register_id,")
        assert len(r.text.splitlines()) == 1
        assert anyone.get("/api/v1/public/ai-systems").json()["items"] == []


def test_the_trusted_list_shows_included_systems_only(platform: Platform, live_server: LiveServer,
                                                       tenant_a: Tenant) -> None:
    aisystems_objects(platform, tenant_a)  # a trusted-list *request* of A: not on the list yet
    with live_server.client() as anyone:
        r = anyone.get("/api/v1/public/trusted-systems")
        assert r.status_code == 200 and r.json() == []
        assert anyone.get("/api/v1/public/trusted-systems", params={"sector": "finance"}).json() == []
        assert anyone.get("/api/v1/public/trusted-systems", params={"sector": "nowhere"}).status_code == 422


def test_the_law_as_code_is_published_with_citations(live_server: LiveServer) -> None:
    with live_server.client() as anyone:
        book = anyone.get("/api/v1/public/rules").json()
        assert book["digest"] and book["packs"]
        rule_ids = [r["id"] for p in book["packs"] for r in p["rules"]]
        assert "ai.prohibited.emotion-recognition" in rule_ids and len(rule_ids) == len(set(rule_ids))
        r = anyone.get("/api/v1/public/rules/ai.prohibited.emotion-recognition")
        assert r.status_code == 200, r.text
        rule = r.json()
        assert rule["id"] == "ai.prohibited.emotion-recognition" and rule["citation"]["legal_id"] == "L-AI-PROHIBITED"
        assert rule["effect"]["type"] == "prohibition" and rule["pack"]["id"] == "kz.ai-law"
        assert "rules" not in rule["pack"] and rule["title"]["kk"]
        assert anyone.get("/api/v1/public/rules/no.such-rule").status_code == 404
        assert anyone.get("/api/v1/public/rules/Not_A_Rule").status_code == 422
