"""Two-phase ingest of leak files over HTTP (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

* ``POST /leaks/incidents/{incident_id}/uploads`` — the leak file as ``multipart/form-data`` (field ``file``,
  optional ``format`` and ``column_hints``) or as the raw request body with ``?filename=…`` (the raw body is
  never written to disk; a multipart body is held in memory too — the parser's spool limit is raised to the
  upload limit). Answers the review: counts, masked samples, rejected lines by number, expiry.
* ``GET /leaks/uploads/{upload_id}``, ``POST …/confirm`` (commits one segment; idempotent), ``POST …/discard``,
  ``GET /leaks/incidents/{incident_id}/uploads``.

Roles: ``admin`` and ``dpo`` of the incident's organization (the operator's people responsible for the breach
notice); every route works inside the caller's organization, so another operator's incident or upload is
"not found". Thin over :func:`qorgau.leaks.ingest.ingest_for`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ...core.errors import InvalidInput
from ...leaks.ingest import ingest_for
from ...leaks.models import UPLOAD_FORMATS
from ..deps import StaffCtx
from ..schemas import MAX_ID

router = APIRouter(tags=["leak-uploads"])

UPLOAD_PATH = "/api/v1/leaks/incidents/{incident_id}/uploads"
WEB_UPLOAD_PATH = "/leaks/incidents/{incident_id}/uploads"  # the upload page's form (qorgau/web/leaks_uploads.py)
MULTIPART_OVERHEAD = 1 << 20

IncidentId = Annotated[int, Path(ge=0, le=MAX_ID, description="An incident of your organization.")]
UploadId = Annotated[str, Path(min_length=1, max_length=40, description="An upload's public id (lu-…).")]


def upload_body_limits(settings: Any) -> dict[str, int]:
    """The upload route's body limit (``BodySizeLimit`` in ``api/app.py``): the leak-file cap plus room for the
    multipart envelope, never less than the general limit."""
    cap = int(getattr(settings, "leaks_upload_max_bytes", 512 * 1024 * 1024))
    limit = max(settings.max_request_bytes, cap + MULTIPART_OVERHEAD)
    return {UPLOAD_PATH: limit, WEB_UPLOAD_PATH: limit}


def _hints(raw: str | None) -> dict[str, str] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput('column_hints must be a JSON object such as {"IIN": "iin", "3": "phone"}',
                           field="column_hints") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput('column_hints must be a JSON object such as {"IIN": "iin", "3": "phone"}',
                           field="column_hints")
    return {str(k): v for k, v in value.items()}


def _format(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    if raw not in UPLOAD_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(UPLOAD_FORMATS)}", field="format")
    return raw


@router.post("/leaks/incidents/{incident_id}/uploads", status_code=201,
             summary="Upload a leak file: identifiers are extracted and shown (masked) for confirmation")
async def upload(incident_id: IncidentId, ctx: StaffCtx, request: Request,
                 filename: Annotated[str | None, Query(max_length=300, description="Raw body: the file's name.")] = None,
                 format: Annotated[str | None, Query(max_length=16, description="csv, jsonl, xlsx or text.")] = None,
                 column_hints: Annotated[str | None, Query(max_length=4000, description=(
                     'JSON: column name or 1-based number -> kind, e.g. {"IIN": "iin"}.'))] = None,
                 ) -> dict[str, Any]:
    service = ingest_for(ctx.platform)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        parser = MultiPartParser(request.headers, request.stream(), max_files=1, max_fields=10)
        parser.spool_max_size = service.max_bytes + 1  # keep the file in memory: never a raw copy on disk
        try:
            form = await parser.parse()
        except (MultiPartException, KeyError, ValueError):  # no boundary, a broken envelope
            raise InvalidInput("the multipart body cannot be read", field="body") from None
        try:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise InvalidInput("send the leak file in the form field 'file'", field="file")
            fmt = _format(form.get("format") if isinstance(form.get("format"), str) else format)  # type: ignore[arg-type]
            hints_raw = form.get("column_hints")
            hints = _hints(hints_raw if isinstance(hints_raw, str) else column_hints)
            name = file.filename or filename or "upload"
            view = await run_in_threadpool(service.upload, ctx.principal.organization_id, incident_id, file.file,
                                           name, format=fmt, actor=ctx.actor, column_hints=hints)
        finally:
            await form.close()
    else:
        if not filename:
            raise InvalidInput("a raw-body upload needs ?filename=…", field="filename")
        fmt, hints = _format(format), _hints(column_hints)
        body = await request.body()
        view = await run_in_threadpool(service.upload, ctx.principal.organization_id, incident_id, body, filename,
                                       format=fmt, actor=ctx.actor, column_hints=hints)
        del body
    return view.to_dict()


@router.get("/leaks/uploads/{upload_id}", summary="One upload: counts, masked samples, rejected lines, status")
def get_upload(upload_id: UploadId, ctx: StaffCtx) -> dict[str, Any]:
    return ingest_for(ctx.platform).get(ctx.principal.organization_id, upload_id).to_dict()


@router.post("/leaks/uploads/{upload_id}/confirm",
             summary="Confirm an upload: its identifiers are committed to the register as one segment (idempotent)")
def confirm_upload(upload_id: UploadId, ctx: StaffCtx) -> dict[str, Any]:
    return ingest_for(ctx.platform).confirm(ctx.principal.organization_id, upload_id, actor=ctx.actor).to_dict()


@router.post("/leaks/uploads/{upload_id}/discard", summary="Discard an unconfirmed upload (its spool is deleted)")
def discard_upload(upload_id: UploadId, ctx: StaffCtx) -> dict[str, Any]:
    return ingest_for(ctx.platform).discard(ctx.principal.organization_id, upload_id, ctx.actor).to_dict()


@router.get("/leaks/incidents/{incident_id}/uploads", summary="Uploads of an incident, newest first")
def list_uploads(incident_id: IncidentId, ctx: StaffCtx) -> list[dict[str, Any]]:
    return [v.to_dict() for v in ingest_for(ctx.platform).list(ctx.principal.organization_id, incident_id)]
