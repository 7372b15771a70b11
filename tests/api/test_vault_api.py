"""The identity vault over real HTTP: tokenize, re-identify, shred, certificates — roles, tenants, bad input."""

from __future__ import annotations

import json

import pytest
from conftest import LiveServer, Tenant

from qorgau.core import audit, auth
from qorgau.core.platform import Platform
from qorgau.vault import certificates

IIN = "791028302728"
IIN_2 = "061211600012"
NAME = "Жаксылыков Ерлан"


def key_with(platform: Platform, tenant: Tenant, *roles: str) -> str:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="-".join(roles), roles=list(roles),
                                        actor="test")
    return secret


def test_tokenize_then_reidentify_for_a_purpose(live_server: LiveServer, platform: Platform, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        first = c.post("/api/v1/vault/tokenize", json={"entity_type": "KZ_IIN", "value": IIN})
        again = c.post("/api/v1/vault/tokenize", json={"entity_type": "KZ_IIN", "value": "7910 2830 2728"})
        assert first.status_code == 200 and first.json()["created"] and not again.json()["created"]
        pseudonym = first.json()["pseudonym"]
        assert again.json()["pseudonym"] == pseudonym and IIN not in first.text
        found = c.post("/api/v1/vault/detokenize", json={"pseudonym": pseudonym, "purpose": "customer-request"})
        assert found.status_code == 200, found.text
        assert found.json()["identifiers"] == {"KZ_IIN": [IIN]}
        looked = c.post("/api/v1/vault/lookup", json={"entity_type": "KZ_IIN", "value": IIN})
        assert looked.json() == {"found": True, "subject_id": first.json()["subject_id"], "pseudonym": pseudonym}
        assert c.post("/api/v1/vault/lookup", json={"entity_type": "KZ_IIN", "value": IIN_2}).json()["found"] is False
    with platform.db.reader(tenant_a.org_id) as s:
        entry = audit.list_entries(s, limit=1, action="vault.detokenize")[0]
    assert entry.actor.startswith("apikey:") and entry.details["purpose"] == "customer-request"


def test_batches_report_problems_by_index(live_server: LiveServer, tenant_a: Tenant) -> None:
    body = {"records": [{"identifiers": {"KZ_IIN": IIN, "PERSON": NAME, "PHONE_NUMBER": "87012345678"}},
                        {"identifiers": {"KZ_IIN": "791028302729"}},
                        {"identifiers": {"KZ_IIN": IIN_2}}], "domain": "scoring"}
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/vault/tokenize-batch", json=body)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert r.json()["created"] == 2 and r.json()["problems"] == 1
        assert results[1]["problem"]["field"] == "KZ_IIN" and "check digit" in results[1]["problem"]["reason"]
        assert "791028302729" not in r.text
        pseudonyms = [results[0]["pseudonym"], results[2]["pseudonym"], "ps_" + "k" * 26]
        many = c.post("/api/v1/vault/detokenize-batch",
                      json={"pseudonyms": pseudonyms, "domain": "scoring", "purpose": "statistics"})
        assert many.status_code == 200, many.text
        out = many.json()["results"]
        assert out[pseudonyms[0]]["identity"]["identifiers"]["PERSON"] == [NAME]
        assert out[pseudonyms[2]]["status"] == "unknown" and many.json()["found"] == 2
        # another domain: the same people, other pseudonyms
        assert c.post("/api/v1/vault/detokenize", json={"pseudonym": pseudonyms[0], "purpose": "x"}).status_code == 404


@pytest.mark.parametrize("roles", [("reviewer",), ("regulator",), ("reviewer", "regulator")])
def test_roles_without_reidentification_rights_are_refused(live_server: LiveServer, platform: Platform,
                                                           tenant_a: Tenant, roles: tuple[str, ...]) -> None:
    with live_server.client(tenant_a.api_key) as c:
        pseudonym = c.post("/api/v1/vault/tokenize", json={"entity_type": "KZ_IIN", "value": IIN}).json()["pseudonym"]
    with live_server.client(key_with(platform, tenant_a, *roles)) as c:
        for path, body in (("/api/v1/vault/detokenize", {"pseudonym": pseudonym, "purpose": "x"}),
                           ("/api/v1/vault/detokenize-batch", {"pseudonyms": [pseudonym], "purpose": "x"}),
                           ("/api/v1/vault/tokenize", {"entity_type": "KZ_IIN", "value": IIN_2}),
                           ("/api/v1/vault/lookup", {"entity_type": "KZ_IIN", "value": IIN}),
                           ("/api/v1/vault/shred", {"pseudonym": pseudonym, "reason": "x"})):
            r = c.post(path, json=body)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", path
            assert IIN not in r.text
        stats = c.get("/api/v1/vault/stats")
        assert stats.status_code == (200 if "regulator" in roles else 403)


def test_another_organization_cannot_reach_a_pseudonym_or_certificate(live_server: LiveServer, tenant_a: Tenant,
                                                                    tenant_b: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as a, live_server.client(tenant_b.api_key) as b:
        mine = a.post("/api/v1/vault/tokenize", json={"entity_type": "KZ_IIN", "value": IIN}).json()
        theirs = b.post("/api/v1/vault/tokenize", json={"entity_type": "KZ_IIN", "value": IIN}).json()
        assert theirs["created"] and theirs["pseudonym"] != mine["pseudonym"]
        r = b.post("/api/v1/vault/detokenize", json={"pseudonym": mine["pseudonym"], "purpose": "x"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_pseudonym"
        assert b.post("/api/v1/vault/shred", json={"pseudonym": mine["pseudonym"], "reason": "x"}).status_code == 404
        cert = a.post("/api/v1/vault/shred", json={"pseudonym": mine["pseudonym"], "reason": "consent withdrawn"}).json()
        cert_id = cert["certificate"]["id"]
        assert b.get(f"/api/v1/vault/certificates/{cert_id}").status_code == 404
        assert b.get("/api/v1/vault/certificates").json() == []
        assert a.get(f"/api/v1/vault/certificates/{cert_id}").json() == cert
        verified_by_b = b.post("/api/v1/vault/certificates/verify", json=cert).json()
        assert not verified_by_b["ok"]  # signed by this platform, but not in B's audit log
        assert b.post("/api/v1/vault/detokenize", json={"pseudonym": theirs["pseudonym"], "purpose": "x"}).json()[
            "identifiers"] == {"KZ_IIN": [IIN]}  # B's own subject is untouched


def test_shred_returns_a_verifiable_certificate_and_detokenize_says_erased(live_server: LiveServer,
                                                                          tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        pseudonym = c.post("/api/v1/vault/tokenize", json={"entity_type": "KZ_IIN", "value": IIN}).json()["pseudonym"]
        r = c.post("/api/v1/vault/shred", json={"pseudonym": pseudonym, "reason": "consent withdrawn"})
        assert r.status_code == 200, r.text
        doc = r.json()
        gone = c.post("/api/v1/vault/detokenize", json={"pseudonym": pseudonym, "purpose": "customer-request"})
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "subject_erased"
        assert "erased on " + doc["certificate"]["erased_at"][:10] in gone.json()["error"]["message"]
        again = c.post("/api/v1/vault/shred", json={"pseudonym": pseudonym, "reason": "again"})
        assert again.status_code == 410
        verified = c.post("/api/v1/vault/certificates/verify", json=doc).json()
        assert verified["ok"] and {c["name"] for c in verified["checks"]} >= {"inclusion proof", "audit entry stored"}
        doc["certificate"]["pseudonym"] = "ps_" + "b" * 26
        assert not c.post("/api/v1/vault/certificates/verify", json=doc).json()["ok"]
        listed = c.get("/api/v1/vault/certificates").json()
        assert [x["pseudonym"] for x in listed] == [pseudonym]
        stats = c.get("/api/v1/vault/stats").json()
        assert stats["erased"] == 1 and stats["certificates"] == 1 and "KZ_IIN" in stats["lookup_types"]
    with live_server.client() as anonymous:
        keys = anonymous.get("/api/v1/vault/certificate-key").json()
    original = json.loads(json.dumps(r.json()))
    offline = certificates.verify_certificate(json.dumps(original), certificate_public_key=keys["certificate_public_key"],
                                              audit_public_key=keys["audit_public_key"])
    assert offline.ok, offline.to_dict()


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/vault/tokenize", {"entity_type": "KZ_IIN", "value": "791028302729"}, "value"),
    ("/api/v1/vault/tokenize", {"entity_type": "PERSON", "value": NAME}, "entity_type"),
    ("/api/v1/vault/tokenize", {"entity_type": "KZ_IIN", "value": IIN, "domain": "Bad Domain"}, "domain"),
    ("/api/v1/vault/tokenize", {"entity_type": "KZ_IIN", "value": IIN, "extra": 1}, "extra"),
    ("/api/v1/vault/detokenize", {"pseudonym": "ps_short", "purpose": "x"}, "pseudonym"),
    ("/api/v1/vault/detokenize", {"pseudonym": "ps_" + "a" * 26, "purpose": "Иванов просил"}, "purpose"),
    ("/api/v1/vault/detokenize", {"pseudonym": "ps_" + "a" * 26}, "purpose"),
    ("/api/v1/vault/shred", {"pseudonym": "ps_" + "a" * 26, "reason": "by " + IIN}, "reason"),
    ("/api/v1/vault/tokenize-batch", {"records": []}, "records"),
    ("/api/v1/vault/lookup", {"entity_type": "PERSON", "value": NAME}, "entity_type"),
])
def test_bad_input_names_the_field_and_never_echoes_the_value(live_server: LiveServer, tenant_a: Tenant, path: str,
                                                              body: dict, field: str) -> None:
    with live_server.client(tenant_a.api_key) as c:
        if path.endswith("/shred"):  # a real pseudonym, so only the reason is wrong
            body = {**body, "pseudonym": c.post("/api/v1/vault/tokenize",
                                                json={"entity_type": "KZ_IIN", "value": IIN_2}).json()["pseudonym"]}
        r = c.post(path, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field
        for value in (IIN, "791028302729", NAME, "Иванов"):
            assert value not in r.text
        assert c.get("/api/v1/vault/stats").json()["erased"] == 0


def test_the_reidentification_log_lists_purposes_and_counts(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        pseudonym = c.post("/api/v1/vault/tokenize", json={"entity_type": "KZ_IIN", "value": IIN}).json()["pseudonym"]
        c.post("/api/v1/vault/detokenize", json={"pseudonym": pseudonym, "purpose": "court-order"})
        c.post("/api/v1/vault/detokenize-batch", json={"pseudonyms": [pseudonym, pseudonym], "purpose": "audit"})
        log = c.get("/api/v1/vault/reidentifications").json()
        stats = c.get("/api/v1/vault/stats", params={"days": 7}).json()
    assert [(e["purpose"], e["count"], e["batch"]) for e in log] == [("audit", 1, True), ("court-order", 1, False)]
    assert stats["reidentifications"] == {"audit": 1, "court-order": 1} and stats["days"] == 7
    assert {d["purpose"] for d in stats["reidentifications_by_day"]} == {"audit", "court-order"}
    assert IIN not in json.dumps(log)
