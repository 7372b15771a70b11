"""The upload pages over real HTTP with a login session: form → review (masked) → confirm → result; discard;
CSRF, roles and other organizations refused (SQLite: the pages are thin over the service tested on both)."""

from __future__ import annotations

import re
from contextlib import closing

import httpx
import pytest
from conftest import LiveServer, Tenant
from qorgau.core.platform import Platform
from qorgau.leaks.register import leak_index_for, leak_keys_for

from .ingest_helpers import invalid_iin, make_incident, valid_iins

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _browser(server: LiveServer, tenant: Tenant, role: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
    page = client.get("/login")
    _, username, password = tenant.users[role]
    r = client.post("/login", data={"username": username, "password": password, "next": "/",
                                    "csrf_token": CSRF_FIELD.search(page.text).group(1)})  # type: ignore[union-attr]
    assert r.status_code == 303, r.text[:300]
    return client


def _csrf(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match
    return match.group(1)


def test_upload_review_confirm_in_the_browser(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                              tenant_b: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(12, start=80000)
    data = ("ИИН,email\n" + "".join(f"{iin},x{i}@mail.kz\n" for i, iin in enumerate(iins))
            + f"{invalid_iin(iins[0])},\n").encode("utf-8")
    with closing(_browser(live_server, tenant_a, "dpo")) as c:
        form = c.get(f"/leaks/incidents/{incident}/uploads/new")
        assert form.status_code == 200 and 'data-testid="upload-form"' in form.text
        token = _csrf(form.text)
        refused = c.post(f"/leaks/incidents/{incident}/uploads", data={"csrf_token": "wrong"},
                         files={"file": ("leak.csv", data)})
        assert refused.status_code == 403
        r = c.post(f"/leaks/incidents/{incident}/uploads", data={"csrf_token": token},
                   files={"file": ("leak.csv", data)})
        assert r.status_code == 303, r.text[:500]
        review = c.get(r.headers["location"])
        assert review.status_code == 200
        html = review.text
        assert 'data-testid="count-iin">12<' in html and 'data-testid="count-email">12<' in html
        assert all(iin not in html for iin in iins) and "x1@mail.kz" not in html
        assert 'data-testid="rejected"' in html and 'data-testid="expires"' in html
        upload_id = r.headers["location"].rsplit("/", 1)[1]
        with closing(_browser(live_server, tenant_b, "admin")) as other:
            assert other.get(f"/leaks/uploads/{upload_id}").status_code == 404
            assert other.get(f"/leaks/incidents/{incident}/uploads/new").status_code == 404
        with closing(_browser(live_server, tenant_a, "reviewer")) as reviewer:
            assert reviewer.get(f"/leaks/uploads/{upload_id}").status_code == 403
        done = c.post(f"/leaks/uploads/{upload_id}/confirm", data={"csrf_token": _csrf(html)})
        assert done.status_code == 303 and done.headers["location"].endswith("done=confirmed")
        result = c.get(done.headers["location"])
        assert 'data-testid="committed"' in result.text and 'data-testid="notice"' in result.text
        # a second file, discarded
        r2 = c.post(f"/leaks/incidents/{incident}/uploads", data={"csrf_token": token},
                    files={"file": ("more.txt", iins[1].encode())})
        second = r2.headers["location"].rsplit("/", 1)[1]
        gone = c.post(f"/leaks/uploads/{second}/discard", data={"csrf_token": token})
        assert gone.headers["location"].endswith("done=discarded")
        listing = c.get(f"/leaks/incidents/{incident}/uploads/new").text
        assert upload_id in listing and second in listing
        assert c.post(f"/leaks/incidents/{incident}/uploads", data={"csrf_token": token},
                      files={"file": ("", b"")}).status_code == 422
    index = leak_index_for(platform)
    index.refresh()
    assert index.lookup(leak_keys_for(platform).token("iin", iins[2])) == (incident,)
