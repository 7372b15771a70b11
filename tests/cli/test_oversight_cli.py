"""``qorgau ai-systems``, ``qorgau decisions`` and ``qorgau decision-types``, run as real subprocesses: register a
system, set a policy, review the queue as a named reviewer, sweep deadlines, read the reviewer statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qorgau.consent.decision import SubjectRef
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.oversight.service import Factor, Submission, oversight_for

QORGAU = [sys.executable, "-m", "qorgau.cli"]
BIN = "940140000385"
IIN = "850505400018"


def run(data_dir: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QORGAU_DATA_DIR": str(data_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("QORGAU_DATABASE_URL", None)
    proc = subprocess.run(QORGAU + list(args), env=env, capture_output=True, text=True, timeout=120, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    run(d, "init")
    run(d, "orgs", "create", "--name", "Bank", "--bin", BIN)
    run(d, "users", "create", "--org", BIN, "--username", "aigerim", "--name", "Reviewer", "--role", "reviewer")
    run(d, "users", "create", "--org", BIN, "--username", "dana", "--name", "DPO", "--role", "dpo")
    run(d, "consent", "legal-bases", "add", "--org", BIN, "--kind", "contract", "--purpose", "credit.scoring",
        "--reference", "Loan agreement, art. 7")
    return d


def submit(data_dir: Path, key: str, outcome: int = 500000) -> int:
    """An AI system's submission, through the service (as the API would make it)."""
    platform = Platform.open(Settings(data_dir=data_dir))
    try:
        with platform.db.reader() as s:
            from qorgau.core import auth

            org_id = auth.find_organization_by_bin(s, BIN).id  # type: ignore[union-attr]
        with platform.db.transaction(org_id) as s:
            return oversight_for(platform).submit(s, Submission(
                system="scoring-v2", idempotency_key=key, subject=SubjectRef(identifier_type="KZ_IIN", identifier=IIN),
                decision_type="credit_limit", proposed_outcome=outcome, factors=[Factor("income", 0.7, "Income")],
                model_version="m-1", confidence=0.9), actor="apikey:1").decision.id
    finally:
        platform.close()


def test_register_set_policy_review_and_read_the_statistics(data_dir: Path) -> None:
    out = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "scoring-v2", "--name", "Credit scoring",
              "--risk-class", "high", "--autonomy", "medium", "--webhook-url", "https://bank.example/hooks/ai").stdout
    assert "scoring-v2 registered" in out and "whsec_" in out
    secret = out.split("(shown once): ")[1].strip()
    listed = run(data_dir, "ai-systems", "list", "--org", BIN).stdout
    assert "scoring-v2" in listed and "high" in listed and secret not in listed
    rotated = run(data_dir, "ai-systems", "rotate-secret", "scoring-v2", "--org", BIN).stdout
    assert "whsec_" in rotated and secret not in rotated

    assert "credit_limit" in run(data_dir, "decision-types", "list", "--org", BIN, "--lang", "kk").stdout
    out = run(data_dir, "decision-types", "set", "credit_limit", "--org", BIN, "--review-hours", "8",
              "--on-timeout", "reject").stdout
    assert "8 h" in out and "reject" in out
    types = {t["code"]: t for t in json.loads(run(data_dir, "decision-types", "list", "--org", BIN, "--json").stdout)}
    assert types["credit_limit"]["source"] == "organization" and types["credit_limit"]["review_hours"] == 8

    first, second = submit(data_dir, "a-1"), submit(data_dir, "a-2", 700000)
    queue = run(data_dir, "decisions", "list", "--org", BIN).stdout
    assert "2 open" in queue and "pending" in queue and IIN not in queue
    page = json.loads(run(data_dir, "decisions", "list", "--org", BIN, "--json", "--limit", "1").stdout)
    assert [d["id"] for d in page["items"]] == [first] and page["next_cursor"] and page["total"] == 2

    shown = run(data_dir, "decisions", "show", str(first), "--org", BIN, "--reviewer", "aigerim").stdout
    assert "pending" in shown and "Income" in shown and "ps_" in shown and IIN not in shown
    out = run(data_dir, "decisions", "review", str(first), "--org", BIN, "--reviewer", "aigerim", "--action",
              "approve", "--rationale", "income confirmed").stdout
    assert f"decision {first}: approved (effective)" in out
    out = run(data_dir, "decisions", "review", str(second), "--org", BIN, "--reviewer", "dana", "--action", "amend",
              "--outcome", "300000", "--rationale", "smaller limit").stdout
    assert "amended" in out
    detail = json.loads(run(data_dir, "decisions", "show", str(first), "--org", BIN, "--json").stdout)
    assert detail["status"] == "approved" and detail["reviews"][0]["seconds_spent"] is not None
    assert json.loads(run(data_dir, "decisions", "show", str(second), "--org", BIN, "--json").stdout)[
        "final_outcome"] == 300000

    stats = json.loads(run(data_dir, "decisions", "stats", "--org", BIN, "--json").stdout)
    assert sorted((s["reviewed"], s["approvals"], s["amendments"]) for s in stats) == [(1, 0, 1), (1, 1, 0)]
    assert "credit_limit" in run(data_dir, "decisions", "stats", "--org", BIN).stdout
    assert "nothing was due" in run(data_dir, "decisions", "sweep").stdout or "escalated: 0" in run(
        data_dir, "decisions", "sweep", "--org", BIN).stdout
    every = run(data_dir, "decisions", "list", "--org", BIN, "--all").stdout
    assert "approved" in every and "amended" in every


def test_bad_input_and_conflicts_are_one_line_naming_the_field(data_dir: Path) -> None:
    run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "scoring-v2", "--name", "Credit scoring",
        "--risk-class", "high", "--autonomy", "medium")
    bad = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "other", "--name", "X", "--risk-class",
              "extreme", "--autonomy", "low", check=False)
    assert bad.returncode == 2 and "[risk_class]" in bad.stderr
    again = run(data_dir, "ai-systems", "register", "--org", BIN, "--code", "scoring-v2", "--name", "X",
                "--risk-class", "high", "--autonomy", "low", check=False)
    assert again.returncode == 2 and "[code]" in again.stderr
    no_hook = run(data_dir, "ai-systems", "rotate-secret", "scoring-v2", "--org", BIN, check=False)
    assert no_hook.returncode == 2 and "[webhook_url]" in no_hook.stderr
    schema = run(data_dir, "decision-types", "set", "credit_limit", "--org", BIN, "--schema", "{not json", check=False)
    assert schema.returncode == 2 and "[--schema]" in schema.stderr
    nothing = run(data_dir, "decision-types", "set", "credit_limit", "--org", BIN, check=False)
    assert nothing.returncode == 2

    decision = submit(data_dir, "b-1")
    unknown = run(data_dir, "decisions", "review", str(decision), "--org", BIN, "--reviewer", "nobody", "--action",
                  "approve", check=False)
    assert unknown.returncode == 2 and "[username]" in unknown.stderr
    action = run(data_dir, "decisions", "review", str(decision), "--org", BIN, "--reviewer", "aigerim", "--action",
                 "shrug", check=False)
    assert action.returncode == 2 and "[action]" in action.stderr
    stale = run(data_dir, "decisions", "review", str(decision), "--org", BIN, "--reviewer", "aigerim", "--action",
                "approve", "--rationale", "ok", "--version", "7", check=False)
    assert stale.returncode == 2 and "[expected_version]" in stale.stderr and "reload" in stale.stderr
    run(data_dir, "decisions", "review", str(decision), "--org", BIN, "--reviewer", "aigerim", "--action", "reject",
        "--rationale", "arrears")
    done = run(data_dir, "decisions", "review", str(decision), "--org", BIN, "--reviewer", "dana", "--action",
               "approve", "--rationale", "ok", check=False)
    assert done.returncode == 2 and "already rejected" in done.stderr
    missing = run(data_dir, "decisions", "show", "999", "--org", BIN, check=False)
    assert missing.returncode == 2 and "[decision_id]" in missing.stderr
