"""The consent pages over real HTTP: the citizen portal (/me) and the operator's view (/consents).

Who may see what, CSRF on every change, one-step confirmation of a withdrawal, receipts that verify, and
isolation: a citizen sees only their own consents, an operator's user only their operator's.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from qorgau.consent.citizens import citizens_for
from qorgau.consent.receipts import verify_receipt
from qorgau.consent.service import ConsentService, SubjectRef, consent_for
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number

from .conftest import browser_client, csrf_from, log_in

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

IIN = synthetic_kz_number("8807214", 3131)
STRANGER_IIN = synthetic_kz_number("9502125", 4141)
ME = SubjectRef(identifier_type="KZ_IIN", identifier=IIN)
STRANGER = SubjectRef(identifier_type="KZ_IIN", identifier=STRANGER_IIN)
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


@pytest.fixture
def consents(platform: Platform) -> ConsentService:
    return consent_for(platform)


def give(consents: ConsentService, platform: Platform, org_id: int, subject: SubjectRef, purpose: str,
         categories: list[str], **overrides: Any) -> int:
    fields: dict[str, Any] = dict(valid_until=None, third_party_transfer=False, counterparties=[], cross_border=False,
                                  countries=[], public_sources=False, other=None, channel="written",
                                  evidence_ref=None, evidence_sha256=None, actor="user:1")
    fields.update(overrides)
    with platform.db.transaction(org_id) as session:
        return consents.give(session, subject, purpose=purpose, data_categories=categories, **fields).id


def issue_code(platform: Platform, iin: str = IIN) -> str:
    with platform.db.transaction() as session:
        return citizens_for(platform).issue_enrollment(session, iin, actor="test").code


def verify_citizen(platform: Platform, tenant: Tenant, iin: str = IIN) -> None:
    user_id = tenant.users["citizen"][0]
    citizens_for(platform).verify(user_id, issue_code(platform, iin), actor=f"user:{user_id}")


@contextlib.contextmanager
def signed_in(server: LiveServer, tenant: Tenant, role: str, lang: str = "en") -> Iterator[httpx.Client]:
    _, username, password = tenant.users[role]
    with browser_client(server, **{"Accept-Language": lang}) as client:
        assert log_in(client, username, password).status_code == 303
        yield client


@pytest.fixture
def world(platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant) -> dict[str, Any]:
    """My consents at two operators (one with a processor that received data), a stranger's at the second."""
    with platform.db.transaction(tenant_b.org_id) as session:
        cp = consents.add_counterparty(session, name="Beta SMS gateway", kind="processor",
                                       bin=synthetic_kz_number("070540", 77), webhook_url="http://127.0.0.1:9/hook",
                                       actor="test").counterparty.id
    mine_a = give(consents, platform, tenant_a.org_id, ME, "credit.scoring", ["credit_history"])
    mine_b = give(consents, platform, tenant_b.org_id, ME, "marketing.sms", ["PHONE_NUMBER"], counterparties=[cp])
    with platform.db.transaction(tenant_b.org_id) as session:
        consents.record_transfer(session, mine_b, cp, data_categories=["PHONE_NUMBER"], actor="test")
    theirs = give(consents, platform, tenant_b.org_id, STRANGER, "marketing.email", ["EMAIL_ADDRESS"])
    verify_citizen(platform, tenant_a)
    return {"mine_a": mine_a, "mine_b": mine_b, "theirs": theirs, "counterparty": cp}


# --- who may see the portal ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/me", "/me/data", "/me/verify", "/me/consents/1/1", "/consents",
                                  "/consents/enroll"])
def test_consent_pages_ask_for_a_login(server: LiveServer, path: str) -> None:
    with browser_client(server) as client:
        response = client.get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.mark.parametrize("role", ["admin", "dpo", "reviewer", "regulator"])
def test_only_citizens_enter_the_portal(server: LiveServer, tenant_a: Tenant, role: str) -> None:
    with signed_in(server, tenant_a, role) as client:
        for path in ("/me", "/me/data", "/me/verify", "/me/consents/1/1", "/me/consents/1/1/receipt.json"):
            assert client.get(path).status_code == 403, path


def test_a_citizen_without_a_verified_identity_gets_the_enrollment_form(
        server: LiveServer, platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    give(consents, platform, tenant_a.org_id, ME, "marketing.sms", ["PHONE_NUMBER"])
    with signed_in(server, tenant_a, "citizen") as client:
        blocked = client.get("/me")
        assert blocked.status_code == 403 and 'action="/me/verify"' in blocked.text
        assert "Advertising by SMS" not in blocked.text
        form = client.get("/me/verify")
        token = csrf_from(form.text)
        assert client.post("/me/verify", data={"code": issue_code(platform)}).status_code == 403  # no CSRF
        wrong = client.post("/me/verify", data={"code": "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA", "csrf_token": token})
        assert wrong.status_code == 422 and "This enrollment code does not exist." in wrong.text
        garbage = client.post("/me/verify", data={"code": "x" * 500, "csrf_token": token})
        assert garbage.status_code == 422 and "24 letters and digits" in garbage.text
        done = client.post("/me/verify", data={"code": issue_code(platform).lower(), "csrf_token": token})
        assert done.status_code == 303 and done.headers["location"] == "/me?notice=verified"
        page = client.get("/me?notice=verified")
        assert page.status_code == 200 and "Your identity is verified." in page.text
        assert "Advertising by SMS" in page.text and IIN not in page.text and IIN[:2] + "******" in page.text
        again = client.get("/me/verify")
        assert "Your identity is verified" in again.text and 'action="/me/verify"' not in again.text


# --- my consents -------------------------------------------------------------------------------------


def test_my_consents_are_grouped_by_operator_and_nobody_else_s_are_shown(
        server: LiveServer, tenant_a: Tenant, tenant_b: Tenant, world: dict[str, Any]) -> None:
    with signed_in(server, tenant_a, "citizen") as client:
        page = client.get("/me")
        data = client.get("/me/data")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = page.text
    assert text.index("Org alpha") < text.index("Org beta")
    assert tenant_a.bin in text and tenant_b.bin in text
    assert "Credit scoring" in text and "Advertising by SMS" in text and "Credit history" in text
    assert f'data-consent="{world["mine_a"]}"' in text and f'data-consent="{world["mine_b"]}"' in text
    assert f'data-consent="{world["theirs"]}"' not in text and "Advertising by e-mail" not in text
    assert IIN not in text and STRANGER_IIN not in text
    assert data.status_code == 200 and "Beta SMS gateway" in data.text and "Processor" in data.text
    with signed_in(server, tenant_a, "citizen", "kk") as kk:
        kazakh = kk.get("/me").text
    assert "Менің келісімдерім" in kazakh and "Кредиттік скоринг" in kazakh


def test_someone_else_s_consent_is_not_found_and_cannot_be_withdrawn(
        server: LiveServer, platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant,
        world: dict[str, Any]) -> None:
    theirs, org = world["theirs"], tenant_b.org_id
    with signed_in(server, tenant_a, "citizen") as client:
        token = csrf_from(client.get("/me").text)
        for path in (f"/me/consents/{org}/{theirs}", f"/me/consents/{org}/{theirs}/withdraw",
                     f"/me/consents/{org}/{theirs}/receipt", f"/me/consents/{org}/{theirs}/receipt.json",
                     f"/me/consents/{tenant_a.org_id}/{world['mine_b']}",  # mine, but at the other operator
                     f"/me/consents/999999/{theirs}"):
            assert client.get(path).status_code == 404, path
        forged = client.post(f"/me/consents/{org}/{theirs}/withdraw",
                             data={"csrf_token": token, "confirm": "yes", "idempotency_key": "portal-x"})
        assert forged.status_code == 404
    assert consents.check(STRANGER, organization_id=org, purpose="marketing.email").allow


@pytest.mark.parametrize("path", ["/me/consents/abc/1", "/me/consents/1/-5", "/me/consents/1/99999999999999999999",
                                  "/me/consents/1/1.5/withdraw"])
def test_garbage_in_portal_paths_is_a_clear_error(server: LiveServer, tenant_a: Tenant,
                                                 world: dict[str, Any], path: str) -> None:
    with signed_in(server, tenant_a, "citizen") as client:
        response = client.get(path)
    assert 400 <= response.status_code < 500 and response.headers["content-type"].startswith("text/html")


def test_withdrawal_takes_one_confirmation_and_shows_a_receipt_that_verifies(
        server: LiveServer, platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant,
        world: dict[str, Any]) -> None:
    org, consent = tenant_b.org_id, world["mine_b"]
    base = f"/me/consents/{org}/{consent}"
    with signed_in(server, tenant_a, "citizen") as client:
        confirm = client.get(f"{base}/withdraw")
        assert confirm.status_code == 200 and "Yes, withdraw my consent" in confirm.text
        token, key = csrf_from(confirm.text), KEY.search(confirm.text).group(1)  # type: ignore[union-attr]
        assert client.post(f"{base}/withdraw", data={"confirm": "yes", "idempotency_key": key}).status_code == 403
        assert client.post(f"{base}/withdraw", data={"csrf_token": "forged" * 8, "confirm": "yes"}).status_code == 403
        not_confirmed = client.post(f"{base}/withdraw", data={"csrf_token": token, "idempotency_key": key})
        assert not_confirmed.status_code == 303 and not_confirmed.headers["location"] == f"{base}/withdraw"
        assert consents.check(ME, organization_id=org, purpose="marketing.sms").allow  # nothing happened yet

        done = client.post(f"{base}/withdraw", data={"csrf_token": token, "idempotency_key": key, "confirm": "yes"})
        assert done.status_code == 303 and done.headers["location"] == f"{base}/withdrawal?done=1"
        assert not consents.check(ME, organization_id=org, purpose="marketing.sms").allow
        twice = client.post(f"{base}/withdraw", data={"csrf_token": token, "idempotency_key": key, "confirm": "yes"})
        assert twice.status_code == 303  # idempotent: the same withdrawal

        receipt = client.get(done.headers["location"])
        assert receipt.status_code == 200
        assert "Your consent is withdrawn." in receipt.text and "Beta SMS gateway" in receipt.text
        assert "The platform&#39;s signature on this receipt is valid." in receipt.text
        assert client.get(f"{base}/withdraw").status_code == 303  # already withdrawn: to its receipt
        download = client.get(f"{base}/withdrawal.json")
        consent_receipt = client.get(f"{base}/receipt.json")
        page = client.get("/me").text
    assert download.headers["content-disposition"].startswith("attachment;")
    key_hex = httpx.get(f"{server.url}/api/v1/consent/receipt-key").json()["public_key"]
    document = json.loads(download.text)
    assert verify_receipt(download.content, public_key=key_hex).valid
    assert document["receipt"]["collectionMethod"] == "non_state_service"
    assert document["receipt"]["counterparties_notified"][0]["name"] == "Beta SMS gateway"
    assert verify_receipt(consent_receipt.content, public_key=key_hex).valid
    assert json.loads(consent_receipt.text)["receipt"]["status"] == "withdrawn"
    tampered = document | {"receipt": {**document["receipt"], "outcome": "withdrawal_refused"}}
    assert not verify_receipt(json.dumps(tampered), public_key=key_hex).valid
    assert f'data-consent="{consent}"' in page and 'data-status="withdrawn"' in page
    with platform.db.reader(org) as session:
        [withdrawal] = [w for w in [consents.withdrawal_of(session, consent)] if w is not None]
    assert withdrawal.actor == f"user:{tenant_a.users['citizen'][0]}" and len(withdrawal.notifications) == 1


# --- the operator's view ---------------------------------------------------------------------------


def test_the_operator_sees_consents_by_purpose_and_today_s_withdrawals_of_its_own_only(
        server: LiveServer, platform: Platform, tenant_a: Tenant, tenant_b: Tenant, world: dict[str, Any]) -> None:
    with signed_in(server, tenant_a, "citizen") as citizen:
        confirm = citizen.get(f"/me/consents/{tenant_b.org_id}/{world['mine_b']}/withdraw")
        citizen.post(f"/me/consents/{tenant_b.org_id}/{world['mine_b']}/withdraw",
                     data={"csrf_token": csrf_from(confirm.text), "confirm": "yes",
                           "idempotency_key": KEY.search(confirm.text).group(1)})  # type: ignore[union-attr]
    with signed_in(server, tenant_b, "dpo") as dpo:
        page = dpo.get("/consents")
    assert page.status_code == 200
    text = page.text
    assert 'data-testid="withdrawals-today-count">1<' in text
    assert "the subject, in the citizen portal" in text and "Non-state service" in text
    assert 'data-purpose="marketing.sms"' in text and 'data-purpose="marketing.email"' in text
    assert "Beta SMS gateway" in text and "Delivering (retrying)" in text and "15 working days left" in text
    assert "L-PD-WITHDRAW" in text
    with signed_in(server, tenant_a, "admin") as other:
        theirs = other.get("/consents").text
    assert "Beta SMS gateway" not in theirs and 'data-purpose="marketing.sms"' not in theirs
    assert 'data-purpose="credit.scoring"' in theirs and 'data-testid="withdrawals-today-count">0<' in theirs
    assert tenant_b.bin not in theirs


@pytest.mark.parametrize("role", ["reviewer", "citizen"])
def test_other_roles_see_what_the_module_does_but_no_data(server: LiveServer, tenant_a: Tenant,
                                                          world: dict[str, Any], role: str) -> None:
    with signed_in(server, tenant_a, role) as client:
        page = client.get("/consents")
    assert page.status_code == 200
    assert "The consent dashboard is shown to administrators" in page.text and "L-PD-CONSENT" in page.text
    assert 'data-testid="by-purpose"' not in page.text and "Credit scoring" not in page.text
    assert ('href="/me"' in page.text) == (role == "citizen")


def test_a_dpo_issues_an_enrollment_code_shown_once(server: LiveServer, platform: Platform, tenant_a: Tenant,
                                                     tenant_b: Tenant) -> None:
    with signed_in(server, tenant_a, "dpo") as client:
        form = client.get("/consents/enroll")
        token = csrf_from(form.text)
        assert client.post("/consents/enroll", data={"iin": IIN, "valid_hours": "72"}).status_code == 403
        bad = client.post("/consents/enroll", data={"iin": "791028302729", "valid_hours": "72", "csrf_token": token})
        assert bad.status_code == 422 and "Enter a valid 12-digit IIN." in bad.text and "791028302729" not in bad.text
        odd = client.post("/consents/enroll", data={"iin": IIN, "valid_hours": "9999", "csrf_token": token})
        assert odd.status_code == 422 and IIN not in odd.text
        made = client.post("/consents/enroll", data={"iin": IIN, "valid_hours": "24", "csrf_token": token})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    code = re.search(r'data-testid="enrollment-code">([A-Z0-9-]+)<', made.text).group(1)  # type: ignore[union-attr]
    assert IIN not in made.text
    with signed_in(server, tenant_b, "citizen") as citizen:  # a citizen account of any organization redeems it
        token = csrf_from(citizen.get("/me/verify").text)
        assert citizen.post("/me/verify", data={"code": code, "csrf_token": token}).status_code == 303
    with platform.db.reader() as session:
        [row] = citizens_for(platform).list_enrollments(session, organization_id=tenant_a.org_id)
    assert row.status() == "redeemed" and row.issued_by == f"user:{tenant_a.users['dpo'][0]}"
    for role in ("reviewer", "regulator", "citizen"):
        with signed_in(server, tenant_a, role) as client:
            assert client.get("/consents/enroll").status_code == 403
