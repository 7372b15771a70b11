"""The caller, their organization, users and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import JSONResponse

from ...core import auth
from ...core.errors import InvalidInput
from ...core.throttle import LoginThrottled, login_throttle_for
from ..deps import AdminCtx, Ctx, StaffCtx
from ..schemas import (
    MAX_ID,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    MeOut,
    MeUpdate,
    OrganizationOut,
    PasswordChange,
    UserCreate,
    UserCreated,
    UserOut,
)

router = APIRouter(tags=["accounts"])


# The *Out models read their fields off the ORM rows (``from_attributes``) instead of copying them one by
# one here: a column added to a row and its model cannot be forgotten in between.


def _org_out(org: auth.Organization) -> OrganizationOut:
    return OrganizationOut.model_validate(org)


def _key_out(key: auth.ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key)


def _user_out(user: auth.User) -> UserOut:
    return UserOut.model_validate(user)


@router.get("/me", response_model=MeOut, summary="Who am I?")
def me(ctx: Ctx) -> MeOut:
    p = ctx.principal
    with ctx.read() as s:
        org = auth.get_organization(s, p.organization_id)
        return MeOut(kind=p.kind, id=p.id, organization=_org_out(org), roles=sorted(p.roles),
                     language=p.language, must_change_password=p.must_change_password)


@router.patch("/me", response_model=MeOut, summary="Change my interface language")
def update_me(body: MeUpdate, ctx: Ctx) -> MeOut:
    if ctx.principal.kind != "user":
        raise InvalidInput("only users have a language preference", field="language")
    with ctx.write() as s:
        auth.set_language(s, ctx.principal.id, body.language)
    p = ctx.principal
    with ctx.read() as s:
        org = auth.get_organization(s, p.organization_id)
        return MeOut(kind=p.kind, id=p.id, organization=_org_out(org), roles=sorted(p.roles),
                     language=body.language, must_change_password=p.must_change_password)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change my password",
             response_model=None, responses={429: {"description": "Too many wrong current passwords: locked until the time in "
                                             "`Retry-After` (seconds) and the message."}})
def change_my_password(body: PasswordChange, ctx: Ctx, request: Request) -> Response:
    if ctx.principal.kind != "user":
        raise InvalidInput("API keys have no password", field="old_password")
    throttle = login_throttle_for(ctx.platform)
    refused: InvalidInput | LoginThrottled | None = None
    with ctx.write() as s:
        try:  # caught inside the transaction, so a wrong current password is counted (committed)
            throttle.change_password(s, ctx.principal.id, body.old_password, body.new_password,
                                     address=request.client.host if request.client else None)
        except (InvalidInput, LoginThrottled) as exc:  # nothing was written before either is raised
            refused = exc
    if isinstance(refused, LoginThrottled):
        return JSONResponse({"error": refused.to_dict()}, status_code=refused.status,
                            headers={"Retry-After": str(refused.retry_after_seconds)})
    if refused is not None:
        raise refused
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/organization", response_model=OrganizationOut, summary="My organization")
def organization(ctx: Ctx) -> OrganizationOut:
    with ctx.read() as s:
        return _org_out(auth.get_organization(s, ctx.principal.organization_id))


@router.get("/users", response_model=list[UserOut], summary="Users of my organization")
def list_users(ctx: StaffCtx) -> list[UserOut]:
    with ctx.read() as s:
        return [_user_out(u) for u in auth.list_users(s)]


@router.post("/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED,
             summary="Create a user (a one-time password is returned when none is given)")
def create_user(body: UserCreate, ctx: AdminCtx) -> UserCreated:
    with ctx.write() as s:
        user, one_time = auth.create_user(
            s, organization_id=ctx.principal.organization_id, username=body.username,
            display_name=body.display_name, roles=list(body.roles), actor=ctx.actor, password=body.password,
            language=body.language)
        return UserCreated(**_user_out(user).model_dump(), one_time_password=one_time)


@router.get("/users/{user_id}", response_model=UserOut, summary="One user of my organization")
def get_user(user_id: Annotated[int, Path(ge=0, le=MAX_ID)], ctx: StaffCtx) -> UserOut:
    with ctx.read() as s:
        return _user_out(auth.get_user(s, user_id))


@router.get("/api-keys", response_model=list[ApiKeyOut], summary="API keys of my organization")
def list_api_keys(ctx: AdminCtx) -> list[ApiKeyOut]:
    with ctx.read() as s:
        return [_key_out(k) for k in auth.list_api_keys(s)]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED,
             summary="Create an API key (the secret is shown once)")
def create_api_key(body: ApiKeyCreate, ctx: AdminCtx) -> ApiKeyCreated:
    with ctx.write() as s:
        key, secret = auth.create_api_key(s, organization_id=ctx.principal.organization_id, name=body.name,
                                          roles=list(body.roles), actor=ctx.actor)
        return ApiKeyCreated(**_key_out(key).model_dump(), secret=secret)


@router.get("/api-keys/{key_id}", response_model=ApiKeyOut, summary="One API key")
def get_api_key(key_id: Annotated[int, Path(ge=0, le=MAX_ID)], ctx: AdminCtx) -> ApiKeyOut:
    with ctx.read() as s:
        return _key_out(auth.get_api_key(s, key_id))


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key")
def revoke_api_key(key_id: Annotated[int, Path(ge=0, le=MAX_ID)], ctx: AdminCtx) -> ApiKeyOut:
    with ctx.write() as s:
        return _key_out(auth.revoke_api_key(s, key_id, actor=ctx.actor))
