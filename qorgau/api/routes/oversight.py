"""AI decisions about people over HTTP: the AI systems that propose them, submission, the review queue,
human review, explanations, objections and the evidence that review is meaningful (L-PD-AUTO,
L-AI-DECISION, L-AI-USER). Thin adapters over :mod:`qorgau.oversight.service`.

Who may do what:

* **submitting** a proposed decision and **polling** its status: an operator's API key (or login) holding
  ``admin``, ``dpo`` or ``reviewer`` — the AI service's own key, typically role ``reviewer``. The regulator
  reads but never submits; citizens never reach these routes.
* **reviewing** (open, approve, amend, reject, escalate) and **deciding objections**: a *person* — a login
  session of a user with ``reviewer``, ``dpo`` or ``admin``. An API key is not a person, and the time a
  reviewer spends (page open → action) is evidence only when a person spent it.
* **AI systems** and **decision types**: ``admin`` or ``dpo`` change them; every operator role reads them.
* **reviewer statistics**: ``admin``, ``dpo``, ``regulator``. **Deadline sweep**: ``admin``, ``dpo``.

Subjects travel in request bodies, never in URLs (access logs keep those); responses name a subject by its
vault pseudonym only. Every route works inside the caller's organization: another operator's decision is
"not found".
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model, field_validator

from ...aisystems.models import AUTONOMY_LEVELS, RISK_CLASSES, SYSTEM_STATUSES
from ...core import auth
from ...core.auth import Role
from ...core.errors import InvalidInput, PermissionDenied, QorgauError
from ...oversight.models import DECISION_STATUSES, LEVELS, OBJECTION_CHANNELS, ON_TIMEOUT, OPEN_STATUSES
from ...oversight.service import (DecisionTypeInfo, DecisionView, Explanation, Factor, ObjectionView,
                                  OversightService, ReviewerStats, ReviewView, Submission, SystemView, oversight_for)
from ..deps import Context, requires
from ..schemas import MAX_ID, Strict
from .consent import SubjectIn

router = APIRouter(tags=["oversight"])

DecisionId = Annotated[int, Path(ge=0, le=MAX_ID, description="A decision of your organization.")]
ObjectionId = Annotated[int, Path(ge=0, le=MAX_ID, description="An objection of your organization.")]
SystemCode = Annotated[str, Path(min_length=1, max_length=64, description="An AI system's code (scoring-v2).")]
TypeCode = Annotated[str, Path(min_length=1, max_length=64, description="A decision type's code (credit_limit).")]

RiskClass = Literal["minimal", "medium", "high"]
Autonomy = Literal["low", "medium", "high"]
SystemStatus = Literal["active", "suspended", "retired"]
Level = Literal["reviewer", "senior"]
DecisionStatus = Literal["pending", "escalated", "approved", "amended", "rejected", "timed_out", "refused",
                         "automatic"]
ReviewAction = Literal["approve", "amend", "reject", "escalate"]
ObjectionAction = Literal["uphold", "overturn"]
ObjectionChannel = Literal["portal", "api", "written"]
OnTimeout = Literal["reject", "escalate"]
Lang = Literal["kk", "ru", "en"]
assert set(RiskClass.__args__) == set(RISK_CLASSES)  # type: ignore[attr-defined]
assert set(Autonomy.__args__) == set(AUTONOMY_LEVELS)  # type: ignore[attr-defined]
assert set(SystemStatus.__args__) == set(SYSTEM_STATUSES)  # type: ignore[attr-defined]
assert set(Level.__args__) == set(LEVELS)  # type: ignore[attr-defined]
assert set(DecisionStatus.__args__) == set(DECISION_STATUSES)  # type: ignore[attr-defined]
assert set(ObjectionChannel.__args__) == set(OBJECTION_CHANNELS)  # type: ignore[attr-defined]
assert set(OnTimeout.__args__) == set(ON_TIMEOUT)  # type: ignore[attr-defined]

# Who may call what (see the module docstring).
_REVIEWERS = (Role.ADMIN, Role.DPO, Role.REVIEWER)
OperatorCtx = Annotated[Context, Depends(requires(*_REVIEWERS))]   # submit, poll, record an objection
ReviewerCtx = Annotated[Context, Depends(requires(*_REVIEWERS))]   # …and a person (checked by _person)
ReaderCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REVIEWER, Role.REGULATOR))]
StaffCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO))]
SupervisorCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REGULATOR))]
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_JSON_DEPTH = 20


def _service(ctx: Context) -> OversightService:
    return oversight_for(ctx.platform)


def _person(ctx: Context, session: Any) -> auth.User:
    """The reviewer as a user of this organization: reviews are human acts, an API key cannot make them."""
    if ctx.principal.kind != "user":
        raise PermissionDenied("reviewing needs a reviewer's own login, not an API key: a human must decide "
                               "(L-PD-AUTO)", field="authorization")
    return auth.get_user(session, ctx.principal.id)


def _walk(value: Any, depth: int = 0) -> Iterator[Any]:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, depth + 1)


def _plain_json(value: Any) -> Any:
    """Outcomes and factor values are stored as JSON: no NaN or infinity (1e999 parses to one), bounded depth."""
    for item in _walk(value):
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite")
    return value


# --- bodies --------------------------------------------------------------------------------------------


class FactorIn(Strict):
    """A key factor of the decision (L-AI-DECISION): the subject may learn it. ``weight`` in [-1, 1]."""

    code: str = Field(max_length=64)
    weight: float = Field(allow_inf_nan=False)
    label: str | None = Field(default=None, max_length=300)
    value: Any = None

    @field_validator("value")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return _plain_json(v)


class DecisionIn(Strict):
    """A proposed decision about a person, from an AI system (``system``: its code)."""

    system: str = Field(max_length=64, description="The AI system's code (registered under /ai-systems).")
    idempotency_key: str | None = Field(default=None, max_length=100,
                                        description="Or the Idempotency-Key header: a resubmission never "
                                                    "creates a second decision.")
    subject: SubjectIn
    decision_type: str = Field(max_length=64)
    proposed_outcome: Any = Field(description="Must satisfy the decision type's outcome schema.")
    factors: list[FactorIn] = Field(max_length=50)
    model_version: str = Field(max_length=100)
    confidence: float | None = Field(default=None, allow_inf_nan=False)
    legal_effect: bool | None = Field(default=None, description="Default: the decision type's.")
    input_ref: str | None = Field(default=None, max_length=2000,
                                  description="A link to the input data (no personal data in it).")

    @field_validator("proposed_outcome")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return _plain_json(v)


class ReviewIn(Strict):
    action: ReviewAction
    expected_version: int = Field(ge=1, le=MAX_ID, description="The version you reviewed (409 if it changed).")
    outcome: Any = Field(default=None, description="The amended outcome (action amend).")
    rationale: str | None = Field(default=None, max_length=10_000,
                                  description="Required to amend or reject, and to approve where policy says so.")

    @field_validator("outcome")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return _plain_json(v)


class ObjectionIn(Strict):
    channel: ObjectionChannel = "api"
    text: str | None = Field(default=None, max_length=10_000, description="The subject's words; stored sealed.")


class ObjectionDecisionIn(Strict):
    action: ObjectionAction
    rationale: str = Field(min_length=1, max_length=10_000)
    outcome: Any = Field(default=None, description="The new outcome when an overturn changes it.")

    @field_validator("outcome")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return _plain_json(v)


class SystemIn(Strict):
    code: str = Field(max_length=64)
    name: str = Field(max_length=300)
    risk_class: RiskClass
    autonomy: Autonomy
    webhook_url: str | None = Field(default=None, max_length=2000, description="Where outcomes are POSTed.")
    description: str | None = Field(default=None, max_length=5000)


class SystemPatch(Strict):
    """Only the fields sent change; ``"webhook_url": null`` removes the webhook."""

    name: str | None = Field(default=None, max_length=300)
    risk_class: RiskClass | None = None
    autonomy: Autonomy | None = None
    webhook_url: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=5000)
    status: SystemStatus | None = None


class DecisionTypeIn(Strict):
    """Your policy for one decision type; only the fields sent change (a new code needs names, schema and
    purpose)."""

    names: dict[str, str] | None = Field(default=None, description="kk, ru and en.")
    outcome_schema: dict[str, Any] | None = None
    legal_effect: bool | None = None
    purpose: str | None = Field(default=None, max_length=64, description="The consent purpose checked first.")
    review: Literal["always", "by_risk"] | None = None
    four_eyes: bool | None = None
    rationale_on_approve: bool | None = None
    review_hours: int | None = Field(default=None, ge=1, le=24 * 365)
    on_timeout: OnTimeout | None = None
    senior_hours: int | None = Field(default=None, ge=1, le=24 * 365)
    active: bool | None = Field(default=None, description="false: switch the type off for your organization")

    @field_validator("outcome_schema")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return _plain_json(v)


# --- responses ---------------------------------------------------------------------------------------------
#
# A response is the service's ``to_dict()`` — the very shape the AI system's webhook carries — sent as is.
# The schemas below only *document* it, and are derived from the service's dataclasses (never copied by hand):
# the same fields and types, with the renames and omissions ``to_dict()`` makes.


def _schema(cls: type, *, rename: dict[str, str] | None = None, omit: frozenset[str] = frozenset(),
            name: str | None = None) -> type[BaseModel]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in omit:
            fields[(rename or {}).get(f.name, f.name)] = (hints[f.name], ...)
    return create_model(name or cls.__name__ + "Out", **fields)


DecisionOut = _schema(DecisionView, rename={"system_code": "system"})
ReviewOut = _schema(ReviewView)
ObjectionOut = _schema(ObjectionView, omit=frozenset({"assigned_user_id"}))
ReviewerStatsOut = _schema(ReviewerStats)
SystemOut = _schema(SystemView)
ExplanationOut = _schema(Explanation)
DecisionTypeOut = _schema(DecisionTypeInfo, omit=frozenset({"active"}))


class DecisionPageOut(BaseModel):
    items: list[DecisionOut]  # type: ignore[valid-type]
    next_cursor: str | None = Field(description="Pass it as ?cursor= for the next page (None: the last page).")
    total: int | None = Field(description="Every match (with ?total=true).")


class SystemCreatedOut(BaseModel):
    system: SystemOut  # type: ignore[valid-type]
    webhook_secret: str | None = Field(description="Shown once: the HMAC key of its webhooks.")


class SecretOut(BaseModel):
    secret: str = Field(description="Shown once.")


def _out(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """``to_dict()`` of a service view (or a list of them, or a plain mapping) as the JSON response."""
    if isinstance(value, list):
        content: Any = [v.to_dict() for v in value]
    elif hasattr(value, "to_dict"):
        content = value.to_dict()
    else:
        content = value
    return JSONResponse(content, status_code=status_code, headers=headers)


def _dotted(exc: QorgauError) -> QorgauError:
    """The API names list items the way request validation does (``factors.0.weight``, not ``factors[0]…``)."""
    if exc.field and "[" in exc.field:
        exc.field = re.sub(r"\[(\d+)\]", r".\1", exc.field)
    return exc


# --- AI systems --------------------------------------------------------------------------------------------


@router.post("/ai-systems", response_model=SystemCreatedOut, status_code=status.HTTP_201_CREATED,
             summary="Register an AI system (declared risk class and autonomy; its webhook secret is shown once)")
def register_system(body: SystemIn, ctx: StaffCtx) -> JSONResponse:
    with ctx.write() as s:
        view, secret = _service(ctx).register_system(
            s, code=body.code, name=body.name, risk_class=body.risk_class, autonomy=body.autonomy,
            webhook_url=body.webhook_url, description=body.description, actor=ctx.actor)
    return _out({"system": view.to_dict(), "webhook_secret": secret}, status.HTTP_201_CREATED)


@router.get("/ai-systems", response_model=list[SystemOut], summary="Your AI systems")  # type: ignore[valid-type]
def list_systems(ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).list_systems(s))


@router.get("/ai-systems/{system_code}", response_model=SystemOut, summary="One AI system")
def get_system(system_code: SystemCode, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).get_system(s, system_code))


@router.patch("/ai-systems/{system_code}", response_model=SystemOut,
              summary="Change an AI system's name, declared class, autonomy, webhook or status")
def update_system(system_code: SystemCode, body: SystemPatch, ctx: StaffCtx) -> JSONResponse:
    changes: dict[str, Any] = {k: getattr(body, k) for k in ("name", "risk_class", "autonomy", "status")
                               if getattr(body, k) is not None}
    for optional in ("webhook_url", "description"):  # null removes these
        if optional in body.model_fields_set:
            changes[optional] = getattr(body, optional)
    with ctx.write() as s:
        return _out(_service(ctx).update_system(s, system_code, actor=ctx.actor, **changes))


@router.post("/ai-systems/{system_code}/rotate-secret", response_model=SecretOut,
             summary="A new webhook signing secret (shown once)")
def rotate_system_secret(system_code: SystemCode, ctx: StaffCtx) -> SecretOut:
    with ctx.write() as s:
        return SecretOut(secret=_service(ctx).rotate_system_secret(s, system_code, actor=ctx.actor))


# --- decision types ------------------------------------------------------------------------------------------


@router.get("/decision-types", response_model=list[DecisionTypeOut],  # type: ignore[valid-type]
            summary="Decision types: the platform's defaults merged with your policies")
def list_decision_types(ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).decision_types(s))


@router.get("/decision-types/{type_code}", response_model=DecisionTypeOut, summary="One decision type")
def get_decision_type(type_code: TypeCode, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).decision_type(s, type_code))


@router.put("/decision-types/{type_code}", response_model=DecisionTypeOut,
            summary="Set your policy for a decision type (review, four-eyes, deadlines, schema), or add a type")
def set_decision_type(type_code: TypeCode, body: DecisionTypeIn, ctx: StaffCtx) -> JSONResponse:
    fields = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with ctx.write() as s:
        return _out(_service(ctx).set_decision_type(s, type_code, actor=ctx.actor, **fields))


# --- decisions -------------------------------------------------------------------------------------------------


@router.post("/decisions", response_model=DecisionOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"description": "An idempotent replay: the decision made for this key before.",
                              "model": DecisionOut}},
             summary="Submit a proposed decision about a person (201; 200 when the idempotency key was seen)")
def submit(body: DecisionIn, ctx: OperatorCtx,
           idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, max_length=100)] = None
           ) -> JSONResponse:
    """The path follows policy: held for a human (legal effect, high risk, medium/high autonomy, or the
    type says always), refused without consent or legal basis (L-PD-AUTO), or automatic. Poll
    ``GET /decisions/{id}`` or wait for the webhook to learn the outcome."""
    key = _idempotency_key(idempotency_key, body.idempotency_key)
    submission = Submission(
        system=body.system, idempotency_key=key, subject=body.subject.ref(), decision_type=body.decision_type,
        proposed_outcome=body.proposed_outcome,
        factors=[Factor(code=f.code, weight=f.weight, label=f.label, value=f.value) for f in body.factors],
        model_version=body.model_version, confidence=body.confidence, legal_effect=body.legal_effect,
        input_ref=body.input_ref, subject_domain=body.subject.domain)
    try:
        with ctx.write() as s:
            result = _service(ctx).submit(s, submission, actor=ctx.actor)
    except QorgauError as exc:
        raise _dotted(exc) from None
    return _out(result.decision, status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
                {"Location": f"/api/v1/decisions/{result.decision.id}"})


def _idempotency_key(header: str | None, body: str | None) -> str:
    header = header.strip() if header is not None else None
    if header and body and header != body:
        raise InvalidInput("the Idempotency-Key header and the body's idempotency_key differ",
                           field="idempotency_key")
    key = header or body
    if not key:
        raise InvalidInput("an idempotency key is required (Idempotency-Key header or idempotency_key field)",
                           field="idempotency_key")
    return key


@router.get("/decisions", response_model=DecisionPageOut,
            summary="The review queue (earliest deadline first), or every decision (newest first)")
def list_decisions(
    ctx: ReaderCtx,
    view: Annotated[Literal["queue", "all"], Query(description="queue: open decisions; all: every decision")] = "queue",
    level: Annotated[Level | None, Query(description="queue: reviewer or senior")] = None,
    status_: Annotated[DecisionStatus | None, Query(alias="status", description="Only this status (queue: "
                                                                                 "pending or escalated)")] = None,
    decision_type: Annotated[str | None, Query(max_length=64)] = None,
    system: Annotated[str | None, Query(max_length=64, description="An AI system's code")] = None,
    overdue: Annotated[bool, Query(description="queue: past the deadline only")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    total: Annotated[bool, Query(description="Also count every match")] = False,
) -> JSONResponse:
    service = _service(ctx)
    with ctx.read() as s:
        if view == "queue":
            if status_ is not None and status_ not in OPEN_STATUSES:
                raise InvalidInput("the queue holds pending and escalated decisions; use view=all for others",
                                   field="status")
            page = service.queue(s, level=level, decision_type=decision_type, system=system, overdue_only=overdue,
                                 statuses=(status_,) if status_ else OPEN_STATUSES, limit=limit, cursor=cursor,
                                 with_total=total)
        else:
            page = service.list_decisions(s, status=status_, decision_type=decision_type, system=system,
                                          limit=limit, cursor=cursor, with_total=total)
    return _out(page)


@router.get("/decisions/{decision_id}", response_model=DecisionOut,
            summary="One decision: its status, outcome and whether it is effective (poll this)")
def get_decision(decision_id: DecisionId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).get(s, decision_id))


@router.post("/decisions/{decision_id}/open", response_model=DecisionOut,
             summary="A reviewer opens a decision (starts the clock of the time spent on it)")
def open_decision(decision_id: DecisionId, ctx: ReviewerCtx) -> JSONResponse:
    with ctx.write() as s:
        return _out(_service(ctx).open(s, decision_id, user=_person(ctx, s)))


@router.post("/decisions/{decision_id}/review", response_model=DecisionOut,
             responses={409: {"description": "Someone acted on the decision first, or it is already decided: "
                                             "reload it."}},
             summary="Approve, amend, reject or escalate a decision (a reviewer's login)")
def review(decision_id: DecisionId, body: ReviewIn, ctx: ReviewerCtx) -> JSONResponse:
    with ctx.write() as s:
        return _out(_service(ctx).review(s, decision_id, user=_person(ctx, s), action=body.action,
                                         expected_version=body.expected_version, outcome=body.outcome,
                                         rationale=body.rationale))


@router.get("/decisions/{decision_id}/reviews", response_model=list[ReviewOut],  # type: ignore[valid-type]
            summary="Every human action on a decision, with rationale and time spent")
def list_reviews(decision_id: DecisionId, ctx: ReaderCtx) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).reviews(s, decision_id))


@router.get("/decisions/{decision_id}/explanation", response_model=ExplanationOut,
            summary="The decision and its key factors in plain kk, ru or en (L-AI-DECISION, L-AI-USER)")
def explanation(decision_id: DecisionId, ctx: ReaderCtx, lang: Annotated[Lang, Query()] = "kk") -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).explanation(s, decision_id, lang))


@router.post("/decisions/{decision_id}/objections", response_model=ObjectionOut,
             status_code=status.HTTP_201_CREATED,
             summary="Record the subject's objection (decided by another reviewer within 3 working days)")
def file_objection(decision_id: DecisionId, body: ObjectionIn, ctx: OperatorCtx) -> JSONResponse:
    with ctx.write() as s:
        view = _service(ctx).object(s, decision_id, channel=body.channel, filed_by=ctx.actor, text=body.text)
    return _out(view, status.HTTP_201_CREATED)


# --- objections ---------------------------------------------------------------------------------------------------


@router.get("/objections", response_model=list[ObjectionOut],  # type: ignore[valid-type]
            summary="Objections (open: earliest due first; overdue: past 3 working days), without their texts")
def list_objections(ctx: ReaderCtx, open: bool = False, overdue: bool = False,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).objections(s, open_only=open, overdue_only=overdue, limit=limit))


@router.get("/objections/{objection_id}", response_model=ObjectionOut,
            summary="One objection (text=true: with the subject's words, for reviewers)")
def get_objection(objection_id: ObjectionId, ctx: ReaderCtx, text: bool = False) -> JSONResponse:
    if text:  # the subject's own words (may hold personal data): for those who decide objections
        ctx.principal.require(*_REVIEWERS)
    if not text:
        with ctx.read() as s:
            return _out(_service(ctx).get_objection(s, objection_id))
    with ctx.write() as s:  # reading the subject's words is audited (who, which objection; never the text)
        return _out(_service(ctx).get_objection(s, objection_id, include_text=True, actor=ctx.actor))


@router.post("/objections/{objection_id}/decision", response_model=ObjectionOut,
             summary="Decide an objection: uphold the decision or overturn it (a reviewer who took no part)")
def decide_objection(objection_id: ObjectionId, body: ObjectionDecisionIn, ctx: ReviewerCtx) -> JSONResponse:
    with ctx.write() as s:
        return _out(_service(ctx).decide_objection(s, objection_id, user=_person(ctx, s), action=body.action,
                                                   rationale=body.rationale, outcome=body.outcome))


# --- evidence and deadlines ------------------------------------------------------------------------------------------


@router.get("/oversight/reviewer-stats", response_model=list[ReviewerStatsOut],  # type: ignore[valid-type]
            summary="Per reviewer and decision type: volume, time spent, approval and override rates, "
                    "rubber-stamp flag")
def reviewer_stats(ctx: SupervisorCtx, days: Annotated[int, Query(ge=1, le=3660)] = 90) -> JSONResponse:
    with ctx.read() as s:
        return _out(_service(ctx).reviewer_stats(s, days=days))


@router.post("/oversight/sweep", response_model=dict[str, int],
             summary="Apply review deadlines now: escalate or reject overdue decisions (never approve)")
def sweep(ctx: StaffCtx) -> dict[str, int]:
    with ctx.write() as s:
        return _service(ctx).sweep_deadlines(s)


__all__ = ["router"]
