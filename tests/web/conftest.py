"""Web UI fixtures: SQLite only (the pages are thin over services the core tests run on both backends),
a live server, and helpers that log in over real HTTP the way a browser does."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# --- a real browser: Debian's headless Chromium driven by Playwright's sync API ----------------------
# One session-wide Playwright for every module: a second sync Playwright in one process fails, so test
# modules use these fixtures by name and never import them (an import registers a second copy).

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("Debian chromium not installed; `make test` installs it when run as root")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser profile per test, asking for English unless a test switches language."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # 4xx answers (a wrong password, an unknown entry) are expected; script and CSP errors are not.
    tab.on("console", lambda msg: errors.append(msg.text)
           if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    yield tab
    context.close()
    assert not errors, f"JavaScript or CSP errors in the page: {errors}"
