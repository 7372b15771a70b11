"""The citizen's leak-register pages under ``/me/leaks`` (issue 8; L-PD-RIGHTS, L-PD-LEAK-REGISTER).

Thin over :mod:`qorgau.leaks.citizens`: my verified identifiers (IIN from the verified identity, phones by an SMS
code, e-mails by a link) with notification toggles, "check my data" (the incidents that contain *my* verified
identifiers — there is no field to type someone else's), and my notifications. The one-time code page
(``/me/leaks/phone/{selector}``) and the e-mail link's landing page (``/me/leaks/email/{selector}``: a button, so
mail scanners that open links confirm nothing) complete the flows.

Only signed-in citizens reach these pages (others: 403; anonymous: the login page). Unlike the consent pages, a
citizen without a verified IIN may use them: phones and e-mails are proved here. Pages show masks only; when the
messenger is the demo sink they say "nothing is sent". Every form carries the session's CSRF token.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from ..api.schemas import MAX_ID
from ..core.auth import Principal, Role
from ..core.errors import Conflict, InvalidInput, NotFound, QorgauError
from ..core.ratelimit import RateLimited
from ..leaks.citizens import MAX_ATTEMPTS, VerificationFailed, leak_citizens_for
from ..leaks.messenger import MessengerUnavailable
from .modules import N_
from .routes import choose_language, csrf_valid, error_page, redirect, render, require_principal

router = APIRouter(include_in_schema=False)

IdentifierId = Annotated[int, Path(ge=1, le=MAX_ID)]
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID)]
Selector = Annotated[str, Path(min_length=8, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_FIELD = 320

STATUS_LABELS = {
    "received": N_("Reported by the operator, not yet verified by the authorized body"),
    "verified": N_("Verified by the authorized body"),
    "disputed": N_("Disputed by the authorized body"),
}
KIND_LABELS = {"iin": N_("IIN (from your verified identity)"), "phone": N_("Phone number"),
               "email": N_("E-mail address")}
VIA_LABELS = {"identity_provider": N_("identity provider"), "sms_code": N_("code by SMS"),
              "email_link": N_("link by e-mail")}
CHANNEL_LABELS = {"sms": N_("by SMS"), "email": N_("by e-mail"), "portal": N_("on this page")}
NOTICES = {
    "phone_verified": N_("Your phone number is verified."),
    "email_verified": N_("Your e-mail address is verified."),
    "subscribed": N_("You will be notified when a new leak contains this identifier."),
    "unsubscribed": N_("Notifications for this identifier are off."),
    "removed": N_("The identifier was removed."),
    "seen": N_("Marked as read."),
}
ERRORS = {
    "phone": N_("This is not a phone number we can send a code to. Enter it as +7 701 234 56 78."),
    "email": N_("This is not a valid e-mail address."),
    "already": N_("This identifier is already verified for your account."),
    "limited": N_("Too many requests. Try again in %(minutes)s min."),
    "unavailable": N_("The message could not be sent. Try again later."),
    "code_format": N_("The code has 6 digits."),
    "wrong_code": N_("The code is wrong. Attempts left: %(left)s."),
    "burned": N_("Too many wrong codes: this code no longer works. Ask for a new one."),
    "expired": N_("This code or link has expired. Ask for a new one."),
    "used": N_("This code or link was already used."),
    "link": N_("This link is incomplete. Open it again from the e-mail."),
    "iin_remove": N_("The IIN comes from your verified identity. Turn its notifications off instead."),
}
LABELS = {"status": STATUS_LABELS, "kind": KIND_LABELS, "via": VIA_LABELS, "channel": CHANNEL_LABELS}


def _platform(request: Request) -> Any:
    return request.app.state.platform


class _NoAccess(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("no access")
        self.response = response


def _citizen(request: Request, csrf_token: str | None = None) -> Principal:
    """The signed-in citizen (verified IIN or not); for a POST also a valid CSRF token."""
    principal = require_principal(request)
    if principal.kind != "user" or not principal.has_any(Role.CITIZEN):
        raise _NoAccess(error_page(request, 403, principal=principal))
    if csrf_token is not None and not csrf_valid(request, principal, csrf_token):
        raise _NoAccess(error_page(request, 403, principal=principal))
    return principal


def _vocabulary(lang: str) -> dict[str, Any]:
    try:
        from ..leaks.transparency import labels_for  # natures, data classes, sectors in kk/ru/en (task B)

        return {k: dict(v) for k, v in labels_for(lang).items()}
    except ImportError:  # the transparency part is not installed: show the stored codes
        return {}


def _page(request: Request, principal: Principal, template: str, *, status: int = 200, **values: Any) -> Response:
    lang = choose_language(request, principal)
    service = leak_citizens_for(_platform(request))
    messenger = service.messenger
    return render(request, template, principal=principal, status=status, active="me", labels=LABELS,
                  vocabulary=_vocabulary(lang), sms_sink=messenger.sms_is_sink, email_sink=messenger.email_is_sink,
                  **values)


def _overview(request: Request, principal: Principal, *, status: int = 200, notice: str | None = None,
              error: str | None = None, error_values: dict[str, Any] | None = None, results: Any = None,
              typed: dict[str, str] | None = None, retry_after: int | None = None) -> Response:
    service = leak_citizens_for(_platform(request))
    response = _page(request, principal, "portal_leaks.html", status=status,
                     identifiers=service.identifiers(principal.id), notifications=service.notifications(principal.id),
                     notice=NOTICES.get(notice or ""), error=ERRORS.get(error or ""), error_values=error_values or {},
                     error_key=error, results=results, typed=typed or {},
                     lookups_left=service.lookups_left(principal.id))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _guarded(handler: Any) -> Any:
    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except _NoAccess as exc:
            return exc.response

    return wrapper


def _limited(request: Request, principal: Principal, exc: RateLimited, **values: Any) -> Response:
    minutes = max(1, -(-exc.retry_after_seconds // 60))
    return _overview(request, principal, status=429, error="limited", error_values={"minutes": minutes},
                     retry_after=exc.retry_after_seconds, **values)


# --- the overview -----------------------------------------------------------------------------------------


@router.get("/me/leaks")
@_guarded
def my_leaks(request: Request, notice: Annotated[str, Query(max_length=20)] = "") -> Response:
    return _overview(request, _citizen(request), notice=notice)


@router.post("/me/leaks/check")
@_guarded
def check_my_data(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, csrf_token)
    service = leak_citizens_for(_platform(request))
    try:
        results = service.lookup(principal.id, lang=choose_language(request, principal))
    except RateLimited as exc:
        return _limited(request, principal, exc)
    return _overview(request, principal, results=results)


@router.post("/me/leaks/identifiers/{identifier_id}/subscription")
@_guarded
def set_subscription(request: Request, identifier_id: IdentifierId, csrf_token: Annotated[str, Form()] = "",
                     on: Annotated[str, Form(max_length=3)] = "") -> Response:
    principal = _citizen(request, csrf_token)
    try:
        leak_citizens_for(_platform(request)).subscribe(principal.id, identifier_id, on == "1", actor=principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    return redirect("/me/leaks?notice=" + ("subscribed" if on == "1" else "unsubscribed"))


@router.post("/me/leaks/identifiers/{identifier_id}/remove")
@_guarded
def remove_identifier(request: Request, identifier_id: IdentifierId,
                      csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, csrf_token)
    try:
        leak_citizens_for(_platform(request)).remove(principal.id, identifier_id, actor=principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict:
        return _overview(request, principal, status=409, error="iin_remove")
    return redirect("/me/leaks?notice=removed")


@router.post("/me/leaks/notifications/{leak_notification_id}/seen")
@_guarded
def mark_seen(request: Request, leak_notification_id: NotificationId,
              csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, csrf_token)
    try:
        leak_citizens_for(_platform(request)).mark_seen(principal.id, leak_notification_id, actor=principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    return redirect("/me/leaks?notice=seen")


# --- phone: a one-time code by SMS ------------------------------------------------------------------------


@router.post("/me/leaks/phone")
@_guarded
def start_phone(request: Request, csrf_token: Annotated[str, Form()] = "",
                phone: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, csrf_token)
    service = leak_citizens_for(_platform(request))
    typed = {"phone": phone[:40]}
    try:
        if len(phone) > 40:
            raise InvalidInput("too long", field="phone")
        started = service.start_phone(principal.id, phone, lang=choose_language(request, principal),
                                      actor=principal.actor)
    except InvalidInput:
        return _overview(request, principal, status=422, error="phone", typed=typed)
    except Conflict:
        return _overview(request, principal, status=409, error="already", typed=typed)
    except RateLimited as exc:
        return _limited(request, principal, exc, typed=typed)
    except MessengerUnavailable:
        return _overview(request, principal, status=503, error="unavailable", typed=typed)
    return redirect(f"/me/leaks/phone/{started.selector}")


def _code_page(request: Request, principal: Principal, selector: str, *, status: int = 200,
               error: str | None = None, error_values: dict[str, Any] | None = None) -> Response:
    try:
        challenge = leak_citizens_for(_platform(request)).pending(principal.id, selector, "phone")
    except (NotFound, InvalidInput):
        return error_page(request, 404, principal=principal)
    return _page(request, principal, "portal_leaks_code.html", status=status, challenge=challenge,
                 selector=selector, error=ERRORS.get(error or ""), error_values=error_values or {})


@router.get("/me/leaks/phone/{selector}")
@_guarded
def code_form(request: Request, selector: Selector) -> Response:
    return _code_page(request, _citizen(request), selector)


@router.post("/me/leaks/phone/{selector}")
@_guarded
def confirm_phone(request: Request, selector: Selector, csrf_token: Annotated[str, Form()] = "",
                  code: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, csrf_token)
    service = leak_citizens_for(_platform(request))
    try:
        if len(code) > 20:
            raise InvalidInput("too long", field="code")
        service.confirm_phone(principal.id, selector, code, actor=principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except InvalidInput:
        return _code_page(request, principal, selector, status=422, error="code_format")
    except VerificationFailed as exc:
        values: dict[str, Any] = {}
        if exc.reason == "wrong_code":
            challenge = service.pending(principal.id, selector, "phone")
            values["left"] = max(0, MAX_ATTEMPTS - challenge.attempts)
        return _code_page(request, principal, selector, status=exc.status, error=exc.reason, error_values=values)
    except RateLimited as exc:
        response = _code_page(request, principal, selector, status=429, error="limited",
                              error_values={"minutes": max(1, -(-exc.retry_after_seconds // 60))})
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    return redirect("/me/leaks?notice=phone_verified")


# --- e-mail: a link ----------------------------------------------------------------------------------------


@router.post("/me/leaks/email")
@_guarded
def start_email(request: Request, csrf_token: Annotated[str, Form()] = "",
                email: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, csrf_token)
    service = leak_citizens_for(_platform(request))
    typed = {"email": email[:MAX_FIELD]}
    try:
        if len(email) > MAX_FIELD:
            raise InvalidInput("too long", field="email")
        started = service.start_email(principal.id, email, lang=choose_language(request, principal),
                                      base_url=str(request.base_url), actor=principal.actor)
    except InvalidInput:
        return _overview(request, principal, status=422, error="email", typed=typed)
    except Conflict:
        return _overview(request, principal, status=409, error="already", typed=typed)
    except RateLimited as exc:
        return _limited(request, principal, exc, typed=typed)
    except MessengerUnavailable:
        return _overview(request, principal, status=503, error="unavailable", typed=typed)
    return _page(request, principal, "portal_leaks_email.html", sent=started, selector=None, secret="",
                 error=None, error_values={})


@router.get("/me/leaks/email/{selector}")
@_guarded
def email_landing(request: Request, selector: Selector,
                  secret: Annotated[str, Query(max_length=100)] = "") -> Response:
    principal = _citizen(request)
    return _page(request, principal, "portal_leaks_email.html", sent=None, selector=selector, secret=secret,
                 error=None, error_values={})


@router.post("/me/leaks/email/{selector}")
@_guarded
def confirm_email(request: Request, selector: Selector, csrf_token: Annotated[str, Form()] = "",
                  secret: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request, csrf_token)
    service = leak_citizens_for(_platform(request))
    error, status, values = None, 200, {}
    try:
        if len(secret) > 100:
            raise InvalidInput("too long", field="secret")
        service.confirm_email(principal.id, selector, secret, actor=principal.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except InvalidInput:
        error, status = "link", 422
    except VerificationFailed as exc:
        error, status = exc.reason, exc.status
        if exc.reason == "wrong_code":
            error = "link"
    except RateLimited as exc:
        error, status = "limited", 429
        values = {"minutes": max(1, -(-exc.retry_after_seconds // 60))}
    except QorgauError:
        return error_page(request, 400, principal=principal)
    if error is not None:
        return _page(request, principal, "portal_leaks_email.html", status=status, sent=None, selector=selector,
                     secret="", error=ERRORS.get(error), error_values=values)
    return redirect("/me/leaks?notice=email_verified")
