"""Operators screen identifiers blinded (issue 8; L-PD-LEAK-REGISTER): ``/api/v1/leaks/screening/…``.

* ``GET  /leaks/screening/key`` — suite, mode (VOPRF), the register's public key (base64), key version.
* ``POST /leaks/screening/evaluate`` — ``{"blinded": [base64 × ≤ 1,000]}`` → ``{"evaluated": [...], "proof": "…"}``
  (one batch DLEQ proof); counted per element against the key's evaluation budget (429 + ``Retry-After``).
* ``POST /leaks/screening/match`` — ``{"tokens": [base64 32-byte index tokens]}`` →
  ``{"matches": [{"index": i, "incidents": [...]}]}``; only tokens with a visible incident are listed.

Every route needs an operator's ``admin``/``dpo`` API key or login, or the authorized body's ``regulator``;
anonymous calls get 401 (no anonymous endpoint answers "is this identifier leaked?"). Identifiers never reach
the server: only blinded group elements and pseudorandom tokens. See ``qorgau/leaks/screening.py`` and
``docs/leaks-screening.md``.

The match path is the benchmarked lookup: API-key calls are answered by :class:`FastMatch`, a small ASGI layer
in front of the framework (like the consent decision point's ``FastCheck``), with the same error format,
headers, metrics and access log line; session (cookie) callers go through the normal route below.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, ValidationError

from ...core import auth
from ...core.errors import AuthenticationRequired, InvalidInput, QorgauError
from ...leaks.register import TOKEN_BYTES
from ...leaks.screening import decode_elements, screening_for
from ..deps import Ctx, _note_key_use, authenticate, get_platform
from ..schemas import Strict

router = APIRouter(prefix="/leaks/screening", tags=["leaks"])
_log = logging.getLogger("qorgau.api")
_access = logging.getLogger("qorgau.access")

MATCH_PATH = "/api/v1/leaks/screening/match"
MAX_MATCH_BODY = 256 * 1024


class KeyOut(BaseModel):
    suite: str
    mode: str
    public_key: str = Field(description="The register's VOPRF public key, base64 (32 bytes).")
    key_version: int
    token_bytes: int
    max_batch: int


class EvaluateIn(Strict):
    blinded: list[str] = Field(description="Blinded ristretto255 elements, base64 (32 bytes each).",
                               min_length=1, max_length=65_536)


class EvaluateOut(BaseModel):
    evaluated: list[str]
    proof: str


class MatchIn(Strict):
    tokens: list[str] = Field(description="32-byte index tokens (first 32 bytes of the VOPRF output), base64.",
                              min_length=1, max_length=65_536)


class MatchOut(BaseModel):
    matches: list[dict[str, Any]]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@router.get("/key", response_model=KeyOut, summary="The register's VOPRF public key (pin it in the client)")
def key(ctx: Ctx) -> KeyOut:
    service = screening_for(ctx.platform)
    service.require_screener(ctx.principal)
    return KeyOut(**service.key_info().to_dict())


@router.post("/evaluate", response_model=EvaluateOut,
             summary="Evaluate blinded elements (VOPRF, one DLEQ proof per batch); counted per element")
def evaluate(body: EvaluateIn, ctx: Ctx) -> EvaluateOut:
    service = screening_for(ctx.platform)
    service.require_screener(ctx.principal)
    blinded = decode_elements(body.blinded, "blinded", max_items=service.max_batch)
    evaluated, proof = service.evaluate(ctx.principal, blinded)
    return EvaluateOut(evaluated=[_b64(e) for e in evaluated], proof=_b64(proof))


def _parse_match(raw: bytes, max_batch: int) -> list[bytes]:
    try:
        body = MatchIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or None
        message = {"extra_forbidden": "unknown field", "json_invalid": "request body is not valid JSON"}.get(
            str(first.get("type")), str(first.get("msg")))
        raise InvalidInput(message, field=loc) from None
    return decode_elements(body.tokens, "tokens", max_items=max_batch, size=TOKEN_BYTES)


def _match(platform: Any, principal: auth.Principal, raw: bytes) -> dict[str, Any]:
    service = screening_for(platform)
    service.require_screener(principal)
    tokens = _parse_match(raw, service.max_batch)
    return {"matches": [m.to_dict() for m in service.match(principal, tokens)]}


@router.post("/match", response_model=MatchOut, summary="Which index tokens appear in incidents you may see")
async def match(request: Request) -> Response:
    """Body ``{"tokens": [base64…]}``. Calls with an API key are answered by :class:`FastMatch` before the
    framework's routing; this route serves session (cookie) callers and documents the endpoint."""
    platform = get_platform(request)
    principal = authenticate(request, platform)
    raw = await request.body()
    payload = await anyio.to_thread.run_sync(_match, platform, principal, raw)
    return Response(json.dumps(payload), media_type="application/json")


def _api_key_principal(platform: Any, authorization: bytes) -> auth.Principal:
    header = authorization.decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired("use 'Authorization: Bearer <API key>'", field="authorization")
    principal = screening_for(platform).principal_for_api_key(token.strip())
    _note_key_use(platform, principal.id)
    return principal


def _answer(platform: Any, authorization: bytes, raw: bytes) -> tuple[int, dict[str, Any], int | None]:
    try:
        principal = _api_key_principal(platform, authorization)
        return 200, _match(platform, principal, raw), None
    except QorgauError as exc:
        return exc.status, {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}, \
            getattr(exc, "retry_after_seconds", None)
    except Exception as exc:  # the type only: the request carries tokens
        _log.error("unhandled %s on POST %s", type(exc).__name__, MATCH_PATH)
        return 500, {"error": {"code": "internal_error", "field": None,
                               "message": "internal error; the event was logged without request data"}}, None


class FastMatch:
    """``POST /api/v1/leaks/screening/match`` with ``Authorization: Bearer qk_…`` answered without the framework's
    routing and dependency injection. Keeps the body cap, the ``{"error": …}`` format, the security headers,
    ``Retry-After`` on 429, the metrics and the access-log line with the route template."""

    _HEADERS = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != MATCH_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        authorization = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        if authorization[:10].lower() != b"bearer qk_":
            await self.app(scope, receive, send)  # sessions and anonymous callers: the full stack
            return
        started = time.perf_counter()
        app = scope["app"]
        platform = app.state.platform
        chunks: list[bytes] = []
        size = 0
        retry_after: int | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_MATCH_BODY:
                status, payload = 413, {"error": {"code": "payload_too_large", "field": "body",
                                                  "message": f"request body exceeds the limit of {MAX_MATCH_BODY} bytes"}}
                break
            chunks.append(chunk)
            if not message.get("more_body", False):
                raw = b"".join(chunks)
                if platform.db.dialect == "sqlite":
                    # Memory-mapped probes and in-process SQLite reads: cheaper inline than a thread hop.
                    status, payload, retry_after = _answer(platform, authorization, raw)
                else:
                    status, payload, retry_after = await anyio.to_thread.run_sync(_answer, platform, authorization,
                                                                                  raw)
                break
        data = json.dumps(payload).encode()
        headers = [*self._HEADERS, (b"content-length", str(len(data)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status == 429 and retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        elapsed = time.perf_counter() - started
        app.state.metrics.observe("POST", MATCH_PATH, status, elapsed)
        _access.info("%s %s %d %.1fms", "POST", MATCH_PATH, status, elapsed * 1000)
