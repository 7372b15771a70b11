"""Two-phase ingest of leak files (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER): parsing of every format and
encoding, rejected lines by number, confirm → one segment visible to lookups, expiry, discard, tenant isolation."""

from __future__ import annotations

import io
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Tenant
from qorgau.core.db import utcnow
from qorgau.core.errors import Conflict, InvalidInput, NotFound
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number
from qorgau.leaks import segments
from qorgau.leaks.ingest import ingest_for
from qorgau.leaks.models import LeakIncident, LeakUpload
from qorgau.leaks.register import index_directory, leak_index_for, leak_keys_for

from .ingest_helpers import invalid_iin, make_incident, valid_iins


def phones(count: int) -> list[str]:
    return [f"8701{1000000 + 37 * i:07d}" for i in range(count)]


def e164(phone: str) -> str:
    return "+7" + phone[1:]


def csv_with_invalid(n: int = 100) -> tuple[bytes, list[str], list[int]]:
    """A semicolon CSV with a header; every 10th IIN has a wrong check digit. Returns the bytes, the valid
    IINs and the (1-based) line numbers of the invalid ones."""
    iins = valid_iins(n)
    tel = phones(n)
    lines = ["ФИО;ИИН;Телефон;Город"]
    bad_lines, good = [], []
    for i in range(n):
        iin = iins[i]
        if i % 10 == 3:
            iin = invalid_iin(iin)
            bad_lines.append(i + 2)
        else:
            good.append(iin)
        lines.append(f"Клиент {i};{iin};{tel[i]};Алматы")
    return ("\n".join(lines) + "\n").encode("utf-8"), good, bad_lines


def test_csv_with_ten_percent_invalid_iins_reports_them_by_line_and_keeps_the_valid(
        platform: Platform, tenant_a: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    data, good, bad_lines = csv_with_invalid(100)
    view = ingest_for(platform).upload(tenant_a.org_id, incident, data, "clients.csv", actor="user:1")
    assert view.status == "parsed" and view.format == "csv"
    assert view.counts == {"iin": 90, "phone": 100, "email": 0}
    rejected = [r for r in view.rejected if r["reason"] == "iin_invalid"]
    assert [r["line"] for r in rejected] == bad_lines and all(r["column"] == 2 for r in rejected)
    assert view.rejected_total == 10
    # samples are masked; no value appears in the review
    text = json.dumps(view.to_dict(), default=str)
    assert all(iin not in text for iin in good[:20]) and "8701" not in text
    assert len(view.samples["iin"]) == 5 and all("*" in s for s in view.samples["iin"])
    # the spool is the only plaintext: normalized, deduplicated, owner-only
    with platform.db.reader(tenant_a.org_id) as s:
        spool = Path(s.query(LeakUpload).one().spool_path)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600
    lines = spool.read_text().splitlines()
    assert sorted(v for k, _, v in (ln.partition("\t") for ln in lines) if k == "iin") == sorted(good)
    assert f"phone\t{e164(phones(1)[0])}" in lines


def test_cp1251_telegram_dump_with_garbage(platform: Platform, tenant_a: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(20)
    rows = ["Результаты поиска бота @leakbot", "=" * 20]
    for i, iin in enumerate(iins):
        rows.append(f"ИИН: {iin}, Тел: 8 (701) {100 + i}-00-{10 + i}, Почта: user{i}@Mail.KZ")
    rows.append("ИИН: 12345, мусор")
    data = ("\r\n".join(rows) + "\r\n").encode("cp1251") + b"\x98\x98 broken\r\n"
    view = ingest_for(platform).upload(tenant_a.org_id, incident, io.BytesIO(data), "dump.txt", actor="user:1")
    assert view.format == "text"
    assert view.counts == {"iin": 20, "phone": 20, "email": 20}
    reasons = {r["line"]: r["reason"] for r in view.rejected}
    assert reasons[1] == "no_identifier" and reasons[23] == "no_identifier"
    assert reasons[24] == "undecodable"
    assert view.samples["email"][0].endswith("@mail.kz")


def test_utf16_csv_and_a_utf8_file_with_undecodable_lines(platform: Platform, tenant_a: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(10, start=5000)
    text = "iin,email\n" + "".join(f"{iin},a{i}@b.kz\n" for i, iin in enumerate(iins))
    service = ingest_for(platform)
    v16 = service.upload(tenant_a.org_id, incident, text.encode("utf-16"), "x.csv", actor="user:1")
    assert v16.counts == {"iin": 10, "phone": 0, "email": 10} and v16.rejected_total == 0
    # UTF-8 with a stray Latin-1 byte in line 3 and binary junk in line 5
    raw = text.encode("utf-8").splitlines(keepends=True)
    raw[2] = raw[2].replace(b",", b",\xe9", 1)
    raw[4] = b"\xff\xfe\x00\x01junk\n"
    v8 = service.upload(tenant_a.org_id, incident, b"".join(raw), "y.csv", actor="user:1")
    bad = {r["line"]: r["reason"] for r in v8.rejected}
    assert bad[3] == "undecodable" and bad[5] == "undecodable"
    assert v8.counts["iin"] == 8


def test_xlsx_and_jsonl(platform: Platform, tenant_a: Tenant) -> None:
    from openpyxl import Workbook

    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(12, start=7000)
    wb = Workbook()
    ws = wb.active
    ws.append(["Name", "IIN", "Mobile"])
    for i, iin in enumerate(iins):
        ws.append([f"Person {i}", int(iin) if i % 2 else iin, phones(12)[i]])
    ws.append(["x", invalid_iin(iins[0]), "not a phone"])
    buf = io.BytesIO()
    wb.save(buf)
    service = ingest_for(platform)
    vx = service.upload(tenant_a.org_id, incident, buf.getvalue(), "leak.xlsx", actor="user:1")
    assert vx.format == "xlsx"
    assert vx.counts == {"iin": 12, "phone": 12, "email": 0}
    assert {(r["line"], r["reason"]) for r in vx.rejected} == {(14, "iin_invalid"), (14, "phone_invalid")}
    lines = [json.dumps({"user": {"iin": iin, "contacts": [f"u{i}@x.kz"]}, "note": "ok"}) for i, iin in enumerate(iins)]
    lines.insert(3, "{not json at all")
    vj = service.upload(tenant_a.org_id, incident, ("\n".join(lines) + "\n").encode(), "dump.jsonl", actor="user:1")
    assert vj.format == "jsonl"
    assert vj.counts == {"iin": 12, "phone": 0, "email": 12}
    assert {"line": 4, "reason": "no_identifier"} in vj.rejected


def test_confirm_commits_one_segment_lookups_see_it_and_the_spool_is_deleted(
        platform: Platform, tenant_a: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    data, good, _bad = csv_with_invalid(50)
    service = ingest_for(platform)
    view = service.upload(tenant_a.org_id, incident, data, "c.csv", actor="user:1")
    with platform.db.reader(tenant_a.org_id) as s:
        spool = Path(s.query(LeakUpload).one().spool_path)
    before = segments.read_manifest(index_directory(platform)).segments
    done = service.confirm(tenant_a.org_id, view.public_id, actor="user:1")
    assert done.status == "confirmed" and not done.publish_pending
    assert done.tokens_committed == 45 + 50
    assert not spool.exists()
    after = segments.read_manifest(index_directory(platform)).segments
    assert len(after) == len(before) + 1 and done.segment_name in {s.name for s in after}
    keys = leak_keys_for(platform)
    index = leak_index_for(platform)
    assert index.lookup(keys.token("iin", good[0])) == (incident,)
    assert index.lookup(keys.token("phone", e164(phones(50)[7]))) == (incident,)
    assert index.lookup(keys.token("iin", synthetic_kz_number("9001013", 5))) == ()  # not in the file
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.get(LeakIncident, incident).identifiers_committed == 95
    # a second confirm answers the same and writes nothing
    again = service.confirm(tenant_a.org_id, view.public_id, actor="user:1")
    assert again.status == "confirmed" and again.tokens_committed == 95
    assert segments.read_manifest(index_directory(platform)).segments == after
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.get(LeakIncident, incident).identifiers_committed == 95
    with pytest.raises(Conflict):
        service.discard(tenant_a.org_id, view.public_id, "user:1")
    assert [u.public_id for u in service.list(tenant_a.org_id, incident)] == [view.public_id]


def test_an_expired_upload_cannot_be_confirmed_and_is_purged(platform: Platform, tenant_a: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    service = ingest_for(platform)
    view = service.upload(tenant_a.org_id, incident, "\n".join(valid_iins(3)).encode(), "a.txt", actor="user:1")
    with platform.db.transaction(tenant_a.org_id) as s:
        row = s.query(LeakUpload).one()
        spool = Path(row.spool_path)
        row.expires_at = utcnow() - timedelta(minutes=1)
    with pytest.raises(Conflict) as err:
        service.confirm(tenant_a.org_id, view.public_id, actor="user:1")
    assert "expired on" in err.value.message and err.value.field == "upload"
    assert segments.read_manifest(index_directory(platform)).segments == ()
    assert service.purge_expired() == 1
    assert not spool.exists()
    assert service.get(tenant_a.org_id, view.public_id).status == "expired"
    assert service.purge_expired() == 0
    with pytest.raises(Conflict):
        service.confirm(tenant_a.org_id, view.public_id, actor="user:1")


def test_discard_deletes_the_spool(platform: Platform, tenant_a: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    service = ingest_for(platform)
    view = service.upload(tenant_a.org_id, incident, "\n".join(valid_iins(3)).encode(), "a.txt", actor="user:1")
    spool = service.spool_dir / view.public_id
    assert spool.exists()
    assert service.discard(tenant_a.org_id, view.public_id, "user:1").status == "discarded"
    assert not spool.exists()
    assert service.discard(tenant_a.org_id, view.public_id, "user:1").status == "discarded"
    with pytest.raises(Conflict):
        service.confirm(tenant_a.org_id, view.public_id, actor="user:1")


def test_another_organization_gets_not_found(platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    service = ingest_for(platform)
    view = service.upload(tenant_a.org_id, incident, "\n".join(valid_iins(3)).encode(), "a.txt", actor="user:1")
    for call in (lambda: service.get(tenant_b.org_id, view.public_id),
                 lambda: service.confirm(tenant_b.org_id, view.public_id, actor="x"),
                 lambda: service.discard(tenant_b.org_id, view.public_id, "x"),
                 lambda: service.list(tenant_b.org_id, incident),
                 lambda: service.upload(tenant_b.org_id, incident, b"850115310009\n", "b.txt", actor="x")):
        with pytest.raises(NotFound):
            call()
    assert service.get(tenant_a.org_id, view.public_id).status == "parsed"


def test_limits_and_bad_input(platform: Platform, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    service = ingest_for(platform)
    monkeypatch.setattr(platform.settings, "leaks_upload_max_bytes", 2048)
    with pytest.raises(InvalidInput) as err:
        service.upload(tenant_a.org_id, incident, b"850115310009\n" * 1000, "big.txt", actor="user:1")
    assert "big.txt" in err.value.message and err.value.field == "file"
    assert not [p for p in service.spool_dir.iterdir()]
    with pytest.raises(InvalidInput):
        service.upload(tenant_a.org_id, incident, b"PK\x03\x04garbage", "x.xlsx", actor="user:1")
    with pytest.raises(InvalidInput):
        service.upload(tenant_a.org_id, incident, b"x", "x.csv", format="pdf", actor="user:1")
    with pytest.raises(InvalidInput):
        service.upload(tenant_a.org_id, incident, b"x", "x.csv", column_hints={"a": "passport"}, actor="user:1")
    fabricated = make_incident(platform, tenant_a.org_id, status="fabricated")
    with pytest.raises(Conflict):
        service.upload(tenant_a.org_id, fabricated, b"850115310009\n", "a.txt", actor="user:1")
    with pytest.raises(NotFound):
        service.get(tenant_a.org_id, "lu-nope")
    assert not os.listdir(service.spool_dir)


def test_column_hints_read_a_headerless_column_strictly(platform: Platform, tenant_a: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(5, start=9000)
    text = "".join(f"{i},{iin}\n" for i, iin in enumerate(iins)) + f"9,{invalid_iin(iins[0])}\n"
    view = ingest_for(platform).upload(tenant_a.org_id, incident, text.encode(), "h.csv", actor="user:1",
                                       column_hints={2: "iin"})
    assert view.counts["iin"] == 5
    assert view.rejected == [{"line": 6, "reason": "iin_invalid", "column": 2}]


def test_the_hourly_job_expires_uploads_and_merges_the_index(platform: Platform, tenant_a: Tenant) -> None:
    from qorgau.leaks.ingest import run_periodic

    incident = make_incident(platform, tenant_a.org_id)
    service = ingest_for(platform)
    batches = [valid_iins(20, start=100000 + 1000 * k) for k in range(4)]
    for batch in batches:
        view = service.upload(tenant_a.org_id, incident, "\n".join(batch).encode(), "p.txt", actor="user:1")
        service.confirm(tenant_a.org_id, view.public_id, actor="user:1")
    stale = service.upload(tenant_a.org_id, incident, "\n".join(batches[0]).encode(), "s.txt", actor="user:1")
    with platform.db.transaction(tenant_a.org_id) as s:
        s.query(LeakUpload).filter_by(public_id=stale.public_id).one().expires_at = utcnow() - timedelta(seconds=1)
    assert len(segments.read_manifest(index_directory(platform)).segments) == 4
    run_periodic(platform)
    service.merge_in_background().join(60)
    manifest = segments.read_manifest(index_directory(platform))
    assert len(manifest.segments) == 1 and manifest.segments[0].entries == 80
    assert service.get(tenant_a.org_id, stale.public_id).status == "expired"
    keys = leak_keys_for(platform)
    index = leak_index_for(platform)
    index.refresh()
    assert all(index.lookup(keys.token("iin", b[5])) == (incident,) for b in batches)
