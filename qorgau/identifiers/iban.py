"""IBANs: Kazakh ones first, every other country's too, with the registry from ``schwifty``.

A KZ IBAN is ``KZ`` + 2 check digits + a 3-digit bank code + 13 letters or digits, 20 characters,
ISO 7064 mod-97 (LEGAL.md § Identifiers). An account number tied to a person is personal data,
so it is masked in ``repr`` like every other identifier here.

schwifty is imported on first use: it loads country and bank registries (~0.1 s), which a
process that only scans for IINs should not pay for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .checksums import iban_check_digits
from .errors import IdentifierError, require_str

if TYPE_CHECKING:
    from schwifty import IBAN
    from schwifty.domain import IBANSpec


@dataclass(frozen=True, slots=True, repr=False)
class Iban:
    """A valid IBAN in compact upper-case form. ``bank_code`` is the country's bank identifier
    inside the BBAN (for KZ the 3 digits after the check digits; empty where a country has none)."""

    value: str
    country_code: str
    check_digits: str
    bank_code: str
    account_code: str

    @property
    def formatted(self) -> str:
        """Groups of four, the way IBANs are printed (``KZ86 125K ZT50 0410 0100``)."""
        return " ".join(self.value[i : i + 4] for i in range(0, len(self.value), 4))

    def __repr__(self) -> str:
        return f"Iban({mask_iban(self.value)!r}, country_code={self.country_code!r})"


def parse_iban(s: str) -> Iban:
    """Parse an IBAN written with or without spaces, in any case, or raise :class:`IdentifierError`.

    Reasons are specific: unknown country, wrong length for that country (``must be 20 characters
    for KZ, got 19``), wrong layout, or ``check digits should be 86``.
    """
    compact = "".join(require_str("IBAN", s).split()).upper()
    if len(compact) < 5:
        raise IdentifierError("IBAN", f"is too short to be an IBAN ({len(compact)} characters)")
    for position, ch in enumerate(compact, start=1):
        if not ("A" <= ch <= "Z" or "0" <= ch <= "9"):
            raise IdentifierError("IBAN", f"may contain only letters A-Z and digits; position {position} is neither")
    country_code, check_digits, bban = compact[:2], compact[2:4], compact[4:]
    if not country_code.isalpha():
        raise IdentifierError("IBAN", "must start with a two-letter country code")
    if not check_digits.isdigit():
        raise IdentifierError("IBAN", "check digits (positions 3-4) must be digits")
    candidate, spec = _schwifty_iban(compact)
    if len(compact) != spec.iban_length:
        raise IdentifierError("IBAN", f"must be {spec.iban_length} characters for {country_code}, got {len(compact)}")
    if not spec.regex.match(bban):
        raise IdentifierError(
            "IBAN", f"does not follow the {country_code} layout after the check digits: {_describe(spec.bban_spec)}"
        )
    expected = iban_check_digits(country_code, bban)
    if check_digits != expected:
        raise IdentifierError("IBAN", f"check digits should be {expected} (mod-97)")
    return Iban(
        value=compact,
        country_code=country_code,
        check_digits=check_digits,
        bank_code=str(candidate.bank_code),
        account_code=str(candidate.account_code),
    )


def is_valid_iban(s: str) -> bool:
    """True if :func:`parse_iban` would accept ``s``. Not a hot path: it goes through schwifty."""
    try:
        parse_iban(s)
    except IdentifierError:
        return False
    return True


def mask_iban(value: str) -> str:
    """``KZ86125KZT5004100100`` → ``KZ86************0100``: country and check digits, last four."""
    if len(value) < 10:
        return value[:2] + "*" * (len(value) - 2)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


_SWIFT_CHARSETS = {"n": "digits", "a": "capital letters", "c": "letters or digits", "e": "spaces"}


def _describe(bban_spec: str) -> str:
    """SWIFT layout notation in words: ``3!n13!c`` → ``3 digits, 13 letters or digits``."""
    parts = re.findall(r"(\d+)(!?)([nace])", bban_spec)
    return ", ".join(
        f"{'' if exact else 'up to '}{count} {_SWIFT_CHARSETS[charset]}" for count, exact, charset in parts
    )


def _schwifty_iban(compact: str) -> tuple[IBAN, IBANSpec]:
    """An unvalidated schwifty IBAN (for component slicing) and its country's IBAN spec."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        candidate = IBAN(compact, allow_invalid=True)
        return candidate, candidate.spec
    except SchwiftyException:  # with allow_invalid, only an unknown country code gets here
        pass
    # Raised outside the except block: schwifty's messages quote the whole IBAN.
    raise IdentifierError("IBAN", f"country code {compact[:2]} has no IBAN format")
