"""The oversight module's tables (L-PD-AUTO, L-AI-DECISION, L-AI-USER).

* :class:`DecisionTypePolicy` — an operator's policy for one decision type (credit limit, loan, benefit…):
  the outcome schema, whether it has legal effect, the consent purpose automated processing needs, who
  must review, four-eyes, the review deadline and what happens at it. Platform defaults live in
  ``decision_types.yaml`` (data, not rows); a row with the same code overrides them for one operator.
* :class:`AiDecision` — one proposed decision about a person, from submission to effect. The subject is
  a vault subject id (never an identifier in the clear); ``factors`` are the key factors with weights the
  subject is entitled to learn (L-AI-DECISION). ``version`` is bumped by every state change and checked
  by it (optimistic concurrency: of two reviewers acting at once exactly one wins).
* :class:`DecisionReview` — one human action on a decision (approve, amend, reject, escalate, objection
  ruling) with the rationale and the time the reviewer spent (page open → action), the evidence that
  review is meaningful. :class:`DecisionOpening` records when a reviewer opened a decision.
* :class:`DecisionObjection` — the subject's objection, decided by a different reviewer within 3 working
  days (L-PD-AUTO). The subject's text is sealed with the key ring: it is free text and may hold personal
  data.

``repr`` shows ids and codes only; outcomes, factors, rationales and texts never reach logs or the audit
log (audit entries carry ids, codes and statuses).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, TenantScoped, utcnow

# --- vocabularies (stable strings: stored, sent in webhooks, shown by the API) --------------------------

# Paths a submitted decision can take.
PATH_REVIEW = "review"          # held for a human (legal effect, high risk, medium/high autonomy, policy)
PATH_AUTOMATIC = "automatic"    # policy lets it take effect without review (no legal effect, low risk)
PATH_REFUSED = "refused"        # automated processing without consent or legal basis (L-PD-AUTO)
PATHS: tuple[str, ...] = (PATH_REVIEW, PATH_AUTOMATIC, PATH_REFUSED)

# Decision status.
PENDING = "pending"             # in the review queue
ESCALATED = "escalated"         # in the senior reviewers' queue
APPROVED = "approved"           # effective, outcome as proposed
AMENDED = "amended"             # effective, outcome changed by the reviewer
REJECTED = "rejected"           # not applied, by a reviewer
TIMED_OUT = "timed_out"         # not applied: nobody reviewed it by the deadline (never auto-approved)
REFUSED = "refused"             # not applied: no consent or legal basis for automated processing
AUTOMATIC = "automatic"         # effective without review, as policy allows
OPEN_STATUSES: tuple[str, ...] = (PENDING, ESCALATED)
EFFECTIVE_STATUSES: tuple[str, ...] = (APPROVED, AMENDED, AUTOMATIC)
DECISION_STATUSES: tuple[str, ...] = (PENDING, ESCALATED, APPROVED, AMENDED, REJECTED, TIMED_OUT, REFUSED,
                                      AUTOMATIC)

LEVEL_REVIEWER = "reviewer"
LEVEL_SENIOR = "senior"
LEVELS: tuple[str, ...] = (LEVEL_REVIEWER, LEVEL_SENIOR)

# Review actions.
ACTION_APPROVE = "approve"
ACTION_AMEND = "amend"
ACTION_REJECT = "reject"
ACTION_ESCALATE = "escalate"
ACTION_UPHOLD = "uphold"        # objection decided: the decision stands
ACTION_OVERTURN = "overturn"    # objection decided: the decision is changed or annulled
ACTIONS: tuple[str, ...] = (ACTION_APPROVE, ACTION_AMEND, ACTION_REJECT, ACTION_ESCALATE, ACTION_UPHOLD,
                            ACTION_OVERTURN)

# What happens at the review deadline (never auto-approve).
ON_TIMEOUT_REJECT = "reject"
ON_TIMEOUT_ESCALATE = "escalate"
ON_TIMEOUT: tuple[str, ...] = (ON_TIMEOUT_REJECT, ON_TIMEOUT_ESCALATE)

# Objection status.
OBJECTION_OPEN = "open"
OBJECTION_UPHELD = "upheld"         # the decision stands
OBJECTION_OVERTURNED = "overturned"  # the decision was changed or annulled
OBJECTION_STATUSES: tuple[str, ...] = (OBJECTION_OPEN, OBJECTION_UPHELD, OBJECTION_OVERTURNED)
OBJECTION_CHANNELS: tuple[str, ...] = ("portal", "api", "written")


class DecisionTypePolicy(TenantScoped, Base):
    """An operator's policy for one decision type (overrides the platform default of the same code).

    ``outcome_schema`` is a small declared schema the proposed and amended outcomes must satisfy, e.g.
    ``{"type": "enum", "values": ["approve", "decline"]}`` or
    ``{"type": "number", "minimum": 0, "maximum": 10000000, "unit": "KZT"}``.
    ``review`` is ``"always"`` or ``"by_risk"`` (review when the decision has legal effect or the system is
    high-risk or of medium/high autonomy). ``purpose`` is the consent purpose the decision point checks
    before automated processing (L-PD-AUTO).
    """

    __tablename__ = "oversight_decision_types"
    __table_args__ = (UniqueConstraint("organization_id", "code", name="uq_oversight_decision_types_org_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name_kk: Mapped[str] = mapped_column(String(300))
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    outcome_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    legal_effect: Mapped[bool] = mapped_column(Boolean, default=True)
    purpose: Mapped[str] = mapped_column(String(64))
    review: Mapped[str] = mapped_column(String(16), default="by_risk")
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)
    rationale_on_approve: Mapped[bool] = mapped_column(Boolean, default=False)
    review_hours: Mapped[int] = mapped_column(Integer, default=24)
    on_timeout: Mapped[str] = mapped_column(String(16), default=ON_TIMEOUT_ESCALATE)
    senior_hours: Mapped[int] = mapped_column(Integer, default=24)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"DecisionTypePolicy(id={self.id}, org={self.organization_id}, code={self.code!r})"


class AiDecision(TenantScoped, Base):
    """One proposed decision about a person (see the module docstring)."""

    __tablename__ = "oversight_decisions"
    __table_args__ = (
        UniqueConstraint("organization_id", "ai_system_id", "idempotency_key",
                         name="uq_oversight_decisions_org_system_key"),
        # The review queue: open decisions of one level, earliest deadline first.
        Index("ix_oversight_decisions_queue", "organization_id", "status", "level", "deadline_at", "id"),
        Index("ix_oversight_decisions_org_type_status", "organization_id", "decision_type", "status"),
        Index("ix_oversight_decisions_org_subject", "organization_id", "subject_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    request_sha256: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int] = mapped_column(ForeignKey("vault_subjects.id"))
    decision_type: Mapped[str] = mapped_column(String(64))
    proposed_outcome: Mapped[Any] = mapped_column(JSON)
    final_outcome: Mapped[Any | None] = mapped_column(JSON)
    legal_effect: Mapped[bool] = mapped_column(Boolean)
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(100))
    confidence: Mapped[float | None] = mapped_column(Float)
    input_ref: Mapped[str | None] = mapped_column(String(2000))
    risk_class: Mapped[str] = mapped_column(String(16))
    autonomy: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16), default=LEVEL_REVIEWER)
    basis: Mapped[str | None] = mapped_column(String(32))
    consent_id: Mapped[int | None] = mapped_column(Integer)
    legal_basis_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(64))
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)
    approvals: Mapped[int] = mapped_column(Integer, default=0)
    deadline_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    effective_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    def __repr__(self) -> str:
        return (f"AiDecision(id={self.id}, org={self.organization_id}, type={self.decision_type!r}, "
                f"status={self.status!r}, level={self.level!r})")


class DecisionOpening(TenantScoped, Base):
    """A reviewer opened a decision (the start of "time spent" for their next action on it)."""

    __tablename__ = "oversight_openings"
    __table_args__ = (Index("ix_oversight_openings_decision_user", "decision_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("oversight_decisions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)


class DecisionReview(TenantScoped, Base):
    """One human action on a decision, with its rationale and the time spent (L-AI-DECISION)."""

    __tablename__ = "oversight_reviews"
    __table_args__ = (
        Index("ix_oversight_reviews_decision", "decision_id"),
        Index("ix_oversight_reviews_org_user_type", "organization_id", "user_id", "decision_type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("oversight_decisions.id"))
    objection_id: Mapped[int | None] = mapped_column(ForeignKey("oversight_objections.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(64))
    decision_type: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[Any | None] = mapped_column(JSON)
    rationale: Mapped[str | None] = mapped_column(Text)
    model_confidence: Mapped[float | None] = mapped_column(Float)
    agreed_with_model: Mapped[bool | None] = mapped_column(Boolean)
    opened_at: Mapped[datetime | None]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    seconds_spent: Mapped[float | None] = mapped_column(Float)

    def __repr__(self) -> str:
        return (f"DecisionReview(id={self.id}, decision={self.decision_id}, action={self.action!r}, "
                f"actor={self.actor!r})")


class DecisionObjection(TenantScoped, Base):
    """The subject's objection to a decision (L-PD-AUTO: decided within 3 working days, by someone else)."""

    __tablename__ = "oversight_objections"
    __table_args__ = (Index("ix_oversight_objections_org_status_due", "organization_id", "status", "due_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("oversight_decisions.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    filed_by: Mapped[str] = mapped_column(String(64))
    citizen_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    human_review_requested: Mapped[bool] = mapped_column(Boolean, default=True)
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_on: Mapped[date] = mapped_column(Date)
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default=OBJECTION_OPEN)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return (f"DecisionObjection(id={self.id}, org={self.organization_id}, decision={self.decision_id}, "
                f"status={self.status!r})")
