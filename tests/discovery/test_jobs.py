"""Background scan jobs: validated inputs, sealed secrets, safe claiming, progress, cancel, crashes, uploads."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qorgau.core import audit, auth
from qorgau.core.errors import Conflict, InvalidInput, NotFound
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.discovery import datamap, jobs
from qorgau.discovery.models import DataSource, ScanJob

from conftest import make_bin

IIN = "791028302728"
PASSWORD = "Sup3r-Secret-pw"
HEARTBEAT = 0.2  # seconds: a job is stale after 6 silent heartbeats


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    return tmp_path / "srv"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, roots: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0, scan_workers=0,
                    scan_roots=[str(roots / "{bin}"), str(roots / "shared")], scan_job_heartbeat_seconds=HEARTBEAT)


class Org:
    def __init__(self, platform: Platform, serial: int, roots: Path) -> None:
        self.bin = make_bin(serial)
        with platform.db.transaction() as s:
            self.id = auth.create_organization(s, name=f"Org {serial}", bin=self.bin, actor="test").id
        self.dir = roots / self.bin
        self.dir.mkdir(parents=True)


@pytest.fixture
def org_a(platform: Platform, roots: Path) -> Org:
    return Org(platform, 41, roots)


@pytest.fixture
def org_b(platform: Platform, roots: Path) -> Org:
    return Org(platform, 42, roots)


def clients(path: Path, rows: int = 5) -> Path:
    path.write_text("iin,phone,диагноз\n" + f"{IIN},+7 701 234 56 78,J45\n" * rows, encoding="utf-8")
    return path


def submit(platform: Platform, org: Org, *sources: str, **options: object) -> int:
    with platform.db.transaction(org.id) as s:
        return jobs.submit(platform, s, actor="user:1", sources=list(sources),
                           options={"identifiers_only": True, **options}).id


def job(platform: Platform, job_id: int) -> ScanJob:
    with platform.db.reader() as s:
        row = s.get(ScanJob, job_id)
        assert row is not None
        return row


def worker(platform: Platform, name: str = "w1", **kwargs: object) -> jobs.ScanWorker:
    return jobs.ScanWorker(platform, name=name, poll_seconds=0.05, **kwargs)  # type: ignore[arg-type]


def actions(platform: Platform, org_id: int, object_id: str | None = None) -> list[str]:
    with platform.db.reader(org_id) as s:
        return [e.action for e in reversed(audit.list_entries(s, limit=10_000))
                if object_id is None or (e.object_type, e.object_id) == ("scan_job", object_id)]


def located(platform: Platform, org_id: int) -> dict[str, DataSource]:
    with platform.db.reader(org_id) as s:
        return {src.locator: src for src in s.scalars(select(DataSource))}


def wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- submitting ----------------------------------------------------------------------------------------


def test_a_job_scans_files_directories_and_a_database_into_the_data_map(platform: Platform, org_a: Org) -> None:
    import sqlite3

    clients(org_a.dir / "clients.csv")
    (org_a.dir / "logs").mkdir()
    (org_a.dir / "logs" / "app.log").write_text(f"ИИН {IIN}\n", encoding="utf-8")
    db = org_a.dir / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (iin TEXT, email TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(IIN, "a@gov.kz")] * 3)
    job_id = submit(platform, org_a, str(org_a.dir / "clients.csv"), str(org_a.dir / "logs"), f"sqlite:///{db}")
    queued = job(platform, job_id)
    assert queued.status == "queued" and queued.sources == [str(org_a.dir / "clients.csv"), str(org_a.dir / "logs"),
                                                           f"sqlite:///{db}"]
    assert worker(platform).run_once() == job_id
    done = job(platform, job_id)
    assert (done.status, done.sources_done, done.sources_failed, done.attempts) == ("succeeded", 3, 0, 1)
    assert done.findings == 5 * 2 + 1 + 6 and done.bytes_scanned > 0 and done.rows_scanned > 0
    assert done.sealed_sources == b"" and done.finished_at is not None and done.error is None
    sources = located(platform, org_a.id)
    assert set(sources) == {str(org_a.dir / "clients.csv"), str(org_a.dir / "logs" / "app.log"), f"sqlite:///{db}"}
    assert all(src.last_job_id == job_id for src in sources.values())
    assert actions(platform, org_a.id, str(job_id)) == ["discovery.scan_job.submit", "discovery.scan_job.start",
                                                        "discovery.scan_job.finish"]
    assert actions(platform, org_a.id).count("discovery.datamap.record") == 3
    assert worker(platform).run_once() is None  # nothing left


@pytest.mark.parametrize("spec, reason", [
    ("relative/path.csv", "not_absolute"),
    ("/etc/passwd", "outside_roots"),
    ("{dir}/../../etc", "outside_roots"),
    ("{dir}/missing.csv", "not_found"),
    ("-", "stdin"),
    ("upload:x.csv", "upload"),
    ("", "empty"),
    ("a\nb", "too_long"),
    ("ftp://host/file", "bad_url"),
    ("postgresql+nosuchdriver://u:p@h/db", "bad_url"),
    ("postgresql:///no-host", "bad_url"),
    ("sqlite://", "bad_url"),
    ("sqlite:////etc/some.db", "outside_roots"),
    ("mysql://u:" + PASSWORD + "@host:port/db", "bad_url"),
    ("oracle://u:" + PASSWORD + "@host/db", "bad_url"),  # no driver installed for it
])
def test_bad_inputs_are_refused_naming_the_input_and_nothing_is_written(platform: Platform, org_a: Org, spec: str,
                                                                       reason: str) -> None:
    clients(org_a.dir / "ok.csv")
    before = actions(platform, org_a.id)
    with platform.db.transaction(org_a.id) as s, pytest.raises(jobs.SourceRejected) as raised:
        jobs.submit(platform, s, actor="user:1", sources=[str(org_a.dir / "ok.csv"), spec.format(dir=org_a.dir)])
    assert raised.value.reason == reason and raised.value.field == "sources[1]"
    assert PASSWORD not in raised.value.message and "etc" not in raised.value.message
    with platform.db.reader() as s:
        assert s.scalar(select(func.count()).select_from(ScanJob)) == 0
    assert actions(platform, org_a.id) == before


def test_without_scan_roots_server_paths_are_refused_but_databases_are_not(platform: Platform, org_a: Org) -> None:
    platform.settings = platform.settings.model_copy(update={"scan_roots": []})
    with platform.db.transaction(org_a.id) as s:
        with pytest.raises(jobs.SourceRejected) as raised:
            jobs.submit(platform, s, actor="user:1", sources=[str(org_a.dir)])
        assert raised.value.reason == "no_roots" and "QORGAU_SCAN_ROOTS" in raised.value.message
        assert jobs.submit(platform, s, actor="user:1", sources=["postgresql://u@db.internal/crm"]).status == "queued"


def test_each_organization_reads_only_its_own_scan_root(platform: Platform, org_a: Org, org_b: Org,
                                                        roots: Path) -> None:
    clients(org_a.dir / "a.csv")
    (roots / "shared").mkdir()
    clients(roots / "shared" / "common.csv")
    with platform.db.transaction(org_b.id) as s:
        with pytest.raises(jobs.SourceRejected) as raised:
            jobs.submit(platform, s, actor="user:2", sources=[str(org_a.dir / "a.csv")])
        assert raised.value.reason == "outside_roots"
        assert jobs.submit(platform, s, actor="user:2", sources=[str(roots / "shared" / "common.csv")]).id


@pytest.mark.parametrize("options, field", [
    ({"types": ["KZ_IIN", "NOT_A_TYPE"]}, "options.types"),
    ({"min_score": 1.5}, "options.min_score"),
    ({"min_score": "high"}, "options.min_score"),
    ({"sample_rows": 0}, "options.sample_rows"),
    ({"workers": 10_000}, "options.workers"),
    ({"identifiers_only": "yes"}, "options.identifiers_only"),
    ({"id_field": "id"}, "options.id_field"),
    ({"allow": "/etc/x"}, "options.allow"),
])
def test_bad_options_name_the_option(platform: Platform, org_a: Org, options: dict, field: str) -> None:
    with platform.db.transaction(org_a.id) as s, pytest.raises(InvalidInput) as raised:
        jobs.submit(platform, s, actor="user:1", sources=[str(org_a.dir)], options=options)
    assert raised.value.field == field


def test_a_database_password_is_sealed_shown_nowhere_and_wiped_when_the_job_ends(
        platform: Platform, org_a: Org, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://scanner:{PASSWORD}@127.0.0.1:1/crm"
    job_id = submit(platform, org_a, url)
    queued = job(platform, job_id)
    assert queued.sources == ["postgresql://scanner:***@127.0.0.1:1/crm"]
    assert PASSWORD.encode() not in queued.sealed_sources and queued.sealed_sources.startswith(b"Q1")
    with platform.db.reader() as s:
        assert jobs.unseal(platform, s, queued) == [{"url": url}]
    worker(platform).run_once()
    ended = job(platform, job_id)
    assert ended.status == "failed" and ended.sources_failed == 1 and ended.sealed_sources == b""
    with platform.db.reader() as s:
        everything = repr([tuple(r) for table in ("scan_jobs", "data_sources", "audit_entries")
                           for r in s.execute(select(ScanJob.metadata.tables[table])).all()])
    assert PASSWORD not in everything and "***" in everything
    assert PASSWORD not in caplog.text and PASSWORD not in repr(ended) and PASSWORD not in json.dumps(jobs.job_dict(ended))
    source, = located(platform, org_a.id).values()
    assert source.status == "failed" and source.last_error == "database error (OperationalError)"


# --- claiming, racing, crashing -----------------------------------------------------------------------


def test_two_workers_racing_claim_each_job_exactly_once(platform: Platform, org_a: Org) -> None:
    ids = []
    for n in range(8):
        clients(org_a.dir / f"f{n}.csv", rows=2)
        ids.append(submit(platform, org_a, str(org_a.dir / f"f{n}.csv")))
    claimed: dict[str, list[int]] = {"w1": [], "w2": []}
    start = threading.Barrier(2)

    def run(name: str) -> None:
        w = worker(platform, name)
        start.wait()
        while (job_id := w.run_once()) is not None:
            claimed[name].append(job_id)

    threads = [threading.Thread(target=run, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(claimed["w1"] + claimed["w2"]) == ids  # every job once, none twice
    for job_id in ids:
        row = job(platform, job_id)
        assert (row.status, row.attempts, row.sources_done) == ("succeeded", 1, 1)
        assert actions(platform, org_a.id, str(job_id)).count("discovery.scan_job.start") == 1


def test_a_stale_job_is_requeued_and_its_old_worker_can_no_longer_write(platform: Platform, org_a: Org) -> None:
    clients(org_a.dir / "a.csv")
    job_id = submit(platform, org_a, str(org_a.dir / "a.csv"))
    first, second = worker(platform, "first"), worker(platform, "second")
    lost = first.claim()  # …and "first" freezes: no heartbeat from now on
    assert lost is not None and job(platform, job_id).worker == "first"
    assert second.requeue_stale() == []  # not stale yet
    time.sleep(HEARTBEAT * jobs.STALE_AFTER_HEARTBEATS + 0.1)
    assert second.requeue_stale() == [job_id]
    requeued = job(platform, job_id)
    assert (requeued.status, requeued.worker, requeued.attempts) == ("queued", None, 1)
    assert "stopped responding" in (requeued.error or "")
    fresh = second.claim()
    assert fresh is not None and fresh.lease.attempt == 2
    assert first.run(lost) is None  # woke up: its lease is gone, it records nothing
    assert located(platform, org_a.id) == {}
    assert second.run(fresh) == "succeeded"
    assert job(platform, job_id).attempts == 2 and len(located(platform, org_a.id)) == 1
    assert actions(platform, org_a.id, str(job_id)) == [
        "discovery.scan_job.submit", "discovery.scan_job.start", "discovery.scan_job.requeue",
        "discovery.scan_job.start", "discovery.scan_job.finish"]


def test_a_job_whose_workers_keep_dying_fails_with_the_reason(platform: Platform, org_a: Org) -> None:
    job_id = submit(platform, org_a, str(org_a.dir))
    w = worker(platform)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        assert w.claim() is not None
        time.sleep(HEARTBEAT * jobs.STALE_AFTER_HEARTBEATS + 0.1)
        assert w.requeue_stale() == [job_id]
        assert job(platform, job_id).status == ("queued" if attempt < jobs.MAX_ATTEMPTS else "failed")
    failed = job(platform, job_id)
    assert failed.error == f"its worker stopped responding {jobs.MAX_ATTEMPTS} times; giving up"
    assert failed.finished_at is not None and failed.sealed_sources == b""


def big_text(path: Path, megabytes: int) -> Path:
    line = f"клиент ИИН {IIN}, тел 8 (701) 234-56-78, почта a@mail.kz, ничего особенного здесь нет\n"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(line * (megabytes * 1_000_000 // len(line.encode())))
    return path


def test_a_killed_worker_process_leaves_a_job_that_is_requeued_and_finished_without_rescanning(
        platform: Platform, org_a: Org, settings: Settings) -> None:
    clients(org_a.dir / "first.csv")
    big = big_text(org_a.dir / "second.log", 12)
    job_id = submit(platform, org_a, str(org_a.dir / "first.csv"), str(big))
    env = {**os.environ, "QORGAU_DATA_DIR": str(settings.data_dir), "QORGAU_DATABASE_URL": settings.resolved_database_url,
           "QORGAU_SCAN_ROOTS": json.dumps(settings.scan_roots), "QORGAU_SCAN_JOB_HEARTBEAT_SECONDS": str(HEARTBEAT)}
    proc = subprocess.Popen([sys.executable, "-m", "qorgau.cli", "jobs", "worker", "--name", "doomed"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: job(platform, job_id).sources_done == 1 and job(platform, job_id).bytes_scanned > 1_000_000,
                 what="the worker to be inside the second source")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    killed = job(platform, job_id)
    assert (killed.status, killed.worker, killed.sources_done) == ("running", "doomed", 1)
    assert set(located(platform, org_a.id)) == {str(org_a.dir / "first.csv")}  # what was recorded stays
    time.sleep(HEARTBEAT * jobs.STALE_AFTER_HEARTBEATS + 0.1)
    rescuer = worker(platform, "rescuer")
    assert rescuer.requeue_stale() == [job_id]
    assert rescuer.run_once() == job_id
    done = job(platform, job_id)
    assert (done.status, done.attempts, done.sources_done, done.worker) == ("succeeded", 2, 2, "rescuer")
    assert set(located(platform, org_a.id)) == {str(org_a.dir / "first.csv"), str(big)}
    assert actions(platform, org_a.id).count("discovery.datamap.record") == 2  # first.csv was not scanned again


def many_files(directory: Path, count: int) -> Path:
    directory.mkdir()
    for n in range(count):
        (directory / f"{n:04d}.txt").write_text(f"ИИН {IIN}\n", encoding="utf-8")
    return directory


def test_cancel_mid_scan_stops_between_chunks_and_keeps_what_was_recorded(platform: Platform, org_a: Org) -> None:
    folder = many_files(org_a.dir / "folder", 400)
    job_id = submit(platform, org_a, str(folder))
    thread = threading.Thread(target=worker(platform).run_once)
    thread.start()
    wait_for(lambda: job(platform, job_id).sources_done >= 3, what="some sources recorded")
    with platform.db.transaction(org_a.id) as s:
        assert jobs.cancel(platform, s, job_id, actor="user:1").status == "running"  # asked, not forced
    thread.join(timeout=60)
    cancelled = job(platform, job_id)
    assert cancelled.status == "cancelled" and 3 <= cancelled.sources_done < 400
    assert cancelled.error == f"cancelled on request after {cancelled.sources_done} source(s)"
    assert len(located(platform, org_a.id)) == cancelled.sources_done  # every recorded source is still there
    assert actions(platform, org_a.id, str(job_id))[-1] == "discovery.scan_job.finish"
    with platform.db.transaction(org_a.id) as s, pytest.raises(Conflict):
        jobs.cancel(platform, s, job_id, actor="user:1")


def test_a_queued_job_is_cancelled_at_once(platform: Platform, org_a: Org) -> None:
    job_id = submit(platform, org_a, str(org_a.dir))
    with platform.db.transaction(org_a.id) as s:
        row = jobs.cancel(platform, s, job_id, actor="user:1")
        assert (row.status, row.sealed_sources) == ("cancelled", b"")
    assert worker(platform).run_once() is None


def test_a_worker_shutting_down_gives_its_job_back_and_the_next_one_resumes(platform: Platform, org_a: Org) -> None:
    folder = many_files(org_a.dir / "folder", 300)
    job_id = submit(platform, org_a, str(folder))
    stopping = worker(platform, "stopping")
    thread = threading.Thread(target=stopping.run_once)
    thread.start()
    wait_for(lambda: job(platform, job_id).sources_done >= 3, what="some sources recorded")
    stopping.stop.set()
    thread.join(timeout=60)
    released = job(platform, job_id)
    assert (released.status, released.attempts, released.worker) == ("queued", 0, None)
    assert worker(platform, "next").run_once() == job_id
    assert job(platform, job_id).status == "succeeded" and job(platform, job_id).sources_done == 300
    assert actions(platform, org_a.id).count("discovery.datamap.record") == 300  # none twice


def test_another_organization_cannot_see_or_cancel_a_job(platform: Platform, org_a: Org, org_b: Org) -> None:
    job_id = submit(platform, org_a, str(org_a.dir))
    with platform.db.transaction(org_b.id) as s:
        with pytest.raises(NotFound):
            jobs.get_job(s, job_id)
        with pytest.raises(NotFound):
            jobs.cancel(platform, s, job_id, actor="user:2")
        assert jobs.list_jobs(s) == ([], 0)
    with platform.db.reader(org_a.id) as s:
        rows, total = jobs.list_jobs(s)
        assert total == 1 and rows[0].id == job_id and jobs.list_jobs(s, status="running") == ([], 0)


def test_links_leading_outside_the_roots_are_refused_and_special_files_skipped(platform: Platform, org_a: Org,
                                                                             tmp_path: Path) -> None:
    outside = clients(tmp_path / "outside.csv")
    folder = org_a.dir / "folder"
    folder.mkdir()
    clients(folder / "inside.csv")
    (folder / "escape.csv").symlink_to(outside)
    (folder / "alias.csv").symlink_to(folder / "inside.csv")
    os.mkfifo(folder / "pipe.txt")  # a worker reading it would block forever
    job_id = submit(platform, org_a, str(folder))
    assert worker(platform).run_once() == job_id
    ended = job(platform, job_id)
    assert set(located(platform, org_a.id)) == {str(folder / "inside.csv")}
    assert ended.status == "failed" and "1 link(s) lead outside the scan roots" in (ended.error or "")


# --- uploads ------------------------------------------------------------------------------------------


def upload(platform: Platform, org: Org, *files: tuple[str, bytes]) -> int:
    with jobs.staged_uploads(platform, [(name, io.BytesIO(data)) for name, data in files]) as staged:
        with platform.db.transaction(org.id) as s:
            return jobs.submit_uploads(platform, s, actor="user:1", staged=staged,
                                       options={"identifiers_only": True}).id


def test_uploaded_files_are_private_scanned_under_their_names_and_deleted_after_the_job(
        platform: Platform, org_a: Org) -> None:
    data = (f"iin\n{IIN}\n").encode()
    job_id = upload(platform, org_a, ("../../clients.csv", data), ("clients.csv", data), ("notes", b"nothing here\n"))
    root = jobs.uploads_root(platform)
    stored = [p for p in root.rglob("*") if p.is_file()]
    assert len(stored) == 3 and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in stored)
    assert oct(stored[0].parent.stat().st_mode & 0o777) == "0o700"
    assert job(platform, job_id).sources == ["upload:clients.csv", "upload:clients (2).csv", "upload:notes"]
    worker(platform).run_once()
    assert job(platform, job_id).status == "succeeded"
    assert list(root.iterdir()) == []  # deleted when the job ended
    sources = located(platform, org_a.id)
    assert set(sources) == {"upload:clients.csv", "upload:clients (2).csv", "upload:notes"}
    assert sources["upload:clients.csv"].findings == 1 and sources["upload:notes"].findings == 0


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(platform: Platform, org_a: Org) -> None:
    with pytest.raises(jobs.UploadTooLarge):
        with jobs.staged_uploads(platform, [("a.csv", io.BytesIO(b"x" * 3000))], max_bytes=2048):
            pass
    assert list(jobs.uploads_root(platform).iterdir()) == []
    with pytest.raises(InvalidInput):
        with jobs.staged_uploads(platform, []):
            pass


def test_uploads_left_by_a_crash_are_deleted_when_a_worker_starts(platform: Platform, org_a: Org) -> None:
    queued_id = upload(platform, org_a, ("keep.csv", b"iin\n"))
    root = jobs.uploads_root(platform)
    kept = next(root.iterdir())
    orphan = root / "0123abcd"
    orphan.mkdir()
    (orphan / "0000.csv").write_bytes(b"left behind")
    fresh = root / "fresh"
    fresh.mkdir()  # being written right now: its job row is not committed yet
    old = time.time() - jobs.UPLOAD_GRACE_SECONDS - 5
    for path in (kept, orphan):
        os.utime(path, (old, old))
    worker(platform).start_up()
    assert sorted(p.name for p in root.iterdir()) == sorted([kept.name, "fresh"])
    assert job(platform, queued_id).status == "queued"


def test_a_cancelled_upload_job_deletes_its_files(platform: Platform, org_a: Org) -> None:
    job_id = upload(platform, org_a, ("a.csv", b"iin\n"))
    with platform.db.transaction(org_a.id) as s:
        jobs.cancel(platform, s, job_id, actor="user:1")
    assert list(jobs.uploads_root(platform).iterdir()) == []


def test_the_servers_worker_threads_run_jobs_and_stop_cleanly(platform: Platform, org_a: Org) -> None:
    clients(org_a.dir / "a.csv")
    threads = jobs.start_workers(platform, 2)
    try:
        job_id = submit(platform, org_a, str(org_a.dir / "a.csv"))
        jobs.wake_workers()
        wait_for(lambda: job(platform, job_id).status == "succeeded", what="the job to finish")
    finally:
        threads.stop(timeout=30)
    assert not any(t.is_alive() for t in threads.threads)
    assert jobs.start_workers(platform, 0).threads == []


def test_job_dicts_carry_no_secrets_or_host_names(platform: Platform, org_a: Org) -> None:
    job_id = submit(platform, org_a, f"postgresql://u:{PASSWORD}@db.internal/crm")
    doc = jobs.job_dict(job(platform, job_id))
    assert "sealed_sources" not in doc and "worker" not in doc and PASSWORD not in json.dumps(doc)
    assert datamap.UPLOAD_PREFIX == "upload:"
