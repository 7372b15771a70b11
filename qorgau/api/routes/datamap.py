"""Scan jobs and the data map over HTTP.

Who may do what (L-PD-GOV: the operator keeps the list of personal data it processes and names a
responsible person; the regulator supervises it):

* **admin** and **dpo** run scans (server paths, database URLs, uploads), cancel them and forget
  sources — they are the operator's people responsible for that list;
* **regulator** reads jobs, the map and its exports — supervision, the same reach it has over the
  audit log — but changes nothing;
* **reviewer** (a human deciding on AI proposals, L-PD-AUTO) and **citizen** have no business with an
  operator's inventory and get 403.

Every route works inside the caller's organization (:class:`~qorgau.api.deps.Context`): another
organization's job or source is "not found". Responses never carry a database password (jobs show their
display form), a sealed input or a scanned value (the map holds none).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ...discovery import datamap, jobs
from ...discovery.models import JOB_STATUSES
from ...discovery.sources import DEFAULT_SAMPLE_ROWS
from ..deps import AuditorCtx, StaffCtx
from ..schemas import MAX_ID, Strict

router = APIRouter(tags=["discovery"])

JobId = Annotated[int, Path(ge=0, le=MAX_ID, description="A scan job of your organization.")]
SourceId = Annotated[int, Path(ge=0, le=MAX_ID, description="A data source of your organization.")]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Category = Literal["identifying", "personal_data"]
SourceStatus = Literal["ok", "partial", "failed", "skipped"]
assert set(JobStatus.__args__) == set(JOB_STATUSES)  # type: ignore[attr-defined]


class ScanJobOptionsIn(Strict):
    types: list[str] | None = Field(default=None, max_length=50, description="Only these entity types.")
    min_score: float = Field(default=0.5, ge=0.0, le=1.0, description="Drop findings scored below this.")
    sample_rows: int = Field(default=DEFAULT_SAMPLE_ROWS, ge=1, le=1_000_000, description="Databases: rows per column.")
    text_field: str | None = Field(default=None, max_length=200, description="JSON Lines: the text field.")
    id_field: str | None = Field(default=None, max_length=200, description="JSON Lines: the id field.")
    workers: int = Field(default=1, ge=1, le=jobs.MAX_JOB_WORKERS, description="Scanner processes.")
    identifiers_only: bool = Field(default=False, description="Skip names, addresses and birth dates (faster).")


class ScanJobCreate(Strict):
    sources: list[str] = Field(min_length=1, max_length=jobs.MAX_SOURCES, description=(
        "Absolute server paths under a configured scan root (files or directories) and SQLAlchemy database "
        "URLs (postgresql://user:password@host/db, sqlite:////path/under/a/root.db)."))
    options: ScanJobOptionsIn = Field(default_factory=ScanJobOptionsIn)


class ScanJobOut(BaseModel):
    id: int
    status: JobStatus
    requested_by: str
    sources: list[str] = Field(description="Inputs as shown to people: database URLs without their password.")
    options: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    attempts: int
    cancel_requested: bool
    bytes_scanned: int
    rows_scanned: int
    sources_done: int
    sources_failed: int
    findings: int
    error: str | None


class ScanJobPage(BaseModel):
    items: list[ScanJobOut]
    total: int
    limit: int
    offset: int


class CountOut(BaseModel):
    entity_type: str
    category: str
    count: int
    max_score: float


class FieldOut(BaseModel):
    field: str = Field(description="Column, table.column, sheet!column, JSON path ([] for arrays) or (text).")
    category: str
    special: str | None = Field(description="health, biometric, financial, religion or ethnicity.")
    sensitive: bool
    entity_type: str | None
    rule: str = Field(description="What decided the category: a name rule, a value share, or findings.")
    confidence: float
    findings: int
    first_seen_at: datetime
    last_seen_at: datetime
    counts: list[CountOut]


class SourceBase(BaseModel):
    id: int
    locator: str = Field(description="An absolute path, a database URL without password, or upload:<name>.")
    kind: str
    status: SourceStatus
    last_error: str | None
    encoding: str | None
    identifying: bool
    sensitive: bool
    bytes_scanned: int
    rows_scanned: int
    findings: int
    first_seen_at: datetime
    last_scanned_at: datetime
    last_job_id: int | None


class SourceSummaryOut(SourceBase):
    field_count: int
    fields_by_category: dict[str, int]
    special: list[str]
    findings_by_category: dict[str, int]
    findings_by_type: dict[str, int]


class SourcePageOut(BaseModel):
    items: list[SourceSummaryOut]
    total: int
    limit: int
    offset: int


class SourceOut(SourceBase):
    fields: list[FieldOut]


class DataMapTotalsOut(BaseModel):
    sources: int
    identifying_sources: int
    sensitive_sources: int
    problem_sources: int
    last_scanned_at: datetime | None
    fields: int
    fields_by_category: dict[str, int]
    fields_by_special: dict[str, int]
    findings: int
    findings_by_type: dict[str, int]
    findings_by_category: dict[str, int]


# --- jobs ---------------------------------------------------------------------------------------


@router.post("/scan-jobs", response_model=ScanJobOut, status_code=status.HTTP_201_CREATED,
             summary="Queue a background scan of server paths and databases into the data map")
def submit_scan_job(body: ScanJobCreate, ctx: StaffCtx) -> dict[str, Any]:
    with ctx.write() as session:
        job = jobs.submit(ctx.platform, session, actor=ctx.actor, sources=body.sources,
                          options=body.options.model_dump())
        out = jobs.job_dict(job)
    jobs.wake_workers()
    return out


@router.post("/scan-jobs/upload", response_model=ScanJobOut, status_code=status.HTTP_201_CREATED,
             summary="Upload files and scan them as a background job (deleted when the job ends)")
def upload_scan_job(
    ctx: StaffCtx,
    files: Annotated[list[UploadFile], File(description="One or more files (csv, xlsx, json, pdf, docx …).")],
    types: Annotated[str | None, Form(max_length=1000, description="Entity types, comma-separated.")] = None,
    min_score: Annotated[float, Form(ge=0.0, le=1.0)] = 0.5,
    identifiers_only: Annotated[bool, Form()] = False,
    text_field: Annotated[str | None, Form(max_length=200)] = None,
    id_field: Annotated[str | None, Form(max_length=200)] = None,
) -> dict[str, Any]:
    options = jobs.JobOptions.parse({"types": types or None, "min_score": min_score,
                                     "identifiers_only": identifiers_only, "text_field": text_field,
                                     "id_field": id_field})
    with jobs.staged_uploads(ctx.platform, ((f.filename, f.file) for f in files)) as staged:
        with ctx.write() as session:
            job = jobs.submit_uploads(ctx.platform, session, actor=ctx.actor, staged=staged, options=options)
            out = jobs.job_dict(job)
    jobs.wake_workers()
    return out


@router.get("/scan-jobs", response_model=ScanJobPage, summary="Scan jobs of my organization, newest first")
def list_scan_jobs(ctx: AuditorCtx, status_: Annotated[JobStatus | None, Query(alias="status")] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50,
                   offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> dict[str, Any]:
    with ctx.read() as session:
        rows, total = jobs.list_jobs(session, status=status_, limit=limit, offset=offset)
        return {"items": [jobs.job_dict(j) for j in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/scan-jobs/{job_id}", response_model=ScanJobOut, summary="One scan job with its progress")
def get_scan_job(job_id: JobId, ctx: AuditorCtx) -> dict[str, Any]:
    with ctx.read() as session:
        return jobs.job_dict(jobs.get_job(session, job_id))


@router.post("/scan-jobs/{job_id}/cancel", response_model=ScanJobOut,
             summary="Cancel a scan job (what it already recorded stays in the data map)")
def cancel_scan_job(job_id: JobId, ctx: StaffCtx) -> dict[str, Any]:
    with ctx.write() as session:
        return jobs.job_dict(jobs.cancel(ctx.platform, session, job_id, actor=ctx.actor))


# --- the data map -------------------------------------------------------------------------------


def _filters(kind: str | None, category: str | None, entity_type: str | None, sensitive: bool | None,
             status_: str | None, search: str | None) -> datamap.SourceFilter:
    return datamap.SourceFilter(kind=kind or None, category=category, entity_type=entity_type or None,
                                sensitive=sensitive, status=status_, search=search or None)


Kind = Annotated[str | None, Query(max_length=16, description="Source kind: csv, xlsx, sql, text …")]
TypeQuery = Annotated[str | None, Query(max_length=40, description="An entity type found or classified.")]
Search = Annotated[str | None, Query(max_length=200, description="Part of the locator (case-insensitive).")]


def _summary_out(s: datamap.SourceSummary) -> dict[str, Any]:
    return {**datamap.source_dict(s.source, fields=False), "field_count": s.fields,
            "fields_by_category": s.fields_by_category, "special": s.special,
            "findings_by_category": s.findings_by_category, "findings_by_type": s.findings_by_type}


@router.get("/datamap/sources", response_model=SourcePageOut, summary="Where my organization holds personal data")
def list_data_sources(ctx: AuditorCtx, kind: Kind = None, category: Annotated[Category | None, Query()] = None,
                      entity_type: TypeQuery = None, sensitive: Annotated[bool | None, Query()] = None,
                      status_: Annotated[SourceStatus | None, Query(alias="status")] = None, search: Search = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                      offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> dict[str, Any]:
    with ctx.read() as session:
        page = datamap.list_sources(session, _filters(kind, category, entity_type, sensitive, status_, search),
                                    limit=limit, offset=offset)
        return {"items": [_summary_out(s) for s in page.items], "total": page.total, "limit": page.limit,
                "offset": page.offset}


@router.get("/datamap/summary", response_model=DataMapTotalsOut, summary="The data map in numbers")
def data_map_summary(ctx: AuditorCtx) -> dict[str, Any]:
    with ctx.read() as session:
        return datamap.totals(session)


@router.get("/datamap/sources/{source_id}", response_model=SourceOut,
            summary="One source with its fields, categories, types and counts")
def get_data_source(source_id: SourceId, ctx: AuditorCtx) -> dict[str, Any]:
    with ctx.read() as session:
        return datamap.source_dict(datamap.get_source(session, source_id))


@router.delete("/datamap/sources/{source_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Forget a source (deleted or scanned by mistake); audited")
def forget_data_source(source_id: SourceId, ctx: StaffCtx) -> Response:
    with ctx.write() as session:
        datamap.forget_source(session, source_id, actor=ctx.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/datamap/export", summary="Export the data map as CSV or JSON (streamed; counts, never values)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
def export_data_map(ctx: AuditorCtx, format: Annotated[Literal["csv", "json"], Query()] = "json",
                    kind: Kind = None, category: Annotated[Category | None, Query()] = None,
                    entity_type: TypeQuery = None, sensitive: Annotated[bool | None, Query()] = None,
                    status_: Annotated[SourceStatus | None, Query(alias="status")] = None,
                    search: Search = None) -> StreamingResponse:
    filters = _filters(kind, category, entity_type, sensitive, status_, search)

    def stream() -> Iterator[bytes]:
        with ctx.read() as session:  # one snapshot for the whole export
            chunks = datamap.export_csv(session, filters) if format == "csv" else datamap.export_json(session, filters)
            for chunk in chunks:
                yield chunk.encode("utf-8")

    stamp = datetime.now().strftime("%Y%m%d")
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    return StreamingResponse(stream(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="qorgau-datamap-{stamp}.{format}"',
        "Cache-Control": "no-store"})


UPLOAD_PATHS = ("/api/v1/scan-jobs/upload", "/discovery/jobs/upload")
MULTIPART_OVERHEAD = 1024 * 1024  # part headers and form fields around the files


def upload_body_limits(settings: Any) -> dict[str, int]:
    """Request body limits of the upload routes (``BodySizeLimit`` in ``api/app.py``): the upload cap plus
    room for the multipart envelope, never less than the general limit."""
    limit = max(settings.max_request_bytes, settings.scan_upload_max_bytes + MULTIPART_OVERHEAD)
    return {path: limit for path in UPLOAD_PATHS}
