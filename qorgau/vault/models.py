"""The identity vault's tables (L-PD-SPLIT): subjects, lookups (blind indexes), pseudonyms, certificates.

No column holds an identifier in the clear:

* ``vault_subjects.sealed`` is the subject's identifiers, AES-256-GCM under the subject's *own* data key
  (``data_keys`` row ``key_id``, wrapped by the master key). Destroying that key crypto-shreds them.
* ``vault_lookups.blind_index`` is HMAC-SHA256 under the organization's blind-index key — keyed, so a
  copy of the table cannot be reversed by enumerating the ≈ 9·10⁸ valid IINs (LEGAL.md § Identifiers).
* ``vault_pseudonyms.pseudonym`` is ``ps_`` + 26 letters derived under the organization's pseudonym key.

Every row is tenant-scoped (:class:`qorgau.core.db.TenantScoped`). ``repr`` shows ids only.
"""

from __future__ import annotations

from datetime import datetime
from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, TenantScoped, utcnow

ACTIVE = "active"
ERASED = "erased"


class VaultSubject(TenantScoped, Base):
    """One person. ``sealed`` is NULL once erased (the key is destroyed anyway; this is belt and braces)."""

    __tablename__ = "vault_subjects"
    __table_args__ = (
        Index("ix_vault_subjects_org_status", "organization_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_id: Mapped[str] = mapped_column(String(40))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Which entity types the subject has (bit per type, see service.TYPE_BITS): statistics without
    # decrypting anything. Types only, never values.
    type_mask: Mapped[int] = mapped_column(Integer, default=0)
    has_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"VaultSubject(id={self.id}, org={self.organization_id}, status={self.status!r})"


class VaultLookup(TenantScoped, Base):
    """Blind index → subject, only for lookup types (IIN, phone, e-mail, passport, ID card). Deleted on shred."""

    __tablename__ = "vault_lookups"
    __table_args__ = (
        UniqueConstraint("organization_id", "entity_type", "blind_index", name="uq_vault_lookups_org_type_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    blind_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    subject_id: Mapped[int] = mapped_column(ForeignKey("vault_subjects.id", ondelete="CASCADE"), index=True)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)

    def __repr__(self) -> str:
        return f"VaultLookup(id={self.id}, type={self.entity_type!r}, subject={self.subject_id})"


class VaultPseudonym(TenantScoped, Base):
    """Pseudonym of a subject in a domain. Kept after shred, so detokenize can say "erased on <date>"."""

    __tablename__ = "vault_pseudonyms"
    __table_args__ = (
        UniqueConstraint("organization_id", "domain", "pseudonym", name="uq_vault_pseudonyms_org_domain_pseudonym"),
        UniqueConstraint("subject_id", "domain", name="uq_vault_pseudonyms_subject_domain"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(40))
    pseudonym: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(ForeignKey("vault_subjects.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"VaultPseudonym(id={self.id}, domain={self.domain!r}, subject={self.subject_id})"


class ErasureCertificateRecord(TenantScoped, Base):
    """A signed erasure certificate as issued (``document`` is the exact signed JSON text)."""

    __tablename__ = "vault_erasure_certificates"
    __table_args__ = (
        Index("ix_vault_erasure_certificates_org_erased", "organization_id", "erased_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[str] = mapped_column(String(32), unique=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("vault_subjects.id", ondelete="CASCADE"), index=True)
    pseudonym: Mapped[str] = mapped_column(String(32))
    domain: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(40))
    audit_entry_id: Mapped[int] = mapped_column(BigInteger)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    erased_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    document: Mapped[str] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"ErasureCertificateRecord(id={self.certificate_id!r}, subject={self.subject_id})"
