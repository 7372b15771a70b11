"""Deadlines land where a Kazakh lawyer would put them.

Expected dates were worked out by hand from the published holiday calendars (egov.kz, the
government's transfer decrees as cited by the `holidays` package, and the 2026 calendar as
reported by the Ministry of Labour), not from the code under test.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.core import calendar
from qorgau.core.calendar import (
    ALMATY,
    CalendarOverrides,
    CalendarOverridesError,
    WorkingCalendar,
    add_working_days,
    is_working_day,
    local_date,
    next_working_day,
    working_days_between,
)

KZ = WorkingCalendar()  # the `holidays` package alone, no overrides


def days(*isodates: str) -> list[date]:
    return [date.fromisoformat(d) for d in isodates]


@pytest.fixture(autouse=True)
def _fresh_default_calendar(monkeypatch):
    monkeypatch.delenv(calendar.OVERRIDES_ENV, raising=False)
    calendar.set_default_calendar(None)
    yield
    calendar.set_default_calendar(None)


# --- The law's deadlines ------------------------------------------------------------------------


def test_a_breach_found_on_friday_before_nauryz_is_due_after_the_holidays():
    # 2026: Nauryz 21–23 March falls on Sat, Sun, Mon; the weekend days move to Tue 24 and Wed 25.
    found = date(2026, 3, 20)  # Friday
    assert add_working_days(found, 1) == date(2026, 3, 26)  # Thursday


def test_consent_withdrawn_before_nauryz_stops_processing_fifteen_working_days_later():
    withdrawn = date(2026, 3, 18)  # Wednesday
    # 19, 20 | 21–25 off | 26, 27 | 30, 31, 1 Apr, 2, 3 | 6, 7, 8, 9, 10 | 13 = the 15th
    assert add_working_days(withdrawn, 15) == date(2026, 4, 13)
    assert working_days_between(withdrawn, date(2026, 4, 13)) == 15


def test_an_objection_received_on_thursday_is_decided_by_tuesday():
    received = date(2025, 11, 13)  # Thursday; Fri 14, Mon 17, Tue 18
    assert add_working_days(received, 3) == date(2025, 11, 18)


def test_a_breach_found_on_saturday_is_due_on_monday():
    assert add_working_days(date(2025, 11, 15), 1) == date(2025, 11, 17)


def test_the_day_of_the_event_never_counts_even_if_it_is_a_working_day():
    assert add_working_days(date(2025, 11, 12), 1) == date(2025, 11, 13)


def test_zero_working_days_means_today_if_working_otherwise_the_next_working_day():
    assert add_working_days(date(2025, 11, 12), 0) == date(2025, 11, 12)  # Wednesday
    assert add_working_days(date(2025, 11, 15), 0) == date(2025, 11, 17)  # Saturday → Monday
    assert add_working_days(date(2026, 3, 21), 0) == date(2026, 3, 26)  # Nauryz → Thursday


def test_a_deadline_cannot_run_backwards():
    with pytest.raises(ValueError):
        add_working_days(date(2025, 11, 12), -1)


# --- The March cluster ----------------------------------------------------------------------


def test_march_2024_womens_day_and_nauryz_with_its_saturday_moved_to_monday():
    for d in days("2024-03-08", "2024-03-21", "2024-03-22", "2024-03-23", "2024-03-25"):
        assert not is_working_day(d), d
    assert is_working_day(date(2024, 3, 20))
    assert is_working_day(date(2024, 3, 26))


def test_march_2025_womens_day_on_saturday_and_nauryz_over_the_weekend_give_mondays_off():
    assert not is_working_day(date(2025, 3, 8))  # Saturday
    assert not is_working_day(date(2025, 3, 10))  # Monday instead
    assert is_working_day(date(2025, 3, 11))
    for d in days("2025-03-21", "2025-03-22", "2025-03-23", "2025-03-24", "2025-03-25"):
        assert not is_working_day(d), d
    assert is_working_day(date(2025, 3, 26))


def test_march_2026_womens_day_on_sunday_moves_to_monday_the_ninth():
    assert not is_working_day(date(2026, 3, 9))
    assert is_working_day(date(2026, 3, 10))


# --- The May cluster ------------------------------------------------------------------------


def test_may_2024_unity_defender_and_victory_days_with_the_transferred_wednesday():
    for d in days("2024-05-01", "2024-05-07", "2024-05-08", "2024-05-09"):
        assert not is_working_day(d), d
    assert is_working_day(date(2024, 5, 10))


def test_saturday_4_may_2024_was_a_working_day_given_up_for_wednesday_8_may():
    # Government decree G24G0000109: the day off moved from Saturday 4 May to Wednesday 8 May.
    assert is_working_day(date(2024, 5, 4))
    assert add_working_days(date(2024, 5, 3), 1) == date(2024, 5, 4)


def test_victory_day_2026_on_saturday_gives_monday_11_may_off():
    for d in days("2026-05-01", "2026-05-07", "2026-05-09", "2026-05-11"):
        assert not is_working_day(d), d
    assert is_working_day(date(2026, 5, 8))
    assert add_working_days(date(2026, 5, 8), 1) == date(2026, 5, 12)


# --- New Year and Orthodox Christmas ------------------------------------------------------------


def test_new_year_2026_is_the_first_and_second_of_january_and_christmas_the_seventh():
    for d in days("2026-01-01", "2026-01-02", "2026-01-07"):
        assert not is_working_day(d), d
    for d in days("2026-01-05", "2026-01-06", "2026-01-08"):
        assert is_working_day(d), d


def test_new_year_2025_ran_into_friday_3_january_and_sunday_5_january_was_worked():
    # Transfer decree: the day off moved from Sunday 5 January to Friday 3 January 2025.
    assert not is_working_day(date(2025, 1, 3))
    assert is_working_day(date(2025, 1, 5))
    assert add_working_days(date(2024, 12, 31), 1) == date(2025, 1, 5)


def test_a_saturday_given_up_in_december_for_a_january_holiday_is_a_working_day():
    # The 2014 decree moved the day off from Saturday 28 December 2013 to Friday 3 January 2014.
    assert is_working_day(date(2013, 12, 28))
    assert not is_working_day(date(2014, 1, 3))


def test_orthodox_christmas_on_a_sunday_is_not_moved_to_monday():
    # Religious holidays are not moved when they fall on a weekend (7 January 2024 was a Sunday).
    assert not is_working_day(date(2024, 1, 7))
    assert is_working_day(date(2024, 1, 8))


# --- Kurban Ait ---------------------------------------------------------------------------------


def test_kurban_ait_2026_falls_on_wednesday_27_may():
    names = holidays.country_holidays("KZ", years=2026, language="en_US")
    assert "Eid al-Adha" in names.get(date(2026, 5, 27), "")
    assert not is_working_day(date(2026, 5, 27))
    assert is_working_day(date(2026, 5, 28))


def test_kurban_ait_2025_was_friday_6_june():
    assert not is_working_day(date(2025, 6, 6))
    assert add_working_days(date(2025, 6, 5), 1) == date(2025, 6, 9)


def test_kurban_ait_on_a_sunday_gives_no_monday_off():
    assert not is_working_day(date(2024, 6, 16))  # Sunday
    assert is_working_day(date(2024, 6, 17))


# --- Other holidays moved off a weekend ----------------------------------------------------------


def test_a_holiday_on_a_weekend_moves_to_the_next_working_day():
    assert not is_working_day(date(2024, 7, 8))  # Capital Day, Saturday 6 July 2024
    assert not is_working_day(date(2025, 9, 1))  # Constitution Day, Saturday 30 August 2025
    assert not is_working_day(date(2025, 10, 27))  # Republic Day, Saturday 25 October 2025
    assert not is_working_day(date(2026, 10, 26))  # Republic Day, Sunday 25 October 2026


def test_new_year_2027_on_saturday_moves_to_monday_4_january():
    assert not is_working_day(date(2027, 1, 4))


def test_constitution_day_moves_to_15_march_from_2027_so_31_august_2026_is_worked():
    # The Constitution adopted by the referendum of 15 March 2026 moved Constitution Day.
    assert is_working_day(date(2026, 8, 31))
    assert not is_working_day(date(2027, 3, 15))


def test_independence_day_is_one_day_since_2022():
    assert not is_working_day(date(2025, 12, 16))
    assert is_working_day(date(2025, 12, 17))


# --- Time zones ---------------------------------------------------------------------------------


def test_a_breach_logged_late_in_the_utc_evening_counts_from_the_almaty_date():
    # 19:30 UTC on 20 March 2026 is 00:30 on 21 March (Nauryz) in Kazakhstan (UTC+5).
    found = datetime(2026, 3, 20, 19, 30, tzinfo=timezone.utc)
    assert local_date(found) == date(2026, 3, 21)
    assert not is_working_day(found)
    assert add_working_days(found, 1) == date(2026, 3, 26)


def test_almaty_was_utc_plus_six_until_march_2024():
    assert local_date(datetime(2024, 2, 20, 18, 30, tzinfo=timezone.utc)) == date(2024, 2, 21)
    assert local_date(datetime(2024, 3, 20, 18, 30, tzinfo=timezone.utc)) == date(2024, 3, 20)
    assert datetime(2024, 6, 1, tzinfo=ALMATY).utcoffset() == timedelta(hours=5)


def test_a_naive_datetime_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="naive"):
        add_working_days(datetime(2026, 3, 20, 12, 0), 1)


# --- Counting working days ------------------------------------------------------------------------


def test_working_days_between_counts_the_days_after_the_start_through_the_end():
    assert working_days_between(date(2025, 11, 14), date(2025, 11, 17)) == 1  # Fri → Mon
    assert working_days_between(date(2025, 11, 17), date(2025, 11, 14)) == -1
    assert working_days_between(date(2025, 11, 14), date(2025, 11, 14)) == 0
    # Across New Year: Dec 26, 29, 30, 31 | Jan 5, 6, 8, 9, 12
    assert working_days_between(date(2025, 12, 25), date(2026, 1, 12)) == 9


def test_next_working_day_skips_a_long_weekend():
    assert next_working_day(date(2026, 3, 20)) == date(2026, 3, 26)
    assert next_working_day(date(2026, 3, 26)) == date(2026, 3, 27)


range_of_days = st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))


@settings(max_examples=300, deadline=None)
@given(start=range_of_days, n=st.integers(min_value=1, max_value=400))
def test_a_deadline_is_a_working_day_exactly_n_working_days_after_the_start(start, n):
    due = KZ.add_working_days(start, n)
    assert KZ.is_working_day(due)
    assert KZ.working_days_between(start, due) == n
    assert KZ.working_days_between(due, start) == -n
    assert KZ.working_days_between(start, due - timedelta(days=1)) == n - 1


@settings(max_examples=300, deadline=None)
@given(a=range_of_days, b=range_of_days)
def test_counting_agrees_with_the_holidays_package_day_by_day(a, b):
    lo, hi = min(a, b), max(a, b)
    source = holidays.country_holidays("KZ", years=range(lo.year, hi.year + 2))
    expected = sum(source.is_working_day(lo + timedelta(days=k)) for k in range(1, (hi - lo).days + 1))
    assert KZ.working_days_between(lo, hi) == expected
    assert KZ.is_working_day(b) == source.is_working_day(b)


# --- Overrides ------------------------------------------------------------------------------------


def test_an_operator_loads_a_transfer_decree_without_a_code_change(tmp_path, monkeypatch):
    decree = tmp_path / "decree-2027.toml"
    decree.write_text(
        """
[[transfer]]
decree = "hypothetical: day off moved from Saturday 20 March to Friday 26 March 2027"
day_off = 2027-03-26
work_on = 2027-03-20
"""
    )
    before = date(2027, 3, 25)  # Thursday
    assert add_working_days(before, 1) == date(2027, 3, 26)
    monkeypatch.setenv(calendar.OVERRIDES_ENV, str(decree))
    calendar.set_default_calendar(None)  # reload, as a restart would
    assert not is_working_day(date(2027, 3, 26))
    assert is_working_day(date(2027, 3, 20))  # a Saturday
    assert add_working_days(before, 1) == date(2027, 3, 29)
    assert add_working_days(date(2027, 3, 19), 1) == date(2027, 3, 20)


def test_overrides_add_days_off_and_working_days(tmp_path):
    path = tmp_path / "overrides.toml"
    path.write_text("non_working_days = [2026-06-01]\nworking_days = [2026-05-27, 2026-06-06]\n")
    cal = WorkingCalendar.from_toml(path)
    assert not cal.is_working_day(date(2026, 6, 1))
    assert cal.is_working_day(date(2026, 5, 27))  # an estimated Kurban Ait corrected away
    assert cal.is_working_day(date(2026, 6, 6))  # a Saturday
    assert KZ.is_working_day(date(2026, 6, 1))  # other calendars are unaffected


def test_a_later_overrides_file_wins_over_an_earlier_one(tmp_path):
    first = tmp_path / "a.toml"
    first.write_text("non_working_days = [2026-06-01]\n")
    second = tmp_path / "b.toml"
    second.write_text("working_days = [2026-06-01]\n")
    assert WorkingCalendar.from_toml(first, second).is_working_day(date(2026, 6, 1))
    assert not WorkingCalendar.from_toml(second, first).is_working_day(date(2026, 6, 1))


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("non_working_days = [2026-06-01]\nworking_days = [2026-06-01]", "both"),
        ('non_working_days = ["2026-06-01"]', "non_working_days"),
        ("working_days = [2026-06-01T10:00:00]", "working_days"),
        ("holidays = [2026-06-01]", "unknown keys"),
        ("[[transfer]]\nday_off = 2026-06-01", "work_on is required"),
        ("[[transfer]]\nday_off = 2026-06-01\nwork_on = 2026-06-06\nwhen = 1", "unknown keys"),
        ("non_working_days = [", "cannot read"),
    ],
)
def test_a_malformed_overrides_file_is_refused_with_the_key_named(tmp_path, text, complaint):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CalendarOverridesError, match=complaint):
        WorkingCalendar.from_toml(path)


def test_a_missing_overrides_file_is_an_error_not_an_empty_calendar(tmp_path):
    with pytest.raises(CalendarOverridesError, match="cannot read"):
        WorkingCalendar.from_toml(tmp_path / "absent.toml")


def test_the_packaged_overrides_file_loads():
    overrides = CalendarOverrides.from_toml(calendar.PACKAGED_OVERRIDES)
    assert isinstance(overrides, CalendarOverrides)
    assert calendar.default_calendar().is_working_day(date(2026, 3, 26))


# --- Sharing ------------------------------------------------------------------------------------


def test_one_calendar_answers_many_threads_consistently():
    cal = WorkingCalendar()
    starts = [date(2020, 1, 1) + timedelta(days=k * 13) for k in range(200)]
    expected = [KZ.add_working_days(s, 15) for s in starts]
    results: list[list[date]] = []
    lock = threading.Lock()

    def work():
        got = [cal.add_working_days(s, 15) for s in starts]
        with lock:
            results.append(got)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 8


def test_set_default_calendar_replaces_the_calendar_the_shortcuts_use():
    custom = WorkingCalendar(CalendarOverrides(non_working_days=frozenset({date(2026, 6, 1)})))
    calendar.set_default_calendar(custom)
    assert calendar.default_calendar() is custom
    assert not is_working_day(date(2026, 6, 1))
