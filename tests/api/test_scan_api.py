"""POST /api/v1/scan: personal data found in a text, without the text ever coming back."""

from __future__ import annotations

from conftest import LiveServer, Tenant

TEXT = "Клиент Жаксылыков Ерлан Болатұлы, ИИН 791028302728, тел. +7 701 234 56 78, aigerim@gov.kz"


def test_a_text_scan_returns_typed_findings_without_values(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/scan", json={"text": TEXT, "explain": True})
    assert r.status_code == 200
    body = r.json()
    types = {f["type"] for f in body["findings"]}
    assert {"KZ_IIN", "PHONE_NUMBER", "EMAIL_ADDRESS", "PERSON"} <= types
    iin = next(f for f in body["findings"] if f["type"] == "KZ_IIN")
    assert TEXT[iin["start"]:iin["end"]] == "791028302728" and iin["category"] == "identifying"
    assert iin["explanation"]["validated"] is True
    for value in ("791028302728", "aigerim@gov.kz", "701 234 56 78"):
        assert value not in r.text
    assert body["categories"]["identifying"] == len(body["findings"])


def test_a_scan_can_be_limited_to_types_and_to_identifiers(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        only = c.post("/api/v1/scan", json={"text": TEXT, "types": ["KZ_IIN"]}).json()
        fast = c.post("/api/v1/scan", json={"text": TEXT, "identifiers_only": True}).json()
    assert [f["type"] for f in only["findings"]] == ["KZ_IIN"]
    assert "PERSON" not in fast["counts"] and fast["counts"]["KZ_IIN"] == 1


def test_a_citizen_cannot_use_the_scanner(live_server: LiveServer, tenant_a: Tenant, platform) -> None:
    from qorgau.core import auth

    _, username, password = tenant_a.users["citizen"]
    with platform.db.transaction() as s:
        cookie = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
    with live_server.client(cookies={"qorgau_session": cookie}) as c:
        principal = c.get("/api/v1/me").json()
        r = c.post("/api/v1/scan", json={"text": TEXT}, headers={"X-CSRF-Token": "x"})
    assert principal["roles"] == ["citizen"] and r.status_code == 403


def test_an_overlong_text_is_refused_naming_the_field(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/scan", json={"text": "x" * 1_000_001})
    assert r.status_code == 422 and r.json()["error"]["field"] == "text"


def test_offsets_refer_to_the_text_as_sent_even_with_leading_spaces(live_server: LiveServer,
                                                                   tenant_a: Tenant) -> None:
    text = "   \n  ИИН 791028302728"
    with live_server.client(tenant_a.api_key) as c:
        found = c.post("/api/v1/scan", json={"text": text, "identifiers_only": True}).json()["findings"]
    assert [text[f["start"]:f["end"]] for f in found] == ["791028302728"]
