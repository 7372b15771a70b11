"""Kazakhstan's working-day calendar: every legal deadline in qorgau is counted on it.

The law counts its short deadlines in working days — 15 to stop processing after consent is
withdrawn, 1 to report a breach, 3 to decide an objection — so adding calendar days would make a
deadline fall on Nauryz or a Sunday. A day is a working day unless it is a Saturday or Sunday, a
public holiday, or a day off given by the government's yearly transfer decree; a Saturday given up
by such a decree is a working day.

Where the days come from, in order of precedence:

1. **Overrides** (TOML, see ``kz_calendar_overrides.toml``): extra days off and extra working
   days, so an operator can load a new transfer decree, or correct an estimated Kurban Ait date,
   without a code change. The packaged file is always loaded; an operator's file named by the
   ``QORGAU_CALENDAR_OVERRIDES`` environment variable is layered on top of it.
2. **The ``holidays`` package** (``holidays.country_holidays("KZ")``), which models the Law "On
   holidays in the RK": the public holidays; a holiday that falls on a weekend moved to the next
   working day (Labour Code Art. 85), except the religious ones — Orthodox Christmas and Kurban
   Ait — which are not moved; the transfer decrees it knows (through 2025 in holidays 0.109);
   Kurban Ait from the Islamic calendar, marked "estimated" for years not yet confirmed.
3. Saturday and Sunday are days off.

Counting rule (how ``add_working_days`` reads "within N working days"): a period starts on the
day *after* the event, as the civil-law rules on computing periods say, so the deadline is the
N-th working day strictly after the event's date, whether or not the event's own day was a
working day. Such a deadline always lands on a working day, so the rule "a period ending on a
day off ends on the next working day" needs no extra step.

Dates are Kazakhstan dates: a timezone-aware datetime is converted to Asia/Almaty first (a breach
found at 23:30 UTC is found the next morning in Almaty). Kazakhstan has used a single zone,
UTC+5, since 1 March 2024; before that Almaty was UTC+6 — the system tz database knows both.
"""

from __future__ import annotations

import os
import threading
import tomllib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as _holidays

__all__ = [
    "ALMATY",
    "CalendarOverrides",
    "CalendarOverridesError",
    "OVERRIDES_ENV",
    "PACKAGED_OVERRIDES",
    "WorkingCalendar",
    "add_working_days",
    "default_calendar",
    "is_working_day",
    "local_date",
    "next_working_day",
    "set_default_calendar",
    "working_days_between",
]


def _almaty() -> tzinfo:
    try:
        return ZoneInfo("Asia/Almaty")
    except ZoneInfoNotFoundError:  # no system tz database and no ``tzdata`` wheel
        # Right for every instant since 1 March 2024; one hour early for older instants.
        return timezone(timedelta(hours=5), "Asia/Almaty (fixed UTC+5)")


ALMATY: tzinfo = _almaty()
"""The zone that decides which Kazakhstan date an instant falls on."""

OVERRIDES_ENV = "QORGAU_CALENDAR_OVERRIDES"
PACKAGED_OVERRIDES = Path(__file__).with_name("kz_calendar_overrides.toml")


class CalendarOverridesError(ValueError):
    """An overrides file is malformed. Messages name the file and key, never guess a fix."""


def local_date(when: date | datetime) -> date:
    """The Kazakhstan calendar date of ``when``.

    A ``date`` is taken as already local. A timezone-aware ``datetime`` is converted to
    Asia/Almaty. A naive ``datetime`` is refused: it could be UTC (as stored by most of the
    system) or local time, and guessing wrong moves a legal deadline by a day.
    """
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("a naive datetime has no time zone; pass an aware datetime or a date")
        return when.astimezone(ALMATY).date()
    return when


# --------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------

_TOP_KEYS = {"non_working_days", "working_days", "transfer"}
_TRANSFER_KEYS = {"day_off", "work_on", "decree", "note"}


@dataclass(frozen=True)
class CalendarOverrides:
    """Days the ``holidays`` package gets wrong or doesn't know yet, e.g. a new transfer decree.

    ``non_working_days`` become days off, ``working_days`` become working days (a Saturday given
    up by a transfer, or a weekday wrongly estimated as Kurban Ait). A day can't be both.
    """

    non_working_days: frozenset[date] = field(default_factory=frozenset)
    working_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        both = self.non_working_days & self.working_days
        if both:
            days = ", ".join(d.isoformat() for d in sorted(both))
            raise CalendarOverridesError(f"days listed both as working and non-working: {days}")

    def then(self, later: CalendarOverrides) -> CalendarOverrides:
        """These overrides with ``later`` laid on top (``later`` wins for a day in both)."""
        return CalendarOverrides(
            non_working_days=(self.non_working_days - later.working_days) | later.non_working_days,
            working_days=(self.working_days - later.non_working_days) | later.working_days,
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> CalendarOverrides:
        """Read an overrides file; see ``kz_calendar_overrides.toml`` for the format."""
        path = Path(path)
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CalendarOverridesError(f"{path}: cannot read calendar overrides: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "overrides") -> CalendarOverrides:
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise CalendarOverridesError(f"{source}: unknown keys {sorted(unknown)}")
        off = set(_dates(data.get("non_working_days", []), f"{source}: non_working_days"))
        on = set(_dates(data.get("working_days", []), f"{source}: working_days"))
        transfers = data.get("transfer", [])
        if not isinstance(transfers, list):
            raise CalendarOverridesError(f"{source}: transfer must be an array of tables")
        for n, t in enumerate(transfers):
            where = f"{source}: transfer[{n}]"
            if not isinstance(t, dict):
                raise CalendarOverridesError(f"{where} must be a table")
            unknown = set(t) - _TRANSFER_KEYS
            if unknown:
                raise CalendarOverridesError(f"{where}: unknown keys {sorted(unknown)}")
            for key in ("day_off", "work_on"):
                if key not in t:
                    raise CalendarOverridesError(f"{where}: {key} is required")
            off.add(_date(t["day_off"], f"{where}.day_off"))
            on.add(_date(t["work_on"], f"{where}.work_on"))
        return cls(non_working_days=frozenset(off), working_days=frozenset(on))


def _date(value: object, where: str) -> date:
    # TOML has a date type (``2026-01-09``); a datetime or a string is a mistake worth stopping.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise CalendarOverridesError(f"{where} must be a TOML date like 2026-01-09")
    return value


def _dates(values: object, where: str) -> list[date]:
    if not isinstance(values, list):
        raise CalendarOverridesError(f"{where} must be an array of dates")
    return [_date(v, f"{where}[{n}]") for n, v in enumerate(values)]


# --------------------------------------------------------------------------------------------
# The calendar
# --------------------------------------------------------------------------------------------


class _Year:
    """One year's answer sheet: flags[k] = 1 if day k is a working day; cum[k] = working days
    in days [0, k). Lookups are an index into bytes, so deadlines cost microseconds."""

    __slots__ = ("base", "cum", "flags", "total")

    def __init__(self, base: int, flags: bytes) -> None:
        self.base = base  # ordinal of 1 January
        self.flags = flags
        cum = array("H", [0]) * (len(flags) + 1)
        running = 0
        for k, f in enumerate(flags):
            running += f
            cum[k + 1] = running
        self.cum = cum
        self.total = running


class WorkingCalendar:
    """Working days of one country, with optional overrides; safe to share between threads.

    Each year is computed once, on first use, from ``holidays`` plus the overrides, and then
    answered from a table.
    """

    def __init__(self, overrides: CalendarOverrides | None = None, *, country: str = "KZ") -> None:
        self.country = country
        self.overrides = overrides or CalendarOverrides()
        self._years: dict[int, _Year] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_toml(cls, *paths: str | Path, country: str = "KZ") -> WorkingCalendar:
        """A calendar with these overrides files applied in order (a later file wins)."""
        overrides = CalendarOverrides()
        for path in paths:
            overrides = overrides.then(CalendarOverrides.from_toml(path))
        return cls(overrides, country=country)

    def __repr__(self) -> str:
        o = self.overrides
        return (
            f"WorkingCalendar(country={self.country!r}, +{len(o.non_working_days)} days off, "
            f"+{len(o.working_days)} working days)"
        )

    # -- tables ----------------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        table = self._years.get(year)
        if table is None:
            with self._lock:
                table = self._years.get(year)
                if table is None:
                    table = self._years[year] = self._build(year)
        return table

    def _build(self, year: int) -> _Year:
        # Next year is loaded too: a decree for January can give up a Saturday in December
        # (the 2014 decree made Saturday 28 December 2013 a working day).
        years = (year, year + 1) if year < date.max.year else (year,)
        source = _holidays.country_holidays(self.country, years=years)
        jan1 = date(year, 1, 1)
        base = jan1.toordinal()
        ndays = date(year, 12, 31).toordinal() - base + 1
        flags = bytearray(source.is_working_day(jan1 + timedelta(days=k)) for k in range(ndays))
        for d in self.overrides.non_working_days:
            if d.year == year:
                flags[d.toordinal() - base] = 0
        for d in self.overrides.working_days:
            if d.year == year:
                flags[d.toordinal() - base] = 1
        return _Year(base, bytes(flags))

    # -- questions ---------------------------------------------------------------------------

    def is_working_day(self, day: date | datetime) -> bool:
        """True if ``day`` (its Kazakhstan date) is a working day."""
        d = local_date(day)
        t = self._year(d.year)
        return bool(t.flags[d.toordinal() - t.base])

    def add_working_days(self, start: date | datetime, n: int) -> date:
        """The deadline ``n`` working days after ``start``.

        For ``n >= 1``: the n-th working day strictly after ``start``'s Kazakhstan date (the
        start day itself never counts, working or not). For ``n == 0``: ``start``'s date if it
        is a working day, else the next working day — "on the first working day".
        """
        if n < 0:
            raise ValueError("n must be >= 0 (deadlines run forward)")
        d = local_date(start)
        if n == 0:
            return d if self.is_working_day(d) else self.add_working_days(d, 1)
        ordinal = d.toordinal()
        year = d.year
        t = self._year(year)
        k = ordinal - t.base
        flags = t.flags
        remaining = n
        while True:
            k += 1
            if k == len(flags):  # into the next year
                year += 1
                t = self._year(year)
                flags = t.flags
                k = 0
            if flags[k]:
                remaining -= 1
                if not remaining:
                    return date.fromordinal(t.base + k)

    def next_working_day(self, day: date | datetime) -> date:
        """The first working day strictly after ``day`` (= ``add_working_days(day, 1)``)."""
        return self.add_working_days(day, 1)

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days ``d`` with ``a < d <= b`` — how many working days of a period started on
        ``a`` have run by the end of ``b``. Negative if ``b`` is before ``a``.

        The inverse of :meth:`add_working_days`: for ``n >= 1``,
        ``working_days_between(a, add_working_days(a, n)) == n``.
        """
        da, db = local_date(a), local_date(b)
        if db < da:
            return -self.working_days_between(db, da)
        ta, tb = self._year(da.year), self._year(db.year)
        ia, ib = da.toordinal() - ta.base, db.toordinal() - tb.base
        if ta is tb:
            return tb.cum[ib + 1] - ta.cum[ia + 1]
        between = sum(self._year(y).total for y in range(da.year + 1, db.year))
        return (ta.total - ta.cum[ia + 1]) + between + tb.cum[ib + 1]


# --------------------------------------------------------------------------------------------
# The default calendar and module-level shortcuts
# --------------------------------------------------------------------------------------------

_default: WorkingCalendar | None = None
_default_lock = threading.Lock()


def _load_default() -> WorkingCalendar:
    paths: list[Path] = [PACKAGED_OVERRIDES]
    operator_file = os.environ.get(OVERRIDES_ENV)
    if operator_file:
        paths.append(Path(operator_file))
    return WorkingCalendar.from_toml(*paths)


def default_calendar() -> WorkingCalendar:
    """The calendar the module-level functions use: ``holidays`` KZ + the packaged overrides +
    the operator's file from ``$QORGAU_CALENDAR_OVERRIDES`` (if set). Built once."""
    global _default
    cal = _default
    if cal is None:
        with _default_lock:
            if _default is None:
                _default = _load_default()
            cal = _default
    return cal


def set_default_calendar(calendar: WorkingCalendar | None) -> None:
    """Replace the default calendar (e.g. at startup from settings); ``None`` reloads it lazily
    from the packaged file and the environment."""
    global _default
    with _default_lock:
        _default = calendar


def is_working_day(day: date | datetime) -> bool:
    """True if ``day`` is a working day in Kazakhstan. See :meth:`WorkingCalendar.is_working_day`."""
    return default_calendar().is_working_day(day)


def add_working_days(start: date | datetime, n: int) -> date:
    """The n-th working day after ``start``. See :meth:`WorkingCalendar.add_working_days`."""
    return default_calendar().add_working_days(start, n)


def next_working_day(day: date | datetime) -> date:
    """The first working day after ``day``."""
    return default_calendar().next_working_day(day)


def working_days_between(a: date | datetime, b: date | datetime) -> int:
    """Working days in ``(a, b]``. See :meth:`WorkingCalendar.working_days_between`."""
    return default_calendar().working_days_between(a, b)
