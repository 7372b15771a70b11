"""ADDRESS stories: whole address phrases in Russian, Kazakh and Latin writing, scored by how many
components they combine; a city, a lone postal code or a contract number is not an address."""

from __future__ import annotations

import pytest

from qorgau.discovery.recognizers.address import AddressRecognizer
from qorgau.discovery.types import Recognizer


@pytest.fixture(scope="module")
def rec() -> AddressRecognizer:
    return AddressRecognizer()


def spans(rec: AddressRecognizer, text: str) -> list[str]:
    return [text[f.start:f.end] for f in rec.find(text)]


def test_the_recognizer_follows_the_discovery_contract(rec: AddressRecognizer) -> None:
    assert isinstance(rec, Recognizer)
    (finding,) = rec.find("Адрес: г. Алматы, ул. Абая, д. 10, кв. 5")
    assert finding.type == "ADDRESS" and finding.category == "identifying" and finding.text is None
    assert "Абая" not in repr(finding)


@pytest.mark.parametrize("text, expected", [
    ("Проживает: г. Алматы, ул. Абая, д. 10, кв. 5.", "г. Алматы, ул. Абая, д. 10, кв. 5"),
    ("Адрес: ул. Абая 10, г. Алматы", "ул. Абая 10, г. Алматы"),
    ("мкр. Самал-2, д. 33, кв. 12 — там и живёт", "мкр. Самал-2, д. 33, кв. 12"),
    ("Алматинская обл., Карасайский р-н, с. Каскелен, ул. Жибек Жолы 5",
     "Алматинская обл., Карасайский р-н, с. Каскелен, ул. Жибек Жолы 5"),
    ("Офис: пр-т Назарбаева, 223, оф. 14", "пр-т Назарбаева, 223, оф. 14"),
])
def test_russian_addresses_span_from_the_first_to_the_last_component(rec: AddressRecognizer, text: str,
                                                                     expected: str) -> None:
    assert spans(rec, text) == [expected]


@pytest.mark.parametrize("text, expected", [
    ("050000, Алматы қаласы, Абай даңғылы, 10 үй, 5 пәтер",
     "050000, Алматы қаласы, Абай даңғылы, 10 үй, 5 пәтер"),
    ("Мекенжайы: Астана қ., Сарыарқа ауданы, Бейбітшілік көшесі 14-28.",
     "Астана қ., Сарыарқа ауданы, Бейбітшілік көшесі 14-28"),
    ("Тұрғылықты жері: Шымкент қаласы, Тәуке хан даңғылы 5", "Шымкент қаласы, Тәуке хан даңғылы 5"),
])
def test_kazakh_addresses(rec: AddressRecognizer, text: str, expected: str) -> None:
    assert spans(rec, text) == [expected]


@pytest.mark.parametrize("text, expected", [
    ("Address: Abay ave. 10, Almaty 050000, Kazakhstan", "Abay ave. 10, Almaty 050000, Kazakhstan"),
    ("Ship to 10 Dostyk Avenue, apt. 5, Almaty.", "10 Dostyk Avenue, apt. 5, Almaty"),
    ("Samal-2 microdistrict, 33, Almaty", "Samal-2 microdistrict, 33, Almaty"),
    ("str. Abaya 25, apt 7", "str. Abaya 25, apt 7"),
])
def test_latin_script_addresses(rec: AddressRecognizer, text: str, expected: str) -> None:
    assert spans(rec, text) == [expected]


def test_more_components_mean_a_higher_score(rec: AddressRecognizer) -> None:
    with_house = next(iter(rec.find("ул. Абая 10")))
    with_city = next(iter(rec.find("г. Алматы, ул. Абая 10")))
    full = next(iter(rec.find("050000, г. Алматы, ул. Абая, д. 10, кв. 5")))
    assert with_house.score < with_city.score < full.score
    assert full.explanation is not None
    assert "component: postal code" in full.explanation.notes and "component: apartment" in full.explanation.notes


@pytest.mark.parametrize("text", [
    "Он живёт в г. Алматы.",
    "Договор № 050012 от 12.03.2020",
    "В 2020 году доход составил 050000 тенге",
    "Торговый дом Kaspi открылся",
    "На 10 этаже есть кофе.",
    "Алматы — крупнейший город Казахстана.",
    "Пробка на пр. Назарбаева в 10:30.",  # a street named in passing is a place, not an address
    "Roadworks on Abay Avenue and Tole Bi Street start on 4 August 2021.",
])
def test_a_city_a_number_or_a_firm_is_not_an_address(rec: AddressRecognizer, text: str) -> None:
    assert spans(rec, text) == []


def test_two_addresses_in_one_text_are_two_findings(rec: AddressRecognizer) -> None:
    text = "Старый адрес: ул. Абая 10, кв. 5. Новый адрес: мкр. Орбита-1, д. 3."
    assert spans(rec, text) == ["ул. Абая 10, кв. 5", "мкр. Орбита-1, д. 3"]


def test_offsets_survive_kazakh_letters_before_the_address(rec: AddressRecognizer) -> None:
    text = "Өтініш иесінің мекенжайы: Қостанай қ., Әл-Фараби даңғылы 65"
    (finding,) = rec.find(text)
    assert text[finding.start:finding.end] == "Қостанай қ., Әл-Фараби даңғылы 65"


# --- regressions from the held-out dev split (issue 3): new texts, same classes of error -------------

@pytest.mark.parametrize("text, expected", [
    ("Доставка: Астана, Кенесары 40, кв 12. Звонить заранее", "Астана, Кенесары 40, кв 12"),
    ("Отправитель: г. Караганда, Ерубаева 33/2, тел. 8 700", "г. Караганда, Ерубаева 33/2"),
    ("Адрес: Жамбыл 114, кв 8? Курьер уже едет", "Жамбыл 114, кв 8"),
    ("мекенжай: семей, шәкәрім 21 кв 7", "шәкәрім 21 кв 7"),
    # marker-less, all caps: a town and a street with house-flat
    ("АДРЕС РЕГИСТРАЦИИ: КОСТАНАЙ, БАЙТУРСЫНОВА 57-41", "КОСТАНАЙ, БАЙТУРСЫНОВА 57-41"),
    ("адрес: ПАВЛОДАР ЛУГОВАЯ 16-2", "ПАВЛОДАР ЛУГОВАЯ 16-2"),
])
def test_addresses_without_a_street_marker_are_found_when_an_address_surrounds_them(
        rec: AddressRecognizer, text: str, expected: str) -> None:
    assert spans(rec, text) == [expected]


@pytest.mark.parametrize("text", ["Маршрут 12, остановка Абая", "Счёт 2024, заказ 15", "Команда Кайрат 2, Астана 1",
                                  "Итого 3500 тенге, скидка 10", "Алматы 2024: итоги года"])
def test_a_word_and_a_number_alone_are_not_an_address(rec: AddressRecognizer, text: str) -> None:
    assert spans(rec, text) == []


@pytest.mark.parametrize("text, expected", [
    ("Mekenjai: Aqtöbe q., Abylai han dangyly 12, 5 pater", "Aqtöbe q., Abylai han dangyly 12, 5 pater"),
    ("Almaty q., Dostyq köşesı, 7-üi", "Almaty q., Dostyq köşesı, 7-üi"),
    ("Meken-jai: Oral qalasy, Abai koshesi 3", "Oral qalasy, Abai koshesi 3"),
    ("Тұрғылықты жері: Ақтөбе қ., Әбілқайыр хан даңғылы, 15-үй, 9-пәтер.", "Ақтөбе қ., Әбілқайыр хан даңғылы, 15-үй, 9-пәтер"),
])
def test_latin_script_kazakh_markers_and_honorific_street_names(rec: AddressRecognizer, text: str,
                                                                expected: str) -> None:
    assert expected in spans(rec, text)


def test_an_entrance_note_inside_a_delivery_address_does_not_split_it(rec: AddressRecognizer) -> None:
    text = "Мекенжай: Сарыарқа даңғылы 17, 2 подъезд, 31 пәтер, рахмет"
    assert spans(rec, text) == ["Сарыарқа даңғылы 17, 2 подъезд, 31 пәтер"]


def test_all_caps_kazakh_address_with_abbreviated_street(rec: AddressRecognizer) -> None:
    text = "ПАВЛОДАР ОБЛЫСЫ, ЕКІБАСТҰЗ Қ., МӘШҺҮР ЖҮСІП К-СІ, 8 ҮЙ, 14 ПӘТЕР"
    assert spans(rec, text) == [text]


def test_a_tract_and_a_village_with_an_honorific_keep_the_address_whole(rec: AddressRecognizer) -> None:
    assert spans(rec, "склад на Талгарский тракт 160, Алматы.") == ["Талгарский тракт 160, Алматы"]
    text = "Алматинская обл., Карасайский р-н, с. Қарасай батыр, ул. Школьная, 4"
    assert spans(rec, text) == [text]
