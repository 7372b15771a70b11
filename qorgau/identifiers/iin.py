"""IIN — the individual identification number every resident of Kazakhstan carries.

Layout ``YYMMDD C SSSS K`` (LEGAL.md § Identifiers): birth date, a century-and-sex digit, a serial
and a mod-11 check digit. The IIN is the key identifier of a person: it names the subject in a
consent (L-PD-CONSENT-FIELDS), in a breach notice (L-PD-BREACH), and it is what the identity
vault keeps apart from the data (L-PD-SPLIT). Because its first seven digits are the birth date
and sex, an IIN is personal data on its own, so nothing here prints one in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from .checksums import kz_check_digit
from .errors import IdentifierError, require_str
from .kz12 import require_eleven_digits, require_kz_check_digit, require_twelve_digits

Sex = Literal["male", "female"]

# Century digit (position 7) → first year of the birth century; odd digits are men.
_CENTURY_START = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
# Same, indexed by the digit's byte value (48 = "0"); 0 means "not a century digit".
_CENTURY_BY_BYTE = (0,) * 49 + (1800, 1800, 1900, 1900, 2000, 2000) + (0,) * 3
# Longest month lengths; 29 February is checked against the actual year separately.
_MAX_DAY = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True, repr=False)
class Iin:
    """A checked IIN. Build it with :func:`parse_iin`.

    ``century`` is the first year of the birth century (1800, 1900 or 2000), so
    ``birth_date.year == century + int(value[:2])``.

    ``repr`` shows only the mask (``Iin('79******2728')``): birth date and sex are deliberately
    left out too, because with them the mask would give away all but one digit.
    """

    value: str
    birth_date: date
    sex: Sex
    century: int

    def __repr__(self) -> str:
        return f"Iin({mask_iin(self.value)!r})"


def is_valid_iin(s: str) -> bool:
    """True if ``s`` is a valid IIN: 12 digits, a century digit 1-6, a real date, a matching check digit.

    Hot path for scanners: no exceptions, no regex, no function calls, one small allocation
    (``encode``); the date is checked before the checksum because random digits usually fail it. Accepts
    exactly what :func:`parse_iin` accepts (surrounding whitespace is stripped); future birth
    dates are not rejected, since that would make the answer depend on the clock.
    """
    if len(s) != 12:
        s = s.strip()
        if len(s) != 12:
            return False
    if not s.isascii() or not s.isdigit():  # isascii first: O(1), and excludes "²", "٣"
        return False
    b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11 = s.encode()  # byte values = digit + 48
    month = b2 * 10 + b3 - 528  # 528 = 48 * 11 removes the ASCII offset of two digits
    if month < 1 or month > 12:
        return False
    day = b4 * 10 + b5 - 528
    if day < 1 or day > _MAX_DAY[month]:
        return False
    century = _CENTURY_BY_BYTE[b6]
    if not century:
        return False
    if day == 29 and month == 2:
        year = century + b0 * 10 + b1 - 528
        if year % 4 or (year % 100 == 0 and year % 400):
            return False
    # kz_check_digit unrolled on byte values (why that works: checksums module docstring),
    # inlined because a function call costs ~12 % of checking a valid IIN.
    c = (b0 + 2 * b1 + 3 * b2 + 4 * b3 + 5 * b4 + 6 * b5 + 7 * b6 + 8 * b7 + 9 * b8 + 10 * b9) % 11
    if c == 10:
        c = (3 * b0 + 4 * b1 + 5 * b2 + 6 * b3 + 7 * b4 + 8 * b5 + 9 * b6 + 10 * b7 + b9 + 2 * b10) % 11
        if c == 10:
            return False
    return c == b11 - 48


def parse_iin(s: str) -> Iin:
    """Parse and check an IIN, or raise :class:`IdentifierError` saying what is wrong.

    Checks run in the order a person can act on them: shape, century digit, birth date, then
    the check digit; a mistyped date is reported as a date, not as a checksum failure.
    """
    value = require_twelve_digits("KZ_IIN", require_str("KZ_IIN", s))
    century_digit = ord(value[6]) - 48
    century = _CENTURY_START.get(century_digit)
    if century is None:
        raise IdentifierError("KZ_IIN", f"century digit (position 7) must be 1-6, got {century_digit}")
    year, month, day = century + int(value[:2]), int(value[2:4]), int(value[4:6])
    birth_date = _existing_date(year, month, day)
    if birth_date is None:
        # A date that does not exist cannot be anybody's birth date, so it may be named.
        raise IdentifierError("KZ_IIN", f"birth date {year:04d}-{month:02d}-{day:02d} does not exist")
    require_kz_check_digit("KZ_IIN", value)
    return Iin(
        value=value,
        birth_date=birth_date,
        sex="male" if century_digit % 2 else "female",
        century=century,
    )


def iin_check_digit(first11: str) -> int | None:
    """The check digit for the first 11 digits of an IIN, or None when no digit can be valid.

    Useful for generating test data and for telling a user which digit was expected.
    The same arithmetic applies to BINs (:func:`qorgau.identifiers.bin_check_digit`).
    """
    require_eleven_digits("KZ_IIN", require_str("KZ_IIN", first11))
    return kz_check_digit(first11)


def mask_iin(value: str) -> str:
    """``791028302728`` → ``79******2728``: birth year and serial tail, enough to tell rows apart."""
    return value[:2] + "******" + value[8:]


def _existing_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
