"""AI content labels over HTTP (issue 9; L-AI-LABEL, L-AI-DEF, L-FINE-AI).

Operators (``admin``, ``dpo``; a login session or an API key):

* ``POST /labels`` — multipart ``file`` plus ``system`` (the AI system's code or register number) and the warning's
  options (``position``, ``languages``, ``contrast``, ``tile``, ``text_kk``/``text_ru``/``text_en``,
  ``composite``). Answers the labeled file as an attachment named ``<stem>.ai<ext>`` with ``X-Qorgau-Label-Id``,
  ``X-Qorgau-Register-Id``, ``X-Qorgau-Warning`` and ``X-Qorgau-Local-Test-CA``; ``?format=json`` answers the
  label's summary with the file in base64 instead.
* ``GET /labels/records`` (``?limit&offset``), ``GET /labels/records/{record_id}`` — the organization's labels
  (``reviewer`` may read them too); ``GET /labels/signer`` — the active signing certificate (issued by the local
  test CA on first call); ``GET /labels/signers``; ``POST /labels/signer`` (``admin``) — import the operator's own
  certificate: multipart ``chain`` and ``key`` PEM files and an optional ``password`` field.

Everyone, no login:

* ``POST /labels/verify`` — multipart ``file``: trusted / untrusted / invalid / unlabeled, the AI system, the
  operator, whether the warning is still there. Limited to ``labels_verify_per_hour`` files per client address
  (counted under a keyed hash of the address, never the address); nothing about the file is logged or kept.
* ``GET /public/labels/trust-anchors`` (JSON) and ``/public/labels/trust-anchors.pem`` (the bundle), so anyone can
  verify offline (``c2patool FILE trust --trust_anchors bundle.pem``).

Uploads are parsed as they stream in: the file goes to a spooled temporary file (memory, then an anonymous temp
file) and the request is refused with 413 naming ``file`` as soon as it passes ``labels_max_bytes`` — the rest is
never read. Labeling and verifying are CPU-bound and run in the thread pool. File names are only echoed back in
the attachment's name: never stored, logged or audited (the service records sizes and digests only).
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ...core.auth import Role
from ...core.errors import InvalidInput
from ...core.platform import Platform, shared
from ...core.ratelimit import Limit, RateLimiter
from ...core.throttle import normalize_address
from ...provenance.service import Labels, labels_for
from ..deps import AdminCtx, Context, PlatformDep, StaffCtx, requires
from ..schemas_aisystems import out

router = APIRouter(tags=["ai-content-labels"])

LABEL_PATH = "/api/v1/labels"
VERIFY_PATH = "/api/v1/labels/verify"
VERIFY_SCOPE = "labels.verify"
MULTIPART_OVERHEAD = 1 << 20
CREDENTIAL_MAX_BYTES = 1 << 20  # a PEM chain or key file is a few KB
SPOOL_IN_MEMORY = 8 << 20  # larger files spill to an anonymous temporary file while the body streams in
LABEL_FIELDS = frozenset({"file", "system", "position", "languages", "contrast", "tile", "composite",
                          "text_kk", "text_ru", "text_en"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

ReaderCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REVIEWER))]
RecordId = Annotated[str, Path(min_length=1, max_length=40, description="A label's reference (KZ-LBL-2026-000001).")]


class FileTooLarge(InvalidInput):
    """The uploaded file passed ``labels_max_bytes`` (HTTP 413 naming the field)."""

    code = "payload_too_large"
    status = 413


def upload_body_limits(settings: Any) -> dict[str, int]:
    """The request-body limits of the label routes (``BodySizeLimit`` in ``api/app.py``): the file cap plus room
    for the multipart envelope, never less than the general limit."""
    limit = max(settings.max_request_bytes, settings.labels_max_bytes + MULTIPART_OVERHEAD)
    return {LABEL_PATH: limit, VERIFY_PATH: limit, "/labels": limit, "/labels/verify": limit}  # + the web forms


# --- the verify rate limit ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _VerifyLimiter:
    limiter: RateLimiter
    key: bytes = dataclasses.field(repr=False)  # process-local HMAC key: counters are per process anyway

    def hit(self, address: str | None) -> None:
        unit = normalize_address(address) or "unknown"
        principal = hmac.new(self.key, unit.encode("utf-8", "replace"), "sha256").hexdigest()
        self.limiter.hit(VERIFY_SCOPE, principal)


def verify_limiter_for(platform: Platform) -> _VerifyLimiter:
    """The one limiter of public verification (this API and the web page): ``labels_verify_per_hour`` files per
    client address, the whole hour's allowance usable at once."""
    def make(p: Platform) -> _VerifyLimiter:
        per_hour = int(p.settings.labels_verify_per_hour)
        return _VerifyLimiter(RateLimiter({VERIFY_SCOPE: Limit(per_hour, 3600.0)}), secrets.token_bytes(32))

    return shared(platform, "_label_verify_limiter", make)


# --- multipart bodies ----------------------------------------------------------------------------------------------


class _CappedParser(MultiPartParser):
    """Starlette's streaming multipart parser with a cap per file part, enforced while the body streams in."""

    def __init__(self, request: Request, *, file_cap: int, max_files: int, max_fields: int) -> None:
        super().__init__(request.headers, request.stream(), max_files=max_files, max_fields=max_fields)
        self.spool_max_size = min(SPOOL_IN_MEMORY, file_cap + 1)
        self.file_cap = file_cap
        self._seen: dict[int, tuple[str, int]] = {}

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            name, seen = self._seen.get(id(part), (part.field_name, 0))
            seen += end - start
            if seen > self.file_cap:
                raise FileTooLarge(f"the file is larger than {self.file_cap} bytes (labels_max_bytes)",
                                   field=name or "file")
            self._seen[id(part)] = (name, seen)
        super().on_part_data(data, start, end)


async def _form(request: Request, *, file_cap: int, max_files: int, max_fields: int, what: str) -> FormData:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidInput(f"send {what} as multipart/form-data", field="file")
    parser = _CappedParser(request, file_cap=file_cap, max_files=max_files, max_fields=max_fields)
    try:
        return await parser.parse()
    except (MultiPartException, KeyError, ValueError):  # no boundary, a broken envelope, too many parts
        raise InvalidInput("the multipart body cannot be read", field="body") from None


def _file(form: FormData, name: str) -> UploadFile:
    value = form.get(name)
    if not isinstance(value, UploadFile):
        raise InvalidInput(f"send the file in the form field '{name}'", field=name)
    return value


def _text(form: FormData, name: str, max_length: int = 200) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a text field, not a file", field=name)
    if len(value) > max_length:
        raise InvalidInput(f"{name} is longer than {max_length} characters", field=name)
    return value


def _flag(form: FormData, name: str, default: bool) -> bool:
    value = _text(form, name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(f"{name} must be true or false", field=name)


def _warning_style(form: FormData) -> Any:
    """The warning's options from the form; the service validates them (naming the field)."""
    from ...provenance.overlay import WarningStyle

    options: dict[str, Any] = {"tile": _flag(form, "tile", True)}
    for name in ("position", "contrast"):
        value = _text(form, name, 20)
        if value is not None and value.strip():
            options[name] = value.strip()
    languages = _text(form, "languages", 40)
    if languages is not None and languages.strip():
        options["languages"] = tuple(code.strip() for code in languages.split(",") if code.strip())
    texts = {lang: text for lang in ("kk", "ru", "en")
             if (text := _text(form, f"text_{lang}", 300)) is not None and text.strip()}
    if texts:
        options["texts"] = texts
    style = WarningStyle(**options)
    try:
        style.validate()
    except InvalidInput as exc:  # the overlay names "texts.kk"; this form calls it "text_kk"
        if exc.field and exc.field.startswith("texts."):
            raise InvalidInput(exc.message, field="text_" + exc.field.split(".", 1)[1]) from None
        raise
    return style


async def _read(upload: UploadFile) -> bytes:
    await upload.seek(0)
    return await upload.read()


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and, for other names, the RFC 5987 ``filename*`` (UTF-8)."""
    cleaned = "".join(c for c in filename if c.isprintable() and c not in '"\\/\r\n') or "labeled"
    ascii_name = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != cleaned:
        header += f"; filename*=UTF-8''{quote(cleaned, safe='')}"
    return header


def _views(values: Any) -> Any:
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        return dataclasses.asdict(values)
    return [dataclasses.asdict(v) for v in values]


# --- operators -----------------------------------------------------------------------------------------------------


@router.post("/labels", summary="Label AI-generated content: visible warning plus a signed C2PA marking (L-AI-LABEL)",
             response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}}, "description": "The labeled file."}})
async def label(request: Request, ctx: StaffCtx,
                format: Annotated[Literal["file", "json"], Query(
                    description="file: the labeled bytes (default); json: the summary with the file in base64."
                )] = "file") -> Response:
    service = labels_for(ctx.platform)
    form = await _form(request, file_cap=service.max_bytes, max_files=1, max_fields=len(LABEL_FIELDS),
                       what="the file to label")
    try:
        unknown = sorted(k for k in form.keys() if k not in LABEL_FIELDS)
        if unknown:
            raise InvalidInput("unknown form field", field=unknown[0][:40])
        upload = _file(form, "file")
        system = _text(form, "system", 64)
        if system is None or not system.strip():
            raise InvalidInput("name the AI system (its code or register number KZ-AI-…)", field="system")
        style = _warning_style(form)
        composite = _flag(form, "composite", False)
        data = await _read(upload)
        original = upload.filename
    finally:
        await form.close()

    def run() -> Any:
        with ctx.write() as session:
            return service.label(session, ctx.principal, data=data, filename=original, system=system,
                                 warning=style, composite=composite)

    result = await run_in_threadpool(run)
    filename = result.filename_for(original)
    if format == "json":
        return out({**result.summary(), "filename": filename,
                    "content_base64": base64.b64encode(result.data).decode("ascii")})
    headers = {"Content-Disposition": content_disposition(filename),
               "X-Qorgau-Label-Id": result.record_id,
               "X-Qorgau-Register-Id": result.register_id,
               "X-Qorgau-Warning": str(result.warning.get("kind", "")),
               "X-Qorgau-Local-Test-CA": "true" if result.signer_local_test_ca else "false",
               "Cache-Control": "no-store"}
    return Response(result.data, media_type=result.media_type, headers=headers)


@router.get("/labels/records", summary="Your organization's labels, newest first (no file names, no content)")
def records(ctx: ReaderCtx, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> JSONResponse:
    with ctx.read() as s:
        return out(_views(labels_for(ctx.platform).records(s, limit=limit, offset=offset)))


@router.get("/labels/records/{record_id}", summary="One label of your organization")
def record(record_id: RecordId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return out(_views(labels_for(ctx.platform).record(s, record_id)))


@router.get("/labels/signer", summary="The active signing certificate (issued by the local test CA on first use)")
def signer(ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        return out(_views(labels_for(ctx.platform).signer(s, actor=ctx.actor)))


@router.get("/labels/signers", summary="Every signing certificate of your organization, newest first")
def signers(ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return out(_views(labels_for(ctx.platform).signers(s)))


@router.post("/labels/signer", summary="Import your own certificate chain and key (from a real CA) as the signer")
async def import_signer(request: Request, ctx: AdminCtx) -> JSONResponse:
    form = await _form(request, file_cap=CREDENTIAL_MAX_BYTES, max_files=2, max_fields=4,
                       what="the chain and key PEM files")
    try:
        unknown = sorted(k for k in form.keys() if k not in {"chain", "key", "password"})
        if unknown:
            raise InvalidInput("unknown form field", field=unknown[0][:40])
        chain = await _read(_file(form, "chain"))
        key = await _read(_file(form, "key"))
        password = _text(form, "password", 1000)
    finally:
        await form.close()

    def run() -> Any:
        with ctx.write() as session:
            return labels_for(ctx.platform).import_signer(
                session, ctx.principal, chain_pem=chain, key_pem=key,
                password=password.encode("utf-8") if password else None)

    return out(_views(await run_in_threadpool(run)), 201)


# --- everyone ------------------------------------------------------------------------------------------------------


@router.post("/labels/verify", summary="Verify a file's AI label: trusted, untrusted, invalid or unlabeled (no login)")
async def verify(request: Request, platform: PlatformDep) -> JSONResponse:
    # Counted before the body is read: a refused client costs nothing.
    verify_limiter_for(platform).hit(request.client.host if request.client else None)
    service: Labels = labels_for(platform)
    form = await _form(request, file_cap=service.max_bytes, max_files=1, max_fields=1, what="the file to verify")
    try:
        upload = _file(form, "file")
        data = await _read(upload)
        original = upload.filename
    finally:
        await form.close()
    report = await run_in_threadpool(service.verify, data, filename=original)
    del data
    return out(report.to_dict(), headers={"Cache-Control": "no-store"})


def _anchors(platform: Platform) -> list[Mapping[str, Any]]:
    return [{"subject": a.subject, "fingerprint": a.fingerprint, "local_test": a.local_test, "pem": a.pem}
            for a in labels_for(platform).trust_anchors()]


@router.get("/public/labels/trust-anchors", summary="The roots whose labels count as trusted here (no login)")
def trust_anchors(platform: PlatformDep) -> JSONResponse:
    return out(_anchors(platform), headers={"Cache-Control": "public, max-age=300"})


@router.get("/public/labels/trust-anchors.pem", summary="The trust anchors as one PEM bundle, for c2patool (no login)",
            response_class=Response, responses={200: {"content": {"application/x-pem-file": {}}}})
def trust_anchors_pem(platform: PlatformDep) -> Response:
    bundle = "".join(a["pem"] if a["pem"].endswith("\n") else a["pem"] + "\n" for a in _anchors(platform))
    return Response(bundle.encode("ascii"), media_type="application/x-pem-file",
                    headers={"Cache-Control": "public, max-age=300",
                             "Content-Disposition": 'attachment; filename="qorgau-trust-anchors.pem"'})


__all__ = ["FileTooLarge", "content_disposition", "router", "upload_body_limits", "verify_limiter_for"]
