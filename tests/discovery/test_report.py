"""Reports show where personal data is and what kind, never the data itself."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from rich.console import Console

from qorgau.discovery import report
from qorgau.discovery.scanning import Place, ScannerSpec, SourceResult, mask_value, masked_snippet, scan_paths
from qorgau.discovery.types import Finding

IIN = "791028302728"
PHONE_DIGITS = "7012345678"


def scanned(tmp_path: Path, *, snippets: bool = True) -> list[SourceResult]:
    (tmp_path / "notes.txt").write_text(f"Клиент: Иванов И.\nИИН {IIN}, тел 8 (701) 234-56-78, a.b@gov.kz\n",
                                        encoding="utf-8")
    (tmp_path / "table.csv").write_text(f"iin,comment\n{IIN},ok\n", encoding="utf-8")
    (tmp_path / "z-broken.xlsx").write_bytes(b"junk")
    return list(scan_paths([str(tmp_path)], ScannerSpec(identifiers_only=True), snippets=snippets))


def test_sarif_has_the_required_structure_and_a_rule_per_type(tmp_path: Path) -> None:
    doc = report.sarif(scanned(tmp_path))
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    run, = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "qorgau" and run["columnKind"] == "unicodeCodePoints"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(set(rule_ids)) == len(rule_ids) and {"KZ_IIN", "PHONE_NUMBER", "EMAIL_ADDRESS"} <= set(rule_ids)
    assert run["results"], "findings become results"
    for result in run["results"]:
        assert set(result) >= {"ruleId", "ruleIndex", "level", "message", "locations"}
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        assert IIN not in json.dumps(result, ensure_ascii=False)
    regions = {(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"],
                r["locations"][0]["physicalLocation"]["region"]["startColumn"])
               for r in run["results"] if "region" in r["locations"][0].get("physicalLocation", {})}
    assert ("KZ_IIN", 2, 5) in regions, "text findings point at line and 1-based column"
    logical = [r["locations"][0]["logicalLocations"][0]["name"] for r in run["results"]
               if "logicalLocations" in r["locations"][0]]
    assert "row 2 column iin" in logical, "table findings have a logical location"
    invocation, = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] \
        .endswith("z-broken.xlsx")


def test_the_html_report_is_self_contained_masked_and_has_a_chart(tmp_path: Path) -> None:
    page = report.html_report(scanned(tmp_path))
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no external assets"
    assert IIN not in page and PHONE_DIGITS not in page and "a.b@gov.kz" not in page
    assert "<mark>79******2728</mark>" in page and "<mark>+7 701 *** ** 78</mark>" in page
    assert "KZ_IIN" in page and "identifying" in page


def test_the_html_report_escapes_names_from_the_input(tmp_path: Path) -> None:
    (tmp_path / "<script>alert(1)<").mkdir()
    (tmp_path / "<script>alert(1)<" / "x.txt").write_text(f"ИИН {IIN}", encoding="utf-8")
    page = report.html_report(list(scan_paths([str(tmp_path)], ScannerSpec(identifiers_only=True), snippets=True)))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_snippets_mask_every_finding_and_star_nearby_digits() -> None:
    text = f"ИИН {IIN} и еще 87012345678 (не найден) и Айгүл"
    found = [Finding("KZ_IIN", 4, 16, 1.0, "kz_iin_bin")]
    before, value, after = masked_snippet(text, found[0], found)
    assert (before, value) == ("ИИН ", "79******2728")
    assert "***********" in after and "Айгүл"[:3] not in after[: len("и еще ")]
    assert not any(ch.isdigit() for ch in before + after)


def test_values_without_an_identifier_kind_are_masked_letter_by_letter() -> None:
    assert mask_value("PERSON", "Жаксылыков Е.Б.") == "********** *.*."
    assert mask_value("KZ_IIN", IIN) == "79******2728"
    assert mask_value("EMAIL_ADDRESS", "a.b@gov.kz").endswith("@gov.kz") and "a.b" not in mask_value("EMAIL_ADDRESS", "a.b@gov.kz")


def test_the_json_report_totals_types_and_categories(tmp_path: Path) -> None:
    doc = report.report_dict(scanned(tmp_path, snippets=False), explain=True)
    totals = doc["totals"]
    assert totals["by_type"] == {"KZ_IIN": 2, "PHONE_NUMBER": 1, "EMAIL_ADDRESS": 1}
    assert totals["by_category"] == {"identifying": 4}
    assert (totals["sources"], totals["with_findings"], totals["failed"]) == (3, 2, 1)
    notes, = [s for s in doc["sources"] if s["source"].endswith("notes.txt")]
    assert notes["encoding"] == "utf-8" and notes["places"][0]["location"] == {"line": 2}
    assert "explanation" in notes["places"][0]["findings"][0]
    assert IIN not in json.dumps(doc, ensure_ascii=False)


def test_the_table_lists_each_source_with_counts_per_type(tmp_path: Path) -> None:
    console = Console(width=200, record=True, color_system=None)
    console.print(report.summary_table(scanned(tmp_path)))
    text = console.export_text()
    assert re.search(r"notes\.txt\s+│\s+EMAIL_ADDRESS\s+│\s+identifying\s+│\s+1\s", text)
    assert re.search(r"table\.csv\s+│\s+KZ_IIN\s+│\s+identifying\s+│\s+1\s", text)
    assert "z-broken.xlsx" in text and "error" in text
    assert "4 finding(s) in 2 of 3 source(s); 1 failed" in text


def test_a_contract_line_has_exactly_id_and_findings() -> None:
    place = Place({"line": 1, "id": "doc-1", "field": "text"}, (Finding("KZ_IIN", 3, 15, 0.99999, "kz_iin_bin"),))
    assert json.loads(report.contract_line(place)) == {"id": "doc-1", "findings": [
        {"type": "KZ_IIN", "start": 3, "end": 15, "score": 1.0, "category": "identifying", "recognizer": "kz_iin_bin"}]}
    broken = Place({"line": 2, "id": None, "field": "text"}, (), error="line 2: no field 'text'")
    assert json.loads(report.contract_line(broken)) == {"id": None, "findings": [], "error": "line 2: no field 'text'"}


def test_results_without_findings_still_appear_in_totals() -> None:
    empty = SourceResult(source="x.txt", kind="text", counts=Counter())
    assert report.totals([empty])["sources"] == 1 and report.totals([empty])["findings"] == 0
