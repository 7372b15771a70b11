"""Incident reports of the leak register and the regulator's workflow (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

An operator files an **initial** report of a personal-data breach: who reports (role, responsible person and
contact — L-PD-BREACH asks for the responsible person's contact), the timeline (started, ended, discovered,
contained, subjects notified), the nature, the scope (people, records, categories of people, data classes), the
likely consequences and the measures taken and planned. The law gives **1 working day from detection**
(L-PD-BREACH; the rule packs' deadline ``pd.breach_notice``): ``deadline_at`` is the end (Asia/Almaty) of that
working day after ``discovered_at``; a report filed after it is ``late`` and must say why (``late_reason``).

An **addendum** is a row of its own (``filing="addendum"``, ``parent_id``, reference ``<parent>-A<n>``) holding
the incident as it stands after the change (a full snapshot), and an ``addendum`` event on the parent names the
fields that changed. The incident's current view is the latest addendum's values of :data:`AMENDABLE` over the
initial filing; everything else (reference, ``discovered_at`` and so the deadline and lateness, status,
publication, counters) stays the parent's. ``discovered_at`` is fixed by the initial filing: moving it would
move the legal deadline after the fact.

The regulator (authorized body, role ``regulator``; :func:`qorgau.core.auth.require_authority`) moves an incident
received → verified | disputed | fabricated, disputed → verified | fabricated, verified → disputed, always with a
note; publishes a **verified** incident with advice to citizens in kk/ru/en (citizens and the public see only
what the visibility rule in docs/leaks-incidents.md allows) and unpublishes it at any time (leaving ``verified``
unpublishes too); writes notes (hidden from the operator unless ``visible_to_operator``; status notes are
always visible: the operator must know why its report is disputed); requests more information (the operator's
answer clears ``info_requested``); and asks for data the leak made public to be taken down (DC Art.17 p.7:
such data are not open data and must be removed; L-PD-LEAK-REGISTER), each request then ``removed`` or
``refused``.

Sessions: operator methods take a session bound to the operator's organization (``db.transaction(org)``):
another operator's incident is "not found". Regulator methods take a platform-level session
(``db.transaction()`` with no organization) and check the caller's authority themselves. Nothing here commits.
Every state change appends a :class:`LeakIncidentEvent` and an audit entry with ids, codes and field names only —
never the responsible person, texts or advice.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core import audit
from ..core.auth import Organization, Principal, require_authority
from ..core.calendar import ALMATY, add_working_days, local_date
from ..core.db import tenant_of, utcnow
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..core.platform import shared
from ..rules import deadlines
from .models import (
    DATA_CLASSES,
    NATURES,
    REPORTER_ROLES,
    SECTORS,
    STATUSES,
    SUBJECT_CATEGORIES,
    TAKEDOWN_STATUSES,
    LeakIncident,
    LeakIncidentEvent,
    LeakTakedown,
)

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["AMENDABLE", "FIELDS", "TRANSITIONS", "IncidentView", "Incidents", "incidents_for", "mask_person"]

LANGUAGES = ("kk", "ru", "en")
# The regulator's status workflow (each step needs a note). ``fabricated`` is final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("verified", "disputed", "fabricated"),
    "disputed": ("verified", "fabricated"),
    "verified": ("disputed",),
    "fabricated": (),
}
TIMELINE = ("started_at", "ended_at", "discovered_at", "contained_at", "subjects_notified_at")
# What an addendum may change (everything the operator states about the incident except when it was discovered).
AMENDABLE: tuple[str, ...] = (
    "reporter_role", "responsible_person", "responsible_contact", "sector", "title", "description",
    "started_at", "ended_at", "contained_at", "subjects_notified_at", "nature", "people_affected",
    "records_affected", "subject_categories", "data_classes", "consequences", "measures_taken", "measures_planned",
)
# Every field of a filing (an initial filing also takes discovered_at and late_reason).
FIELDS: tuple[str, ...] = AMENDABLE + ("discovered_at", "late_reason")
REQUIRED = ("responsible_person", "title", "discovered_at", "nature", "data_classes")
MAX_SHORT = 300
MAX_TEXT = 20_000
MAX_LOCATION = 2000
MAX_COUNT = 2**31  # the columns are INTEGER (32-bit on PostgreSQL)
CLOCK_SKEW = timedelta(minutes=5)
EARLIEST = date(1991, 1, 1)  # before Kazakhstan's independence nothing here applies
EVENT_ORDER = (LeakIncidentEvent.at, LeakIncidentEvent.id)


def mask_person(name: str | None) -> str:
    """A responsible person's name for places that must not show it (``repr``): initials only."""
    if not name:
        return ""
    return " ".join(part[0] + "." for part in name.split() if part) or "…"


# --- small checks ---------------------------------------------------------------------------------------


def _actor(actor: Any) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 64:
        raise InvalidInput("actor must be 1–64 characters (an id such as 'user:12', never a name)", field="actor")
    return actor


def _id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**53:
        raise InvalidInput("must be a positive integer id", field=name)
    return value


def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput("is required", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be text", field=name)
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"must be at most {limit} characters", field=name)
    if "\x00" in value:
        raise InvalidInput("must not contain NUL characters", field=name)
    return value


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"must be one of: {', '.join(allowed)}", field=name)
    return value


def _choices(value: Any, name: str, allowed: tuple[str, ...], *, required: bool = False) -> list[str]:
    if value is None:
        value = []
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"must be a list of: {', '.join(allowed)}", field=name)
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or item not in allowed:
            raise InvalidInput(f"every item must be one of: {', '.join(allowed)}", field=f"{name}.{i}")
        if item not in out:
            out.append(item)
    if required and not out:
        raise InvalidInput("name at least one", field=name)
    return out


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_COUNT:
        raise InvalidInput("must be a whole number, 0 or more", field=name)
    return value


def _moment(value: Any, name: str, *, required: bool = False) -> datetime | None:
    """An instant with its time zone. Text in ISO 8601 is read; a time without an offset is refused (the
    deadline depends on the Kazakhstan date, and guessing the zone moves it)."""
    if value is None or value == "":
        if required:
            raise InvalidInput("is required", field=name)
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput("must be a date and time in ISO 8601 with an offset, e.g. 2026-11-20T09:30+05:00",
                               field=name) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        raise InvalidInput("must be a date and time, not only a date", field=name)
    if not isinstance(value, datetime):
        raise InvalidInput("must be a date and time", field=name)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("must carry a time zone offset (e.g. +05:00)", field=name)
    if not EARLIEST.year <= value.year <= 2200:  # also keeps time zone arithmetic away from year 1 and 9999
        raise InvalidInput(f"must be a time after {EARLIEST.year}", field=name)
    return value


def _check_timeline(values: Mapping[str, Any], now: datetime) -> None:
    """started ≤ ended, started ≤ discovered ≤ contained, discovered ≤ subjects notified, nothing in the future;
    the error names the later field of the pair that is out of order."""
    for name in TIMELINE:
        moment = values.get(name)
        if moment is not None and moment > now + CLOCK_SKEW:
            raise InvalidInput("must not be in the future", field=name)
    started, ended = values.get("started_at"), values.get("ended_at")
    discovered = values.get("discovered_at")
    if started and ended and ended < started:
        raise InvalidInput("must not be before started_at", field="ended_at")
    if started and discovered and discovered < started:
        raise InvalidInput("must not be before started_at", field="discovered_at")
    for name in ("contained_at", "subjects_notified_at"):
        moment = values.get(name)
        if moment is not None and discovered is not None and moment < discovered:
            raise InvalidInput("must not be before discovered_at", field=name)


def _differs(new: Any, old: Any) -> bool:
    """An addendum's value against the current one (lists compare as sets: order carries no meaning)."""
    if isinstance(new, list) and isinstance(old, list):
        return sorted(new) != sorted(old)
    return new != old


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


# --- views ----------------------------------------------------------------------------------------------


@dataclass
class IncidentView:
    """An incident as its operator or the regulator sees it: the current (addenda merged) report, its history
    and takedown requests. ``responsible_person`` is staff personal data: in ``to_dict`` (shown on detail pages
    to the operator and regulator), never in ``repr``."""

    id: int
    reference: str
    organization_id: int
    operator_name: str
    operator_bin: str
    values: dict[str, Any] = field(repr=False)
    addenda: list[dict[str, Any]] = field(default_factory=list, repr=False)
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    takedowns: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        return (f"IncidentView(id={self.id}, reference={self.reference!r}, org={self.organization_id}, "
                f"status={self.values.get('status')!r}, "
                f"responsible_person={mask_person(self.values.get('responsible_person'))!r})")

    @property
    def status(self) -> str:
        return self.values["status"]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "reference": self.reference, "organization_id": self.organization_id,
                "operator_name": self.operator_name, "operator_bin": self.operator_bin,
                **{k: _iso(v) for k, v in self.values.items()},
                "addenda": self.addenda, "events": self.events, "takedowns": self.takedowns}


SUMMARY_FIELDS = ("title", "sector", "nature", "discovered_at", "filed_at", "deadline_at", "late", "status",
                  "published", "info_requested", "people_affected", "records_affected", "data_classes",
                  "identifiers_committed")


def _row_values(row: LeakIncident) -> dict[str, Any]:
    return {name: getattr(row, name) for name in (
        "filing", *AMENDABLE, "discovered_at", "filed_at", "filed_by", "deadline_at", "late", "late_reason",
        "status", "status_changed_at", "published", "published_at", "advice", "identifiers_committed",
        "info_requested", "updated_at")}


def _event_dict(event: LeakIncidentEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "actor": event.actor, "by_authority": event.by_authority,
            "text": event.text, "details": dict(event.details or {}), "at": _iso(event.at)}


def _takedown_dict(row: LeakTakedown) -> dict[str, Any]:
    return {"id": row.id, "incident_id": row.incident_id, "location": row.location, "addressee": row.addressee,
            "status": row.status, "requested_at": _iso(row.requested_at), "requested_by": row.requested_by,
            "resolved_at": _iso(row.resolved_at), "resolved_by": row.resolved_by, "note": row.note}


# --- the service ----------------------------------------------------------------------------------------


class Incidents:
    """Incident reports (operators) and the regulator's workflow over them."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def __repr__(self) -> str:
        return f"Incidents(db={self.platform.db.dialect})"

    # --- deadlines ----------------------------------------------------------------------------------

    def deadline_for(self, discovered_at: datetime) -> datetime:
        """End (Asia/Almaty) of the working day the law's deadline falls on, counted from detection
        (L-PD-BREACH: 1 working day; the number comes from the rule pack in force on the day of detection)."""
        day = local_date(discovered_at)
        days = deadlines.working_days(deadlines.BREACH_NOTICE, day,
                                      stricter=self.platform.settings.rules_stricter_profile)
        due: date = add_working_days(day, days)
        end = datetime.combine(due + timedelta(days=1), time(0), tzinfo=ALMATY) - timedelta(microseconds=1)
        return end.astimezone(ALMATY)

    # --- operator: filing ---------------------------------------------------------------------------

    def _clean(self, data: Mapping[str, Any], *, names: Iterable[str]) -> dict[str, Any]:
        cleaned: dict[str, Any] = {}
        for name in names:
            value = data.get(name)
            if name in TIMELINE:
                cleaned[name] = _moment(value, name, required=name == "discovered_at")
            elif name == "reporter_role":
                cleaned[name] = _choice("operator" if value is None else value, name, REPORTER_ROLES)
            elif name == "sector":
                cleaned[name] = _choice("other" if value is None else value, name, SECTORS)
            elif name == "nature":
                cleaned[name] = _choice(value, name, NATURES)
            elif name == "subject_categories":
                cleaned[name] = _choices(value, name, SUBJECT_CATEGORIES)
            elif name == "data_classes":
                cleaned[name] = _choices(value, name, DATA_CLASSES, required=True)
            elif name in ("people_affected", "records_affected"):
                cleaned[name] = _count(value, name)
            elif name in ("responsible_person", "title", "responsible_contact"):
                cleaned[name] = _text(value, name, MAX_SHORT, required=name in REQUIRED)
            else:
                cleaned[name] = _text(value, name, MAX_TEXT)
        return cleaned

    @staticmethod
    def _known(data: Any) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise InvalidInput("a report is an object of fields", field="report")
        for key in data:
            if key not in FIELDS:
                raise InvalidInput("unknown field", field=str(key)[:64])
        return data

    def file_report(self, session: Session, data: Mapping[str, Any], *, actor: str) -> IncidentView:
        """File an initial incident report for the session's organization (L-PD-BREACH). Returns its view.

        Vocabularies are :mod:`qorgau.leaks.models`' (``nature``, ``sector``, ``reporter_role``,
        ``subject_categories``, ``data_classes``); an unknown value is refused naming the field. A report filed
        after ``deadline_at`` needs ``late_reason``."""
        org = self._org(session)
        _actor(actor)
        values = self._clean(self._known(data), names=FIELDS)
        now = utcnow()
        _check_timeline(values, now)
        deadline = self.deadline_for(values["discovered_at"])
        late = now > deadline
        if late and not values.get("late_reason"):
            raise InvalidInput("the report is filed after the 1-working-day deadline (L-PD-BREACH): give the reason "
                               "for the delay", field="late_reason")
        if not late:
            values["late_reason"] = None
        row = LeakIncident(organization_id=org, reference="tmp-" + secrets.token_hex(12), filing="initial",
                           filed_at=now, filed_by=actor, deadline_at=deadline, late=late, status="received",
                           published=False, advice={}, identifiers_committed=0, info_requested=False,
                           updated_at=now, **values)
        session.add(row)
        session.flush()
        row.reference = f"KZ-LEAK-{local_date(now).year}-{row.id:06d}"
        self._event(session, row, "filed", actor, details={"late": late})
        self._audit(session, row, actor, "leak_incident.filed",
                    {"late": late, "nature": row.nature, "data_classes": list(row.data_classes)})
        return self._view(session, row, regulator=False)

    def file_addendum(self, session: Session, incident_id: int, data: Mapping[str, Any], *,
                      actor: str) -> IncidentView:
        """An addendum to the organization's incident: the fields in ``data`` (of :data:`AMENDABLE`) change, the
        rest stay as the current view has them. Fabricated incidents take no addenda (Conflict)."""
        parent = self._own(session, incident_id)
        _actor(actor)
        data = self._known(data)
        for key in ("discovered_at", "late_reason"):
            if key in data:
                raise InvalidInput("is fixed by the initial filing (it decides the legal deadline); an addendum "
                                   "cannot change it", field=key)
        if not data:
            raise InvalidInput("an addendum changes at least one field", field="report")
        if parent.status == "fabricated":
            raise Conflict("the regulator found this incident fabricated: it takes no addenda", field="status")
        # Two addenda at once would both be -A<n>: the parent's row lock orders them (PostgreSQL; SQLite has
        # one writer anyway).
        session.execute(select(LeakIncident.id).where(LeakIncident.id == parent.id).with_for_update())
        current = self._current(session, parent)
        changes = self._clean(data, names=[n for n in AMENDABLE if n in data])
        merged = {**{n: current[n] for n in AMENDABLE}, **changes, "discovered_at": parent.discovered_at}
        now = utcnow()
        _check_timeline(merged, now)
        changed = sorted(n for n in changes if _differs(changes[n], current[n]))
        if not changed:
            raise InvalidInput("the addendum changes nothing: every given field already has this value",
                               field="report")
        count = session.scalar(select(func.count()).select_from(LeakIncident)
                               .where(LeakIncident.parent_id == parent.id)) or 0
        merged.pop("discovered_at")
        row = LeakIncident(organization_id=parent.organization_id, reference=f"{parent.reference}-A{count + 1}",
                           filing="addendum", parent_id=parent.id, discovered_at=parent.discovered_at,
                           filed_at=now, filed_by=actor, deadline_at=parent.deadline_at, late=False,
                           status=parent.status, published=False, advice={}, identifiers_committed=0,
                           info_requested=False, updated_at=now, **merged)
        session.add(row)
        session.flush()
        parent.updated_at = now
        self._event(session, parent, "addendum", actor, details={"addendum_id": row.id, "fields": changed})
        self._audit(session, parent, actor, "leak_incident.addendum", {"addendum_id": row.id, "fields": changed})
        return self._view(session, parent, regulator=False)

    def respond(self, session: Session, incident_id: int, text: str, *, actor: str) -> IncidentView:
        """The operator answers the regulator's open request for more information (clears ``info_requested``)."""
        row = self._own(session, incident_id)
        _actor(actor)
        body = _text(text, "text", MAX_TEXT, required=True)
        if not row.info_requested:
            raise Conflict("the regulator has no open request for information on this incident",
                           field="info_requested")
        row.info_requested = False
        row.updated_at = utcnow()
        self._event(session, row, "info_response", actor, text=body)
        self._audit(session, row, actor, "leak_incident.info_response", {})
        return self._view(session, row, regulator=False)

    def record_upload(self, session: Session, incident_id: int, *, upload_public_id: str, tokens_committed: int,
                      counts: dict[str, int], actor: str) -> None:
        """Called by the ingest inside its confirm transaction (session bound to the incident's organization):
        ``tokens_committed`` more identifiers of this incident are in the index (L-PD-LEAK-REGISTER)."""
        row = self._own(session, incident_id)
        _actor(actor)
        if not isinstance(upload_public_id, str) or not 1 <= len(upload_public_id) <= 40:
            raise InvalidInput("must be an upload's public id", field="upload_public_id")
        tokens = _count(tokens_committed, "tokens_committed") or 0
        if not isinstance(counts, Mapping):
            raise InvalidInput("must be an object of counts per kind", field="counts")
        clean_counts = {str(k)[:16]: _count(v, f"counts.{k}") or 0 for k, v in counts.items()}
        if row.status == "fabricated":
            raise Conflict("the regulator found this incident fabricated: it takes no identifiers", field="status")
        row.identifiers_committed = (row.identifiers_committed or 0) + tokens
        row.updated_at = utcnow()
        details = {"upload_public_id": upload_public_id, "tokens_committed": tokens, "counts": clean_counts}
        self._event(session, row, "upload_confirmed", actor, details=details)
        self._audit(session, row, actor, "leak_incident.upload_confirmed", details)

    # --- operator: reading --------------------------------------------------------------------------

    def get(self, session: Session, incident_id: int) -> LeakIncident:
        """The incident (its initial filing's row), tenant-scoped by the session; NotFound otherwise (also for
        an addendum's id: an incident is named by its initial filing)."""
        _id(incident_id, "incident_id")
        row = session.get(LeakIncident, incident_id)
        if row is None or row.filing != "initial":
            raise NotFound("no such incident", field="incident_id")
        tenant = tenant_of(session)
        if tenant is not None and row.organization_id != tenant:  # identity map of a reused session
            raise NotFound("no such incident", field="incident_id")
        return row

    def incident(self, session: Session, incident_id: int) -> IncidentView:
        """The organization's incident with its history (the regulator's notes only where marked visible)."""
        return self._view(session, self._own(session, incident_id), regulator=False)

    def incidents(self, session: Session, *, status: str | None = None) -> list[dict[str, Any]]:
        """The organization's incidents, newest first, as summaries (current values after addenda)."""
        self._org(session)
        stmt = select(LeakIncident).where(LeakIncident.filing == "initial")
        if status is not None:
            stmt = stmt.where(LeakIncident.status == _choice(status, "status", STATUSES))
        return self._summaries(session, list(session.scalars(stmt.order_by(LeakIncident.id.desc()))))

    def find(self, session: Session, ref: str | int) -> LeakIncident:
        """An incident by reference (``KZ-LEAK-2026-000042``) or id, within the session's scope."""
        if isinstance(ref, str) and ref.strip().isdigit():
            ref = int(ref.strip())
        if isinstance(ref, int):
            return self.get(session, ref)
        if not isinstance(ref, str) or not ref.strip().upper().startswith("KZ-LEAK-"):
            raise InvalidInput("an incident is named by its reference (KZ-LEAK-2026-000042) or id", field="incident")
        row = session.scalar(select(LeakIncident).where(LeakIncident.reference == ref.strip().upper()))
        if row is None or row.filing != "initial":
            raise NotFound("no such incident", field="incident")
        return row

    # --- the regulator ------------------------------------------------------------------------------

    def regulator_incidents(self, session: Session, *, authority: Principal | int, status: str | None = None,
                            late: bool | None = None, published: bool | None = None,
                            info_requested: bool | None = None, organization_id: int | None = None,
                            ) -> list[dict[str, Any]]:
        """The regulator's queue: every operator's incidents, newest first, filtered."""
        self._authority(session, authority, write=False)
        stmt = select(LeakIncident).where(LeakIncident.filing == "initial")
        if status is not None:
            stmt = stmt.where(LeakIncident.status == _choice(status, "status", STATUSES))
        for name, value in (("late", late), ("published", published), ("info_requested", info_requested)):
            if value is not None:
                if not isinstance(value, bool):
                    raise InvalidInput("is true, false or omitted", field=name)
                stmt = stmt.where(getattr(LeakIncident, name).is_(value))
        if organization_id is not None:
            stmt = stmt.where(LeakIncident.organization_id == _id(organization_id, "organization_id"))
        rows = list(session.scalars(stmt.order_by(LeakIncident.id.desc())
                                    ))
        return self._summaries(session, rows)

    def regulator_incident(self, session: Session, incident_id: int, *, authority: Principal | int) -> IncidentView:
        self._authority(session, authority, write=False)
        return self._view(session, self._any(session, incident_id), regulator=True)

    def set_status(self, session: Session, incident_id: int, status: str, *, note: str,
                   authority: Principal | int, actor: str | None = None) -> IncidentView:
        """received → verified | disputed | fabricated, disputed → verified | fabricated, verified → disputed,
        with a note the operator sees. Leaving ``verified`` unpublishes."""
        actor = self._authority(session, authority, actor)
        row = self._any(session, incident_id)
        new = _choice(status, "status", STATUSES)
        text = _text(note, "note", MAX_TEXT, required=True)
        if new not in TRANSITIONS[row.status]:
            allowed = ", ".join(TRANSITIONS[row.status]) or "none (final)"
            raise Conflict(f"an incident {row.status} cannot become {new}; allowed: {allowed}", field="status")
        old, now = row.status, utcnow()
        row.status, row.status_changed_at, row.updated_at = new, now, now
        self._event(session, row, "status", actor, by_authority=True, text=text,
                    details={"from": old, "to": new})
        self._audit(session, row, actor, "leak_incident.status", {"from": old, "to": new})
        if row.published and new != "verified":
            self._unpublish(session, row, actor, reason="status")
        return self._view(session, row, regulator=True)

    def publish(self, session: Session, incident_id: int, *, advice: Mapping[str, Any],
                authority: Principal | int, actor: str | None = None) -> IncidentView:
        """Publish a verified incident (Conflict otherwise) with advice to citizens in kk, ru and en."""
        actor = self._authority(session, authority, actor)
        row = self._any(session, incident_id)
        if not isinstance(advice, Mapping):
            raise InvalidInput("advice is an object of kk, ru and en texts", field="advice")
        for key in advice:
            if key not in LANGUAGES:
                raise InvalidInput("advice is given in kk, ru and en only", field=f"advice.{str(key)[:8]}")
        clean = {lang: _text(advice.get(lang), f"advice.{lang}", MAX_TEXT, required=True) for lang in LANGUAGES}
        if row.status != "verified":
            raise Conflict("only a verified incident can be published", field="status")
        now = utcnow()
        was = row.published
        row.published, row.published_at, row.advice, row.updated_at = True, now, clean, now
        self._event(session, row, "published", actor, by_authority=True, details={"republished": was})
        self._audit(session, row, actor, "leak_incident.published", {"republished": was})
        return self._view(session, row, regulator=True)

    def unpublish(self, session: Session, incident_id: int, *, authority: Principal | int, note: str | None = None,
                  actor: str | None = None) -> IncidentView:
        """Take an incident off the public view and the citizens' "published" state (any time)."""
        actor = self._authority(session, authority, actor)
        row = self._any(session, incident_id)
        text = _text(note, "note", MAX_TEXT)
        if not row.published:
            raise Conflict("the incident is not published", field="published")
        self._unpublish(session, row, actor, reason="regulator", text=text)
        return self._view(session, row, regulator=True)

    def add_note(self, session: Session, incident_id: int, text: str, *, visible_to_operator: bool = False,
                 authority: Principal | int, actor: str | None = None) -> IncidentView:
        """A regulator's note; the operator sees it only when ``visible_to_operator``."""
        actor = self._authority(session, authority, actor)
        row = self._any(session, incident_id)
        body = _text(text, "text", MAX_TEXT, required=True)
        if not isinstance(visible_to_operator, bool):
            raise InvalidInput("is true or false", field="visible_to_operator")
        self._event(session, row, "note", actor, by_authority=True, text=body,
                    details={"visible_to_operator": visible_to_operator})
        self._audit(session, row, actor, "leak_incident.note", {"visible_to_operator": visible_to_operator})
        return self._view(session, row, regulator=True)

    def request_info(self, session: Session, incident_id: int, text: str, *, authority: Principal | int,
                     actor: str | None = None) -> IncidentView:
        """Ask the operator for more information (sets ``info_requested`` until the operator answers)."""
        actor = self._authority(session, authority, actor)
        row = self._any(session, incident_id)
        body = _text(text, "text", MAX_TEXT, required=True)
        row.info_requested, row.updated_at = True, utcnow()
        self._event(session, row, "info_request", actor, by_authority=True, text=body)
        self._audit(session, row, actor, "leak_incident.info_requested", {})
        return self._view(session, row, regulator=True)

    def request_takedown(self, session: Session, incident_id: int, *, location: str, addressee: str,
                         note: str | None = None, authority: Principal | int, actor: str | None = None) -> dict[str, Any]:
        """Ask for data the leak made public to be removed (DC Art.17 p.7; L-PD-LEAK-REGISTER)."""
        actor = self._authority(session, authority, actor)
        row = self._any(session, incident_id)
        where = _text(location, "location", MAX_LOCATION, required=True)
        who = _text(addressee, "addressee", MAX_SHORT, required=True)
        text = _text(note, "note", MAX_TEXT)
        if row.status == "fabricated":
            raise Conflict("the incident was found fabricated", field="status")
        takedown = LeakTakedown(organization_id=row.organization_id, incident_id=row.id, location=where,
                                addressee=who, status="requested", requested_at=utcnow(), requested_by=actor,
                                note=text)
        session.add(takedown)
        session.flush()
        self._event(session, row, "takedown_requested", actor, by_authority=True, text=text,
                    details={"takedown_id": takedown.id})
        self._audit(session, row, actor, "leak_takedown.requested", {"takedown_id": takedown.id})
        return _takedown_dict(takedown)

    def resolve_takedown(self, session: Session, incident_id: int, takedown_id: int, status: str, *,
                         note: str | None = None, authority: Principal | int,
                         actor: str | None = None) -> dict[str, Any]:
        """A takedown request ends ``removed`` or ``refused`` (a refusal needs a note)."""
        actor = self._authority(session, authority, actor)
        row = self._any(session, incident_id)
        _id(takedown_id, "takedown_id")
        outcome = _choice(status, "status", tuple(s for s in TAKEDOWN_STATUSES if s != "requested"))
        text = _text(note, "note", MAX_TEXT, required=outcome == "refused")
        takedown = session.get(LeakTakedown, takedown_id)
        if takedown is None or takedown.incident_id != row.id:
            raise NotFound("no such takedown request of this incident", field="takedown_id")
        if takedown.status != "requested":
            raise Conflict(f"the takedown request is already {takedown.status}", field="status")
        takedown.status, takedown.resolved_at, takedown.resolved_by = outcome, utcnow(), actor
        if text:
            takedown.note = text
        self._event(session, row, "takedown_resolved", actor, by_authority=True, text=text,
                    details={"takedown_id": takedown.id, "status": outcome})
        self._audit(session, row, actor, "leak_takedown.resolved", {"takedown_id": takedown.id, "status": outcome})
        return _takedown_dict(takedown)

    # --- internals ----------------------------------------------------------------------------------

    @staticmethod
    def _org(session: Session) -> int:
        org = tenant_of(session)
        if org is None:
            raise PermissionDenied("an operator's incidents need a session scoped to its organization",
                                   field="organization_id")
        return org

    def _own(self, session: Session, incident_id: int) -> LeakIncident:
        self._org(session)
        return self.get(session, incident_id)

    def _any(self, session: Session, incident_id: int) -> LeakIncident:
        _id(incident_id, "incident_id")
        row = session.execute(select(LeakIncident).where(LeakIncident.id == incident_id)
                              ).scalar()
        if row is None or row.filing != "initial":
            raise NotFound("no such incident", field="incident_id")
        return row

    @staticmethod
    def _authority(session: Session, authority: Principal | int, actor: str | None = None, *,
                   write: bool = True) -> str:
        """The regulator's methods run in a platform-level session, for the authorized body only."""
        if tenant_of(session) is not None:
            raise PermissionDenied("the regulator's methods read every operator: use a platform-level session",
                                   field="organization_id")
        if isinstance(authority, bool) or not isinstance(authority, (Principal, int)):
            raise PermissionDenied("the regulator's methods need the authorized body", field="actor")
        require_authority(session, authority)
        if not write:
            return ""
        if actor is None:
            if not isinstance(authority, Principal):
                raise InvalidInput("actor is required", field="actor")
            actor = authority.actor
        return _actor(actor)

    def _unpublish(self, session: Session, row: LeakIncident, actor: str, *, reason: str,
                   text: str | None = None) -> None:
        now = utcnow()
        row.published, row.updated_at = False, now
        self._event(session, row, "unpublished", actor, by_authority=True, text=text, details={"reason": reason})
        self._audit(session, row, actor, "leak_incident.unpublished", {"reason": reason})

    @staticmethod
    def _event(session: Session, row: LeakIncident, kind: str, actor: str, *, by_authority: bool = False,
               text: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        session.add(LeakIncidentEvent(organization_id=row.organization_id, incident_id=row.id, kind=kind,
                                      actor=actor, by_authority=by_authority, text=text,
                                      details=dict(details or {}), at=utcnow()))

    @staticmethod
    def _audit(session: Session, row: LeakIncident, actor: str, action: str, details: Mapping[str, Any]) -> None:
        audit.record(session, actor=actor, action=action, object_type="leak_incident", object_id=str(row.id),
                     organization_id=row.organization_id, details=dict(details))

    @staticmethod
    def _latest_addenda(session: Session, parent_ids: list[int]) -> dict[int, LeakIncident]:
        if not parent_ids:
            return {}
        latest: dict[int, LeakIncident] = {}
        for row in session.scalars(select(LeakIncident).where(LeakIncident.parent_id.in_(parent_ids))
                                   .order_by(LeakIncident.id)):
            latest[row.parent_id] = row  # type: ignore[index]
        return latest

    def _current(self, session: Session, row: LeakIncident, latest: LeakIncident | None = None,
                 *, looked_up: bool = False) -> dict[str, Any]:
        values = _row_values(row)
        if not looked_up:
            latest = self._latest_addenda(session, [row.id]).get(row.id)
        if latest is not None:
            values.update({name: getattr(latest, name) for name in AMENDABLE})
        return values

    def _organizations(self, session: Session, ids: Iterable[int]) -> dict[int, Organization]:
        ids = sorted(set(ids))
        if not ids:
            return {}
        return {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(ids)))}

    def _summaries(self, session: Session, rows: list[LeakIncident]) -> list[dict[str, Any]]:
        latest = self._latest_addenda(session, [r.id for r in rows])
        orgs = self._organizations(session, (r.organization_id for r in rows))
        out = []
        for row in rows:
            values = self._current(session, row, latest.get(row.id), looked_up=True)
            org = orgs.get(row.organization_id)
            out.append({"id": row.id, "reference": row.reference, "organization_id": row.organization_id,
                        "operator_name": org.name if org else "", "operator_bin": org.bin if org else "",
                        **{k: _iso(values[k]) for k in SUMMARY_FIELDS}})
        counts: dict[int, int] = {}
        if rows:
            for parent_id, n in session.execute(
                    select(LeakIncident.parent_id, func.count()).where(LeakIncident.parent_id.in_([r.id for r in rows]))
                    .group_by(LeakIncident.parent_id)):
                counts[parent_id] = n
        for item in out:
            item["addenda"] = counts.get(item["id"], 0)
        return out

    def _view(self, session: Session, row: LeakIncident, *, regulator: bool) -> IncidentView:
        session.flush()
        values = self._current(session, row)
        org = session.get(Organization, row.organization_id)
        addenda_rows = list(session.scalars(select(LeakIncident).where(LeakIncident.parent_id == row.id)
                                            .order_by(LeakIncident.id)))
        events = list(session.scalars(select(LeakIncidentEvent).where(LeakIncidentEvent.incident_id == row.id)
                                      .order_by(*EVENT_ORDER)))
        fields_of = {e.details.get("addendum_id"): e.details.get("fields", []) for e in events if e.kind == "addendum"}
        addenda = [{"id": a.id, "reference": a.reference, "filed_at": _iso(a.filed_at), "filed_by": a.filed_by,
                    "fields": list(fields_of.get(a.id, []))} for a in addenda_rows]
        shown = [_event_dict(e) for e in events
                 if regulator or e.kind != "note" or (e.details or {}).get("visible_to_operator")]
        takedowns = [_takedown_dict(t) for t in session.scalars(
            select(LeakTakedown).where(LeakTakedown.incident_id == row.id).order_by(LeakTakedown.id)
            )]
        return IncidentView(id=row.id, reference=row.reference, organization_id=row.organization_id,
                            operator_name=org.name if org else "", operator_bin=org.bin if org else "",
                            values=values, addenda=addenda, events=shown, takedowns=takedowns)


def incidents_for(platform: Platform) -> Incidents:
    """The platform's incident service (shared by the API, the web pages, the CLI and the other leak parts)."""
    return shared(platform, "_leak_incidents", Incidents)
