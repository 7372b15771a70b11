"""Redaction over HTTP: a text comes back with its personal data masked, replaced, hashed, encrypted or dropped.

The text is scanned and redacted in memory and forgotten; only the redacted text is returned. ``hash`` and
``encrypt`` use the caller's organization's data keys, and because they use keys they leave an audit
entry (operator and counts, never text). Scan first, then open the write transaction: the scan may take
a while and must not hold the database's write lock.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ...core import audit
from ...core.auth import Role
from ...core.errors import InvalidInput
from ...discovery.redact import (
    Operator,
    RedactedItem,
    Redactor,
    organization_encryptor,
    organization_hash_key,
)
from ...discovery.types import EntityType
from ..deps import Context, requires
from ..schemas import Strict
from .discovery import MAX_SCAN_CHARS, shared_scanner

router = APIRouter(tags=["discovery"])
RedactCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REVIEWER))]
KNOWN_TYPES = frozenset(t.value for t in EntityType)


class RedactRequest(Strict):
    # Whitespace is kept: offsets in the answer point into the text exactly as it was sent.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(max_length=MAX_SCAN_CHARS, description="The text to redact (not stored, not logged).")
    operator: Operator = Field(default="mask", description="mask, replace, hash, encrypt or drop.")
    per_type: dict[str, Operator] | None = Field(
        default=None, max_length=50, description="An operator per entity type, e.g. {\"KZ_IIN\": \"hash\"}.")
    identifiers_only: bool = Field(default=False, description="Skip PERSON/ADDRESS/DATE_OF_BIRTH (faster).")
    min_score: float = Field(default=0.5, ge=0.0, le=1.0, description="Redact findings scored at least this.")


class RedactedItemOut(BaseModel):
    type: str
    start: int
    end: int
    new_start: int
    new_end: int
    operator: str


class RedactResponse(BaseModel):
    text: str
    items: list[RedactedItemOut]
    counts: dict[str, int]


def _items(items: list[RedactedItem]) -> list[RedactedItemOut]:
    return [RedactedItemOut(**i.to_dict()) for i in items]


@router.post("/redact", response_model=RedactResponse,
             summary="Redact the personal data in a text (mask, replace, hash, encrypt, drop)")
def redact_text(body: RedactRequest, request: Request, ctx: RedactCtx) -> RedactResponse:
    per_type = body.per_type or {}
    for name in per_type:
        if name not in KNOWN_TYPES:
            raise InvalidInput("unknown entity type; see the discovery entity types", field="per_type")
    findings = [f for f in shared_scanner(request, body.identifiers_only).scan(body.text) if f.score >= body.min_score]
    used = {body.operator, *per_type.values()}
    if not used & {"hash", "encrypt"}:
        result = Redactor(operator=body.operator, per_type=per_type).redact_text(body.text, findings)
        return RedactResponse(text=result.text, items=_items(result.items), counts=result.counts)

    org_id = ctx.principal.organization_id
    keyring = ctx.platform.keyring
    with ctx.write() as session:
        options: dict[str, Any] = {}
        if "hash" in used:
            options["hash_key"] = organization_hash_key(session, keyring, org_id)
        if "encrypt" in used:
            options["encryptor"] = organization_encryptor(session, keyring, org_id)
        result = Redactor(operator=body.operator, per_type=per_type, **options).redact_text(body.text, findings)
        audit.record(session, actor=ctx.actor, action="discovery.redact", object_type="text",
                     object_id=uuid.uuid4().hex, organization_id=org_id,
                     details={"operator": body.operator, "per_type": dict(per_type), "counts": result.counts})
    return RedactResponse(text=result.text, items=_items(result.items), counts=result.counts)
