"""Consent over real HTTP: the whole story (give → check → transfer → withdraw → webhook → confirmation),
bad input, who may call what, and one operator never reaching another's consent objects."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from conftest import LiveServer, Tenant
from consent.owned import consent_objects, subject_iin
from consent.receiver import Receiver
from qorgau.api.app import route_table
from qorgau.consent import receipts
from qorgau.core import auth
from qorgau.core.platform import Platform


def subject(serial: int = 1) -> dict[str, str]:
    return {"identifier_type": "KZ_IIN", "identifier": subject_iin(serial)}


def consent_body(**overrides: Any) -> dict[str, Any]:
    body = {"subject": subject(), "purpose": "marketing.sms", "data_categories": ["PHONE_NUMBER"],
            "channel": "non_state_service", "full_name": "Айгүл Төлегенқызы"}
    body.update(overrides)
    return body


def test_the_whole_story_over_http(live_server: LiveServer, tenant_a: Tenant) -> None:
    with Receiver() as receiver, live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/consent/counterparties", json={"name": "SMS Gateway", "kind": "processor",
                                                           "bin": "990140004654", "webhook_url": receiver.url})
        assert r.status_code == 201, r.text
        created = r.json()
        cp_id, receiver.secret, token = created["counterparty"]["id"], created["webhook_secret"], created["token"]
        assert c.get(f"/api/v1/consent/counterparties/{cp_id}").json()["has_webhook_secret"] is True
        assert created["webhook_secret"] not in c.get(f"/api/v1/consent/counterparties/{cp_id}").text

        r = c.post("/api/v1/consent/consents", json=consent_body(counterparties=[cp_id]))
        assert r.status_code == 201, r.text
        consent = r.json()
        assert consent["status"] == "active" and consent["subject_pseudonym"].startswith("ps_")
        assert subject_iin(1) not in r.text and "Айгүл" not in r.text
        assert consent["purpose_names"]["kk"] and consent["purpose_names"]["ru"]

        check = {"subject": {"pseudonym": consent["subject_pseudonym"]}, "purpose": "marketing.sms",
                 "data_categories": ["PHONE_NUMBER"]}
        d = c.post("/api/v1/consent/check", json=check).json()
        assert d["allow"] and d["basis"] == "consent" and d["consent_id"] == consent["id"]
        assert c.post("/api/v1/consent/check", json={"subject": subject(), "purpose": "marketing.sms"}).json()["allow"]

        r = c.post("/api/v1/consent/transfers", json={"consent_id": consent["id"], "counterparty_id": cp_id,
                                                      "data_categories": ["PHONE_NUMBER"]})
        assert r.status_code == 201, r.text

        r = c.post(f"/api/v1/consent/consents/{consent['id']}/withdraw", json={"channel": "non_state_service"})
        assert r.status_code == 201, r.text
        withdrawal = r.json()
        d = c.post("/api/v1/consent/check", json=check).json()
        # the subject had nothing else at this operator: crypto-shredded, and checks say so (docs/consent.md)
        assert withdrawal["shredded"] and not d["allow"] and d["reason"] == "subject_erased"
        again = c.post(f"/api/v1/consent/consents/{consent['id']}/withdraw", json={"channel": "written"})
        assert again.status_code == 200 and again.json()["repeated"] and again.json()["receipt"] == withdrawal["receipt"]

        # the server's own dispatcher thread delivers the notice to the processor
        assert receiver.wait_for(lambda: len(receiver.received) >= 1, timeout=30)
        got = receiver.received[0]
        assert got.signature_ok and got.body["notification_id"] == withdrawal["notifications"][0]["id"]
        notification_id = got.body["notification_id"]

        # the processor confirms with its own token, through the path the webhook gave it
        with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}) as processor:
            r = processor.post(got.body["confirm"]["path"])
            assert r.status_code == 200, r.text
            assert r.json()["confirmed_at"] and r.json()["seconds_to_stop"] >= 0 and not r.json()["overdue"]
            # the token reaches nothing else
            assert processor.get("/api/v1/consent/consents").status_code == 401
        n = c.get(f"/api/v1/consent/notifications/{notification_id}").json()
        assert n["delivery"]["status"] == "delivered" and n["confirmed_at"]

        # receipts: the consent's and the withdrawal's, both verify against the published key
        key = c.get("/api/v1/consent/receipt-key").json()["public_key"]
        r = c.get(f"/api/v1/consent/consents/{consent['id']}/receipt")
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        assert receipts.verify_receipt(r.content, public_key=key).valid
        assert r.json()["receipt"]["status"] == "withdrawn" and subject_iin(1) not in r.text
        w = c.get(f"/api/v1/consent/consents/{consent['id']}/withdrawal").json()
        assert receipts.verify_receipt(w["receipt"], public_key=key).valid
        v = c.post("/api/v1/consent/receipts/verify", content=r.content).json()
        assert v["valid"] and v["receipt_id"] == consent["receipt_id"]
        tampered = r.content.replace(b'"public_sources": false', b'"public_sources": true')
        assert not c.post("/api/v1/consent/receipts/verify", content=tampered).json()["valid"]

        history = c.get(f"/api/v1/consent/consents/{consent['id']}/history").json()
        assert [h["event"] for h in history] == ["given", "transfer", "withdrawn"]
        stats = c.get("/api/v1/consent/stats").json()
        assert stats["by_purpose"]["marketing.sms"]["withdrawn"] == 1 and stats["outbox"]["delivered"] == 1


@pytest.mark.parametrize("override, field", [
    ({"purpose": "astrology"}, "purpose"),
    ({"data_categories": ["shoe_size"]}, "data_categories.0"),
    ({"subject": {"identifier_type": "KZ_IIN", "identifier": "791028302729"}}, "subject.identifier"),
    ({"subject": {"identifier_type": "SHOE", "identifier": "42"}}, "subject.identifier_type"),
    ({"subject": {}}, "subject"),
    ({"channel": "pigeon"}, "channel"),
    ({"counterparties": [99999]}, "counterparties.0"),
    ({"valid_until": "2020-01-01T00:00:00+05:00"}, "valid_until"),
    ({"extra": 1}, "extra"),
])
def test_bad_consents_are_refused_naming_the_field_without_echoing_values(
        live_server: LiveServer, tenant_a: Tenant, override: dict, field: str) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/consent/consents", json=consent_body(**override))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field
        assert "791028302729" not in r.text and "Айгүл" not in r.text
        assert c.get("/api/v1/consent/consents").json() == []


def test_a_withdrawal_the_law_forbids_is_refused_with_its_basis(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        consent = c.post("/api/v1/consent/consents", json=consent_body(purpose="kyc.identification",
                                                                        data_categories=["KZ_IIN"])).json()
        r = c.post("/api/v1/consent/legal-bases", json={"kind": "law", "purpose": "kyc",
                                                        "reference": "AML/CFT Law No. 191-IV Art.5"})
        assert r.status_code == 201, r.text
        w = c.post(f"/api/v1/consent/consents/{consent['id']}/withdraw", json={"channel": "written"}).json()
        assert w["refused"] and w["basis"]["reference"] == "AML/CFT Law No. 191-IV Art.5" and not w["shredded"]
        d = c.post("/api/v1/consent/check", json={"subject": subject(), "purpose": "kyc.identification"}).json()
        assert d["allow"] and d["basis"] == "law" and d["reason"] == "legal_basis"


def test_the_decision_point_is_for_operators_not_citizens_and_revoked_keys_stop_at_once(
        platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> None:
    body = {"subject": subject(), "purpose": "marketing.sms"}
    with platform.db.transaction() as s:
        citizen = auth.authenticate_password(s, tenant_a.users["citizen"][1], tenant_a.users["citizen"][2])
        cookie = auth.open_session(s, citizen, hours=1)
        csrf = auth.resolve_session(s, cookie).csrf_token
        key, secret = auth.create_api_key(s, organization_id=tenant_a.org_id, name="scoring", roles=["reviewer"],
                                          actor="test")
    with live_server.client(cookies={"qorgau_session": cookie}) as browser:
        # a citizen's session (with its CSRF token) is authenticated, but the decision point is not for citizens
        r = browser.post("/api/v1/consent/check", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and "citizens" in r.json()["error"]["message"]
    with live_server.client(secret) as c:
        assert c.post("/api/v1/consent/check", json=body).json()["reason"] == "unknown_subject"
        with platform.db.transaction(tenant_a.org_id) as s:
            auth.revoke_api_key(s, key.id, actor="test")
        r = c.post("/api/v1/consent/check", json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        assert c.get("/api/v1/consent/consents").status_code == 401
    with live_server.client("qk_kdeadbeef00_wrong") as c:
        assert c.post("/api/v1/consent/check", json=body).status_code == 401
    with live_server.client(tenant_a.api_key) as c:
        for bad, field in ((b"{", None), (b'{"subject": {"pseudonym": "ps_x"}, "purpose": "a", "zz": 1}', "zz"),
                           (b'{"subject": {"pseudonym": "nope"}, "purpose": "marketing"}', "subject.pseudonym"),
                           (b'{"subject": {"pseudonym": "ps_' + b"a" * 26 + b'"}, "purpose": "Bad Purpose"}', "purpose")):
            r = c.post("/api/v1/consent/check", content=bad, headers={"content-type": "application/json"})
            assert r.status_code == 422, (bad, r.text)
            if field:
                assert r.json()["error"]["field"] == field


def test_regulators_read_but_never_change(platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> None:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant_a.org_id, name="supervisor", roles=["regulator"],
                                        actor="test")
    with live_server.client(secret) as c:
        assert c.get("/api/v1/consent/consents").status_code == 200
        assert c.post("/api/v1/consent/consents", json=consent_body()).status_code == 403
        assert c.post("/api/v1/consent/counterparties", json={"name": "X", "kind": "processor",
                                                              "bin": "990140004654"}).status_code == 403


def test_another_operator_reaches_none_of_the_consent_objects(platform: Platform, live_server: LiveServer,
                                                              tenant_a: Tenant, tenant_b: Tenant) -> None:
    owned = consent_objects(platform, tenant_a)
    theirs = consent_objects(platform, tenant_b)
    routes = [(m, p) for m, p in route_table(live_server.app) if p.startswith("/api/v1/consent/")]
    checked = 0
    with live_server.client(tenant_b.api_key) as intruder:
        for method, path in routes:
            params = re.findall(r"{(\w+)}", path)
            if not params:
                continue
            url = path
            for name in params:
                url = url.replace("{" + name + "}", str(owned[name]))
            r = intruder.request(method, url, json={"channel": "written"} if method == "POST" else None)
            assert r.status_code in (403, 404, 422), f"{method} {url} gave {r.status_code}"
            checked += 1
        listed = intruder.get("/api/v1/consent/consents").json()
        assert {c["id"] for c in listed} == {theirs["consent_id"], theirs["withdrawn_consent_id"]}
        assert not intruder.post("/api/v1/consent/subjects/consents",
                                 json={"subject": subject(tenant_a.org_id * 10 + 1)}).json()
    assert checked >= 12
    # and B's processor token can't confirm A's notification
    with platform.db.transaction(tenant_b.org_id) as s:
        from qorgau.consent.service import consent_for

        token = consent_for(platform).rotate_counterparty_token(s, theirs["counterparty_id"], actor="test")
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}) as processor:
        r = processor.post(f"/api/v1/consent/notifications/{owned['notification_id']}/confirm")
        assert r.status_code == 404
        assert processor.post(f"/api/v1/consent/notifications/{theirs['notification_id']}/confirm").status_code == 200
    with live_server.client(tenant_a.api_key) as owner:
        assert owner.get(f"/api/v1/consent/notifications/{owned['notification_id']}").json()["confirmed_at"] is None
        assert owner.get(f"/api/v1/consent/consents/{owned['consent_id']}").json()["status"] == "active"


def test_purposes_and_categories_are_served_in_three_languages(live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        purposes = {p["code"]: p for p in c.get("/api/v1/consent/purposes").json()}
        assert purposes["marketing.sms"]["parent"] == "marketing"
        assert all(set(p["names"]) == {"kk", "ru", "en"} for p in purposes.values())
        r = c.post("/api/v1/consent/purposes", json={"code": "marketing.whatsapp",
                                                     "names": {"kk": "WhatsApp арқылы жарнама",
                                                               "ru": "Реклама в WhatsApp", "en": "WhatsApp ads"}})
        assert r.status_code == 201 and r.json()["custom"]
        r = c.post("/api/v1/consent/purposes/import", json={"text": "purposes:\n  - code: loyalty\n    names: {kk: a}\n",
                                                            "source": "mine.yaml"})
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("mine.yaml:3:")
        categories = {x["code"]: x for x in c.get("/api/v1/consent/categories").json()}
        assert categories["biometric"]["sensitive"] and not categories["PHONE_NUMBER"]["sensitive"]
        assert c.post("/api/v1/consent/consents", json=consent_body(purpose="marketing.whatsapp")).status_code == 201


def test_withdrawal_to_first_processor_notified_is_fast_on_loopback(live_server: LiveServer, tenant_a: Tenant) -> None:
    """A smoke check of the in-server dispatcher's wake-up (the measured figures are bench/consent_check.py's):
    the notice arrives without waiting out retries or long polls."""
    with Receiver() as receiver, live_server.client(tenant_a.api_key) as c:
        created = c.post("/api/v1/consent/counterparties", json={"name": "P", "kind": "processor",
                                                                 "bin": "990140004654", "webhook_url": receiver.url}).json()
        cp = created["counterparty"]["id"]
        consent = c.post("/api/v1/consent/consents", json=consent_body(counterparties=[cp])).json()
        c.post("/api/v1/consent/transfers", json={"consent_id": consent["id"], "counterparty_id": cp,
                                                  "data_categories": ["PHONE_NUMBER"]})
        started = time.monotonic()
        assert c.post(f"/api/v1/consent/consents/{consent['id']}/withdraw", json={"channel": "written"}).status_code == 201
        assert receiver.wait_for(lambda: bool(receiver.received), timeout=30)
        assert receiver.received[0].at - started < 30
