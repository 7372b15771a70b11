"""The identity vault over HTTP (L-PD-SPLIT): tokenize, re-identify, look up, crypto-shred, certificates.

Identifiers travel only in request and response *bodies* (never in paths or query strings, which end up
in logs and browser histories); every call is a thin adapter over :class:`qorgau.vault.service.Vault`.
Tokenizing, looking up, re-identifying and shredding are for administrators and data protection officers
(:data:`qorgau.vault.service.REIDENTIFY_ROLES`); statistics and certificates also for the regulator role.
The certificate signing key is public, like the audit log's, so anyone can verify a certificate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, Field

from ...core.auth import Role
from ...core.errors import NotFound
from ...vault import certificates
from ...vault.service import (
    DEFAULT_DOMAIN,
    LOOKUP_TYPES,
    CertificateSummary,
    MAX_REASON_CHARS,
    MAX_VALUE_CHARS,
    Identity,
    ReidentificationRefused,
    RowProblem,
    SubjectErased,
    SubjectRecord,
    vault_for,
)
from ..deps import AuditorCtx, Context, PlatformDep, requires
from ..schemas import Strict

router = APIRouter(prefix="/vault", tags=["vault"])
VaultCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO))]
MAX_BATCH = 1000

Domain = Annotated[str, Field(default=DEFAULT_DOMAIN, min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$",
                              description="Pseudonym domain: a-z, 0-9, '_' and '-' (datasets in one domain can be joined).")]
EntityTypeField = Annotated[str, Field(min_length=1, max_length=40, description="Entity type, e.g. KZ_IIN.")]
Pseudonym = Annotated[str, Field(min_length=1, max_length=40, description="ps_ followed by 26 letters.")]
Purpose = Annotated[str, Field(min_length=1, max_length=64,
                               description="Purpose code, e.g. customer-request (goes to the audit log; no free text).")]


class TokenizeIn(Strict):
    entity_type: EntityTypeField
    value: str = Field(min_length=1, max_length=MAX_VALUE_CHARS, description="The identifier (not stored in the clear).")
    domain: Domain = DEFAULT_DOMAIN


class TokenOut(BaseModel):
    pseudonym: str
    subject_id: int
    created: bool


class RecordIn(Strict):
    identifiers: dict[str, str | list[str]] = Field(max_length=30, description="Entity type → value(s).")


class TokenizeBatchIn(Strict):
    records: list[RecordIn] = Field(min_length=1, max_length=MAX_BATCH)
    domain: Domain = DEFAULT_DOMAIN
    keep_invalid: bool = Field(False, description="Store invalid identifiers marked invalid instead of refusing the record.")


class ProblemOut(BaseModel):
    field: str
    reason: str


class BatchResultOut(BaseModel):
    index: int
    pseudonym: str | None = None
    subject_id: int | None = None
    created: bool | None = None
    problem: ProblemOut | None = None


class TokenizeBatchOut(BaseModel):
    results: list[BatchResultOut]
    created: int
    problems: int


class LookupIn(Strict):
    entity_type: EntityTypeField
    value: str = Field(min_length=1, max_length=MAX_VALUE_CHARS)
    domain: Domain = DEFAULT_DOMAIN


class LookupOut(BaseModel):
    found: bool
    subject_id: int | None = None
    pseudonym: str | None = None


class DetokenizeIn(Strict):
    pseudonym: Pseudonym
    domain: Domain = DEFAULT_DOMAIN
    purpose: Purpose


class IdentityOut(BaseModel):
    pseudonym: str
    subject_id: int
    identifiers: dict[str, list[str]]
    invalid: dict[str, list[str]]


class DetokenizeBatchIn(Strict):
    pseudonyms: list[Pseudonym] = Field(min_length=1, max_length=MAX_BATCH)
    domain: Domain = DEFAULT_DOMAIN
    purpose: Purpose


class DetokenizeResultOut(BaseModel):
    status: str = Field(description="found, erased, unknown or refused")
    identity: IdentityOut | None = None
    erased_at: datetime | None = None
    reason: str | None = None


class DetokenizeBatchOut(BaseModel):
    results: dict[str, DetokenizeResultOut]
    found: int


class ShredIn(Strict):
    pseudonym: Pseudonym
    domain: Domain = DEFAULT_DOMAIN
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS,
                        description="Why (e.g. 'consent withdrawn'); no personal data, it goes to the audit log.")


# The vault's own dataclass is the response model (one definition of the fields, same JSON).
CertificateSummaryOut = CertificateSummary


class CertificateKeysOut(BaseModel):
    certificate_key_id: str
    certificate_public_key: str
    audit_key_id: str
    audit_public_key: str
    algorithm: str


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str


class VerificationOut(BaseModel):
    certificate_id: str | None
    ok: bool
    checks: list[CheckOut]


class DayCountOut(BaseModel):
    date: str
    purpose: str
    subjects: int


class StatsOut(BaseModel):
    subjects: int
    active: int
    erased: int
    with_invalid: int
    by_type: dict[str, int]
    lookups: int
    pseudonyms: int
    certificates: int
    reidentifications: dict[str, int]
    days: int
    reidentifications_by_day: list[DayCountOut]
    lookup_types: list[str]


class ReidentificationOut(BaseModel):
    entry_id: int
    at: datetime
    actor: str
    purpose: str
    domain: str
    count: int
    batch: bool


def _identity(identity: Identity) -> IdentityOut:
    return IdentityOut(pseudonym=identity.pseudonym, subject_id=identity.subject_id,
                       identifiers=identity.identifiers, invalid=identity.invalid)


@router.post("/tokenize", response_model=TokenOut, summary="Identifier → pseudonym (creates the subject if new)")
def tokenize(body: TokenizeIn, ctx: VaultCtx) -> TokenOut:
    with ctx.write() as session:
        token = vault_for(ctx.platform).tokenize(session, body.entity_type, body.value, domain=body.domain,
                                                 actor=ctx.actor)
    return TokenOut(pseudonym=token.pseudonym, subject_id=token.subject_id, created=token.created)


@router.post("/tokenize-batch", response_model=TokenizeBatchOut,
             summary="Records of identifiers → pseudonyms; invalid records are reported, not stored")
def tokenize_batch(body: TokenizeBatchIn, ctx: VaultCtx) -> TokenizeBatchOut:
    records = [SubjectRecord(r.identifiers) for r in body.records]
    with ctx.write() as session:
        results = vault_for(ctx.platform).tokenize_many(session, records, domain=body.domain, actor=ctx.actor,
                                                        keep_invalid=body.keep_invalid)
    out = []
    for index, result in enumerate(results):
        if isinstance(result, RowProblem):
            out.append(BatchResultOut(index=index, problem=ProblemOut(field=result.field, reason=result.reason)))
        else:
            out.append(BatchResultOut(index=index, pseudonym=result.pseudonym, subject_id=result.subject_id,
                                      created=result.created))
    return TokenizeBatchOut(results=out, created=sum(1 for r in out if r.created),
                            problems=sum(1 for r in out if r.problem))


@router.post("/lookup", response_model=LookupOut,
             summary=f"Find the subject holding an identifier (lookup types: {', '.join(sorted(LOOKUP_TYPES))})")
def lookup(body: LookupIn, ctx: VaultCtx) -> LookupOut:
    vault = vault_for(ctx.platform)
    with ctx.read() as session:
        subject_id = vault.lookup(session, body.entity_type, body.value)
    if subject_id is None:
        return LookupOut(found=False)
    with ctx.write() as session:
        pseudonym = vault.pseudonym_for(session, subject_id, body.domain, actor=ctx.actor)
    return LookupOut(found=True, subject_id=subject_id, pseudonym=pseudonym)


@router.post("/detokenize", response_model=IdentityOut,
             summary="Re-identify one subject for a stated purpose (audited; admin or DPO)")
def detokenize(body: DetokenizeIn, ctx: VaultCtx) -> IdentityOut:
    with ctx.write() as session:
        identity = vault_for(ctx.platform).detokenize(session, body.pseudonym, domain=body.domain,
                                                      purpose=body.purpose, principal=ctx.principal)
    return _identity(identity)


@router.post("/detokenize-batch", response_model=DetokenizeBatchOut,
             summary="Re-identify many subjects for a stated purpose (one audit entry with the counts)")
def detokenize_batch(body: DetokenizeBatchIn, ctx: VaultCtx) -> DetokenizeBatchOut:
    with ctx.write() as session:
        results = vault_for(ctx.platform).detokenize_many(session, body.pseudonyms, domain=body.domain,
                                                          purpose=body.purpose, principal=ctx.principal)
    out: dict[str, DetokenizeResultOut] = {}
    for pseudonym, result in results.items():
        if result is None:
            out[pseudonym] = DetokenizeResultOut(status="unknown")
        elif isinstance(result, SubjectErased):
            out[pseudonym] = DetokenizeResultOut(status="erased", erased_at=result.erased_at)
        elif isinstance(result, ReidentificationRefused):
            out[pseudonym] = DetokenizeResultOut(status="refused", reason=result.reason)
        else:
            out[pseudonym] = DetokenizeResultOut(status="found", identity=_identity(result))
    return DetokenizeBatchOut(results=out, found=sum(1 for r in out.values() if r.status == "found"))


@router.post("/shred", summary="Crypto-shred a subject; returns the signed erasure certificate (admin or DPO)")
def shred(body: ShredIn, ctx: VaultCtx) -> dict[str, Any]:
    with ctx.write() as session:
        certificate = vault_for(ctx.platform).shred(session, body.pseudonym, domain=body.domain,
                                                    reason=body.reason, actor=ctx.actor)
    return certificate.document


@router.get("/stats", response_model=StatsOut, summary="Counts: subjects, types, erasures, re-identifications")
def stats(ctx: AuditorCtx, days: int = Query(30, ge=1, le=366)) -> StatsOut:
    vault = vault_for(ctx.platform)
    with ctx.read() as session:
        result = vault.stats(session, days=days)
        by_day = vault.reidentifications_by_day(session, days=days)
    return StatsOut(**result.to_dict(), lookup_types=sorted(LOOKUP_TYPES),
                    reidentifications_by_day=[DayCountOut(date=d, purpose=p, subjects=n) for d, p, n in by_day])


@router.get("/reidentifications", response_model=list[ReidentificationOut],
            summary="The re-identification log: who, when, purpose, how many (never values)")
def reidentifications(ctx: AuditorCtx, limit: int = Query(50, ge=1, le=500),
                      before: int | None = Query(None, ge=0, le=2**62)) -> list[ReidentificationOut]:
    with ctx.read() as session:
        events = vault_for(ctx.platform).reidentification_log(session, limit=limit, before=before)
    return [ReidentificationOut(**e.__dict__) for e in events]


@router.get("/certificate-key", response_model=CertificateKeysOut,
            summary="The public keys that sign erasure certificates and audit tree heads (public: pin them)")
def certificate_key(platform: PlatformDep) -> CertificateKeysOut:
    from ...core import audit

    vault = vault_for(platform)
    try:
        with platform.db.reader() as session:
            keys = vault.certificate_keys(session, create=False)
    except NotFound:
        with platform.db.transaction() as session:  # the signing key is created on first use
            keys = vault.certificate_keys(session)
    return CertificateKeysOut(certificate_key_id=certificates.SIGNING_KEY_ID, audit_key_id=audit.SIGNING_KEY_ID,
                              algorithm="Ed25519", **keys)


@router.get("/certificates", response_model=list[CertificateSummaryOut], summary="Erasure certificates, newest first")
def list_certificates(ctx: AuditorCtx, limit: int = Query(50, ge=1, le=500)) -> list[CertificateSummaryOut]:
    with ctx.read() as session:
        items = vault_for(ctx.platform).list_certificates(session, limit=limit)
    return items


@router.get("/certificates/{certificate_id}", summary="One erasure certificate, exactly as signed")
def get_certificate(certificate_id: Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z_]+$")],
                    ctx: AuditorCtx) -> dict[str, Any]:
    with ctx.read() as session:
        return vault_for(ctx.platform).get_certificate(session, certificate_id).document


@router.post("/certificates/verify", response_model=VerificationOut,
             summary="Verify an erasure certificate against this platform's keys and audit log")
def verify_certificate(ctx: AuditorCtx, document: Annotated[dict[str, Any], Body(
        description="The certificate document as issued: {\"certificate\": …, \"signature\": …}")]) -> VerificationOut:
    import json

    text = json.dumps(document, ensure_ascii=False)
    with ctx.read() as session:
        result = vault_for(ctx.platform).verify_certificate(session, text)
    return VerificationOut(**result.to_dict())


def install(app: Any) -> None:
    """Mount the vault API and open the platform's vault now, so a wrong master key file is a start-up
    error (:class:`qorgau.core.keys.KeyFileError`) rather than a failure of the first request."""
    app.include_router(router, prefix="/api/v1")
    vault_for(app.state.platform)
