"""BIN: the number an operator names itself by in every consent (L-PD-CONSENT-FIELDS)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qorgau.identifiers import IdentifierError, bin_check_digit, is_valid_bin, parse_bin
from qorgau.identifiers.checksums import KZ_PRIMARY_WEIGHTS

from .strategies import PROPERTY, THOROUGH, quotes_identifier, substitutions, valid_bins


@pytest.mark.parametrize("value", ["940140000385", "990140004654"])
def test_the_legal_md_vectors_are_valid_bins(value: str) -> None:
    assert is_valid_bin(value)
    assert parse_bin(value).value == value


def test_a_bin_tells_when_and_what_was_registered() -> None:
    bin_ = parse_bin("940140000385")
    assert (bin_.registration_year, bin_.registration_month) == (1994, 1)
    assert bin_.entity_type == "resident_legal_entity"
    assert bin_.attribute == "head_office"


@pytest.mark.parametrize(
    ("type_digit", "attribute_digit", "entity_type", "attribute"),
    [
        ("4", "0", "resident_legal_entity", "head_office"),
        ("5", "1", "non_resident_legal_entity", "branch"),
        ("6", "2", "joint_individual_entrepreneurship", "representative_office"),
        ("4", "3", "resident_legal_entity", "peasant_farm"),
    ],
)
def test_type_and_attribute_digits_are_named(
    type_digit: str, attribute_digit: str, entity_type: str, attribute: str
) -> None:
    first11 = f"0712{type_digit}{attribute_digit}00042"
    check = bin_check_digit(first11)
    assert check is not None
    bin_ = parse_bin(f"{first11}{check}")
    assert (bin_.entity_type, bin_.attribute, bin_.registration_year) == (entity_type, attribute, 2007)


def test_a_bin_with_a_bad_checksum_names_the_expected_digit() -> None:
    assert not is_valid_bin("940140000386")
    with pytest.raises(IdentifierError) as caught:
        parse_bin("940140000386")
    assert (caught.value.kind, caught.value.reason) == ("KZ_BIN", "check digit should be 5")


def test_a_thirteenth_month_is_refused() -> None:
    first11 = "94134000038"
    value = f"{first11}{bin_check_digit(first11) or 0}"
    assert not is_valid_bin(value)
    with pytest.raises(IdentifierError, match=r"registration month \(positions 3-4\) must be 01-12, got 13"):
        parse_bin(value)


def test_an_iin_given_as_a_bin_gets_a_hint() -> None:
    with pytest.raises(
        IdentifierError, match=r"entity type \(position 5\) must be 4, 5 or 6, got 2.*looks like an IIN"
    ):
        parse_bin("791028302728")


def test_an_unknown_attribute_digit_is_refused() -> None:
    first11 = "94014700038"
    value = f"{first11}{bin_check_digit(first11) or 0}"
    assert not is_valid_bin(value)
    with pytest.raises(IdentifierError, match=r"attribute \(position 6\) must be 0-3, got 7"):
        parse_bin(value)


def test_a_bin_repr_is_masked() -> None:
    bin_ = parse_bin("940140000385")
    assert repr(bin_) == "Bin('94******0385')"
    assert "940140000385" not in str(bin_)


@THOROUGH
@given(valid_bins())
def test_every_bin_built_by_the_rules_is_valid(value: str) -> None:
    assert is_valid_bin(value)
    bin_ = parse_bin(value)
    assert bin_.registration_year % 100 == int(value[:2])
    assert 1990 <= bin_.registration_year <= 2089
    assert value not in repr(bin_)


@THOROUGH
@given(valid_bins(), st.sampled_from("0123456789"))
def test_the_unrolled_bin_checksum_agrees_with_the_definition(value: str, last: str) -> None:
    expected = bin_check_digit(value[:11])
    assert is_valid_bin(value[:11] + last) == (expected is not None and str(expected) == last)


@PROPERTY
@given(valid_bins())
def test_changing_the_check_digit_always_invalidates_a_bin(value: str) -> None:
    assert not any(is_valid_bin(other) for other in substitutions(value, 11))


@PROPERTY
@given(valid_bins())
def test_the_11th_digit_of_a_bin_is_only_protected_on_the_secondary_weighting(value: str) -> None:
    secondary = sum(int(d) * w for d, w in zip(value[:11], KZ_PRIMARY_WEIGHTS, strict=True)) % 11 == 10
    still_valid = [is_valid_bin(other) for other in substitutions(value, 10)]
    assert (not any(still_valid)) if secondary else all(still_valid)


def test_single_digit_typos_in_bins_are_caught_about_nine_times_in_ten() -> None:
    rng = random.Random(940140)
    passed = total = made = 0
    while made < 600:
        yymm = f"{rng.randrange(100):02d}{rng.randrange(1, 13):02d}"
        first11 = f"{yymm}{rng.choice('456')}{rng.choice('0123')}{rng.randrange(100000):05d}"
        check = bin_check_digit(first11)
        if check is None:
            continue
        made += 1
        value = f"{first11}{check}"
        for position in range(12):
            passed += sum(is_valid_bin(other) for other in substitutions(value, position))
            total += 9
    assert 0.07 < passed / total < 0.10


@THOROUGH
@given(
    st.one_of(
        valid_bins(),
        st.tuples(valid_bins(), st.integers(0, 11), st.sampled_from("0123456789 x")).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
        ),
        st.text(alphabet="0123456789", min_size=12, max_size=12),
        st.text(max_size=14),
    )
)
def test_is_valid_bin_accepts_exactly_what_parse_bin_accepts(value: str) -> None:
    try:
        parse_bin(value)
        parsed = True
    except IdentifierError as error:
        parsed = False
        assert not quotes_identifier(str(error), value)
    assert is_valid_bin(value) == parsed
