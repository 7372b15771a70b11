"""Payment card numbers (PANs): Luhn, length 13-19, and the brand from the leading digits.

Kazakh wallets hold Visa and Mastercard, Russian Mir (2200-2204) and Chinese UnionPay, so all are
recognized, including Mastercard's 2-series (2221-2720) that older validators miss (LEGAL.md
§ Identifiers). A Luhn-valid number of an unknown brand is still returned (``brand="unknown"``):
whether an unbranded 16-digit number in a text is a card is for discovery to decide from context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .checksums import luhn_digit_for, luhn_matches
from .errors import IdentifierError, require_str

CardBrand = Literal["visa", "mastercard", "mir", "amex", "unionpay", "jcb", "discover", "diners", "maestro", "unknown"]

# (first digits as an inclusive range of integers of a given prefix length, brand), checked in
# order: more specific ranges come before broader ones that overlap them.
_BRAND_RANGES: tuple[tuple[int, int, int, CardBrand], ...] = (
    (4, 2200, 2204, "mir"),
    (4, 2221, 2720, "mastercard"),
    (2, 51, 55, "mastercard"),
    (2, 34, 34, "amex"),
    (2, 37, 37, "amex"),
    (1, 4, 4, "visa"),
    (2, 62, 62, "unionpay"),  # includes the Discover co-branded 622126-622925
    (4, 3528, 3589, "jcb"),
    (4, 6011, 6011, "discover"),
    (3, 644, 649, "discover"),
    (2, 65, 65, "discover"),
    (3, 300, 305, "diners"),
    (2, 36, 36, "diners"),
    (2, 38, 39, "diners"),
    (2, 50, 50, "maestro"),
    (2, 56, 58, "maestro"),
    (4, 6304, 6304, "maestro"),
    (4, 6759, 6759, "maestro"),
    (4, 6761, 6763, "maestro"),
)

_SEPARATOR_CHARS = " -\t\u00a0"
_SEPARATORS = str.maketrans("", "", _SEPARATOR_CHARS)


@dataclass(frozen=True, slots=True, repr=False)
class Card:
    """A Luhn-valid card number, digits only. Build it with :func:`parse_card`."""

    value: str
    brand: CardBrand

    def __repr__(self) -> str:
        return f"Card({mask_card(self.value)!r}, brand={self.brand!r})"


def is_valid_card(s: str) -> bool:
    """True if ``s`` is 13-19 digits (spaces and dashes allowed) passing Luhn. Same answer as
    :func:`parse_card`; the common undecorated case costs one ``encode`` and two C-level sums."""
    if not s.isascii() or not s.isdigit():
        s = s.strip().translate(_SEPARATORS)
        if not s.isascii() or not s.isdigit():
            return False
    n = len(s)
    if n < 13 or n > 19:
        return False
    return luhn_matches(s.encode())


def parse_card(s: str) -> Card:
    """Parse a card number as printed (``4111 1111 1111 1111``, ``4111-1111-…``) or raise
    :class:`IdentifierError` (wrong length, stray character, ``Luhn check digit should be 3``)."""
    text = require_str("CARD", s).strip()
    value = text.translate(_SEPARATORS)
    if value and not (value.isascii() and value.isdigit()):
        position = next(i for i, ch in enumerate(text, start=1) if not ("0" <= ch <= "9" or ch in _SEPARATOR_CHARS))
        raise IdentifierError("CARD", f"may contain only digits, spaces and dashes; character {position} is not")
    if not 13 <= len(value) <= 19:
        raise IdentifierError("CARD", f"must be 13-19 digits, got {len(value)}")
    if not luhn_matches(value.encode()):
        raise IdentifierError("CARD", f"Luhn check digit should be {luhn_digit_for(value[:-1])}")
    return Card(value=value, brand=card_brand(value))


def card_brand(digits: str) -> CardBrand:
    """The brand a card number's leading digits belong to, or ``"unknown"``."""
    for width, low, high, brand in _BRAND_RANGES:
        if len(digits) >= width and digits[:width].isdigit() and low <= int(digits[:width]) <= high:
            return brand
    return "unknown"


def luhn_check_digit(payload: str) -> int:
    """The digit to append to ``payload`` (the number without its last digit) to pass Luhn."""
    require_str("CARD", payload)
    if not payload or not payload.isascii() or not payload.isdigit():
        raise IdentifierError("CARD", "a Luhn payload must be digits only")
    return luhn_digit_for(payload)


def mask_card(value: str) -> str:
    """``4111111111111111`` → ``4111********1111``: the first four and the last four digits."""
    if len(value) < 12:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
