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

from datetime import datetime

from sqlalchemy import Boolean, Integer, LargeBinary, String, Text, UniqueConstraint
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
