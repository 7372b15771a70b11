"""Masked forms for UIs and logs; no object holding an identifier prints it (STYLE.md)."""

from __future__ import annotations

import pytest
from hypothesis import given

from qorgau.identifiers import (
    KINDS,
    mask,
    parse_bin,
    parse_card,
    parse_iban,
    parse_id_card,
    parse_iin,
    parse_passport,
    parse_phone,
)

from .strategies import PROPERTY, valid_bins, valid_iins


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("KZ_IIN", "791028302728", "79******2728"),
        ("KZ_BIN", "940140000385", "94******0385"),
        ("PHONE", "+77012345678", "+7 701 *** ** 78"),
        ("PHONE", "8 (701) 234-56-78", "+7 701 *** ** 78"),
        ("PHONE", "+7 7172 55 12 34", "+7 717 *** ** 34"),
        ("EMAIL", "aigerim@gov.kz", "a***@gov.kz"),
        ("EMAIL", "Aigerim@Gov.KZ", "a***@gov.kz"),
        ("IBAN", "KZ86 125K ZT50 0410 0100", "KZ86************0100"),
        ("CARD", "4111 1111 1111 1111", "4111********1111"),
        ("KZ_PASSPORT", "\u041d12345678", "N******78"),
        ("KZ_ID_CARD", "123456789", "*******89"),
    ],
)
def test_each_kind_has_a_recognisable_mask(kind: str, value: str, masked: str) -> None:
    assert mask(kind, value) == masked  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("KZ_IIN", "791028302729"),  # bad checksum: still somebody's number, probably
        ("KZ_IIN", "7910283027"),
        ("PHONE", "+7 703 123 45 67"),
        ("EMAIL", "not an address at all"),
        ("CARD", "4111 1111 1111 1112"),
        ("KZ_PASSPORT", "X123456789"),
        ("KZ_ID_CARD", "12345-6789"),
        ("IBAN", "KZ87125KZT5004100100"),
    ],
)
def test_invalid_values_are_masked_too_never_echoed(kind: str, value: str) -> None:
    shown = mask(kind, value)  # type: ignore[arg-type]
    assert value not in shown
    assert "*" in shown


def test_every_kind_can_be_masked_and_unknown_kinds_are_a_programming_error() -> None:
    for kind in KINDS:
        assert "*" in mask(kind, "0123456789012")
    with pytest.raises(ValueError, match="unknown identifier kind 'SSN'"):
        mask("SSN", "123-45-6789")  # type: ignore[arg-type]


def test_no_parsed_identifier_prints_its_value() -> None:
    objects = {
        "791028302728": parse_iin("791028302728"),
        "940140000385": parse_bin("940140000385"),
        "+77012345678": parse_phone("+77012345678"),
        "KZ86125KZT5004100100": parse_iban("KZ86125KZT5004100100"),
        "4111111111111111": parse_card("4111111111111111"),
        "N12345678": parse_passport("N12345678"),
        "123456789": parse_id_card("123456789"),
    }
    for value, obj in objects.items():
        for shown in (repr(obj), str(obj), f"{obj!s}", repr({"subject": obj})):
            assert value not in shown, type(obj).__name__


@PROPERTY
@given(valid_iins())
def test_a_masked_iin_hides_the_birth_date_and_century(value: str) -> None:
    shown = mask("KZ_IIN", value)
    assert shown[2:8] == "******"
    assert value[2:7] not in shown[:8]


@PROPERTY
@given(valid_bins())
def test_a_masked_bin_hides_the_middle(value: str) -> None:
    assert mask("KZ_BIN", value) == value[:2] + "******" + value[8:]
