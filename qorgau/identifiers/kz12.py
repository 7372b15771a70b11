"""Shape and check-digit rules shared by the two 12-digit Kazakh numbers, the IIN and the BIN."""

from __future__ import annotations

from typing import Literal

from .checksums import kz_check_digit
from .errors import IdentifierError

TwelveDigitKind = Literal["KZ_IIN", "KZ_BIN"]


def require_twelve_digits(kind: TwelveDigitKind, s: str) -> str:
    """Strip ``s`` and check it is 12 ASCII digits; return the stripped value."""
    value = s.strip()
    if len(value) != 12:
        raise IdentifierError(kind, f"must be 12 digits, got {len(value)}")
    for position, ch in enumerate(value, start=1):
        if not ("0" <= ch <= "9"):
            raise IdentifierError(kind, f"must contain only digits 0-9; position {position} is not a digit")
    return value


def require_kz_check_digit(kind: TwelveDigitKind, value: str) -> None:
    """Raise unless the 12th digit of ``value`` is the mod-11 check digit of the first 11."""
    expected = kz_check_digit(value[:11])
    if expected is None:
        raise IdentifierError(
            kind, "no check digit can be valid for these first 11 digits (checksum is 10 under both weightings)"
        )
    if expected != ord(value[11]) - 48:
        raise IdentifierError(kind, f"check digit should be {expected}")


def require_eleven_digits(kind: TwelveDigitKind, first11: str) -> None:
    """Input check for the public ``*_check_digit`` helpers."""
    if len(first11) != 11 or not first11.isascii() or not first11.isdigit():
        raise IdentifierError(kind, f"a check digit needs 11 digits, got {len(first11)} characters")
