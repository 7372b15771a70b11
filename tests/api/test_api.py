"""The HTTP API over real HTTP: health, auth, users, API keys, audit proofs, reference services."""

from __future__ import annotations

from qorgau.core import audit, merkle

from conftest import LiveServer, Tenant


def test_health_reports_the_database_and_schema(live_server: LiveServer) -> None:
    with live_server.client() as c:
        r = c.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["schema_revision"] and body["audit_tree_size"] >= 0


def test_metrics_are_prometheus_text(live_server: LiveServer) -> None:
    with live_server.client() as c:
        c.get("/health")
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "qorgau_http_requests_total" in r.text and "qorgau_audit_tree_size" in r.text


def test_openapi_is_served(live_server: LiveServer) -> None:
    with live_server.client() as c:
        assert c.get("/api/docs").status_code == 200
        spec = c.get("/api/openapi.json").json()
    assert "/api/v1/audit/entries/{entry_id}/proof" in spec["paths"]


def test_no_credentials_means_401_with_a_json_error(live_server: LiveServer) -> None:
    with live_server.client() as c:
        r = c.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


def test_an_api_key_acts_for_its_organization(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.get("/api/v1/me")
    assert r.status_code == 200
    assert r.json()["organization"]["bin"] == tenant_a.bin
    assert r.json()["kind"] == "apikey"


def test_a_revoked_api_key_stops_working_at_once(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        created = c.post("/api/v1/api-keys", json={"name": "scoring", "roles": ["reviewer"]})
        assert created.status_code == 201
        secret, key_id = created.json()["secret"], created.json()["id"]
    with live_server.client(secret) as c:
        assert c.get("/api/v1/me").status_code == 200
    with live_server.client(tenant_a.api_key) as c:
        assert c.delete(f"/api/v1/api-keys/{key_id}").json()["revoked_at"] is not None
    with live_server.client(secret) as c:
        r = c.get("/api/v1/me")
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_api_key_secrets_are_never_listed(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        listed = c.get("/api/v1/api-keys").text
    secret = tenant_a.api_key.split("_", 2)[2]  # qk_<prefix>_<secret>; the secret itself may contain "_"
    assert len(secret) >= 40 and secret not in listed


def test_a_reviewer_key_cannot_create_users(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        secret = c.post("/api/v1/api-keys", json={"name": "r", "roles": ["reviewer"]}).json()["secret"]
    with live_server.client(secret) as c:
        r = c.post("/api/v1/users", json={"username": "x-user", "display_name": "X", "roles": ["dpo"]})
    assert r.status_code == 403 and "admin" in r.json()["error"]["message"]


def test_admin_creates_a_user_with_a_one_time_password(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/users", json={"username": "new-dpo", "display_name": "Жанар Б.", "roles": ["dpo"]})
    assert r.status_code == 201
    assert r.json()["must_change_password"] is True and len(r.json()["one_time_password"]) >= 12


def test_a_duplicate_username_is_a_conflict_naming_the_field(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/users", json={"username": "alpha-admin", "display_name": "X", "roles": ["dpo"]})
    assert r.status_code == 409 and r.json()["error"]["field"] == "username"


def test_an_entry_proof_verifies_independently_of_the_server(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        entries = c.get("/api/v1/audit/entries").json()
        entry = entries[-1]
        proof = c.get(f"/api/v1/audit/entries/{entry['id']}/proof").json()
        head = c.get("/api/v1/audit/tree-head").json()
        pub = c.get("/api/v1/audit/public-key").json()
    assert proof["verified"] is True
    # recompute everything client-side from the published bytes
    leaf = merkle.leaf_hash(bytes.fromhex(entry["leaf"]))
    assert leaf.hex() == proof["leaf_hash"]
    assert merkle.verify_inclusion(leaf, entry["id"], proof["tree_size"], [bytes.fromhex(p) for p in proof["path"]],
                                   bytes.fromhex(proof["tree_head"]["root_hash"]))
    sth = proof["tree_head"]
    from datetime import datetime

    signed = audit.TreeHead(sth["tree_size"], bytes.fromhex(sth["root_hash"]), datetime.fromisoformat(sth["signed_at"]),
                            sth["key_id"], bytes.fromhex(sth["signature"]))
    assert audit.verify_head_signature(signed, bytes.fromhex(pub["public_key"]))
    assert head["tree_size"] >= proof["tree_size"]


def test_consistency_between_two_signed_heads_is_public(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client() as anonymous, live_server.client(tenant_a.api_key) as c:
        first = anonymous.get("/api/v1/audit/tree-head").json()
        c.post("/api/v1/api-keys", json={"name": "another", "roles": ["dpo"]})
        second = anonymous.get("/api/v1/audit/tree-head").json()
        r = anonymous.get("/api/v1/audit/consistency", params={"first": first["tree_size"],
                                                              "second": second["tree_size"]})
    assert second["tree_size"] > first["tree_size"]
    assert r.status_code == 200 and r.json()["verified"] is True
    assert r.json()["first_root"] == first["root_hash"] and r.json()["second_root"] == second["root_hash"]


def test_identifier_validation_masks_the_value(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        ok = c.post("/api/v1/identifiers/validate", json={"kind": "KZ_IIN", "value": "791028302728"})
        bad = c.post("/api/v1/identifiers/validate", json={"kind": "KZ_IIN", "value": "791028302729"})
    assert ok.json()["valid"] is True and ok.json()["facts"]["sex"] == "male"
    assert "791028302728" not in ok.text
    assert bad.json()["valid"] is False and "check digit" in bad.json()["reason"]
    assert "791028302729" not in bad.text


def test_a_breach_found_on_the_friday_before_nauryz_is_due_after_the_holidays(
        live_server: LiveServer, tenant_a: Tenant) -> None:
    # 21-23 March 2026 is Sat-Mon; the two weekend days move to Tue 24 and Wed 25 (Labour Code Art.85)
    with live_server.client(tenant_a.api_key) as c:
        r = c.get("/api/v1/calendar/deadline", params={"start": "2026-03-20", "working_days": 1})
    assert r.status_code == 200 and r.json()["deadline"] == "2026-03-26"


def test_every_state_change_is_in_the_audit_log(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        c.post("/api/v1/users", json={"username": "audited", "display_name": "A", "roles": ["reviewer"]})
        actions = [e["action"] for e in c.get("/api/v1/audit/entries", params={"limit": 5}).json()]
    assert actions[0] == "user.create"


def test_an_api_key_records_when_it_was_last_used(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        c.get("/api/v1/me")
        key = c.get(f"/api/v1/api-keys/{tenant_a.api_key_id}").json()
    assert key["last_used_at"] is not None


def test_only_users_have_a_language_preference(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.patch("/api/v1/me", json={"language": "ru"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "language"


def test_the_access_log_names_route_templates_not_values(live_server: LiveServer, tenant_a: Tenant, caplog) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="qorgau.access"):
        with live_server.client(tenant_a.api_key) as c:
            c.get(f"/api/v1/users/{tenant_a.users['dpo'][0]}", params={"q": "791028302728"})
    lines = [r.getMessage() for r in caplog.records if r.name == "qorgau.access"]
    assert any("/api/v1/users/{user_id}" in line for line in lines), lines
    assert not any("791028302728" in line for line in lines)
