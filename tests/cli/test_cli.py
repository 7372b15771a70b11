"""The `qorgau` command, run as a real subprocess with its own data dir."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_bin

QORGAU = [sys.executable, "-m", "qorgau.cli"]


def run(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QORGAU_DATA_DIR": str(data_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("QORGAU_DATABASE_URL", None)
    proc = subprocess.run(QORGAU + list(args), env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    run(d, "init", "--demo")
    return d


def test_version_and_help_on_every_command() -> None:
    assert re.match(r"qorgau \d+\.\d+", run(Path("/nonexistent"), "--version").stdout)
    for cmd in (["--help"], ["init", "--help"], ["serve", "--help"], ["db", "upgrade", "--help"],
                ["users", "create", "--help"], ["users", "list", "--help"], ["keys", "create", "--help"],
                ["keys", "list", "--help"], ["keys", "revoke", "--help"], ["audit", "verify", "--help"],
                ["audit", "proof", "--help"], ["master-key", "rotate", "--help"], ["orgs", "create", "--help"]):
        proc = run(Path("/nonexistent"), *cmd)
        assert "Usage" in proc.stdout and len(proc.stdout.strip().splitlines()) > 3, cmd


def test_init_creates_a_wal_database_and_a_private_master_key(data_dir: Path) -> None:
    assert oct((data_dir / "master.key").stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(data_dir / "qorgau.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_init_with_demo_prints_one_time_passwords_once(tmp_path: Path) -> None:
    first = run(tmp_path / "v", "init", "--demo").stdout
    assert "DEMO" in first and "demo-admin" in first and "demo-citizen" in first
    again = run(tmp_path / "v", "init", "--demo").stdout
    assert "already exists" in again


def test_two_instances_never_touch_each_other(tmp_path: Path) -> None:
    run(tmp_path / "one", "init")
    run(tmp_path / "two", "init")
    run(tmp_path / "one", "orgs", "create", "--name", "Only In One", "--bin", make_bin(7))
    assert "Only In One" in run(tmp_path / "one", "orgs", "list").stdout
    assert "Only In One" not in run(tmp_path / "two", "orgs", "list").stdout


def test_commands_before_init_explain_what_to_run(tmp_path: Path) -> None:
    proc = run(tmp_path / "empty", "users", "list", check=False)
    assert proc.returncode == 1 and "qorgau init" in proc.stderr


def test_users_and_api_keys_lifecycle(data_dir: Path) -> None:
    bin_ = "940140000385"
    created = run(data_dir, "users", "create", "--org", bin_, "--username", "asel", "--name", "Асель",
                  "--role", "dpo", "--role", "reviewer").stdout
    assert "one-time password" in created
    assert "asel" in run(data_dir, "users", "list", "--org", bin_).stdout
    key = run(data_dir, "keys", "create", "--org", bin_, "--name", "scoring", "--role", "reviewer").stdout
    secret = re.search(r"qk_\S+", key).group()
    listing = run(data_dir, "keys", "list").stdout
    assert "scoring" in listing and secret.split("_")[-1] not in listing
    key_id = re.search(r"API key (\d+) created", key).group(1)
    run(data_dir, "keys", "revoke", key_id)
    assert re.search(rf"^│?\s*{key_id}\s.*\d{{4}}-\d\d-\d\d \d\d:\d\d\s*│?\s*\d{{4}}", run(data_dir, "keys", "list").stdout,
                     re.M)


def test_bad_input_names_the_field_and_exits_2(data_dir: Path) -> None:
    proc = run(data_dir, "orgs", "create", "--name", "X", "--bin", "123", check=False)
    assert proc.returncode == 2 and "bin" in proc.stderr.lower()
    proc = run(data_dir, "users", "create", "--org", "940140000385", "--username", "zz", "--name", "Z",
               "--role", "wizard", check=False)
    assert proc.returncode == 2 and "username" in proc.stderr or "role" in proc.stderr


def test_audit_verify_proof_and_tamper_detection(data_dir: Path) -> None:
    ok = run(data_dir, "audit", "verify").stdout
    assert "intact" in ok
    proof = run(data_dir, "audit", "proof", "3").stdout
    assert '"verified": true' in proof
    with sqlite3.connect(data_dir / "qorgau.db") as conn:
        conn.execute("DROP TRIGGER audit_entries_no_update")
        conn.execute("UPDATE audit_entries SET action = 'user.delete' WHERE id = 3")
    bad = run(data_dir, "audit", "verify", check=False)
    assert bad.returncode == 3 and "TAMPERED" in bad.stdout and "entry 3" in bad.stdout
    assert run(data_dir, "audit", "proof", "3", check=False).returncode == 3


def test_master_key_rotation_keeps_everything_readable(data_dir: Path) -> None:
    before = run(data_dir, "master-key", "status").stdout.split()[0]
    out = run(data_dir, "master-key", "rotate").stdout
    assert "re-wrapped" in out and before in out
    after = run(data_dir, "master-key", "status").stdout
    assert before not in after and "(active)" in after
    assert "intact" in run(data_dir, "audit", "verify").stdout  # the STH signing key still unwraps


def test_db_upgrade_is_idempotent(data_dir: Path) -> None:
    from qorgau.core import migrate
    from qorgau.core.db import make_engine

    run(data_dir, "db", "upgrade")
    head = migrate.head_revision(make_engine("sqlite://"))
    current = run(data_dir, "db", "current").stdout
    assert f"database: {head}; code: {head}" in current


def test_a_bad_setting_is_named_with_its_source(tmp_path: Path) -> None:
    config = tmp_path / "qorgau.toml"
    config.write_text('data_dirr = "/srv"\n')
    env = {**os.environ, "QORGAU_CONFIG": str(config), "QORGAU_PORT": "eighty"}
    proc = subprocess.run(QORGAU + ["orgs", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "data_dirr" in proc.stderr and "port" in proc.stderr and str(config) in proc.stderr.replace("\n", "")
