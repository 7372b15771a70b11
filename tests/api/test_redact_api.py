"""POST /api/v1/redact: a text comes back redacted; its values never come back in the clear."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import LiveServer, Tenant

from qorgau.api.app import route_table
from qorgau.api.routes import redact
from qorgau.core import audit, auth
from qorgau.core.platform import Platform
from qorgau.discovery.redact import hash_value, organization_decryptor, organization_hash_key, unredact_text

IIN = "791028302728"
TEXT = f"Клиент Жаксылыков Ерлан Болатұлы, ИИН {IIN}, тел. +7 701 234 56 78, aigerim@gov.kz"
VALUES = (IIN, "aigerim@gov.kz", "701 234 56 78", "Жаксылыков")


@pytest.fixture
def server(platform: Platform) -> Iterator[LiveServer]:
    """The real app; the redact router is added here until ``create_app`` registers it itself."""
    live = LiveServer(platform)
    if ("POST", "/api/v1/redact") not in route_table(live.app):
        live.app.include_router(redact.router, prefix="/api/v1")
    with live:
        yield live


def _redaction_entries(platform: Platform, tenant: Tenant) -> list[audit.AuditEntry]:
    with platform.db.reader(tenant.org_id) as s:
        return [e for e in audit.list_entries(s, limit=50) if e.action == "discovery.redact"]


def test_a_masked_text_keeps_its_shape_and_hides_every_value(server: LiveServer, tenant_a: Tenant) -> None:
    with server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/redact", json={"text": TEXT})
    assert r.status_code == 200
    body = r.json()
    assert "79******2728" in body["text"] and "+7 701 *** ** 78" in body["text"] and "a***@gov.kz" in body["text"]
    for value in VALUES:
        assert value not in r.text
    assert body["counts"] == {"PERSON": 1, "KZ_IIN": 1, "PHONE_NUMBER": 1, "EMAIL_ADDRESS": 1}
    iin = next(i for i in body["items"] if i["type"] == "KZ_IIN")
    assert TEXT[iin["start"]:iin["end"]] == IIN and body["text"][iin["new_start"]:iin["new_end"]] == "79******2728"


def test_replace_per_type_and_identifiers_only(server: LiveServer, tenant_a: Tenant) -> None:
    text = f"  ИИН {IIN}; снова {IIN}. Жаксылыков Ерлан"
    with server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/redact", json={"text": text, "operator": "replace", "identifiers_only": True,
                                           "per_type": {"PHONE_NUMBER": "drop"}})
    body = r.json()
    # leading spaces are kept so the offsets point into the text exactly as sent
    assert body["text"] == "  ИИН [KZ_IIN_1]; снова [KZ_IIN_1]. Жаксылыков Ерлан"
    assert [i["start"] for i in body["items"]] == [text.index(IIN), text.rindex(IIN)]


def test_hash_uses_the_callers_organization_key_and_is_audited_without_text(
        server: LiveServer, platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> None:
    with server.client(tenant_a.api_key) as a, server.client(tenant_b.api_key) as b:
        first = a.post("/api/v1/redact", json={"text": TEXT, "operator": "hash"}).json()
        again = a.post("/api/v1/redact", json={"text": f"ИИН {IIN}", "operator": "hash"}).json()
        other = b.post("/api/v1/redact", json={"text": f"ИИН {IIN}", "operator": "hash"}).json()
    with platform.db.transaction() as s:
        key_a = organization_hash_key(s, platform.keyring, tenant_a.org_id)
    token = hash_value("KZ_IIN", IIN, key_a)
    assert token in first["text"] and token in again["text"] and token not in other["text"]
    for value in VALUES:
        assert value not in first["text"]
    entries = _redaction_entries(platform, tenant_a)
    assert len(entries) == 2 and entries[-1].details["counts"] == {
        "PERSON": 1, "KZ_IIN": 1, "PHONE_NUMBER": 1, "EMAIL_ADDRESS": 1}
    assert entries[0].object_type == "text" and entries[0].actor.startswith("apikey:")
    assert all(v not in str(e.details) for e in entries for v in VALUES)
    assert len(_redaction_entries(platform, tenant_b)) == 1


def test_encrypt_round_trips_only_with_the_organizations_key(
        server: LiveServer, platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> None:
    with server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/redact", json={"text": TEXT, "operator": "encrypt", "per_type": {"PERSON": "mask"}})
    body = r.json()
    assert body["text"].count("ENC[") == 3 and "**********" in body["text"]
    for value in VALUES:
        assert value not in r.text
    with platform.db.transaction(tenant_a.org_id) as s:
        restored = unredact_text(body["text"], organization_decryptor(s, platform.keyring, tenant_a.org_id))
    assert IIN in restored and "+7 701 234 56 78" in restored and "aigerim@gov.kz" in restored
    from qorgau.core.errors import IntegrityFailure

    with platform.db.transaction(tenant_b.org_id) as s, pytest.raises(IntegrityFailure):
        unredact_text(body["text"], organization_decryptor(s, platform.keyring, tenant_b.org_id))
    assert len(_redaction_entries(platform, tenant_a)) == 1


def test_mask_replace_and_drop_use_no_key_and_leave_no_audit_entry(
        server: LiveServer, platform: Platform, tenant_a: Tenant) -> None:
    with server.client(tenant_a.api_key) as c:
        for op in ("mask", "replace", "drop"):
            assert c.post("/api/v1/redact", json={"text": TEXT, "operator": op}).status_code == 200
    assert _redaction_entries(platform, tenant_a) == []


@pytest.mark.parametrize("payload, field", [
    ({"text": TEXT, "operator": "shred"}, "operator"),
    ({"text": TEXT, "per_type": {"KZ_IIN": "burn"}}, "per_type.KZ_IIN"),
    ({"text": TEXT, "per_type": {"SHOE_SIZE": "mask"}}, "per_type"),
    ({"text": TEXT, "min_score": 2}, "min_score"),
    ({"operator": "mask"}, "text"),
    ({"text": TEXT, "extra": 1}, "extra"),
])
def test_bad_input_is_refused_naming_the_field_never_the_text(server: LiveServer, tenant_a: Tenant,
                                                              payload: dict, field: str) -> None:
    with server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/redact", json=payload)
    assert r.status_code == 422 and r.json()["error"]["field"] == field
    for value in VALUES:
        assert value not in r.text


def test_garbage_bodies_are_client_errors(server: LiveServer, tenant_a: Tenant) -> None:
    with server.client(tenant_a.api_key) as c:
        for body in (b'{"text": "x",', b"[1, 2]", b"\xff\xfe\x00", b'{"text": 1e999999}'):
            r = c.post("/api/v1/redact", content=body, headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500 and r.json()["error"]["message"]


@pytest.mark.parametrize("role, allowed", [("admin", True), ("dpo", True), ("reviewer", True),
                                           ("regulator", False)])
def test_only_staff_and_reviewers_may_redact(server: LiveServer, platform: Platform, tenant_a: Tenant,
                                             role: str, allowed: bool) -> None:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant_a.org_id, name=f"{role} key", roles=[role],
                                        actor="test")
    with server.client(secret) as c:
        r = c.post("/api/v1/redact", json={"text": TEXT})
    assert (r.status_code == 200) is allowed, (role, r.status_code, r.text[:200])
    if not allowed:
        assert r.status_code == 403


def test_without_credentials_nothing_is_redacted(server: LiveServer) -> None:
    with server.client() as c:
        r = c.post("/api/v1/redact", json={"text": TEXT})
    assert r.status_code == 401 and IIN not in r.text


# --- POST /api/v1/redact/file: one file in, the same kind of file out -----------------------------------------

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _workbook_bytes() -> bytes:
    import io

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["ИИН", "ФИО", "Комментарий", "Сумма"])
    ws.append([IIN, "Жаксылыков Ерлан", "тел. +7 701 234 56 78", 15000])
    ws.append(["061211600012", "Иванова Анна", "почта aigerim@gov.kz", 700])
    wb.properties.creator = "Жаксылыков Ерлан"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _zip_text(data: bytes) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())


def _upload(client, name: str, data: bytes, **form: str):
    return client.post("/api/v1/redact/file", files={"file": (name, data, "application/octet-stream")}, data=form)


def test_an_uploaded_workbook_comes_back_redacted_with_counts_in_a_header(server: LiveServer, tenant_a: Tenant) -> None:
    import io
    import json

    from openpyxl import load_workbook

    with server.client(tenant_a.api_key) as c:
        r = _upload(c, "clients.xlsx", _workbook_bytes(), operator="replace", columns='{"ФИО": "mask"}')
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == XLSX_TYPE
    assert r.headers["content-disposition"] == 'attachment; filename="redacted.xlsx"'
    counts = json.loads(r.headers["x-qorgau-redactions"])
    assert counts["counts"]["KZ_IIN"] == 2 and counts["operators"]["mask"] == 2 and counts["total"] >= 6
    for value in (*VALUES, "061211600012", "Иванова", "aigerim"):
        assert value not in _zip_text(r.content) and value not in r.headers["x-qorgau-redactions"]
    ws = load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in ws[1]] == ["ИИН", "ФИО", "Комментарий", "Сумма"]
    assert ws["A2"].value == "[KZ_IIN_1]" and ws["B2"].value == "********** *****" and ws["D2"].value == 15000


def test_an_uploaded_file_hashed_with_the_organizations_key_is_audited_by_kind_and_counts(
        server: LiveServer, platform: Platform, tenant_a: Tenant) -> None:
    import io
    import json

    with server.client(tenant_a.api_key) as c:
        r = _upload(c, "rows.jsonl", (json.dumps({"id": 1, "text": f"ИИН {IIN}"}) + "\n").encode(),
                    operator="hash", text_field="text")
    assert r.status_code == 200, r.text[:300]
    with platform.db.transaction() as s:
        key = organization_hash_key(s, platform.keyring, tenant_a.org_id)
    assert json.loads(io.BytesIO(r.content).read()) == {"id": 1, "text": f"ИИН {hash_value('KZ_IIN', IIN, key)}"}
    entries = _redaction_entries(platform, tenant_a)
    assert len(entries) == 1 and entries[0].object_type == "file"
    assert entries[0].details["kind"] == "jsonl" and entries[0].details["counts"] == {"KZ_IIN": 1}


def test_a_pdf_is_refused_in_place_and_its_text_is_given_with_to_text(server: LiveServer, tenant_a: Tenant) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "discovery"))
    from test_redact_files import PDF_PAGES, make_pdf

    path = Path(server.app.state.platform.settings.data_dir) / "scan.pdf"
    make_pdf(path, PDF_PAGES)
    with server.client(tenant_a.api_key) as c:
        refused = _upload(c, "scan.pdf", path.read_bytes())
        text = _upload(c, "scan.pdf", path.read_bytes(), to_text="true", identifiers_only="true")
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "to_text"
    assert "to_text" in refused.json()["error"]["message"]
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "=== page 1 ===" in text.text and "06******0012" in text.text and "061211600012" not in text.text


@pytest.mark.parametrize("name, data, form, status, field, code", [
    ("a.exe", b"MZ", {}, 422, "file", "invalid_input"),
    ("a.xlsx", b"PK\x03\x04garbage", {}, 422, "file", "unreadable_file"),
    ("a.txt", b"", {}, 422, "file", "invalid_input"),
    ("a.csv", b"iin\n791028302728\n", {"columns": '{"salary": "drop"}'}, 422, "columns", "invalid_input"),
    ("a.csv", b"iin\n", {"columns": "iin=drop"}, 422, "columns", "invalid_input"),
    ("a.csv", b"iin\n", {"per_type": '{"SHOE_SIZE": "mask"}'}, 422, "per_type", "invalid_input"),
    ("a.csv", b"iin\n", {"per_type": '{"KZ_IIN": "burn"}'}, 422, "per_type.KZ_IIN", "invalid_input"),
    ("a.csv", b"iin\n", {"operator": "shred"}, 422, "operator", "invalid_input"),
    ("a.csv", b"iin\n", {"min_score": "7"}, 422, "min_score", "invalid_input"),
    ("a.txt", b"x", {"text_field": "text"}, 422, "text_field", "invalid_input"),
])
def test_bad_uploads_are_refused_naming_the_field(server: LiveServer, tenant_a: Tenant, name: str, data: bytes,
                                                  form: dict, status: int, field: str, code: str) -> None:
    with server.client(tenant_a.api_key) as c:
        r = _upload(c, name, data, **form)
    assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert error["field"] == field and error["code"] == code and IIN not in r.text


def test_an_upload_over_the_limit_is_refused(server: LiveServer, tenant_a: Tenant,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "MAX_FILE_BYTES", 1024)
    with server.client(tenant_a.api_key) as c:
        r = _upload(c, "big.txt", b"x" * 2048)
    assert r.status_code == 413 and r.json()["error"]["field"] == "file"


def test_a_json_body_or_no_file_is_a_client_error(server: LiveServer, tenant_a: Tenant) -> None:
    with server.client(tenant_a.api_key) as c:
        r = c.post("/api/v1/redact/file", json={"text": TEXT})
        empty = c.post("/api/v1/redact/file", data={"operator": "mask"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "file"
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "file"


@pytest.mark.parametrize("role, allowed", [("dpo", True), ("reviewer", True), ("regulator", False)])
def test_only_staff_and_reviewers_may_redact_files(server: LiveServer, platform: Platform, tenant_a: Tenant,
                                                   role: str, allowed: bool) -> None:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant_a.org_id, name=f"{role} file key", roles=[role],
                                        actor="test")
    with server.client(secret) as c:
        r = _upload(c, "a.txt", f"ИИН {IIN}\n".encode())
    assert (r.status_code == 200) is allowed, (role, r.status_code)
    if not allowed:
        assert r.status_code == 403 and IIN not in r.text


def test_without_credentials_no_file_is_redacted(server: LiveServer) -> None:
    with server.client() as c:
        r = _upload(c, "a.txt", f"ИИН {IIN}\n".encode())
    assert r.status_code == 401 and IIN not in r.text
