"""Redaction over HTTP: a text, or one uploaded file, comes back with its personal data masked, replaced,
hashed, encrypted or dropped.

The text is scanned and redacted in memory and forgotten; only the redacted text is returned. ``hash`` and
``encrypt`` use the caller's organization's data keys, and because they use keys they leave an audit
entry (operator and counts, never text). Scan first, then open the write transaction: the scan may take
a while and must not hold the database's write lock.

``POST /redact/file`` takes one file (multipart, at most :data:`MAX_FILE_BYTES`) of any kind
``qorgau redact`` knows and answers with the redacted file in the same format (a PDF only as its
redacted text, with ``to_text``); the counts come in the ``X-Qorgau-Redactions`` header as JSON. The
upload lives in a private temporary directory for the length of the request and is deleted after it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ...core import audit
from ...core.auth import Role
from ...core.errors import InvalidInput, QorgauError
from ...discovery.redact import (
    OPERATORS,
    Operator,
    RedactedItem,
    Redactor,
    check_operator,
    organization_encryptor,
    organization_hash_key,
)
from ...discovery.redact_files import KIND_BY_EXTENSION, MEDIA_TYPES, redact_file
from ...discovery.types import EntityType
from ..deps import Context, requires
from ..schemas import Strict
from .discovery import MAX_SCAN_CHARS, shared_scanner

router = APIRouter(tags=["discovery"])
RedactCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REVIEWER))]
KNOWN_TYPES = frozenset(t.value for t in EntityType)


class RedactRequest(Strict):
    # Whitespace is kept: offsets in the answer point into the text exactly as it was sent.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(max_length=MAX_SCAN_CHARS, description="The text to redact (not stored, not logged).")
    operator: Operator = Field(default="mask", description="mask, replace, hash, encrypt or drop.")
    per_type: dict[str, Operator] | None = Field(
        default=None, max_length=50, description="An operator per entity type, e.g. {\"KZ_IIN\": \"hash\"}.")
    identifiers_only: bool = Field(default=False, description="Skip PERSON/ADDRESS/DATE_OF_BIRTH (faster).")
    min_score: float = Field(default=0.5, ge=0.0, le=1.0, description="Redact findings scored at least this.")


class RedactResponse(BaseModel):
    text: str
    # The service's dataclass is the response shape (type, start, end, new_start, new_end, operator):
    # it holds offsets and the operator only, never a value, so there is nothing to filter out.
    items: list[RedactedItem]
    counts: dict[str, int]


@router.post("/redact", response_model=RedactResponse,
             summary="Redact the personal data in a text (mask, replace, hash, encrypt, drop)")
def redact_text(body: RedactRequest, request: Request, ctx: RedactCtx) -> RedactResponse:
    per_type = body.per_type or {}
    for name in per_type:
        if name not in KNOWN_TYPES:
            raise InvalidInput("unknown entity type; see the discovery entity types", field="per_type")
    findings = [f for f in shared_scanner(request, body.identifiers_only).scan(body.text) if f.score >= body.min_score]
    used = {body.operator, *per_type.values()}
    if not used & {"hash", "encrypt"}:
        result = Redactor(operator=body.operator, per_type=per_type).redact_text(body.text, findings)
        return RedactResponse(text=result.text, items=list(result.items), counts=result.counts)

    org_id = ctx.principal.organization_id
    keyring = ctx.platform.keyring
    with ctx.write() as session:
        options: dict[str, Any] = {}
        if "hash" in used:
            options["hash_key"] = organization_hash_key(session, keyring, org_id)
        if "encrypt" in used:
            options["encryptor"] = organization_encryptor(session, keyring, org_id)
        result = Redactor(operator=body.operator, per_type=per_type, **options).redact_text(body.text, findings)
        audit.record(session, actor=ctx.actor, action="discovery.redact", object_type="text",
                     object_id=audit.random_object_id("redaction"), organization_id=org_id,
                     details={"operator": body.operator, "per_type": dict(per_type), "counts": result.counts})
    return RedactResponse(text=result.text, items=list(result.items), counts=result.counts)


# --- one file --------------------------------------------------------------------------------------------

MAX_FILE_BYTES = 8 * 1024 * 1024  # an upload larger than this is refused (413) before it is redacted
MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # what an uploaded XLSX/DOCX may unpack to (zip bombs)
_COPY_CHUNK = 1024 * 1024
REDACTIONS_HEADER = "X-Qorgau-Redactions"


class PayloadTooLarge(QorgauError):
    code = "payload_too_large"
    status = 413


class _AtLeast:
    """The shared scanner's findings at or above the request's threshold (the shared one keeps all)."""

    def __init__(self, scanner: Any, min_score: float) -> None:
        self._scanner = scanner
        self._min_score = min_score

    def scan(self, text: str) -> list[Any]:
        return [f for f in self._scanner.scan(text) if f.score >= self._min_score]


def _operators_map(raw: str | None, field: str, *, types: bool) -> dict[str, str]:
    """A JSON object of NAME → operator from a form field, or :class:`InvalidInput` naming the field."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput("must be a JSON object, e.g. {\"KZ_IIN\": \"hash\"}", field=field) from None
    if not isinstance(value, dict) or len(value) > 200:
        raise InvalidInput("must be a JSON object of at most 200 names", field=field)
    out: dict[str, str] = {}
    for name, op in value.items():
        if types and name not in KNOWN_TYPES:
            raise InvalidInput("unknown entity type; see the discovery entity types", field=field)
        if not name or len(name) > 200:
            raise InvalidInput("names must be 1–200 characters", field=field)
        out[name] = check_operator(op, f"{field}.{name}" if types else field)
    return out


def _save_upload(upload: UploadFile, directory: Path, suffix: str) -> Path:
    path = directory / f"input{suffix}"
    written = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(_COPY_CHUNK):
            written += len(chunk)
            if written > MAX_FILE_BYTES:
                raise PayloadTooLarge(f"the file exceeds the limit of {MAX_FILE_BYTES} bytes", field="file")
            out.write(chunk)
    if written == 0:
        raise InvalidInput("the file is empty", field="file")
    return path


@router.post("/redact/file", response_class=Response,
             summary="Redact the personal data in one file, kept in its format (xlsx, docx, parquet, json, csv …)",
             responses={200: {"description": "The redacted file; counts in the X-Qorgau-Redactions header.",
                              "content": {"application/octet-stream": {}}}})
def redact_uploaded_file(
    request: Request,
    ctx: RedactCtx,
    file: Annotated[UploadFile, File(description="One .xlsx/.docx/.parquet/.json/.jsonl/.csv/.tsv/.txt/.pdf file.")],
    operator: Annotated[str, Form(description=f"One of: {', '.join(OPERATORS)}.")] = "mask",
    per_type: Annotated[str | None, Form(description="JSON object: an operator per entity type.")] = None,
    columns: Annotated[str | None, Form(description="JSON object: a whole-value operator per column/key.")] = None,
    text_field: Annotated[str | None, Form(max_length=200, description="JSON Lines: redact only this field.")] = None,
    to_text: Annotated[bool, Form(description="PDF: return the extracted text, redacted (.txt).")] = False,
    identifiers_only: Annotated[bool, Form(description="Skip PERSON/ADDRESS/DATE_OF_BIRTH (faster).")] = False,
    min_score: Annotated[float, Form(ge=0.0, le=1.0, description="Redact findings scored at least this.")] = 0.5,
) -> Response:
    check_operator(operator, "operator")
    types = _operators_map(per_type, "per_type", types=True)
    whole = _operators_map(columns, "columns", types=False)
    suffix = Path(file.filename or "").suffix.lower()
    kind = KIND_BY_EXTENSION.get(suffix) or ("text" if suffix in (".txt", ".log", ".text") else None)
    if kind is None:
        raise InvalidInput("unsupported file kind: send .xlsx, .docx, .parquet, .json, .jsonl, .csv, .tsv, .txt or "
                           ".pdf (with to_text)", field="file")
    scanner = _AtLeast(shared_scanner(request, identifiers_only), min_score)
    verifier = _AtLeast(shared_scanner(request, True), min_score) if kind in ("xlsx", "docx") else None
    used = {operator, *types.values(), *whole.values()}
    org_id = ctx.principal.organization_id
    keyring = ctx.platform.keyring
    directory = Path(tempfile.mkdtemp(prefix="qorgau-redact-"))  # mode 0700: the upload holds personal data
    try:
        source = _save_upload(file, directory, suffix or ".txt")
        out_suffix = ".txt" if kind == "pdf" else suffix or ".txt"
        target = directory / f"redacted{out_suffix}"
        keys: dict[str, Any] = {}
        if used & {"hash", "encrypt"}:
            with ctx.write() as session:  # created on first use; a short write, before the long redaction
                if "hash" in used:
                    keys["hash_key"] = organization_hash_key(session, keyring, org_id)
                if "encrypt" in used:
                    organization_encryptor(session, keyring, org_id)
        with ctx.read() as session:
            if "encrypt" in used:
                keys["encryptor"] = organization_encryptor(session, keyring, org_id)
            redactor = Redactor(operator=operator, per_type=types, columns=whole, **keys)
            result = redact_file(source, target, redactor=redactor, scanner=scanner, verifier=verifier, kind=kind,
                                 text_field=text_field, to_text=to_text, display_name=f"file{suffix}",
                                 max_unpacked_bytes=MAX_UNPACKED_BYTES)
        if keys:
            with ctx.write() as session:
                audit.record(session, actor=ctx.actor, action="discovery.redact", object_type="file",
                             object_id=audit.random_object_id("redaction"), organization_id=org_id,
                             details={"operator": operator, "per_type": dict(types), "whole_columns": len(whole),
                                      "kind": result.kind, "counts": dict(result.counts)})
        content = target.read_bytes()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    media = MEDIA_TYPES["text" if kind == "pdf" else kind]
    headers = {REDACTIONS_HEADER: json.dumps(result.header_counts(), separators=(",", ":"), sort_keys=True),
               "Content-Disposition": f'attachment; filename="redacted{out_suffix}"',
               "Cache-Control": "no-store"}
    return Response(content=content, media_type=media, headers=headers)
