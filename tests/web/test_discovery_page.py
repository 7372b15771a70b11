"""The Discovery page over real HTTP and in a real browser: the data map, scan jobs, uploads, scan a text."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.discovery import jobs

from .conftest import browser_client, csrf_from, log_in
from .test_browser import CHROMIUM_ARGS, chromium_path, expect, shot
from .test_browser import log_in as browser_log_in

if TYPE_CHECKING:
    from conftest import LiveServer, Tenant  # tests/conftest.py

IIN = "791028302728"
CSV = "id,ИИН,Телефон,диагноз,salary\n" + "".join(f"{i},{IIN},+7 701 234 56 78,J45,100\n" for i in range(8))
TEXT = "Клиент Жаксылыков Ерлан, ИИН 791028302728, тел. 8 (701) 234-56-78, почта erlan@mail.kz"


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    return tmp_path / "srv"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, roots: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0, scan_workers=0,
                    scan_roots=[str(roots / "{bin}")])


def home(roots: Path, tenant: Tenant) -> Path:
    path = roots / tenant.bin
    path.mkdir(parents=True, exist_ok=True)
    (path / "clients.csv").write_text(CSV, encoding="utf-8")
    return path


@contextlib.contextmanager
def signed_in(server: LiveServer, tenant: Tenant, role: str, lang: str = "en") -> Iterator[httpx.Client]:
    with browser_client(server, **{"Accept-Language": lang}) as client:
        _, username, password = tenant.users[role]
        assert log_in(client, username, password).status_code == 303
        yield client


def run_jobs(platform: Platform) -> None:
    worker = jobs.ScanWorker(platform, name="test-worker")
    while worker.run_once() is not None:
        pass


def main_of(html: str) -> str:
    return html.split("<main", 1)[1].split("</main>", 1)[0]


# --- what each role sees ----------------------------------------------------------------------------


@pytest.mark.parametrize("role, sees_map, sees_forms, sees_text_box", [
    ("admin", True, True, True), ("dpo", True, True, True), ("regulator", True, False, True),
    ("reviewer", False, False, True), ("citizen", False, False, False),
])
def test_each_role_sees_what_it_may_use(server: LiveServer, tenant_a: Tenant, role: str, sees_map: bool,
                                        sees_forms: bool, sees_text_box: bool) -> None:
    with signed_in(server, tenant_a, role) as client:
        page = client.get("/discovery")
    assert page.status_code == 200
    # Citizens are not offered operator modules in the navigation (they still get the page, which explains it).
    assert ('aria-current="page"' in page.text) is (role != "citizen")
    body = main_of(page.text)
    assert ("Data map overview" in body) is sees_map
    assert ('action="/discovery/jobs"' in body) is sees_forms
    assert ('action="/discovery/jobs/upload"' in body) is sees_forms
    assert ("Scan a text" in body) is sees_text_box
    assert ("The data map is shown to administrators" in body) is not sees_map
    assert "This module is not yet enabled" not in body and "L-PD-GOV" in body


def test_the_dashboard_says_discovery_is_available(server: LiveServer, tenant_a: Tenant) -> None:
    with signed_in(server, tenant_a, "dpo") as client:
        card = main_of(client.get("/").text).split('href="/discovery"', 1)[1].split("</li>", 1)[0]
    assert "Available" in card


# --- scan jobs from the page ---------------------------------------------------------------------------


def test_a_server_path_scan_is_queued_shown_while_running_and_lands_in_the_map(
        server: LiveServer, platform: Platform, tenant_a: Tenant, roots: Path) -> None:
    folder = home(roots, tenant_a)
    with signed_in(server, tenant_a, "dpo") as client:
        token = csrf_from(client.get("/discovery").text)
        refused = client.post("/discovery/jobs", data={"sources": str(folder)})
        assert refused.status_code == 403
        queued = client.post("/discovery/jobs", data={"sources": f"{folder}\n", "csrf_token": token,
                                                      "identifiers_only": "1"})
        assert queued.status_code == 303
        job_id = int(re.search(r"job=(\d+)", queued.headers["location"]).group(1))  # type: ignore[union-attr]
        page = client.get(queued.headers["location"])
        assert f"Scan job {job_id} was queued." in page.text
        assert 'hx-trigger="every 2s"' in page.text and 'data-status="queued"' in page.text
        fragment = client.get("/discovery/jobs", headers={"HX-Request": "true"})
        assert 'hx-trigger="every 2s"' in fragment.text and "HX-Refresh" not in fragment.headers
        run_jobs(platform)
        fragment = client.get("/discovery/jobs", headers={"HX-Request": "true"})
        assert 'data-status="succeeded"' in fragment.text and "hx-trigger" not in fragment.text
        assert fragment.headers["HX-Refresh"] == "true"  # the page reloads once to show the new map
        assert client.get("/discovery/jobs").status_code == 303  # not a page of its own
        page = client.get("/discovery")
    assert str(folder / "clients.csv") in page.text and 'data-testid="total-sources">1<' in page.text
    assert "Succeeded" in page.text and "hx-trigger" not in page.text


@pytest.mark.parametrize("lang, lines, message", [
    ("en", "/etc", "Line 1 is outside the directories this server may scan."),
    ("ru", "{folder}\nrelative.csv", "Строка 2: путь на сервере должен быть абсолютным (начинаться с /)."),
    ("kk", "{folder}\nftp://x/y", "2-жол осы сервер аша алатын дерекқор URL-і емес."),
    ("en", "  \n ", "Enter at least one path or database URL, one per line."),
])
def test_a_refused_line_is_named_in_the_readers_language_and_nothing_is_queued(
        server: LiveServer, platform: Platform, tenant_a: Tenant, roots: Path, lang: str, lines: str,
        message: str) -> None:
    folder = home(roots, tenant_a)
    with signed_in(server, tenant_a, "admin", lang) as client:
        client.post("/language", data={"lang": lang, "csrf_token": csrf_from(client.get("/discovery").text)})
        token = csrf_from(client.get("/discovery").text)
        page = client.post("/discovery/jobs", data={"sources": lines.format(folder=folder), "csrf_token": token})
    assert page.status_code == 422 and message in page.text
    assert 'aria-invalid="true"' in page.text
    with platform.db.reader(tenant_a.org_id) as s:
        assert jobs.list_jobs(s) == ([], 0)


def test_files_uploaded_from_the_page_are_scanned_and_shown_with_their_fields(
        server: LiveServer, platform: Platform, tenant_a: Tenant) -> None:
    with signed_in(server, tenant_a, "dpo") as client:
        token = csrf_from(client.get("/discovery").text)
        none = client.post("/discovery/jobs/upload", data={"csrf_token": token})
        assert none.status_code == 422 and "Choose at least one file to upload." in none.text
        sent = client.post("/discovery/jobs/upload", data={"csrf_token": token},
                           files=[("files", ("clients.csv", CSV.encode(), "text/csv"))])
        assert sent.status_code == 303
        run_jobs(platform)
        page = client.get("/discovery")
        assert "upload:clients.csv" in page.text
        source_id = re.search(r'href="/discovery/sources/(\d+)"', page.text).group(1)  # type: ignore[union-attr]
        detail = client.get(f"/discovery/sources/{source_id}")
        assert detail.status_code == 200
        assert "name: иин + values: 100% KZ_IIN" in detail.text and "name: диагноз" in detail.text
        assert "Health" in detail.text and "Financial" in detail.text and "<svg" in detail.text
        assert IIN not in detail.text
        assert client.post(f"/discovery/sources/{source_id}/forget", data={}).status_code == 403
        forgotten = client.post(f"/discovery/sources/{source_id}/forget", data={"csrf_token": token})
        assert forgotten.status_code == 303
        assert client.get(f"/discovery/sources/{source_id}").status_code == 404


def test_cancelling_a_job_from_the_page(server: LiveServer, platform: Platform, tenant_a: Tenant,
                                        roots: Path) -> None:
    folder = home(roots, tenant_a)
    with signed_in(server, tenant_a, "dpo") as client:
        token = csrf_from(client.get("/discovery").text)
        client.post("/discovery/jobs", data={"sources": str(folder), "csrf_token": token})
        page = client.get("/discovery")
        job_id = re.search(r'action="/discovery/jobs/(\d+)/cancel"', page.text).group(1)  # type: ignore[union-attr]
        assert client.post(f"/discovery/jobs/{job_id}/cancel", data={"csrf_token": token}).status_code == 303
        again = client.post(f"/discovery/jobs/{job_id}/cancel", data={"csrf_token": token})
        assert again.status_code == 409 and "This scan job has already ended." in again.text
        page = client.get("/discovery")
    assert 'data-status="cancelled"' in page.text and "Cancelled" in page.text


def test_another_organizations_source_and_job_are_not_found(server: LiveServer, platform: Platform,
                                                           tenant_a: Tenant, tenant_b: Tenant, roots: Path) -> None:
    folder = home(roots, tenant_a)
    with signed_in(server, tenant_a, "dpo") as client:
        token = csrf_from(client.get("/discovery").text)
        client.post("/discovery/jobs", data={"sources": str(folder), "csrf_token": token})
    run_jobs(platform)
    with platform.db.reader(tenant_a.org_id) as s:
        job_id = jobs.list_jobs(s)[0][0].id
    with signed_in(server, tenant_b, "dpo") as client:
        token = csrf_from(client.get("/discovery").text)
        page = client.get("/discovery")
        assert "clients.csv" not in page.text
        assert client.get("/discovery/sources/1").status_code == 404
        assert client.post("/discovery/sources/1/forget", data={"csrf_token": token}).status_code == 404
        assert client.post(f"/discovery/jobs/{job_id}/cancel", data={"csrf_token": token}).status_code == 404


def test_map_filters_narrow_the_list_and_unknown_values_are_ignored(server: LiveServer, platform: Platform,
                                                                    tenant_a: Tenant, roots: Path) -> None:
    folder = home(roots, tenant_a)
    (folder / "plain.txt").write_text("nothing personal\n", encoding="utf-8")
    (folder / "ids.txt").write_text(f"ИИН {IIN}\n", encoding="utf-8")
    with signed_in(server, tenant_a, "regulator") as client:
        with platform.db.transaction(tenant_a.org_id) as s:
            jobs.submit(platform, s, actor="user:1", sources=[str(folder)], options={"identifiers_only": True})
        run_jobs(platform)
        sensitive = main_of(client.get("/discovery", params={"sensitive": "yes"}).text)
        assert "clients.csv" in sensitive and "ids.txt" not in sensitive
        text_only = main_of(client.get("/discovery", params={"kind": "text", "type": "KZ_IIN"}).text)
        assert "ids.txt" in text_only and "clients.csv" not in text_only
        assert "export?format=csv&amp;kind=text&amp;entity_type=KZ_IIN" in text_only
        assert client.get("/discovery", params={"category": "bogus", "type": "NOPE", "page": "2"}).status_code == 200
        assert client.get("/discovery", params={"page": "0"}).status_code == 400
        assert client.get("/discovery/sources/99999999999999999999").status_code == 400


# --- scan a text ----------------------------------------------------------------------------------


def test_a_pasted_text_comes_back_highlighted_and_is_not_logged(server: LiveServer, tenant_a: Tenant,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with signed_in(server, tenant_a, "reviewer") as client:
        token = csrf_from(client.get("/discovery").text)
        assert client.post("/discovery/scan-text", data={"text": TEXT}).status_code == 403
        page = client.post("/discovery/scan-text", data={"text": TEXT, "csrf_token": token})
        empty = client.post("/discovery/scan-text", data={"text": "   ", "csrf_token": token})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    marks = re.findall(r'<mark class="pd pd-(\w+)" tabindex="0" data-type="(\w+)" title="([^"]+)">([^<]+)</mark>',
                       page.text)
    assert {m[1] for m in marks} >= {"KZ_IIN", "PHONE_NUMBER", "EMAIL_ADDRESS"}
    iin = next(m for m in marks if m[1] == "KZ_IIN")
    assert iin[0] == "identifying" and iin[3] == IIN and re.fullmatch(r"KZ_IIN · Identifying · [01]\.\d\d", iin[2])
    assert empty.status_code == 422 and "Paste a text to scan." in empty.text
    assert IIN not in caplog.text and "Жаксылыков" not in caplog.text


def test_citizens_cannot_scan_a_text(server: LiveServer, tenant_a: Tenant) -> None:
    with signed_in(server, tenant_a, "citizen") as client:
        token = csrf_from(client.get("/discovery").text)
        assert client.post("/discovery/scan-text", data={"text": TEXT, "csrf_token": token}).status_code == 403


# --- in a real browser ------------------------------------------------------------------------------


def in_browser(story: Callable[[Any], None]) -> None:
    """Run ``story(page)`` in headless Debian Chromium, like ``test_browser.py``'s ``page`` fixture, but with a
    Playwright of its own in a thread of its own: importing that module's session ``browser`` fixture here
    would start a second sync Playwright in the thread that already runs the first one, which fails."""
    path = chromium_path()
    if path is None:
        pytest.skip("Debian chromium not installed; `make test` installs it when run as root")
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sync_api.sync_playwright() as playwright:
                chromium = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
                context = chromium.new_context(locale="en-US", viewport={"width": 1280, "height": 860})
                context.set_default_timeout(15_000)
                tab = context.new_page()
                tab.on("pageerror", lambda exc: errors.append(str(exc)))
                tab.on("console", lambda msg: errors.append(msg.text)
                       if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
                try:
                    story(tab)
                finally:
                    context.close()
                    chromium.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's own thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="discovery-browser")
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the browser story did not finish"
    if failure:
        raise failure[0]
    assert not errors, f"JavaScript or CSP errors in the page: {errors}"


@pytest.mark.browser
def test_a_dpo_uploads_a_file_watches_the_job_and_explores_the_map(server: LiveServer, platform: Platform,
                                                                   tenant_a: Tenant, tmp_path: Path) -> None:
    in_browser(lambda page: _upload_watch_and_explore(page, server, platform, tenant_a, tmp_path))


def _upload_watch_and_explore(page: Any, server: LiveServer, platform: Platform, tenant_a: Tenant,
                              tmp_path: Path) -> None:
    upload = tmp_path / "clients.csv"
    upload.write_text(CSV, encoding="utf-8")
    _, username, password = tenant_a.users["dpo"]
    browser_log_in(page, server, username, password)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Discovery").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Discovery")
    expect(page.get_by_text("The data map is empty.")).to_be_visible()
    page.get_by_label("Files", exact=True).set_input_files(str(upload))
    page.get_by_role("button", name="Upload and scan").click()
    expect(page.get_by_role("status")).to_contain_text("was queued")
    expect(page.locator("#jobs-list tr[data-status='queued']")).to_have_count(1)
    shot(page, "discovery-01-queued")
    run_jobs(platform)  # the page polls the job list and reloads itself when the job has ended
    expect(page.get_by_test_id("total-sources")).to_have_text("1", timeout=20_000)
    expect(page.locator("#jobs-list tr[data-status='succeeded']")).to_have_count(1)
    expect(page.locator(".dm-bars")).to_be_visible()
    shot(page, "discovery-02-map")
    page.get_by_role("link", name="upload:clients.csv").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("upload:clients.csv")
    fields = page.get_by_test_id("fields")
    expect(fields).to_contain_text("name: диагноз")
    expect(fields).to_contain_text("name: иин + values: 100% KZ_IIN")
    shot(page, "discovery-03-source")
    page.get_by_role("link", name="Data map").first.click()
    page.get_by_label("Text", exact=True).fill(TEXT)
    page.get_by_role("button", name="Find personal data").click()  # htmx swaps the result in
    mark = page.locator("mark[data-type='KZ_IIN']")
    expect(mark).to_have_text(IIN)
    expect(mark).to_have_attribute("title", re.compile(r"^KZ_IIN · Identifying · "))
    expect(page.get_by_test_id("scanned-text")).to_contain_text("Клиент")
    shot(page, "discovery-04-scan-text")
