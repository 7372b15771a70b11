"""Tables of discovery: background scan jobs and the data map they keep up to date.

The data map answers "where does this operator hold personal data?": one :class:`DataSource` per file or
database that was scanned, one :class:`DataMapField` per column/field of it that holds personal data (with
its category — ``identifying`` or ``personal_data``, L-PD-SPLIT — and the rule that decided), and one
:class:`DataMapCount` per entity type found in that field. It stores counts, types and locations, never
the values found.

A :class:`ScanJob` is a file or database scan running in the background. Its inputs are kept twice: the
display form (database URLs without passwords) for people and logs, and sealed with the key provider
(AES-GCM, :class:`qorgau.core.keys.KeyRing`) for the worker, because a database URL may carry a password.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qorgau.core.db import Base, TenantScoped, utcnow

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
"""``succeeded``: every source was read (some may hold no findings); ``failed``: the job could not run or
at least one source could not be read (``sources_failed`` says how many; what was read is still in the
data map); ``cancelled``: stopped on request, what was scanned before that is kept."""

SOURCE_STATUSES = ("ok", "partial", "failed", "skipped")


class ScanJob(TenantScoped, Base):
    __tablename__ = "scan_jobs"
    __table_args__ = (Index("ix_scan_jobs_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    requested_by: Mapped[str] = mapped_column(String(100))
    sources: Mapped[list[str]] = mapped_column(JSON)
    """Inputs as shown to people: paths, and database URLs with the password removed."""
    sealed_sources: Mapped[bytes] = mapped_column(LargeBinary)
    """The real inputs (JSON list), AES-GCM sealed by the key ring; only the worker opens it."""
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Scan options: ``types``, ``min_score``, ``sample_rows``, ``text_field``, ``id_field``, ``workers``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    bytes_scanned: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_scanned: Mapped[int] = mapped_column(BigInteger, default=0)
    sources_done: Mapped[int] = mapped_column(Integer, default=0)
    sources_failed: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"ScanJob(id={self.id}, status={self.status!r}, sources={len(self.sources or ())})"


class DataSource(TenantScoped, Base):
    __tablename__ = "data_sources"
    __table_args__ = (UniqueConstraint("organization_id", "locator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """What was read: ``text``, ``csv``, ``xlsx``, ``docx``, ``pdf``, ``json``, ``jsonl``, ``parquet``,
    ``sql`` … (the discovery source kinds)."""
    locator: Mapped[str] = mapped_column(String(1000))
    """Where it is: an absolute path, or a database URL without its password."""
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_scanned_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_job_id: Mapped[int | None] = mapped_column(ForeignKey("scan_jobs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="ok")
    last_error: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(String(40))
    bytes_scanned: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_scanned: Mapped[int] = mapped_column(BigInteger, default=0)
    findings: Mapped[int] = mapped_column(BigInteger, default=0)
    identifying: Mapped[bool] = mapped_column(Boolean, default=False)
    """Holds at least one identifying field (the L-PD-SPLIT category)."""
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    """Holds at least one special-category field (health, biometric, financial)."""

    fields: Mapped[list[DataMapField]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True,
        order_by="DataMapField.field")

    def __repr__(self) -> str:
        return f"DataSource(id={self.id}, kind={self.kind!r}, status={self.status!r})"


class DataMapField(TenantScoped, Base):
    """One column/field of a source that holds personal data.

    ``field`` names the place inside the source: a column (``"iin"``), ``"table.column"`` for a database,
    ``"sheet!column"`` for a workbook, a JSON path, or ``"(text)"`` for running text (lines, paragraphs,
    pages). ``rule`` says what decided the category: a column-name rule, a value-share rule, or
    ``findings`` when only the scanner's findings did.
    """

    __tablename__ = "data_map_fields"
    __table_args__ = (UniqueConstraint("source_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("data_sources.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(20))
    special: Mapped[str | None] = mapped_column(String(20))
    entity_type: Mapped[str | None] = mapped_column(String(40))
    """The type the column as a whole holds, when classification could tell (e.g. ``KZ_IIN``)."""
    rule: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    findings: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    source: Mapped[DataSource] = relationship(back_populates="fields")
    counts: Mapped[list[DataMapCount]] = relationship(
        back_populates="field_row", cascade="all, delete-orphan", passive_deletes=True,
        order_by="DataMapCount.entity_type")

    def __repr__(self) -> str:
        return f"DataMapField(id={self.id}, source_id={self.source_id}, category={self.category!r})"


class DataMapCount(TenantScoped, Base):
    """How many findings of one entity type one field held at its last scan."""

    __tablename__ = "data_map_counts"
    __table_args__ = (UniqueConstraint("field_id", "entity_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("data_map_fields.id", ondelete="CASCADE"), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    max_score: Mapped[float] = mapped_column(Float, default=0.0)

    field_row: Mapped[DataMapField] = relationship(back_populates="counts")

    def __repr__(self) -> str:
        return f"DataMapCount(field_id={self.field_id}, entity_type={self.entity_type!r}, count={self.count})"
