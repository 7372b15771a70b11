"""The oversight pages: the reviewers' queue (``/decisions``), a decision (``/decisions/{id}``), an objection
(``/decisions/objections/{id}``), the evidence that review is meaningful (``/decisions/reviewers``) and the
citizen's "Decisions about me" in the portal (``/me/decisions/…``).

Thin over :class:`qorgau.oversight.service.OversightService` (L-PD-AUTO, L-AI-DECISION, L-AI-USER):

* Reviewers, data protection officers and administrators work the queue; DPOs and administrators are the
  senior reviewers and also see the escalated queue. Opening a decision page records the opening (the start
  of "time spent"); the review form carries ``expected_version``, so of two reviewers acting at once exactly
  one wins and the other sees who decided, not an error page.
* The subject is shown as a pseudonym. Re-identification goes through the vault's audited
  :meth:`~qorgau.vault.service.Vault.detokenize` with a stated purpose (no purpose, no identity); only the
  vault's roles may do it.
* An objection goes to a different reviewer (L-PD-AUTO): whoever acted on the decision is told so and gets no
  form.
* A citizen sees decisions about them at every operator (their vault subjects, found as the consent portal
  finds them), with the key factors in plain language (:meth:`OversightService.explanation`), and may object
  — one confirmation step, then the 3-working-day due date and later the outcome.

Pages show ids, codes, pseudonyms and outcomes; identifiers appear only on the page that re-identified them
(``no-store``), never in a URL, a log or an audit entry.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from ..api.deps import Context
from ..api.schemas import MAX_ID
from ..consent.citizens import citizens_for
from ..core import auth
from ..core.auth import Principal, Role
from ..core.calendar import ALMATY
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..core.platform import Platform
from ..oversight.models import (
    ACTION_AMEND,
    ACTION_APPROVE,
    ACTION_ESCALATE,
    ACTION_OVERTURN,
    ACTION_REJECT,
    ACTION_UPHOLD,
    LEVEL_REVIEWER,
    LEVEL_SENIOR,
    OPEN_STATUSES,
)
from ..oversight.policy import LANGS
from ..oversight.policy import outcome_text as policy_outcome_text
from ..oversight.service import oversight_for
from ..vault.service import REIDENTIFY_ROLES, SubjectErased, UnknownPseudonym, vault_for
from .discovery import TYPE_LABELS
from .modules import BY_SLUG, N_
from .portal import LABELS as PORTAL_LABELS
from .portal import _citizen, _guard
from .routes import choose_language, csrf_valid, error_page, make_gettext, redirect, render, require_principal

router = APIRouter(include_in_schema=False)

REVIEWERS = (Role.ADMIN, Role.DPO, Role.REVIEWER)
SENIORS = (Role.ADMIN, Role.DPO)  # the senior reviewers (escalations), as the service defines them
STATS_READERS = (Role.ADMIN, Role.DPO, Role.REVIEWER, Role.REGULATOR)
PAGE_SIZE = 25
OBJECTIONS_SHOWN = 100
MAX_RATIONALE = 4000
MAX_OUTCOME_FIELD = 2000
MAX_OBJECTION_TEXT = 4000
MAX_CURSOR = 200
STATS_DAYS = (30, 90, 365)
FACTOR_BAR = 150  # px of a factor with weight ±1 (the SVG is 2 × this wide around the zero line)

DecisionId = Annotated[int, Path(ge=1, le=MAX_ID)]
ObjectionId = Annotated[int, Path(ge=1, le=MAX_ID)]
OrgId = Annotated[int, Path(ge=1, le=MAX_ID)]

# Purposes a reviewer may state to re-identify a subject: codes (the audit log keeps them), never free text.
REIDENTIFY_PURPOSES = {
    "decision-review": N_("To review this decision (check the subject's data)"),
    "objection-review": N_("To decide the subject's objection"),
    "subject-request": N_("The subject asked us to contact them"),
    "legal-obligation": N_("A legal obligation or a request of an authority"),
}

STATUS_LABELS = {
    "pending": N_("Waiting for review"), "escalated": N_("Escalated to a senior reviewer"),
    "approved": N_("Approved"), "amended": N_("Amended by a reviewer"), "rejected": N_("Rejected by a reviewer"),
    "timed_out": N_("Not reviewed in time: not applied"), "refused": N_("Refused: no consent or legal basis"),
    "automatic": N_("Automatic (no review required)"),
}
LEVEL_LABELS = {LEVEL_REVIEWER: N_("Reviewer"), LEVEL_SENIOR: N_("Senior reviewer")}
ACTION_LABELS = {
    ACTION_APPROVE: N_("Approve"), ACTION_AMEND: N_("Amend"), ACTION_REJECT: N_("Reject"),
    ACTION_ESCALATE: N_("Escalate"), ACTION_UPHOLD: N_("Uphold the decision"),
    ACTION_OVERTURN: N_("Overturn the decision"),
}
ACTION_KEYS = {ACTION_APPROVE: "a", ACTION_AMEND: "m", ACTION_REJECT: "r", ACTION_ESCALATE: "e"}
RISK_LABELS = {"minimal": N_("Minimal risk"), "medium": N_("Medium risk"), "high": N_("High risk")}
AUTONOMY_LABELS = {"low": N_("Low autonomy"), "medium": N_("Medium autonomy"), "high": N_("High autonomy")}
PATH_LABELS = {"review": N_("Human review"), "automatic": N_("Automatic"), "refused": N_("Refused")}
OBJECTION_STATUS_LABELS = {"open": N_("Open"), "upheld": N_("Upheld: the decision stands"),
                           "overturned": N_("Overturned: the decision was changed")}
CHANNEL_LABELS = {"portal": N_("Citizen portal"), "api": N_("API"), "written": N_("In writing")}

MESSAGES = {
    "no_access": N_("The review queue is shown to reviewers, data protection officers and administrators."),
    "no_stats": N_("Review statistics are shown to reviewers, data protection officers, administrators and "
                   "the regulator."),
    "conflict": N_("Another reviewer has already acted on this decision: it is now “%(state)s” (%(actor)s, "
                   "%(at)s). Your action was not recorded."),
    "conflict_undecided": N_("Another reviewer has already acted on this decision; it changed while you were "
                             "reading it. Check it again before you act."),
    "denied": N_("You may not take this action on this decision."),
    "four_eyes": N_("This decision needs two different reviewers: you have already approved it once."),
    "senior": N_("This decision was escalated: only a senior reviewer (a data protection officer or an "
                 "administrator) may decide it."),
    "rationale": N_("Write a rationale: it is required for this action."),
    "outcome": N_("Enter an outcome the decision type allows."),
    "action": N_("Choose an action."),
    "reviewed": N_("Your review of decision #%(id)s was recorded."),
    "reidentify_purpose": N_("Choose why you re-identify this subject: it is written to the audit log."),
    "reidentify_denied": N_("Only data protection officers and administrators may re-identify a subject."),
    "reidentify_erased": N_("This subject was erased: their identifiers no longer exist."),
    "reidentify_unknown": N_("The vault has no identity for this pseudonym."),
    "reidentify_refused": N_("Re-identification was refused by a check (for example, a withdrawn consent)."),
    "own_review": N_("You acted on this decision, so its objection must be decided by a different reviewer "
                     "(PD law, Art. 19-1)."),
    "assigned": N_("This objection is assigned to another reviewer; a senior reviewer may take it over."),
    "objection_closed": N_("This objection has already been decided."),
    "objection_decided": N_("The objection was decided."),
    "objected": N_("Your objection was sent. A person at the operator must decide it by %(date)s."),
    "objection_open": N_("You have already objected to this decision; the operator is deciding it."),
}
GENERIC = N_("Something in the form is not right. Check it and try again.")


def _platform(request: Request) -> Platform:
    return request.app.state.platform


# --- formatting helpers (also used by the templates) -----------------------------------------------


def outcome_text(value: Any, schema: dict[str, Any] | None = None, lang: str = "en") -> str:
    """An outcome as a reviewer reads it: the type's words when its schema is known (enum labels in ``lang``,
    numbers with their unit), ``—`` for none, JSON for anything else."""
    if value is None:
        return "—"
    if schema:
        return policy_outcome_text(value, schema, lang if lang in LANGS else "en")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def parse_outcome(raw: str, schema: dict[str, Any] | None) -> Any:
    """The outcome field of the amend form, read as the decision type's schema says (the service validates)."""
    raw = raw.strip()
    kind = (schema or {}).get("type")
    if not raw:
        raise InvalidInput("an outcome is required", field="outcome")
    if kind in ("number", "integer"):
        try:
            number = float(raw.replace(" ", "").replace(",", "."))
        except ValueError:
            raise InvalidInput("the outcome must be a number", field="outcome") from None
        if not math.isfinite(number):
            raise InvalidInput("the outcome must be a number", field="outcome")
        return int(number) if number.is_integer() else number
    if kind in ("boolean", "bool"):
        if raw.lower() in ("true", "yes", "1"):
            return True
        if raw.lower() in ("false", "no", "0"):
            return False
        raise InvalidInput("the outcome must be yes or no", field="outcome")
    if kind in ("enum", "string", None) and not raw.startswith(("{", "[")):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidInput("the outcome must be valid JSON", field="outcome") from None


def factor_bars(factors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each factor with its bar: ``x`` and ``width`` in px of an SVG with the zero line at ``FACTOR_BAR``."""
    out = []
    for f in factors:
        weight = float(f.get("weight") or 0.0)
        width = max(1, round(abs(weight) * FACTOR_BAR)) if weight else 0
        out.append({**f, "weight": weight, "width": width,
                    "x": FACTOR_BAR - width if weight < 0 else FACTOR_BAR,
                    "direction": "against" if weight < 0 else "for"})
    return sorted(out, key=lambda f: -abs(f["weight"]))


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ALMATY).strftime("%Y-%m-%d %H:%M")


def _labels() -> dict[str, Any]:
    return {"status": STATUS_LABELS, "level": LEVEL_LABELS, "action": ACTION_LABELS, "risk": RISK_LABELS,
            "autonomy": AUTONOMY_LABELS, "path": PATH_LABELS, "objection": OBJECTION_STATUS_LABELS,
            "channel": CHANNEL_LABELS, "purpose": REIDENTIFY_PURPOSES, "types": TYPE_LABELS}


def _objection_days(request: Request) -> int:
    """L-PD-AUTO's deadline for deciding an objection today, as the rule packs give it."""
    from ..oversight.service import oversight_for

    return oversight_for(_platform(request)).objection_working_days(datetime.now(timezone.utc))


def _page(request: Request, principal: Principal, template: str, *, status: int = 200, **values: Any) -> Response:
    return render(request, template, principal=principal, status=status, active="decisions",
                  module=BY_SLUG["decisions"], labels=_labels(), local=_local, outcome_text=outcome_text,
                  action_keys=ACTION_KEYS, bar=FACTOR_BAR, objection_days=_objection_days(request), **values)


def _types(service: Any, session: Any) -> dict[str, Any]:
    """The operator's decision types by code (platform defaults merged with its own policies)."""
    return {t.code: t for t in service.decision_types(session)}


def type_name(types: dict[str, Any], code: str, lang: str) -> str:
    info = types.get(code)
    if info is None:
        return code
    return info.names.get(lang) or info.names.get("en") or code


def _user(session: Any, principal: Principal) -> auth.User:
    return auth.get_user(session, principal.id)


def _reviewer(request: Request) -> tuple[Principal, Response | None]:
    """The signed-in reviewer, or the response that says why the caller may not review."""
    principal = require_principal(request)
    if not principal.has_any(*REVIEWERS):
        return principal, error_page(request, 403, principal=principal)
    if principal.kind != "user":
        return principal, error_page(request, 403, principal=principal)
    return principal, None


# --- the queue ------------------------------------------------------------------------------------


def _clean(value: str, allowed: set[str] | None = None) -> str | None:
    value = value.strip()
    if not value:
        return None
    if allowed is not None and value not in allowed:
        return None
    return value


@router.get("/decisions")
def queue_page(request: Request,
               type: Annotated[str, Query(max_length=64)] = "",
               system: Annotated[str, Query(max_length=64)] = "",
               level: Annotated[str, Query(max_length=16)] = "",
               overdue: Annotated[str, Query(max_length=2)] = "",
               cursor: Annotated[str, Query(max_length=MAX_CURSOR)] = "",
               done: Annotated[str, Query(max_length=20)] = "") -> Response:
    principal = require_principal(request)
    can_review = principal.has_any(*REVIEWERS)
    can_stats = principal.has_any(*STATS_READERS)
    if not can_review:
        return _page(request, principal, "decisions.html", can_review=False, can_stats=can_stats,
                     no_access=MESSAGES["no_access"])
    platform = _platform(request)
    service = oversight_for(platform)
    lang = choose_language(request, principal)
    senior = principal.has_any(*SENIORS)
    levels = [LEVEL_REVIEWER, LEVEL_SENIOR] if senior else [LEVEL_REVIEWER]
    chosen_level = _clean(level, set(levels))
    if not senior:
        chosen_level = LEVEL_REVIEWER  # the escalated queue is for senior reviewers only
    filters = {"type": _clean(type), "system": _clean(system), "level": chosen_level if senior else None,
               "overdue": overdue == "1"}
    notice = None
    if done.isdigit():
        notice = (MESSAGES["reviewed"], {"id": int(done)})
    bad_cursor = False
    with Context(platform, principal).read() as session:
        types = _types(service, session)
        systems = service.list_systems(session)
        try:
            page = service.queue(session, level=chosen_level, decision_type=filters["type"],
                                 system=filters["system"], overdue_only=filters["overdue"], limit=PAGE_SIZE,
                                 cursor=cursor or None, with_total=True)
        except (InvalidInput, NotFound) as exc:
            if exc.field not in ("cursor", "decision_type", "system", "level"):
                raise
            bad_cursor = True
            page = service.queue(session, level=chosen_level, limit=PAGE_SIZE, with_total=True)
            filters = {"type": None, "system": None, "level": filters["level"], "overdue": False}
        counts = {
            "reviewer": service.queue(session, level=LEVEL_REVIEWER, limit=1, with_total=True).total or 0,
            "overdue": service.queue(session, level=None if senior else LEVEL_REVIEWER, overdue_only=True, limit=1,
                                     with_total=True).total or 0,
            "senior": (service.queue(session, level=LEVEL_SENIOR, limit=1, with_total=True).total or 0)
            if senior else None,
        }
        objections = service.objections(session, open_only=True, limit=OBJECTIONS_SHOWN)
    counts["objections"] = len(objections)
    counts["objections_overdue"] = sum(o.overdue for o in objections)
    query = {k: v for k, v in (("type", filters["type"]), ("system", filters["system"]),
                               ("level", filters["level"]), ("overdue", "1" if filters["overdue"] else None)) if v}
    return _page(request, principal, "decisions.html", can_review=True, can_stats=can_stats, senior=senior,
                 levels=levels, filters=filters, query=query, page=page, first_page=not cursor or bad_cursor,
                 types=types, type_name=lambda code: type_name(types, code, lang), systems=systems, counts=counts,
                 objections=objections, notice=notice, bad_cursor=bad_cursor)


# --- one decision ---------------------------------------------------------------------------------


@dataclass
class DecisionPage:
    """What the decision page shows besides the decision itself."""

    decision: Any
    info: Any
    reviews: list[Any]
    previous: list[Any]
    objections: list[Any]
    acted: bool
    types: dict[str, Any]


def _load(platform: Platform, principal: Principal, decision_id: int, *, record_opening: bool) -> DecisionPage:
    service = oversight_for(platform)
    ctx = Context(platform, principal)
    if record_opening:
        with ctx.write() as session:
            decision = service.open(session, decision_id, user=_user(session, principal))
    with ctx.read() as session:
        if not record_opening:
            decision = service.get(session, decision_id)
        try:
            info = service.decision_type(session, decision.decision_type)
        except NotFound:
            info = None
        reviews = service.reviews(session, decision_id)
        previous = [d for d in service.subject_decisions(session, service.subject_id_of(session, decision_id))
                    if d.id != decision_id]
        objections = service.objections(session, decision_id=decision_id, limit=OBJECTIONS_SHOWN)
        types = _types(service, session)
    acted = any(r.actor == principal.actor for r in reviews)
    return DecisionPage(decision, info, reviews, previous, objections, acted, types)


def _decision_page(request: Request, principal: Principal, decision_id: int, *, record_opening: bool = False,
                   status: int = 200, **values: Any) -> Response:
    platform = _platform(request)
    lang = choose_language(request, principal)
    data = _load(platform, principal, decision_id, record_opening=record_opening)
    d = data.decision
    values.setdefault("form", {})
    values.setdefault("error", None)
    values.setdefault("identity", None)
    return _page(request, principal, "decisions_detail.html", status=status, d=d, info=data.info,
                 schema=(data.info.outcome_schema if data.info else None), reviews=data.reviews,
                 previous=data.previous, objections=data.objections, acted=data.acted,
                 type_name=lambda code: type_name(data.types, code, lang), bars=factor_bars(list(d.factors)),
                 can_act=d.status in OPEN_STATUSES and (d.level != LEVEL_SENIOR or principal.has_any(*SENIORS)),
                 senior=principal.has_any(*SENIORS), can_reidentify=principal.has_any(*REIDENTIFY_ROLES),
                 **values)


@router.get("/decisions/reviewers")
def reviewers_page(request: Request, days: Annotated[str, Query(max_length=4)] = "90") -> Response:
    principal = require_principal(request)
    if not principal.has_any(*STATS_READERS):
        return _page(request, principal, "decisions_reviewers.html", status=403, stats=None,
                     no_access=MESSAGES["no_stats"])
    window = int(days) if days.isdigit() and int(days) in STATS_DAYS else 90
    platform = _platform(request)
    service = oversight_for(platform)
    lang = choose_language(request, principal)
    with Context(platform, principal).read() as session:
        stats = service.reviewer_stats(session, days=window)
        types = _types(service, session)
        names = {}
        for s in stats:
            if s.user_id is not None and s.user_id not in names:
                try:
                    names[s.user_id] = auth.get_user(session, s.user_id).username
                except NotFound:
                    names[s.user_id] = s.actor
    return _page(request, principal, "decisions_reviewers.html", stats=stats, names=names, window=window,
                 windows=STATS_DAYS, type_name=lambda code: type_name(types, code, lang),
                 flagged=sum(s.rubber_stamp for s in stats))


@router.get("/decisions/{decision_id}")
def decision_page(request: Request, decision_id: DecisionId) -> Response:
    principal, refused = _reviewer(request)
    if refused is not None:
        return refused
    try:
        return _decision_page(request, principal, decision_id, record_opening=True)
    except NotFound:
        return error_page(request, 404, principal=principal)


def _permission_message(exc: PermissionDenied) -> str:
    text = exc.message.lower()
    if "four-eyes" in text or "second approval" in text:
        return MESSAGES["four_eyes"]
    if "senior" in text:
        return MESSAGES["senior"]
    return MESSAGES["denied"]


@router.post("/decisions/{decision_id}/review")
def review(request: Request, decision_id: DecisionId,
           action: Annotated[str, Form(max_length=16)] = "",
           rationale: Annotated[str, Form(max_length=MAX_RATIONALE)] = "",
           outcome: Annotated[str, Form(max_length=MAX_OUTCOME_FIELD)] = "",
           expected_version: Annotated[str, Form(max_length=12)] = "",
           csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _reviewer(request)
    if refused is not None:
        return refused
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    platform = _platform(request)
    service = oversight_for(platform)
    form = {"action": action, "rationale": rationale, "outcome": outcome}

    def again(status: int, message: str, field: str | None = None, **values: Any) -> Response:
        try:
            return _decision_page(request, principal, decision_id, status=status, form=form,
                                  error={"message": message, "values": values, "field": field})
        except NotFound:
            return error_page(request, 404, principal=principal)

    if action not in ACTION_KEYS:
        return again(422, MESSAGES["action"], "action")
    if not expected_version.isdigit():
        return error_page(request, 400, principal=principal)
    try:
        with Context(platform, principal).write() as session:
            amended = None
            if action == ACTION_AMEND:
                current = service.get(session, decision_id)
                schema = service.decision_type(session, current.decision_type).outcome_schema
                amended = parse_outcome(outcome, schema)
            service.review(session, decision_id, user=_user(session, principal), action=action,
                           expected_version=int(expected_version), outcome=amended,
                           rationale=rationale.strip() or None)
    except NotFound as exc:
        if exc.field in (None, "decision_id", "id"):
            return error_page(request, 404, principal=principal)
        return again(422, GENERIC, exc.field)
    except Conflict:
        with Context(platform, principal).read() as session:
            now = service.get(session, decision_id)
        if now.status not in OPEN_STATUSES:
            label = make_gettext(choose_language(request, principal))(STATUS_LABELS.get(now.status, now.status))
            return again(409, MESSAGES["conflict"], "version", state=label, actor=now.decided_by or "—",
                         at=_local(now.decided_at))
        return again(409, MESSAGES["conflict_undecided"], "version")
    except PermissionDenied as exc:
        return again(403, _permission_message(exc), "action")
    except InvalidInput as exc:
        if exc.field and "rationale" in exc.field:
            return again(422, MESSAGES["rationale"], "rationale")
        if exc.field and "outcome" in exc.field:
            return again(422, MESSAGES["outcome"], "outcome")
        return again(422, GENERIC, exc.field)
    return redirect(f"/decisions?done={decision_id}")


@router.post("/decisions/{decision_id}/reidentify")
def reidentify(request: Request, decision_id: DecisionId,
               purpose: Annotated[str, Form(max_length=64)] = "",
               csrf_token: Annotated[str, Form()] = "") -> Response:
    """Show the subject's identifiers once, for a stated purpose (the vault audits it: L-PD-SPLIT)."""
    principal, refused = _reviewer(request)
    if refused is not None:
        return refused
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    platform = _platform(request)

    def again(status: int, key: str) -> Response:
        try:
            return _decision_page(request, principal, decision_id, status=status,
                                  reidentify_error=MESSAGES[key], chosen_purpose=purpose)
        except NotFound:
            return error_page(request, 404, principal=principal)

    if not principal.has_any(*REIDENTIFY_ROLES):
        return again(403, "reidentify_denied")
    if purpose not in REIDENTIFY_PURPOSES:
        return again(422, "reidentify_purpose")
    service = oversight_for(platform)
    try:
        with Context(platform, principal).write() as session:
            decision = service.get(session, decision_id)
            if not decision.subject_pseudonym:
                return again(404, "reidentify_unknown")
            identity = vault_for(platform).detokenize(session, decision.subject_pseudonym, purpose=purpose,
                                                      principal=principal)
    except NotFound as exc:
        if isinstance(exc, UnknownPseudonym):
            return again(404, "reidentify_unknown")
        return error_page(request, 404, principal=principal)
    except SubjectErased:
        return again(410, "reidentify_erased")
    except PermissionDenied:
        return again(403, "reidentify_refused")
    shown = [{"type": t, "label": TYPE_LABELS.get(t, t), "values": v} for t, v in sorted(identity.identifiers.items())]
    return _decision_page(request, principal, decision_id, identity=shown, chosen_purpose=purpose)


# --- objections -----------------------------------------------------------------------------------


def _objection_page(request: Request, principal: Principal, objection_id: int, *, status: int = 200,
                    **values: Any) -> Response:
    platform = _platform(request)
    service = oversight_for(platform)
    lang = choose_language(request, principal)
    ctx = Context(platform, principal)
    with ctx.write() as session:  # reading the subject's words is audited
        objection = service.get_objection(session, objection_id, include_text=True, actor=ctx.actor)
        d = service.get(session, objection.decision_id)
        reviews = service.reviews(session, d.id)
        types = _types(service, session)
        try:
            schema = service.decision_type(session, d.decision_type).outcome_schema
        except NotFound:
            schema = None
    acted = any(r.actor == principal.actor for r in reviews if r.objection_id is None)
    values.setdefault("form", {})
    values.setdefault("error", None)
    return _page(request, principal, "decisions_objection.html", status=status, objection=objection, d=d,
                 reviews=reviews, acted=acted, schema=schema, bars=factor_bars(list(d.factors)),
                 type_name=lambda code: type_name(types, code, lang), own_review=MESSAGES["own_review"], **values)


@router.get("/decisions/objections/{objection_id}")
def objection_page(request: Request, objection_id: ObjectionId) -> Response:
    principal, refused = _reviewer(request)
    if refused is not None:
        return refused
    try:
        return _objection_page(request, principal, objection_id)
    except NotFound:
        return error_page(request, 404, principal=principal)


@router.post("/decisions/objections/{objection_id}/decide")
def decide_objection(request: Request, objection_id: ObjectionId,
                     action: Annotated[str, Form(max_length=16)] = "",
                     rationale: Annotated[str, Form(max_length=MAX_RATIONALE)] = "",
                     outcome: Annotated[str, Form(max_length=MAX_OUTCOME_FIELD)] = "",
                     csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _reviewer(request)
    if refused is not None:
        return refused
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    platform = _platform(request)
    service = oversight_for(platform)
    form = {"action": action, "rationale": rationale, "outcome": outcome}

    def again(status: int, message: str, field: str | None = None) -> Response:
        try:
            return _objection_page(request, principal, objection_id, status=status, form=form,
                                   error={"message": message, "field": field})
        except NotFound:
            return error_page(request, 404, principal=principal)

    if action not in (ACTION_UPHOLD, ACTION_OVERTURN):
        return again(422, MESSAGES["action"], "action")
    try:
        with Context(platform, principal).write() as session:
            new_outcome = None
            if action == ACTION_OVERTURN and outcome.strip():
                objection = service.get_objection(session, objection_id)
                current = service.get(session, objection.decision_id)
                schema = service.decision_type(session, current.decision_type).outcome_schema
                new_outcome = parse_outcome(outcome, schema)
            service.decide_objection(session, objection_id, user=_user(session, principal), action=action,
                                     rationale=rationale.strip(), outcome=new_outcome)
    except NotFound as exc:
        if exc.field in (None, "objection_id", "id"):
            return error_page(request, 404, principal=principal)
        return again(422, GENERIC, exc.field)
    except PermissionDenied as exc:
        return again(403, MESSAGES["assigned"] if "assigned" in exc.message else MESSAGES["own_review"], "action")
    except Conflict:
        return again(409, MESSAGES["objection_closed"], "action")
    except InvalidInput as exc:
        if exc.field and "rationale" in exc.field:
            return again(422, MESSAGES["rationale"], "rationale")
        if exc.field and "outcome" in exc.field:
            return again(422, MESSAGES["outcome"], "outcome")
        return again(422, GENERIC, exc.field)
    return _objection_page(request, principal, objection_id, notice=MESSAGES["objection_decided"])


# --- the citizen portal: decisions about me ------------------------------------------------------


@dataclass(frozen=True)
class CitizenDecision:
    """One decision about the citizen at one operator, explained in the citizen's language."""

    organization_id: int
    organization_name: str
    organization_bin: str
    organization_is_demo: bool
    decision: Any
    explanation: Any
    objections: list[Any]

    @property
    def open_objection(self) -> Any:
        return next((o for o in self.objections if o.status == "open"), None)

    @property
    def can_object(self) -> bool:
        """Once decided (L-PD-AUTO: the objection is to a decision), one open objection at a time."""
        return self.decision.status not in OPEN_STATUSES and self.open_objection is None


def citizen_decisions(platform: Platform, user_id: int, *, language: str,
                      organization_id: int | None = None) -> list[CitizenDecision]:
    """Decisions about the citizen at every operator (or one), newest first within an operator.

    The citizen's subjects are found as the consent portal finds them (each operator's blind index of the
    verified IIN, plus remembered subjects); each operator is read in a session scoped to it.
    """
    service = oversight_for(platform)
    subjects = citizens_for(platform).subjects(
        user_id, organizations=None if organization_id is None else [organization_id])
    by_org: dict[int, tuple[Any, set[int]]] = {}
    for s in subjects:
        by_org.setdefault(s.organization_id, (s, set()))[1].add(s.subject_id)
    out: list[CitizenDecision] = []
    for org_id, (s, ids) in by_org.items():
        with platform.db.reader(org_id) as session:
            decisions = [d for sid in sorted(ids) for d in service.subject_decisions(session, sid)]
            if not decisions:
                continue
            decisions.sort(key=lambda d: (d.submitted_at, d.id), reverse=True)
            objections = _objections_of(service, session, {d.id for d in decisions})
            for d in decisions:
                out.append(CitizenDecision(org_id, s.organization_name, s.organization_bin, s.organization_is_demo,
                                           d, service.explanation(session, d.id, language),
                                           objections.get(d.id, [])))
    return out


def _objections_of(service: Any, session: Any, decision_ids: set[int]) -> dict[int, list[Any]]:
    return {i: service.objections(session, decision_id=i) for i in sorted(decision_ids)}


def _citizen_decision(request: Request, principal: Principal, organization_id: int,
                      decision_id: int) -> CitizenDecision:
    for item in citizen_decisions(_platform(request), principal.id, language=choose_language(request, principal),
                                  organization_id=organization_id):
        if item.decision.id == decision_id:
            return item
    raise NotFound("no such decision about you", field="decision_id")


def _portal_page(request: Request, principal: Principal, template: str, *, status: int = 200,
                 **values: Any) -> Response:
    return render(request, template, principal=principal, status=status, active="me", labels=PORTAL_LABELS,
                  decision_labels=_labels(), objection_days=_objection_days(request), **values)


def portal_labels() -> dict[str, Any]:
    """The labels the portal's "Decisions about me" section shows (statuses, objection outcomes)."""
    return _labels()


@router.get("/me/decisions/{organization_id}/{decision_id}")
@_guard
def my_decision(request: Request, organization_id: OrgId, decision_id: DecisionId,
                notice: Annotated[str, Query(max_length=20)] = "") -> Response:
    principal = _citizen(request)
    try:
        item = _citizen_decision(request, principal, organization_id, decision_id)
    except NotFound:
        return error_page(request, 404, principal=principal)
    message = None
    if notice == "objected" and item.open_objection is not None:
        message = (MESSAGES["objected"], {"date": item.open_objection.due_on.isoformat()})
    return _portal_page(request, principal, "portal_decision.html", item=item, notice=message)


@router.get("/me/decisions/{organization_id}/{decision_id}/object")
@_guard
def confirm_objection(request: Request, organization_id: OrgId, decision_id: DecisionId) -> Response:
    principal = _citizen(request)
    try:
        item = _citizen_decision(request, principal, organization_id, decision_id)
    except NotFound:
        return error_page(request, 404, principal=principal)
    if not item.can_object:
        return _portal_page(request, principal, "portal_decision.html", status=409, item=item,
                            notice=(MESSAGES["objection_open"], {}))
    return _portal_page(request, principal, "portal_decision_object.html", item=item, error=None, text="")


@router.post("/me/decisions/{organization_id}/{decision_id}/object")
@_guard
def object_to_decision(request: Request, organization_id: OrgId, decision_id: DecisionId,
                       text: Annotated[str, Form(max_length=MAX_OBJECTION_TEXT * 2)] = "",
                       confirm: Annotated[str, Form(max_length=10)] = "",
                       csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = _citizen(request)
    if not csrf_valid(request, principal, csrf_token):
        return error_page(request, 403, principal=principal)
    base = f"/me/decisions/{organization_id}/{decision_id}"
    if confirm != "yes":
        return redirect(f"{base}/object")
    platform = _platform(request)
    try:
        item = _citizen_decision(request, principal, organization_id, decision_id)
    except NotFound:
        return error_page(request, 404, principal=principal)
    if not item.can_object:
        return redirect(base)  # a double submit: the first objection stands
    if len(text) > MAX_OBJECTION_TEXT:
        return _portal_page(request, principal, "portal_decision_object.html", status=422, item=item,
                            error=N_("Your text is too long: at most 4000 characters."), text=text[:MAX_OBJECTION_TEXT])
    try:
        with platform.db.transaction(organization_id) as session:
            oversight_for(platform).object(session, decision_id, channel="portal", filed_by=principal.actor,
                                           text=text.strip() or None, citizen_user_id=principal.id)
    except Conflict:
        return redirect(base)
    except InvalidInput:
        return _portal_page(request, principal, "portal_decision_object.html", status=422, item=item,
                            error=N_("Your objection could not be accepted. Check the text and try again."),
                            text=text)
    return redirect(f"{base}?notice=objected")


__all__ = ["CitizenDecision", "citizen_decisions", "factor_bars", "outcome_text", "parse_outcome", "router"]
