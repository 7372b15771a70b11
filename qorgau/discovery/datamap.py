"""The data map: where an operator holds personal data — which source, which fields, which types, how many.

L-PD-GOV (PD law Art. 25) asks an operator to keep a list of the personal data it processes; this module
keeps that list up to date from scans. Each file or database scanned becomes one
:class:`~qorgau.discovery.models.DataSource` (by organization and *locator*: an absolute path, a database
URL without its password, or ``upload:<name>``); each column/field of it holding personal data becomes a
:class:`~qorgau.discovery.models.DataMapField` with its L-PD-SPLIT category (``identifying`` or
``personal_data``), special category and the rule that decided; each entity type found in a field becomes
a :class:`~qorgau.discovery.models.DataMapCount`. Counts, types and places only — never a value.

How a scan becomes a map entry:

1. :class:`DataMapCollector` is the ``on_place`` callback of :func:`.scanning.scan_paths`. It sees every
   place (a cell, a record, a JSON value, a line with findings) as it streams by and keeps, per field,
   only counters: findings per type, the best score, how many values the field had and which *set of
   types* each value held. Memory grows with the number of fields, not with the input.
2. :func:`record_result` turns one finished :class:`.scanning.SourceResult` plus its tally into the
   source's rows. Table-like fields are classified by :func:`.columns.classify_column`: by their name
   (``диагноз``, ``salary``, ``ИИН`` …) and by the share of their values in which the scanner found each
   type. The scanner already looked at every value, so the classifier gets those per-value verdicts
   instead of the values (which are never kept): the same rules, no second scan, nothing to leak. A
   personal-data column without findings (``диагноз``) still appears, with the name rule that decided.
3. A rescan replaces the source's fields and counts (the map is the current state); a field still present
   keeps its ``first_seen_at``. A source read only partly keeps the fields it did not reach; a source that
   could not be read at all keeps its previous fields and gets ``status="failed"`` and the reason.

Column names are schema, not personal data — except when they are (a pivoted sheet with IINs as headers):
a field whose name holds an identifier is stored as ``(name withheld N)`` and classified by its values.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..core import audit
from ..core.db import tenant_of, utcnow
from ..core.errors import InvalidInput, NotFound
from .columns import IDENTIFYING, NONE, PERSONAL_DATA, ColumnClass, classify_column
from .models import DataMapCount, DataMapField, DataSource
from .scanning import Place, SourceResult
from .sources import display_url, is_database_url
from .types import Finding

UPLOAD_PREFIX = "upload:"
TEXT_FIELD = "(text)"
HEADER_KINDS = frozenset({"csv", "tsv", "xlsx"})  # row 1 of these is the header row (see sources.py)
CLASSIFY_SAMPLE = 1000  # per-value verdicts handed to the column classifier (shares are kept exact)
NO_TYPES = "-"  # a value in which the scanner found nothing (non-blank, so the classifier counts it)
MAX_ERRORS_KEPT = 5
CATEGORIES = (IDENTIFYING, PERSONAL_DATA)

Classifier = Callable[[str, Sequence[str | None], Callable[[str], list[Finding]] | None], ColumnClass]


# --- fields: where in a source a place is ----------------------------------------------------------

_ARRAY_INDEX = re.compile(r"\[\d+\]")
_KEY_POSITION = re.compile(r"\[#\d+\]")
_LAST_KEY = re.compile(r'(?:\.([^.\[\]]+)|\[("(?:[^"\\]|\\.)*")\])(?:\[\]|\[\*\])*$')


@dataclass(frozen=True, slots=True)
class FieldKey:
    """A field of a source: its map name, the name to classify by, and whether it holds separate values."""

    name: str
    column: str  # the bare column/key name the classifier reads ("" when it has none)
    structured: bool  # values (cells, records, JSON leaves) rather than running text


TEXT_KEY = FieldKey(TEXT_FIELD, "", False)
_path_cache: dict[str, FieldKey] = {}


def collapse_path(path: str) -> str:
    """``$.clients[3].iin`` → ``$.clients[].iin``; positional keys (``[#0]``, a map keyed by IIN) → ``[*]``."""
    return _KEY_POSITION.sub("[*]", _ARRAY_INDEX.sub("[]", path))


def _path_key(path: str) -> FieldKey:
    key = _path_cache.get(path)
    if key is None:
        collapsed = collapse_path(path)
        column = ""
        if not collapsed.endswith("#key"):
            match = _LAST_KEY.search(collapsed)
            if match is not None:
                column = match.group(1) if match.group(1) is not None else json.loads(match.group(2))
        key = FieldKey(collapsed, column, True)
        if len(_path_cache) > 50_000:  # documents with ever-new paths must not grow this forever
            _path_cache.clear()
        _path_cache[path] = key
    return key


_column_cache: dict[Any, FieldKey] = {}


def field_of(location: dict[str, Any]) -> FieldKey:
    """The field a place belongs to, from its location (the keys :class:`.sources.Chunk` documents)."""
    column = location.get("column")
    if column is not None and "sheet" not in location and "table" not in location:  # CSV/TSV/Parquet: hot path
        key = _column_cache.get(column)
        if key is None:
            if len(_column_cache) > 50_000:
                _column_cache.clear()
            key = _column_cache[column] = FieldKey(str(column), str(column), True)
        return key
    if "sheet" in location:  # xlsx
        column = str(location.get("column", ""))
        return FieldKey(f"{location['sheet']}!{column}", column, True)
    if "column" in location:
        column = str(location["column"])
        if "table" in location:  # SQL
            return FieldKey(f"{location['table']}.{column}", column, True)
        return FieldKey(column, column, True)  # CSV / TSV / Parquet
    if "table" in location and "cell" in location:  # docx table
        return FieldKey(f"(table {location['table']}, column {location['cell']})", "", True)
    if "path" in location:  # JSON document, JSON Lines record without a text field
        return _path_key(str(location["path"]))
    if "field" in location:  # JSON Lines with a text field (the contract)
        name = str(location["field"])
        return FieldKey(name, name, True)
    return TEXT_KEY  # text lines, docx paragraphs/headers, PDF pages, stdin


# --- tallies: what a scan saw, per field, in counters only ------------------------------------------


class FieldTally:
    """What one field held: findings per type (best score, category), and — for fields of separate values
    — how many values there were and which set of types each one held. Counters only."""

    __slots__ = ("key", "structured", "values", "typesets", "counts", "max_score", "categories", "header_types",
                 "_pending_key", "_pending_types")

    def __init__(self, key: FieldKey) -> None:
        self.key = key
        self.structured = key.structured
        self.values = 0
        self.typesets: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.max_score: dict[str, float] = {}
        self.categories: dict[str, str] = {}
        self.header_types: set[str] = set()
        self._pending_key: dict[str, Any] | None = None
        self._pending_types: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"FieldTally({self.key.name!r}, values={self.values}, findings={sum(self.counts.values())})"

    def add(self, place: Place, *, header: bool) -> None:
        """Tally one place (the hot path: it runs for every cell of a table)."""
        findings = place.findings
        if findings:
            counts, best, categories = self.counts, self.max_score, self.categories
            for f in findings:
                kind = f.type
                counts[kind] += 1
                if f.score > best.get(kind, -1.0):
                    best[kind] = f.score
                if kind not in categories:
                    categories[kind] = f.category
            if header:
                self.header_types.update(f.type for f in findings)
                return
            types = frozenset([f.type for f in findings])
        elif header:
            return
        else:
            types = _NO_TYPES_SET
        if not self.structured or place.error is not None:
            return
        # Pieces of one long cell arrive one after another with the same location: they are one value.
        location = place.location
        pending = self._pending_types
        if pending is not None:
            if location == self._pending_key:
                self._pending_types = pending | types
                return
            self.values += 1
            self.typesets[_encode(pending)] += 1
        self._pending_key, self._pending_types = location, types

    def finish(self) -> FieldTally:
        if self._pending_types is not None:
            self.values += 1
            self.typesets[_encode(self._pending_types)] += 1
            self._pending_key, self._pending_types = None, None
        return self

    @property
    def findings(self) -> int:
        return sum(self.counts.values())

    def verdicts(self, cap: int = CLASSIFY_SAMPLE) -> list[str]:
        """One encoded type set per value, scaled down to at most ``cap`` values with the same shares."""
        if self.values <= cap:
            return [code for code, n in self.typesets.items() for _ in range(n)]
        scale = cap / self.values
        return [code for code, n in self.typesets.items() for _ in range(round(n * scale))]


_NO_TYPES_SET: frozenset[str] = frozenset()
_encoded: dict[frozenset[str], str] = {_NO_TYPES_SET: NO_TYPES}


def _encode(types: frozenset[str]) -> str:
    code = _encoded.get(types)
    if code is None:
        code = _encoded[types] = "|".join(sorted(types))
    return code


def _decode(code: str) -> list[Finding]:
    """The classifier's ``scan``: a value's verdict back to findings of those types (no text involved)."""
    if code == NO_TYPES:
        return []
    return [Finding(t, 0, 1, 1.0, "datamap") for t in code.split("|")]


class SourceTally:
    """Every field of one source as the scan saw it."""

    __slots__ = ("kind", "fields", "_header_rows")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fields: dict[FieldKey, FieldTally] = {}
        self._header_rows = kind in HEADER_KINDS

    def add(self, place: Place) -> None:
        location = place.location
        key = field_of(location)
        tally = self.fields.get(key)
        if tally is None:
            tally = self.fields[key] = FieldTally(key)
        tally.add(place, header=self._header_rows and location.get("row") == 1)

    def finish(self) -> SourceTally:
        for tally in self.fields.values():
            tally.finish()
        return self

    @classmethod
    def from_places(cls, kind: str, places: Iterable[Place]) -> SourceTally:
        """A tally from a result that kept its places (only places with findings: no value shares)."""
        tally = cls(kind)
        for place in places:
            tally.add(place)
        return tally.finish()


class DataMapCollector:
    """The ``on_place`` callback of :func:`.scanning.scan_paths` that builds a tally per source.

    ``then`` is called after the tally was updated (e.g. the CLI's own report writer), so the data map can
    ride along with any other output. :meth:`take` hands over a finished source's tally.
    """

    def __init__(self, then: Callable[[SourceResult, Place], None] | None = None) -> None:
        self._tallies: dict[int, tuple[SourceResult, SourceTally]] = {}
        self._then = then
        self._last: SourceResult | None = None
        self._last_tally: SourceTally | None = None

    def __call__(self, result: SourceResult, place: Place) -> None:
        if result is self._last:
            tally = self._last_tally
        else:
            entry = self._tallies.get(id(result))
            if entry is None:
                entry = self._tallies[id(result)] = (result, SourceTally(result.kind))
            self._last, tally = result, entry[1]
            self._last_tally = tally
        tally.add(place)  # type: ignore[union-attr]
        if self._then is not None:
            self._then(result, place)

    def take(self, result: SourceResult) -> SourceTally:
        entry = self._tallies.pop(id(result), None)
        if result is self._last:
            self._last = self._last_tally = None
        return (entry[1] if entry is not None else SourceTally(result.kind)).finish()

    def discard(self) -> None:
        self._tallies.clear()
        self._last = self._last_tally = None


# --- locators -------------------------------------------------------------------------------------


def locator_for(name: str) -> str:
    """Where a source is, as the map keys it: ``upload:<name>``, a DB URL without password, an absolute path."""
    if name.startswith(UPLOAD_PREFIX):
        return _bounded(name, 1000)
    if is_database_url(name):
        from sqlalchemy.engine import make_url

        shown = display_url(name)
        try:
            url = make_url(shown)
            if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
                    and not os.path.isabs(url.database):
                shown = url.set(database=os.path.abspath(url.database)).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - display_url already made an unparsable URL safe to show
            pass
        return _bounded(shown, 1000)
    return _bounded(os.path.abspath(name), 1000)


def _bounded(text: str, limit: int) -> str:
    """``text`` if it fits the column, else a prefix plus a digest (still unique, still recognizable)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return text[: limit - 17] + "…" + digest


def _looks_personal(name: str) -> bool:
    """A field name holding an IIN, phone, card or e-mail (the audit log's own guard decides)."""
    try:
        audit.assert_no_personal_data({"field": name})
    except InvalidInput:
        return True
    return False


# --- recording ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldVerdict:
    """What the map will say about one field."""

    name: str
    category: str
    special: str | None
    entity_type: str | None
    rule: str
    confidence: float
    counts: dict[str, int]
    max_score: dict[str, float]
    categories: dict[str, str]

    @property
    def findings(self) -> int:
        return sum(self.counts.values())


def source_status(result: SourceResult) -> str:
    """``skipped`` (deliberately not read), ``failed`` (nothing read), ``partial`` (read with errors), ``ok``."""
    if result.skipped is not None:
        return "skipped"
    if result.errors:
        return "partial" if result.chunks_scanned > 0 else "failed"
    return "ok"


def judge_fields(tally: SourceTally, classify: Classifier = classify_column) -> list[FieldVerdict]:
    """The fields that hold personal data, each with its category and the rule that decided."""
    verdicts: list[FieldVerdict] = []
    withheld = 0
    for key, t in tally.fields.items():
        name, column = key.name, key.column
        if t.header_types or (column and _looks_personal(column)) or _looks_personal(name):
            withheld += 1
            name, column = f"(name withheld {withheld})", ""
        verdict: ColumnClass | None = None
        if key.structured:
            verdict = classify(column, t.verdicts(), _decode)
        if verdict is not None and verdict.category != NONE:
            category, special, entity_type = verdict.category, verdict.special_category, verdict.entity_type
            rule, confidence = verdict.rule, verdict.confidence
        elif t.counts:
            cats = set(t.categories.values())
            category = IDENTIFYING if IDENTIFYING in cats or not cats else sorted(cats)[0]
            special = None
            entity_type = next(iter(t.counts)) if len(t.counts) == 1 else None
            rule, confidence = "findings", max(t.max_score.values())
        else:
            continue
        verdicts.append(FieldVerdict(_bounded(name, 500), category, special, entity_type, _bounded(rule, 200),
                                     round(float(confidence), 4), dict(t.counts),
                                     {k: round(v, 4) for k, v in t.max_score.items()}, dict(t.categories)))
    return verdicts


def record_result(session: Session, result: SourceResult, *, actor: str, job_id: int | None = None,
                  tally: SourceTally | None = None, classify: Classifier = classify_column,
                  locator: str | None = None, now: datetime | None = None) -> DataSource | None:
    """Upsert one scanned source into the data map of the session's organization; audited.

    ``tally`` comes from a :class:`DataMapCollector` (streaming scans); without it the result's kept
    places are tallied (findings only, so column value shares are not known). ``locator`` overrides the
    one derived from ``result.source`` (uploads: ``upload:<original name>``). Returns the source, or
    ``None`` for a skipped input the map never held.
    """
    organization_id = tenant_of(session)
    if organization_id is None:
        raise ValueError("record_result needs a session bound to an organization")
    now = now or utcnow()
    status = source_status(result)
    locator = locator or locator_for(result.source)
    source = session.scalar(select(DataSource).where(DataSource.locator == locator)
                            .options(selectinload(DataSource.fields).selectinload(DataMapField.counts)))
    if source is None:
        if status == "skipped":
            return None
        source = _insert_source(session, organization_id, locator, result.kind, now)
    error = _error_text(result) if status != "skipped" else result.skipped
    source.last_scanned_at, source.last_job_id, source.status, source.last_error = now, job_id, status, error
    removed = 0
    verdicts: list[FieldVerdict] = []
    if status in ("ok", "partial"):
        if tally is None:
            tally = SourceTally.from_places(result.kind, result.places)
        verdicts = judge_fields(tally, classify)
        source.kind = result.kind
        source.encoding = result.encoding
        source.bytes_scanned, source.rows_scanned = result.bytes_scanned, result.rows_scanned
        removed = _replace_fields(session, source, verdicts, now, keep_unseen=status == "partial")
    elif source.kind in ("", "unknown") and result.kind not in ("unknown", "skipped"):
        source.kind = result.kind
    _summarize(source)
    session.flush()
    audit.record(session, actor=actor, action="discovery.datamap.record", object_type="data_source",
                 object_id=str(source.id), organization_id=organization_id,
                 details={"job_id": job_id, "status": status, "kind": source.kind, "fields": len(source.fields),
                          "removed_fields": removed, "findings": source.findings})
    return source


def _insert_source(session: Session, organization_id: int, locator: str, kind: str, now: datetime) -> DataSource:
    """A new source; if another transaction inserted the same locator meanwhile, that row is used."""
    source = DataSource(organization_id=organization_id, locator=locator, kind=kind, first_seen_at=now,
                        last_scanned_at=now, status="ok", bytes_scanned=0, rows_scanned=0, findings=0,
                        identifying=False, sensitive=False)
    try:
        with session.begin_nested():
            session.add(source)
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(DataSource).where(DataSource.locator == locator)
                                  .options(selectinload(DataSource.fields).selectinload(DataMapField.counts)))
        if existing is None:
            raise
        return existing
    source.fields = []
    return source


def _error_text(result: SourceResult) -> str | None:
    if not result.errors:
        return None
    shown = "; ".join(result.errors[:MAX_ERRORS_KEPT])
    more = len(result.errors) - MAX_ERRORS_KEPT
    return shown + (f"; … {more} more" if more > 0 else "")


def _replace_fields(session: Session, source: DataSource, verdicts: list[FieldVerdict], now: datetime, *,
                    keep_unseen: bool) -> int:
    """Make the source's fields match ``verdicts``; rows are updated in place (ids and first_seen kept)."""
    existing = {f.field: f for f in source.fields}
    wanted = {v.name: v for v in verdicts}
    removed = 0
    if not keep_unseen:
        for name, row in existing.items():
            if name not in wanted:
                source.fields.remove(row)
                session.delete(row)
                removed += 1
        session.flush()  # deletes first: a field can come back under a name just freed
    for name, v in wanted.items():
        row = existing.get(name)
        if row is None:
            row = DataMapField(organization_id=source.organization_id, field=name, first_seen_at=now, counts=[])
            source.fields.append(row)
        row.category, row.special, row.entity_type = v.category, v.special, v.entity_type
        row.rule, row.confidence, row.findings, row.last_seen_at = v.rule, v.confidence, v.findings, now
        _replace_counts(session, row, v)
    return removed


def _replace_counts(session: Session, row: DataMapField, v: FieldVerdict) -> None:
    current = {c.entity_type: c for c in row.counts}
    for entity_type, c in current.items():
        if entity_type not in v.counts:
            row.counts.remove(c)
            session.delete(c)
    for entity_type, n in v.counts.items():
        c = current.get(entity_type)
        if c is None:
            c = DataMapCount(organization_id=row.organization_id, entity_type=entity_type)
            row.counts.append(c)
        c.category = v.categories.get(entity_type, IDENTIFYING)
        c.count, c.max_score = n, v.max_score.get(entity_type, 0.0)


def _summarize(source: DataSource) -> None:
    source.findings = sum(f.findings for f in source.fields)
    source.identifying = any(f.category == IDENTIFYING or any(c.category == IDENTIFYING for c in f.counts)
                             for f in source.fields)
    source.sensitive = any(f.special is not None for f in source.fields)


def forget_source(session: Session, source_id: int, *, actor: str) -> None:
    """Remove a source and its fields from the map (it was deleted, or scanned by mistake); audited."""
    source = get_source(session, source_id)
    organization_id = source.organization_id
    session.delete(source)
    session.flush()
    audit.record(session, actor=actor, action="discovery.datamap.forget", object_type="data_source",
                 object_id=str(source_id), organization_id=organization_id,
                 details={"kind": source.kind, "fields": len(source.fields), "findings": source.findings})


# --- queries --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFilter:
    """Filters of the map's list and exports. ``search`` is a case-insensitive substring of the locator."""

    kind: str | None = None
    category: str | None = None
    entity_type: str | None = None
    sensitive: bool | None = None
    status: str | None = None
    search: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.kind:
            query = query.where(DataSource.kind == self.kind)
        if self.status:
            query = query.where(DataSource.status == self.status)
        if self.sensitive is not None:
            query = query.where(DataSource.sensitive.is_(self.sensitive))
        if self.category == IDENTIFYING:
            query = query.where(DataSource.identifying.is_(True))
        elif self.category:
            query = query.where(exists().where(DataMapField.source_id == DataSource.id,
                                               DataMapField.category == self.category))
        if self.entity_type:
            has_type = or_(
                exists().where(DataMapField.source_id == DataSource.id, DataMapField.entity_type == self.entity_type),
                exists().where(DataMapField.source_id == DataSource.id, DataMapCount.field_id == DataMapField.id,
                               DataMapCount.entity_type == self.entity_type))
            query = query.where(has_type)
        if self.search:
            pattern = "%" + self.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(func.lower(DataSource.locator).like(pattern, escape="\\"))
        return query


@dataclass
class SourceSummary:
    """A row of the map's list: the source and its fields and findings per category and type."""

    source: DataSource
    fields: int = 0
    fields_by_category: dict[str, int] = field(default_factory=dict)
    special: list[str] = field(default_factory=list)
    findings_by_category: dict[str, int] = field(default_factory=dict)
    findings_by_type: dict[str, int] = field(default_factory=dict)


@dataclass
class SourcePage:
    items: list[SourceSummary]
    total: int
    limit: int
    offset: int


def list_sources(session: Session, filters: SourceFilter | None = None, *, limit: int = 50,
                 offset: int = 0) -> SourcePage:
    """One page of the organization's sources (ordered by locator) with per-category and per-type totals."""
    filters = filters or SourceFilter()
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")
    base = filters.apply(select(DataSource))
    total = session.scalar(select(func.count()).select_from(base.with_only_columns(DataSource.id).subquery())) or 0
    rows = list(session.scalars(base.order_by(DataSource.locator, DataSource.id).limit(limit).offset(offset)))
    summaries = {s.id: SourceSummary(s) for s in rows}
    if summaries:
        ids = list(summaries)
        for source_id, category, special, n in session.execute(
                select(DataMapField.source_id, DataMapField.category, DataMapField.special, func.count())
                .where(DataMapField.source_id.in_(ids))
                .group_by(DataMapField.source_id, DataMapField.category, DataMapField.special)):
            s = summaries[source_id]
            s.fields += n
            s.fields_by_category[category] = s.fields_by_category.get(category, 0) + n
            if special and special not in s.special:
                s.special.append(special)
        for source_id, entity_type, category, n in session.execute(
                select(DataMapField.source_id, DataMapCount.entity_type, DataMapCount.category,
                       func.sum(DataMapCount.count))
                .join(DataMapCount, DataMapCount.field_id == DataMapField.id)
                .where(DataMapField.source_id.in_(ids))
                .group_by(DataMapField.source_id, DataMapCount.entity_type, DataMapCount.category)):
            s = summaries[source_id]
            s.findings_by_type[entity_type] = s.findings_by_type.get(entity_type, 0) + int(n)
            s.findings_by_category[category] = s.findings_by_category.get(category, 0) + int(n)
        for s in summaries.values():
            s.special.sort()
            s.findings_by_type = dict(sorted(s.findings_by_type.items(), key=lambda kv: (-kv[1], kv[0])))
    return SourcePage(list(summaries.values()), int(total), limit, offset)


def get_source(session: Session, source_id: int) -> DataSource:
    """One source with its fields and counts; another organization's source is simply not found."""
    source = session.scalar(select(DataSource).where(DataSource.id == source_id)
                            .options(selectinload(DataSource.fields).selectinload(DataMapField.counts)))
    if source is None:
        raise NotFound("data source not found", field="source_id")
    return source


def totals(session: Session) -> dict[str, Any]:
    """The organization's map in numbers, for the dashboard: sources, fields and findings by category/type."""
    sources = session.execute(select(
        func.count(DataSource.id),
        func.count(DataSource.id).filter(DataSource.identifying.is_(True)),
        func.count(DataSource.id).filter(DataSource.sensitive.is_(True)),
        func.count(DataSource.id).filter(DataSource.status.in_(("failed", "partial"))),
        func.max(DataSource.last_scanned_at))).one()
    fields_by_category: dict[str, int] = {}
    fields_by_special: dict[str, int] = {}
    for category, special, n in session.execute(select(DataMapField.category, DataMapField.special, func.count())
                                                .group_by(DataMapField.category, DataMapField.special)):
        fields_by_category[category] = fields_by_category.get(category, 0) + n
        if special:
            fields_by_special[special] = fields_by_special.get(special, 0) + n
    by_type: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for entity_type, category, n in session.execute(
            select(DataMapCount.entity_type, DataMapCount.category, func.sum(DataMapCount.count))
            .group_by(DataMapCount.entity_type, DataMapCount.category)):
        by_type[entity_type] = by_type.get(entity_type, 0) + int(n)
        by_category[category] = by_category.get(category, 0) + int(n)
    return {
        "sources": sources[0], "identifying_sources": sources[1], "sensitive_sources": sources[2],
        "problem_sources": sources[3], "last_scanned_at": sources[4],
        "fields": sum(fields_by_category.values()), "fields_by_category": fields_by_category,
        "fields_by_special": dict(sorted(fields_by_special.items())),
        "findings": sum(by_type.values()),
        "findings_by_type": dict(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
        "findings_by_category": by_category,
    }


def kinds(session: Session) -> list[str]:
    """The source kinds present in the map (for filter menus)."""
    return list(session.scalars(select(DataSource.kind).distinct().order_by(DataSource.kind)))


# --- exports (streamed; counts and places, never values) ----------------------------------------------

CSV_COLUMNS = ("source_id", "locator", "kind", "status", "identifying", "sensitive", "first_seen_at",
               "last_scanned_at", "last_job_id", "field", "category", "special", "field_entity_type", "rule",
               "confidence", "field_findings", "field_first_seen_at", "field_last_seen_at", "entity_type",
               "type_category", "count", "max_score")
EXPORT_YIELD = 2000  # rows fetched from the database at a time while streaming an export
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SOURCE_COLUMNS = (DataSource.id, DataSource.locator, DataSource.kind, DataSource.status, DataSource.last_error,
                   DataSource.encoding, DataSource.identifying, DataSource.sensitive, DataSource.bytes_scanned,
                   DataSource.rows_scanned, DataSource.findings, DataSource.first_seen_at,
                   DataSource.last_scanned_at, DataSource.last_job_id)
_FIELD_COLUMNS = (DataMapField.field, DataMapField.category, DataMapField.special, DataMapField.entity_type,
                  DataMapField.rule, DataMapField.confidence, DataMapField.findings, DataMapField.first_seen_at,
                  DataMapField.last_seen_at)
_COUNT_COLUMNS = (DataMapCount.entity_type, DataMapCount.category, DataMapCount.count, DataMapCount.max_score)
_F = len(_SOURCE_COLUMNS)
_C = _F + len(_FIELD_COLUMNS)


def _export_rows(session: Session, filters: SourceFilter | None) -> Iterator[Any]:
    """Source × field × count rows in source, field, type order: one query, streamed (memory stays flat
    however large the map), one snapshot (the caller's transaction)."""
    query = (select(*_SOURCE_COLUMNS, *_FIELD_COLUMNS, *_COUNT_COLUMNS).select_from(DataSource)
             .outerjoin(DataMapField, DataMapField.source_id == DataSource.id)
             .outerjoin(DataMapCount, DataMapCount.field_id == DataMapField.id))
    query = (filters or SourceFilter()).apply(query).order_by(DataSource.id, DataMapField.field,
                                                              DataMapCount.entity_type)
    for partition in session.execute(query.execution_options(yield_per=EXPORT_YIELD)).partitions():
        yield from partition


def _cell(value: Any) -> Any:
    """A CSV cell safe to open in a spreadsheet: text starting with = + - @ is prefixed with ' (CWE-1236).

    Field names and paths come from the scanned files, so they are attacker-controlled text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def export_csv(session: Session, filters: SourceFilter | None = None) -> Iterator[str]:
    """One row per source × field × entity type (a field without findings: one row, empty type, count 0), a
    header first; a source without fields gets one row with empty field columns. Columns: ``CSV_COLUMNS``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    no_field = (None,) * (len(_FIELD_COLUMNS) + len(_COUNT_COLUMNS))
    no_count = (None, None, 0, None)
    n = 0
    for row in _export_rows(session, filters):
        head = (row[0], row[1], row[2], row[3], row[6], row[7], row[11], row[12], row[13])
        if row[_F] is None:
            tail: tuple[Any, ...] = no_field
        else:
            tail = tuple(row[_F:_C]) + (tuple(row[_C:]) if row[_C] is not None else no_count)
        writer.writerow([_cell(v) for v in head + tail])
        n += 1
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def source_dict(source: DataSource, *, fields: bool = True) -> dict[str, Any]:
    """A source as JSON: everything the map knows about it (no values: there are none to give)."""
    out: dict[str, Any] = {
        "id": source.id, "locator": source.locator, "kind": source.kind, "status": source.status,
        "last_error": source.last_error, "encoding": source.encoding, "identifying": source.identifying,
        "sensitive": source.sensitive, "bytes_scanned": source.bytes_scanned, "rows_scanned": source.rows_scanned,
        "findings": source.findings, "first_seen_at": source.first_seen_at.isoformat(),
        "last_scanned_at": source.last_scanned_at.isoformat(), "last_job_id": source.last_job_id,
    }
    if fields:
        out["fields"] = [field_dict(f) for f in source.fields]
    return out


def field_dict(f: DataMapField) -> dict[str, Any]:
    return {"field": f.field, "category": f.category, "special": f.special, "sensitive": f.special is not None,
            "entity_type": f.entity_type, "rule": f.rule, "confidence": f.confidence, "findings": f.findings,
            "first_seen_at": f.first_seen_at.isoformat(), "last_seen_at": f.last_seen_at.isoformat(),
            "counts": [{"entity_type": c.entity_type, "category": c.category, "count": c.count,
                        "max_score": c.max_score} for c in f.counts]}


def export_json(session: Session, filters: SourceFilter | None = None, *,
                generated_at: datetime | None = None) -> Iterator[str]:
    """``{"format": "qorgau-datamap", "version": 1, "generated_at", "sources": [{…, "fields": [{…,
    "counts": […]}]}]}``, streamed one source at a time (the same rows as the CSV export, nested)."""
    yield json.dumps({"format": "qorgau-datamap", "version": 1,
                      "generated_at": (generated_at or utcnow()).isoformat()}, ensure_ascii=False)[:-1]
    yield ', "sources": ['
    current: dict[str, Any] | None = None
    field_row: dict[str, Any] | None = None
    first = True
    for row in _export_rows(session, filters):
        if current is None or current["id"] != row[0]:
            if current is not None:
                yield ("" if first else ", ") + json.dumps(current, ensure_ascii=False)
                first = False
            current = dict(zip(_SOURCE_KEYS, row[:_F], strict=True))
            for key in ("first_seen_at", "last_scanned_at"):
                current[key] = current[key].isoformat()
            current["fields"] = []
            field_row = None
        if row[_F] is not None and (field_row is None or field_row["field"] != row[_F]):
            f = row[_F:_C]
            field_row = {"field": f[0], "category": f[1], "special": f[2], "sensitive": f[2] is not None,
                         "entity_type": f[3], "rule": f[4], "confidence": f[5], "findings": f[6],
                         "first_seen_at": f[7].isoformat(), "last_seen_at": f[8].isoformat(), "counts": []}
            current["fields"].append(field_row)
        if row[_C] is not None and field_row is not None:
            c = row[_C:]
            field_row["counts"].append({"entity_type": c[0], "category": c[1], "count": c[2], "max_score": c[3]})
    if current is not None:
        yield ("" if first else ", ") + json.dumps(current, ensure_ascii=False)
    yield "]}\n"


_SOURCE_KEYS = ("id", "locator", "kind", "status", "last_error", "encoding", "identifying", "sensitive",
                "bytes_scanned", "rows_scanned", "findings", "first_seen_at", "last_scanned_at", "last_job_id")


def summary_counts(source: DataSource) -> dict[str, Any]:
    """Per-type and per-category totals of one source (its detail page)."""
    by_type: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    fields_by_category: Counter[str] = Counter()
    for f in source.fields:
        fields_by_category[f.category] += 1
        for c in f.counts:
            by_type[c.entity_type] += c.count
            by_category[c.category] += c.count
    return {"findings_by_type": dict(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
            "findings_by_category": dict(by_category), "fields_by_category": dict(fields_by_category),
            "special": sorted({f.special for f in source.fields if f.special})}
