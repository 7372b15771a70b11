"""Linearizable withdrawal: once ``withdraw`` has returned, no check that *starts* afterwards — in any
process — returns allow. Several real processes hammer ``check`` on the same database (SQLite file, and
PostgreSQL when configured) while this one withdraws; every check's start time and answer is recorded on
the machine-wide monotonic clock, which every process reads the same."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Tenant
from qorgau.consent.service import ConsentService, SubjectRef
from qorgau.core.platform import Platform

from .helpers import give, iin_subject

CHECKERS = 3


def _hammer(data_dir: str, database_url: str, org: int, subjects: list[dict[str, Any]], purpose: str,
            ready: Any, stop: Any, results: Any) -> None:
    """A checker process: its own platform, its own connections; records (start ns, subject index, allow)."""
    from qorgau.consent.service import SubjectRef, consent_for
    from qorgau.core.platform import Platform
    from qorgau.core.settings import Settings

    platform = Platform.open(Settings(data_dir=Path(data_dir), database_url=database_url, sth_interval_seconds=0))
    service = consent_for(platform)
    refs = [SubjectRef(**s) for s in subjects]
    log: list[tuple[int, int, bool]] = []
    for ref in refs:  # warm up: connections open, statements prepared, and the consents are there
        assert service.check(ref, organization_id=org, purpose=purpose).allow
    ready.release()
    i = 0
    while not stop.is_set():
        index = i % len(refs)
        start = time.monotonic_ns()
        decision = service.check(refs[index], organization_id=org, purpose=purpose)
        log.append((start, index, decision.allow))
        i += 1
    results.put(log)
    service.close()
    platform.close()


def test_no_check_that_starts_after_withdraw_returned_ever_allows(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, settings: Any) -> None:
    org = tenant_a.org_id
    given = [give(consents, platform, org, iin_subject(n)) for n in range(1, 5)]
    with platform.db.reader(org) as s:
        pseudonyms = [consents.subject_pseudonym(s, c) for c in given]
    # half the checkers' subjects by pseudonym, half by IIN: both resolutions race the withdrawal
    subjects = [{"pseudonym": pseudonyms[0]}, {"identifier_type": "KZ_IIN", "identifier": iin_subject(1).identifier},
                {"pseudonym": pseudonyms[1]}, {"identifier_type": "KZ_IIN", "identifier": iin_subject(2).identifier}]
    ctx = mp.get_context("spawn")
    ready, stop, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(settings.data_dir), settings.resolved_database_url, org, subjects,
                                                "marketing.sms", ready, stop, results), daemon=True)
             for _ in range(CHECKERS)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            assert ready.acquire(timeout=120), "a checker process did not start"
        time.sleep(0.3)  # let them hammer the live consents for a while
        returned: dict[int, int] = {}
        for index, consent in ((0, given[0]), (2, given[1])):  # subjects 1 and 2, by pseudonym and by IIN
            with platform.db.transaction(org) as s:
                consents.withdraw(s, consent.id, channel="written", actor="user:1")
            returned_at = time.monotonic_ns()  # the transaction has committed: withdraw has returned
            returned[index] = returned[index + 1] = returned_at
            time.sleep(0.3)
        stop.set()
        logs = [results.get(timeout=120) for _ in procs]
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    records = [r for log in logs for r in log]
    after = [(start, index, allow) for start, index, allow in records if start > returned[index]]
    before = [(start, index, allow) for start, index, allow in records if start <= returned[index]]
    violations = [r for r in after if r[2]]
    assert not violations, f"{len(violations)} checks started after withdraw returned and still allowed"
    # the test could have failed: plenty of allows before, plenty of denies after, from every process
    assert sum(1 for r in before if r[2]) > 100 and len(after) > 100
    assert all(len(log) > 50 for log in logs)
    assert {index for _, index, _ in after} == {0, 1, 2, 3}
    # and the subjects that were not withdrawn kept being allowed throughout (no false denies)
    with platform.db.reader(org) as s:
        assert consents.get_consent(s, given[2].id).status == "active"
    # (the withdrawal left subject 1 nothing at this operator: crypto-shredded, docs/consent.md)
    assert consents.check(SubjectRef(pseudonym=pseudonyms[0]), organization_id=org,
                          purpose="marketing.sms").reason == "subject_erased"
    assert consents.check(iin_subject(3), organization_id=org, purpose="marketing.sms").allow


@pytest.mark.parametrize("workers", [4])
def test_threads_in_one_process_see_the_withdrawal_too(platform: Platform, consents: ConsentService,
                                                       tenant_a: Tenant, workers: int) -> None:
    import threading

    org = tenant_a.org_id
    consent = give(consents, platform, org)
    subject = iin_subject(1)
    stop = threading.Event()
    logs: list[list[tuple[int, bool]]] = [[] for _ in range(workers)]

    def hammer(log: list[tuple[int, bool]]) -> None:
        while not stop.is_set():
            start = time.monotonic_ns()
            log.append((start, consents.check(subject, organization_id=org, purpose="marketing.sms").allow))

    threads = [threading.Thread(target=hammer, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    time.sleep(0.2)
    with platform.db.transaction(org) as s:
        consents.withdraw(s, consent.id, channel="written", actor="user:1")
    returned = time.monotonic_ns()
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    after = [allow for log in logs for start, allow in log if start > returned]
    assert after and not any(after)
    assert any(allow for log in logs for start, allow in log if start <= returned)


def test_the_harness_catches_a_decision_point_that_reads_a_stale_snapshot(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    """A negative control: a checker that keeps one read transaction open (as a cache or a long snapshot
    would) keeps allowing after the withdrawal — and the same bookkeeping as above reports it."""
    import threading

    from sqlalchemy import text

    org = tenant_a.org_id
    consent = give(consents, platform, org)
    stale = platform.db.engine.execution_options(qorgau_readonly=True).connect()  # a deferred read (SQLite)
    stale_tx = stale.begin()
    sql = text("SELECT status FROM consent_consents WHERE organization_id = :o AND id = :i")
    assert stale.execute(sql, {"o": org, "i": consent.id}).scalar() == "active"  # the snapshot is taken here
    if platform.db.dialect == "postgresql":  # READ COMMITTED refreshes per statement: pin a snapshot instead
        stale_tx.rollback()
        stale_tx = stale.begin()
        stale.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert stale.execute(sql, {"o": org, "i": consent.id}).scalar() == "active"
    log: list[tuple[int, bool]] = []
    stop = threading.Event()

    def stale_checker() -> None:
        while not stop.is_set():
            start = time.monotonic_ns()
            log.append((start, stale.execute(sql, {"o": org, "i": consent.id}).scalar() == "active"))

    thread = threading.Thread(target=stale_checker)
    thread.start()
    time.sleep(0.1)
    with platform.db.transaction(org) as s:
        consents.withdraw(s, consent.id, channel="written", actor="user:1")
    returned = time.monotonic_ns()
    time.sleep(0.1)
    stop.set()
    thread.join()
    stale_tx.rollback()
    stale.close()
    violations = [1 for start, allow in log if start > returned and allow]
    assert violations, "the bookkeeping must flag a reader that misses the withdrawal"
    assert not consents.check(iin_subject(1), organization_id=org, purpose="marketing.sms").allow
