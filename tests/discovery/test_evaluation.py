"""The evaluation engine scores any scanner fairly, in every matching mode, without printing values."""

from __future__ import annotations

import json

import pytest

from qorgau.discovery.evaluation import (
    Example,
    Span,
    evaluate,
    load_corpus,
    main,
    masked_snippet,
    match_example,
    score_predictions,
)
from qorgau.discovery.types import Finding

TEXT = "Клиент Ахметов Марат Ерланович, ИИН 791028302728, тел. +7 701 234 56 78, г. Алматы, ул. Абая, д. 15."
IIN = TEXT.index("791028302728")
NAME = TEXT.index("Ахметов")
PHONE = TEXT.index("+7 701")
ADDR = TEXT.index("г. Алматы")
EXAMPLE = Example(
    id="t-1", lang="ru", text=TEXT,
    entities=(Span("PERSON", NAME, NAME + len("Ахметов Марат Ерланович")), Span("KZ_IIN", IIN, IIN + 12),
              Span("PHONE_NUMBER", PHONE, PHONE + len("+7 701 234 56 78")), Span("ADDRESS", ADDR, len(TEXT) - 1)),
)


def finding(kind: str, start: int, end: int) -> Finding:
    return Finding(type=kind, start=start, end=end, score=0.9, recognizer="fake")


def gold_scan(text: str) -> list[Finding]:
    return [finding(s.type, s.start, s.end) for s in EXAMPLE.entities]


def test_a_scanner_that_returns_the_gold_spans_scores_f1_one():
    report = evaluate(gold_scan, [EXAMPLE])
    assert report.micro.f1 == 1.0
    assert all(s.f1 == 1.0 for s in report.per_type.values())
    assert report.errors == []


def test_a_scanner_that_finds_nothing_has_zero_recall_and_lists_every_gold_span_as_missed():
    report = evaluate(lambda text: [], [EXAMPLE])
    assert report.micro.recall == 0.0
    assert report.micro.support == 4
    assert {e.kind for e in report.errors} == {"false_negative"}
    assert len(report.errors) == 4


def test_an_iin_missing_its_last_digit_is_a_miss_but_a_name_without_its_patronymic_is_found():
    def sloppy(text: str) -> list[Finding]:
        return [finding("KZ_IIN", IIN, IIN + 11), finding("PERSON", NAME, NAME + len("Ахметов Марат"))]

    report = evaluate(sloppy, [EXAMPLE], mode="mixed")
    assert report.per_type["KZ_IIN"].tp == 0 and report.per_type["KZ_IIN"].fp == 1
    assert report.per_type["PERSON"].tp == 1
    exact = evaluate(sloppy, [EXAMPLE], mode="exact")
    assert exact.per_type["PERSON"].tp == 0
    overlap = evaluate(sloppy, [EXAMPLE], mode="overlap")
    assert overlap.per_type["KZ_IIN"].tp == 1


def test_overlap_needs_at_least_half_of_the_gold_span():
    gold = [Span("ADDRESS", 0, 40)]
    assert match_example(gold, [Span("ADDRESS", 0, 20)], "overlap")[0]
    assert not match_example(gold, [Span("ADDRESS", 0, 19)], "overlap")[0]


def test_two_findings_on_one_name_count_one_hit_and_one_false_positive():
    def twice(text: str) -> list[Finding]:
        return [finding("PERSON", NAME, NAME + 7), finding("PERSON", NAME + 8, NAME + 23),
                finding("PERSON", NAME, NAME + 23)]

    score = evaluate(twice, [EXAMPLE], types=["PERSON"]).per_type["PERSON"]
    assert (score.tp, score.fp, score.fn) == (1, 2, 0)


def test_the_right_span_with_the_wrong_type_is_a_false_positive_and_a_false_negative():
    report = evaluate(lambda t: [finding("KZ_BIN", IIN, IIN + 12)], [EXAMPLE], types=["KZ_IIN", "KZ_BIN"])
    assert report.per_type["KZ_IIN"].fn == 1
    assert report.per_type["KZ_BIN"].fp == 1


def test_findings_of_types_the_corpus_does_not_label_are_ignored_not_penalised():
    report = evaluate(lambda t: gold_scan(t) + [finding("KZ_RNN", 0, 5)], [EXAMPLE])
    assert report.micro.f1 == 1.0
    assert report.ignored == {"KZ_RNN": 1}


def test_the_order_of_findings_does_not_change_the_score():
    forward = evaluate(gold_scan, [EXAMPLE]).to_dict()
    backward = evaluate(lambda t: list(reversed(gold_scan(t))), [EXAMPLE]).to_dict()
    assert forward["per_type"] == backward["per_type"]


def test_error_snippets_and_the_printed_table_never_show_a_value():
    report = evaluate(lambda text: [finding("PERSON", ADDR + 19, ADDR + 23)], [EXAMPLE])
    printed = report.render_table(max_errors=50) + json.dumps(report.to_dict(), ensure_ascii=False)
    for secret in ("791028302728", "Ахметов", "Марат", "234 56 78", "Абая", "д. 15"):
        assert secret not in printed
    assert "ИИН" in masked_snippet(TEXT, IIN, IIN + 12, EXAMPLE.entities)  # context words stay readable
    assert "⟦************⟧" in masked_snippet(TEXT, IIN, IIN + 12)


def test_the_table_prints_pass_or_miss_against_each_goal():
    report = evaluate(gold_scan, [EXAMPLE])
    table = report.render_table()
    assert "KZ_IIN" in table and "PASS (≥ 0.99)" in table and "PASS (≥ 0.93)" in table
    assert "goals: all met" in table
    missing = evaluate(lambda t: [], [EXAMPLE]).render_table()
    assert "MISS" in missing and "goals: MISS" in missing
    goals = {g["name"]: g["status"] for g in report.to_dict()["goals"]}
    assert goals["KZ_IIN"] == "PASS" and goals["CREDIT_CARD"] == "n/a" and goals["micro"] == "PASS"


def test_macro_average_weighs_each_type_equally():
    report = evaluate(lambda t: [finding("KZ_IIN", IIN, IIN + 12)], [EXAMPLE])
    assert report.micro.recall == pytest.approx(0.25)
    assert report.macro_recall == pytest.approx(0.25)
    assert report.macro_f1 == pytest.approx(0.25)


def test_scores_can_be_computed_once_per_scan_for_every_mode():
    predictions = [gold_scan(EXAMPLE.text)]
    for mode in ("exact", "overlap", "mixed"):
        assert score_predictions([EXAMPLE], predictions, mode=mode).micro.f1 == 1.0


def test_an_unknown_mode_or_type_is_refused():
    with pytest.raises(ValueError):
        evaluate(gold_scan, [EXAMPLE], mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NOT_A_TYPE"):
        evaluate(gold_scan, [EXAMPLE], types=["NOT_A_TYPE"])


def test_the_shipped_corpus_scored_against_itself_is_perfect():
    examples = load_corpus()
    by_text = {e.text: e for e in examples}
    report = evaluate(lambda t: [finding(s.type, s.start, s.end) for s in by_text[t].entities], examples)
    assert report.micro.f1 == 1.0 and report.all_goals_met


def test_a_broken_record_is_reported_by_line_and_id_without_its_text(tmp_path):
    path = tmp_path / "bad.jsonl"
    secret = "ИИН 791028302728"
    path.write_text(json.dumps({"id": "x-1", "lang": "ru", "text": secret,
                                "entities": [{"type": "KZ_IIN", "start": 4, "end": 99}]}, ensure_ascii=False),
                    encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_corpus(path)
    assert "line 1" in str(info.value) and "x-1" in str(info.value) and "791028302728" not in str(info.value)


def test_a_record_with_an_unknown_type_or_a_duplicate_id_is_refused(tmp_path):
    record = {"id": "x-1", "lang": "kk", "text": "abc", "entities": [{"type": "SSN", "start": 0, "end": 3}]}
    (tmp_path / "a.jsonl").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ValueError, match="EntityType"):
        load_corpus(tmp_path / "a.jsonl")
    record["entities"] = []
    (tmp_path / "b.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(record), encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate"):
        load_corpus(tmp_path / "b.jsonl")


def test_example_repr_does_not_show_the_text():
    assert "791028302728" not in repr(EXAMPLE) and "t-1" in repr(EXAMPLE)


def test_the_command_prints_the_table_for_the_identifier_scanner(capsys):
    pytest.importorskip("qorgau.discovery.engine")
    try:
        code = main(["--scanner", "identifiers", "--types", "KZ_IIN", "KZ_BIN", "--errors", "5"])
    except Exception as exc:  # the engine is built in parallel; its bugs are not this module's
        pytest.skip(f"engine not usable yet: {type(exc).__name__}")
    out = capsys.readouterr().out
    assert code in (0, 1, 2)
    if code != 2:
        assert "KZ_IIN" in out and "micro" in out


# --- named corpora, breakdowns and error causes ---------------------------------------------------------

from qorgau.discovery.evaluation import (  # noqa: E402
    CORPORA,
    HardNegative,
    breakdown,
    clear_snippet,
    false_negative_cause,
    load_named_corpus,
    render_breakdown,
    render_errors,
    scan_examples,
)

NEG_TEXT = "Ремонт на ул. Абая; заказ 880101300118. Звоните Ерлану."
NEG_EXAMPLE = Example(
    id="t-2", lang="kk", script="latn", text=NEG_TEXT,
    entities=(Span("PERSON", NEG_TEXT.index("Ерлану"), NEG_TEXT.index("Ерлану") + 6),),
    negatives=(HardNegative("street_named_after_person", NEG_TEXT.index("ул."), NEG_TEXT.index(";")),
               HardNegative("bad_checksum_12", NEG_TEXT.index("880"), NEG_TEXT.index("880") + 12)),
)


def test_the_shipped_corpora_load_by_name_and_all_is_both_with_unique_ids():
    generated, heldout, both = (load_named_corpus(n) for n in ("eval", "heldout", "all"))
    assert len(heldout) >= 300 and len(both) == len(generated) + len(heldout)
    assert len({e.id for e in both}) == len(both)
    assert any(e.negatives for e in heldout) and any(e.script == "latn" for e in heldout)
    assert set(CORPORA) == {"eval", "heldout", "all"}


def test_a_corpus_given_by_path_loads_and_a_missing_one_is_an_error(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "x", "lang": "en", "text": "hello", "entities": []}), encoding="utf-8")
    assert [e.id for e in load_named_corpus(str(path))] == ["x"]
    with pytest.raises(OSError):
        load_named_corpus(str(tmp_path / "missing.jsonl"))


def test_broken_hard_negatives_or_scripts_are_refused_by_line(tmp_path):
    record = {"id": "x-1", "lang": "kk", "text": "abc", "entities": [],
              "negatives": [{"tag": "city", "start": 1, "end": 9}]}
    (tmp_path / "a.jsonl").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1 .*negatives\[0\]"):
        load_corpus(tmp_path / "a.jsonl")
    record.update(negatives=[], script="arab")
    (tmp_path / "b.jsonl").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ValueError, match="script"):
        load_corpus(tmp_path / "b.jsonl")


def test_each_error_says_what_was_there_instead():
    name = NEG_EXAMPLE.entities[0]
    street = NEG_EXAMPLE.negatives[0]
    found = [finding("PERSON", street.start + 4, street.end), finding("KZ_IIN", NEG_TEXT.index("880"),
                                                                      NEG_TEXT.index("880") + 12)]
    report = score_predictions([NEG_EXAMPLE], [found])
    causes = {(e.kind, e.type): e.cause for e in report.errors}
    assert causes[("false_positive", "PERSON")] == "hard negative: street_named_after_person"
    assert causes[("false_positive", "KZ_IIN")] == "hard negative: bad_checksum_12"
    assert causes[("false_negative", "PERSON")] == "not found"
    as_address = score_predictions([NEG_EXAMPLE], [[finding("ADDRESS", name.start, name.end)]])
    assert {e.cause for e in as_address.errors} == {"found as ADDRESS", "on a labelled PERSON"}


def test_a_partial_or_merged_finding_is_told_apart_from_a_miss():
    assert false_negative_cause(Span("KZ_IIN", 0, 12), [Span("KZ_IIN", 0, 12)], [Span("KZ_IIN", 0, 11)]) == \
        "borders differ"
    two = [Span("PERSON", 0, 5), Span("PERSON", 7, 40)]
    assert false_negative_cause(two[0], two, [Span("PERSON", 0, 40)]) == "merged with another labelled PERSON"
    assert false_negative_cause(Span("ADDRESS", 0, 40), [Span("ADDRESS", 0, 40)],
                                [Span("ADDRESS", 30, 40)]) == "found, but covers < 50% of it"
    report = score_predictions([EXAMPLE], [[finding("PERSON", NAME, NAME + 7), finding("PERSON", NAME + 8,
                                                                                       NAME + 23)]])
    assert [e.cause for e in report.errors if e.type == "PERSON"] == ["a second finding on one labelled PERSON"]


def test_scores_per_language_add_up_and_latin_kazakh_gets_its_own_row():
    examples = [EXAMPLE, NEG_EXAMPLE]
    predictions = [gold_scan(EXAMPLE.text), []]
    groups = breakdown(examples, predictions, by="lang")
    assert list(groups) == ["ru", "kk", "kk/latn"]
    total = score_predictions(examples, predictions)
    assert sum(groups[k].micro.tp for k in ("ru", "kk")) == total.micro.tp
    assert groups["kk/latn"].micro.fn == 1 and groups["ru"].micro.f1 == 1.0
    table = render_breakdown(groups)
    assert "F1 per type and language" in table and "kk/latn" in table and "1.00 (1)" in table
    assert list(breakdown(examples, predictions, by="domain")) == ["-"]
    with pytest.raises(ValueError):
        breakdown(examples, predictions, by="script")


def test_the_error_listing_groups_by_type_and_shows_text_only_when_allowed():
    street = NEG_EXAMPLE.negatives[0]
    report = score_predictions([NEG_EXAMPLE], [[finding("PERSON", street.start, street.end)]])
    clear = render_errors(report, [NEG_EXAMPLE], reveal=True)
    masked = render_errors(report, [NEG_EXAMPLE], reveal=False)
    assert "PERSON — 1 FN (not found 1)" in clear and "⟦Ерлану⟧" in clear and "⟦ул. Абая⟧" in clear
    assert "Ерлану" not in masked and "Абая" not in masked and "880101300118" not in masked
    assert "[hard negative: street_named_after_person]" in masked
    assert "… 1 more" in render_errors(score_predictions([EXAMPLE, EXAMPLE], [[], []]), [EXAMPLE], reveal=False,
                                    limit=1)
    assert clear_snippet("a\nb\tc", 2, 3) == "a⏎⟦b⟧⇥c"


def test_scan_examples_runs_the_scanner_once_per_example_in_order():
    seen = []
    predictions, seconds = scan_examples(lambda t: seen.append(t) or [], [EXAMPLE, NEG_EXAMPLE])
    assert seen == [TEXT, NEG_TEXT] and predictions == [[], []] and seconds >= 0


def _run(argv, capsys):
    pytest.importorskip("qorgau.discovery.engine")
    try:
        code = main(argv)
    except Exception as exc:  # the engine is built in parallel; its bugs are not this module's
        pytest.skip(f"engine not usable yet: {type(exc).__name__}")
    return code, capsys.readouterr()


def test_the_command_scores_the_heldout_corpus_per_language_and_lists_errors_by_type(capsys):
    code, out = _run(["--corpus", "heldout", "--errors", "2"], capsys)
    assert code in (0, 1)
    text = out.out
    for part in ("discovery evaluation — ", "micro", "by language", "kk/latn", "F1 per type and language",
                 "errors by type (text shown: synthetic corpus"):
        assert part in text, part
    assert "PASS" in text or "MISS" in text
    for kind in ("PERSON", "ADDRESS", "DATE_OF_BIRTH", "KZ_IIN"):
        assert f"\n{kind} " in text


def test_the_command_prints_json_with_languages_for_all_corpora(capsys):
    code, out = _run(["--corpus", "all", "--scanner", "identifiers", "--types", "KZ_IIN", "PHONE_NUMBER",
                      "--json", "--errors"], capsys)
    report = json.loads(out.out)
    assert report["errors"] and all("⟦" in e["context"] and e["cause"] for e in report["errors"])
    assert set(report["by_lang"]) >= {"ru", "kk", "en", "mixed", "kk/latn"}
    assert report["examples"] == len(load_named_corpus("all"))
    assert {g["name"] for g in report["goals"]} >= {"KZ_IIN", "micro"}


def test_a_corpus_of_ones_own_keeps_error_windows_masked_unless_asked(tmp_path, capsys):
    secret = "791028302728"
    text = f"client iin {secret} called"
    path = tmp_path / "own.jsonl"
    path.write_text(json.dumps({"id": "own-1", "lang": "en", "text": text,
                                "entities": [{"type": "KZ_IIN", "start": 0, "end": 6}]}), encoding="utf-8")
    argv = ["--corpus", str(path), "--scanner", "identifiers", "--types", "KZ_IIN", "--errors"]
    code, out = _run(argv, capsys)
    assert code == 1 and "values masked" in out.out and secret not in out.out and "client" not in out.out
    code, out = _run([*argv, "--show-values"], capsys)
    assert secret in out.out and "by language" not in out.out


def test_the_command_refuses_a_missing_corpus_or_an_unknown_type(tmp_path, capsys):
    assert main(["--corpus", str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read corpus" in capsys.readouterr().err
    code, out = _run(["--corpus", "heldout", "--scanner", "identifiers", "--types", "SSN"], capsys)
    assert code == 2 and "SSN" in out.err


# --- the held-out dev/test split --------------------------------------------------------------------------

from qorgau.discovery.evaluation import SPLIT_SALT, SPLITS, heldout_split  # noqa: E402


def test_the_heldout_split_is_a_fixed_partition_of_about_half_each():
    heldout = load_named_corpus("heldout")
    dev, test = load_named_corpus("heldout-dev"), load_named_corpus("heldout-test")
    assert set(SPLITS) == {"heldout-dev", "heldout-test"} and SPLIT_SALT
    assert {e.id for e in dev} | {e.id for e in test} == {e.id for e in heldout}
    assert not {e.id for e in dev} & {e.id for e in test}
    assert 0.4 <= len(dev) / len(heldout) <= 0.6
    # stratified enough: every genre and language is on both sides
    for key in ("domain", "lang"):
        assert {getattr(e, key) for e in dev} == {getattr(e, key) for e in test} == {getattr(e, key) for e in heldout}


def test_a_records_side_depends_on_its_id_only_so_new_records_never_move_old_ones():
    assert heldout_split("h-ru-001") == heldout_split("h-ru-001")
    sides = {heldout_split(f"h-xx-{i:03d}") for i in range(40)}
    assert sides == {"dev", "test"}
    heldout = load_named_corpus("heldout")
    assert [e.id for e in load_named_corpus("heldout-dev")] == [e.id for e in heldout if heldout_split(e.id) == "dev"]


def test_the_command_scores_either_half_by_name(capsys):
    code, out = _run(["--corpus", "heldout-dev", "--by", "none", "--json"], capsys)
    assert code in (0, 1)
    assert json.loads(out.out)["examples"] == len(load_named_corpus("heldout-dev"))
