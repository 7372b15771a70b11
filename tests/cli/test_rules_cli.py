"""``qorgau rules`` run as real subprocesses over the fixture packs (``--packs-dir``/``--catalog`` choose them
instead of the built-in packs): list, show, test, export, check, evaluate, and their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent.parent / "rules" / "fixtures"
SOURCE = ["--packs-dir", str(FIXTURES / "packs"), "--packs-dir", str(FIXTURES / "stricter"),
          "--catalog", str(FIXTURES / "facts.yaml")]
QORGAU = [sys.executable, "-m", "qorgau.cli", "rules"]


def rules(*args: str, source: list[str] | None = None, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    env.pop("QORGAU_RULES_EXTRA_DIRS", None)
    env.pop("QORGAU_RULES_STRICTER_PROFILE", None)
    proc = subprocess.run(QORGAU + (SOURCE if source is None else source) + list(args), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_list_marks_the_stricter_proposals_and_reads_the_law_as_of_a_date() -> None:
    table = rules("list", "--profile", "stricter").stdout
    assert "fx.prohibited.emotion" in table and "fx.stricter.objection (not yet law)" in table
    assert "fx.stricter.objection" not in rules("list").stdout
    data = json.loads(rules("list", "--subject", "ai_system", "--as-of", "2025-06-01", "--json").stdout)
    assert [r["id"] for r in data["rules"]] == ["fx.notice.old-regime"]
    assert data["as_of"] == "2025-06-01" and len(data["digest"]) == 64
    bad = rules("list", "--as-of", "yesterday", code=2)
    assert "[--as-of]" in bad.stderr


def test_show_a_rule_in_russian_and_an_unknown_one() -> None:
    text = rules("show", "fx.prohibited.emotion", "--lang", "ru").stdout
    assert "Распознавание эмоций" in text and "L-AI-PROHIBITED" in text and "2026-01-18" in text
    assert "functions.emotion_recognition" in text
    assert "no rule" in rules("show", "fx.nothing", code=2).stderr


def test_test_runs_every_embedded_example_and_fails_on_a_wrong_one(tmp_path: Path) -> None:
    assert "27 of 27 examples pass" in rules("test").stdout
    text = (FIXTURES / "packs" / "ai.yaml").read_text().replace(
        "{name: classifier, facts: {functions: {synthetic_content: false}}, fires: false}",
        "{name: classifier, facts: {functions: {synthetic_content: false}}, fires: false}\n"
        "      - {name: wrong, facts: {functions: {synthetic_content: true}}, fires: false}")
    (tmp_path / "ai.yaml").write_text(text)
    failed = rules("test", source=["--packs-dir", str(tmp_path), "--catalog", str(FIXTURES / "facts.yaml")], code=1)
    assert "FAIL fx.obligation.label — wrong: expected does not fire, got fires" in failed.stdout
    data = json.loads(rules("test", "--json", source=["--packs-dir", str(tmp_path), "--catalog",
                                                      str(FIXTURES / "facts.yaml")], code=1).stdout)
    assert data["failed"] == 1 and [r["name"] for r in data["results"] if not r["ok"]] == ["wrong"]


def test_export_json_and_html(tmp_path: Path) -> None:
    out = tmp_path / "law.json"
    rules("export", "-o", str(out))
    data = json.loads(out.read_text())
    assert {p["id"] for p in data["packs"]} == {"fx.ai", "fx.pd", "fx.stricter"}
    html = rules("export", "--format", "html", "--lang", "kk").stdout
    assert html.startswith("<!DOCTYPE html>") and "Заң код ретінде" in html and "<script>" not in html
    assert "[--format]" in rules("export", "--format", "pdf", code=2).stderr


def test_check_validates_packs_without_loading_them(tmp_path: Path) -> None:
    assert "valid: 1 pack(s), 10 rule(s), 21 of 21 examples pass" in rules(
        "check", str(FIXTURES / "packs" / "ai.yaml")).stdout
    text = (FIXTURES / "packs" / "ai.yaml").read_text().replace("when: 'functions.synthetic_content'",
                                                                "when: 'functions.synthetic_contnet'")
    bad = tmp_path / "ai.yaml"
    bad.write_text(text)
    line = text[: text.index("functions.synthetic_contnet")].count("\n") + 1
    err = rules("check", str(bad), code=2).stderr
    assert f"{bad}:{line}: rule fx.obligation.label: unknown fact `functions.synthetic_contnet`" in err
    # a new pack is checked against the packs already there: the same rule ids again are duplicates
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "again.yaml").write_text((FIXTURES / "packs" / "pd.yaml").read_text().replace("pack: fx.pd",
                                                                                         "pack: fx.pd2"))
    assert "duplicate rule id" in rules("check", str(copy), code=2).stderr


def test_evaluate_prints_the_evaluation(tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("functions: {emotion_recognition: true}\nlegal.emotion_recognition_consent: false\n"
                     "legal: {allowed_by_law: []}\n")
    text = rules("evaluate", "--facts", str(facts), "--as-of", "2026-03-01").stdout
    assert "prohibited: YES" in text and "fx.prohibited.emotion" in text and "facts missing:" in text
    before = json.loads(rules("evaluate", "--facts", str(facts), "--as-of", "2025-03-01", "--json").stdout)
    assert before["prohibited"] is False and [f["rule_id"] for f in before["fired"]] == []
    as_json = tmp_path / "facts.json"
    as_json.write_text(json.dumps({"processing": {"automated": True}}))
    data = json.loads(rules("evaluate", "--facts", str(as_json), "--subject", "processing", "--json").stdout)
    assert [f["rule_id"] for f in data["notices"]] == ["fx.notice.automated"]


@pytest.mark.parametrize("content, field", [
    ("functions: {telepathy: true}\n", "[facts.functions.telepathy]"),
    ("functions: {emotion_recognition: perhaps}\n", "[facts.functions.emotion_recognition]"),
    ("functions: [\n", "[--facts]"),
])
def test_evaluate_refuses_bad_facts_naming_the_field(tmp_path: Path, content: str, field: str) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text(content)
    assert field in rules("evaluate", "--facts", str(facts), code=2).stderr
