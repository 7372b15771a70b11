"""IBANs: KZ + 2 check digits + 3-digit bank code + 13 characters, mod-97 (LEGAL.md § Identifiers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schwifty import IBAN

from qorgau.identifiers import Iban, IdentifierError, is_valid_iban, parse_iban
from qorgau.identifiers.checksums import iban_check_digits

from .strategies import PROPERTY

KZ_IBAN = "KZ86125KZT5004100100"


@pytest.mark.parametrize(
    "written", [KZ_IBAN, "KZ86 125K ZT50 0410 0100", "kz86125kzt5004100100", " KZ86 125k ZT50 0410 0100 "]
)
def test_a_kazakh_iban_is_accepted_however_it_is_spaced_or_cased(written: str) -> None:
    iban = parse_iban(written)
    assert iban == Iban(KZ_IBAN, "KZ", "86", "125", "KZT5004100100")
    assert iban.formatted == "KZ86 125K ZT50 0410 0100"
    assert is_valid_iban(written)


@pytest.mark.parametrize(
    ("value", "country", "bank_code"),
    [("DE89370400440532013000", "DE", "37040044"), ("GB82WEST12345698765432", "GB", "WEST")],
)
def test_other_countries_ibans_are_accepted_too(value: str, country: str, bank_code: str) -> None:
    iban = parse_iban(value)
    assert (iban.country_code, iban.bank_code) == (country, bank_code)


def test_a_wrong_check_digit_pair_names_the_expected_one() -> None:
    assert not is_valid_iban("KZ87125KZT5004100100")
    with pytest.raises(IdentifierError) as caught:
        parse_iban("KZ87125KZT5004100100")
    assert (caught.value.kind, caught.value.reason) == ("IBAN", "check digits should be 86 (mod-97)")


def test_a_kazakh_iban_of_the_wrong_length_says_so() -> None:
    with pytest.raises(IdentifierError, match="must be 20 characters for KZ, got 19"):
        parse_iban("KZ86125KZT500410010")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("KZ86A25KZT5004100100", "layout after the check digits: 3 digits, 13 letters or digits"),
        ("XX86125KZT5004100100", "country code XX has no IBAN format"),
        ("KZ8612-KZT5004100100", "position 7 is neither"),
        ("8686125KZT5004100100", "two-letter country code"),
        ("KZAB125KZT5004100100", "check digits (positions 3-4) must be digits"),
        ("KZ86", "too short"),
    ],
)
def test_malformed_ibans_say_what_is_wrong_without_repeating_the_iban(value: str, reason: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_iban(value)
    assert reason in caught.value.reason
    assert value not in str(caught.value)
    assert caught.value.__context__ is None  # schwifty's messages quote the IBAN


def test_an_iban_repr_is_masked() -> None:
    iban = parse_iban(KZ_IBAN)
    assert repr(iban) == "Iban('KZ86************0100', country_code='KZ')"
    assert KZ_IBAN not in str(iban) and "KZT5004100100" not in repr(iban)


_BBAN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@st.composite
def kz_ibans(draw: st.DrawFn) -> str:
    bank = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    account = draw(st.text(alphabet=_BBAN_CHARS, min_size=13, max_size=13))
    bban = bank + account
    return f"KZ{iban_check_digits('KZ', bban)}{bban}"


@PROPERTY
@given(kz_ibans())
def test_generated_kazakh_ibans_are_valid_here_and_in_schwifty(value: str) -> None:
    assert IBAN(value).is_valid
    assert parse_iban(value).bank_code == value[4:7]


@PROPERTY
@given(kz_ibans(), st.integers(2, 19), st.sampled_from(_BBAN_CHARS))
def test_we_agree_with_schwifty_on_every_single_character_change(value: str, position: int, ch: str) -> None:
    changed = value[:position] + ch + value[position + 1 :]
    assert is_valid_iban(changed) == IBAN(changed, allow_invalid=True).is_valid


@PROPERTY
@given(kz_ibans(), st.integers(2, 19), st.integers(1, 9))
def test_mod_97_catches_every_single_digit_substitution(value: str, position: int, delta: int) -> None:
    if not value[position].isdigit():
        return
    changed = value[:position] + str((int(value[position]) + delta) % 10) + value[position + 1 :]
    assert not is_valid_iban(changed)
