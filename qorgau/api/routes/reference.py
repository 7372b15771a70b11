"""Reference services other systems call: identifier validation and the working-day calendar.

Validation never echoes the value back in full: the response carries a masked form only, and the
request is not logged, so the endpoint can't become a leak of the identifiers it checks.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query

from ... import identifiers as ids
from ...core import calendar
from ..deps import Ctx
from ..schemas import DeadlineOut, IdentifierCheck, IdentifierResult

router = APIRouter(tags=["reference"])


def _facts(kind: str, value: str) -> tuple[str, dict[str, Any]]:
    """Parse ``value`` as ``kind``; returns (masked normalized form, non-identifying facts)."""
    if kind == "KZ_IIN":
        iin = ids.parse_iin(value)
        return ids.mask("KZ_IIN", iin.value), {"sex": iin.sex, "century": iin.century}
    if kind == "KZ_BIN":
        b = ids.parse_bin(value)
        return b.value, {"entity_type": b.entity_type, "attribute": b.attribute}
    if kind == "PHONE_NUMBER":
        phone = ids.parse_phone(value)
        return ids.mask("PHONE_NUMBER", phone.e164), {"country": phone.country, "kind": phone.kind}
    if kind == "EMAIL_ADDRESS":
        return ids.mask("EMAIL_ADDRESS", ids.normalize_email(value)), {}
    if kind == "IBAN_CODE":
        iban = ids.parse_iban(value)
        return ids.mask("IBAN_CODE", iban.value), {"country": iban.country}
    if kind == "CREDIT_CARD":
        card = ids.parse_card(value)
        return ids.mask("CREDIT_CARD", card.value), {"brand": card.brand}
    if kind == "KZ_PASSPORT":
        return ids.mask("KZ_PASSPORT", ids.parse_passport(value).value), {}
    return ids.mask("KZ_ID_CARD", ids.parse_id_card(value).value), {}


@router.post("/identifiers/validate", response_model=IdentifierResult,
             summary="Check an identifier (IIN, BIN, phone, e-mail, IBAN, card, passport, ID card)")
def validate_identifier(body: IdentifierCheck, ctx: Ctx) -> IdentifierResult:
    try:
        masked, facts = _facts(body.kind, body.value)
    except ids.IdentifierError as exc:
        return IdentifierResult(kind=body.kind, valid=False, masked=None, reason=exc.reason)
    return IdentifierResult(kind=body.kind, valid=True, masked=masked, reason=None, facts=facts)


@router.get("/calendar/deadline", response_model=DeadlineOut,
            summary="The date N working days after a start date (Kazakhstan's calendar)")
def deadline(ctx: Ctx, start: date = Query(...), working_days: int = Query(ge=0, le=3650)) -> DeadlineOut:
    due = calendar.add_working_days(start, working_days)
    return DeadlineOut(start=start, working_days=working_days, deadline=due, calendar_days=(due - start).days)
