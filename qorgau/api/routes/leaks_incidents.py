"""Incident reports of the leak register over HTTP (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

* Operators (``/leaks/incidents…``): file an initial report or an addendum, list and read their own incidents,
  answer the regulator's requests for information. ``admin`` and ``dpo`` file and answer; ``reviewer`` reads.
  Every route works inside the caller's organization: another operator's incident is "not found".
* The regulator (``/regulator/leaks/incidents…``): the authorized body's ``regulator`` role only, checked in a
  dependency before the request body is read (like :mod:`.regulator`); these routes open platform-level
  sessions, as supervising every operator is their purpose. Status changes with a note, publication with
  advice in kk/ru/en, notes, requests for information, takedown requests (DC Art.17 p.7) and their outcome.

Thin adapters over :mod:`qorgau.leaks.incidents`; its views are sent as they are. Field errors name the field
(``discovered_at``, ``data_classes.1``, ``late_reason``), never the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import Field

from ...core import auth
from ...core.auth import Role
from ...leaks.incidents import Incidents, incidents_for
from ..deps import Context, requires
from ..schemas import MAX_ID, Strict
from ..schemas_aisystems import out

router = APIRouter(tags=["leak-incidents"])

IncidentId = Annotated[int, Path(ge=0, le=MAX_ID, description="An incident (the id of its initial filing).")]
TakedownId = Annotated[int, Path(ge=0, le=MAX_ID, description="A takedown request of the incident.")]
ReaderCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REVIEWER))]
StaffCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO))]

Status = Literal["received", "verified", "disputed", "fabricated"]
ShortText = Annotated[str, Field(max_length=300)]
LongText = Annotated[str, Field(max_length=20_000)]


class _Report(Strict):
    reporter_role: Literal["operator", "processor", "third_party"] | None = None
    responsible_person: ShortText | None = None
    responsible_contact: ShortText | None = None
    sector: str | None = Field(default=None, max_length=32)
    title: ShortText | None = None
    description: LongText | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    contained_at: datetime | None = None
    subjects_notified_at: datetime | None = None
    nature: str | None = Field(default=None, max_length=32)
    people_affected: int | None = Field(default=None, ge=0, le=2**31 - 1)
    records_affected: int | None = Field(default=None, ge=0, le=2**31 - 1)
    subject_categories: list[Annotated[str, Field(max_length=32)]] | None = Field(default=None, max_length=20)
    data_classes: list[Annotated[str, Field(max_length=32)]] | None = Field(default=None, max_length=40)
    consequences: LongText | None = None
    measures_taken: LongText | None = None
    measures_planned: LongText | None = None


class ReportIn(_Report):
    """An initial filing: vocabularies as in ``qorgau/leaks/models.py``; times in ISO 8601 with an offset."""

    discovered_at: datetime
    late_reason: LongText | None = None


class AddendumIn(_Report):
    """The fields that change (at least one); ``discovered_at`` is fixed by the initial filing."""


class ResponseIn(Strict):
    text: LongText = Field(min_length=1)


class StatusIn(Strict):
    status: Status
    note: LongText = Field(min_length=1)


class AdviceIn(Strict):
    kk: LongText = Field(min_length=1)
    ru: LongText = Field(min_length=1)
    en: LongText = Field(min_length=1)


class PublishIn(Strict):
    advice: AdviceIn


class UnpublishIn(Strict):
    note: LongText | None = None


class NoteIn(Strict):
    text: LongText = Field(min_length=1)
    visible_to_operator: bool = False


class TakedownIn(Strict):
    location: str = Field(min_length=1, max_length=2000)
    addressee: ShortText = Field(min_length=1)
    note: LongText | None = None


class TakedownResolutionIn(Strict):
    status: Literal["removed", "refused"]
    note: LongText | None = None


def _service(ctx: Context) -> Incidents:
    return incidents_for(ctx.platform)


def _fields(body: _Report) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


# --- operators -----------------------------------------------------------------------------------------------


@router.post("/leaks/incidents", status_code=status.HTTP_201_CREATED,
             summary="File an incident report (L-PD-BREACH: within 1 working day of detection; a late report needs "
                     "late_reason)")
def file_report(body: ReportIn, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        view = _service(ctx).file_report(s, _fields(body), actor=ctx.actor)
    return out(view, status.HTTP_201_CREATED, {"Location": f"/api/v1/leaks/incidents/{view.id}"})


@router.get("/leaks/incidents", summary="Your organization's incidents (current values after addenda), newest first")
def list_incidents(ctx: ReaderCtx, status_: Annotated[Status | None, Query(alias="status")] = None) -> JSONResponse:
    with ctx.read() as s:
        return out(_service(ctx).incidents(s, status=status_))


@router.get("/leaks/incidents/{incident_id}", summary="One of your incidents: current report, addenda, history "
                                                      "(the regulator's notes marked visible), takedown requests")
def get_incident(incident_id: IncidentId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return out(_service(ctx).incident(s, incident_id))


@router.post("/leaks/incidents/{incident_id}/addenda", status_code=status.HTTP_201_CREATED,
             summary="File an addendum: the fields that changed")
def file_addendum(incident_id: IncidentId, body: AddendumIn, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        view = _service(ctx).file_addendum(s, incident_id, _fields(body), actor=ctx.actor)
    return out(view, status.HTTP_201_CREATED)


@router.post("/leaks/incidents/{incident_id}/responses", summary="Answer the regulator's request for information")
def respond(incident_id: IncidentId, body: ResponseIn, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        return out(_service(ctx).respond(s, incident_id, body.text, actor=ctx.actor))


# --- the regulator ---------------------------------------------------------------------------------------------


def _authority(ctx: Annotated[Context, Depends(requires(Role.REGULATOR))]) -> Context:
    """The regulator role of the authorized body, checked before the request body is read."""
    with ctx.platform.db.reader() as session:
        auth.require_authority(session, ctx.principal)
    return ctx


RegulatorCtx = Annotated[Context, Depends(_authority)]


@router.get("/regulator/leaks/incidents", summary="Every operator's incidents (the regulator's queue), filtered")
def regulator_list(ctx: RegulatorCtx, status_: Annotated[Status | None, Query(alias="status")] = None,
                   late: Annotated[bool | None, Query()] = None, published: Annotated[bool | None, Query()] = None,
                   info_requested: Annotated[bool | None, Query()] = None,
                   organization_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> JSONResponse:
    with ctx.platform.db.reader() as s:
        return out(_service(ctx).regulator_incidents(s, authority=ctx.principal, status=status_, late=late,
                                                     published=published, info_requested=info_requested,
                                                     organization_id=organization_id))


@router.get("/regulator/leaks/incidents/{incident_id}", summary="An incident with every note")
def regulator_get(incident_id: IncidentId, ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.reader() as s:
        return out(_service(ctx).regulator_incident(s, incident_id, authority=ctx.principal))


@router.post("/regulator/leaks/incidents/{incident_id}/status",
             summary="received → verified/disputed/fabricated, disputed → verified/fabricated, verified → disputed "
                     "(with a note the operator sees)")
def set_status(incident_id: IncidentId, body: StatusIn, ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.transaction() as s:
        return out(_service(ctx).set_status(s, incident_id, body.status, note=body.note, authority=ctx.principal))


@router.post("/regulator/leaks/incidents/{incident_id}/publication",
             summary="Publish a verified incident with advice to citizens in kk, ru and en")
def publish(incident_id: IncidentId, body: PublishIn, ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.transaction() as s:
        return out(_service(ctx).publish(s, incident_id, advice=body.advice.model_dump(), authority=ctx.principal))


@router.post("/regulator/leaks/incidents/{incident_id}/unpublication", summary="Unpublish an incident")
def unpublish(incident_id: IncidentId, body: UnpublishIn, ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.transaction() as s:
        return out(_service(ctx).unpublish(s, incident_id, note=body.note, authority=ctx.principal))


@router.post("/regulator/leaks/incidents/{incident_id}/notes",
             summary="A note (hidden from the operator unless visible_to_operator)")
def add_note(incident_id: IncidentId, body: NoteIn, ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.transaction() as s:
        return out(_service(ctx).add_note(s, incident_id, body.text, visible_to_operator=body.visible_to_operator,
                                          authority=ctx.principal))


@router.post("/regulator/leaks/incidents/{incident_id}/info-requests", summary="Ask the operator for more information")
def request_info(incident_id: IncidentId, body: ResponseIn, ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.transaction() as s:
        return out(_service(ctx).request_info(s, incident_id, body.text, authority=ctx.principal))


@router.post("/regulator/leaks/incidents/{incident_id}/takedowns", status_code=status.HTTP_201_CREATED,
             summary="Ask for data the leak made public to be removed (DC Art.17 p.7)")
def request_takedown(incident_id: IncidentId, body: TakedownIn, ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.transaction() as s:
        return out(_service(ctx).request_takedown(s, incident_id, location=body.location, addressee=body.addressee,
                                                  note=body.note, authority=ctx.principal), status.HTTP_201_CREATED)


@router.post("/regulator/leaks/incidents/{incident_id}/takedowns/{takedown_id}/resolution",
             summary="Record a takedown's outcome: removed, or refused (with a note)")
def resolve_takedown(incident_id: IncidentId, takedown_id: TakedownId, body: TakedownResolutionIn,
                     ctx: RegulatorCtx) -> JSONResponse:
    with ctx.platform.db.transaction() as s:
        return out(_service(ctx).resolve_takedown(s, incident_id, takedown_id, body.status, note=body.note,
                                                  authority=ctx.principal))


__all__ = ["router"]
