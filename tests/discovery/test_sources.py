"""Reading inputs: every file type, generated here, comes back as chunks that say where their text is."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from qorgau.discovery import sources
from qorgau.discovery.sources import Chunk, Skipped, Source, SourceError, detect_encoding, open_sources

IIN = "791028302728"  # valid test vector (LEGAL.md)
IIN_2000S = "061211600012"


def read_all(spec: str | Path, **options: object) -> tuple[Source, list[Chunk]]:
    items = list(open_sources([str(spec)], **options))  # type: ignore[arg-type]
    assert len(items) == 1 and isinstance(items[0], Source), items
    return items[0], list(items[0])


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with a text object, built by hand (pypdf cannot write text)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


# --- text and encodings -----------------------------------------------------------------------------


def test_a_utf8_log_comes_back_as_a_block_of_lines_starting_at_line_one(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(f"started\nclient ИИН {IIN}\n", encoding="utf-8")
    source, chunks = read_all(path)
    assert source.kind == "text" and source.encoding == "utf-8"
    assert [c.location for c in chunks] == [{"line": 1, "column": 0}]
    assert chunks[0].text == f"started\nclient ИИН {IIN}\n"


def test_a_byte_order_mark_is_detected_and_not_part_of_the_text(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffИИН 1".encode("utf-8"))
    source, chunks = read_all(path)
    assert source.encoding == "utf-8-sig" and chunks[0].text == "ИИН 1"


def test_a_utf16_text_file_from_windows_notepad_is_read(tmp_path: Path) -> None:
    path = tmp_path / "notepad.txt"
    path.write_bytes(f"Жеке куәлік, ЖСН {IIN}\r\n".encode("utf-16"))
    source, chunks = read_all(path)
    assert source.encoding == "utf-16"
    assert chunks[0].text == f"Жеке куәлік, ЖСН {IIN}\n"


def test_utf16_without_bom_is_recognised_by_its_zero_bytes() -> None:
    assert detect_encoding("Телефон +7 701 234 56 78".encode("utf-16-le")) == "utf-16-le"
    assert detect_encoding("Телефон +7 701 234 56 78".encode("utf-16-be")) == "utf-16-be"


def test_cp1251_russian_text_is_detected_as_cp1251() -> None:
    assert detect_encoding("Фамилия Иванов, паспорт, дата рождения".encode("cp1251")) == "cp1251"


def test_kazakh_letters_written_in_kz1048_are_not_mistaken_for_cp1251() -> None:
    assert detect_encoding("Қазақстан Республикасы, әкесінің аты, ұлы".encode("kz1048")) == "kz1048"


def test_a_binary_sample_has_no_encoding() -> None:
    assert detect_encoding(bytes(range(256)) * 4) is None
    assert detect_encoding(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") is None


def test_a_huge_line_is_cut_into_bounded_pieces_with_exact_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_PIECE_CHARS", 1000)
    monkeypatch.setattr(sources, "CUT_SEARCH_CHARS", 100)
    line = " ".join(f"word{i} {IIN}" for i in range(600))  # ≈ 11,000 characters, one line
    path = tmp_path / "huge.log"
    path.write_text("before\n" + line + "\nafter\n", encoding="utf-8")
    _, chunks = read_all(path)
    assert all(len(c.text) <= 1000 for c in chunks)
    pieces = [c for c in chunks if c.location["line"] == 2 or (c.location["line"] == 1 and "word0" in c.text)]
    rebuilt = ""
    for c in chunks:
        if c.location["column"]:
            assert c.location == {"line": 2, "column": len(rebuilt)}, "a piece starts where the previous ended"
        text = c.text.split("\n", 1)[1] if c.location["line"] == 1 else c.text
        rebuilt += text.split("\n", 1)[0]
    assert rebuilt == line and len(pieces) > 5
    # Cut at whitespace: no IIN is split across two pieces.
    assert sum(c.text.count(IIN) for c in chunks) == 600


def test_a_big_file_is_read_in_bounded_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "BLOCK_CHARS", 4096)
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i} ИИН {IIN}\n" for i in range(5000)), encoding="utf-8")
    _, chunks = read_all(path)
    assert len(chunks) > 20 and all(len(c.text) <= 4096 for c in chunks)
    lines = [c.location["line"] for c in chunks]
    assert lines[0] == 1 and lines == sorted(lines)
    assert sum(c.text.count("\n") for c in chunks) == 5000


def test_bytes_that_are_not_the_detected_encoding_are_an_error_naming_the_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "BLOCK_CHARS", 4096)
    path = tmp_path / "mixed.txt"
    good = "ok line\n" * 10000  # 80 KB of UTF-8: detection sees only valid UTF-8
    path.write_bytes(good.encode() + b"\xff\xfe\xfa garbage\n")
    source, = list(open_sources([str(path)]))
    assert isinstance(source, Source)
    read: list[Chunk] = []
    with pytest.raises(SourceError) as caught:
        for chunk in source:
            read.append(chunk)
    assert "not valid utf-8" in caught.value.reason and "line" in caught.value.reason
    assert "garbage" not in str(caught.value)
    assert sum(c.text.count("\n") for c in read) > 0, "what was read before the bad bytes is kept"


def test_stdin_is_read_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(f"тел 87012345678\nИИН {IIN}\n".encode("cp1251")), encoding="cp1251")
    monkeypatch.setattr(sys, "stdin", fake)
    source, chunks = read_all("-")
    assert source.name == "<stdin>" and source.encoding == "cp1251"
    assert chunks[0].text.endswith(f"ИИН {IIN}\n")


# --- tables -----------------------------------------------------------------------------------------


def test_a_cp1251_csv_with_semicolons_gives_one_chunk_per_cell_named_by_its_header(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes(f"ФИО;ИИН;Телефон\r\nИванов Иван;{IIN};87012345678\r\n;;\r\n".encode("cp1251"))
    source, chunks = read_all(path)
    assert source.encoding == "cp1251"
    data = [(c.location, c.text) for c in chunks if c.location["row"] == 2]
    assert data == [({"row": 2, "column": "ФИО"}, "Иванов Иван"), ({"row": 2, "column": "ИИН"}, IIN),
                    ({"row": 2, "column": "Телефон"}, "87012345678")]
    assert not [c for c in chunks if c.location["row"] == 3], "empty cells are not chunks"


def test_a_tsv_file_splits_on_tabs(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text(f"name,comma\tiin\nA, B\t{IIN}\n", encoding="utf-8")
    _, chunks = read_all(path)
    assert (chunks[-1].location, chunks[-1].text) == ({"row": 2, "column": "iin"}, IIN)
    assert chunks[-2].text == "A, B"


def test_an_xlsx_sheet_gives_cells_with_sheet_and_cell_and_numbers_stay_whole(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Клиенты"
    sheet.append(["ФИО", "ИИН", "Сумма"])
    sheet.append(["Сейтқали Айгүл", int(IIN), 1500.5])
    sheet.append(["Ахметов Ерлан", IIN_2000S, None])
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    source, chunks = read_all(path)
    cells = {c.location["cell"]: (c.location, c.text) for c in chunks}
    assert cells["B2"] == ({"sheet": "Клиенты", "cell": "B2", "row": 2, "column": "ИИН"}, IIN)
    assert cells["B3"][1] == IIN_2000S and cells["C2"][1] == "1500.5"
    assert "C3" not in cells


def test_a_corrupt_xlsx_is_a_source_error_naming_the_file_not_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip " + IIN.encode())
    source, = list(open_sources([str(path)]))
    assert isinstance(source, Source)
    with pytest.raises(SourceError) as caught:
        list(source)
    assert caught.value.source == str(path) and "xlsx" in caught.value.reason
    assert IIN not in str(caught.value)


def test_a_parquet_file_is_read_in_batches_with_row_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(sources, "PARQUET_BATCH_ROWS", 2)
    table = pa.table({"iin": [IIN, None, IIN_2000S, "x"], "amount": [1.5, 2.0, 3.0, 4.0], "n": [1, 2, 3, 4]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    source, chunks = read_all(path)
    iins = [(c.location, c.text) for c in chunks if c.location["column"] == "iin"]
    assert iins == [({"row": 1, "column": "iin"}, IIN), ({"row": 3, "column": "iin"}, IIN_2000S),
                    ({"row": 4, "column": "iin"}, "x")]
    assert any("non-text" in n for n in source.notes), "float columns are skipped, with a note"


# --- documents --------------------------------------------------------------------------------------


def test_a_docx_gives_paragraphs_and_table_cells(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Договор")
    document.add_paragraph(f"Заемщик: ИИН {IIN}")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Телефон"
    table.cell(1, 1).text = "+7 701 234 56 78"
    path = tmp_path / "contract.docx"
    document.save(str(path))
    _, chunks = read_all(path)
    found = [(c.location, c.text) for c in chunks]
    assert ({"paragraph": 2}, f"Заемщик: ИИН {IIN}") in found
    assert ({"table": 1, "row": 2, "cell": 2}, "+7 701 234 56 78") in found


def test_a_pdf_gives_its_text_per_page(tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(minimal_pdf(f"IIN {IIN} mail a@gov.kz"))
    source, chunks = read_all(path)
    assert source.kind == "pdf"
    assert [(c.location, c.text) for c in chunks] == [({"page": 1}, f"IIN {IIN} mail a@gov.kz")]


def test_a_truncated_pdf_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(minimal_pdf(f"IIN {IIN}")[:60])
    source, = list(open_sources([str(path)]))
    with pytest.raises(SourceError) as caught:
        list(source)  # type: ignore[arg-type]
    assert IIN not in str(caught.value)


# --- JSON -------------------------------------------------------------------------------------------


def test_a_json_document_gives_strings_and_integers_by_json_path(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"clients": [{"iin": IIN, "age": 44, "vip": True}],
                                "by iin": {IIN_2000S: "Айгүл"}}, ensure_ascii=False), encoding="utf-8")
    _, chunks = read_all(path)
    found = {c.location["path"]: c.text for c in chunks}
    assert found["$.clients[0].iin"] == IIN and found["$.clients[0].age"] == "44"
    assert "$.clients[0].vip" not in found
    assert found['$["by iin"][#0]'] == "Айгүл"
    assert found['$["by iin"][#0]#key'] == IIN_2000S, "an object keyed by IIN is scanned, the key kept out of paths"
    assert not any(IIN_2000S in p for p in found)


def test_jsonl_records_without_a_text_field_are_walked_like_json(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(f'{{"a": "{IIN}"}}\nnot json\n{{"b": ["x", "{IIN_2000S}"]}}\n', encoding="utf-8")
    _, chunks = read_all(path)
    assert [(c.location, c.text) for c in chunks] == [
        ({"line": 1, "path": "$.a"}, IIN),
        ({"line": 2, "error": "line 2: invalid JSON (Expecting value at column 1)"}, ""),
        ({"line": 3, "path": "$.b[0]"}, "x"), ({"line": 3, "path": "$.b[1]"}, IIN_2000S)]


def test_jsonl_with_a_text_field_gives_one_chunk_per_record_with_its_id(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a", "text": "hello"}\n\n{"id": 7, "text": null}\n{"text": "no id"}\n[1]\n',
                    encoding="utf-8")
    _, chunks = read_all(path, text_field="text", id_field="id")
    assert [(c.location, c.text) for c in chunks] == [
        ({"line": 1, "id": "a", "field": "text"}, "hello"),
        ({"line": 3, "id": 7, "field": "text", "error": "line 3: field 'text' is null, not a string"}, ""),
        ({"line": 4, "id": None, "field": "text"}, "no id"),
        ({"line": 5, "id": None, "field": "text", "error": "line 5: record is not a JSON object"}, "")]


# --- directories, databases -------------------------------------------------------------------------


def test_a_directory_is_walked_recursively_in_order_and_binaries_are_skipped_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    (tmp_path / "b" / "deep" / "notes").write_text(f"ИИН {IIN}", encoding="utf-8")  # no extension: sniffed
    (tmp_path / "b" / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)))
    items = list(open_sources([str(tmp_path)]))
    assert [(type(i).__name__, Path(i.name if isinstance(i, Source) else i.source).relative_to(tmp_path).as_posix())
            for i in items] == [("Source", "a.txt"), ("Skipped", "b/photo.jpg"), ("Source", "b/deep/notes")]
    assert isinstance(items[1], Skipped) and "binary" in items[1].reason


def test_a_missing_path_is_an_error_not_a_crash(tmp_path: Path) -> None:
    items = list(open_sources([str(tmp_path / "nope.txt")]))
    assert len(items) == 1 and isinstance(items[0], SourceError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("x", encoding="utf-8")
    path.chmod(0)
    items = list(open_sources([str(path)]))
    with pytest.raises(SourceError, match="permission denied"):
        for item in items:
            if isinstance(item, SourceError):
                raise item
            list(item)  # type: ignore[arg-type]


def test_a_sqlite_database_is_sampled_per_column_by_table_and_column(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE clients (id INTEGER PRIMARY KEY, iin TEXT, note TEXT, photo BLOB)")
        conn.executemany("INSERT INTO clients (iin, note, photo) VALUES (?, ?, ?)",
                         [(IIN, None, b"\x00\x01"), (IIN_2000S, "звонить", None), (IIN, "x", None), (IIN, "y", None)])
    source, chunks = read_all(f"sqlite:///{path}", sample_rows=2)
    assert source.kind == "sql"
    by_column: dict[str, list[tuple[int, str]]] = {}
    for c in chunks:
        assert c.location["table"] == "clients"
        by_column.setdefault(c.location["column"], []).append((c.location["row"], c.text))
    assert by_column["iin"] == [(1, IIN), (2, IIN_2000S)], "at most --sample-rows rows per column"
    assert by_column["note"] == [(1, "звонить"), (2, "x")], "NULLs are not sampled"
    assert "photo" not in by_column


def test_a_database_url_is_shown_without_its_password() -> None:
    assert sources.display_url("postgresql://scanner:s3cret@db.local/crm") == "postgresql://scanner:***@db.local/crm"
    assert sources.is_database_url("postgresql+psycopg://h/db") and not sources.is_database_url("C:/data/x.csv")


def test_an_unreachable_database_is_a_source_error_without_the_password() -> None:
    source, = list(open_sources(["postgresql://scanner:s3cret@127.0.0.1:1/crm"]))
    with pytest.raises(SourceError) as caught:
        list(source)  # type: ignore[arg-type]
    assert "s3cret" not in str(caught.value) and "***" in caught.value.source


def test_a_chunk_repr_never_shows_its_text() -> None:
    chunk = Chunk("f.txt", {"line": 1, "column": 0}, f"ИИН {IIN}")
    assert IIN not in repr(chunk) and "16 chars" in repr(chunk)
