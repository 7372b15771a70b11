"""Phone numbers, normalized to E.164 with Google's libphonenumber data (the ``phonenumbers`` package).

A mobile number is one of the identifiers a breach notice lists so that subjects can be told by
SMS (L-PD-BREACH). Kazakhstan shares country code +7 with Russia; which country a number belongs
to is decided by its number range (``7xx`` mobile and ``7xxx`` area codes are Kazakh), as
``phonenumbers.region_code_for_number`` does, never by the ``+7`` alone. Ranges that are not
geographic and shared by the whole +7 plan (``8 800`` toll-free) are reported as ``RU``, the
plan's main country in that data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from .errors import IdentifierError, require_str

PhoneKind = Literal[
    "mobile",
    "landline",
    "landline_or_mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
]

_KINDS: dict[int, PhoneKind] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}

_PARSE_FAILURES = {
    NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    NumberParseException.TOO_LONG: "is too long to be a phone number",
}

_SHORT = "is too short for a subscriber number (short service numbers such as 102 or 112 are not personal identifiers)"
_LENGTH_FAILURES = {
    ValidationResult.INVALID_COUNTRY_CODE: "has an unknown country calling code",
    ValidationResult.TOO_SHORT: _SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "lacks an area code (a local number cannot be placed)",
    ValidationResult.INVALID_LENGTH: "has a length no number in its country has",
    ValidationResult.TOO_LONG: "is too long for its country",
}

# Longer than any written phone number; libphonenumber itself stops at 250 characters.
_MAX_INPUT = 64


@dataclass(frozen=True, slots=True, repr=False)
class Phone:
    """A valid phone number. ``country`` is an ISO 3166 code (``"KZ"``, ``"RU"``, …) or ``"001"``
    for non-geographic numbers, as libphonenumber reports it."""

    e164: str
    kind: PhoneKind
    country: str

    def __repr__(self) -> str:
        return f"Phone({mask_phone(self.e164)!r}, kind={self.kind!r}, country={self.country!r})"


def parse_phone(s: str, default_region: str = "KZ") -> Phone:
    """Parse a phone number as people write it, or raise :class:`IdentifierError`.

    ``default_region`` decides how a number without ``+`` is read: for ``"KZ"``, the national
    ``8`` prefix (``8 (701) 234-56-78``, ``87012345678``) and bare ten-digit numbers
    (``7012345678``). Letters are refused: Kazakh numbers are not written as words, and
    libphonenumber would silently turn ``"CALL"`` into ``2255``. Only numbers in an assigned
    range pass; short service numbers (``102``) and USSD codes (``*141#``) do not.
    """
    text = require_str("PHONE", s).strip()
    if not text:
        raise IdentifierError("PHONE", "is empty")
    if len(text) > _MAX_INPUT:
        raise IdentifierError("PHONE", f"is longer than {_MAX_INPUT} characters")
    if "*" in text or "#" in text:
        raise IdentifierError("PHONE", "is a service code (* and # are not part of phone numbers)")
    if any(ch.isalpha() for ch in text):
        raise IdentifierError("PHONE", "contains letters (vanity numbers and extensions are not accepted)")
    number = _parse(text, default_region)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        raise IdentifierError("PHONE", _LENGTH_FAILURES.get(possible, "has an impossible length"))
    if not phonenumbers.is_valid_number(number):
        raise IdentifierError("PHONE", f"is not in any assigned number range of country code +{number.country_code}")
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        kind=_KINDS.get(phonenumbers.number_type(number), "unknown"),
        country=phonenumbers.region_code_for_number(number) or "001",
    )


def normalize_phone(s: str, default_region: str = "KZ") -> str:
    """The E.164 form (``+77012345678``) of a phone number, or :class:`IdentifierError`."""
    return parse_phone(s, default_region).e164


def mask_phone(e164: str) -> str:
    """``+77012345678`` → ``+7 701 *** ** 78``: country code, operator or area prefix, last two digits.

    Falls back to a generic mask if ``e164`` is not a parseable international number.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        number = None
    if number is None:
        return _mask_unparsed(e164)
    national = phonenumbers.national_significant_number(number)
    if len(national) < 7:
        return f"+{number.country_code} " + "*" * len(national)
    hidden = len(national) - 5
    stars = "*" * hidden if hidden <= 3 else "***" + " " + "*" * (hidden - 3)
    return f"+{number.country_code} {national[:3]} {stars} {national[-2:]}"


def _mask_unparsed(text: str) -> str:
    digits = [ch for ch in text if ch.isdigit()]
    return "*" * max(len(digits) - 2, 0) + "".join(digits[-2:])


def _parse(text: str, default_region: str) -> phonenumbers.PhoneNumber:
    # Raised outside the except block so libphonenumber's exception never rides along as context.
    failure = None
    try:
        return phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        failure = exc.error_type
    raise IdentifierError("PHONE", _PARSE_FAILURES.get(failure, "is not a phone number"))
