"""The AI content labels pages over real HTTP, the way a browser uses them (cookies, CSRF fields, multipart uploads;
issue 9, L-AI-LABEL): an operator labels a picture through the form and gets the labeled file back as a download
that verifies as trusted; a refused file is named next to its field; anyone, signed out, checks a labeled, a
tampered and an unlabeled file on the public verify page in kk, ru and en; other roles are kept out, uploads are
capped while they are read, and the public page is rate-limited per client address. SQLite only: the pages are
thin over the service that tests/provenance/test_service.py runs on both backends."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import struct
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest
from PIL import Image
from web.conftest import browser_client, csrf_from, log_in

from qorgau.core import i18n
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.provenance.service import labels_for
from qorgau.provenance.texts import COMPOSITE, TRAINED
from tests.conftest import LiveServer, Tenant
from tests.provenance.conftest import GenAiSystem, principal_of

NAME = "Айгерим Сейітова фото.png"   # a file name can be personal data: only ever handed back to its sender


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The usual test settings, with label settings changed by ``indirect`` parametrization."""
    return settings.model_copy(update=getattr(request, "param", {}))


def photo(w: int = 320, h: int = 240) -> bytes:
    image = Image.radial_gradient("L").resize((w, h)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def flip_a_pixel_byte(data: bytes) -> bytes:
    """One bit flipped inside the first IDAT chunk: the picture, not the manifest."""
    i = 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if data[i + 4:i + 8] == b"IDAT":
            out = bytearray(data)
            out[i + 8 + n // 2] ^= 0x01
            return bytes(out)
        i += 12 + n
    raise AssertionError("no IDAT chunk")


def label_through_service(platform: Platform, system: GenAiSystem) -> bytes:
    with platform.db.transaction(system.tenant.org_id) as s:  # the signer first, as opening /labels does
        labels_for(platform).signer(s)
    with platform.db.transaction(system.tenant.org_id) as s:
        return labels_for(platform).label(s, principal_of(system.tenant), data=photo(), filename="x.png",
                                          system=system.code).data


@contextlib.contextmanager
def signed_in(server: LiveServer, tenant: Tenant, role: str, lang: str = "en") -> Iterator[httpx.Client]:
    with browser_client(server, **{"Accept-Language": lang}) as client:
        _, username, password = tenant.users[role]
        assert log_in(client, username, password).status_code == 303
        yield client


def label_form(page: str, ai: GenAiSystem, **changes: object) -> dict[str, object]:
    return {"csrf_token": csrf_from(page), "system": ai.register_id, "position": "bottom",
            "languages": ["kk", "ru", "en"], "contrast": "dark", "tile": "on", **changes}


def verify(client: httpx.Client, data: bytes, name: str = "check.png") -> httpx.Response:
    page = client.get("/labels/verify")
    assert page.status_code == 200
    return client.post("/labels/verify", data={"csrf_token": csrf_from(page.text)},
                       files={"file": (name, data, "application/octet-stream")})


def state_of(page: httpx.Response) -> str:
    match = re.search(r'data-testid="result" data-state="(\w+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


# --- the operator's form ---------------------------------------------------------------------------------------


def test_an_operator_labels_a_png_through_the_form_and_the_download_verifies_as_trusted(
        live_server: LiveServer, platform: Platform, generator: GenAiSystem,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with signed_in(live_server, generator.tenant, "dpo") as web:
        page = web.get("/labels")
        assert page.status_code == 200
        assert f'<option value="{generator.register_id}"' in page.text and generator.name in page.text
        assert "L-AI-LABEL" in page.text and 'href="/labels/verify"' in page.text
        assert 'data-testid="local-test-ca"' in page.text and "LOCAL TEST CA" in page.text  # the signer card
        assert 'data-testid="no-records"' in page.text
        answer = web.post("/labels", data=label_form(page.text, generator, position="top", contrast="high"),
                          files={"file": (NAME, photo(), "image/png")})
        assert answer.status_code == 200, answer.text[:300]
        assert answer.headers["content-type"] == "image/png"
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == "Айгерим Сейітова фото.ai.png"

        report = labels_for(platform).verify(answer.content)
        assert report.state == "trusted", report.failures
        assert report.register_id == generator.register_id and report.operator_bin == generator.tenant.bin
        assert report.digital_source_type == TRAINED and report.warning_kind == "band"
        assert report.record_id == answer.headers["x-label-reference"]

        composite = web.post("/labels", data=label_form(page.text, generator, composite="on"),
                             files={"file": ("edit.png", photo(200, 150), "image/png")})
        assert composite.status_code == 200
        assert labels_for(platform).verify(composite.content).digital_source_type == COMPOSITE

        listing = web.get("/labels")
        assert f'data-record="{report.record_id}"' in listing.text
        assert generator.register_id in listing.text and "image/png" in listing.text
        assert "Band on the picture" in listing.text
    server_logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("qorgau", "uvicorn")))
    assert "qorgau.access" in {r.name for r in caplog.records}  # the server's own log was captured
    assert "Айгерим" not in listing.text and "Айгерим" not in server_logs  # the name went back to its sender only


def test_an_unsupported_file_is_named_next_to_the_file_field_and_the_answers_stay(
        live_server: LiveServer, generator: GenAiSystem) -> None:
    with signed_in(live_server, generator.tenant, "admin") as web:
        page = web.get("/labels")
        refused = web.post("/labels", data=label_form(page.text, generator, contrast="light", text_en="Made by AI"),
                           files={"file": ("notes.bin", b"\x00\x9f\x92\x96" * 64, "application/octet-stream")})
        assert refused.status_code == 422
        assert 'id="file-error"' in refused.text and "cannot label this kind of file" in refused.text
        assert 'aria-describedby="l-file-hint file-error"' in refused.text
        assert '<option value="light" selected>' in refused.text and 'value="Made by AI"' in refused.text

        no_file = web.post("/labels", data=label_form(page.text, generator), files={"file": ("", b"", "")})
        assert no_file.status_code == 422 and "Choose a file." in no_file.text

        no_language = web.post("/labels", data=label_form(page.text, generator, languages=[]),
                               files={"file": ("a.png", photo(), "image/png")})
        assert no_language.status_code == 422 and 'id="languages-error"' in no_language.text

        unknown = web.post("/labels", data=label_form(page.text, generator, system="KZ-AI-2026-999999"),
                           files={"file": ("a.png", photo(), "image/png")})
        assert unknown.status_code == 422 and 'id="system-error"' in unknown.text

        forged = web.post("/labels", data=label_form(page.text, generator, csrf_token="x" * 43),
                          files={"file": ("a.png", photo(), "image/png")})
        assert forged.status_code == 403
        assert 'data-testid="no-records"' in web.get("/labels").text  # nothing was labeled


def test_the_form_speaks_kazakh_and_russian(live_server: LiveServer, generator: GenAiSystem) -> None:
    for lang, words in (("kk", ("Файлды таңбалау", "ЖЕРГІЛІКТІ СЫНАҚ КО", "Қол қою сертификаты")),
                        ("ru", ("Промаркировать файл", "ЛОКАЛЬНЫЙ ТЕСТОВЫЙ УЦ", "Сертификат подписи"))):
        with browser_client(live_server, **{"Accept-Language": lang}) as web:
            page = web.get("/labels/verify")
            switched = web.post("/language", data={"lang": lang, "next": "/labels", "csrf_token": csrf_from(page.text)})
            assert switched.status_code == 303
            _, username, password = generator.tenant.users["dpo"]
            log_in(web, username, password)
            page = web.get("/labels")
            assert page.status_code == 200 and f'<html lang="{lang}">' in page.text
            for word in words:
                assert word in page.text, (lang, word)


def test_other_roles_get_the_403_page_and_strangers_the_login(live_server: LiveServer, generator: GenAiSystem) -> None:
    with signed_in(live_server, generator.tenant, "reviewer") as web:
        page = web.get("/labels")
        assert page.status_code == 403 and "Access denied" in page.text
        csrf = csrf_from(web.get("/labels/verify").text)
        posted = web.post("/labels", data={"csrf_token": csrf, "system": generator.register_id},
                          files={"file": ("a.png", photo(), "image/png")})
        assert posted.status_code == 403
    with browser_client(live_server) as stranger:
        assert stranger.get("/labels").status_code == 303
        assert stranger.get("/labels").headers["location"].startswith("/login")


@pytest.mark.parametrize("settings", [{"labels_max_bytes": 4096}], indirect=True)
def test_uploads_over_the_cap_are_refused_while_reading(live_server: LiveServer, generator: GenAiSystem) -> None:
    big = b"\x89PNG\r\n\x1a\n" + bytes(60_000) + b"x" * 40_000
    with signed_in(live_server, generator.tenant, "dpo") as web:
        page = web.get("/labels")
        refused = web.post("/labels", data=label_form(page.text, generator),
                           files={"file": ("big.png", big, "image/png")})
        assert refused.status_code == 413
        assert 'id="file-error"' in refused.text and "The file is larger than 4 KiB" in refused.text
    with browser_client(live_server) as anyone:
        answer = verify(anyone, big)
        assert answer.status_code == 413 and 'id="file-error"' in answer.text


# --- the public verify page ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_anyone_signed_out_sees_trusted_invalid_and_unlabeled_in_their_language(
        live_server: LiveServer, platform: Platform, generator: GenAiSystem, lang: str) -> None:
    labeled = label_through_service(platform, generator)
    tr = i18n.translations(lang).gettext
    with browser_client(live_server, **{"Accept-Language": lang}) as anyone:
        form = anyone.get("/labels/verify")
        assert form.status_code == 200 and f'<html lang="{lang}">' in form.text
        assert 'data-drop-zone' in form.text and 'type="file"' in form.text and "L-AI-LABEL" in form.text

        trusted = verify(anyone, labeled, NAME)
        assert trusted.status_code == 200 and state_of(trusted) == "trusted"
        assert tr("Trusted") in trusted.text and tr("Generated by AI") in trusted.text
        assert f'href="/register/{generator.register_id}"' in trusted.text and generator.name in trusted.text
        assert generator.tenant.bin in trusted.text and "Org alpha" in trusted.text
        assert 'data-testid="local-test-ca"' in trusted.text and tr("LOCAL TEST CA") in trusted.text
        assert NAME in trusted.text  # handed back to the same user only

        invalid = verify(anyone, flip_a_pixel_byte(labeled))
        assert invalid.status_code == 200 and state_of(invalid) == "invalid"
        assert tr("Invalid") in invalid.text and tr("What failed") in invalid.text
        failures = invalid.text.split('data-testid="failures"', 1)[1]
        first = re.search(r'data-testid="failure-assertion">([^<]+)<', failures)
        assert first and first.group(1) == "c2pa.hash.data"
        assert invalid.text.index('data-testid="failures"') < invalid.text.index('data-testid="register-id"')

        unlabeled = verify(anyone, photo())
        assert unlabeled.status_code == 200 and state_of(unlabeled) == "unlabeled"
        assert tr("Unlabeled") in unlabeled.text
    assert tr("Trusted") != "Trusted" or lang == "en"  # the words really are translated


def test_the_verify_page_works_for_a_signed_in_user_too(live_server: LiveServer, platform: Platform,
                                                        generator: GenAiSystem) -> None:
    labeled = label_through_service(platform, generator)
    with signed_in(live_server, generator.tenant, "reviewer") as web:
        answer = verify(web, labeled)
        assert answer.status_code == 200 and state_of(answer) == "trusted"


def test_a_file_that_is_not_a_supported_format_is_named_on_the_verify_page(live_server: LiveServer) -> None:
    with browser_client(live_server, **{"Accept-Language": "en"}) as anyone:
        answer = verify(anyone, b"\x00\x9f\x92\x96" * 64, "blob.bin")
        assert answer.status_code == 422 and 'id="file-error"' in answer.text
        empty = anyone.post("/labels/verify", data={"csrf_token": csrf_from(anyone.get("/labels/verify").text)},
                            files={"file": ("", b"", "")})
        assert empty.status_code == 422 and "Choose a file." in empty.text


@pytest.mark.parametrize("settings", [{"labels_verify_per_hour": 2}], indirect=True)
def test_the_public_check_is_rate_limited_per_address_with_a_friendly_message(live_server: LiveServer) -> None:
    with browser_client(live_server, **{"Accept-Language": "ru"}) as anyone:
        assert verify(anyone, photo()).status_code == 200
        assert verify(anyone, photo()).status_code == 200
        limited = verify(anyone, photo())
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert 'data-testid="rate-limited"' in limited.text
        assert "Вы проверили много файлов за короткое время" in limited.text
        assert 'data-testid="result"' not in limited.text
        assert anyone.get("/labels/verify").status_code == 200  # the page itself stays open


def test_the_verify_page_says_the_visible_warning_is_in_place(live_server: LiveServer, platform: Platform,
                                                              generator: GenAiSystem) -> None:
    labeled = label_through_service(platform, generator)
    with browser_client(live_server, **{"Accept-Language": "en"}) as anyone:
        answer = verify(anyone, labeled)
    assert "Yes: the visible warning is in place." in answer.text
