"""PERSON stories: Kazakh, Russian and English names are found with exact offsets; streets, firms,
cities, months and capitalised sentence starts are not people."""

from __future__ import annotations

import pytest

from qorgau.discovery.recognizers.person import PersonRecognizer, skeleton
from qorgau.discovery.types import Recognizer


@pytest.fixture(scope="module")
def rules() -> PersonRecognizer:
    return PersonRecognizer(use_natasha=False)


@pytest.fixture(scope="module")
def full() -> PersonRecognizer:
    return PersonRecognizer()


def names(recognizer: PersonRecognizer, text: str) -> list[str]:
    return [text[f.start:f.end] for f in recognizer.find(text) if f.score >= 0.5]


def test_the_recognizer_follows_the_discovery_contract(rules: PersonRecognizer) -> None:
    assert isinstance(rules, Recognizer)
    assert rules.entity_types == frozenset({"PERSON"})
    finding = next(iter(rules.find("Клиент Жаксылыков Е.Б. обратился.")))
    assert finding.type == "PERSON" and finding.category == "identifying" and finding.text is None
    assert "Жаксылыков" not in repr(finding)


@pytest.mark.parametrize("text, expected", [
    ("Иванову Ивану Ивановичу направлено письмо.", ["Иванову Ивану Ивановичу"]),
    ("Ахметова Гульнара Сериковна, 1985 г.р.", ["Ахметова Гульнара Сериковна"]),
    ("Клиент Жаксылыков Е.Б. обратился в банк.", ["Жаксылыков Е.Б."]),
    ("Приказ подписал Е.Б. Жаксылыков.", ["Е.Б. Жаксылыков"]),
    ("Signed by Zhaksylykov E.B. yesterday", ["Zhaksylykov E.B."]),
    ("Вчера Нурлан Сагынтаев встретил Мария Ким.", ["Нурлан Сагынтаев", "Мария Ким"]),
])
def test_russian_names_with_patronymics_case_endings_and_initials(rules: PersonRecognizer, text: str,
                                                                  expected: list[str]) -> None:
    assert names(rules, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Ерлан Болатұлы және Айгерім Серікқызы келді.", ["Ерлан Болатұлы", "Айгерім Серікқызы"]),
    ("Жауапты: Тұрсынбаев Жанболат Ерланұлы", ["Тұрсынбаев Жанболат Ерланұлы"]),
    ("Арыстанбек Шәмшиденов сөйледі.", ["Арыстанбек Шәмшиденов"]),
    ("Nurlan Yerlanuly and Aigerim Serikkyzy signed.", ["Nurlan Yerlanuly", "Aigerim Serikkyzy"]),
    ("Aygerim Zhaksybekova works in Astana.", ["Aygerim Zhaksybekova"]),
])
def test_kazakh_names_in_cyrillic_and_latin_script(rules: PersonRecognizer, text: str, expected: list[str]) -> None:
    assert names(rules, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Aigerim Sultanova met Mr. John Smith.", ["Aigerim Sultanova", "John Smith"]),
    ("Please contact Dr. Gregory House today.", ["Gregory House"]),
    ("The report was written by Sarah Connor.", ["Sarah Connor"]),
    ("New card issued to Sarah O'Connor, delivered today.", ["Sarah O'Connor"]),
    ("The court heard Mark Fischer and Thomas Taylor.", ["Mark Fischer", "Thomas Taylor"]),
])
def test_english_names_and_titles(rules: PersonRecognizer, text: str, expected: list[str]) -> None:
    assert names(rules, text) == expected


@pytest.mark.parametrize("text", [
    "Проживает по адресу ул. Абая 10, г. Алматы.",
    "Офис на проспекте Назарбаева, пр. Сатпаева 5.",
    "Абай даңғылы 10 үй, Сатпаев көшесі 5.",
    "ТОО Казахтелеком и АО Kaspi Bank заключили договор.",
    "В Алматы и Астане в марте было холодно.",
    "Снова пришли. Итогов нет. Магазин закрыт.",
    "Купил iPhone Pro Max и Samsung Galaxy в Kaspi Магазине.",
    "Наурыз мейрамы 22 наурызда басталады.",
    "Роза расцвела в саду.",
    "Lincoln Street and Oxford Road are closed in May.",
    "Школа имени Абая открылась.",
    "Памятник Абаю на площади Республики отреставрируют.",
    "Көлік Қабанбай батыр даңғылында тіркелді.",
    "Address: Karaganda, Kabanbay Batyr Ave, 19",
    "Al-Farabi Kazakh National University and Nazarbayev University announced scholarships.",
    "Астана мен Алматыда Қазпошта өкілдерімен кездесу өтті.",
    "Адрес: Алматинская обл., Карасайский р-н, с. Каскелен",
])
def test_streets_organisations_cities_months_and_products_are_not_people(full: PersonRecognizer,
                                                                         text: str) -> None:
    assert names(full, text) == []


def test_a_famous_given_name_alone_can_still_be_a_person(rules: PersonRecognizer) -> None:
    found = list(rules.find("Абай — великий поэт."))
    assert [(f.start, f.end) for f in found] == [(0, 4)]
    assert found[0].score < 0.7  # one given name alone is weak evidence


def test_a_naming_context_word_raises_the_score(rules: PersonRecognizer) -> None:
    plain = next(iter(rules.find("Сегодня пришёл Ахметов.")))
    named = next(iter(rules.find("ФИО: Ахметов.")))
    assert named.score > plain.score
    assert named.explanation is not None and "фио" in named.explanation.context_words


def test_offsets_are_exact_after_kazakh_letters(rules: PersonRecognizer) -> None:
    text = "Қазақ тілінде: өңірдегі ұйым үшін Әлібек Нұрланұлы жауап береді."
    (finding,) = rules.find(text)
    assert text[finding.start:finding.end] == "Әлібек Нұрланұлы"


def test_the_explanation_names_the_rules_that_matched(rules: PersonRecognizer) -> None:
    (finding,) = rules.find("Иванову Ивану Ивановичу")
    assert finding.explanation is not None
    assert finding.explanation.pattern == "surname + given name + patronymic"
    assert "patronymic suffix" in finding.explanation.notes


def test_latin_spellings_of_kazakh_names_share_one_skeleton() -> None:
    assert skeleton("Айгерім") == skeleton("Aigerim") == skeleton("Aygerim") == skeleton("Äigerim")
    assert skeleton("Жансая") == skeleton("Zhansaya")
    assert skeleton("Ерлан") == skeleton("Yerlan")


def test_natasha_finds_a_name_the_rules_cannot_decide(rules: PersonRecognizer, full: PersonRecognizer) -> None:
    text = "Документы принёс Гоча Шенгелия из отдела."
    assert names(rules, text) == []  # neither word is in a lexicon or has a name suffix
    (finding,) = full.find(text)
    assert text[finding.start:finding.end] == "Гоча Шенгелия"
    assert finding.explanation is not None and finding.explanation.pattern == "natasha PER"


def test_natasha_widens_a_surname_to_the_unknown_given_name_before_it(rules: PersonRecognizer,
                                                                      full: PersonRecognizer) -> None:
    text = "Письмо подписал Джохар Ахтаханов."
    assert names(rules, text) == ["Ахтаханов"]
    assert names(full, text) == ["Джохар Ахтаханов"]


def test_natasha_can_be_switched_off(rules: PersonRecognizer) -> None:
    assert rules.use_natasha is False


def test_natasha_confirms_a_weak_rule_finding(rules: PersonRecognizer, full: PersonRecognizer) -> None:
    text = "Документы передал Сагынтаев в понедельник."
    weak = next(iter(rules.find(text)))
    strong = next(iter(full.find(text)))
    assert (strong.start, strong.end) == (weak.start, weak.end)
    assert strong.score > weak.score
    assert strong.explanation is not None and "natasha PER" in strong.explanation.notes


def test_construction_is_cheap_after_the_first(full: PersonRecognizer) -> None:
    import time

    started = time.perf_counter()
    for _ in range(20):
        PersonRecognizer()
    assert time.perf_counter() - started < 1.0  # models and lexicons are shared per process


# --- regressions from the held-out dev split (issue 3): new texts, same classes of error -------------

@pytest.mark.parametrize("text, expected", [
    ("Протокол составлен в отношении гр. Сапарова Ерлана Маратовича, ранее не судимого.",
     ["Сапарова Ерлана Маратовича"]),
    ("Со слов гр. Жумабаевой Т.К. установлено следующее.", ["Жумабаевой Т.К."]),
])
def test_a_name_after_gr_for_citizen_is_not_taken_for_a_town(rules: PersonRecognizer, text: str,
                                                             expected: list[str]) -> None:
    assert names(rules, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Құрметті ОСПАНОВА ГҮЛНАР! Өтінішіңіз қабылданды.", ["ОСПАНОВА ГҮЛНАР"]),
    ("Dear SADYKOV TIMUR, your parcel is ready.", ["SADYKOV TIMUR"]),
    ("Т.А.Ә.: ҚАСЫМОВ БЕРІК СЕРІКҰЛЫ", ["ҚАСЫМОВ БЕРІК СЕРІКҰЛЫ"]),
    ("ФАМИЛИЯ: БЕКОВА\nИМЯ: ДИНАРА\nОТЧЕСТВО: АСКАРОВНА", ["БЕКОВА", "ДИНАРА", "АСКАРОВНА"]),
])
def test_all_caps_names_are_found(rules: PersonRecognizer, text: str, expected: list[str]) -> None:
    assert names(rules, text) == expected


@pytest.mark.parametrize("text", ["ВНИМАНИЕ! ТОО КАЗАХТЕЛЕКОМ СООБЩАЕТ", "ДОГОВОР ПОСТАВКИ № 15",
                                  "GET /api HTTP/1.1 200 OK", "ИВАНОВ", "ОТЧЕТ ЗА МАРТ: ПЕТРОВ"])
def test_all_caps_headings_and_acronyms_are_not_names(rules: PersonRecognizer, text: str) -> None:
    assert names(rules, text) == []


@pytest.mark.parametrize("text, expected", [
    ("фио сейтказиева жанар тел 8 701", ["сейтказиева жанар"]),
    ("аты-жөні: нұрланов ерлан", ["нұрланов ерлан"]),
    ("name: aigerim bekova", ["aigerim bekova"]),
])
def test_lower_case_names_right_after_a_name_label_are_found(rules: PersonRecognizer, text: str,
                                                             expected: list[str]) -> None:
    assert names(rules, text) == expected


def test_lower_case_words_after_a_label_that_are_not_names_are_not_found(rules: PersonRecognizer) -> None:
    assert names(rules, "фио не указано в заявке") == []
    assert names(rules, "аты белгісіз болып қалды") == []


@pytest.mark.parametrize("text, expected", [
    ("Бұйрық Жұмабековқа Ерланға жіберілді.", ["Жұмабековқа Ерланға"]),
    ("Сейітованың Айгүлдің өтініші қаралды.", ["Сейітованың Айгүлдің"]),
    ("Құжатты Тұрсыновтан алдық.", ["Тұрсыновтан"]),
])
def test_kazakh_case_endings_on_surnames(rules: PersonRecognizer, text: str, expected: list[str]) -> None:
    assert names(rules, text) == expected


def test_a_particle_inside_a_western_name_keeps_it_whole(rules: PersonRecognizer) -> None:
    assert names(rules, "Reviewer: Anna de Groot, HR.") == ["Anna de Groot"]
    assert names(rules, "Supervisor Maria van der Berg approved it") == ["Maria van der Berg"]


@pytest.mark.parametrize("text", [
    "Еңбек кітапшасы тапсырылды.",  # a word with a name-like ending at a sentence start
    "Ағайын, хабарласыңыздар!",  # a word with a surname-like ending at a sentence start
    "Құрылыс Сәтпаев мен Абай қиылысында жүріп жатыр.",  # a crossing of streets named after people
    "Пробка на пересечении улиц Абая и Сейфуллина.",
    "She studied at Nazarbayev Intellectual School in Oral.",
    "We met near Abai metro station.",
    "The Abai Kazakh National Pedagogical University opens in May.",
    'Residential complex "Abay Residence" opens soon.',
    "Kunaev is growing fast.",
    "fasting glucose 9.4 mmol/L. Reviewed later.",
])
def test_places_institutions_and_sentence_starts_are_not_people(rules: PersonRecognizer, text: str) -> None:
    assert names(rules, text) == []


def test_a_quoted_entrepreneur_with_initials_is_still_a_person(rules: PersonRecognizer) -> None:
    assert names(rules, "ИП «Сарсенбаев К.Т.» поставил товар") == ["Сарсенбаев К.Т."]


def test_natasha_does_not_widen_a_name_over_kazakh_lower_case_words(full: PersonRecognizer) -> None:
    text = "Кеше Абай мен Тимур саябаққа барды."
    for f in full.find(text):
        assert " мен " not in text[f.start:f.end]
