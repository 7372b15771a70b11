"""Identity documents: the Kazakh passport and the national ID card (format checks only).

Neither number has a check digit, so a format check is all that can be done: ``N`` + 8 digits
for a passport, 9 digits for an ID card (LEGAL.md § Identifiers). Nine digits on their own are
far too common (amounts, phone tails, order numbers) to call an ID card; spotting one in free
text needs context words ("удостоверение", "жеке куәлік", "ID card", "№ уд.") — that is the
discovery module's job, not this one's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import IdentifierError, require_str

# The passport series letter is a Latin N. People typing on a Russian or Kazakh layout produce
# the Cyrillic EN (U+041D), which looks the same; a scanner that missed it would miss real
# passports, so both letters, in either case, are accepted and normalized to Latin "N".
_PASSPORT_LETTERS = frozenset("Nn\u041d\u043d")  # Latin N n, Cyrillic EN en


@dataclass(frozen=True, slots=True, repr=False)
class Passport:
    """A Kazakh passport number in normalized form (``N12345678``). Build it with :func:`parse_passport`."""

    value: str

    @property
    def number(self) -> str:
        """The eight digits after the series letter."""
        return self.value[1:]

    def __repr__(self) -> str:
        return f"Passport({mask_passport(self.value)!r})"


@dataclass(frozen=True, slots=True, repr=False)
class IdCard:
    """A Kazakh national ID card number (9 digits). Build it with :func:`parse_id_card`."""

    value: str

    def __repr__(self) -> str:
        return f"IdCard({mask_id_card(self.value)!r})"


def parse_passport(s: str) -> Passport:
    """``N12345678``, ``n 12345678`` or with a Cyrillic EN (U+041D) → ``Passport('N******78')``.

    One space between letter and digits is tolerated, as it appears in typed forms.
    """
    text = require_str("KZ_PASSPORT", s).strip()
    if not text or text[0] not in _PASSPORT_LETTERS:
        raise IdentifierError("KZ_PASSPORT", "must start with the letter N")
    digits = text[1:]
    if digits.startswith(" "):
        digits = digits[1:]
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        raise IdentifierError("KZ_PASSPORT", f"must be N followed by 8 digits, got {len(digits)} characters after N")
    return Passport("N" + digits)


def parse_id_card(s: str) -> IdCard:
    """Nine digits → ``IdCard``. Format only: see the module docstring for why context matters."""
    value = require_str("KZ_ID_CARD", s).strip()
    if len(value) != 9:
        raise IdentifierError("KZ_ID_CARD", f"must be 9 digits, got {len(value)}")
    if not value.isascii() or not value.isdigit():
        raise IdentifierError("KZ_ID_CARD", "must contain only digits 0-9")
    return IdCard(value)


def mask_passport(value: str) -> str:
    """``N12345678`` → ``N******78``."""
    return value[:1] + "*" * max(len(value) - 3, 0) + value[-2:]


def mask_id_card(value: str) -> str:
    """``123456789`` → ``*******89``."""
    return "*" * max(len(value) - 2, 0) + value[-2:]
