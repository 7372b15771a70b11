"""Masked display forms, for UIs, logs and ``repr``: enough to recognise a value, not to reuse it.

Every identifier object's ``repr`` goes through the same per-kind maskers, so printing a parsed
value, logging it or showing it in a traceback never reveals the whole identifier (STYLE.md:
objects that hold PII don't print it).
"""

from __future__ import annotations

from .card import _SEPARATORS, mask_card
from .documents import mask_id_card, mask_passport, parse_passport
from .email_address import mask_email, normalize_email
from .errors import IdentifierError, Kind, require_str
from .iban import mask_iban
from .iin import mask_iin
from .phone import mask_phone, normalize_phone


def mask(kind: Kind, value: str) -> str:
    """The masked display form of ``value`` read as ``kind``.

    ``value`` may be raw user input; it is normalized first where that is cheap (a phone
    written ``8 (701) 234-56-78`` masks as ``+7 701 *** ** 78``). Invalid values are masked too,
    never echoed: a typo'd IIN is still somebody's IIN. Examples: IIN ``79******2728``, phone
    ``+7 701 *** ** 78``, e-mail ``a***@gov.kz``, IBAN ``KZ86************0100``, card
    ``4111********1111``, passport ``N******78``, ID card ``*******89``.
    """
    text = require_str(kind, value).strip()
    if kind in ("KZ_IIN", "KZ_BIN"):
        return mask_iin(text) if len(text) == 12 and text.isascii() and text.isdigit() else _mask_generic(text)
    if kind == "PHONE":
        try:
            return mask_phone(normalize_phone(text))
        except IdentifierError:
            return _mask_generic(text)
    if kind == "EMAIL":
        try:
            return mask_email(normalize_email(text))
        except IdentifierError:
            return mask_email(text.lower()) if "@" in text else _mask_generic(text)
    if kind == "IBAN":
        return mask_iban("".join(text.split()).upper())
    if kind == "CARD":
        digits = text.translate(_SEPARATORS)
        return mask_card(digits) if digits.isascii() and digits.isdigit() else _mask_generic(text)
    if kind == "KZ_PASSPORT":
        try:
            return mask_passport(parse_passport(text).value)
        except IdentifierError:
            return _mask_generic(text)
    if kind == "KZ_ID_CARD":
        return mask_id_card(text) if text.isascii() and text.isdigit() else _mask_generic(text)
    raise ValueError(f"unknown identifier kind {kind!r}")


def _mask_generic(text: str) -> str:
    """For values that do not even have their kind's shape: the last two characters at most."""
    if len(text) < 6:
        return "*" * len(text)
    return "*" * (len(text) - 2) + text[-2:]
