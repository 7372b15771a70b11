"""Scanning sources and the `qorgau scan` command: places, order, workers, the JSON Lines contract, exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qorgau.cli.main import app
from qorgau.discovery import sources
from qorgau.discovery.scanning import ScannerSpec, SourceResult, scan_paths

IIN = "791028302728"
IIN_2000S = "061211600012"
BAD_IIN = "791028302729"  # checksum fails
IDS = ScannerSpec(identifiers_only=True)

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["scan", *args], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def scan_all(*paths: Path | str, **options: object) -> list[SourceResult]:
    return list(scan_paths([str(p) for p in paths], IDS, **options))  # type: ignore[arg-type]


# --- the service ------------------------------------------------------------------------------------


def test_findings_in_a_text_file_are_placed_on_their_line_with_offsets_into_that_line(tmp_path: Path) -> None:
    lines = ["header", f"клиент ИИН {IIN}, тел 8 (701) 234-56-78", "nothing", f"  {IIN_2000S}"]
    path = tmp_path / "a.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, = scan_all(path)
    assert result.counts == {"KZ_IIN": 2, "PHONE_NUMBER": 1} and result.categories == {"identifying": 3}
    for place in result.places:
        line = lines[place.location["line"] - 1]
        for f in place.findings:
            assert line[f.start:f.end] in (IIN, IIN_2000S, "8 (701) 234-56-78")
    assert [p.location for p in result.places] == [{"line": 2}, {"line": 4}]
    assert result.rows_scanned == 4 and result.bytes_scanned == len(path.read_bytes())


def test_findings_in_pieces_of_a_huge_line_get_offsets_into_the_whole_line(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_PIECE_CHARS", 500)
    monkeypatch.setattr(sources, "CUT_SEARCH_CHARS", 50)
    line = " ".join(f"row{i} ИИН {IIN}" for i in range(200))
    path = tmp_path / "one-line.json"
    path.write_text("x\n" + line + "\n", encoding="utf-8")
    monkeypatch.setitem(sources.KINDS_BY_EXTENSION, ".json", "text")
    result, = scan_all(path)
    spans = [(p.location["line"], f.start, f.end) for p in result.places for f in p.findings]
    assert len(spans) == 200 and all(ln == 2 and line[s:e] == IIN for ln, s, e in spans)


def test_findings_in_a_long_cell_get_offsets_into_the_whole_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_CELL_CHARS", 300)
    monkeypatch.setattr(sources, "CUT_SEARCH_CHARS", 50)
    cell = " ".join(f"n{i} {IIN}" for i in range(60))
    path = tmp_path / "t.csv"
    path.write_text(f"note\n\"{cell}\"\n", encoding="utf-8")
    result, = scan_all(path)
    assert {tuple(p.location.items()) for p in result.places} == {(("row", 2), ("column", "note"))}
    assert all(cell[f.start:f.end] == IIN for p in result.places for f in p.findings)
    assert result.counts["KZ_IIN"] == 60


def test_a_bad_checksum_is_not_an_iin_in_a_file_either(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(f"ИИН {BAD_IIN}\n", encoding="utf-8")
    result, = scan_all(tmp_path / "x.txt")
    assert not result.found and result.places == []


def test_a_corrupt_xlsx_is_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a-broken.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    (tmp_path / "b.txt").write_text(f"ИИН {IIN}", encoding="utf-8")
    broken, good = scan_all(tmp_path)
    assert broken.failed and "xlsx" in broken.errors[0] and not broken.found
    assert good.found and not good.failed


def test_a_cp1251_csv_is_scanned_by_cell_and_its_encoding_recorded(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes(f"ФИО;ИИН;Почта\nИванов;{IIN};ivanov@mail.kz\n".encode("cp1251"))
    result, = scan_all(path)
    assert result.encoding == "cp1251" and result.rows_scanned == 2
    assert {(p.location["column"], p.findings[0].type) for p in result.places} == {("ИИН", "KZ_IIN"),
                                                                                  ("Почта", "EMAIL_ADDRESS")}


def test_a_sqlite_database_is_sampled_and_findings_name_table_and_column(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE clients (iin TEXT, email TEXT)")
        conn.executemany("INSERT INTO clients VALUES (?, ?)", [(IIN, "a@gov.kz")] * 50)
    result, = scan_all(f"sqlite:///{db}", sample_rows=10)
    assert result.counts == {"KZ_IIN": 10, "EMAIL_ADDRESS": 10}
    assert {(p.location["table"], p.location["column"]) for p in result.places} == {("clients", "iin"),
                                                                                  ("clients", "email")}


def test_types_and_min_score_filter_findings(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(f"ИИН {IIN} a@gov.kz\n", encoding="utf-8")
    only_email, = scan_all(tmp_path / "x.txt", types={"EMAIL_ADDRESS"})
    assert only_email.counts == {"EMAIL_ADDRESS": 1}
    nothing, = scan_all(tmp_path / "x.txt", min_score=1.01)
    assert not nothing.found


def test_workers_give_the_same_results_in_the_same_order(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text("".join(f"{i}-{n} ИИН {IIN}\n" if n % 3 == 0 else "-\n"
                                                    for n in range(300)), encoding="utf-8")
    (tmp_path / "f9.xlsx").write_bytes(b"broken")

    def summary(results: list[SourceResult]) -> list[tuple[object, ...]]:
        return [(r.source, dict(r.counts), r.errors, [(p.location, p.findings) for p in r.places]) for r in results]

    one = summary(scan_all(tmp_path, workers=1))
    two = summary(scan_all(tmp_path, workers=2))
    assert one == two and len(one) == 7 and one[-1][2]


# --- the command ------------------------------------------------------------------------------------


def test_exit_code_is_0_when_nothing_is_found_and_1_when_personal_data_is(tmp_path: Path) -> None:
    (tmp_path / "clean.txt").write_text(f"order {BAD_IIN} shipped\n", encoding="utf-8")
    (tmp_path / "dirty.txt").write_text(f"ИИН {IIN}\n", encoding="utf-8")
    assert run(str(tmp_path / "clean.txt"), "--identifiers-only")[0] == 0
    code, out, _ = run(str(tmp_path / "dirty.txt"), "--identifiers-only")
    assert code == 1 and "KZ_IIN" in out and IIN not in out


def test_exit_code_4_when_a_file_fails_and_5_when_others_had_personal_data(tmp_path: Path) -> None:
    (tmp_path / "broken.xlsx").write_bytes(b"junk")
    code, _, err = run(str(tmp_path / "broken.xlsx"), "--identifiers-only")
    assert code == 4 and "broken.xlsx" in err
    (tmp_path / "dirty.txt").write_text(f"ИИН {IIN}\n", encoding="utf-8")
    assert run(str(tmp_path), "--identifiers-only")[0] == 5


@pytest.mark.parametrize("args", [
    ["MISSING.txt"],
    ["{dir}/x.txt", "--types", "KZ_SNILS"],
    ["{dir}/x.txt", "--text-field", "text"],
    ["{dir}/x.txt", "--id-field", "id"],
    ["{dir}/x.txt", "--workers", "0"],
    ["{dir}/x.txt", "--format", "pdf"],
])
def test_bad_usage_exits_with_2(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "x.txt").write_text("x", encoding="utf-8")
    code, _, _ = run(*[a.replace("{dir}", str(tmp_path)).replace("MISSING", str(tmp_path / "missing")) for a in args])
    assert code == 2


def test_stdin_is_scanned_with_a_dash() -> None:
    code, out, _ = run("-", "--identifiers-only", "--format", "json", input=f"тел +7 701 234 56 78\nИИН {IIN}\n")
    report = json.loads(out)
    assert code == 1 and report["sources"][0]["source"] == "<stdin>"
    assert [p["location"] for p in report["sources"][0]["places"]] == [{"line": 1}, {"line": 2}]


def jsonl_input(tmp_path: Path) -> tuple[Path, list[dict[str, object]]]:
    records: list[dict[str, object]] = [
        {"id": "r1", "text": f"Клиент ИИН {IIN}, почта a.b@gov.kz"},
        {"id": 2, "text": "ничего нет"},
        {"id": "r3", "text": None},
        {"id": "r4", "text": f"ЖСН: {IIN_2000S}\nтел. 87012345678", "other": IIN},
        {"text": f"{IIN} без id"},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path, records


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_jsonl_contract_writes_one_line_per_record_in_order_with_offsets_into_its_text(
        tmp_path: Path, workers: str) -> None:
    path, records = jsonl_input(tmp_path)
    out_path = tmp_path / "findings.jsonl"
    code, _, err = run(str(path), "--text-field", "text", "--id-field", "id", "--output", str(out_path),
                       "--identifiers-only", "--workers", workers)
    lines = [json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["r1", 2, "r3", "r4", None]
    for line, record in zip(lines, records, strict=True):
        assert set(line) <= {"id", "findings", "error"}
        for f in line["findings"]:
            assert list(f) == ["type", "start", "end", "score", "category", "recognizer"]
            text = record["text"]
            assert isinstance(text, str)
            assert text[f["start"]:f["end"]] in (IIN, IIN_2000S, "a.b@gov.kz", "87012345678")
    assert [f["type"] for f in lines[0]["findings"]] == ["KZ_IIN", "EMAIL_ADDRESS"]
    assert lines[1]["findings"] == [] and "error" not in lines[1]
    assert lines[2] == {"id": "r3", "findings": [], "error": "line 3: field 'text' is null, not a string"}
    assert [f["type"] for f in lines[3]["findings"]] == ["KZ_IIN", "PHONE_NUMBER"], "only the text field is scanned"
    assert code == 5 and "line 3" in err, "found (1) + a record could not be scanned (4)"


def test_the_jsonl_contract_reads_stdin_and_writes_stdout() -> None:
    code, out, _ = run("-", "--text-field", "text", "--identifiers-only",
                       input='{"text": "a@gov.kz"}\n{"text": "x"}\n')
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 2], "without --id-field the id is the line"
    assert code == 1


def test_the_jsonl_contract_refuses_other_formats(tmp_path: Path) -> None:
    path, _ = jsonl_input(tmp_path)
    assert run(str(path), "--text-field", "text", "--format", "sarif")[0] == 2


def test_explain_adds_the_score_explanation_to_json_output(tmp_path: Path) -> None:
    path, _ = jsonl_input(tmp_path)
    _, out, _ = run(str(path), "--text-field", "text", "--identifiers-only", "--explain")
    first = json.loads(out.splitlines()[0])["findings"][0]
    assert first["explanation"]["validated"] is True and "pattern" in first["explanation"]


def test_an_allow_list_silences_a_known_value(tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text(f"Пример ИИН: {IIN}\n", encoding="utf-8")
    (tmp_path / "allow.txt").write_text(f"# the IIN used in our documentation\n{IIN}\n", encoding="utf-8")
    assert run(str(tmp_path / "doc.txt"), "--identifiers-only")[0] == 1
    assert run(str(tmp_path / "doc.txt"), "--identifiers-only", "--allow", str(tmp_path / "allow.txt"))[0] == 0


def test_a_deny_list_reports_a_value_no_recognizer_knows(tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text("табельный номер EMP-00417\n", encoding="utf-8")
    (tmp_path / "deny.txt").write_text("re:EMP-\\d{5}\n", encoding="utf-8")
    code, out, _ = run(str(tmp_path / "doc.txt"), "--identifiers-only", "--deny", str(tmp_path / "deny.txt"),
                       "--format", "jsonl")
    assert code == 1 and json.loads(out.splitlines()[0])["findings"][0]["recognizer"] == "deny_list"


def test_every_format_writes_without_the_raw_value(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(f"ИИН {IIN}\nтел +7 701 234 56 78\n", encoding="utf-8")
    for fmt in ("table", "json", "jsonl", "sarif", "html"):
        out_path = tmp_path / f"report.{fmt}"
        code, _, _ = run(str(tmp_path / "x.txt"), "--identifiers-only", "--format", fmt, "--output", str(out_path))
        text = out_path.read_text(encoding="utf-8")
        assert code == 1 and text.strip(), fmt
        assert IIN not in text and "2345678" not in text, fmt


def test_the_progress_bar_goes_to_stderr_when_asked(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(f"ИИН {IIN}\n" * 100, encoding="utf-8")
    code, out, err = run(str(tmp_path / "x.txt"), "--identifiers-only", "--progress", "--format", "json")
    assert code == 1 and json.loads(out)["totals"]["findings"] == 100
    assert "rows/s" in err and "B/s" in err


def test_custom_recognizers_from_yaml_find_an_operators_own_identifier(tmp_path: Path) -> None:
    (tmp_path / "hr.txt").write_text("табельный номер E123456\n", encoding="utf-8")
    (tmp_path / "custom.yaml").write_text(
        "recognizers:\n"
        "  - name: employee_id\n"
        "    entity_type: EMPLOYEE_ID\n"
        "    patterns:\n"
        "      - {name: tab_number, regex: 'E\\d{6}', score: 0.6}\n"
        "    context: [табельный]\n"
        "    context_boost: 0.2\n", encoding="utf-8")
    code, out, err = run(str(tmp_path / "hr.txt"), "--identifiers-only", "--custom-recognizers",
                         str(tmp_path / "custom.yaml"), "--types", "EMPLOYEE_ID", "--format", "json")
    assert code == 1, err
    assert json.loads(out)["totals"]["by_type"] == {"EMPLOYEE_ID": 1}


def test_a_broken_custom_recognizer_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x", encoding="utf-8")
    (tmp_path / "custom.yaml").write_text("recognizers:\n  - name: bad\n    entity_type: X\n    patterns:\n"
                                          "      - {name: p, regex: '(unclosed'}\n", encoding="utf-8")
    code, _, err = run(str(tmp_path / "x.txt"), "--custom-recognizers", str(tmp_path / "custom.yaml"))
    assert code == 2 and "recognizers[0]" in err


def test_the_full_scanner_finds_names_too(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("Договор подписал Жаксылыков Ерлан Болатович, ИИН 791028302728.\n",
                                    encoding="utf-8")
    code, out, _ = run(str(tmp_path / "x.txt"), "--format", "json")
    assert code == 1 and {"PERSON", "KZ_IIN"} <= set(json.loads(out)["totals"]["by_type"])


def test_help_documents_the_contract_and_the_exit_codes() -> None:
    result = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "JSON Lines contract" in result.stdout and "5 = found and some failed" in result.stdout
    assert '"error"' in result.stdout
