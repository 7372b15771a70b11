"""Incident report pages over real HTTP, the way a browser uses them (cookies, CSRF fields, redirects): an operator
files through the form and amends, the authorized body works the incident through its desk, and nobody else
gets in (issue 8; L-PD-BREACH). SQLite only: the pages are thin over the service the other tests run on both
backends."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from conftest import LiveServer, Tenant, make_authority, make_tenant
from web.conftest import browser_client, csrf_from, log_in

from qorgau.core.calendar import ALMATY
from qorgau.core.platform import Platform
from qorgau.leaks.incidents import incidents_for

from .test_incidents import PERSON, file


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _local(delta: timedelta) -> str:
    return (datetime.now(ALMATY) + delta).strftime("%Y-%m-%dT%H:%M")


@contextlib.contextmanager
def signed_in(server: LiveServer, tenant: Tenant, role: str, lang: str = "en") -> Iterator[httpx.Client]:
    with browser_client(server, **{"Accept-Language": lang}) as client:
        _, username, password = tenant.users[role]
        assert log_in(client, username, password).status_code == 303
        yield client


def test_an_operator_files_through_the_form_sees_it_listed_and_amends_it(live_server: LiveServer,
                                                                         tenant_a: Tenant) -> None:
    with signed_in(live_server, tenant_a, "dpo") as web:
        listing = web.get("/leaks")
        assert listing.status_code == 200 and 'data-testid="no-incidents"' in listing.text
        assert "L-PD-BREACH" in listing.text
        form = web.get("/leaks/incidents/new")
        assert form.status_code == 200
        data = {"csrf_token": csrf_from(form.text), "reporter_role": "operator", "responsible_person": PERSON,
                "sector": "telecom", "title": "Subscriber list in a Telegram bot", "nature": "insider",
                "discovered_at": _local(timedelta(hours=-2)), "started_at": _local(timedelta(days=-1)),
                "people_affected": "3000", "data_classes": ["iin", "phone"], "subject_categories": ["customers"]}
        # missing data classes and a bad number: named next to their fields, what was typed stays
        bad = web.post("/leaks/incidents/new", data={**data, "data_classes": [], "people_affected": "many"})
        assert bad.status_code == 422
        assert 'id="data_classes-error"' in bad.text and 'id="people_affected-error"' in bad.text
        assert "Subscriber list in a Telegram bot" in bad.text
        # contained before discovered: refused by the service, named
        bad = web.post("/leaks/incidents/new", data={**data, "contained_at": _local(timedelta(hours=-5))})
        assert bad.status_code == 422 and 'id="contained_at-error"' in bad.text
        done = web.post("/leaks/incidents/new", data=data)
        assert done.status_code == 303
        location = done.headers["location"]
        incident_id = int(re.search(r"/leaks/incidents/(\d+)\?done=filed", location).group(1))
        page = web.get(location)
        assert page.status_code == 200 and 'data-testid="notice"' in page.text
        assert PERSON in page.text and "KZ-LEAK-" in page.text
        assert f'href="/leaks/incidents/{incident_id}/uploads/new"' in page.text
        assert f'data-incident="{incident_id}"' in web.get("/leaks").text
        # the addendum form is prefilled; an unchanged submission is refused, a change is filed
        same = {"csrf_token": csrf_from(page.text), "reporter_role": "operator", "responsible_person": PERSON,
                "sector": "telecom", "title": "Subscriber list in a Telegram bot", "nature": "insider",
                "started_at": data["started_at"], "people_affected": "3000", "data_classes": ["iin", "phone"],
                "subject_categories": ["customers"]}
        assert web.post(f"/leaks/incidents/{incident_id}/addendum", data=same).status_code == 422
        amended = web.post(f"/leaks/incidents/{incident_id}/addendum", data={**same, "people_affected": "4100"})
        assert amended.status_code == 303
        page = web.get(f"/leaks/incidents/{incident_id}")
        assert "4100" in page.text and 'data-event="addendum"' in page.text


def test_the_authorized_body_works_an_incident_and_the_operator_answers(platform: Platform, live_server: LiveServer,
                                                                        tenant_a: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    regulator = make_authority(platform, make_tenant(platform, "gamma", 33))
    with signed_in(live_server, regulator, "regulator") as desk:
        assert desk.get("/leaks").headers["location"] == "/leaks/regulator"
        queue = desk.get("/leaks/regulator", params={"status": "received"})
        assert queue.status_code == 200 and f'data-incident="{incident_id}"' in queue.text
        assert f'data-incident="{incident_id}"' not in desk.get("/leaks/regulator", params={"late": "yes"}).text
        page = desk.get(f"/leaks/regulator/{incident_id}")
        assert page.status_code == 200 and PERSON in page.text
        token = csrf_from(page.text)
        no_note = desk.post(f"/leaks/regulator/{incident_id}/status", data={"csrf_token": token, "status": "verified"})
        assert no_note.status_code == 422 and 'data-testid="action-error"' in no_note.text
        for path, data in (("status", {"status": "verified", "note": "Confirmed by a sample."}),
                           ("publish", {"advice_kk": "Құпиясөзді өзгертіңіз.", "advice_ru": "Смените пароль.",
                                        "advice_en": "Change your password."}),
                           ("note", {"text": "Internal remark."}),
                           ("info-request", {"text": "How many phone numbers?"}),
                           ("takedown", {"location": "https://t.me/somebot", "addressee": "Telegram"})):
            r = desk.post(f"/leaks/regulator/{incident_id}/{path}", data={"csrf_token": token, **data})
            assert r.status_code == 303, (path, r.status_code)
        takedown = incidents_for(platform)
        with platform.db.reader() as s:
            view = takedown.regulator_incident(s, incident_id, authority=regulator.org_id)
        assert view.values["published"] and view.values["info_requested"] and len(view.takedowns) == 1
        r = desk.post(f"/leaks/regulator/{incident_id}/takedowns/{view.takedowns[0]['id']}",
                      data={"csrf_token": token, "outcome": "removed"})
        assert r.status_code == 303
        # a form without the CSRF token changes nothing
        assert desk.post(f"/leaks/regulator/{incident_id}/unpublish", data={}).status_code == 403
    with signed_in(live_server, tenant_a, "admin") as web:
        page = web.get(f"/leaks/incidents/{incident_id}")
        assert 'data-testid="info-request"' in page.text and "Internal remark." not in page.text
        assert 'data-takedown-status="removed"' in page.text
        r = web.post(f"/leaks/incidents/{incident_id}/response", data={"csrf_token": csrf_from(page.text),
                                                                      "text": "About 2,900."})
        assert r.status_code == 303
        assert 'data-testid="info-request"' not in web.get(f"/leaks/incidents/{incident_id}").text


def test_nobody_else_reaches_the_pages(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                       tenant_b: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    with signed_in(live_server, tenant_b, "admin") as other:
        assert other.get(f"/leaks/incidents/{incident_id}").status_code == 404
        assert f'data-incident="{incident_id}"' not in other.get("/leaks").text
    # B's regulator user is not in the authorized body
    with signed_in(live_server, tenant_b, "regulator") as fake:
        assert fake.get("/leaks/regulator").status_code == 403
        assert fake.get(f"/leaks/regulator/{incident_id}").status_code == 403
    with signed_in(live_server, tenant_a, "reviewer") as reader:
        page = reader.get(f"/leaks/incidents/{incident_id}")
        assert page.status_code == 200 and 'data-testid="addendum-form"' not in page.text
        assert reader.get("/leaks/incidents/new").status_code == 403
    with browser_client(live_server) as anonymous:
        assert anonymous.get("/leaks").status_code == 303


@pytest.mark.parametrize("lang, heading", [("kk", "Ағып кетулер"), ("ru", "Утечки")])
def test_the_pages_speak_kazakh_and_russian(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                           lang: str, heading: str) -> None:
    incident_id = file(platform, tenant_a)
    with signed_in(live_server, tenant_a, "dpo", lang) as web:
        assert heading in web.get("/leaks").text
        page = web.get(f"/leaks/incidents/{incident_id}")
        assert page.status_code == 200
        english = ("File an addendum", "Timeline", "Takedown requests", "Upload leaked identifiers")
        assert not [text for text in english if text in page.text]
        form = web.get("/leaks/incidents/new").text
        assert "Breach discovered" not in form and "Classes of leaked data" not in form
