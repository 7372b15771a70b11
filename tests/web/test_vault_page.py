"""The identity vault page over real HTTP and in a real browser: statistics, the re-identification log,
erasure certificates (list, download, verify) — and never an identifier on the page."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from qorgau.core.auth import Principal
from qorgau.core.platform import Platform
from qorgau.vault.service import SubjectRecord, vault_for

from .conftest import browser_client, csrf_from, log_in
from .test_browser import expect, shot
from .test_browser import log_in as browser_log_in

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

IIN = "791028302728"
IIN_2 = "061211600012"
NAME = "Жаксылыков Ерлан"


def fill_vault(platform: Platform, tenant: Tenant) -> dict[str, Any]:
    """Two subjects, three re-identifications, one erasure — through the service, as an operator would."""
    vault = vault_for(platform)
    dpo = Principal("user", tenant.users["dpo"][0], tenant.org_id, frozenset({"dpo"}))
    with platform.db.transaction(tenant.org_id) as s:
        kept, erased = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME}),
                                               SubjectRecord({"KZ_IIN": IIN_2, "PHONE_NUMBER": "87012345678"})],
                                           actor="test")
    with platform.db.transaction(tenant.org_id) as s:
        vault.detokenize(s, kept.pseudonym, purpose="court-order", principal=dpo)
        vault.detokenize_many(s, [kept.pseudonym, erased.pseudonym], purpose="customer-request", principal=dpo)
    with platform.db.transaction(tenant.org_id) as s:
        certificate = vault.shred(s, erased.pseudonym, reason="consent withdrawn", actor=dpo.actor)
    return {"kept": kept, "erased": erased, "certificate": certificate}


@contextlib.contextmanager
def logged_in(server: LiveServer, tenant: Tenant, role: str, **headers: str) -> Iterator[Any]:
    with browser_client(server, **headers) as client:
        _, username, password = tenant.users[role]
        assert log_in(client, username, password).status_code == 303
        yield client


def test_the_page_shows_counts_purposes_and_certificates_but_no_identifier(server, platform, tenant_a) -> None:
    made = fill_vault(platform, tenant_a)
    with logged_in(server, tenant_a, "dpo", **{"accept-language": "en"}) as client:
        page = client.get("/vault")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'data-testid="stat-subjects">2<', html) and re.search(r'data-testid="stat-erased">1<', html)
    assert "court-order" in html and "customer-request" in html
    assert made["certificate"].certificate_id in html and made["erased"].pseudonym in html
    assert "consent withdrawn" in html
    for value in (IIN, IIN_2, NAME, "7012345678", "Жаксылыков"):
        assert value not in html
    assert "Content-Security-Policy" in page.headers and page.headers["cache-control"] == "no-store"


def test_roles_without_access_see_what_the_module_does(server, platform, tenant_a) -> None:
    fill_vault(platform, tenant_a)
    with logged_in(server, tenant_a, "reviewer", **{"accept-language": "en"}) as client:
        page = client.get("/vault")
        assert page.status_code == 200 and "are shown to administrators" in page.text
        assert "court-order" not in page.text and 'data-testid="vault-stats"' not in page.text
        assert client.get("/vault/certificates/ec_abc/download").status_code == 403


def test_a_certificate_downloads_exactly_as_signed_and_only_for_its_organization(server, platform, tenant_a,
                                                                                 tenant_b) -> None:
    made = fill_vault(platform, tenant_a)
    cert = made["certificate"]
    with logged_in(server, tenant_a, "regulator") as client:
        r = client.get(f"/vault/certificates/{cert.certificate_id}/download")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert "attachment" in r.headers["content-disposition"] and r.text == cert.text
        assert client.get("/vault/certificates/ec_nosuchcertificate/download").status_code == 404
        assert client.get("/vault/certificates/NOT-VALID/download").status_code in (400, 404, 422)
    with logged_in(server, tenant_b, "admin") as client:
        assert client.get(f"/vault/certificates/{cert.certificate_id}/download").status_code == 404
        other = client.get(f"/vault/certificates/{cert.certificate_id}/verify")
        assert other.status_code == 404


def test_verifying_stored_and_uploaded_certificates(server, platform, tenant_a) -> None:
    made = fill_vault(platform, tenant_a)
    cert = made["certificate"]
    with logged_in(server, tenant_a, "admin", **{"accept-language": "en"}) as client:
        stored = client.get(f"/vault/certificates/{cert.certificate_id}/verify")
        assert stored.status_code == 200 and "Valid: the erasure is signed" in stored.text
        assert "The audit entry is in this platform&#39;s audit log, unaltered" in stored.text
        form = client.get("/vault")
        token = csrf_from(form.text)
        good = client.post("/vault/certificates/verify", data={"csrf_token": token},
                           files={"certificate": ("cert.json", cert.text.encode(), "application/json")})
        assert good.status_code == 200 and "Valid: the erasure is signed" in good.text
        doc = json.loads(cert.text)
        doc["certificate"]["reason"] = "something else"
        bad = client.post("/vault/certificates/verify", data={"csrf_token": token},
                          files={"certificate": ("cert.json", json.dumps(doc).encode(), "application/json")})
        assert bad.status_code == 422 and "Not valid" in bad.text
        junk = client.post("/vault/certificates/verify", data={"csrf_token": token},
                           files={"certificate": ("x.json", b"\xff\xfe not json", "application/json")})
        assert junk.status_code == 422 and "Not valid" in junk.text
        no_csrf = client.post("/vault/certificates/verify",
                              files={"certificate": ("cert.json", cert.text.encode(), "application/json")})
        assert no_csrf.status_code == 403


def test_the_page_speaks_kazakh_and_russian(server, platform, tenant_a) -> None:
    fill_vault(platform, tenant_a)
    for lang, words in (("kk", ("Сәйкестендіру қоймасы", "Қайта сәйкестендіру журналы", "Жою сертификаттары")),
                        ("ru", ("Журнал повторной идентификации", "Сертификаты удаления"))):
        with logged_in(server, tenant_a, "dpo", **{"accept-language": lang}) as client:
            html = client.get("/vault").text
        for word in words:
            assert word in html, (lang, word)


@pytest.mark.browser
def test_a_dpo_reviews_the_vault_and_verifies_an_erasure_certificate(page, server, platform, tenant_a, tmp_path) -> None:
    made = fill_vault(platform, tenant_a)
    cert = made["certificate"]
    _, username, password = tenant_a.users["dpo"]
    browser_log_in(page, server, username, password)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Vault", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Identity vault")
    expect(page.get_by_test_id("stat-subjects")).to_have_text("2")
    expect(page.get_by_test_id("stat-erased")).to_have_text("1")
    log = page.get_by_test_id("reidentification-log")
    expect(log.locator("tbody tr")).to_have_count(2)
    expect(log).to_contain_text("court-order")
    expect(page.locator("#chart-purposes")).to_be_visible()
    table = page.get_by_test_id("certificates")
    expect(table).to_contain_text(cert.certificate_id)
    assert IIN not in page.content() and NAME not in page.content()
    shot(page, "vault-01-overview")

    with page.expect_download() as download_info:
        table.get_by_role("link", name="Download").click()
    saved = tmp_path / "downloaded.json"
    download_info.value.save_as(saved)
    assert saved.read_text() == cert.text

    table.get_by_role("link", name=f"Verify certificate {cert.certificate_id}").click()
    expect(page.get_by_test_id("verification-result")).to_contain_text("Valid")
    expect(page.locator(".vault-checks .check-bad")).to_have_count(0)
    shot(page, "vault-02-verified")

    doc = json.loads(cert.text)
    doc["certificate"]["pseudonym"] = "ps_" + "x" * 26
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    page.get_by_label("Verify a certificate file").set_input_files(str(forged))
    page.locator("form[action='/vault/certificates/verify'] button[type=submit]").click()
    expect(page.get_by_test_id("verification-result")).to_contain_text("Not valid")
    expect(page.locator(".vault-checks .check-bad").first).to_be_visible()
    shot(page, "vault-03-forged")
