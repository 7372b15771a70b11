"""Splitting datasets into the data itself and the vault (L-PD-SPLIT), joining them back, and surviving crashes.

Every test runs on a real platform (SQLite, and PostgreSQL when QORGAU_TEST_DATABASE_URL is set) with the
real vault; crashes are real (SIGKILL of a `qorgau split` process, a failing commit).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from conftest import Tenant
from qorgau.core import audit
from qorgau.core.auth import Principal
from qorgau.core.errors import InvalidInput, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number
from qorgau.vault.models import VaultSubject
from qorgau.vault.service import vault_for
from qorgau.vault.split import (
    DatasetError,
    join_back,
    open_dataset,
    parse_columns_map,
    read_manifest,
    split,
    state_dir_for,
)

COLUMNS = "iin=KZ_IIN,full_name=PERSON,phone=PHONE_NUMBER,diagnosis=keep,amount=keep,row_id=keep"
HEADER = ["row_id", "iin", "full_name", "phone", "diagnosis", "amount"]
SURNAMES = ["Жаксылыков", "Иванова", "Nurlanov", "Ким", "Сейткали"]


def iin(n: int, born: str = "7910283") -> str:
    return synthetic_kz_number(born, 1000 + n * 13)


def person(n: int) -> dict[str, str]:
    """A synthetic person in the vault's canonical spelling (digits-only IIN, E.164 phone)."""
    return {"iin": iin(n), "full_name": f"{SURNAMES[n % 5]} Тест {n}", "phone": f"+7701{n:07d}"}


def rows_for(n_rows: int, *, people: int | None = None) -> list[list[str]]:
    """Data rows; with ``people`` < rows, people come back (a second visit) in a fixed pattern."""
    people = people or n_rows
    out = []
    for r in range(n_rows):
        p = person(r % people)
        out.append([str(r + 1), p["iin"], p["full_name"], p["phone"], f"J{r % 7}.{r % 3}", str(r * 10)])
    return out


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, **kwargs: Any) -> Path:
    with open(path, "w", newline="", encoding=kwargs.pop("encoding", "utf-8")) as fh:
        csv.writer(fh, **kwargs).writerows([header, *rows])
    return path


def read_csv(path: Path, delimiter: str = ",") -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter=delimiter))


def dpo(tenant: Tenant) -> Principal:
    return Principal(kind="user", id=tenant.users["dpo"][0], organization_id=tenant.org_id, roles=frozenset({"dpo"}))


def subjects(platform: Platform, org_id: int) -> int:
    with platform.db.reader(org_id) as s:
        return s.scalar(select(func.count()).select_from(VaultSubject))


def audit_text(platform: Platform, org_id: int) -> str:
    with platform.db.reader(org_id) as s:
        entries = audit.list_entries(s, limit=100_000)
        return json.dumps([[e.action, e.object_id, e.details] for e in entries], ensure_ascii=False)


def do_split(platform: Platform, tenant: Tenant, src: Path, out: Path, **kwargs: Any):
    kwargs.setdefault("columns", COLUMNS)
    kwargs.setdefault("batch_size", 7)
    kwargs.setdefault("scan_values", False)
    return split(src, out, platform=platform, org=tenant.org_id, actor="test", **kwargs)


def do_join(platform: Platform, tenant: Tenant, src: Path, manifest: Path, out: Path, **kwargs: Any):
    kwargs.setdefault("purpose", "quality-check")
    kwargs.setdefault("principal", dpo(tenant))
    return join_back(src, manifest=manifest, output=out, platform=platform, batch_size=5, **kwargs)


# --- round trips -----------------------------------------------------------------------------------------


def test_a_csv_splits_into_pseudonyms_and_data_and_joins_back_to_the_same_table(platform, tenant_a, tmp_path):
    rows = rows_for(40, people=30)  # ten people visit twice
    src = write_csv(tmp_path / "visits.csv", rows)
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv")

    out = read_csv(tmp_path / "split.csv")
    assert out[0] == ["pseudonym", "diagnosis", "amount", "row_id"] or out[0][0] == "pseudonym"
    assert out[0] == ["pseudonym", "row_id", "diagnosis", "amount"]
    assert [r[1] for r in out[1:]] == [r[0] for r in rows]  # every row once, in order
    by_iin: dict[str, set[str]] = {}
    for data, split_row in zip(rows, out[1:]):
        by_iin.setdefault(data[1], set()).add(split_row[0])
    assert all(len(p) == 1 for p in by_iin.values())  # one person, one pseudonym
    assert len({next(iter(p)) for p in by_iin.values()}) == 30
    text = (tmp_path / "split.csv").read_text(encoding="utf-8")
    assert not any(r[1] in text or r[2] in text or r[3] in text for r in rows)  # no identifier left behind
    assert report.rows == report.written == 40 and report.tokenized == 40 and report.subjects_created == 30
    assert subjects(platform, tenant_a.org_id) == 30

    joined = do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "back.csv")
    assert read_csv(tmp_path / "back.csv") == [HEADER, *rows]
    assert joined.restored == 40 and joined.erased == joined.unknown == 0


def test_a_tsv_in_cp1251_keeps_its_delimiter_and_comes_back_as_utf8(platform, tenant_a, tmp_path):
    rows = rows_for(12)
    src = write_csv(tmp_path / "old.tsv", rows, encoding="cp1251", delimiter="\t")
    report = do_split(platform, tenant_a, src, tmp_path / "split.tsv")
    assert read_manifest(report.manifest_path)["input"]["encoding"] == "cp1251"
    assert read_csv(tmp_path / "split.tsv", "\t")[0][0] == "pseudonym"
    do_join(platform, tenant_a, tmp_path / "split.tsv", report.manifest_path, tmp_path / "back.tsv")
    assert read_csv(tmp_path / "back.tsv", "\t") == [HEADER, *rows]


def test_json_lines_keep_their_other_fields_nested_values_and_key_order(platform, tenant_a, tmp_path):
    records = []
    for n in range(15):
        p = person(n)
        records.append({"id": n, "iin": p["iin"], "full_name": p["full_name"], "visit": {"ward": n % 3, "ok": True},
                        "tags": ["a", "ә"], "phone": p["phone"], "note": None})
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    report = do_split(platform, tenant_a, src, tmp_path / "split.jsonl",
                      columns="iin=KZ_IIN,full_name=PERSON,phone=PHONE_NUMBER")
    split_records = [json.loads(line) for line in (tmp_path / "split.jsonl").read_text().splitlines()]
    assert list(split_records[0]) == ["pseudonym", "id", "visit", "tags", "note"]
    assert split_records[3]["visit"] == {"ward": 0, "ok": True}
    do_join(platform, tenant_a, tmp_path / "split.jsonl", report.manifest_path, tmp_path / "back.jsonl")
    back = [json.loads(line) for line in (tmp_path / "back.jsonl").read_text().splitlines()]
    assert back == records
    assert list(back[0]) == list(records[0])


def test_a_json_lines_field_first_seen_late_is_decided_by_its_name(platform, tenant_a, tmp_path):
    lines = [{"iin": iin(n), "amount": n} for n in range(10)]
    lines.append({"iin": iin(10), "amount": 10, "email": "late.comer@mail.kz", "comment": "fine"})
    src = tmp_path / "late.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    report = do_split(platform, tenant_a, src, tmp_path / "split.jsonl", columns="iin=KZ_IIN", sample_rows=5)
    text = (tmp_path / "split.jsonl").read_text()
    assert "late.comer" not in text and '"comment": "fine"' in text
    manifest = read_manifest(report.manifest_path)
    assert manifest["late_fields"] == {"email": "EMAIL_ADDRESS"}
    assert any(p.get("late_field") and p["column"] == "email" and p["row"] == 11 for p in manifest["problems"])
    do_join(platform, tenant_a, tmp_path / "split.jsonl", report.manifest_path, tmp_path / "back.jsonl")
    back = [json.loads(line) for line in (tmp_path / "back.jsonl").read_text().splitlines()]
    assert back[10]["email"] == "late.comer@mail.kz" and back[:10] == lines[:10]


def test_parquet_keeps_column_types_and_integer_iins_regain_their_leading_zero(platform, tenant_a, tmp_path):
    born_2006 = [synthetic_kz_number("0612116", 10 + n) for n in range(8)]
    assert all(v.startswith("0") for v in born_2006)
    table = pa.table({
        "iin": pa.array([int(v) for v in born_2006], pa.int64()),
        "birth_date": pa.array([date(2006, 12, 11)] * 8, pa.date32()),
        "full_name": pa.array([f"Бала {n}" for n in range(8)]),
        "score": pa.array([n / 3 for n in range(8)], pa.float64()),
        "visits": pa.array(list(range(8)), pa.int32()),
    })
    src = tmp_path / "kids.parquet"
    pq.write_table(table, src)
    report = do_split(platform, tenant_a, src, tmp_path / "split.parquet",
                      columns="iin=KZ_IIN,birth_date=DATE_OF_BIRTH,full_name=PERSON")
    out = pq.read_table(tmp_path / "split.parquet")
    assert out.schema.names == ["pseudonym", "score", "visits"]
    assert out.schema.field("visits").type == pa.int32()
    with platform.db.reader(tenant_a.org_id) as s:  # the vault found them by the 12-digit IIN
        assert vault_for(platform).lookup(s, "KZ_IIN", born_2006[3]) is not None
    do_join(platform, tenant_a, tmp_path / "split.parquet", report.manifest_path, tmp_path / "back.parquet")
    back = pq.read_table(tmp_path / "back.parquet")
    assert back.equals(table)


def _sqlite_table(path: Path, rows: list[list[str]]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE clients (row_id INTEGER PRIMARY KEY, iin TEXT, full_name TEXT, phone TEXT, "
                     "diagnosis TEXT, amount INTEGER, seen DATE)")
        conn.executemany("INSERT INTO clients VALUES (?,?,?,?,?,?,?)",
                         [[int(r[0]), *r[1:5], int(r[5]), "2025-01-0%d" % (1 + int(r[0]) % 9)] for r in rows])
    return f"sqlite:///{path}"


def test_a_sql_table_is_split_in_key_order_into_parquet_and_joins_back(platform, tenant_a, tmp_path):
    rows = rows_for(23, people=20)
    random.Random(4).shuffle(rows)  # inserted out of order: the split reads in primary-key order
    url = _sqlite_table(tmp_path / "crm.db", rows)
    report = do_split(platform, tenant_a, url, tmp_path / "split.parquet", table="clients",
                      columns="iin=KZ_IIN,full_name=PERSON,phone=PHONE_NUMBER")
    out = pq.read_table(tmp_path / "split.parquet")
    assert out.column("row_id").to_pylist() == list(range(1, 24))
    assert out.schema.field("seen").type == pa.date32() and out.schema.field("amount").type == pa.int64()
    manifest = read_manifest(report.manifest_path)
    assert manifest["input"]["table"] == "clients" and manifest["input"]["ordered_by"] == ["row_id"]
    assert len(manifest["input"]["rows_digest"]) == 64
    do_join(platform, tenant_a, tmp_path / "split.parquet", report.manifest_path, tmp_path / "back.parquet")
    back = pq.read_table(tmp_path / "back.parquet").to_pylist()
    with sqlite3.connect(tmp_path / "crm.db") as conn:
        original = conn.execute("SELECT row_id, iin, full_name, phone, diagnosis, amount, seen FROM clients "
                                "ORDER BY row_id").fetchall()
    assert [(r["row_id"], r["iin"], r["full_name"], r["phone"], r["diagnosis"], r["amount"], r["seen"].isoformat())
            for r in back] == original


def test_a_table_in_the_platforms_own_kind_of_database_splits_too(platform, tenant_a, settings, tmp_path):
    """On PostgreSQL runs this reads with a server-side cursor from PostgreSQL; on SQLite from SQLite."""
    from sqlalchemy import text

    rows = rows_for(15, people=12)
    with platform.db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE crm_export (id INTEGER PRIMARY KEY, iin VARCHAR(12), phone VARCHAR(20), "
                          "segment VARCHAR(10))"))
        conn.execute(text("INSERT INTO crm_export VALUES (:id, :iin, :phone, :segment)"),
                     [{"id": int(r[0]), "iin": r[1], "phone": r[3], "segment": r[4]} for r in rows])
    report = do_split(platform, tenant_a, settings.database_url, tmp_path / "split.csv", table="crm_export",
                      columns=None)
    out = read_csv(tmp_path / "split.csv")
    assert out[0] == ["pseudonym", "id", "segment"] and [r[1] for r in out[1:]] == [str(n) for n in range(1, 16)]
    assert report.subjects_created == 12
    assert "password" not in json.dumps(read_manifest(report.manifest_path)["input"])


def test_a_sql_table_with_where_can_be_split_into_csv(platform, tenant_a, tmp_path):
    url = _sqlite_table(tmp_path / "crm.db", rows_for(10))
    report = do_split(platform, tenant_a, url, tmp_path / "split.csv", table="clients", where="amount >= 50",
                      columns="iin=KZ_IIN,full_name=PERSON,phone=PHONE_NUMBER")
    out = read_csv(tmp_path / "split.csv")
    assert [r[1] for r in out[1:]] == ["6", "7", "8", "9", "10"]
    assert report.rows == 5


def test_a_database_input_needs_a_real_table_and_a_file_output(platform, tenant_a, tmp_path):
    url = _sqlite_table(tmp_path / "crm.db", rows_for(3))
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, url, tmp_path / "x.parquet", table="nope")
    assert exc.value.field == "table"
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, url, tmp_path / "x.jsonl", table="clients")
    assert exc.value.field == "output"
    with pytest.raises(InvalidInput):
        do_split(platform, tenant_a, url, tmp_path / "x.parquet")  # no --table


# --- bad rows --------------------------------------------------------------------------------------------


def test_a_row_with_a_bad_iin_checksum_stays_out_of_the_vault_and_is_written_without_a_pseudonym(
        platform, tenant_a, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rows = rows_for(10)
    good = rows[4][1]
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    rows[4][1] = bad
    src = write_csv(tmp_path / "in.csv", rows)
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv")
    out = read_csv(tmp_path / "split.csv")
    assert out[5][0] == "" and out[5][1:] == ["5", rows[4][4], rows[4][5]]  # data kept, no pseudonym
    assert report.invalid == 1 and report.tokenized == 9 and report.problems == 1
    manifest = read_manifest(report.manifest_path)
    [problem] = manifest["problems"]
    assert problem["row"] == 5 and problem["line"] == 6 and problem["column"] == "iin"
    assert problem["type"] == "KZ_IIN" and "check digit" in problem["reason"]
    assert problem["outcome"] == "written without pseudonym"
    with platform.db.reader(tenant_a.org_id) as s:
        assert vault_for(platform).lookup(s, "KZ_IIN", bad) is None
        assert vault_for(platform).lookup(s, "PHONE_NUMBER", rows[4][3]) is None  # nothing of that row stored
    for where in (report.manifest_path.read_text(), (tmp_path / "split.csv").read_text(),
                  audit_text(platform, tenant_a.org_id), caplog.text):
        assert bad not in where and rows[4][2] not in where and rows[4][3] not in where


def test_keep_invalid_stores_the_bad_identifier_marked_invalid_and_joins_it_back(platform, tenant_a, tmp_path):
    rows = rows_for(6)
    rows[2][1] = rows[2][1][:-1] + str((int(rows[2][1][-1]) + 1) % 10)
    src = write_csv(tmp_path / "in.csv", rows)
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv", keep_invalid=True)
    assert report.kept_invalid == 1 and report.invalid == 0 and report.tokenized == 6
    [problem] = read_manifest(report.manifest_path)["problems"]
    assert problem["row"] == 3 and problem["outcome"] == "stored in the vault marked invalid"
    assert read_csv(tmp_path / "split.csv")[3][0].startswith("ps_")
    do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "back.csv")
    assert read_csv(tmp_path / "back.csv") == [HEADER, *rows]


def test_malformed_csv_rows_are_left_out_and_reported_by_line(platform, tenant_a, tmp_path):
    rows = rows_for(5)
    src = tmp_path / "ragged.csv"
    lines = [",".join(HEADER)] + [",".join(r) for r in rows]
    lines.insert(3, "99,791028302728,extra,cells,here,too,many")  # 7 cells
    lines.insert(5, '"quoted\nrow",1')  # a record spanning two lines, 2 cells
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv")
    assert report.rows == 7 and report.written == 5 and report.left_out == 2
    problems = read_manifest(report.manifest_path)["problems"]
    assert [(p["row"], p["line"], p["outcome"]) for p in problems] == [(3, 4, "left out"), (5, 6, "left out")]
    assert "7 cells, the header has 6" == problems[0]["reason"]
    assert "791028302728" not in (tmp_path / "split.csv").read_text()


def test_a_row_without_any_identifier_is_written_with_an_empty_pseudonym(platform, tenant_a, tmp_path):
    rows = rows_for(3)
    rows[1][1:4] = ["", "", ""]
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows), tmp_path / "split.csv")
    assert read_csv(tmp_path / "split.csv")[2][0] == ""
    assert report.without_identifiers == 1 and report.problems == 0


def test_a_name_without_a_lookup_identifier_is_reported_not_guessed(platform, tenant_a, tmp_path):
    rows = rows_for(3)
    rows[0][1] = rows[0][3] = ""  # only the name is left
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows), tmp_path / "split.csv")
    [problem] = read_manifest(report.manifest_path)["problems"]
    assert problem["row"] == 1 and "lookup identifier" in problem["reason"]


# --- the plan ----------------------------------------------------------------------------------------------


def test_columns_are_classified_from_names_and_values_when_not_named(platform, tenant_a, tmp_path):
    rows = [[p["iin"], p["full_name"], p["phone"], "J06.9", "ok"] for p in map(person, range(20))]
    src = write_csv(tmp_path / "in.csv", rows, header=["ИИН", "ФИО", "contact", "диагноз", "status"])
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv", columns=None, scan_values=True)
    plan = {c["name"]: c for c in read_manifest(report.manifest_path)["columns"]}
    assert plan["ИИН"]["action"] == "vault" and plan["ИИН"]["entity_type"] == "KZ_IIN"
    assert plan["ИИН"]["rule"].startswith("name: иин")
    assert plan["ФИО"]["entity_type"] == "PERSON"
    assert plan["contact"]["entity_type"] == "PHONE_NUMBER" and plan["contact"]["rule"].startswith("values:")
    assert plan["диагноз"]["action"] == "keep" and plan["диагноз"]["special_category"] == "health"
    assert plan["status"]["action"] == "keep" and plan["status"]["source"] == "classified"


def test_an_identifying_column_without_an_identifier_type_must_be_decided(platform, tenant_a, tmp_path):
    rows = [[p["iin"], f"user{n}"] for n, p in enumerate(map(person, range(5)))]
    src = write_csv(tmp_path / "in.csv", rows, header=["iin", "login"])
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "split.csv", columns=None)
    assert "'login'" in exc.value.message and "--columns login=drop" in exc.value.message
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv", columns="login=drop")
    assert read_csv(tmp_path / "split.csv")[0] == ["pseudonym"] and report.rows == 5


def test_two_iin_columns_mean_two_people_in_a_row_and_are_refused(platform, tenant_a, tmp_path):
    rows = [[iin(n), iin(n + 100), "100"] for n in range(5)]
    src = write_csv(tmp_path / "transfers.csv", rows, header=["sender_iin", "recipient_iin", "amount"])
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "split.csv", columns=None)
    assert "one person" in exc.value.message and exc.value.field == "columns"


def test_explicit_columns_are_checked(platform, tenant_a, tmp_path):
    src = write_csv(tmp_path / "in.csv", rows_for(2))
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "a.csv", columns="iin=KZ_IIN,nope=PERSON")
    assert "'nope'" in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        parse_columns_map("iin=NOT_A_TYPE")
    assert exc.value.field == "columns"
    assert parse_columns_map(["iin=kz_iin", "x=KEEP,y=drop"]) == {"iin": "KZ_IIN", "x": "keep", "y": "drop"}
    with pytest.raises(InvalidInput):
        parse_columns_map("iin")
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "b.csv", columns="diagnosis=keep,amount=keep,row_id=keep,"
                 "iin=keep,full_name=keep,phone=keep")
    assert "no identifying column" in exc.value.message


def test_bad_inputs_and_outputs_name_the_file(platform, tenant_a, tmp_path):
    with pytest.raises(DatasetError) as exc:
        do_split(platform, tenant_a, tmp_path / "missing.csv", tmp_path / "o.csv")
    assert "missing.csv" in exc.value.message
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(DatasetError):
        do_split(platform, tenant_a, tmp_path / "x.xlsx", tmp_path / "o.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError) as exc:
        do_split(platform, tenant_a, tmp_path / "bad.parquet", tmp_path / "o.parquet")
    assert "bad.parquet" in exc.value.message
    pivoted = write_csv(tmp_path / "pivot.csv", [["1", "2"]], header=["name", "791028302728"])
    with pytest.raises(DatasetError) as exc:
        do_split(platform, tenant_a, pivoted, tmp_path / "o.csv")
    assert "791028302728" not in exc.value.message and "column 2" in exc.value.message
    src = write_csv(tmp_path / "in.csv", rows_for(2))
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "o.jsonl")
    assert exc.value.field == "output"
    (tmp_path / "taken.csv").write_text("x")
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "taken.csv")
    assert "already exists" in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "o2.csv", domain="Not A Domain")
    assert exc.value.field == "domain"


# --- the manifest, and nothing leaks ---------------------------------------------------------------------


def test_the_manifest_says_what_moved_where_and_holds_no_value(platform, tenant_a, tmp_path):
    rows = rows_for(9)
    src = write_csv(tmp_path / "in.csv", rows)
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv", domain="research")
    m = read_manifest(report.manifest_path)
    assert report.manifest_path == tmp_path / "split.csv.manifest.json"
    assert m["input"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert m["input"]["bytes"] == src.stat().st_size and m["input"]["rows"] == 9
    assert m["output"]["sha256"] == hashlib.sha256((tmp_path / "split.csv").read_bytes()).hexdigest()
    assert m["output"]["columns"] == ["pseudonym", "row_id", "diagnosis", "amount"]
    assert m["pseudonym"] == {"column": "pseudonym", "domain": "research"}
    moved = {c["name"]: c["entity_type"] for c in m["columns"] if c["action"] == "vault"}
    assert moved == {"iin": "KZ_IIN", "full_name": "PERSON", "phone": "PHONE_NUMBER"}
    assert all(c["rule"].startswith("--columns") for c in m["columns"])
    assert m["counts"]["rows"] == 9 and m["counts"]["tokenized"] == 9 and m["problems"] == []
    assert set(m["timings"]) >= {"classify_s", "read_s", "vault_s", "write_s", "commit_s", "rows_per_s"}
    assert m["organization_id"] == tenant_a.org_id and m["run"].isalpha()
    text = report.manifest_path.read_text()
    assert not any(v in text for r in rows for v in r[1:4])
    assert not state_dir_for(tmp_path / "split.csv").exists()  # the work-in-progress is cleaned up


def test_audit_entries_hold_counts_and_the_run_never_identifiers(platform, tenant_a, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rows = rows_for(12)
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows), tmp_path / "split.csv")
    do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "back.csv")
    with platform.db.reader(tenant_a.org_id) as s:
        actions = [e.action for e in audit.list_entries(s, limit=1000)]
    assert actions.count("vault.split.batch") == 2 and actions.count("vault.split") == 1
    assert actions.count("vault.join_back") == 1 and "vault.detokenize_many" in actions
    text = audit_text(platform, tenant_a.org_id)
    assert not any(v in text for r in rows for v in r[1:4])
    assert not any(v in caplog.text for r in rows for v in r[1:4])
    assert "quality-check" in text  # the purpose is audited


# --- crashes and resume -----------------------------------------------------------------------------------


class Crash(Exception):
    pass


def test_a_crash_after_a_committed_batch_resumes_without_losing_or_repeating_rows(platform, tenant_a, tmp_path):
    rows = rows_for(50, people=40)
    src = write_csv(tmp_path / "in.csv", rows)
    seen = []

    def crash_after_three(progress):
        seen.append(progress.rows)
        if len(seen) == 3:
            raise Crash()

    with pytest.raises(Crash):
        do_split(platform, tenant_a, src, tmp_path / "split.csv", on_progress=crash_after_three)
    assert seen == [7, 14, 21]
    assert not (tmp_path / "split.csv").exists() and state_dir_for(tmp_path / "split.csv").exists()
    with pytest.raises(InvalidInput) as exc:  # not silently restarted
        do_split(platform, tenant_a, src, tmp_path / "split.csv")
    assert "--resume" in exc.value.message
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv", resume=True)
    assert report.resumed and report.rows == 50 and report.subjects_created == 40
    assert [r[1] for r in read_csv(tmp_path / "split.csv")[1:]] == [str(n) for n in range(1, 51)]
    assert subjects(platform, tenant_a.org_id) == 40
    assert read_manifest(report.manifest_path)["resumes"] == 1
    do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "back.csv")
    assert read_csv(tmp_path / "back.csv") == [HEADER, *rows]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_commit_that_fails_after_the_output_was_written_is_rolled_back_and_truncated(
        platform, tenant_a, tmp_path, fmt, monkeypatch):
    rows = rows_for(30)
    src = write_csv(tmp_path / "in.csv", rows)
    if fmt == "jsonl":
        src2 = tmp_path / "in.jsonl"
        src2.write_text("".join(json.dumps(dict(zip(HEADER, r)), ensure_ascii=False) + "\n" for r in rows))
        src = src2
    elif fmt == "parquet":
        src2 = tmp_path / "in.parquet"
        pq.write_table(pa.table({h: [r[i] for r in rows] for i, h in enumerate(HEADER)}), src2)
        src = src2
    out = tmp_path / f"split.{fmt}"
    checkpoints = []
    real_record = audit.record

    def record_then_fail_the_fourth_checkpoint(session, **kwargs):
        real_record(session, **kwargs)
        if kwargs["action"] == "vault.split.batch":
            checkpoints.append(kwargs["details"]["batch"])
            if len(checkpoints) == 4:
                raise Crash()  # after the output was fsynced, before the transaction commits

    monkeypatch.setattr(audit, "record", record_then_fail_the_fourth_checkpoint)
    with pytest.raises(Crash):
        do_split(platform, tenant_a, src, out)
    monkeypatch.undo()
    state = state_dir_for(out)
    if fmt != "parquet":  # batch 4 reached the disk before the commit failed: a torn tail
        assert (state / "data.partial").read_bytes().count(b"\n") == 28 + (fmt == "csv")
    else:
        assert len(list((state / "parts").iterdir())) == 4
    assert subjects(platform, tenant_a.org_id) == 21  # batch 4's subjects rolled back with its checkpoint
    report = do_split(platform, tenant_a, src, out, resume=True)
    assert report.rows == 30 and subjects(platform, tenant_a.org_id) == 30
    do_join(platform, tenant_a, out, report.manifest_path, tmp_path / f"back.{fmt}")
    if fmt == "csv":
        assert read_csv(tmp_path / "back.csv") == [HEADER, *rows]
    elif fmt == "jsonl":
        back = [json.loads(line) for line in (tmp_path / "back.jsonl").read_text().splitlines()]
        assert [list(r.values()) for r in back] == rows
    else:
        back = pq.read_table(tmp_path / "back.parquet")
        assert [list(r.values()) for r in back.to_pylist()] == rows


def test_resume_refuses_a_changed_input_or_other_options(platform, tenant_a, tmp_path):
    src = write_csv(tmp_path / "in.csv", rows_for(20))

    def crash(progress):
        raise Crash()

    with pytest.raises(Crash):
        do_split(platform, tenant_a, src, tmp_path / "split.csv", on_progress=crash)
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "split.csv", resume=True, domain="other")
    assert exc.value.field == "domain"
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "split.csv", resume=True, columns="iin=KZ_IIN")
    assert exc.value.field == "columns"
    write_csv(src, rows_for(21))
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, src, tmp_path / "split.csv", resume=True)
    assert "changed" in exc.value.message and exc.value.field == "input"


def test_resume_of_a_sql_table_checks_that_the_rows_already_split_are_unchanged(platform, tenant_a, tmp_path):
    url = _sqlite_table(tmp_path / "crm.db", rows_for(30))

    def crash(progress):
        if progress.rows >= 14:
            raise Crash()

    kwargs = dict(table="clients", columns="iin=KZ_IIN,full_name=PERSON,phone=PHONE_NUMBER")
    with pytest.raises(Crash):
        do_split(platform, tenant_a, url, tmp_path / "split.parquet", on_progress=crash, **kwargs)
    with sqlite3.connect(tmp_path / "crm.db") as conn:
        conn.execute("UPDATE clients SET diagnosis = 'changed' WHERE row_id = 3")
    with pytest.raises(InvalidInput) as exc:
        do_split(platform, tenant_a, url, tmp_path / "split.parquet", resume=True, **kwargs)
    assert "changed" in exc.value.message
    with sqlite3.connect(tmp_path / "crm.db") as conn:
        conn.execute("UPDATE clients SET diagnosis = ? WHERE row_id = 3", (rows_for(30)[2][4],))
    report = do_split(platform, tenant_a, url, tmp_path / "split.parquet", resume=True, **kwargs)
    assert pq.read_table(tmp_path / "split.parquet").column("row_id").to_pylist() == list(range(1, 31))
    assert report.rows == 30


def test_killing_the_split_process_at_random_points_loses_and_duplicates_nothing(platform, tenant_a, tmp_path,
                                                                                  settings):
    """SIGKILL a real `qorgau split` several times, at random moments, then resume until it completes."""
    n_rows, people = 900, 700
    rows = rows_for(n_rows, people=people)
    src = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "split.csv"
    state = state_dir_for(out)
    env = {**os.environ, "QORGAU_DATA_DIR": str(settings.data_dir), "QORGAU_DATABASE_URL": settings.database_url,
           "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "qorgau.cli", "split", str(src), "--output", str(out), "--columns", COLUMNS,
           "--org", tenant_a.bin, "--batch-size", "20", "--no-progress", "--resume"]
    rng = random.Random(int(os.environ.get("SPLIT_KILL_SEED", "20260118")))
    kills_mid_run = 0
    for attempt in range(12):
        target = rng.randrange(20, n_rows)  # kill once the partial output holds about this many rows
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            partial = state / "data.partial"
            try:
                written = partial.read_bytes().count(b"\n") - 1
            except FileNotFoundError:
                written = 0
            if written >= target:
                proc.send_signal(signal.SIGKILL)
                kills_mid_run += 1
                break
            time.sleep(0.002)
        stdout, stderr = proc.communicate(timeout=60)
        if proc.returncode in (0, 4):
            break
        assert proc.returncode == -signal.SIGKILL, stderr.decode()
    else:
        final = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        assert final.returncode in (0, 4), final.stderr.decode()
    assert kills_mid_run >= 2, "the process was never killed in the middle of a split"

    out_rows = read_csv(out)
    assert [r[1] for r in out_rows[1:]] == [str(n) for n in range(1, n_rows + 1)]  # each row once, in order
    pseudonym_of: dict[str, str] = {}
    for data, split_row in zip(rows, out_rows[1:]):
        assert pseudonym_of.setdefault(data[1], split_row[0]) == split_row[0]
    assert subjects(platform, tenant_a.org_id) == people  # one subject per identity
    manifest = read_manifest(tmp_path / "split.csv.manifest.json")
    assert manifest["counts"]["rows"] == n_rows and manifest["resumes"] >= 1
    do_join(platform, tenant_a, out, tmp_path / "split.csv.manifest.json", tmp_path / "back.csv")
    assert read_csv(tmp_path / "back.csv") == [HEADER, *rows]
    assert audit.verify(platform.db, platform.keyring).ok


# --- join back ---------------------------------------------------------------------------------------------


def test_an_erased_subject_comes_back_as_empty_cells_counted_by_erasure_date(platform, tenant_a, tmp_path):
    rows = rows_for(10)
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows), tmp_path / "split.csv")
    gone = read_csv(tmp_path / "split.csv")[4][0]
    with platform.db.transaction(tenant_a.org_id) as s:
        vault_for(platform).shred(s, gone, reason="subject request", actor="test")
    joined = do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "back.csv")
    back = read_csv(tmp_path / "back.csv")
    assert back[4] == [rows[3][0], "", "", "", rows[3][4], rows[3][5]]
    assert back[:4] + back[5:] == ([HEADER] + rows)[:4] + ([HEADER] + rows)[5:]
    assert joined.erased == 1 and joined.erased_on == {date.today().isoformat(): 1} and joined.restored == 9


def test_join_back_works_on_a_filtered_dataset_with_an_added_column(platform, tenant_a, tmp_path):
    rows = rows_for(8)
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows), tmp_path / "split.csv")
    analysed = read_csv(tmp_path / "split.csv")
    kept = [analysed[0] + ["risk"]] + [r + ["high"] for r in analysed[1:] if int(r[1]) % 2 == 0]
    with open(tmp_path / "analysed.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(kept)
    joined = do_join(platform, tenant_a, tmp_path / "analysed.csv", report.manifest_path, tmp_path / "back.csv")
    assert read_csv(tmp_path / "back.csv") == [HEADER + ["risk"]] + [r + ["high"] for r in rows if int(r[0]) % 2 == 0]
    assert joined.rows == 4


def test_join_back_needs_an_allowed_role_a_purpose_code_and_the_manifests_organization(
        platform, tenant_a, tenant_b, tmp_path):
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows_for(3)), tmp_path / "split.csv")
    reviewer = Principal(kind="user", id=tenant_a.users["reviewer"][0], organization_id=tenant_a.org_id,
                         roles=frozenset({"reviewer"}))
    with pytest.raises(PermissionDenied):
        do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "b1.csv",
                principal=reviewer)
    with pytest.raises(InvalidInput) as exc:
        do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "b2.csv",
                purpose="because I want to see Иванов")
    assert exc.value.field == "purpose"
    with pytest.raises(InvalidInput) as exc:
        do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "b3.csv",
                principal=dpo(tenant_b))
    assert exc.value.field == "manifest"
    assert not any((tmp_path / f"b{n}.csv").exists() for n in (1, 2, 3))


def test_another_organization_cannot_re_identify_by_forging_the_manifest(platform, tenant_a, tenant_b, tmp_path):
    rows = rows_for(4)
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows), tmp_path / "split.csv")
    doc = json.loads(report.manifest_path.read_text())
    doc["organization_id"] = tenant_b.org_id
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    joined = do_join(platform, tenant_b, tmp_path / "split.csv", forged, tmp_path / "back.csv",
                     principal=dpo(tenant_b))
    assert joined.unknown == 4 and joined.restored == 0  # B's vault knows none of A's pseudonyms
    assert not any(v in (tmp_path / "back.csv").read_text() for r in rows for v in r[1:4])


def test_pseudonyms_are_stable_per_domain_and_unlinkable_across_organizations(platform, tenant_a, tenant_b, tmp_path):
    src = write_csv(tmp_path / "in.csv", rows_for(5))
    do_split(platform, tenant_a, src, tmp_path / "a1.csv")
    do_split(platform, tenant_a, src, tmp_path / "a2.csv")
    do_split(platform, tenant_a, src, tmp_path / "a3.csv", domain="marketing")
    do_split(platform, tenant_b, src, tmp_path / "b1.csv")
    col = {name: [r[0] for r in read_csv(tmp_path / f"{name}.csv")[1:]] for name in ("a1", "a2", "a3", "b1")}
    assert col["a1"] == col["a2"]
    assert not set(col["a1"]) & set(col["a3"]) and not set(col["a1"]) & set(col["b1"])


def test_memory_stays_flat_while_streaming(platform, tenant_a, tmp_path):
    import tracemalloc

    peaks = []
    for n in (400, 1600):
        src = write_csv(tmp_path / f"in{n}.csv", rows_for(n))
        tracemalloc.start()
        do_split(platform, tenant_a, src, tmp_path / f"out{n}.csv", batch_size=100)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.5, peaks  # four times the rows, about the same peak


def test_open_dataset_reads_batches_from_any_row(tmp_path):
    rows = rows_for(10)
    data = open_dataset(write_csv(tmp_path / "in.csv", rows))
    got = [row for batch in data.batches(3, start=4) for row in batch.rows]
    assert got == rows[4:] and [b.start for b in data.batches(3, start=4)] == [4, 7]
    pq.write_table(pa.table({h: [r[i] for r in rows] for i, h in enumerate(HEADER)}), tmp_path / "in.parquet")
    batches = list(open_dataset(tmp_path / "in.parquet").batches(4, start=3))
    assert [(b.start, b.size) for b in batches] == [(3, 4), (7, 3)]
    assert batches[0].table.column(0).to_pylist() == ["4", "5", "6", "7"]


def test_a_crash_while_finishing_is_finished_by_resume(platform, tenant_a, tmp_path, monkeypatch):
    import qorgau.vault.split as split_module

    rows = rows_for(10)
    src = write_csv(tmp_path / "in.csv", rows)

    def no_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(split_module, "_write_manifest", no_disk)
    with pytest.raises(OSError):
        do_split(platform, tenant_a, src, tmp_path / "split.csv")
    monkeypatch.undo()
    assert (tmp_path / "split.csv").exists()  # the output was already moved into place
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv", resume=True)
    assert report.rows == 10 and [r[1] for r in read_csv(tmp_path / "split.csv")[1:]] == [r[0] for r in rows]
    assert subjects(platform, tenant_a.org_id) == 10


def test_two_processes_cannot_work_on_one_output_at_once(platform, tenant_a, tmp_path):
    src = write_csv(tmp_path / "in.csv", rows_for(20))

    def crash(progress):
        raise Crash()

    with pytest.raises(Crash):
        do_split(platform, tenant_a, src, tmp_path / "split.csv", on_progress=crash)
    held = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; fh = open(sys.argv[1], 'a+b'); "
                             "fcntl.flock(fh.fileno(), fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
                             str(state_dir_for(tmp_path / "split.csv") / "lock")], stdout=subprocess.PIPE)
    try:
        assert held.stdout.readline() == b"locked\n"
        with pytest.raises(InvalidInput) as exc:
            do_split(platform, tenant_a, src, tmp_path / "split.csv", resume=True)
        assert "another split" in exc.value.message
    finally:
        held.kill()
        held.wait()
    assert do_split(platform, tenant_a, src, tmp_path / "split.csv", resume=True).rows == 20


def test_a_person_known_with_two_phones_gets_the_first_and_the_cells_are_counted(platform, tenant_a, tmp_path):
    rows = rows_for(3)
    rows[1][1:3] = rows[0][1:3]  # row 2 is person 0 again, with a new phone number
    report = do_split(platform, tenant_a, write_csv(tmp_path / "in.csv", rows), tmp_path / "split.csv")
    assert report.subjects_created == 2
    joined = do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "back.csv")
    back = read_csv(tmp_path / "back.csv")
    assert back[1] == rows[0] and back[2][3] == rows[0][3]  # the vault knows both; a cell holds one
    assert joined.ambiguous_cells == 2 and back[3] == rows[2]


def test_two_columns_of_one_type_take_the_values_in_the_order_the_vault_learned_them(platform, tenant_a, tmp_path):
    header = ["iin", "home_phone", "mobile_phone", "visits"]
    rows = [[iin(n), f"+7727250{n:04d}", f"+7701{n:07d}", str(n)] for n in range(4)]
    rows[3][1] = ""  # no home phone
    src = write_csv(tmp_path / "in.csv", rows, header=header)
    report = do_split(platform, tenant_a, src, tmp_path / "split.csv",
                      columns="iin=KZ_IIN,home_phone=PHONE_NUMBER,mobile_phone=PHONE_NUMBER,visits=keep")
    do_join(platform, tenant_a, tmp_path / "split.csv", report.manifest_path, tmp_path / "back.csv")
    back = read_csv(tmp_path / "back.csv")
    assert back[:4] == [header, *rows[:3]]
    assert back[4] == [rows[3][0], rows[3][2], "", "3"]  # one phone known: it lands in the first phone column
