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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from qorgau.core import auth
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.identifiers import synthetic_kz_number

from _schema_template import SchemaTemplate, fresh_postgres_schema

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
    """An empty database of the test's own: a file under tmp_path, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'qorgau.db'}"
        return
    # One schema per test keeps PostgreSQL tests as isolated as SQLite's temp files.
    assert PG_URL is not None
    with fresh_postgres_schema(PG_URL) as (url, _schema):
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0)


# Set to 1 to have every ``platform`` run the real migrations instead of copying the session's template.
MIGRATE_EACH_TEST = os.environ.get("QORGAU_TEST_MIGRATE_EACH_TEST") == "1"


@pytest.fixture(scope="session")
def schema_template(tmp_path_factory: pytest.TempPathFactory) -> SchemaTemplate:
    """The migrated schema, built once per session (per backend, on first use); see tests/_schema_template.py."""
    return SchemaTemplate(tmp_path_factory.mktemp("schema-template"), PG_URL)


@pytest.fixture
def platform(request: pytest.FixtureRequest, settings: Settings,
             schema_template: SchemaTemplate) -> Iterator[Platform]:
    """An initialized platform on the test's own database. The schema comes from the session's migrated
    template (when the database is the test's fresh ``database_url``); ``Platform.initialize`` still does the
    rest per test: data dir, master key, audit state, signing key. ``migrated_platform`` runs the migrations."""
    if (not MIGRATE_EACH_TEST and "database_url" in request.fixturenames
            and settings.database_url == request.getfixturevalue("database_url")):
        schema_template.provision(settings.database_url)
    p = Platform.initialize(settings)
    yield p
    p.close()


@pytest.fixture
def migrated_platform(settings: Settings) -> Iterator[Platform]:
    """Like ``platform``, but the schema is built by running every Alembic migration on the empty database."""
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
