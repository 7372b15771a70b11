"""HTML pages: login, password change, dashboard, one page per module, the audit log with proofs.

Thin over the services: sessions and passwords go through :mod:`qorgau.core.auth`, the log through
:mod:`qorgau.core.audit`, and every tenant read through :class:`qorgau.api.deps.Context`, so an entry
id of another organization is simply "not found".

Language of a page: the user's profile language, then the ``qorgau_lang`` cookie, then
``Accept-Language``, then ``settings.default_language``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..api.deps import Context, authenticate
from ..core import audit, auth, i18n
from ..core.auth import Principal, Role
from ..core.errors import AuthenticationRequired, InvalidInput, NotFound, QorgauError
from ..core.platform import Platform
from ..core.throttle import LoginThrottled, login_throttle_for
from . import security
from .modules import BY_SLUG, MODULES, ROLE_LABELS, Module, N_
from .security import CSRF_COOKIE, FLASH_COOKIE, LANG_COOKIE, SESSION_COOKIE

log = logging.getLogger("qorgau.web")

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

AUDIT_ROLES = (Role.ADMIN, Role.DPO, Role.REGULATOR)
RECENT_ENTRIES = 25
MAX_USERNAME = 64
MAX_PASSWORD = 1024
YEAR = 365 * 24 * 3600

THROTTLED_MESSAGE = N_("Too many failed login attempts. Try again in %(minutes)s min (after %(time)s UTC).")

# Flash messages are keys into this table, never free text: a cookie value is never rendered.
FLASH_MESSAGES = {
    "password_changed": N_("Your password has been changed."),
    "logged_out": N_("You have been logged out."),
}

# No inline script or style anywhere, so the policy can be strict.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(version=__version__, modules=MODULES, languages=i18n.LANGUAGES,
                         language_names=i18n.language_names, role_labels=ROLE_LABELS,
                         min_password_length=auth.MIN_PASSWORD_LENGTH)


def format_utc(value: str | datetime) -> str:
    """``2026-01-18T10:00:00.123456+00:00`` → ``2026-01-18 10:00:00 UTC`` (the exact value stays in markup)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.filters["utc"] = format_utc
router = APIRouter(include_in_schema=False)


class Redirect(Exception):
    """Raised by a page that cannot render for this caller (not logged in, must change password)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@dataclass(frozen=True)
class Identity:
    """What the header shows about the signed-in user. Prints without the person's name."""

    organization_name: str
    organization_is_demo: bool
    display_name: str = field(repr=False)


# --- request helpers -----------------------------------------------------------------------------


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def optional_principal(request: Request) -> Principal | None:
    try:
        return authenticate(request, _platform(request), check_csrf=False)
    except AuthenticationRequired:
        return None


def require_principal(request: Request, *, allow_password_change: bool = False) -> Principal:
    """The signed-in caller, or a redirect to the login page (or to the forced password change)."""
    principal = optional_principal(request)
    if principal is None:
        raise Redirect(security.login_url(security.current_path(request)))
    if principal.must_change_password and not allow_password_change:
        raise Redirect(security.with_next("/account/password", security.current_path(request)))
    return principal


def client_address(request: Request) -> str | None:
    """The caller's address as the server sees it (behind a proxy: what uvicorn's proxy headers say);
    only ever used keyed-hashed by the login throttle."""
    return request.client.host if request.client else None


def choose_language(request: Request, principal: Principal | None) -> str:
    """Profile language → ``qorgau_lang`` cookie → ``Accept-Language`` → the configured default."""
    if principal is not None and principal.language in i18n.LANGUAGES:
        return principal.language  # type: ignore[return-value]
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in i18n.LANGUAGES:
        return cookie  # type: ignore[return-value]
    default = _platform(request).settings.default_language
    return i18n.negotiate(request.headers.get("accept-language"), default)


def make_gettext(lang: str) -> Callable[..., str]:
    translations = i18n.translations(lang)

    def _(msgid: str, **values: Any) -> str:
        text = translations.gettext(msgid)
        return text % values if values else text

    return _


def _identity(platform: Platform, principal: Principal) -> Identity:
    with platform.db.reader(principal.organization_id) as session:
        org = auth.get_organization(session, principal.organization_id)
        name = ""
        if principal.kind == "user":
            name = auth.get_user(session, principal.id).display_name
        return Identity(org.name, org.is_demo, name)


def _csrf_for_page(request: Request, principal: Principal | None) -> tuple[str, str | None]:
    """The token forms on this page carry, and a new pre-session token to set as a cookie (if any)."""
    if principal is not None and principal.csrf_token:
        return principal.csrf_token, None
    existing = request.cookies.get(CSRF_COOKIE)
    if security.looks_like_token(existing):
        return existing, None  # type: ignore[return-value]
    token = security.new_token()
    return token, token


def csrf_valid(request: Request, principal: Principal | None, form_value: str | None) -> bool:
    """Double-submit before login (cookie = field), the session's token after."""
    expected = principal.csrf_token if principal is not None else request.cookies.get(CSRF_COOKIE)
    return security.tokens_match(security.sent_csrf_token(request, form_value), expected)


STAFF_ROLES = (Role.ADMIN, Role.DPO, Role.REVIEWER, Role.REGULATOR)


def nav_modules(principal: Principal | None) -> tuple[Module, ...]:
    """The operator modules offered to this caller: none to a citizen, whose place is ``/me``."""
    return MODULES if principal is not None and principal.has_any(*STAFF_ROLES) else ()


def render(request: Request, template: str, *, principal: Principal | None, status: int = 200,
           active: str | None = None, lang: str | None = None, **values: Any) -> HTMLResponse:
    platform = _platform(request)
    lang = lang or choose_language(request, principal)
    csrf_token, new_csrf_cookie = _csrf_for_page(request, principal)
    flash_key = request.cookies.get(FLASH_COOKIE)
    context = {
        "lang": lang,
        "_": make_gettext(lang),
        "principal": principal,
        "identity": _identity(platform, principal) if principal is not None else None,
        "csrf_token": csrf_token,
        "status_code": status,
        "active": active,
        "here": security.current_path(request),
        "flash": FLASH_MESSAGES.get(flash_key or ""),
        "modules": nav_modules(principal),
        **values,
    }
    html = templates.get_template(template).render(context)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Cookie, Accept-Language"
    secure = platform.settings.secure_cookies
    if new_csrf_cookie:
        security.set_cookie(response, CSRF_COOKIE, new_csrf_cookie, secure=secure, max_age=None,
                            same_site="strict")
    if flash_key:
        security.delete_cookie(response, FLASH_COOKIE, secure=secure)
    return response


def redirect(url: str, *, flash: str | None = None, secure: bool = False) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        security.set_cookie(response, FLASH_COOKIE, flash, secure=secure, max_age=60)
    return response


# --- login, logout, password, language -----------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    principal = optional_principal(request)
    if principal is not None:
        return redirect(security.safe_next(next))
    return render(request, "login.html", principal=None, next=security.safe_next(next))


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    platform = _platform(request)
    target = security.safe_next(next)

    def failed(status: int, message: str, **values: Any) -> HTMLResponse:
        return render(request, "login.html", principal=None, status=status, next=target, error=message,
                      error_values=values, username=username[:MAX_USERNAME])

    if not csrf_valid(request, None, csrf_token):
        return failed(403, N_("The form has expired. Please try again."))
    if not username.strip() or not password:
        return failed(400, N_("Enter your username and password."))
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return failed(401, N_("Wrong username or password."))
    token = None
    must_change = False
    locked: LoginThrottled | None = None
    throttle = login_throttle_for(platform)
    with platform.db.transaction() as session:
        try:
            user = throttle.authenticate(session, username, password, address=client_address(request))
        except LoginThrottled as exc:
            locked = exc  # commit: the counters (and a lock's audit entry) are kept
        except AuthenticationRequired:
            pass  # commit: the failed attempt's audit entry and counters are kept
        else:
            old = request.cookies.get(SESSION_COOKIE)
            if old:
                auth.close_session(session, old)  # a login never reuses an earlier session
            token = auth.open_session(session, user, platform.settings.session_hours)
            must_change = user.must_change_password
    if locked is not None:
        # Names of no account are locked the same way: this says nothing about whether one exists.
        response = failed(429, THROTTLED_MESSAGE, minutes=locked.retry_after_minutes,
                          time=locked.until.strftime("%H:%M"))
        response.headers["Retry-After"] = str(locked.retry_after_seconds)
        return response
    if token is None:
        # Same message whether or not the user exists (no user enumeration).
        return failed(401, N_("Wrong username or password."))
    if must_change:
        target = security.with_next("/account/password", target)
    response = redirect(target)
    security.set_cookie(response, SESSION_COOKIE, token, secure=platform.settings.secure_cookies,
                        max_age=platform.settings.session_hours * 3600)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    platform = _platform(request)
    principal = optional_principal(request)
    if principal is None:
        return redirect("/login")
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with platform.db.transaction() as session:
            auth.close_session(session, token)
    response = redirect("/login", flash="logged_out", secure=platform.settings.secure_cookies)
    security.delete_cookie(response, SESSION_COOKIE, secure=platform.settings.secure_cookies)
    return response


@router.post("/language")
def switch_language(
    request: Request,
    lang: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    platform = _platform(request)
    principal = optional_principal(request)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    if lang not in i18n.LANGUAGES:
        return error_page(request, 400, principal=principal)
    if principal is not None and principal.kind == "user":
        with Context(platform, principal).write() as session:
            auth.set_language(session, principal.id, lang)
    response = redirect(security.safe_next(next, allow_login=True))
    security.set_cookie(response, LANG_COOKIE, lang, secure=platform.settings.secure_cookies, max_age=YEAR)
    return response


@router.get("/account/password")
def password_form(request: Request, next: str = "/") -> Response:
    principal = require_principal(request, allow_password_change=True)
    if principal.kind != "user":
        return error_page(request, 403, principal=principal)
    return render(request, "password.html", principal=principal, next=security.safe_next(next), errors={})


@router.post("/account/password")
def change_password(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    confirm_password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    platform = _platform(request)
    principal = require_principal(request, allow_password_change=True)
    if principal.kind != "user" or not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    target = security.safe_next(next)
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if not current_password:
        errors["current_password"] = (N_("Enter your current password."), {})
    if len(new_password) < auth.MIN_PASSWORD_LENGTH:
        errors["new_password"] = (N_("The new password must be at least %(n)s characters long."),
                                  {"n": auth.MIN_PASSWORD_LENGTH})
    elif len(new_password) > MAX_PASSWORD:
        errors["new_password"] = (N_("The new password is too long."), {})
    elif new_password == current_password:
        errors["new_password"] = (N_("The new password must differ from the current one."), {})
    if new_password != confirm_password:
        errors["confirm_password"] = (N_("The two new passwords do not match."), {})
    status = 400
    if not errors:
        throttle = login_throttle_for(platform)
        with Context(platform, principal).write() as session:
            try:  # inside the transaction: a wrong current password is counted (committed) by the throttle
                throttle.change_password(session, principal.id, current_password, new_password,
                                         address=client_address(request))
            except LoginThrottled as exc:
                status = 429
                errors["current_password"] = (THROTTLED_MESSAGE, {"minutes": exc.retry_after_minutes,
                                                                  "time": exc.until.strftime("%H:%M")})
            except InvalidInput as exc:
                if exc.field == "old_password":
                    errors["current_password"] = (N_("The current password is wrong."), {})
                else:
                    errors["new_password"] = (N_("The new password was not accepted."), {})
    if errors:
        return render(request, "password.html", principal=principal, status=status, next=target, errors=errors)
    return redirect(target, flash="password_changed", secure=platform.settings.secure_cookies)


# --- pages ---------------------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request) -> Response:
    principal = require_principal(request)
    if not principal.has_any(*STAFF_ROLES) and principal.has_any(Role.CITIZEN):
        return redirect("/me")  # a citizen's overview is their own data
    return render(request, "dashboard.html", principal=principal, active="dashboard",
                  roles=sorted(principal.roles))


def _module_page(module: Module) -> Callable[[Request], Response]:
    def page(request: Request) -> Response:
        principal = require_principal(request)
        return render(request, "module.html", principal=principal, active=module.slug, module=module)

    page.__name__ = f"module_{module.slug.replace('-', '_')}"
    return page


for _module in MODULES:
    if not _module.enabled:
        router.add_api_route(_module.path, _module_page(_module), methods=["GET"], response_class=HTMLResponse)


@dataclass
class Verification:
    """The outcome of checking one entry's inclusion proof against a signed tree head."""

    entry: dict[str, Any]
    leaf_hex: str
    leaf_text: str  # canonical JSON of ids, action and digest: no personal data by construction
    leaf_hash: str
    path: list[str]
    computed_root: str
    head: audit.TreeHead
    included: bool
    signature_valid: bool

    @property
    def ok(self) -> bool:
        return self.included and self.signature_valid


def _entry_row(entry: audit.AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "created_at": format_utc(entry.created_at),
            "actor": entry.actor, "action": entry.action,
            "object": f"{entry.object_type}:{entry.object_id}"}


def _verify_entry(platform: Platform, principal: Principal, entry_id: int, public: bytes) -> Verification:
    ctx = Context(platform, principal)
    with ctx.read() as session:
        entry = audit.get_entry(session, entry_id)  # NotFound for another organization's entry
        row = _entry_row(entry)
        leaf = audit.entry_leaf_bytes(entry)
    head = audit.signed_head_covering(platform.db, platform.keyring, entry_id)
    with ctx.read() as session:
        proof = audit.inclusion_proof(session, entry_id, head.tree_size)
    return Verification(
        entry=row, leaf_hex=leaf.hex(), leaf_text=leaf.decode("utf-8", "replace"),
        leaf_hash=proof.leaf_hash.hex(), path=[p.hex() for p in proof.path], computed_root=proof.root_hash.hex(),
        head=head,
        included=proof.verify() and proof.root_hash == head.root_hash,
        signature_valid=audit.verify_head_signature(head, public),
    )


def _audit_page(request: Request, entry_id: str | None) -> Response:
    platform = _platform(request)
    principal = require_principal(request)
    with platform.db.reader() as session:
        size = audit.tree_size(session)
        public = audit.public_key(session, platform.keyring)
    head = audit.signed_head_covering(platform.db, platform.keyring, size - 1 if size else None)
    can_see = principal.has_any(*AUDIT_ROLES)
    status = 200
    verification: Verification | None = None
    verify_error: str | None = None
    entry_value = (entry_id or "").strip()
    if entry_id is not None:
        if not can_see:
            status, verify_error = 403, N_("Only administrators, data protection officers and the regulator "
                                           "can see audit entries and their proofs.")
        elif not (entry_value.isascii() and entry_value.isdigit()) or len(entry_value) > 18:
            status, verify_error = 422, N_("Enter an entry number (a whole number, 0 or more).")
        else:
            try:
                verification = _verify_entry(platform, principal, int(entry_value), public)
            except NotFound as exc:
                if exc.field != "entry_id":
                    raise  # a missing tree node is an integrity problem, not an unknown entry
                status, verify_error = 404, N_("Entry not found in your organization's audit log.")
            else:
                if verification.head.tree_size > head.tree_size:
                    head = verification.head  # a fresher head was signed to cover the entry
    entries: list[dict[str, Any]] = []
    if can_see:
        with Context(platform, principal).read() as session:
            entries = [_entry_row(e) for e in audit.list_entries(session, limit=RECENT_ENTRIES)]
    return render(
        request, "audit.html", principal=principal, status=status, active="audit", module=BY_SLUG["audit"],
        head=head.to_dict(), head_signature_valid=audit.verify_head_signature(head, public),
        public_key=public.hex(), key_id=audit.SIGNING_KEY_ID, can_see=can_see, entries=entries,
        verification=verification, verify_error=verify_error, entry_value=entry_value[:20],
    )


@router.get("/audit")
def audit_log(request: Request) -> Response:
    return _audit_page(request, None)


@router.get("/audit/verify")
def audit_verify(request: Request, entry_id: Annotated[str, Query(max_length=40)] = "") -> Response:
    return _audit_page(request, entry_id)


# --- errors --------------------------------------------------------------------------------------

ERROR_TEXTS = {
    400: (N_("Bad request"), N_("The request could not be understood. Please go back and try again.")),
    403: (N_("Access denied"), N_("You do not have permission to do this, or the form has expired.")),
    404: (N_("Page not found"), N_("There is no page at this address.")),
    405: (N_("Not allowed"), N_("This address does not accept this kind of request.")),
    500: (N_("Something went wrong"), N_("An unexpected error occurred. It was logged without request data.")),
}


def error_page(request: Request, status: int, *, principal: Principal | None = None) -> HTMLResponse:
    if principal is None:
        principal = optional_principal(request)
    title, text = ERROR_TEXTS.get(status, ERROR_TEXTS[500 if status >= 500 else 400])
    return render(request, "error.html", principal=principal, status=status, title=title, text=text)


def is_web_request(request: Request) -> bool:
    """HTML pages get HTML errors; the API, health, metrics and static files keep theirs."""
    path = request.url.path
    if path == "/api" or path.startswith(("/api/", "/static/")) or path in ("/health", "/metrics"):
        return False
    accept = request.headers.get("accept", "")
    return not ("application/json" in accept and "text/html" not in accept)


Handler = Callable[[Request, Any], Awaitable[Response] | Response]


def _html_or(original: Handler | None, status_of: Callable[[Any], int]) -> Callable[..., Awaitable[Response]]:
    async def handler(request: Request, exc: Any) -> Response:
        if original is not None and not is_web_request(request):
            result = original(request, exc)
            return await result if isinstance(result, Awaitable) else result
        status = status_of(exc)
        if status == 401:
            return _redirect_response(request, security.login_url(security.current_path(request)))
        return await run_in_threadpool(_safe_error_page, request, status)

    return handler


def _safe_error_page(request: Request, status: int) -> HTMLResponse:
    try:
        return error_page(request, status)
    except Exception as exc:  # the error page must not fail on, say, a database outage
        log.error("error page %s failed: %s", status, type(exc).__name__)
        return HTMLResponse("<!doctype html><title>qorgau</title><h1>qorgau</h1><p>Error</p>", status_code=status)


def _redirect_response(request: Request, url: str) -> Response:
    if request.headers.get("hx-request") == "true":
        # An htmx call would follow a 303 and swap the login page into a fragment: send the whole page.
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def mount_web(app: FastAPI) -> None:
    """Add the HTML pages, static files and language-aware HTML error pages to ``app``."""
    app.include_router(router)
    from .discovery import router as discovery_router  # here: web/discovery.py imports this module

    app.include_router(discovery_router)
    from .consents import router as consents_router  # the consent pages and the citizen portal (/me)
    app.include_router(consents_router)
    from .vault import router as vault_router  # here: web/vault.py imports this module

    app.include_router(vault_router)
    from .oversight import router as oversight_router  # AI decisions: queue, decision, objections (issue 6)

    app.include_router(oversight_router)
    from .aisystems import router as aisystems_router  # AI register, public register (/register), the law (/law)

    app.include_router(aisystems_router)
    # --- leak register pages (issue 8): one import + include per part ---
    from .leaks_portal import router as leaks_portal_router  # the citizen's /me/leaks (task D)

    app.include_router(leaks_portal_router)
    from .leaks_incidents import router as leaks_incidents_router  # incident reports, the regulator (task A)

    app.include_router(leaks_incidents_router)
    from .leaks_uploads import router as leaks_uploads_router  # leak file upload, review, confirm (task C)

    app.include_router(leaks_uploads_router)
    from .oidc import router as oidc_router  # citizen sign-in through OpenID Connect (task E)

    app.include_router(oidc_router)
    from .leaks_transparency import router as leaks_transparency_router  # public statistics (task B)

    app.include_router(leaks_transparency_router)
    # --- AI content labels pages (issue 9) ---
    from .labels import router as labels_router  # label a file (/labels), public check (/labels/verify)

    app.include_router(labels_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def on_redirect(request: Request, exc: Redirect) -> Response:
        return _redirect_response(request, exc.url)

    app.add_exception_handler(Redirect, on_redirect)  # type: ignore[arg-type]
    handlers = app.exception_handlers
    unexpected = handlers.get(Exception)
    app.add_exception_handler(StarletteHTTPException, _html_or(handlers.get(StarletteHTTPException),
                                                               lambda exc: exc.status_code))
    app.add_exception_handler(QorgauError, _html_or(handlers.get(QorgauError), lambda exc: exc.status))
    app.add_exception_handler(RequestValidationError, _html_or(handlers.get(RequestValidationError),
                                                               lambda exc: 400))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if unexpected is not None:
            result = unexpected(request, exc)  # logs the type and route, never request data
            response = await result if isinstance(result, Awaitable) else result
        else:
            log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
            response = HTMLResponse("internal error", status_code=500)
        if not is_web_request(request):
            return response
        return await run_in_threadpool(_safe_error_page, request, 500)

    app.add_exception_handler(Exception, on_unexpected)
