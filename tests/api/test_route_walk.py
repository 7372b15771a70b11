"""Walk every registered route: no organization reaches another's objects, and no input crashes a route.

New routes are covered automatically. A route with a path parameter this file doesn't know makes the
isolation test fail until someone says which tenant object the parameter names (``OWNED_BY``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import LiveServer, Tenant
from consent.owned import consent_objects
from leaks.citizens_helpers import leak_citizen_objects
from leaks.ingest_helpers import an_upload_of
from leaks.test_incidents import a_takedown_of, an_incident_of
from oversight.owned import oversight_objects
from provenance.test_labels_api import a_label_record_of
from qorgau.api.app import route_table
from qorgau.core import audit
from qorgau.core.platform import Platform

from .aisystems_helpers import aisystems_objects
from .datamap_helpers import a_data_source_of, a_scan_job_of
from .vault_helpers import an_erasure_certificate_of


def _first_entry_of(platform: Platform, tenant: Tenant) -> int:
    with platform.db.reader(tenant.org_id) as s:
        return audit.list_entries(s, limit=1)[0].id


# path parameter -> how to find an object of that kind owned by a tenant
OWNED_BY: dict[str, Callable[[Platform, Tenant], int]] = {
    "user_id": lambda p, t: t.users["admin"][0],
    "key_id": lambda p, t: t.api_key_id,
    "entry_id": _first_entry_of,
    **{name: (lambda p, t, name=name: consent_objects(p, t)[name]) for name in (  # consent (issue 5)
        "consent_id", "counterparty_id", "basis_id", "transfer_id", "notification_id", "message_id")},
    "job_id": a_scan_job_of,
    "source_id": a_data_source_of,
    "certificate_id": an_erasure_certificate_of,  # vault (issue 4)
    **{name: (lambda p, t, name=name: oversight_objects(p, t)[name]) for name in (  # oversight (issue 6)
        "decision_id", "objection_id", "system_code", "type_code")},
    **{name: (lambda p, t, name=name: aisystems_objects(p, t)[name]) for name in (  # AI register (issue 7)
        "system_id", "obligation_id", "application_id", "trusted_id", "register_id")},
    "rule_id": lambda p, t: "no.such-rule",  # rule packs are public law, owned by no tenant: an unknown id is 404
    "incident_id": an_incident_of,  # leak register incidents (issue 8, task A)
    "takedown_id": a_takedown_of,
    "upload_id": an_upload_of,  # leak file uploads (issue 8, task C)
    **{name: (lambda p, t, name=name: leak_citizen_objects(p, t)[name]) for name in (  # citizens (issue 8, task D)
        "identifier_id", "leak_notification_id")},
    "record_id": a_label_record_of,  # AI content labels (issue 9, task D)
}
# Paths that are public on purpose (they reveal only hashes and sizes, never tenant data).
PUBLIC = {"/api/v1/audit/tree-head", "/api/v1/audit/public-key", "/api/v1/audit/consistency"}
# The public AI register and the law as code (issue 7): public systems and included trusted entries only.
PUBLIC |= {"/api/v1/public/ai-systems", "/api/v1/public/ai-systems.csv", "/api/v1/public/trusted-systems",
           "/api/v1/public/rules"}
# The leak register's open data (issue 8): published incidents above the size threshold, small cells suppressed.
PUBLIC |= {"/api/v1/public/leaks/statistics", "/api/v1/public/leaks/statistics.csv",
           "/api/v1/public/leaks/incidents", "/api/v1/public/leaks/incidents.csv"}
# The regulator supervises every operator on purpose (tenant keys in these tests carry the regulator role too).
PUBLIC |= {"/api/v1/regulator/ai-systems", "/api/v1/regulator/trusted-requests", "/api/v1/regulator/sandbox"}
# AI content labels (issue 9): anyone verifies a file; the trust anchors are public roots (no tenant data).
PUBLIC |= {"/api/v1/labels/verify", "/api/v1/public/labels/trust-anchors", "/api/v1/public/labels/trust-anchors.pem"}


def api_routes(server: LiveServer) -> list[tuple[str, str]]:
    return [(m, p) for m, p in route_table(server.app) if p.startswith("/api/v1")]


def all_routes(server: LiveServer) -> list[tuple[str, str]]:
    routes = route_table(server.app)
    assert len(routes) > 30, "the route table looks truncated"
    return routes


def _contains_org(value: Any, org_id: int) -> bool:
    if isinstance(value, dict):
        if value.get("organization_id") == org_id:
            return True
        return any(_contains_org(v, org_id) for v in value.values())
    if isinstance(value, list):
        return any(_contains_org(v, org_id) for v in value)
    return False


def test_one_organization_can_never_read_or_change_anothers_objects(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, tenant_b: Tenant) -> None:
    checked = 0
    with live_server.client(tenant_b.api_key) as intruder:
        for method, path in api_routes(live_server):
            params = re.findall(r"{(\w+)}", path)
            unknown = [p for p in params if p not in OWNED_BY]
            assert not unknown, f"{method} {path}: add {unknown} to OWNED_BY so tenant isolation is tested"
            url = path
            for name in params:
                url = url.replace("{" + name + "}", str(OWNED_BY[name](platform, tenant_a)))
            body = {} if method in ("POST", "PUT", "PATCH") else None
            r = intruder.request(method, url, json=body)
            checked += 1
            if params:
                assert r.status_code in (403, 404, 422), f"{method} {url} gave {r.status_code} to another org"
            elif r.status_code < 300 and path not in PUBLIC:
                text = r.text
                assert tenant_a.bin not in text and "alpha-" not in text, f"{method} {path} leaked tenant A"
                assert not _contains_org(r.json(), tenant_a.org_id), f"{method} {path} leaked tenant A's rows"
    assert checked >= 15
    # and nothing of A's changed
    with live_server.client(tenant_a.api_key) as owner:
        assert owner.get("/api/v1/me").status_code == 200  # A's key was not revoked
        assert owner.get(f"/api/v1/api-keys/{tenant_a.api_key_id}").json()["revoked_at"] is None


GARBAGE_BODIES: list[tuple[str, bytes, str]] = [
    ("malformed JSON", b'{"name": "x",', "application/json"),
    ("JSON array", b"[1, 2, 3]", "application/json"),
    ("wrong types", b'{"name": 5, "roles": "admin", "username": [], "kind": 7, "value": {}, "language": 3}',
     "application/json"),
    ("unknown field", b'{"zzz_unknown": 1}', "application/json"),
    ("not JSON at all", b"\xff\xfe\x00garbage", "application/json"),
    ("form instead of JSON", b"a=1&b=2", "application/x-www-form-urlencoded"),
    ("huge number", b'{"name": 1e999999, "value": 123456789012345678901234567890}', "application/json"),
]


def _fill(path: str, value: str) -> str:
    return re.sub(r"{\w+}", value, path)


@pytest.mark.parametrize("label, body, content_type", GARBAGE_BODIES, ids=[g[0] for g in GARBAGE_BODIES])
def test_garbage_bodies_never_crash_a_route(live_server: LiveServer, tenant_a: Tenant, label: str, body: bytes,
                                            content_type: str) -> None:
    with live_server.client(tenant_a.api_key) as c:
        for method, path in all_routes(live_server):
            url = _fill(path, "1")
            r = c.request(method, url, content=body, headers={"content-type": content_type})
            assert r.status_code < 500, f"{label}: {method} {url} -> {r.status_code} {r.text[:200]}"
            if r.status_code >= 400 and path.startswith("/api/"):
                err = r.json()["error"]
                assert err["code"] and err["message"], f"{method} {url}"


@pytest.mark.parametrize("value", ["abc", "-1", "99999999999999999999999", "1.5", "%00", "' OR 1=1 --"])
def test_garbage_in_paths_and_queries_never_crashes_a_route(live_server: LiveServer, tenant_a: Tenant,
                                                           value: str) -> None:
    with live_server.client(tenant_a.api_key) as c:
        for method, path in all_routes(live_server):
            url = _fill(path, value)
            query = {k: value for k in ("limit", "before", "tree_size", "first", "second", "start",
                                        "working_days", "action", "next", "lang")}
            r = c.request(method, url, params=query, json={} if method != "GET" else None)
            assert r.status_code < 500, f"{method} {url} ? {value} -> {r.status_code} {r.text[:200]}"


def test_a_body_over_the_limit_is_refused_before_it_is_read(live_server: LiveServer, tenant_a: Tenant) -> None:
    limit = live_server.app.state.platform.settings.max_request_bytes
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/users", content=b"x" * (limit + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"


def test_a_chunked_body_over_the_limit_is_cut_off(live_server: LiveServer, tenant_a: Tenant) -> None:
    limit = live_server.app.state.platform.settings.max_request_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/users", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("payload, field", [
    ({"username": "ok-name", "display_name": "X", "roles": ["dpo"], "extra": 1}, "extra"),
    ({"username": "ok-name", "display_name": "X", "roles": ["wizard"]}, "roles.0"),
    ({"username": "ok-name", "display_name": "X", "roles": "dpo"}, "roles"),
    ({"username": "x", "display_name": "X", "roles": ["dpo"]}, "username"),
    ({"display_name": "X", "roles": ["dpo"]}, "username"),
])
def test_bad_user_input_names_the_field_and_writes_nothing(live_server: LiveServer, tenant_a: Tenant,
                                                           payload: dict, field: str) -> None:
    with live_server.client(tenant_a.api_key) as c:
        before = len(c.get("/api/v1/users").json())
        r = c.post("/api/v1/users", json=payload)
        assert r.status_code == 422
        assert r.json()["error"]["field"] == field
        assert len(c.get("/api/v1/users").json()) == before


def test_validation_errors_never_echo_the_rejected_value(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/identifiers/validate", json={"kind": "KZ_IIN", "value": "791028302728" * 20})
    assert r.status_code == 422 and "791028302728" not in r.text


@pytest.mark.parametrize("token", [b"", b"wrong", "\u00e9".encode("latin-1"), b"x" * 5000])
def test_a_cookie_session_needs_its_csrf_token_for_changes(platform: Platform, live_server: LiveServer,
                                                           tenant_a: Tenant, token: bytes) -> None:
    from qorgau.core import auth

    _, username, password = tenant_a.users["admin"]
    with platform.db.transaction() as s:
        cookie = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
    with live_server.client(cookies={"qorgau_session": cookie}) as browser:
        assert browser.get("/api/v1/me").status_code == 200  # reading needs no token
        r = browser.patch("/api/v1/me", json={"language": "ru"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and r.json()["error"]["field"] == "x-csrf-token"
