"""The leak register's public transparency statistics and open data (issue 8; L-PD-LEAK-REGISTER, L-PD-BREACH).

What the public sees (no login): **published** incidents only (the authorized body verified and published them;
a ``fabricated`` one never counts, even if it was published before), and of those only the incidents that
affected at least ``settings.leaks_public_min_people`` people (default 1,000): the public figures are about
breaches of scale; every report, small or not, stays with the authorized body.

* :meth:`Transparency.statistics` — incidents and people affected by sector, by data class, by month filed (the
  last 24 months plus one "earlier" row) and by nature of the breach.
* :meth:`Transparency.published_incidents` — the list: operator, sector, reference, month filed, nature, data
  classes and people affected **rounded** to two significant figures (never the exact number an operator
  reported). Never a leaked value, never the responsible person, never a description written by the operator.

**Statistical disclosure control** (documented in ``docs/leaks-transparency.md``):

* *Primary suppression*: a cell whose count of incidents or of people is under :data:`MIN_CELL` (10) — zero
  included — is shown as ``<10`` (JSON ``null`` with ``"suppressed": true``). Incidents and people of one category
  are suppressed together: a people sum over fewer than 10 incidents could reveal one operator's reported number.
* *Secondary suppression*: every additive table has a published total, so ``total - sum(visible cells)`` is the
  sum of its suppressed cells — one suppressed cell would be recovered outright, and two suppressed cells adding
  up to 18 are both 9. Cells are hidden until every suppressed cell could still be any number from 0 to 9 given
  that sum (:func:`_protected`); each extra cell is the smallest visible one (fewest incidents, then people,
  then key). Which cells were hidden for which reason is not published (a "secondary" label would tell the
  reader that cell is 10 or more and narrow the others). The total goes when it is under 10 itself or nothing
  is left to hide. The month table carries an ``earlier`` row so its total equals the overall total (otherwise
  "overall minus last 24 months" would be an unsuppressed derived cell). The data-class table is not additive
  (an incident has several classes, so its cells and the incident total are not linked by a sum): primary
  suppression only.

Reads span every operator, so they run in a platform-level session (``platform.db.reader()``) and every SELECT is
marked cross-tenant. Addenda (``filing="addendum"``, each a full snapshot of the amendable fields — see
:mod:`qorgau.leaks.incidents`) are merged into their initial filing: the latest addendum's ``people_affected``,
``data_classes``, ``nature`` and ``sector`` win, and the incident counts once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.auth import Organization
from ..core.calendar import ALMATY
from ..core.errors import InvalidInput
from ..core.platform import shared
from .models import DATA_CLASSES, NATURES, SECTORS, LeakIncident

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["DIMENSIONS", "LABELS", "MIN_CELL", "MONTHS", "Cell", "PublicIncident", "PublicIncidentPage",
           "Statistics", "Table", "Transparency", "round_people", "suppress", "transparency_for"]

MIN_CELL = 10            # cells (incidents or people) under this are suppressed
MONTHS = 24              # the month table's window, ending with the current month (Asia/Almaty)
EARLIER = "earlier"      # the month table's row for incidents filed before the window
MAX_PUBLIC_LIMIT = 500
DIMENSIONS: tuple[str, ...] = ("sector", "data_class", "month", "nature")
MERGED_FIELDS: tuple[str, ...] = ("people_affected", "data_classes", "nature", "sector")

# Labels of the stored vocabularies in kk/ru/en: the web page, the JSON and the CSV use the same words.
LABELS: dict[str, dict[str, dict[str, str]]] = {
    "sector": {
        "bank": {"kk": "Банктер", "ru": "Банки", "en": "Banks"},
        "finance": {"kk": "Басқа қаржы ұйымдары", "ru": "Другие финансовые организации", "en": "Other finance"},
        "telecom": {"kk": "Байланыс операторлары", "ru": "Операторы связи", "en": "Telecoms"},
        "marketplace": {"kk": "Маркетплейстер", "ru": "Маркетплейсы", "en": "Marketplaces"},
        "retail": {"kk": "Бөлшек сауда", "ru": "Розничная торговля", "en": "Retail"},
        "state": {"kk": "Мемлекеттік органдар", "ru": "Государственные органы", "en": "State bodies"},
        "health": {"kk": "Денсаулық сақтау", "ru": "Здравоохранение", "en": "Health care"},
        "education": {"kk": "Білім беру", "ru": "Образование", "en": "Education"},
        "transport": {"kk": "Көлік", "ru": "Транспорт", "en": "Transport"},
        "other": {"kk": "Басқа салалар", "ru": "Другие отрасли", "en": "Other sectors"},
    },
    "nature": {
        "hacking": {"kk": "Бұзып кіру", "ru": "Взлом", "en": "Hacking"},
        "ransomware": {"kk": "Бопсалаушы бағдарлама", "ru": "Программа-вымогатель", "en": "Ransomware"},
        "phishing": {"kk": "Фишинг", "ru": "Фишинг", "en": "Phishing"},
        "insider": {"kk": "Ішкі қызметкердің әрекеті", "ru": "Действия инсайдера", "en": "Insider"},
        "unauthorized_disclosure": {"kk": "Рұқсатсыз жария ету", "ru": "Несанкционированное раскрытие",
                                    "en": "Unauthorized disclosure"},
        "loss_theft": {"kk": "Жоғалту немесе ұрлау", "ru": "Утеря или кража", "en": "Loss or theft"},
        "misconfiguration": {"kk": "Қате баптау", "ru": "Ошибка настройки", "en": "Misconfiguration"},
        "scraping": {"kk": "Деректерді жаппай жинау", "ru": "Массовый сбор данных (скрейпинг)", "en": "Scraping"},
        "unknown": {"kk": "Белгісіз", "ru": "Неизвестно", "en": "Unknown"},
    },
    "data_class": {
        "iin": {"kk": "ЖСН", "ru": "ИИН", "en": "IIN"},
        "phone": {"kk": "Телефон нөмірі", "ru": "Номер телефона", "en": "Phone number"},
        "email": {"kk": "Электрондық пошта", "ru": "Электронная почта", "en": "Email address"},
        "full_name": {"kk": "Тегі, аты, әкесінің аты", "ru": "ФИО", "en": "Full name"},
        "date_of_birth": {"kk": "Туған күні", "ru": "Дата рождения", "en": "Date of birth"},
        "address": {"kk": "Мекенжай", "ru": "Адрес", "en": "Address"},
        "passport": {"kk": "Паспорт деректері", "ru": "Паспортные данные", "en": "Passport"},
        "id_card": {"kk": "Жеке куәлік", "ru": "Удостоверение личности", "en": "ID card"},
        "bank_card": {"kk": "Банк картасы", "ru": "Банковская карта", "en": "Bank card"},
        "bank_account": {"kk": "Банк шоты", "ru": "Банковский счёт", "en": "Bank account"},
        "password": {"kk": "Құпиясөздер", "ru": "Пароли", "en": "Passwords"},
        "health": {"kk": "Денсаулық туралы деректер", "ru": "Сведения о здоровье", "en": "Health data"},
        "biometric": {"kk": "Биометриялық деректер", "ru": "Биометрические данные", "en": "Biometric data"},
        "location": {"kk": "Орналасқан жері", "ru": "Местоположение", "en": "Location"},
        "vehicle": {"kk": "Көлік құралы", "ru": "Транспортное средство", "en": "Vehicle"},
        "other": {"kk": "Басқа деректер", "ru": "Другие данные", "en": "Other data"},
    },
    "month": {EARLIER: {"kk": "Ертерек", "ru": "Ранее", "en": "Earlier"}},
}


def label(dimension: str, key: str, lang: str) -> str:
    """The ``lang`` label of a vocabulary value (a month's label is the month itself, ``2026-11``)."""
    found = LABELS.get(dimension, {}).get(key)
    if found is None:
        return key
    return found.get(lang) or found["en"]


# --- suppression: pure functions (tested on their own) ------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One category of a table: counts, or ``None`` when suppressed (``suppression`` says why:
    ``primary`` — under 10 itself; ``secondary`` — hidden so that another suppressed cell can't be recovered)."""

    key: str
    incidents: int | None
    people: int | None
    suppression: str | None = None

    @property
    def suppressed(self) -> bool:
        return self.suppression is not None

    def to_dict(self) -> dict[str, Any]:
        # The reason (primary/secondary) stays internal: published, it would narrow the suppressed cells.
        return {"key": self.key, "incidents": self.incidents, "people": self.people, "suppressed": self.suppressed}


@dataclass(frozen=True)
class Table:
    """One dimension's table: its cells in a fixed order and its total (the total is a cell of its own)."""

    dimension: str
    cells: tuple[Cell, ...]
    total: Cell
    additive: bool = True

    def to_dict(self, langs: Sequence[str] = ("kk", "ru", "en")) -> dict[str, Any]:
        return {"dimension": self.dimension, "additive": self.additive, "total": self.total.to_dict(),
                "cells": [{**c.to_dict(), "labels": {lang: label(self.dimension, c.key, lang) for lang in langs}}
                          for c in self.cells]}


def suppress(dimension: str, counts: Iterable[tuple[str, int, int]], total: tuple[int, int], *,
             additive: bool = True, min_cell: int = MIN_CELL) -> Table:
    """Apply primary and secondary suppression to one table of ``(key, incidents, people)`` rows whose published
    total is ``total = (incidents, people)``. See the module docstring for the method."""
    rows = [(str(k), int(i), int(p)) for k, i, p in counts]
    hidden: dict[str, str] = {k: "primary" for k, i, p in rows if i < min_cell or p < min_cell}
    total_hidden = total[0] < min_cell or total[1] < min_cell
    if additive and not total_hidden:
        # The total minus the visible cells is what the suppressed cells add up to: hide more until that sum
        # leaves every suppressed cell free to be anything from 0 to 9.
        while not _protected(rows, hidden, total[0], min_cell):
            visible = sorted((i, p, k) for k, i, p in rows if k not in hidden)
            if not visible:
                total_hidden = True  # nothing left to hide behind: the total goes too
                break
            hidden[visible[0][2]] = "secondary"
    cells = tuple(Cell(k, None, None, hidden[k]) if k in hidden else Cell(k, i, p) for k, i, p in rows)
    total_cell = Cell("total", None, None, "primary" if total[0] < min_cell or total[1] < min_cell else
                      "secondary") if total_hidden else Cell("total", total[0], total[1])
    return Table(dimension, cells, total_cell, additive)


def _protected(rows: Sequence[tuple[str, int, int]], hidden: Mapping[str, str], total: int, min_cell: int) -> bool:
    """Whether a published total leaves every suppressed cell's incident count open over the whole range
    0…min_cell-1. The ``k`` suppressed cells add up to ``rest = total - visible``.

    * All of them primary (each truly under ``min_cell``): a reader who assumes so — rightly — places each in
      ``[max(0, rest - 9(k-1)), min(9, rest)]``; the full range needs ``9 <= rest <= 9(k-1)`` (so ``k >= 2``).
    * A secondary one among them (10 or more; the reason is not published): the same assumption is now false
      and yields wrong bounds, while without it every cell could be anything from 0 to ``rest`` (``>= 10``).
    """
    if not hidden:
        return True
    top = min_cell - 1
    rest = total - sum(i for key, i, _ in rows if key not in hidden)
    primary = sum(1 for why in hidden.values() if why == "primary")
    if primary < len(hidden):
        return rest >= top
    return top <= rest <= top * (primary - 1)


def round_people(n: int | None) -> int | None:
    """People affected for the public list: two significant figures (``123 456`` → ``120 000``), ``None`` under
    10. The exact number an operator reported is for the regulator; the public needs the order of magnitude."""
    if n is None or n < MIN_CELL:
        return None
    digits = len(str(n))
    if digits <= 2:
        return n
    step = 10 ** (digits - 2)
    return int((n + step // 2) // step * step)


# --- views ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    """Every table, the overall total and how they were made (threshold, minimum cell, window)."""

    generated_at: datetime
    threshold_people: int
    min_cell: int
    months: tuple[str, ...]
    total: Cell
    tables: tuple[Table, ...]

    def table(self, dimension: str) -> Table:
        return next(t for t in self.tables if t.dimension == dimension)

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at.isoformat(), "threshold_people": self.threshold_people,
                "min_cell": self.min_cell, "months": list(self.months), "total": self.total.to_dict(),
                "tables": [t.to_dict() for t in self.tables],
                "method": "published incidents (never fabricated) with at least threshold_people people "
                          "affected; cells under min_cell suppressed (primary), plus secondary suppression "
                          "so no suppressed cell is recoverable from its table's total; see "
                          "docs/leaks-transparency.md"}


@dataclass(frozen=True)
class PublicIncident:
    """One published incident as the public sees it: no leaked value, no person, no free text."""

    reference: str
    operator_name: str
    sector: str
    month: str                 # filed, YYYY-MM (Asia/Almaty)
    nature: str
    data_classes: tuple[str, ...]
    people_affected: int | None  # rounded to two significant figures; None: under 10 (suppressed)
    published_on: date | None

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "operator_name": self.operator_name, "sector": self.sector,
                "month": self.month, "nature": self.nature, "data_classes": list(self.data_classes),
                "people_affected": self.people_affected, "people_affected_rounded": True,
                "people_suppressed": self.people_affected is None,
                "published_on": self.published_on.isoformat() if self.published_on else None}


@dataclass(frozen=True)
class PublicIncidentPage:
    items: tuple[PublicIncident, ...]
    total: int
    limit: int
    offset: int
    threshold_people: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "total": self.total, "limit": self.limit,
                "offset": self.offset, "threshold_people": self.threshold_people}


@dataclass
class _Merged:
    """An initial filing with its addenda applied (internal: holds ids and the exact people count)."""

    reference: str
    operator_name: str
    sector: str
    nature: str
    data_classes: list[str]
    people: int | None
    filed_at: datetime
    published_at: datetime | None


def _month(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ALMATY).strftime("%Y-%m")


def month_window(today: date, n: int = MONTHS) -> tuple[str, ...]:
    """The ``n`` months ending with ``today``'s month, oldest first (``2024-12`` … ``2026-11``)."""
    out: list[str] = []
    year, month = today.year, today.month
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return tuple(reversed(out))


class Transparency:
    """Public statistics and the public list of published incidents (see the module docstring)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def __repr__(self) -> str:
        return "Transparency()"

    @property
    def threshold(self) -> int:
        return int(self.platform.settings.leaks_public_min_people)

    # --- the population ---

    def _population(self, session: Session) -> list[_Merged]:
        """Published, not fabricated, initial filings merged with their addenda, at or above the threshold."""
        rows = session.execute(
            select(LeakIncident, Organization.name)
            .join(Organization, Organization.id == LeakIncident.organization_id)
            .where(LeakIncident.filing == "initial", LeakIncident.published.is_(True),
                   LeakIncident.status != "fabricated")
            .order_by(LeakIncident.id)
            .execution_options(qorgau_cross_tenant=True)).all()
        merged: dict[int, _Merged] = {}
        for inc, operator in rows:
            merged[inc.id] = _Merged(reference=inc.reference, operator_name=operator, sector=inc.sector,
                                     nature=inc.nature, data_classes=list(inc.data_classes or []),
                                     people=inc.people_affected, filed_at=inc.filed_at,
                                     published_at=inc.published_at)
        if merged:
            addenda = session.execute(
                select(LeakIncident)
                .where(LeakIncident.filing == "addendum", LeakIncident.parent_id.in_(list(merged)))
                .order_by(LeakIncident.filed_at, LeakIncident.id)
                .execution_options(qorgau_cross_tenant=True)).scalars().all()
            for add in addenda:  # an addendum is a full snapshot (qorgau/leaks/incidents.py): the latest wins
                target = merged[add.parent_id]  # type: ignore[index]
                target.people = add.people_affected
                target.data_classes = list(add.data_classes or [])
                target.nature, target.sector = add.nature, add.sector
        threshold = self.threshold
        return [m for m in merged.values() if m.people is not None and m.people >= threshold]

    # --- statistics ---

    def statistics(self, session: Session, *, today: date | None = None) -> Statistics:
        """Every table of the public page (public). ``today`` fixes the month window (default: today in Almaty)."""
        today = today or datetime.now(ALMATY).date()
        months = month_window(today)
        incidents = self._population(session)
        total = (len(incidents), sum(m.people or 0 for m in incidents))

        def table(dimension: str, keys: Sequence[str], keys_of: Any, additive: bool = True) -> Table:
            counts = {k: [0, 0] for k in keys}
            for m in incidents:
                for k in keys_of(m):
                    counts[k][0] += 1
                    counts[k][1] += m.people or 0
            return suppress(dimension, [(k, c[0], c[1]) for k, c in counts.items()], total, additive=additive)

        def one_of(vocabulary: Sequence[str], fallback: str) -> Any:
            return lambda value: value if value in vocabulary else fallback

        sector_of, nature_of = one_of(SECTORS, "other"), one_of(NATURES, "unknown")
        window = set(months)
        tables = (
            table("sector", SECTORS, lambda m: (sector_of(m.sector),)),
            table("data_class", DATA_CLASSES,
                  lambda m: sorted({c if c in DATA_CLASSES else "other" for c in m.data_classes}), additive=False),
            table("month", (*months, EARLIER),
                  lambda m: (_month(m.filed_at) if _month(m.filed_at) in window else EARLIER,)),
            table("nature", NATURES, lambda m: (nature_of(m.nature),)),
        )
        overall = suppress("total", [], total).total
        # The overall total is the same number as every table's total: hidden in one, hidden everywhere.
        if any(t.total.suppressed for t in tables):
            overall = Cell("total", None, None, overall.suppression or "secondary")
            tables = tuple(t if t.total.suppressed else Table(t.dimension, t.cells, overall, t.additive)
                           for t in tables)
        return Statistics(generated_at=datetime.now(timezone.utc), threshold_people=self.threshold,
                          min_cell=MIN_CELL, months=months, total=overall, tables=tables)

    def statistics_csv(self, stats: Statistics, *, bom: bool = True) -> str:
        """The statistics as open data, one row per (dimension, category) plus one ``total`` row per dimension.
        Columns: ``dimension, key, label_kk, label_ru, label_en, incidents, people, suppressed``;
        a suppressed count is an empty field. UTF-8, with a byte-order mark unless ``bom=False`` (spreadsheets
        in kk/ru locales need it to read Cyrillic labels)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for t in stats.tables:
            for c in (*t.cells, t.total):
                labels = ([label(t.dimension, c.key, lang) for lang in ("kk", "ru", "en")] if c.key != "total"
                          else ["Барлығы", "Всего", "Total"])
                writer.writerow([t.dimension, c.key, *labels, "" if c.incidents is None else c.incidents,
                                 "" if c.people is None else c.people, "true" if c.suppressed else "false"])
        return ("\ufeff" if bom else "") + buffer.getvalue()

    # --- the list ---

    def published_incidents(self, session: Session, *, sector: str | None = None, limit: int = 100,
                            offset: int = 0) -> PublicIncidentPage:
        """Published incidents at or above the threshold, newest published first (public)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PUBLIC_LIMIT:
            raise InvalidInput(f"limit is 1–{MAX_PUBLIC_LIMIT}", field="limit")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput("offset is 0 or more", field="offset")
        if sector is not None and sector not in SECTORS:
            raise InvalidInput(f"sector must be one of {', '.join(SECTORS)}", field="sector")
        found = [m for m in self._population(session) if sector is None or m.sector == sector]
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        found.sort(key=lambda m: (m.published_at or m.filed_at or epoch, m.reference), reverse=True)
        items = tuple(PublicIncident(
            reference=m.reference, operator_name=m.operator_name, sector=m.sector, month=_month(m.filed_at),
            nature=m.nature, data_classes=tuple(m.data_classes), people_affected=round_people(m.people),
            published_on=m.published_at.astimezone(ALMATY).date() if m.published_at else None)
            for m in found[offset:offset + limit])
        return PublicIncidentPage(items=items, total=len(found), limit=limit, offset=offset,
                                  threshold_people=self.threshold)

    def incidents_csv(self, session: Session, *, sector: str | None = None, bom: bool = True) -> str:
        """The public list as open data (columns :data:`INCIDENT_CSV_COLUMNS`; data classes ``;``-separated)."""
        page = self.published_incidents(session, sector=sector, limit=MAX_PUBLIC_LIMIT)
        rows = list(page.items)
        offset = len(rows)
        while offset < page.total:
            more = self.published_incidents(session, sector=sector, limit=MAX_PUBLIC_LIMIT, offset=offset).items
            rows.extend(more)
            offset += len(more) or page.total
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(INCIDENT_CSV_COLUMNS)
        for i in rows:
            writer.writerow([i.reference, i.operator_name, i.sector, i.month, i.nature, ";".join(i.data_classes),
                             "" if i.people_affected is None else i.people_affected,
                             i.published_on.isoformat() if i.published_on else ""])
        return ("\ufeff" if bom else "") + buffer.getvalue()


CSV_COLUMNS: tuple[str, ...] = ("dimension", "key", "label_kk", "label_ru", "label_en", "incidents", "people",
                                "suppressed")
INCIDENT_CSV_COLUMNS: tuple[str, ...] = ("reference", "operator_name", "sector", "month", "nature", "data_classes",
                                         "people_affected_rounded", "published_on")


def transparency_for(platform: Platform) -> Transparency:
    return shared(platform, "_leak_transparency", Transparency)


def labels_for(lang: str) -> Mapping[str, Mapping[str, str]]:
    """Every vocabulary label in ``lang``: ``{dimension: {key: label}}`` (for templates)."""
    return {dim: {k: v.get(lang) or v["en"] for k, v in values.items()} for dim, values in LABELS.items()}
