#!/usr/bin/env python
"""Benchmark: the consent decision point (``qorgau/consent/decision.py``) and withdrawal → processor notice.

One run, one database, measures against the floor of a plain dict lookup (what a check would cost if the
answer were already in memory — which the linearizability promise forbids):

1. **floor** — ``answers[(org, pseudonym, purpose)]`` in a dict, timed one call at a time like the rest;
2. **in-process** ``ConsentService.check`` by pseudonym and by IIN, with ``--subjects`` subjects × 2 purposes
   of consents in the database: decisions/s, p50, p99 (goal p99 ≤ 50 µs). Steady state: every subject was
   checked once before, so an allow is answered from the remembered allow after the validation statement
   (one SQL statement of unique-index probes — never without a statement: docs/consent.md); plus the *full
   statement* path (nothing remembered: the first check of a question, or the first after a change);
3. **over HTTP** — ``POST /api/v1/consent/check`` served by uvicorn (one worker, loopback) in its own
   process, driven by a load generator in a second process (asyncio, keep-alive connections, raw HTTP/1.1):
   decisions/s, p50, p99 (goal ≥ 2,000/s with p99 ≤ 20 ms);
4. **withdrawal → first processor notified** — ``POST …/withdraw`` to the same server, whose dispatcher
   thread delivers the signed webhook to a receiver in this process: p50, p99, max from sending the
   withdrawal to the webhook's arrival (goal p99 ≤ 1 s).

Nothing is asserted (the machine is shared and noisy): figures and ratios are printed and written to the
``## consent_check`` section of ``bench/RESULTS.md`` (``### SQLite`` / ``### PostgreSQL`` subsections).

    .venv/bin/python bench/consent_check.py                          # SQLite in a temp dir
    .venv/bin/python bench/consent_check.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import http.server
import json
import multiprocessing as mp
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import cpu_and_python, update_results_section  # noqa: E402
from _server import free_port, log, pct, request_bytes, run_load, start_server  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "consent_check"
ns = time.perf_counter_ns


# --- setup ------------------------------------------------------------------------------------------


def make_platform(args: argparse.Namespace, data_dir: Path) -> tuple[Any, str | None]:
    from qorgau.core.platform import Platform
    from qorgau.core.settings import Settings, normalize_database_url

    schema = None
    url = None
    if args.database_url:
        from sqlalchemy import create_engine, text

        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = create_engine(normalize_database_url(args.database_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        sep = "&" if "?" in args.database_url else "?"
        url = normalize_database_url(args.database_url) + f"{sep}options=-csearch_path%3D{schema}"
    settings = Settings(data_dir=data_dir, database_url=url, sth_interval_seconds=0)
    return Platform.initialize(settings), schema


def populate(platform: Any, subjects: int) -> dict[str, Any]:
    """One operator, ``subjects`` subjects, each with consents for two purposes (through the service)."""
    from qorgau.consent.service import SubjectRef, consent_for
    from qorgau.core import auth
    from qorgau.identifiers import synthetic_kz_number

    service = consent_for(platform)
    with platform.db.transaction() as s:
        org = auth.create_organization(s, name="Bench Bank", bin="940140000385", actor="bench").id
        _, api_key = auth.create_api_key(s, organization_id=org, name="bench", roles=["admin", "reviewer"], actor="bench")
    iins = [synthetic_kz_number("9001013", n) for n in range(subjects)]
    pseudonyms: list[str] = []
    started = time.perf_counter()
    common = dict(valid_until=None, third_party_transfer=False, counterparties=[], cross_border=False, countries=[],
                  public_sources=False, other=None, channel="written", evidence_ref=None, evidence_sha256=None,
                  actor="bench")
    for start in range(0, subjects, 200):
        with platform.db.transaction(org) as s:
            for iin in iins[start:start + 200]:
                ref = SubjectRef(identifier_type="KZ_IIN", identifier=iin)
                c = service.give(s, ref, purpose="marketing.sms", data_categories=["PHONE_NUMBER"], **common)
                service.give(s, ref, purpose="credit.scoring", data_categories=["credit_history"], **common)
                pseudonyms.append(service._pseudonym(s, c.subject_id))  # noqa: SLF001
        log(f"  {min(start + 200, subjects)}/{subjects} subjects")
    log(f"populated {subjects} subjects × 2 consents in {time.perf_counter() - started:.1f} s")
    return {"org": org, "api_key": api_key, "iins": iins, "pseudonyms": pseudonyms}


# --- in-process -------------------------------------------------------------------------------------


def bench_floor(data: dict[str, Any], n: int) -> list[float]:
    answers = {(data["org"], p, "marketing.sms"): True for p in data["pseudonyms"]}
    keys = [(data["org"], p, "marketing.sms") for p in data["pseudonyms"]]
    lat = []
    for i in range(n):
        key = keys[i % len(keys)]
        t = ns()
        answers[key]
        lat.append((ns() - t) / 1000)
    return lat


def bench_in_process(platform: Any, data: dict[str, Any], n: int, by: str,
                     full: bool = False) -> tuple[list[float], float]:
    from qorgau.consent.service import SubjectRef, consent_for

    service = consent_for(platform)
    if by == "pseudonym":
        refs = [SubjectRef(pseudonym=p) for p in data["pseudonyms"]]
    else:
        refs = [SubjectRef(identifier_type="KZ_IIN", identifier=i) for i in data["iins"]]
    org = data["org"]
    for ref in refs:  # warm up: each question asked once (steady state: the allows are remembered)
        assert service.check(ref, organization_id=org, purpose="marketing.sms").allow
    lat = []
    forget = service.decisions.forget
    started = time.perf_counter()
    for i in range(n):
        ref = refs[(i * 7919) % len(refs)]
        if full:
            forget()  # not timed: the check below runs the full statement
        t = ns()
        service.check(ref, organization_id=org, purpose="marketing.sms")
        lat.append((ns() - t) / 1000)
    return lat, n / (time.perf_counter() - started)


# --- HTTP ----------------------------------------------------------------------------------------------


def load_generator(port: int, api_key: str, pseudonyms: list[str], connections: int, duration: float,
                   queue: Any) -> None:
    """The second process: raw HTTP/1.1 keep-alive requests, as fast as the server answers."""
    requests = [request_bytes("POST", "/api/v1/consent/check", api_key,
                              json.dumps({"subject": {"pseudonym": p}, "purpose": "marketing.sms"}).encode())
                for p in pseudonyms[:2000]]

    def allowed(head: bytes, body: bytes) -> bool:
        return head.startswith(b"HTTP/1.1 200") and b'"allow":true' in body.replace(b" ", b"")

    run_load(port, requests, connections, 1.0, cycle=True, ok=allowed)  # warm-up
    queue.put(run_load(port, requests, connections, duration, cycle=True, ok=allowed))


# --- withdrawal → first processor notified ----------------------------------------------------------------


def bench_notify(port: int, api_key: str, platform: Any, data: dict[str, Any],
                 rounds: int) -> tuple[list[float], list[float]]:
    """(sent → webhook arrived, withdrawal returned → webhook arrived), in ms."""
    import httpx

    arrivals: dict[str, float] = {}
    arrived = threading.Condition()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.perf_counter()
            receipt = json.loads(raw)["consent"]["receipt_id"]
            with arrived:
                arrivals.setdefault(receipt, now)
                arrived.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    rport = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", rport), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    delays: list[float] = []
    after_return: list[float] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {api_key}"},
                      timeout=30) as c:
        cp = c.post("/api/v1/consent/counterparties", json={"name": "Bench processor", "kind": "processor",
                                                            "bin": "990140004654",
                                                            "webhook_url": f"http://127.0.0.1:{rport}/hook"}).json()
        cp_id = cp["counterparty"]["id"]
        for n in range(rounds):
            subject = {"identifier_type": "KZ_IIN", "identifier": data["iins"][n]}
            consent = c.post("/api/v1/consent/consents", json={
                "subject": subject, "purpose": "marketing.email", "data_categories": ["EMAIL_ADDRESS"],
                "channel": "written", "counterparties": [cp_id]}).json()
            c.post("/api/v1/consent/transfers", json={"consent_id": consent["id"], "counterparty_id": cp_id,
                                                      "data_categories": ["EMAIL_ADDRESS"]}).raise_for_status()
            time.sleep(0.05)  # the dispatcher is idle when the withdrawal comes, as it usually is
            sent = time.perf_counter()
            c.post(f"/api/v1/consent/consents/{consent['id']}/withdraw", json={"channel": "written"}).raise_for_status()
            returned = time.perf_counter()
            with arrived:
                arrived.wait_for(lambda: consent["receipt_id"] in arrivals, timeout=30)
            delays.append((arrivals[consent["receipt_id"]] - sent) * 1000)
            after_return.append((arrivals[consent["receipt_id"]] - returned) * 1000)
    server.shutdown()
    return delays, after_return


# --- results -----------------------------------------------------------------------------------------------


def update_results(label: str, body: str) -> None:
    """Replace (or add) this benchmark's ``### {label}`` subsection in bench/RESULTS.md."""
    update_results_section(RESULTS, SECTION, INTRO, label, body)


INTRO = "The consent decision point (`qorgau/consent/decision.py`: one indexed SQL statement per check; remembered allows validated by decision versions — see docs/consent.md) in-process and over HTTP, against a plain dict lookup (the floor), and withdrawal → first processor notified through the outbox and the API server's dispatcher. `bench/consent_check.py`. Goals (issue 5): in-process p99 ≤ 50 µs; HTTP ≥ 2,000 decisions/s with p99 ≤ 20 ms; notice ≤ 1 s p99.\n"

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", help="PostgreSQL URL (a private schema is created and dropped)")
    ap.add_argument("--subjects", type=int, default=5000)
    ap.add_argument("--checks", type=int, default=50000, help="in-process checks per variant")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of HTTP load")
    ap.add_argument("--withdrawals", type=int, default=50)
    ap.add_argument("--no-results", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    tmp = Path(tempfile.mkdtemp(prefix="qorgau-bench-consent-"))
    platform, schema = make_platform(args, tmp / "var")
    server = None
    try:
        data = populate(platform, args.subjects)
        floor = bench_floor(data, args.checks)
        by_pseudonym, rate_p = bench_in_process(platform, data, args.checks, "pseudonym")
        by_iin, rate_i = bench_in_process(platform, data, args.checks, "iin")
        full_p, rate_fp = bench_in_process(platform, data, args.checks // 5, "pseudonym", full=True)
        full_i, rate_fi = bench_in_process(platform, data, args.checks // 5, "iin", full=True)
        log("in-process done; starting the server")
        port = free_port()
        server = start_server(tmp / "var", platform.settings.database_url, port, consent_webhook_allow_http=True)
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        gen = ctx.Process(target=load_generator, args=(port, data["api_key"], data["pseudonyms"], args.connections,
                                                       args.duration, queue))
        gen.start()
        http_lat, http_rate, http_errors = queue.get(timeout=args.duration + 120)
        gen.join(30)
        log(f"HTTP: {http_rate:,.0f}/s; measuring withdrawal → notice")
        notify, notify_after_return = bench_notify(port, data["api_key"], platform, data, args.withdrawals)
    finally:
        if server is not None:
            server.terminate()
            server.wait(20)
        platform.close()
        if schema:
            from sqlalchemy import create_engine, text

            from qorgau.core.settings import normalize_database_url

            admin = create_engine(normalize_database_url(args.database_url), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)

    f50, f99 = statistics.median(floor), pct(floor, 0.99)
    rows = [("dict lookup (floor)", f"{1e6 / statistics.mean(floor):,.0f}", f"{f50:.2f} µs", f"{f99:.2f} µs", "1×")]
    for name, lat, rate in (("check in-process, by pseudonym", by_pseudonym, rate_p),
                            ("check in-process, by IIN", by_iin, rate_i),
                            ("… full statement (nothing remembered), by pseudonym", full_p, rate_fp),
                            ("… full statement (nothing remembered), by IIN", full_i, rate_fi)):
        rows.append((name, f"{rate:,.0f}", f"{statistics.median(lat):.1f} µs", f"{pct(lat, 0.99):.1f} µs",
                     f"{statistics.median(lat) / f50:,.0f}× / {pct(lat, 0.99) / f99:,.0f}×"))
    rows.append((f"check over HTTP ({args.connections} connections, uvicorn 1 worker)", f"{http_rate:,.0f}",
                 f"{statistics.median(http_lat) / 1000:.2f} ms", f"{pct(http_lat, 0.99) / 1000:.2f} ms",
                 f"{statistics.median(http_lat) / statistics.median(by_pseudonym):,.0f}× in-process p50"))
    rows.append(("withdrawal sent → first processor notified", f"{len(notify)} withdrawals",
                 f"{statistics.median(notify):.1f} ms", f"{pct(notify, 0.99):.1f} ms (max {max(notify):.1f} ms)", ""))
    rows.append(("… of which after the withdrawal returned", "", f"{statistics.median(notify_after_return):.1f} ms",
                 f"{pct(notify_after_return, 0.99):.1f} ms", ""))
    goals = [
        ("in-process p99 ≤ 50 µs (by pseudonym / by IIN)",
         f"{pct(by_pseudonym, 0.99):.1f} / {pct(by_iin, 0.99):.1f} µs",
         "PASS" if max(pct(by_pseudonym, 0.99), pct(by_iin, 0.99)) <= 50 else "MISS"),
        ("HTTP ≥ 2,000 decisions/s, p99 ≤ 20 ms", f"{http_rate:,.0f}/s, {pct(http_lat, 0.99) / 1000:.2f} ms",
         "PASS" if http_rate >= 2000 and pct(http_lat, 0.99) <= 20000 else "MISS"),
        ("notice ≤ 1 s p99", f"{pct(notify, 0.99):.1f} ms", "PASS" if pct(notify, 0.99) <= 1000 else "MISS"),
    ]
    table = ["| measurement | decisions/s | p50 | p99 | ratio (p50 / p99 vs floor) |", "|---|---:|---:|---:|---|"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    goal_table = ["| goal | measured | |", "|---|---:|---|"] + ["| " + " | ".join(g) + " |" for g in goals]
    machine = "\n".join(f"- {k}: {v}" for k, v in cpu_and_python())
    body = (f"### {backend} — {date.today().isoformat()}\n\n"
            f"`{' '.join(['bench/consent_check.py'] + sys.argv[1:])}` — {args.subjects:,} subjects × 2 consents; "
            f"{args.checks:,} in-process checks per variant; HTTP load {args.duration:.0f} s from a second process; "
            f"{http_errors} HTTP errors.\n\n" + "\n".join(table) + "\n\n" + "\n".join(goal_table) + "\n\n" + machine + "\n")
    print(body)
    if not args.no_results:
        update_results(backend, body)
        log(f"updated {RESULTS.relative_to(ROOT)} (## {SECTION} / ### {backend})")


if __name__ == "__main__":
    main()
