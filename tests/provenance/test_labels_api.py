"""AI content labels over real HTTP (live_server, httpx; issue 9; L-AI-LABEL): an operator labels a picture and
gets the file back with its label's headers, anyone verifies it without logging in, tampering and stripping are
caught, another operator's system is "not found", roles are checked, big uploads are cut off while streaming, the
public verify is rate-limited per client, and an operator's own certificate replaces the local test CA."""

from __future__ import annotations

import base64
import io
import logging
import struct
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import LiveServer, Tenant
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from PIL import Image

from qorgau.core import auth
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.provenance.service import labels_for
from tests.provenance import media_fixtures as media
from tests.provenance.conftest import GenAiSystem, principal_of, register_generator, two_level_chain

LABELS = "/api/v1/labels"
VERIFY = "/api/v1/labels/verify"


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
def label_settings() -> dict[str, Any]:
    """Label settings of the test's platform; tests parametrize this to change them."""
    return {}


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str,
             label_settings: dict[str, Any]) -> Settings:
    extra = dict(label_settings)
    if extra.get("labels_trust_anchors") == "FOREIGN_ROOT":
        root = request.getfixturevalue("foreign_ca")[0]
        bundle = tmp_path / "anchors.pem"
        bundle.write_bytes(root.public_bytes(serialization.Encoding.PEM))
        extra["labels_trust_anchors"] = bundle
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0, **extra)


@pytest.fixture
def foreign_ca() -> tuple[x509.Certificate, bytes, bytes]:
    """A two-level chain from a CA the platform doesn't know, its key encrypted with b"key-password"."""
    return two_level_chain(password=b"key-password")


def api_key(platform: Platform, tenant: Tenant, *roles: str) -> str:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="+".join(roles), roles=list(roles),
                                        actor="test")
    return secret


def upload(data: bytes, name: str = "photo.png", kind: str = "image/png") -> dict[str, Any]:
    return {"file": (name, data, kind)}


def pixel_offset(data: bytes) -> int:
    """An offset inside the first IDAT chunk: picture data, not the manifest."""
    i = 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if data[i + 4:i + 8] == b"IDAT":
            return i + 8 + n // 2
        i += 12 + n
    raise AssertionError("no IDAT chunk")


def a_label_record_of(platform: Platform, tenant: Tenant) -> str:
    """A label issued by ``tenant`` (for the route walk's isolation test)."""
    system = register_generator(platform, tenant, code="walk-photo-gen")
    with platform.db.transaction(tenant.org_id) as s:
        result = labels_for(platform).label(s, principal_of(tenant), data=media.png(), filename="x.png",
                                            system=system.code)
    return result.record_id


def label_over_http(client: httpx.Client, system: GenAiSystem | str, data: bytes | None = None,
                    name: str = "photo.png", **fields: str) -> httpx.Response:
    code = system if isinstance(system, str) else system.code
    return client.post(LABELS, files=upload(data if data is not None else media.png(), name),
                       data={"system": code, **fields})


# --- labeling ----------------------------------------------------------------------------------------------------


def test_an_operator_labels_a_png_and_anyone_verifies_it_as_trusted(
        live_server: LiveServer, generator: GenAiSystem) -> None:
    original = media.png(160, 120)
    with live_server.client(generator.tenant.api_key) as op:
        r = label_over_http(op, generator, original, "photo.png", position="top", languages="kk,ru",
                            contrast="high")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'attachment; filename="photo.ai.png"'
    assert r.headers["x-qorgau-label-id"].startswith("KZ-LBL-")
    assert r.headers["x-qorgau-register-id"] == generator.register_id
    assert r.headers["x-qorgau-warning"] == "band"
    assert r.headers["x-qorgau-local-test-ca"] == "true"
    assert r.content.startswith(b"\x89PNG") and r.content != original
    assert Image.open(io.BytesIO(r.content)).size == (160, 120)

    with live_server.client() as anyone:  # no login
        v = anyone.post(VERIFY, files=upload(r.content, "downloaded.png"))
    assert v.status_code == 200, v.text
    report = v.json()
    assert report["state"] == "trusted", report["failures"]
    assert report["register_id"] == generator.register_id and report["system_name"] == generator.name
    assert report["operator_bin"] == generator.tenant.bin
    assert report["record_id"] == r.headers["x-qorgau-label-id"]
    assert report["warning_present"] is True and report["warning_kind"] == "band"
    assert report["ai_generated"] is True and report["signer"]["local_test_ca"] is True


def test_json_mode_returns_the_summary_and_the_file_in_base64(live_server: LiveServer, generator: GenAiSystem) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        r = op.post(LABELS, params={"format": "json"}, files=upload(media.jpeg(), "снимок.jpeg", "image/jpeg"),
                    data={"system": generator.register_id, "composite": "true", "tile": "false"})
    assert r.status_code == 200, r.text
    body = r.json()
    content = base64.b64decode(body["content_base64"])
    assert content.startswith(b"\xff\xd8\xff") and body["size"] == len(content)
    assert body["media_type"] == "image/jpeg" and body["filename"] == "снимок.ai.jpeg"
    assert body["register_id"] == generator.register_id and body["operator_bin"] == generator.tenant.bin
    assert body["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    assert body["warning"]["kind"] == "band" and body["warning"]["tile"] is False
    assert body["record_id"].startswith("KZ-LBL-") and body["local_test_ca"] is True


@pytest.mark.parametrize("maker, name, media_type, output, warning", [
    (lambda: media.wav(), "voice.wav", "audio/wav", "voice.ai.wav", "audible"),
    (lambda: media.pdf(pages=1), "brochure.pdf", "application/pdf", "brochure.ai.pdf", "pdf-band"),
    (lambda: media.mp4(seconds=0.5, w=96, h=64, container="mov"), "clip.mov", "video/mp4", "clip.ai.mp4",
     "video-band"),
    (lambda: media.text(), "post.txt", "text/plain", "post.ai.txt", "disclosure-line"),
], ids=["wav", "pdf", "mov", "text"])
def test_other_formats_come_back_with_their_type_and_name(live_server: LiveServer, generator: GenAiSystem, maker: Any,
                                                          name: str, media_type: str, output: str,
                                                          warning: str) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        r = label_over_http(op, generator, maker(), name)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media_type
    assert r.headers["content-disposition"] == f'attachment; filename="{output}"'
    assert r.headers["x-qorgau-warning"] == warning
    with live_server.client() as anyone:
        report = anyone.post(VERIFY, files=upload(r.content, output, media_type)).json()
    assert report["state"] == "trusted", report["failures"]
    assert report["register_id"] == generator.register_id


def test_a_non_ascii_file_name_comes_back_in_rfc_5987_form(live_server: LiveServer, generator: GenAiSystem) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        r = label_over_http(op, generator, name="Айгерим фото.png")
    assert r.status_code == 200, r.text
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert disposition.split('filename="')[1].split('"')[0].isascii()
    assert f"filename*=UTF-8''{quote('Айгерим фото.ai.png', safe='')}" in disposition


@pytest.mark.parametrize("fields, data, status, field", [
    ({"system": "no-such-system"}, None, 404, "system"),
    ({"system": "KZ-AI-2026-999999"}, None, 404, "system"),
    ({"system": ""}, None, 422, "system"),
    ({"system": None}, None, 422, "system"),
    ({"position": "sideways"}, None, 422, "position"),
    ({"languages": "kk,de"}, None, 422, "languages"),
    ({"contrast": "neon"}, None, 422, "contrast"),
    ({"tile": "maybe"}, None, 422, "tile"),
    ({"text_kk": "ә" * 121}, None, 422, "text_kk"),
    ({"text_ru": "я" * 301}, None, 422, "text_ru"),
    ({"colour": "red"}, None, 422, "colour"),
    ({}, b"\x00\x01\x02 not a picture \xfe\xff" * 10, 422, "file"),
    ({}, b"", 422, "file"),
    ({}, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, "file"),  # a PNG signature, then garbage
])
def test_bad_label_requests_name_the_field_and_issue_nothing(
        live_server: LiveServer, generator: GenAiSystem, fields: dict[str, str | None], data: bytes | None, status: int,
        field: str) -> None:
    form = {k: v for k, v in {"system": generator.code, **fields}.items() if v is not None}
    with live_server.client(generator.tenant.api_key) as op:
        r = op.post(LABELS, files=upload(data if data is not None else media.png(), "thing.bin"), data=form)
        assert r.status_code == status, r.text
        assert r.json()["error"]["field"] == field
        assert op.get(f"{LABELS}/records").json() == []


def test_a_request_without_a_multipart_file_names_the_file(live_server: LiveServer, generator: GenAiSystem) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        r = op.post(LABELS, json={"system": generator.code})
        assert r.status_code == 422 and r.json()["error"]["field"] == "file"
        r = op.post(LABELS, data={"system": generator.code}, files={"other": ("a.png", media.png(), "image/png")})
        assert r.status_code == 422 and r.json()["error"]["field"] in ("file", "other")


def test_another_operators_system_is_not_found(platform: Platform, live_server: LiveServer, generator: GenAiSystem,
                                              tenant_b: Tenant) -> None:
    with live_server.client(tenant_b.api_key) as intruder:
        for system in (generator.code, generator.register_id):
            r = label_over_http(intruder, system)
            assert r.status_code == 404 and r.json()["error"]["field"] == "system"
            assert generator.register_id not in r.text
    with platform.db.reader(generator.tenant.org_id) as s:
        assert labels_for(platform).records(s) == []


def test_only_admins_and_dpos_label(platform: Platform, live_server: LiveServer, generator: GenAiSystem) -> None:
    for roles in (("reviewer",), ("regulator",)):
        with live_server.client(api_key(platform, generator.tenant, *roles)) as c:
            r = label_over_http(c, generator)
            assert r.status_code == 403, (roles, r.text)
    _, username, password = generator.tenant.users["citizen"]  # a citizen's login session (with its CSRF token)
    with platform.db.transaction() as s:
        cookie = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
    with live_server.client(cookies={"qorgau_session": cookie}) as citizen:
        with platform.db.reader() as s:
            csrf = auth.resolve_session(s, cookie).csrf_token or ""
        r = citizen.post(LABELS, files=upload(media.png()), data={"system": generator.code},
                         headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and r.json()["error"]["field"] != "x-csrf-token", r.text
    with live_server.client() as anonymous:
        assert label_over_http(anonymous, generator).status_code == 401
    with live_server.client(api_key(platform, generator.tenant, "dpo")) as dpo:
        assert label_over_http(dpo, generator).status_code == 200
    with live_server.client(api_key(platform, generator.tenant, "reviewer")) as reviewer:
        assert len(reviewer.get(f"{LABELS}/records").json()) == 1  # reading the list is fine
        assert reviewer.get(f"{LABELS}/signer").status_code == 403


@pytest.mark.parametrize("label_settings", [{"labels_max_bytes": 4096}])
def test_a_file_over_labels_max_bytes_is_refused_naming_the_file(live_server: LiveServer,
                                                                 generator: GenAiSystem) -> None:
    big = media.png(240, 200)
    assert len(big) > 4096
    with live_server.client(generator.tenant.api_key) as op:
        r = label_over_http(op, generator, big)
        assert r.status_code == 413 and r.json()["error"]["field"] == "file", r.text
        assert op.get(f"{LABELS}/records").json() == []
        small = media.png(16, 12)
        assert len(small) < 4096
        assert label_over_http(op, generator, small).status_code == 200
    with live_server.client() as anyone:
        r = anyone.post(VERIFY, files=upload(big))
        assert r.status_code == 413 and r.json()["error"]["field"] == "file"
    # under the general body limit, far over the file cap: cut off while streaming, nothing is issued
    huge = big + b"\x00" * (4 << 20)
    with live_server.client(generator.tenant.api_key) as op:
        r = label_over_http(op, generator, huge)
        assert r.status_code == 413 and r.json()["error"]["field"] == "file"
        assert len(op.get(f"{LABELS}/records").json()) == 1


# --- records, signers, trust anchors ------------------------------------------------------------------------------


def test_records_list_the_labels_of_the_organization_only(live_server: LiveServer, generator: GenAiSystem,
                                                          tenant_b: Tenant) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        first = label_over_http(op, generator).headers["x-qorgau-label-id"]
        second = label_over_http(op, generator, media.jpeg(), "b.jpg").headers["x-qorgau-label-id"]
        listed = op.get(f"{LABELS}/records").json()
        assert [r["record_id"] for r in listed] == [second, first]
        assert listed[0]["media_type"] == "image/jpeg" and listed[0]["register_id"] == generator.register_id
        assert "b.jpg" not in str(listed) and "photo.png" not in str(listed)
        assert [r["record_id"] for r in op.get(f"{LABELS}/records", params={"limit": 1, "offset": 1}).json()] == [first]
        one = op.get(f"{LABELS}/records/{first}")
        assert one.status_code == 200 and one.json()["record_id"] == first
        assert op.get(f"{LABELS}/records", params={"limit": 0}).status_code == 422
        assert op.get(f"{LABELS}/records/KZ-LBL-2026-999999").status_code == 404
    with live_server.client(tenant_b.api_key) as intruder:
        assert intruder.get(f"{LABELS}/records").json() == []
        r = intruder.get(f"{LABELS}/records/{first}")
        assert r.status_code == 404 and r.json()["error"]["field"] == "record_id"


def test_trust_anchors_are_public_as_json_and_pem(live_server: LiveServer, generator: GenAiSystem) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        signer = op.get(f"{LABELS}/signer").json()  # the local test CA is made on first use
    assert signer["local_test_ca"] is True and generator.tenant.bin in signer["subject"]
    with live_server.client() as anyone:
        anchors = anyone.get("/api/v1/public/labels/trust-anchors").json()
        bundle = anyone.get("/api/v1/public/labels/trust-anchors.pem")
    assert len(anchors) == 1 and anchors[0]["local_test"] is True and "LOCAL TEST CA" in anchors[0]["subject"]
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("application/x-pem-file")
    certs = x509.load_pem_x509_certificates(bundle.content)
    assert [c.fingerprint(hashes.SHA256()).hex() for c in certs] == [anchors[0]["fingerprint"]]
    assert certs[0].subject.rfc4514_string() == anchors[0]["subject"]


@pytest.mark.parametrize("label_settings, expected", [
    ({}, "untrusted"),
    ({"labels_trust_anchors": "FOREIGN_ROOT"}, "trusted"),
], ids=["unknown root", "root configured as anchor"])
def test_an_imported_signer_replaces_the_local_test_ca(
        live_server: LiveServer, platform: Platform, generator: GenAiSystem,
        foreign_ca: tuple[x509.Certificate, bytes, bytes], expected: str) -> None:
    root, chain, key = foreign_ca
    pem_files = {"chain": ("chain.pem", chain, "application/x-pem-file"),
                 "key": ("key.pem", key, "application/x-pem-file")}
    with live_server.client(generator.tenant.api_key) as op:
        assert op.get(f"{LABELS}/signer").json()["local_test_ca"] is True
        with live_server.client(api_key(platform, generator.tenant, "dpo")) as dpo:
            assert dpo.post(f"{LABELS}/signer", files=pem_files, data={"password": "key-password"}).status_code == 403
        r = op.post(f"{LABELS}/signer", files=pem_files)
        assert r.status_code == 422 and r.json()["error"]["field"] == "password"
        r = op.post(f"{LABELS}/signer", files=pem_files, data={"password": "wrong"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "key"
        r = op.post(f"{LABELS}/signer", files=pem_files, data={"password": "key-password"})
        assert r.status_code == 201, r.text
        imported = r.json()
        assert imported["local_test_ca"] is False and imported["algorithm"] == "ES256"
        assert "Test Qazaq Trust CA" in imported["issuer"]
        assert op.get(f"{LABELS}/signer").json()["fingerprint"] == imported["fingerprint"]
        listed = op.get(f"{LABELS}/signers").json()
        assert [s["local_test_ca"] for s in listed] == [False, True]
        again = op.post(f"{LABELS}/signer", files=pem_files, data={"password": "key-password"})
        assert again.status_code == 422 and again.json()["error"]["field"] == "chain"

        labeled = label_over_http(op, generator)
        assert labeled.status_code == 200 and labeled.headers["x-qorgau-local-test-ca"] == "false"
    with live_server.client() as anyone:
        report = anyone.post(VERIFY, files=upload(labeled.content)).json()
    assert report["state"] == expected, report["failures"]
    assert report["register_id"] == generator.register_id and report["signer"]["local_test_ca"] is False
    if expected == "untrusted":
        assert [f["code"] for f in report["failures"]] == ["signingCredential.untrusted"]


# --- verification ------------------------------------------------------------------------------------------------


def test_a_flipped_pixel_byte_is_invalid_and_names_the_assertion(live_server: LiveServer,
                                                                 generator: GenAiSystem) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        labeled = bytearray(label_over_http(op, generator, media.png(120, 90)).content)
    labeled[pixel_offset(bytes(labeled))] ^= 0x01
    with live_server.client() as anyone:
        report = anyone.post(VERIFY, files=upload(bytes(labeled))).json()
    assert report["state"] == "invalid"
    assert report["failures"][0]["assertion"] == "c2pa.hash.data"
    assert report["register_id"] == generator.register_id  # still says who claimed it


def test_a_reencoded_copy_is_unlabeled(live_server: LiveServer, generator: GenAiSystem) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        labeled = label_over_http(op, generator, media.png(120, 90)).content
    copy = io.BytesIO()
    Image.open(io.BytesIO(labeled)).save(copy, "PNG")  # a plain re-encode drops the manifest
    with live_server.client() as anyone:
        report = anyone.post(VERIFY, files=upload(copy.getvalue())).json()
        assert report["state"] == "unlabeled" and report["register_id"] is None
        assert anyone.post(VERIFY, files=upload(media.png())).json()["state"] == "unlabeled"


def test_verify_refuses_what_it_cannot_read_naming_the_file(live_server: LiveServer) -> None:
    with live_server.client() as anyone:
        r = anyone.post(VERIFY, files=upload(b"\x00\x01 binary junk \xff" * 20, "junk.bin"))
        assert r.status_code == 422 and r.json()["error"]["field"] == "file"
        r = anyone.post(VERIFY, json={"file": "aGVsbG8="})
        assert r.status_code == 422 and r.json()["error"]["field"] == "file"
        r = anyone.post(VERIFY, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 422


@pytest.mark.parametrize("label_settings", [{"labels_verify_per_hour": 3}])
def test_public_verify_is_rate_limited_per_client(live_server: LiveServer, generator: GenAiSystem) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        labeled = label_over_http(op, generator).content
    with live_server.client() as anyone:
        for _ in range(3):
            assert anyone.post(VERIFY, files=upload(labeled)).status_code == 200
        r = anyone.post(VERIFY, files=upload(labeled))
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["code"] == "rate_limited"


def test_verify_logs_nothing_about_the_file(live_server: LiveServer, generator: GenAiSystem,
                                            caplog: pytest.LogCaptureFixture) -> None:
    with live_server.client(generator.tenant.api_key) as op:
        labeled = label_over_http(op, generator).content
    with caplog.at_level(logging.DEBUG), live_server.client() as anyone:
        ok = anyone.post(VERIFY, files=upload(labeled, "Ivanov_passport.png"))
        bad = anyone.post(VERIFY, files=upload(b"\x00junk" * 30, "Petrova_IIN_871215400123.bin"))
    assert ok.status_code == 200 and bad.status_code == 422
    logged = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    for secret in ("Ivanov", "Petrova", "871215400123", generator.register_id):
        assert secret not in logged
    assert "Ivanov" not in bad.text and "Petrova" not in bad.text
