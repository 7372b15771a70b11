"""The AI systems register over HTTP, for operators (issue 7): the questionnaire, registering a system with its
answers, classification by the rule packs (stored, or a preview "under the law as of a date"), the history of
classifications with their diffs, obligations, audits and trusted-list requests (L-AI-TRUSTED), the regulatory
sandbox (L-AI-SANDBOX [plan]) and the maturity index (L-AI-MATURITY [plan]). Thin adapters over
:mod:`qorgau.aisystems.register` and :mod:`qorgau.aisystems.governance`.

Paths live under ``/ai-register`` and name systems by id: ``/ai-systems/{system_code}`` belongs to the oversight
routes (declared risk class and autonomy, webhooks), and the register shows those systems too.

Who may do what: ``admin`` and ``dpo`` change the register; every operator role (and ``regulator``) reads
it. Every route works inside the caller's organization: another operator's system is "not found". The
regulator's cross-organization routes are in :mod:`.regulator`, the public register in :mod:`.public_register`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse

from ...aisystems.governance import AiGovernance, governance_for
from ...aisystems.register import AiRegister, register_for
from ...core.auth import Role
from ..deps import Context, requires
from ..schemas import MAX_ID
from ..schemas_aisystems import (AuditIn, Lang, ObligationMet, ObligationStatus, ProfileName, QuestionnaireUpdate,
                                 RiskLevel, SandboxApplicationIn, SandboxStatus, SystemRegistration,
                                 TrustedRequestIn, TrustedStatus, out)

router = APIRouter(tags=["ai-register"])

SystemId = Annotated[int, Path(ge=0, le=MAX_ID, description="An AI system of your organization (its id).")]
ObligationId = Annotated[int, Path(ge=0, le=MAX_ID, description="An obligation of your organization.")]
ApplicationId = Annotated[int, Path(ge=0, le=MAX_ID, description="A sandbox application of your organization.")]
AsOf = Annotated[date | None, Query(description="Classify under the law as in force on this day (default today).")]
Profile = Annotated[ProfileName | None, Query(
    description="'stricter': the law plus the [plan] proposals; 'law': the law alone (default: the platform's "
                "setting).")]

ReaderCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REVIEWER, Role.REGULATOR))]
StaffCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO))]


def _register(ctx: Context) -> AiRegister:
    return register_for(ctx.platform)


def _governance(ctx: Context) -> AiGovernance:
    return governance_for(ctx.platform)


def _stricter(profile: ProfileName | None) -> bool | None:
    """``?profile=stricter`` adds the [plan] proposals, ``?profile=law`` the law alone; absent: the platform's
    setting (``rules_stricter_profile``) decides."""
    return None if profile is None else profile == "stricter"


# --- the questionnaire and the systems -----------------------------------------------------------------------


@router.get("/ai-register/questionnaire", summary="The questionnaire: sections of questions (fact paths, types, "
                                                  "allowed values, required or not) in kk, ru or en")
def questionnaire(ctx: ReaderCtx, lang: Annotated[Lang, Query()] = "kk") -> JSONResponse:
    return out(_register(ctx).questionnaire(lang))


@router.post("/ai-register/systems", status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "Your organization already has a system with this code."}},
             summary="Register an AI system with its questionnaire answers; it is classified at once")
def register_system(body: SystemRegistration, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:  # a rejected answer is named facts.<path> (the catalogue's check)
        record = _register(ctx).register_system(
            s, code=body.code, name=body.name, description=body.description, facts=body.facts,
            public=body.public, webhook_url=body.webhook_url, actor=ctx.actor)
    content = record.to_dict()
    content["webhook_secret"] = record.webhook_secret  # shown once (None without a webhook)
    return out(content, status.HTTP_201_CREATED, {"Location": f"/api/v1/ai-register/systems/{record.id}"})


@router.get("/ai-register/systems", summary="Your AI systems with their current classification")
def list_systems(
    ctx: ReaderCtx,
    risk: Annotated[RiskLevel | None, Query(description="Only this risk level.")] = None,
    prohibited: Annotated[bool | None, Query(description="Only systems found (not) to use a prohibited "
                                                         "practice.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Words of the code or name.")] = None,
) -> JSONResponse:
    with ctx.read() as s:
        return out(_register(ctx).systems(s, risk=risk, prohibited=prohibited, q=q))


@router.get("/ai-register/systems/{system_id}", summary="One AI system: answers, current classification, "
                                                        "obligations")
def get_system(system_id: SystemId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return out(_register(ctx).system(s, system_id))


@router.put("/ai-register/systems/{system_id}/questionnaire",
            responses={409: {"description": "The questionnaire changed since the version you edited: reload it."}},
            summary="Change the questionnaire's answers (re-classifies the system)")
def update_questionnaire(system_id: SystemId, body: QuestionnaireUpdate, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        record = _register(ctx).update_questionnaire(s, system_id, facts=body.facts, public=body.public,
                                                     expected_version=body.expected_version, actor=ctx.actor)
    return out(record)


# --- classification -----------------------------------------------------------------------------------------------


@router.get("/ai-register/systems/{system_id}/classification",
            summary="A preview: the system classified under the law as of a date (?as_of=2025-06-01, "
                    "?profile=stricter) — nothing is stored")
def preview_classification(system_id: SystemId, ctx: ReaderCtx, as_of: AsOf = None,
                           profile: Profile = None) -> JSONResponse:
    with ctx.read() as s:
        return out(_register(ctx).classify(s, system_id, as_of=as_of, trigger="manual", actor=ctx.actor,
                                           persist=False, stricter=_stricter(profile)))


@router.post("/ai-register/systems/{system_id}/classification", status_code=status.HTTP_201_CREATED,
             summary="Classify the system now and store the result (with its diff against the previous one)")
def classify(system_id: SystemId, ctx: StaffCtx, as_of: AsOf = None, profile: Profile = None) -> JSONResponse:
    with ctx.write() as s:
        view = _register(ctx).classify(s, system_id, as_of=as_of, trigger="manual", actor=ctx.actor, persist=True,
                                       stricter=_stricter(profile))
    return out(view, status.HTTP_201_CREATED)


@router.get("/ai-register/systems/{system_id}/history",
            summary="Every stored classification, newest first, each with its diff against the one before")
def history(system_id: SystemId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return out(_register(ctx).history(s, system_id))


# --- obligations --------------------------------------------------------------------------------------------------


@router.get("/ai-register/obligations", summary="Obligations of your systems (with due dates and citations)")
def list_obligations(
    ctx: ReaderCtx,
    system_id: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Only this system's.")] = None,
    status_: Annotated[ObligationStatus | None, Query(alias="status")] = None,
) -> JSONResponse:
    with ctx.read() as s:
        return out(_register(ctx).obligations(s, system_id=system_id, status=status_))


@router.post("/ai-register/obligations/{obligation_id}/met", summary="Mark an obligation met, with a reference "
                                                                     "to the evidence")
def obligation_met(obligation_id: ObligationId, body: ObligationMet, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        return out(_register(ctx).mark_obligation_met(s, obligation_id, evidence=body.evidence, actor=ctx.actor))


# --- audits and trusted lists (L-AI-TRUSTED) ----------------------------------------------------------------------


@router.post("/ai-register/systems/{system_id}/audits", status_code=status.HTTP_201_CREATED,
             summary="Record an audit of the system (training data, prohibited functionality, result)")
def record_audit(system_id: SystemId, body: AuditIn, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        view = _governance(ctx).record_audit(
            s, system_id, auditor=body.auditor, audited_on=body.audited_on,
            covers_training_data=body.covers_training_data,
            prohibited_functionality_found=body.prohibited_functionality_found, result=body.result,
            summary=body.summary, report_sha256=body.report_sha256, actor=ctx.actor)
    return out(view, status.HTTP_201_CREATED)


@router.get("/ai-register/systems/{system_id}/audits", summary="The system's audits, newest first")
def list_audits(system_id: SystemId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return out(_governance(ctx).audits(s, system_id))


@router.post("/ai-register/systems/{system_id}/trusted-requests", status_code=status.HTTP_201_CREATED,
             summary="Ask the regulator to include a high-risk system in a sector's list of trusted systems")
def request_trusted(system_id: SystemId, body: TrustedRequestIn, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        view = _governance(ctx).request_trusted(s, system_id, sector=body.sector, audit_id=body.audit_id,
                                                actor=ctx.actor)
    return out(view, status.HTTP_201_CREATED)


@router.get("/ai-register/trusted-requests", summary="Your trusted-list requests and their decisions")
def list_trusted_requests(ctx: ReaderCtx,
                          status_: Annotated[TrustedStatus | None, Query(alias="status")] = None) -> JSONResponse:
    with ctx.read() as s:
        return out(_governance(ctx).trusted_requests(s, status=status_))


# --- the regulatory sandbox (L-AI-SANDBOX [plan]) -------------------------------------------------------------------


@router.post("/ai-register/sandbox", status_code=status.HTTP_201_CREATED,
             summary="Apply to the regulatory sandbox for some systems, asking to relax some obligations")
def apply_sandbox(body: SandboxApplicationIn, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        view = _governance(ctx).apply_sandbox(s, title=body.title, description=body.description,
                                              system_ids=body.system_ids,
                                              requested_relaxations=body.requested_relaxations, actor=ctx.actor)
    return out(view, status.HTTP_201_CREATED)


@router.get("/ai-register/sandbox", summary="Your sandbox applications")
def list_sandboxes(ctx: ReaderCtx,
                   status_: Annotated[SandboxStatus | None, Query(alias="status")] = None) -> JSONResponse:
    with ctx.read() as s:
        return out(_governance(ctx).sandboxes(s, status=status_))


@router.get("/ai-register/sandbox/{application_id}", summary="One of your sandbox applications")
def get_sandbox(application_id: ApplicationId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return out(_governance(ctx).sandbox(s, application_id))


@router.post("/ai-register/sandbox/{application_id}/withdraw", summary="Withdraw a sandbox application")
def withdraw_sandbox(application_id: ApplicationId, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        return out(_governance(ctx).withdraw_sandbox(s, application_id, actor=ctx.actor))


# --- the maturity index (L-AI-MATURITY [plan]) ----------------------------------------------------------------------


@router.get("/ai-register/maturity", summary="Your maturity index (0–100) and its breakdown by component")
def maturity(ctx: ReaderCtx, on: Annotated[date | None, Query(description="As of this day (default today).")] = None
             ) -> JSONResponse:
    with ctx.read() as s:
        return out(_governance(ctx).maturity(s, on=on))


@router.post("/ai-register/maturity/snapshot", summary="Compute today's index and keep it for the trend")
def snapshot_maturity(ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        return out(_governance(ctx).snapshot_maturity(s))


@router.get("/ai-register/maturity/trend", summary="The kept daily indexes, oldest first")
def maturity_trend(ctx: ReaderCtx, days: Annotated[int, Query(ge=1, le=3660)] = 365) -> JSONResponse:
    with ctx.read() as s:
        trend = _governance(ctx).maturity_trend(s, days=days)
    return out([{"on": on, "score": score} for on, score in trend])


__all__ = ["router"]
