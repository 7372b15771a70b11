"""``qorgau consent``, run as a real subprocess: purposes, counterparties, give, check, withdraw, receipts,
the dispatcher — identifiers only ever through stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QORGAU = [sys.executable, "-m", "qorgau.cli"]
BIN = "940140000385"
IIN = "791028302728"


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
    return d


def test_give_check_withdraw_and_verify_the_receipt(data_dir: Path, tmp_path: Path) -> None:
    out = run(data_dir, "consent", "counterparties", "add", "--org", BIN, "--name", "SMS Gateway", "--kind",
              "processor", "--bin", "990140004654", "--webhook-url", "https://sms.example/hook").stdout
    assert "whsec_" in out and "qcp_" in out
    assert "SMS Gateway" in run(data_dir, "consent", "counterparties", "list", "--org", BIN).stdout
    evidence = tmp_path / "signed.pdf"
    evidence.write_bytes(b"%PDF signed consent")
    out = run(data_dir, "consent", "give", "--org", BIN, "--iin", "-", "--purpose", "marketing.sms", "--data",
              "PHONE_NUMBER,EMAIL_ADDRESS", "--channel", "written", "--counterparty", "1", "--evidence-file",
              str(evidence), stdin=f"{IIN}\nАсқар Серікұлы\n").stdout
    assert "consent 1 recorded" in out and IIN not in out
    decision = run(data_dir, "consent", "check", "--org", BIN, "--iin", "-", "--purpose", "marketing.sms",
                   "--data", "PHONE_NUMBER", stdin=IIN)
    assert json.loads(decision.stdout)["allow"] is True
    listed = run(data_dir, "consent", "list", "--org", BIN).stdout
    assert "marketing.sms" in listed and "active" in listed
    receipt = tmp_path / "consent.json"
    run(data_dir, "consent", "receipt", "show", "1", "--org", BIN, "--out", str(receipt))
    assert json.loads(receipt.read_text())["receipt"]["evidence"]["sha256"]
    withdrawal = tmp_path / "withdrawal.json"
    out = run(data_dir, "consent", "withdraw", "1", "--org", BIN, "--channel", "written", "--receipt-out",
              str(withdrawal)).stdout
    assert "withdrawn" in out and "crypto-shredded" in out
    denied = run(data_dir, "consent", "check", "--org", BIN, "--iin", "-", "--purpose", "marketing.sms", stdin=IIN,
                 check=False)
    assert denied.returncode == 3 and json.loads(denied.stdout)["allow"] is False
    ok = run(data_dir, "consent", "receipt", "verify", str(withdrawal), "--platform-key")
    assert "valid" in ok.stdout
    run(data_dir, "consent", "receipt", "verify", str(receipt), "--platform-key")
    doc = json.loads(withdrawal.read_text())
    doc["receipt"]["outcome"] = "withdrawal_refused"
    withdrawal.write_text(json.dumps(doc))
    bad = run(data_dir, "consent", "receipt", "verify", str(withdrawal), check=False)
    assert bad.returncode == 3 and "FAIL" in bad.stdout
    again = run(data_dir, "consent", "withdraw", "1", "--org", BIN).stdout
    assert "already" in again


def test_bad_input_is_one_line_naming_the_field(data_dir: Path) -> None:
    bad_iin = run(data_dir, "consent", "give", "--org", BIN, "--iin", "-", "--purpose", "marketing.sms", "--data",
                  "PHONE_NUMBER", "--channel", "written", stdin="791028302729\n", check=False)
    assert bad_iin.returncode == 2 and "[subject.identifier]" in bad_iin.stderr and "791028302729" not in bad_iin.stderr
    unknown = run(data_dir, "consent", "give", "--org", BIN, "--iin", "-", "--purpose", "astrology", "--data",
                  "PHONE_NUMBER", "--channel", "written", stdin=IIN, check=False)
    assert unknown.returncode == 2 and "[purpose]" in unknown.stderr
    argv = run(data_dir, "consent", "check", "--org", BIN, "--iin", IIN, "--purpose", "marketing.sms", check=False)
    assert argv.returncode == 2 and "stdin" in argv.stderr
    no_org = run(data_dir, "consent", "check", "--org", "990140004654", "--iin", "-", "--purpose", "marketing.sms",
                 stdin=IIN, check=False)
    assert no_org.returncode == 2 and "--org" in no_org.stderr


def test_purposes_import_reports_file_and_line(data_dir: Path, tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("purposes:\n  - code: loyalty\n    names: {kk: Адалдық бағдарламасы, ru: Программа лояльности, "
                    "en: Loyalty programme}\n  - code: loyalty.points\n    names: {kk: Ұпайлар, ru: Баллы, en: Points}\n",
                    encoding="utf-8")
    assert "imported 2 purposes" in run(data_dir, "consent", "purposes", "import", str(good), "--org", BIN).stdout
    assert "loyalty.points" in run(data_dir, "consent", "purposes", "list", "--org", BIN).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("purposes:\n  - code: ok\n    names: {kk: a, ru: b, en: c}\n  - code: Bad Code\n    names: {}\n")
    proc = run(data_dir, "consent", "purposes", "import", str(bad), "--org", BIN, check=False)
    assert proc.returncode == 2 and "bad.yaml:4:" in proc.stderr


def test_the_dispatcher_runs_one_round(data_dir: Path) -> None:
    proc = run(data_dir, "consent", "dispatcher", "--once")
    assert "0 messages tried" in proc.stdout
    assert "Usage" in run(data_dir, "consent", "dispatcher", "--help").stdout
