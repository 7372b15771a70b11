"""The AI systems register's tables.

:class:`AiSystem` is an operator's AI system as the platform knows it. The oversight module (AI decisions
held for human approval, L-PD-AUTO, L-AI-DECISION) needs it first: a proposed decision names the system
that made it, the system's risk class and autonomy decide whether a human must approve, and the system's
webhook learns the outcome. The register proper (classification by rule packs, obligations, the public
register) extends this table; until a system is classified, ``risk_class`` and ``autonomy`` are what the
operator declared (``classified_by = "declared"``).

No personal data: names and codes of systems only. ``webhook_secret_sealed`` is sealed with the key ring.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, TenantScoped, utcnow

# L-AI-RISK: the law's three risk classes, and the degree of autonomy (L-AI-AUTONOMY).
RISK_CLASSES: tuple[str, ...] = ("minimal", "medium", "high")
AUTONOMY_LEVELS: tuple[str, ...] = ("low", "medium", "high")
SYSTEM_STATUSES: tuple[str, ...] = ("active", "suspended", "retired")


class AiSystem(TenantScoped, Base):
    """One AI system of an operator. ``code`` is the operator's stable handle (``scoring-v2``)."""

    __tablename__ = "ai_systems"
    __table_args__ = (UniqueConstraint("organization_id", "code", name="uq_ai_systems_org_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    risk_class: Mapped[str] = mapped_column(String(16))
    autonomy: Mapped[str] = mapped_column(String(16))
    classified_by: Mapped[str] = mapped_column(String(32), default="declared")
    status: Mapped[str] = mapped_column(String(16), default="active")
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (f"AiSystem(id={self.id}, org={self.organization_id}, code={self.code!r}, "
                f"risk={self.risk_class!r}, autonomy={self.autonomy!r})")


# --- the register (issue 7): questionnaire, classification by rule packs, obligations, trusted lists, sandbox,
# maturity index. Vocabularies are stable strings (stored, returned by the API).

OBLIGATION_STATUSES: tuple[str, ...] = ("open", "met", "relaxed", "void")
TRUSTED_STATUSES: tuple[str, ...] = ("requested", "included", "refused", "removed")
AUDIT_RESULTS: tuple[str, ...] = ("passed", "failed")
SANDBOX_STATUSES: tuple[str, ...] = ("submitted", "approved", "rejected", "withdrawn", "closed")
CLASSIFICATION_TRIGGERS: tuple[str, ...] = ("questionnaire", "pack_change", "manual")


class AiSystemProfile(TenantScoped, Base):
    """The register entry of one AI system: the questionnaire's answers (``facts``, keyed by the fact paths of
    ``qorgau/rules/facts.yaml``), its public register number and whether it is shown in the public register.
    State systems are public by default. ``version`` counts the questionnaire's saves."""

    __tablename__ = "ai_system_profiles"
    __table_args__ = (UniqueConstraint("ai_system_id", name="uq_ai_system_profiles_system"),
                      UniqueConstraint("register_id", name="uq_ai_system_profiles_register_id"),
                      Index("ix_ai_system_profiles_public_sector", "public", "sector"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"))
    register_id: Mapped[str] = mapped_column(String(32))           # KZ-AI-2026-000042
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    sector: Mapped[str | None] = mapped_column(String(64))
    state_system: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"AiSystemProfile(id={self.id}, system={self.ai_system_id}, register_id={self.register_id!r})"


class AiClassification(TenantScoped, Base):
    """One classification of a system by the rule packs, as of a date. The newest ``seq`` is current; each row
    keeps the packs it was made under (ids, versions, digest), the full result with citations, the facts that
    were missing to decide, and the diff against the previous classification."""

    __tablename__ = "ai_classifications"
    __table_args__ = (UniqueConstraint("ai_system_id", "seq", name="uq_ai_classifications_system_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    profile_version: Mapped[int] = mapped_column(Integer)           # AiSystemProfile.version classified
    packs: Mapped[list[Any]] = mapped_column(JSON, default=list)   # [{"id", "version", "digest"}]
    packs_digest: Mapped[str] = mapped_column(String(64))
    profiles: Mapped[list[Any]] = mapped_column(JSON, default=list)  # ["law"] or ["law", "stricter"]
    risk_level: Mapped[str | None] = mapped_column(String(16))     # None: facts missing to decide
    autonomy_level: Mapped[str | None] = mapped_column(String(16))
    prohibited: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    missing_facts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    diff: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trigger: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return (f"AiClassification(id={self.id}, system={self.ai_system_id}, seq={self.seq}, "
                f"risk={self.risk_level!r}, prohibited={self.prohibited})")


class AiObligation(TenantScoped, Base):
    """A duty a classification put on a system (label synthetic results, human oversight, audit…), with its
    rule, due date (working days where the law sets them) and state. It outlives re-classifications while the
    rule still applies; when it no longer does it becomes ``void``; a sandbox may mark it ``relaxed``."""

    __tablename__ = "ai_obligations"
    __table_args__ = (UniqueConstraint("ai_system_id", "rule_id", "code", name="uq_ai_obligations_system_rule_code"),
                      Index("ix_ai_obligations_org_status_due", "organization_id", "status", "due_on"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"))
    rule_id: Mapped[str] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    due_on: Mapped[date | None] = mapped_column(Date)
    classification_id: Mapped[int] = mapped_column(ForeignKey("ai_classifications.id"))
    sandbox_id: Mapped[int | None] = mapped_column(ForeignKey("ai_sandbox_applications.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    met_at: Mapped[datetime | None] = mapped_column()
    met_by: Mapped[str | None] = mapped_column(String(64))
    evidence: Mapped[str | None] = mapped_column(Text)              # a reference (document no., URL), not PD

    def __repr__(self) -> str:
        return f"AiObligation(id={self.id}, system={self.ai_system_id}, code={self.code!r}, status={self.status!r})"


class AiAudit(TenantScoped, Base):
    """An audit of a high-risk system (L-AI-TRUSTED; DC Art.100 p.4: training data legality and quality, no
    prohibited functionality) — the evidence a trusted-list inclusion needs."""

    __tablename__ = "ai_audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"), index=True)
    auditor: Mapped[str] = mapped_column(String(300))
    audited_on: Mapped[date] = mapped_column(Date)
    covers_training_data: Mapped[bool] = mapped_column(Boolean)
    prohibited_functionality_found: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"AiAudit(id={self.id}, system={self.ai_system_id}, result={self.result!r})"


class TrustedListEntry(TenantScoped, Base):
    """A request to include a high-risk system in a sector's list of trusted systems, and the regulator's
    decision (L-AI-TRUSTED). ``organization_id`` is the system's operator."""

    __tablename__ = "ai_trusted_entries"
    __table_args__ = (Index("ix_ai_trusted_entries_status_sector", "status", "sector"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"), index=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("ai_audits.id"))
    sector: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"TrustedListEntry(id={self.id}, system={self.ai_system_id}, status={self.status!r})"


class SandboxApplication(TenantScoped, Base):
    """An operator's application to a regulatory sandbox (L-AI-SANDBOX [plan]): the systems inside, the
    obligations it asks to relax (rule ids), and the regulator's decision with time limit and conditions."""

    __tablename__ = "ai_sandbox_applications"
    __table_args__ = (Index("ix_ai_sandbox_applications_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    requested_relaxations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    granted_relaxations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    conditions: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_reason: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"SandboxApplication(id={self.id}, org={self.organization_id}, status={self.status!r})"


class SandboxMember(TenantScoped, Base):
    """An AI system inside a sandbox application."""

    __tablename__ = "ai_sandbox_members"
    __table_args__ = (UniqueConstraint("application_id", "ai_system_id", name="uq_ai_sandbox_members_app_system"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("ai_sandbox_applications.id"))
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"), index=True)


class MaturitySnapshot(TenantScoped, Base):
    """An organization's maturity index on one day (L-AI-MATURITY [plan]): the score (0–100), the formula's
    version and the breakdown by component, kept for the trend chart."""

    __tablename__ = "maturity_snapshots"
    __table_args__ = (UniqueConstraint("organization_id", "computed_on", name="uq_maturity_snapshots_org_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_on: Mapped[date] = mapped_column(Date)
    score: Mapped[float] = mapped_column(Float)
    formula_version: Mapped[str] = mapped_column(String(16))
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"MaturitySnapshot(org={self.organization_id}, day={self.computed_on}, score={self.score})"


class RulePackVersion(Base):
    """A rule pack's version as the platform first saw it (platform-wide, not tenant data). A new digest at
    startup or ``qorgau rules reload`` means the law as code changed: classifications are re-run."""

    __tablename__ = "rule_pack_versions"
    __table_args__ = (UniqueConstraint("pack_id", "digest", name="uq_rule_pack_versions_pack_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
