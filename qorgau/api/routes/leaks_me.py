"""The citizen's leak-register API under ``/api/v1/me/leaks`` (issue 8; L-PD-RIGHTS, L-PD-LEAK-REGISTER).

Thin over :mod:`qorgau.leaks.citizens`. Only a signed-in **citizen** (a user with the ``citizen`` role, by the
web session cookie plus ``X-CSRF-Token`` on changes — API keys cannot carry that role) reaches these routes;
anyone else gets 401 (anonymous) or 403. No route takes an identifier value to look up: ``GET lookup`` answers
about the caller's own verified identifiers only. Lookups and code requests are rate-limited (429 with
``Retry-After``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.responses import Response
from pydantic import Field

from ...core.auth import Role
from ...core.errors import PermissionDenied
from ...core.i18n import LANGUAGES
from ...leaks.citizens import leak_citizens_for
from ..deps import Context, current_context
from ..schemas import MAX_ID, Strict

router = APIRouter(prefix="/me/leaks", tags=["leaks: citizens"])

IdentifierId = Annotated[int, Path(ge=1, le=MAX_ID)]
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID)]
LIMITED = {429: {"description": "Rate-limited: try again after `Retry-After` seconds."}}


def citizen_context(ctx: Annotated[Context, Depends(current_context)]) -> Context:
    """A signed-in citizen account (web session); API keys and staff are refused."""
    if ctx.principal.kind != "user" or not ctx.principal.has_any(Role.CITIZEN):
        raise PermissionDenied("only a signed-in citizen can use the leak register's citizen API", field="role")
    return ctx


CitizenCtx = Annotated[Context, Depends(citizen_context)]


class PhoneStart(Strict):
    phone: str = Field(min_length=1, max_length=40)
    lang: str | None = Field(default=None, max_length=2)


class PhoneConfirm(Strict):
    selector: str = Field(min_length=1, max_length=40)
    code: str = Field(min_length=1, max_length=12)


class EmailStart(Strict):
    email: str = Field(min_length=1, max_length=320)
    lang: str | None = Field(default=None, max_length=2)


class EmailConfirm(Strict):
    selector: str = Field(min_length=1, max_length=40)
    secret: str = Field(min_length=1, max_length=100)


class Subscription(Strict):
    subscribed: bool


def _lang(ctx: Context, given: str | None) -> str:
    if given in LANGUAGES:
        return given  # type: ignore[return-value]
    language = ctx.principal.language
    return language if language in LANGUAGES else ctx.platform.settings.default_language


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/identifiers", summary="My verified identifiers (masked)")
def my_identifiers(ctx: CitizenCtx) -> dict[str, Any]:
    service = leak_citizens_for(ctx.platform)
    return {"identifiers": [i.to_dict() for i in service.identifiers(ctx.principal.id)]}


@router.post("/phone/start", status_code=status.HTTP_201_CREATED, responses=LIMITED,
             summary="Send a one-time code by SMS to a phone I want to verify")
def start_phone(body: PhoneStart, ctx: CitizenCtx) -> dict[str, Any]:
    started = leak_citizens_for(ctx.platform).start_phone(ctx.principal.id, body.phone, lang=_lang(ctx, body.lang),
                                                          actor=ctx.actor)
    return {"verification": started.to_dict()}


@router.post("/phone/confirm", responses=LIMITED, summary="Confirm a phone with the code from the SMS")
def confirm_phone(body: PhoneConfirm, ctx: CitizenCtx) -> dict[str, Any]:
    identifier = leak_citizens_for(ctx.platform).confirm_phone(ctx.principal.id, body.selector, body.code,
                                                               actor=ctx.actor)
    return {"identifier": identifier.to_dict()}


@router.post("/email/start", status_code=status.HTTP_201_CREATED, responses=LIMITED,
             summary="Send a confirmation link to an e-mail address I want to verify")
def start_email(body: EmailStart, ctx: CitizenCtx, request: Request) -> dict[str, Any]:
    started = leak_citizens_for(ctx.platform).start_email(ctx.principal.id, body.email, lang=_lang(ctx, body.lang),
                                                          base_url=_base_url(request), actor=ctx.actor)
    return {"verification": started.to_dict()}


@router.post("/email/confirm", responses=LIMITED, summary="Confirm an e-mail address with the link's selector and "
                                                         "secret (the same signed-in citizen)")
def confirm_email(body: EmailConfirm, ctx: CitizenCtx) -> dict[str, Any]:
    identifier = leak_citizens_for(ctx.platform).confirm_email(ctx.principal.id, body.selector, body.secret,
                                                               actor=ctx.actor)
    return {"identifier": identifier.to_dict()}


@router.get("/lookup", responses=LIMITED,
            summary="Incidents that contain my verified identifiers (never the leaked values)")
def lookup(ctx: CitizenCtx, response: Response) -> dict[str, Any]:
    service = leak_citizens_for(ctx.platform)
    incidents = service.lookup(ctx.principal.id, lang=_lang(ctx, None))
    response.headers["Cache-Control"] = "no-store"
    return {"incidents": [i.to_dict() for i in incidents],
            "lookups_left": service.lookups_left(ctx.principal.id)}


@router.put("/identifiers/{identifier_id}/subscription",
            summary="Be notified (or not) when a new leak contains this identifier")
def set_subscription(identifier_id: IdentifierId, body: Subscription, ctx: CitizenCtx) -> dict[str, Any]:
    identifier = leak_citizens_for(ctx.platform).subscribe(ctx.principal.id, identifier_id, body.subscribed,
                                                           actor=ctx.actor)
    return {"identifier": identifier.to_dict()}


@router.delete("/identifiers/{identifier_id}", status_code=status.HTTP_204_NO_CONTENT, response_model=None,
               summary="Forget a verified phone or e-mail")
def remove_identifier(identifier_id: IdentifierId, ctx: CitizenCtx) -> Response:
    leak_citizens_for(ctx.platform).remove(ctx.principal.id, identifier_id, actor=ctx.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications", summary="Incidents I was notified about")
def notifications(ctx: CitizenCtx) -> dict[str, Any]:
    service = leak_citizens_for(ctx.platform)
    return {"notifications": [n.to_dict() for n in service.notifications(ctx.principal.id)]}


@router.post("/notifications/{leak_notification_id}/seen", summary="Mark a notification seen")
def mark_seen(leak_notification_id: NotificationId, ctx: CitizenCtx) -> dict[str, Any]:
    item = leak_citizens_for(ctx.platform).mark_seen(ctx.principal.id, leak_notification_id, actor=ctx.actor)
    return {"notification": item.to_dict()}
