"""The identity vault page: statistics, the re-identification log, erasure certificates (list, download, verify).

Thin over :class:`qorgau.vault.service.Vault`. It shows counts, pseudonyms, ids and purpose codes — never an
identifier: re-identification itself happens through the API or the command line, where each call states
its purpose and is audited. Administrators, data protection officers and the regulator see the page's
data (as ``GET /api/v1/vault/stats`` allows); other roles see what the module does. A certificate file
uploaded for verification is checked in memory and forgotten.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import Response

from ..api.deps import Context
from ..core.auth import Principal, Role
from ..core.errors import NotFound
from ..vault import certificates
from ..vault.certificates import CertificateVerification
from ..vault.service import LOOKUP_TYPES, vault_for
from .discovery import TYPE_LABELS
from .modules import BY_SLUG, N_
from .routes import csrf_valid, error_page, format_utc, render, require_principal

router = APIRouter(include_in_schema=False)

READERS = (Role.ADMIN, Role.DPO, Role.REGULATOR)
DAYS = 30
LOG_ENTRIES = 25
CERTIFICATES = 25
CHART_WIDTH = 360  # px of the longest bar

CHECK_LABELS = {
    "document": N_("The file is an erasure certificate"),
    "certificate signature": N_("The certificate's signature is valid"),
    "certificate key pinned": N_("Signed by this platform's certificate key"),
    "audit details digest": N_("The audit entry's details match its digest"),
    "audit entry names this erasure": N_("The audit entry records this erasure"),
    "inclusion proof": N_("The audit entry is included in the signed tree"),
    "tree head signature": N_("The tree head's signature is valid"),
    "audit key pinned": N_("The tree head is signed by this platform's audit key"),
    "audit entry stored": N_("The audit entry is in this platform's audit log, unaltered"),
}
MESSAGES = {
    "no_access": N_("Vault statistics, the re-identification log and erasure certificates are shown to "
                    "administrators, data protection officers and the regulator."),
    "no_file": N_("Choose a certificate file to verify."),
    "not_found": N_("No erasure certificate with this id in your organization."),
}
OTHER_TYPE = N_("Other types")


def _platform(request: Request) -> Any:
    return request.app.state.platform


def _bars(counts: dict[str, int]) -> list[dict[str, Any]]:
    top = max(counts.values(), default=0)
    return [{"label": label, "count": n, "width": max(2, round(CHART_WIDTH * n / top)) if top else 0}
            for label, n in counts.items()]


def _page(request: Request, principal: Principal, *, status: int = 200,
          verification: CertificateVerification | None = None, verified_name: str | None = None,
          notice: str | None = None) -> Response:
    platform = _platform(request)
    can_see = principal.has_any(*READERS)
    values: dict[str, Any] = {"can_see": can_see}
    if can_see:
        vault = vault_for(platform)
        with Context(platform, principal).read() as session:
            stats = vault.stats(session, days=DAYS)
            by_day = vault.reidentifications_by_day(session, days=DAYS)
            log = vault.reidentification_log(session, limit=LOG_ENTRIES)
            issued = vault.list_certificates(session, limit=CERTIFICATES)
        type_counts = {TYPE_LABELS.get(t, OTHER_TYPE): n for t, n in stats.by_type.items()}
        days = sorted({d for d, _, _ in by_day}, reverse=True)
        purposes = sorted({p for _, p, _ in by_day})
        grid = {(d, p): n for d, p, n in by_day}
        values.update(
            stats=stats, type_bars=_bars(type_counts), purpose_bars=_bars(stats.reidentifications),
            days=days, purposes=purposes, grid=grid,
            log=[{"entry_id": e.entry_id, "at": format_utc(e.at), "actor": e.actor, "purpose": e.purpose,
                  "domain": e.domain, "count": e.count, "batch": e.batch} for e in log],
            issued=[{"id": c.certificate_id, "pseudonym": c.pseudonym, "domain": c.domain,
                     "erased_at": format_utc(c.erased_at), "entry": c.audit_entry_id, "reason": c.reason,
                     "actor": c.actor} for c in issued])
    return render(request, "vault.html", principal=principal, status=status, active="vault",
                  module=BY_SLUG["vault"], lookup_types=[TYPE_LABELS[t] for t in sorted(LOOKUP_TYPES)],
                  verification=verification, verified_name=verified_name, check_labels=CHECK_LABELS,
                  notice=notice, days_window=DAYS, **values)


@router.get("/vault")
def vault_page(request: Request) -> Response:
    return _page(request, require_principal(request))


CertificateId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


@router.get("/vault/certificates/{certificate_id}/download")
def download_certificate(request: Request, certificate_id: CertificateId) -> Response:
    principal = require_principal(request)
    if not principal.has_any(*READERS):
        return error_page(request, 403, principal=principal)
    try:
        with Context(_platform(request), principal).read() as session:
            certificate = vault_for(_platform(request)).get_certificate(session, certificate_id)
    except NotFound:
        return error_page(request, 404, principal=principal)
    return Response(certificate.text.encode(), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="erasure-certificate-{certificate.certificate_id}.json"',
        "Cache-Control": "no-store"})


@router.get("/vault/certificates/{certificate_id}/verify")
def verify_stored_certificate(request: Request, certificate_id: CertificateId) -> Response:
    principal = require_principal(request)
    if not principal.has_any(*READERS):
        return _page(request, principal, status=403, notice=MESSAGES["no_access"])
    vault = vault_for(_platform(request))
    try:
        with Context(_platform(request), principal).read() as session:
            certificate = vault.get_certificate(session, certificate_id)
            result = vault.verify_certificate(session, certificate)
    except NotFound:
        return _page(request, principal, status=404, notice=MESSAGES["not_found"])
    return _page(request, principal, verification=result, verified_name=certificate.certificate_id)


@router.post("/vault/certificates/verify")
def verify_uploaded_certificate(request: Request, certificate: Annotated[UploadFile | None, File()] = None,
                                csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = require_principal(request)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    if not principal.has_any(*READERS):
        return _page(request, principal, status=403, notice=MESSAGES["no_access"])
    if certificate is None or not certificate.filename:
        return _page(request, principal, status=422, notice=MESSAGES["no_file"])
    data = certificate.file.read(certificates.MAX_DOCUMENT_BYTES + 1)
    with Context(_platform(request), principal).read() as session:
        result = vault_for(_platform(request)).verify_certificate(session, data)
    return _page(request, principal, status=200 if result.ok else 422, verification=result,
                 verified_name=(result.certificate_id or "")[:32] or None)
