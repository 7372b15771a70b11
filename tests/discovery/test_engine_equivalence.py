"""The scanner's fast paths find exactly what the straightforward code finds.

Each optimisation of the engine (issue 3: speed without losing accuracy) is held here against a plain
reference on the labelled corpora and on generated text: patterns compiled by ``fastre`` against
``re.compile``, grouped word lists against plain alternations, the overlap groups against the ranking
rule applied naively, the lean Natasha tagger against Natasha's own, the gates and skipped work against
running everything. The benchmark's ``--compare-with`` compares whole scans with another version.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.discovery.engine import Scanner, finding_rank, resolve_overlaps
from qorgau.discovery.evaluation import load_corpus
from qorgau.discovery.lists import DENY_RECOGNIZER
from qorgau.discovery.recognizers import address, birthdate, fastre, person, structured
from qorgau.discovery.recognizers.scoring import Scorer, scored_finding
from qorgau.discovery.types import Explanation, Finding, context_pattern

PROPERTY = settings(max_examples=150, deadline=None)
HELDOUT = Path(address.__file__).resolve().parent.parent / "corpus" / "heldout.jsonl"


def _texts() -> list[str]:
    """The labelled records, the held-out records if present, and ~4 KB documents mixing them."""
    texts = [example.text for example in load_corpus()]
    if HELDOUT.exists():
        texts += [json.loads(line)["text"] for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(3)
    mixed = ["\n".join(rng.sample(texts, 30)) for _ in range(40)]
    return texts + mixed


TEXTS = _texts()
# Characters that stress case folding and word boundaries: Kazakh letters, re's extra case equivalents
# (long s, Kelvin sign, dotted/dotless i), digits of other scripts, separators and quotes.
ALPHABET = ("абвгдежзийклмнопрстуфхцчшщыэюяАБВГДЕЖЗИКЛМНОПРСТУФХЦЧШЭЮЯәғқңөұүһіӘҒҚҢӨҰҮҺІ"
            "abcdefghijklmnoprstuvwxyzABCDEFGHIKLMNOPRSTUVWXYZ\u017f\u212a\u0130\u0131"
            "0123456789\u0663\U0001d7d8 \n\t\u00a0.,;:-/()«»\"'’@+#№_")
noise = st.text(alphabet=ALPHABET, max_size=300)


def spans(pattern: re.Pattern[str], text: str) -> list[tuple]:
    return [(m.span(), m.groups()) for m in pattern.finditer(text)]


def _compiled_patterns() -> list[re.Pattern[str]]:
    found = []
    for module in (structured, address, person, birthdate):
        for value in vars(module).values():
            if isinstance(value, re.Pattern):
                found.append(value)
            elif isinstance(value, list):  # address._COMPONENTS
                found += [p for item in value if isinstance(item, tuple) for p in item if isinstance(p, re.Pattern)]
    found.append(address._city_pattern())
    found += [r.context._positive for r in structured.structured_recognizers() if r.context._positive is not None]
    found.append(structured.IdCardRecognizer.other_labels)
    return found


PATTERNS = _compiled_patterns()


# --- fastre ---------------------------------------------------------------------------------------------

def test_every_recognizer_pattern_matches_exactly_what_plain_re_matches() -> None:
    optimised = 0
    for pattern in PATTERNS:
        plain = re.compile(pattern.pattern, pattern.flags)
        optimised += fastre.first_chars(pattern.pattern, pattern.flags) is not None
        for text in TEXTS[::3]:
            assert spans(pattern, text) == spans(plain, text), pattern.pattern[:80]
    assert optimised >= 30  # the word and marker patterns do get a first-character set


@PROPERTY
@given(noise, st.sampled_from(PATTERNS))
def test_fastre_agrees_with_re_on_arbitrary_text(text: str, pattern: re.Pattern[str]) -> None:
    assert spans(pattern, text) == spans(re.compile(pattern.pattern, pattern.flags), text)


def test_first_characters_cover_case_variants_and_skip_zero_width_assertions() -> None:
    chars = fastre.first_chars(r"(?<!\w)(?i:st|ул\.)")
    assert chars == {"s", "S", "\u017f", "у", "У"}  # ſ (long s) matches (?i)s in re
    assert fastre.first_chars(r"(?=a)\bk", re.IGNORECASE) == {"k", "K", "\u212a"}  # and the Kelvin sign k
    optional_number = fastre.first_chars(r"(?:\d{1,4}\s+)?[A-Z]x")
    assert optional_number is not None and {"0", "9", "\u0663", "A", "Z", "U+10000-U+10FFFF"} <= optional_number
    assert "a" not in optional_number and " " not in optional_number


@pytest.mark.parametrize("source", [r"a?", r".x", r"[^a]b", r"(?:)", r"\bx?", r"(a)?\1b"])
def test_patterns_without_a_bounded_first_character_compile_as_plain_re(source: str) -> None:
    assert fastre.first_chars(source) is None
    assert fastre.compile(source).pattern == source
    text = "xa ab ba aab"
    assert spans(fastre.compile(source), text) == spans(re.compile(source), text)


def test_categories_become_explicit_sets_without_losing_other_scripts() -> None:
    digits = fastre.compile(r"(?<!\w)\d+")
    assert [m.group() for m in digits.finditer("№ 12, ٣٤ and 𝟘𝟙")] == ["12", "٣٤", "𝟘𝟙"]
    word = fastre.compile(r"\w+", re.IGNORECASE)
    assert word.findall("İstanbul 𐐨𐐩 _x") == re.findall(r"\w+", "İstanbul 𐐨𐐩 _x", re.IGNORECASE)


words = st.lists(st.text(alphabet="абвкпулsSteK.-ſ", min_size=1, max_size=5), min_size=1, max_size=12)


@PROPERTY
@given(words, st.text(alphabet="абвкпулsSteK.-ſ АБКПSTE", max_size=80), st.booleans())
def test_grouped_alternatives_match_like_the_plain_alternation(items: list[str], text: str, ignore: bool) -> None:
    escaped = [re.escape(w) for w in items]
    grouped = re.compile(fastre.alternatives(escaped, ignore_case=ignore))
    plain = re.compile("(?:" + "|".join(escaped) + ")", re.IGNORECASE if ignore else 0)
    assert spans(grouped, text) == spans(plain, text)


def test_case_sensitive_alternatives_stay_case_sensitive_inside_a_grouped_list() -> None:
    grouped = re.compile(fastre.alternatives([r"(?-i:г\.)", "город", r"гор\."]))
    plain = re.compile(r"(?i:(?-i:г\.)|город|гор\.)")
    text = "г. Г. ГОРОД гор. Гор."
    assert spans(grouped, text) == spans(plain, text) and [m.group() for m in grouped.finditer(text)][:2] == ["г.", "ГОРОД"]


def test_without_res_internals_fastre_falls_back_to_plain_patterns(monkeypatch) -> None:
    words_ = [r"ул\.", "улица", r"(?-i:г\.)", "город", "st"]
    text = "Ул. улица Г. г. ГОРОД St stop"
    grouped = re.compile(fastre.alternatives(words_))
    monkeypatch.setattr(fastre, "_AVAILABLE", False)
    plain = fastre.alternatives(words_)
    assert plain == "(?i:" + "|".join(words_) + ")"
    assert spans(re.compile(plain), text) == spans(grouped, text)
    assert fastre.compile(r"(?<!\w)st").pattern == r"(?<!\w)st" and fastre.first_chars("ab") is None


def test_an_alternative_that_does_not_start_with_a_plain_character_is_refused() -> None:
    for bad in (["a?b"], ["(?:x)y"], [""], ["\\d1"]):
        with pytest.raises(ValueError):
            fastre.alternatives(bad)


def test_context_words_are_found_as_before() -> None:
    words_ = ["ИИН", "ЖСН", "IIN", "уд. личн", "id card", "e-mail", "тел"]
    grouped = context_pattern(words_)
    plain = re.compile(r"(?<!\w)(?:" + "|".join(sorted({re.escape(w.lower()) for w in words_}, key=len, reverse=True))
                       + ")", re.IGNORECASE)
    for text in TEXTS[::5] + ["Тел.: +7 701, ИИН/ЖСН; iin; ID Card № 5; E-Mail:"]:
        assert grouped.findall(text) == plain.findall(text)


# --- overlaps -----------------------------------------------------------------------------------------------

def naive_resolution(findings: list[Finding]) -> list[Finding]:
    """The overlap rule as documented, quadratic: strongest first, kept if it overlaps nothing kept."""
    kept: list[Finding] = []
    for f in sorted(findings, key=finding_rank):
        if all(f.end <= k.start or k.end <= f.start for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: (f.start, f.end))


finding_st = st.builds(
    lambda kind, start, length, score, validated, deny: Finding(
        kind, start, start + length, score, DENY_RECOGNIZER if deny else "r",
        explanation=Explanation("p", score, validated=validated)),
    st.sampled_from(["KZ_IIN", "PHONE_NUMBER", "PERSON", "ADDRESS", "CUSTOM"]), st.integers(0, 60),
    st.integers(1, 15), st.sampled_from([0.5, 0.6, 0.85, 1.0]), st.sampled_from([True, None, False]),
    st.booleans())


@PROPERTY
@given(st.lists(finding_st, max_size=40))
def test_overlap_groups_keep_what_the_ranking_rule_keeps(findings: list[Finding]) -> None:
    assert resolve_overlaps(findings) == naive_resolution(findings)


def test_a_long_chain_of_overlapping_findings_is_one_group_resolved_by_the_rule() -> None:
    chain = [Finding("PERSON", i, i + 3, 0.5 + (i * 7 % 11) / 40, "r", explanation=Explanation("p", 0.5))
             for i in range(2000)]
    result = resolve_overlaps(chain[::-1])
    assert result == naive_resolution(chain)
    assert all(a.end <= b.start for a, b in zip(result, result[1:]))


# --- scoring -----------------------------------------------------------------------------------------------

def test_a_scorer_builds_the_findings_scored_finding_builds() -> None:
    recognizer = structured.IpAddressRecognizer()  # has negative context too
    scorer = Scorer(entity_type="IP_ADDRESS", recognizer="ip_address", pattern="ipv4", base=0.6,
                    context=recognizer.context, validated=True, validator="octets 0-255")
    for text in ["сервер 10.0.0.1 (версия 2)", "ip: 10.0.0.1", "10.0.0.1", "version 10.0.0.1 host"]:
        start = text.index("10.")
        a = scorer(text, start, start + 8, ("note",))
        b = scored_finding(text, start, start + 8, entity_type="IP_ADDRESS", recognizer="ip_address", pattern="ipv4",
                           base=0.6, context=recognizer.context, validated=True, validator="octets 0-255",
                           notes=("note",))
        assert a == b and a.explanation == b.explanation and a.category == b.category


# --- Natasha ------------------------------------------------------------------------------------------------

def test_the_lean_tagger_tags_like_natashas_tagger() -> None:
    _, tagger = person._natasha()
    lean = person._tag  # through the recognizer's path (lean tagger, one BLAS thread)
    windows = [t[i:i + 130] for t in TEXTS[:700] for i in range(0, len(t), 110)]
    windows = [w for w in windows if w.strip()][:400]
    for i in range(0, len(windows), 7):
        batch = windows[i:i + 7]
        expected = [[(s.start, s.stop, s.type) for s in m.spans] for m in tagger.map(batch)]
        with person._LOCK:
            assert lean(batch, tagger) == expected


def test_natasha_runs_on_one_blas_thread_and_gives_the_threads_back() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    _, tagger = person._natasha()
    with person._LOCK:
        person._tag(["Иванов"], tagger)  # builds the lean tagger and the limiter
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    seen: list[int] = []
    lean = person._LEAN[0][0]
    if lean is not None:
        original = lean._forward

        def spy(*args):  # type: ignore[no-untyped-def]
            seen.extend(lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas")
            return original(*args)

        lean._forward = spy
    try:
        with person._LOCK:
            person._tag(["Вчера Жаксылыков Ерлан обратился в банк."], tagger)
    finally:
        if lean is not None:
            del lean._forward
    assert seen and all(n == 1 for n in seen)
    assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"] == before


def reference_tokens(text: str) -> list[list[tuple[int, int, str, bool]]]:
    """PERSON's token runs as first written: every run, including one unknown capitalised word."""
    runs, run, prev_end, prev_init = [], [], -1, False
    particles = re.compile(r" (?:(?:" + "|".join(sorted(person._PARTICLES)) + r") ){1,2}\Z")
    for m in person._TOKEN.finditer(text):
        s, e = m.start(), m.end()
        if m.lastgroup == "init":
            cls = "I"
        elif m.lastgroup == "caps":  # ALL CAPS: classified capitalised; an unknown one is never a name part
            cls = person._classify_cached(m.group()[0] + m.group()[1:].lower())[0]
            cls = "N" if cls == "X" else cls
        else:
            cls = person._classify_cached(m.group())[0]
        if run:
            gap = re.compile(r"[ \t\u00a0]{0,3}\Z" if prev_init else r"[ \t\u00a0]{1,3}\Z")
            joined = gap.match(text, prev_end, s) or (s - prev_end <= 11 and particles.match(text, prev_end, s))
            if prev_end > s or not joined or cls == "N":
                runs.append(run)
                run = []
        if cls != "N":
            head = text[max(0, s - 3):s]
            run.append((s, e, cls, bool(person._SENTENCE_END.search(head)) if s >= 3 else True))
        prev_end, prev_init = e, cls == "I"
    if run:
        runs.append(run)
    return runs


def test_person_runs_are_the_reference_runs_minus_lone_unknown_words() -> None:
    for text in TEXTS[::2]:
        fast = [[(t.start, t.end, t.cls, t.initial) for t in run] for run in person._tokens(text)]
        expected = [run for run in reference_tokens(text) if len(run) > 1 or run[0][2] != "X"]
        assert fast == expected


# --- gates and skipped work ----------------------------------------------------------------------------------

def scan_all(scanner: Scanner) -> list[list[tuple]]:
    return [[(f.type, f.start, f.end, f.score, f.recognizer) for f in scanner.scan(t)] for t in TEXTS]


@pytest.fixture(scope="module")
def full() -> Scanner:
    return Scanner.default()


@pytest.fixture(scope="module")
def expected(full: Scanner) -> list[list[tuple]]:
    return scan_all(full)


def test_address_gates_only_skip_windows_without_matches(full: Scanner, expected, monkeypatch) -> None:
    monkeypatch.setattr(address, "_COMPONENTS", [(kind, rx, None) for kind, rx, _ in address._COMPONENTS])
    assert scan_all(full) == expected


def test_birth_date_gates_only_skip_texts_without_birth_dates(full: Scanner, expected, monkeypatch) -> None:
    always = re.compile("")  # matches every text: the gate never skips, the month-first form is always tried
    monkeypatch.setattr(birthdate, "_ANY_BIRTH_WORD", always)
    monkeypatch.setattr(birthdate, "_MONTH_AT_WORD_START", always)
    assert scan_all(full) == expected


def test_phone_fast_paths_do_not_change_findings(monkeypatch) -> None:
    ids = Scanner.identifiers_only()
    before = scan_all(ids)
    monkeypatch.setattr(structured, "_KZ_LANDLINE", re.compile(r"(?!)"))  # every landline through libphonenumber
    monkeypatch.setattr(structured, "_KZ_MOBILE", re.compile(r"(?!)"))
    assert scan_all(ids) == before
