"""The operator's consent page (``/consents``) and the enrollment-code form for citizens.

Thin over :mod:`qorgau.consent.dashboard` (queries) and :mod:`qorgau.consent.citizens` (codes). Who sees
what: administrators, data protection officers and the regulator read the dashboard — consents by purpose,
withdrawals today, processors' confirmations with time-to-stop and the statutory 15-working-day deadline
(L-PD-WITHDRAW), transfers awaiting the subject's notice (10 working days, L-PD-TRANSFER); other roles see
what the module does and the law behind it. Administrators and DPOs issue one-time enrollment codes for
citizens whose ID document they checked (``/consents/enroll``); the code is shown once, the IIN never
again (the page is ``no-store``, the form field is not autocompleted).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from ..api.deps import Context
from ..consent import dashboard
from ..consent.citizens import DEFAULT_CODE_VALIDITY, citizens_for
from ..consent.service import consent_for
from ..rules import deadlines
from ..core.auth import Principal, Role
from ..core.calendar import ALMATY
from ..core.errors import InvalidInput
from .modules import BY_SLUG, N_
from .portal import LABELS
from .routes import choose_language, csrf_valid, error_page, render, require_principal

router = APIRouter(include_in_schema=False)

READERS = (Role.ADMIN, Role.DPO, Role.REGULATOR)
ISSUERS = (Role.ADMIN, Role.DPO)
VALIDITY_CHOICES = (24, 72, 168)  # hours
MAX_IIN_FIELD = 64

DELIVERY_LABELS = {
    "pending": N_("Delivering (retrying)"), "delivered": N_("Delivered"), "dead": N_("Delivery failed"),
    "none": N_("No webhook: tell them by other means"),
}
ENROLL_ERRORS = {
    "iin": N_("Enter a valid 12-digit IIN."),
    "valid_hours": N_("Choose how long the code stays valid."),
}
NO_ACCESS = N_("The consent dashboard is shown to administrators, data protection officers and the regulator.")


def _platform(request: Request) -> Any:
    return request.app.state.platform


def _labels() -> dict[str, Any]:
    return {**LABELS, "delivery": DELIVERY_LABELS}


@router.get("/consents")
def consents_page(request: Request) -> Response:
    principal = require_principal(request)
    values: dict[str, Any] = {"can_see": principal.has_any(*READERS), "can_issue": principal.has_any(*ISSUERS)}
    platform = _platform(request)
    service, now = consent_for(platform), datetime.now(timezone.utc)
    if values["can_see"]:
        with Context(platform, principal).read() as session:
            values["overview"] = dashboard.operator_overview(service, session,
                                                             language=choose_language(request, principal))
    return render(request, "consents.html", principal=principal, active="consents", module=BY_SLUG["consents"],
                  labels=_labels(), no_access=NO_ACCESS,
                  confirmation_days=service.working_days(deadlines.WITHDRAWAL_STOP, now),
                  notice_days=service.working_days(deadlines.TRANSFER_NOTICE, now), local_zone=ALMATY, **values)


def _enroll_page(request: Request, principal: Principal, *, status: int = 200, **values: Any) -> Response:
    return render(request, "consents_enroll.html", principal=principal, status=status, active="consents",
                  validity_choices=VALIDITY_CHOICES, default_hours=int(DEFAULT_CODE_VALIDITY.total_seconds() // 3600),
                  **values)


@router.get("/consents/enroll")
def enroll_form(request: Request) -> Response:
    principal = require_principal(request)
    if not principal.has_any(*ISSUERS):
        return error_page(request, 403, principal=principal)
    return _enroll_page(request, principal, issued=None, error=None)


@router.post("/consents/enroll")
def enroll(request: Request, iin: Annotated[str, Form()] = "", valid_hours: Annotated[str, Form()] = "",
           csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = require_principal(request)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    if not principal.has_any(*ISSUERS):
        return error_page(request, 403, principal=principal)
    hours = int(valid_hours) if valid_hours.isdigit() and int(valid_hours) in VALIDITY_CHOICES else None
    if hours is None:
        return _enroll_page(request, principal, status=422, issued=None, error=("valid_hours", ENROLL_ERRORS["valid_hours"]))
    if len(iin) > MAX_IIN_FIELD:
        return _enroll_page(request, principal, status=422, issued=None, error=("iin", ENROLL_ERRORS["iin"]))
    platform = _platform(request)
    try:
        with Context(platform, principal).write() as session:
            issued = citizens_for(platform).issue_enrollment(
                session, iin, actor=principal.actor, organization_id=principal.organization_id,
                valid_for=timedelta(hours=hours))
    except InvalidInput:
        return _enroll_page(request, principal, status=422, issued=None, error=("iin", ENROLL_ERRORS["iin"]))
    return _enroll_page(request, principal, issued=issued, error=None)


# The citizen portal (/me) travels with the consent pages: one router for the whole module.
from .portal import router as _portal_router  # noqa: E402

router.include_router(_portal_router)
