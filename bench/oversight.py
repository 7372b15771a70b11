#!/usr/bin/env python
"""Benchmark: AI decisions held for human approval (``qorgau/oversight/service.py``, issue 6).

For each database (SQLite in a temp dir; PostgreSQL too when reachable — ``--pg URL``,
``QORGAU_BENCH_DATABASE_URL``, or ``postgresql://postgres@127.0.0.1:5432/test`` by default — in a private
schema dropped afterwards):

1. **submissions/s, in-process** — ``OversightService.submit`` one transaction each (validation, the consent
   decision point, the vault lookup, the insert, the audit entry), by pseudonym and by IIN, against the
   **baseline** of a plain driver-level ``INSERT`` of the same row, one transaction each;
2. **submissions/s over HTTP** — ``POST /api/v1/decisions`` served by uvicorn (one worker, loopback) in its
   own process, driven by a load generator in a second process (raw HTTP/1.1 keep-alive connections);
3. **review-queue page latency** with ``--pending`` (100,000) pending decisions seeded by a bulk insert:
   p50/p99 of ``queue(limit=50)`` — the first page and a deep keyset page (90 % in) — against the
   **baseline** of a plain indexed ``SELECT … ORDER BY deadline_at, id LIMIT 50`` through the driver.

Goals (issue 6): ≥ 1,000 submissions/s; a queue page ≤ 50 ms at 100,000 pending. Nothing is asserted (the
machine is shared and noisy): figures and ratios are printed and written to the ``## oversight`` section of
``bench/RESULTS.md``.

    .venv/bin/python bench/oversight.py                    # SQLite, and PostgreSQL if reachable
    .venv/bin/python bench/oversight.py --no-pg --pending 10000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import cpu_and_python, update_results_section  # noqa: E402
from _server import free_port, log, pct, request_bytes, run_load, start_server  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "oversight"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
ns = time.perf_counter_ns


def pg_reachable(url: str) -> bool:
    from sqlalchemy import create_engine, text

    from qorgau.core.settings import normalize_database_url

    try:
        engine = create_engine(normalize_database_url(url), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


# --- setup ------------------------------------------------------------------------------------------


def make_platform(pg_url: str | None, data_dir: Path) -> tuple[Any, str | None, str | None]:
    from sqlalchemy import create_engine, text

    from qorgau.core.platform import Platform
    from qorgau.core.settings import Settings, normalize_database_url

    schema = url = None
    if pg_url:
        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = create_engine(normalize_database_url(pg_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        sep = "&" if "?" in pg_url else "?"
        url = normalize_database_url(pg_url) + f"{sep}options=-csearch_path%3D{schema}"
    settings = Settings(data_dir=data_dir, database_url=url, sth_interval_seconds=0)
    return Platform.initialize(settings), schema, url


def drop_schema(pg_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    from qorgau.core.settings import normalize_database_url

    admin = create_engine(normalize_database_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def populate(platform: Any, subjects: int) -> dict[str, Any]:
    """One operator with an API key, a medium-risk scoring system, a legal basis for credit scoring (so every
    submission is allowed and held for review) and ``subjects`` subjects in the vault."""
    from qorgau.consent.service import consent_for
    from qorgau.core import auth
    from qorgau.identifiers import synthetic_kz_number
    from qorgau.oversight.service import oversight_for
    from qorgau.vault.service import SubjectRecord, vault_for

    with platform.db.transaction() as s:
        org = auth.create_organization(s, name="Bench Bank", bin="940140000385", actor="bench").id
        _, api_key = auth.create_api_key(s, organization_id=org, name="bench", roles=["admin", "reviewer"],
                                         actor="bench")
    service = oversight_for(platform)
    with platform.db.transaction(org) as s:
        service.register_system(s, code="scoring", name="Scoring", risk_class="medium", autonomy="low",
                                actor="bench")
        consent_for(platform).add_legal_basis(s, kind="contract", purpose="credit", reference="Loan agreement",
                                              actor="bench")
    iins = [synthetic_kz_number("9001013", n) for n in range(subjects)]
    vault = vault_for(platform)
    pseudonyms: list[str] = []
    subject_ids: list[int] = []
    for start in range(0, subjects, 1000):
        with platform.db.transaction(org) as s:
            tokens = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": i}) for i in iins[start:start + 1000]],
                                         actor="bench")
            pseudonyms += [t.pseudonym for t in tokens]  # type: ignore[union-attr]
            subject_ids += [t.subject_id for t in tokens]  # type: ignore[union-attr]
    with platform.db.reader(org) as s:
        system_id = service._system_row(s, "scoring").id  # noqa: SLF001
    return {"org": org, "api_key": api_key, "iins": iins, "pseudonyms": pseudonyms, "subject_ids": subject_ids,
            "system_id": system_id}


def submission(key: str, subject: Any) -> Any:
    from qorgau.oversight.service import Factor, Submission

    return Submission(system="scoring", idempotency_key=key, subject=subject, decision_type="loan",
                      proposed_outcome="approve", model_version="scoring-2.3", confidence=0.87,
                      factors=[Factor("income", 0.6, "Monthly income"), Factor("debt_ratio", -0.3, "Debt ratio"),
                               Factor("history", 0.1, "Credit history")], input_ref="s3://inputs/bench")


# --- submissions ------------------------------------------------------------------------------------


def bench_submit(platform: Any, data: dict[str, Any], n: int, by: str, tag: str) -> float:
    from qorgau.consent.service import SubjectRef
    from qorgau.oversight.service import oversight_for

    service = oversight_for(platform)
    org = data["org"]
    if by == "pseudonym":
        refs = [SubjectRef(pseudonym=p) for p in data["pseudonyms"]]
    else:
        refs = [SubjectRef(identifier_type="KZ_IIN", identifier=i) for i in data["iins"]]
    for i in range(50):  # warm-up
        with platform.db.transaction(org) as s:
            service.submit(s, submission(f"warm-{tag}-{i}", refs[i % len(refs)]), actor="bench")
    started = time.perf_counter()
    for i in range(n):
        with platform.db.transaction(org) as s:
            result = service.submit(s, submission(f"{tag}-{i}", refs[(i * 7919) % len(refs)]), actor="bench")
        assert result.created and result.decision.status == "pending"
    return n / (time.perf_counter() - started)


def bench_submit_many(platform: Any, data: dict[str, Any], n: int, batch: int, tag: str) -> float:
    """``submit_many`` with ``batch`` submissions per transaction (by pseudonym)."""
    from qorgau.consent.service import SubjectRef
    from qorgau.oversight.service import oversight_for

    service = oversight_for(platform)
    org = data["org"]
    refs = [SubjectRef(pseudonym=p) for p in data["pseudonyms"]]
    started = time.perf_counter()
    for start in range(0, n, batch):
        subs = [submission(f"{tag}-{i}", refs[(i * 7919) % len(refs)]) for i in range(start, min(n, start + batch))]
        with platform.db.transaction(org) as s:
            results = service.submit_many(s, subs, actor="bench")
        assert all(r.created for r in results)
    return n / (time.perf_counter() - started)


def _row(data: dict[str, Any], i: int, key: str, deadline: datetime, now: datetime, sqlite: bool) -> tuple[Any, ...]:
    from qorgau.consent.decision import _sqlite_timestamp

    def ts(value: datetime) -> Any:
        return _sqlite_timestamp(value) if sqlite else value

    factors = json.dumps([{"code": "income", "weight": 0.6, "label": "Monthly income", "value": None},
                          {"code": "debt_ratio", "weight": -0.3, "label": "Debt ratio", "value": None}])
    return (data["system_id"], key, "0" * 64, data["subject_ids"][i % len(data["subject_ids"])], "loan",
            json.dumps("approve"), None, True, factors, "scoring-2.3", 0.87, "s3://inputs/bench", "medium", "low",
            "review", "pending", "reviewer", "contract", None, 1, None, False, 0, ts(deadline), ts(now), "bench", 1,
            data["org"])


_INSERT_COLUMNS = ("ai_system_id, idempotency_key, request_sha256, subject_id, decision_type, proposed_outcome, "
                   "final_outcome, legal_effect, factors, model_version, confidence, input_ref, risk_class, autonomy, "
                   "path, status, level, basis, consent_id, legal_basis_id, reason, four_eyes, approvals, deadline_at, "
                   "submitted_at, submitted_by, version, organization_id")


def insert_sql(sqlite: bool) -> str:
    p = "?" if sqlite else "%s"
    j = p if sqlite else "%s::json"
    marks = [p, p, p, p, p, j, j, p, j] + [p] * 19
    return f"INSERT INTO oversight_decisions ({_INSERT_COLUMNS}) VALUES ({', '.join(marks)})"


def bench_plain_insert(platform: Any, data: dict[str, Any], n: int) -> float:
    """The baseline: the same row through the driver, one transaction (commit) each."""
    sqlite = platform.db.dialect == "sqlite"
    sql = insert_sql(sqlite)
    raw = platform.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        for i in range(n):
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(sql, _row(data, i, f"plain-{i}", now + timedelta(hours=24), now, sqlite))
            raw.commit() if not sqlite else cur.execute("COMMIT")
        rate = n / (time.perf_counter() - started)
        cur.close()
    finally:
        raw.close()
    return rate


# --- HTTP ------------------------------------------------------------------------------------------------


def load_generator(port: int, api_key: str, pseudonyms: list[str], connections: int, duration: float,
                   tag: str, queue: Any) -> None:
    """The second process: raw HTTP/1.1 keep-alive POSTs, each with a fresh idempotency key."""
    def request(i: int) -> bytes:
        body = json.dumps({
            "system": "scoring", "idempotency_key": f"http-{tag}-{i}",
            "subject": {"pseudonym": pseudonyms[(i * 7919) % len(pseudonyms)]}, "decision_type": "loan",
            "proposed_outcome": "approve", "model_version": "scoring-2.3", "confidence": 0.87,
            "factors": [{"code": "income", "weight": 0.6, "label": "Monthly income"},
                        {"code": "debt_ratio", "weight": -0.3, "label": "Debt ratio"},
                        {"code": "history", "weight": 0.1, "label": "Credit history"}],
            "input_ref": "s3://inputs/bench"}).encode()
        return request_bytes("POST", "/api/v1/decisions", api_key, body)

    def created(head: bytes, body: bytes) -> bool:
        return head.startswith(b"HTTP/1.1 201")

    run_load(port, [request(i) for i in range(200)], connections, 1.0, cycle=False, ok=created)  # warm-up
    requests = [request(i) for i in range(200, 200 + int(duration * 5000))]
    queue.put(run_load(port, requests, connections, duration, cycle=False, ok=created))


def bench_http(data_dir: Path, url: str | None, data: dict[str, Any], connections: int, duration: float,
               tag: str) -> tuple[list[float], float, int]:
    port = free_port()
    server = start_server(data_dir, url, port, consent_dispatcher=False)
    try:
        q: Any = mp.get_context("spawn").Queue()
        gen = mp.get_context("spawn").Process(target=load_generator, args=(
            port, data["api_key"], data["pseudonyms"], connections, duration, tag, q))
        gen.start()
        result = q.get(timeout=duration * 4 + 120)
        gen.join(30)
        return result
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


# --- the review queue ------------------------------------------------------------------------------------


def seed_pending(platform: Any, data: dict[str, Any], pending: int) -> float:
    """``pending`` open decisions by a bulk insert (not through submit), deadlines spread over 48 hours."""
    sqlite = platform.db.dialect == "sqlite"
    sql = insert_sql(sqlite)
    rng = random.Random(6)
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    raw = platform.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for start in range(0, pending, 5000):
            rows = [_row(data, i, f"seed-{i}", now + timedelta(seconds=rng.randrange(3600, 48 * 3600)), now, sqlite)
                    for i in range(start, min(pending, start + 5000))]
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(sql, rows)
            raw.commit() if not sqlite else cur.execute("COMMIT")
        if not sqlite:
            cur.execute("ANALYZE oversight_decisions")
            raw.commit()
        else:
            cur.execute("ANALYZE")
        cur.close()
    finally:
        raw.close()
    return time.perf_counter() - started


def bench_queue(platform: Any, data: dict[str, Any], rounds: int, pending: int) -> dict[str, list[float]]:
    from sqlalchemy import text

    from qorgau.oversight.service import _encode_cursor, oversight_for

    service = oversight_for(platform)
    org = data["org"]
    with platform.db.reader(org) as s:
        deep_at = int(pending * 0.9)
        d, i = s.execute(text("SELECT deadline_at, id FROM oversight_decisions WHERE organization_id = :o AND "
                              "status = 'pending' ORDER BY deadline_at, id LIMIT 1 OFFSET :n"),
                         {"o": org, "n": deep_at}).one()
        if isinstance(d, str):
            d = datetime.fromisoformat(d).replace(tzinfo=timezone.utc)
        deep = _encode_cursor("q", d.isoformat(), i)
    out: dict[str, list[float]] = {"first": [], "deep": [], "plain": [], "plain_deep": []}
    for _ in range(5):  # warm-up
        with platform.db.reader(org) as s:
            service.queue(s, limit=50)
    for _ in range(rounds):
        t = ns()
        with platform.db.reader(org) as s:
            page = service.queue(s, limit=50)
        out["first"].append((ns() - t) / 1e6)
        assert len(page.items) == 50 and page.next_cursor
        t = ns()
        with platform.db.reader(org) as s:
            page = service.queue(s, limit=50, cursor=deep)
        out["deep"].append((ns() - t) / 1e6)
        assert len(page.items) == 50
    sqlite = platform.db.dialect == "sqlite"
    p = "?" if sqlite else "%s"
    plain = (f"SELECT * FROM oversight_decisions WHERE organization_id = {p} AND status = {p} AND level = {p} "
             f"ORDER BY deadline_at, id LIMIT 50")
    plain_deep = (f"SELECT * FROM oversight_decisions WHERE organization_id = {p} AND status = {p} AND level = {p} "
                  f"AND deadline_at >= {p} AND (deadline_at > {p} OR id > {p}) ORDER BY deadline_at, id LIMIT 50")
    from qorgau.consent.decision import _sqlite_timestamp

    dv = _sqlite_timestamp(d) if sqlite else d
    raw = platform.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for _ in range(rounds):
            t = ns()
            cur.execute(plain, (org, "pending", "reviewer"))
            rows = cur.fetchall()
            out["plain"].append((ns() - t) / 1e6)
            assert len(rows) == 50
            t = ns()
            cur.execute(plain_deep, (org, "pending", "reviewer", dv, dv, i))
            rows = cur.fetchall()
            out["plain_deep"].append((ns() - t) / 1e6)
            assert len(rows) == 50
            raw.rollback()
        cur.close()
    finally:
        raw.close()
    return out


# --- one database ----------------------------------------------------------------------------------------


def run_one(pg_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    backend = "PostgreSQL" if pg_url else "SQLite"
    tmp = Path(tempfile.mkdtemp(prefix="qorgau-bench-oversight-"))
    load_start = "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())
    platform, schema, url = make_platform(pg_url, tmp / "var")
    try:
        log(f"[{backend}] populating {args.subjects} subjects")
        data = populate(platform, args.subjects)
        log(f"[{backend}] submissions in-process ({args.submissions} each)")
        by_pseudonym = bench_submit(platform, data, args.submissions, "pseudonym", "p")
        by_iin = bench_submit(platform, data, args.submissions, "iin", "i")
        batched = bench_submit_many(platform, data, args.submissions, args.batch, "b")
        plain = bench_plain_insert(platform, data, args.submissions)
        http: tuple[list[float], float, int] | None = None
        if not args.no_http:
            log(f"[{backend}] submissions over HTTP ({args.duration} s, {args.connections} connections)")
            platform.close()
            http = bench_http(tmp / "var", url, data, args.connections, args.duration, uuid.uuid4().hex[:6])
            from qorgau.core.platform import Platform
            from qorgau.core.settings import Settings

            platform = Platform.open(Settings(data_dir=tmp / "var", database_url=url, sth_interval_seconds=0))
        log(f"[{backend}] seeding {args.pending} pending decisions")
        seeded = seed_pending(platform, data, args.pending)
        log(f"[{backend}] queue pages ({args.rounds} rounds)")
        queue = bench_queue(platform, data, args.rounds, args.pending)
        return {"backend": backend, "by_pseudonym": by_pseudonym, "by_iin": by_iin, "batched": batched, "plain": plain, "http": http,
                "seeded": seeded, "queue": queue,
                "load": (load_start, "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg()))}
    finally:
        platform.close()
        if schema and pg_url:
            drop_schema(pg_url, schema)
        shutil.rmtree(tmp, ignore_errors=True)


def report(r: dict[str, Any], args: argparse.Namespace) -> str:
    q = r["queue"]
    lines = [f"### {r['backend']} — {date.today().isoformat()}", ""]
    lines += [f"- {k}: {v}" for k, v in cpu_and_python()]
    lines += [f"- Load average at start / end: {r['load'][0]} / {r['load'][1]} (2 cores shared with other jobs)",
              f"- Command: `bench/oversight.py --pending {args.pending} --submissions {args.submissions} "
              f"--rounds {args.rounds} --batch {args.batch}`", ""]
    lines += ["| submissions | per second | vs plain INSERT |", "|---|---:|---:|",
              f"| plain driver INSERT, one transaction each (baseline) | {r['plain']:,.0f} | 1.00 |",
              f"| `submit` by pseudonym, in-process | {r['by_pseudonym']:,.0f} | {r['by_pseudonym'] / r['plain']:.2f} |",
              f"| `submit` by IIN, in-process | {r['by_iin']:,.0f} | {r['by_iin'] / r['plain']:.2f} |",
              f"| `submit_many`, {args.batch} per transaction, in-process | {r['batched']:,.0f} | "
              f"{r['batched'] / r['plain']:.2f} |"]
    if r["http"] is not None:
        lat, rate, errors = r["http"]
        lines.append(f"| `POST /api/v1/decisions`, {args.connections} connections, one uvicorn worker "
                     f"(p50 {pct(lat, 0.5) / 1000:.1f} ms, p99 {pct(lat, 0.99) / 1000:.1f} ms, {errors} errors) | "
                     f"{rate:,.0f} | {rate / r['plain']:.2f} |")
    lines += ["", f"Review queue with {args.pending:,} pending decisions (seeded by bulk insert in {r['seeded']:.1f} s), "
              f"{args.rounds} rounds, limit 50, each call in its own read transaction:", "",
              "| page | p50 ms | p99 ms | vs plain SELECT (p50) |", "|---|---:|---:|---:|"]
    for key, label, base in (("plain", "plain indexed SELECT … LIMIT 50, first page (baseline)", "plain"),
                             ("plain_deep", "plain indexed SELECT, keyset 90 % in (baseline)", "plain_deep"),
                             ("first", "`queue(limit=50)`, first page", "plain"),
                             ("deep", "`queue(limit=50, cursor=…)`, 90 % in", "plain_deep")):
        lines.append(f"| {label} | {pct(q[key], 0.5):.2f} | {pct(q[key], 0.99):.2f} | "
                     f"{pct(q[key], 0.5) / pct(q[base], 0.5):.1f} |")
    goal_sub = max(r["by_pseudonym"], r["by_iin"], r["batched"]) >= 1000
    goal_q = max(pct(q["first"], 0.99), pct(q["deep"], 0.99)) <= 50
    lines += ["", f"Goals: ≥ 1,000 submissions/s in-process (best variant) — {'met' if goal_sub else 'NOT met'}; "
              f"queue page p99 ≤ 50 ms at {args.pending:,} pending — {'met' if goal_q else 'NOT met'}."]
    return "\n".join(lines) + "\n"


def update_results(label: str, body: str) -> None:
    """Replace (or add) this benchmark's ``### {label}`` subsection in bench/RESULTS.md."""
    update_results_section(RESULTS, SECTION, INTRO, label, body)


INTRO = 'AI decisions held for human approval (`qorgau/oversight/service.py`, issue 6): submissions/s in-process and over HTTP against a plain driver INSERT of the same row, and review-queue page latency (keyset on `(deadline_at, id)`, one index range scan per status × level) against a plain indexed SELECT. `bench/oversight.py`. Goals: ≥ 1,000 submissions/s; a queue page ≤ 50 ms at 100,000 pending.\n'

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", help=f"PostgreSQL URL (default: $QORGAU_BENCH_DATABASE_URL or {DEFAULT_PG} if reachable)")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    ap.add_argument("--pending", type=int, default=100_000, help="pending decisions in the queue")
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--submissions", type=int, default=2000, help="in-process submissions per variant")
    ap.add_argument("--batch", type=int, default=100, help="submissions per submit_many transaction")
    ap.add_argument("--rounds", type=int, default=200, help="queue pages per variant")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of HTTP load")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--no-results", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    targets: list[str | None] = [] if args.no_sqlite else [None]
    if not args.no_pg:
        pg = args.pg or os.environ.get("QORGAU_BENCH_DATABASE_URL") or DEFAULT_PG
        if pg_reachable(pg):
            targets.append(pg)
        elif args.pg or os.environ.get("QORGAU_BENCH_DATABASE_URL"):
            sys.exit("PostgreSQL is not reachable at the given URL")
        else:
            log("PostgreSQL not reachable: SQLite only")
    for target in targets:
        result = run_one(target, args)
        body = report(result, args)
        print(body, flush=True)
        if not args.no_results:
            update_results(result["backend"], body)


if __name__ == "__main__":
    main()
