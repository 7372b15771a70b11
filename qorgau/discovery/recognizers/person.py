"""PERSON: names of people in Kazakh (Cyrillic and Latin script), Russian and English text.

Cheap rules run first on every text: capitalised tokens are classified once each (cached) as a given
name (lexicon, with Russian and Kazakh case endings stripped, Latin spellings matched through a
transliteration skeleton), a surname (suffix -ов/-ева/-ин/-баев/-ov/-yeva/-sky… or the lexicon of
suffix-less surnames: Ким, Цой, Smith), a patronymic (-ович/-овна/-ұлы/-қызы/-uly/-kyzy) or initials
("Е.Б."), and runs of adjacent name parts become candidates scored by which parts they combine.

Natasha (offline Russian NER, model in the wheel) is slow, so it runs only on bounded windows around
Cyrillic candidates the rules cannot decide (two unknown capitalised words, or a weak single part); it
confirms weak rule findings and adds names the rules missed. Streets ("ул. Абая", "Абай даңғылы"),
organisations ("ТОО Казахтелеком"), cities and months are filtered out whichever path found them.

The text is never stored or logged: findings carry offsets and an :class:`Explanation` only.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..types import Explanation, Finding, category_of, context_near, context_pattern
from . import fastre

LEXICON_DIR = Path(__file__).resolve().parent.parent / "lexicons"

UPPER = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІÄĞÑÖŞÜŪ"
LOWER = "a-zа-яёәғқңөұүһіäğıñöşüū"
_WORD = rf"[{UPPER}](?:['’][{UPPER}])?[{LOWER}]+(?:-[{UPPER}]?[{LOWER}]+)*"  # O'Connor, Әл-Фараби
# One pass over the text finds initials ("Е.Б.", "E. B.") and capitalised words; nothing else is looked at.
# ALL-CAPS words (ТУЛЕУОВА АКБОТА, forms and eGov notices) are a third kind of token: classified like the same
# word capitalised, but an unknown one (an acronym: ТОО, ИИН, NAME) breaks a run instead of joining it, and a
# lone one needs a field label before it (ФАМИЛИЯ:, NAME:). Initials never follow "/" (mmol/L.).
_CAPS = rf"[{UPPER}]{{3,}}(?:-[{UPPER}]{{2,}})?"
_TOKEN = fastre.compile(
    rf"(?P<init>(?<![\w./])[{UPPER}]\.(?:[ \u00a0]?[{UPPER}]\.)?(?![\w]))|(?P<word>(?<![\w])(?:{_WORD})(?![\w]))"
    rf"|(?P<caps>(?<![\w])(?:{_CAPS})(?![\w]))")
# Lower-case particles inside Western names: Peter van Dijk, Ludwig van Beethoven, Leonardo da Vinci.
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "del", "della", "di", "du", "la", "le", "bin", "ibn", "ter",
                        "ten", "al", "el"})
_GAP_CHARS = " \t\u00a0"  # between the words of one name: 1-3 of these (0-3 after initials, "Е.Б.Жаксылыков")
_SENTENCE_END = re.compile(r"(?:\A|[.!?…:;\n\r\t\"'«»“”(\[•\-–—*#|>]\s*)\Z")

_PATRONYMIC = re.compile(
    r"(?:(?:ов|ев|ёв)(?:ич|на)|ьич|ична|инична)(?:а|у|ем|ом|е|ой|ою|ы|ну|ной)?$"
    r"|(?:ұлы|қызы|улы|кызы|ули)$"
    r"|(?:uly|uli|ulı|kyzy|qyzy|kizi|qızı|ovich|evich|ovna|evna|ichna)$")
# Kazakh case endings after -ов/-ова (Сейітованың, Өмірзақовқа, Тұрсыновтан, Qasymovqa): -ин/-ын are left
# out there, since many Kazakh words end in -ында/-ынан (қаласында).
_KK_CASE = r"(?:ның|нің|дың|дің|тың|тің|ға|ге|қа|ке|ны|ні|ды|ді|ты|ті|да|де|та|те|дан|ден|тан|тен|нан|нен|мен|бен|пен)"
_KK_CASE_LAT = (r"(?:nyñ|nyn|nıñ|nin|dyñ|dyn|tyñ|tyn|ğa|ga|ge|qa|ka|ke|ny|nı|ni|dy|dı|di|ty|tı|ti|da|de|ta|te|dan|den"
                r"|tan|ten|nan|nen|men|ben|pen)")
_SURNAME_SUFFIX_CYR = re.compile(
    r"(?:ов|ев|ёв|ин|ын)(?:а|у|ым|ом|е|ой|ою|ых|ыми)?$|(?:ов|ев|ёв)а?" + _KK_CASE + "$"
    r"|(?:ский|ская|цкий|цкая|ского|ской|скому|ским|скую|цкого|цкой|цкому|цким)$|(?:енко|чук)$")
_SURNAME_SUFFIX_LAT = re.compile(r"(?:ov|ova|ev|eva|yev|yeva|iev|ieva|in|ina|yn|yna|sky|skiy|skii|skaya|enko|chuk)$"
                                 r"|(?:ov|ev)a?" + _KK_CASE_LAT + "$")
# A lone surname at a sentence start ("Ағайын, көмектесіңіздер!"): only the -ов/-ев family is trusted there.
_INITIAL_SURNAME_OK = re.compile(r"(?:ов|ев|ёв|ova|eva|ov|ev)а?$|(?:ов|ев|ёв)а?" + _KK_CASE + "$")
# Suffixes that (almost) only Kazakh surnames have: safe even at the start of a sentence.
_STRONG_SURNAME = re.compile(r"(?:баев|баева|беков|бекова|бекев|бекева|ұлы|қызы|bayev|bayeva|bekov|bekova)[а-яa-z]{0,2}$")

# Endings of Kazakh compound given names (Жанболат, Нұрбек, Гүлжан): a name even when not in the lexicon.
_GIVEN_SHAPE = re.compile(
    r"(?:бек|бай|жан|гүл|гуль|болат|хан|нұр|нур|сұлтан|султан|ғали|гали|мұрат|мурат|ерке|bek|bay|zhan|gul"
    r"|bolat|khan|nur|sultan|gali|murat)$")
_RU_ENDINGS = ("ами", "ями", "ом", "ем", "ой", "ей", "ою", "ую", "ы", "и", "у", "ю", "а", "я", "е")
_RU_RESTORE = ("", "а", "я", "й", "ь", "ия")
_KK_ENDINGS = ("ның", "нің", "дың", "дің", "тың", "тің", "ға", "ге", "қа", "ке", "на", "не", "ны", "ні",
               "ды", "ді", "ты", "ті", "да", "де", "та", "те", "дан", "ден", "тан", "тен", "нан", "нен",
               "мен", "бен", "пен", "а", "е")

# Title words before a name: they make even unknown capitalised words a name. These context patterns are
# case-insensitive word lists, written with fastre.alternatives (one character class per first letter) so
# that re does not enter every word at every position of the 24-character look-around.
_TITLE_BEFORE = fastre.compile(
    r"(?:\b" + fastre.alternatives(["Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Sir", "Madam"]) + r"\.?|"
    + fastre.alternatives(["г-н", "г-жа", r"гр\.", "господин", "госпожа", "гражданин", "гражданка", "уважаемый",
                           "уважаемая", "құрметті"]) + r")[ \t\u00a0]{1,3}\Z")
_STREET_BEFORE = fastre.compile(
    r"(?:\b" + fastre.alternatives(["ул", "пр", "пр-т", "пр-кт", "просп", "пер", "бул", "б-р", "наб", "пл", "мкр", "мкрн",
                                    "им", "ш", "st", "str", "ave", "blvd"]) + r"\.?"
    r"|\b" + fastre.alternatives(["улица", "улице", "улицу", "улицы", "проспект", "проспекта", "проспекте", "переулок",
                                  "бульвар", "площадь", "набережная", "имени", "микрорайон", "street", "avenue", "школа",
                                  "гимназия", "лицей", "университет", "академия", "аэропорт", "район", "село", "поселок",
                                  "город", "памятник", "памятника", "монумент", "ескерткіш", "мемориал", "музей", "театр",
                                  "парк", "сквер", "площади", "площадь", "г", "с", "қ", "пос", "ауыл"])
    + r")[ \t\u00a0]{0,3}(?:[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ]\.[ \t\u00a0]?)?\Z")
_STREET_AFTER = re.compile(
    r"\A[ \t\u00a0,]{0,3}(?:" + fastre.alternatives(["батыр", "батыра", "би", "хан", "хана", "ата", "ана", "жолы", "batyr",
                                                      "bi", "khan", "zholy"]) + r"[ \t\u00a0]+)?"
    + fastre.alternatives(["көшесі", "көшесінде", "көшесіндегі", "даңғылы", "даңғылында", "атындағы", "ауылы", "ауданы",
                           "қаласы", "облысы", "шағын", "бульвары", "street", r"st\b", r"str\b", r"ave\b", "avenue", "blvd",
                           "boulevard", "road", "lane", "prospect", "district", "region", "city", "university",
                           "airport", "улица", r"ул\.", "проспект", r"пр\.", "район", "р-н", "р-на", "область", "области",
                           r"обл\.", "ескерткіші", "мешіті", "кесенесі", "атындағы", "қиылыс", "intersection",
                           "crossing", "tract", "тракт"]))
# "Абай мен Назарбаев қиылысында", "Abay and Dostyk intersection": the first of two crossing streets.
_CROSSING_AFTER = re.compile(
    rf"\A[ \t\u00a0]+(?:мен|және|и|and|&)[ \t\u00a0]+[{UPPER}][\w'’-]*(?:[ \t\u00a0]+[{LOWER}]+)?[ \t\u00a0]+"
    r"(?:қиылыс|пересечени|intersection|crossing|corner)")
# "на пересечении улиц Абая и Сейфуллина", "угол Абая и Достык", "corner of Abay and Dostyk".
_CROSSING_BEFORE = re.compile(
    rf"(?:пересечени\w*|угол|углу|corner[ \t]+of|intersection[ \t]+of)(?:[ \t]+(?:улиц|ул\.|проспектов|streets))?"
    rf"[ \t\u00a0]+(?:[{UPPER}][\w'’-]*[ \t\u00a0]+(?:и|and|&|мен|және)[ \t\u00a0]+)?\Z")
# "Nazarbayev Intellectual Schools", "Abai Kazakh National Pedagogical University", "Abai metro station": a name
# followed (within three capitalised words) by what it names.
_INSTITUTION_AFTER = re.compile(
    rf"\A(?:[ \t\u00a0]+[{UPPER}][\w'’-]*){{0,3}}[ \t\u00a0]+(?:University|Universiteti|Schools?|Institute|Academy|"
    r"College|Lyceum|Gymnasium|Airport|Station|Museum|Theatre|Theater|Opera|Hospital|Mosque|Cathedral|Stadium|Arena|"
    r"metro|station|Metro|Университет\w*|университет\w*|институт\w*|академи\w*|мектеб\w*|мектеп|школ\w*|гимнази\w*|"
    r"лице[йя]\w*|колледж\w*|аэропорт\w*|станци\w*|метро|музе[йя]\w*|театр\w*|мешіт\w*|стадион\w*)(?!\w)")
_QUOTE_AFTER = re.compile(r"\A[»\"”]")
# A field label right before a lone ALL-CAPS or lower-case name: "ФАМИЛИЯ: СМАГУЛОВ", "фио мустафина аяулым".
_FIELD_LABEL = (r"(?:фамилия|имя|отчество|фио|ф\.\s?и\.\s?о\.?|т\.\s?а\.\s?ә\.?|аты-жөні|аты\s+жөні|тегі|аты|"
                r"әкесінің\s+аты|name|surname|first\s+name|last\s+name|given\s+names?|full\s+name|holder|получатель|"
                r"алушы|recipient)")
_FIELD_LABEL_BEFORE = re.compile(rf"(?i:(?<!\w){_FIELD_LABEL})[ \t\u00a0]*[:=\-–—]?[ \t\u00a0]*\Z")
_LOWER_NAME_AFTER_LABEL = fastre.compile(
    rf"(?i:(?<!\w){_FIELD_LABEL})[ \t\u00a0]*[:=\-–—]?[ \t\u00a0]*(?P<name>[{LOWER}]{{2,}}(?:[ \t\u00a0][{LOWER}]{{2,}}){{1,2}})"
    rf"(?![\w])")
_ORG_BEFORE = fastre.compile(
    r"(?:\b" + fastre.alternatives(["ТОО", "АО", "ООО", "ОАО", "ЗАО", "ПАО", "ЖШС", "АҚ", "ГКП", "РГП", "КГУ", "LLP", "JSC",
                                    "LLC", "Ltd", "Inc", "компания", "компании", "фирма", "банк", "bank", "company", "группа"],
                                   ignore_case=False) + r"[ \t\u00a0]*[«\"“]?)\Z")
_ORG_AFTER = re.compile(r"\A[ \t\u00a0]*[»\"”]?[ \t\u00a0]*(?:Bank|Group|Inc|Ltd|LLP|JSC|LLC|Corp|банк|групп)\b")
_QUOTE_BEFORE = re.compile(r"[«\"“„]\Z")

_LOWER_WORD = fastre.compile(rf"(?<![\w'’-])(?!(?:ұлы|қызы|улы|кызы|оглы|uly|kyzy)(?!\w))[{LOWER}]+(?![\w'’])")
_CONTEXT_WORDS = (
    "фио", "ф.и.о", "имя", "фамилия", "отчество", "аты-жөні", "аты", "тегі", "әкесінің аты", "full name",
    "name", "surname", "first name", "last name", "гражданин", "гражданка", "клиент", "заемщик", "заёмщик",
    "заявитель", "сотрудник", "пациент", "студент", "ученик", "уважаемый", "уважаемая", "құрметті", "мырза",
    "ханым", "mr", "mrs", "ms", "dr.", "patient", "employee", "customer", "client", "applicant", "меня зовут",
    "my name", "менің атым", "подпись", "родился", "родилась", "туған", "born", "директор", "менеджер",
    "врач", "жауапты", "ответственный", "contact person", "контактное лицо",
)
_CONTEXT = context_pattern(_CONTEXT_WORDS)
_CONTEXT_BOOST = 0.15
MIN_SCORE = 0.5
_MAX_PARTS = 4
_NATASHA_WINDOW = 60  # characters around an undecided candidate handed to Natasha


# --- lexicons -----------------------------------------------------------------------------------

_CYR_TO_LAT = {
    "а": "a", "ә": "a", "б": "b", "в": "v", "г": "g", "ғ": "g", "д": "d", "е": "e", "ё": "yo", "ж": "zh",
    "з": "z", "и": "i", "й": "i", "к": "k", "қ": "k", "л": "l", "м": "m", "н": "n", "ң": "n", "о": "o",
    "ө": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ұ": "u", "ү": "u", "ф": "f", "х": "kh",
    "һ": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "і": "i", "ь": "", "э": "e",
    "ю": "yu", "я": "ya",
}
_KK_TO_RU = str.maketrans("әғқңөұүһі", "агкноуухи")
_LATIN_FOLD = (("shch", "s"), ("zh", "j"), ("kh", "h"), ("gh", "g"), ("sh", "s"), ("ch", "c"), ("ts", "c"),
               ("yu", "u"), ("ya", "a"), ("ye", "e"), ("yo", "o"), ("ng", "n"), ("y", "i"), ("q", "k"),
               ("w", "u"), ("x", "ks"), ("j", "j"))
_LATIN_CHARS = str.maketrans("äöüūıñğşç", "aouuingsc")


def skeleton(word: str) -> str:
    """A spelling-insensitive key shared by Cyrillic and Latin forms: Айгерім, Aigerim, Aygerim, Äigerim."""
    w = word.lower()
    if any("а" <= ch <= "я" or ch in "әғқңөұүһіё" for ch in w):
        w = "".join(_CYR_TO_LAT.get(ch, ch) for ch in w)
    w = w.translate(_LATIN_CHARS)
    for src, dst in _LATIN_FOLD:
        w = w.replace(src, dst)
    out: list[str] = []
    for ch in w:  # doubled letters: Aliya/Alliya, Asel/Assel
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


def _read_list(name: str) -> list[str]:
    lines = (LEXICON_DIR / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


@dataclass(frozen=True)
class NameLexicon:
    """Lower-cased name sets, loaded once per process (see :func:`name_lexicon`)."""

    given: frozenset[str]  # Cyrillic and English given names, lower case, both kk and russified spellings
    given_skeletons: frozenset[str]  # Latin-script keys of all given names
    ambiguous: frozenset[str]
    surnames: frozenset[str]
    not_names: frozenset[str]  # months, organisations, common words, and cities that are not also names
    cities: frozenset[str] = frozenset()  # every settlement name: a lone word that is one is not a person

    @classmethod
    def load(cls) -> "NameLexicon":
        given: set[str] = set()
        for fname in ("given_names_kk.txt", "given_names_ru.txt", "given_names_en.txt"):
            for name in _read_list(fname):
                low = name.lower()
                given.add(low)
                given.add(low.translate(_KK_TO_RU))
        given |= {g.replace("гул", "гуль") for g in given if "гул" in g}  # Гүлнар → Гульнара
        ambiguous = {a.lower() for a in _read_list("ambiguous_names.txt")}
        ambiguous |= {a.translate(_KK_TO_RU) for a in ambiguous}
        given |= ambiguous
        skeletons = {skeleton(g) for g in given}
        surnames = {s.lower() for s in _read_list("surnames.txt")}
        cities = {c.lower() for c in _read_list("cities.txt")}
        not_names = {w.lower() for w in _read_list("not_names.txt")}
        # "Абай" and "Сатпаев" are towns and people: a city name counts as not-a-name only if it is
        # neither a given name nor shaped like a surname.
        not_names |= {c for c in cities if c not in given and not _SURNAME_SUFFIX_CYR.search(c)}
        return cls(frozenset(given), frozenset(skeletons), frozenset(ambiguous), frozenset(surnames),
                   frozenset(not_names), frozenset(cities))


_LOCK = threading.Lock()
_LEXICON: NameLexicon | None = None
_NATASHA: tuple[object, object] | None = None


def name_lexicon() -> NameLexicon:
    """The process-wide lexicon (loaded on first use, then shared by every recognizer instance)."""
    global _LEXICON
    if _LEXICON is None:
        with _LOCK:
            if _LEXICON is None:
                _LEXICON = NameLexicon.load()
    return _LEXICON


def _natasha() -> tuple[object, object]:
    """Natasha's segmenter and NER tagger, built once per process (≈1.5 s, the model ships in the wheel)."""
    global _NATASHA
    if _NATASHA is None:
        with _LOCK:
            if _NATASHA is None:
                from natasha import NewsEmbedding, NewsNERTagger, Segmenter

                _NATASHA = (Segmenter(), NewsNERTagger(NewsEmbedding()))
    return _NATASHA


# --- token classes --------------------------------------------------------------------------------
# G given name, g given name that is also a common word, S surname (suffix), L surname (lexicon),
# P patronymic, I initials, X other capitalised word, N never a name part.

def _is_cyrillic(word: str) -> bool:
    ch = word[0]
    return "А" <= ch <= "я" or ch in "ЁёӘҒҚҢӨҰҮҺІәғқңөұүһі"


def _given_lookup(low: str, lex: NameLexicon) -> bool:
    if low in lex.given:
        return True
    for ending in _RU_ENDINGS:
        if low.endswith(ending) and len(low) - len(ending) >= 3:
            stem = low[: -len(ending)]
            if any(stem + r in lex.given for r in _RU_RESTORE):
                return True
    for ending in _KK_ENDINGS:
        if low.endswith(ending) and len(low) - len(ending) >= 3 and low[: -len(ending)] in lex.given:
            return True
    return False


def classify_word(word: str, lex: NameLexicon) -> tuple[str, str]:
    """(class, rule) for one capitalised word; pure, so it is cached per process."""
    low = word.lower()
    if low in lex.not_names or any(low.endswith(e) and low[: -len(e)] in lex.not_names
                                   for e in (*_RU_ENDINGS, *_KK_ENDINGS)):
        return "N", ""
    cyr = _is_cyrillic(word)
    if len(low) >= 5 and _PATRONYMIC.search(low):
        return "P", "patronymic suffix"
    if cyr:
        if _given_lookup(low, lex):
            return ("g" if low in lex.ambiguous else "G"), "lexicon: given name"
    elif low in lex.given or skeleton(low) in lex.given_skeletons:
        return ("g" if low in lex.ambiguous else "G"), "lexicon: given name"
    if low in lex.surnames:
        return "L", "lexicon: surname"
    suffix = _SURNAME_SUFFIX_CYR if cyr else _SURNAME_SUFFIX_LAT
    if len(low) >= 5 and suffix.search(low):
        return "S", "lexicon: surname suffix"
    if len(low) >= 5 and _GIVEN_SHAPE.search(low):
        return "G", "kazakh given-name ending"
    return "X", ""


@functools.lru_cache(maxsize=1 << 16)
def _classify_cached(word: str) -> tuple[str, str]:
    return classify_word(word, name_lexicon())


# --- the rule pass ----------------------------------------------------------------------------------

@dataclass(slots=True)
class _Tok:
    start: int
    end: int
    cls: str
    rule: str
    initial: bool  # first word of a sentence (capitalised for grammar, not because it is a name)
    cyrillic: bool
    caps: bool = False  # written in ALL CAPS
    surname_ok: bool = True  # for a sentence-initial S: its ending is one a lone surname may have there


@dataclass(slots=True)
class _Candidate:
    start: int
    end: int
    score: float
    pattern: str
    notes: tuple[str, ...]


def _tokens(text: str) -> Iterator[list[_Tok]]:
    """Runs of adjacent name-like tokens (hot loop: one regex pass, cached classification).

    A run that is one unknown capitalised word ("Отчёт", "The" at a sentence start: most capitalised
    words of ordinary prose) can never become a candidate (:func:`_segments` needs a name part or two
    words), so it is dropped before anything is built for it."""
    classify = _classify_cached
    run: list[tuple[int, int, str, str, bool]] = []
    prev_end = -1
    prev_init = False
    for m in _TOKEN.finditer(text):
        s, e = m.span()
        kind = m.lastgroup
        if kind == "init":
            cls, rule = "I", "initials"
        elif kind == "caps":
            word = m.group()
            cls, rule = classify(word[0] + word[1:].lower())
            if cls == "X":
                cls = "N"  # an acronym or a heading word, not a name part
        else:
            cls, rule = classify(m.group())
        # The run goes on across a gap of 1-3 _GAP_CHARS (0-3 after initials); tested without a regex
        # call because most tokens are far apart.
        gap = s - prev_end
        if run and (cls == "N" or gap < (0 if prev_init else 1) or (
                (gap > 3 or text[prev_end:s].strip(_GAP_CHARS)) and not _particle_gap(text, prev_end, s))):
            if len(run) > 1 or run[0][2] != "X":
                yield _run(text, run)
            run = []
        if cls != "N":
            run.append((s, e, cls, rule, kind == "caps"))
        prev_end, prev_init = e, cls == "I"
    if run and (len(run) > 1 or run[0][2] != "X"):
        yield _run(text, run)


def _particle_gap(text: str, start: int, end: int) -> bool:
    """The gap between two Latin name words is one or two lower-case particles between spaces (" van der ")."""
    if end - start > 11 or not text[start:end].isascii():
        return False
    gap = text[start:end]
    words = gap.split(" ")
    return (gap[0] == " " and gap[-1] == " " and 3 <= len(words) <= 4
            and all(w in _PARTICLES for w in words[1:-1]))


def _run(text: str, parts: list[tuple[int, int, str, str, bool]]) -> list[_Tok]:
    """The run's tokens, with whether each starts a sentence and is Cyrillic."""
    sentence_end = _SENTENCE_END.search
    return [_Tok(s, e, cls, rule, s < 3 or sentence_end(text, s - 3, s) is not None, _is_cyrillic(text[s]), caps,
                 cls != "S" or _INITIAL_SURNAME_OK.search(text[s:e].lower()) is not None)
            for s, e, cls, rule, caps in parts]


def _segments(run: list[_Tok]) -> Iterator[list[_Tok]]:
    """Person-sized pieces of a run: anchored on name parts, at most four parts each."""
    anchors = [i for i, t in enumerate(run) if t.cls in "GgSLPI"]
    if not anchors:
        if len(run) >= 2:
            yield run[:_MAX_PARTS]  # only a title or Natasha can make these a name
        return
    first, last = anchors[0], anchors[-1]
    if last + 1 < len(run) and run[last].cls in "GgIS" and run[last + 1].cls == "X":
        last += 1  # John Smith; Тұрсынбаев Жанболат (surname first, unknown given name)
    if first > 0 and run[first - 1].cls == "X" and not run[first - 1].initial and first + 1 <= last \
            and run[first].cls in "Gg" and run[first + 1].cls in "PI":
        first -= 1  # Сейткали Ерлан Маратұлы
    piece = run[first:last + 1]
    for k in range(0, len(piece), _MAX_PARTS):
        yield piece[k:k + _MAX_PARTS]


def _score_segment(seg: list[_Tok]) -> tuple[float, str, list[str]]:
    classes = "".join(t.cls for t in seg)
    notes = sorted({t.rule for t in seg if t.rule})
    has_given = "G" in classes or "g" in classes
    has_sur = "S" in classes or "L" in classes
    has_pat = "P" in classes
    has_init = "I" in classes
    if len(seg) == 1:
        t = seg[0]
        if t.cls == "G":
            if t.initial and t.rule == "kazakh given-name ending":  # "Еңбек демалысы": a word, not a name
                return 0.0, "given name", notes
            return 0.55, "given name", notes
        if t.cls == "P":
            return 0.6, "patronymic", notes
        if t.cls == "S":
            if not t.initial:
                return 0.6, "surname", notes
            return (0.5 if t.end - t.start >= 6 and t.surname_ok else 0.0), "surname", notes
        return 0.0, "single word", notes  # g, L, I, X alone need context or Natasha
    if has_given and has_sur and has_pat:
        return 0.95, "surname + given name + patronymic", notes
    if has_given and (has_pat or has_sur):
        return 0.88, "given name + " + ("patronymic" if has_pat else "surname"), notes
    if has_init and (has_sur or has_pat):
        return 0.88, "surname + initials", notes
    if has_sur and has_pat:
        return 0.85, "surname + patronymic", notes
    if has_given and "X" in classes:
        if "G" in classes:
            return 0.72, "given name + capitalised word", notes
        # "Mark Fischer" mid-sentence is a name; "May Day" at a sentence start is not decided here
        return (0.45 if seg[0].initial else 0.55), "given name + capitalised word", notes
    if has_sur and "X" in classes:
        return 0.65, "surname + capitalised word", notes
    if has_init and "X" in classes:
        return 0.6, "initials + capitalised word", notes
    if has_given or has_sur:
        return 0.6, "name parts", notes
    return 0.0, "capitalised words", notes


def _is_blocked(text: str, start: int, end: int, single: bool, score: float = 1.0) -> str:
    """Why a candidate is not a person (street, organisation, quoted title), or ''."""
    before = text[max(0, start - 24):start]
    after = text[end:end + 24]
    if _STREET_BEFORE.search(before) or _STREET_AFTER.match(after):
        return "street or place"
    if _CROSSING_AFTER.match(text[end:end + 48]) or _CROSSING_BEFORE.search(text[max(0, start - 48):start]):
        return "street or place"
    if _INSTITUTION_AFTER.match(text[end:end + 64]):
        return "institution"
    if _ORG_BEFORE.search(before) or _ORG_AFTER.match(after):
        return "organisation"
    if _QUOTE_BEFORE.search(before) and (single or (score < 0.8 and _QUOTE_AFTER.match(after))):
        return "quoted title"
    if single:
        low = text[start:end].lower()
        lex = name_lexicon()
        if low in lex.cities and low not in lex.given:  # Kunaev, Сатпаев: a town (Абай is a name as well)
            return "city"
    return ""


def _rule_candidates(text: str) -> Iterator[tuple[_Candidate | None, list[_Tok]]]:
    """Scored rule candidates, and the segments they came from (for deciding where Natasha runs)."""
    for run in _tokens(text):
        for seg in _segments(run):
            start, end = seg[0].start, seg[-1].end
            score, pattern, notes = _score_segment(seg)
            if all(t.cls == "X" for t in seg) or score < MIN_SCORE:
                if _TITLE_BEFORE.search(text, max(0, start - 12), start) and seg[0].cls != "I":
                    score, pattern = 0.75, "title + capitalised words"
                    notes = [*notes, "title before name"]
            if score <= 0.0 and len(seg) == 1 and seg[0].cls in "gL" and context_near(text, start, end, _CONTEXT):
                score, pattern = 0.5, "name part with naming context"
            if all(t.caps for t in seg) and len(seg) == 1:
                # A lone ALL-CAPS word is a heading or an acronym unless a field label names it.
                if _FIELD_LABEL_BEFORE.search(text, max(0, start - 32), start) and seg[0].cls in "GgSLP":
                    score, pattern = max(score, 0.6), "name part after a field label"
                    notes = [*notes, "field label"]
                else:
                    score = 0.0
            if score <= 0.0:
                yield None, ([] if any(t.caps for t in seg) else seg)
                continue
            if _is_blocked(text, start, end, len(seg) == 1, score):
                yield None, []
                continue
            yield _Candidate(start, end, score, pattern, tuple(notes)), seg


# --- Natasha ------------------------------------------------------------------------------------------

def _natasha_windows(text: str, undecided: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merged, bounded windows around undecided Cyrillic candidates, cut at line breaks."""
    windows: list[tuple[int, int]] = []
    for s, e in undecided:
        ws = max(0, s - _NATASHA_WINDOW)
        nl = text.rfind("\n", ws, s)
        ws = nl + 1 if nl >= 0 else ws
        we = min(len(text), e + _NATASHA_WINDOW)
        nl = text.find("\n", e, we)
        we = nl if nl >= 0 else we
        if windows and ws <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], we))
        else:
            windows.append((ws, we))
    return windows


def _natasha_persons(text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Natasha's PER spans in the windows, as offsets into ``text``.

    All windows of a text go to the tagger in one batch, and straight to the tagger: Natasha's
    ``Doc.segment`` (razdel sentences) only serves span-to-token bookkeeping we do not use, and the
    tagger's fixed cost per call is paid once per batch of 8. Batching does not change the tags (padding
    embeds to zero and is masked after every layer). :mod:`.ner` runs the tagger without slovnet's
    per-call overhead, with the same results."""
    _, tagger = _natasha()
    texts = [text[ws:we] for ws, we in windows]
    spans: list[tuple[int, int]] = []
    with _LOCK:  # the tagger is not documented as thread-safe
        tagged = _tag([t for t in texts if t.strip()], tagger)
    found = iter(tagged)
    for (ws, _), window in zip(windows, texts):
        if window.strip():
            spans.extend((ws + start, ws + stop) for start, stop, kind in next(found) if kind == "PER")
    return spans


_LEAN: list[object] = []  # (LeanTagger or None, BLAS limiter or None), built on first use (under _LOCK)


def _tag(texts: list[str], tagger: object) -> list[list[tuple[int, int, str]]]:
    """Natasha's NER spans of each text: via :class:`.ner.LeanTagger` (or the tagger itself if slovnet
    changed), with BLAS on one thread.

    One thread, because the matrices are small (a window is ~20 tokens) and a scan is one core's work
    (``--workers`` adds processes): OpenBLAS would otherwise start a thread per CPU for every product,
    and on a busy machine those threads wait on each other — measured 15x slower per call on this
    project's 2-CPU machine under load. ``threadpoolctl`` sets the limit around the call only, so other
    numpy users in the process keep their settings."""
    if not _LEAN:
        from .ner import lean_tagger

        _LEAN.append((lean_tagger(tagger), _blas_limiter()))
    lean, blas = _LEAN[0]  # type: ignore[misc]
    with blas.limit(limits=1) if blas is not None else contextlib.nullcontext():
        if lean is not None:
            return lean(texts)
        return [[(sp.start, sp.stop, sp.type) for sp in markup.spans]
                for markup in tagger.map(texts)]  # type: ignore[attr-defined]


def _blas_limiter() -> object | None:
    """threadpoolctl's handle on the BLAS libraries numpy loaded, or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency; without it BLAS keeps its own thread count
        return None
    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


def _natasha_span_ok(text: str, start: int, end: int) -> bool:
    """Natasha's PER spans pass the same filters as rule candidates and need one non-stop word."""
    words = [m for m in _TOKEN.finditer(text, start, end) if m.lastgroup == "word"]
    if not words or any(_classify_cached(m.group())[0] == "N" for m in words):
        return False
    if _LOWER_WORD.search(text, start, end):  # "Астана мен Алматыда": Natasha misreads Kazakh text
        return False
    if len(words) == 1:  # one word at a sentence start is capitalised by grammar: "Роза расцвела."
        s = words[0].start()
        if s < 3 or _SENTENCE_END.search(text[s - 3:s]):
            return False
    return not _is_blocked(text, start, end, len(words) == 1)


# --- the recognizer ---------------------------------------------------------------------------------

class PersonRecognizer:
    """PERSON in kk/ru/en: lexicons and name-shape rules, with Natasha for the cases rules cannot decide."""

    name = "person"
    entity_types = frozenset({"PERSON"})

    def __init__(self, use_natasha: bool = True) -> None:
        self.use_natasha = use_natasha
        self._explanations: dict[tuple, Explanation] = {}
        name_lexicon()
        if use_natasha:
            _natasha()

    def find(self, text: str) -> Iterable[Finding]:
        candidates: list[_Candidate] = []
        undecided: list[tuple[int, int]] = []
        for cand, seg in _rule_candidates(text):
            if cand is not None:
                candidates.append(cand)
                if cand.score < 0.7 and seg and any(t.cyrillic for t in seg):
                    undecided.append((cand.start, cand.end))
            elif seg and any(t.cyrillic for t in seg) and (len(seg) >= 2 or seg[0].cls in "gLX"):
                if any(not t.initial or t.cls != "X" for t in seg):
                    undecided.append((seg[0].start, seg[-1].end))
        if self.use_natasha and undecided:
            candidates = self._merge_natasha(text, candidates, undecided)
        candidates += _lower_case_candidates(text, candidates)
        return [self._finding(text, c) for c in sorted(candidates, key=lambda c: c.start)]

    def _merge_natasha(self, text: str, candidates: list[_Candidate],
                       undecided: list[tuple[int, int]]) -> list[_Candidate]:
        spans = _natasha_persons(text, _natasha_windows(text, undecided))
        out = list(candidates)
        for s, e in spans:
            hits = [i for i, c in enumerate(out) if c.start < e and s < c.end]
            if hits:
                for i in hits:
                    c = out[i]
                    # Natasha may widen a weak rule candidate, never over lower-case words: Kazakh text misleads
                    # it ("Бүгін Абай мен Назарбаев").
                    widen = c.score < 0.7 and not _LOWER_WORD.search(text, min(c.start, s), max(c.end, e))
                    out[i] = _Candidate(min(c.start, s) if widen else c.start,
                                        max(c.end, e) if widen else c.end,
                                        min(0.95, c.score + 0.2), c.pattern, (*c.notes, "natasha PER"))
            elif _natasha_span_ok(text, s, e):
                out.append(_Candidate(s, e, 0.65, "natasha PER", ("natasha PER",)))
        return _dedupe(out)

    def _finding(self, text: str, c: _Candidate) -> Finding:
        words = context_near(text, c.start, c.end, _CONTEXT)
        delta = _CONTEXT_BOOST if words else 0.0
        # Explanations are immutable and repeat (same rule, no context word): shared, not rebuilt (bounded).
        key = (c.pattern, c.score, words, c.notes)
        explanation = self._explanations.get(key)
        if explanation is None:
            explanation = Explanation(pattern=c.pattern, base_score=c.score, context_words=words, context_delta=delta,
                                      notes=c.notes)
            if len(self._explanations) < 1024:
                self._explanations[key] = explanation
        return Finding("PERSON", c.start, c.end, min(0.99, c.score + delta), self.name, category_of("PERSON"),
                       explanation)


def _lower_case_candidates(text: str, taken: list[_Candidate]) -> list[_Candidate]:
    """Names written in lower case right after a field label ("фио мустафина аяулым", "аты ақниет серікбаева"):
    two or three words that are all name parts, with a given name and a surname or patronymic among them."""
    out: list[_Candidate] = []
    for m in _LOWER_NAME_AFTER_LABEL.finditer(text):
        start, end = m.span("name")
        if any(c.start < end and start < c.end for c in taken):
            continue
        words = list(re.finditer(r"\S+", m.group("name")))
        classes = "".join(_classify_cached(w.group()[0].upper() + w.group()[1:])[0] for w in words)
        for n in (3, 2):  # the name may be followed by another lower-case word ("… аяулым тел 8 777 …")
            part = classes[:n]
            if len(part) == n and all(c in "GgSLP" for c in part) and ("G" in part or "g" in part) and \
                    any(c in part for c in "SLP"):
                out.append(_Candidate(start, start + words[n - 1].end(), 0.7, "lower-case name after a field label",
                                      ("field label",)))
                break
    return out


def _dedupe(cands: list[_Candidate]) -> list[_Candidate]:
    """Overlapping candidates (after Natasha widened some) collapse into the higher-scoring one."""
    kept: list[_Candidate] = []
    for c in sorted(cands, key=lambda c: (-c.score, c.start)):
        if all(c.end <= k.start or k.end <= c.start for k in kept):
            kept.append(c)
    return kept
