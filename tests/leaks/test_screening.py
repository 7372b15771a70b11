"""Operator screening with blinded identifiers (qorgau/leaks/screening.py, the API, the client, the CLI).

Real HTTP (``live_server``), real VOPRF, a real segment index under the platform's data dir; incidents are rows
of ``leak_incidents`` written directly (the incident workflow is another part's), tokens are the register's own.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import httpx
import pytest
import rbcl
from conftest import LiveServer, Tenant, make_authority, make_tenant
from typer.testing import CliRunner

from qorgau.api.app import route_table
from qorgau.cli.main import app as cli_app
from qorgau.client.leaks import ScreeningClient, ScreeningFailed
from qorgau.core import audit, auth
from qorgau.core.db import utcnow
from qorgau.core.platform import Platform
from qorgau.core.ratelimit import Limit
from qorgau.identifiers import synthetic_kz_number
from qorgau.leaks import oprf
from qorgau.leaks.models import LeakIncident
from qorgau.leaks.register import index_directory, leak_index_for, leak_keys_for
from qorgau.leaks.screening import EVALUATE_SCOPE, MATCH_SCOPE, screening_for
from qorgau.leaks.segments import write_segment

SCREEN = "/api/v1/leaks/screening"
_serial = iter(range(1, 10**6))


def iin(n: int) -> str:
    return synthetic_kz_number("900101" + "3", 20_000 + n)


def file_incident(platform: Platform, tenant: Tenant, *, status: str = "received", published: bool = False) -> int:
    now = utcnow()
    with platform.db.transaction(tenant.org_id) as s:
        row = LeakIncident(organization_id=tenant.org_id, reference=f"KZ-LEAK-2026-{next(_serial):06d}",
                           responsible_person="DPO", title="test leak", discovered_at=now - timedelta(days=2),
                           nature="hacking", filed_by="test", deadline_at=now, status=status, published=published,
                           data_classes=["iin", "phone", "full_name"])
        s.add(row)
        s.flush()
        return row.id


def leak(platform: Platform, incident_id: int, values: dict[str, list[str]]) -> None:
    """Commit one segment holding the register's tokens of ``values`` (kind -> normalized) for the incident."""
    keys = leak_keys_for(platform)
    tokens = [t for kind, vs in values.items() for t in keys.tokens(kind, vs)]
    write_segment(index_directory(platform), tokens, incident_id)
    leak_index_for(platform).refresh()


def token(platform: Platform, kind: str, value: str) -> str:
    return base64.b64encode(leak_keys_for(platform).token(kind, value)).decode()


def key_with_roles(platform: Platform, tenant: Tenant, *roles: str) -> str:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="k" + "-".join(roles),
                                        roles=list(roles), actor="test")
    return secret


def test_end_to_end_screen_finds_exactly_the_leaked_ones(platform: Platform, live_server: LiveServer,
                                                         tenant_a: Tenant, tenant_b: Tenant) -> None:
    published = file_incident(platform, tenant_a, status="verified", published=True)
    leak(platform, published, {"iin": [iin(1), iin(2)], "phone": ["+77012345678"], "email": ["leaked@mail.kz"]})
    values = [iin(1), "not an identifier", iin(3), "8 (701) 234-56-78", "+77019998877", "Leaked@Mail.KZ",
              "clean@mail.kz", iin(2), "900101300018", iin(1)]
    with ScreeningClient(live_server.url, tenant_b.api_key) as client:
        report = client.screen_values(values)
    status = {r.line: r.status for r in report.results}
    assert status == {1: "found", 2: "invalid", 3: "not_found", 4: "found", 5: "not_found", 6: "found",
                      7: "not_found", 8: "found", 9: "invalid", 10: "found"}
    found = {r.line: r for r in report.found}
    assert {i["reference"] for i in found[1].incidents} == {_reference(platform, published)}
    assert found[4].kind == "phone" and found[6].kind == "email"
    assert found[1].incidents[0]["operator"] == "Org alpha" and found[1].incidents[0]["own"] is False
    assert report.evaluated == 7  # distinct valid identifiers: the repeated IIN is evaluated once
    # the report names lines and references, not values, unless asked
    assert iin(1) not in report.to_csv() and iin(1) in report.to_csv(include_values=True)
    assert report.invalid[0].error and "not an identifier" not in json.dumps(report.to_json())


def _reference(platform: Platform, incident_id: int) -> str:
    with platform.db.reader() as s:
        return s.get(LeakIncident, incident_id, execution_options={"qorgau_cross_tenant": True}).reference


def test_proof_verification_catches_a_wrong_key_or_a_tampered_element(platform: Platform, live_server: LiveServer,
                                                                      tenant_a: Tenant) -> None:
    other = oprf.VoprfServer(oprf.generate_secret_key()).public_key
    with ScreeningClient(live_server.url, tenant_a.api_key, public_key=other) as client, \
            pytest.raises(oprf.ProofInvalid):
        client.screen_values([iin(1)])

    class Tamper(httpx.HTTPTransport):
        """A man in the middle that swaps the first evaluated element for another valid point."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if request.url.path.endswith("/evaluate") and response.status_code == 200:
                body = json.loads(response.read())
                body["evaluated"][0] = base64.b64encode(rbcl.crypto_core_ristretto255_random()).decode()
                return httpx.Response(200, json=body)
            return response

    with ScreeningClient(live_server.url, tenant_a.api_key, transport=Tamper()) as client, \
            pytest.raises(oprf.ProofInvalid):
        client.screen_values([iin(1), iin(2)])
    # the same requests without the tamperer verify
    with ScreeningClient(live_server.url, tenant_a.api_key) as client:
        assert client.screen_values([iin(1), iin(2)]).summary()["not_found"] == 2


def _screening_routes(server: LiveServer) -> list[tuple[str, str]]:
    routes = [(m, p) for m, p in route_table(server.app) if p.startswith(SCREEN)]
    assert {p for _, p in routes} == {f"{SCREEN}/key", f"{SCREEN}/evaluate", f"{SCREEN}/match"}
    return routes


def test_anonymous_requests_get_401_on_every_screening_route(platform: Platform, live_server: LiveServer,
                                                             tenant_a: Tenant) -> None:
    incident = file_incident(platform, tenant_a, status="verified", published=True)
    leak(platform, incident, {"iin": [iin(5)]})
    good = {"tokens": [token(platform, "iin", iin(5))], "blinded": []}
    for headers in ({}, {"Authorization": "Bearer qk_abc_def"}, {"Authorization": "Basic eDp5"},
                    {"Authorization": "Bearer qk_" + "x" * 40}):
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as anonymous:
            for method, path in _screening_routes(live_server):
                body = {k: v for k, v in good.items() if path.endswith("match") == (k == "tokens")} \
                    if method == "POST" else None
                r = anonymous.request(method, path, json=body)
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert r.json()["error"]["code"] and "matches" not in r.text


def test_only_admin_dpo_or_the_authority_may_screen(platform: Platform, live_server: LiveServer,
                                                   tenant_a: Tenant, tenant_b: Tenant) -> None:
    unpublished_b = file_incident(platform, tenant_b)
    leak(platform, unpublished_b, {"iin": [iin(7)]})
    body = {"tokens": [token(platform, "iin", iin(7))]}
    for roles in (("reviewer",), ("regulator",), ("reviewer", "regulator")):  # a regulator role in an operator is nothing
        with live_server.client(key_with_roles(platform, tenant_a, *roles)) as c:
            for path, payload in (("key", None), ("match", body)):
                r = c.request("GET" if payload is None else "POST", f"{SCREEN}/{path}", json=payload)
                assert r.status_code == 403, (roles, path)
    for roles in (("dpo",), ("admin",)):
        with live_server.client(key_with_roles(platform, tenant_a, *roles)) as c:
            assert c.get(f"{SCREEN}/key").status_code == 200
            assert c.post(f"{SCREEN}/match", json=body).json() == {"matches": []}  # B's unpublished: hidden
    # the authorized body's regulator sees every non-fabricated incident, published or not
    authority = make_authority(platform, make_tenant(platform, "gamma", 33))
    with live_server.client(key_with_roles(platform, authority, "regulator")) as c:
        matches = c.post(f"{SCREEN}/match", json=body).json()["matches"]
    assert [m["index"] for m in matches] == [0] and matches[0]["incidents"][0]["published"] is False
    # a staff login (cookie session) goes through the ordinary route and needs its CSRF token
    sessions = {}
    for role in ("dpo", "citizen"):
        _, username, password = tenant_a.users[role]
        with platform.db.transaction() as s:
            cookie = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
            sessions[role] = (cookie, auth.resolve_session(s, cookie).csrf_token)
    cookie, csrf = sessions["dpo"]
    with live_server.client(cookies={"qorgau_session": cookie}) as browser:
        assert browser.post(f"{SCREEN}/match", json=body).status_code == 403  # no CSRF token
        r = browser.post(f"{SCREEN}/match", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json() == {"matches": []}
    cookie, csrf = sessions["citizen"]
    with live_server.client(cookies={"qorgau_session": cookie}) as citizen:
        assert citizen.get(f"{SCREEN}/key").status_code == 403
        assert citizen.post(f"{SCREEN}/match", json=body, headers={"X-CSRF-Token": csrf}).status_code == 403


def test_tenant_b_cannot_learn_membership_from_tenant_a_unpublished_incident(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant, tenant_b: Tenant) -> None:
    unpublished = file_incident(platform, tenant_a, status="verified", published=False)
    leak(platform, unpublished, {"iin": [iin(11)], "phone": ["+77015550011"]})
    leaked, never = token(platform, "iin", iin(11)), token(platform, "iin", iin(12))
    with live_server.client(tenant_b.api_key) as b:
        r_leaked = b.post(f"{SCREEN}/match", json={"tokens": [leaked]})
        r_never = b.post(f"{SCREEN}/match", json={"tokens": [never]})
        assert r_leaked.status_code == r_never.status_code == 200
        assert r_leaked.content == r_never.content == b'{"matches": []}'
        assert dict(r_leaked.headers) .keys() == dict(r_never.headers).keys()
        assert r_leaked.headers["content-length"] == r_never.headers["content-length"]
    with ScreeningClient(live_server.url, tenant_b.api_key) as client:
        assert client.screen_values([iin(11), iin(12), "+7 701 555 00 11"]).summary()["found"] == 0
    # its owner sees it; once published, everyone does
    with ScreeningClient(live_server.url, tenant_a.api_key) as client:
        own = client.screen_values([iin(11), iin(12)])
    assert [r.status for r in own.results] == ["found", "not_found"] and own.results[0].incidents[0]["own"] is True
    with platform.db.transaction(tenant_a.org_id) as s:
        s.get(LeakIncident, unpublished).published = True
    with live_server.client(tenant_b.api_key) as b:
        assert b.post(f"{SCREEN}/match", json={"tokens": [never, leaked]}).json()["matches"][0]["index"] == 1


def test_a_fabricated_incident_is_never_reported(platform: Platform, live_server: LiveServer,
                                                 tenant_a: Tenant, tenant_b: Tenant) -> None:
    fabricated = file_incident(platform, tenant_a, status="fabricated", published=True)
    real = file_incident(platform, tenant_a, status="verified", published=True)
    leak(platform, fabricated, {"iin": [iin(21), iin(22)]})
    leak(platform, real, {"iin": [iin(22)]})
    authority = make_authority(platform, make_tenant(platform, "delta", 44))
    for key in (tenant_a.api_key, tenant_b.api_key, key_with_roles(platform, authority, "regulator")):
        with ScreeningClient(live_server.url, key) as client:
            report = client.screen_values([iin(21), iin(22)])
        assert [r.status for r in report.results] == ["not_found", "found"]
        assert [i["reference"] for i in report.results[1].incidents] == [_reference(platform, real)]


def test_429_with_retry_after_when_the_per_element_budget_is_spent(platform: Platform, live_server: LiveServer,
                                                                   tenant_a: Tenant, tenant_b: Tenant) -> None:
    service = screening_for(platform)
    service.limiter.configure(EVALUATE_SCOPE, Limit(10, 86_400, 10))
    service.limiter.configure(MATCH_SCOPE, Limit(5, 86_400, 5))
    client_side = oprf.VoprfClient(leak_keys_for(platform).public_key)

    def blinded(n: int) -> list[str]:
        return [base64.b64encode(b.blinded_element).decode()
                for b in client_side.blind_batch([oprf.token_input("iin", iin(i)) for i in range(n)])]

    with live_server.client(tenant_a.api_key) as a, live_server.client(tenant_b.api_key) as b:
        assert a.post(f"{SCREEN}/evaluate", json={"blinded": blinded(8)}).status_code == 200
        r = a.post(f"{SCREEN}/evaluate", json={"blinded": blinded(3)})  # 8 + 3 elements > 10: counted per element
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"
        # (9, not 10: RateLimiter's float arithmetic may refuse a request that spends the last unit exactly)
        assert a.post(f"{SCREEN}/evaluate", json={"blinded": blinded(1)}).status_code == 200  # 9 in all
        assert b.post(f"{SCREEN}/evaluate", json={"blinded": blinded(9)}).status_code == 200  # per key
        tokens = [token(platform, "iin", iin(i)) for i in range(4)]
        assert a.post(f"{SCREEN}/match", json={"tokens": tokens}).status_code == 200
        r = a.post(f"{SCREEN}/match", json={"tokens": tokens[:2]})  # the fast path answers 429 too
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    with ScreeningClient(live_server.url, tenant_a.api_key) as client, pytest.raises(ScreeningFailed) as caught:
        client.screen_values([iin(1), iin(2)])  # 9 + 2 > 10
    assert caught.value.status == 429 and caught.value.retry_after_seconds and caught.value.retry_after_seconds >= 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("position, element, why", [
    (1, "***not base64***", "base64"),
    (2, _b64(bytes(31)), "32 bytes"),
    (0, _b64(bytes(32)), "identity"),
    (1, _b64(b"\xff" * 32), "valid ristretto255"),
    (2, 5, "base64 string"),
])
def test_bad_elements_get_422_naming_the_index(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                               position: int, element: object, why: str) -> None:
    good = [_b64(rbcl.crypto_core_ristretto255_random()) for _ in range(3)]
    good[position] = element  # type: ignore[call-overload]
    with live_server.client(tenant_a.api_key) as a:
        r = a.post(f"{SCREEN}/evaluate", json={"blinded": good})
    assert r.status_code == 422 and r.json()["error"]["field"] == f"blinded.{position}"
    if why not in ("base64 string",):
        assert why in r.json()["error"]["message"]


def test_bad_tokens_and_batches_get_422(platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> None:
    ok = token(platform, "iin", iin(1))
    cases = [({"tokens": [ok, _b64(bytes(31))]}, "tokens.1"), ({"tokens": [ok, "%%%"]}, "tokens.1"),
             ({"tokens": []}, "tokens"), ({"tokens": [ok] * 1001}, "tokens"), ({"tokens": ok}, "tokens"),
             ({"tokens": [ok], "extra": 1}, "extra"), ({}, "tokens")]
    with live_server.client(tenant_a.api_key) as a:
        for body, field in cases:
            r = a.post(f"{SCREEN}/match", json=body)
            assert r.status_code == 422 and r.json()["error"]["field"] == field, (field, r.text)
        r = a.post(f"{SCREEN}/evaluate", json={"blinded": [_b64(rbcl.crypto_core_ristretto255_random())] * 1001})
        assert r.status_code == 422 and r.json()["error"]["field"] == "blinded"
        r = a.post(f"{SCREEN}/match", content=b"[1, 2", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    assert ok not in r.text


def test_one_audit_entry_per_call_with_counts_only(platform: Platform, live_server: LiveServer,
                                                   tenant_a: Tenant) -> None:
    incident = file_incident(platform, tenant_a, status="verified", published=True)
    leak(platform, incident, {"iin": [iin(31)]})
    with ScreeningClient(live_server.url, tenant_a.api_key) as client:
        client.screen_values([iin(31), iin(32), iin(33)])
    # the match entry is appended by the batcher within half a second, without anyone flushing
    deadline = time.monotonic() + 5
    while True:
        with platform.db.reader(tenant_a.org_id) as s:
            evaluated = audit.list_entries(s, action="leaks.screening_evaluated")
            matched = audit.list_entries(s, action="leaks.screening_matched")
        if matched or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert screening_for(platform).flush_audit() == 0
    assert len(evaluated) == 1 and evaluated[0].details["elements"] == 3
    assert len(matched) == 1 and matched[0].details == {"tokens": 3, "found": 1, "incidents": 1}
    text = json.dumps([e.details for e in evaluated + matched])
    assert iin(31) not in text and token(platform, "iin", iin(31)) not in text


def test_cli_screen_reports_lines_and_references(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                                 tenant_b: Tenant, tmp_path, monkeypatch) -> None:
    incident = file_incident(platform, tenant_a, status="verified", published=True)
    leak(platform, incident, {"phone": ["+77012345601"], "iin": [iin(41)]})
    customers = tmp_path / "customers.csv"
    customers.write_text(f"name,phone\nA,+7 701 234 56 01\nB,+7 701 234 56 02\nC,garbage\n", encoding="utf-8")
    key_file = tmp_path / "key"
    key_file.write_text(tenant_b.api_key + "\n")
    report = tmp_path / "report.csv"
    runner = CliRunner()
    result = runner.invoke(cli_app, ["leaks", "screen", str(customers), "--column", "phone", "--kind", "phone",
                                     "--url", live_server.url, "--api-key-file", str(key_file),
                                     "--out", str(report)])
    assert result.exit_code == 0, result.output
    lines = report.read_text().splitlines()
    assert lines[0] == "line,kind,status,incidents,operators,error"
    assert lines[1].startswith(f"2,phone,found,{_reference(platform, incident)},Org alpha,")
    assert lines[2].startswith("3,phone,not_found,") and lines[3].startswith("4,phone,invalid,")
    assert "77012345601" not in report.read_text()
    monkeypatch.setenv("QORGAU_API_KEY", tenant_b.api_key)
    values = tmp_path / "values.txt"
    values.write_text(f"{iin(41)}\n\n{iin(42)}\n")
    result = runner.invoke(cli_app, ["leaks", "screen", str(values), "--url", live_server.url, "--json",
                                     "--include-values"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"] == {"lines": 2, "found": 1, "invalid": 0, "not_found": 1, "evaluated": 2}
    assert [(r["line"], r["status"], r["value"]) for r in data["results"]] == [(1, "found", iin(41)),
                                                                              (3, "not_found", iin(42))]
    monkeypatch.delenv("QORGAU_API_KEY")
    result = runner.invoke(cli_app, ["leaks", "screen", str(values), "--url", live_server.url])
    assert result.exit_code == 2 and "api-key-file" in result.output


def test_a_large_batch_and_a_revoked_key(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                          tenant_b: Tenant) -> None:
    """More than a handful of tokens per call takes the vectorized lookup; the visibility rule is the same."""
    published = file_incident(platform, tenant_a, status="verified", published=True)
    hidden = file_incident(platform, tenant_a, status="received")
    both = file_incident(platform, tenant_b, status="disputed", published=True)
    leak(platform, published, {"iin": [iin(i) for i in range(100, 120)]})
    leak(platform, hidden, {"iin": [iin(i) for i in range(115, 125)]})
    leak(platform, both, {"iin": [iin(119)]})
    values = [iin(i) for i in range(90, 140)]
    with ScreeningClient(live_server.url, tenant_b.api_key) as client:
        seen_by_b = client.screen_values(values)
    found_b = {r.line: [i["reference"] for i in r.incidents] for r in seen_by_b.found}
    assert sorted(found_b) == list(range(11, 31))  # iin(100)…iin(119): the published ones only
    assert found_b[30] == sorted([_reference(platform, published), _reference(platform, both)])
    with ScreeningClient(live_server.url, tenant_a.api_key) as client:
        seen_by_a = client.screen_values(values)
    assert sorted(r.line for r in seen_by_a.found) == list(range(11, 36))  # plus its own unpublished ones
    # a revoked key stops working at once on the fast path
    key = key_with_roles(platform, tenant_b, "dpo")
    with live_server.client(key) as c:
        assert c.post(f"{SCREEN}/match", json={"tokens": [token(platform, "iin", iin(100))]}).status_code == 200
        key_id = _key_id(platform, key)
        with platform.db.transaction(tenant_b.org_id) as s:
            auth.revoke_api_key(s, key_id, actor="test")
        r = c.post(f"{SCREEN}/match", json={"tokens": [token(platform, "iin", iin(100))]})
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"


def _key_id(platform: Platform, key: str) -> int:
    with platform.db.reader() as s:
        return auth.resolve_api_key(s, key).id


def test_a_segment_published_elsewhere_is_seen_within_a_second_or_two(platform: Platform, live_server: LiveServer,
                                                                      tenant_a: Tenant) -> None:
    """Another process (the ingest) publishes a segment; the match path refreshes the index at most once a
    second, so the new tokens answer shortly after without anyone calling refresh() here."""
    incident = file_incident(platform, tenant_a, status="verified", published=True)
    body = {"tokens": [token(platform, "iin", iin(51))]}
    with live_server.client(tenant_a.api_key) as a:
        assert a.post(f"{SCREEN}/match", json=body).json() == {"matches": []}
        write_segment(index_directory(platform), leak_keys_for(platform).tokens("iin", [iin(51)]), incident)
        deadline = time.monotonic() + 5
        while not a.post(f"{SCREEN}/match", json=body).json()["matches"]:
            assert time.monotonic() < deadline, "the new segment never became visible"
            time.sleep(0.2)
