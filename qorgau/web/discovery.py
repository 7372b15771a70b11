"""The Discovery page: the data map, scan jobs with live progress, uploads, and "scan a text".

Thin over :mod:`qorgau.discovery.datamap`, :mod:`qorgau.discovery.jobs` and the scanner. Who sees what
follows the API (``qorgau/api/routes/datamap.py``): admin and dpo run scans and change the map, the
regulator reads it, reviewers may only scan a text (as ``POST /api/v1/scan`` allows), citizens see what
the module does. Every form carries the session's CSRF token. A pasted text is scanned in memory, shown
back highlighted and forgotten: it is not stored, logged or put in a URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from ..api.deps import Context
from ..api.routes.discovery import MAX_SCAN_CHARS, shared_scanner
from ..api.schemas import MAX_ID
from ..core.auth import Principal, Role
from ..core.errors import Conflict, InvalidInput, NotFound
from ..discovery import datamap, jobs
from ..discovery.types import EntityType, Finding
from .modules import BY_SLUG, N_
from .routes import csrf_valid, error_page, redirect, render, require_principal

router = APIRouter(include_in_schema=False)

MAP_READERS = (Role.ADMIN, Role.DPO, Role.REGULATOR)
MAP_WRITERS = (Role.ADMIN, Role.DPO)
TEXT_SCANNERS = (Role.ADMIN, Role.DPO, Role.REVIEWER, Role.REGULATOR)
PAGE_SIZE = 25
RECENT_JOBS = 10
CHART_WIDTH = 360  # px of the longest bar

CATEGORY_LABELS = {"identifying": N_("Identifying"), "personal_data": N_("Data itself")}
SPECIAL_LABELS = {"health": N_("Health"), "biometric": N_("Biometric"), "financial": N_("Financial"),
                  "religion": N_("Religion"), "ethnicity": N_("Ethnicity")}
JOB_STATUS_LABELS = {"queued": N_("Queued"), "running": N_("Running"), "succeeded": N_("Succeeded"),
                     "failed": N_("Failed"), "cancelled": N_("Cancelled")}
SOURCE_STATUS_LABELS = {"ok": N_("Read"), "partial": N_("Partly read"), "failed": N_("Not read"),
                        "skipped": N_("Skipped")}
TYPE_LABELS = {
    "KZ_IIN": N_("IIN"), "KZ_BIN": N_("BIN"), "PHONE_NUMBER": N_("Phone number"),
    "EMAIL_ADDRESS": N_("E-mail address"), "IBAN_CODE": N_("IBAN"), "CREDIT_CARD": N_("Bank card"),
    "KZ_PASSPORT": N_("Passport"), "KZ_ID_CARD": N_("ID card"), "PERSON": N_("Person's name"),
    "ADDRESS": N_("Address"), "DATE_OF_BIRTH": N_("Date of birth"), "IP_ADDRESS": N_("IP address"),
    "KZ_VEHICLE_PLATE": N_("Vehicle plate"),
}
assert set(TYPE_LABELS) == {t.value for t in EntityType}
REJECTED = {
    "empty": N_("Enter at least one path or database URL, one per line."),
    "too_long": N_("Line %(n)s is too long."),
    "stdin": N_("Line %(n)s: a background scan cannot read standard input."),
    "upload": N_("Line %(n)s: send files with the upload form instead."),
    "not_absolute": N_("Line %(n)s: a server path must be absolute (start with /)."),
    "no_roots": N_("Scanning server paths is turned off: no scan directories are configured on this server. "
                   "Upload the files instead."),
    "outside_roots": N_("Line %(n)s is outside the directories this server may scan."),
    "not_found": N_("Line %(n)s: no such file or directory."),
    "bad_url": N_("Line %(n)s is not a database URL this server can open."),
    "too_many": N_("Too many lines: at most %(n)s per scan."),
}
MESSAGES = {
    "options": N_("The scan options are not valid."),
    "no_files": N_("Choose at least one file to upload."),
    "too_many_files": N_("Too many files: at most %(n)s per upload."),
    "too_large": N_("The files are larger than the upload limit of %(n)s MB."),
    "ended": N_("This scan job has already ended."),
    "empty_text": N_("Paste a text to scan."),
    "long_text": N_("The text is too long: at most %(n)s characters."),
    "no_map_access": N_("The data map is shown to administrators, data protection officers and the regulator."),
    "no_scan_access": N_("Only administrators and data protection officers can run scans."),
}


@dataclass
class Notice:
    """A message for the page: a msgid from the tables above and its values (never user text)."""

    msgid: str
    values: dict[str, Any]
    form: str  # which form it belongs to: "paths", "upload", "text", "jobs"


def _platform(request: Request) -> Any:
    return request.app.state.platform


def _can(principal: Principal, roles: tuple[Role, ...]) -> bool:
    return principal.has_any(*roles)


def _chart(findings_by_type: dict[str, int]) -> list[dict[str, Any]]:
    top = max(findings_by_type.values(), default=0)
    return [{"type": t, "count": n, "width": max(2, round(CHART_WIDTH * n / top)) if top else 0}
            for t, n in findings_by_type.items()]


def _filter_from(kind: str, category: str, entity_type: str, sensitive: str, q: str) -> datamap.SourceFilter:
    """Filters from the query string; anything unknown is ignored rather than an error page."""
    return datamap.SourceFilter(
        kind=kind.strip()[:16] or None,
        category=category if category in datamap.CATEGORIES else None,
        entity_type=entity_type if entity_type in TYPE_LABELS else None,
        sensitive={"yes": True, "no": False}.get(sensitive),
        search=q.strip()[:200] or None)


def _page(request: Request, principal: Principal, *, status: int = 200, filters: datamap.SourceFilter | None = None,
          page: int = 1, notice: Notice | None = None, queued: int | None = None, scan: dict[str, Any] | None = None,
          form_values: dict[str, Any] | None = None) -> HTMLResponse:
    platform = _platform(request)
    ctx = Context(platform, principal)
    filters = filters or datamap.SourceFilter()
    values: dict[str, Any] = {"can_read": _can(principal, MAP_READERS), "can_write": _can(principal, MAP_WRITERS),
                              "can_scan_text": _can(principal, TEXT_SCANNERS)}
    if values["can_read"]:
        with ctx.read() as session:
            totals = datamap.totals(session)
            listing = datamap.list_sources(session, filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            kinds = datamap.kinds(session)
            recent, _ = jobs.list_jobs(session, limit=RECENT_JOBS)
            job_rows = [jobs.job_dict(j) for j in recent]
        pages = max(1, -(-listing.total // PAGE_SIZE))
        query = _query_string(filters)
        if queued is not None and not any(j["id"] == queued and j["status"] in jobs.ACTIVE for j in job_rows):
            queued = None  # the job has ended (or is not ours): its "queued" note is old news
        values.update(totals=totals, chart=_chart(totals["findings_by_type"]), listing=listing, kinds=kinds,
                      job_rows=job_rows, polling=any(j["status"] in jobs.ACTIVE for j in job_rows), pages=pages,
                      filter_qs=("&" + _query_string(filters, api=True)) if query else "",
                      prev_url=_page_url(query, page - 1) if page > 1 else None,
                      next_url=_page_url(query, page + 1) if page < pages else None)
    return render(request, "discovery.html", principal=principal, status=status, active="discovery",
                  module=BY_SLUG["discovery"], filters=filters, page=page, notice=notice, queued=queued, scan=scan,
                  form=form_values or {}, labels=_labels(), messages=MESSAGES, **values)


def _query_string(filters: datamap.SourceFilter, *, api: bool = False) -> str:
    """The filters as a query string: this page's parameter names, or the export API's (``api``)."""
    sensitive = filters.sensitive
    if sensitive is not None:
        shown = ("true" if sensitive else "false") if api else ("yes" if sensitive else "no")
    pairs = {"kind": filters.kind, "category": filters.category,
             ("entity_type" if api else "type"): filters.entity_type,
             "sensitive": shown if sensitive is not None else None,
             ("search" if api else "q"): filters.search}
    return urlencode({k: v for k, v in pairs.items() if v})


def _page_url(query: str, page: int) -> str:
    return "/discovery?" + (query + "&" if query else "") + f"page={page}#map"


def _labels() -> dict[str, dict[str, str]]:
    return {"category": CATEGORY_LABELS, "special": SPECIAL_LABELS, "job": JOB_STATUS_LABELS,
            "source": SOURCE_STATUS_LABELS, "type": TYPE_LABELS}


# --- the page -------------------------------------------------------------------------------------


@router.get("/discovery")
def discovery_page(
    request: Request,
    kind: Annotated[str, Query(max_length=40)] = "",
    category: Annotated[str, Query(max_length=40)] = "",
    entity_type: Annotated[str, Query(alias="type", max_length=40)] = "",
    sensitive: Annotated[str, Query(max_length=10)] = "",
    q: Annotated[str, Query(max_length=400)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    job: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> Response:
    principal = require_principal(request)
    return _page(request, principal, filters=_filter_from(kind, category, entity_type, sensitive, q), page=page,
                 queued=job)


@router.get("/discovery/sources/{source_id}")
def source_page(request: Request, source_id: Annotated[int, Path(ge=0, le=MAX_ID)]) -> Response:
    principal = require_principal(request)
    if not _can(principal, MAP_READERS):
        return error_page(request, 403, principal=principal)
    try:
        with Context(_platform(request), principal).read() as session:
            source = datamap.get_source(session, source_id)
            doc = datamap.source_dict(source)
            summary = datamap.summary_counts(source)
    except NotFound:
        return error_page(request, 404, principal=principal)
    return render(request, "discovery_source.html", principal=principal, active="discovery", source=doc,
                  summary=summary, chart=_chart(summary["findings_by_type"]), labels=_labels(),
                  can_write=_can(principal, MAP_WRITERS))


@router.post("/discovery/sources/{source_id}/forget")
def forget_source(request: Request, source_id: Annotated[int, Path(ge=0, le=MAX_ID)],
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = require_principal(request)
    if not csrf_valid(request, principal, csrf_token) or not _can(principal, MAP_WRITERS):
        return error_page(request, 403, principal=principal)
    try:
        with Context(_platform(request), principal).write() as session:
            datamap.forget_source(session, source_id, actor=principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    return redirect("/discovery#map")


# --- jobs -----------------------------------------------------------------------------------------


@router.get("/discovery/jobs")
def jobs_fragment(request: Request) -> Response:
    """The jobs table alone, for htmx polling while a job is queued or running."""
    principal = require_principal(request)
    if request.headers.get("hx-request") != "true":
        return redirect("/discovery#jobs")
    if not _can(principal, MAP_READERS):
        return error_page(request, 403, principal=principal)
    with Context(_platform(request), principal).read() as session:
        recent, _ = jobs.list_jobs(session, limit=RECENT_JOBS)
        job_rows = [jobs.job_dict(j) for j in recent]
    polling = any(j["status"] in jobs.ACTIVE for j in job_rows)
    response = render(request, "discovery_jobs.html", principal=principal, job_rows=job_rows, labels=_labels(),
                      polling=polling, can_write=_can(principal, MAP_WRITERS))
    if not polling:
        # Only a page that was polling asks for this fragment: its jobs have ended, so the data map above
        # changed. Reload the page once (htmx honours HX-Refresh); the new page no longer polls.
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/discovery/jobs")
def submit_job(request: Request, sources: Annotated[str, Form(max_length=jobs.MAX_SOURCES * 2100)] = "",
               identifiers_only: Annotated[str, Form(max_length=10)] = "",
               csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = require_principal(request)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    if not _can(principal, MAP_WRITERS):
        return _page(request, principal, status=403, notice=Notice(MESSAGES["no_scan_access"], {}, "paths"))
    lines = [line.strip() for line in sources.splitlines() if line.strip()]
    form_values = {"sources": sources[:20_000], "identifiers_only": bool(identifiers_only)}
    try:
        with Context(_platform(request), principal).write() as session:
            job = jobs.submit(_platform(request), session, actor=principal.actor, sources=lines,
                              options={"identifiers_only": bool(identifiers_only)})
            job_id = job.id
    except jobs.SourceRejected as exc:
        n = jobs.MAX_SOURCES if exc.reason == "too_many" else (exc.index or 0) + 1
        return _page(request, principal, status=422, notice=Notice(REJECTED[exc.reason], {"n": n}, "paths"),
                     form_values=form_values)
    except InvalidInput:
        return _page(request, principal, status=422, notice=Notice(MESSAGES["options"], {}, "paths"),
                     form_values=form_values)
    jobs.wake_workers()
    return redirect(f"/discovery?job={job_id}#jobs")


@router.post("/discovery/jobs/upload")
def upload_job(request: Request, files: Annotated[list[UploadFile] | None, File()] = None,
               identifiers_only: Annotated[str, Form(max_length=10)] = "",
               csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = require_principal(request)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    if not _can(principal, MAP_WRITERS):
        return _page(request, principal, status=403, notice=Notice(MESSAGES["no_scan_access"], {}, "upload"))
    platform = _platform(request)
    chosen = [f for f in (files or []) if f.filename]
    if not chosen:
        return _page(request, principal, status=422, notice=Notice(MESSAGES["no_files"], {}, "upload"))
    try:
        with jobs.staged_uploads(platform, ((f.filename, f.file) for f in chosen)) as staged:
            with Context(platform, principal).write() as session:
                job = jobs.submit_uploads(platform, session, actor=principal.actor, staged=staged,
                                          options={"identifiers_only": bool(identifiers_only)})
                job_id = job.id
    except jobs.UploadTooLarge:
        mb = max(1, platform.settings.scan_upload_max_bytes // (1024 * 1024))
        return _page(request, principal, status=413, notice=Notice(MESSAGES["too_large"], {"n": mb}, "upload"))
    except InvalidInput:
        return _page(request, principal, status=422,
                     notice=Notice(MESSAGES["too_many_files"], {"n": jobs.MAX_UPLOAD_FILES}, "upload"))
    jobs.wake_workers()
    return redirect(f"/discovery?job={job_id}#jobs")


@router.post("/discovery/jobs/{job_id}/cancel")
def cancel_job(request: Request, job_id: Annotated[int, Path(ge=0, le=MAX_ID)],
               csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = require_principal(request)
    if not csrf_valid(request, principal, csrf_token) or not _can(principal, MAP_WRITERS):
        return error_page(request, 403, principal=principal)
    try:
        with Context(_platform(request), principal).write() as session:
            jobs.cancel(_platform(request), session, job_id, actor=principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict:
        return _page(request, principal, status=409, notice=Notice(MESSAGES["ended"], {}, "jobs"))
    return redirect("/discovery#jobs")


# --- scan a text ------------------------------------------------------------------------------------


def highlight(text: str, findings: list[Finding]) -> list[tuple[str, Finding | None]]:
    """The text cut into plain parts and findings (sorted, never overlapping: the scanner resolved that)."""
    parts: list[tuple[str, Finding | None]] = []
    pos = 0
    for f in sorted(findings, key=lambda f: (f.start, f.end)):
        if f.start < pos:
            continue
        if f.start > pos:
            parts.append((text[pos:f.start], None))
        parts.append((text[f.start:f.end], f))
        pos = f.end
    if pos < len(text):
        parts.append((text[pos:], None))
    return parts


@router.post("/discovery/scan-text")
def scan_text(request: Request, text: Annotated[str, Form()] = "",
              identifiers_only: Annotated[str, Form(max_length=10)] = "",
              csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = require_principal(request)
    if not csrf_valid(request, principal, csrf_token) or not _can(principal, TEXT_SCANNERS):
        return error_page(request, 403, principal=principal)
    if not text.strip():
        return _page(request, principal, status=422, notice=Notice(MESSAGES["empty_text"], {}, "text"))
    if len(text) > MAX_SCAN_CHARS:
        return _page(request, principal, status=422,
                     notice=Notice(MESSAGES["long_text"], {"n": MAX_SCAN_CHARS}, "text"))
    text = text.replace("\r\n", "\n")
    findings = [f for f in shared_scanner(request, bool(identifiers_only)).scan(text) if f.score >= 0.5]
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.type] = counts.get(f.type, 0) + 1
    scan = {"parts": highlight(text, findings), "findings": findings, "counts": counts}
    return _page(request, principal, scan=scan,
                 form_values={"text": text, "identifiers_only_text": bool(identifiers_only)})
