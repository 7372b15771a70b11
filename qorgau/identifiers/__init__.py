"""Identifiers of Kazakhstan's personal-data law: parse, validate, normalize, mask.

Pure functions, no I/O. ``is_valid_iin``, ``is_valid_bin`` and ``is_valid_card`` are the hot-path
checks for scanners (no exceptions, no regex; benchmark in ``bench/identifiers_validate.py``);
the ``parse_*`` functions return frozen dataclasses and raise :class:`IdentifierError` with a
reason a user can act on — never with the value itself. Every returned object masks its value
in ``repr``/``str``; read ``.value`` (or ``.e164``) explicitly when you really need it.

Rules: LEGAL.md § Identifiers (validation rules). Why it matters: the IIN and the mobile number
are how subjects are named in consents and breach notices (L-PD-CONSENT-FIELDS, L-PD-BREACH),
and they are what the identity vault keeps apart (L-PD-SPLIT).
"""

from .bin import Bin, BinAttribute, EntityType, bin_check_digit, is_valid_bin, parse_bin
from .card import Card, CardBrand, card_brand, is_valid_card, luhn_check_digit, parse_card
from .classify import classify_12_digits
from .documents import IdCard, Passport, parse_id_card, parse_passport
from .email_address import normalize_email
from .errors import KINDS, IdentifierError, Kind
from .iban import Iban, is_valid_iban, parse_iban
from .iin import Iin, Sex, iin_check_digit, is_valid_iin, parse_iin
from .masking import mask
from .phone import Phone, PhoneKind, normalize_phone, parse_phone
from .synthetic import synthetic_kz_number

__all__ = [
    "KINDS",
    "Bin",
    "BinAttribute",
    "Card",
    "CardBrand",
    "EntityType",
    "Iban",
    "IdCard",
    "IdentifierError",
    "Iin",
    "Kind",
    "Passport",
    "Phone",
    "PhoneKind",
    "Sex",
    "bin_check_digit",
    "card_brand",
    "classify_12_digits",
    "iin_check_digit",
    "is_valid_bin",
    "is_valid_card",
    "is_valid_iban",
    "is_valid_iin",
    "luhn_check_digit",
    "mask",
    "normalize_email",
    "normalize_phone",
    "parse_bin",
    "parse_card",
    "parse_iban",
    "parse_id_card",
    "parse_iin",
    "parse_passport",
    "parse_phone",
    "synthetic_kz_number",
]
