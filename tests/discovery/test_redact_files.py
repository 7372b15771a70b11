"""Redacting whole files in their own format: XLSX, DOCX, Parquet, JSON, PDF (as text), and `qorgau redact`.

Every file here is generated in the test with the real libraries (openpyxl, python-docx, pyarrow, a
hand-written PDF). Each story checks three things: no original identifier is left anywhere in the output
(for XLSX/DOCX every part of the zip, docProps included), what is not personal data and the formatting
survive, and scanning the output again finds nothing.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qorgau.cli.main import app
from qorgau.core.errors import InvalidInput
from qorgau.discovery.engine import Scanner
from qorgau.discovery.redact import Redactor, hash_value
from qorgau.discovery.redact_files import (
    ResidualPersonalData,
    UnreadableFile,
    default_output,
    redact_file,
    verify_package,
)
from qorgau.discovery.scanning import scan_paths

IIN = "791028302728"
IIN_2 = "061211600012"
PHONE = "+7 701 234 56 78"
EMAIL = "aigerim@gov.kz"
NAME = "Жаксылыков Ерлан Болатұлы"
NAME_2 = "Иванова Анна Сергеевна"
# Fragments that must not survive anywhere in an output (phones are checked by their middle digits).
SECRETS = (IIN, IIN_2, "234 56 78", "2345678", EMAIL, "aigerim", "Жаксылыков", "Иванова")
KEY = b"k" * 32


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.default()


@pytest.fixture(scope="module")
def verifier() -> Scanner:
    return Scanner.identifiers_only()


def redact(src: Path, dst: Path, scanner: Scanner, verifier: Scanner | None = None, **options):
    to_text = options.pop("to_text", False)
    redactor = Redactor(**options)
    return redact_file(src, dst, redactor=redactor, scanner=scanner, verifier=verifier, to_text=to_text)


def zip_texts(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name).decode("utf-8", "replace") for name in z.namelist()}


def assert_nothing_left(texts: Iterable[str] | dict[str, str], secrets: Iterable[str] = SECRETS) -> None:
    items = texts.items() if isinstance(texts, dict) else enumerate(texts)
    for where, text in items:
        for secret in secrets:
            assert secret not in text, f"{secret!r} left in {where}"


def rescan_finds_nothing(path: Path) -> None:
    """``qorgau scan`` on the output finds nothing. Masked values are allowed: a masked e-mail
    (a***@gov.kz) is still a well-formed address, but it is not the address it replaced."""
    from qorgau.discovery.lists import AllowList

    def rescanner() -> Scanner:
        return Scanner(Scanner.default().recognizers, allow=AllowList([r"re:.*\*.*"]))

    results = list(scan_paths([str(path)], rescanner, min_score=0.5))
    assert results and not results[0].errors, results[0].errors if results else None
    assert results[0].total == 0, dict(results[0].counts)


def no_partial_files(directory: Path) -> None:
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".partial") or ".openpyxl" in p.name]


# --- XLSX ------------------------------------------------------------------------------------------------


def make_workbook(path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.chart.series import SeriesLabel
    from openpyxl.comments import Comment
    from openpyxl.packaging.custom import StringProperty
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = "Клиенты"
    ws.append(["ИИН", "ФИО", "Комментарий", "Сумма", "Формула"])
    ws.append([int(IIN), NAME, f"звонить {PHONE}", 15000, '="ИИН "&"' + IIN + '"'])
    ws.append([IIN_2, NAME_2, f"почта {EMAIL}", 700.5, "=D2+D3"])
    ws.append(["", "нет данных", "заказ 12345 отправлен", 1, f"={IIN_2}+0"])
    ws["B2"].font = Font(bold=True, color="FF0000")
    ws["B2"].fill = PatternFill("solid", fgColor="FFFF00")
    ws["D2"].number_format = "#,##0.00 ₸"
    ws["A2"].number_format = "0"
    ws.column_dimensions["B"].width = 42
    ws.merge_cells("F1:G1")
    ws["F1"] = "Итого по клиентам"
    ws["A2"].comment = Comment(f"проверен, ИИН {IIN}", "Жаксылыков Е.")
    ws["C3"].hyperlink = f"mailto:{EMAIL}"
    ws.oddHeader.center.text = f"Клиент {NAME}"
    ws.oddFooter.right.text = "Страница &P"
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=4, min_row=2, max_row=3))
    chart.series[0].tx = SeriesLabel(v=f"ИИН {IIN}")  # a chart's own copy of a value
    ws.add_chart(chart, "H2")
    per_client = wb.create_sheet(IIN)  # a sheet per client, named by IIN
    per_client.append(["Ссылка", f"='{IIN}'!A1"])
    per_client["A2"] = f"Телефон {PHONE}"
    summary = wb.create_sheet("Итоги")
    summary["A1"] = f"='{IIN}'!A2"
    wb.properties.creator = NAME
    wb.properties.lastModifiedBy = EMAIL
    wb.properties.title = f"Клиенты, ИИН {IIN}"
    wb.custom_doc_props.append(StringProperty(name="Owner", value=EMAIL))
    wb.save(path)


def test_a_workbook_is_redacted_in_every_part_and_keeps_its_formatting(tmp_path: Path, scanner, verifier) -> None:
    from openpyxl import load_workbook

    src, dst = tmp_path / "clients.xlsx", tmp_path / "clients.redacted.xlsx"
    make_workbook(src)
    before = zip_texts(src)
    assert any(IIN in text for name, text in before.items() if name.startswith("docProps/"))

    report = redact(src, dst, scanner, verifier)

    assert_nothing_left(zip_texts(dst))
    assert_nothing_left([report.to_dict().__repr__()])
    wb = load_workbook(dst)
    ws = wb["Клиенты"]
    assert ws["A1"].value == "ИИН" and ws["F1"].value == "Итого по клиентам"  # not personal data: unchanged
    assert ws["A2"].value == "79******2728"  # an IIN typed as a number is still an IIN
    assert ws["B2"].value == "********** ***** ********" and ws["B2"].font.b and ws["B2"].fill.fgColor.rgb.endswith("FFFF00")
    assert ws["C2"].value == "звонить +7 701 *** ** 78" and ws["C4"].value == "заказ 12345 отправлен"
    assert ws["D2"].value == 15000 and ws["D2"].number_format == "#,##0.00 ₸" and ws["D3"].value == 700.5
    assert ws.column_dimensions["B"].width == 42 and [str(r) for r in ws.merged_cells.ranges] == ["F1:G1"]
    # formulas: a literal is redacted inside the formula, a clean one is kept, a number literal becomes text
    assert ws["E2"].value == '="ИИН "&"79******2728"' and ws["E2"].data_type == "f"
    assert ws["E3"].value == "=D2+D3" and ws["E3"].data_type == "f"
    assert ws["E4"].data_type == "s" and ws["E4"].value == "=06******0012+0"
    assert ws["A2"].comment.text == "проверен, ИИН 79******2728" and ws["A2"].comment.author == "********** *."
    assert ws.oddHeader.center.text == "Клиент ********** ***** ********"
    assert ws.oddFooter.right.text == "Страница &P"
    assert ws["C3"].hyperlink.target == "mailto:a***@gov.kz"
    # the sheet named by IIN is renamed and the references to it follow
    # (a sheet title may not hold '*': the mask's stars become '#')
    assert wb.sheetnames == ["Клиенты", "79######2728", "Итоги"]
    assert wb["Итоги"]["A1"].value == "='79######2728'!A2" and wb["79######2728"]["B1"].value == "='79######2728'!A1"
    assert wb.properties.creator == "********** ***** ********" and wb.properties.lastModifiedBy == "a***@gov.kz"
    assert len(ws._charts) == 1  # the chart is kept; its cached label was redacted (no IIN in any part)
    assert report.places["cells"] >= 5 and report.places["formulas"] == 2 and report.places["sheet_titles"] == 1
    assert report.places["comments"] == 2 and report.places["properties"] >= 3 and report.places["other_parts"] >= 1
    assert any("renamed" in note for note in report.notes)
    rescan_finds_nothing(dst)
    no_partial_files(tmp_path)


def test_workbook_columns_are_redacted_whole_by_header_and_placeholders_are_stable_across_sheets(
        tmp_path: Path, scanner, verifier) -> None:
    from openpyxl import Workbook, load_workbook

    src, dst = tmp_path / "in.xlsx", tmp_path / "out.xlsx"
    wb = Workbook()
    first = wb.active
    first.append(["ИИН", "ФИО", "Примечание"])
    first.append([IIN, NAME, f"ИИН {IIN_2}"])
    first.append([IIN_2, "Ким Ольга", "нет"])
    second = wb.create_sheet("Платежи")
    second.append(["Сумма", "ИИН"])
    second.append([100, IIN])
    wb.save(src)

    report = redact(src, dst, scanner, verifier, operator="replace", columns={"ИИН": "hash", "ФИО": "replace"},
                    hash_key=KEY)

    out = load_workbook(dst)
    a, b = out.worksheets
    assert [c.value for c in a[1]] == ["ИИН", "ФИО", "Примечание"]  # the header row is kept
    assert a["A2"].value == hash_value("KZ_IIN", IIN, KEY) == b["B2"].value  # joinable across sheets
    assert a["A3"].value == hash_value("KZ_IIN", IIN_2, KEY)
    assert a["B2"].value == "[PERSON_1]" and a["B3"].value == "[PERSON_2]"
    assert a["C2"].value == "ИИН [KZ_IIN_1]" and a["C3"].value == "нет" and b["A2"].value == 100
    # the author openpyxl wrote ("openpyxl") is an author field: redacted as a person, like any author
    assert report.operators == {"hash": 3, "replace": 4} and report.places["properties"] == 1
    assert_nothing_left(zip_texts(dst), (IIN, IIN_2, "Жаксылыков", "Ким Ольга"))


def test_a_workbook_column_that_does_not_exist_is_named_and_nothing_is_written(tmp_path: Path, scanner) -> None:
    from openpyxl import Workbook

    src, dst = tmp_path / "in.xlsx", tmp_path / "out.xlsx"
    wb = Workbook()
    wb.active.append(["ИИН"])
    wb.save(src)
    with pytest.raises(InvalidInput) as exc:
        redact(src, dst, scanner, columns={"Зарплата": "drop"})
    assert exc.value.field == "columns" and "'Зарплата'" in exc.value.message and "in.xlsx" in exc.value.message
    assert not dst.exists()
    no_partial_files(tmp_path)


@pytest.mark.parametrize("suffix, content", [
    (".xlsx", b"PK\x03\x04 this is not a workbook"),
    (".docx", b"plain text pretending to be a document"),
    (".parquet", b"PAR1 broken PAR1"),
    (".json", b'{"iin": "791028302728",'),
    (".pdf", b"%PDF-1.4 truncated"),
])
def test_a_corrupt_file_is_refused_naming_it_and_leaves_nothing(tmp_path: Path, scanner, suffix: str,
                                                                 content: bytes) -> None:
    src, dst = tmp_path / f"broken{suffix}", tmp_path / f"out{suffix}"
    src.write_bytes(content)
    with pytest.raises(UnreadableFile) as exc:
        redact(src, dst, scanner, to_text=suffix == ".pdf")
    assert exc.value.message.startswith(f"broken{suffix}: ") and IIN not in exc.value.message
    assert not dst.exists()
    no_partial_files(tmp_path)


# --- DOCX ------------------------------------------------------------------------------------------------

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def make_document(path: Path) -> None:
    import docx
    from docx.oxml import parse_xml
    from docx.shared import Pt

    d = docx.Document()
    d.add_heading("Договор № 17", level=1)
    p = d.add_paragraph("Клиент ")
    surname = p.add_run("Жаксылыков")
    surname.bold = True
    surname.font.size = Pt(14)
    p.add_run(" Ерлан Болатұлы, ИИН 7910")  # the name and the IIN are split across runs
    p.add_run("28302728, тел. ")
    p.add_run(PHONE).italic = True
    keep = d.add_paragraph()
    keep.add_run("Условия оплаты: 30 дней.").italic = True
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Почта", EMAIL
    table.cell(1, 0).text, table.cell(1, 1).text = "Представитель", NAME_2
    tracked = d.add_paragraph("Исправлено: ")
    tracked._p.append(parse_xml(f'<w:del {W} w:id="91" w:author="Иванова А." w:date="2024-01-01T00:00:00Z">'
                                f'<w:r><w:delText>ИИН {IIN_2}</w:delText></w:r></w:del>'))
    tracked._p.append(parse_xml(f'<w:ins {W} w:id="92" w:author="Иванова А." w:date="2024-01-01T00:00:00Z">'
                                '<w:r><w:t>без изменений</w:t></w:r></w:ins>'))
    field = d.add_paragraph()
    field._p.append(parse_xml(f'<w:r {W}><w:fldChar w:fldCharType="begin"/></w:r>'))
    field._p.append(parse_xml(f'<w:r {W}><w:instrText xml:space="preserve"> HYPERLINK "mailto:{EMAIL}" </w:instrText></w:r>'))
    field._p.append(parse_xml(f'<w:r {W}><w:fldChar w:fldCharType="end"/></w:r>'))
    d.sections[0].header.paragraphs[0].text = f"Дело клиента, ИИН {IIN}"
    d.sections[0].footer.paragraphs[0].text = "Конфиденциально"
    d.add_comment(d.paragraphs[1].runs, text=f"Проверить ИИН {IIN_2}", author="Иванова Анна", initials="ИА")
    d.part.relate_to(f"mailto:{EMAIL}", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink",
                     is_external=True)
    d.core_properties.author = NAME
    d.core_properties.last_modified_by = "aigerim"
    d.core_properties.title = f"Договор, ИИН {IIN}"
    d.save(path)


def test_a_document_is_redacted_everywhere_and_a_value_split_across_runs_keeps_the_first_runs_formatting(
        tmp_path: Path, scanner, verifier) -> None:
    import docx

    src, dst = tmp_path / "contract.docx", tmp_path / "contract.redacted.docx"
    make_document(src)
    assert "docProps/thumbnail.jpeg" in zip_texts(src)

    report = redact(src, dst, scanner, verifier, operator="replace")

    parts = zip_texts(dst)
    assert_nothing_left(parts)
    assert "docProps/thumbnail.jpeg" not in parts  # a picture of the first page is not kept
    d = docx.Document(str(dst))
    runs = [r for r in d.paragraphs[1].runs if r.text]  # the comment's reference is an empty run
    assert [r.text for r in runs] == ["Клиент ", "[PERSON_1]", ", ИИН [KZ_IIN_1]", ", тел. ", "[PHONE_NUMBER_1]"]
    assert runs[1].bold and runs[1].font.size.pt == 14 and runs[4].italic
    assert d.paragraphs[0].text == "Договор № 17" and d.paragraphs[0].style.name == "Heading 1"
    assert d.paragraphs[2].text == "Условия оплаты: 30 дней." and d.paragraphs[2].runs[0].italic
    assert d.tables[0].cell(0, 1).text == "[EMAIL_ADDRESS_1]" and d.tables[0].cell(0, 0).text == "Почта"
    assert d.sections[0].header.paragraphs[0].text == "Дело клиента, ИИН [KZ_IIN_1]"
    assert d.sections[0].footer.paragraphs[0].text == "Конфиденциально"
    assert "ИИН [KZ_IIN_2]" in parts["word/document.xml"]  # the tracked deletion, redacted, still tracked
    assert "<w:delText>" in parts["word/document.xml"] and 'w:author="[PERSON_' in parts["word/document.xml"]
    assert 'HYPERLINK "mailto:[EMAIL_ADDRESS_1]"' in parts["word/document.xml"]
    assert "Проверить ИИН [KZ_IIN_2]" in parts["word/comments.xml"]
    assert 'Target="mailto:[EMAIL_ADDRESS_1]"' in parts["word/_rels/document.xml.rels"]
    assert d.core_properties.author == "[PERSON_1]" and d.core_properties.title == "Договор, ИИН [KZ_IIN_1]"
    assert d.core_properties.last_modified_by.startswith("[PERSON_")
    for place in ("body", "headers_footers", "comments", "authors", "properties", "links"):
        assert report.places[place] >= 1, place
    rescan_finds_nothing(dst)


def test_a_part_the_redactor_does_not_rewrite_stops_the_output_from_being_written(
        tmp_path: Path, scanner, verifier) -> None:
    """Custom XML with an identifier in an attribute: not rewritten, so verification refuses the output."""
    import docx
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part

    src, dst = tmp_path / "in.docx", tmp_path / "out.docx"
    d = docx.Document()
    d.add_paragraph("Нет персональных данных.")
    item = Part(PackURI("/customXml/item9.xml"), "application/xml",
                f'<?xml version="1.0"?><client iin="{IIN}" note="x"/>'.encode(), d.part.package)
    d.part.relate_to(item, "http://schemas.openxmlformats.org/officeDocument/2006/relationships/customXml")
    d.save(src)

    with pytest.raises(ResidualPersonalData) as exc:
        redact(src, dst, scanner, verifier)
    assert "customXml/item9.xml (KZ_IIN 1)" in exc.value.message and IIN not in exc.value.message
    assert not dst.exists()
    no_partial_files(tmp_path)


def test_verification_reads_paragraphs_whole_and_ignores_the_operators_own_tokens(tmp_path: Path, verifier) -> None:
    path = tmp_path / "p.docx"
    body = (f'<w:document {W}><w:body><w:p><w:r><w:t>ИИН 7910</w:t></w:r><w:r><w:t>28302728</w:t></w:r></w:p>'
            '<w:p><w:r><w:t>KZ_IIN:hmac:7910283027280000 ENC[AAA791028302728AAA]</w:t></w:r></w:p></w:body></w:document>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", body)
    with pytest.raises(ResidualPersonalData) as exc:
        verify_package(path, verifier, "p.docx")
    assert "word/document.xml (KZ_IIN 1)" in exc.value.message  # split across runs, still found; tokens not


# --- Parquet -----------------------------------------------------------------------------------------------


def test_parquet_is_streamed_by_batches_keeps_its_schema_and_redacts_string_columns(
        tmp_path: Path, scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from qorgau.discovery import redact_files

    monkeypatch.setattr(redact_files, "PARQUET_BATCH_ROWS", 4)
    n = 10
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "client_iin": pa.array([int(IIN)] * n, pa.int64()),
        "note": [f"ИИН {IIN}, тел. {PHONE}" if i % 2 else "нет" for i in range(n)],
        "city": pa.array(["Алматы", "Астана"] * (n // 2)).dictionary_encode(),
        "emails": [[EMAIL, "нет"] if i == 3 else [] for i in range(n)],
        "amount": pa.array([1000.5 * i for i in range(n)]),
        "salary": pa.array(range(n), pa.int32()),
    })
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, src, compression="zstd", row_group_size=5)

    report = redact(src, dst, scanner, operator="replace", columns={"id": "hash", "salary": "drop"}, hash_key=KEY)

    out = pq.ParquetFile(dst)
    groups = [out.metadata.row_group(i).num_rows for i in range(out.metadata.num_row_groups)]
    assert sum(groups) == n and len(groups) >= 3 and max(groups) <= 4  # batches of ≤ 4 rows, one row group each
    assert out.metadata.row_group(0).column(2).compression == "ZSTD"
    schema = out.schema_arrow
    assert schema.field("note").type == pa.string() and schema.field("city").type == table.schema.field("city").type
    assert schema.field("id").type == pa.string()  # a named non-string column becomes text …
    assert schema.field("salary").type == pa.int32()  # … except under drop, which writes nulls
    assert schema.field("amount").type == pa.float64() and schema.field("client_iin").type == pa.int64()
    rows = out.read().to_pylist()
    assert rows[1]["note"] == "ИИН [KZ_IIN_1], тел. [PHONE_NUMBER_1]" and rows[0]["note"] == "нет"
    assert rows[3]["emails"] == ["[EMAIL_ADDRESS_1]", "нет"] and rows[2]["city"] == "Алматы"
    assert rows[5]["amount"] == 5002.5 and all(r["salary"] is None for r in rows)
    assert rows[0]["id"].startswith("VALUE:hmac:")
    # the IIN column stored as int64 is not rewritten (its schema is kept) but it is reported
    assert report.unredacted == {"column 'client_iin'": {"KZ_IIN": n}} and not report.complete
    assert any("client_iin" in note for note in report.notes)
    assert not any(IIN in str(v) for r in rows for k, v in r.items() if k != "client_iin")


def test_a_parquet_column_that_does_not_exist_is_named(tmp_path: Path, scanner) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"a": ["x"]}), src)
    with pytest.raises(InvalidInput) as exc:
        redact(src, tmp_path / "out.parquet", scanner, columns={"iin": "drop"})
    assert exc.value.field == "columns" and "'iin'" in exc.value.message and "in.parquet" in exc.value.message


# --- JSON --------------------------------------------------------------------------------------------------------


def test_a_json_document_keeps_its_structure_and_key_order_and_every_string_is_scanned(tmp_path: Path, scanner) -> None:
    document = {
        "source": "CRM export",
        "clients": [
            {"iin": IIN, "name": NAME, "phone": 87012345678, "score": 0.93, "tags": ["vip", EMAIL]},
            {"iin": IIN_2, "name": NAME_2, "phone": None, "score": 1.5, "active": True},
        ],
        "by_iin": {IIN: {"visits": 3}},
        "count": 2,
    }
    src, dst = tmp_path / "export.json", tmp_path / "out.json"
    src.write_text(json.dumps(document, ensure_ascii=False, indent=4), encoding="utf-8")

    report = redact(src, dst, scanner, operator="replace", columns={"name": "hash"}, hash_key=KEY)

    text = dst.read_text(encoding="utf-8")
    out = json.loads(text)
    assert_nothing_left([text])
    assert list(out) == ["source", "clients", "by_iin", "count"] and list(out["clients"][0]) == list(document["clients"][0])
    assert out["source"] == "CRM export" and out["count"] == 2
    first, second = out["clients"]
    assert first["iin"] == "[KZ_IIN_1]" and first["phone"] == "[PHONE_NUMBER_1]" and first["score"] == 0.93
    assert first["name"] == hash_value("PERSON", NAME, KEY) and first["tags"] == ["vip", "[EMAIL_ADDRESS_1]"]
    assert second["phone"] is None and second["active"] is True and second["iin"] == "[KZ_IIN_2]"
    assert out["by_iin"] == {"[KZ_IIN_1]": {"visits": 3}}  # a key that is an IIN is redacted too
    assert "\n" in text  # pretty-printed in, pretty-printed out
    assert report.places["keys"] == 1
    rescan_finds_nothing(dst)


def test_invalid_json_is_refused_with_its_line_and_a_hint_for_json_lines(tmp_path: Path, scanner) -> None:
    src = tmp_path / "lines.json"
    src.write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    with pytest.raises(UnreadableFile) as exc:
        redact(src, tmp_path / "out.json", scanner)
    assert "line 2 column 1" in exc.value.message and ".jsonl" in exc.value.message


# --- PDF ----------------------------------------------------------------------------------------------------------


def make_pdf(path: Path, pages: list[list[str]]) -> None:
    """A minimal PDF (Helvetica, one text line per string), written by hand: no PDF library needed."""

    def escape(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
               3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"}
    kids = []
    for i, lines in enumerate(pages):
        page, content = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page} 0 R")
        body = ("BT /F1 11 Tf 14 TL 60 740 Td " + " ".join(f"({escape(s)}) Tj T*" for s in lines) + " ET").encode("latin-1")
        objects[page] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
                         f" /Contents {content} 0 R >>").encode()
        objects[content] = b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    path.write_bytes(bytes(out))


PDF_PAGES = [[f"Client John Smith, IIN {IIN_2},", f"phone {PHONE}, e-mail {EMAIL}"], [], ["Order 12345 shipped"]]


def test_a_pdf_is_refused_in_place_and_the_message_names_the_alternative(tmp_path: Path, scanner) -> None:
    src = tmp_path / "scan.pdf"
    make_pdf(src, PDF_PAGES)
    with pytest.raises(InvalidInput) as exc:
        redact(src, tmp_path / "out.pdf", scanner)
    assert exc.value.field == "to_text" and "--to-text" in exc.value.message and "box" in exc.value.message
    assert not (tmp_path / "out.pdf").exists()


def test_a_pdfs_text_is_written_redacted_page_by_page(tmp_path: Path, scanner) -> None:
    src = tmp_path / "scan.pdf"
    make_pdf(src, PDF_PAGES)
    dst = default_output(src, "pdf", to_text=True)
    assert dst.name == "scan.redacted.txt"

    report = redact(src, dst, scanner, operator="replace", to_text=True)

    text = dst.read_text(encoding="utf-8")
    assert_nothing_left([text], (IIN_2, "234 56 78", EMAIL, "John Smith"))
    assert "=== page 1 ===" in text and "=== page 2 ===" in text and "=== page 3 ===" in text
    page1 = text.split("=== page 1 ===")[1].split("=== page 2 ===")[0]
    assert "IIN [KZ_IIN_1]" in page1 and "[PHONE_NUMBER_1]" in page1 and "[EMAIL_ADDRESS_1]" in page1
    assert "not OCR'd" in text.split("=== page 2 ===")[1] and "Order 12345 shipped" in text
    assert report.kind == "pdf-text" and report.places["pages"] == 4
    assert any("1 page(s) without extractable text" in note for note in report.notes)


# --- writing: never in place, never half ------------------------------------------------------------------------


def test_the_output_is_never_the_input(tmp_path: Path, scanner) -> None:
    src = tmp_path / "a.json"
    src.write_text(json.dumps({"iin": IIN}), encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        redact(src, tmp_path / "." / "a.json", scanner)
    assert exc.value.field == "output"
    assert IIN in src.read_text(encoding="utf-8")


def test_a_failure_half_way_leaves_neither_an_output_nor_a_temporary_file(tmp_path: Path, scanner) -> None:
    src, dst = tmp_path / "a.jsonl", tmp_path / "out.jsonl"
    # the bad bytes come after the first 64 KiB, which are read to detect the encoding
    src.write_bytes(f'{{"t": "ИИН {IIN}"}}\n'.encode() * 5000 + b'{"t": "\xff\xfe broken"}\n')
    dst.write_text("the previous output stays as it was\n", encoding="utf-8")
    with pytest.raises(UnreadableFile):
        redact(src, dst, scanner)
    assert dst.read_text(encoding="utf-8") == "the previous output stays as it was\n"
    no_partial_files(tmp_path)


# --- qorgau redact ------------------------------------------------------------------------------------------------

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["redact", *args], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_redacts_a_workbook_beside_it_and_reports_counts_never_values(tmp_path: Path) -> None:
    src = tmp_path / "clients.xlsx"
    make_workbook(src)
    code, out, err = run(str(src), "--operator", "replace", "--report", "json")
    assert code == 0, err
    report = json.loads(err)
    written = tmp_path / "clients.redacted.xlsx"
    assert report["output"] == str(written) and written.exists() and out == ""
    assert report["counts"]["KZ_IIN"] >= 5 and set(report["operators"]) == {"replace"}
    assert_nothing_left([err])
    assert_nothing_left(zip_texts(written))
    assert os.stat(written).st_mode & 0o077 == 0  # written like a temporary file: owner only


def test_cli_text_report_names_places_and_notes(tmp_path: Path) -> None:
    src = tmp_path / "contract.docx"
    make_document(src)
    code, _, err = run(str(src), "--output", str(tmp_path / "x.docx"))
    assert code == 0, err
    assert "redacted: " in err and "→ " in err and "where: " in err and "thumbnail" in err
    assert_nothing_left([err])


@pytest.mark.parametrize("name, args, code, expected", [
    ("scan.pdf", [], 2, "--to-text"),
    ("in.xlsx", ["--columns", "Зарплата=drop"], 2, "Зарплата"),
    ("in.txt", ["--to-text"], 2, "--to-text applies to .pdf"),
    ("in.txt", ["--columns", "a=mask"], 2, "--columns applies to"),
    ("bad.docx", [], 4, "not a readable DOCX"),
    ("in.xlsx", ["--report", "yaml"], 2, "--report"),
])
def test_cli_exit_codes_and_messages(tmp_path: Path, name: str, args: list[str], code: int, expected: str) -> None:
    from openpyxl import Workbook

    src = tmp_path / name
    if name.endswith(".pdf"):
        make_pdf(src, PDF_PAGES)
    elif name == "in.xlsx":
        wb = Workbook()
        wb.active.append(["ИИН"])
        wb.save(src)
    elif name == "bad.docx":
        src.write_bytes(b"not a zip")
    else:
        src.write_text(f"ИИН {IIN}\n", encoding="utf-8")
    got, out, err = run(str(src), *args)
    assert got == code and expected in err, (got, err)
    assert IIN not in err + out
    assert [p.name for p in tmp_path.iterdir()] == [name]  # nothing written beside it


def test_cli_parquet_with_identifiers_in_an_integer_column_exits_4(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "p.parquet"
    pq.write_table(pa.table({"iin": pa.array([int(IIN)], pa.int64()), "note": [f"ИИН {IIN}"]}), src)
    code, _, err = run(str(src), "--identifiers-only")
    assert code == 4 and "column 'iin'" in err
    code, _, err = run(str(src), "--identifiers-only", "--columns", "iin=mask", "--output", str(tmp_path / "q.parquet"))
    assert code == 0, err
    assert pq.read_table(tmp_path / "q.parquet").to_pylist() == [{"iin": "79******2728", "note": "ИИН 79******2728"}]


def test_cli_pdf_to_text_and_json_to_stdout(tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    make_pdf(pdf, PDF_PAGES)
    code, _, err = run(str(pdf), "--to-text", "--identifiers-only")
    assert code == 0, err
    assert "IIN 06******0012" in (tmp_path / "scan.redacted.txt").read_text(encoding="utf-8")
    doc = tmp_path / "d.json"
    doc.write_text(json.dumps({"a": [f"ИИН {IIN}"]}), encoding="utf-8")
    code, out, _ = run(str(doc), "--identifiers-only", "--operator", "drop")
    assert code == 0 and json.loads(out) == {"a": ["ИИН "]}


def test_cli_allow_and_deny_lists_apply_to_redaction(tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("+7 727 000 00 00\n", encoding="utf-8")
    deny = tmp_path / "deny.txt"
    deny.write_text("Проект Сункар\n", encoding="utf-8")
    src = tmp_path / "memo.txt"
    src.write_text("Офис +7 727 000 00 00, клиент +7 701 234 56 78, Проект Сункар\n", encoding="utf-8")
    code, out, err = run(str(src), "--identifiers-only", "--operator", "replace", "--allow", str(allow),
                         "--deny", str(deny))
    assert code == 0, err
    assert out == "Офис +7 727 000 00 00, клиент [PHONE_NUMBER_1], [DENY_LIST_1]\n"


def test_cli_stdin_to_a_file(tmp_path: Path) -> None:
    dst = tmp_path / "out.txt"
    code, out, err = run("-", "--identifiers-only", "--output", str(dst), input=f"ИИН {IIN}\n")
    assert code == 0 and out == "" and dst.read_text(encoding="utf-8") == "ИИН 79******2728\n"


def test_cli_encrypts_a_workbook_with_the_organizations_key_and_only_that_key_opens_it(
        platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from conftest import make_bin
    from openpyxl import Workbook, load_workbook

    from qorgau.core import audit, auth
    from qorgau.core.errors import IntegrityFailure
    from qorgau.core.settings import get_settings
    from qorgau.discovery.redact import organization_decryptor, unredact_text

    monkeypatch.setenv("QORGAU_DATA_DIR", str(platform.settings.data_dir))
    monkeypatch.setenv("QORGAU_DATABASE_URL", platform.db.url)
    get_settings.cache_clear()
    with platform.db.transaction() as s:
        org = auth.create_organization(s, name="Enc Files", bin=make_bin(611), actor="test")
        other = auth.create_organization(s, name="Other Files", bin=make_bin(612), actor="test")
    src, dst = tmp_path / "in.xlsx", tmp_path / "out.xlsx"
    wb = Workbook()
    wb.active.append(["ИИН", "Комментарий"])
    wb.active.append([IIN, f"звонить {PHONE}"])
    wb.save(src)
    try:
        code, _, err = run(str(src), "--operator", "encrypt", "--org", org.bin, "--identifiers-only",
                           "--columns", "ИИН=hash", "--output", str(dst))
    finally:
        get_settings.cache_clear()
    assert code == 0, err
    ws = load_workbook(dst).active
    assert ws["A2"].value.startswith("KZ_IIN:hmac:") and ws["B2"].value.startswith("звонить ENC[")
    with platform.db.reader(org.id) as s:
        assert unredact_text(ws["B2"].value, organization_decryptor(s, platform.keyring, org.id)) == f"звонить {PHONE}"
        entries = [e for e in audit.list_entries(s, limit=10) if e.action == "discovery.redact"]
    assert len(entries) == 1 and entries[0].details["kind"] == "xlsx"
    # PERSON: the workbook's creator (an author field, redacted as a person)
    assert entries[0].details["counts"] == {"KZ_IIN": 1, "PHONE_NUMBER": 1, "PERSON": 1}
    assert entries[0].details["whole_columns"] == 1
    with platform.db.reader(other.id) as s, pytest.raises(IntegrityFailure):
        unredact_text(ws["B2"].value, organization_decryptor(s, platform.keyring, other.id))


def test_a_package_that_unpacks_to_too_much_is_refused_before_it_is_opened(tmp_path: Path, scanner) -> None:
    src = tmp_path / "bomb.docx"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<a>" + b" " * 3_000_000 + b"</a>")  # ~3 MB from a few KB
    assert src.stat().st_size < 100_000
    with pytest.raises(UnreadableFile) as exc:
        redact_file(src, tmp_path / "out.docx", redactor=Redactor(), scanner=scanner, max_unpacked_bytes=2**20)
    assert "bomb.docx: unpacks to 2 MiB, over the limit of 1 MiB" == exc.value.message
    no_partial_files(tmp_path)


def test_a_workbooks_images_are_kept_and_counted_as_not_inspected(tmp_path: Path, scanner, verifier) -> None:
    import io

    from openpyxl import Workbook
    from openpyxl.drawing.image import Image
    from PIL import Image as PILImage

    png = io.BytesIO()
    PILImage.new("RGB", (4, 4), "red").save(png, format="PNG")
    src, dst = tmp_path / "logo.xlsx", tmp_path / "out.xlsx"
    wb = Workbook()
    wb.active["A1"] = f"ИИН {IIN}"
    wb.active.add_image(Image(io.BytesIO(png.getvalue())), "C3")
    wb.save(src)

    report = redact(src, dst, scanner, verifier)

    with zipfile.ZipFile(dst) as z:
        assert [n for n in z.namelist() if n.startswith("xl/media/")] == ["xl/media/image1.png"]
    assert any("1 image(s) kept as they are" in note for note in report.notes)
    assert not any("could not be kept" in note for note in report.notes)
