"""The leak register's demo data (``qorgau init --demo``): published incidents that make the transparency page draw
real charts, a late report of the demo bank waiting for the regulator, and a confirmed leak that contains
demo-citizen's verified IIN — the citizen sees it and was notified once. Seeding twice adds nothing, and no
identifier reaches the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qorgau.consent.demo import DEMO_CITIZEN_IIN
from qorgau.core import auth
from qorgau.core.demo import DEMO_BIN, seed_demo
from qorgau.core.platform import Platform
from qorgau.leaks.citizens import leak_citizens_for
from qorgau.leaks.demo import LATE_TITLE, PUBLISHED, seed_leaks_demo
from qorgau.leaks.models import LeakIncident, LeakNotification, LeakUpload
from qorgau.leaks.transparency import transparency_for


def _citizen_id(platform: Platform) -> int:
    with platform.db.reader() as s:
        return s.scalar(select(auth.User.id).where(auth.User.username == "demo-citizen")
                        .execution_options(qorgau_cross_tenant=True))


def _counts(platform: Platform) -> tuple[int, int, int, int]:
    with platform.db.reader() as s:
        def count(model: type, *where: object) -> int:
            return int(s.scalar(select(func.count(model.id)).where(*where)
                                .execution_options(qorgau_cross_tenant=True)) or 0)
        return (count(LeakIncident), count(LeakIncident, LeakIncident.published.is_(True)), count(LeakUpload),
                count(LeakNotification))


@pytest.fixture
def seeded(platform: Platform, caplog: pytest.LogCaptureFixture) -> Platform:
    caplog.set_level(logging.DEBUG)
    assert seed_demo(platform) is not None
    return platform


def test_the_demo_publishes_incidents_the_transparency_page_can_chart(seeded: Platform) -> None:
    with seeded.db.reader() as s:
        stats = transparency_for(seeded).statistics(s)
        listing = transparency_for(seeded).published_incidents(s, limit=500)
    assert stats.total.incidents == len(PUBLISHED) == listing.total
    sector = {c.key: c for c in stats.table("sector").cells}
    assert {k for k, c in sector.items() if not c.suppressed} == {"bank", "telecom", "marketplace", "state"}
    assert sector["health"].incidents is None and sector["education"].incidents is None  # 6 and 4: "<10"
    for table in stats.tables:  # every chart shows something, and hides something
        assert any(not c.suppressed for c in table.cells), table.dimension
        assert any(c.suppressed for c in table.cells), table.dimension
    assert len({i.month for i in listing.items}) > 5  # a history, not one month
    assert all("DEMO" in i.operator_name for i in listing.items)


def test_the_demo_bank_has_a_late_report_waiting_for_the_regulator(seeded: Platform) -> None:
    with seeded.db.reader() as s:
        bank = auth.find_organization_by_bin(s, DEMO_BIN)
    with seeded.db.reader(bank.id) as s:
        late = s.scalar(select(LeakIncident).where(LeakIncident.title == LATE_TITLE))
        assert late.status == "received" and not late.published
        assert late.late and late.late_reason and late.filed_at > late.deadline_at


def test_demo_citizen_sees_the_leak_that_contains_their_iin_and_was_notified_once(seeded: Platform) -> None:
    citizen_id = _citizen_id(seeded)
    citizens = leak_citizens_for(seeded)
    mine = citizens.identifiers(citizen_id)
    assert [(i.kind, i.subscribed) for i in mine] == [("iin", True)]
    found = citizens.lookup(citizen_id, lang="ru")
    assert len(found) == 1
    hit = found[0]
    assert hit.sector == "telecom" and hit.published and hit.operator_is_demo and hit.advice.startswith("DEMO")
    assert [kind for kind, _ in hit.matched] == ["iin"]
    assert DEMO_CITIZEN_IIN not in str(hit.to_dict())
    notes = citizens.notifications(citizen_id)
    assert [n.incident_id for n in notes] == [hit.incident_id]

    with seeded.db.reader() as s:
        upload = s.scalar(select(LeakUpload).execution_options(qorgau_cross_tenant=True))
    assert upload.status == "confirmed" and upload.incident_id == hit.incident_id
    assert upload.counts == {"iin": 38, "phone": 40, "email": 40} and upload.rejected_total == 2
    assert upload.spool_path is None
    spool = Path(seeded.settings.data_dir) / "leaks" / "spool"
    assert not spool.exists() or not any(spool.iterdir())  # the plaintext is gone


def test_seeding_twice_adds_nothing(seeded: Platform) -> None:
    before = _counts(seeded)
    assert before[0] == len(PUBLISHED) + 1 and before[2:] == (1, 1)
    assert seed_demo(seeded) is None        # `qorgau init --demo` again: the demo organization exists
    assert seed_leaks_demo(seeded) is False  # and the leak demo on its own finds everything in place
    assert _counts(seeded) == before


def test_no_identifier_reaches_the_logs(seeded: Platform, caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert DEMO_CITIZEN_IIN not in text and "mail.demo.invalid" not in text and "+7701555" not in text


def test_without_a_demo_organization_nothing_is_seeded(platform: Platform) -> None:
    assert seed_leaks_demo(platform) is False
    assert _counts(platform) == (0, 0, 0, 0)
