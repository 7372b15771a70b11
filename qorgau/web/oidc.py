"""Citizen sign-in through the deployment's OpenID Connect provider (``/me/verify/oidc``).

Thin over :class:`qorgau.consent.oidc.OidcIdentityProvider`: ``GET /me/verify/oidc`` starts a login (a
redirect to the IdP; the pending login travels sealed in the ``qorgau_oidc`` cookie, bound to this web
session) and ``GET /me/verify/oidc/callback`` finishes it: the IIN the IdP vouches for is linked to the
signed-in citizen account, or the verify page says why not (state mismatch, expired, the IdP's error, an
invalid token, no or a bad IIN, the IIN already linked elsewhere) — a reason, never a token or an
identifier. Both routes are 404 when no ``oidc_issuer`` is configured.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..consent.citizens import citizens_for
from ..consent.oidc import METHOD, PENDING_SECONDS, OidcIdentityProvider, OidcRefused, session_binding
from ..core.auth import Principal
from ..core.errors import Conflict
from .modules import N_
from .portal import VERIFY_ERRORS, _citizen, _guard, _page, _platform
from .routes import choose_language, error_page, make_gettext, redirect
from .security import SESSION_COOKIE

router = APIRouter(include_in_schema=False)

OIDC_COOKIE = "qorgau_oidc"
COOKIE_PATH = "/me/verify/oidc"  # the cookie goes to the start and callback routes only

OIDC_ERRORS = {
    "no_login": N_("No sign-in is in progress in this browser session. Start the sign-in again."),
    "state_mismatch": N_("The sign-in response does not belong to the sign-in started in this browser session, "
                         "so it was ignored. Start the sign-in again."),
    "state_used": N_("This sign-in response was already used. Start the sign-in again."),
    "expired": N_("The sign-in took longer than 10 minutes and expired. Start it again."),
    "idp_error": N_("The identity provider refused or cancelled the sign-in (%(detail)s). Nothing was linked."),
    "idp_unavailable": N_("The identity provider cannot be reached right now. Try again later or use an "
                          "enrollment code."),
    "token_invalid": N_("The identity provider's answer failed verification: %(detail)s. Nothing was linked; "
                        "if this keeps happening, tell the platform operator."),
    "iin_missing": N_("The identity provider did not send an IIN for your account, so it cannot be verified."),
    "iin_invalid": N_("The identity provider sent an IIN that is not valid, so your identity was not verified."),
    "misconfigured": N_("Sign-in through the identity provider is not set up correctly on this platform. Tell the "
                        "platform operator; meanwhile use an enrollment code."),
}
TOKEN_DETAILS = {
    "signature": N_("its signature does not verify"),
    "algorithm": N_("its signing algorithm is not allowed"),
    "unknown_key": N_("it is signed with a key the provider does not publish"),
    "issuer": N_("it was issued by another provider"),
    "audience": N_("it was issued for another application"),
    "nonce": N_("it does not belong to this sign-in"),
    "expired": N_("it has expired"),
    "not_yet_valid": N_("it is not valid yet"),
    "subject": N_("it does not name the account"),
    "malformed": N_("it is malformed"),
    "missing": N_("the provider sent no ID token"),
}
STATUS = {"idp_unavailable": 503, "misconfigured": 503, "state_mismatch": 400, "state_used": 400, "no_login": 400, "expired": 400}


def _provider(request: Request) -> OidcIdentityProvider | None:
    provider = citizens_for(_platform(request)).providers.get(METHOD)
    return provider if isinstance(provider, OidcIdentityProvider) else None


def _binding(request: Request, principal: Principal) -> bytes:
    return session_binding(request.cookies.get(SESSION_COOKIE, ""), principal.id)


def _refused_page(request: Request, principal: Principal, provider: OidcIdentityProvider, reason: str,
                  detail: str | None, status: int) -> Response:
    """The verify page with the reason of a refused sign-in (translated; never a token)."""
    platform = _platform(request)
    _ = make_gettext(choose_language(request, principal))
    if reason == "conflict":
        message = _(VERIFY_ERRORS["conflict"])
    elif reason == "token_invalid":
        message = _(OIDC_ERRORS[reason], detail=_(TOKEN_DETAILS.get(detail or "", TOKEN_DETAILS["malformed"])))
    elif reason == "idp_error":
        message = _(OIDC_ERRORS[reason], detail=detail or "error")
    else:
        message = _(OIDC_ERRORS.get(reason, OIDC_ERRORS["state_mismatch"]))
    with platform.db.reader() as session:
        identity = citizens_for(platform).identity(session, principal.id)
    response = _page(request, principal, "portal_verify.html", status=status, citizen_identity=identity,
                     needs_verification=identity is None, error=None, oidc_login=provider.display_name,
                     oidc_error=message, oidc_reason=reason,
                     here="/me/verify")  # not the callback URL: its code and state stay out of the page
    response.headers["Referrer-Policy"] = "no-referrer"
    _forget(response, platform)
    return response


def _forget(response: Response, platform: Any) -> None:
    response.delete_cookie(OIDC_COOKIE, path=COOKIE_PATH, secure=platform.settings.secure_cookies, httponly=True,
                           samesite="lax")


@router.get("/me/verify/oidc")
@_guard
def start_oidc_login(request: Request) -> Response:
    """Redirect the signed-in citizen to the IdP (code flow, PKCE S256, state, nonce)."""
    principal = _citizen(request, verified=False)
    provider = _provider(request)
    if provider is None:
        return error_page(request, 404, principal=principal)
    try:
        started = provider.start(principal.id, _binding(request, principal),
                                 redirect_uri=str(request.url_for("finish_oidc_login")))
    except OidcRefused as exc:
        return _refused_page(request, principal, provider, exc.reason, exc.detail, STATUS.get(exc.reason, 422))
    response = RedirectResponse(started.url, status_code=303)
    # SameSite=Lax: the IdP's redirect back is a top-level GET, which carries it (and the session cookie).
    response.set_cookie(OIDC_COOKIE, started.cookie, max_age=PENDING_SECONDS, path=COOKIE_PATH,
                        secure=_platform(request).settings.secure_cookies, httponly=True, samesite="lax")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/me/verify/oidc/callback", name="finish_oidc_login")
@_guard
def finish_oidc_login(request: Request) -> Response:
    """The IdP's redirect back: check, exchange, validate, link; or the verify page with the reason."""
    principal = _citizen(request, verified=False)
    provider = _provider(request)
    if provider is None:
        return error_page(request, 404, principal=principal)
    wanted = ("state", "code", "error", "iss")
    params = {name: request.query_params[name] for name in wanted if name in request.query_params}
    try:
        provider.complete(principal.id, _binding(request, principal), request.cookies.get(OIDC_COOKIE), params,
                          actor=principal.actor)
    except OidcRefused as exc:
        return _refused_page(request, principal, provider, exc.reason, exc.detail, STATUS.get(exc.reason, 422))
    except Conflict:
        return _refused_page(request, principal, provider, "conflict", None, 409)
    response = redirect("/me?notice=verified")
    _forget(response, _platform(request))
    return response
