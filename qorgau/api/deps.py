"""Who is calling, and the tenant-scoped sessions they get.

:class:`Context` is the one door from HTTP to the database: every session it opens is bound to the
caller's organization (see :class:`qorgau.core.db.TenantScoped`), so a route cannot forget the tenant.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ..core import auth
from ..core.auth import Principal, Role
from ..core.errors import AuthenticationRequired, PermissionDenied
from ..core.platform import Platform

SESSION_COOKIE = "qorgau_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


@dataclass
class Context:
    platform: Platform
    principal: Principal

    @property
    def actor(self) -> str:
        return self.principal.actor

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        with self.platform.db.transaction(self.principal.organization_id) as session:
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self.platform.db.reader(self.principal.organization_id) as session:
            yield session


def authenticate(request: Request, platform: Platform, *, check_csrf: bool = True) -> Principal:
    """Bearer API key, or a web session cookie (with CSRF token on state-changing requests)."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationRequired("use 'Authorization: Bearer <API key>'", field="authorization")
        with platform.db.reader() as session:
            principal = auth.resolve_api_key(session, token.strip())
        _note_key_use(platform, principal.id)
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise AuthenticationRequired("authentication required: an API key or a login session")
    with platform.db.reader() as session:
        principal = auth.resolve_session(session, cookie)
    if check_csrf and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not principal.csrf_token or not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
            raise PermissionDenied("missing or wrong CSRF token", field=CSRF_HEADER)
    return principal


_last_touch: dict[tuple[str, int], float] = {}


def _note_key_use(platform: Platform, key_id: int) -> None:
    """Keep ``last_used_at`` fresh without a database write on every request."""
    now = time.monotonic()
    slot = (platform.db.url, key_id)
    if now - _last_touch.get(slot, -1e9) < 60:
        return
    _last_touch[slot] = now
    with platform.db.transaction() as session:
        auth.touch_api_key(session, key_id)


def current_context(request: Request) -> Context:
    platform = get_platform(request)
    principal = authenticate(request, platform)
    request.state.principal = principal
    return Context(platform, principal)


def requires(*roles: Role) -> Callable[[Request], Context]:
    """Dependency: an authenticated caller holding at least one of ``roles``."""

    def dependency(ctx: Annotated[Context, Depends(current_context)]) -> Context:
        ctx.principal.require(*roles)
        return ctx

    dependency.__name__ = "requires_" + "_".join(r.value for r in roles)
    return dependency  # type: ignore[return-value]


Ctx = Annotated[Context, Depends(current_context)]
AdminCtx = Annotated[Context, Depends(requires(Role.ADMIN))]
StaffCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO))]
AuditorCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REGULATOR))]
PlatformDep = Annotated[Platform, Depends(get_platform)]
