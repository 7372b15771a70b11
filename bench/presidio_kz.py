#!/usr/bin/env python
"""Presidio configured with Kazakh recognizers equivalent to qorgau's, for ``bench/scan_throughput.py``.

Runs ONLY in the benchmark's own virtualenv (``bench/.venv-presidio``, from
``bench/requirements-presidio.txt``), started as a subprocess by ``scan_throughput.py``, so the project's
``.venv`` never gets Presidio or spaCy. It imports nothing from qorgau: the validators below are the
rules of LEGAL.md § Identifiers written again in plain Python, the way a Presidio user would write them.

The configuration (what "Presidio with custom KZ recognizers" means in the results):

* one ``AnalyzerEngine`` for language ``ru`` (the corpus is mixed kk/ru/en; one language keeps it one
  pass per document, as qorgau does), ``score_threshold=0.5`` (qorgau's ``min_score``);
* ``PatternRecognizer``s: ``KZ_IIN`` and ``KZ_BIN`` (12 digits, mod-11 checksum + date/layout in
  ``validate_result``), KZ ``PHONE_NUMBER`` (+7/8 with every common grouping), ``IBAN_CODE`` (KZ, mod-97),
  ``CREDIT_CARD`` (groups or 16 compact digits incl. Mir 2200-2204, Luhn), ``KZ_PASSPORT`` (N + 8 digits),
  ``KZ_ID_CARD`` (9 digits, 0.2: below the threshold unless a context word adds Presidio's 0.35),
  ``KZ_VEHICLE_PLATE`` (with context); kk/ru/en context words on each;
* Presidio's built-in ``EmailRecognizer``, ``CreditCardRecognizer`` and ``IpRecognizer``;
* NLP engine: Presidio's ``SpacyNlpEngine`` with ``spacy.blank("ru")`` instead of a downloaded model
  (tokenizer only, no NER; lemmas replaced by lower-cased tokens so context words still work).
  **Presidio's PERSON/LOCATION detection is therefore off**: the comparison is identifiers against
  identifiers. (With a real spaCy model Presidio would be slower still: the model runs on every text.)
* Presidio's e-mail validation calls ``tldextract``, which by default fetches the public-suffix list
  over the network; it is given an offline extractor (the snapshot bundled with tldextract).

Usage (what scan_throughput.py does): ``bench/.venv-presidio/bin/python bench/presidio_kz.py DOCS.jsonl``
where each line is a JSON string (one document). Prints one JSON object on stdout: bytes, documents,
wall and CPU seconds, findings per type, versions. Document texts are never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections import Counter
from datetime import date


# --- validators (LEGAL.md § Identifiers) ----------------------------------------------------------

_W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def _mod11_ok(digits: str) -> bool:
    d = [int(c) for c in digits]
    c = sum(d[i] * (i + 1) for i in range(11)) % 11
    if c == 10:
        c = sum(d[i] * _W2[i] for i in range(11)) % 11
        if c == 10:
            return False
    return c == d[11]


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def is_iin(digits: str) -> bool:
    if len(digits) != 12 or not digits.isdigit():
        return False
    century = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}.get(digits[6])
    if century is None:
        return False
    return _real_date(century + int(digits[:2]), int(digits[2:4]), int(digits[4:6])) and _mod11_ok(digits)


def is_bin(digits: str) -> bool:
    if len(digits) != 12 or not digits.isdigit():
        return False
    return (1 <= int(digits[2:4]) <= 12 and digits[4] in "456" and digits[5] in "0123"
            and _mod11_ok(digits))


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def kz_iban_ok(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if len(compact) != 20 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def kz_phone_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return len(digits) == 11 and digits[0] in "78" and digits[1] == "7"


# --- the Presidio configuration -------------------------------------------------------------------

def build_analyzer():
    """An AnalyzerEngine with the KZ recognizers above, a blank spaCy pipeline and no network access."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, EmailRecognizer, IpRecognizer
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    # Offline public-suffix list: the snapshot inside the tldextract wheel, never a download.
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    email_recognizer.tldextract = type("OfflineTldextract", (), {"extract": staticmethod(offline)})

    class BlankSpacyNlpEngine(SpacyNlpEngine):
        """spaCy's rule-based tokenizer only (``spacy.blank``): no model, no NER, nothing downloaded."""

        def load(self) -> None:
            self.nlp = {m["lang_code"]: spacy.blank(m["lang_code"]) for m in self.models}

        def _doc_to_nlp_artifact(self, doc, language):
            artifacts = super()._doc_to_nlp_artifact(doc, language)
            # A blank pipeline has no lemmatizer: lower-cased tokens stand in, and the keywords the context
            # enhancer matches against are recomputed from them (NlpArtifacts derives them at construction).
            artifacts.lemmas = [token.lower_ for token in doc]
            artifacts.keywords = artifacts.set_keywords(self, artifacts.lemmas, language)
            return artifacts

    lang = "ru"
    nlp_engine = BlankSpacyNlpEngine(models=[{"lang_code": lang, "model_name": "blank"}])
    nlp_engine.load()

    class KzIinRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return is_iin(pattern_text)

    class KzBinRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return is_bin(pattern_text)

    class KzPhoneRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return kz_phone_ok(pattern_text)

    class KzIbanRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return kz_iban_ok(pattern_text)

    class LuhnCardRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return luhn_ok(pattern_text)

    twelve = [Pattern("12 digits", r"(?<!\d)\d{12}(?!\d)", 0.5)]
    recognizers = [
        KzIinRecognizer(supported_entity="KZ_IIN", name="KzIinRecognizer", supported_language=lang,
                        patterns=twelve, context=["иин", "жсн", "iin", "инн"]),
        KzBinRecognizer(supported_entity="KZ_BIN", name="KzBinRecognizer", supported_language=lang,
                        patterns=twelve, context=["бин", "бсн", "bin"]),
        KzPhoneRecognizer(
            supported_entity="PHONE_NUMBER", name="KzPhoneRecognizer", supported_language=lang,
            patterns=[Pattern("kz phone",
                              r"(?<![\w+])(?:\+\s?7|8)[ \-]?(?:\(\s?\d{3,5}\s?\)|\d{3,5})[ \-]?\d{1,3}[ \-]?\d{2}"
                              r"[ \-]?\d{2}(?!\d)", 0.6)],
            context=["тел", "телефон", "моб", "нөмір", "phone", "tel", "mobile", "whatsapp"]),
        KzIbanRecognizer(supported_entity="IBAN_CODE", name="KzIbanRecognizer", supported_language=lang,
                         patterns=[Pattern("kz iban", r"\bKZ\d{2}(?: ?[A-Z0-9]{4}){4}\b", 0.7)],
                         context=["iban", "иик", "счет", "счёт", "шот", "account"]),
        LuhnCardRecognizer(supported_entity="CREDIT_CARD", name="LuhnCardRecognizer", supported_language=lang,
                           patterns=[Pattern("card", r"(?<![\d\-])(?:\d{4}[ \-]){3}\d{4}(?![\d\-])"
                                                     r"|(?<!\d)\d{16}(?!\d)", 0.6)],
                           context=["карт", "card", "visa", "mastercard", "kaspi"]),
        PatternRecognizer(supported_entity="KZ_PASSPORT", name="KzPassportRecognizer", supported_language=lang,
                          patterns=[Pattern("N + 8 digits", r"(?<!\w)[NН] ?\d{8}(?!\d)", 0.5)],
                          context=["паспорт", "passport", "төлқұжат", "құжат", "документ"]),
        PatternRecognizer(supported_entity="KZ_ID_CARD", name="KzIdCardRecognizer", supported_language=lang,
                          patterns=[Pattern("9 digits", r"(?<!\w)\d{9}(?!\d)", 0.2)],
                          context=["удостоверение", "удостоверения", "куәлік", "куәлігі", "id", "card"]),
        PatternRecognizer(supported_entity="KZ_VEHICLE_PLATE", name="KzPlateRecognizer", supported_language=lang,
                          patterns=[Pattern("plate", r"(?<!\w)\d{3} ?[A-Z]{2,3} ?(?:0[1-9]|1\d|20)(?!\w)", 0.2)],
                          context=["госномер", "номер", "plate", "автомобиль", "көлік", "авто", "car"]),
        EmailRecognizer(supported_language=lang),
        CreditCardRecognizer(supported_language=lang),
        IpRecognizer(supported_language=lang),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[lang])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[lang]), lang


def analyze_documents(path: str, max_bytes: int | None) -> dict:
    """Analyze every document in ``path`` (JSON string per line) once; time it; count findings per type."""
    started = time.perf_counter()
    analyzer, lang = build_analyzer()
    setup_s = time.perf_counter() - started
    with open(path, encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    if max_bytes is not None:
        kept, total = [], 0
        for doc in docs:
            if total >= max_bytes:
                break
            kept.append(doc)
            total += len(doc.encode("utf-8"))
        docs = kept
    for doc in docs[:20]:  # warm-up: regex compilation, first-call caches
        analyzer.analyze(text=doc, language=lang, score_threshold=0.5)
    counts: Counter[str] = Counter()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for doc in docs:
        for result in analyzer.analyze(text=doc, language=lang, score_threshold=0.5):
            counts[result.entity_type] += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    import presidio_analyzer
    import spacy

    return {
        "documents": len(docs), "bytes": sum(len(d.encode("utf-8")) for d in docs),
        "chars": sum(len(d) for d in docs), "wall_s": wall, "cpu_s": cpu, "setup_s": setup_s,
        "counts": dict(counts),
        "versions": {"presidio_analyzer": getattr(presidio_analyzer, "__version__", _dist_version("presidio_analyzer")),
                     "spacy": spacy.__version__, "python": sys.version.split()[0]},
        "nlp_engine": f'spacy.blank("{lang}") via SpacyNlpEngine subclass (no model, no NER)',
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", help="JSON Lines file, one JSON string (a document) per line")
    parser.add_argument("--max-mb", type=float, default=None, help="analyze only the first N MB (UTF-8)")
    args = parser.parse_args(argv)
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    max_bytes = int(args.max_mb * 1_000_000) if args.max_mb else None
    print(json.dumps(analyze_documents(args.docs, max_bytes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
