"""Small security helpers of the web UI: redirect targets, CSRF tokens, cookies."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ..api.deps import CSRF_HEADER, SESSION_COOKIE  # noqa: F401  (one name for API and web)

LANG_COOKIE = "qorgau_lang"
CSRF_COOKIE = "qorgau_csrf"  # pre-session CSRF token (login and language forms before logging in)
FLASH_COOKIE = "qorgau_flash"
CSRF_FIELD = "csrf_token"

_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_NO_REDIRECT_TO = frozenset({"/logout", "/language"})


def safe_next(target: str | None, default: str = "/", *, allow_login: bool = False) -> str:
    """A redirect target that stays on this site: a local absolute path, or ``default``.

    Rejects absolute URLs, scheme-relative ``//host``, ``/\\host`` (browsers read the backslash as
    a slash) and control characters or spaces (browsers strip some of them, turning ``/\\t/host``
    into ``//host``). After a login, ``/login`` itself is no target (``allow_login`` is for the
    language switch on the login page).
    """
    if not target or len(target) > 2048 or not target.startswith("/"):
        return default
    if target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in _NO_REDIRECT_TO:
        return default
    if parts.path == "/login" and not allow_login:
        return default
    return target


def current_path(request: Request) -> str:
    """The path and query of this request, as a ``next`` value."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def with_next(path: str, next_path: str) -> str:
    """``path`` with ``next`` in the query (``/`` needs no ``next``)."""
    return path if next_path == "/" else f"{path}?next={quote(next_path, safe='/')}"


def login_url(next_path: str) -> str:
    return with_next("/login", next_path)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def looks_like_token(value: str | None) -> bool:
    return bool(value) and 32 <= len(value) <= 128 and set(value) <= _TOKEN_CHARS  # type: ignore[arg-type]


def tokens_match(sent: str | None, expected: str | None) -> bool:
    """Constant-time comparison; bytes, because ``compare_digest`` rejects non-ASCII ``str``."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


def sent_csrf_token(request: Request, form_value: str | None) -> str:
    """The token a form field or an htmx header (``X-CSRF-Token``, set by ``hx-headers``) carries."""
    return form_value or request.headers.get(CSRF_HEADER, "")


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None,
               http_only: bool = True, same_site: str = "lax") -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=http_only,
                        samesite=same_site)  # type: ignore[arg-type]


def delete_cookie(response: Response, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
