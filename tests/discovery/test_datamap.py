"""The data map: scans become sources, fields, categories and counts — the current state, never a value."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from qorgau.core import audit, auth
from qorgau.core.errors import NotFound
from qorgau.core.platform import Platform
from qorgau.discovery import datamap
from qorgau.discovery.datamap import (
    DataMapCollector,
    FieldKey,
    SourceFilter,
    collapse_path,
    field_of,
    locator_for,
    record_result,
)
from qorgau.discovery.models import DataMapCount, DataMapField, DataSource
from qorgau.discovery.scanning import Place, ScannerSpec, SourceResult, scan_paths
from qorgau.discovery.types import Finding

from conftest import make_bin

IIN = "791028302728"
IIN_2 = "061211600012"
PHONE = "+7 701 234 56 78"
EMAIL = "aigerim@gov.kz"
SCANNER = ScannerSpec(identifiers_only=True)()


def org(platform: Platform, serial: int) -> int:
    with platform.db.transaction() as s:
        return auth.create_organization(s, name=f"Org {serial}", bin=make_bin(serial), actor="test").id


@pytest.fixture
def org_a(platform: Platform) -> int:
    return org(platform, 31)


@pytest.fixture
def org_b(platform: Platform) -> int:
    return org(platform, 32)


def scan_into_map(platform: Platform, org_id: int, *paths: Path | str, job_id: int | None = None,
                  **options: object) -> list[DataSource | None]:
    """What a job does: stream the scan through the collector, record each source in its own transaction."""
    collector = DataMapCollector()
    saved = []
    for result in scan_paths([str(p) for p in paths], lambda: SCANNER, on_place=collector,  # type: ignore[arg-type]
                             min_score=0.5, **options):
        with platform.db.transaction(org_id) as s:
            saved.append(record_result(s, result, actor="test", job_id=job_id, tally=collector.take(result)))
    return saved


def fields_of(platform: Platform, org_id: int, locator: str) -> dict[str, DataMapField]:
    with platform.db.reader(org_id) as s:
        source = s.scalar(select(DataSource).where(DataSource.locator == locator))
        assert source is not None, locator
        return {f.field: f for f in datamap.get_source(s, source.id).fields}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def clients_csv(path: Path, rows: int = 30) -> Path:
    return write_csv(path, ["id", "ИИН", "ФИО", "Телефон", "диагноз", "salary", "product_name", "comment"],
                     [[str(i), IIN if i % 2 else IIN_2, "Client", PHONE, "J45.0", "350000", "Deposit Plus",
                       f"called back {EMAIL}" if i % 10 == 0 else "ok"] for i in range(rows)])


# --- where a place belongs ---------------------------------------------------------------------------


@pytest.mark.parametrize("location, name, column, structured", [
    ({"row": 3, "column": "ИИН"}, "ИИН", "ИИН", True),
    ({"sheet": "Клиенты", "cell": "B3", "row": 3, "column": "phone"}, "Клиенты!phone", "phone", True),
    ({"table": "clients", "column": "iin", "row": 7}, "clients.iin", "iin", True),
    ({"table": 1, "row": 2, "cell": 3}, "(table 1, column 3)", "", True),
    ({"path": "$.clients[3].contacts[0].email"}, "$.clients[].contacts[].email", "email", True),
    ({"path": '$.people[1]["фамилия"]'}, '$.people[]["фамилия"]', "фамилия", True),
    ({"path": "$.by_iin[#4]"}, "$.by_iin[*]", "by_iin", True),
    ({"path": "$.by_iin[#4]#key"}, "$.by_iin[*]#key", "", True),
    ({"line": 9, "path": "$.user.iin"}, "$.user.iin", "iin", True),
    ({"line": 9, "id": "r-1", "field": "text"}, "text", "text", True),
    ({"line": 4}, "(text)", "", False),
    ({"paragraph": 2}, "(text)", "", False),
    ({"page": 5}, "(text)", "", False),
    ({"section": 1, "part": "header"}, "(text)", "", False),
])
def test_every_kind_of_place_maps_to_its_field(location: dict, name: str, column: str, structured: bool) -> None:
    assert field_of(location) == FieldKey(name, column, structured)


def test_array_indexes_collapse_so_a_list_of_records_is_one_field_per_key() -> None:
    assert collapse_path("$[0].a[12][3].b") == "$[].a[][].b"
    assert collapse_path("$.m[#0].x[#12]") == "$.m[*].x[*]"


def test_locators_are_absolute_paths_or_urls_without_passwords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert locator_for("exports/a.csv") == str(tmp_path / "exports" / "a.csv")
    shown = locator_for("postgresql://scanner:S3cret-pw@db.internal:5432/crm")
    assert "S3cret-pw" not in shown and shown.startswith("postgresql://scanner:") and shown.endswith("@db.internal:5432/crm")
    assert locator_for("sqlite:///crm.db") == f"sqlite:///{tmp_path / 'crm.db'}"
    assert locator_for("upload:clients.csv") == "upload:clients.csv"
    long = "/x/" + "a" * 1200
    assert len(locator_for(long)) == 1000 and locator_for(long) != locator_for(long + "b")


# --- recording a scan ---------------------------------------------------------------------------------


def test_a_clients_table_becomes_fields_with_categories_types_counts_and_rules(platform: Platform, org_a: int,
                                                                             tmp_path: Path) -> None:
    path = clients_csv(tmp_path / "clients.csv")
    source, = scan_into_map(platform, org_a, path)
    assert source is not None and source.locator == str(path) and source.kind == "csv" and source.status == "ok"
    fields = fields_of(platform, org_a, str(path))
    iin = fields["ИИН"]
    assert (iin.category, iin.entity_type, iin.special) == ("identifying", "KZ_IIN", None)
    assert iin.rule == "name: иин + values: 100% KZ_IIN" and iin.findings == 30
    assert [(c.entity_type, c.category, c.count) for c in iin.counts] == [("KZ_IIN", "identifying", 30)]
    assert fields["Телефон"].entity_type == "PHONE_NUMBER" and fields["Телефон"].counts[0].count == 30
    # The PD law's "data itself" columns are on the map though the scanner finds nothing in them.
    diagnosis, salary = fields["диагноз"], fields["salary"]
    assert (diagnosis.category, diagnosis.special, diagnosis.rule, diagnosis.findings) == \
        ("personal_data", "health", "name: диагноз", 0)
    assert (salary.category, salary.special, salary.rule) == ("personal_data", "financial", "name: salary")
    assert fields["ФИО"].category == "identifying" and fields["ФИО"].entity_type == "PERSON"
    # Free text with an e-mail in every tenth row: below the value-share rules, kept because of findings.
    comment = fields["comment"]
    assert (comment.category, comment.rule, comment.entity_type, comment.findings) == \
        ("identifying", "findings", "EMAIL_ADDRESS", 3)
    assert "product_name" not in fields and "id" not in fields
    with platform.db.reader(org_a) as s:
        row = s.get(DataSource, source.id)
        assert row is not None and row.identifying and row.sensitive and row.findings == 63
        assert row.rows_scanned == 31 and 0 < row.bytes_scanned <= path.stat().st_size and row.encoding == "utf-8"


def test_the_map_never_holds_a_scanned_value(platform: Platform, org_a: int, tmp_path: Path) -> None:
    path = clients_csv(tmp_path / "clients.csv")
    scan_into_map(platform, org_a, path)
    with platform.db.reader() as s:
        stored = repr([tuple(r) for model in (DataSource, DataMapField, DataMapCount)
                       for r in s.execute(select(model.__table__)).all()])
        entries = repr([(e.details, e.object_id) for e in audit.list_entries(s, limit=100)])
    for value in (IIN, IIN_2, "701 234 56 78", EMAIL, "J45.0", "350000", "Deposit Plus"):
        assert value not in stored and value not in entries


def test_a_column_whose_name_is_an_iin_is_stored_under_a_withheld_name(platform: Platform, org_a: int,
                                                                      tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pivot.csv", ["month", IIN, IIN_2], [["2026-01", "100", "200"], ["2026-02", "1", "2"]])
    scan_into_map(platform, org_a, path)
    fields = fields_of(platform, org_a, str(path))
    assert set(fields) == {"(name withheld 1)", "(name withheld 2)"}
    assert all(f.counts[0].entity_type == "KZ_IIN" and f.counts[0].count == 1 for f in fields.values())


def test_xlsx_json_jsonl_text_and_a_database_get_their_own_field_names(platform: Platform, org_a: int,
                                                                       tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Клиенты"
    sheet.append(["ЖСН", "email"])
    for _ in range(5):
        sheet.append([int(IIN), EMAIL])
    book.save(tmp_path / "book.xlsx")
    (tmp_path / "export.json").write_text(json.dumps(
        {"clients": [{"iin": IIN, "contacts": [{"phone": PHONE}]} for _ in range(4)],
         "by_iin": {IIN_2: {"balance": "10"}}}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps({"id": i, "text": f"ИИН {IIN}"}) for i in range(6)) + "\n",
                                           encoding="utf-8")
    (tmp_path / "app.log").write_text(f"login ok\nuser {EMAIL} from 10.1.2.3\nИИН {IIN}\n", encoding="utf-8")
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE clients (iin TEXT, full_name TEXT, note TEXT)")
        conn.executemany("INSERT INTO clients VALUES (?, ?, ?)", [(IIN, "A B", "-")] * 4)
    scan_into_map(platform, org_a, tmp_path / "book.xlsx", tmp_path / "export.json", tmp_path / "app.log",
                  f"sqlite:///{db}")
    scan_into_map(platform, org_a, tmp_path / "events.jsonl", text_field="text", id_field="id")
    book_fields = fields_of(platform, org_a, str(tmp_path / "book.xlsx"))
    assert set(book_fields) == {"Клиенты!ЖСН", "Клиенты!email"}
    assert book_fields["Клиенты!ЖСН"].entity_type == "KZ_IIN" and book_fields["Клиенты!ЖСН"].findings == 5
    json_fields = fields_of(platform, org_a, str(tmp_path / "export.json"))
    assert json_fields["$.clients[].iin"].findings == 4
    assert json_fields["$.clients[].contacts[].phone"].entity_type == "PHONE_NUMBER"
    assert json_fields["$.by_iin[*]#key"].counts[0].entity_type == "KZ_IIN"  # a map keyed by IINs
    assert json_fields["$.by_iin[*].balance"].special == "financial"
    log_fields = fields_of(platform, org_a, str(tmp_path / "app.log"))
    assert set(log_fields) == {"(text)"} and log_fields["(text)"].rule == "findings"
    assert {c.entity_type: c.count for c in log_fields["(text)"].counts} == {"EMAIL_ADDRESS": 1, "IP_ADDRESS": 1,
                                                                            "KZ_IIN": 1}
    db_fields = fields_of(platform, org_a, f"sqlite:///{db}")
    assert set(db_fields) == {"clients.iin", "clients.full_name"}
    jsonl_fields = fields_of(platform, org_a, str(tmp_path / "events.jsonl"))
    assert jsonl_fields["text"].rule == "values: 100% KZ_IIN" and jsonl_fields["text"].findings == 6


def test_a_rescan_replaces_fields_and_counts_but_keeps_first_seen_of_what_stayed(platform: Platform, org_a: int,
                                                                               tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["iin", "phone"], [[IIN, PHONE]] * 4)
    scan_into_map(platform, org_a, path, job_id=None)
    before = fields_of(platform, org_a, str(path))
    write_csv(path, ["iin", "email"], [[IIN, EMAIL]] * 2)
    scan_into_map(platform, org_a, path)
    after = fields_of(platform, org_a, str(path))
    assert set(after) == {"iin", "email"}
    assert after["iin"].id == before["iin"].id and after["iin"].first_seen_at == before["iin"].first_seen_at
    assert after["iin"].last_seen_at > before["iin"].last_seen_at
    assert after["iin"].counts[0].count == 2 and after["iin"].findings == 2
    with platform.db.reader(org_a) as s:
        assert s.scalar(select(DataMapField).where(DataMapField.field == "phone")) is None
        assert s.scalars(select(DataSource)).all()[0].findings == 4
        removed = [e.details["removed_fields"] for e in audit.list_entries(s, limit=10, action="discovery.datamap.record")]
    assert removed == [1, 0]


def test_an_unreadable_source_keeps_its_fields_and_says_why(platform: Platform, org_a: int, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["iin"], [[IIN]] * 3)
    scan_into_map(platform, org_a, path)
    path.unlink()
    source, = scan_into_map(platform, org_a, path)
    assert source is not None and source.status == "failed" and "no such file" in (source.last_error or "")
    assert set(fields_of(platform, org_a, str(path))) == {"iin"}


def test_a_partly_read_source_keeps_the_fields_it_did_not_reach(platform: Platform, org_a: int) -> None:
    first = SourceResult(source="/data/x.jsonl", kind="jsonl", chunks_scanned=2)
    first.places = [Place({"line": 1, "path": "$.iin"}, (Finding("KZ_IIN", 0, 12, 1.0, "iin"),)),
                    Place({"line": 1, "path": "$.phone"}, (Finding("PHONE_NUMBER", 0, 12, 1.0, "phone"),))]
    later = SourceResult(source="/data/x.jsonl", kind="jsonl", chunks_scanned=1, errors=["line 2: invalid JSON"])
    later.places = [Place({"line": 1, "path": "$.iin"}, (Finding("KZ_IIN", 0, 12, 1.0, "iin"),))]
    with platform.db.transaction(org_a) as s:
        record_result(s, first, actor="test")
    with platform.db.transaction(org_a) as s:
        source = record_result(s, later, actor="test")
        assert source is not None and source.status == "partial" and source.last_error == "line 2: invalid JSON"
        assert {f.field for f in source.fields} == {"$.iin", "$.phone"}


def test_a_skipped_binary_is_not_added_to_the_map(platform: Platform, org_a: int) -> None:
    with platform.db.transaction(org_a) as s:
        assert record_result(s, SourceResult(source="/x.bin", kind="skipped", skipped="binary file"), actor="t") is None
        assert s.scalar(select(DataSource)) is None


def test_the_collector_keeps_counters_not_places(tmp_path: Path) -> None:
    rows = 50_000
    path = write_csv(tmp_path / "big.csv", ["iin", "note"], [[IIN if i % 4 else "n/a", "x"] for i in range(rows)])
    collector = DataMapCollector()
    result, = scan_paths([str(path)], lambda: SCANNER, on_place=collector)  # type: ignore[arg-type]
    assert result.places == []
    tally = collector.take(result)
    iin = tally.fields[FieldKey("iin", "iin", True)]
    assert iin.values == rows and iin.typesets == Counter({"KZ_IIN": rows * 3 // 4, "-": rows // 4})
    verdicts = iin.verdicts(cap=1000)
    assert len(verdicts) == 1000 and verdicts.count("KZ_IIN") == 750  # same share, bounded sample


def test_pieces_of_one_long_cell_count_as_one_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qorgau.discovery import sources

    monkeypatch.setattr(sources, "MAX_CELL_CHARS", 200)
    monkeypatch.setattr(sources, "CUT_SEARCH_CHARS", 40)
    path = write_csv(tmp_path / "notes.csv", ["note"], [[" ".join(f"n{i} {IIN}" for i in range(40))]] * 3)
    collector = DataMapCollector()
    result, = scan_paths([str(path)], lambda: SCANNER, on_place=collector)  # type: ignore[arg-type]
    tally = collector.take(result).fields[FieldKey("note", "note", True)]
    assert tally.values == 3 and tally.counts["KZ_IIN"] == 120


def test_record_result_refuses_a_session_without_an_organization(platform: Platform) -> None:
    with platform.db.transaction() as s, pytest.raises(ValueError, match="organization"):
        record_result(s, SourceResult(source="/a", kind="text"), actor="t")


def test_a_classifier_can_be_swapped(platform: Platform, org_a: int, tmp_path: Path) -> None:
    from qorgau.discovery.columns import ColumnClass

    seen: list[tuple[str, int]] = []

    def everything_is_health(name, values, scan):  # type: ignore[no-untyped-def]
        seen.append((name, len(values)))
        return ColumnClass("personal_data", None, True, "health", "test rule", 0.5)

    path = write_csv(tmp_path / "t.csv", ["a", "b"], [["1", "2"]] * 3)
    collector = DataMapCollector()
    result, = scan_paths([str(path)], lambda: SCANNER, on_place=collector)  # type: ignore[arg-type]
    tally = collector.take(result)
    with platform.db.transaction(org_a) as s:
        source = record_result(s, result, actor="t", tally=tally, classify=everything_is_health)
        assert source is not None and {(f.field, f.rule, f.special) for f in source.fields} == \
            {("a", "test rule", "health"), ("b", "test rule", "health")}
    assert sorted(seen) == [("a", 3), ("b", 3)]


# --- queries, tenants, exports --------------------------------------------------------------------------


@pytest.fixture
def mapped(platform: Platform, org_a: int, org_b: int, tmp_path: Path) -> Path:
    clients_csv(tmp_path / "clients.csv")
    write_csv(tmp_path / "hr_100%_done.csv", ["employee_name", "зарплата"], [["A", "1"]] * 3)
    (tmp_path / "notes.txt").write_text(f"ИИН {IIN}\n", encoding="utf-8")
    scan_into_map(platform, org_a, tmp_path / "clients.csv", tmp_path / "hr_100%_done.csv", tmp_path / "notes.txt")
    scan_into_map(platform, org_b, tmp_path / "notes.txt")
    return tmp_path


def locators(page: datamap.SourcePage) -> list[str]:
    return [Path(s.source.locator).name for s in page.items]


def test_the_list_filters_by_kind_category_type_sensitivity_and_location(platform: Platform, org_a: int,
                                                                         mapped: Path) -> None:
    with platform.db.reader(org_a) as s:
        assert locators(datamap.list_sources(s)) == ["clients.csv", "hr_100%_done.csv", "notes.txt"]
        assert locators(datamap.list_sources(s, SourceFilter(kind="text"))) == ["notes.txt"]
        assert locators(datamap.list_sources(s, SourceFilter(sensitive=True))) == ["clients.csv", "hr_100%_done.csv"]
        assert locators(datamap.list_sources(s, SourceFilter(category="personal_data"))) == \
            ["clients.csv", "hr_100%_done.csv"]
        assert locators(datamap.list_sources(s, SourceFilter(entity_type="KZ_IIN"))) == ["clients.csv", "notes.txt"]
        assert locators(datamap.list_sources(s, SourceFilter(entity_type="PERSON"))) == \
            ["clients.csv", "hr_100%_done.csv"]  # classified from the column name, no finding needed
        assert locators(datamap.list_sources(s, SourceFilter(search="100%"))) == ["hr_100%_done.csv"]
        assert locators(datamap.list_sources(s, SourceFilter(search="_done"))) == ["hr_100%_done.csv"]
        assert locators(datamap.list_sources(s, SourceFilter(search="%"))) == ["hr_100%_done.csv"]
        page = datamap.list_sources(s, limit=2, offset=2)
        assert page.total == 3 and locators(page) == ["notes.txt"]
        clients = datamap.list_sources(s, SourceFilter(search="clients")).items[0]
        assert clients.findings_by_type == {"KZ_IIN": 30, "PHONE_NUMBER": 30, "EMAIL_ADDRESS": 3}
        assert clients.fields_by_category == {"identifying": 4, "personal_data": 2}
        assert clients.special == ["financial", "health"]


def test_totals_count_the_organizations_own_map_only(platform: Platform, org_a: int, org_b: int, mapped: Path) -> None:
    with platform.db.reader(org_a) as s:
        a = datamap.totals(s)
    with platform.db.reader(org_b) as s:
        b = datamap.totals(s)
    assert (a["sources"], a["sensitive_sources"], a["findings_by_type"]["KZ_IIN"]) == (3, 2, 31)
    assert a["fields_by_special"] == {"financial": 2, "health": 1}
    assert (b["sources"], b["findings"], b["fields"]) == (1, 1, 1)


def test_another_organization_never_sees_a_source(platform: Platform, org_a: int, org_b: int, mapped: Path) -> None:
    with platform.db.reader(org_a) as s:
        source_id = datamap.list_sources(s, SourceFilter(search="clients")).items[0].source.id
    with platform.db.reader(org_b) as s:
        with pytest.raises(NotFound):
            datamap.get_source(s, source_id)
        assert locators(datamap.list_sources(s)) == ["notes.txt"]
        exported = "".join(datamap.export_csv(s)) + "".join(datamap.export_json(s))
        assert "clients.csv" not in exported and "hr_100" not in exported
    with platform.db.transaction(org_b) as s, pytest.raises(NotFound):
        datamap.forget_source(s, source_id, actor="intruder")


def test_the_csv_export_parses_back_one_row_per_source_field_and_type(platform: Platform, org_a: int,
                                                                      mapped: Path) -> None:
    with platform.db.reader(org_a) as s:
        text = "".join(datamap.export_csv(s))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == datamap.CSV_COLUMNS
    clients = [r for r in rows if r["locator"].endswith("clients.csv")]
    by_field = Counter(r["field"] for r in clients)
    assert by_field == {"ИИН": 1, "ФИО": 1, "Телефон": 1, "диагноз": 1, "salary": 1, "comment": 1}
    iin = next(r for r in clients if r["field"] == "ИИН")
    assert (iin["entity_type"], iin["count"], iin["category"], iin["identifying"]) == ("KZ_IIN", "30", "identifying", "true")
    diagnosis = next(r for r in clients if r["field"] == "диагноз")
    assert (diagnosis["special"], diagnosis["entity_type"], diagnosis["count"]) == ("health", "", "0")
    assert sum(int(r["count"]) for r in rows) == 63 + 1  # clients.csv + notes.txt


def test_the_json_export_parses_back_nested(platform: Platform, org_a: int, mapped: Path) -> None:
    with platform.db.reader(org_a) as s:
        doc = json.loads("".join(datamap.export_json(s)))
    assert doc["format"] == "qorgau-datamap" and doc["version"] == 1
    assert [Path(src["locator"]).name for src in doc["sources"]] == ["clients.csv", "hr_100%_done.csv", "notes.txt"]
    clients = doc["sources"][0]
    iin = next(f for f in clients["fields"] if f["field"] == "ИИН")
    assert iin["counts"] == [{"entity_type": "KZ_IIN", "category": "identifying", "count": 30, "max_score": iin["counts"][0]["max_score"]}]
    with platform.db.reader(org_a) as s:
        filtered = json.loads("".join(datamap.export_json(s, SourceFilter(kind="text"))))
    assert [Path(src["locator"]).name for src in filtered["sources"]] == ["notes.txt"]


def test_exported_cells_cannot_become_spreadsheet_formulas(platform: Platform, org_a: int, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "evil.csv", ["=HYPERLINK(\"http://x\")", "iin"], [["1", IIN]] * 2)
    scan_into_map(platform, org_a, path)
    with platform.db.reader(org_a) as s:
        rows = list(csv.DictReader(io.StringIO("".join(datamap.export_csv(s)))))
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


def test_forgetting_a_source_removes_its_fields_and_is_audited(platform: Platform, org_a: int, mapped: Path) -> None:
    with platform.db.transaction(org_a) as s:
        source_id = datamap.list_sources(s, SourceFilter(search="clients")).items[0].source.id
        datamap.forget_source(s, source_id, actor="user:7")
    with platform.db.reader(org_a) as s:
        assert s.scalar(select(DataMapField).join(DataSource).where(DataSource.id == source_id)) is None
        assert s.scalars(select(DataMapCount)).all()  # the other sources' counts stay
        entry = audit.list_entries(s, limit=1)[0]
    assert (entry.action, entry.actor, entry.object_id, entry.details["fields"]) == \
        ("discovery.datamap.forget", "user:7", str(source_id), 6)
