"""Columns of real-looking bank, telecom, clinic and HR tables get the right L-PD-SPLIT category."""

from __future__ import annotations

import pytest

from qorgau.discovery.columns import classify_column, classify_columns, normalize_column_name
from qorgau.discovery.types import Finding
from qorgau.identifiers import is_valid_iin, synthetic_kz_number


def valid_iin(first11: str) -> str:
    """The first serial at or after ``first11`` that has a check digit, completed with it."""
    return synthetic_kz_number(first11[:7], int(first11[7:]))


IINS = [valid_iin(p) for p in ("79102830272", "88031540012", "92070430019", "75010130001", "05061160001")]
assert all(is_valid_iin(v) for v in IINS)


def fake_scan(kind: str, marker: str):
    """A stand-in scanner: reports ``kind`` over any value containing ``marker``."""
    def scan(text: str) -> list[Finding]:
        at = text.find(marker)
        return [] if at < 0 else [Finding(kind, at, at + len(marker), 0.9, "fake")]
    return scan


def verdicts(columns, scan=None):
    return {name: (c.category, c.entity_type, c.special_category) for name, c in classify_columns(columns, scan).items()}


def test_a_bank_customer_table():
    got = verdicts({
        "client_iin": [], "ФИО": [], "card_number": [], "iban": [], "balance": [], "card_holder_name": [],
        "created_at": [], "status": [], "ИИК": [], "credit_score": [],
    })
    assert got["client_iin"] == ("identifying", "KZ_IIN", None)
    assert got["ФИО"] == ("identifying", "PERSON", None)
    assert got["card_number"] == ("identifying", "CREDIT_CARD", None)
    assert got["iban"] == got["ИИК"] == ("identifying", "IBAN_CODE", None)
    assert got["balance"] == got["credit_score"] == ("personal_data", None, "financial")
    assert got["card_holder_name"] == ("identifying", "PERSON", None)
    assert got["created_at"] == got["status"] == ("none", None, None)


def test_a_telecom_subscriber_table_in_camel_case():
    got = verdicts({"msisdn": [], "subscriberName": [], "ipAddress": [], "imei": [], "lastLocationLat": [],
                    "lastLocationLon": [], "tariffPlan": [], "emailAddress": []})
    assert got["msisdn"] == ("identifying", "PHONE_NUMBER", None)
    assert got["ipAddress"] == ("identifying", "IP_ADDRESS", None)
    assert got["emailAddress"] == ("identifying", "EMAIL_ADDRESS", None)
    assert got["imei"] == ("identifying", None, None)
    assert got["lastLocationLat"][0] == got["lastLocationLon"][0] == "personal_data"
    assert got["tariffPlan"] == ("none", None, None)


def test_a_clinic_table_flags_health_and_biometric_data_as_sensitive():
    result = classify_columns({"patient_name": [], "ЖСН": [], "диагноз_код": [], "ICD10": [], "blood_type": [],
                               "аллергия": [], "photo": [], "fingerprint_hash": [], "туған_күні": [],
                               "visit_date": []})
    assert result["диагноз_код"].sensitive and result["диагноз_код"].special_category == "health"
    assert result["ICD10"].special_category == result["blood_type"].special_category == "health"
    assert result["аллергия"].special_category == "health"
    assert result["photo"].special_category == result["fingerprint_hash"].special_category == "biometric"
    assert result["patient_name"].entity_type == "PERSON"
    assert result["ЖСН"].entity_type == "KZ_IIN" and result["ЖСН"].rule == "name: жсн"
    assert result["туған_күні"].entity_type == "DATE_OF_BIRTH"
    assert result["visit_date"].category == "none"


def test_an_hr_table_in_kazakh_russian_and_english():
    got = verdicts({"аты_жөні": [], "Дата рождения": [], "жалақы": [], "зарплата": [], "salary": [],
                    "образование": [], "білімі": [], "национальность": [], "religion": [], "passport_no": [],
                    "удостоверение_личности": [], "мекенжайы": [], "Адрес проживания": [], "телефон": [],
                    "department_name": []})
    assert got["аты_жөні"] == ("identifying", "PERSON", None)
    assert got["Дата рождения"] == ("identifying", "DATE_OF_BIRTH", None)
    assert got["жалақы"] == got["зарплата"] == got["salary"] == ("personal_data", None, "financial")
    assert got["образование"] == got["білімі"] == ("personal_data", None, None)
    assert got["национальность"] == ("personal_data", None, "ethnicity")
    assert got["religion"] == ("personal_data", None, "religion")
    assert got["passport_no"] == ("identifying", "KZ_PASSPORT", None)
    assert got["удостоверение_личности"] == ("identifying", "KZ_ID_CARD", None)
    assert got["мекенжайы"] == got["Адрес проживания"] == ("identifying", "ADDRESS", None)
    assert got["телефон"] == ("identifying", "PHONE_NUMBER", None)
    assert got["department_name"] == ("none", None, None)  # a name, but not a person's


def test_a_column_of_valid_iins_is_identifying_whatever_it_is_called():
    verdict = classify_column("col_7", IINS + [None, ""])
    assert (verdict.category, verdict.entity_type) == ("identifying", "KZ_IIN")
    assert verdict.rule == "values: 100% KZ_IIN" and verdict.confidence == 1.0


def test_twelve_digit_numbers_with_bad_checksums_do_not_make_an_iin_column():
    bad = [v[:11] + str((int(v[11]) + 1) % 10) for v in IINS]
    assert classify_column("ref", bad).category == "none"


def test_values_below_sixty_percent_do_not_decide_a_typed_column_but_free_text_with_hits_identifies():
    mostly_other = IINS[:2] + ["abc", "def", "ghi", "jkl"]
    assert classify_column("code", mostly_other, scan=None).category == "identifying"  # 33%: free text notice
    assert "(free text)" in classify_column("code", mostly_other).rule
    assert classify_column("code", IINS[:1] + ["x"] * 9).category == "none"


def test_a_column_named_phone_that_holds_iins_is_reported_as_iins():
    verdict = classify_column("phone", IINS)
    assert verdict.entity_type == "KZ_IIN" and "overrides name: phone" in verdict.rule


def test_name_and_values_agreeing_raise_confidence():
    by_name = classify_column("iin", [])
    both = classify_column("iin", IINS)
    assert both.rule == "name: iin + values: 100% KZ_IIN" and both.confidence >= by_name.confidence


def test_sensitive_categories_are_not_downgraded_by_values():
    verdict = classify_column("diagnosis", ["J45.0", "E11.9", "I10"])
    assert verdict.sensitive and verdict.special_category == "health"


def test_a_scanner_finds_identifiers_inside_free_text_comments():
    scan = fake_scan("PHONE_NUMBER", "87012345678")
    notes = ["перезвонить 87012345678", "call 87012345678 after 6", "ok", "жауап берді 87012345678"]
    verdict = classify_column("comment", notes, scan=scan)
    assert (verdict.category, verdict.entity_type, verdict.rule) == ("identifying", "PHONE_NUMBER",
                                                                     "values: 75% PHONE_NUMBER")


def test_a_bare_name_column_of_product_names_is_not_a_person_when_a_scanner_says_so():
    verdict = classify_column("name", ["Молоко 2.5%", "Хлеб", "Сахар"], scan=lambda text: [])
    assert verdict.category == "none" and verdict.rule.startswith("name: name, but values")
    assert classify_column("name", []).entity_type == "PERSON"


def test_whole_value_validators_recognise_typed_columns_without_a_scanner():
    assert classify_column("a", ["+7 701 234 56 78", "87771234567", "8 (727) 250-12-34"]).entity_type == "PHONE_NUMBER"
    assert classify_column("b", ["a.seitov@minfin.gov.kz", "x@mail.ru"]).entity_type == "EMAIL_ADDRESS"
    assert classify_column("c", ["4400 4301 2345 6780"]).entity_type in ("CREDIT_CARD", None)
    assert classify_column("d", ["N12345678", "Н87654321"]).entity_type == "KZ_PASSPORT"
    assert classify_column("e", ["85.29.134.7", "2a02:2168:8a3:1f00::1"]).entity_type == "IP_ADDRESS"
    assert classify_column("f", ["KZ86125KZT5004100100"]).entity_type == "IBAN_CODE"


def test_a_rule_never_quotes_a_value():
    for values in (IINS, ["87012345678"] * 3):
        assert not any(v in classify_column("x", values).rule for v in values)


@pytest.mark.parametrize(("raw", "normalized"), [
    ("clientIIN", "client_iin"), ("birthDate", "birth_date"), ("Дата рождения", "дата_рождения"),
    ("E-mail", "e_mail"), ("  ИИН клиента ", "иин_клиента"), ("ICD10Code", "icd10_code"),
])
def test_column_names_are_normalized_across_conventions(raw, normalized):
    assert normalize_column_name(raw) == normalized


# --- column context inside delimited text (scanning CSV/TSV pasted into text) --------------------------

from qorgau.discovery.recognizers.scoring import column_header  # noqa: E402


@pytest.mark.parametrize("table, value, header", [
    ("client_id,full_name,date_of_birth\n7,Aruzhan,1999-02-03", "1999-02-03", "date of birth"),
    ("ID;ФИО;Дата рождения\n1;Ким О.;01.02.1990", "01.02.1990", "дата рождения"),
    ("plate\towner\n123ABC02\tBek", "123ABC02", "plate"),
    ("a|b|gos_nomer\n1|2|777ZZA01\n3|4|888ZZB02", "888ZZB02", "gos nomer"),
])
def test_a_value_in_a_delimited_table_gets_its_column_name(table: str, value: str, header: str) -> None:
    assert column_header(table, table.index(value)) == header


@pytest.mark.parametrize("text", [
    "just one line, with commas, 1999-02-03",  # no header line
    "Dear client, born 1999\nyour code, 1999-02-03",  # the line above has a digit: not a header
    "a,b\n1,2,1999-02-03",  # a different number of cells
])
def test_text_that_is_not_a_table_has_no_column_name(text: str) -> None:
    assert column_header(text, text.index("1999-02-03")) == ""


@pytest.mark.parametrize("name, kind", [
    ("full_name", "PERSON"), ("date_of_birth", "DATE_OF_BIRTH"), ("tugan_kuni", "DATE_OF_BIRTH"),
    ("birth_year", "DATE_OF_BIRTH"), ("gos_nomer", "KZ_VEHICLE_PLATE"), ("udostoverenie_no", "KZ_ID_CARD"),
    ("aty_joni", "PERSON"),
])
def test_snake_case_and_latin_kazakh_column_names(name: str, kind: str) -> None:
    verdict = classify_column(name, [])
    assert verdict.entity_type == kind and verdict.category == "identifying" and verdict.rule.startswith("name: ")
