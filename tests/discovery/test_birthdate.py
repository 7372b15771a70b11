"""DATE_OF_BIRTH stories: a real date is a birth date only when birth words describe it."""

from __future__ import annotations

import datetime as dt

import pytest

from qorgau.discovery.recognizers.birthdate import DateOfBirthRecognizer
from qorgau.discovery.types import Recognizer


@pytest.fixture(scope="module")
def rec() -> DateOfBirthRecognizer:
    return DateOfBirthRecognizer()


def spans(rec: DateOfBirthRecognizer, text: str) -> list[str]:
    return [text[f.start:f.end] for f in rec.find(text)]


def test_the_recognizer_follows_the_discovery_contract(rec: DateOfBirthRecognizer) -> None:
    assert isinstance(rec, Recognizer)
    (finding,) = rec.find("Дата рождения: 12.03.1985")
    assert finding.type == "DATE_OF_BIRTH" and finding.category == "identifying" and finding.text is None
    assert "1985" not in repr(finding)
    assert finding.explanation is not None and finding.explanation.context_words == ("дата рождения",)


@pytest.mark.parametrize("text, expected", [
    ("Дата рождения: 12.03.1985", "12.03.1985"),
    ("Иванов И.И., 12.03.1985 г.р.", "12.03.1985"),
    ("Родился 12 марта 1985 г. в Алматы.", "12 марта 1985 г."),
    ("д.р. 12/03/1985", "12/03/1985"),
    ("ИИН 850312300123, д.р. 1985-03-12", "1985-03-12"),
])
def test_russian_birth_dates(rec: DateOfBirthRecognizer, text: str, expected: str) -> None:
    assert spans(rec, text) == [expected]


@pytest.mark.parametrize("text, expected", [
    ("Туған күні: 1985 жылғы 12 наурыз", "1985 жылғы 12 наурыз"),
    ("Ол 12 наурыз 1985 жылы туған.", "12 наурыз 1985 жылы"),
    ("Туған күні 05.11.1990", "05.11.1990"),
    ("Serik jazdy: tugan kunim 13.06.1960.", "13.06.1960"),
])
def test_kazakh_birth_dates(rec: DateOfBirthRecognizer, text: str, expected: str) -> None:
    assert spans(rec, text) == [expected]


@pytest.mark.parametrize("text, expected", [
    ("Born March 12, 1985 in Almaty", "March 12, 1985"),
    ("Date of birth: 12 March 1985", "12 March 1985"),
    ("DOB: 1985-03-12", "1985-03-12"),
])
def test_english_birth_dates(rec: DateOfBirthRecognizer, text: str, expected: str) -> None:
    assert spans(rec, text) == [expected]


@pytest.mark.parametrize("text", [
    "Договор от 12.03.2020",
    "Срок оплаты до 15.04.2024",
    "Паспорт выдан 01.02.2015 МВД РК",
    "The contract was signed on March 12, 2020.",
    "Встреча 12 марта 1985 г. прошла успешно.",
    "Statement period 20 August 2021 to 9 April 2024.",
])
def test_dates_without_birth_words_are_not_birth_dates(rec: DateOfBirthRecognizer, text: str) -> None:
    assert spans(rec, text) == []


def test_the_date_of_issue_after_a_birth_date_is_not_a_birth_date(rec: DateOfBirthRecognizer) -> None:
    text = "Дата рождения: 12.03.1985, дата выдачи: 01.02.2015"
    assert spans(rec, text) == ["12.03.1985"]


def test_a_second_date_after_a_birth_date_is_not_claimed_by_its_context(rec: DateOfBirthRecognizer) -> None:
    assert spans(rec, "Дата рождения: 12.03.1985. Договор подписан 15.04.2020.") == ["12.03.1985"]


@pytest.mark.parametrize("text", [
    "Дата рождения: 31.02.1985",  # no 31 February
    "д.р. 12/13/1985",  # no 13th month
    "д.р. 12/03/1899",  # before 1900
])
def test_impossible_or_implausible_dates_are_not_birth_dates(rec: DateOfBirthRecognizer, text: str) -> None:
    assert spans(rec, text) == []


def test_a_birth_date_in_the_future_is_not_plausible(rec: DateOfBirthRecognizer) -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert spans(rec, f"born {tomorrow:%d.%m.%Y}") == []


def test_offsets_are_exact_after_kazakh_letters(rec: DateOfBirthRecognizer) -> None:
    text = "Өтініш беруші Әлібек, туған күні: 1990 жылғы 5 қазан"
    (finding,) = rec.find(text)
    assert text[finding.start:finding.end] == "1990 жылғы 5 қазан"


# --- regressions from the held-out dev split (issue 3): new texts, same classes of error -------------

@pytest.mark.parametrize("text, expected", [
    ("Подозреваемый Ахметов Б., 1984 г.р., задержан.", ["1984"]),
    ("Жалобу подала Ким Н. (1979 г. р.)", ["1979"]),
    ("Қонысбаев Серік, 1971 ж.т., зейнеткер", ["1971"]),
    ("Куәгер 1988 жылы туған, Алматыда тұрады", ["1988"]),
    ("Kuäger 1990 jyly tuğan, Astanada tūrady", ["1990"]),
    ("Туған жылы: 2001\nБілімі: жоғары", ["2001"]),
    ("Year of birth: 1966, nationality KZ", ["1966"]),
    ("Арестован Петров В. (р. 1981) по делу № 4", ["1981"]),
    ("воспитанник детского сада, 2019 года рождения", ["2019"]),
])
def test_a_birth_year_alone_is_found_next_to_its_birth_marker(rec: DateOfBirthRecognizer, text: str,
                                                              expected: list[str]) -> None:
    assert spans(rec, text) == expected


@pytest.mark.parametrize("text", ["Стаж с 1998 года, родился в Таразе", "Founded in 1991; born to lead",
                                  "В 2015 г. переехал. Дата рождения указана в паспорте",
                                  "1984 жылы салынған үй, туған жері Алматы", "2020 жыл басталды, туған күнің құтты болсын"])
def test_a_year_without_an_adjacent_birth_marker_is_not_a_birth_date(rec: DateOfBirthRecognizer, text: str) -> None:
    assert spans(rec, text) == []


@pytest.mark.parametrize("text, expected", [
    ("Мен 1994 жылы 21 мамырда туғанмын.", ["1994 жылы 21 мамырда"]),
    ("Sen 1999 jyly 14 qazanda tuğansyñ", ["1999 jyly 14 qazanda"]),
    ("Patient: A. Brown, DOB 11/23/1975, admitted", ["11/23/1975"]),
    ("NAME: X | D.O.B.: 04.11.92 | PASSPORT", ["04.11.92"]),
])
def test_kazakh_latin_us_and_two_digit_year_birth_dates(rec: DateOfBirthRecognizer, text: str,
                                                        expected: list[str]) -> None:
    assert spans(rec, text) == expected


def test_a_birth_date_column_of_a_csv_table_names_its_dates(rec: DateOfBirthRecognizer) -> None:
    table = "id,fio,date_of_birth,issued\n1,Ospan A.,1987-04-02,2020-01-15\n2,Ким Л.,1990-12-30,2021-06-01"
    assert spans(rec, table) == ["1987-04-02", "1990-12-30"]
    tsv = "аты\ttugan_kuni\n Айгүл\t03.05.1993"
    assert spans(rec, tsv) == ["03.05.1993"]
    other = "id,born_city,paid_on\n1,Almaty,2020-01-15"
    assert spans(rec, other) == []
