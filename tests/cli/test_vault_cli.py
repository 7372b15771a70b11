"""`qorgau vault …` as a real subprocess: values from stdin, re-identification, shred, offline certificate checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_bin

QORGAU = [sys.executable, "-m", "qorgau.cli"]
IIN = "791028302728"
IIN_2 = "061211600012"
BIN = make_bin(31)


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
    run(d, "orgs", "create", "--name", "Vault Org", "--bin", BIN)
    return d


def test_tokenize_reads_values_from_stdin_and_reports_bad_lines_by_number(data_dir: Path) -> None:
    proc = run(data_dir, "vault", "tokenize", "--org", BIN, "-", stdin=f"{IIN}\n\n791028302729\n{IIN_2}\n", check=False)
    assert proc.returncode == 4
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("ps_") and lines[1] == "" and lines[2].startswith("ps_")
    assert "line 3:" in proc.stderr and "check digit" in proc.stderr and "791028302729" not in proc.stderr
    single = run(data_dir, "vault", "tokenize", "--org", BIN, "7910 2830 2728").stdout.strip()
    assert single == lines[0]
    looked = run(data_dir, "vault", "lookup", "--org", BIN, "-", stdin=IIN + "\n").stdout.split()
    assert looked[1] == lines[0]
    missing = run(data_dir, "vault", "lookup", "--org", BIN, "-", stdin="990101300005\n", check=False)
    assert missing.returncode == 4 and "not in the vault" in missing.stderr
    phone = run(data_dir, "vault", "tokenize", "--org", BIN, "--type", "PHONE_NUMBER", "-", stdin="8 701 234 56 78\n")
    assert phone.stdout.startswith("ps_")


def test_reidentify_shred_and_verify_the_certificate_offline(data_dir: Path, tmp_path: Path) -> None:
    first, second = run(data_dir, "vault", "tokenize", "--org", BIN, "-", stdin=f"{IIN}\n{IIN_2}\n").stdout.split()
    one = json.loads(run(data_dir, "vault", "detokenize", "--org", BIN, "--purpose", "customer-request", first).stdout)
    assert one == {"pseudonym": first, "status": "found", "identifiers": {"KZ_IIN": [IIN]}}
    many = run(data_dir, "vault", "detokenize", "--org", BIN, "--purpose", "audit", "-",
               stdin=f"{first}\n{second}\nps_{'z' * 26}\n", check=False)
    assert many.returncode == 4 and "line 3:" in many.stderr
    statuses = [json.loads(line)["status"] for line in many.stdout.splitlines()]
    assert statuses == ["found", "found", "unknown"]
    refused = run(data_dir, "vault", "detokenize", "--org", BIN, "--purpose", "Free text, please", first, check=False)
    assert refused.returncode == 2 and "purpose" in refused.stderr

    certificate = tmp_path / "cert.json"
    shredded = run(data_dir, "vault", "shred", "--org", BIN, "--reason", "consent withdrawn", first, "-o", str(certificate))
    assert "erased" in shredded.stderr and json.loads(certificate.read_text())["certificate"]["pseudonym"] == first
    gone = run(data_dir, "vault", "detokenize", "--org", BIN, "--purpose", "audit", first, check=False)
    assert gone.returncode == 2 and "erased on" in gone.stderr

    # Offline: no data dir at all.
    offline = run(tmp_path / "nowhere", "vault", "verify-certificate", str(certificate))
    assert "VALID" in offline.stdout and "not pinned" in offline.stderr
    keys = dict(line.split(": ") for line in run(data_dir, "vault", "keys").stdout.strip().splitlines())
    cert_key = next(v.strip() for k, v in keys.items() if k.startswith("certificate"))
    audit_key = next(v.strip() for k, v in keys.items() if k.startswith("audit"))
    pinned = run(tmp_path / "nowhere", "vault", "certificate", "verify", str(certificate),
                 "--certificate-key", cert_key, "--audit-key", audit_key)
    assert "VALID" in pinned.stdout and "not pinned" not in pinned.stderr
    wrong_pin = run(tmp_path / "nowhere", "vault", "certificate", "verify", str(certificate),
                    "--certificate-key", "00" * 32, check=False)
    assert wrong_pin.returncode == 3 and "INVALID" in wrong_pin.stdout

    doc = json.loads(certificate.read_text())
    doc["certificate"]["erased_at"] = "2020-01-01T00:00:00+00:00"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    bad = run(tmp_path / "nowhere", "vault", "verify-certificate", str(tampered), check=False)
    assert bad.returncode == 3 and "INVALID" in bad.stdout
    from_stdin = run(tmp_path / "nowhere", "vault", "verify-certificate", "-", stdin=certificate.read_text())
    assert "VALID" in from_stdin.stdout

    cert_id = doc["certificate"]["id"]
    assert cert_id in run(data_dir, "vault", "certificate", "list", "--org", BIN).stdout
    assert run(data_dir, "vault", "certificate", "show", "--org", BIN, cert_id).stdout == certificate.read_text()
    stats = json.loads(run(data_dir, "vault", "stats", "--org", BIN, "--json").stdout)
    assert (stats["subjects"], stats["erased"], stats["certificates"]) == (2, 1, 1)
    assert stats["reidentifications"] == {"customer-request": 1, "audit": 2}
    log = run(data_dir, "audit", "log", "--limit", "50").stdout
    assert "vault.shred" in log and "vault.detokenize" in log and IIN not in log


def test_a_wrong_master_key_file_is_refused_at_start_with_a_clear_message(data_dir: Path, tmp_path: Path) -> None:
    run(data_dir, "vault", "tokenize", "--org", BIN, IIN)
    key_file = data_dir / "master.key"
    other = tmp_path / "other"
    run(other, "init")
    key_file.write_text((other / "master.key").read_text())
    proc = run(data_dir, "vault", "stats", "--org", BIN, check=False)
    assert proc.returncode == 1
    assert "wrong or replaced master key file" in proc.stderr and "Traceback" not in proc.stderr


def test_help_for_every_vault_command() -> None:
    for cmd in (["vault", "--help"], ["vault", "tokenize", "--help"], ["vault", "detokenize", "--help"],
                ["vault", "lookup", "--help"], ["vault", "shred", "--help"], ["vault", "stats", "--help"],
                ["vault", "certificate", "show", "--help"], ["vault", "certificate", "verify", "--help"],
                ["vault", "verify-certificate", "--help"], ["vault", "keys", "--help"]):
        proc = run(Path("/nonexistent"), *cmd)
        assert "Usage" in proc.stdout, cmd
