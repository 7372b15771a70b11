"""Depersonalize a dataset for research and statistics (L-PD-DEPERS), with a k-anonymity report.

PD law Art.1(7): depersonalization = actions after which data can no longer be attributed to a subject;
Art.17 makes it mandatory for statistical, sociological, scientific and marketing research and for data
sent to the national AI platform. A split dataset (:mod:`qorgau.vault.split`) is *pseudonymized*, not
depersonalized: its pseudonyms are stable and the vault can reverse them. ``depersonalize`` goes further:

* **Unlinkable random ids.** The pseudonym column becomes ``random_id``: per export a fresh 256-bit key
  is drawn, each pseudonym maps to ``HMAC-SHA256(key, pseudonym)`` spelled as 22 letters (≈ 103 bits), and
  the key is forgotten when the export ends. Within one export a subject's rows keep one id (so counts per
  person still work); across exports, or from the pseudonym, nobody — qorgau included — can compute it.
  This is a random map that needs no memory per subject: memory stays flat on large files.
* **Generalized quasi-identifiers** (``--quasi column=kind``):

  ===================  =========================================================================
  kind                 becomes
  ===================  =========================================================================
  ``birth_date``       the year (``1979-10-28``, ``28.10.1979``, a date cell → ``1979``)
  ``age``              a 5-year band (``37`` → ``35-39``), 90 and over top-coded ``90+``
  ``address``          the region: one of the 17 oblasts, or Astana / Almaty / Shymkent (cities of
                       republican significance), or ``outside Kazakhstan``; from region words
                       (``Карагандинская обл.``, ``Қарағанды облысы``) or the city (discovery's
                       city lexicon with a city → region table)
  ``postal_code``      the first 3 characters (``050010`` → ``050``)
  ``iin``              two columns ``<col>_sex`` and ``<col>_birth_year`` derived from the IIN
  ``iin_sex``          ``<col>_sex`` only;  ``iin_birth_year``: ``<col>_birth_year`` only
  ``category``         kept as it is, but counted as a quasi-identifier (sex, profession …)
  ``keep`` / ``drop``  not a quasi-identifier: kept as it is (your decision) / left out
  ===================  =========================================================================

  A value that cannot be generalized (an address in no known region, a date that is no date) becomes
  an empty cell and is counted — never passed through.
* **A guard.** Every other column is classified by discovery's column classifier (name and sampled
  values); an *identifying* column that is not declared stops the export with a message naming it.
* **k-anonymity report.** For the set of all quasi-identifiers (and each subset, up to four of them)
  the number of groups, the smallest group, the groups smaller than ``k`` and the rows in them. Groups
  count distinct *subjects* when the dataset has a pseudonym column (several rows of one person do not
  make a group safer), rows otherwise. With ``suppress`` the rows of groups smaller than ``k`` are left
  out (two passes over the input) and the report shows the numbers before and after.

The export writes no audit entry and needs no platform: it reads a file and writes a file, and what it
writes cannot be linked back to the vault.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInput
from ..identifiers import IdentifierError, parse_iin
from .split import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SAMPLE_ROWS,
    FORMAT_BY_EXTENSION,
    Batch,
    CsvOutput,
    Dataset,
    JsonlOutput,
    SqlDataset,
    _cell_text,
    _csv_text,
    _default_scan,
    _Output,
    _ParquetFileOutput,
    open_dataset,
    read_manifest,
)

__all__ = [
    "QUASI_KINDS",
    "DepersonalizeReport",
    "age_band",
    "birth_year",
    "depersonalize",
    "parse_quasi",
    "postal_prefix",
    "region_of",
]

QUASI_KINDS: dict[str, str] = {
    "birth_date": "a date → its year",
    "age": "an age in years → a 5-year band (90+ top-coded)",
    "address": "an address → its region (oblast) or city of republican significance",
    "postal_code": "a postal code → its first 3 characters",
    "iin": "an IIN → <col>_sex and <col>_birth_year",
    "iin_sex": "an IIN → <col>_sex",
    "iin_birth_year": "an IIN → <col>_birth_year",
    "category": "kept as it is, counted as a quasi-identifier",
}
OTHER_KINDS = {"keep": "not a quasi-identifier; kept as it is", "drop": "left out"}
MAX_SUBSET_QUASI = 4  # up to this many quasi-identifiers every subset is reported; beyond, singles + all
RANDOM_ID_LETTERS = 22
DEFAULT_ID_COLUMN = "random_id"
OUTSIDE = "outside Kazakhstan"


# --- generalizations ----------------------------------------------------------------------------------

_ISO = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?\s*")
_DMY = re.compile(r"\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s*")
_YMD_DOTS = re.compile(r"\s*(\d{4})[./](\d{1,2})[./](\d{1,2})\s*")
_YEAR = re.compile(r"\s*(\d{4})\s*")


def birth_year(value: Any) -> str | None:
    """The year of a date (``date``/``datetime`` cells, ISO, ``DD.MM.YYYY``, ``YYYY.MM.DD``, a bare year)."""
    if isinstance(value, (date, datetime)):
        return str(value.year)
    if not isinstance(value, str):
        return None
    for pattern, year_group, month_group, day_group in ((_ISO, 1, 2, 3), (_DMY, 3, 2, 1), (_YMD_DOTS, 1, 2, 3)):
        m = pattern.fullmatch(value)
        if m:
            try:
                d = date(int(m.group(year_group)), int(m.group(month_group)), int(m.group(day_group)))
            except ValueError:
                return None
            return str(d.year) if 1850 <= d.year <= date.today().year + 1 else None
    m = _YEAR.fullmatch(value)
    if m and 1850 <= int(m.group(1)) <= date.today().year + 1:
        return m.group(1)
    return None


def age_band(value: Any) -> str | None:
    """``37`` → ``35-39``; 90 and over → ``90+`` (few people are that old: the top band is open)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{1,3}(?:[.,]\d+)?", text):
            return None
        value = float(text.replace(",", "."))
    if not isinstance(value, (int, float)) or value != value or value < 0 or value > 130:
        return None
    years = int(value)
    if years >= 90:
        return "90+"
    low = years - years % 5
    return f"{low}-{low + 4}"


def postal_prefix(value: Any) -> str | None:
    """The first 3 characters of a postal code (``050010`` → ``050``; ``Z05T3E`` → ``Z05``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:06d}"
    if not isinstance(value, str):
        return None
    compact = re.sub(r"[\s-]", "", value).upper()
    if not (4 <= len(compact) <= 10) or not compact.isalnum() or not compact.isascii():
        return None
    return compact[:3]


def iin_parts(value: Any) -> tuple[str, str] | None:
    """(sex, birth year) from an IIN, or None when it is not a valid IIN."""
    text = _cell_text(value, "KZ_IIN")
    if text is None:
        return None
    try:
        iin = parse_iin("".join(ch for ch in text if ch.isdigit()))
    except IdentifierError:
        return None
    return iin.sex, str(iin.birth_date.year)


# Regions: 17 oblasts and three cities of republican significance (after the 2022 reform that created
# the Abai, Jetisu and Ulytau regions). Patterns are matched on the case-folded address.
REGIONS = (
    "Astana (city)", "Almaty (city)", "Shymkent (city)", "Abai Region", "Akmola Region", "Aktobe Region",
    "Almaty Region", "Atyrau Region", "East Kazakhstan Region", "Jambyl Region", "Jetisu Region",
    "Karaganda Region", "Kostanay Region", "Kyzylorda Region", "Mangystau Region", "North Kazakhstan Region",
    "Pavlodar Region", "Turkistan Region", "Ulytau Region", "West Kazakhstan Region",
)
_OBL = r"(?:обл\b\.?|област\w*|облыс\w*|region\b|oblast\b|oblysy\b)"
_REGION_WORDS: tuple[tuple[str, str], ...] = (
    ("Abai Region", rf"абайск\w*|абай\s+{_OBL}|{_OBL}\s+абай\b|aba[iy]\s+{_OBL}"),
    ("Akmola Region", rf"акмолинск\w*|а[кқ]мола\s+{_OBL}|a[kq]mola\s+{_OBL}|a[kq]mola\b"),
    ("Aktobe Region", rf"актюбинск\w*|а[кқ]т[оө]бе\s+{_OBL}|a[kq]tobe\s+{_OBL}"),
    ("Almaty Region", rf"алматинск\w*\s+{_OBL}|алматы\s+{_OBL}|almaty\s+{_OBL}"),
    ("Atyrau Region", rf"атырауск\w*|атырау\s+{_OBL}|atyrau\s+{_OBL}"),
    ("East Kazakhstan Region", r"восточно-казахстанск\w*|вко\b|шығыс\s+қазақстан\w*|east\s+kazakhstan\w*"),
    ("Jambyl Region", rf"жамбылск\w*|жамбыл\s+{_OBL}|(?:j|zh)ambyl\s+{_OBL}"),
    ("Jetisu Region", rf"жетысуск\w*|жет[іы]су\s+{_OBL}|{_OBL}\s+жет[іы]су\b|(?:j|zh)et[iy]su\b"),
    ("Karaganda Region", rf"карагандинск\w*|қарағанды\s+{_OBL}|(?:karaganda|karagandy|qaragandy)\s+{_OBL}"),
    ("Kostanay Region", rf"костанайск\w*|[кқ]останай\s+{_OBL}|[kq]ostanay\s+{_OBL}"),
    ("Kyzylorda Region", rf"кызылординск\w*|[кқ][ыи]з[ыи]лорда\s+{_OBL}|[kq]yzylorda\s+{_OBL}"),
    ("Mangystau Region", r"мангистауск\w*|мангыстауск\w*|ма[нң][гғ][иы]стау\w*|mang[iy]stau\b"),
    ("North Kazakhstan Region", r"северо-казахстанск\w*|ско\b|солтүстік\s+қазақстан\w*|north\s+kazakhstan\w*"),
    ("Pavlodar Region", rf"павлодарск\w*\s+{_OBL}|павлодар\s+{_OBL}|pavlodar\s+{_OBL}"),
    ("Turkistan Region", rf"туркестанск\w*|южно-казахстанск\w*|түркістан\s+{_OBL}|"
                         rf"turk[ie]stan\s+{_OBL}|south\s+kazakhstan\w*"),
    ("Ulytau Region", r"улытауск\w*|[уұ]лытау\w*|ulytau\b"),
    ("West Kazakhstan Region", r"западно-казахстанск\w*|зко\b|батыс\s+қазақстан\w*|west\s+kazakhstan\w*"),
)
# City (every spelling of discovery's city lexicon that names one place unambiguously) → region.
CITY_REGIONS: dict[str, str] = {}
for _region, _names in (
    ("Almaty (city)", "алматы алма-ата алма-ате almaty alma-ata"),
    ("Astana (city)", "астана астане нур-султан нұр-сұлтан целиноград astana nur-sultan"),
    ("Shymkent (city)", "шымкент чимкент shymkent"),
    ("Karaganda Region", "караганда караганде қарағанды karaganda karagandy qaragandy темиртау теміртау temirtau "
                         "балхаш балқаш шахтинск сарань"),
    ("Aktobe Region", "актобе ақтөбе aktobe aqtobe"),
    ("Jambyl Region", "тараз taraz"),
    ("Pavlodar Region", "павлодар pavlodar экибастуз екібастұз ekibastuz"),
    ("East Kazakhstan Region", "усть-каменогорск өскемен ust-kamenogorsk oskemen риддер зыряновск"),
    ("Abai Region", "семей семипалатинск semey аягоз аягөз"),
    ("Atyrau Region", "атырау atyrau кульсары құлсары"),
    ("Kostanay Region", "костанай қостанай kostanay qostanay рудный аркалык арқалық лисаковск"),
    ("Kyzylorda Region", "кызылорда қызылорда kyzylorda qyzylorda байконур байқоңыр baikonur"),
    ("West Kazakhstan Region", "уральск орал uralsk oral аксай ақсай"),
    ("North Kazakhstan Region", "петропавловск петропавл petropavlovsk"),
    ("Mangystau Region", "актау ақтау aktau aqtau жанаозен жаңаөзен zhanaozen"),
    ("Turkistan Region", "туркестан түркістан turkestan turkistan кентау жетысай жетісай сарыагаш сарыағаш"),
    ("Akmola Region", "кокшетау көкшетау kokshetau щучинск степногорск"),
    ("Jetisu Region", "талдыкорган талдықорған taldykorgan"),
    ("Ulytau Region", "жезказган жезқазған сатпаев сәтбаев"),
    ("Almaty Region", "конаев қонаев konaev капшагай қапшағай каскелен қаскелең kaskelen талгар talgar есик есік"),
    (OUTSIDE, "москва moscow ташкент tashkent бишкек bishkek новосибирск омск ростов саратов киев львов "
              "берлин berlin пекин london paris dublin boston austin"),
):
    for _name in _names.split():
        CITY_REGIONS[_name] = _region
# Left out on purpose: Абай, Алтай, Алатау — also a region, a mountain range, a district or a street.

_REGION_PATTERNS = [(region, re.compile(rf"(?<![\w-])(?:{words})")) for region, words in _REGION_WORDS]
_CITY_PATTERN = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(n) for n in sorted(CITY_REGIONS, key=len, reverse=True))
    + r")(?:е|а|у|ом)?(?![\w-])")
_CITY_MARKER = re.compile(r"(?:\bг\.|\bгор\.|\bгород\w*|\bcity\b|\bқ\.|\bқаласы\b|\bқала\b)\s*$")


def region_of(address: Any) -> str | None:
    """The region of a Kazakhstan address (kk/ru/en), ``outside Kazakhstan``, or None when unknown.

    Region words decide first (``Алматинская обл., г. Конаев`` is Almaty Region, while ``г. Алматы`` is the
    city); otherwise the city: one preceded by a city marker (``г.``, ``город``, ``қ.``, ``city``) wins,
    else the first one mentioned.
    """
    if not isinstance(address, str) or not address.strip():
        return None
    text = re.sub(r"\s+", " ", address.casefold().replace("ё", "е"))
    found = [(m.start(), region) for region, pattern in _REGION_PATTERNS for m in [pattern.search(text)] if m]
    if found:
        return min(found)[1]
    first: str | None = None
    for m in _CITY_PATTERN.finditer(text):
        region = CITY_REGIONS[m.group(1)]
        after = text[m.end():m.end() + 8]
        if _CITY_MARKER.search(text[max(0, m.start() - 12):m.start()]) or re.match(r"\s*(?:қаласы|қ\.)", after):
            return region
        first = first or region
    return first


# --- the export ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quasi:
    column: str
    kind: str

    def outputs(self) -> list[str]:
        if self.kind == "iin":
            return [f"{self.column}_sex", f"{self.column}_birth_year"]
        if self.kind == "iin_sex":
            return [f"{self.column}_sex"]
        if self.kind == "iin_birth_year":
            return [f"{self.column}_birth_year"]
        if self.kind == "drop":
            return []
        return [self.column]

    @property
    def is_quasi(self) -> bool:
        return self.kind in QUASI_KINDS

    def generalize(self, value: Any) -> list[str | None]:
        kind = self.kind
        if kind == "birth_date":
            return [birth_year(value)]
        if kind == "age":
            return [age_band(value)]
        if kind == "address":
            return [region_of(value)]
        if kind == "postal_code":
            return [postal_prefix(value)]
        if kind in ("iin", "iin_sex", "iin_birth_year"):
            parts = iin_parts(value)
            sex, year = parts if parts else (None, None)
            return [sex, year] if kind == "iin" else [sex] if kind == "iin_sex" else [year]
        if kind == "category":
            return [_cell_text(value)]
        raise AssertionError(kind)


def parse_quasi(spec: str | Mapping[str, str] | Sequence[str] | None) -> list[Quasi]:
    """``"birth_date=birth_date,address=address,diagnosis=keep"`` → the declared columns, in order."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        items = [(str(k), str(v)) for k, v in spec.items()]
    else:
        items = []
        for part in [spec] if isinstance(spec, str) else list(spec):
            for item in part.split(","):
                if not item.strip():
                    continue
                name, eq, kind = item.rpartition("=")
                if not eq or not name.strip() or not kind.strip():
                    raise InvalidInput(f"--quasi takes COLUMN=KIND items, got {item.strip()!r}", field="quasi")
                items.append((name.strip(), kind.strip()))
    out: list[Quasi] = []
    seen: set[str] = set()
    for name, kind in items:
        kind = kind.lower()
        if kind not in QUASI_KINDS and kind not in OTHER_KINDS:
            raise InvalidInput(f"--quasi {name}: unknown kind {kind!r}; use one of "
                               f"{', '.join(list(QUASI_KINDS) + list(OTHER_KINDS))}", field="quasi")
        if name in seen:
            raise InvalidInput(f"--quasi names {name!r} twice", field="quasi")
        seen.add(name)
        out.append(Quasi(name, kind))
    return out


@dataclass(frozen=True)
class GroupStats:
    """k-anonymity numbers for one set of quasi-identifiers."""

    columns: tuple[str, ...]
    groups: int
    smallest_group: int | None
    groups_below_k: int
    rows_in_groups_below_k: int

    def to_dict(self) -> dict[str, Any]:
        return {"quasi_identifiers": list(self.columns), "groups": self.groups,
                "smallest_group": self.smallest_group, "groups_below_k": self.groups_below_k,
                "rows_in_groups_below_k": self.rows_in_groups_below_k}


@dataclass
class DepersonalizeReport:
    """What an export did and the k-anonymity report. Counts and column names only, never values."""

    output: Path
    k: int
    counted: str  # "subjects" | "rows"
    rows: int
    rows_written: int
    suppressed_rows: int
    random_ids: bool
    quasi: list[dict[str, Any]]
    before: list[GroupStats]
    after: list[GroupStats]
    not_generalizable: dict[str, int]
    left_out: int
    seconds: float

    @property
    def k_anonymous(self) -> bool:
        full = self.after[-1] if self.after else None
        return full is None or full.smallest_group is None or full.smallest_group >= self.k

    def to_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "k": self.k, "counted": self.counted, "rows": self.rows,
                "rows_written": self.rows_written, "suppressed_rows": self.suppressed_rows,
                "k_anonymous": self.k_anonymous, "random_ids": self.random_ids, "quasi_identifiers": self.quasi,
                "before_suppression": [g.to_dict() for g in self.before],
                "after_suppression": [g.to_dict() for g in self.after],
                "not_generalizable": self.not_generalizable, "left_out_malformed": self.left_out,
                "seconds": round(self.seconds, 3)}


class RandomIds:
    """A fresh random map pseudonym → random id for one export (a keyed PRF whose key is never stored)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return "RandomIds(<ephemeral key>)"

    def digest(self, pseudonym: str) -> bytes:
        return hmac.digest(self._key, pseudonym.encode("utf-8"), hashlib.sha256)

    def id_for(self, pseudonym: str) -> str:
        number = int.from_bytes(self.digest(pseudonym), "big")
        letters = []
        for _ in range(RANDOM_ID_LETTERS):
            number, digit = divmod(number, 26)
            letters.append(chr(97 + digit))
        return "".join(letters)


class _GroupCounter:
    """Group sizes per quasi-identifier subset: distinct subjects (ints) or rows."""

    def __init__(self, subsets: list[tuple[int, ...]], by_subject: bool) -> None:
        self.subsets = subsets
        self.by_subject = by_subject
        self.rows: list[Counter] = [Counter() for _ in subsets]
        self.subjects: list[defaultdict[tuple, set[int]]] = [defaultdict(set) for _ in subsets] if by_subject else []

    def add(self, values: tuple[str | None, ...], subject: int) -> None:
        for n, subset in enumerate(self.subsets):
            key = tuple(values[i] for i in subset)
            self.rows[n][key] += 1
            if self.by_subject:
                self.subjects[n][key].add(subject)

    def sizes(self, n: int) -> dict[tuple, int]:
        if self.by_subject:
            return {key: len(members) for key, members in self.subjects[n].items()}
        return dict(self.rows[n])

    def stats(self, names: list[str], k: int) -> list[GroupStats]:
        out = []
        for n, subset in enumerate(self.subsets):
            sizes = self.sizes(n)
            small = [key for key, size in sizes.items() if size < k]
            out.append(GroupStats(tuple(names[i] for i in subset), len(sizes), min(sizes.values()) if sizes else None,
                                  len(small), sum(self.rows[n][key] for key in small)))
        return out

    def small_groups(self, k: int) -> set[tuple]:
        """Full-set group keys below k (the last subset is always the full set)."""
        return {key for key, size in self.sizes(len(self.subsets) - 1).items() if size < k}


def _subsets(n: int) -> list[tuple[int, ...]]:
    if n <= MAX_SUBSET_QUASI:
        out = [c for r in range(1, n) for c in itertools.combinations(range(n), r)]
    else:
        out = [(i,) for i in range(n)]
    return out + [tuple(range(n))]


def depersonalize(
    input: str | Path,
    output: str | Path,
    *,
    quasi: str | Mapping[str, str] | Sequence[str],
    k: int = 5,
    suppress: bool = False,
    pseudonym_column: str | None = None,
    manifest: str | Path | None = None,
    id_column: str = DEFAULT_ID_COLUMN,
    table: str | None = None,
    where: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    scan_values: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> DepersonalizeReport:
    """Export ``input`` depersonalized to ``output`` (same format; a SQL table → .parquet or .csv).

    ``quasi`` declares the quasi-identifiers and their generalization (see the module docstring). The
    pseudonym column (``pseudonym_column``, else the ``manifest``'s, else ``pseudonym`` if present) is
    replaced by unlinkable random ids in ``id_column``. ``k`` is the k of k-anonymity; with ``suppress``
    rows in smaller groups are left out.
    """
    started = time.monotonic()
    output = Path(output)
    if k < 1:
        raise InvalidInput("k must be at least 1", field="k")
    if output.exists():
        raise InvalidInput(f"{output} already exists; remove it or choose another output", field="output")
    declared = parse_quasi(quasi)
    if not any(q.is_quasi for q in declared):
        raise InvalidInput("name at least one quasi-identifier: --quasi COLUMN=KIND (e.g. birth_date=birth_date)",
                           field="quasi")
    dataset = open_dataset(input, table=table, where=where, sample_rows=sample_rows)
    try:
        out_format = FORMAT_BY_EXTENSION.get(output.suffix.lower())
        if dataset.kind == "sql":
            if out_format not in ("parquet", "csv"):
                raise InvalidInput("a database table is exported to a .parquet or .csv file", field="output")
        elif out_format != dataset.kind:
            raise InvalidInput(f"the output must have the input's format ({dataset.kind})", field="output")
        pcol = _pseudonym_column(dataset, pseudonym_column, manifest)
        columns = set(dataset.columns)
        missing = [q.column for q in declared if q.column not in columns]
        if missing:
            raise InvalidInput(f"--quasi: no column named {', '.join(map(repr, missing))} in {dataset.name}",
                               field="quasi")
        if pcol is not None and pcol in {q.column for q in declared}:
            raise InvalidInput(f"{pcol!r} is the pseudonym column; it becomes random ids, do not declare it",
                               field="quasi")
        by_column = {q.column: q for q in declared}
        _guard_identifying(dataset, by_column, pcol, sample_rows, scan_values)
        plan = _Plan(dataset, by_column, pcol, id_column, out_format)
        ids = RandomIds()
        quasi_list = [q for q in declared if q.is_quasi]
        names = [name for q in quasi_list for name in q.outputs()]
        subsets = _subsets(len(names))
        by_subject = pcol is not None
        not_generalizable: Counter = Counter()
        before = _GroupCounter(subsets, by_subject)
        anonymous = itertools.count(-1, -1)  # rows without a pseudonym: each one its own subject
        left_out = 0
        rows = 0
        if suppress:
            with contextlib.closing(dataset.batches(batch_size)) as batches:
                for batch in batches:
                    for values, subject, _ in plan.quasi_rows(batch, ids, anonymous, not_generalizable):
                        before.add(values, subject)
            small = before.small_groups(k)
            not_generalizable.clear()
        after = _GroupCounter(subsets, by_subject)
        anonymous = itertools.count(-1, -1)
        written = 0
        sink = plan.open_sink(output)
        batches = dataset.batches(batch_size)
        try:
            for batch in batches:
                keep: list[int] = []
                for values, subject, i in plan.quasi_rows(batch, ids, anonymous, not_generalizable):
                    rows += 1
                    if not suppress:
                        before.add(values, subject)
                    elif values in small:
                        continue
                    after.add(values, subject)
                    keep.append(i)
                left_out += len(batch.bad)
                written += len(keep)
                sink.append(plan.output(batch, keep, ids))
                if on_progress is not None:
                    on_progress(rows)
            sink.finish(output)
        except BaseException:
            batches.close()
            sink.close()
            tmp = plan.tmp_path(output)
            if tmp.exists():
                tmp.unlink()
            raise
    finally:
        if isinstance(dataset, SqlDataset):
            dataset.close()
    before_stats = before.stats(names, k)
    after_stats = after.stats(names, k) if suppress else before_stats
    quasi_doc = [{"column": q.column, "kind": q.kind, "output_columns": q.outputs(),
                  "not_generalizable": sum(not_generalizable[c] for c in q.outputs())} for q in quasi_list]
    return DepersonalizeReport(
        output=output, k=k, counted="subjects" if by_subject else "rows", rows=rows, rows_written=written,
        suppressed_rows=rows - written, random_ids=pcol is not None, quasi=quasi_doc, before=before_stats,
        after=after_stats, not_generalizable={c: n for c, n in not_generalizable.items() if n},
        left_out=left_out, seconds=time.monotonic() - started)


def _pseudonym_column(dataset: Dataset, explicit: str | None, manifest: str | Path | None) -> str | None:
    if explicit is not None:
        if explicit not in dataset.columns:
            raise InvalidInput(f"no column named {explicit!r} in {dataset.name}", field="pseudonym_column")
        return explicit
    if manifest is not None:
        name = read_manifest(manifest)["pseudonym"]["column"]
        if name not in dataset.columns:
            raise InvalidInput(f"the manifest's pseudonym column {name!r} is not in {dataset.name}", field="manifest")
        return name
    return "pseudonym" if "pseudonym" in dataset.columns else None


def _guard_identifying(dataset: Dataset, declared: Mapping[str, Quasi], pcol: str | None, sample_rows: int,
                       scan_values: bool) -> None:
    """Refuse to export a column that still identifies people unless it was declared (L-PD-DEPERS)."""
    from ..discovery.columns import IDENTIFYING, classify_column

    undeclared = [c for c in dataset.columns if c not in declared and c != pcol]
    if not undeclared:
        return
    samples = dataset.sample(sample_rows)
    scan = _default_scan() if scan_values else None
    for name in undeclared:
        verdict = classify_column(name, samples.get(name, []), scan)
        if verdict.category == IDENTIFYING:
            raise InvalidInput(
                f"column {name!r} identifies people ({verdict.rule}); depersonalized data must not hold it: "
                f"declare it --quasi {name}=drop, or a generalization (e.g. {name}=address), or {name}=keep "
                "to keep it on your own responsibility", field="quasi")


class _Plan:
    """How each input column becomes output columns, per format."""

    def __init__(self, dataset: Dataset, declared: Mapping[str, Quasi], pcol: str | None, id_column: str,
                 out_format: str) -> None:
        self.dataset = dataset
        self.declared = declared
        self.pcol = pcol
        self.id_column = id_column
        self.out_format = out_format
        self.quasi = [declared[c] for c in dataset.columns if c in declared and declared[c].is_quasi]
        # Output columns, in input order: (output name, source column, what) — what: id | quasi:<n> | copy
        self.columns: list[tuple[str, str, str]] = []
        position = {q.column: n for n, q in enumerate(self.quasi)}
        for c in dataset.columns:
            q = declared.get(c)
            if c == pcol:
                self.columns.append((id_column, c, "id"))
            elif q is None or q.kind == "keep":
                self.columns.append((c, c, "copy"))
            elif q.kind == "drop":
                continue
            else:
                for j, name in enumerate(q.outputs()):
                    self.columns.append((name, c, f"quasi:{position[c]}:{j}"))
        names = [n for n, _, _ in self.columns]
        clash = [n for n in names if names.count(n) > 1]
        if clash:
            raise InvalidInput(f"output column {clash[0]!r} would appear twice; rename it or choose --id-column",
                               field="quasi")
        self.schema: Any = None
        if dataset.kind in ("parquet", "sql") and out_format == "parquet":
            import pyarrow as pa

            fields = []
            for name, source, what in self.columns:
                fields.append(dataset.schema.field(source) if what == "copy" else pa.field(name, pa.string()))  # type: ignore[attr-defined]
            self.schema = pa.schema(fields)

    def header(self) -> list[str]:
        return [n for n, _, _ in self.columns]

    def tmp_path(self, output: Path) -> Path:
        return output.with_name("." + output.name + ".depersonalizing")

    def open_sink(self, output: Path) -> _Output:
        tmp = self.tmp_path(output)
        if self.out_format == "csv":
            return CsvOutput(tmp, self.header(), delimiter=getattr(self.dataset, "delimiter", ","))
        if self.out_format == "jsonl":
            return JsonlOutput(tmp)
        return _ParquetFileOutput(tmp, self.schema)

    def _cells(self, batch: Batch) -> tuple[dict[str, list[Any]], int]:
        """Column → values for the batch (malformed rows included as None, filtered by the caller)."""
        kind = self.dataset.kind
        if kind == "csv":
            return {c: [row[i] if i < len(row) else None for row in batch.rows]
                    for i, c in enumerate(self.dataset.columns)}, batch.size
        if kind == "jsonl":
            return {c: [(rec or {}).get(c) for rec in batch.rows] for c in self.dataset.columns}, batch.size
        return {c: batch.table.column(i).to_pylist() for i, c in enumerate(self.dataset.columns)}, batch.size

    def quasi_rows(self, batch: Batch, ids: RandomIds, anonymous: Iterator[int],
                   not_generalizable: Counter) -> Iterator[tuple[tuple[str | None, ...], int, int]]:
        """(generalized quasi values, subject number, position in batch) for every well-formed row."""
        cells, size = self._cells(batch)
        self._generalized: dict[int, list[list[str | None]]] = {}
        pseudonyms = cells[self.pcol] if self.pcol else None
        quasi_values = [(q, cells[q.column]) for q in self.quasi]
        for i in range(size):
            if i in batch.bad:
                continue
            row: list[str | None] = []
            per_quasi: list[list[str | None]] = []
            for q, values in quasi_values:
                raw = values[i]
                out = q.generalize(raw)
                if _cell_text(raw) is not None:
                    for name, value in zip(q.outputs(), out):
                        if value is None:
                            not_generalizable[name] += 1
                per_quasi.append(out)
                row.extend(out)
            self._generalized[i] = per_quasi
            pseudonym = _cell_text(pseudonyms[i]) if pseudonyms is not None else None
            subject = int.from_bytes(ids.digest(pseudonym)[:8], "big") if pseudonym else next(anonymous)
            yield tuple(row), subject, i

    def output(self, batch: Batch, keep: list[int], ids: RandomIds) -> Any:
        cells, _ = self._cells(batch)
        out_rows: list[list[Any]] = []
        for i in keep:
            generalized = self._generalized[i]
            row: list[Any] = []
            for name, source, what in self.columns:
                if what == "id":
                    pseudonym = _cell_text(cells[source][i])
                    row.append(ids.id_for(pseudonym) if pseudonym else None)
                elif what == "copy":
                    row.append(cells[source][i])
                else:
                    _, n, j = what.split(":")
                    row.append(generalized[int(n)][int(j)])
            out_rows.append(row)
        names = self.header()
        if self.out_format == "csv":
            return [["" if v is None else v if isinstance(v, str) else _csv_text(v) for v in r] for r in out_rows]
        if self.out_format == "jsonl":
            records = []
            for r in out_rows:
                record = {}
                for (name, _, what), value in zip(self.columns, r):
                    if value is None and what == "copy":
                        continue  # a field the record did not have stays absent
                    record[name] = value
                records.append(record)
            return records
        import pyarrow as pa

        columns = list(zip(*out_rows)) if out_rows else [[] for _ in names]
        return pa.RecordBatch.from_arrays([pa.array(list(col), type=self.schema.field(n).type)
                                           for col, n in zip(columns, names)], schema=self.schema)
