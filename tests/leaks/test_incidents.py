"""Incident reports and the regulator's workflow, through the service (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

Runs on SQLite and (with QORGAU_TEST_DATABASE_URL) PostgreSQL. ``an_incident_of`` is also the route walk's way to
find an incident owned by a tenant (tests/api/test_route_walk.py, OWNED_BY)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import Tenant, make_authority, make_tenant
from sqlalchemy import select

from qorgau.core import audit
from qorgau.core.calendar import ALMATY
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.leaks.incidents import incidents_for
from qorgau.leaks.models import LeakIncident, LeakIncidentEvent, LeakTakedown

PERSON = "Айгерим Сапарова"  # the responsible person: staff personal data


def report(**changes: Any) -> dict[str, Any]:
    """A complete, on-time initial report (discovered an hour ago)."""
    now = datetime.now(timezone.utc)
    data: dict[str, Any] = {
        "reporter_role": "operator", "responsible_person": PERSON, "responsible_contact": "dpo@bank.example",
        "sector": "bank", "title": "Customer database exposed", "description": "An open Elasticsearch index.",
        "started_at": (now - timedelta(days=3)).isoformat(), "discovered_at": (now - timedelta(hours=1)).isoformat(),
        "contained_at": (now - timedelta(minutes=30)).isoformat(), "nature": "misconfiguration",
        "people_affected": 12000, "records_affected": 15000, "subject_categories": ["customers"],
        "data_classes": ["iin", "phone", "full_name"], "consequences": "Phishing calls to customers.",
        "measures_taken": "Index closed.", "measures_planned": "Audit of every index.",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def file(platform: Platform, tenant: Tenant, **changes: Any) -> int:
    with platform.db.transaction(tenant.org_id) as s:
        return incidents_for(platform).file_report(s, report(**changes), actor=f"user:{tenant.users['dpo'][0]}").id


_KEY = "_leak_incident_of"


def an_incident_of(platform: Platform, tenant: Tenant) -> int:
    """One incident of ``tenant`` (made once per platform and tenant, through the service)."""
    made = platform.__dict__.setdefault(_KEY, {})
    if tenant.org_id not in made:
        made[tenant.org_id] = file(platform, tenant)
    return made[tenant.org_id]


def a_takedown_of(platform: Platform, tenant: Tenant) -> int:
    """A takedown request on one of ``tenant``'s incidents (requested by a separate authorized body)."""
    incident = an_incident_of(platform, tenant)
    with platform.db.reader() as s:
        found = s.scalar(select(LeakTakedown.id).where(LeakTakedown.incident_id == incident))
    if found:
        return found
    regulator = make_authority(platform, make_tenant(platform, f"walkreg{tenant.org_id}", 900 + tenant.org_id))
    with platform.db.transaction() as s:
        return incidents_for(platform).request_takedown(
            s, incident, location="https://t.me/leaks/1", addressee="Telegram", authority=regulator.org_id,
            actor="user:1")["id"]


@pytest.fixture
def regulator(platform: Platform) -> Tenant:
    return make_authority(platform, make_tenant(platform, "gamma", 33))


def reg(platform: Platform, regulator: Tenant, method: str, *args: Any, **kwargs: Any) -> Any:
    with platform.db.transaction() as s:
        return getattr(incidents_for(platform), method)(s, *args, authority=regulator.org_id,
                                                        actor=f"user:{regulator.users['regulator'][0]}", **kwargs)


# --- filing ---------------------------------------------------------------------------------------------------


def test_an_on_time_report_gets_a_reference_a_deadline_and_an_audited_filing(platform: Platform,
                                                                              tenant_a: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    with platform.db.reader(tenant_a.org_id) as s:
        view = incidents_for(platform).incident(s, incident_id)
        entries = audit.list_entries(s, limit=50)
    d = view.to_dict()
    year = datetime.now(ALMATY).year
    assert d["reference"] == f"KZ-LEAK-{year}-{incident_id:06d}"
    assert d["status"] == "received" and d["late"] is False and d["late_reason"] is None
    assert d["responsible_person"] == PERSON and d["data_classes"] == ["iin", "phone", "full_name"]
    assert datetime.fromisoformat(d["deadline_at"]) > datetime.fromisoformat(d["discovered_at"])
    assert [e["kind"] for e in d["events"]] == ["filed"]
    filed = [e for e in entries if e.action == "leak_incident.filed"]
    assert filed and filed[0].object_id == str(incident_id)
    # The responsible person's name is staff personal data: never in the audit log, never in repr.
    assert all(PERSON not in str(e.details) for e in entries)
    assert PERSON not in repr(view) and "А. С." in repr(view)


def test_the_deadline_is_the_end_of_the_next_working_day_in_almaty(platform: Platform) -> None:
    service = incidents_for(platform)
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=ALMATY)
    assert service.deadline_for(friday) == datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=ALMATY)
    # Independence Day (16 December 2026, a Wednesday) is not a working day.
    tuesday = datetime(2026, 12, 15, 18, 0, tzinfo=ALMATY)
    assert service.deadline_for(tuesday).date() == datetime(2026, 12, 17).date()
    # 23:30 UTC on Monday is already Tuesday in Almaty.
    late_monday_utc = datetime(2026, 11, 23, 23, 30, tzinfo=timezone.utc)
    assert service.deadline_for(late_monday_utc).astimezone(ALMATY).date() == datetime(2026, 11, 25).date()


def test_a_late_report_needs_a_reason_and_is_flagged(platform: Platform, tenant_a: Tenant) -> None:
    old = (datetime.now(timezone.utc) - timedelta(days=10)).isoformat()
    with pytest.raises(InvalidInput) as exc:
        file(platform, tenant_a, discovered_at=old, started_at=None, contained_at=None)
    assert exc.value.field == "late_reason"
    with platform.db.reader(tenant_a.org_id) as s:
        assert incidents_for(platform).incidents(s) == []  # nothing half-written
    incident_id = file(platform, tenant_a, discovered_at=old, started_at=None, contained_at=None,
                       late_reason="The contractor told us only yesterday.")
    with platform.db.reader(tenant_a.org_id) as s:
        listed = incidents_for(platform).incidents(s)
    assert [(i["id"], i["late"]) for i in listed] == [(incident_id, True)]


@pytest.mark.parametrize("changes, field", [
    ({"nature": "aliens"}, "nature"),
    ({"sector": "casino"}, "sector"),
    ({"reporter_role": "hacker"}, "reporter_role"),
    ({"data_classes": ["iin", "shoe_size"]}, "data_classes.1"),
    ({"data_classes": []}, "data_classes"),
    ({"subject_categories": "customers"}, "subject_categories"),
    ({"people_affected": -1}, "people_affected"),
    ({"title": ""}, "title"),
    ({"responsible_person": None}, "responsible_person"),
    ({"discovered_at": None}, "discovered_at"),
    ({"discovered_at": "2026-11-20T10:00:00"}, "discovered_at"),
    ({"discovered_at": "yesterday"}, "discovered_at"),
    ({"discovered_at": "0001-01-01T00:00:00+05:00"}, "discovered_at"),
    ({"started_at": "9999-12-31T23:59:59-05:00"}, "started_at"),
    ({"ended_at": "2000-01-01T00:00:00+05:00"}, "ended_at"),
    ({"started_at": (datetime.now(timezone.utc) - timedelta(minutes=10)).isoformat()}, "discovered_at"),
    ({"contained_at": (datetime.now(timezone.utc) - timedelta(hours=5)).isoformat()}, "contained_at"),
    ({"subjects_notified_at": (datetime.now(timezone.utc) - timedelta(hours=5)).isoformat()}, "subjects_notified_at"),
    ({"contained_at": (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()}, "contained_at"),
    ({"favourite_colour": "red"}, "favourite_colour"),
])
def test_bad_reports_are_refused_naming_the_field(platform: Platform, tenant_a: Tenant, changes: dict[str, Any],
                                                 field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        file(platform, tenant_a, **changes)
    assert exc.value.field == field
    assert PERSON not in exc.value.message


def test_an_addendum_is_its_own_row_and_the_incident_shows_the_merged_report(platform: Platform,
                                                                             tenant_a: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    service = incidents_for(platform)
    actor = f"user:{tenant_a.users['dpo'][0]}"
    with platform.db.transaction(tenant_a.org_id) as s:
        service.file_addendum(s, incident_id, {"people_affected": 50000, "data_classes": ["iin", "phone", "email"]},
                              actor=actor)
    with platform.db.transaction(tenant_a.org_id) as s:
        view = service.file_addendum(s, incident_id, {"measures_taken": "Index closed; keys rotated."}, actor=actor)
    d = view.to_dict()
    assert d["people_affected"] == 50000 and d["data_classes"] == ["iin", "phone", "email"]
    assert d["measures_taken"] == "Index closed; keys rotated." and d["records_affected"] == 15000
    assert [a["fields"] for a in d["addenda"]] == [["data_classes", "people_affected"], ["measures_taken"]]
    assert [a["reference"] for a in d["addenda"]] == [d["reference"] + "-A1", d["reference"] + "-A2"]
    assert [e["kind"] for e in d["events"]] == ["filed", "addendum", "addendum"]
    with platform.db.reader(tenant_a.org_id) as s:
        rows = s.scalars(select(LeakIncident).order_by(LeakIncident.id)).all()
        assert [(r.filing, r.parent_id) for r in rows] == [("initial", None), ("addendum", incident_id),
                                                           ("addendum", incident_id)]
        listed = service.incidents(s)
        # an addendum's id does not name an incident
        with pytest.raises(NotFound):
            service.get(s, rows[1].id)
    assert len(listed) == 1 and listed[0]["people_affected"] == 50000 and listed[0]["addenda"] == 2


@pytest.mark.parametrize("changes, field", [
    ({"discovered_at": "2026-11-20T10:00:00+05:00"}, "discovered_at"),
    ({}, "report"),
    ({"nature": "aliens"}, "nature"),
    ({"title": "Customer database exposed"}, "report"),  # changes nothing
    ({"data_classes": ["full_name", "iin", "phone"]}, "report"),  # the same classes in another order
    ({"ended_at": "2000-01-01T00:00:00+05:00"}, "ended_at"),
])
def test_bad_addenda_are_refused(platform: Platform, tenant_a: Tenant, changes: dict[str, Any], field: str) -> None:
    incident_id = file(platform, tenant_a)
    with pytest.raises(InvalidInput) as exc, platform.db.transaction(tenant_a.org_id) as s:
        incidents_for(platform).file_addendum(s, incident_id, changes, actor="user:1")
    assert exc.value.field == field


def test_another_operator_never_sees_or_changes_an_incident(platform: Platform, tenant_a: Tenant,
                                                            tenant_b: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    service = incidents_for(platform)
    with platform.db.reader(tenant_b.org_id) as s:
        assert service.incidents(s) == []
        for call in (lambda: service.incident(s, incident_id), lambda: service.get(s, incident_id),
                     lambda: service.find(s, f"KZ-LEAK-{datetime.now(ALMATY).year}-{incident_id:06d}")):
            with pytest.raises(NotFound):
                call()
    with pytest.raises(NotFound), platform.db.transaction(tenant_b.org_id) as s:
        service.file_addendum(s, incident_id, {"title": "mine now"}, actor="user:1")
    with pytest.raises(NotFound), platform.db.transaction(tenant_b.org_id) as s:
        service.record_upload(s, incident_id, upload_public_id="up_x", tokens_committed=5, counts={"iin": 5},
                              actor="user:1")
    # an operator (even one whose keys carry the regulator role) is not the authorized body
    with pytest.raises(PermissionDenied), platform.db.transaction() as s:
        service.set_status(s, incident_id, "fabricated", note="x", authority=tenant_b.org_id, actor="user:1")
    with pytest.raises(PermissionDenied), platform.db.reader(tenant_b.org_id) as s:
        service.regulator_incidents(s, authority=tenant_b.org_id)


# --- the regulator --------------------------------------------------------------------------------------------


def test_the_regulator_verifies_publishes_and_the_status_rules_hold(platform: Platform, tenant_a: Tenant,
                                                                    regulator: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    advice = {"kk": "Банкке хабарласыңыз.", "ru": "Свяжитесь с банком.", "en": "Contact the bank."}
    with pytest.raises(Conflict):  # only a verified incident is published
        reg(platform, regulator, "publish", incident_id, advice=advice)
    with pytest.raises(InvalidInput) as exc:
        reg(platform, regulator, "set_status", incident_id, "verified", note="")
    assert exc.value.field == "note"
    reg(platform, regulator, "set_status", incident_id, "disputed", note="The sample looks synthetic.")
    with pytest.raises(Conflict):  # disputed -> received is not a step
        reg(platform, regulator, "set_status", incident_id, "received", note="back")
    reg(platform, regulator, "set_status", incident_id, "verified", note="Confirmed with the operator.")
    with pytest.raises(InvalidInput) as exc:
        reg(platform, regulator, "publish", incident_id, advice={"kk": "x", "ru": "y"})
    assert exc.value.field == "advice.en"
    view = reg(platform, regulator, "publish", incident_id, advice=advice)
    assert view.values["published"] is True and view.values["advice"] == advice
    # leaving "verified" unpublishes
    view = reg(platform, regulator, "set_status", incident_id, "disputed", note="New facts.")
    assert view.values["published"] is False and view.status == "disputed"
    view = reg(platform, regulator, "set_status", incident_id, "fabricated", note="Made up.")
    with pytest.raises(Conflict):  # fabricated is final
        reg(platform, regulator, "set_status", incident_id, "verified", note="again")
    kinds = [e["kind"] for e in view.events]
    assert kinds == ["filed", "status", "status", "published", "status", "unpublished", "status"]
    with pytest.raises(Conflict), platform.db.transaction(tenant_a.org_id) as s:
        incidents_for(platform).file_addendum(s, incident_id, {"title": "More"}, actor="user:1")
    with pytest.raises(Conflict), platform.db.transaction(tenant_a.org_id) as s:
        incidents_for(platform).record_upload(s, incident_id, upload_public_id="up_x", tokens_committed=1,
                                              counts={"iin": 1}, actor="user:1")
    with platform.db.reader() as s:
        actions = [e.action for e in audit.list_entries(s, limit=100) if e.object_type == "leak_incident"]
    assert actions.count("leak_incident.status") == 4 and "leak_incident.published" in actions


def test_notes_info_requests_and_answers(platform: Platform, tenant_a: Tenant, regulator: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    service = incidents_for(platform)
    reg(platform, regulator, "add_note", incident_id, "Internal: check with the CERT.")
    reg(platform, regulator, "add_note", incident_id, "Please keep the logs.", visible_to_operator=True)
    with pytest.raises(Conflict), platform.db.transaction(tenant_a.org_id) as s:  # nothing was asked yet
        service.respond(s, incident_id, "Here it is.", actor="user:1")
    reg(platform, regulator, "request_info", incident_id, "How many IINs exactly?")
    with platform.db.reader(tenant_a.org_id) as s:
        operator_view = service.incident(s, incident_id)
    assert operator_view.values["info_requested"] is True
    texts = [e["text"] for e in operator_view.events]
    assert "Please keep the logs." in texts and "Internal: check with the CERT." not in texts
    with platform.db.transaction(tenant_a.org_id) as s:
        view = service.respond(s, incident_id, "12,345 IINs.", actor="user:1")
    assert view.values["info_requested"] is False and view.events[-1]["kind"] == "info_response"
    with platform.db.reader() as s:
        regulator_view = service.regulator_incident(s, incident_id, authority=regulator.org_id)
        queue = service.regulator_incidents(s, authority=regulator.org_id, info_requested=False)
    assert "Internal: check with the CERT." in [e["text"] for e in regulator_view.events]
    assert [i["id"] for i in queue] == [incident_id] and queue[0]["operator_bin"] == tenant_a.bin


def test_takedowns_are_requested_and_resolved_once(platform: Platform, tenant_a: Tenant, regulator: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    takedown = reg(platform, regulator, "request_takedown", incident_id, location="https://t.me/leakbot/42",
                   addressee="Telegram FZ-LLC")
    assert takedown["status"] == "requested"
    with pytest.raises(InvalidInput) as exc:  # a refusal says why
        reg(platform, regulator, "resolve_takedown", incident_id, takedown["id"], "refused")
    assert exc.value.field == "note"
    done = reg(platform, regulator, "resolve_takedown", incident_id, takedown["id"], "removed")
    assert done["status"] == "removed" and done["resolved_at"]
    with pytest.raises(Conflict):
        reg(platform, regulator, "resolve_takedown", incident_id, takedown["id"], "refused", note="late")
    other = file(platform, tenant_a)
    with pytest.raises(NotFound):  # a takedown is resolved under its own incident
        reg(platform, regulator, "resolve_takedown", other, takedown["id"], "removed")
    with platform.db.reader(tenant_a.org_id) as s:
        view = incidents_for(platform).incident(s, incident_id)
    assert [t["status"] for t in view.takedowns] == ["removed"]


def test_the_regulators_queue_filters(platform: Platform, tenant_a: Tenant, tenant_b: Tenant,
                                      regulator: Tenant) -> None:
    a = file(platform, tenant_a)
    old = (datetime.now(timezone.utc) - timedelta(days=10)).isoformat()
    b = file(platform, tenant_b, discovered_at=old, started_at=None, contained_at=None, late_reason="Holidays.")
    reg(platform, regulator, "set_status", a, "verified", note="ok")
    with platform.db.reader() as s:
        service = incidents_for(platform)
        ids = lambda **f: [i["id"] for i in service.regulator_incidents(s, authority=regulator.org_id, **f)]  # noqa: E731
        assert ids() == [b, a]
        assert ids(status="verified") == [a] and ids(late=True) == [b] and ids(published=False) == [b, a]
        assert ids(organization_id=tenant_b.org_id) == [b]
        with pytest.raises(InvalidInput):
            ids(status="lost")


# --- the ingest's call (task C) ------------------------------------------------------------------------------


def test_record_upload_counts_identifiers_and_appends_an_event(platform: Platform, tenant_a: Tenant) -> None:
    incident_id = file(platform, tenant_a)
    service = incidents_for(platform)
    for n in (100, 23):
        with platform.db.transaction(tenant_a.org_id) as s:
            service.record_upload(s, incident_id, upload_public_id=f"up_{n}", tokens_committed=n,
                                  counts={"iin": n, "phone": 0}, actor="user:1")
    with platform.db.reader(tenant_a.org_id) as s:
        row = service.get(s, incident_id)
        assert row.identifiers_committed == 123
        events = s.scalars(select(LeakIncidentEvent).where(LeakIncidentEvent.kind == "upload_confirmed")).all()
    assert [e.details["tokens_committed"] for e in events] == [100, 23]
