"""`qorgau users unlock NAME`: an administrator ends a login lockout (run as a real subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from qorgau.core import audit
from qorgau.core.errors import AuthenticationRequired
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.core.throttle import LoginThrottled, login_throttle_for

from .test_cli import run

USERNAME, PASSWORD = "asel", "asel-password-2026"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    run(d, "init")
    run(d, "orgs", "create", "--name", "Unlock Test", "--bin", "940140000385")
    return d


def _platform(data_dir: Path) -> Platform:
    return Platform.open(Settings(data_dir=data_dir, sth_interval_seconds=0))


def _login(platform: Platform, password: str) -> str:
    throttle = login_throttle_for(platform)
    with platform.db.transaction() as s:
        try:
            throttle.authenticate(s, USERNAME, password, address="203.0.113.9")
        except LoginThrottled:
            return "locked"
        except AuthenticationRequired:
            return "wrong"
    return "ok"


def test_unlock_ends_a_lockout(data_dir: Path) -> None:
    from qorgau.core import auth

    platform = _platform(data_dir)
    try:
        with platform.db.transaction() as s:
            org = auth.find_organization_by_bin(s, "940140000385")
            assert org is not None
            auth.create_user(s, organization_id=org.id, username=USERNAME, display_name="Асель",
                             roles=["dpo"], actor="test", password=PASSWORD)
        assert [_login(platform, "wrong-password-1") for _ in range(5)] == ["wrong"] * 4 + ["locked"]
        assert _login(platform, PASSWORD) == "locked"

        proc = run(data_dir, "users", "unlock", USERNAME.upper())
        assert f"{USERNAME}: unlocked" in proc.stdout

        assert _login(platform, PASSWORD) == "ok"
        again = run(data_dir, "users", "unlock", USERNAME)
        assert "was not locked" in again.stdout
        with platform.db.reader() as s:
            actions = [e.action for e in s.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.id))]
        assert actions.count("auth.login_unlock") == 2 and "auth.login_locked" in actions
    finally:
        platform.close()


def test_unlocking_an_unknown_user_names_the_problem(data_dir: Path) -> None:
    proc = run(data_dir, "users", "unlock", "nobody-at-all", check=False)
    assert proc.returncode == 2
    assert "no user with this username" in proc.stderr and "nobody-at-all" not in proc.stderr


def test_unlock_has_help() -> None:
    proc = run(Path("/nonexistent"), "users", "unlock", "--help")
    assert "lockout" in proc.stdout
