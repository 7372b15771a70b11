"""Custom recognizers from YAML: an operator adds its own identifiers without code."""

from __future__ import annotations

from pathlib import Path

import pytest

from qorgau.discovery.custom import CustomRecognizerError, custom_recognizers_from_dict, load_custom_recognizers
from qorgau.discovery.engine import Scanner
from qorgau.discovery.recognizers import default_recognizers

GOOD = r"""
recognizers:
  - name: employee_id
    entity_type: EMPLOYEE_ID
    patterns:
      - {name: tab_number, regex: 'TAB-\d{5}', score: 0.4}
    context: [табельный, employee]
    context_boost: 0.3
  - name: diagnosis_code
    entity_type: DIAGNOSIS
    category: personal_data
    patterns:
      - {name: icd10, regex: 'диагноз:? (?P<value>[A-Z]\d{2}(?:\.\d)?)', score: 0.7}
  - name: partner_iin
    entity_type: PARTNER_IIN
    validator: iin
    patterns:
      - {name: partner, regex: 'P\d{12}', score: 0.9}
"""


def write(tmp_path: Path, text: str, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def scan_with(tmp_path: Path, text: str) -> list[tuple[str, str, str, float]]:
    custom = load_custom_recognizers(write(tmp_path, GOOD))
    scanner = Scanner([*default_recognizers(include_nlp=False), *custom])
    return [(f.type, text[f.start:f.end], f.category, f.score) for f in scanner.scan(text)]


def test_a_custom_type_is_found_when_its_context_lifts_it_over_the_threshold(tmp_path: Path) -> None:
    assert scan_with(tmp_path, "код TAB-00417") == []
    assert scan_with(tmp_path, "табельный номер TAB-00417") == [("EMPLOYEE_ID", "TAB-00417", "identifying", 0.7)]


def test_a_custom_type_carries_its_category_and_reports_only_the_value_group(tmp_path: Path) -> None:
    assert scan_with(tmp_path, "Пациент, диагноз: J45.0") == [("DIAGNOSIS", "J45.0", "personal_data", 0.7)]


def test_a_custom_validator_drops_matches_that_fail_it(tmp_path: Path) -> None:
    partner = load_custom_recognizers(write(tmp_path, GOOD))[2]
    assert [(f.type, f.explanation.validated) for f in partner.find("P791028302728")] == [("PARTNER_IIN", True)]
    assert list(partner.find("P791028302729")) == []


def test_a_built_in_validated_type_wins_over_a_custom_type_on_the_same_digits(tmp_path: Path) -> None:
    # Custom types have specificity 0 in the overlap rule, so the IIN inside is what is reported.
    assert scan_with(tmp_path, "P791028302728") == [("KZ_IIN", "791028302728", "identifying", 0.85)]


def test_custom_recognizers_explain_their_scores(tmp_path: Path) -> None:
    (recognizer, *_) = load_custom_recognizers(write(tmp_path, GOOD))
    (f,) = recognizer.find("employee TAB-00417")
    assert f.recognizer == "employee_id" and f.explanation.pattern == "tab_number"
    assert f.explanation.context_words == ("employee",) and f.explanation.context_delta == 0.3


@pytest.mark.parametrize("yaml_text, message", [
    ("recognizers:\n  - {name: a, entity_type: A, patterns: [{name: p, regex: 'x', score: 0.5}]}\n"
     "  - {name: b, entity_type: B, patterns: [{name: p, regex: 'y', score: 0.5}]}\n"
     "  - {name: c, entity_type: C, patterns: [{name: p, regex: '(x', score: 0.5}]}\n",
     "custom.yaml: recognizers[2] (c).patterns[0].regex: invalid regex (missing ), unterminated subpattern)"),
    ("recognizers:\n  - {name: a, entity_type: a-b, patterns: [{name: p, regex: x, score: 0.5}]}\n",
     "custom.yaml: recognizers[0] (a).entity_type: required, upper-case letters, digits and _ (e.g. EMPLOYEE_ID)"),
    ("recognizers:\n  - {name: a, entity_type: A, patterns: [{name: p, regex: x, score: 2}]}\n",
     "custom.yaml: recognizers[0] (a).patterns[0].score: required, a number between 0 and 1"),
    ("recognizers:\n  - {name: a, entity_type: A, validator: crc, patterns: [{name: p, regex: x, score: 1}]}\n",
     "custom.yaml: recognizers[0] (a).validator: must be one of iin, bin, luhn, iban, none"),
    ("recognizers:\n  - {name: a, entity_type: A, category: secret, patterns: [{name: p, regex: x, score: 1}]}\n",
     "custom.yaml: recognizers[0] (a).category: must be identifying or personal_data"),
    ("recognizers:\n  - {name: a, entity_type: A, patterns: []}\n",
     "custom.yaml: recognizers[0] (a).patterns: required, a non-empty list"),
    ("recognizers:\n  - {name: a, entity_type: A, pattern: [], patterns: [{name: p, regex: x, score: 1}]}\n",
     "custom.yaml: recognizers[0] (a).pattern: unknown field"),
    ("recognizers:\n  - {entity_type: A}\n", "custom.yaml: recognizers[0].name: required, a non-empty string"),
    ("recognizers:\n  - {name: a, entity_type: A, patterns: [{name: p, regex: 'x*', score: 1}]}\n",
     "custom.yaml: recognizers[0] (a).patterns[0].regex: matches the empty string"),
    ("recognizers: [ {name: a\n", "custom.yaml: invalid YAML at line"),
    ("just: text\n", "custom.yaml: must be a mapping with a 'recognizers' list"),
])
def test_a_broken_definition_is_reported_by_file_index_name_and_field(tmp_path: Path, yaml_text: str,
                                                                      message: str) -> None:
    with pytest.raises(CustomRecognizerError) as error:
        load_custom_recognizers(write(tmp_path, yaml_text))
    assert str(error.value).startswith(message)


def test_duplicate_names_are_refused() -> None:
    item = {"name": "a", "entity_type": "A", "patterns": [{"name": "p", "regex": "x", "score": 0.5}]}
    with pytest.raises(CustomRecognizerError, match=r"recognizers\[1\] \(a\)\.name: duplicate name"):
        custom_recognizers_from_dict({"recognizers": [item, item]}, source="inline")


def test_a_missing_file_is_named_without_a_traceback_of_its_content(tmp_path: Path) -> None:
    with pytest.raises(CustomRecognizerError, match=r"^absent\.yaml: cannot be read"):
        load_custom_recognizers(tmp_path / "absent.yaml")
