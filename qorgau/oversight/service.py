"""Human oversight of AI decisions about people (issue 6; L-PD-AUTO, L-AI-DECISION, L-AI-USER).

qorgau is the gate between an AI system's output and its effect:

1. An AI system submits a proposed decision (:meth:`OversightService.submit`). Input is checked (errors name
   the field), the submission is idempotent per (system, idempotency key).
2. The consent decision point decides whether automated processing is allowed at all (L-PD-AUTO): without
   consent or a legal basis the decision is **refused** (stored, and the AI system learns it). Otherwise the
   policy decides the path: **review** (legal effect, high-risk or medium/high-autonomy system, or a type
   whose policy says "always") or **automatic** (effective at once).
3. Decisions under review wait in the queue until a reviewer approves, amends, rejects or escalates them
   (:meth:`OversightService.review`). Optimistic concurrency on ``version``: of two reviewers acting on
   the same version exactly one wins, the other gets :class:`Conflict`. Four-eyes types need two approvals
   by different people.
4. A decision not reviewed by its deadline is never applied (:meth:`OversightService.sweep_deadlines`):
   escalated to a senior reviewer and then timed out, or rejected — per policy.
5. The subject can learn the key factors in plain kk/ru/en (:meth:`OversightService.explanation`) and
   object (:meth:`OversightService.object`); a reviewer who took no part in the decision decides the
   objection within 3 working days (L-PD-AUTO).

Every final state enqueues exactly one outbox message to the system's webhook in the same transaction
(``decision.decided``; an overturned objection: ``decision.changed``), and every state change writes an
audit entry with ids, codes and statuses only. Outcomes, factor values, rationales and objection texts
never reach logs, audit entries, ``repr`` or error messages.

Nothing here commits: callers pass a tenant-scoped session (``platform.db.transaction(org_id)``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..aisystems.models import AUTONOMY_LEVELS, RISK_CLASSES, SYSTEM_STATUSES, AiSystem
from ..consent import outbox
from ..consent.decision import SubjectRef
from ..consent.service import ConsentService, check_webhook_url, consent_for
from ..core import audit
from ..core.auth import Role, User
from ..core.calendar import add_working_days, local_date
from ..rules import deadlines
from ..core.db import tenant_of, utcnow
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..vault.service import LOOKUP_TYPES, SubjectErased, check_identifier, vault_for
from .models import (
    ACTION_AMEND,
    ACTION_APPROVE,
    ACTION_ESCALATE,
    ACTION_OVERTURN,
    ACTION_REJECT,
    ACTION_UPHOLD,
    AMENDED,
    APPROVED,
    AUTOMATIC,
    DECISION_STATUSES,
    EFFECTIVE_STATUSES,
    ESCALATED,
    LEVEL_REVIEWER,
    LEVEL_SENIOR,
    LEVELS,
    OBJECTION_CHANNELS,
    OBJECTION_OPEN,
    OBJECTION_OVERTURNED,
    OBJECTION_UPHELD,
    ON_TIMEOUT_ESCALATE,
    OPEN_STATUSES,
    PATH_AUTOMATIC,
    PATH_REFUSED,
    PATH_REVIEW,
    PENDING,
    REFUSED,
    REJECTED,
    TIMED_OUT,
    AiDecision,
    DecisionObjection,
    DecisionOpening,
    DecisionReview,
    DecisionTypePolicy,
)
from .policy import (
    DecisionTypeInfo,
    check_outcome,
    check_policy_fields,
    check_type_code,
    default_types,
    needs_review,
    outcome_text,
)
from ..core.platform import shared

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = [
    "MAX_BATCH", "MAX_FACTORS", "OPEN_STATUSES", "RUBBER_STAMP_APPROVAL_RATE", "RUBBER_STAMP_MEDIAN_SECONDS",
    "RUBBER_STAMP_MIN_REVIEWS", "TOPIC_CHANGED", "TOPIC_DECIDED", "DecisionTypeInfo", "DecisionView",
    "Explanation", "Factor", "ObjectionView", "OversightService", "QueuePage", "ReviewView", "ReviewerStats",
    "Submission", "SubmitResult", "SystemView", "oversight_for", "sweep_all",
]

TOPIC_DECIDED = "decision.decided"
TOPIC_CHANGED = "decision.changed"
MAX_FACTORS = 50
MAX_FACTOR_LABEL = 200
MAX_FACTOR_VALUE = 200
MAX_RATIONALE = 4000
MAX_OBJECTION_TEXT = 4000
MAX_QUEUE_LIMIT = 200
MAX_BATCH = 1000
# Rubber-stamp evidence (issue 6): approving (almost) everything, fast, over enough reviews.
RUBBER_STAMP_APPROVAL_RATE = 0.98
RUBBER_STAMP_MEDIAN_SECONDS = 10.0
RUBBER_STAMP_MIN_REVIEWS = 20
REVIEWER_ROLES: frozenset[str] = frozenset({Role.REVIEWER.value, Role.DPO.value, Role.ADMIN.value})
SENIOR_ROLES: frozenset[str] = frozenset({Role.DPO.value, Role.ADMIN.value})
DEADLINE_ACTOR = "system:oversight-deadline"
TIMEOUT_REASON = "review_timeout"
OBJECTION_KEY_PURPOSE = "oversight-objection-text"
_IDEMPOTENCY = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_SYSTEM_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_PSEUDONYM = re.compile(r"ps_[a-z]{26}")
_DOMAIN = re.compile(r"[a-z0-9_-]{1,40}")
_FACTOR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_UNSET: Any = object()
# The submission hot path's statements, built once (building a SQLAlchemy expression costs more than running
# the indexed query it describes). The tenant filter is still added by core.db's ORM hook.
_BY_KEY = select(AiDecision).where(AiDecision.ai_system_id == bindparam("system_id"),
                                   AiDecision.idempotency_key == bindparam("key"))


# --- the submission hot path's driver-level SQL ---------------------------------------------------------


class _SystemRow(NamedTuple):
    """The columns of ``ai_systems`` a submission needs (read in the submission's own statement)."""

    id: int
    code: str
    name: str
    status: str
    risk_class: str
    autonomy: str
    webhook_url: str | None
    webhook_secret_sealed: bytes | None


_POLICY_COLUMNS = ("name_kk", "name_ru", "name_en", "outcome_schema", "legal_effect", "purpose", "review", "four_eyes",
                   "rationale_on_approve", "review_hours", "on_timeout", "senior_hours", "active")
_INSERT_COLUMNS = ("ai_system_id", "idempotency_key", "request_sha256", "subject_id", "decision_type",
                   "proposed_outcome", "final_outcome", "legal_effect", "factors", "model_version", "confidence",
                   "input_ref", "risk_class", "autonomy", "path", "status", "level", "basis", "consent_id",
                   "legal_basis_id", "reason", "four_eyes", "approvals", "deadline_at", "submitted_at",
                   "submitted_by", "decided_at", "decided_by", "effective_at", "version", "organization_id")
_JSON_COLUMNS = frozenset({"proposed_outcome", "final_outcome", "factors"})


def _hot_statements(dialect: str) -> dict[str, str]:
    """The submission's read statement (two variants) and insert. Every table is filtered on the
    organization: ``s.organization_id = ?`` in the WHERE, and every other table joined or probed on
    ``organization_id = s.organization_id`` (driver-level SQL bypasses core.db's ORM tenant filter)."""
    p = "?" if dialect == "sqlite" else "%s"
    policy = ", ".join(("CAST(t.outcome_schema AS TEXT)" if c == "outcome_schema" else f"t.{c}")
                       for c in _POLICY_COLUMNS)
    existing = (f"(SELECT d.id FROM oversight_decisions d WHERE d.organization_id = s.organization_id "
                f"AND d.ai_system_id = s.id AND d.idempotency_key = {p})")
    by_pseudonym = (f"SELECT v.subject_id FROM vault_pseudonyms v WHERE v.organization_id = s.organization_id "
                    f"AND v.domain = {p} AND v.pseudonym = {p}")
    default_pseudonym = (f"(SELECT dp.pseudonym FROM vault_pseudonyms dp WHERE dp.organization_id = s.organization_id "
                         f"AND dp.domain = 'default' AND dp.subject_id = ({by_pseudonym}))")
    head = ("SELECT s.id, s.code, s.name, s.status, s.risk_class, s.autonomy, s.webhook_url, s.webhook_secret_sealed, "
            f"t.code, {policy}, {existing}")
    tail = (f" FROM ai_systems s LEFT JOIN oversight_decision_types t ON t.organization_id = s.organization_id "
            f"AND t.code = {p} WHERE s.organization_id = {p} AND s.code = {p}")
    values = ", ".join((f"CAST({p} AS json)" if c in _JSON_COLUMNS and dialect != "sqlite" else p)
                       for c in _INSERT_COLUMNS)
    return {
        "resolve": head + ", NULL, NULL" + tail,
        "resolve_pseudonym": head + f", ({by_pseudonym}), {default_pseudonym}" + tail,
        "insert": (f"INSERT INTO oversight_decisions ({', '.join(_INSERT_COLUMNS)}) VALUES ({values}) "
                   f"ON CONFLICT DO NOTHING RETURNING id"),
    }


def _fetchone(session: Session, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """One driver-level statement inside the session's transaction (no SQLAlchemy compile on the hot path)."""
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return cursor.fetchone()
    finally:
        cursor.close()


def _json(value: Any) -> str:
    return json.dumps(value)  # what SQLAlchemy's JSON type stores (its default serializer)


def _sqlite_ts(value: datetime) -> str:
    # What SQLAlchemy's DateTime stores on SQLite: naive UTC text with microseconds.
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


# --- the contract's shapes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    """A key factor of a decision (L-AI-DECISION): ``weight`` in [-1, 1] (positive: towards the proposed
    outcome); ``value`` is optional and shown to the subject, so it must not carry identifiers."""

    code: str
    weight: float
    label: str | None = None
    value: Any = None

    def __repr__(self) -> str:
        return f"Factor(code={self.code!r}, weight={self.weight!r})"


@dataclass(frozen=True)
class Submission:
    system: str
    idempotency_key: str
    subject: SubjectRef
    decision_type: str
    proposed_outcome: Any
    factors: Sequence[Factor]
    model_version: str
    confidence: float | None = None
    legal_effect: bool | None = None
    input_ref: str | None = None
    subject_domain: str = "default"

    def __repr__(self) -> str:
        return (f"Submission(system={self.system!r}, decision_type={self.decision_type!r}, "
                f"factors={len(self.factors) if isinstance(self.factors, Sequence) else '?'})")


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class DecisionView:
    id: int
    system_code: str
    system_name: str
    decision_type: str
    subject_pseudonym: str | None
    proposed_outcome: Any
    final_outcome: Any
    legal_effect: bool
    factors: list[dict[str, Any]]
    model_version: str
    confidence: float | None
    input_ref: str | None
    risk_class: str
    autonomy: str
    path: str
    status: str
    level: str
    effective: bool
    basis: str | None
    consent_id: int | None
    legal_basis_id: int | None
    reason: str | None
    four_eyes: bool
    approvals: int
    approvals_needed: int
    deadline_at: datetime | None
    overdue: bool
    submitted_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    effective_at: datetime | None
    version: int

    def __repr__(self) -> str:
        return (f"DecisionView(id={self.id}, type={self.decision_type!r}, status={self.status!r}, "
                f"level={self.level!r}, version={self.version})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "system": self.system_code, "system_name": self.system_name,
            "decision_type": self.decision_type, "subject_pseudonym": self.subject_pseudonym,
            "proposed_outcome": self.proposed_outcome, "final_outcome": self.final_outcome,
            "legal_effect": self.legal_effect, "factors": [dict(f) for f in self.factors],
            "model_version": self.model_version, "confidence": self.confidence, "input_ref": self.input_ref,
            "risk_class": self.risk_class, "autonomy": self.autonomy, "path": self.path, "status": self.status,
            "level": self.level, "effective": self.effective, "basis": self.basis, "consent_id": self.consent_id,
            "legal_basis_id": self.legal_basis_id, "reason": self.reason, "four_eyes": self.four_eyes,
            "approvals": self.approvals, "approvals_needed": self.approvals_needed,
            "deadline_at": _iso(self.deadline_at), "overdue": self.overdue, "submitted_at": _iso(self.submitted_at),
            "decided_at": _iso(self.decided_at), "decided_by": self.decided_by,
            "effective_at": _iso(self.effective_at), "version": self.version,
        }


@dataclass(frozen=True)
class SubmitResult:
    decision: DecisionView
    created: bool  # False: an idempotent replay of an earlier submission


@dataclass(frozen=True)
class QueuePage:
    items: list[DecisionView]
    next_cursor: str | None
    total: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "next_cursor": self.next_cursor, "total": self.total}


@dataclass(frozen=True)
class ReviewView:
    id: int
    decision_id: int
    actor: str
    action: str
    level: str
    outcome: Any
    rationale: str | None
    seconds_spent: float | None
    decided_at: datetime
    agreed_with_model: bool | None
    objection_id: int | None = None

    def __repr__(self) -> str:
        return f"ReviewView(id={self.id}, decision={self.decision_id}, action={self.action!r}, actor={self.actor!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "decision_id": self.decision_id, "actor": self.actor, "action": self.action,
                "level": self.level, "outcome": self.outcome, "rationale": self.rationale,
                "seconds_spent": self.seconds_spent, "decided_at": _iso(self.decided_at),
                "agreed_with_model": self.agreed_with_model, "objection_id": self.objection_id}


@dataclass(frozen=True)
class ObjectionView:
    id: int
    decision_id: int
    channel: str
    filed_at: datetime
    due_on: date
    overdue: bool
    status: str
    assigned_to: str | None
    decided_at: datetime | None
    decided_by: str | None
    text: str | None = None
    assigned_user_id: int | None = None

    def __repr__(self) -> str:
        return f"ObjectionView(id={self.id}, decision={self.decision_id}, status={self.status!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "decision_id": self.decision_id, "channel": self.channel,
                "filed_at": _iso(self.filed_at), "due_on": _iso(self.due_on), "overdue": self.overdue,
                "status": self.status, "assigned_to": self.assigned_to, "decided_at": _iso(self.decided_at),
                "decided_by": self.decided_by, "text": self.text}


@dataclass(frozen=True)
class ReviewerStats:
    actor: str
    user_id: int
    decision_type: str
    reviewed: int
    approvals: int
    amendments: int
    rejections: int
    median_seconds: float | None
    approval_rate: float
    override_rate: float
    agreement_with_confidence: float | None
    rubber_stamp: bool

    def to_dict(self) -> dict[str, Any]:
        return {"actor": self.actor, "user_id": self.user_id, "decision_type": self.decision_type,
                "reviewed": self.reviewed, "approvals": self.approvals, "amendments": self.amendments,
                "rejections": self.rejections, "median_seconds": self.median_seconds,
                "approval_rate": self.approval_rate, "override_rate": self.override_rate,
                "agreement_with_confidence": self.agreement_with_confidence, "rubber_stamp": self.rubber_stamp}


@dataclass(frozen=True)
class SystemView:
    id: int
    code: str
    name: str
    description: str | None
    risk_class: str
    autonomy: str
    classified_by: str
    status: str
    webhook_url: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name, "description": self.description,
                "risk_class": self.risk_class, "autonomy": self.autonomy, "classified_by": self.classified_by,
                "status": self.status, "webhook_url": self.webhook_url, "created_at": _iso(self.created_at)}


@dataclass(frozen=True)
class Explanation:
    decision_id: int
    lang: str
    decision_type_name: str
    outcome_text: str
    factors: list[dict[str, Any]]
    rights_text: list[str]
    status_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"decision_id": self.decision_id, "lang": self.lang, "decision_type_name": self.decision_type_name,
                "outcome_text": self.outcome_text, "status_text": self.status_text,
                "factors": [dict(f) for f in self.factors], "rights_text": list(self.rights_text)}


# --- plain-language texts (L-AI-DECISION, L-AI-USER, L-PD-AUTO) ------------------------------------------

_LANGS = ("kk", "ru", "en")
_DIRECTION = {
    "kk": ("шешімге оң әсер етті", "шешімге теріс әсер етті"),
    "ru": ("повлиял в пользу решения", "повлиял против решения"),
    "en": ("weighed in favour of the outcome", "weighed against the outcome"),
}
_STRENGTH = {
    "kk": ("әлсіз", "орташа", "күшті"),
    "ru": ("слабо", "заметно", "сильно"),
    "en": ("slightly", "moderately", "strongly"),
}
_RIGHTS = {
    "kk": [
        "Сізге қатысты шешімді жасанды интеллект жүйесі ұсынды. Сіз шешімге негіз болған негізгі факторларды "
        "білуге құқылысыз.",
        "Сіз шешімге қарсылық білдіріп, оны адамның қайта қарауын талап ете аласыз. Қарсылықты шешімге "
        "қатыспаған қызметкер 3 жұмыс күні ішінде қарайды.",
        "Дербес деректеріңізді келісіміңізсіз немесе заңда көзделген негізсіз автоматты түрде өңдеу арқылы "
        "құқықтарыңызды туындататын, өзгертетін немесе тоқтататын шешім қабылдауға тыйым салынған.",
    ],
    "ru": [
        "Решение о вас предложила система искусственного интеллекта. Вы вправе узнать основные факторы, "
        "на которых оно основано.",
        "Вы можете возразить против решения и потребовать его пересмотра человеком. Возражение рассматривает "
        "сотрудник, не участвовавший в решении, в течение 3 рабочих дней.",
        "Автоматизированная обработка ваших персональных данных, которая порождает, изменяет или прекращает "
        "ваши права, без вашего согласия или основания в законе запрещена.",
    ],
    "en": [
        "An artificial intelligence system proposed this decision about you. You have the right to learn the "
        "key factors it was based on.",
        "You may object to the decision and ask for a human to review it. A member of staff who took no part "
        "in the decision decides your objection within 3 working days.",
        "Automated processing of your personal data that creates, changes or ends your rights is not allowed "
        "without your consent or a basis in law.",
    ],
}
_STATUS_TEXT = {
    PENDING: {"kk": "Шешім адамның қарауын күтуде.", "ru": "Решение ожидает проверки человеком.",
              "en": "The decision is waiting for a human review."},
    ESCALATED: {"kk": "Шешімді аға маман қарауда.", "ru": "Решение рассматривает старший специалист.",
                "en": "A senior reviewer is looking at the decision."},
    APPROVED: {"kk": "Шешімді адам тексеріп, бекітті.", "ru": "Решение проверено и утверждено человеком.",
               "en": "A person reviewed and approved the decision."},
    AMENDED: {"kk": "Шешімді адам тексеріп, өзгертті.", "ru": "Решение проверено и изменено человеком.",
              "en": "A person reviewed the decision and changed it."},
    REJECTED: {"kk": "Ұсынылған шешім қабылданбады және қолданылмайды.",
               "ru": "Предложенное решение отклонено и не применяется.",
               "en": "The proposed decision was rejected and is not applied."},
    TIMED_OUT: {"kk": "Шешім мерзімінде қаралмады, сондықтан қолданылмайды.",
                "ru": "Решение не было рассмотрено в срок и поэтому не применяется.",
                "en": "The decision was not reviewed in time and is therefore not applied."},
    REFUSED: {"kk": "Келісіміңіз немесе заңды негіз болмағандықтан, автоматты шешім қабылданбады.",
              "ru": "Автоматизированное решение не принято: нет вашего согласия или основания в законе.",
              "en": "No automated decision was taken: there is no consent or legal basis for it."},
    AUTOMATIC: {"kk": "Шешім автоматты түрде қабылданды (заңды салдары жоқ).",
                "ru": "Решение принято автоматически (без юридических последствий).",
                "en": "The decision was taken automatically (it has no legal effect)."},
}


# --- small validators ---------------------------------------------------------------------------------


def _actor(actor: Any) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 64:
        raise InvalidInput("actor must be 1–64 characters (an id such as 'user:12', never a name)", field="actor")
    return actor


def _no_pd(value: str, field: str) -> None:
    try:
        audit.assert_no_personal_data({field: value})
    except InvalidInput:
        raise InvalidInput("must not contain personal data (identifiers, phone numbers, e-mail addresses)",
                           field=field) from None


def _short_text(value: Any, field: str, limit: int, *, required: bool = False, no_pd: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput("is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be text", field=field)
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"must be at most {limit} characters", field=field)
    if no_pd:
        _no_pd(value, field)
    return value


def _factors(factors: Any) -> list[dict[str, Any]]:
    if isinstance(factors, (str, bytes, Mapping)) or not isinstance(factors, Sequence):
        raise InvalidInput("factors must be a list", field="factors")
    if not 1 <= len(factors) <= MAX_FACTORS:
        raise InvalidInput(f"give 1–{MAX_FACTORS} key factors (L-AI-DECISION)", field="factors")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    total = 0.0
    for i, factor in enumerate(factors):
        where = f"factors[{i}]"
        if isinstance(factor, Mapping):
            try:
                factor = Factor(**factor)
            except TypeError:
                raise InvalidInput("a factor has code, weight, label and value", field=where) from None
        if not isinstance(factor, Factor):
            raise InvalidInput("a factor has code, weight, label and value", field=where)
        if not isinstance(factor.code, str) or not _FACTOR_CODE.fullmatch(factor.code):
            raise InvalidInput("a factor code is 1–64 letters, digits, '_', '.', '-'", field=f"{where}.code")
        if factor.code in seen:
            raise InvalidInput("factor codes must be unique", field=f"{where}.code")
        seen.add(factor.code)
        weight = factor.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or not -1.0 <= weight <= 1.0:
            raise InvalidInput("a weight is a number in [-1, 1]", field=f"{where}.weight")
        total += abs(weight)
        label = _short_text(factor.label, f"{where}.label", MAX_FACTOR_LABEL)
        value = factor.value
        if value is not None:
            if isinstance(value, str):
                value = _short_text(value, f"{where}.value", MAX_FACTOR_VALUE)
            elif isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
                if not isinstance(value, bool):
                    _no_pd(str(value), f"{where}.value")
            else:
                raise InvalidInput("a factor value is text, a number or true/false", field=f"{where}.value")
        out.append({"code": factor.code, "weight": float(weight), "label": label, "value": value})
    if total <= 0.0:
        raise InvalidInput("the factors' weights are all zero: say which factors drove the decision",
                           field="factors")
    return out


def _check_limit(limit: Any, maximum: int = MAX_QUEUE_LIMIT) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInput(f"limit is 1–{maximum}", field="limit")
    return limit


def _encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any, kind: str) -> list[Any]:
    try:
        if not isinstance(cursor, str) or len(cursor) > 200:
            raise ValueError
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or not parts or parts[0] != kind:
            raise ValueError
        return parts[1:]
    except (ValueError, TypeError):
        raise InvalidInput("not a cursor this listing gave out", field="cursor") from None


def _roles(user: User) -> frozenset[str]:
    return frozenset(user.roles or ())


def _user_actor(user: User) -> str:
    return f"user:{user.id}"


def _request_digest(sub: Submission, subject_id: int, factors: list[dict[str, Any]], outcome: Any,
                    legal_effect: bool | None) -> str:
    """What the idempotency key promises: the same key always means the same request."""
    body = {"system": sub.system, "subject": subject_id, "type": sub.decision_type, "outcome": outcome,
            "factors": factors, "model": sub.model_version, "confidence": sub.confidence,
            "legal_effect": legal_effect, "input_ref": sub.input_ref}
    return hashlib.sha256(audit.canonical_json(body)).hexdigest()


# --- the service --------------------------------------------------------------------------------------


class OversightService:
    """Oversight of one platform. Thread-safe; share one per process (:func:`oversight_for`)."""

    def __init__(self, platform: Platform, consent: ConsentService | None = None) -> None:
        self.platform = platform
        self.consent = consent or consent_for(platform)
        self.vault = vault_for(platform)
        self._sql: dict[str, dict[str, str]] = {}
        # DecisionTypeInfo built from an operator's policy row, keyed by the row's content as read in the
        # submission's own statement: a changed row is a new key, so nothing here can be stale.
        self._policies: dict[tuple[Any, ...], DecisionTypeInfo] = {}

    def __repr__(self) -> str:
        return f"OversightService(db={self.platform.db.dialect})"

    def objection_working_days(self, at: datetime) -> int:
        """L-PD-AUTO: an objection is decided within 3 working days — read from the rule packs for ``at``'s day."""
        return deadlines.working_days(deadlines.OBJECTION_DECISION, local_date(at),
                                      stricter=self.platform.settings.rules_stricter_profile)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _org(session: Session) -> int:
        org = tenant_of(session)
        if org is None:
            raise PermissionDenied("oversight needs a session scoped to one organization", field="organization_id")
        return org

    @staticmethod
    def _check_user(user: Any, org: int, roles: frozenset[str] = REVIEWER_ROLES) -> None:
        if not isinstance(user, User) or user.organization_id != org or not user.is_active:
            raise PermissionDenied("this action needs an active user of this organization", field="user")
        if not _roles(user) & roles:
            raise PermissionDenied(f"this action needs one of the roles: {', '.join(sorted(roles))}", field="user")

    @staticmethod
    def _decision_row(session: Session, decision_id: Any) -> AiDecision:
        if isinstance(decision_id, bool) or not isinstance(decision_id, int):
            raise InvalidInput("decision id is an integer", field="decision_id")
        row = session.scalar(select(AiDecision).where(AiDecision.id == decision_id))
        if row is None:
            raise NotFound("no decision with this id", field="decision_id")
        return row

    def _views(self, session: Session, rows: Sequence[AiDecision], now: datetime | None = None, *,
               systems: Mapping[int, AiSystem] | None = None,
               pseudonyms: Mapping[int, str | None] | None = None) -> list[DecisionView]:
        if not rows:
            return []
        now = now or utcnow()
        if systems is None:
            system_ids = {r.ai_system_id for r in rows}
            systems = {s.id: s for s in session.scalars(select(AiSystem).where(AiSystem.id.in_(system_ids)))}
        if pseudonyms is None:
            pseudonyms = self.consent.pseudonyms_of(session, [r.subject_id for r in rows])
        out = []
        for r in rows:
            system = systems.get(r.ai_system_id)
            out.append(DecisionView(
                id=r.id, system_code=system.code if system else "?", system_name=system.name if system else "?",
                decision_type=r.decision_type, subject_pseudonym=pseudonyms.get(r.subject_id),
                proposed_outcome=r.proposed_outcome, final_outcome=r.final_outcome, legal_effect=r.legal_effect,
                factors=[dict(f) for f in r.factors], model_version=r.model_version, confidence=r.confidence,
                input_ref=r.input_ref, risk_class=r.risk_class, autonomy=r.autonomy, path=r.path, status=r.status,
                level=r.level, effective=r.status in EFFECTIVE_STATUSES, basis=r.basis, consent_id=r.consent_id,
                legal_basis_id=r.legal_basis_id, reason=r.reason, four_eyes=r.four_eyes, approvals=r.approvals,
                approvals_needed=(2 if r.four_eyes else 1) if r.path == PATH_REVIEW else 0,
                deadline_at=r.deadline_at,
                overdue=r.status in OPEN_STATUSES and r.deadline_at is not None and r.deadline_at < now,
                submitted_at=r.submitted_at, decided_at=r.decided_at, decided_by=r.decided_by,
                effective_at=r.effective_at, version=r.version))
        return out

    def _view(self, session: Session, row: AiDecision) -> DecisionView:
        return self._views(session, [row])[0]

    def _notify(self, session: Session, row: AiDecision, topic: str, *, system: AiSystem | None = None,
                view: DecisionView | None = None) -> None:
        """The one outbox message of a final state, to the system's webhook (same transaction)."""
        if system is None:
            system = session.scalar(select(AiSystem).where(AiSystem.id == row.ai_system_id))
        if system is None or not system.webhook_url or system.webhook_secret_sealed is None:
            return
        self._enqueue(session, row.organization_id, row.id, row.version, topic, system.webhook_url,
                      system.webhook_secret_sealed, view or self._view(session, row))

    @staticmethod
    def _enqueue(session: Session, org: int, decision_id: int, version: int, topic: str, url: str | None,
                 secret_sealed: bytes | None, view: DecisionView) -> None:
        if not url or secret_sealed is None:
            return
        outbox.enqueue(session, [outbox.Outgoing(
            topic=topic, url=url, payload={"topic": topic, "decision": view.to_dict()}, secret_sealed=secret_sealed,
            idempotency_key=f"oversight:{org}:{decision_id}:{version}",
            source_type="oversight_decision", source_id=str(decision_id))])

    @staticmethod
    def _audit(session: Session, row: AiDecision, actor: str, action: str, **details: Any) -> None:
        audit.record(session, actor=actor, action=action, object_type="ai_decision", object_id=str(row.id),
                     organization_id=row.organization_id,
                     details={"decision_type": row.decision_type, "status": row.status, "level": row.level,
                              "version": row.version, **details})

    def _claim(self, session: Session, row: AiDecision, expected_version: int, *, statuses: Sequence[str],
               field: str = "expected_version") -> None:
        """Compare-and-set on ``version``: exactly one of concurrent actors on one version gets here."""
        result = session.execute(
            update(AiDecision)
            .where(AiDecision.id == row.id, AiDecision.version == expected_version, AiDecision.status.in_(statuses))
            .values(version=expected_version + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise Conflict("the decision changed since you loaded it (another reviewer acted, or it was decided); "
                           "reload it", field=field)
        session.refresh(row)

    # -- AI systems ------------------------------------------------------------------------------

    @staticmethod
    def _system_view(row: AiSystem) -> SystemView:
        return SystemView(row.id, row.code, row.name, row.description, row.risk_class, row.autonomy,
                          row.classified_by, row.status, row.webhook_url, row.created_at)

    def _system_row(self, session: Session, code: Any, field: str = "code") -> AiSystem:
        if not isinstance(code, str) or not _SYSTEM_CODE.fullmatch(code):
            raise InvalidInput("a system code is 1–64 characters a-z, 0-9, '_', '.', '-'", field=field)
        row = session.scalar(select(AiSystem).where(AiSystem.code == code))
        if row is None:
            raise NotFound("no AI system with this code in this organization", field=field)
        return row

    def _webhook(self, url: Any) -> str | None:
        return check_webhook_url(url, allow_http=self.platform.settings.consent_webhook_allow_http)

    def register_system(self, session: Session, *, code: str, name: str, risk_class: str, autonomy: str,
                        webhook_url: str | None = None, description: str | None = None,
                        actor: str) -> tuple[SystemView, str | None]:
        """Register an AI system with its declared risk class (L-AI-RISK) and autonomy (L-AI-AUTONOMY).
        Returns the system and its webhook signing secret (shown once; None without a webhook)."""
        org = self._org(session)
        actor = _actor(actor)
        if not isinstance(code, str) or not _SYSTEM_CODE.fullmatch(code):
            raise InvalidInput("a system code is 1–64 characters a-z, 0-9, '_', '.', '-'", field="code")
        name = _short_text(name, "name", 300, required=True) or ""
        description = _short_text(description, "description", 4000)
        if risk_class not in RISK_CLASSES:
            raise InvalidInput(f"risk_class must be one of: {', '.join(RISK_CLASSES)} (L-AI-RISK)", field="risk_class")
        if autonomy not in AUTONOMY_LEVELS:
            raise InvalidInput(f"autonomy must be one of: {', '.join(AUTONOMY_LEVELS)} (L-AI-AUTONOMY)",
                               field="autonomy")
        url = self._webhook(webhook_url)
        if session.scalar(select(AiSystem.id).where(AiSystem.code == code)) is not None:
            raise Conflict("an AI system with this code exists already", field="code")
        secret = outbox.new_webhook_secret() if url else None
        sealed = outbox.seal_secret(session, self.platform.keyring, org, secret) if secret else None
        row = AiSystem(organization_id=org, code=code, name=name, description=description, risk_class=risk_class,
                       autonomy=autonomy, classified_by="declared", status="active", webhook_url=url,
                       webhook_secret_sealed=sealed, active=True, created_by=actor, created_at=utcnow(),
                       updated_at=utcnow())
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            raise Conflict("an AI system with this code exists already", field="code") from None
        audit.record(session, actor=actor, action="oversight.system_register", object_type="ai_system",
                     object_id=str(row.id), organization_id=org,
                     details={"code": code, "risk_class": risk_class, "autonomy": autonomy, "webhook": url is not None})
        return self._system_view(row), secret

    def list_systems(self, session: Session) -> list[SystemView]:
        self._org(session)
        return [self._system_view(r) for r in session.scalars(select(AiSystem).order_by(AiSystem.code))]

    def get_system(self, session: Session, code: str) -> SystemView:
        self._org(session)
        return self._system_view(self._system_row(session, code))

    def update_system(self, session: Session, code: str, *, actor: str, name: str | None = None,
                      risk_class: str | None = None, autonomy: str | None = None, webhook_url: Any = _UNSET,
                      status: str | None = None, description: Any = _UNSET) -> SystemView:
        """Change a system's name, declared class, autonomy, webhook (``None`` removes it; a new webhook
        gets a signing secret — read it with :meth:`rotate_system_secret`) or status."""
        org = self._org(session)
        actor = _actor(actor)
        row = self._system_row(session, code)
        changes: dict[str, Any] = {}
        if name is not None:
            row.name = _short_text(name, "name", 300, required=True) or row.name
            changes["name"] = True
        if description is not _UNSET:
            row.description = _short_text(description, "description", 4000)
            changes["description"] = True
        if risk_class is not None:
            if risk_class not in RISK_CLASSES:
                raise InvalidInput(f"risk_class must be one of: {', '.join(RISK_CLASSES)}", field="risk_class")
            row.risk_class = changes["risk_class"] = risk_class
        if autonomy is not None:
            if autonomy not in AUTONOMY_LEVELS:
                raise InvalidInput(f"autonomy must be one of: {', '.join(AUTONOMY_LEVELS)}", field="autonomy")
            row.autonomy = changes["autonomy"] = autonomy
        if webhook_url is not _UNSET:
            row.webhook_url = self._webhook(webhook_url)
            if row.webhook_url is None:
                row.webhook_secret_sealed = None
            elif row.webhook_secret_sealed is None:
                row.webhook_secret_sealed = outbox.seal_secret(session, self.platform.keyring, org,
                                                               outbox.new_webhook_secret())
            changes["webhook"] = row.webhook_url is not None
        if status is not None:
            if status not in SYSTEM_STATUSES:
                raise InvalidInput(f"status must be one of: {', '.join(SYSTEM_STATUSES)}", field="status")
            row.status = changes["status"] = status
            row.active = status == "active"
        row.updated_at = utcnow()
        session.flush()
        audit.record(session, actor=actor, action="oversight.system_update", object_type="ai_system",
                     object_id=str(row.id), organization_id=org, details=changes)
        return self._system_view(row)

    def rotate_system_secret(self, session: Session, code: str, *, actor: str) -> str:
        """A new webhook signing secret (shown once). Messages already queued keep the old one."""
        org = self._org(session)
        actor = _actor(actor)
        row = self._system_row(session, code)
        if not row.webhook_url:
            raise InvalidInput("the system has no webhook; set webhook_url first", field="webhook_url")
        secret = outbox.new_webhook_secret()
        row.webhook_secret_sealed = outbox.seal_secret(session, self.platform.keyring, org, secret)
        row.updated_at = utcnow()
        session.flush()
        audit.record(session, actor=actor, action="oversight.system_rotate_secret", object_type="ai_system",
                     object_id=str(row.id), organization_id=org, details={"code": row.code})
        return secret

    # -- decision types --------------------------------------------------------------------------

    @staticmethod
    def _info(row: DecisionTypePolicy) -> DecisionTypeInfo:
        return DecisionTypeInfo(
            code=row.code, names={"kk": row.name_kk, "ru": row.name_ru, "en": row.name_en},
            outcome_schema=dict(row.outcome_schema), legal_effect=row.legal_effect, purpose=row.purpose,
            review=row.review, four_eyes=row.four_eyes, rationale_on_approve=row.rationale_on_approve,
            review_hours=row.review_hours, on_timeout=row.on_timeout, senior_hours=row.senior_hours,
            source="organization", active=row.active)

    def decision_types(self, session: Session) -> list[DecisionTypeInfo]:
        """The platform defaults merged with this operator's policies (an operator row replaces the default;
        a deactivated row hides the type)."""
        self._org(session)
        merged: dict[str, DecisionTypeInfo] = dict(default_types())
        for row in session.scalars(select(DecisionTypePolicy)):
            if row.active:
                merged[row.code] = self._info(row)
            else:
                merged.pop(row.code, None)
        return [merged[c] for c in sorted(merged)]

    def decision_type(self, session: Session, code: str) -> DecisionTypeInfo:
        self._org(session)
        code = check_type_code(code)
        row = session.scalar(select(DecisionTypePolicy).where(DecisionTypePolicy.code == code))
        if row is not None:
            if not row.active:
                raise NotFound("this decision type is switched off for this organization", field="decision_type")
            return self._info(row)
        info = default_types().get(code)
        if info is None:
            raise NotFound("unknown decision type (see the list of decision types)", field="decision_type")
        return info

    def set_decision_type(self, session: Session, code: str, *, actor: str, **fields: Any) -> DecisionTypeInfo:
        """Create or change this operator's policy for a decision type. Over a platform default only the
        changed fields need giving; a new type needs names, outcome_schema and purpose. ``active=False``
        switches a type off for this operator."""
        org = self._org(session)
        actor = _actor(actor)
        code = check_type_code(code, "code")
        row = session.scalar(select(DecisionTypePolicy).where(DecisionTypePolicy.code == code))
        base = self._info(row) if row is not None else default_types().get(code)
        clean = check_policy_fields(fields, base=base)
        if not self.consent.taxonomy(session).has_purpose(clean["purpose"]):
            raise InvalidInput("unknown consent purpose (see the consent purposes)", field="purpose")
        names = clean.pop("names")
        if row is None:
            row = DecisionTypePolicy(organization_id=org, code=code, created_by=actor, created_at=utcnow(),
                                     name_kk=names["kk"], name_ru=names["ru"], name_en=names["en"], **clean)
            session.add(row)
        else:
            row.name_kk, row.name_ru, row.name_en = names["kk"], names["ru"], names["en"]
            for key, value in clean.items():
                setattr(row, key, value)
        session.flush()
        audit.record(session, actor=actor, action="oversight.decision_type_set", object_type="decision_type",
                     object_id=code, organization_id=org,
                     details={"fields": sorted(fields), "review": row.review, "four_eyes": row.four_eyes,
                              "on_timeout": row.on_timeout, "active": row.active})
        return self._info(row)

    # -- submission ------------------------------------------------------------------------------
    #
    # The hot path (issue 6: >= 1,000 submissions/s). Per submission: ONE driver-level read statement
    # (system, the operator's policy row for the type, the subject of a pseudonym and its default-domain
    # pseudonym, an existing decision under the idempotency key), the consent decision point (its own
    # one-statement check), ONE driver-level ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` and one
    # batched audit append (``audit.record_many``) per call. Driver-level SQL bypasses the ORM's tenant
    # filter, so every table in these statements is filtered on ``organization_id`` here (tested in
    # tests/oversight/test_service.py). Nothing is cached across calls except DecisionTypeInfo objects
    # keyed by the *content* of the policy row read in the same statement, so a policy or system change
    # takes effect for the very next submission, in every process.

    def _hot_sql(self, session: Session) -> dict[str, str]:
        dialect = session.get_bind().dialect.name
        sql = self._sql.get(dialect)
        if sql is None:
            sql = self._sql[dialect] = _hot_statements(dialect)
        return sql

    def _policy_from(self, org: int, code: str, raw: tuple[Any, ...] | None) -> DecisionTypeInfo:
        if raw is None:
            info = default_types().get(code)
            if info is None:
                raise InvalidInput("unknown decision type (see the list of decision types)", field="decision_type")
            return info
        key = (org, code, raw)
        info = self._policies.get(key)
        if info is None:
            (name_kk, name_ru, name_en, schema, legal_effect, purpose, review, four_eyes, rationale, review_hours,
             on_timeout, senior_hours, active) = raw
            info = DecisionTypeInfo(
                code=code, names={"kk": name_kk, "ru": name_ru, "en": name_en},
                outcome_schema=dict(json.loads(schema) if isinstance(schema, str) else schema),
                legal_effect=bool(legal_effect), purpose=purpose, review=review, four_eyes=bool(four_eyes),
                rationale_on_approve=bool(rationale), review_hours=int(review_hours), on_timeout=on_timeout,
                senior_hours=int(senior_hours), source="organization", active=bool(active))
            if len(self._policies) >= 1024:
                self._policies.clear()
            self._policies[key] = info
        if not info.active:
            raise InvalidInput("this decision type is switched off for this organization", field="decision_type")
        return info

    def _validate(self, session: Session, org: int, sub: Any) -> dict[str, Any]:
        """Everything about a submission that needs no write, checked before anything is written (one read
        statement)."""
        if not isinstance(sub, Submission):
            raise InvalidInput("not a submission", field="submission")
        if not isinstance(sub.system, str) or not _SYSTEM_CODE.fullmatch(sub.system):
            raise InvalidInput("a system code is 1–64 characters a-z, 0-9, '_', '.', '-'", field="system")
        if not isinstance(sub.idempotency_key, str) or not _IDEMPOTENCY.fullmatch(sub.idempotency_key):
            raise InvalidInput("idempotency key is 1–100 characters A-Z, a-z, 0-9, '.', '_', ':', '-'",
                               field="idempotency_key")
        code = check_type_code(sub.decision_type)
        subject = sub.subject
        if not isinstance(subject, SubjectRef):
            raise InvalidInput("subject must be a pseudonym or an identifier", field="subject")
        sql = self._hot_sql(session)
        if subject.pseudonym is not None:
            p = subject.pseudonym
            if not isinstance(p, str) or len(p) != 29 or not _PSEUDONYM.fullmatch(p):
                raise InvalidInput("pseudonym must be 'ps_' followed by 26 letters a-z", field="subject.pseudonym")
            if not isinstance(subject.domain, str) or not _DOMAIN.fullmatch(subject.domain):
                raise InvalidInput("domain must be 1–40 characters of a-z, 0-9, '_' and '-'", field="subject.domain")
            statement = sql["resolve_pseudonym"]
            params: tuple[Any, ...] = (sub.idempotency_key, subject.domain, p, subject.domain, p, code, org,
                                       sub.system)
        else:
            statement = sql["resolve"]
            params = (sub.idempotency_key, code, org, sub.system)
        row = _fetchone(session, statement, params)
        if row is None:
            raise InvalidInput("no AI system with this code in this organization (register it first)", field="system")
        system = _SystemRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                            bytes(row[7]) if row[7] is not None else None)
        if system.status != "active":
            raise InvalidInput(f"the AI system is {system.status}: it may not submit decisions", field="system")
        policy = self._policy_from(org, code, tuple(row[9:22]) if row[8] is not None else None)
        existing_id, subject_id, default_pseudonym = row[22], row[23], row[24]
        outcome = check_outcome(sub.proposed_outcome, policy.outcome_schema, "proposed_outcome")
        factors = _factors(sub.factors)
        model_version = _short_text(sub.model_version, "model_version", 100, required=True)
        confidence = sub.confidence
        if confidence is not None:
            if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
                    or not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
                raise InvalidInput("confidence is a number in [0, 1]", field="confidence")
            confidence = float(confidence)
        if sub.legal_effect is not None and not isinstance(sub.legal_effect, bool):
            raise InvalidInput("legal_effect is true, false or omitted (the type's default)", field="legal_effect")
        input_ref = _short_text(sub.input_ref, "input_ref", 2000)
        domain = sub.subject_domain or "default"
        if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
            raise InvalidInput("domain must be 1–40 characters of a-z, 0-9, '_' and '-'", field="subject_domain")
        if subject.pseudonym is None:
            if subject.domain != "default":
                domain = subject.domain
            entity_type, value = subject.identifier_type, subject.identifier
            if entity_type not in LOOKUP_TYPES:
                raise InvalidInput(f"identifier type must be one of {', '.join(sorted(LOOKUP_TYPES))}",
                                   field="subject.identifier_type")
            if not isinstance(value, str) or not value.strip() or len(value) > 1000:
                raise InvalidInput("identifier value is required", field="subject.identifier")
            if check_identifier(entity_type, value)[1] is not None:
                raise InvalidInput(f"not a valid {entity_type}", field="subject.identifier")
        elif subject_id is None:
            # The pseudonym table is the vault's public vocabulary (as in the consent module).
            raise InvalidInput("no subject has this pseudonym in this organization", field="subject.pseudonym")
        else:
            subject_id = int(subject_id)
            if subject.domain == "default":
                default_pseudonym = subject.pseudonym
        return {"sub": sub, "system": system, "policy": policy, "outcome": outcome, "factors": factors,
                "model_version": model_version, "confidence": confidence, "input_ref": input_ref, "domain": domain,
                "legal_effect": policy.legal_effect if sub.legal_effect is None else sub.legal_effect,
                "existing_id": existing_id, "subject_id": subject_id, "pseudonym": default_pseudonym}

    def _identifier_subject(self, session: Session, subject: SubjectRef, *, domain: str,
                            actor: str) -> tuple[int, str | None]:
        """An identifier's vault subject id (tokenized — the subject created in this transaction — if the
        vault does not know it yet) and its pseudonym in domain "default" when that is the domain."""
        try:
            token = self.vault.tokenize(session, subject.identifier_type, subject.identifier,  # type: ignore[arg-type]
                                        domain=domain, actor=actor)
        except InvalidInput as exc:
            raise InvalidInput("the vault refused the identifier",
                               field="subject_domain" if exc.field == "domain" else "subject.identifier") from None
        return token.subject_id, (token.pseudonym if domain == "default" else None)

    def submit(self, session: Session, submission: Submission, *, actor: str) -> SubmitResult:
        """Take a proposed decision from an AI system (issue 6, steps 1–2). See the module docstring."""
        return self._submit(session, [submission], actor=actor, batch=False)[0]

    def submit_many(self, session: Session, submissions: Sequence[Submission], *, actor: str) -> list[SubmitResult]:
        """Up to 1,000 submissions in the caller's transaction, one result each in order (replays included);
        all or nothing: bad input in any of them (``submissions[i].field``) writes nothing. One audit append
        for the batch — the path for high-volume AI systems."""
        if isinstance(submissions, (str, bytes)) or not isinstance(submissions, Sequence) \
                or not 1 <= len(submissions) <= MAX_BATCH:
            raise InvalidInput(f"give 1–{MAX_BATCH} submissions", field="submissions")
        return self._submit(session, list(submissions), actor=actor, batch=True)

    def _submit(self, session: Session, subs: list[Any], *, actor: str, batch: bool) -> list[SubmitResult]:
        org = self._org(session)
        actor = _actor(actor)
        prepared = []
        for i, sub in enumerate(subs):
            try:
                prepared.append(self._validate(session, org, sub))
            except InvalidInput as exc:
                if batch:
                    raise InvalidInput(exc.message, field=f"submissions[{i}].{exc.field}") from None
                raise
        sql = self._hot_sql(session)
        sqlite = session.get_bind().dialect.name == "sqlite"
        results: list[SubmitResult] = []
        events: list[audit.Event] = []
        decided: list[tuple[_SystemRow, DecisionView]] = []
        for i, p in enumerate(prepared):
            sub, system, policy = p["sub"], p["system"], p["policy"]
            subject_id, pseudonym = p["subject_id"], p["pseudonym"]
            if sub.subject.pseudonym is None:
                try:
                    subject_id, pseudonym = self._identifier_subject(session, sub.subject, domain=p["domain"],
                                                                     actor=actor)
                except InvalidInput as exc:
                    if batch:
                        raise InvalidInput(exc.message, field=f"submissions[{i}].{exc.field}") from None
                    raise
            digest = _request_digest(sub, subject_id, p["factors"], p["outcome"], sub.legal_effect)
            if p["existing_id"] is not None:
                results.append(self._replay_key(session, system.id, sub.idempotency_key, digest, i if batch else None))
                continue
            # The consent decision point (L-PD-AUTO): its own one-statement read of committed state.
            point = self.consent.check(sub.subject, organization_id=org, purpose=policy.purpose)
            if pseudonym is None:
                try:
                    pseudonym = self.vault.pseudonym_for(session, subject_id, "default", actor=actor)
                except SubjectErased:
                    pseudonym = None  # an erased subject gets no new pseudonym
            now = utcnow()
            if not point.allow:
                path, status = PATH_REFUSED, REFUSED
            elif needs_review(policy, legal_effect=p["legal_effect"], risk_class=system.risk_class,
                              autonomy=system.autonomy):
                path, status = PATH_REVIEW, PENDING
            else:
                path, status = PATH_AUTOMATIC, AUTOMATIC
            review = path == PATH_REVIEW
            outcome = p["outcome"]
            final_outcome = outcome if status == AUTOMATIC else None
            four_eyes = policy.four_eyes if review else False
            deadline = now + timedelta(hours=policy.review_hours) if review else None
            decided_at = None if review else now
            decided_by = None if review else "system:oversight"
            effective_at = now if status == AUTOMATIC else None

            def ts(value: datetime | None) -> Any:
                return _sqlite_ts(value) if sqlite and value is not None else value

            # ON CONFLICT DO NOTHING: a concurrent (or same-batch) submission with the same key won; answer
            # as a replay. No savepoint needed on PostgreSQL (the statement does not abort the transaction).
            inserted = _fetchone(session, sql["insert"], (
                system.id, sub.idempotency_key, digest, subject_id, policy.code, _json(outcome),
                _json(final_outcome), p["legal_effect"], _json(p["factors"]), p["model_version"], p["confidence"],
                p["input_ref"], system.risk_class, system.autonomy, path, status, LEVEL_REVIEWER, point.basis,
                point.consent_id, point.legal_basis_id, point.reason, four_eyes, 0, ts(deadline), ts(now), actor,
                ts(decided_at), decided_by, ts(effective_at), 1, org))
            if inserted is None:
                results.append(self._replay_key(session, system.id, sub.idempotency_key, digest, i if batch else None))
                continue
            decision_id = int(inserted[0])
            view = DecisionView(
                id=decision_id, system_code=system.code, system_name=system.name, decision_type=policy.code,
                subject_pseudonym=pseudonym, proposed_outcome=outcome, final_outcome=final_outcome,
                legal_effect=p["legal_effect"], factors=[dict(f) for f in p["factors"]],
                model_version=p["model_version"], confidence=p["confidence"], input_ref=p["input_ref"],
                risk_class=system.risk_class, autonomy=system.autonomy, path=path, status=status,
                level=LEVEL_REVIEWER, effective=status in EFFECTIVE_STATUSES, basis=point.basis,
                consent_id=point.consent_id, legal_basis_id=point.legal_basis_id, reason=point.reason,
                four_eyes=four_eyes, approvals=0, approvals_needed=(2 if four_eyes else 1) if review else 0,
                deadline_at=deadline, overdue=False, submitted_at=now, decided_at=decided_at, decided_by=decided_by,
                effective_at=effective_at, version=1)
            events.append(audit.Event(actor, "oversight.submit", "ai_decision", str(decision_id), org, {
                "decision_type": policy.code, "status": status, "level": LEVEL_REVIEWER, "version": 1,
                "path": path, "system_id": system.id, "legal_effect": p["legal_effect"], "reason": point.reason,
                "basis": point.basis}))
            if not review:
                decided.append((system, view))
            results.append(SubmitResult(view, True))
        audit.record_many(session, events)
        for system, view in decided:
            self._enqueue(session, org, view.id, view.version, TOPIC_DECIDED, system.webhook_url,
                          system.webhook_secret_sealed, view)
        return results

    def _replay_key(self, session: Session, system_id: int, key: str, digest: str,
                    index: int | None) -> SubmitResult:
        existing = session.scalar(_BY_KEY.execution_options(populate_existing=True),
                                  {"system_id": system_id, "key": key})
        if existing is None:  # pragma: no cover - the row was seen or conflicted on in this transaction
            raise Conflict("this idempotency key is being used by a concurrent request; retry",
                           field="idempotency_key" if index is None else f"submissions[{index}].idempotency_key")
        return self._replay(session, existing, digest, index)

    def _replay(self, session: Session, existing: AiDecision, digest: str, index: int | None) -> SubmitResult:
        if digest != existing.request_sha256:
            raise Conflict("this idempotency key was used for a different request",
                           field="idempotency_key" if index is None else f"submissions[{index}].idempotency_key")
        return SubmitResult(self._view(session, existing), False)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, session: Session, decision_id: int) -> DecisionView:
        self._org(session)
        return self._view(session, self._decision_row(session, decision_id))

    def queue(self, session: Session, *, level: str | None = None, decision_type: str | None = None,
              system: str | None = None, statuses: Sequence[str] = OPEN_STATUSES, overdue_only: bool = False,
              limit: int = 50, cursor: str | None = None, with_total: bool = False) -> QueuePage:
        """Decisions waiting for review, earliest deadline first (keyset paging on ``(deadline_at, id)``).

        One index range scan per (status, level) pair on ``ix_oversight_decisions_queue``, merged here, so a
        page costs the same at 100,000 pending decisions as at 100."""
        self._org(session)
        limit = _check_limit(limit)
        if isinstance(statuses, str) or not statuses or any(s not in DECISION_STATUSES for s in statuses):
            raise InvalidInput(f"statuses are some of: {', '.join(DECISION_STATUSES)}", field="statuses")
        if level is not None and level not in LEVELS:
            raise InvalidInput(f"level is one of: {', '.join(LEVELS)}", field="level")
        filters = [AiDecision.deadline_at.is_not(None)]
        if decision_type is not None:
            filters.append(AiDecision.decision_type == check_type_code(decision_type))
        if system is not None:
            filters.append(AiDecision.ai_system_id == self._system_row(session, system, "system").id)
        now = utcnow()
        if overdue_only:
            filters.append(AiDecision.deadline_at < now)
        after: tuple[datetime, int] | None = None
        if cursor is not None:
            parts = _decode_cursor(cursor, "q")
            try:
                after = (datetime.fromisoformat(parts[0]), int(parts[1]))
                if after[0].tzinfo is None:
                    raise ValueError
            except (ValueError, TypeError, IndexError):
                raise InvalidInput("not a cursor this listing gave out", field="cursor") from None
        keys: list[tuple[datetime, int]] = []
        for status in dict.fromkeys(statuses):
            for lvl in ([level] if level is not None else list(LEVELS)):
                stmt = (select(AiDecision.deadline_at, AiDecision.id)
                        .where(AiDecision.status == status, AiDecision.level == lvl, *filters)
                        .order_by(AiDecision.deadline_at, AiDecision.id).limit(limit + 1))
                if after is not None:
                    stmt = stmt.where(AiDecision.deadline_at >= after[0],
                                      or_(AiDecision.deadline_at > after[0], AiDecision.id > after[1]))
                keys.extend((d, i) for d, i in session.execute(stmt))
        keys.sort()
        page, more = keys[:limit], len(keys) > limit
        rows = {r.id: r for r in session.scalars(select(AiDecision).where(AiDecision.id.in_([i for _, i in page])))} \
            if page else {}
        items = self._views(session, [rows[i] for _, i in page if i in rows], now)
        next_cursor = _encode_cursor("q", page[-1][0].isoformat(), page[-1][1]) if more and page else None
        total = None
        if with_total:
            stmt = select(func.count()).select_from(AiDecision).where(AiDecision.status.in_(list(statuses)), *filters)
            if level is not None:
                stmt = stmt.where(AiDecision.level == level)
            total = int(session.scalar(stmt) or 0)
        return QueuePage(items, next_cursor, total)

    def list_decisions(self, session: Session, *, status: str | None = None, decision_type: str | None = None,
                       system: str | None = None, limit: int = 50, cursor: str | None = None,
                       with_total: bool = False) -> QueuePage:
        """Every decision (any status), newest first; keyset paging on ``id``."""
        self._org(session)
        limit = _check_limit(limit)
        stmt = select(AiDecision).order_by(AiDecision.id.desc()).limit(limit + 1)
        count = select(func.count()).select_from(AiDecision)
        conditions = []
        if status is not None:
            if status not in DECISION_STATUSES:
                raise InvalidInput(f"status is one of: {', '.join(DECISION_STATUSES)}", field="status")
            conditions.append(AiDecision.status == status)
        if decision_type is not None:
            conditions.append(AiDecision.decision_type == check_type_code(decision_type))
        if system is not None:
            conditions.append(AiDecision.ai_system_id == self._system_row(session, system, "system").id)
        if cursor is not None:
            parts = _decode_cursor(cursor, "l")
            if len(parts) != 1 or isinstance(parts[0], bool) or not isinstance(parts[0], int):
                raise InvalidInput("not a cursor this listing gave out", field="cursor")
            stmt = stmt.where(AiDecision.id < parts[0])
        if conditions:
            stmt, count = stmt.where(*conditions), count.where(*conditions)
        rows = list(session.scalars(stmt))
        more = len(rows) > limit
        rows = rows[:limit]
        return QueuePage(self._views(session, rows), _encode_cursor("l", rows[-1].id) if more else None,
                         int(session.scalar(count) or 0) if with_total else None)

    def subject_decisions(self, session: Session, subject_id: int) -> list[DecisionView]:
        """Every decision about one vault subject, newest first (the reviewer's "previous decisions")."""
        self._org(session)
        if isinstance(subject_id, bool) or not isinstance(subject_id, int):
            raise InvalidInput("subject id is an integer", field="subject_id")
        rows = list(session.scalars(select(AiDecision).where(AiDecision.subject_id == subject_id)
                                    .order_by(AiDecision.id.desc()).limit(500)))
        return self._views(session, rows)

    def subject_id_of(self, session: Session, decision_id: int) -> int:
        """The vault subject id of a decision (for the reviewer UI's "previous decisions" and portal)."""
        self._org(session)
        return self._decision_row(session, decision_id).subject_id

    def reviews(self, session: Session, decision_id: int) -> list[ReviewView]:
        self._org(session)
        self._decision_row(session, decision_id)
        rows = session.scalars(select(DecisionReview).where(DecisionReview.decision_id == decision_id)
                               .order_by(DecisionReview.decided_at, DecisionReview.id))
        return [ReviewView(r.id, r.decision_id, r.actor, r.action, r.level, r.outcome, r.rationale, r.seconds_spent,
                           r.decided_at, r.agreed_with_model, r.objection_id) for r in rows]

    # -- reviewing -------------------------------------------------------------------------------

    def open(self, session: Session, decision_id: int, *, user: User) -> DecisionView:
        """A reviewer opened the decision: the start of their time spent on it (evidence of review)."""
        org = self._org(session)
        self._check_user(user, org)
        row = self._decision_row(session, decision_id)
        session.add(DecisionOpening(organization_id=org, decision_id=row.id, user_id=user.id, opened_at=utcnow()))
        session.flush()
        return self._view(session, row)

    def _opened_at(self, session: Session, decision_id: int, user_id: int) -> datetime | None:
        return session.scalar(select(func.max(DecisionOpening.opened_at)).where(
            DecisionOpening.decision_id == decision_id, DecisionOpening.user_id == user_id))

    def review(self, session: Session, decision_id: int, *, user: User, action: str, expected_version: int,
               outcome: Any = None, rationale: str | None = None) -> DecisionView:
        """A human acts on a decision in the queue: approve, amend (a new outcome), reject or escalate.

        A written rationale is required for amend and reject, and for approving a high-risk decision or a
        type whose policy asks for one (issue 6). Four-eyes types take effect on the second approval, which
        must come from someone else. Senior-level decisions (escalated) need a senior reviewer (dpo, admin).
        ``expected_version`` is the version the reviewer saw: if anything changed since, :class:`Conflict`.
        """
        org = self._org(session)
        self._check_user(user, org)
        if action not in (ACTION_APPROVE, ACTION_AMEND, ACTION_REJECT, ACTION_ESCALATE):
            raise InvalidInput("action is one of: approve, amend, reject, escalate", field="action")
        if isinstance(expected_version, bool) or not isinstance(expected_version, int):
            raise InvalidInput("expected_version is the decision's version you reviewed", field="expected_version")
        row = self._decision_row(session, decision_id)
        if row.status not in OPEN_STATUSES:
            raise Conflict(f"the decision is already {row.status}", field="status")
        if row.version != expected_version:
            raise Conflict("the decision changed since you loaded it; reload it", field="expected_version")
        if row.level == LEVEL_SENIOR and not _roles(user) & SENIOR_ROLES:
            raise PermissionDenied("an escalated decision needs a senior reviewer (dpo or admin)", field="user")
        policy = self._policy_for(session, row.decision_type)
        rationale = _short_text(rationale, "rationale", MAX_RATIONALE, no_pd=False)
        new_outcome = None
        if action == ACTION_AMEND:
            if outcome is None:
                raise InvalidInput("an amendment needs the new outcome", field="outcome")
            new_outcome = check_outcome(outcome, policy.outcome_schema if policy else {"type": "text"}, "outcome")
        elif outcome is not None:
            raise InvalidInput("an outcome is given only with amend", field="outcome")
        if action in (ACTION_AMEND, ACTION_REJECT) and rationale is None:
            raise InvalidInput("amending or rejecting needs a written rationale", field="rationale")
        if action == ACTION_APPROVE and rationale is None and (
                row.risk_class == "high" or (policy is not None and policy.rationale_on_approve)):
            raise InvalidInput("approving this decision needs a written rationale (high risk or policy)",
                               field="rationale")
        if action == ACTION_ESCALATE and row.level == LEVEL_SENIOR:
            raise InvalidInput("the decision is already with a senior reviewer", field="action")
        if action == ACTION_APPROVE and row.four_eyes and row.approvals >= 1:
            earlier = session.scalars(select(DecisionReview.user_id).where(
                DecisionReview.decision_id == row.id, DecisionReview.action == ACTION_APPROVE)).all()
            if user.id in earlier:
                raise PermissionDenied("four-eyes: the second approval must come from another reviewer", field="user")
        now = utcnow()
        opened_at = self._opened_at(session, row.id, user.id)
        level_before = row.level
        self._claim(session, row, expected_version, statuses=OPEN_STATUSES)
        final = False
        if action == ACTION_APPROVE:
            row.approvals += 1
            if not row.four_eyes or row.approvals >= 2:
                row.status, row.final_outcome, final = APPROVED, row.proposed_outcome, True
        elif action == ACTION_AMEND:
            row.status, row.final_outcome, final = AMENDED, new_outcome, True
        elif action == ACTION_REJECT:
            row.status, row.final_outcome, final = REJECTED, None, True
        else:
            row.status, row.level, row.escalated_at = ESCALATED, LEVEL_SENIOR, now
            row.deadline_at = now + timedelta(hours=policy.senior_hours if policy else 24)
        if final:
            row.decided_at, row.decided_by = now, _user_actor(user)
            if row.status in EFFECTIVE_STATUSES:
                row.effective_at = now
        agreed = True if action == ACTION_APPROVE else (False if action in (ACTION_AMEND, ACTION_REJECT) else None)
        session.add(DecisionReview(
            organization_id=org, decision_id=row.id, user_id=user.id, actor=_user_actor(user),
            decision_type=row.decision_type, action=action, level=level_before, outcome=new_outcome,
            rationale=rationale, model_confidence=row.confidence, agreed_with_model=agreed, opened_at=opened_at,
            decided_at=now,
            seconds_spent=round((now - opened_at).total_seconds(), 3) if opened_at is not None else None))
        session.flush()
        self._audit(session, row, _user_actor(user), f"oversight.{action}", approvals=row.approvals,
                    rationale=rationale is not None)
        if final:
            self._notify(session, row, TOPIC_DECIDED)
        return self._view(session, row)

    def _policy_for(self, session: Session, code: str) -> DecisionTypeInfo | None:
        try:
            return self.decision_type(session, code)
        except (NotFound, InvalidInput):
            row = session.scalar(select(DecisionTypePolicy).where(DecisionTypePolicy.code == code))
            return self._info(row) if row is not None else None

    def sweep_deadlines(self, session: Session, *, now: datetime | None = None) -> dict[str, int]:
        """Decisions past their review deadline are never applied (issue 6, step 4): a reviewer-level
        decision is escalated to a senior reviewer (policy ``escalate``) or rejected (policy ``reject``); a
        senior-level one past its deadline times out. Returns counts per outcome."""
        self._org(session)
        now = now or utcnow()
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise InvalidInput("now must be a timezone-aware timestamp", field="now")
        counts = {"escalated": 0, "rejected": 0, "timed_out": 0}
        rows = list(session.scalars(select(AiDecision).where(
            AiDecision.status.in_(OPEN_STATUSES), AiDecision.deadline_at <= now)
            .order_by(AiDecision.deadline_at, AiDecision.id).limit(5000)))
        for row in rows:
            policy = self._policy_for(session, row.decision_type)
            try:
                with session.begin_nested():
                    self._claim(session, row, row.version, statuses=OPEN_STATUSES)
            except Conflict:
                continue  # a reviewer acted meanwhile
            if row.level == LEVEL_REVIEWER and (policy is None or policy.on_timeout == ON_TIMEOUT_ESCALATE):
                row.status, row.level, row.escalated_at = ESCALATED, LEVEL_SENIOR, now
                row.deadline_at = now + timedelta(hours=policy.senior_hours if policy else 24)
                key, final = "escalated", False
            elif row.level == LEVEL_REVIEWER:
                row.status, row.reason, key, final = REJECTED, TIMEOUT_REASON, "rejected", True
            else:
                row.status, row.reason, key, final = TIMED_OUT, TIMEOUT_REASON, "timed_out", True
            if final:
                row.final_outcome, row.decided_at, row.decided_by = None, now, DEADLINE_ACTOR
            session.flush()
            self._audit(session, row, DEADLINE_ACTOR, f"oversight.deadline_{key}")
            if final:
                self._notify(session, row, TOPIC_DECIDED)
            counts[key] += 1
        return counts

    # -- explanation (L-AI-DECISION, L-AI-USER) ----------------------------------------------------

    def explanation(self, session: Session, decision_id: int, lang: str) -> Explanation:
        """The decision in plain words for the subject: the type, the outcome, the key factors and which way
        each weighed, and the subject's rights."""
        self._org(session)
        if lang not in _LANGS:
            raise InvalidInput("lang is one of: kk, ru, en", field="lang")
        row = self._decision_row(session, decision_id)
        policy = self._policy_for(session, row.decision_type)
        schema = policy.outcome_schema if policy else {"type": "text"}
        shown = row.final_outcome if row.status not in OPEN_STATUSES else row.proposed_outcome
        text = outcome_text(shown, schema, lang)
        factors = []
        for f in sorted(row.factors, key=lambda f: (-abs(f["weight"]), f["code"])):
            weight = f["weight"]
            strength = _STRENGTH[lang][0 if abs(weight) < 0.2 else (1 if abs(weight) < 0.5 else 2)]
            direction = _DIRECTION[lang][0 if weight >= 0 else 1]
            factors.append({"code": f["code"], "label": f.get("label") or f["code"], "weight": weight,
                            "value": f.get("value"), "direction_text": f"{strength} {direction}"
                            if lang != "kk" else f"{direction} ({strength})"})
        return Explanation(row.id, lang, policy.name(lang) if policy else row.decision_type, text, factors,
                           list(_RIGHTS[lang]), _STATUS_TEXT.get(row.status, {}).get(lang, ""))

    # -- objections (L-PD-AUTO) ----------------------------------------------------------------------

    def _objection_view(self, session: Session, row: DecisionObjection, *, include_text: bool = False,
                        usernames: Mapping[int, str] | None = None, today: date | None = None) -> ObjectionView:
        today = today or local_date(utcnow())
        assigned = None
        if row.assigned_user_id is not None:
            if usernames is not None and row.assigned_user_id in usernames:
                assigned = usernames[row.assigned_user_id]
            else:
                assigned = session.scalar(select(User.username).where(User.id == row.assigned_user_id))
        text = None
        if include_text and row.text_sealed is not None:
            text = self.platform.keyring.decrypt(session, bytes(row.text_sealed),
                                                 _objection_aad(row.organization_id, row.decision_id)).decode()
        late = row.status == OBJECTION_OPEN and today > row.due_on
        late = late or (row.decided_at is not None and local_date(row.decided_at) > row.due_on)
        return ObjectionView(row.id, row.decision_id, row.channel, row.filed_at, row.due_on, late, row.status,
                             assigned, row.decided_at, row.decided_by, text, row.assigned_user_id)

    def _actors_on(self, session: Session, decision_id: int) -> set[int]:
        return {uid for uid in session.scalars(select(DecisionReview.user_id).where(
            DecisionReview.decision_id == decision_id, DecisionReview.objection_id.is_(None))) if uid is not None}

    def object(self, session: Session, decision_id: int, *, channel: str, filed_by: str, text: str | None = None,
               citizen_user_id: int | None = None, now: datetime | None = None) -> ObjectionView:
        """The subject objects and asks for human review (L-PD-AUTO, L-AI-DECISION). Due in 3 working days
        (Asia/Almaty calendar); assigned to a reviewer who took no part in the decision (fewest open
        objections first), or left for any such reviewer when there is none."""
        org = self._org(session)
        filed_by = _actor(filed_by)
        if channel not in OBJECTION_CHANNELS:
            raise InvalidInput(f"channel is one of: {', '.join(OBJECTION_CHANNELS)}", field="channel")
        text = _short_text(text, "text", MAX_OBJECTION_TEXT, no_pd=False)
        if citizen_user_id is not None and (isinstance(citizen_user_id, bool) or not isinstance(citizen_user_id, int)):
            raise InvalidInput("citizen user id is an integer", field="citizen_user_id")
        row = self._decision_row(session, decision_id)
        if row.status in OPEN_STATUSES:
            raise Conflict("the decision is still under review; object once it is decided", field="decision_id")
        if session.scalar(select(DecisionObjection.id).where(DecisionObjection.decision_id == row.id,
                                                             DecisionObjection.status == OBJECTION_OPEN)) is not None:
            raise Conflict("an objection to this decision is already open", field="decision_id")
        if now is None:
            now = utcnow()
        elif not isinstance(now, datetime) or now.tzinfo is None:
            raise InvalidInput("now must be a timezone-aware timestamp", field="now")
        excluded = self._actors_on(session, row.id)
        if citizen_user_id is not None:
            excluded.add(citizen_user_id)
        assignee = self._pick_reviewer(session, excluded)
        sealed = None
        if text is not None:
            key_id = f"dk-oversight-objection-{org}"
            self.platform.keyring.get_or_create(session, key_id, OBJECTION_KEY_PURPOSE)
            sealed = self.platform.keyring.encrypt(session, key_id, text.encode(), _objection_aad(org, row.id))
        objection = DecisionObjection(
            organization_id=org, decision_id=row.id, channel=channel, filed_by=filed_by,
            citizen_user_id=citizen_user_id, text_sealed=sealed, human_review_requested=True, filed_at=now,
            due_on=add_working_days(local_date(now), self.objection_working_days(now)), assigned_user_id=assignee,
            status=OBJECTION_OPEN)
        session.add(objection)
        session.flush()
        audit.record(session, actor=filed_by, action="oversight.object", object_type="decision_objection",
                     object_id=str(objection.id), organization_id=org,
                     details={"decision_id": row.id, "channel": channel, "due_on": objection.due_on.isoformat(),
                              "assigned_user_id": assignee, "text": text is not None})
        return self._objection_view(session, objection)

    def _pick_reviewer(self, session: Session, excluded: set[int]) -> int | None:
        users = [u for u in session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.id))
                 if _roles(u) & REVIEWER_ROLES and u.id not in excluded]
        if not users:
            return None
        load = dict(session.execute(select(DecisionObjection.assigned_user_id, func.count()).where(
            DecisionObjection.status == OBJECTION_OPEN, DecisionObjection.assigned_user_id.is_not(None))
            .group_by(DecisionObjection.assigned_user_id)).all())
        # Plain reviewers first (seniors are the escalation path), then the least loaded, then the oldest.
        return min(users, key=lambda u: (0 if Role.REVIEWER.value in _roles(u) else 1, load.get(u.id, 0), u.id)).id

    def objections(self, session: Session, *, open_only: bool = False, overdue_only: bool = False,
                   limit: int = 100, decision_id: int | None = None,
                   assigned_user_id: int | None = None) -> list[ObjectionView]:
        """Objections, earliest due first for open ones (newest first otherwise)."""
        self._org(session)
        limit = _check_limit(limit, 1000)
        today = local_date(utcnow())
        stmt = select(DecisionObjection)
        if open_only or overdue_only:
            stmt = stmt.where(DecisionObjection.status == OBJECTION_OPEN).order_by(DecisionObjection.due_on,
                                                                                   DecisionObjection.id)
        else:
            stmt = stmt.order_by(DecisionObjection.id.desc())
        if overdue_only:
            stmt = stmt.where(DecisionObjection.due_on < today)
        if decision_id is not None:
            stmt = stmt.where(DecisionObjection.decision_id == decision_id)
        if assigned_user_id is not None:
            stmt = stmt.where(DecisionObjection.assigned_user_id == assigned_user_id)
        rows = list(session.scalars(stmt.limit(limit)))
        ids = {r.assigned_user_id for r in rows if r.assigned_user_id is not None}
        names = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}
        return [self._objection_view(session, r, usernames=names, today=today) for r in rows]

    def get_objection(self, session: Session, objection_id: int, *, include_text: bool = False,
                      actor: str | None = None) -> ObjectionView:
        """One objection. ``include_text`` unseals the subject's own words (they may hold personal data); with
        an ``actor`` (the web page and the API pass theirs, in a write transaction) the reading is audited —
        who read which objection, never the text."""
        org = self._org(session)
        row = self._objection_row(session, objection_id)
        view = self._objection_view(session, row, include_text=include_text)
        if include_text and actor is not None and row.text_sealed is not None:
            audit.record(session, actor=actor, action="oversight.objection_text_read", object_type="objection",
                         object_id=str(row.id), organization_id=org, details={"decision_id": row.decision_id})
        return view

    @staticmethod
    def _objection_row(session: Session, objection_id: Any) -> DecisionObjection:
        if isinstance(objection_id, bool) or not isinstance(objection_id, int):
            raise InvalidInput("objection id is an integer", field="objection_id")
        row = session.scalar(select(DecisionObjection).where(DecisionObjection.id == objection_id))
        if row is None:
            raise NotFound("no objection with this id", field="objection_id")
        return row

    def decide_objection(self, session: Session, objection_id: int, *, user: User, action: str, rationale: str,
                         outcome: Any = None) -> ObjectionView:
        """A reviewer who took no part in the decision rules on the objection (L-PD-AUTO): ``uphold`` (the
        decision stands) or ``overturn`` (with ``outcome``: the decision now has that outcome; without: it is
        annulled). Overturning tells the AI system (``decision.changed``)."""
        org = self._org(session)
        self._check_user(user, org)
        if action not in (ACTION_UPHOLD, ACTION_OVERTURN):
            raise InvalidInput("action is uphold or overturn", field="action")
        rationale = _short_text(rationale, "rationale", MAX_RATIONALE, required=True, no_pd=False)
        objection = self._objection_row(session, objection_id)
        if objection.status != OBJECTION_OPEN:
            raise Conflict(f"the objection is already {objection.status}", field="objection_id")
        decision = self._decision_row(session, objection.decision_id)
        if user.id in self._actors_on(session, decision.id):
            raise PermissionDenied("an objection is decided by someone who took no part in the decision",
                                   field="user")
        if objection.assigned_user_id not in (None, user.id) and not _roles(user) & SENIOR_ROLES:
            raise PermissionDenied("the objection is assigned to another reviewer", field="user")
        new_outcome = None
        if outcome is not None:
            if action != ACTION_OVERTURN:
                raise InvalidInput("an outcome is given only when overturning", field="outcome")
            policy = self._policy_for(session, decision.decision_type)
            new_outcome = check_outcome(outcome, policy.outcome_schema if policy else {"type": "text"}, "outcome")
        now = utcnow()
        claimed = session.execute(
            update(DecisionObjection).where(DecisionObjection.id == objection.id,
                                            DecisionObjection.status == OBJECTION_OPEN)
            .values(status=OBJECTION_UPHELD if action == ACTION_UPHOLD else OBJECTION_OVERTURNED,
                    decided_at=now, decided_by=_user_actor(user))
            .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            raise Conflict("another reviewer decided the objection meanwhile", field="objection_id")
        session.refresh(objection)
        opened_at = self._opened_at(session, decision.id, user.id)
        if action == ACTION_OVERTURN:
            self._claim(session, decision, decision.version, statuses=DECISION_STATUSES, field="decision_id")
            if new_outcome is not None:
                decision.status, decision.final_outcome, decision.effective_at = AMENDED, new_outcome, now
            else:
                decision.status, decision.final_outcome, decision.effective_at = REJECTED, None, None
            decision.decided_at, decision.decided_by = now, _user_actor(user)
        session.add(DecisionReview(
            organization_id=org, decision_id=decision.id, objection_id=objection.id, user_id=user.id,
            actor=_user_actor(user), decision_type=decision.decision_type, action=action, level=decision.level,
            outcome=new_outcome, rationale=rationale, model_confidence=decision.confidence, agreed_with_model=None,
            opened_at=opened_at, decided_at=now,
            seconds_spent=round((now - opened_at).total_seconds(), 3) if opened_at is not None else None))
        session.flush()
        late = local_date(now) > objection.due_on
        audit.record(session, actor=_user_actor(user), action=f"oversight.objection_{action}",
                     object_type="decision_objection", object_id=str(objection.id), organization_id=org,
                     details={"decision_id": decision.id, "status": objection.status, "late": late,
                              "decision_status": decision.status, "decision_version": decision.version})
        if action == ACTION_OVERTURN:
            self._notify(session, decision, TOPIC_CHANGED)
        return self._objection_view(session, objection)

    # -- evidence that review is meaningful ------------------------------------------------------------

    def reviewer_stats(self, session: Session, *, days: int = 90) -> list[ReviewerStats]:
        """Per reviewer and decision type over the last ``days``: decisions reviewed, approvals, overrides,
        median time spent (page open → action), agreement with the model's confidence, and the
        rubber-stamp flag (≥ 98 % approvals with a median under 10 s over ≥ 20 reviews)."""
        self._org(session)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise InvalidInput("days is 1–3660", field="days")
        since = utcnow() - timedelta(days=days)
        rows = session.execute(select(
            DecisionReview.user_id, DecisionReview.actor, DecisionReview.decision_type, DecisionReview.action,
            DecisionReview.seconds_spent, DecisionReview.model_confidence, DecisionReview.agreed_with_model)
            .where(DecisionReview.decided_at >= since, DecisionReview.user_id.is_not(None),
                   DecisionReview.objection_id.is_(None),
                   DecisionReview.action.in_([ACTION_APPROVE, ACTION_AMEND, ACTION_REJECT]))).all()
        groups: dict[tuple[int, str], list[Any]] = {}
        for r in rows:
            groups.setdefault((r.user_id, r.decision_type), []).append(r)
        out = []
        for (user_id, decision_type), items in sorted(groups.items()):
            n = len(items)
            approvals = sum(1 for r in items if r.action == ACTION_APPROVE)
            amendments = sum(1 for r in items if r.action == ACTION_AMEND)
            rejections = sum(1 for r in items if r.action == ACTION_REJECT)
            times = [r.seconds_spent for r in items if r.seconds_spent is not None]
            median = round(statistics.median(times), 3) if times else None
            # Agreement with confidence: approving when the model was confident (≥ 0.5), overriding when not.
            rated = [r for r in items if r.model_confidence is not None and r.agreed_with_model is not None]
            agreement = (round(sum(1 for r in rated if r.agreed_with_model == (r.model_confidence >= 0.5))
                               / len(rated), 4) if rated else None)
            rate = approvals / n
            out.append(ReviewerStats(
                actor=items[0].actor, user_id=user_id, decision_type=decision_type, reviewed=n, approvals=approvals,
                amendments=amendments, rejections=rejections, median_seconds=median, approval_rate=round(rate, 4),
                override_rate=round((amendments + rejections) / n, 4), agreement_with_confidence=agreement,
                rubber_stamp=(n >= RUBBER_STAMP_MIN_REVIEWS and rate >= RUBBER_STAMP_APPROVAL_RATE
                              and median is not None and median < RUBBER_STAMP_MEDIAN_SECONDS)))
        return out


def _objection_aad(organization_id: int, decision_id: int) -> bytes:
    return b"qorgau-oversight/v1\x00objection\x00org=%d\x00decision=%d" % (organization_id, decision_id)


_ATTRIBUTE = "_qorgau_oversight"


def oversight_for(platform: Platform) -> OversightService:
    """The platform's one :class:`OversightService` (API, web and CLI share it)."""
    return shared(platform, _ATTRIBUTE, OversightService)


def sweep_all(platform: Platform, *, now: datetime | None = None) -> dict[str, int]:
    """:meth:`OversightService.sweep_deadlines` for every organization with an open decision past its
    deadline (for a periodic job: the dispatcher or ``qorgau oversight sweep``)."""
    now = now or datetime.now(timezone.utc)
    with platform.db.reader() as session:
        orgs = session.execute(select(AiDecision.organization_id).where(
            AiDecision.status.in_(OPEN_STATUSES), AiDecision.deadline_at <= now).distinct()).scalars().all()
    service = oversight_for(platform)
    total = {"escalated": 0, "rejected": 0, "timed_out": 0}
    for org in orgs:
        with platform.db.transaction(org) as session:
            for key, n in service.sweep_deadlines(session, now=now).items():
                total[key] += n
    return total
