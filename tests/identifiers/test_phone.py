"""Phones: the mobile number is how a breach reaches a subject by SMS (L-PD-BREACH)."""

from __future__ import annotations

import pytest

from qorgau.identifiers import IdentifierError, Phone, normalize_phone, parse_phone


@pytest.mark.parametrize(
    "written",
    [
        "+7 701 234 56 78",
        "+77012345678",
        "8 (701) 234-56-78",
        "87012345678",
        "8-701-234-56-78",
        "+7 (701) 234-56-78",
        "7012345678",
        "  +7 701 234 56 78\n",
    ],
)
def test_every_way_kazakhs_write_a_mobile_number_gives_the_same_e164(written: str) -> None:
    assert normalize_phone(written) == "+77012345678"
    phone = parse_phone(written)
    assert (phone.kind, phone.country) == ("mobile", "KZ")


@pytest.mark.parametrize(
    "prefix",
    ["700", "701", "702", "705", "706", "707", "708", "747", "760", "764", "771", "775", "776", "777", "778", "785"],
)
def test_every_kazakh_mobile_range_is_a_kazakh_mobile(prefix: str) -> None:
    # LEGAL.md: national pattern 7(?:0[0-25-8]|47|6[0-4]|7[15-8]|85)\d{7}
    phone = parse_phone(f"8 {prefix} 123 45 67")
    assert (phone.e164, phone.kind, phone.country) == (f"+7{prefix}1234567", "mobile", "KZ")


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+7 727 258 12 34", "+77272581234"),  # Almaty
        ("8 (727) 258-12-34", "+77272581234"),
        ("+7 7172 55 12 34", "+77172551234"),  # Astana
        ("8 7172 551234", "+77172551234"),
        ("+7 (7212) 41-23-45", "+77212412345"),  # Karaganda
    ],
)
def test_kazakh_landlines_are_landlines(written: str, e164: str) -> None:
    phone = parse_phone(written)
    assert (phone.e164, phone.kind, phone.country) == (e164, "landline", "KZ")


@pytest.mark.parametrize(
    ("written", "kind"),
    [("+7 495 123 45 67", "landline"), ("+7 916 123 45 67", "mobile"), ("8 (812) 123-45-67", "landline")],
)
def test_russian_numbers_share_plus_7_but_are_classified_as_russian(written: str, kind: str) -> None:
    phone = parse_phone(written)
    assert (phone.kind, phone.country) == (kind, "RU")


def test_numbers_of_other_countries_need_their_country_code_or_region() -> None:
    assert parse_phone("+998 90 123 45 67").country == "UZ"
    assert normalize_phone("90 123 45 67", default_region="UZ") == "+998901234567"


@pytest.mark.parametrize("service", ["102", "103", "112", "1414"])
def test_short_service_numbers_are_not_phone_numbers(service: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_phone(service)
    assert caught.value.kind == "PHONE"
    assert "too short" in caught.value.reason


@pytest.mark.parametrize("code", ["*141#", "*100#", "#31#"])
def test_ussd_codes_are_refused(code: str) -> None:
    with pytest.raises(IdentifierError, match="service code"):
        parse_phone(code)


def test_an_unassigned_kazakh_range_is_refused() -> None:
    with pytest.raises(IdentifierError, match=r"not in any assigned number range of country code \+7"):
        parse_phone("+7 703 123 45 67")


def test_a_local_number_without_area_code_is_refused() -> None:
    with pytest.raises(IdentifierError):
        parse_phone("258 12 34")


@pytest.mark.parametrize("text", ["8 701 CALL NOW", "+7 701 234 56 78 доб. 12", "phone", ""])
def test_letters_and_empty_input_are_refused(text: str) -> None:
    with pytest.raises(IdentifierError):
        parse_phone(text)


def test_an_absurdly_long_input_is_refused_before_parsing() -> None:
    with pytest.raises(IdentifierError, match="longer than 64"):
        parse_phone("8" * 65)


def test_errors_do_not_carry_the_library_exception_or_the_number() -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_phone("+7 (703) 123-45-67")
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert "1234567" not in str(caught.value)


def test_a_phone_repr_masks_the_subscriber_digits() -> None:
    phone = parse_phone("8 (701) 234-56-78")
    assert repr(phone) == "Phone('+7 701 *** ** 78', kind='mobile', country='KZ')"
    assert "2345678" not in str(phone) and "+77012345678" not in repr(phone)
    assert isinstance(phone, Phone) and phone.e164 == "+77012345678"
