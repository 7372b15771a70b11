"""The scanner: thresholds, type filters, allow/deny lists, overlap resolution, offsets, no leaks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qorgau.discovery.engine import Scanner, resolve_overlaps
from qorgau.discovery.lists import AllowList, DenyList, ListError
from qorgau.discovery.types import Explanation, Finding
from qorgau.identifiers import iin_check_digit, luhn_check_digit

IIN = "791028302728"
PHONE = "+7 701 234 56 78"


def spans(findings: list[Finding], text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in findings]


def finding(kind: str, start: int, end: int, score: float, validated: bool | None, recognizer: str = "t") -> Finding:
    return Finding(type=kind, start=start, end=end, score=score, recognizer=recognizer,
                   explanation=Explanation(pattern="p", base_score=score, validated=validated))


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.identifiers_only()


def test_findings_come_sorted_by_position_with_exact_offsets_in_kazakh_text(scanner: Scanner) -> None:
    text = f"Құрметті Әлия! ЖСН: {IIN}; ұялы телефон {PHONE}; пошта: әлия@gov.kz."
    assert spans(scanner.scan(text), text) == [("KZ_IIN", IIN), ("PHONE_NUMBER", PHONE),
                                               ("EMAIL_ADDRESS", "әлия@gov.kz")]


def test_the_matched_text_is_kept_only_on_request_and_never_shown_by_repr(scanner: Scanner) -> None:
    text = f"ИИН {IIN}"
    (bare,) = scanner.scan(text)
    (with_text,) = scanner.scan(text, include_text=True)
    assert bare.text is None and with_text.text == IIN
    for f in (bare, with_text):
        assert IIN not in repr(f) and IIN not in str(f) and IIN not in repr(f.explanation)
    assert "text" not in with_text.to_dict() and with_text.to_dict(include_text=True)["text"] == IIN


def test_min_score_drops_weaker_findings(scanner: Scanner) -> None:
    text = f"номер {IIN}"  # no context: base score 0.85
    assert len(Scanner.identifiers_only(min_score=0.9).scan(text)) == 0
    assert len(scanner.scan(text)) == 1
    with pytest.raises(ValueError):
        Scanner.identifiers_only(min_score=1.5)


def test_entity_types_limit_what_is_reported_and_which_recognizers_run() -> None:
    only_phones = Scanner.identifiers_only(entity_types=["PHONE_NUMBER"])
    text = f"ИИН {IIN}, тел. {PHONE}"
    assert spans(only_phones.scan(text), text) == [("PHONE_NUMBER", PHONE)]
    assert [r.name for r in only_phones.recognizers] == ["phone"]
    assert only_phones.entity_types == frozenset({"PHONE_NUMBER"})


def test_identifiers_only_has_no_nlp_types() -> None:
    assert not Scanner.identifiers_only().entity_types & {"PERSON", "ADDRESS", "DATE_OF_BIRTH"}


def test_an_empty_text_has_no_findings(scanner: Scanner) -> None:
    assert scanner.scan("") == []


# --- allow / deny -----------------------------------------------------------------------------------

def test_an_allow_listed_value_is_not_reported_in_any_writing() -> None:
    scanner = Scanner.identifiers_only(allow=AllowList(["+7 701 234 56 78", "re:.*@example\\.com"]))
    text = f"тел. 8(701)234-56-78? нет: {PHONE}; +77012345679, test@example.com, a@gov.kz"
    assert spans(scanner.scan(text), text) == [("PHONE_NUMBER", "8(701)234-56-78"), ("PHONE_NUMBER", "+77012345679"),
                                               ("EMAIL_ADDRESS", "a@gov.kz")]


def test_deny_listed_values_are_reported_with_full_score_and_their_type() -> None:
    deny = DenyList(["TAB-00417", "re:EMP-\\d{4}"], entity_type="EMPLOYEE_ID")
    scanner = Scanner.identifiers_only(deny=deny)
    text = "Табельный TAB-00417, также EMP-0032 и XTAB-00417"
    result = scanner.scan(text)
    assert spans(result, text) == [("EMPLOYEE_ID", "TAB-00417"), ("EMPLOYEE_ID", "EMP-0032")]
    assert all(f.score == 1.0 and f.recognizer == "deny_list" and f.category == "identifying" for f in result)
    assert "EMPLOYEE_ID" in scanner.entity_types


def test_a_deny_list_wins_an_overlap_with_a_recognizer() -> None:
    scanner = Scanner.identifiers_only(deny=DenyList({"KZ_IIN": [f"ИИН {IIN}"]}))
    text = f"ИИН {IIN}"
    (f,) = scanner.scan(text)
    assert (f.recognizer, f.start, f.end) == ("deny_list", 0, len(text))


def test_lists_load_from_text_and_yaml_files_and_never_show_their_values(tmp_path: Path) -> None:
    (tmp_path / "allow.txt").write_text(f"# our switchboard\n{PHONE}\n\nre:.*@qorgau\\.kz\n", encoding="utf-8")
    (tmp_path / "deny.yaml").write_text("entity_type: EMPLOYEE_ID\nvalues: [TAB-00417, 're:EMP-\\d{4}']\n",
                                        encoding="utf-8")
    allow = AllowList.from_file(tmp_path / "allow.txt")
    deny = DenyList.from_file(tmp_path / "deny.yaml")
    assert allow.allows("+77012345678") and allow.allows("hr@qorgau.kz") and not allow.allows("hr@gov.kz")
    assert [f.type for f in deny.find("TAB-00417")] == ["EMPLOYEE_ID"]
    assert PHONE not in repr(allow) and "TAB" not in repr(deny)


def test_a_bad_list_entry_is_named_by_file_and_line_not_by_value(tmp_path: Path) -> None:
    (tmp_path / "deny.txt").write_text("791028302728\nre:(unclosed\n", encoding="utf-8")
    with pytest.raises(ListError) as error:
        DenyList.from_file(tmp_path / "deny.txt")
    assert str(error.value).startswith("deny.txt[1]: invalid regex") and "unclosed" not in str(error.value)


# --- overlaps ---------------------------------------------------------------------------------------

def test_a_card_number_inside_an_iban_like_string_is_reported_as_the_iban(scanner: Scanner) -> None:
    payload = "400000000000000"
    card = payload + str(luhn_check_digit(payload))
    from qorgau.identifiers.checksums import iban_check_digits

    bank, account = card[:3], card[3:]
    iban = "KZ" + iban_check_digits("KZ", bank + account) + bank + account
    spaced = " ".join(iban[i:i + 4] for i in range(0, 20, 4))
    text = f"карта или счёт {spaced}"
    assert spans(scanner.scan(text), text) == [("IBAN_CODE", spaced)]


def test_a_phone_shaped_prefix_of_an_iin_run_is_only_the_iin(scanner: Scanner) -> None:
    first11 = "870123" + "4" + "5678"  # a woman born 1987-01-23, written like 8 701 234 56 78…
    check = iin_check_digit(first11)
    assert check is not None
    iin = first11 + str(check)
    text = f"тел. или ИИН {iin}"
    assert spans(scanner.scan(text), text) == [("KZ_IIN", iin)]


def test_overlap_rule_validated_then_specific_then_score_then_length_then_position() -> None:
    validated_weak = finding("PHONE_NUMBER", 0, 10, 0.6, True)
    unvalidated_strong = finding("KZ_IIN", 2, 14, 0.99, None)
    assert resolve_overlaps([unvalidated_strong, validated_weak]) == [validated_weak]
    specific = finding("KZ_IIN", 0, 12, 0.6, True)
    general = finding("PHONE_NUMBER", 1, 12, 0.9, True)
    assert resolve_overlaps([general, specific]) == [specific]
    higher, lower = finding("PERSON", 0, 5, 0.9, None), finding("PERSON", 3, 9, 0.8, None)
    assert resolve_overlaps([lower, higher]) == [higher]
    longer, shorter = finding("PERSON", 0, 8, 0.8, None), finding("PERSON", 2, 6, 0.8, None)
    assert resolve_overlaps([shorter, longer]) == [longer]
    first, second = finding("PERSON", 0, 4, 0.8, None), finding("PERSON", 2, 6, 0.8, None)
    assert resolve_overlaps([second, first]) == [first]
    touching = [finding("PERSON", 0, 4, 0.8, None), finding("ADDRESS", 4, 9, 0.8, None)]
    assert resolve_overlaps(touching[::-1]) == touching


def test_overlap_resolution_does_not_depend_on_input_order() -> None:
    items = [finding("PERSON", i, i + 5, 0.5 + (i % 4) / 10, None if i % 3 else True) for i in range(0, 40, 3)]
    assert resolve_overlaps(items) == resolve_overlaps(items[::-1]) == resolve_overlaps(sorted(items, key=hash))


# --- reuse ------------------------------------------------------------------------------------------

def test_one_scanner_serves_many_threads_with_the_same_answers(scanner: Scanner) -> None:
    texts = [f"ИИН {IIN}, тел. {PHONE}, #{i}" for i in range(50)]
    expected = [scanner.scan(t) for t in texts]
    results: list[list[list[Finding]]] = []

    def work() -> None:
        results.append([scanner.scan(t) for t in texts])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4
