"""Shared fixtures: a real platform (SQLite, and PostgreSQL when QORGAU_TEST_DATABASE_URL is set),
organizations and users built through the service API, and a live HTTP server on a free port."""

from __future__ import annotations

import os

# Real Argon2id with minimal parameters for the thousands of test users (qorgau.core.auth._make_hasher);
# set before qorgau is imported, and inherited by the CLI and server processes tests start.
os.environ.setdefault("QORGAU_TEST_FAST_PASSWORD_HASHING", "1")
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from qorgau.core import auth
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings, normalize_database_url
from qorgau.identifiers import synthetic_kz_number

PG_URL = os.environ.get("QORGAU_TEST_DATABASE_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def make_bin(serial: int, year_month: str = "0501", kind: str = "40") -> str:
    """A checksum-valid BIN: YYMM, resident head office, a serial, and its check digit."""
    return synthetic_kz_number(year_month + kind, serial)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("QORGAU_TEST_DATABASE_URL is not set (CI sets it; PostgreSQL variant skipped)")
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'qorgau.db'}"
        return
    # One schema per test keeps PostgreSQL tests as isolated as SQLite's temp files.
    assert PG_URL is not None
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalize_database_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield normalize_database_url(PG_URL) + f"{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0)


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    p = Platform.initialize(settings)
    yield p
    p.close()


@dataclass
class Tenant:
    """An organization with one user per role and an admin API key, all made through the services."""

    org_id: int
    bin: str
    users: dict[str, tuple[int, str, str]]  # role -> (user id, username, password)
    api_key: str
    api_key_id: int


def make_tenant(platform: Platform, label: str, serial: int) -> Tenant:
    bin_ = make_bin(serial)
    users: dict[str, tuple[int, str, str]] = {}
    with platform.db.transaction() as s:
        org = auth.create_organization(s, name=f"Org {label}", bin=bin_, actor="test")
        for role in auth.ROLE_NAMES:
            password = f"{label}-{role}-password-1"
            user, _ = auth.create_user(s, organization_id=org.id, username=f"{label}-{role}",
                                       display_name=f"{label} {role}", roles=[role], actor="test", password=password)
            users[role] = (user.id, user.username, password)
        key, secret = auth.create_api_key(s, organization_id=org.id, name=f"{label} admin key",
                                          roles=["admin", "dpo", "reviewer", "regulator"], actor="test")
        return Tenant(org.id, bin_, users, secret, key.id)


def make_authority(platform: Platform, tenant: Tenant) -> Tenant:
    """Register the tenant's organization as the authorized body: its ``regulator`` users and keys then act
    across organizations (trusted lists, sandbox decisions)."""
    with platform.db.transaction() as s:
        auth.set_authority(s, tenant.org_id, True, actor="test")
    return tenant


@pytest.fixture
def tenant_a(platform: Platform) -> Tenant:
    return make_tenant(platform, "alpha", 11)


@pytest.fixture
def tenant_b(platform: Platform) -> Tenant:
    return make_tenant(platform, "beta", 22)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The real ASGI app under uvicorn in a background thread, on loopback."""

    def __init__(self, platform: Platform) -> None:
        from qorgau.api.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(platform)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self, api_key: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def live_server(platform: Platform) -> Iterator[LiveServer]:
    with LiveServer(platform) as server:
        yield server
