"""BIN — the business identification number of a legal entity, branch or joint entrepreneurship.

Layout ``YYMM T A NNNNN K`` (LEGAL.md § Identifiers): year and month of registration, entity type,
attribute, serial, and the same mod-11 check digit as the IIN. An operator names itself by BIN
(or IIN) in every consent (L-PD-CONSENT-FIELDS). A BIN identifies an organisation, not a person,
but it is masked like an IIN anyway: in a log a 12-digit number cannot be told apart at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .checksums import kz_check_digit
from .errors import IdentifierError, require_str
from .iin import mask_iin
from .kz12 import require_eleven_digits, require_kz_check_digit, require_twelve_digits

EntityType = Literal["resident_legal_entity", "non_resident_legal_entity", "joint_individual_entrepreneurship"]
BinAttribute = Literal["head_office", "branch", "representative_office", "peasant_farm"]

_ENTITY_TYPES: dict[str, EntityType] = {
    "4": "resident_legal_entity",
    "5": "non_resident_legal_entity",
    "6": "joint_individual_entrepreneurship",
}
_ATTRIBUTES: dict[str, BinAttribute] = {
    "0": "head_office",
    "1": "branch",
    "2": "representative_office",
    "3": "peasant_farm",
}

# YY has no century. Entities on today's register were registered after independence (1991),
# so 90-99 are the 1990s and 00-89 the 2000s; this pivot holds until 2090.
_PIVOT_YY = 90


@dataclass(frozen=True, slots=True, repr=False)
class Bin:
    """A checked BIN. Build it with :func:`parse_bin`."""

    value: str
    registration_year: int
    registration_month: int
    entity_type: EntityType
    attribute: BinAttribute

    def __repr__(self) -> str:
        return f"Bin({mask_bin(self.value)!r})"


def is_valid_bin(s: str) -> bool:
    """True if ``s`` is a valid BIN: 12 digits, month 01-12, type 4-6, attribute 0-3, check digit.

    Hot path with the same discipline as :func:`qorgau.identifiers.is_valid_iin`; accepts exactly
    what :func:`parse_bin` accepts.
    """
    if len(s) != 12:
        s = s.strip()
        if len(s) != 12:
            return False
    if not s.isascii() or not s.isdigit():
        return False
    b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11 = s.encode()  # byte values = digit + 48
    month = b2 * 10 + b3 - 528
    if month < 1 or month > 12:
        return False
    if b4 < 52 or b4 > 54:  # entity type "4".."6"
        return False
    if b5 > 51:  # attribute "0".."3"
        return False
    # kz_check_digit unrolled on byte values, as in is_valid_iin.
    c = (b0 + 2 * b1 + 3 * b2 + 4 * b3 + 5 * b4 + 6 * b5 + 7 * b6 + 8 * b7 + 9 * b8 + 10 * b9) % 11
    if c == 10:
        c = (3 * b0 + 4 * b1 + 5 * b2 + 6 * b3 + 7 * b4 + 8 * b5 + 9 * b6 + 10 * b7 + b9 + 2 * b10) % 11
        if c == 10:
            return False
    return c == b11 - 48


def parse_bin(s: str) -> Bin:
    """Parse and check a BIN, or raise :class:`IdentifierError` saying what is wrong."""
    value = require_twelve_digits("KZ_BIN", require_str("KZ_BIN", s))
    month = int(value[2:4])
    if not 1 <= month <= 12:
        raise IdentifierError("KZ_BIN", f"registration month (positions 3-4) must be 01-12, got {month:02d}")
    entity_type = _ENTITY_TYPES.get(value[4])
    if entity_type is None:
        hint = " (0-3 there is the day of a birth date: this looks like an IIN)" if value[4] <= "3" else ""
        raise IdentifierError("KZ_BIN", f"entity type (position 5) must be 4, 5 or 6, got {value[4]}{hint}")
    attribute = _ATTRIBUTES.get(value[5])
    if attribute is None:
        raise IdentifierError("KZ_BIN", f"attribute (position 6) must be 0-3, got {value[5]}")
    require_kz_check_digit("KZ_BIN", value)
    yy = int(value[:2])
    return Bin(
        value=value,
        registration_year=(1900 if yy >= _PIVOT_YY else 2000) + yy,
        registration_month=month,
        entity_type=entity_type,
        attribute=attribute,
    )


def bin_check_digit(first11: str) -> int | None:
    """The check digit for the first 11 digits of a BIN (same arithmetic as the IIN's), or None."""
    require_eleven_digits("KZ_BIN", require_str("KZ_BIN", first11))
    return kz_check_digit(first11)


def mask_bin(value: str) -> str:
    """Same shape as the IIN mask, for the reason given in the module docstring."""
    return mask_iin(value)
