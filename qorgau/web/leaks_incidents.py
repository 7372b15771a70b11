"""Incident report pages of the leak register (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

* ``/leaks`` — the operator's incidents with their deadline and late flags, and a link to file a report;
* ``/leaks/incidents/new`` — the report form (every field of an initial filing);
* ``/leaks/incidents/{id}`` — the incident: timeline, history, the addendum form, answers to the regulator's
  requests for information, takedown requests, and a link to upload leaked identifiers (task C's pages);
* ``/leaks/regulator`` — the authorized body's queue of every operator's incidents (filters: status, late,
  published) and ``/leaks/regulator/{id}``: status with a note, publication with advice in kk/ru/en, notes,
  requests for information, takedown requests (DC Art.17 p.7) and their outcome.

Thin over :mod:`qorgau.leaks.incidents`. Times in forms are Almaty local time (``datetime-local`` inputs). The
responsible person's name is shown to the operator and the regulator on these pages only; it never reaches a log.
Vocabulary labels (sector, nature, data classes) are the transparency page's (:func:`qorgau.leaks.transparency.label`)
so that every leak page uses the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..api.deps import Context
from ..api.schemas import MAX_ID
from ..core import auth
from ..core.auth import Principal, Role
from ..core.calendar import ALMATY
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..core.platform import Platform
from ..leaks.models import DATA_CLASSES, NATURES, REPORTER_ROLES, SECTORS, STATUSES, SUBJECT_CATEGORIES
from .aisystems import local_time, localized, plain
from .modules import BY_SLUG, N_
from .routes import choose_language, csrf_valid, error_page, redirect, render, require_principal

router = APIRouter(include_in_schema=False)

OPERATORS = (Role.ADMIN, Role.DPO)
READERS = (Role.ADMIN, Role.DPO, Role.REVIEWER)
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]
TakedownId = Annotated[int, Path(ge=1, le=MAX_ID)]
MAX_TEXT = 20_000
TEXT_FIELDS = ("title", "description", "responsible_person", "responsible_contact", "consequences",
               "measures_taken", "measures_planned", "late_reason")
TIME_FIELDS = ("started_at", "ended_at", "discovered_at", "contained_at", "subjects_notified_at")
COUNT_FIELDS = ("people_affected", "records_affected")
CHOICE_FIELDS = {"reporter_role": REPORTER_ROLES, "sector": SECTORS, "nature": NATURES}
LIST_FIELDS = {"subject_categories": SUBJECT_CATEGORIES, "data_classes": DATA_CLASSES}

STATUS_LABELS = {"received": N_("Received: reported, not yet verified by the authorized body"),
                 "verified": N_("Verified: the authorized body confirmed the report"), "disputed": N_("Disputed: the authorized body questions the report"),
                 "fabricated": N_("Fabricated: the authorized body found the report false")}
STATUS_SHORT = {"received": N_("Received"), "verified": N_("Verified report"), "disputed": N_("Disputed"),
                "fabricated": N_("Fabricated")}
ROLE_LABELS = {"operator": N_("Operator of the database"), "processor": N_("Processor acting for the operator"),
               "third_party": N_("Third party")}
CATEGORY_LABELS = {"customers": N_("Customers"), "employees": N_("Employees"), "patients": N_("Patients"),
                   "students": N_("Students"), "citizens": N_("Citizens in general"),
                   "children": N_("Children under 18"), "applicants": N_("Applicants"),
                   "other": N_("Other people")}
EVENT_LABELS = {"filed": N_("Report filed"), "addendum": N_("Addendum filed"), "status": N_("Status changed"),
                "note": N_("Note of the authorized body"), "info_request": N_("More information requested"),
                "info_response": N_("The operator answered"), "published": N_("Published"),
                "unpublished": N_("Unpublished"), "upload_confirmed": N_("Leaked identifiers committed"),
                "takedown_requested": N_("Takedown requested"), "takedown_resolved": N_("Takedown resolved")}
TAKEDOWN_LABELS = {"requested": N_("Removal requested"), "removed": N_("Data removed"), "refused": N_("Removal refused")}
FIELD_LABELS = {
    "reporter_role": N_("Who reports"), "responsible_person": N_("Responsible person"),
    "responsible_contact": N_("Responsible person's contact"), "sector": N_("Sector of the operator"),
    "title": N_("Short title of the incident"), "description": N_("What happened"),
    "started_at": N_("Breach started"), "ended_at": N_("Breach ended"), "discovered_at": N_("Breach discovered"),
    "contained_at": N_("Breach contained"), "subjects_notified_at": N_("Affected people notified"),
    "nature": N_("Nature of the breach"), "people_affected": N_("People affected"),
    "records_affected": N_("Records affected"), "subject_categories": N_("Categories of people"),
    "data_classes": N_("Classes of leaked data"), "consequences": N_("Likely consequences"),
    "measures_taken": N_("Measures taken"), "measures_planned": N_("Measures planned"),
    "late_reason": N_("Reason for the late report"),
}
FIELD_ERRORS = {
    "required": N_("This field is required."),
    "choice": N_("Choose one of the offered answers."),
    "int": N_("Enter a whole number, 0 or more."),
    "datetime": N_("Enter a date and time."),
    "order": N_("This time is out of order with the other times of the incident."),
    "future": N_("This time is in the future."),
    "late_reason": N_("The report is later than the legal deadline: say why it is late."),
    "too_long": N_("This text is too long."),
    "rejected": N_("This value was not accepted. Check it and try again."),
    "unchanged": N_("Change at least one field for an addendum."),
}
MESSAGES = {
    "filed": N_("The report was filed with the authorized body."),
    "amended": N_("The addendum was filed."),
    "answered": N_("Your answer was sent to the authorized body."),
    "status": N_("The status was changed."),
    "published": N_("The incident was published."),
    "unpublished": N_("The incident was unpublished."),
    "note": N_("The note was saved."),
    "info": N_("The request for information was sent to the operator."),
    "takedown": N_("The takedown request was recorded."),
    "takedown_resolved": N_("The takedown request was resolved."),
}
ACTION_ERRORS = {
    "note_required": N_("Write a note: the operator sees why the status changed."),
    "transition": N_("This status change is not allowed from the current status."),
    "advice": N_("Write the advice to citizens in all three languages."),
    "not_verified": N_("Only a verified incident can be published."),
    "text": N_("Write the text."),
    "takedown": N_("Give where the data were published and who must remove them."),
    "refusal": N_("Say why the removal was refused."),
    "not_open": N_("This request is already resolved."),
    "no_request": N_("The authorized body has no open request for information."),
}


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _service(platform: Platform) -> Any:
    from ..leaks.incidents import incidents_for

    return incidents_for(platform)


def _vocab(lang: str) -> dict[str, dict[str, str]]:
    from ..leaks.transparency import label

    return {dim: {key: label(dim, key, lang) for key in keys}
            for dim, keys in (("sector", SECTORS), ("nature", NATURES), ("data_class", DATA_CLASSES))}


def _page(request: Request, principal: Principal, template: str, *, status: int = 200, **values: Any) -> Response:
    lang = choose_language(request, principal)
    labels = {"status": STATUS_LABELS, "status_short": STATUS_SHORT, "role": ROLE_LABELS,
              "category": CATEGORY_LABELS, "event": EVENT_LABELS, "takedown": TAKEDOWN_LABELS,
              "field": FIELD_LABELS, "errors": FIELD_ERRORS, "actions": ACTION_ERRORS, **_vocab(lang)}
    values.setdefault("errors", {})
    values.setdefault("typed", {})
    return render(request, template, principal=principal, status=status, active="leaks", module=BY_SLUG["leaks"],
                  labels=labels, local=local_time, tr=lambda text: localized(text, lang),
                  vocab={"role": REPORTER_ROLES, "sector": SECTORS, "nature": NATURES,
                         "category": SUBJECT_CATEGORIES, "data_class": DATA_CLASSES, "status": STATUSES},
                  **values)


def _is_authority(platform: Platform, principal: Principal) -> bool:
    if not principal.has_any(Role.REGULATOR):
        return False
    try:
        with platform.db.reader() as session:
            auth.require_authority(session, principal)
    except PermissionDenied:
        return False
    return True


def _operator(request: Request, csrf_token: str | None = None, *, roles: tuple[Role, ...] = OPERATORS
              ) -> tuple[Principal, Response | None]:
    principal = require_principal(request)
    if not principal.has_any(*roles):
        return principal, error_page(request, 403, principal=principal)
    if csrf_token is not None and not csrf_valid(request, principal, csrf_token):
        return principal, error_page(request, 403, principal=principal)
    return principal, None


def _regulator(request: Request, csrf_token: str | None = None) -> tuple[Principal, Response | None]:
    principal = require_principal(request)
    if not _is_authority(_platform(request), principal):
        return principal, error_page(request, 403, principal=principal)
    if csrf_token is not None and not csrf_valid(request, principal, csrf_token):
        return principal, error_page(request, 403, principal=principal)
    return principal, None


def _notice(key: str) -> str | None:
    return MESSAGES.get(key)


async def _read_form(request: Request) -> Any:
    return await request.form(max_fields=200, max_files=0)


# --- reading the report form ----------------------------------------------------------------------------------


def _local(value: str) -> datetime:
    """A ``datetime-local`` value (``2026-11-20T09:30``) as Almaty time."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ALMATY)


def read_report(form: Any, *, names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(values for the service, what was typed, errors by field) of the fields ``names``."""
    values: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in names:
        if name in LIST_FIELDS:
            chosen = [str(v) for v in form.getlist(name)][:50]
            typed[name] = chosen
            if any(c not in LIST_FIELDS[name] for c in chosen):
                errors[name] = "choice"
            values[name] = chosen
            continue
        raw = str(form.get(name) or "").strip()
        typed[name] = raw
        if name in TEXT_FIELDS:
            if len(raw) > MAX_TEXT:
                errors[name] = "too_long"
            values[name] = raw or None
        elif name in TIME_FIELDS:
            if raw:
                try:
                    values[name] = _local(raw[:40])
                except ValueError:
                    errors[name] = "datetime"
            else:
                values[name] = None
        elif name in COUNT_FIELDS:
            if raw:
                if not raw.isdigit() or len(raw) > 15:
                    errors[name] = "int"
                else:
                    values[name] = int(raw)
            else:
                values[name] = None
        elif name in CHOICE_FIELDS:
            if raw and raw not in CHOICE_FIELDS[name]:
                errors[name] = "choice"
            values[name] = raw or None
    for name in ("title", "responsible_person", "discovered_at", "nature"):
        if name in names and not typed.get(name) and name not in errors:
            errors[name] = "required"
    if "data_classes" in names and not typed.get("data_classes") and "data_classes" not in errors:
        errors["data_classes"] = "required"
    return values, typed, errors


def service_error(exc: InvalidInput) -> tuple[str, str]:
    """The form field and error key for a service refusal (the service names the field, never the value)."""
    field = (exc.field or "").split(".")[0]
    message = exc.message or ""
    if field == "late_reason":
        return field, "late_reason"
    if field in TIME_FIELDS:
        if "future" in message:
            return field, "future"
        if "before" in message:
            return field, "order"
        return field, "datetime"
    if field == "report":
        return "report", "unchanged"
    if field in FIELD_LABELS:
        return field, "required" if "required" in message or "at least one" in message else "rejected"
    return "report", "rejected"


def _form_values(view: Mapping[str, Any]) -> dict[str, Any]:
    """An incident's current values as the form shows them."""
    typed: dict[str, Any] = {}
    for name in FIELD_LABELS:
        value = view.get(name)
        if name in TIME_FIELDS:
            typed[name] = datetime.fromisoformat(value).astimezone(ALMATY).strftime("%Y-%m-%dT%H:%M") if value else ""
        elif name in LIST_FIELDS:
            typed[name] = list(value or [])
        else:
            typed[name] = "" if value is None else str(value)
    return typed


# --- the operator ----------------------------------------------------------------------------------------------


@router.get("/leaks")
def incidents_page(request: Request, done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal = require_principal(request)
    platform = _platform(request)
    is_authority = _is_authority(platform, principal)
    if not principal.has_any(*READERS):
        if is_authority:
            return redirect("/leaks/regulator")
        return error_page(request, 403, principal=principal)
    with Context(platform, principal).read() as session:
        incidents = _service(platform).incidents(session)
    now = datetime.now(ALMATY)
    return _page(request, principal, "leaks_incidents.html", incidents=incidents, notice=_notice(done),
                 can_file=principal.has_any(*OPERATORS), is_authority=is_authority, now=now.isoformat())


def _form_page(request: Request, principal: Principal, *, typed: dict[str, Any], errors: dict[str, str],
               status: int = 200) -> Response:
    return _page(request, principal, "leaks_incident_form.html", status=status, typed=typed, errors=errors)


@router.get("/leaks/incidents/new")
def new_incident_form(request: Request) -> Response:
    principal, refused = _operator(request)
    if refused is not None:
        return refused
    return _form_page(request, principal, typed={"reporter_role": "operator", "data_classes": []}, errors={})


@router.post("/leaks/incidents/new")
async def file_incident(request: Request) -> Response:
    form = await _read_form(request)
    return await run_in_threadpool(_file_incident, request, form)


def _file_incident(request: Request, form: Any) -> Response:
    principal, refused = _operator(request, str(form.get("csrf_token") or ""))
    if refused is not None:
        return refused
    platform = _platform(request)
    names = tuple(FIELD_LABELS)
    values, typed, errors = read_report(form, names=names)
    if errors:
        return _form_page(request, principal, typed=typed, errors=errors, status=422)
    ctx = Context(platform, principal)
    data = {k: v for k, v in values.items() if v is not None and v != []}
    if "data_classes" not in data:
        data["data_classes"] = []
    try:
        with ctx.write() as session:
            view = _service(platform).file_report(session, data, actor=ctx.actor)
    except InvalidInput as exc:
        field, key = service_error(exc)
        return _form_page(request, principal, typed=typed, errors={field: key}, status=422)
    return redirect(f"/leaks/incidents/{view.id}?done=filed")


def _detail(request: Request, principal: Principal, incident_id: int, *, status: int = 200,
            **values: Any) -> Response:
    platform = _platform(request)
    try:
        with Context(platform, principal).read() as session:
            view = plain(_service(platform).incident(session, incident_id))
    except NotFound:
        return error_page(request, 404, principal=principal)
    values.setdefault("typed", _form_values(view))
    return _page(request, principal, "leaks_incident.html", status=status, incident=view,
                 can_file=principal.has_any(*OPERATORS), amendable=[n for n in FIELD_LABELS
                                                                    if n not in ("discovered_at", "late_reason")],
                 **values)


@router.get("/leaks/incidents/{incident_id}")
def incident_page(request: Request, incident_id: IncidentId,
                  done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal, refused = _operator(request, roles=READERS)
    if refused is not None:
        return refused
    return _detail(request, principal, incident_id, notice=_notice(done))


@router.post("/leaks/incidents/{incident_id}/addendum")
async def file_addendum(request: Request, incident_id: IncidentId) -> Response:
    form = await _read_form(request)
    return await run_in_threadpool(_file_addendum, request, incident_id, form)


def _file_addendum(request: Request, incident_id: int, form: Any) -> Response:
    principal, refused = _operator(request, str(form.get("csrf_token") or ""))
    if refused is not None:
        return refused
    platform = _platform(request)
    ctx = Context(platform, principal)
    try:
        with ctx.read() as session:
            current = _form_values(plain(_service(platform).incident(session, incident_id)))
    except NotFound:
        return error_page(request, 404, principal=principal)
    names = tuple(n for n in FIELD_LABELS if n not in ("discovered_at", "late_reason"))
    values, typed, errors = read_report(form, names=names)
    if not errors:
        def differs(n: str) -> bool:
            if n in LIST_FIELDS:
                return sorted(typed[n]) != sorted(current.get(n) or [])
            return typed[n] != current.get(n)

        changed = {n: values[n] for n in names if differs(n)}
        if not changed:
            errors = {"report": "unchanged"}
    if errors:
        return _detail(request, principal, incident_id, status=422, typed=typed, errors=errors)
    try:
        with ctx.write() as session:
            _service(platform).file_addendum(session, incident_id, changed, actor=ctx.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict:
        return _detail(request, principal, incident_id, status=409, typed=typed, errors={"report": "rejected"})
    except InvalidInput as exc:
        field, key = service_error(exc)
        return _detail(request, principal, incident_id, status=422, typed=typed, errors={field: key})
    return redirect(f"/leaks/incidents/{incident_id}?done=amended")


@router.post("/leaks/incidents/{incident_id}/response")
def answer_request(request: Request, incident_id: IncidentId,
                   text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
                   csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _operator(request, csrf_token)
    if refused is not None:
        return refused
    platform = _platform(request)
    ctx = Context(platform, principal)
    if not text.strip():
        return _detail(request, principal, incident_id, status=422, action_error="text")
    try:
        with ctx.write() as session:
            _service(platform).respond(session, incident_id, text, actor=ctx.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict:
        return _detail(request, principal, incident_id, status=409, action_error="no_request")
    return redirect(f"/leaks/incidents/{incident_id}?done=answered")


# --- the regulator ---------------------------------------------------------------------------------------------


def _flag(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@router.get("/leaks/regulator")
def regulator_queue(request: Request, status: Annotated[str, Query(max_length=16)] = "",
                    late: Annotated[str, Query(max_length=3)] = "",
                    published: Annotated[str, Query(max_length=3)] = "") -> Response:
    principal, refused = _regulator(request)
    if refused is not None:
        return refused
    platform = _platform(request)
    filters = {"status": status if status in STATUSES else "", "late": late if late in ("yes", "no") else "",
               "published": published if published in ("yes", "no") else ""}
    with platform.db.reader() as session:
        incidents = _service(platform).regulator_incidents(
            session, authority=principal, status=filters["status"] or None, late=_flag(filters["late"]),
            published=_flag(filters["published"]))
    return _page(request, principal, "leaks_regulator.html", incidents=incidents, filters=filters)


def _regulator_detail(request: Request, principal: Principal, incident_id: int, *, status: int = 200,
                      **values: Any) -> Response:
    platform = _platform(request)
    try:
        with platform.db.reader() as session:
            view = plain(_service(platform).regulator_incident(session, incident_id, authority=principal))
    except NotFound:
        return error_page(request, 404, principal=principal)
    from ..leaks.incidents import TRANSITIONS

    return _page(request, principal, "leaks_regulator_incident.html", status=status, incident=view,
                 next_statuses=TRANSITIONS[view["status"]], **values)


@router.get("/leaks/regulator/{incident_id}")
def regulator_incident(request: Request, incident_id: IncidentId,
                       done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal, refused = _regulator(request)
    if refused is not None:
        return refused
    return _regulator_detail(request, principal, incident_id, notice=_notice(done))


async def _regulator_action(request: Request, incident_id: int, action: str,
                            takedown_id: int | None = None) -> Response:
    form = await _read_form(request)
    return await run_in_threadpool(_do_regulator_action, request, incident_id, action, form, takedown_id)


def _do_regulator_action(request: Request, incident_id: int, action: str, form: Any,
                         takedown_id: int | None) -> Response:
    principal, refused = _regulator(request, str(form.get("csrf_token") or ""))
    if refused is not None:
        return refused
    platform = _platform(request)
    service = _service(platform)
    field = lambda name: str(form.get(name) or "")[:MAX_TEXT].strip()  # noqa: E731
    typed = {k: field(k) for k in ("status", "note", "text", "location", "addressee", "outcome", "advice_kk",
                                   "advice_ru", "advice_en")}

    def again(key: str, status: int = 422) -> Response:
        return _regulator_detail(request, principal, incident_id, status=status, action_error=key, action=action,
                                 typed=typed)

    advice = {lang: typed[f"advice_{lang}"] for lang in ("kk", "ru", "en")}
    missing = {"status": not typed["note"], "published": not all(advice.values()), "note": not typed["text"],
               "info": not typed["text"], "takedown": not typed["location"] or not typed["addressee"],
               "takedown_resolved": typed["outcome"] == "refused" and not typed["note"]}
    if missing.get(action):
        return again({"status": "note_required", "published": "advice", "takedown": "takedown",
                      "takedown_resolved": "refusal"}.get(action, "text"))
    try:
        with platform.db.transaction() as session:
            if action == "status":
                service.set_status(session, incident_id, typed["status"], note=typed["note"], authority=principal)
            elif action == "published":
                service.publish(session, incident_id, advice=advice, authority=principal)
            elif action == "unpublished":
                service.unpublish(session, incident_id, note=typed["note"] or None, authority=principal)
            elif action == "note":
                service.add_note(session, incident_id, typed["text"], authority=principal,
                                 visible_to_operator=form.get("visible_to_operator") == "yes")
            elif action == "info":
                service.request_info(session, incident_id, typed["text"], authority=principal)
            elif action == "takedown":
                service.request_takedown(session, incident_id, location=typed["location"],
                                         addressee=typed["addressee"], note=typed["note"] or None,
                                         authority=principal)
            elif action == "takedown_resolved":
                service.resolve_takedown(session, incident_id, takedown_id, typed["outcome"],
                                         note=typed["note"] or None, authority=principal)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict as exc:
        key = {"status": "not_verified" if action == "published" else "transition"}.get(exc.field or "", "not_open")
        return again(key, 409)
    except InvalidInput as exc:
        name = (exc.field or "").split(".")[0]
        return again({"note": "note_required" if action == "status" else "refusal", "advice": "advice",
                      "location": "takedown", "addressee": "takedown", "status": "transition"}.get(name, "text"))
    return redirect(f"/leaks/regulator/{incident_id}?done={action}")


@router.post("/leaks/regulator/{incident_id}/status")
async def change_status(request: Request, incident_id: IncidentId) -> Response:
    return await _regulator_action(request, incident_id, "status")


@router.post("/leaks/regulator/{incident_id}/publish")
async def publish(request: Request, incident_id: IncidentId) -> Response:
    return await _regulator_action(request, incident_id, "published")


@router.post("/leaks/regulator/{incident_id}/unpublish")
async def unpublish(request: Request, incident_id: IncidentId) -> Response:
    return await _regulator_action(request, incident_id, "unpublished")


@router.post("/leaks/regulator/{incident_id}/note")
async def add_note(request: Request, incident_id: IncidentId) -> Response:
    return await _regulator_action(request, incident_id, "note")


@router.post("/leaks/regulator/{incident_id}/info-request")
async def request_info(request: Request, incident_id: IncidentId) -> Response:
    return await _regulator_action(request, incident_id, "info")


@router.post("/leaks/regulator/{incident_id}/takedown")
async def request_takedown(request: Request, incident_id: IncidentId) -> Response:
    return await _regulator_action(request, incident_id, "takedown")


@router.post("/leaks/regulator/{incident_id}/takedowns/{takedown_id}")
async def resolve_takedown(request: Request, incident_id: IncidentId, takedown_id: TakedownId) -> Response:
    return await _regulator_action(request, incident_id, "takedown_resolved", takedown_id)


__all__ = ["router"]
