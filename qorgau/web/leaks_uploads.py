"""Leak file upload pages (issue 8, two-phase ingest; L-PD-BREACH, L-PD-LEAK-REGISTER).

* ``/leaks/incidents/{incident_id}/uploads/new`` — the upload form and the incident's earlier uploads;
* ``/leaks/uploads/{upload_id}`` — the review of a parsed upload: counts per kind, masked samples, rejected lines
  by number and reason, time left before it expires, Confirm / Discard; after confirming, the result.

Administrators and data protection officers of the incident's organization only (as the API). Thin over
:func:`qorgau.leaks.ingest.ingest_for`. The file is parsed from memory (the multipart parser's spool limit is raised
to the upload limit), never stored; nothing on these pages shows an identifier, only masks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..api.schemas import MAX_ID
from ..core.auth import Principal, Role
from ..core.errors import Conflict, InvalidInput, NotFound
from ..core.platform import Platform
from ..leaks.models import UPLOAD_FORMATS
from .aisystems import local_time
from .modules import BY_SLUG, N_
from .routes import csrf_valid, error_page, redirect, render, require_principal

router = APIRouter(include_in_schema=False)

OPERATORS = (Role.ADMIN, Role.DPO)
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]
UploadId = Annotated[str, Path(min_length=1, max_length=40)]
WEB_UPLOAD_PATH = "/leaks/incidents/{incident_id}/uploads"

KIND_LABELS = {"iin": N_("IIN"), "phone": N_("Phone numbers"), "email": N_("E-mail addresses")}
REASON_LABELS = {
    "undecodable": N_("The line could not be decoded (wrong encoding or binary data)"),
    "iin_invalid": N_("An IIN-like number fails the checksum or the birth date"),
    "phone_invalid": N_("Not a valid phone number"),
    "email_invalid": N_("Not a valid e-mail address"),
    "no_identifier": N_("No IIN, phone number or e-mail address in the line"),
    "malformed": N_("The line cannot be read as a record of the file's format"),
}
STATUS_LABELS = {"parsed": N_("Waiting for confirmation"), "confirmed": N_("Committed to the register"),
                 "expired": N_("Expired: not confirmed in time"), "discarded": N_("Discarded"),
                 "failed": N_("Failed")}
FORMAT_LABELS = {"csv": "CSV", "jsonl": "JSON Lines", "xlsx": "XLSX", "text": N_("Text dump"), "spark": "Spark"}
MESSAGES = {"confirmed": N_("The identifiers were committed to the register."),
            "discarded": N_("The upload was discarded and its identifiers deleted.")}
ERRORS = {"expired": N_("This upload expired before it was confirmed. Upload the file again."),
          "state": N_("This upload can no longer be changed."),
          "file": N_("Choose a leak file to upload."),
          "too_big": N_("The file is larger than the upload limit."),
          "unreadable": N_("The file could not be read in the chosen format."),
          "hints": N_("Write column hints as COLUMN=KIND pairs separated by commas, e.g. ИИН=iin, 3=phone."),
          "fabricated": N_("The authorized body found this incident fabricated: it takes no uploads.")}


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _ingest(platform: Platform) -> Any:
    from ..leaks.ingest import ingest_for

    return ingest_for(platform)


def _operator(request: Request, csrf_token: str | None = None, *, check: bool = False
              ) -> tuple[Principal, Response | None]:
    principal = require_principal(request)
    if not principal.has_any(*OPERATORS) or principal.organization_id is None:
        return principal, error_page(request, 403, principal=principal)
    if check and not csrf_valid(request, principal, csrf_token):
        return principal, error_page(request, 403, principal=principal)
    return principal, None


def _page(request: Request, principal: Principal, template: str, *, status: int = 200, **values: Any) -> Response:
    labels = {"kind": KIND_LABELS, "reason": REASON_LABELS, "status": STATUS_LABELS, "format": FORMAT_LABELS,
              "errors": ERRORS}
    return render(request, template, principal=principal, status=status, active="leaks", module=BY_SLUG["leaks"],
                  labels=labels, local=local_time, formats=UPLOAD_FORMATS, **values)


def _incident(platform: Platform, org_id: int, incident_id: int) -> Any:
    from ..leaks.incidents import incidents_for

    with platform.db.reader(org_id) as session:
        row = incidents_for(platform).get(session, incident_id)
        return {"id": row.id, "reference": row.reference, "title": row.title, "status": row.status}


def _left(seconds: int) -> dict[str, int]:
    return {"hours": seconds // 3600, "minutes": (seconds % 3600) // 60}


def _form_page(request: Request, principal: Principal, incident_id: int, *, error: str | None = None,
               status: int = 200) -> Response:
    platform = _platform(request)
    try:
        incident = _incident(platform, principal.organization_id, incident_id)  # type: ignore[arg-type]
        uploads = _ingest(platform).list(principal.organization_id, incident_id)
    except NotFound:
        return error_page(request, 404, principal=principal)
    return _page(request, principal, "leaks_upload_form.html", status=status, incident=incident, uploads=uploads,
                 error=error, max_mib=_ingest(platform).max_bytes // (1 << 20),
                 ttl_hours=int(_ingest(platform).ttl.total_seconds() // 3600))


@router.get("/leaks/incidents/{incident_id}/uploads/new")
def upload_form(request: Request, incident_id: IncidentId) -> Response:
    principal, refused = _operator(request)
    if refused:
        return refused
    return _form_page(request, principal, incident_id)


def _hints(raw: str) -> dict[str, str] | None:
    hints: dict[str, str] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, kind = part.rpartition("=")
        if not sep or not name.strip() or kind.strip() not in KIND_LABELS:
            raise ValueError("hints")
        hints[name.strip()] = kind.strip()
    return hints or None


@router.post("/leaks/incidents/{incident_id}/uploads")
async def upload(request: Request, incident_id: IncidentId) -> Response:
    principal, refused = _operator(request)
    if refused:
        return refused
    platform = _platform(request)
    service = _ingest(platform)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return _form_page(request, principal, incident_id, error="file", status=422)
    parser = MultiPartParser(request.headers, request.stream(), max_files=1, max_fields=10)
    parser.spool_max_size = service.max_bytes + 1  # in memory: the raw file never touches the disk
    try:
        form = await parser.parse()
    except (MultiPartException, KeyError, ValueError):  # no boundary, a broken envelope
        return _form_page(request, principal, incident_id, error="unreadable", status=422)
    try:
        csrf = form.get("csrf_token")
        if not csrf_valid(request, principal, csrf if isinstance(csrf, str) else None):
            return error_page(request, 403, principal=principal)
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return _form_page(request, principal, incident_id, error="file", status=422)
        fmt = form.get("format")
        fmt = fmt if isinstance(fmt, str) and fmt in UPLOAD_FORMATS else None
        raw_hints = form.get("column_hints")
        try:
            hints = _hints(raw_hints if isinstance(raw_hints, str) else "")
        except ValueError:
            return _form_page(request, principal, incident_id, error="hints", status=422)
        try:
            view = await run_in_threadpool(service.upload, principal.organization_id, incident_id, file.file,
                                           file.filename, format=fmt, actor=principal.actor, column_hints=hints)
        except NotFound:
            return error_page(request, 404, principal=principal)
        except Conflict:
            return _form_page(request, principal, incident_id, error="fabricated", status=409)
        except InvalidInput as exc:
            error = "too_big" if "limit" in exc.message else "hints" if exc.field == "column_hints" else "unreadable"
            return _form_page(request, principal, incident_id, error=error, status=422)
    finally:
        await form.close()
    return redirect(f"/leaks/uploads/{view.public_id}")


@router.get("/leaks/uploads/{upload_id}")
def review(request: Request, upload_id: UploadId, done: Annotated[str | None, Query(max_length=20)] = None,
           error: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    principal, refused = _operator(request)
    if refused:
        return refused
    platform = _platform(request)
    try:
        view = _ingest(platform).get(principal.organization_id, upload_id)
        incident = _incident(platform, principal.organization_id, view.incident_id)  # type: ignore[arg-type]
    except NotFound:
        return error_page(request, 404, principal=principal)
    template = "leaks_upload_review.html" if view.status == "parsed" else "leaks_upload_result.html"
    return _page(request, principal, template, upload=view, incident=incident, left=_left(view.expires_in_seconds()),
                 notice=MESSAGES.get(done or ""), error=error if error in ERRORS else None)


async def _action(request: Request, upload_id: str, action: str) -> Response:
    principal, refused = _operator(request)
    if refused:
        return refused
    form = await request.form(max_fields=5, max_files=0)
    csrf = form.get("csrf_token")
    if not csrf_valid(request, principal, csrf if isinstance(csrf, str) else None):
        return error_page(request, 403, principal=principal)
    service = _ingest(_platform(request))
    try:
        if action == "confirm":
            await run_in_threadpool(service.confirm, principal.organization_id, upload_id, actor=principal.actor)
        else:
            await run_in_threadpool(service.discard, principal.organization_id, upload_id, principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict as exc:
        return redirect(f"/leaks/uploads/{upload_id}?error={'expired' if 'expired' in exc.message else 'state'}")
    return redirect(f"/leaks/uploads/{upload_id}?done={'confirmed' if action == 'confirm' else 'discarded'}")


@router.post("/leaks/uploads/{upload_id}/confirm")
async def confirm(request: Request, upload_id: UploadId) -> Response:
    return await _action(request, upload_id, "confirm")


@router.post("/leaks/uploads/{upload_id}/discard")
async def discard(request: Request, upload_id: UploadId) -> Response:
    return await _action(request, upload_id, "discard")
