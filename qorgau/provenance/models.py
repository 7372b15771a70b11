"""Tables of AI content labels (issue 9; L-AI-LABEL).

* ``label_authorities`` — the installation's **local test CA** (embedded default): a root certificate and its
  sealed key, which issues each operator's signing certificate until the operator imports its own. C2PA
  validators reject self-signed end-entity certificates, so a two-level chain is the least that verifies; it is a
  *test* CA and every screen and report that trusts it says so.
* ``label_signers`` — an operator's signing credential: the certificate chain (end entity first, PEM) and the
  private key sealed with a data key (AES-256-GCM, :class:`qorgau.core.keys.KeyRing`). One is active per
  operator; replaced ones stay so that labels they signed still resolve (text labels name a certificate by its
  fingerprint).
* ``label_records`` — one row per label issued: which system, which format, the SHA-256 and size of the labeled
  output, the warning applied. Never the file name (names often hold personal data) and never the content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, TenantScoped, utcnow


class LabelAuthority(Base):
    __tablename__ = "label_authorities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="local-test")
    subject: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)   # SHA-256 of the certificate's DER
    cert_pem: Mapped[str] = mapped_column(Text)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)              # KeyRing ciphertext of the PKCS#8 DER key
    data_key_id: Mapped[str] = mapped_column(String(64))
    not_after: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"LabelAuthority(id={self.id}, kind={self.kind!r}, fingerprint={self.fingerprint[:16]!r})"


class LabelSigner(TenantScoped, Base):
    __tablename__ = "label_signers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))                       # local-test | imported
    algorithm: Mapped[str] = mapped_column(String(16))                  # ES256 | ES384 | ES512 | PS256 | Ed25519
    subject: Mapped[str] = mapped_column(String(500))
    issuer: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    serial_number: Mapped[str] = mapped_column(String(64), index=True)   # decimal, as C2PA readers report it
    chain_pem: Mapped[str] = mapped_column(Text)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    data_key_id: Mapped[str] = mapped_column(String(64))
    not_after: Mapped[datetime] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    retired_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"LabelSigner(id={self.id}, kind={self.kind!r}, active={self.active})"


class LabelRecord(TenantScoped, Base):
    __tablename__ = "label_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)    # KZ-LBL-2026-000001
    signer_id: Mapped[int] = mapped_column(ForeignKey("label_signers.id"))
    ai_system_id: Mapped[int] = mapped_column(ForeignKey("ai_systems.id"), index=True)
    register_id: Mapped[str] = mapped_column(String(32))
    media_type: Mapped[str] = mapped_column(String(100))
    digital_source_type: Mapped[str] = mapped_column(String(200))
    manifest_label: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)         # of the labeled output
    size: Mapped[int] = mapped_column(Integer)
    warning: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"LabelRecord(id={self.id}, reference={self.reference!r}, media_type={self.media_type!r})"
