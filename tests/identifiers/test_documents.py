"""Passports (N + 8 digits) and ID cards (9 digits): format checks only (LEGAL.md § Identifiers)."""

from __future__ import annotations

import pytest

from qorgau.identifiers import IdCard, IdentifierError, Passport, parse_id_card, parse_passport


@pytest.mark.parametrize(
    "written", ["N12345678", "n12345678", "N 12345678", " N12345678 ", "\u041d12345678", "\u043d12345678"]
)
def test_a_passport_number_is_normalized_to_latin_capital_n(written: str) -> None:
    passport = parse_passport(written)
    assert passport == Passport("N12345678")
    assert passport.number == "12345678"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("12345678", "must start with the letter N"),
        ("Z12345678", "must start with the letter N"),
        ("N1234567", "got 7 characters after N"),
        ("N123456789", "got 9 characters after N"),
        ("N1234567X", "N followed by 8 digits"),
        ("N  12345678", "N followed by 8 digits"),
        ("", "must start with the letter N"),
    ],
)
def test_malformed_passport_numbers_are_refused(written: str, reason: str) -> None:
    with pytest.raises(IdentifierError, match=reason) as caught:
        parse_passport(written)
    assert caught.value.kind == "KZ_PASSPORT"


def test_an_id_card_number_is_nine_digits() -> None:
    assert parse_id_card(" 012345678 ") == IdCard("012345678")
    with pytest.raises(IdentifierError, match="must be 9 digits, got 8"):
        parse_id_card("12345678")
    with pytest.raises(IdentifierError, match="only digits"):
        parse_id_card("12345678X")


def test_document_reprs_are_masked() -> None:
    assert repr(parse_passport("N12345678")) == "Passport('N******78')"
    assert repr(parse_id_card("123456789")) == "IdCard('*******89')"
    assert "12345678" not in str(parse_passport("N12345678"))
