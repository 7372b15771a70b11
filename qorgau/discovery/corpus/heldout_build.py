"""Turn the hand-written held-out source ``heldout_src.txt`` into the labelled corpus ``heldout.jsonl``.

    python -m qorgau.discovery.corpus.heldout_build            # write heldout.jsonl (fails on a bad label)
    python -m qorgau.discovery.corpus.heldout_build --check    # exit 1 if heldout.jsonl is stale or a label is bad
    python -m qorgau.discovery.corpus.heldout_build --fix      # recompute check digits in heldout_src.txt
    python -m qorgau.discovery.corpus.heldout_build --stats    # counts per type, language, script and genre

The texts are written by hand, record by record (``HELDOUT.md`` has the labelling guide); this
module only computes offsets and checks labels. The source is plain text:

* ``=== <id> <lang> <genre> [script=latn] [| free-text note]`` starts a record; its text is every
  following line up to the next ``===`` line (blank lines around it are dropped, inner ones kept);
* ``%%`` at the start of a line is a comment, anywhere;
* ``[[TYPE:value]]`` labels ``value`` as an entity of ``TYPE`` (an :class:`EntityType` name);
* ``[[~tag:value]]`` marks ``value`` as a hard negative of kind ``tag`` (:data:`NEGATIVE_TAGS`): a
  look-alike that must *not* be found. A negative may sit inside an entity (the street named after a
  person inside an address); entities never nest;
* ``\\t`` stands for a tab (TSV lines); nothing else is escaped.

**Checks** (every build, so ``heldout.jsonl`` can only hold checked labels): each IIN/BIN label passes
the mod-11 check digit (an IIN also encodes a real birth date), cards pass Luhn, IBANs mod-97, phones
parse (``qorgau.identifiers.parse_phone``), passports and ID cards have their format, IPs parse, e-mails
normalize; each negative of a checkable kind *fails* its check (``bad_checksum_12`` is no valid IIN or
BIN, ``bad_luhn`` fails Luhn, ``bad_iban`` fails mod-97, ``service_number`` is not a phone); and no
unlabelled 12-digit run anywhere in a text is a valid IIN or BIN. A failure names the source line.

``--fix`` is the only computing help for the author: it rewrites, in place and digit for digit, the
check digits of labelled IINs/BINs (the next serial with a check digit when a serial has none, as in
:func:`qorgau.identifiers.synthetic_kz_number`), cards and IBANs so they validate, and of checkable
negatives so they do not. Dates, names, serials and layouts stay as the author wrote them.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qorgau.discovery.types import EntityType
from qorgau.identifiers import (
    IdentifierError,
    iin_check_digit,
    is_valid_bin,
    is_valid_card,
    is_valid_iban,
    is_valid_iin,
    luhn_check_digit,
    normalize_email,
    parse_id_card,
    parse_passport,
    parse_phone,
    synthetic_kz_number,
)
from qorgau.identifiers.checksums import iban_check_digits

HERE = Path(__file__).parent
SOURCE = HERE / "heldout_src.txt"
OUT = HERE / "heldout.jsonl"

LANGS = ("kk", "ru", "en", "mixed")
SCRIPTS = ("cyrl", "latn")
# Genres (the record's ``domain``): where in Kazakhstan such a text is written.
GENRES: dict[str, str] = {
    "bank-chat": "bank support chat or call-centre note",
    "telecom-chat": "mobile operator support chat",
    "leak-dump": "Telegram 'probiv' bot answer or a pasted leak dump",
    "hr-form": "HR form, order or personnel list",
    "cv": "CV / résumé",
    "medical": "clinic or hospital note, prescription, sick-leave",
    "court": "court document or notary deed",
    "akimat-letter": "akimat or ministry letter, reply to an appeal",
    "egov": "eGov / government service notification",
    "marketplace": "marketplace order, seller chat, receipt",
    "delivery": "courier or postal delivery note",
    "police": "police report or protocol",
    "school": "school or university list, diary, admission",
    "news": "news item or press release",
    "email": "e-mail",
    "sms": "SMS or push notification",
    "log": "application or server log line",
    "csv": "CSV/TSV export line or table row",
    "social": "messenger or social-network post",
    "insurance": "insurance policy or claim",
    "realty": "real-estate listing or rental contract",
}
# Kinds of hard negative: look-alikes that are not personal data of the type they resemble.
NEGATIVE_TAGS: dict[str, str] = {
    "bad_checksum_12": "12 digits shaped like an IIN/BIN whose check digit is wrong",
    "impossible_date_12": "12 digits whose 'birth date' does not exist",
    "order_number": "order, invoice, contract, ticket or tracking number",
    "product_code": "article, SKU, model or product code",
    "non_birth_date": "a date that is not a birth date (issue, payment, visit …)",
    "organization": "company or institution whose name looks like a surname or a person",
    "street_named_after_person": "street, avenue or square named after a person",
    "street_name": "a street or district named after no person, mentioned without an address",
    "landmark_named_after_person": "university, school, monument or airport named after a person",
    "city": "city, region or village mentioned without an address",
    "service_number": "short service number or USSD code (102, 1414, *141#)",
    "amount": "money amount or balance",
    "bad_iban": "IBAN-like string failing mod-97",
    "bad_luhn": "card-like 16 digits failing Luhn",
    "nine_digits_without_context": "9 digits with no identity-card context",
    "version": "software version, build number, dotted quad that is not an IP",
    "time": "a time of day or duration",
    "measurement": "weight, dose, size, percentage or other quantity",
    "device_id": "IMEI or device serial (an IMEI passes Luhn by design)",
    "common_word": "a word that is also a name or surname (Roza the flower, Bolat steel …)",
    "public_code": "BIK/SWIFT, KBE, KNP, OKED or another public code",
}

KNOWN_TYPES = frozenset(t.value for t in EntityType)
HEADER = re.compile(r"^===\s+(?P<id>\S+)\s+(?P<lang>\S+)\s+(?P<genre>\S+)(?P<rest>.*)$")
OPEN = re.compile(r"\[\[(~?)([A-Za-z_0-9]+):")
TWELVE = re.compile(r"(?<!\d)\d{12}(?!\d)")
PLATE = re.compile(
    r"\d{3}\s?[A-Z]{2,3}\s?\d{2}"  # 123 ABC 02 (since 2012; two letters for legal entities)
    r"|[A-Z]\s?\d{3}\s?[A-Z]{2,3}"  # A 123 BCD (1993-2012, region letter first)
)
DIGITS = re.compile(r"\d")


@dataclass(slots=True)
class Mark:
    """One labelled entity (``negative`` False) or hard negative in a record's text."""

    kind: str  # EntityType name, or a NEGATIVE_TAGS key for negatives
    negative: bool
    start: int  # offsets in the record's text
    end: int
    src_start: int  # offsets of the value in the source file (for --fix)
    src_end: int
    line: int  # source line where the value starts


@dataclass(slots=True)
class Record:
    id: str
    lang: str
    genre: str
    script: str
    note: str
    text: str
    marks: list[Mark]
    line: int

    def to_json(self) -> dict[str, object]:
        entities = [{"type": m.kind, "start": m.start, "end": m.end} for m in self.marks if not m.negative]
        negatives = [{"tag": m.kind, "start": m.start, "end": m.end} for m in self.marks if m.negative]
        out: dict[str, object] = {"id": self.id, "lang": self.lang, "domain": self.genre}
        if self.script != "cyrl" or self.lang == "kk":
            out["script"] = self.script
        out["text"] = self.text
        out["entities"] = sorted(entities, key=lambda e: (e["start"], e["end"]))
        out["hard_negatives"] = sorted({str(n["tag"]) for n in negatives})
        out["negatives"] = sorted(negatives, key=lambda n: (n["start"], n["end"]))
        if self.note:
            out["notes"] = self.note
        return out


@dataclass(slots=True)
class Problem:
    """A problem in the source: the line it is on and what is wrong, never the value itself."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class Parsed:
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# --- parsing ------------------------------------------------------------------------------------------

def parse_source(source: str) -> Parsed:
    """Split the source into records and their marks; structural problems go to ``problems``."""
    parsed = Parsed()
    lines = source.splitlines(keepends=True)
    offset = 0
    current: dict | None = None
    body: list[tuple[int, int, str]] = []  # (line number, source offset, line text)
    for number, line in enumerate(lines, start=1):
        start = offset
        offset += len(line)
        if line.startswith("%%"):
            continue
        header = HEADER.match(line.rstrip("\n"))
        if line.startswith("===") and not header:
            parsed.problems.append(Problem(number, "a record header must read '=== <id> <lang> <genre>'"))
            continue
        if header:
            if current is not None:
                _finish(parsed, current, body)
            current = {"header": header, "line": number}
            body = []
            continue
        if current is None:
            if line.strip():
                parsed.problems.append(Problem(number, "text before the first '===' header"))
            continue
        body.append((number, start, line))
    if current is not None:
        _finish(parsed, current, body)
    seen_ids: set[str] = set()
    for record in parsed.records:
        if record.id in seen_ids:
            parsed.problems.append(Problem(record.line, f"duplicate record id {record.id}"))
        seen_ids.add(record.id)
    return parsed


def _finish(parsed: Parsed, current: dict, body: list[tuple[int, int, str]]) -> None:
    header, line = current["header"], current["line"]
    rid, lang, genre = header["id"], header["lang"], header["genre"]
    rest = header["rest"]
    note = ""
    if "|" in rest:
        rest, note = rest.split("|", 1)
        note = note.strip()
    script = "cyrl"
    for option in rest.split():
        if option.startswith("script="):
            script = option.removeprefix("script=")
        else:
            parsed.problems.append(Problem(line, f"unknown header option {option!r}"))
    if lang not in LANGS:
        parsed.problems.append(Problem(line, f"language must be one of {', '.join(LANGS)}"))
    if genre not in GENRES:
        parsed.problems.append(Problem(line, f"unknown genre {genre!r} (add it to GENRES with a description)"))
    if script not in SCRIPTS:
        parsed.problems.append(Problem(line, f"script must be one of {', '.join(SCRIPTS)}"))
    while body and not body[0][2].strip():
        body.pop(0)
    while body and not body[-1][2].strip():
        body.pop()
    if not body:
        parsed.problems.append(Problem(line, "record has no text"))
        return
    text, marks, problems = _unmark(body)
    parsed.problems.extend(problems)
    parsed.records.append(Record(rid, lang, genre, script, note, text, marks, line))


def _unmark(body: list[tuple[int, int, str]]) -> tuple[str, list[Mark], list[Problem]]:
    """Strip ``[[…]]`` markup from a record's lines, keeping text and source offsets of every mark."""
    out: list[str] = []
    length = 0
    marks: list[Mark] = []
    problems: list[Problem] = []
    stack: list[tuple[str, bool, int, int, int]] = []  # kind, negative, text start, source start, line
    last = len(body) - 1
    for index, (number, src, raw) in enumerate(body):
        line = raw.rstrip("\n") if index == last else raw
        i = 0
        while i < len(line):
            opener = OPEN.match(line, i)
            if opener:
                negative, kind = opener.group(1) == "~", opener.group(2)
                if negative and kind not in NEGATIVE_TAGS:
                    problems.append(Problem(number, f"unknown hard-negative tag {kind!r}"))
                if not negative and kind not in KNOWN_TYPES:
                    problems.append(Problem(number, f"unknown entity type {kind!r}"))
                if stack and not negative:
                    problems.append(Problem(number, "an entity cannot sit inside another mark"))
                if stack and stack[-1][1]:
                    problems.append(Problem(number, "nothing may sit inside a hard negative"))
                stack.append((kind, negative, length, src + opener.end(), number))
                i = opener.end()
                continue
            if line.startswith("]]", i):
                if not stack:
                    problems.append(Problem(number, "']]' closes nothing"))
                    i += 2
                    continue
                kind, negative, start, src_start, open_line = stack.pop()
                end = length
                value = "".join(out)[start:end]
                if not value or value != value.strip():
                    problems.append(Problem(open_line, f"the {kind} mark is empty or has spaces at its ends"))
                marks.append(Mark(kind, negative, start, end, src_start, src + i, open_line))
                i += 2
                continue
            if line.startswith("\\t", i):
                out.append("\t")
                length += 1
                i += 2
                continue
            if line.startswith("[[", i):
                problems.append(Problem(number, "'[[' must be followed by TYPE: or ~tag:"))
            out.append(line[i])
            length += 1
            i += 1
    for kind, _, _, _, open_line in stack:
        problems.append(Problem(open_line, f"the {kind} mark is never closed with ']]'"))
    return "".join(out), marks, problems


# --- checking -----------------------------------------------------------------------------------------

def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _compact(value: str) -> str:
    return re.sub(r"[\s-]", "", value)


def check_entity(kind: str, value: str) -> str | None:
    """Why ``value`` is not a well-formed ``kind``, or None. Separators inside numbers are allowed."""
    if kind in ("KZ_IIN", "KZ_BIN"):
        digits = _digits(value)
        if len(digits) != 12 or _compact(value) != digits:
            return "must be 12 digits (spaces allowed)"
        if kind == "KZ_IIN" and not is_valid_iin(digits):
            return "is not a valid IIN (check digit or birth date); run --fix"
        if kind == "KZ_BIN" and not is_valid_bin(digits):
            return "is not a valid BIN (check digit, month, type); run --fix"
    elif kind == "CREDIT_CARD":
        if not is_valid_card(value):
            return "fails Luhn or has a wrong length; run --fix"
    elif kind == "IBAN_CODE":
        if not is_valid_iban(value):
            return "fails mod-97 or its country layout; run --fix"
    elif kind == "PHONE_NUMBER":
        try:
            parse_phone(value)
        except IdentifierError as exc:
            return f"is not a phone number ({exc.reason})"
    elif kind == "EMAIL_ADDRESS":
        try:
            normalize_email(value)
        except IdentifierError:
            return "is not an e-mail address"
    elif kind == "KZ_PASSPORT":
        try:
            parse_passport(value)
        except IdentifierError:
            return "is not N + 8 digits"
    elif kind == "KZ_ID_CARD":
        try:
            parse_id_card(value)
        except IdentifierError:
            return "is not 9 digits"
    elif kind == "IP_ADDRESS":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return "is not an IPv4/IPv6 address"
    elif kind == "KZ_VEHICLE_PLATE":
        if not PLATE.fullmatch(value):
            return "is not a KZ plate (123 ABC 02 or A 123 BCD)"
    elif kind == "PERSON":
        if DIGITS.search(value):
            return "a name holds no digits"
    elif kind == "DATE_OF_BIRTH":
        if not DIGITS.search(value):
            return "a birth date holds a day or a year in digits"
    return None


def check_negative(tag: str, value: str) -> str | None:
    """Why ``value`` would be a real identifier of the kind its tag says it only resembles, or None."""
    digits = _digits(value)
    # Whatever its kind, a look-alike must not *be* the thing by form: a product code whose 12 digits
    # pass the IIN checksum, or an order number passing Luhn, would be a fair finding, not a trap.
    if len(digits) == 12 and (is_valid_iin(digits) or is_valid_bin(digits)):
        return "holds 12 digits that are a valid IIN or BIN"
    if tag not in ("bad_luhn", "device_id") and 13 <= len(digits) <= 19 and is_valid_card(value):
        return "holds 13-19 digits passing Luhn (a card number by form)"
    if tag in ("bad_checksum_12", "impossible_date_12"):
        if len(digits) != 12:
            return "a 12-digit look-alike must have 12 digits"
        if is_valid_iin(digits) or is_valid_bin(digits):
            return "is a valid IIN or BIN; run --fix"
        if tag == "impossible_date_12" and iin_check_digit(digits[:11]) != int(digits[11]):
            return "an impossible-date look-alike keeps a correct check digit; run --fix"
    elif tag == "bad_luhn":
        if not 13 <= len(digits) <= 19:
            return "a card look-alike must have 13-19 digits"
        if is_valid_card(value):
            return "passes Luhn; run --fix"
    elif tag == "bad_iban":
        if is_valid_iban(value):
            return "passes mod-97; run --fix"
    elif tag == "service_number":
        try:
            parse_phone(value)
        except IdentifierError:
            return None
        return "is a dialable phone number, not a service number"
    elif tag == "nine_digits_without_context":
        if len(digits) != 9:
            return "must have 9 digits"
    return None


def check_record(record: Record) -> list[Problem]:
    problems: list[Problem] = []
    text = record.text
    entities = sorted((m for m in record.marks if not m.negative), key=lambda m: m.start)
    for mark in record.marks:
        value = text[mark.start:mark.end]
        why = check_negative(mark.kind, value) if mark.negative else check_entity(mark.kind, value)
        if why:
            kind = f"hard negative {mark.kind}" if mark.negative else mark.kind
            problems.append(Problem(mark.line, f"{record.id}: {kind} {why}"))
    for a, b in zip(entities, entities[1:]):
        if a.end > b.start:
            problems.append(Problem(b.line, f"{record.id}: entities overlap"))
    labelled = {(m.start, m.end) for m in entities if m.kind in ("KZ_IIN", "KZ_BIN")}
    for match in TWELVE.finditer(text):
        if (match.start(), match.end()) not in labelled and (is_valid_iin(match.group())
                                                             or is_valid_bin(match.group())):
            problems.append(Problem(record.line, f"{record.id}: an unlabelled 12-digit number at offset "
                                                 f"{match.start()} is a valid IIN/BIN"))
    return problems


def check_corpus(parsed: Parsed) -> list[Problem]:
    problems = list(parsed.problems)
    seen_texts: dict[str, str] = {}
    for record in parsed.records:
        problems.extend(check_record(record))
        if record.text in seen_texts:
            problems.append(Problem(record.line, f"{record.id} repeats the text of {seen_texts[record.text]}"))
        seen_texts.setdefault(record.text, record.id)
    return problems


# --- fixing check digits ------------------------------------------------------------------------------

def _replace_digits(value: str, new_digits: str) -> str:
    """``value`` with its digits replaced, in order, by ``new_digits`` (layout and separators kept)."""
    it = iter(new_digits)
    return "".join(next(it) if ch.isdigit() else ch for ch in value)


def fixed_value(kind: str, negative: bool, value: str) -> str:
    """The value with check digits recomputed (entity) or broken (negative); unchanged if nothing to do."""
    digits = _digits(value)
    if not negative and kind in ("KZ_IIN", "KZ_BIN") and len(digits) == 12 and _compact(value) == digits:
        valid = is_valid_iin if kind == "KZ_IIN" else is_valid_bin
        if valid(digits):
            return value
        prefix = digits[:7] if kind == "KZ_IIN" else digits[:6]
        serial = int(digits[len(prefix):11])
        return _replace_digits(value, synthetic_kz_number(prefix, serial))
    if not negative and kind == "CREDIT_CARD" and 13 <= len(digits) <= 19 and not is_valid_card(value):
        return _replace_digits(value, digits[:-1] + str(luhn_check_digit(digits[:-1])))
    if not negative and kind == "IBAN_CODE" and not is_valid_iban(value):
        compact = re.sub(r"\s", "", value).upper()
        if len(compact) > 4 and compact[:2].isalpha() and compact[2:4].isdigit():
            good = compact[:2] + iban_check_digits(compact[:2], compact[4:]) + compact[4:]
            return _replace_chars(value, good)
    if negative and kind in ("bad_checksum_12", "impossible_date_12") and len(digits) == 12:
        if kind == "impossible_date_12":
            check = iin_check_digit(digits[:11])
            if check is not None and str(check) != digits[11]:
                return _replace_digits(value, digits[:11] + str(check))
            return value
        for _ in range(9):  # at most one of the ten last digits is valid, for IIN and BIN each
            if not (is_valid_iin(digits) or is_valid_bin(digits)):
                break
            digits = digits[:11] + str((int(digits[11]) + 1) % 10)
        return _replace_digits(value, digits)
    if negative and kind == "bad_luhn" and 13 <= len(digits) <= 19 and is_valid_card(value):
        return _replace_digits(value, digits[:-1] + str((int(digits[-1]) + 3) % 10))
    if negative and kind == "bad_iban" and is_valid_iban(value):
        compact = re.sub(r"\s", "", value)
        bad = f"{(int(compact[2:4]) + 7) % 97 + 2:02d}"
        return _replace_chars(value, compact[:2] + bad + compact[4:])
    return value


def _replace_chars(value: str, compact: str) -> str:
    """``value`` with its non-space characters replaced, in order, by ``compact``."""
    it = iter(compact)
    return "".join(ch if ch.isspace() else next(it) for ch in value)


def fix_source(source: str) -> tuple[str, int]:
    """The source with check digits fixed, and how many values changed."""
    parsed = parse_source(source)
    edits: list[tuple[int, int, str]] = []
    for record in parsed.records:
        for mark in record.marks:
            value = source[mark.src_start:mark.src_end]
            if "[[" in value:  # an entity holding a negative: no checksum types do that
                continue
            new = fixed_value(mark.kind, mark.negative, value)
            if new != value:
                edits.append((mark.src_start, mark.src_end, new))
    for start, end, new in sorted(edits, reverse=True):
        source = source[:start] + new + source[end:]
    return source, len(edits)


# --- output -------------------------------------------------------------------------------------------

def build(source_path: Path = SOURCE) -> tuple[list[Record], list[Problem]]:
    parsed = parse_source(source_path.read_text(encoding="utf-8"))
    return parsed.records, check_corpus(parsed)


def dumps(records: list[Record]) -> str:
    return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)


def stats(records: list[Record]) -> str:
    """Counts for HELDOUT.md: records per language/script/genre, entities per type and language."""
    lines = [f"{len(records)} records, {sum(len(r.text) for r in records)} characters, "
             f"{sum(1 for r in records for m in r.marks if not m.negative)} entities, "
             f"{sum(1 for r in records for m in r.marks if m.negative)} marked hard negatives, "
             f"{sum(1 for r in records if not any(not m.negative for m in r.marks))} records without entities"]
    langs = Counter((r.lang, r.script) for r in records)
    lines.append("records per language/script: " + ", ".join(f"{k[0]}/{k[1]} {v}" for k, v in sorted(langs.items())))
    genres = Counter(r.genre for r in records)
    lines.append("records per genre: " + ", ".join(f"{k} {v}" for k, v in sorted(genres.items())))
    order = list(LANGS)
    per_type: dict[str, Counter] = {}
    for r in records:
        for m in r.marks:
            if not m.negative:
                per_type.setdefault(m.kind, Counter())[r.lang] += 1
    lines.append("")
    lines.append("| type | " + " | ".join(order) + " | all |")
    lines.append("|---|" + "---:|" * (len(order) + 1))
    for kind in sorted(per_type):
        c = per_type[kind]
        lines.append(f"| {kind} | " + " | ".join(str(c[lang]) for lang in order) + f" | {sum(c.values())} |")
    tags = Counter(m.kind for r in records for m in r.marks if m.negative)
    lines.append("")
    lines.append("hard negatives: " + ", ".join(f"{k} {v}" for k, v in sorted(tags.items())))
    return "\n".join(lines)


def iter_problems(problems: list[Problem], source: Path = SOURCE) -> Iterator[str]:
    for p in sorted(problems, key=lambda p: p.line):
        yield f"{source.name} {p}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qorgau.discovery.corpus.heldout_build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if the output is stale or a label is bad")
    group.add_argument("--fix", action="store_true", help="recompute check digits in the source, in place")
    group.add_argument("--stats", action="store_true", help="print counts per type, language and genre")
    args = parser.parse_args(argv)
    if args.fix:
        text = args.source.read_text(encoding="utf-8")
        fixed, changed = fix_source(text)
        if changed:
            args.source.write_text(fixed, encoding="utf-8", newline="\n")
        print(f"fixed {changed} check digit(s) in {args.source}")
        return 0
    records, problems = build(args.source)
    if problems:
        for message in iter_problems(problems, args.source):
            print(message, file=sys.stderr)
        print(f"{len(problems)} problem(s); nothing written", file=sys.stderr)
        return 1
    if args.stats:
        print(stats(records))
        return 0
    content = dumps(records)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != content:
            print(f"{args.out} is out of date; run python -m qorgau.discovery.corpus.heldout_build",
                  file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(records)} records)")
        return 0
    args.out.write_text(content, encoding="utf-8", newline="\n")
    print(f"wrote {len(records)} records to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
