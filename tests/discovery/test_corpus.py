"""The labelled corpus is a fair exam: big enough, every type covered, labels exact and independent."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from qorgau.discovery.corpus import build
from qorgau.discovery.evaluation import DEFAULT_CORPUS, load_corpus
from qorgau.discovery.types import EntityType, context_near, context_pattern
from qorgau.identifiers import card_brand, is_valid_bin, is_valid_card, is_valid_iban, is_valid_iin, parse_phone


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def spans(corpus, kind):
    for example in corpus:
        for span in example.entities:
            if span.type == kind:
                yield example, example.text[span.start:span.end]


def test_the_corpus_has_at_least_400_records_in_kazakh_russian_english_and_mixed(corpus):
    langs = Counter(e.lang for e in corpus)
    assert len(corpus) >= 400
    assert set(langs) == {"kk", "ru", "en", "mixed"}
    assert min(langs.values()) >= 40


def test_every_entity_type_is_labelled_at_least_fifteen_times(corpus):
    counts = Counter(s.type for e in corpus for s in e.entities)
    assert {t.value for t in EntityType} <= set(counts)
    assert min(counts.values()) >= 15


def test_a_sixth_of_the_records_are_pure_hard_negatives(corpus):
    empty = [e for e in corpus if not e.entities]
    assert len(empty) >= len(corpus) // 6
    tags = Counter(t for e in corpus for t in e.hard_negatives)
    for kind in ("bad_checksum_12", "impossible_date_12", "service_number", "nine_digits_without_context",
                 "date_without_birth_context", "street_named_after_person", "organization", "city", "amount"):
        assert tags[kind] >= 3, kind


def test_the_committed_file_is_exactly_what_the_seeded_generator_writes():
    assert DEFAULT_CORPUS.read_text(encoding="utf-8") == build.dumps(build.build_records())


def test_labelled_spans_never_overlap_and_never_carry_surrounding_whitespace(corpus):
    for example in corpus:
        ordered = sorted(example.entities, key=lambda s: s.start)
        for a, b in zip(ordered, ordered[1:]):
            assert a.end <= b.start, example.id


def test_every_labelled_iin_and_bin_passes_its_checksum(corpus):
    assert all(is_valid_iin(v) for _, v in spans(corpus, "KZ_IIN"))
    assert all(is_valid_bin(v) for _, v in spans(corpus, "KZ_BIN"))


def test_no_unlabelled_12_digit_number_in_the_corpus_is_a_valid_iin_or_bin(corpus):
    for example in corpus:
        labelled = {(s.start, s.end) for s in example.entities}
        for m in re.finditer(r"(?<!\d)\d{12}(?!\d)", example.text):
            if (m.start(), m.end()) not in labelled:
                assert not is_valid_iin(m.group()) and not is_valid_bin(m.group()), example.id


def test_cards_pass_luhn_and_mir_cards_are_among_them(corpus):
    cards = [v for _, v in spans(corpus, "CREDIT_CARD")]
    assert all(is_valid_card(v) for v in cards)
    brands = Counter(card_brand(re.sub(r"\D", "", v)) for v in cards)
    assert brands["mir"] >= 10 and brands["visa"] and brands["mastercard"]


def test_ibans_are_valid_and_phones_are_kazakh_numbers_in_many_writings(corpus):
    assert all(is_valid_iban(v) for _, v in spans(corpus, "IBAN_CODE"))
    phones = [v for _, v in spans(corpus, "PHONE_NUMBER")]
    assert all(parse_phone(v).country == "KZ" for v in phones)
    shapes = {re.sub(r"\d", "9", v) for v in phones}
    assert {"+9 999 999 99 99", "9 (999) 999-99-99", "99999999999", "+99999999999"} <= shapes
    assert any(p.startswith(("+7 7172", "8 (7172)", "+7 (7172)")) for p in phones)  # Astana landline


def test_service_numbers_are_never_labelled(corpus):
    for example in corpus:
        for s in example.entities:
            assert example.text[s.start:s.end] not in {"102", "103", "112", "1414", "*141#"}


def test_gov_kz_emails_are_in_the_corpus(corpus):
    assert sum(v.endswith("gov.kz") for _, v in spans(corpus, "EMAIL_ADDRESS")) >= 10


def test_every_id_card_number_has_identity_card_context(corpus):
    words = context_pattern(["удостоверение", "жеке куәлік", "ID card", "national ID"])
    for example, _ in spans(corpus, "KZ_ID_CARD"):
        found = [s for s in example.entities if s.type == "KZ_ID_CARD"]
        assert all(context_near(example.text, s.start, s.end, words) for s in found), example.id


def test_every_birth_date_has_birth_context(corpus):
    words = context_pattern(["дата рождения", "родился", "г.р", "д.р", "туған", "born", "date of birth", "dob",
                             "tugan"])
    for example in corpus:
        for s in example.entities:
            if s.type == "DATE_OF_BIRTH":
                assert context_near(example.text, s.start, s.end, words), example.id


def test_kazakh_patronymics_initials_and_case_endings_are_among_the_names(corpus):
    names = [v for _, v in spans(corpus, "PERSON")]
    assert any(v.endswith(("ұлы", "қызы")) for v in names)
    assert any(v.endswith(("uly", "kyzy")) for v in names)
    assert any(re.search(r"\b[А-ЯӘҒҚҢӨҰҮІ]\.\s?[А-ЯӘҒҚҢӨҰҮІ]\.$", v) for v in names)  # Жаксылыков Е.Б.
    assert any(v.endswith(("тың", "ның", "қа", "на")) for v in names)  # Kazakh genitive/dative
    assert any(v.endswith(("ичу", "овой", "ича")) for v in names)  # Russian oblique cases
