"""Request and response bodies of the HTTP API. Unknown fields are rejected, not ignored."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: str
    schema_revision: str | None
    audit_tree_size: int | None


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off the ORM row

    id: int
    name: str
    bin: str
    is_demo: bool
    created_at: datetime


class MeOut(BaseModel):
    kind: str
    id: int
    organization: OrganizationOut
    roles: list[str]
    language: str | None
    must_change_password: bool


class MeUpdate(Strict):
    language: Literal["kk", "ru", "en"]


class PasswordChange(Strict):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


RoleName = Literal["admin", "dpo", "reviewer", "regulator", "citizen"]


class UserCreate(Strict):
    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(min_length=1, max_length=200)
    roles: list[RoleName] = Field(min_length=1)
    password: str | None = Field(default=None, min_length=10, max_length=1024)
    language: Literal["kk", "ru", "en"] | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off the ORM row

    id: int
    username: str
    display_name: str
    roles: list[str]
    language: str | None
    must_change_password: bool
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserCreated(UserOut):
    one_time_password: str | None = Field(description="Shown once; the user must change it at first login.")


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Literal["admin", "dpo", "reviewer", "regulator"]] = Field(min_length=1)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight off the ORM row

    id: int
    name: str
    prefix: str
    roles: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The full key, shown once. Send it as 'Authorization: Bearer <secret>'.")


class TreeHeadOut(BaseModel):
    tree_size: int
    root_hash: str
    signed_at: str
    key_id: str
    signature: str


class PublicKeyOut(BaseModel):
    key_id: str
    algorithm: Literal["Ed25519"]
    public_key: str


class AuditEntryOut(BaseModel):
    id: int
    created_at: datetime
    actor: str
    organization_id: int | None
    action: str
    object_type: str
    object_id: str
    details: dict
    details_digest: str
    leaf: str = Field(description="The exact bytes hashed into the tree (hex), for independent checking.")


class InclusionProofOut(BaseModel):
    entry_id: int
    tree_size: int
    leaf_hash: str
    path: list[str]
    root_hash: str
    tree_head: TreeHeadOut
    verified: bool


class ConsistencyProofOut(BaseModel):
    first: int
    second: int
    first_root: str
    second_root: str
    path: list[str]
    verified: bool


IdentifierKind = Literal["KZ_IIN", "KZ_BIN", "PHONE_NUMBER", "EMAIL_ADDRESS", "IBAN_CODE", "CREDIT_CARD",
                         "KZ_PASSPORT", "KZ_ID_CARD"]


class IdentifierCheck(Strict):
    kind: IdentifierKind
    value: str = Field(min_length=1, max_length=100)


class IdentifierResult(BaseModel):
    kind: str
    valid: bool
    masked: str | None = Field(description="Masked normalized form; the full value is never echoed.")
    reason: str | None
    facts: dict[str, str | int | bool | None] = {}


class DeadlineOut(BaseModel):
    start: date
    working_days: int
    deadline: date
    calendar_days: int


# Ids travel as JSON numbers: keep them within 2**53 so every client (and SQLite's INTEGER) holds them.
MAX_ID = 2**53
