"""The rule engine over the fixture packs: the law as of a date, missing facts, risk and autonomy, deadlines,
embedded examples, export, and the process-wide book (atomic reload, reload while evaluating)."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from qorgau.core.errors import InvalidInput, NotFound
from qorgau.rules import (
    RuleBook,
    RulePackError,
    facts_from_flat,
    load_rulebook,
    reload_rulebook,
    rulebook,
)

from .conftest import FACTS, PACKS, STRICTER

BEFORE = date(2025, 6, 1)      # before the AI law (18 January 2026)
AFTER = date(2026, 2, 1)

EMOTIONS_NO_CONSENT = {"functions": {"emotion_recognition": True},
                       "legal": {"emotion_recognition_consent": False, "allowed_by_law": []},
                       "inputs": {"personal_data": True}}


def ids(findings: list) -> list[str]:
    return [f.rule_id for f in findings]


def full_facts(**overrides: dict) -> dict:
    """Every fact of the fixture catalogue's ai_system answered (a harmless system), with overrides."""
    facts = {
        "system": {"sector": "finance", "purpose": "scoring"},
        "functions": {"emotion_recognition": False, "synthetic_content": False, "legal_effect": False},
        "legal": {"emotion_recognition_consent": False, "allowed_by_law": []},
        "inputs": {"personal_data": False},
        "users": {"count": 10},
        "failure": {"impact": "minimal"},
        "deployment": {"critical_ict": False},
        "oversight": {"human_final_choice": True, "human_can_correct": True},
        "audit": {"completed": False, "date": None},
    }
    for ns, values in overrides.items():
        facts[ns] = {**facts.get(ns, {}), **values}
    return facts


# --- the law as of a date --------------------------------------------------------------------------------------


def test_the_same_facts_read_differently_before_and_after_the_ai_law(book: RuleBook) -> None:
    before = book.evaluate(EMOTIONS_NO_CONSENT, as_of=BEFORE)
    after = book.evaluate(EMOTIONS_NO_CONSENT, as_of=AFTER)
    assert not before.prohibited and before.prohibitions == []
    assert ids(before.notices) == ["fx.notice.old-regime"]
    assert after.prohibited and ids(after.prohibitions) == ["fx.prohibited.emotion"]
    assert after.notices == []
    assert before.as_of == BEFORE and after.as_of == AFTER


def test_before_any_risk_rule_is_in_force_no_risk_class_is_claimed(book: RuleBook) -> None:
    before = book.evaluate(full_facts(), as_of=BEFORE)  # a harmless system, before the AI law
    assert before.law_in_force is False
    assert before.risk_level is None and before.autonomy_level is None and before.risk_reasons == []
    assert before.to_dict()["law_in_force"] is False and before.to_dict()["risk_level"] is None
    after = book.evaluate(full_facts(), as_of=AFTER)
    assert after.law_in_force is True and after.risk_level == "minimal" and after.autonomy_level == "low"
    # the same with facts missing (the undecided path) and for the last day before the law
    partial = book.evaluate({"functions": {"emotion_recognition": True}}, as_of=date(2026, 1, 17))
    assert partial.law_in_force is False and partial.risk_level is None
    assert book.evaluate({"functions": {"emotion_recognition": True}}, as_of=AFTER).law_in_force is True


def test_effective_until_is_the_last_day_in_force(book: RuleBook) -> None:
    last = book.evaluate(EMOTIONS_NO_CONSENT, as_of=date(2026, 1, 17))
    first_after = book.evaluate(EMOTIONS_NO_CONSENT, as_of=date(2026, 1, 18))
    assert ids(last.notices) == ["fx.notice.old-regime"] and not last.prohibited
    assert first_after.notices == [] and first_after.prohibited


def test_rules_lists_only_those_in_force_and_of_the_chosen_profiles(book: RuleBook) -> None:
    law_2025 = {r.id for r in book.rules(subject="ai_system", as_of=BEFORE)}
    assert law_2025 == {"fx.notice.old-regime"}
    assert "fx.stricter.objection" not in {r.id for r in book.rules()}
    assert "fx.stricter.objection" in {r.id for r in book.rules(profiles=("stricter",))}
    assert {r.subject for r in book.rules(subject="processing")} == {"processing"}
    with pytest.raises(InvalidInput) as exc:
        book.rules(profiles=("lenient",))
    assert exc.value.field == "profiles"


# --- missing facts ---------------------------------------------------------------------------------------------


def test_missing_facts_leave_rules_undecided_with_the_paths_that_would_decide_them(book: RuleBook) -> None:
    ev = book.evaluate({"functions": {"emotion_recognition": True}}, as_of=AFTER)
    undecided = dict(ev.undecided)
    assert undecided["fx.prohibited.emotion"] == ("legal.allowed_by_law", "legal.emotion_recognition_consent")
    assert "fx.prohibited.emotion" not in ids(ev.fired)
    assert "legal.emotion_recognition_consent" in ev.missing_facts
    assert ev.missing_facts == sorted(set(p for _, paths in ev.undecided for p in paths))
    assert not ev.decided


def test_a_rule_whose_outcome_does_not_depend_on_the_missing_fact_still_decides(book: RuleBook) -> None:
    # false && <missing> is false: no emotion recognition decides the prohibition without the consent facts
    ev = book.evaluate({"functions": {"emotion_recognition": False}}, as_of=AFTER)
    assert "fx.prohibited.emotion" not in dict(ev.undecided)
    assert not ev.prohibited
    # true || <missing> is true: a defence system is high risk whatever the critical-ICT answer
    ev = book.evaluate({"failure": {"impact": "defence"}}, as_of=AFTER)
    assert ev.risk_level == "high" and ids(ev.risk_reasons) == ["fx.risk.high"]
    assert "fx.risk.high" not in dict(ev.undecided)


def test_none_is_missing(book: RuleBook) -> None:
    ev = book.evaluate({"functions": {"emotion_recognition": True},
                        "legal": {"emotion_recognition_consent": None, "allowed_by_law": []}}, as_of=AFTER)
    assert dict(ev.undecided)["fx.prohibited.emotion"] == ("legal.emotion_recognition_consent",)


def test_all_facts_given_nothing_is_undecided_and_the_combined_program_agrees_with_each_rule(book: RuleBook) -> None:
    facts = full_facts(functions={"emotion_recognition": True, "synthetic_content": True},
                       failure={"impact": "material_damage"}, audit={"completed": True, "date": "2024-01-01"})
    ev = book.evaluate(facts, as_of=AFTER)
    assert ev.undecided == [] and ev.missing_facts == []
    # the same facts rule by rule (a missing fact elsewhere forces one-by-one evaluation)
    partial = {**facts, "users": {"count": None}}
    assert ids(book.evaluate(partial, as_of=AFTER).fired) == ids(ev.fired)
    assert set(ids(ev.fired)) == {"fx.prohibited.emotion", "fx.risk.medium", "fx.autonomy.low",
                                  "fx.obligation.label", "fx.obligation.stale-audit"}


# --- risk and autonomy -----------------------------------------------------------------------------------------


def test_risk_is_the_highest_level_of_the_rules_that_fire(book: RuleBook) -> None:
    ev = book.evaluate(full_facts(failure={"impact": "material_damage"}, deployment={"critical_ict": True}),
                       as_of=AFTER)
    assert ev.risk_level == "high"
    assert ids(ev.risk_reasons) == ["fx.risk.high", "fx.risk.medium"]  # highest first
    assert book.evaluate(full_facts(failure={"impact": "moral_harm"}), as_of=AFTER).risk_level == "medium"


def test_no_risk_rule_fired_and_all_decided_is_minimal_but_undecided_while_a_higher_one_could_fire(
        book: RuleBook) -> None:
    assert book.evaluate(full_facts(), as_of=AFTER).risk_level == "minimal"
    ev = book.evaluate({"failure": {"impact": "material_damage"}}, as_of=AFTER)  # critical ICT unknown
    assert ev.risk_level is None and ids(ev.risk_reasons) == ["fx.risk.medium"]
    assert "deployment.critical_ict" in ev.missing_facts


def test_autonomy_level_and_a_forbidden_autonomy(book: RuleBook) -> None:
    machine = {"human_final_choice": False, "human_can_correct": False}
    ev = book.evaluate(full_facts(oversight=machine, functions={"legal_effect": True}), as_of=AFTER)
    assert ev.autonomy_level == "high" and ids(ev.autonomy_reasons) == ["fx.autonomy.high"]
    assert ids(ev.autonomy_violations) == ["fx.autonomy.no-high-with-legal-effect"] and ev.prohibited
    # the law allows it here: no violation
    ev = book.evaluate(full_facts(oversight=machine, functions={"legal_effect": True},
                                  legal={"allowed_by_law": ["high_autonomy"]}), as_of=AFTER)
    assert ev.autonomy_level == "high" and ev.autonomy_violations == [] and not ev.prohibited
    # a human can correct: medium autonomy is not forbidden
    ev = book.evaluate(full_facts(oversight={"human_final_choice": False}, functions={"legal_effect": True}),
                       as_of=AFTER)
    assert ev.autonomy_level == "medium" and ev.autonomy_violations == []


def test_a_constraint_is_undecided_while_the_autonomy_is(book: RuleBook) -> None:
    ev = book.evaluate({"functions": {"legal_effect": True}, "legal": {"allowed_by_law": []}}, as_of=AFTER)
    assert ev.autonomy_level is None and not ev.prohibited
    assert set(dict(ev.undecided)["fx.autonomy.no-high-with-legal-effect"]) == {
        "oversight.human_can_correct", "oversight.human_final_choice"}


def test_obligations_carry_their_deadline_and_relaxability(book: RuleBook) -> None:
    ev = book.evaluate(full_facts(functions={"synthetic_content": True}), as_of=AFTER)
    [label] = ev.obligations
    assert label.effect["code"] == "label_synthetic"
    assert label.effect["deadline"] == {"working_days": 10, "from": "classification"}
    assert book.rule("fx.obligation.label").relaxable is True
    assert book.rule("fx.obligation.stale-audit").relaxable is False


def test_date_facts_compare_as_timestamps_against_as_of(book: RuleBook) -> None:
    old = book.evaluate(full_facts(audit={"completed": True, "date": date(2024, 12, 1)}), as_of=AFTER)
    fresh = book.evaluate(full_facts(audit={"completed": True, "date": "2025-12-01"}), as_of=AFTER)
    assert "fx.obligation.stale-audit" in ids(old.obligations)
    assert "fx.obligation.stale-audit" not in ids(fresh.obligations)


# --- facts given to evaluate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("facts, field", [
    ({"functions": {"telepathy": True}}, "facts.functions.telepathy"),
    ({"wishes": {"x": True}}, "facts.wishes.x"),
    ({"functions": {"emotion_recognition": "yes"}}, "facts.functions.emotion_recognition"),
    ({"system": {"sector": "casino"}}, "facts.system.sector"),
    ({"legal": {"allowed_by_law": "emotion_recognition"}}, "facts.legal.allowed_by_law"),
    ({"legal": {"allowed_by_law": ["time_travel"]}}, "facts.legal.allowed_by_law"),
    ({"users": {"count": True}}, "facts.users.count"),
    ({"audit": {"date": "last week"}}, "facts.audit.date"),
    ({"functions": True}, "facts.functions"),
])
def test_bad_facts_are_refused_naming_the_fact_not_the_value(book: RuleBook, facts: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        book.evaluate(facts, as_of=AFTER)
    assert exc.value.field == field
    assert "casino" not in exc.value.message and "time_travel" not in exc.value.message


def test_flat_facts_and_facts_from_flat(book: RuleBook) -> None:
    flat = {"functions.emotion_recognition": True, "legal.emotion_recognition_consent": False,
            "legal.allowed_by_law": []}
    assert facts_from_flat(flat) == {"functions": {"emotion_recognition": True},
                                     "legal": {"emotion_recognition_consent": False, "allowed_by_law": []}}
    assert book.evaluate(flat, as_of=AFTER).prohibited
    assert book.evaluate(facts_from_flat(flat), as_of=AFTER).prohibited
    with pytest.raises(InvalidInput):
        facts_from_flat({"no_namespace": True})


def test_other_subjects_and_bad_arguments(book: RuleBook) -> None:
    ev = book.evaluate({"processing": {"automated": True}}, subject="processing", as_of=AFTER)
    assert ids(ev.notices) == ["fx.notice.automated"]
    assert ids(ev.deadlines) == ["fx.deadline.objection"]  # its condition is 'true'
    assert ids(book.evaluate({}, subject="processing", as_of=date(2020, 5, 1)).deadlines) == []
    with pytest.raises(InvalidInput) as exc:
        book.evaluate({}, subject="spaceship", as_of=AFTER)
    assert exc.value.field == "subject"
    with pytest.raises(InvalidInput) as exc:
        book.evaluate({}, as_of="2026-01-01")  # type: ignore[arg-type]
    assert exc.value.field == "as_of"
    with pytest.raises(InvalidInput):
        book.evaluate({}, as_of=datetime(2026, 1, 17, 20, 0))
    # 20:00 UTC on 17 January is already 18 January in Almaty: the AI law is in force
    aware = book.evaluate(EMOTIONS_NO_CONSENT, as_of=datetime(2026, 1, 17, 20, 0, tzinfo=timezone.utc))
    assert aware.as_of == date(2026, 1, 18) and aware.prohibited


def test_evaluation_to_dict_is_json_with_stable_keys(book: RuleBook) -> None:
    data = book.evaluate(EMOTIONS_NO_CONSENT, as_of=AFTER).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"as_of", "profiles", "digest", "subject", "law_in_force", "prohibited", "risk_level",
                         "risk_reasons",
                         "autonomy_level", "autonomy_reasons", "prohibitions", "autonomy_violations", "obligations",
                         "notices", "deadlines", "fired", "undecided", "missing_facts"}
    assert data["prohibitions"][0]["citation"]["legal_id"] == "L-AI-PROHIBITED"
    assert data["digest"] == book.digest and data["profiles"] == ["law"]


def test_rules_in_force_are_cached_per_period(book: RuleBook) -> None:
    a = book._in_force("ai_system", ("law",), date(2026, 2, 1))
    assert book._in_force("ai_system", ("law",), date(2026, 9, 30)) is a
    assert book._in_force("ai_system", ("law",), date(2025, 9, 30)) is not a


# --- deadlines -------------------------------------------------------------------------------------------------


def test_deadline_lookup_and_the_stricter_profile_override(book: RuleBook) -> None:
    law = book.deadline("pd.objection_decision", as_of=AFTER)
    assert (law.working_days, law.rule_id) == (3, "fx.deadline.objection")
    assert law.citation.legal_id == "L-PD-AUTO"
    stricter = book.deadline("pd.objection_decision", as_of=AFTER, profiles=("law", "stricter"))
    assert (stricter.working_days, stricter.rule_id) == (2, "fx.stricter.objection")
    with pytest.raises(NotFound):
        book.deadline("pd.objection_decision", as_of=date(2020, 1, 1))
    with pytest.raises(NotFound):
        book.deadline("pd.no_such_deadline", as_of=AFTER)


# --- embedded examples, export ---------------------------------------------------------------------------------


def test_every_embedded_example_of_the_fixture_packs_passes(book: RuleBook) -> None:
    results = book.test()
    assert len(results) == sum(len(r.examples) for p in book.packs for r in p.rules) > 20
    assert [r for r in results if not r.ok] == []


def test_a_wrong_example_is_reported(tmp_path: Path) -> None:
    text = (PACKS / "ai.yaml").read_text().replace(
        "{name: generator, facts: {functions: {synthetic_content: true}}, fires: true}",
        "{name: generator, facts: {functions: {synthetic_content: true}}, fires: true}\n"
        "      - {name: wrong, facts: {functions: {synthetic_content: true}}, fires: false}\n"
        "      - {name: unanswered, facts: {}, fires: true}")
    (tmp_path / "ai.yaml").write_text(text)
    failed = [r for r in load_rulebook([tmp_path], facts=FACTS).test() if not r.ok]
    assert [(r.rule_id, r.name, r.expected, r.got) for r in failed] == [
        ("fx.obligation.label", "wrong", False, True), ("fx.obligation.label", "unanswered", True, None)]
    assert "functions.synthetic_content" in (failed[1].error or "")


def test_export_is_json_with_every_rule(book: RuleBook) -> None:
    data = book.export()
    assert json.loads(json.dumps(data)) == data
    assert data["digest"] == book.digest
    rules = {r["id"]: r for p in data["packs"] for r in p["rules"]}
    assert set(rules) == {r.id for r in book.rules(profiles=("stricter",))}
    assert rules["fx.notice.old-regime"]["effective_until"] == "2026-01-17"
    assert {p["id"]: p["not_yet_law"] for p in data["packs"]} == {"fx.ai": False, "fx.pd": False,
                                                                  "fx.stricter": True}
    assert rules["fx.prohibited.emotion"]["when"].startswith("functions.emotion_recognition")


def test_export_html_is_escaped_and_in_the_chosen_language(book: RuleBook) -> None:
    page = book.export_html("ru")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="ru">' in page
    assert "<script>" not in page and "Emotion recognition &lt;script&gt;" not in page  # ru title shown
    assert "Распознавание эмоций" in page and "Ещё не закон" in page
    en = book.export_html("en")
    assert "Emotion recognition &lt;script&gt;" in en and "<script>" not in en
    assert "&quot;emotion_recognition&quot; in legal.allowed_by_law" in en  # the CEL condition, escaped
    assert 'class="badge badge-plan"' in en and "Not yet law" in en and "Test law &lt;b&gt;&amp;&lt;/b&gt;" in en
    assert "http" not in en.replace('"https://', "")  # self-contained: nothing fetched
    with pytest.raises(InvalidInput):
        book.export_html("de")


def test_digests_change_with_the_content_of_a_pack(tmp_path: Path, book: RuleBook) -> None:
    again = load_rulebook([PACKS, STRICTER], facts=FACTS)
    assert again.digest == book.digest
    assert [p.digest for p in again.packs] == [p.digest for p in book.packs]
    (tmp_path / "ai.yaml").write_text((PACKS / "ai.yaml").read_text().replace("working_days: 10", "working_days: 11"))
    changed = load_rulebook([tmp_path, PACKS / "pd.yaml", STRICTER], facts=FACTS)
    assert changed.digest != book.digest
    assert changed.pack("fx.ai").digest != book.pack("fx.ai").digest
    assert changed.pack("fx.pd").digest == book.pack("fx.pd").digest


def test_rule_lookup(book: RuleBook) -> None:
    rule = book.rule("fx.prohibited.emotion")
    assert rule.pack_id == "fx.ai" and rule.citation.article == "17" and rule.status == "report"
    assert rule.facts_used == ("functions.emotion_recognition", "legal.allowed_by_law",
                               "legal.emotion_recognition_consent")
    assert rule.in_force(AFTER) and not rule.in_force(BEFORE)
    with pytest.raises(NotFound):
        book.rule("fx.nothing")


# --- the process-wide book -------------------------------------------------------------------------------------


def test_a_broken_pack_leaves_the_current_book_as_it_was(tmp_path: Path, fresh_global: None) -> None:
    good = reload_rulebook([PACKS, STRICTER], facts=FACTS)
    assert rulebook() is good
    (tmp_path / "ai.yaml").write_text((PACKS / "ai.yaml").read_text().replace("status: text", "status: rumour", 1))
    with pytest.raises(RulePackError):
        reload_rulebook([tmp_path], facts=FACTS)
    assert rulebook() is good and rulebook().digest == good.digest


def test_reloading_while_evaluating_in_threads(fresh_global: None) -> None:
    reload_rulebook([PACKS, STRICTER], facts=FACTS)
    errors: list[BaseException] = []
    stop = threading.Event()

    def evaluate() -> None:
        try:
            while not stop.is_set():
                ev = rulebook().evaluate(EMOTIONS_NO_CONSENT, as_of=AFTER)
                assert ev.prohibited and ids(ev.prohibitions) == ["fx.prohibited.emotion"]
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    workers = [threading.Thread(target=evaluate) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        digests = {reload_rulebook([PACKS, STRICTER], facts=FACTS).digest for _ in range(5)}
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    assert errors == [] and len(digests) == 1


def test_the_default_book_reads_the_built_in_packs_and_the_operators_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_global: None) -> None:
    from qorgau.core.settings import get_settings
    from qorgau.rules import engine

    own = tmp_path / "own"
    own.mkdir()
    monkeypatch.setattr(engine, "DEFAULT_PACKS_DIR", tmp_path / "none")
    monkeypatch.setattr(engine, "DEFAULT_CATALOG", FACTS)
    monkeypatch.setenv("QORGAU_RULES_EXTRA_DIRS", str(own))
    get_settings.cache_clear()
    try:
        assert rulebook().packs == ()
        (own / "pd.yaml").write_text((PACKS / "pd.yaml").read_text())
        assert [p.id for p in reload_rulebook().packs] == ["fx.pd"]
    finally:
        monkeypatch.delenv("QORGAU_RULES_EXTRA_DIRS")
        get_settings.cache_clear()


# --- the Python fast path agrees with CEL ----------------------------------------------------------------------

import functools  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qorgau.rules.loader import ERR, compile_conditions, translate_condition  # noqa: E402


def _cel(program, variables):  # type: ignore[no-untyped-def]
    try:
        return program.execute(variables)
    except Exception:
        return ERR


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    if a is ERR or b is ERR:
        return a is b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _fact_values(fact):  # type: ignore[no-untyped-def]
    return {"bool": st.booleans(), "enum": st.sampled_from(fact.values or ("x",)),
            "enum_list": st.lists(st.sampled_from(fact.values or ("x",)), max_size=3, unique=True),
            "int": st.integers(-5, 5), "string": st.sampled_from(["", "x", "scoring"]),
            "date": st.dates(date(2023, 1, 1), date(2027, 1, 1))}[fact.type]


def _facts_for(book: RuleBook, subject: str):  # type: ignore[no-untyped-def]
    facts = book.facts.facts(subject)
    return st.fixed_dictionaries({}, optional={f.path: _fact_values(f) for f in facts}).map(facts_from_flat)


@functools.lru_cache(maxsize=1)
def _books() -> list[RuleBook]:
    from qorgau.rules.engine import DEFAULT_PACKS_DIR

    books = [load_rulebook([PACKS, STRICTER], facts=FACTS)]
    if DEFAULT_PACKS_DIR.exists():  # the built-in packs too, when they load
        try:
            books.append(load_rulebook([DEFAULT_PACKS_DIR]))
        except RulePackError:
            pass
    return books


@pytest.mark.parametrize("index", [0, 1])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_translated_condition_gives_what_cel_gives(index: int, data: st.DataObject) -> None:
    books = _books()
    if index >= len(books):
        pytest.skip("the built-in packs are not there")
    book = books[index]
    subject = data.draw(st.sampled_from(sorted({p.subject for p in book.packs})))
    facts = book.facts.validate(subject, data.draw(_facts_for(book, subject)))
    as_of = data.draw(st.dates(date(2025, 1, 1), date(2027, 1, 1)))
    variables = book.facts.to_cel(subject, facts, as_of)
    rules = [r for r in book.rules(subject=subject, profiles=("stricter",)) if r.fast is not None]
    assert rules
    fast = compile_conditions([r.fast for r in rules])(variables)
    for rule, got in zip(rules, fast):
        assert _same(got, _cel(rule.program, variables)), rule.id
    # and the evaluation as a whole equals the one the CEL library alone gives
    ev = book.evaluate(facts, subject=subject, as_of=as_of, profiles=("stricter",))
    fired = {r.id for r in book.rules(subject=subject, profiles=("stricter",), as_of=as_of)
             if _cel(r.program, variables) is True}
    assert {f.rule_id for f in ev.fired} == fired


_VARS = {"x": {"a": True, "b": False, "s": "scoring", "i": 3, "f": 2.5, "l": ["a", "b"], "n": None,
              "t": datetime(2026, 1, 18, tzinfo=timezone.utc), "u": datetime(2025, 1, 1, tzinfo=timezone.utc)}}
_ATOMS = ["x.a", "x.b", "x.s", "x.i", "x.f", "x.l", "x.n", "x.t", "x.u", "x.missing", "y.z", "true", "false", "null",
          "1", "0",
          "2.5", '"a"', '"scoring"', "[]", '["a", "c"]', "[1, 2.5]", "[x.missing]", "has(x.a)", "has(x.zz)", "x",
          '{"a": 1}']


def _expressions():  # type: ignore[no-untyped-def]
    atom = st.sampled_from(_ATOMS)

    def extend(inner):  # type: ignore[no-untyped-def]
        binary = st.tuples(inner, st.sampled_from(["&&", "||", "==", "!=", "<", "<=", ">", ">=", "in"]), inner)
        return st.one_of(
            binary.map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            inner.map(lambda e: f"!{e}"), inner.map(lambda e: f"-{e}"), inner.map(lambda e: f"({e})"),
            st.lists(inner, max_size=3).map(lambda es: "[" + ", ".join(es) + "]"))

    return st.recursive(atom, extend, max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(expr=_expressions())
def test_random_expressions_of_the_subset_evaluate_as_in_cel(expr: str) -> None:
    import cel

    try:
        program = cel.compile(expr)
    except ValueError:
        return  # not CEL (e.g. "--1"); nothing to compare
    fast = translate_condition(expr, {"x", "y"})
    if fast is None:
        return
    got = compile_conditions([fast])(_VARS)[0]
    assert _same(got, _cel(program, _VARS)), (expr, fast[0])


def test_plain_conditions_run_in_python_and_the_rest_in_cel(book: RuleBook) -> None:
    slow = [r.id for r in book.rules(profiles=("stricter",)) if r.fast is None]
    assert slow == ["fx.obligation.stale-audit"]  # duration arithmetic: the CEL library evaluates it
    # a system deciding both kinds at once: the Python part and the CEL part each give their findings
    ev = book.evaluate(full_facts(functions={"synthetic_content": True},
                                  audit={"completed": True, "date": "2020-01-01"}), as_of=AFTER)
    assert {"fx.obligation.label", "fx.obligation.stale-audit"} <= set(ids(ev.obligations))
    ev = book.evaluate({"audit": {"completed": True}}, as_of=AFTER)  # the audit date missing
    assert dict(ev.undecided)["fx.obligation.stale-audit"] == ("audit.date",)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_compiled_facts_check_agrees_with_the_generic_validation(data: st.DataObject) -> None:
    """evaluate checks nested facts with a function compiled from the catalogue; whatever it accepts, the
    generic validation accepts with equal values, and what it refuses goes to the generic validation."""
    book = _books()[0]
    subject = data.draw(st.sampled_from(sorted(book.facts.subjects)))
    known = book.facts.subjects[subject]
    facts = data.draw(_facts_for(book, subject))
    # also: None values, duplicates in lists, a wrong type, an unknown name, text dates, a tuple for a list
    paths = [f.path for f in book.facts.facts(subject)]
    odd = data.draw(st.dictionaries(st.sampled_from(paths + ["functions.telepathy", "wishes.x"]),
                                    st.sampled_from([None, "yes", 1, True, [], ["none", "none"], ("none",),
                                                     "2025-01-01", date(2025, 1, 1)]), max_size=3))
    for path, value in odd.items():
        ns, name = path.split(".")
        facts.setdefault(ns, {})[name] = value
    try:
        expected = book.facts.validate(subject, facts)
    except InvalidInput:
        expected = None
    prepared = known.prepare(facts)
    if prepared is None:
        return  # the generic path decides (and raises, if it must)
    assert expected is not None, facts
    given_, context = prepared
    assert {k: v for k, v in given_.items() if v} == {k: v for k, v in expected.items() if v}
    as_of = date(2026, 2, 1)
    reference = book.facts.to_cel(subject, expected, as_of)
    del reference["as_of"]
    assert context == reference
    # and the evaluation from the compiled check (facts and conditions in one function) equals the one from the
    # generic validation (flat keys always take that path)
    flat = {f"{ns}.{name}": value for ns, values in facts.items() for name, value in values.items()}
    for day in (date(2025, 6, 1), as_of):
        assert book.evaluate(facts, subject=subject, as_of=day).to_dict() == \
            book.evaluate(flat, subject=subject, as_of=day).to_dict()
