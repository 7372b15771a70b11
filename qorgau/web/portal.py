"""The citizen portal under ``/me``: my consents at every operator, withdrawal, history, receipts, and
"who has my data".

Thin over :mod:`qorgau.consent.citizens` (the verified identity) and :mod:`qorgau.consent.dashboard` (the
queries, the ownership check and the withdrawal, which calls
:meth:`~qorgau.consent.service.ConsentService.withdraw`). Only signed-in users with the ``citizen`` role
and a verified identity see it; a citizen without one is offered the enrollment-code form
(``/me/verify``); everyone else gets 403. A consent that is not the citizen's is "not found", exactly like
one that does not exist.

Withdrawal is two steps (L-PD-WITHDRAW): a confirmation page, then a POST with the session's CSRF token and
an idempotency key (a double submit withdraws once); the answer redirects to the signed withdrawal receipt.
Pages show masked identifiers only; the IIN never appears in a page, URL, log or audit entry.
"""

from __future__ import annotations

import functools
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from ..api.schemas import MAX_ID
from ..consent import dashboard, receipts
from ..consent.citizens import IdentityNotVerified, citizens_for
from ..consent.oidc import offered_login
from ..consent.service import consent_for
from ..core.auth import Principal, Role
from ..core.errors import Conflict, InvalidInput, NotFound
from .modules import N_
from .routes import choose_language, csrf_valid, error_page, redirect, render, require_principal

router = APIRouter(include_in_schema=False)

OrgId = Annotated[int, Path(ge=1, le=MAX_ID)]
ConsentId = Annotated[int, Path(ge=1, le=MAX_ID)]
MAX_CODE_FIELD = 64

STATUS_LABELS = {
    "active": N_("Active"), "withdrawn": N_("Withdrawn"), "expired": N_("Expired"), "superseded": N_("Replaced"),
}
CHANNEL_LABELS = {
    "state_service": N_("State service (eGov)"), "non_state_service": N_("Non-state service"),
    "written": N_("In writing"), "other_verifiable": N_("Another verifiable method"),
}
EVENT_LABELS = {
    "given": N_("Consent given"), "withdrawn": N_("Consent withdrawn"),
    "withdrawal_refused": N_("Withdrawn; processing continues under a legal basis"),
    "expired": N_("Term ended"), "superseded": N_("Replaced by a newer consent"),
    "transfer": N_("Data transferred to a counterparty"), "subject_notified": N_("You were told of a transfer"),
}
KIND_LABELS = {"processor": N_("Processor"), "third_party": N_("Third party")}
BASIS_LABELS = {
    "contract": N_("Contract"), "law": N_("Law"), "court_order": N_("Court decision"),
    "vital_interest": N_("Vital interest"), "public_task": N_("Public task"),
}
VERIFY_ERRORS = {
    "format": N_("An enrollment code has 24 letters and digits, in groups of four. Check it and try again."),
    "unknown_code": N_("This enrollment code does not exist. Check it and try again."),
    "wrong_code": N_("This enrollment code is wrong. Check it and try again."),
    "expired": N_("This enrollment code has expired. Ask for a new one."),
    "used": N_("This enrollment code was already used."),
    "revoked": N_("This enrollment code was revoked. Ask for a new one."),
    "locked": N_("This enrollment code was blocked after too many wrong attempts. Ask for a new one."),
    "not_for_you": N_("This enrollment code was issued for another account."),
    "throttled": N_("Too many failed attempts. Try again tomorrow."),
    "conflict": N_("This IIN is already linked to another account, or this account to another IIN. "
                   "Contact the platform operator."),
}
NOTICES = {
    "not_active": N_("This consent is no longer active: there is nothing to withdraw."),
    "verified": N_("Your identity is verified. Here are your consents at every operator."),
}
LABELS = {"status": STATUS_LABELS, "channel": CHANNEL_LABELS, "event": EVENT_LABELS, "kind": KIND_LABELS,
          "basis": BASIS_LABELS}


def _platform(request: Request) -> Any:
    return request.app.state.platform


class _NoAccess(Exception):
    """The caller may not see the portal; ``response`` says why."""

    def __init__(self, response: Response) -> None:
        super().__init__("no access")
        self.response = response


def _citizen(request: Request, *, verified: bool = True) -> Principal:
    """The signed-in citizen (verified, unless ``verified=False``); raises :class:`_NoAccess` otherwise."""
    principal = require_principal(request)
    if principal.kind != "user" or not principal.has_any(Role.CITIZEN):
        raise _NoAccess(error_page(request, 403, principal=principal))
    if verified:
        platform = _platform(request)
        with platform.db.reader() as session:
            ok = citizens_for(platform).is_verified(session, principal.id)
        if not ok:
            raise _NoAccess(render(request, "portal_verify.html", principal=principal, status=403, active="me",
                                   citizen_identity=None, needs_verification=True, error=None,
                                   oidc_login=offered_login(platform)))
    return principal


def _guard(handler: Any) -> Any:
    """Turn :class:`_NoAccess` into its response (a decorator keeps each route short)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except _NoAccess as exc:
            return exc.response

    return wrapper


def _page(request: Request, principal: Principal, template: str, *, status: int = 200, **values: Any) -> Response:
    return render(request, template, principal=principal, status=status, active="me", labels=LABELS, **values)


# --- pages -----------------------------------------------------------------------------------------


@router.get("/me")
@_guard
def my_consents(request: Request, notice: Annotated[str, Query(max_length=20)] = "") -> Response:
    principal = _citizen(request)
    platform = _platform(request)
    lang = choose_language(request, principal)
    with platform.db.reader() as session:
        identity = citizens_for(platform).identity(session, principal.id)
    operators = dashboard.citizen_overview(platform, principal.id, language=lang)
    from .oversight import citizen_decisions, portal_labels  # here: web/oversight.py imports this module

    return _page(request, principal, "portal.html", operators=operators, citizen_identity=identity,
                 notice=NOTICES.get(notice), decisions=citizen_decisions(platform, principal.id, language=lang),
                 decision_labels=portal_labels())


@router.get("/me/data")
@_guard
def who_has_my_data(request: Request) -> Response:
    principal = _citizen(request)
    platform = _platform(request)
    operators = dashboard.citizen_overview(platform, principal.id, language=choose_language(request, principal))
    return _page(request, principal, "portal_data.html", operators=operators)


@router.get("/me/consents/{organization_id}/{consent_id}")
@_guard
def consent_page(request: Request, organization_id: OrgId, consent_id: ConsentId) -> Response:
    principal = _citizen(request)
    try:
        operator, consent = dashboard.citizen_consent(_platform(request), principal.id, organization_id, consent_id,
                                                      language=choose_language(request, principal))
    except NotFound:
        return error_page(request, 404, principal=principal)
    return _page(request, principal, "portal_consent.html", operator=operator, consent=consent)


@router.get("/me/consents/{organization_id}/{consent_id}/withdraw")
@_guard
def confirm_withdrawal(request: Request, organization_id: OrgId, consent_id: ConsentId) -> Response:
    principal = _citizen(request)
    try:
        operator, consent = dashboard.citizen_consent(_platform(request), principal.id, organization_id, consent_id,
                                                      language=choose_language(request, principal))
    except NotFound:
        return error_page(request, 404, principal=principal)
    if not consent.can_withdraw:
        if consent.withdrawal_receipt_id is not None:  # withdrawn already: its receipt
            return redirect(f"/me/consents/{organization_id}/{consent_id}/withdrawal")
        return _page(request, principal, "portal_consent.html", status=409, operator=operator, consent=consent,
                     notice=NOTICES["not_active"])
    return _page(request, principal, "portal_withdraw.html", operator=operator, consent=consent,
                 idempotency_key="portal-" + secrets.token_urlsafe(18))


@router.post("/me/consents/{organization_id}/{consent_id}/withdraw")
@_guard
def withdraw(request: Request, organization_id: OrgId, consent_id: ConsentId,
             csrf_token: Annotated[str, Form()] = "", idempotency_key: Annotated[str, Form(max_length=100)] = "",
             confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    principal = _citizen(request)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    platform = _platform(request)
    if confirm != "yes":
        return redirect(f"/me/consents/{organization_id}/{consent_id}/withdraw")
    try:
        dashboard.withdraw_for_citizen(platform, principal.id, organization_id, consent_id,
                                       idempotency_key=idempotency_key or None)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict:
        try:
            operator, consent = dashboard.citizen_consent(platform, principal.id, organization_id, consent_id,
                                                          language=choose_language(request, principal))
        except NotFound:
            return error_page(request, 404, principal=principal)
        return _page(request, principal, "portal_consent.html", status=409, operator=operator, consent=consent,
                     notice=NOTICES["not_active"])
    except InvalidInput:
        return error_page(request, 400, principal=principal)  # a tampered idempotency key
    return redirect(f"/me/consents/{organization_id}/{consent_id}/withdrawal?done=1")


def _receipt_view(request: Request, principal: Principal, organization_id: int, consent_id: int, kind: str,
                  *, done: bool = False) -> Response:
    platform = _platform(request)
    try:
        operator, consent = dashboard.citizen_consent(platform, principal.id, organization_id, consent_id,
                                                      language=choose_language(request, principal))
        document = dashboard.citizen_receipt(platform, principal.id, organization_id, consent_id, kind)
    except NotFound:
        return error_page(request, 404, principal=principal)
    with platform.db.reader() as session:
        public_key = consent_for(platform).receipt_public_key(session)
    verification = receipts.verify_receipt(document, public_key=public_key)
    return _page(request, principal, "portal_receipt.html", operator=operator, consent=consent, kind=kind,
                 receipt=document["receipt"], signature=document["signature"], verification=verification,
                 public_key=public_key, done=done)


@router.get("/me/consents/{organization_id}/{consent_id}/withdrawal")
@_guard
def withdrawal_receipt(request: Request, organization_id: OrgId, consent_id: ConsentId,
                       done: Annotated[str, Query(max_length=2)] = "") -> Response:
    return _receipt_view(request, _citizen(request), organization_id, consent_id, "withdrawal", done=done == "1")


@router.get("/me/consents/{organization_id}/{consent_id}/receipt")
@_guard
def consent_receipt(request: Request, organization_id: OrgId, consent_id: ConsentId) -> Response:
    return _receipt_view(request, _citizen(request), organization_id, consent_id, "consent")


def _download(request: Request, organization_id: int, consent_id: int, kind: str) -> Response:
    principal = _citizen(request)
    try:
        document = dashboard.citizen_receipt(_platform(request), principal.id, organization_id, consent_id, kind)
    except NotFound:
        return error_page(request, 404, principal=principal)
    name = f"{kind}-receipt-{consent_id}.json"
    return Response(receipts.text_of(document).encode(), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/me/consents/{organization_id}/{consent_id}/receipt.json")
@_guard
def download_consent_receipt(request: Request, organization_id: OrgId, consent_id: ConsentId) -> Response:
    return _download(request, organization_id, consent_id, "consent")


@router.get("/me/consents/{organization_id}/{consent_id}/withdrawal.json")
@_guard
def download_withdrawal_receipt(request: Request, organization_id: OrgId, consent_id: ConsentId) -> Response:
    return _download(request, organization_id, consent_id, "withdrawal")


# --- identity verification (the embedded provider: a one-time enrollment code) -----------------------


@router.get("/me/verify")
@_guard
def verify_form(request: Request) -> Response:
    principal = _citizen(request, verified=False)
    platform = _platform(request)
    with platform.db.reader() as session:
        identity = citizens_for(platform).identity(session, principal.id)
    return _page(request, principal, "portal_verify.html", citizen_identity=identity,
                 needs_verification=identity is None, error=None, oidc_login=offered_login(platform))


@router.post("/me/verify")
@_guard
def verify(request: Request, code: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, verified=False)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    platform = _platform(request)
    error = None
    status = 422
    try:
        if len(code) > MAX_CODE_FIELD:
            raise InvalidInput("too long", field="code")
        citizens_for(platform).verify(principal.id, code, actor=principal.actor)
    except IdentityNotVerified as exc:
        error = VERIFY_ERRORS.get(exc.reason, VERIFY_ERRORS["wrong_code"])
        status = 429 if exc.reason == "throttled" else 422
    except InvalidInput:
        error = VERIFY_ERRORS["format"]
    except Conflict:
        error, status = VERIFY_ERRORS["conflict"], 409
    if error is not None:
        with platform.db.reader() as session:
            identity = citizens_for(platform).identity(session, principal.id)
        return _page(request, principal, "portal_verify.html", status=status, citizen_identity=identity,
                     needs_verification=identity is None, error=error, oidc_login=offered_login(platform))
    return redirect("/me?notice=verified")
