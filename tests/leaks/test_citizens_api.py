"""The citizen's leak-register API over real HTTP (/api/v1/me/leaks): only a signed-in citizen gets answers, only
about identifiers they proved are theirs; anonymous callers and operators learn nothing; lookups and codes are
rate-limited with 429 + Retry-After."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from qorgau.api.app import route_table
from qorgau.core import auth
from qorgau.core.platform import Platform

from .citizens_helpers import last_email_link, last_sms_code, make_incident, publish_segment

PHONE = "+77011234567"
BASE = "/api/v1/me/leaks"


@contextlib.contextmanager
def citizen_client(platform: Platform, server, tenant) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """A citizen's browser session: the session cookie, and the CSRF token its pages carry."""
    _, username, password = tenant.users["citizen"]
    with platform.db.transaction() as s:
        cookie = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
    with platform.db.reader() as s:
        csrf = auth.resolve_session(s, cookie).csrf_token
    with server.client(cookies={"qorgau_session": cookie}) as client:
        client.headers["X-CSRF-Token"] = csrf
        yield client


def leak_routes(server) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(m, p) for m, p in route_table(server.app) if p.startswith(BASE)]


def test_anonymous_requests_to_every_leak_lookup_route_get_401_and_learn_nothing(
        platform: Platform, live_server, tenant_a) -> None:
    user = tenant_a.users["citizen"][0]
    incident = make_incident(platform, tenant_a.org_id)
    publish_segment(platform, incident, [("phone", PHONE)])
    routes = leak_routes(live_server)
    assert len(routes) >= 10
    bodies = set()
    with live_server.client() as anonymous:
        for method, path in routes:
            url = path.replace("{identifier_id}", "1").replace("{leak_notification_id}", "1")
            for params, body in (({}, {}), ({"phone": PHONE, "iin": "850101300000"}, {"phone": PHONE})):
                r = anonymous.request(method, url, params=params,
                                      json=body if method in ("POST", "PUT") else None)
                assert r.status_code == 401, f"{method} {url}: {r.status_code}"
                assert PHONE not in r.text and str(incident) not in r.text.replace("401", "")
                bodies.add(r.text)
    assert len(bodies) == 1  # one and the same answer, whatever was asked
    assert user  # the citizen exists: still nothing was said about them


def test_operators_and_api_keys_cannot_use_the_citizen_api(platform: Platform, live_server, tenant_a) -> None:
    with live_server.client(tenant_a.api_key) as operator:
        for method, path in leak_routes(live_server):
            url = path.replace("{identifier_id}", "1").replace("{leak_notification_id}", "1")
            r = operator.request(method, url, json={} if method in ("POST", "PUT") else None)
            assert r.status_code in (403, 422), f"{method} {url}: {r.status_code}"
    with live_server.client(tenant_a.api_key) as operator:
        r = operator.get(f"{BASE}/lookup")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_a_citizen_verifies_a_phone_subscribes_and_sees_their_incidents(platform: Platform, live_server,
                                                                        tenant_a, tenant_b) -> None:
    with citizen_client(platform, live_server, tenant_a) as me:
        assert me.get(f"{BASE}/identifiers").json() == {"identifiers": []}
        r = me.post(f"{BASE}/phone/start", json={"phone": "8 701 123 45 67", "lang": "en"})
        assert r.status_code == 201, r.text
        verification = r.json()["verification"]
        assert verification["demo_sink"] is True and PHONE not in r.text
        wrong = me.post(f"{BASE}/phone/confirm", json={"selector": verification["selector"], "code": "000000"
                                                        if last_sms_code(platform, PHONE) != "000000" else "111111"})
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "wrong_code"
        r = me.post(f"{BASE}/phone/confirm", json={"selector": verification["selector"],
                                                    "code": last_sms_code(platform, PHONE)})
        assert r.status_code == 200, r.text
        identifier = r.json()["identifier"]
        r = me.put(f"{BASE}/identifiers/{identifier['id']}/subscription", json={"subscribed": True})
        assert r.status_code == 200 and r.json()["identifier"]["subscribed"] is True
        incident = make_incident(platform, tenant_b.org_id, status="verified", published=True)
        tokens = publish_segment(platform, incident, [("phone", PHONE)])
        from qorgau.leaks.citizens import leak_citizens_for

        assert leak_citizens_for(platform).notify_new_tokens(incident, tokens) == 1
        found = me.get(f"{BASE}/lookup")
        assert found.status_code == 200 and found.headers["cache-control"] == "no-store"
        [item] = found.json()["incidents"]
        assert item["incident_id"] == incident and item["operator"] == "Org beta"
        assert item["matched"] == [{"kind": "phone", "mask": identifier["mask"]}]
        assert PHONE not in found.text and "1234567" not in found.text
        [note] = me.get(f"{BASE}/notifications").json()["notifications"]
        assert note["incident_id"] == incident and note["seen_at"] is None
        seen = me.post(f"{BASE}/notifications/{note['id']}/seen")
        assert seen.status_code == 200 and seen.json()["notification"]["seen_at"]
        # a cookie session needs its CSRF token for changes
        r = me.delete(f"{BASE}/identifiers/{identifier['id']}", headers={"X-CSRF-Token": "wrong" * 8})
        assert r.status_code == 403
        assert me.delete(f"{BASE}/identifiers/{identifier['id']}").status_code == 204
        assert me.get(f"{BASE}/identifiers").json() == {"identifiers": []}


def test_a_citizen_cannot_look_up_or_touch_someone_elses_identifier(platform: Platform, live_server, tenant_a,
                                                                    tenant_b) -> None:
    with citizen_client(platform, live_server, tenant_a) as alice:
        started = alice.post(f"{BASE}/phone/start", json={"phone": PHONE}).json()["verification"]
        code = last_sms_code(platform, PHONE)
        alice_id = alice.post(f"{BASE}/phone/confirm", json={"selector": started["selector"],
                                                             "code": code}).json()["identifier"]["id"]
        mail = alice.post(f"{BASE}/email/start", json={"email": "alice@example.kz"})
        assert mail.status_code == 201
    incident = make_incident(platform, tenant_a.org_id)
    publish_segment(platform, incident, [("phone", PHONE)])
    _, selector, secret = last_email_link(platform, "alice@example.kz")
    with citizen_client(platform, live_server, tenant_b) as bob:
        # No parameter takes a value: a phone in the query or body is ignored or refused, never looked up.
        r = bob.get(f"{BASE}/lookup", params={"phone": PHONE, "value": PHONE, "kind": "phone"})
        assert r.status_code == 200 and r.json()["incidents"] == []
        assert bob.post(f"{BASE}/lookup", json={"phone": PHONE}).status_code == 405
        # Alice's code, link and identifier are "not found" for Bob, like missing ones.
        r = bob.post(f"{BASE}/phone/confirm", json={"selector": started["selector"], "code": code})
        assert r.status_code == 404
        r = bob.post(f"{BASE}/email/confirm", json={"selector": selector, "secret": secret})
        assert r.status_code == 404
        for method, url, body in (("PUT", f"{BASE}/identifiers/{alice_id}/subscription", {"subscribed": True}),
                                  ("DELETE", f"{BASE}/identifiers/{alice_id}", None)):
            assert bob.request(method, url, json=body).status_code == 404
        # Starting a challenge for Alice's phone proves nothing: Bob would need the code sent to Alice.
        r = bob.post(f"{BASE}/phone/start", json={"phone": PHONE})
        assert r.status_code == 201 and "incident" not in r.text
        assert bob.get(f"{BASE}/identifiers").json() == {"identifiers": []}
    with citizen_client(platform, live_server, tenant_a) as alice:
        r = alice.post(f"{BASE}/email/confirm", json={"selector": selector, "secret": secret})
        assert r.status_code == 200 and r.json()["identifier"]["kind"] == "email"
        assert [i["incident_id"] for i in alice.get(f"{BASE}/lookup").json()["incidents"]] == [incident]


def test_lookup_and_code_paths_answer_429_with_retry_after(platform: Platform, live_server, tenant_a) -> None:
    with citizen_client(platform, live_server, tenant_a) as me:
        for _ in range(platform.settings.leaks_citizen_lookups_per_hour):
            assert me.get(f"{BASE}/lookup").status_code == 200
        r = me.get(f"{BASE}/lookup")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["code"] == "rate_limited"
        for n in range(platform.settings.leaks_otp_starts_per_hour):
            assert me.post(f"{BASE}/phone/start", json={"phone": f"+7701555000{n}"}).status_code == 201
        r = me.post(f"{BASE}/phone/start", json={"phone": "+77015550009"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        r = me.post(f"{BASE}/email/start", json={"email": "x@example.kz"})
        assert r.status_code == 429 and "Retry-After" in r.headers


@pytest.mark.parametrize("body, field", [
    ({"phone": "not a phone"}, "phone"), ({"phone": PHONE, "extra": 1}, "extra"), ({}, "phone"),
])
def test_bad_input_names_the_field(platform: Platform, live_server, tenant_a, body: dict, field: str) -> None:
    with citizen_client(platform, live_server, tenant_a) as me:
        r = me.post(f"{BASE}/phone/start", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == field
    assert "not a phone" not in r.text
