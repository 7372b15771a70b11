"""Consent over HTTP: purposes, counterparties, legal bases, consents, the decision point, withdrawal,
receipts, transfers and processors' confirmations (L-PD-CONSENT, L-PD-WITHDRAW, L-PD-TRANSFER).

Who may do what:

* **admin** and **dpo** record and change everything (they are the operator's responsible people);
* **regulator** reads (supervision) but changes nothing;
* ``POST /consent/check`` — the decision point — is open to every API key and user of the operator except
  citizens (processing code calls it with a key of its own, typically role ``reviewer`` or ``dpo``);
* a counterparty confirms "stopped" with its own token (``Authorization: Bearer qcp_…``, issued when it was
  registered), which reaches that counterparty's notifications and nothing else; an admin or DPO may record
  a confirmation received by other means.

Subjects travel in request bodies, never in URLs or query strings (access logs keep those). Every route
works inside the caller's organization: another operator's consent is "not found".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import date, datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, Field, ValidationError

from ...core.auth import Role
from ...core.calendar import local_date
from ...core.db import utcnow
from ...core.errors import AuthenticationRequired, InvalidInput, NotFound, PermissionDenied, QorgauError
from ...consent import outbox, receipts
from ...consent.decision import SubjectRef
from ...consent.models import CHANNELS, COUNTERPARTY_KINDS, LEGAL_BASIS_KINDS, Consent, Counterparty, LegalBasis
from ...consent.service import ConsentService, consent_for
from ..deps import AuditorCtx, Context, PlatformDep, StaffCtx, _note_key_use, authenticate, get_platform
from ..schemas import MAX_ID, Strict

router = APIRouter(prefix="/consent", tags=["consent"])
_log = logging.getLogger("qorgau.api")
_access = logging.getLogger("qorgau.access")

ConsentId = Annotated[int, Path(ge=0, le=MAX_ID, description="A consent of your organization.")]
CounterpartyId = Annotated[int, Path(ge=0, le=MAX_ID, description="A counterparty of your organization.")]
BasisId = Annotated[int, Path(ge=0, le=MAX_ID, description="A legal basis of your organization.")]
TransferId = Annotated[int, Path(ge=0, le=MAX_ID, description="A transfer of your organization.")]
NotificationId = Annotated[int, Path(ge=0, le=MAX_ID, description="A processor notification.")]
MessageId = Annotated[int, Path(ge=0, le=MAX_ID, description="An outbox message of your organization.")]
Channel = Literal["state_service", "non_state_service", "written", "other_verifiable"]
Kind = Literal["processor", "third_party"]
BasisKind = Literal["contract", "law", "court_order", "vital_interest", "public_task"]
Status = Literal["active", "withdrawn", "expired", "superseded"]
assert set(Channel.__args__) == set(CHANNELS)  # type: ignore[attr-defined]
assert set(Kind.__args__) == set(COUNTERPARTY_KINDS)  # type: ignore[attr-defined]
assert set(BasisKind.__args__) == set(LEGAL_BASIS_KINDS)  # type: ignore[attr-defined]


def _service(ctx: Context) -> ConsentService:
    return consent_for(ctx.platform)


# --- bodies --------------------------------------------------------------------------------------


class SubjectIn(Strict):
    """A vault pseudonym, or an identifier type and value (one of the two)."""

    pseudonym: str | None = Field(default=None, max_length=64)
    identifier_type: str | None = Field(default=None, max_length=40, description="e.g. KZ_IIN, PHONE_NUMBER")
    identifier: str | None = Field(default=None, max_length=1000)
    domain: str = Field(default="default", max_length=40)

    def ref(self) -> SubjectRef:
        return SubjectRef(pseudonym=self.pseudonym, identifier_type=self.identifier_type,
                          identifier=self.identifier, domain=self.domain)


class CheckIn(Strict):
    subject: SubjectIn
    purpose: str = Field(max_length=64)
    data_categories: list[str] = Field(default_factory=list, max_length=100)
    at: datetime | None = Field(default=None, description="Evaluate terms at this instant (default: now).")


class DecisionOut(BaseModel):
    allow: bool
    basis: str | None
    consent_id: int | None
    legal_basis_id: int | None
    reason: str
    checked_at: datetime


class ConsentIn(Strict):
    subject: SubjectIn
    full_name: str | None = Field(default=None, max_length=300, description="Sealed in the vault (Art.8 p.4 (2)).")
    purpose: str = Field(max_length=64)
    data_categories: list[str] = Field(min_length=1, max_length=100)
    valid_until: datetime | None = None
    third_party_transfer: bool = False
    counterparties: list[int] = Field(default_factory=list, max_length=100)
    cross_border: bool = False
    countries: list[str] = Field(default_factory=list, max_length=50)
    public_sources: bool = False
    other: str | None = Field(default=None, max_length=2000)
    channel: Channel
    evidence_ref: str | None = Field(default=None, max_length=300)
    evidence_sha256: str | None = Field(default=None, max_length=64)
    notify_on_transfer: bool | None = None


class ConsentOut(BaseModel):
    id: int
    organization_id: int
    receipt_id: str
    subject_pseudonym: str | None
    purpose: str
    purpose_names: dict[str, str]
    data_categories: list[str]
    valid_until: datetime | None
    third_party_transfer: bool
    counterparties: list[int]
    cross_border: bool
    countries: list[str]
    public_sources: bool
    other: str | None
    channel: str
    evidence_ref: str | None
    evidence_sha256: str | None
    notify_on_transfer: bool
    sensitive: bool
    status: str
    version: int
    given_at: datetime
    withdrawn_at: datetime | None
    superseded_by_id: int | None


class EventOut(BaseModel):
    at: datetime
    event: str
    actor: str
    channel: str | None
    from_status: str | None
    to_status: str
    details: dict[str, Any]


class SubjectConsentsIn(Strict):
    subject: SubjectIn


class WithdrawIn(Strict):
    channel: Channel
    idempotency_key: str | None = Field(default=None, max_length=100)


class WithdrawalOut(BaseModel):
    consent_id: int
    withdrawal_id: int
    withdrawn_at: datetime
    channel: str
    refused: bool
    basis: dict[str, Any] | None
    shredded: bool
    erasure_certificate_id: str | None
    repeated: bool
    notifications: list[dict[str, Any]]
    receipt: dict[str, Any]


class PurposeIn(Strict):
    code: str = Field(max_length=64)
    names: dict[str, str]
    description: str | None = Field(default=None, max_length=2000)


class PurposesImportIn(Strict):
    text: str = Field(max_length=1_000_000, description="A purposes file (YAML, the format of purposes.yaml).")
    source: str = Field(default="upload.yaml", max_length=200, description="Its name, for error messages.")


class PurposeOut(BaseModel):
    code: str
    parent: str | None
    names: dict[str, str]
    description: str | None
    custom: bool


class CategoryOut(BaseModel):
    code: str
    names: dict[str, str]
    sensitive: bool


class CounterpartyIn(Strict):
    name: str = Field(max_length=300)
    kind: Kind
    bin: str | None = Field(default=None, max_length=20)
    foreign_registration: str | None = Field(default=None, max_length=100)
    country: str = Field(default="KZ", max_length=2)
    webhook_url: str | None = Field(default=None, max_length=2000)


class CounterpartyPatch(Strict):
    webhook_url: str | None = Field(default=None, max_length=2000)
    clear_webhook: bool = False
    active: bool | None = None


class CounterpartyOut(BaseModel):
    id: int
    name: str
    kind: str
    bin: str | None
    foreign_registration: str | None
    country: str
    webhook_url: str | None
    has_webhook_secret: bool
    token_prefix: str | None
    active: bool
    created_at: datetime


class CounterpartyCreatedOut(BaseModel):
    counterparty: CounterpartyOut
    webhook_secret: str | None = Field(description="Shown once: the HMAC key of its webhooks.")
    token: str = Field(description="Shown once: what it confirms 'stopped' with (Bearer qcp_…).")


class SecretOut(BaseModel):
    secret: str


class LegalBasisIn(Strict):
    kind: BasisKind
    purpose: str = Field(max_length=64)
    reference: str = Field(max_length=300)
    subject: SubjectIn | None = None
    description: str | None = Field(default=None, max_length=2000)
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class LegalBasisOut(BaseModel):
    id: int
    kind: str
    purpose: str
    reference: str
    description: str | None
    per_subject: bool
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None


class TransferIn(Strict):
    consent_id: int = Field(ge=0, le=MAX_ID)
    counterparty_id: int = Field(ge=0, le=MAX_ID)
    data_categories: list[str] = Field(min_length=1, max_length=100)


class TransferOut(BaseModel):
    id: int
    consent_id: int
    counterparty_id: int
    data_categories: list[str]
    transferred_at: datetime
    country: str
    cross_border: bool
    notify_subject: bool
    notify_deadline: date | None
    subject_notified_at: datetime | None
    overdue: bool


class NotificationOut(BaseModel):
    id: int
    consent_id: int
    counterparty_id: int
    created_at: datetime
    deadline: date
    confirmed_at: datetime | None
    overdue: bool
    seconds_to_stop: float | None
    delivery: dict[str, Any] | None


# Webhook delivery state: the outbox's own dataclass is the response model (one definition, same JSON).
MessageOut = outbox.MessageState


class VerifyOut(BaseModel):
    valid: bool
    receipt_id: str | None
    type: str | None
    checks: list[dict[str, Any]]


class KeyOut(BaseModel):
    key_id: str
    algorithm: str
    public_key: str


class StatsOut(BaseModel):
    by_purpose: dict[str, dict[str, int]]
    outbox: dict[str, int]
    open_notifications: int
    overdue_notifications: int
    transfers_awaiting_notice: int


# --- converters ------------------------------------------------------------------------------------


def _consent_out(service: ConsentService, s: Any, rows: list[Consent]) -> list[ConsentOut]:
    pseudonyms = service.pseudonyms_of(s, [r.subject_id for r in rows])
    taxonomy = service.taxonomy(s)
    now = utcnow()
    out = []
    for r in rows:
        purpose = taxonomy.purpose(r.purpose)
        out.append(ConsentOut(
            id=r.id, organization_id=r.organization_id, receipt_id=r.receipt_id,
            subject_pseudonym=pseudonyms.get(r.subject_id), purpose=r.purpose,
            purpose_names=dict(purpose.names) if purpose else {}, data_categories=list(r.data_categories),
            valid_until=r.valid_until, third_party_transfer=r.third_party_transfer,
            counterparties=list(r.counterparty_ids), cross_border=r.cross_border, countries=list(r.countries),
            public_sources=r.public_sources, other=r.other, channel=r.channel, evidence_ref=r.evidence_ref,
            evidence_sha256=r.evidence_sha256, notify_on_transfer=r.notify_on_transfer, sensitive=r.sensitive,
            status=r.status_at(now), version=r.version, given_at=r.given_at, withdrawn_at=r.withdrawn_at,
            superseded_by_id=r.superseded_by_id))
    return out


def _counterparty_out(c: Counterparty) -> CounterpartyOut:
    return CounterpartyOut(id=c.id, name=c.name, kind=c.kind, bin=c.bin, foreign_registration=c.foreign_registration,
                           country=c.country, webhook_url=c.webhook_url,
                           has_webhook_secret=c.webhook_secret_sealed is not None, token_prefix=c.token_prefix,
                           active=c.active, created_at=c.created_at)


def _basis_out(b: LegalBasis) -> LegalBasisOut:
    return LegalBasisOut(id=b.id, kind=b.kind, purpose=b.purpose, reference=b.reference, description=b.description,
                         per_subject=b.subject_id is not None, valid_from=b.valid_from, valid_until=b.valid_until,
                         revoked_at=b.revoked_at)


def _notification_out(s: Any, n: Any) -> NotificationOut:
    delivery = None
    if n.outbox_message_id is not None:
        state = outbox.message_state(s, n.outbox_message_id)
        delivery = {"status": state.status, "attempts": state.attempts, "delivered_at": state.delivered_at,
                    "last_error": state.last_error}
    return NotificationOut(
        id=n.id, consent_id=n.consent_id, counterparty_id=n.counterparty_id, created_at=n.created_at,
        deadline=n.deadline, confirmed_at=n.confirmed_at, overdue=n.overdue(local_date(utcnow())),
        seconds_to_stop=(n.confirmed_at - n.created_at).total_seconds() if n.confirmed_at else None, delivery=delivery)


def _transfer_out(t: Any) -> TransferOut:
    overdue = (t.notify_subject and t.subject_notified_at is None and t.notify_deadline is not None
               and local_date(utcnow()) > t.notify_deadline)
    return TransferOut(id=t.id, consent_id=t.consent_id, counterparty_id=t.counterparty_id,
                       data_categories=list(t.data_categories), transferred_at=t.transferred_at, country=t.country,
                       cross_border=t.cross_border, notify_subject=t.notify_subject,
                       notify_deadline=t.notify_deadline, subject_notified_at=t.subject_notified_at, overdue=overdue)


def _withdrawal_out(w: Any) -> WithdrawalOut:
    d = w.to_dict()
    return WithdrawalOut(**{k: d[k] for k in WithdrawalOut.model_fields})


# --- the decision point ------------------------------------------------------------------------------

_CHECK_ROLES = frozenset({Role.ADMIN.value, Role.DPO.value, Role.REVIEWER.value, Role.REGULATOR.value})
CHECK_PATH = "/api/v1/consent/check"
MAX_CHECK_BODY = 64 * 1024


def _api_key_principal(platform: Any, header: str) -> tuple[int, frozenset[str]]:
    """An operator's API key, read straight from ``api_keys`` on every call through the decision point's own
    connection (no cache: a revoked key stops working at once) — the same rules as ``auth.resolve_api_key``."""
    token = header[7:].strip()
    if not token.startswith("qk_") or token.count("_") < 2:
        raise AuthenticationRequired("malformed API key")
    prefix, _, secret = token[3:].partition("_")
    decisions = consent_for(platform).decisions
    rows = decisions._execute(  # noqa: SLF001 — the decision point's own connection
        f"SELECT id, organization_id, roles, secret_hash, revoked_at FROM api_keys WHERE prefix = {decisions._p}",  # noqa: SLF001
        (prefix,))
    if not rows or not hmac.compare_digest(str(rows[0][3]), hashlib.sha256(secret.encode()).hexdigest()):
        raise AuthenticationRequired("unknown API key")
    key_id, org, roles, _, revoked = rows[0]
    if revoked is not None:
        raise AuthenticationRequired("this API key was revoked")
    _note_key_use(platform, key_id)
    return org, frozenset(json.loads(roles) if isinstance(roles, (str, bytes)) else roles)


def _decide(platform: Any, org: int, roles: frozenset[str], raw: bytes) -> dict[str, Any]:
    if not roles & _CHECK_ROLES:
        raise PermissionDenied("this needs an operator's API key or staff login (citizens cannot query the "
                               "decision point)")
    try:
        body = CheckIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or None
        message = {"extra_forbidden": "unknown field", "json_invalid": "request body is not valid JSON"}.get(
            str(first.get("type")), str(first.get("msg")))
        raise InvalidInput(message, field=loc) from None
    decision = consent_for(platform).check(body.subject.ref(), organization_id=org, purpose=body.purpose,
                                           data_categories=body.data_categories, at=body.at)
    return decision.to_dict()


@router.post("/check", response_model=DecisionOut, summary="May we process this subject for this purpose now?")
async def check(request: Request) -> Response:
    """The decision point (linearizable with withdrawal: a check that starts after a withdrawal returned
    never allows). Body: ``{"subject": {...}, "purpose": "marketing.sms", "data_categories": [...]}``.

    Calls with an API key are answered by :class:`FastCheck` before the framework's routing; this route
    serves session (cookie) callers and documents the endpoint."""
    platform = get_platform(request)
    principal = authenticate(request, platform)
    return Response(json.dumps(_decide(platform, principal.organization_id, principal.roles, await request.body())),
                    media_type="application/json")


def _answer(platform: Any, authorization: bytes, raw: bytes) -> tuple[int, dict[str, Any]]:
    try:
        org, roles = _api_key_principal(platform, authorization.decode("latin-1"))
        return 200, _decide(platform, org, roles, raw)
    except QorgauError as exc:
        return exc.status, {"error": exc.to_dict()}
    except Exception as exc:  # log the type only: the request may carry identifiers
        _log.error("unhandled %s on POST %s", type(exc).__name__, CHECK_PATH)
        return 500, {"error": {"code": "internal_error", "field": None,
                               "message": "internal error; the event was logged without request data"}}


class FastCheck:
    """The hot path as a small ASGI layer: ``POST /api/v1/consent/check`` with ``Authorization: Bearer qk_…``
    is answered here, without the framework's routing, dependency injection and ``BaseHTTPMiddleware``
    (which cost several times the check itself). It keeps what the app guarantees for every request: a
    body-size cap, the ``{"error": …}`` format, the security headers, Prometheus metrics and the access log
    line with the route template. Everything else passes through untouched."""

    _HEADERS = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != CHECK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        authorization = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        if authorization[:10].lower() != b"bearer qk_":
            await self.app(scope, receive, send)  # session callers: the full stack (CSRF and all)
            return
        started = time.perf_counter()
        app = scope["app"]
        platform = app.state.platform
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_CHECK_BODY:
                status, payload = 413, {"error": {"code": "payload_too_large", "field": "body",
                                                  "message": f"request body exceeds the limit of {MAX_CHECK_BODY} bytes"}}
                break
            chunks.append(chunk)
            if not message.get("more_body", False):
                raw = b"".join(chunks)
                if platform.db.dialect == "sqlite":
                    # Two in-process index probes (tens of µs): cheaper on the event loop than a thread hop.
                    status, payload = _answer(platform, authorization, raw)
                else:
                    # Network round trips: wait for them in a worker thread so concurrent checks overlap.
                    status, payload = await anyio.to_thread.run_sync(_answer, platform, authorization, raw)
                break
        data = json.dumps(payload).encode()
        headers = [*self._HEADERS, (b"content-length", str(len(data)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        elapsed = time.perf_counter() - started
        app.state.metrics.observe("POST", CHECK_PATH, status, elapsed)
        _access.info("%s %s %d %.1fms", "POST", CHECK_PATH, status, elapsed * 1000)


# --- purposes and categories ---------------------------------------------------------------------------


@router.get("/purposes", response_model=list[PurposeOut], summary="Processing purposes (platform + yours)")
def list_purposes(ctx: AuditorCtx) -> list[PurposeOut]:
    with ctx.read() as s:
        return [PurposeOut(**p.to_dict()) for p in _service(ctx).purposes(s)]


@router.post("/purposes", response_model=PurposeOut, status_code=status.HTTP_201_CREATED,
             summary="Add one of your own purposes")
def add_purpose(body: PurposeIn, ctx: StaffCtx) -> PurposeOut:
    with ctx.write() as s:
        purpose = _service(ctx).add_purpose(s, code=body.code, names=body.names, description=body.description,
                                            actor=ctx.actor)
    return PurposeOut(**purpose.to_dict())


@router.post("/purposes/import", response_model=list[PurposeOut], summary="Import your purposes from a YAML file")
def import_purposes(body: PurposesImportIn, ctx: StaffCtx) -> list[PurposeOut]:
    with ctx.write() as s:
        items = _service(ctx).import_purposes(s, body.text, source=body.source, actor=ctx.actor)
    return [PurposeOut(**p.to_dict()) for p in items]


@router.get("/categories", response_model=list[CategoryOut], summary="Data categories a consent may list")
def list_categories(ctx: AuditorCtx) -> list[CategoryOut]:
    return [CategoryOut(**c.to_dict()) for c in ConsentService.categories()]


# --- counterparties ----------------------------------------------------------------------------------


@router.get("/counterparties", response_model=list[CounterpartyOut], summary="Processors and third parties")
def list_counterparties(ctx: AuditorCtx) -> list[CounterpartyOut]:
    with ctx.read() as s:
        return [_counterparty_out(c) for c in _service(ctx).list_counterparties(s)]


@router.post("/counterparties", response_model=CounterpartyCreatedOut, status_code=status.HTTP_201_CREATED,
             summary="Register a processor or third party (its secrets are shown once)")
def add_counterparty(body: CounterpartyIn, ctx: StaffCtx) -> CounterpartyCreatedOut:
    with ctx.write() as s:
        created = _service(ctx).add_counterparty(s, name=body.name, kind=body.kind, bin=body.bin,
                                                 foreign_registration=body.foreign_registration, country=body.country,
                                                 webhook_url=body.webhook_url, actor=ctx.actor)
        return CounterpartyCreatedOut(counterparty=_counterparty_out(created.counterparty),
                                      webhook_secret=created.webhook_secret, token=created.token)


@router.get("/counterparties/{counterparty_id}", response_model=CounterpartyOut, summary="One counterparty")
def get_counterparty(counterparty_id: CounterpartyId, ctx: AuditorCtx) -> CounterpartyOut:
    with ctx.read() as s:
        return _counterparty_out(_service(ctx).get_counterparty(s, counterparty_id))


@router.patch("/counterparties/{counterparty_id}", response_model=CounterpartyCreatedOut,
              summary="Change a counterparty's webhook URL or active flag")
def update_counterparty(counterparty_id: CounterpartyId, body: CounterpartyPatch, ctx: StaffCtx) -> CounterpartyCreatedOut:
    with ctx.write() as s:
        row, secret = _service(ctx).update_counterparty(s, counterparty_id, actor=ctx.actor,
                                                        webhook_url=body.webhook_url,
                                                        clear_webhook=body.clear_webhook, active=body.active)
        return CounterpartyCreatedOut(counterparty=_counterparty_out(row), webhook_secret=secret, token="")


@router.post("/counterparties/{counterparty_id}/rotate-secret", response_model=SecretOut,
             summary="A new webhook signing secret (shown once)")
def rotate_secret(counterparty_id: CounterpartyId, ctx: StaffCtx) -> SecretOut:
    with ctx.write() as s:
        return SecretOut(secret=_service(ctx).rotate_counterparty_secret(s, counterparty_id, actor=ctx.actor))


@router.post("/counterparties/{counterparty_id}/rotate-token", response_model=SecretOut,
             summary="A new confirmation token (shown once; the old one stops working)")
def rotate_token(counterparty_id: CounterpartyId, ctx: StaffCtx) -> SecretOut:
    with ctx.write() as s:
        return SecretOut(secret=_service(ctx).rotate_counterparty_token(s, counterparty_id, actor=ctx.actor))


# --- legal bases -----------------------------------------------------------------------------------------


@router.get("/legal-bases", response_model=list[LegalBasisOut], summary="Grounds for processing other than consent")
def list_legal_bases(ctx: AuditorCtx, include_revoked: bool = False) -> list[LegalBasisOut]:
    with ctx.read() as s:
        return [_basis_out(b) for b in _service(ctx).list_legal_bases(s, include_revoked=include_revoked)]


@router.post("/legal-bases", response_model=LegalBasisOut, status_code=status.HTTP_201_CREATED,
             summary="Record a legal basis (contract, law, court order…)")
def add_legal_basis(body: LegalBasisIn, ctx: StaffCtx) -> LegalBasisOut:
    with ctx.write() as s:
        basis = _service(ctx).add_legal_basis(
            s, kind=body.kind, purpose=body.purpose, reference=body.reference,
            subject=body.subject.ref() if body.subject else None, description=body.description,
            valid_from=body.valid_from, valid_until=body.valid_until, actor=ctx.actor)
        return _basis_out(basis)


@router.get("/legal-bases/{basis_id}", response_model=LegalBasisOut, summary="One legal basis")
def get_legal_basis(basis_id: BasisId, ctx: AuditorCtx) -> LegalBasisOut:
    with ctx.read() as s:
        return _basis_out(_service(ctx).get_legal_basis(s, basis_id))


@router.post("/legal-bases/{basis_id}/revoke", response_model=LegalBasisOut, summary="End a legal basis now")
def revoke_legal_basis(basis_id: BasisId, ctx: StaffCtx) -> LegalBasisOut:
    with ctx.write() as s:
        return _basis_out(_service(ctx).revoke_legal_basis(s, basis_id, actor=ctx.actor))


# --- consents -----------------------------------------------------------------------------------------------


@router.post("/consents", response_model=ConsentOut, status_code=status.HTTP_201_CREATED,
             summary="Record a consent (Art.8 p.4)")
def give(body: ConsentIn, ctx: StaffCtx) -> ConsentOut:
    service = _service(ctx)
    with ctx.write() as s:
        consent = service.give(
            s, body.subject.ref(), purpose=body.purpose, data_categories=body.data_categories,
            valid_until=body.valid_until, third_party_transfer=body.third_party_transfer,
            counterparties=body.counterparties, cross_border=body.cross_border, countries=body.countries,
            public_sources=body.public_sources, other=body.other, channel=body.channel,
            evidence_ref=body.evidence_ref, evidence_sha256=body.evidence_sha256, actor=ctx.actor,
            full_name=body.full_name, notify_on_transfer=body.notify_on_transfer)
        return _consent_out(service, s, [consent])[0]


@router.get("/consents", response_model=list[ConsentOut], summary="Your consents, newest first")
def list_consents(ctx: AuditorCtx, purpose: str | None = Query(None, max_length=64), status_: Status | None = Query(
        None, alias="status"), limit: int = Query(100, ge=1, le=1000),
        before: int | None = Query(None, ge=0, le=MAX_ID)) -> list[ConsentOut]:
    service = _service(ctx)
    with ctx.read() as s:
        return _consent_out(service, s, service.list_consents(s, purpose=purpose, status=status_, limit=limit,
                                                              before=before))


@router.post("/subjects/consents", response_model=list[ConsentOut], summary="Every consent of one subject")
def consents_of_subject(body: SubjectConsentsIn, ctx: AuditorCtx) -> list[ConsentOut]:
    service = _service(ctx)
    with ctx.read() as s:
        return _consent_out(service, s, service.consents_of_subject(s, body.subject.ref()))


@router.get("/consents/{consent_id}", response_model=ConsentOut, summary="One consent")
def get_consent(consent_id: ConsentId, ctx: AuditorCtx) -> ConsentOut:
    service = _service(ctx)
    with ctx.read() as s:
        return _consent_out(service, s, [service.get_consent(s, consent_id)])[0]


@router.get("/consents/{consent_id}/history", response_model=list[EventOut], summary="A consent's status history")
def history(consent_id: ConsentId, ctx: AuditorCtx) -> list[EventOut]:
    with ctx.read() as s:
        return [EventOut(at=e.at, event=e.event, actor=e.actor, channel=e.channel, from_status=e.from_status,
                         to_status=e.to_status, details=e.details) for e in _service(ctx).history(s, consent_id)]


@router.post("/consents/{consent_id}/withdraw", response_model=WithdrawalOut,
             summary="Withdraw a consent (stops processing at once; idempotent)")
def withdraw(consent_id: ConsentId, body: WithdrawIn, ctx: StaffCtx, response: Response) -> WithdrawalOut:
    with ctx.write() as s:
        result = _service(ctx).withdraw(s, consent_id, channel=body.channel, actor=ctx.actor,
                                        idempotency_key=body.idempotency_key)
    response.status_code = status.HTTP_200_OK if result.repeated else status.HTTP_201_CREATED
    return _withdrawal_out(result)


@router.get("/consents/{consent_id}/withdrawal", response_model=WithdrawalOut,
            summary="The withdrawal of a consent and its signed receipt")
def get_withdrawal(consent_id: ConsentId, ctx: AuditorCtx) -> WithdrawalOut:
    with ctx.read() as s:
        result = _service(ctx).withdrawal_of(s, consent_id)
    if result is None:
        raise NotFound("this consent was not withdrawn", field="consent_id")
    return _withdrawal_out(result)


@router.get("/consents/{consent_id}/receipt", summary="The consent's signed receipt (ISO/IEC TS 27560 fields)")
def receipt(consent_id: ConsentId, ctx: AuditorCtx) -> Response:
    with ctx.read() as s:
        document = _service(ctx).receipt(s, consent_id)
    return Response(receipts.text_of(document), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="consent-{consent_id}-receipt.json"'})


@router.get("/receipt-key", response_model=KeyOut, summary="The Ed25519 key that signs receipts (public)")
def receipt_key(platform: PlatformDep) -> KeyOut:
    # A write transaction: the first call creates the key. In a read transaction that insert would be upgraded
    # from a stale snapshot (SQLite answers "database is locked" at once when another writer went first) or
    # rolled back while the key stayed cached in this process.
    with platform.db.transaction() as s:
        key = receipts.public_key_hex(s, platform.keyring)
    return KeyOut(key_id=receipts.SIGNING_KEY_ID, algorithm="Ed25519", public_key=key)


@router.post("/receipts/verify", response_model=VerifyOut, summary="Verify a receipt against this platform's key")
async def verify(request: Request, platform: PlatformDep) -> VerifyOut:
    raw = await request.body()
    with platform.db.transaction() as s:  # may create the key (see receipt_key)
        key = receipts.public_key_hex(s, platform.keyring)
    return VerifyOut(**receipts.verify_receipt(raw, public_key=key).to_dict())


# --- transfers -----------------------------------------------------------------------------------------------


@router.post("/transfers", response_model=TransferOut, status_code=status.HTTP_201_CREATED,
             summary="Record a transfer of a subject's data to a counterparty (L-PD-TRANSFER)")
def record_transfer(body: TransferIn, ctx: StaffCtx) -> TransferOut:
    with ctx.write() as s:
        return _transfer_out(_service(ctx).record_transfer(s, body.consent_id, body.counterparty_id,
                                                           data_categories=body.data_categories, actor=ctx.actor))


@router.get("/transfers", response_model=list[TransferOut], summary="Transfers, newest first")
def list_transfers(ctx: AuditorCtx, pending: bool = False, limit: int = Query(200, ge=1, le=1000)) -> list[TransferOut]:
    with ctx.read() as s:
        return [_transfer_out(t) for t in _service(ctx).list_transfers(s, pending_only=pending, limit=limit)]


@router.post("/transfers/{transfer_id}/subject-notified", response_model=TransferOut,
             summary="The subject was told of this transfer")
def subject_notified(transfer_id: TransferId, ctx: StaffCtx) -> TransferOut:
    with ctx.write() as s:
        return _transfer_out(_service(ctx).mark_subject_notified(s, transfer_id, actor=ctx.actor))


# --- processors' confirmations --------------------------------------------------------------------------------


@router.get("/notifications", response_model=list[NotificationOut],
            summary="Processor notifications (open, overdue: past 15 working days)")
def list_notifications(ctx: AuditorCtx, open: bool = False, overdue: bool = False,
                       limit: int = Query(200, ge=1, le=1000)) -> list[NotificationOut]:
    with ctx.read() as s:
        rows = _service(ctx).list_notifications(s, open_only=open, overdue_only=overdue, limit=limit)
        return [_notification_out(s, n) for n in rows]


@router.get("/notifications/{notification_id}", response_model=NotificationOut, summary="One notification")
def get_notification(notification_id: NotificationId, ctx: AuditorCtx) -> NotificationOut:
    with ctx.read() as s:
        return _notification_out(s, _service(ctx).get_notification(s, notification_id))


@router.post("/notifications/{notification_id}/confirm", response_model=NotificationOut,
             summary="A counterparty confirms it stopped processing (its qcp_ token, or an admin/DPO)")
def confirm(notification_id: NotificationId, request: Request) -> NotificationOut:
    platform = get_platform(request)
    service = consent_for(platform)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip().startswith("qcp_"):
        with platform.db.reader() as s:
            counterparty = service.counterparty_by_token(s, token.strip())
            org, counterparty_id = counterparty.organization_id, counterparty.id
        actor = f"counterparty:{counterparty_id}"
    else:
        principal = authenticate(request, platform)
        principal.require(Role.ADMIN, Role.DPO)
        org, counterparty_id, actor = principal.organization_id, None, principal.actor
    with platform.db.transaction(org) as s:
        service.confirm_stopped(s, notification_id, actor=actor, counterparty_id=counterparty_id)
    with platform.db.reader(org) as s:
        return _notification_out(s, service.get_notification(s, notification_id))


# --- the outbox and statistics -------------------------------------------------------------------------------------


@router.get("/outbox", response_model=list[MessageOut], summary="Webhook deliveries (no payloads, no secrets)")
def list_outbox(ctx: AuditorCtx, status_: Literal["pending", "delivered", "dead"] | None = Query(None, alias="status"),
                limit: int = Query(100, ge=1, le=1000)) -> list[MessageOut]:
    with ctx.read() as s:
        return outbox.list_messages(s, status=status_, limit=limit)


@router.post("/outbox/{message_id}/retry", response_model=MessageOut, summary="Give a dead-lettered message another round")
def retry_message(message_id: MessageId, ctx: StaffCtx) -> MessageOut:
    with ctx.write() as s:
        return outbox.retry_dead(s, message_id)


@router.get("/stats", response_model=StatsOut, summary="Consents by purpose and status, deliveries, deadlines")
def stats(ctx: AuditorCtx) -> StatsOut:
    service = _service(ctx)
    with ctx.read() as s:
        return StatsOut(by_purpose=service.counts_by_purpose(s), outbox=outbox.counts(s),
                        open_notifications=len(service.list_notifications(s, open_only=True, limit=1000)),
                        overdue_notifications=len(service.list_notifications(s, overdue_only=True, limit=1000)),
                        transfers_awaiting_notice=len(service.list_transfers(s, pending_only=True, limit=1000)))


__all__ = ["router"]


def start_dispatcher(platform: Any) -> Any:
    """The API server's webhook dispatcher thread (None when ``QORGAU_CONSENT_DISPATCHER=false``)."""
    from ...consent.dispatcher import start_in_server

    consent_for(platform)  # built now: the vault's re-identification hook learns this platform's mode
    return start_in_server(platform)
