"""Twelve digits: an IIN (a person), a BIN (an organisation), or neither."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qorgau.identifiers import classify_12_digits, is_valid_bin, is_valid_iin

from .strategies import PROPERTY, valid_bins, valid_iins


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("791028302728", "KZ_IIN"),
        ("061211600012", "KZ_IIN"),
        ("940140000385", "KZ_BIN"),
        ("990140004654", "KZ_BIN"),
        ("791028302729", None),  # bad check digit
        ("123456789012", None),
        ("79102830272", None),
        ("hello world!", None),
    ],
)
def test_twelve_digits_are_classified_by_layout_and_checksum(value: str, kind: str | None) -> None:
    assert classify_12_digits(value) == kind


@PROPERTY
@given(valid_iins())
def test_a_valid_iin_is_never_also_a_bin(value: str) -> None:
    # position 5 of an IIN is the tens digit of the birth day: 0-3, never a BIN entity type 4-6
    assert classify_12_digits(value) == "KZ_IIN"
    assert not is_valid_bin(value)


@PROPERTY
@given(valid_bins())
def test_a_valid_bin_is_never_also_an_iin(value: str) -> None:
    assert classify_12_digits(value) == "KZ_BIN"
    assert not is_valid_iin(value)


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_no_twelve_digits_are_both(value: str) -> None:
    assert not (is_valid_iin(value) and is_valid_bin(value))
