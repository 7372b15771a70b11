"""The regulator's side of the AI systems register (issue 7): every operator's registered systems, trusted-list
requests to decide (include or refuse) and entries to remove (L-AI-TRUSTED), sandbox applications to decide
(L-AI-SANDBOX [plan]). Thin adapters over :mod:`qorgau.aisystems.register` and
:mod:`qorgau.aisystems.governance`.

Only the ``regulator`` role reaches these routes (operators get 403). The regulator supervises every operator,
so these routes open platform-level sessions (not bound to the caller's organization): that is their purpose,
and the one reason they live apart from the operator's routes. The governance service checks the role again
and refuses decisions on the caller's own organization's systems (an operator never includes its own system,
even with a key that carries the regulator role).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ...aisystems.governance import governance_for
from ...aisystems.register import register_for
from ...core import auth
from ...core.auth import Role
from ..deps import Context, requires
from ..schemas import MAX_ID
from ..schemas_aisystems import (RiskLevel, SandboxClosureIn, SandboxDecisionIn, SandboxStatus, TrustedDecisionIn, TrustedRemovalIn,
                                 TrustedStatus, out)

router = APIRouter(tags=["regulator"])

def _authority(ctx: Annotated[Context, Depends(requires(Role.REGULATOR))]) -> Context:
    """The regulator role of the authorized body (checked before the request body is read): an operator that
    gives its own keys the role gets 403 here."""
    with ctx.platform.db.reader() as session:
        auth.require_authority(session, ctx.principal)
    return ctx


RegulatorCtx = Annotated[Context, Depends(_authority)]
TrustedId = Annotated[int, Path(ge=0, le=MAX_ID, description="A trusted-list request or entry.")]
ApplicationId = Annotated[int, Path(ge=0, le=MAX_ID, description="A sandbox application.")]


@contextlib.contextmanager
def _every_operator(ctx: Context, *, write: bool = False) -> Iterator[Session]:
    """A session over every organization (the regulator supervises them all)."""
    opener = ctx.platform.db.transaction if write else ctx.platform.db.reader
    with opener() as session:
        yield session


@router.get("/regulator/ai-systems", summary="Every operator's registered AI systems with their current "
                                             "classification")
def all_systems(
    ctx: RegulatorCtx,
    risk: Annotated[RiskLevel | None, Query()] = None,
    prohibited: Annotated[bool | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    found = [{"organization_id": org.id, "operator_name": org.name, "operator_bin": org.bin, **summary.to_dict()}
             for org, summary in register_for(ctx.platform).every_operators_systems(risk=risk, prohibited=prohibited,
                                                                                   q=q)]
    return out(found)


@router.get("/regulator/trusted-requests", summary="Trusted-list requests and entries of every operator")
def trusted_requests(ctx: RegulatorCtx,
                     status_: Annotated[TrustedStatus | None, Query(alias="status")] = None) -> JSONResponse:
    with _every_operator(ctx) as s:
        return out(governance_for(ctx.platform).trusted_requests(s, status=status_, actor=ctx.principal))


@router.post("/regulator/trusted-requests/{trusted_id}/decision",
             summary="Include a system in its sector's trusted list, or refuse (with a reason)")
def decide_trusted(trusted_id: TrustedId, body: TrustedDecisionIn, ctx: RegulatorCtx) -> JSONResponse:
    with _every_operator(ctx, write=True) as s:
        return out(governance_for(ctx.platform).decide_trusted(s, trusted_id, include=body.include,
                                                               reason=body.reason, actor=ctx.principal))


@router.post("/regulator/trusted-requests/{trusted_id}/removal",
             summary="Remove an included system from the trusted list (with a reason)")
def remove_trusted(trusted_id: TrustedId, body: TrustedRemovalIn, ctx: RegulatorCtx) -> JSONResponse:
    with _every_operator(ctx, write=True) as s:
        return out(governance_for(ctx.platform).remove_trusted(s, trusted_id, reason=body.reason, actor=ctx.principal))


@router.get("/regulator/sandbox", summary="Sandbox applications of every operator")
def sandboxes(ctx: RegulatorCtx,
              status_: Annotated[SandboxStatus | None, Query(alias="status")] = None) -> JSONResponse:
    with _every_operator(ctx) as s:
        return out(governance_for(ctx.platform).sandboxes(s, status=status_, actor=ctx.principal))


@router.post("/regulator/sandbox/{application_id}/decision",
             summary="Approve a sandbox application (period of at most 24 months, conditions, relaxations "
                     "granted) or reject it")
def decide_sandbox(application_id: ApplicationId, body: SandboxDecisionIn, ctx: RegulatorCtx) -> JSONResponse:
    fields: dict[str, Any] = body.model_dump(exclude={"approve"})
    with _every_operator(ctx, write=True) as s:
        return out(governance_for(ctx.platform).decide_sandbox(s, application_id, approve=body.approve,
                                                               actor=ctx.principal, **fields))


@router.post("/regulator/sandbox/{application_id}/closure", summary="End an approved sandbox early (with a reason)")
def close_sandbox(application_id: ApplicationId, body: SandboxClosureIn, ctx: RegulatorCtx) -> JSONResponse:
    with _every_operator(ctx, write=True) as s:
        return out(governance_for(ctx.platform).close_sandbox(s, application_id, reason=body.reason,
                                                              actor=ctx.principal))


__all__ = ["router"]
