"""DATE_OF_BIRTH: a real, plausible calendar date written next to words that say it is a birth date.

Dates are read in numeric (12.03.1985, 12/03/1985, 1985-03-12), Russian ("12 марта 1985 г."), Kazakh
("1985 жылғы 12 наурыз", "12 наурыз 1985 ж.") and English ("March 12, 1985", "12 March 1985") forms.
A date is a birth date only if the nearest date-describing words before it are birth words (дата рождения,
д.р., туған күні, born, DOB …) with no other date in between, or if a birth marker follows it directly
("1985 г.р.", "жылы туған"). Contract dates, "дата выдачи" and deadlines are not findings. The year must
be 1900..today and the date not in the future. The span covers the date as written (with "г."/"года"/
"ж." after the year when present), never the context words.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from ..types import Explanation, Finding

_RU_MONTHS = {"январ": 1, "феврал": 2, "март": 3, "апрел": 4, "ма": 5, "июн": 6, "июл": 7, "август": 8,
              "сентябр": 9, "октябр": 10, "ноябр": 11, "декабр": 12}
_KK_MONTHS = {"қаңтар": 1, "ақпан": 2, "наурыз": 3, "сәуір": 4, "мамыр": 5, "маусым": 6, "шілде": 7,
              "тамыз": 8, "қыркүйек": 9, "қазан": 10, "қараша": 11, "желтоқсан": 12}
_EN_MONTHS = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
              "oct": 10, "nov": 11, "dec": 12}

_RU_MONTH_RE = r"(?:января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря)"
_KK_MONTH_RE = r"(?:қаңтар|ақпан|наурыз|сәуір|мамыр|маусым|шілде|тамыз|қыркүйек|қазан|қараша|желтоқсан)"
_EN_MONTH_RE = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
                r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?")
_YEAR_WORD = r"(?:\s?(?:г\.(?!\s?р)|года|году|г(?![\w.])|жылы|жылғы|ж\.(?!\s?т)|ж(?![\w.])))?"

_DATE = re.compile(  # the lookahead rejects most positions with one character test (hot loop)
    rf"(?=[\dJFMASONDjfmasond])(?<![\w.])(?:(?P<d1>\d{{1,2}})(?P<sep>[./-])(?P<m1>\d{{1,2}})(?P=sep)(?P<y1>\d{{4}})(?![\w]|\.\d){_YEAR_WORD}"
    rf"|(?<![\w.])(?P<y2>\d{{4}})-(?P<m2>\d{{2}})-(?P<d2>\d{{2}})(?![\w]|-\d)"
    rf"|(?<![\w.])(?P<d3>\d{{1,2}})\s(?P<mon3>{_RU_MONTH_RE}|{_KK_MONTH_RE}|(?i:{_EN_MONTH_RE}))\s(?P<y3>\d{{4}})(?!\d){_YEAR_WORD}"
    rf"|(?<![\w.])(?P<y4>\d{{4}})\s?(?:жылғы|ж\.)\s(?P<d4>\d{{1,2}})\s?-?\s?(?P<mon4>{_KK_MONTH_RE})(?:да|де|та|те|ында|інде)?(?!\w)"
    rf"|(?<![\w.])(?P<mon5>(?i:{_EN_MONTH_RE}))\s(?P<d5>\d{{1,2}})(?:st|nd|rd|th)?,?\s(?P<y5>\d{{4}})(?!\d))",
)

# Words that say what a date is. Birth words make it a birth date; the others claim it for something else.
_BIRTH_WORDS = (r"дата\s+рождения|даты\s+рождения|датой\s+рождения|день\s+рождения|год\s+рождения|д\.\s?р\.|д/р"
                r"|рожд\.?|родился|родилась|рождения|рожденн?ый|рождённый|туған\s+күні|туған\s+күнi|туған\s+жылы|туған"
                r"|туылған|tugan\s+kun\w*|tugan|tuylgan|date\s+of\s+birth|birth\s+date|birthdate|birthday|born|d\.o\.b\.?|dob")
_OTHER_WORDS = (r"дата\s+выдачи|выдан[аоы]?|выдачи|действителен|действительна|срок|до\b|договор|от\b|дата\s+подписания"
                r"|дата\s+регистрации|зарегистрирован|дата\s+смерти|умер|умерла|берілген|берілді|жарамды|мерзімі"
                r"|шарт|issued|issue\s+date|expiry|expires|valid|deadline|due|contract|signed|dated|registered"
                r"|died|death|start|end|from|until")
_DESCRIBER = re.compile(rf"(?<!\w)(?:(?P<birth>{_BIRTH_WORDS})|(?P<other>{_OTHER_WORDS}))", re.IGNORECASE)
_BIRTH_AFTER = re.compile(r"[ ,]?(?:г\.\s?р\.|г\.р|гр\.|года\s+рождения|г\.\s+рождения|жылы\s+туған|ж\.\s?т\.|ж\.т|туған|туылған"
                          r"|\(?\s?(?:dob|d\.o\.b\.?|date\s+of\s+birth)\b)", re.IGNORECASE)
_LOOKBACK = 60


def _month_number(name: str) -> int | None:
    low = name.lower().rstrip(".")
    if low in _KK_MONTHS:
        return _KK_MONTHS[low]
    if low[:3] in _EN_MONTHS and low.isascii():
        return _EN_MONTHS[low[:3]]
    for stem, num in _RU_MONTHS.items():
        if low.startswith(stem) and (stem != "ма" or low == "мая"):
            return num
    return None


def parse_date(m: re.Match[str]) -> dt.date | None:
    """The calendar date a match denotes, or None when it is not a real, plausible birth date."""
    g = m.groupdict()
    try:
        if g["y1"]:
            day, month, year = int(g["d1"]), int(g["m1"]), int(g["y1"])
        elif g["y2"]:
            day, month, year = int(g["d2"]), int(g["m2"]), int(g["y2"])
        else:
            for d, mon, y in (("d3", "mon3", "y3"), ("d4", "mon4", "y4"), ("d5", "mon5", "y5")):
                if g[y]:
                    month_no = _month_number(g[mon])
                    if month_no is None:
                        return None
                    day, month, year = int(g[d]), month_no, int(g[y])
                    break
            else:
                return None
        date = dt.date(year, month, day)
    except ValueError:
        return None
    if year < 1900 or date > dt.date.today():
        return None
    return date


def _birth_context(text: str, start: int, end: int, prev_date_end: int) -> tuple[str, ...]:
    """Birth words that describe the date at ``start:end`` (empty tuple: not a birth date)."""
    after = _BIRTH_AFTER.match(text, end)
    if after:
        return (after.group().strip().lower(),)
    lo = max(0, start - _LOOKBACK, prev_date_end)
    last = None
    for m in _DESCRIBER.finditer(text, lo, start):
        last = m
    if last is not None and last.group("birth"):
        return (re.sub(r"\s+", " ", last.group().lower()),)
    return ()


class DateOfBirthRecognizer:
    """DATE_OF_BIRTH: dates in kk/ru/en writing, only where birth words describe them."""

    name = "date_of_birth"
    entity_types = frozenset({"DATE_OF_BIRTH"})

    def find(self, text: str) -> Iterable[Finding]:
        findings: list[Finding] = []
        prev_end = 0
        for m in _DATE.finditer(text):
            start, end = m.start(), m.end()
            date_end = m.end()
            while end > start and text[end - 1] == " ":
                end -= 1
            ok = parse_date(m) is not None
            words = _birth_context(text, start, end, prev_end) if ok else ()
            prev_end = date_end
            if not words:
                continue
            findings.append(Finding(
                type="DATE_OF_BIRTH", start=start, end=end, score=0.9, recognizer=self.name,
                explanation=Explanation(pattern="date", base_score=0.6, validated=True,
                                        validator="calendar date, year 1900..today",
                                        context_words=words, context_delta=0.3)))
        return findings
