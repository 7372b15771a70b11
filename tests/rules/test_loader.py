"""Every way a rule pack can be wrong is refused with the file and the line to look at, and the current book
stays exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qorgau.rules import RulePackError, load_catalog, reload_rulebook, rulebook

from .conftest import FACTS, PACKS, STRICTER

AI = (PACKS / "ai.yaml").read_text()
PD = (PACKS / "pd.yaml").read_text()


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth occurrence of ``needle``."""
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    return text.count("\n", 0, start) + 1


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


# Each case: (name, files {name: text}, needle whose line the error must name, rule id or None, words in message)
LABEL_EXAMPLES = """      - {name: generator, facts: {functions: {synthetic_content: true}}, fires: true}
      - {name: classifier, facts: {functions: {synthetic_content: false}}, fires: false}"""
NEW_DEADLINE = """  - id: fx.deadline.objection-again
    citation: {law: "PD law", article: "25"}
    status: text
    title: {kk: "x", ru: "x", en: "x"}
    explanation: {kk: "x", ru: "x", en: "x"}
    effective_from: 2024-01-01
    effective_until: 2024-12-31
    when: 'true'
    effect: {type: deadline, code: pd.objection_decision, working_days: 5}
    examples:
      - {name: in force, facts: {}, fires: true}
      - {name: before, facts: {}, fires: false, as_of: 2020-01-01}
"""


def _cases() -> list[tuple[str, dict[str, str], str, str | None, str]]:
    bad_cel = replace_once(AI, "when: 'functions.synthetic_content'", "when: 'functions.synthetic_content &&'")
    unknown_fact = replace_once(AI, "when: 'functions.synthetic_content'",
                                "when: 'functions.synthetic_content && !functions.telepathy'")
    unknown_ns = replace_once(AI, "when: 'functions.synthetic_content'", "when: 'functions.synthetic_content && x'")
    schema_status = replace_once(AI, "    status: plan\n", "    status: rumour\n")
    schema_key = replace_once(AI, "    status: plan\n", "    status: plan\n    severity: 3\n")
    schema_effect = replace_once(AI, "effect: {type: notice, code: old_regime}", "effect: {type: notice}")
    schema_effect_field = replace_once(AI, "effect: {type: notice, code: old_regime}",
                                       "effect: {type: notice, code: old_regime, level: high}")
    schema_missing = replace_once(AI, "    explanation: {kk: \"Орта\", ru: \"Средний\", en: \"Failure causes damage\"}\n", "")
    yaml_syntax = replace_once(AI, "    effect: {type: risk_level, level: medium}",
                               "    effect: {type: risk_level, level: medium\n  broken: [")
    dup_key = replace_once(AI, "    status: plan\n", "    status: plan\n    status: text\n")
    no_fire = replace_once(AI, LABEL_EXAMPLES, LABEL_EXAMPLES.replace("fires: true", "fires: false"))
    no_nonfire = replace_once(AI, LABEL_EXAMPLES, LABEL_EXAMPLES.replace("fires: false", "fires: true"))
    bad_example = replace_once(AI, "{name: classifier, facts: {functions: {synthetic_content: false}}",
                               "{name: classifier, facts: {functions: {synthetic_content: false, telepathy: true}}")
    bad_example_type = replace_once(AI, "{name: classifier, facts: {functions: {synthetic_content: false}}",
                                    "{name: classifier, facts: {functions: {synthetic_content: maybe}}")
    until_before = replace_once(AI, "effective_until: 2026-01-17", "effective_until: 2024-01-17")
    dup_rule = replace_once(PD, "- id: fx.notice.automated", "- id: fx.risk.high")
    conflict_deadline = PD.rstrip("\n") + "\n" + NEW_DEADLINE
    same_deadline = PD.rstrip("\n") + "\n" + NEW_DEADLINE.replace("working_days: 5", "working_days: 3")
    autonomy_conflict = replace_once(AI, "when: 'oversight.human_final_choice'",
                                     "when: 'oversight.human_final_choice || !oversight.human_final_choice'")
    dup_pack = replace_once(PD, "pack: fx.pd", "pack: fx.ai")
    return [
        ("yaml syntax", {"ai.yaml": yaml_syntax}, "  broken: [", None, "YAML syntax"),
        ("duplicate yaml key", {"ai.yaml": dup_key}, "    status: text\n    title: {kk: \"Аудит\"", None,
         "duplicate key"),
        ("schema: bad status", {"ai.yaml": schema_status}, "status: rumour", "fx.obligation.stale-audit",
         "status: must be one of text, report, plan"),
        ("schema: unknown key", {"ai.yaml": schema_key}, "    severity: 3", "fx.obligation.stale-audit",
         "unknown key"),
        ("schema: effect lacks a field", {"ai.yaml": schema_effect}, "effect: {type: notice}",
         "fx.notice.old-regime", "code"),
        ("schema: effect field of another type", {"ai.yaml": schema_effect_field},
         "effect: {type: notice, code: old_regime, level: high}", "fx.notice.old-regime", "level"),
        ("schema: missing key", {"ai.yaml": schema_missing}, "  - id: fx.risk.medium", "fx.risk.medium",
         "'explanation' is required"),
        ("CEL syntax", {"ai.yaml": bad_cel}, "when: 'functions.synthetic_content &&'", "fx.obligation.label",
         "CEL syntax"),
        ("unknown fact", {"ai.yaml": unknown_fact}, "!functions.telepathy", "fx.obligation.label",
         "unknown fact `functions.telepathy`"),
        ("unknown namespace", {"ai.yaml": unknown_ns}, "functions.synthetic_content && x'", "fx.obligation.label",
         "unknown fact namespace `x`"),
        ("no firing example", {"ai.yaml": no_fire}, "    examples:\n      - {name: generator",
         "fx.obligation.label", "firing example"),
        ("no non-firing example", {"ai.yaml": no_nonfire}, "    examples:\n      - {name: generator",
         "fx.obligation.label", "non-firing example"),
        ("example with an unknown fact", {"ai.yaml": bad_example}, "telepathy: true", "fx.obligation.label",
         "unknown fact `functions.telepathy`"),
        ("example with a wrong type", {"ai.yaml": bad_example_type}, "synthetic_content: maybe",
         "fx.obligation.label", "must be true or false"),
        ("period ends before it starts", {"ai.yaml": until_before}, "effective_until: 2024-01-17",
         "fx.notice.old-regime", "before effective_from"),
        ("duplicate rule id", {"ai.yaml": AI, "pd.yaml": dup_rule}, "- id: fx.risk.high", "fx.risk.high",
         "duplicate rule id"),
        ("conflicting deadline", {"pd.yaml": conflict_deadline}, "- id: fx.deadline.objection-again",
         "fx.deadline.objection-again", "conflicting deadline 'pd.objection_decision'"),
        ("conflicting autonomy levels", {"ai.yaml": autonomy_conflict}, "{name: alone,", "fx.autonomy.high",
         "conflicting autonomy levels"),
        ("duplicate pack id", {"ai.yaml": AI, "pd.yaml": dup_pack}, "pack: fx.ai", None, "duplicate pack id"),
    ] + [("same deadline twice is fine", {"pd.yaml": same_deadline}, "", None, "")]


CASES = _cases()


@pytest.mark.parametrize("name, files, needle, rule_id, words", CASES, ids=[c[0] for c in CASES])
def test_an_invalid_pack_names_file_and_line_and_the_book_stays(
        tmp_path: Path, fresh_global: None, name: str, files: dict[str, str], needle: str, rule_id: str | None,
        words: str) -> None:
    before = reload_rulebook([PACKS, STRICTER], facts=FACTS)
    for filename, text in files.items():
        (tmp_path / filename).write_text(text, encoding="utf-8")
    if not needle:  # the control case: a valid variant loads
        assert reload_rulebook([tmp_path], facts=FACTS).digest != before.digest
        return
    with pytest.raises(RulePackError) as exc:
        reload_rulebook([tmp_path], facts=FACTS)
    error = exc.value
    # the file the needle is in (the later file for cross-pack errors)
    culprit = [f for f, text in sorted(files.items()) if needle in text][-1]
    assert error.file == str(tmp_path / culprit)
    assert error.line == line_of(files[culprit], needle), error.message
    assert error.rule_id == rule_id
    assert words in error.message
    assert error.message.startswith(f"{tmp_path / culprit}:{error.line}: ")
    assert rulebook() is before and rulebook().digest == before.digest


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RulePackError) as exc:
        reload_rulebook([tmp_path / "nope"], facts=FACTS)
    assert exc.value.file == str(tmp_path / "nope")


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_bytes(b"pack: \xff\xfe\n")
    with pytest.raises(RulePackError) as exc:
        reload_rulebook([tmp_path], facts=FACTS)
    assert "UTF-8" in exc.value.message


@pytest.mark.parametrize("mutate, needle, words", [
    (lambda t: t.replace("            values: [finance, health, other]\n", "", 1), "- path: system.sector",
     "values"),
    (lambda t: t.replace("type: bool, required: true, question: {kk: \"Синтетика?\"",
                         "type: boolean, required: true, question: {kk: \"Синтетика?\""), "Синтетика?",
     "must be one of"),
    (lambda t: t.replace("path: functions.legal_effect", "path: functions.emotion_recognition"),
     "path: functions.emotion_recognition, type: bool, question", "duplicate fact"),
    (lambda t: t.replace("path: users.count", "path: users"), "path: users,", "does not match"),
])
def test_an_invalid_facts_catalogue_names_file_and_line(tmp_path: Path, mutate: Callable[[str], str], needle: str,
                                                         words: str) -> None:
    text = mutate(FACTS.read_text())
    (tmp_path / "facts.yaml").write_text(text)
    with pytest.raises(RulePackError) as exc:
        load_catalog(tmp_path / "facts.yaml")
    assert exc.value.line == line_of(text, needle), exc.value.message
    assert words in exc.value.message


def test_string_literals_are_not_facts(tmp_path: Path) -> None:
    text = replace_once(AI, "when: 'functions.synthetic_content'",
                        "when: 'functions.synthetic_content && !(\"telepathy.mind\" in legal.allowed_by_law)'")
    (tmp_path / "ai.yaml").write_text(text)
    from qorgau.rules import load_rulebook

    rule = load_rulebook([tmp_path], facts=FACTS).rule("fx.obligation.label")
    assert rule.facts_used == ("functions.synthetic_content", "legal.allowed_by_law")
