"""ADDRESS: postal addresses in Kazakh, Russian and Latin-script writing.

An address is a chain of components separated only by commas and spaces: postal code (0xxxxx, 1[0-6]xxxx),
country, region (обл./облысы), district (р-н/ауданы), settlement (г./қ./қаласы/с./ауылы/city), street
(ул./пр./көшесі/даңғылы/st./ave.), microdistrict (мкр./шағын аудан), house (д./үй/bare number after a
street), block and apartment (кв./пәтер/apt.). The finding spans the whole chain; its score grows with
the number of distinct components. A chain needs a street or microdistrict, or a settlement with two
more components, or a house with an apartment: "г. Алматы" alone or a lone postal code is not an address.

Speed: one cheap regex finds marker words; the component regexes run only in windows around them, so
text without any address marker costs a single pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..types import Explanation, Finding
from . import fastre

LEXICON_DIR = Path(__file__).resolve().parent.parent / "lexicons"

_UP = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІ"
_W = r"[\w'’-]"
# Words are matched possessively (``*+``): what follows a word in every pattern is a space, ``\s`` or the end,
# which a word character never is, so giving characters back could not help a match; it only cost time
# each time a capitalised word was not followed by a marker.
_CAP = rf"[{_UP}0-9]{_W}*+"
_QUOTED = r"(?:«[^»\n]{1,40}»|\"[^\"\n]{1,40}\")"
# A street or place name: optional initial ("С. Сейфуллина"), one to three capitalised words, or a quoted name.
# Lowercase honorifics belong to the name: Тәуке хан, Қабанбай батыр, Төле би, Жібек жолы.
_HONORIFIC = (r"(?:хан|хана|батыр|батыра|би|жолы|ана|ата|бабы|жырау|ақын|шешен|датқа|han|khan|batyr|bi|jyrau|zhyrau"
              r"|joly|zholy|ata|ana)(?!\w)")
NAME = rf"(?:(?:[{_UP}]\.[ ]?)?(?:{_CAP}|{_QUOTED})(?:[ ](?:[{_UP}]{_W}*+|{_HONORIFIC})){{0,2}})"
NAME1 = rf"(?:[{_UP}]{_W}*+(?:[ ](?:[{_UP}]{_W}*+|{_HONORIFIC}))?)"
_NUM = r"\d{1,4}[А-Яа-яA-Za-z]?(?:/\d{1,4}[А-Яа-яA-Za-z]?)?"

# Marker words, as lists of regex alternatives: fastre.alternatives() groups them by first letter, so
# that re tests one character class per group instead of entering every word at every position.
_STREET_PRE_WORDS = [r"ул\.", r"ул(?=\s)", "улица", "улице", r"пр\.", r"пр-т\.?", r"пр-кт\.?", r"просп\.", "проспект",
                     r"пер\.", "переулок", r"бул\.", "бульвар", "б-р", r"наб\.", "набережная", r"пл\.", "площадь", r"ш\.",
                     "шоссе", "тракт", r"st\.", r"str\.", "street", r"ave\.", "avenue", "prospekt", "prospect", r"ul\."]
# Latin-script Kazakh spellings with and without the 2021 diacritics: köşesı/köshesi, dañğyly/dangyly.
_STREET_POST_WORDS = ["көшесі", r"көш\.", "к-сі", "даңғылы", r"даң\.", r"даңғ\.", "тұйығы", "бульвары", "алаңы", "тас жолы",
                      "street", r"st\.?", r"str\.?", "avenue", r"ave\.?", "boulevard", r"blvd\.?", "road", r"rd\.", "lane",
                      "prospekt", "prospect", "ulitsa", r"ул\.", "улица", "проспект", "пр-т", r"пр\.", "тракт", "tract",
                      "trakt", "highway", "köşesı", "köşesi", "köşes", "köshesi", "koshesi", "kóshesi", "kőshesi",
                      "dañğyly", "dangyly", "dańǵyly", "dañgyly", "daŋğyly", r"kosh\.", r"köş\."]
_MICRO_WORDS = [r"мкр\.?", r"мкрн\.?", "мкр-н", "м-н", "микрорайон", r"шағын\s+ауданы", r"шағын\s+аудан", r"ш\.\s?а\.",
                "microdistrict", r"mkr\.?", r"md\.", "ykshamaudany", "yqshamaudany", "ıqşamaudany", r"şağyn\s+audany",
                r"shagyn\s+audany", r"shağyn\s+audany"]
_CITY_PRE_WORDS = [r"(?-i:г\.)", r"(?-i:с\.)", r"(?-i:п\.)", r"(?-i:а\.)", r"(?-i:қ\.)", "город", r"гор\.", "село",
                   r"пос\.", "посёлок", "поселок", "ауыл", "аул", r"city\s+of", "village"]
_CITY_POST_WORDS = ["қаласы", r"(?-i:қ\.)", r"(?-i:Қ\.)", "ауылы", "кенті", "селосы", "city", "village", "qalasy", "kalasy",
                    r"(?-i:q\.)", "auyly", "aūyly", "auily"]
_STREET_PRE = fastre.alternatives(_STREET_PRE_WORDS)
_STREET_POST = fastre.alternatives(_STREET_POST_WORDS)
_MICRO = fastre.alternatives(_MICRO_WORDS)
_CITY_PRE = fastre.alternatives(_CITY_PRE_WORDS)
_CITY_POST = fastre.alternatives(_CITY_POST_WORDS)

_REGION_POST = fastre.alternatives([r"обл\.", "область", "облысы", "region", "oblysy", "oblast", "oblysı"])
_DISTRICT_POST = fastre.alternatives(["р-н", "р-на", "район", "ауданы", "district", "audany"])


def _word(alternatives: str) -> re.Pattern[str]:
    """A gate: one of the words as a whole word."""
    return fastre.compile(rf"(?<!\w){alternatives}(?!\w)")


# (kind, pattern, gate). A pattern that begins with a name or a number and ends with a marker word
# ("Абай даңғылы", "12 үй") is costly to try at every capitalised word or number of a window; its gate,
# a search for the marker word alone, is cheap, and a window without the word cannot hold a match
# (every match contains it, whole and preceded by a space; "үй"/"пәтер" may follow digits directly, so
# their gates do not ask for word boundaries).
_COMPONENTS: list[tuple[str, re.Pattern[str], re.Pattern[str] | None]] = [
    ("street", fastre.compile(rf"(?<!\w){_STREET_PRE}\s*{NAME}"), None),
    ("street", fastre.compile(rf"(?<!\w)(?:\d{{1,4}}[A-Za-z]?\s+)?{NAME}\s+{_STREET_POST}(?!\w)"), _word(_STREET_POST)),
    ("microdistrict", fastre.compile(rf"(?<!\w){_MICRO}\s*(?:{NAME}|\d{{1,3}}{_W}*)"), None),
    ("microdistrict", fastre.compile(rf"(?<!\w)(?:{NAME}|\d{{1,3}}{_W}*+)\s+{_MICRO}(?!\w)"), _word(_MICRO)),
    ("settlement", fastre.compile(rf"(?<!\w){_CITY_PRE}\s*{NAME1}"), None),
    ("settlement", fastre.compile(rf"(?<!\w){NAME1}\s+{_CITY_POST}(?!\w)"), _word(_CITY_POST)),
    ("region", fastre.compile(rf"(?<!\w){NAME1}\s+{_REGION_POST}(?!\w)"), _word(_REGION_POST)),
    ("region", fastre.compile(rf"(?<!\w)(?i:область)\s+{NAME1}"), None),
    ("district", fastre.compile(rf"(?<!\w){NAME1}\s+{_DISTRICT_POST}(?!\w)"), _word(_DISTRICT_POST)),
    ("district", fastre.compile(rf"(?<!\w)(?i:р-н|район)\s+{NAME1}"), None),
    ("house", fastre.compile(r"(?<!\w)" + fastre.alternatives([r"д\.", "дом", "үй", r"h\.", "house", r"bldg\.?", r"зд\.",
                                                               "здание", r"уч\.", "участок"]) + rf"\s*№?\s*{_NUM}(?!\d)"),
     None),
    ("house", fastre.compile(rf"(?<![\w/-]){_NUM}\s*-?\s*(?i:үй|үйі|üi|üy|üiı|üyi)(?!\w)"),
     fastre.compile(fastre.alternatives(["үй", "üi", "üy"]))),
    ("block", fastre.compile(r"(?<!\w)" + fastre.alternatives([r"корп\.", "корпус", "блок", r"стр\.", "строение", "block"])
                             + r"\s*\d{1,3}[A-Za-zА-Яа-я]?(?!\d)"), None),
    ("apartment", fastre.compile(r"(?<!\w)" + fastre.alternatives([r"кв\.", r"кв(?=\s)", "квартира", "пәтер", r"apt\.?", "päter",
                                                                   "apartment", r"оф\.", "офис", "office", "suite", "flat",
                                                                   r"каб\.", "кабинет"])
                                 + r"\s*№?\s*\d{1,4}[A-Za-zА-Яа-я]?(?!\d)"), None),
    ("apartment", fastre.compile(r"(?<![\w/-])\d{1,4}\s*-?\s*(?i:пәтер|пәтері|päter|pater|päterı)(?!\w)"),
     fastre.compile(fastre.alternatives(["пәтер", "päter", "pater"]))),
    ("postal code", fastre.compile(r"(?<![\d.,/-])(?:0\d|1[0-6])\d{4}(?![\d.,/-]\d|\d)"), None),
    ("country", fastre.compile(r"(?<!\w)" + fastre.alternatives(
        ["Республика Казахстан", "Қазақстан Республикасы", "Республики Казахстан", "Казахстан", "Қазақстан",
         "Republic of Kazakhstan", "Kazakhstan", "РК"], ignore_case=False) + r"(?!\w)"), None),
]
# Where address components may be: any marker word (street, settlement, region, house, flat …).
_MARKERS = fastre.compile(r"(?<!\w)" + fastre.alternatives(
    _STREET_PRE_WORDS + _STREET_POST_WORDS + _MICRO_WORDS + _CITY_PRE_WORDS + _CITY_POST_WORDS
    + [r"обл\.", "область", "облысы", "р-н", "район", "ауданы", "district", "дом", r"д\.", "үй", "house", r"кв\.",
       r"кв(?=\s)", "квартира", "пәтер", "apt", "apartment", "päter", "pater", "oblysy", "audany", "адрес", "мекенжай",
       "address", "mekenjai", "mekenzhai"]))
# The house number written after a street without "д.": "ул. Абая 10", "Abay ave. 10", "ул. Абая, 10-45".
_BARE_HOUSE = re.compile(rf"[ ,]{{0,3}}(?:№\s?)?{_NUM}(?:-\d{{1,4}})?(?![\w%.,]?\d)"
                         r"(?!\s*-?\s*(?:год|лет|жыл|млн|тыс|тг|₸|%|кг|км|м\b|мин|час|руб|чел|(?i:үй|пәтер|üi|üy|päter|pater)))")
# A street name with a house number and no marker word ("Алматы, Розыбакиева 247, кв 310", "ПАВЛОДАР
# ТОРАЙГЫРОВА 85-13", "некрасов 12 кв 3"): a candidate only; it counts as a street when a settlement comes right
# before it, a flat right after it, or an address label ("Адрес:", "мекенжай") right before it (see _chains).
_BARE_STREET = fastre.compile(
    rf"(?<![\w-])(?:[{_UP}]{_W}*+|[а-яәғқңөұүһіa-z]{{3,}}+)(?:[ ][{_UP}]{_W}*+)?[ ]+№?{_NUM}(?:-\d{{1,4}})?"
    r"(?![\w%.,]?\d)(?![\w/-])(?!\s*-?\s*(?:год|лет|жыл|млн|тыс|тг|₸|%|кг|км|м\b|мин|час|руб|чел|үй|пәтер|шт|сом))")
_NOT_STREET_WORDS = frozenset({"дом", "подъезд", "этаж", "корпус", "блок", "офис", "кабинет", "квартира", "код", "floor",
                               "entrance", "room", "apt", "house", "block", "office", "suite", "пәтер", "үй", "қабат",
                               "кіреберіс", "кв", "под", "эт", "каб", "заказ", "order", "номер", "тел", "year", "год"})
_ADDRESS_LABEL = re.compile(r"(?i:адрес\w*(?:\s+\w+)?|мекенжай\w*|mekenjai\w*|mekenzhai\w*|address(?:\s+\w+)?)"
                            r"[ \t]*[:\-–—]?[ \t]*\Z")
# Between two components: commas and spaces, or an entrance/floor note that sits inside a delivery address
# ("Райымбек даңғылы 221, 3 подъезд, 56 пәтер").
_GAP = re.compile(r"[ \t\u00a0,;:]{0,4}(?:(?:\d{1,2}\s*-?\s*(?:подъезд|под\.|этаж|эт\.|қабат|кіреберіс|floor|entrance)"
                  r"|(?:подъезд|этаж|floor|entrance)\s*\d{1,2})[ \t\u00a0,;:]{0,4})?\Z")
_WINDOW = 120
_STRONG = {"street", "microdistrict"}


def _read_list(name: str) -> list[str]:
    lines = (LEXICON_DIR / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


_CITY_RE: re.Pattern[str] | None = None


def _city_pattern() -> re.Pattern[str]:
    """Bare settlement names (Алматы, Almaty) join a chain but never start an address by themselves."""
    global _CITY_RE
    if _CITY_RE is None:
        # As written and in capitals (forms and registers write "ПАВЛОДАР", "ҚАРАҒАНДЫ").
        names = sorted({re.escape(n) for c in _read_list("cities.txt") for n in (c, c.upper())}, key=len, reverse=True)
        _CITY_RE = fastre.compile(r"(?<!\w)" + fastre.alternatives(names, ignore_case=False) + r"(?!\w)")
    return _CITY_RE


@dataclass(slots=True)
class _Part:
    kind: str
    start: int
    end: int


def _windows(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for m in _MARKERS.finditer(text):
        ws, we = max(0, m.start() - _WINDOW), min(len(text), m.end() + _WINDOW)
        if out and ws <= out[-1][1]:
            out[-1] = (out[-1][0], we)
        else:
            out.append((ws, we))
    return out


def _parts(text: str, ws: int, we: int) -> list[_Part]:
    """Non-overlapping components in one window, leftmost-longest (ties: in _COMPONENTS order)."""
    found: list[tuple[int, int, int, str, int]] = []  # (start, -length, order, kind, end): one sort, no key function
    order = 0
    for kind, rx, gate in (*_COMPONENTS, ("settlement", _city_pattern(), None)):
        if gate is not None and gate.search(text, ws, we) is None:
            continue
        search = rx.search  # a search loop: no iterator object per window and pattern (most find nothing)
        m = search(text, ws, we)
        while m is not None:
            start, end = m.span()  # never empty: every component needs a word or a number
            found.append((start, start - end, order, kind, end))
            order += 1
            m = search(text, end, we)
    found.sort()
    kept: list[_Part] = []
    last_end = -1
    for start, _, _, kind, end in found:
        if start >= last_end:
            kept.append(_Part(kind, start, end))
            last_end = end
    # Marker-less streets fill the gaps the components left (never take text from one).
    bare: list[_Part] = []
    m = _BARE_STREET.search(text, ws, we)
    while m is not None:
        start, end = m.span()
        clash = [p for p in kept if p.start < end and start < p.end]
        # A town's name is also a street's ("Абай 150/230"): followed by a house number, it is the street.
        if clash and not (len(clash) == 1 and clash[0].kind == "settlement" and clash[0].start == start):
            m = _BARE_STREET.search(text, start + 1, we)
            continue
        if clash:
            kept.remove(clash[0])
        bare.append(_Part("bare street", start, end))
        m = _BARE_STREET.search(text, end, we)
    if bare:
        kept = sorted(kept + bare, key=lambda p: p.start)
    return kept


def _bare_streets(text: str, parts: list[_Part]) -> list[_Part]:
    """Keep a "bare street" candidate only where an address surrounds it (settlement before, flat after, label
    before); it becomes a street and a house. Others are dropped."""
    out: list[_Part] = []
    for i, p in enumerate(parts):
        if p.kind != "bare street":
            out.append(p)
            continue
        word = text[p.start:p.end].split()[0].lower()
        if word in _NOT_STREET_WORDS:
            continue
        prev = out[-1] if out else None
        nxt = parts[i + 1] if i + 1 < len(parts) else None
        after_city = prev is not None and prev.kind == "settlement" and _GAP.match(text, prev.end, p.start) is not None
        before_flat = nxt is not None and nxt.kind == "apartment" and _GAP.match(text, p.end, nxt.start) is not None
        labelled = _ADDRESS_LABEL.search(text, max(0, p.start - 30), p.start) is not None
        if after_city or before_flat or labelled:
            number = p.start + len(text[p.start:p.end].rstrip("0123456789/-№АБВГДЕабвгдеABCDEabcde"))
            while number < p.end and not text[number].isdigit():
                number += 1
            out.append(_Part("street", p.start, len(text[p.start:number].rstrip()) + p.start))
            out.append(_Part("house", number, p.end))
    return out


def _chains(text: str, parts: list[_Part]) -> list[list[_Part]]:
    chains: list[list[_Part]] = []
    parts = _bare_streets(text, parts)
    for p in parts:
        if chains and chains[-1][-1].start <= p.start and p.end <= chains[-1][-1].end:
            continue  # the house number a street's bare-house look-ahead already took
        if chains and _GAP.match(text, chains[-1][-1].end, p.start) and chains[-1][-1].end <= p.start:
            chains[-1].append(p)
        else:
            chains.append([p])
        if p.kind in _STRONG:
            m = _BARE_HOUSE.match(text, p.end)
            if m and m.end() > p.end:
                chains[-1].append(_Part("house", p.end + len(m.group()) - len(m.group().lstrip(" ,")), m.end()))
    return chains


def _score(kinds: set[str]) -> float:
    """0 when the chain is not an address; otherwise grows with the number of distinct components."""
    n = len(kinds)
    if kinds & _STRONG:  # a street alone ("roadworks on Abay Avenue") is a place, not someone's address
        return 0.0 if n == 1 else min(0.95, 0.5 + 0.12 * (n - 1))
    if "settlement" in kinds and n >= 3:
        return min(0.9, 0.45 + 0.1 * n)
    if {"house", "apartment"} <= kinds:
        return 0.55 + 0.05 * (n - 2)
    return 0.0


class AddressRecognizer:
    """ADDRESS in kk/ru/en: chains of address components, scored by how many kinds they combine."""

    name = "address"
    entity_types = frozenset({"ADDRESS"})

    def __init__(self) -> None:
        _city_pattern()

    def find(self, text: str) -> Iterable[Finding]:
        findings: list[Finding] = []
        last_end = -1
        for ws, we in _windows(text):
            for chain in _chains(text, _parts(text, ws, we)):
                kinds = {p.kind for p in chain}
                score = _score(kinds)
                start, end = chain[0].start, chain[-1].end
                if score <= 0.0 or start < last_end:
                    continue
                while end > start and text[end - 1] in " ,;:":
                    end -= 1
                last_end = end
                order = tuple(dict.fromkeys(p.kind for p in chain))
                findings.append(Finding(
                    type="ADDRESS", start=start, end=end, score=score, recognizer=self.name,
                    explanation=Explanation(pattern="address components", base_score=score,
                                            notes=tuple(f"component: {k}" for k in order))))
        return findings
