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

LEXICON_DIR = Path(__file__).resolve().parent.parent / "lexicons"

_UP = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІ"
_W = r"[\w'’-]"
_CAP = rf"[{_UP}0-9]{_W}*"
_QUOTED = r"(?:«[^»\n]{1,40}»|\"[^\"\n]{1,40}\")"
# A street or place name: optional initial ("С. Сейфуллина"), one to three capitalised words, or a quoted name.
# Lowercase honorifics belong to the name: Тәуке хан, Қабанбай батыр, Төле би, Жібек жолы.
_HONORIFIC = r"(?:хан|хана|батыр|батыра|би|жолы|ана|ата|бабы)(?!\w)"
NAME = rf"(?:(?:[{_UP}]\.[ ]?)?(?:{_CAP}|{_QUOTED})(?:[ ](?:[{_UP}]{_W}*|{_HONORIFIC})){{0,2}})"
NAME1 = rf"(?:[{_UP}]{_W}*(?:[ ][{_UP}]{_W}*)?)"
_NUM = r"\d{1,4}[А-Яа-яA-Za-z]?(?:/\d{1,4}[А-Яа-яA-Za-z]?)?"

_STREET_PRE = (r"ул\.|ул(?=\s)|улица|улице|пр\.|пр-т\.?|пр-кт\.?|просп\.|проспект|пер\.|переулок|бул\.|бульвар|б-р"
               r"|наб\.|набережная|пл\.|площадь|ш\.|шоссе|тракт|st\.|str\.|street|ave\.|avenue|prospekt|prospect")
_STREET_POST = (r"көшесі|көш\.|даңғылы|даң\.|даңғ\.|тұйығы|бульвары|алаңы|street|st\.?|str\.?|avenue|ave\.?|boulevard"
                r"|blvd\.?|road|rd\.|lane|prospekt|prospect|ulitsa|ул\.|улица|проспект|пр-т|пр\.")
_MICRO = r"мкр\.?|мкрн\.?|мкр-н|м-н|микрорайон|шағын\s+ауданы|шағын\s+аудан|ш\.\s?а\.|microdistrict|mkr\.?|md\."
_CITY_PRE = r"(?-i:г\.|с\.|п\.|а\.|қ\.)|город|гор\.|село|пос\.|посёлок|поселок|ауыл|аул|city\s+of|village"
_CITY_POST = r"қаласы|(?-i:қ\.)|ауылы|кенті|селосы|city|village"

_COMPONENTS: list[tuple[str, re.Pattern[str]]] = [
    ("street", re.compile(rf"(?<!\w)(?i:{_STREET_PRE})\s*{NAME}")),
    ("street", re.compile(rf"(?<!\w)(?:\d{{1,4}}[A-Za-z]?\s+)?{NAME}\s+(?i:{_STREET_POST})(?!\w)")),
    ("microdistrict", re.compile(rf"(?<!\w)(?i:{_MICRO})\s*(?:{NAME}|\d{{1,3}}{_W}*)")),
    ("microdistrict", re.compile(rf"(?<!\w)(?:{NAME}|\d{{1,3}}{_W}*)\s+(?i:{_MICRO})(?!\w)")),
    ("settlement", re.compile(rf"(?<!\w)(?i:{_CITY_PRE})\s*{NAME1}")),
    ("settlement", re.compile(rf"(?<!\w){NAME1}\s+(?i:{_CITY_POST})(?!\w)")),
    ("region", re.compile(rf"(?<!\w){NAME1}\s+(?i:обл\.|область|облысы|region|oblysy|oblast)(?!\w)")),
    ("region", re.compile(rf"(?<!\w)(?i:область)\s+{NAME1}")),
    ("district", re.compile(rf"(?<!\w){NAME1}\s+(?i:р-н|р-на|район|ауданы|district|audany)(?!\w)")),
    ("district", re.compile(rf"(?<!\w)(?i:р-н|район)\s+{NAME1}")),
    ("house", re.compile(rf"(?<!\w)(?i:д\.|дом|үй|h\.|house|bldg\.?|зд\.|здание|уч\.|участок)\s*№?\s*{_NUM}(?!\d)")),
    ("house", re.compile(rf"(?<![\w/-]){_NUM}\s*-?\s*(?i:үй|үйі)(?!\w)")),
    ("block", re.compile(rf"(?<!\w)(?i:корп\.|корпус|блок|стр\.|строение|block)\s*\d{{1,3}}[A-Za-zА-Яа-я]?(?!\d)")),
    ("apartment", re.compile(rf"(?<!\w)(?i:кв\.|кв(?=\s)|квартира|пәтер|apt\.?|apartment|оф\.|офис|office|suite|flat"
                             rf"|каб\.|кабинет)\s*№?\s*\d{{1,4}}[A-Za-zА-Яа-я]?(?!\d)")),
    ("apartment", re.compile(r"(?<![\w/-])\d{1,4}\s*-?\s*(?i:пәтер|пәтері)(?!\w)")),
    ("postal code", re.compile(r"(?<![\d.,/-])(?:0\d|1[0-6])\d{4}(?![\d.,/-]\d|\d)")),
    ("country", re.compile(r"(?<!\w)(?:Республика Казахстан|Қазақстан Республикасы|Республики Казахстан|Казахстан"
                           r"|Қазақстан|Republic of Kazakhstan|Kazakhstan|РК)(?!\w)")),
]
_MARKERS = re.compile(  # first-letter lookahead: most positions fail on one character test (hot loop)
    rf"(?=(?i:[абгдкмнопрстуүшқlpsabcdhmrluv]))(?<!\w)(?i:{_STREET_PRE}|{_STREET_POST}|{_MICRO}|{_CITY_PRE}|{_CITY_POST}|обл\.|область|облысы|oblysy"
    rf"|р-н|район|ауданы|district|дом|д\.|үй|house|кв\.|кв(?=\s)|квартира|пәтер|apt|apartment)")
# The house number written after a street without "д.": "ул. Абая 10", "Abay ave. 10", "ул. Абая, 10-45".
_BARE_HOUSE = re.compile(rf"[ ,]{{0,3}}(?:№\s?)?{_NUM}(?:-\d{{1,4}})?(?![\w%.,]?\d)"
                         r"(?!\s*-?\s*(?:год|лет|жыл|млн|тыс|тг|₸|%|кг|км|м\b|мин|час|руб|чел|үй|пәтер))")
_GAP = re.compile(r"[ \t\u00a0,;:]{0,4}\Z")
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
        names = sorted({re.escape(c) for c in _read_list("cities.txt")}, key=len, reverse=True)
        _CITY_RE = re.compile(r"(?<!\w)(?:" + "|".join(names) + r")(?!\w)")
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
    """Non-overlapping components in one window, leftmost-longest."""
    found = [_Part(kind, m.start(), m.end()) for kind, rx in _COMPONENTS for m in rx.finditer(text, ws, we)]
    found += [_Part("settlement", m.start(), m.end()) for m in _city_pattern().finditer(text, ws, we)]
    found.sort(key=lambda p: (p.start, -(p.end - p.start)))
    kept: list[_Part] = []
    for p in found:
        if kept and p.start < kept[-1].end:
            continue
        kept.append(p)
    return kept


def _chains(text: str, parts: list[_Part]) -> list[list[_Part]]:
    chains: list[list[_Part]] = []
    for p in parts:
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
