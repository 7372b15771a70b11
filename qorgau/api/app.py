"""The ASGI application: API under ``/api/v1``, the web UI at ``/``, ``/health`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..core import auth
from ..core.errors import QorgauError
from ..core.platform import Platform
from ..core.settings import Settings
from . import metrics
from .routes import accounts, audit, datamap, discovery, redact, reference, system
from .routes import consent as consent_routes

log = logging.getLogger("qorgau.api")
access_log = logging.getLogger("qorgau.access")


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status,
                        headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or (str(loc[0]) if loc else None)


def _validation_message(err: dict[str, Any]) -> str:
    # Pydantic's message describes the rule; the rejected *input* is deliberately not echoed (it may be PII).
    if err.get("type") == "extra_forbidden":
        return "unknown field"
    if err.get("type") == "json_invalid":
        return "request body is not valid JSON"
    return str(err.get("msg", "invalid value"))


class BodySizeLimit:
    """Reject bodies over the limit before reading them (Content-Length) or while streaming them."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Paths that take bigger bodies (scan uploads) get a limit of their own.
        self.larger = {path: BodySizeLimit(app, n) for path, n in (larger or {}).items()}
        # A templated path ("/leaks/incidents/{incident_id}/uploads") matches any one segment per parameter.
        self.patterns = [(re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"), limit)
                         for path, limit in self.larger.items() if "{" in path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.larger:
            await self.larger[scope["path"]](scope, receive, send)
            return
        for pattern, limited in self.patterns:
            if pattern.match(scope["path"]):
                await limited(scope, receive, send)
                return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send)
            return
        seen = 0
        too_big = False
        started = False

        async def limited() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    raise _TooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_big:  # the app's own error for the aborted read is replaced by our 413
                return
            started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except _TooLarge:
            pass
        if too_big and not started:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "payload_too_large",
                                  f"request body exceeds the limit of {self.max_bytes} bytes", "body")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Sign a fresh audit tree head every ``sth_interval_seconds`` while the server runs, so tampering
    after the fact is detectable even if nobody asked for a proof."""
    platform: Platform = app.state.platform
    auth.warn_if_fast_hashing()
    interval = platform.settings.sth_interval_seconds
    task = asyncio.create_task(_sign_periodically(platform, interval)) if interval > 0 else None
    scan_workers = datamap.jobs.start_workers(platform)  # settings.scan_workers threads (0: none)
    consent_dispatcher = consent_routes.start_dispatcher(platform)  # webhook outbox (QORGAU_CONSENT_DISPATCHER)
    from ..aisystems.register import reclassify_at_startup
    await asyncio.to_thread(reclassify_at_startup, platform)  # rule packs changed → re-classify AI systems
    try:
        yield
    finally:
        await asyncio.to_thread(scan_workers.stop)
        if consent_dispatcher is not None:
            await asyncio.to_thread(consent_dispatcher.stop)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _sign_periodically(platform: Platform, interval: float) -> None:
    from ..core import audit

    while True:
        try:
            await asyncio.to_thread(audit.signed_head_covering, platform.db, platform.keyring,
                                    _last_entry(platform))
        except Exception as exc:  # keep signing on the next tick; never crash the server
            log.warning("tree head signing failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def _last_entry(platform: Platform) -> int | None:
    from ..core import audit

    with platform.db.reader() as session:
        size = audit.tree_size(session)
    return size - 1 if size else None


def create_app(platform: Platform | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the application around an opened platform (``Platform.open`` when not given)."""
    platform = platform or Platform.open(settings)
    app = FastAPI(
        lifespan=_lifespan,
        title="qorgau",
        version=__version__,
        description="Kazakhstan's personal-data law and AI law, made operational.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.platform = platform
    templates: dict[int, str] = {}  # id(route object) -> full path template, for logs and metrics
    app.state.metrics = metrics.Metrics(platform)

    @app.exception_handler(QorgauError)
    async def _qorgau_error(request: Request, exc: QorgauError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        retry_after = getattr(exc, "retry_after_seconds", None)
        if exc.status in (429, 503) and isinstance(retry_after, int):
            headers = {"Retry-After": str(retry_after)}
        return error_response(exc.status, exc.code, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        return error_response(422, "invalid_input", _validation_message(first), _field_of(tuple(first.get("loc", ()))))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}.get(
            exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the type and route only: exception text may carry values from the request.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; the event was logged without request data")

    @app.middleware("http")
    async def _observe(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        matched = request.scope.get("route")
        route = templates.get(id(matched)) or getattr(matched, "path", "unmatched")
        elapsed = time.perf_counter() - started
        app.state.metrics.observe(request.method, route, response.status_code, elapsed)
        # The route *template* (/api/v1/users/{user_id}), never the raw path or query: those may carry
        # identifiers, and access logs are kept far longer than anyone remembers.
        access_log.info("%s %s %d %.1fms", request.method, route, response.status_code, elapsed * 1000)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    from .routes.leaks_uploads import upload_body_limits as leak_upload_limits  # leak files (issue 8, task C)
    from .routes.labels import upload_body_limits as label_upload_limits  # files to label or verify (issue 9)

    app.add_middleware(BodySizeLimit, max_bytes=platform.settings.max_request_bytes,
                       larger={**datamap.upload_body_limits(platform.settings),
                               **leak_upload_limits(platform.settings),
                               **label_upload_limits(platform.settings)})
    app.add_middleware(consent_routes.FastCheck)  # the decision point's hot path (API-key calls)

    app.include_router(system.router)
    for module in (accounts, audit, reference, discovery, redact, datamap):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(consent_routes.router, prefix="/api/v1")
    from .routes import oversight as oversight_routes  # AI decisions held for human approval (issue 6)

    app.include_router(oversight_routes.router, prefix="/api/v1")
    from .routes import aisystems as aisystems_routes, public_register, regulator  # the AI register (issue 7)

    for module in (aisystems_routes, regulator, public_register):
        app.include_router(module.router, prefix="/api/v1")
    from .routes import vault as vault_routes  # the identity vault; install() also checks the master key

    vault_routes.install(app)
    # --- leak register routers (issue 8): one import + include per part ---
    from .routes import leaks_me  # the citizen's verified identifiers, lookups, notifications (task D)

    app.include_router(leaks_me.router, prefix="/api/v1")
    from .routes import leaks_incidents  # incident reports and the regulator's workflow (task A)

    app.include_router(leaks_incidents.router, prefix="/api/v1")
    from .routes import leaks_public  # public leak statistics and open data (task B)

    app.include_router(leaks_public.router, prefix="/api/v1")
    from .routes import leaks_screening  # operators screen blinded identifiers (task F)

    app.include_router(leaks_screening.router, prefix="/api/v1")
    app.add_middleware(leaks_screening.FastMatch)  # the screening match path (API-key calls)
    from .routes import leaks_uploads  # two-phase ingest of leak files (task C)

    app.include_router(leaks_uploads.router, prefix="/api/v1")
    # --- AI content labels (issue 9) ---
    from .routes import labels as labels_routes  # label and verify AI-generated content (task D)

    app.include_router(labels_routes.router, prefix="/api/v1")

    from ..web.routes import mount_web

    mount_web(app)
    templates.update({id(original): path for path, _, original in _effective_routes(app)})
    return app


def _effective_routes(app: FastAPI) -> list[tuple[str, set[str] | None, object]]:
    """(full path template, methods, original route object) for every route, across included routers.

    FastAPI ≥ 0.16x wraps included routers (and puts the *unprefixed* route in ``scope["route"]``);
    older versions list routes directly — both shapes are handled.
    """
    found: list[tuple[str, set[str] | None, object]] = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for ctx in contexts():
                if ctx.path is not None:
                    found.append((ctx.path, getattr(ctx, "methods", None), ctx.original_route))
        elif getattr(route, "path", None) is not None:
            found.append((route.path, getattr(route, "methods", None), route))  # type: ignore[attr-defined]
    return found


def route_table(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves.

    Used by the route-walking tests (tenant isolation, garbage input) and the API reference, so a new
    route is covered the moment it is registered.
    """
    table: list[tuple[str, str]] = []
    for path, methods, _ in _effective_routes(app):
        if path.startswith("/static") or path in ("/api/docs", "/api/openapi.json", "/docs/oauth2-redirect"):
            continue
        for method in sorted((methods or {"GET"}) - {"HEAD", "OPTIONS"}):
            table.append((method, path))
    return table
