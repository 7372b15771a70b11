"""The public transparency statistics (issue 8; L-PD-LEAK-REGISTER): only published incidents above the size
threshold count, small cells are suppressed and no suppressed cell can be worked out from a total; the same over
real HTTP as JSON and CSV open data, and the page in kk/ru/en without a login."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import LiveServer, Tenant, make_authority

from qorgau.core.calendar import ALMATY
from qorgau.core.platform import Platform
from qorgau.leaks.incidents import incidents_for
from qorgau.leaks.models import DATA_CLASSES, NATURES, SECTORS, LeakIncident
from qorgau.leaks.transparency import (
    CSV_COLUMNS,
    EARLIER,
    MIN_CELL,
    month_window,
    round_people,
    suppress,
    transparency_for,
)

ADVICE = {"kk": "Құпиясөзді ауыстырыңыз.", "ru": "Смените пароль.", "en": "Change your password."}


# --- building incidents through the incidents service --------------------------------------------------------


class Register:
    """Files incidents as an operator and decides them as the authorized body, through the real service."""

    def __init__(self, platform: Platform, operator: Tenant, authority: Tenant) -> None:
        self.platform, self.operator, self.authority = platform, operator, authority
        self.service = incidents_for(platform)

    def file(self, *, people: int | None = 5000, sector: str = "bank", nature: str = "hacking",
             data_classes: tuple[str, ...] = ("iin", "phone"), description: str = "details for the regulator",
             months_ago: int = 0) -> int:
        discovered = datetime.now(timezone.utc) - timedelta(hours=1)
        with self.platform.db.transaction(self.operator.org_id) as s:
            view = self.service.file_report(s, {
                "responsible_person": "Aigerim Seitkali", "responsible_contact": "dpo@example.kz",
                "title": "Customer database exposed", "description": description, "discovered_at": discovered,
                "nature": nature, "sector": sector, "people_affected": people, "data_classes": list(data_classes),
            }, actor="user:1")
            if months_ago:  # time travel for the month table: the whole report moves back together
                row = s.get(LeakIncident, view.id)
                shift = timedelta(days=31 * months_ago)
                row.filed_at, row.discovered_at, row.deadline_at = (row.filed_at - shift, row.discovered_at - shift,
                                                                    row.deadline_at - shift)
            return view.id

    def decide(self, incident_id: int, status: str, *, publish: bool = False) -> None:
        with self.platform.db.transaction() as s:
            self.service.set_status(s, incident_id, status, note="checked", authority=self.authority.org_id,
                                    actor="user:9")
            if publish:
                self.service.publish(s, incident_id, advice=ADVICE, authority=self.authority.org_id, actor="user:9")

    def published(self, **kwargs: Any) -> int:
        incident_id = self.file(**kwargs)
        self.decide(incident_id, "verified", publish=True)
        return incident_id


@pytest.fixture
def register(platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> Register:
    return Register(platform, tenant_a, make_authority(platform, tenant_b))


def stats_of(platform: Platform) -> Any:
    with platform.db.reader() as s:
        return transparency_for(platform).statistics(s)


def cells(table: Any) -> dict[str, Any]:
    return {c.key: c for c in table.cells}


# --- suppression, as a pure function -------------------------------------------------------------------------


def test_a_cell_under_ten_is_suppressed_zero_included() -> None:
    table = suppress("sector", [("bank", 25, 90_000), ("telecom", 3, 12_000), ("state", 0, 0), ("health", 12, 40_000)],
                     (40, 142_000))
    by = cells(table)
    assert by["telecom"].incidents is None and by["telecom"].people is None and by["telecom"].suppression == "primary"
    assert by["state"].suppression == "primary"
    # 3 + 0 hidden behind a total of 40: health goes too, so either could be anything from 0 to 9
    assert by["health"].suppression == "secondary"
    assert by["bank"].incidents == 25 and by["bank"].people == 90_000
    assert table.total.incidents == 40 and table.total.people == 142_000


def test_a_lone_suppressed_cell_takes_the_smallest_visible_one_with_it() -> None:
    # telecom = 40 - 25 - 12 would be recoverable from the total: health (the smaller visible cell) goes too.
    table = suppress("sector", [("bank", 25, 90_000), ("telecom", 3, 12_000), ("health", 12, 40_000)], (40, 142_000))
    by = cells(table)
    assert by["telecom"].suppression == "primary"
    assert by["health"].suppression == "secondary" and by["health"].incidents is None
    assert by["bank"].incidents == 25 and not by["bank"].suppressed
    assert table.total.incidents == 40


def test_small_cells_that_hide_each_other_need_no_secondary_suppression() -> None:
    table = suppress("nature", [("hacking", 30, 90_000), ("phishing", 4, 8000), ("insider", 2, 3000),
                                ("scraping", 5, 6000)], (41, 107_000))
    assert [c.suppression for c in table.cells] == [None, "primary", "primary", "primary"]  # 11 among three


def test_two_nines_are_not_hidden_by_each_other() -> None:
    # 9 + 9 = 50 - 32: both would be known to be 9.
    table = suppress("nature", [("hacking", 32, 90_000), ("phishing", 9, 8000), ("insider", 9, 3000)], (50, 101_000))
    assert [c.suppression for c in table.cells] == ["secondary", "primary", "primary"]


def test_the_data_class_table_is_not_additive_and_gets_primary_suppression_only() -> None:
    table = suppress("data_class", [("iin", 40, 90_000), ("phone", 3, 8000)], (40, 90_000), additive=False)
    assert [c.suppression for c in table.cells] == [None, "primary"] and table.total.incidents == 40


def test_a_small_people_count_is_suppressed_with_its_incidents() -> None:
    table = suppress("nature", [("hacking", 30, 9), ("phishing", 40, 500), ("insider", 20, 600)], (90, 1109))
    by = cells(table)
    assert by["hacking"].suppression == "primary" and by["hacking"].incidents is None
    assert by["insider"].suppression == "secondary"


def test_a_small_total_is_suppressed_with_every_cell() -> None:
    table = suppress("sector", [("bank", 5, 20_000), ("telecom", 2, 3000)], (7, 23_000))
    assert all(c.suppressed for c in table.cells)
    assert table.total.incidents is None and table.total.suppressed


def test_a_one_cell_table_hides_its_total() -> None:
    table = suppress("sector", [("bank", 3, 20_000)], (40, 900_000))
    assert table.cells[0].suppressed and table.total.suppressed


def _feasible_values(table: Any, key: str, *, bounded: bool) -> set[int]:
    """Every incident count of ``key`` a reader can't rule out. The suppressed cells add up to the total minus
    the visible ones; ``bounded``: the reader (rightly) takes every suppressed cell to be under 10; otherwise the
    reader knows nothing more (why a cell was hidden is not published)."""
    hidden = [c for c in table.cells if c.suppressed]
    rest = table.total.incidents - sum(c.incidents for c in table.cells if not c.suppressed)
    upper = MIN_CELL - 1 if bounded else rest
    others = upper * (len(hidden) - 1)  # the other cells reach every sum from 0 to this
    return {v for v in range(upper + 1) if 0 <= rest - v <= others}


def test_no_suppressed_cell_is_recoverable_from_its_total_in_random_tables() -> None:
    rng = random.Random(20261123)
    for _ in range(3000):
        truth = [(f"k{j}", i, i * 1000) for j, i in enumerate(
            rng.choice([0, 1, 3, 8, 9, 10, 11, 12, 25, 60]) for _ in range(rng.randint(1, 8)))]
        total = (sum(i for _, i, _ in truth), sum(p for _, _, p in truth))
        table = suppress("t", truth, total)
        true_value = {k: i for k, i, _ in truth}
        for cell in table.cells:
            assert cell.suppressed == (cell.incidents is None)
            if not cell.suppressed:
                assert cell.incidents == true_value[cell.key] >= MIN_CELL
            elif true_value[cell.key] < MIN_CELL:
                assert cell.suppression == "primary"
        if table.total.suppressed:
            continue
        hidden = [c for c in table.cells if c.suppressed]
        all_small = all(true_value[c.key] < MIN_CELL for c in hidden)
        for cell in hidden:
            # whatever was published, a suppressed cell could still be any number from 0 to 9 — also for a reader
            # who correctly guesses that every hidden cell is a small one
            feasible = _feasible_values(table, cell.key, bounded=all_small)
            assert true_value[cell.key] in feasible
            assert set(range(MIN_CELL)) <= feasible, (truth, cell.key)


def test_people_in_the_public_list_are_rounded_to_two_significant_figures() -> None:
    assert round_people(1234) == 1200
    assert round_people(56_789) == 57_000
    assert round_people(1_550_000) == 1_600_000
    assert round_people(99) == 99 and round_people(9) is None and round_people(None) is None


def test_the_month_window_is_the_last_24_months() -> None:
    window = month_window(date(2026, 11, 23))
    assert len(window) == 24 and window[0] == "2024-12" and window[-1] == "2026-11"


# --- the service over real incidents (both backends) ---------------------------------------------------------


def test_only_published_incidents_above_the_threshold_count(platform: Platform, register: Register) -> None:
    counted = [register.published(people=1000 + i, sector="bank") for i in range(12)]
    register.published(people=999, sector="bank")                   # under the threshold
    register.file(people=50_000, sector="bank")                     # received, never checked
    register.decide(register.file(people=50_000, sector="bank"), "verified")  # verified, not published
    register.decide(register.file(people=50_000, sector="bank"), "fabricated")
    disputed = register.published(people=70_000, sector="bank")
    register.decide(disputed, "disputed")                           # leaving "verified" unpublishes it
    register.file(people=None, sector="bank")

    stats = stats_of(platform)
    assert stats.threshold_people == 1000
    assert stats.total.incidents == len(counted) == 12
    assert stats.total.people == sum(1000 + i for i in range(12))
    # bank is every incident: shown, it would tell that the hidden sectors are all 0, so it is hidden with them
    assert cells(stats.table("sector"))["bank"].suppression == "secondary"
    with platform.db.reader() as s:
        page = transparency_for(platform).published_incidents(s)
    assert page.total == 12 and all(i.people_affected == 1000 for i in page.items)


def test_a_fabricated_incident_never_counts_even_if_its_row_says_published(platform: Platform,
                                                                            register: Register) -> None:
    ids = [register.published(people=20_000, sector="telecom") for _ in range(10)]
    with platform.db.transaction() as s:  # a row in an impossible state must still not leak into the public view
        row = s.get(LeakIncident, ids[0])
        row.status = "fabricated"
    stats = stats_of(platform)
    assert stats.total.incidents is None  # 9 left: under 10, suppressed
    with platform.db.reader() as s:
        assert transparency_for(platform).published_incidents(s).total == 9


def test_the_threshold_is_a_setting(platform: Platform, register: Register, monkeypatch: pytest.MonkeyPatch) -> None:
    for people in (150, 300, 600, 900, 1200, 2000, 3000, 4000, 5000, 6000, 7000):
        register.published(people=people)
    assert stats_of(platform).total.incidents is None  # 6 incidents ≥ 1000: suppressed
    monkeypatch.setattr(platform, "settings", platform.settings.model_copy(update={"leaks_public_min_people": 100}))
    assert stats_of(platform).total.incidents == 11


def test_an_addendum_updates_the_incident_and_it_still_counts_once(platform: Platform, register: Register) -> None:
    ids = [register.published(people=2000, sector="health", nature="ransomware") for _ in range(11)]
    with platform.db.transaction(register.operator.org_id) as s:
        incidents_for(platform).file_addendum(s, ids[0], {"people_affected": 500_000,
                                                          "data_classes": ["health", "full_name"]}, actor="user:1")
    stats = stats_of(platform)
    assert stats.total.incidents == 11
    assert stats.total.people == 10 * 2000 + 500_000
    assert cells(stats.table("data_class"))["health"].incidents is None  # 1 incident: suppressed
    assert cells(stats.table("data_class"))["iin"].incidents == 10
    with platform.db.reader() as s:
        listed = {i.reference: i for i in transparency_for(platform).published_incidents(s).items}
    assert len(listed) == 11 and sorted(i.people_affected for i in listed.values())[-1] == 500_000


def test_every_table_suppresses_and_hides_the_lone_small_cell(platform: Platform, register: Register) -> None:
    for _ in range(12):
        register.published(sector="bank", nature="hacking")
    for _ in range(10):
        register.published(sector="telecom", nature="hacking")
    register.published(sector="state", nature="phishing")
    stats = stats_of(platform)
    sector = cells(stats.table("sector"))
    assert stats.total.incidents == 23
    assert sector["state"].suppression == "primary" and sector["health"].suppression == "primary"  # 1 and 0
    # the hidden sectors add up to 1: telecom (the smaller visible one) is hidden with them
    assert sector["telecom"].suppression == "secondary" and sector["bank"].incidents == 12
    nature = cells(stats.table("nature"))
    assert nature["phishing"].suppression == "primary" and nature["hacking"].suppression == "secondary"
    assert stats.table("nature").total.incidents == 23
    for table in stats.tables:
        hidden = [c for c in table.cells if c.suppressed]
        assert table.total.suppressed or len(hidden) != 1
        assert [c.key for c in table.cells][:3] == list({"sector": SECTORS, "nature": NATURES,
                                                         "data_class": DATA_CLASSES}.get(table.dimension,
                                                                                         stats.months))[:3]


def test_months_are_the_filing_months_with_an_earlier_row(platform: Platform, register: Register) -> None:
    for _ in range(10):
        register.published(months_ago=30)  # before the window
    for _ in range(11):
        register.published()
    stats = stats_of(platform)
    month = cells(stats.table("month"))
    this_month = datetime.now(ALMATY).strftime("%Y-%m")
    assert month[this_month].incidents == 11
    assert month[EARLIER].suppression == "secondary"  # the empty months add up to 0: one more cell hides them
    assert stats.table("month").total.incidents == 21 == stats.total.incidents


# --- over real HTTP ------------------------------------------------------------------------------------------


@pytest.fixture
def published(register: Register) -> Iterator[Register]:
    for i in range(11):
        register.published(people=12_345 + i, sector="bank", nature="hacking", description="secret details")
    for _ in range(10):
        register.published(people=2_000, sector="health", nature="ransomware", data_classes=("health",))
    register.published(people=3_000, sector="telecom", nature="phishing")
    fabricated = register.file(people=99_999, sector="state")
    register.decide(fabricated, "fabricated")
    yield register


def test_statistics_are_open_data_in_json_without_a_login(live_server: LiveServer, published: Register) -> None:
    with live_server.client() as anonymous:
        r = anonymous.get("/api/v1/public/leaks/statistics")
    assert r.status_code == 200
    body = r.json()
    assert body["threshold_people"] == 1000 and body["min_cell"] == MIN_CELL
    assert body["total"] == {"key": "total", "incidents": 22,
                             "people": sum(12_345 + i for i in range(11)) + 10 * 2000 + 3000,
                             "suppressed": False}
    sector = {c["key"]: c for c in next(t for t in body["tables"] if t["dimension"] == "sector")["cells"]}
    assert sector["bank"]["incidents"] == 11
    assert sector["telecom"] == {**sector["telecom"], "incidents": None, "people": None, "suppressed": True}
    assert "suppression" not in sector["telecom"]  # why a cell is hidden is not published
    assert sector["health"]["suppressed"] is True  # 10: hidden with telecom's 1
    assert sector["bank"]["labels"] == {"kk": "Банктер", "ru": "Банки", "en": "Banks"}
    assert "99999" not in r.text and "secret details" not in r.text and "Aigerim" not in r.text


def test_statistics_csv_is_utf8_with_a_bom_and_documented_columns(live_server: LiveServer,
                                                                  published: Register) -> None:
    with live_server.client() as anonymous:
        r = anonymous.get("/api/v1/public/leaks/statistics.csv")
        plain = anonymous.get("/api/v1/public/leaks/statistics.csv", params={"bom": "false"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf") and not plain.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    bank = next(row for row in rows if row["dimension"] == "sector" and row["key"] == "bank")
    telecom = next(row for row in rows if row["dimension"] == "sector" and row["key"] == "telecom")
    assert bank["incidents"] == "11" and bank["label_ru"] == "Банки" and bank["suppressed"] == "false"
    assert telecom["incidents"] == "" and telecom["people"] == "" and telecom["suppressed"] == "true"
    totals = [row for row in rows if row["key"] == "total"]
    assert {row["dimension"] for row in totals} == {"sector", "data_class", "month", "nature"}
    assert all(row["incidents"] == "22" for row in totals)


def test_the_published_list_shows_rounded_people_and_nothing_private(live_server: LiveServer,
                                                                     published: Register) -> None:
    with live_server.client() as anonymous:
        r = anonymous.get("/api/v1/public/leaks/incidents")
        one = anonymous.get("/api/v1/public/leaks/incidents", params={"sector": "telecom"})
        bad = anonymous.get("/api/v1/public/leaks/incidents", params={"sector": "casino"})
        text = anonymous.get("/api/v1/public/leaks/incidents.csv")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 22
    assert {i["people_affected"] for i in body["items"]} == {12_000, 2_000, 3_000}
    assert set(body["items"][0]) == {"reference", "operator_name", "sector", "month", "nature", "data_classes",
                                     "people_affected", "people_affected_rounded", "people_suppressed",
                                     "published_on"}
    assert body["items"][0]["operator_name"] == "Org alpha"
    for secret in ("Aigerim", "dpo@example.kz", "secret details", "12345", "99999"):
        assert secret not in r.text and secret not in text.text
    assert one.json()["total"] == 1 and one.json()["items"][0]["nature"] == "phishing"
    assert bad.status_code == 422
    assert text.status_code == 200 and len(list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))) == 23


@pytest.mark.parametrize("lang, heading, bank", [
    ("kk", "Ағып кеткен дербес деректер: ашық статистика", "Банктер"),
    ("ru", "Утечки персональных данных: открытая статистика", "Банки"),
    ("en", "Leaked personal data: public statistics", "Banks"),
])
def test_the_page_needs_no_login_and_speaks_three_languages(live_server: LiveServer, published: Register,
                                                            lang: str, heading: str, bank: str) -> None:
    with live_server.client(cookies={"qorgau_lang": lang}, follow_redirects=False) as anonymous:
        r = anonymous.get("/leaks/transparency")
    assert r.status_code == 200, r.text[:300]
    html = r.text
    assert f'<html lang="{lang}">' in html and heading in html
    assert html.count('role="img"') == 5 and "<desc id=\"chart-sector-d\">" in html
    assert f"{bank}: 11" in html                                  # the chart's description and bar title
    assert f"{bank}: {sum(12_345 + i for i in range(11)):,}".replace(",", " ") in html  # people by sector
    assert "&lt;10" in html                                       # telecom, suppressed
    assert 'data-testid="table-sector"' in html                   # the table fallback
    assert "/api/v1/public/leaks/statistics.csv" in html
    assert "≈ 12 000" in html and "Aigerim" not in html and "secret details" not in html
    assert 'href="/leaks/transparency"' in html                   # the footer link


def test_the_page_shows_an_empty_register_honestly(live_server: LiveServer) -> None:
    with live_server.client(cookies={"qorgau_lang": "en"}) as anonymous:
        r = anonymous.get("/leaks/transparency")
        bad = anonymous.get("/leaks/transparency", params={"sector": "casino"})
    assert r.status_code == 200 and 'data-testid="incidents-empty"' in r.text
    assert bad.status_code == 422
