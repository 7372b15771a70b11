"""Recognizers for structured identifiers: one small class per type, validators from ``qorgau.identifiers``.

Each class compiles its patterns once (module level) and looks only where its type can be: in the numeric
clusters the scanner finds once per text (:func:`numeric_clusters`), or after a cheap ``str`` check (no
``@`` → no e-mail). Scores and explanations come from a :class:`~.scoring.Scorer` bound once per kind of
match. Validators run only on candidates; a candidate that fails its checksum is not a finding at all (a
12-digit number with a bad checksum is not an IIN, whatever the context says). Scores follow
:mod:`.scoring`; the bases below are per class.

Digit boundaries: a candidate is never part of a longer run of digits (``(?<!\\d)`` … ``(?!\\d)``), and a
number directly followed by ``@`` belongs to an e-mail's local part, not to a phone or an IIN. Where a
pattern lets trailing groups in greedily (``4111 1111 1111 1111 2024``), the longest prefix of whole
groups that validates is reported.

Identifiers in this module (LEGAL.md § Identifiers): IIN/BIN ``YYMMDD C SSSS K``/``YYMM T A NNNNN K``
mod-11; mobile ``+7 7XX``; passport ``N`` + 8 digits; ID card 9 digits (context only); Luhn cards incl.
Mir 2200-2204 and Mastercard 2-series; IBAN mod-97; plates ``\\d{3}[A-Z]{2,3}\\d{2}`` (region 01-20).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from phonenumbers import PhoneMetadata

from ...identifiers import (
    IdentifierError,
    card_brand,
    classify_12_digits,
    is_valid_card,
    is_valid_iban,
    normalize_email,
    parse_phone,
)
from ..types import Finding, Recognizer, context_pattern
from .scoring import Context, Scorer, column_header

# A separator people put inside numbers: space, no-break space, dash, dot.
_SEP = r"[ \u00a0\-.]"
# Not preceded by a letter or digit (underscore is fine: ``scan_791028302728.pdf``).
_START = r"(?<![^\W_])"
# Not followed by a letter or digit, nor by ``@`` (then it is an e-mail's local part).
_END = r"(?![^\W_]|@)"


def _groups_shrinking(candidate: str, minimum: int) -> Iterator[str]:
    """``candidate``, then it without its last separated group, and so on while it has ``minimum`` chars."""
    while len(candidate) >= minimum:
        yield candidate
        cut = max(candidate.rfind(" "), candidate.rfind("-"), candidate.rfind("\u00a0"))
        if cut <= 0:
            return
        candidate = candidate[:cut].rstrip(" -\u00a0")


# --- the shared fast path ---------------------------------------------------------------------------

# A numeric cluster: a digit, then digits and the separators people put inside numbers. Every
# digit-based identifier starts inside one (a "+", "(", "N" or "KZ86" just before it is looked up
# by the recognizer). The pattern begins with a character class and no look-behind, so ``re`` skips
# non-digit text in C; one pass over the text serves all numeric recognizers.
_CLUSTER = re.compile(r"[0-9][0-9 \u00a0\-.()]*")

Span = tuple[int, int]


def numeric_clusters(text: str) -> list[Span]:
    """``(start, end)`` of every numeric cluster in ``text``; computed once per text by the scanner."""
    return [m.span() for m in _CLUSTER.finditer(text)]


class NumericRecognizer:
    """Base for recognizers whose matches start in a numeric cluster (see :func:`numeric_clusters`).

    ``find(text)`` works alone; the scanner calls ``find_in_clusters`` instead, with the clusters it
    computed once for all numeric recognizers. Subclasses look only at the clusters that can hold
    their type (a 12-digit IIN needs a cluster of at least 12 characters).
    """

    name: str
    entity_types: frozenset[str]

    def find(self, text: str) -> list[Finding]:
        return self.find_in_clusters(text, numeric_clusters(text))

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        raise NotImplementedError


def _matches_in(pattern: re.Pattern[str], text: str, clusters: list[Span], min_len: int,
                lead: int = 0) -> list[re.Match[str]]:
    """Matches of ``pattern`` in the clusters at least ``min_len`` long (``lead`` characters before each
    are included, for a ``+`` or ``(``). ``endpos`` is one past the cluster, so look-aheads see the
    character that ended it."""
    out: list[re.Match[str]] = []
    search = pattern.search  # a search loop: no iterator object per cluster (most hold one match or none)
    last = 0
    for start, end in clusters:
        if end - start >= min_len:
            m = search(text, max(last, start - lead), end + 1)
            while m is not None:
                last = m.end()  # never empty: every pattern here needs digits
                out.append(m)
                m = search(text, last, end + 1)
    return out


# --- KZ_IIN / KZ_BIN --------------------------------------------------------------------------------

_TWELVE = re.compile(r"(?<!\d)\d{12}(?![\d@])")
# An IIN/BIN written in groups, as forms and leak dumps print it: 6-3-3 or 6-6 (birth date, then the rest),
# with one space, no-break space or dash between groups. Only the checksum decides, as for 12 digits in a row.
_TWELVE_GROUPED = re.compile(r"(?<![\d\-.])\d{6}(?:([ \u00a0\-])\d{3}\1\d{3}|[ \u00a0\-]\d{6})"
                             r"(?![\d@]|[\-.]\d|[ \u00a0]\d)")
_NOT_DIGIT = re.compile(r"\D")


class KzIinBinRecognizer(NumericRecognizer):
    """KZ_IIN and KZ_BIN: a run of exactly 12 digits whose layout, date and mod-11 check digit hold.

    ``classify_12_digits`` tells the two apart by position 5 (day tens 0-3 vs entity type 4-6), so one
    pass serves both. Base 0.85 (random digits pass ≈ 1 in 5,000); ``ИИН``/``ЖСН``/``IIN``/``БИН``/``BIN``/
    ``БСН`` nearby adds 0.15. Letters directly before are allowed (``ИИН791028302728``).
    """

    name = "kz_iin_bin"
    entity_types = frozenset({"KZ_IIN", "KZ_BIN"})
    BASE = 0.85
    context = Context(["ИИН", "ЖСН", "IIN", "ИНН", "БИН", "БСН", "BIN", "ИИН/БИН", "идентификационный",
                       "сәйкестендіру"], boost=0.15)

    def __init__(self) -> None:
        self._scorers = {
            kind: Scorer(entity_type=kind, recognizer=self.name, pattern="12 digits", base=self.BASE,
                         context=self.context, validated=True, validator=validator)
            for kind, validator in (("KZ_IIN", "IIN checksum + birth date"), ("KZ_BIN", "BIN checksum + layout"))}

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        found: list[Finding] = []
        for m in _matches_in(_TWELVE, text, clusters, 12):
            kind = classify_12_digits(m.group())
            if kind is not None:
                found.append(self._scorers[kind](text, m.start(), m.end()))
        for m in _matches_in(_TWELVE_GROUPED, text, clusters, 13):
            kind = classify_12_digits(_NOT_DIGIT.sub("", m.group()))
            if kind is not None:
                found.append(self._scorers[kind](text, m.start(), m.end(), ("written in groups",)))
        return found


# --- PHONE_NUMBER -----------------------------------------------------------------------------------

# +7 / 8 then ten national digits: area code in parentheses (3, 4 or 5 digits) or plain, with single
# separators anywhere. Covers +7 701 234 56 78, 8 (701) 234-56-78, 87012345678, 8-701-234-56-78,
# +7 (7172) 12-34-56 and Russian numbers alike; parse_phone decides whether the range is assigned.
_PHONE_7 = (
    r"(?P<p7>(?:\+\s?7|8)" + _SEP + r"?(?:"
    r"\(\s?\d{3}\s?\)" + _SEP + r"?\d(?:" + _SEP + r"?\d){6}"
    r"|\(\s?\d{4}\s?\)" + _SEP + r"?\d(?:" + _SEP + r"?\d){5}"
    r"|\(\s?\d{5}\s?\)" + _SEP + r"?\d(?:" + _SEP + r"?\d){4}"
    r"|\d(?:" + _SEP + r"?\d){9}))"
)
# Other countries: + country code and 2-6 groups; the longest prefix that parses is kept.
_PHONE_INTL = r"(?P<intl>\+[1-689]\d{0,2}(?:" + _SEP + r"?\(?\d{1,4}\)?){2,6})"
# No prefix at all: (701) 234-56-78 or 701 234 56 78 — a Kazakh mobile range, reported only with context.
_PHONE_BARE = r"(?P<bare>\(?7\d{2}\)?" + _SEP + r"?\d{3}" + _SEP + r"?\d{2}" + _SEP + r"?\d{2})"
# 11 digits starting with 7 and no "+" (77012345678): how logs, URLs and leak bots store a KZ mobile.
# Reported only in a KZ mobile range; order numbers share the shape, so "заказ"/"order" nearby drops it.
_PHONE_COMPACT7 = r"(?P<c7>7\d{10})"
_PHONE = re.compile(_START + r"(?<!\+)(?:" + _PHONE_7 + "|" + _PHONE_INTL + "|" + _PHONE_BARE + "|" + _PHONE_COMPACT7
                    + ")" + _END)


class PhoneRecognizer(NumericRecognizer):
    """PHONE_NUMBER in every common Kazakh writing, plus Russian and other international numbers.

    Validation is libphonenumber's (``identifiers.parse_phone``): the number must be in an assigned
    range, so short service numbers (102, 112) and USSD codes (``*141#``) never match. Base 0.75 with
    a ``+7``/``8`` prefix, 0.65 for other countries, 0.35 for a bare ten-digit number (context needed);
    ``тел``/``телефон``/``моб``/``нөмір``/``phone``/``tel`` nearby adds 0.2.
    """

    name = "phone"
    entity_types = frozenset({"PHONE_NUMBER"})
    BASE = {"p7": 0.75, "intl": 0.65, "bare": 0.35, "c7": 0.6}
    _WORDS = ["тел", "моб", "сот", "нөмір", "нөмері", "ұялы", "байланыс", "phone", "tel", "mobile", "msisdn",
              "cell", "whatsapp", "contact", "контакт", "звон", "позвон", "факс", "fax"]
    context = Context(_WORDS, boost=0.2)
    # The compact 7XXXXXXXXXX form is also how order, invoice and account numbers look.
    context_compact = Context(_WORDS, boost=0.2, negative=[
        "заказ", "order", "invoice", "накладн", "счет", "счёт", "договор", "contract", "трек", "tracking", "track",
        "тапсырыс", "шот", "шарт", "полис", "policy", "артикул", "sku", "лицев", "account", "ticket", "заявк"],
        penalty=0.4)

    def __init__(self) -> None:
        self._scorers = {
            group: Scorer(entity_type="PHONE_NUMBER", recognizer=self.name, pattern=f"phone:{group}", base=base,
                          context=self.context_compact if group == "c7" else self.context, validated=True,
                          validator="libphonenumber range")
            for group, base in self.BASE.items()}

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        found: list[Finding] = []
        for m in _matches_in(_PHONE, text, clusters, 10, lead=2):
            group = m.lastgroup or "p7"
            start = m.start()
            for candidate in _groups_shrinking(m.group(), 8) if group == "intl" else (m.group(),):
                if group == "c7":  # a KZ mobile written without "+": nothing else in this shape is a phone
                    kind = "KZ mobile" if _phone_kind("+" + candidate) == "KZ mobile" else None
                else:
                    kind = _phone_kind(candidate)
                if kind is None:
                    continue
                found.append(self._scorers[group](text, start, start + len(candidate), (kind,)))
                break
        return found


# Kazakh mobile ranges (LEGAL.md § Identifiers, the same ranges libphonenumber assigns to KZ mobiles) and
# landline ranges (read from libphonenumber's own KZ metadata, so they cannot drift): checked without a
# full libphonenumber parse, which costs ~0.1 ms a number. The two sets are disjoint (71x/72x vs
# 70x/747/76x/77x/785), so neither is "landline or mobile"; tests hold both to libphonenumber's answer.
_KZ_MOBILE = re.compile(r"7(?:0[0-25-8]|47|6[0-4]|7[15-8]|85)\d{7}")
_KZ_LANDLINE = re.compile(PhoneMetadata.metadata_for_region("KZ").fixed_line.national_number_pattern)
_NOT_DIGITS = re.compile(r"\D+")


def _phone_kind(candidate: str) -> str | None:
    """``"KZ mobile"``-style note if ``candidate`` is an assigned phone number, else None."""
    digits = _NOT_DIGITS.sub("", candidate)
    if len(digits) == 11 and (digits[0] == "7" if candidate[0] == "+" else digits[0] == "8"):
        if _KZ_MOBILE.fullmatch(digits, 1):
            return "KZ mobile"
        if _KZ_LANDLINE.fullmatch(digits, 1):
            return "KZ landline"
    try:
        phone = parse_phone(candidate.replace("\u00a0", " "))
    except IdentifierError:
        return None
    return f"{phone.country} {phone.kind}"


# --- EMAIL_ADDRESS ----------------------------------------------------------------------------------

_LOCAL_CHARS = r"\w.!#$%&'*+/=?^`{|}~\-"
# The local part ends right at the @ (``\Z`` matches at ``endpos``) and is at most 64 characters.
_EMAIL_LOCAL = re.compile(r"(?<![" + _LOCAL_CHARS + r"])[" + _LOCAL_CHARS + r"]{1,64}\Z")
_EMAIL_DOMAIN = re.compile(r"[\w\-]+(?:\.[\w\-]+)+")
# ``login=user@example.kz``, ``user=…``, ``email=…`` in logs and URLs: the key and "=" are not part of the
# address (an "=" is legal in a local part, but a local part that starts with a bare key word and "=" is a
# key=value pair in practice).
_KEY_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,30}=")


class EmailRecognizer:
    """EMAIL_ADDRESS: any domain with at least two labels (``@gov.kz``, ``@mail.almaty.kz``), Cyrillic
    local parts and domains (``мвд.қаз``) when ``identifiers.normalize_email`` accepts them. Base 0.9,
    context (``email``, ``почта``, ``пошта``) adds 0.1. The text is only searched from each ``@``
    (``str.find``), so text without one costs a single scan in C.
    """

    name = "email"
    entity_types = frozenset({"EMAIL_ADDRESS"})
    BASE = 0.9
    context = Context(["email", "e-mail", "mail", "почт", "пошта", "эл. адрес", "электрон"], boost=0.1)

    def __init__(self) -> None:
        self._scorer = Scorer(entity_type="EMAIL_ADDRESS", recognizer=self.name, pattern="email", base=self.BASE,
                              context=self.context, validated=True, validator="RFC 5322 dot-atom + IDNA")

    def find(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        floor = 0
        at = text.find("@")
        while at != -1:
            local = _EMAIL_LOCAL.search(text, max(floor, at - 64), at)
            domain = _EMAIL_DOMAIN.match(text, at + 1) if local is not None else None
            if local is not None and domain is not None:
                start, end = local.start(), domain.end()
                key = _KEY_PREFIX.match(text, start, at)
                if key is not None and key.end() < at:
                    start = key.end()
                if _is_email(text[start:end]):
                    found.append(self._scorer(text, start, end))
                    floor = end
            at = text.find("@", at + 1)
        return found


def _is_email(candidate: str) -> bool:
    try:
        normalize_email(candidate)
    except IdentifierError:
        return False
    return True


# --- IBAN_CODE --------------------------------------------------------------------------------------

_IBAN = re.compile(r"(?<![^\W_])[A-Z]{2}\d{2}(?:(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?|[A-Z0-9]{11,30})"
                   r"(?![^\W_])")


class IbanRecognizer(NumericRecognizer):
    """IBAN_CODE, Kazakh (``KZ`` + 18, 20 characters) and every other country schwifty knows, compact or
    printed in groups of four; mod-97 and the country's layout via ``identifiers.is_valid_iban``.
    Base 0.9; ``IBAN``/``ИИК``/``счёт``/``шот``/``account`` nearby adds 0.1."""

    name = "iban"
    entity_types = frozenset({"IBAN_CODE"})
    BASE = 0.9
    context = Context(["IBAN", "ИИК", "ИИК/IBAN", "счет", "счёт", "р/с", "шот", "account", "реквизит",
                       "банк", "bank"], boost=0.1)

    def __init__(self) -> None:
        self._scorer = Scorer(entity_type="IBAN_CODE", recognizer=self.name, pattern="iban", base=self.BASE,
                              context=self.context, validated=True, validator="mod-97 + country layout")

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        found: list[Finding] = []
        for m in _iban_candidates(text, clusters):
            start = m.start()
            for candidate in _groups_shrinking(m.group(), 15):
                if _is_iban(candidate):
                    found.append(self._scorer(text, start, start + len(candidate)))
                    break
        return found


def _iban_candidates(text: str, clusters: list[Span]) -> list[re.Match[str]]:
    """IBAN-shaped matches starting two capital letters before a cluster (``KZ`` + ``86…``)."""
    out: list[re.Match[str]] = []
    done = 0
    for start, _ in clusters:
        if start < done + 2 or start < 2:
            continue
        a, b = text[start - 2], text[start - 1]
        if "A" <= a <= "Z" and "A" <= b <= "Z":
            m = _IBAN.match(text, start - 2)
            if m is not None:
                done = m.end()
                out.append(m)
    return out


def _is_iban(candidate: str) -> bool:
    """``identifiers.is_valid_iban``, with the Kazakh layout (``KZ`` 2!n 3!n 13!c, mod-97) checked here
    first: schwifty costs ~0.1 ms a call, and KZ IBANs are most of what a Kazakh scan sees."""
    compact = candidate.replace(" ", "")
    if compact.startswith("KZ"):
        # Check digits are 02-98 (ISO 13616 computes 98 - n mod 97); 00, 01 and 99 pass mod-97 but are never issued.
        return (len(compact) == 20 and compact[2:7].isdigit() and compact.isalnum() and compact.isascii()
                and "02" <= compact[2:4] <= "98" and _mod97(compact) == 1)
    return is_valid_iban(compact)


# Letters as the numbers 10-35 (int(ch, 36)), for str.translate: one C call instead of one per character.
_LETTER_VALUES = str.maketrans({ch: str(int(ch, 36)) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"})


def _mod97(compact: str) -> int:
    """ISO 7064 mod-97-10 of an IBAN (first four characters moved to the end, letters as 10-35)."""
    rearranged = compact[4:] + compact[:4]
    return int(rearranged.translate(_LETTER_VALUES)) % 97


# --- CREDIT_CARD ------------------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\d\-])(?:\d{4}(?:[ \-\u00a0]\d{4}){2,3}(?:[ \-\u00a0]\d{1,4})?"
                   r"|\d{4}[ \-\u00a0]\d{6}[ \-\u00a0]\d{4,5}|\d{13,19})(?![\d@])")
_SEPARATORS = str.maketrans("", "", " -\u00a0")


class CardRecognizer(NumericRecognizer):
    """CREDIT_CARD: 13-19 digits, compact or in groups, passing Luhn. A known brand's range (Visa,
    Mastercard incl. the 2-series 2221-2720, Mir 2200-2204, UnionPay, Amex …) starts at 0.7, an unknown
    one at 0.4 (one random number in ten passes Luhn); ``карта``/``card``/``карточка`` adds 0.25."""

    name = "credit_card"
    entity_types = frozenset({"CREDIT_CARD"})
    BASE_KNOWN = 0.7
    BASE_UNKNOWN = 0.4
    context = Context(["карт", "card", "visa", "mastercard", "kaspi", "halyk", "кредитк", "дебет", "pan"],
                      boost=0.25)

    def __init__(self) -> None:
        self._known, self._unknown = (
            Scorer(entity_type="CREDIT_CARD", recognizer=self.name, pattern="card", base=base, context=self.context,
                   validated=True, validator="Luhn") for base in (self.BASE_KNOWN, self.BASE_UNKNOWN))

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        found: list[Finding] = []
        for m in _matches_in(_CARD, text, clusters, 13):
            start = m.start()
            for candidate in _groups_shrinking(m.group(), 13):
                digits = candidate.translate(_SEPARATORS)
                if not is_valid_card(digits):
                    continue
                brand = card_brand(digits)
                scorer = self._unknown if brand == "unknown" else self._known
                found.append(scorer(text, start, start + len(candidate), (f"brand {brand}",)))
                break
        return found


# --- KZ_PASSPORT / KZ_ID_CARD -----------------------------------------------------------------------

# Latin N or the look-alike Cyrillic EN, either case, one optional space, eight digits.
_PASSPORT = re.compile(_START + r"[NnНн] ?\d{8}(?![\d@])")


class PassportRecognizer(NumericRecognizer):
    """KZ_PASSPORT: ``N`` + 8 digits (Latin or Cyrillic letter). No check digit exists, so base 0.6;
    ``паспорт``/``passport``/``төлқұжат`` nearby adds 0.3."""

    name = "kz_passport"
    entity_types = frozenset({"KZ_PASSPORT"})
    BASE = 0.6
    context = Context(["паспорт", "passport", "төлқұжат", "документ", "құжат", "document"], boost=0.3)

    def __init__(self) -> None:
        self._scorer = Scorer(entity_type="KZ_PASSPORT", recognizer=self.name, pattern="N + 8 digits", base=self.BASE,
                              context=self.context, validated=None, validator=None)

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        return [self._scorer(text, m.start(), m.end()) for m in _passport_candidates(text, clusters)]


_PASSPORT_LETTERS = frozenset("NnНн")


def _passport_candidates(text: str, clusters: list[Span]) -> list[re.Match[str]]:
    """Passport matches: a cluster of 8+ characters right after ``N`` or ``N ``."""
    out: list[re.Match[str]] = []
    for start, end in [c for c in clusters if c[1] - c[0] >= 8 and c[0] >= 1]:
        lead = start - 1
        if text[lead] == " " and lead > 0:
            lead -= 1
        if text[lead] in _PASSPORT_LETTERS:
            m = _PASSPORT.match(text, lead, end + 1)
            if m is not None:
                out.append(m)
    return out


_NINE = re.compile(_START + r"\d{9}" + _END)


class IdCardRecognizer(NumericRecognizer):
    """KZ_ID_CARD: 9 digits, reported ONLY next to a context word (``удостоверение``, ``уд. личности``,
    ``жеке куәлік``, ``ID card``, ``ID-карта`` …): nine digits alone are amounts, order numbers, phone
    tails. With context the score is 0.8; without, there is no finding."""

    name = "kz_id_card"
    entity_types = frozenset({"KZ_ID_CARD"})
    BASE = 0.4
    context = Context(["удостоверени", "уд. личн", "уд.личн", "уд.л", "удв", "жеке куәлі", "жеке куәлігі",
                       "куәлік", "id card", "id-card", "idcard", "id карт", "id-карт", "identity card",
                       "national id", "identification card", "udostoveren", "udostovereni", "ud. lichn",
                       "jeke kuäl", "jeke kual", "zheke kual", "zheke kuel", "jeke kuel", "kuälık", "kualik",
                       "id karta", "id_card", "id karty"], boost=0.4)
    # "an ID card in the name of Yerzhan Toleubayev (045671234)": the number often comes after a description
    # of whose card it is, farther than the usual context window; same line, this many characters back.
    LONG_LOOKBACK = 90

    # The label right before a number names it: "employee number 123456789" is not an ID card even
    # when "ID card" appears a few words away.
    LABEL_WINDOW = 25
    other_labels = context_pattern(["employee", "табельн", "order", "заказ", "invoice", "счёт", "счет",
                                    "договор", "contract", "ticket", "заявк", "tracking", "трек", "артикул",
                                    "sku", "лицев", "account", "тапсырыс", "шарт"])

    def __init__(self) -> None:
        self._scorer = Scorer(entity_type="KZ_ID_CARD", recognizer=self.name, pattern="9 digits", base=self.BASE,
                              context=self.context, validated=None, validator=None)

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        found: list[Finding] = []
        for m in _matches_in(_NINE, text, clusters, 9):
            finding = self._scorer.with_context(text, m.start(), m.end())
            if finding is None:
                finding = self._far_context(text, m.start(), m.end())
            if finding is not None and not self._labelled_otherwise(text, m.start()):
                found.append(finding)
        return found

    def _far_context(self, text: str, start: int, end: int) -> Finding | None:
        """A context word farther back on the same line, with no other number between it and this one."""
        line = text.rfind("\n", 0, start) + 1
        lo = max(line, start - self.LONG_LOOKBACK)
        words = [m for m in self.context._positive.finditer(text, lo, start)]  # type: ignore[union-attr]
        if not words or any(ch.isdigit() for ch in text[words[-1].end():start]):
            return None
        return self._scorer._finding(text, start, end, (words[-1].group().lower(),), ("context earlier on the line",))

    def _labelled_otherwise(self, text: str, start: int) -> bool:
        window = max(0, start - self.LABEL_WINDOW)
        other = [m.end() for m in self.other_labels.finditer(text, window, start)]
        if not other:
            return False
        own = [m.end() for m in self.context._positive.finditer(text, window, start)]  # type: ignore[union-attr]
        return max(other) > max(own, default=-1)


# --- IP_ADDRESS -------------------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
# An IPv6 address has at least two colons; seed on ":" + up to 4 hex + ":" (a literal first character
# lets re skip ahead fast) and grow the candidate to both sides.
_IPV6_SEED = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_RIGHT = re.compile(r"(?:[0-9A-Fa-f]{0,4}:)*(?:\d{1,3}(?:\.\d{1,3}){3}(?![\d.])|[0-9A-Fa-f]{0,4})")
_HEX_OR_COLON = frozenset("0123456789abcdefABCDEF:")


class IpAddressRecognizer(NumericRecognizer):
    """IP_ADDRESS: IPv4 with octets 0-255 (no leading zeros) and IPv6 as ``ipaddress`` parses it.
    Base 0.6 (IPv4) / 0.7 (IPv6); ``IP``/``адрес``/``host`` nearby adds 0.3, ``version``/``версия``
    takes 0.3 off (a dotted quad is often a version number)."""

    name = "ip_address"
    entity_types = frozenset({"IP_ADDRESS"})
    BASE_V4 = 0.6
    BASE_V6 = 0.7
    context = Context(["ip", "айпи", "хост", "host", "сервер", "server", "client", "клиент", "адрес", "address",
                       "подключ", "login", "вход"], boost=0.3,
                      negative=["version", "версия", "версии", "нұсқа", "ver.", "v.", "сборка", "build"], penalty=0.3)

    def __init__(self) -> None:
        self._v4 = Scorer(entity_type="IP_ADDRESS", recognizer=self.name, pattern="ipv4", base=self.BASE_V4,
                          context=self.context, validated=True, validator="octets 0-255")
        self._v6 = Scorer(entity_type="IP_ADDRESS", recognizer=self.name, pattern="ipv6", base=self.BASE_V6,
                          context=self.context, validated=True, validator="ipaddress.IPv6Address")

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        found: list[Finding] = []
        dotted = [c for c in clusters if c[1] - c[0] >= 7 and text.find(".", c[0], c[1]) != -1]
        for m in _matches_in(_IPV4, text, dotted, 7):
            if _octets_ok(m.group()):
                found.append(self._v4(text, m.start(), m.end()))
        if "::" in text or text.count(":") >= 2:
            found += self._find_v6(text)
        return found

    def _find_v6(self, text: str) -> Iterator[Finding]:
        done = 0
        for seed in _IPV6_SEED.finditer(text):
            if seed.start() < done:
                continue
            start = seed.start()
            while start > done and text[start - 1] in _HEX_OR_COLON:
                start -= 1
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            m = _IPV6_RIGHT.match(text, start)
            end = m.end() if m else seed.end()
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                continue
            done = end
            try:
                ipaddress.IPv6Address(text[start:end])
            except ValueError:
                continue
            yield self._v6(text, start, end)


def _octets_ok(dotted: str) -> bool:
    for octet in dotted.split("."):
        if len(octet) > 1 and octet[0] == "0":
            return False
        if int(octet) > 255:
            return False
    return True


# --- KZ_VEHICLE_PLATE -------------------------------------------------------------------------------

_PLATE = re.compile(_START + r"\d{3} ?[A-Z]{2,3} ?(\d{2})" + _END)


class VehiclePlateRecognizer(NumericRecognizer):
    """KZ_VEHICLE_PLATE: ``123 ABC 02`` (three digits, two or three Latin letters, region 01-20).
    Plenty of codes share that shape, so the base is 0.35 and only ``госномер``/``гос. номер``/
    ``plate``/``автомобиль``/``көлік`` (+0.45) lifts it over the default threshold."""

    name = "kz_vehicle_plate"
    entity_types = frozenset({"KZ_VEHICLE_PLATE"})
    BASE = 0.35
    context = Context(["госномер", "гос. номер", "гос.номер", "гос номер", "г/н", "номер авто", "plate",
                       "автомоб", "авто", "машин", "көлік", "мемлекеттік нөмір", "vehicle", "car", "parking",
                       "парков", "тұрақ", "пропуск на въезд", "въезд", "entry permit", "kölık", "kölik", "kolik",
                       "memlekettık nömır", "avto", "mashina", "gos nomer", "gosnomer", "номер_авто"],
                      boost=0.45)

    def __init__(self) -> None:
        self._scorer = Scorer(entity_type="KZ_VEHICLE_PLATE", recognizer=self.name, pattern="plate", base=self.BASE,
                              context=self.context, validated=True, validator="region 01-20")

    def find_in_clusters(self, text: str, clusters: list[Span]) -> list[Finding]:
        found = []
        size = len(text)
        # Every plate holds a 3-4 character cluster (three digits, maybe a space) followed by a capital letter.
        short = [(start, end) for start, end in clusters if end - start <= 4 and end < size and "A" <= text[end] <= "Z"]
        if not short:
            return found
        for m, note in [*((m, "") for m in _plate_candidates(text, short) if 1 <= int(m.group(1)) <= 20),
                        *((m, "pre-2012 format") for m in _old_plate_candidates(text, short))]:
            notes = (note,) if note else ()
            finding = self._scorer(text, m.start(), m.end(), notes)
            if finding.score < 0.5:  # no context word nearby: a table column named "plate"/"госномер" will do
                header = column_header(text, m.start())
                if header and self.context.words_near(header, 0, 0):
                    finding = self._scorer._finding(text, m.start(), m.end(), ("column: " + header,), notes)
            found.append(finding)
        return found


# Plates issued before 2012: a region letter (A Almaty, B Almaty region, C Akmola … Z Astana), three digits,
# two or three letters: "B 441 CFM", "A123BCD". Same low base: context decides.
_OLD_PLATE = re.compile(r"(?<![^\W_])[A-HKLMNPRSTXZ] ?\d{3} ?[A-Z]{2,3}" + _END)


def _old_plate_candidates(text: str, short: list[Span]) -> list[re.Match[str]]:
    """Old-format plates: a short cluster (see find_in_clusters) right after a capital letter (and a space)."""
    out = []
    for start, _ in short:
        if start < 1:
            continue
        lead = start - 2 if text[start - 1] == " " and start >= 2 else start - 1
        if "A" <= text[lead] <= "Z":
            m = _OLD_PLATE.match(text, lead)
            if m is not None:
                out.append(m)
    return out


def _plate_candidates(text: str, short: list[Span]) -> list[re.Match[str]]:
    """Plate matches starting at a short cluster (see find_in_clusters)."""
    match = _PLATE.match
    return [m for m in (match(text, start) for start, _ in short) if m is not None]


def structured_recognizers() -> list[Recognizer]:
    """One instance of every structured recognizer, in a fixed order."""
    return [KzIinBinRecognizer(), PhoneRecognizer(), EmailRecognizer(), IbanRecognizer(), CardRecognizer(),
            PassportRecognizer(), IdCardRecognizer(), IpAddressRecognizer(), VehiclePlateRecognizer()]
