"""Web UI fixtures: SQLite only (the pages are thin over services the core tests run on both backends),
a live server, and helpers that log in over real HTTP the way a browser does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import LiveServer  # tests/conftest.py

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    return live_server


def csrf_from(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def browser_client(server: LiveServer, **headers: str) -> httpx.Client:
    """A cookie-keeping client that does not follow redirects (tests look at each hop)."""
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False, headers=headers)


def log_in(client: httpx.Client, username: str, password: str, next_path: str = "/") -> httpx.Response:
    page = client.get("/login", params={"next": next_path})
    assert page.status_code == 200, page.status_code
    return client.post("/login", data={"username": username, "password": password, "next": next_path,
                                       "csrf_token": csrf_from(page.text)})
