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
from . import fastre
from .scoring import column_header

_RU_MONTHS = {"январ": 1, "феврал": 2, "март": 3, "апрел": 4, "ма": 5, "июн": 6, "июл": 7, "август": 8,
              "сентябр": 9, "октябр": 10, "ноябр": 11, "декабр": 12}
_KK_MONTHS = {"қаңтар": 1, "ақпан": 2, "наурыз": 3, "сәуір": 4, "мамыр": 5, "маусым": 6, "шілде": 7,
              "тамыз": 8, "қыркүйек": 9, "қазан": 10, "қараша": 11, "желтоқсан": 12}
# Kazakh months in Latin letters, with and without the 2021 diacritics (stems: case endings follow).
_KK_LAT_MONTHS = {"qañtar": 1, "qantar": 1, "kantar": 1, "aqpan": 2, "akpan": 2, "nauryz": 3, "säuır": 4,
                  "säuir": 4, "sauir": 4, "mamyr": 5, "mausym": 6, "şılde": 7, "shilde": 7, "şilde": 7, "tamyz": 8,
                  "qyrküiek": 9, "qyrkuiek": 9, "kyrkuyek": 9, "qazan": 10, "kazan": 10, "qaraşa": 11,
                  "qarasha": 11, "karasha": 11, "jeltoqsan": 12, "zheltoksan": 12, "jeltoksan": 12}
_EN_MONTHS = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
              "oct": 10, "nov": 11, "dec": 12}

_RU_MONTH_RE = fastre.alternatives(["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
                                    "октября", "ноября", "декабря"], ignore_case=False)
_KK_MONTH_RE = fastre.alternatives(["қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз", "қыркүйек",
                                    "қазан", "қараша", "желтоқсан"], ignore_case=False)
_KK_LAT_MONTH_RE = fastre.alternatives(sorted(_KK_LAT_MONTHS, key=len, reverse=True))
# Case-insensitive, grouped by first letter (fastre.alternatives) so that re skips non-months in C.
_EN_MONTH_RE = fastre.alternatives(
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
     "December", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec"]) + r"\.?"
_YEAR_WORD = r"(?:\s?(?:г\.(?!\s?р)|года|году|г(?![\w.])|жылы|жылғы|ж\.(?!\s?т)|ж(?![\w.])))?"
# A year alone ("1987 г.р.", "Туған жылы: 1998", "1993 jyly tuğan"): found as a candidate, kept only with a birth
# marker right after it or a birth word right before it (see DateOfBirthRecognizer.find); never on its own.
_YEAR_ONLY = r"|(?<![\w.,/-])(?P<y6>(?:19|20)\d{2})(?![\w]|[.,/-]\d|\s?(?:жылғы|ж\.)\s\d)"

_NUMERIC_DATES = (
    rf"(?=[\dJFMASONDjfmasond])(?<![\w.])(?:(?P<d1>\d{{1,2}})(?P<sep>[./-])(?P<m1>\d{{1,2}})(?P=sep)(?P<y1>\d{{4}}|\d{{2}})(?![\w]|\.\d){_YEAR_WORD}"
    rf"|(?<![\w.])(?P<y2>\d{{4}})-(?P<m2>\d{{2}})-(?P<d2>\d{{2}})(?![\w]|-\d)"
    rf"|(?<![\w.])(?P<d3>\d{{1,2}})\s(?P<mon3>{_RU_MONTH_RE}|{_KK_MONTH_RE}|{_EN_MONTH_RE})\s(?P<y3>\d{{4}})(?!\d){_YEAR_WORD}"
    rf"|(?<![\w.])(?P<y4>\d{{4}})\s?(?:жылғы|жылы|ж\.|jylğy|jylgy|jyly|j\.)\s(?P<d4>\d{{1,2}})\s?-?\s?"
    rf"(?P<mon4>{_KK_MONTH_RE}|{_KK_LAT_MONTH_RE})(?:да|де|та|те|ында|інде|нда|нде|da|de|ta|te|nda|nde)?(?!\w)"
    + _YEAR_ONLY
)
_MONTH_FIRST_DATE = rf"|(?<![\w.])(?P<mon5>{_EN_MONTH_RE})\s(?P<d5>\d{{1,2}})(?:st|nd|rd|th)?,?\s(?P<y5>\d{{4}})(?!\d)"
# Hot loop: fastre skips to digits and month initials in C. "March 12, 1985" is the only form that starts
# with a letter; a text with no English month name at a word start is scanned without that alternative
# (the same matches: it could not match there), so Kazakh and Russian text is not stopped at every a, d, m, s.
_DATE = fastre.compile(_NUMERIC_DATES + _MONTH_FIRST_DATE + ")")
_DATE_NUMERIC = fastre.compile(_NUMERIC_DATES + ")")
_MONTH_AT_WORD_START = fastre.compile(rf"(?<![\w.]){_EN_MONTH_RE}")

# Words that say what a date is. Birth words make it a birth date; the others claim it for something else.
# "_" between words: CSV/JSON keys and column names (date_of_birth, tugan_kuni).
_BIRTH_WORDS = [r"дата[\s_]+рождения", r"даты\s+рождения", r"датой\s+рождения", r"день\s+рождения", r"год[\s_]+рождения",
                r"д\.\s?р\.", "д/р", r"рожд\.?", "родился", "родилась", "рождения", "рожденн?ый", "рождённый",
                r"туған[\s_]+күні", r"туған\s+күнi", r"туған[\s_]+жылы", "туған", "туылған", r"tu[gğ]an[\s_]+kun\w*",
                r"tu[gğ]an[\s_]+k[uü]n\w*", "tu[gğ]an", "tuylgan", r"date[\s_]+of[\s_]+birth", r"birth[\s_]*date",
                "birthday", r"year[\s_]+of[\s_]+birth", r"birth[\s_]+year", "born", r"d\.o\.b\.?", "dob"]
_OTHER_WORDS = [r"дата\s+выдачи", "выдан[аоы]?", "выдачи", "действителен", "действительна", "срок", r"до\b", "договор",
                r"от\b", r"дата\s+подписания", r"дата\s+регистрации", "зарегистрирован", r"дата\s+смерти", "умер", "умерла",
                "берілген", "берілді", "жарамды", "мерзімі", "шарт", "issued", r"issue\s+date", "expiry", "expires", "valid",
                "deadline", "due", "contract", "signed", "dated", "registered", "died", "death", "start", "end", "from",
                "until"]
_DESCRIBER = fastre.compile(rf"(?<!\w)(?:(?P<birth>{fastre.alternatives(_BIRTH_WORDS)})"
                            rf"|(?P<other>{fastre.alternatives(_OTHER_WORDS)}))")
_BIRTH_AFTER_WORDS = [r"г\.\s?р\.", r"г\.р", r"гр\.", r"года\s+рождения", r"г\.\s+рождения", r"жылы\s+туған", r"ж\.\s?т\.",
                      r"ж\.т", "туған", "туылған", "рождения", r"jyly\s+tu[gğ]an", r"j\.\s?t\.", "tu[gğ]an"]
_DOB_WORDS = ["dob", r"d\.o\.b\.?", r"date\s+of\s+birth"]
_BIRTH_AFTER = re.compile(rf"[ ,]?(?:{fastre.alternatives(_BIRTH_AFTER_WORDS)}|\(?\s?{fastre.alternatives(_DOB_WORDS)}\b)")
# Any birth word at all, before a date (_DESCRIBER's birth group) or after it (_BIRTH_AFTER): a text without
# one holds no birth date, and its dates are not even looked for (most texts: one pass in C).
_ANY_BIRTH_WORD = fastre.compile(fastre.alternatives(
    _BIRTH_WORDS + _BIRTH_AFTER_WORDS + _DOB_WORDS + [r"\(р\.", r"\(b\."]))
_LOOKBACK = 60
# A year alone needs its birth word right before it: "Туған жылы: 1998", "born in 1990", "(р. 1978)", "DOB 1999".
_YEAR_BIRTH_BEFORE = fastre.compile(
    rf"(?:(?<!\w){fastre.alternatives(_BIRTH_WORDS)}|\((?:р|b)\.)(?:\s+(?:in|в|во))?[\s:.,=(-]{{0,3}}\Z")


def _month_number(name: str) -> int | None:
    low = name.lower().rstrip(".")
    if low in _KK_MONTHS:
        return _KK_MONTHS[low]
    if low in _KK_LAT_MONTHS:
        return _KK_LAT_MONTHS[low]
    if low[:3] in _EN_MONTHS and low.isascii():
        return _EN_MONTHS[low[:3]]
    for stem, num in _RU_MONTHS.items():
        if low.startswith(stem) and (stem != "ма" or low == "мая"):
            return num
    return None


def parse_date(m: re.Match[str], today: dt.date | None = None, *, us_order: bool = False) -> dt.date | None:
    """The calendar date a match denotes, or None when it is not a real, plausible birth date (``today``:
    the scan's date, looked up once per text by the recognizer). ``us_order`` reads ``05/17/1969`` month
    first; it is asked for only when English birth words describe a date that day-first reading rejects."""
    g = m.groupdict()
    today = today or dt.date.today()
    try:
        if g["y1"]:
            day, month, year = int(g["d1"]), int(g["m1"]), int(g["y1"])
            if len(g["y1"]) == 2:  # "19.03.87": the latest year ≤ today with those last two digits
                year += 2000 if 2000 + year <= today.year else 1900
            if us_order and g["sep"] == "/":
                day, month = month, day
        elif g["y6"]:
            day, month, year = 1, 1, int(g["y6"])
        elif g["y2"]:
            day, month, year = int(g["d2"]), int(g["m2"]), int(g["y2"])
        else:
            for d, mon, y in (("d3", "mon3", "y3"), ("d4", "mon4", "y4"), ("d5", "mon5", "y5")):
                if g.get(y):  # _DATE_NUMERIC has no group y5
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
    if year < 1900 or date > today:
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
        if _ANY_BIRTH_WORD.search(text) is None:
            return findings
        prev_end = 0
        today = dt.date.today()
        dates = _DATE if _MONTH_AT_WORD_START.search(text) is not None else _DATE_NUMERIC
        for m in dates.finditer(text):
            start, end = m.start(), m.end()
            date_end = m.end()
            while end > start and text[end - 1] == " ":
                end -= 1
            ok = parse_date(m, today) is not None
            if not ok and m.group("sep") == "/":  # 05/17/1969 after "DOB"/"born": US order in English text only
                english = _birth_context(text, start, end, prev_end)
                ok = bool(english) and english[0].isascii() and parse_date(m, today, us_order=True) is not None
            if ok and m.group("y6"):  # a year alone: only with a birth marker right after or right before it
                after = _BIRTH_AFTER.match(text, end)
                before = None if after else _YEAR_BIRTH_BEFORE.search(text, max(0, start - 40), start)
                words = ((after or before).group().strip(" :.,=(-").lower(),) if (after or before) else ()
            else:
                # In a table the column's name says what the date is: words on the date's own line still count,
                # but a header row above must not lend its words to every column by the look-back.
                header = column_header(text, start) if ok and "\n" in text else ""
                if header:
                    line_start = text.rfind("\n", 0, start) + 1
                    words = _birth_context(text, start, end, max(prev_end, line_start))
                    described = None if words else _DESCRIBER.search(header)
                    if described is not None and described.group("birth"):
                        words = ("column: " + header,)
                else:
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
