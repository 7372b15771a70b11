"""``qorgau leaks incidents`` and ``qorgau leaks regulator`` as real subprocesses (issue 8; L-PD-BREACH): an operator
files a report from YAML, amends it, the authorized body verifies, asks, publishes and requests a takedown, the
operator answers. Bad files exit 2 naming the field or the file and line; another organization is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

QORGAU = [sys.executable, "-m", "qorgau.cli"]
BANK = "940140000385"
AUTHORITY = "050140000339"
PERSON = "Айгерим Сапарова"


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
    run(d, "orgs", "create", "--name", "Demo bank", "--bin", BANK)
    run(d, "orgs", "create", "--name", "Authorized body", "--bin", AUTHORITY, "--authority")
    return d


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def a_report(**changes: object) -> dict[str, object]:
    now = datetime.now(timezone.utc)
    data: dict[str, object] = {
        "responsible_person": PERSON, "responsible_contact": "+7 727 000 00 00 (switchboard)", "sector": "bank",
        "title": "Call-centre export on a public share", "nature": "unauthorized_disclosure",
        "discovered_at": (now - timedelta(hours=3)).isoformat(), "people_affected": 800,
        "data_classes": ["iin", "full_name"], "subject_categories": ["customers"],
        "measures_taken": "Share removed.",
    }
    data.update(changes)
    return data


def test_an_incident_from_filing_to_publication(data_dir: Path, tmp_path: Path) -> None:
    filed = as_json(data_dir, "leaks", "incidents", "file", "--org", BANK, "--from",
                    str(write(tmp_path / "report.yaml", a_report())))
    ref = filed["reference"]
    assert ref.startswith("KZ-LEAK-") and filed["late"] is False
    out = run(data_dir, "leaks", "incidents", "addendum", ref, "--org", BANK, "--from",
              str(write(tmp_path / "more.json", {"people_affected": 950}))).stdout
    assert "people_affected" in out
    listed = as_json(data_dir, "leaks", "incidents", "list", "--org", BANK)
    assert [(i["reference"], i["people_affected"]) for i in listed] == [(ref, 950)]

    run(data_dir, "leaks", "regulator", "status", ref, "verified", "--org", AUTHORITY, "--note", "Sample checked.")
    run(data_dir, "leaks", "regulator", "request-info", ref, "--org", AUTHORITY, "--text", "Which branches?")
    run(data_dir, "leaks", "regulator", "note", ref, "--org", AUTHORITY, "--text", "Internal.")
    run(data_dir, "leaks", "incidents", "respond", ref, "--org", BANK, "--text", "Almaty and Astana.")
    advice = write(tmp_path / "advice.yaml", {"kk": "Банкке хабарласыңыз.", "ru": "Обратитесь в банк.",
                                              "en": "Contact the bank."})
    published = as_json(data_dir, "leaks", "regulator", "publish", ref, "--org", AUTHORITY, "--advice-file",
                        str(advice))
    assert published["published"] is True and published["advice"]["ru"] == "Обратитесь в банк."
    takedown = as_json(data_dir, "leaks", "regulator", "takedown", ref, "--org", AUTHORITY, "--location",
                       "https://t.me/dump/7", "--addressee", "Telegram")
    run(data_dir, "leaks", "regulator", "takedown-resolve", ref, str(takedown["id"]), "removed", "--org", AUTHORITY)
    queue = as_json(data_dir, "leaks", "regulator", "list", "--org", AUTHORITY, "--published", "yes")
    assert [i["reference"] for i in queue] == [ref]
    shown = as_json(data_dir, "leaks", "incidents", "show", ref, "--org", BANK)
    assert [e["kind"] for e in shown["events"]] == ["filed", "addendum", "status", "info_request", "info_response",
                                                    "published", "takedown_requested", "takedown_resolved"]
    assert shown["info_requested"] is False and shown["takedowns"][0]["status"] == "removed"
    text = run(data_dir, "leaks", "regulator", "show", ref, "--org", AUTHORITY).stdout
    assert "Internal." in text and ref in text
    unpublished = as_json(data_dir, "leaks", "regulator", "publish", ref, "--org", AUTHORITY, "--unpublish")
    assert unpublished["published"] is False


def test_bad_files_and_the_wrong_organization_exit_2_naming_the_problem(data_dir: Path, tmp_path: Path) -> None:
    bad = run(data_dir, "leaks", "incidents", "file", "--org", BANK, "--from",
              str(write(tmp_path / "r.yaml", a_report(nature="aliens"))), check=False)
    assert bad.returncode == 2 and "[nature]" in bad.stderr and PERSON not in bad.stderr
    old = (datetime.now(timezone.utc) - timedelta(days=12)).isoformat()
    late = run(data_dir, "leaks", "incidents", "file", "--org", BANK, "--from",
               str(write(tmp_path / "late.yaml", a_report(discovered_at=old))), check=False)
    assert late.returncode == 2 and "[late_reason]" in late.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: x\nnature: [unclosed\n", encoding="utf-8")
    r = run(data_dir, "leaks", "incidents", "file", "--org", BANK, "--from", str(broken), check=False)
    assert r.returncode == 2 and "broken.yaml:" in r.stderr
    assert as_json(data_dir, "leaks", "incidents", "list", "--org", BANK) == []
    filed = as_json(data_dir, "leaks", "incidents", "file", "--org", BANK, "--from",
                    str(write(tmp_path / "ok.yaml", a_report(discovered_at=old, late_reason="Found by an audit."))))
    assert filed["late"] is True
    # an operator is not the authorized body; the authority does not see the bank's incidents as its own
    r = run(data_dir, "leaks", "regulator", "list", "--org", BANK, check=False)
    assert r.returncode == 2 and "regulator" in r.stderr
    r = run(data_dir, "leaks", "incidents", "show", filed["reference"], "--org", AUTHORITY, check=False)
    assert r.returncode == 2 and "[incident" in r.stderr
    r = run(data_dir, "leaks", "regulator", "publish", filed["reference"], "--org", AUTHORITY, "--advice-file",
            str(write(tmp_path / "a.yaml", {"kk": "a", "ru": "b", "en": "c"})), check=False)
    assert r.returncode == 2 and "[status]" in r.stderr  # only a verified incident is published
