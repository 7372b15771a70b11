"""Payment cards: Luhn, 13-19 digits, and the brands seen in Kazakhstan (LEGAL.md § Identifiers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qorgau.identifiers import Card, IdentifierError, card_brand, is_valid_card, luhn_check_digit, parse_card
from qorgau.identifiers.checksums import luhn_matches

from .strategies import PROPERTY, THOROUGH, quotes_identifier, substitutions, valid_cards


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", "visa"),
        ("4222222222222", "visa"),
        ("5555555555554444", "mastercard"),
        ("2221000000000009", "mastercard"),  # Mastercard 2-series, low end
        ("2720990000000007", "mastercard"),  # Mastercard 2-series, high end
        ("2200000000000004", "mir"),
        ("2204123456789015", "mir"),
        ("378282246310005", "amex"),
        ("371449635398431", "amex"),
        ("6200000000000005", "unionpay"),
        ("3530111333300000", "jcb"),
        ("6011111111111117", "discover"),
    ],
)
def test_known_test_cards_are_valid_and_branded(number: str, brand: str) -> None:
    assert is_valid_card(number)
    assert parse_card(number) == Card(number, brand)  # type: ignore[arg-type]


def test_mir_stops_at_2204_and_mastercard_2_series_starts_at_2221() -> None:
    assert card_brand("2205000000000000") == "unknown"
    assert card_brand("2220990000000000") == "unknown"
    assert card_brand("2721000000000000") == "unknown"


@pytest.mark.parametrize("written", ["4111 1111 1111 1111", "4111-1111-1111-1111", " 4111 1111-1111 1111\n"])
def test_spaces_and_dashes_are_removed(written: str) -> None:
    assert is_valid_card(written)
    assert parse_card(written).value == "4111111111111111"


def test_a_bad_luhn_digit_names_the_expected_one() -> None:
    assert not is_valid_card("4111111111111112")
    with pytest.raises(IdentifierError) as caught:
        parse_card("4111111111111112")
    assert (caught.value.kind, caught.value.reason) == ("CARD", "Luhn check digit should be 1")


@pytest.mark.parametrize(("digits", "length"), [("4" * 12, 12), ("4" * 20, 20)])
def test_lengths_outside_13_to_19_are_refused(digits: str, length: int) -> None:
    assert not is_valid_card(digits)
    with pytest.raises(IdentifierError, match=f"must be 13-19 digits, got {length}"):
        parse_card(digits)


def test_stray_characters_are_refused_by_their_position_as_written() -> None:
    assert not is_valid_card("4111 1111 1111 111O")
    with pytest.raises(IdentifierError, match="character 19 is not"):
        parse_card("4111 1111 1111 111O")
    with pytest.raises(IdentifierError, match="character 5 is not"):
        parse_card("4111.1111.1111.1111")


def test_the_luhn_helper_completes_a_payload() -> None:
    assert luhn_check_digit("411111111111111") == 1
    assert luhn_check_digit("7992739871") == 3  # the textbook example
    with pytest.raises(IdentifierError):
        luhn_check_digit("4111 1111")


def test_a_card_repr_shows_only_first_and_last_four() -> None:
    card = parse_card("4111 1111 1111 1111")
    assert repr(card) == "Card('4111********1111', brand='visa')"
    assert "4111111111111111" not in str(card)


@THOROUGH
@given(valid_cards())
def test_every_generated_card_is_valid_and_its_brand_is_detected(case: tuple[str, str]) -> None:
    number, brand = case
    assert is_valid_card(number)
    assert parse_card(number).brand == brand
    assert number not in repr(parse_card(number))


@THOROUGH
@given(valid_cards(), st.data())
def test_luhn_catches_every_single_digit_substitution(case: tuple[str, str], data: st.DataObject) -> None:
    number, _ = case
    position = data.draw(st.integers(0, len(number) - 1))
    assert not any(is_valid_card(other) for other in substitutions(number, position))


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_the_fast_luhn_agrees_with_the_textbook_algorithm(digits: str) -> None:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if index % 2 else 1)
        total += d - 9 if d > 9 else d
    assert luhn_matches(digits.encode()) == (total % 10 == 0)


@THOROUGH
@given(
    st.one_of(valid_cards().map(lambda c: c[0]), st.text(alphabet="0123456789 -x", max_size=24), st.text(max_size=20))
)
def test_is_valid_card_accepts_exactly_what_parse_card_accepts(text: str) -> None:
    try:
        parse_card(text)
        parsed = True
    except IdentifierError as error:
        parsed = False
        assert not quotes_identifier(str(error), text)
    assert is_valid_card(text) == parsed
