"""``qorgau ai-systems`` — the AI systems register on the command line, run as real subprocesses (issue 7): write
the questionnaire template, fill it in, register → classify (stored, and a preview under the law of 2025) → change
an answer → history with the diff → obligations met → audit, trusted-list request, sandbox → maturity → the
public register as CSV. Bad answers and bad YAML exit 2 naming the fact or the file and line."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

QORGAU = [sys.executable, "-m", "qorgau.cli"]
BIN = "940140000385"


def run(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QORGAU_DATA_DIR": str(data_dir), "COLUMNS": "250", "NO_COLOR": "1"}
    env.pop("QORGAU_DATABASE_URL", None)
    proc = subprocess.run(QORGAU + list(args), env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def as_json(data_dir: Path, *args: str) -> object:
    return json.loads(run(data_dir, *args, "--json").stdout)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    run(d, "init")
    run(d, "orgs", "create", "--name", "Energy company", "--bin", BIN)
    return d


def filled_template(data_dir: Path, tmp_path: Path, **answers: object) -> Path:
    """The template ``questionnaire -o`` writes, with every required question answered."""
    path = tmp_path / "questionnaire.yaml"
    out = run(data_dir, "ai-systems", "questionnaire", "-o", str(path)).stdout
    assert "template written" in out
    template = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert "functions.emotion_recognition" in template and template["failure.impact"] is None
    text = path.read_text(encoding="utf-8")
    assert "# " in text and "one of: minimal, reduced_effectiveness" in text  # questions and choices as comments
    filled = {}
    for key in template:
        filled[key] = False
    filled.update({
        "system.sector": "energy", "system.purpose": "Forecasting the grid's load", "system.state_system": False,
        "system.owner_name": "Grid operations department", "system.possessor_name": None,
        "system.model_versions": "internal-forecast-rev-9", "system.stage": "production", "users.affected": ">100k",
        "users.vulnerable_groups": [], "failure.impact": "economy", "oversight.human_final_choice": True,
        "oversight.human_can_correct": True, "legal.allowed_by_law": [], "training.lawful_basis": True,
        "training.provenance_documented": True, "audit.date": None,
    })
    filled.update({k.replace("__", "."): v for k, v in answers.items()})
    path.write_text(yaml.safe_dump(filled, allow_unicode=True), encoding="utf-8")
    return path


def test_register_classify_history_obligations_governance_and_the_public_register(data_dir: Path,
                                                                                  tmp_path: Path) -> None:
    questions = run(data_dir, "ai-systems", "questionnaire", "--lang", "ru").stdout
    assert "functions.emotion_recognition" in questions

    facts = filled_template(data_dir, tmp_path)
    out = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "grid-forecast", "--name",
              "Grid load forecast", "--facts", str(facts), "--public").stdout
    assert "grid-forecast registered" in out and "KZ-AI-" in out and "public" in out
    assert "risk high" in out and "obligation" in out

    shown = as_json(data_dir, "ai-systems", "show", "grid-forecast", "--org", BIN)
    assert shown["classification"]["risk_level"] == "high" and shown["version"] == 1  # type: ignore[index]

    # a preview under the law of 2025 (before the AI law was in force) stores nothing
    preview = as_json(data_dir, "ai-systems", "classify", "grid-forecast", "--org", BIN, "--as-of", "2025-06-01",
                      "--preview")
    assert preview["persisted"] is False and preview["obligations"] == []  # type: ignore[index]
    text = run(data_dir, "ai-systems", "classify", "grid-forecast", "--org", BIN, "--as-of", "2026-06-01",
               "--preview", "--profile", "stricter").stdout
    assert "preview, not stored" in text and "stricter" in text
    assert len(as_json(data_dir, "ai-systems", "history", "grid-forecast", "--org", BIN)) == 1  # type: ignore[arg-type]

    # the failure would now only reduce effectiveness: medium risk; the high-risk duties are dropped
    change = tmp_path / "change.yaml"
    change.write_text("failure:\n  impact: reduced_effectiveness\n", encoding="utf-8")
    out = run(data_dir, "ai-systems", "update-questionnaire", "grid-forecast", "--org", BIN, "--facts", str(change),
              "--expected-version", "1").stdout
    assert "version 2" in out and "risk_level: high → medium" in out
    stale = run(data_dir, "ai-systems", "update-questionnaire", "grid-forecast", "--org", BIN, "--facts", str(change),
                "--expected-version", "1", check=False)
    assert stale.returncode == 2 and "[expected_version]" in stale.stderr
    history = run(data_dir, "ai-systems", "history", "grid-forecast", "--org", BIN).stdout
    assert "high → medium" in history and "-ai.high.audit" in history

    # back to high risk, then meet an obligation with evidence
    back = tmp_path / "back.yaml"
    back.write_text("failure.impact: economy\n", encoding="utf-8")
    run(data_dir, "ai-systems", "update-questionnaire", "grid-forecast", "--org", BIN, "--facts", str(back))
    duties = as_json(data_dir, "ai-systems", "obligations", "--org", BIN, "--system", "grid-forecast",
                     "--status", "open")
    audit_duty = next(d for d in duties if d["rule_id"] == "ai.high.audit")  # type: ignore[union-attr]
    out = run(data_dir, "ai-systems", "obligation-met", str(audit_duty["id"]), "--org", BIN, "--evidence",
              "Audit report No. 17").stdout
    assert "is met" in out
    assert "ai.high.audit" in run(data_dir, "ai-systems", "obligations", "--org", BIN, "--status", "met").stdout

    # an audit, a trusted-list request and a sandbox application
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 audit report")
    out = run(data_dir, "ai-systems", "audit-record", "grid-forecast", "--org", BIN, "--auditor", "Audit Partners LLP",
              "--audited-on", "2026-02-02", "--result", "passed", "--covers-training-data", "--report",
              str(report)).stdout
    audit_id = out.split("audit ")[1].split(" ")[0]
    out = run(data_dir, "ai-systems", "trusted-request", "grid-forecast", "--org", BIN, "--sector", "energy",
              "--audit-id", audit_id).stdout
    assert "requested" in out
    out = run(data_dir, "ai-systems", "sandbox-apply", "--org", BIN, "--title", "Grid pilot", "--description",
              "A new forecasting model", "--system", "grid-forecast", "--relax", "ai.user.explanation",
              check=False)
    assert out.returncode == 2 and "[requested_relaxations.0]" in out.stderr  # not relaxable
    out = run(data_dir, "ai-systems", "sandbox-apply", "--org", BIN, "--title", "Grid pilot", "--description",
              "A new forecasting model", "--system", "grid-forecast", "--relax", "ai.high.audit").stdout
    assert "submitted" in out

    # the maturity index, kept for the trend
    maturity = as_json(data_dir, "ai-systems", "maturity", "--org", BIN)
    assert 0 <= maturity["score"] <= 100  # type: ignore[index]
    assert "kept for the trend" in run(data_dir, "ai-systems", "maturity", "--org", BIN, "--snapshot").stdout
    trend = as_json(data_dir, "ai-systems", "maturity", "--org", BIN, "--trend")
    assert len(trend) == 1  # type: ignore[arg-type]

    # the public register: the system, never a private answer
    public = run(data_dir, "ai-systems", "public", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(public)))
    assert [(r["operator_bin"], r["risk_level"]) for r in rows] == [(BIN, "high")]
    assert "internal-forecast-rev-9" not in public
    page = as_json(data_dir, "ai-systems", "public", "--sector", "energy")
    assert page["total"] == 1 and "internal-forecast-rev-9" not in json.dumps(page)  # type: ignore[index]


def test_bad_answers_and_bad_yaml_name_the_fact_or_the_line(data_dir: Path, tmp_path: Path) -> None:
    bad = filled_template(data_dir, tmp_path, failure__impact="catastrophic")
    r = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "x", "--name", "X", "--facts", str(bad),
            check=False)
    assert r.returncode == 2 and "[facts.failure.impact]" in r.stderr and "catastrophic" not in r.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("system.sector: energy\nfunctions.emotion_recognition: [true\n", encoding="utf-8")
    r = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "x", "--name", "X", "--facts", str(broken),
            check=False)
    assert r.returncode == 2 and "[--facts]" in r.stderr and "broken.yaml:" in r.stderr
    r = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "x", "--name", "X", check=False)
    assert r.returncode == 2 and "[--facts]" in r.stderr
    r = run(data_dir, "ai-systems", "classify", "nope", "--org", BIN, check=False)
    assert r.returncode == 2 and "[code]" in r.stderr
    assert as_json(data_dir, "ai-systems", "public") == {"items": [], "total": 0, "limit": 100, "offset": 0}
    # the declared registration of oversight still works through the same command
    out = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "declared", "--name", "Declared",
              "--risk-class", "high", "--autonomy", "medium").stdout
    assert "declared registered" in out
