"""Structured identifiers in kk/ru/en text: what is found, what is not, and where exactly."""

from __future__ import annotations

import random
import re
from datetime import date

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qorgau.discovery.engine import Scanner
from qorgau.discovery.recognizers import (
    CardRecognizer,
    IbanRecognizer,
    KzIinBinRecognizer,
    PhoneRecognizer,
    default_recognizers,
)
from qorgau.discovery.recognizers.structured import _is_iban, _phone_kind
from qorgau.identifiers import IdentifierError, iin_check_digit, is_valid_iban, luhn_check_digit, parse_phone
from qorgau.identifiers.checksums import iban_check_digits

PROPERTY = settings(max_examples=60, deadline=None)
IIN = "791028302728"
IIN_2000S = "061211600012"
BIN = "940140000385"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.identifiers_only()


def found(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in scanner.scan(text)]


@st.composite
def valid_iins(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)))
    century = 3 if born.year < 2000 else 5
    first11 = f"{born:%y%m%d}{century + draw(st.integers(0, 1))}{draw(st.integers(0, 9999)):04d}"
    check = iin_check_digit(first11)
    assume(check is not None)
    return first11 + str(check)


def kz_iban(bank: str, account: str) -> str:
    return "KZ" + iban_check_digits("KZ", bank + account) + bank + account


# --- IIN / BIN ---------------------------------------------------------------------------------------

def test_an_iin_next_to_its_label_is_found_with_full_confidence(scanner: Scanner) -> None:
    text = f"ИИН клиента: {IIN}, договор подписан."
    (f,) = scanner.scan(text)
    assert (f.type, text[f.start:f.end], f.score) == ("KZ_IIN", IIN, 1.0)
    assert f.explanation.validated is True and "иин" in f.explanation.context_words


def test_an_iin_without_context_is_still_found_but_scores_lower(scanner: Scanner) -> None:
    (f,) = scanner.scan(f"Список: {IIN_2000S}")
    assert f.type == "KZ_IIN" and f.score == pytest.approx(KzIinBinRecognizer.BASE)


def test_a_bin_is_told_apart_from_an_iin(scanner: Scanner) -> None:
    assert found(scanner, f"ТОО «Ақ жол», БСН {BIN}") == [("KZ_BIN", BIN)]


def test_a_12_digit_number_with_a_bad_checksum_is_not_an_iin_even_with_context(scanner: Scanner) -> None:
    broken = IIN[:-1] + str((int(IIN[-1]) + 1) % 10)
    assert found(scanner, f"ИИН {broken}") == []


def test_an_iin_whose_birth_date_does_not_exist_is_not_an_iin(scanner: Scanner) -> None:
    first11 = "790230" + "3" + "0272"  # 30 February
    check = iin_check_digit(first11)
    assert check is not None
    assert found(scanner, f"ЖСН {first11}{check}") == []


def test_an_iin_inside_a_longer_digit_run_is_not_found(scanner: Scanner) -> None:
    assert found(scanner, f"счёт 4{IIN}9 и код 0{IIN}") == []


@PROPERTY
@given(iin=valid_iins(), before=st.sampled_from(["ИИН ", "ЖСН: ", "IIN=", "Жаксылыков Е.Б., ", "«", "\n"]),
       after=st.sampled_from(["", " тенге", ".", "»", ", тел. нет"]))
def test_every_valid_iin_is_found_at_exact_offsets_in_cyrillic_text(iin: str, before: str, after: str) -> None:
    text = f"Қызметкер {before}{iin}{after} туралы мәлімет"
    findings = Scanner.identifiers_only().scan(text)
    assert [(f.type, f.start, f.end) for f in findings] == [("KZ_IIN", len("Қызметкер ") + len(before),
                                                               len("Қызметкер ") + len(before) + 12)]


# --- phones ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("written", [
    "+7 701 234 56 78", "8 (701) 234-56-78", "87012345678", "+77012345678", "8-701-234-56-78",
    "+7 (701) 234-56-78", "8 701 234 5678", "+7 727 250 12 34", "+7 7172 12 34 56", "8 (7172) 12-34-56",
    "+7 916 123-45-67",  # Russian numbers are phones too
])
def test_every_common_kazakh_writing_of_a_phone_is_found(scanner: Scanner, written: str) -> None:
    text = f"Байланыс: {written}, хабарласыңыз"
    assert found(scanner, text) == [("PHONE_NUMBER", written)]


def test_a_phone_label_raises_the_score(scanner: Scanner) -> None:
    (plain,) = scanner.scan("позже 87012345678 будет")
    (labelled,) = scanner.scan("тел. 87012345678")
    assert labelled.score > plain.score and labelled.explanation.context_words == ("тел",)


@pytest.mark.parametrize("text", ["Звоните 102 или 112", "Баланс: *141#", "Жаңа баланс *100*1#",
                                  "ставка 8 000 000 тенге", "код 8 123 456 78 90"])
def test_service_numbers_and_unassigned_ranges_are_not_phones(scanner: Scanner, text: str) -> None:
    assert [t for t, _ in found(scanner, text) if t == "PHONE_NUMBER"] == []


def test_a_bare_ten_digit_mobile_needs_a_phone_word_nearby(scanner: Scanner) -> None:
    assert found(scanner, "артикул 7012345678") == []
    assert found(scanner, "моб. (701) 234-56-78") == [("PHONE_NUMBER", "(701) 234-56-78")]


def test_international_numbers_are_found_without_the_following_number(scanner: Scanner) -> None:
    text = "phone +44 20 7946 0958 2024"
    assert found(scanner, text) == [("PHONE_NUMBER", "+44 20 7946 0958")]


@PROPERTY
@given(st.from_regex(re.compile(r"7(?:0[0-25-8]|47|6[0-4]|7[15-8]|85)[0-9]{7}"), fullmatch=True))
def test_the_kazakh_mobile_fast_path_agrees_with_libphonenumber(national: str) -> None:
    phone = parse_phone("+7" + national)
    assert (phone.country, phone.kind) == ("KZ", "mobile")
    assert _phone_kind("+7" + national) == _phone_kind("8" + national) == "KZ mobile"


@PROPERTY
@given(st.from_regex(re.compile(r"7[12][0-9]{8}"), fullmatch=True))
def test_the_kazakh_landline_fast_path_agrees_with_libphonenumber(national: str) -> None:
    try:
        phone = parse_phone("+7" + national)
        expected: str | None = f"{phone.country} {phone.kind}"
    except IdentifierError:
        expected = None  # an unassigned area code: no phone at all
    for written in ("+7" + national, "8" + national, f"8 ({national[:4]}) {national[4:]}", f"+7 {national[:3]} {national[3:]}"):
        assert _phone_kind(written) == expected


# --- e-mail ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["aigerim.nurlanovna@gov.kz", "a.user@mail.almaty.kz", "ivanov_77@mail.ru",
                                     "айгерім@пошта.қаз", "john.smith+hr@example.com"])
def test_email_addresses_are_found_including_gov_kz_and_cyrillic(scanner: Scanner, address: str) -> None:
    text = f"Жазыңыз: {address}. Рақмет"
    assert found(scanner, text) == [("EMAIL_ADDRESS", address)]


def test_an_email_containing_digits_stays_one_email(scanner: Scanner) -> None:
    text = f"пишите на user{IIN}@mail.kz или 87012345678@mail.ru"
    assert found(scanner, text) == [("EMAIL_ADDRESS", f"user{IIN}@mail.kz"),
                                    ("EMAIL_ADDRESS", "87012345678@mail.ru")]


def test_a_handle_or_a_lone_at_sign_is_not_an_email(scanner: Scanner) -> None:
    assert found(scanner, "follow @qorgau and mail me @ home, or a@b") == []


# --- IBAN and cards ----------------------------------------------------------------------------------

def test_kazakh_ibans_are_found_compact_and_in_groups(scanner: Scanner) -> None:
    text = "ИИК KZ86125KZT5004100100, счёт KZ86 125K ZT50 0410 0100 BANK"
    assert found(scanner, text) == [("IBAN_CODE", "KZ86125KZT5004100100"),
                                    ("IBAN_CODE", "KZ86 125K ZT50 0410 0100")]


def test_foreign_ibans_are_found_and_bad_check_digits_are_not(scanner: Scanner) -> None:
    assert found(scanner, "IBAN DE89 3704 0044 0532 0130 00") == [("IBAN_CODE", "DE89 3704 0044 0532 0130 00")]
    assert found(scanner, "IBAN KZ87125KZT5004100100") == []


@PROPERTY
@given(bank=st.from_regex(r"[0-9]{3}", fullmatch=True), account=st.from_regex(r"[A-Z0-9]{13}", fullmatch=True),
       check=st.integers(0, 99))
def test_the_kazakh_iban_fast_path_agrees_with_schwifty(bank: str, account: str, check: int) -> None:
    candidate = f"KZ{check:02d}{bank}{account}"
    assert _is_iban(candidate) == is_valid_iban(candidate)
    assert _is_iban(kz_iban(bank, account))


@pytest.mark.parametrize("prefix, length", [("4", 16), ("51", 16), ("2221", 16), ("2720", 16), ("2200", 16),
                                            ("2204", 16), ("34", 15), ("62", 19)])
def test_luhn_valid_cards_are_found_including_mir_and_mastercard_2_series(scanner: Scanner, prefix: str,
                                                                         length: int) -> None:
    rng = random.Random(prefix + str(length))
    payload = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    number = payload + str(luhn_check_digit(payload))
    grouped = " ".join(number[i:i + 4] for i in range(0, len(number), 4))
    for written in (number, grouped):
        assert found(scanner, f"карта {written} до 12/27") == [("CREDIT_CARD", written)]


def test_a_card_number_failing_luhn_is_not_a_card(scanner: Scanner) -> None:
    assert found(scanner, "карта 4111 1111 1111 1112") == []


def test_an_unknown_brand_needs_card_context(scanner: Scanner) -> None:
    payload = "900000000000000"
    number = payload + str(luhn_check_digit(payload))
    assert found(scanner, f"заказ {number}") == []
    (f,) = scanner.scan(f"номер карты {number}")
    assert f.type == "CREDIT_CARD" and f.score == pytest.approx(CardRecognizer.BASE_UNKNOWN + 0.25)


# --- documents, IPs, plates --------------------------------------------------------------------------

@pytest.mark.parametrize("written", ["N12345678", "Н12345678", "N 12345678", "н12345678"])
def test_passports_with_latin_or_cyrillic_n_are_found(scanner: Scanner, written: str) -> None:
    (f,) = scanner.scan(f"паспорт {written} выдан МВД РК")
    assert (f.type, f.score) == ("KZ_PASSPORT", 0.9)


@pytest.mark.parametrize("label", ["удостоверение личности №", "уд. личности", "жеке куәлік нөмірі", "ID card",
                                   "ID-карта"])
def test_nine_digits_are_an_id_card_next_to_its_label(scanner: Scanner, label: str) -> None:
    text = f"{label} 043567891 выдано 2019"
    assert found(scanner, text) == [("KZ_ID_CARD", "043567891")]


def test_nine_digits_without_a_label_are_nothing(scanner: Scanner) -> None:
    assert found(scanner, "сумма 043567891 тенге") == []
    assert Scanner.identifiers_only(min_score=0.0).scan("сумма 043567891 тенге") == []


@pytest.mark.parametrize("address", ["192.168.1.10", "8.8.8.8", "2001:db8::1", "fe80::1ff:fe23:4567:890a",
                                     "::ffff:10.0.0.1"])
def test_ip_addresses_are_found(scanner: Scanner, address: str) -> None:
    assert found(scanner, f"вход с IP {address} в 10:30:15") == [("IP_ADDRESS", address)]


@pytest.mark.parametrize("text", ["IP 256.1.1.1", "IP 192.168.01.1", "время 12:30:45", "дата 12.05.1990"])
def test_impossible_addresses_times_and_dates_are_not_ips(scanner: Scanner, text: str) -> None:
    assert found(scanner, text) == []


def test_a_version_number_is_not_reported_as_an_ip(scanner: Scanner) -> None:
    assert found(scanner, "версия 1.2.3.4 вышла") == []


def test_a_plate_needs_vehicle_context_and_a_real_region(scanner: Scanner) -> None:
    assert found(scanner, "госномер 123 ABC 02") == [("KZ_VEHICLE_PLATE", "123 ABC 02")]
    assert found(scanner, "көлік 777XYZ15") == [("KZ_VEHICLE_PLATE", "777XYZ15")]
    assert found(scanner, "код 123ABC02") == []
    assert found(scanner, "автомобиль 123 ABC 99") == []


# --- every recognizer on its own ---------------------------------------------------------------------

def test_each_recognizer_finds_the_same_on_its_own_as_inside_the_scanner() -> None:
    text = (f"ИИН {IIN}, тел. +7 701 234 56 78, a@gov.kz, {kz_iban('125', 'KZT5004100100')}, карта "
            "4111 1111 1111 1111, паспорт N12345678, уд. личности 043567891, IP 10.0.0.1, госномер 123 ABC 02")
    together = Scanner.identifiers_only().scan(text)
    alone = sorted((f for r in default_recognizers(include_nlp=False) for f in r.find(text)),
                   key=lambda f: (f.start, f.end))
    assert [(f.type, f.start, f.end) for f in together] == [(f.type, f.start, f.end) for f in alone]
    assert len(together) == 9
    assert {type(r) for r in default_recognizers(include_nlp=False)} >= {PhoneRecognizer, IbanRecognizer}


def test_nine_digits_labelled_as_an_employee_number_are_not_an_id_card_even_near_id_card_words() -> None:
    from qorgau.discovery.engine import Scanner

    text = "ID card on file, employee number 123456789, phone +7 701 234 56 78."
    assert "KZ_ID_CARD" not in {f.type for f in Scanner.identifiers_only().scan(text)}
    text = "Employee number 987654321; ID card 123456789 issued by МВД."
    found = [f for f in Scanner.identifiers_only().scan(text) if f.type == "KZ_ID_CARD"]
    assert [(text[f.start:f.end]) for f in found] == ["123456789"]


def test_a_parking_permit_names_a_vehicle_plate() -> None:
    from qorgau.discovery.engine import Scanner

    text = "Parking permit for 226MET02 issued today."
    assert [f.type for f in Scanner.identifiers_only().scan(text)] == ["KZ_VEHICLE_PLATE"]


# --- regressions from the held-out dev split (issue 3): new texts, same classes of error -------------

def _iin(first11: str) -> str:
    return first11 + str(iin_check_digit(first11))


def test_an_iin_written_in_groups_is_found_with_its_separators(scanner: Scanner) -> None:
    iin = _iin("85070240012")
    for written in (f"{iin[:6]} {iin[6:9]} {iin[9:]}", f"{iin[:6]}-{iin[6:9]}-{iin[9:]}", f"{iin[:6]} {iin[6:]}"):
        assert ("KZ_IIN", written) in found(scanner, f"жсн {written} аты-жөні")
    bad = iin[:11] + str((int(iin[11]) + 1) % 10)
    assert not [t for t, _ in found(scanner, f"серийный номер {bad[:6]} {bad[6:9]} {bad[9:]}") if t == "KZ_IIN"]


def test_an_eleven_digit_mobile_without_plus_is_a_phone_but_an_order_number_is_not(scanner: Scanner) -> None:
    assert found(scanner, "GET /v2/subscriber?msisdn=77759876543 HTTP/1.1") == [("PHONE_NUMBER", "77759876543")]
    assert found(scanner, "Поиск по номеру 77471234567 дал 3 совпадения") == [("PHONE_NUMBER", "77471234567")]
    assert found(scanner, "Номер вашего заказа: 77081234567") == []
    assert found(scanner, "Order id 77021112233 shipped") == []
    assert found(scanner, "счётчик 71234567890") == []  # not a KZ mobile range


def test_an_email_in_a_key_value_log_line_does_not_include_the_key(scanner: Scanner) -> None:
    text = "2024-05-02 ts=1714 action=reset email=b.sadykova@halyk.kz result=ok"
    assert found(scanner, text) == [("EMAIL_ADDRESS", "b.sadykova@halyk.kz")]
    assert found(scanner, "username=t.ospanov@mail.kz") == [("EMAIL_ADDRESS", "t.ospanov@mail.kz")]


def test_an_id_card_named_earlier_on_the_line_still_counts_but_not_across_another_number(scanner: Scanner) -> None:
    text = "Found: an identity card issued to Saule Abenova of Karaganda (042118765), please call."
    assert ("KZ_ID_CARD", "042118765") in found(scanner, text)
    assert ("KZ_ID_CARD", "042118765") in found(scanner, "Утеряно удостоверение на имя А. Беков: 042118765")
    assert found(scanner, "удостоверение выдано в 2019 году, пропуск 118765432 на парковку") == []


@pytest.mark.parametrize("label", ["udostoverenie", "udostovereniya lichnosti", "jeke kuälık", "zheke kualik"])
def test_transliterated_id_card_words_are_context(scanner: Scanner, label: str) -> None:
    assert found(scanner, f"{label}: 051234987") == [("KZ_ID_CARD", "051234987")]


def test_plates_in_latin_kazakh_context_old_format_and_a_plate_column(scanner: Scanner) -> None:
    assert found(scanner, "Kölık nömırı 456 KMA 15 bolatyn") == [("KZ_VEHICLE_PLATE", "456 KMA 15")]
    assert found(scanner, "автомобиль с номером X 214 BDM стоял у ворот") == [("KZ_VEHICLE_PLATE", "X 214 BDM")]
    assert found(scanner, "код B 214 BDM в накладной") == []  # old shape without any vehicle word
    table = "vin_last4,gos_nomer,color\n1234,318KZA16,white\n5678,090BBT07,black"
    assert [v for t, v in found(scanner, table) if t == "KZ_VEHICLE_PLATE"] == ["318KZA16", "090BBT07"]
    other = "sku,batch,color\nA1,318KZA16,white"
    assert found(scanner, other) == []
