#!/usr/bin/env python
"""Benchmark: appending to the RFC 6962 audit log and proving inclusion (``qorgau/core/audit.py``).

One run measures, against the physical floor of hashing the same leaf bytes:

1. baseline — ``hashlib.sha256(0x00 || leaf)`` over the canonical leaf encodings the log hashes;
2. single appends — one ``audit.record()`` per committed transaction;
3. batched appends — ``audit.record_many()`` with batches of 1,000 per transaction, while filling the
   log to ``--entries`` (default 10**6); goal: >= 20,000 appends/s on SQLite (printed PASS/MISS);
4. inclusion proofs at that size — ``audit.inclusion_proof`` over random ids in one read session
   (median, p95; goal <= 200 us), its pure-Python share, one sha256 call, and ``consistency_proof``;
5. ``audit.verify(db, keyring)`` — the full rebuild, in seconds and entries/s;

plus a per-stage split of one ``record_many`` batch (where the time goes). Numbers are printed as a
Markdown table with ratios and written to the ``## audit_append`` section of ``bench/RESULTS.md`` (one
``###`` subsection per database backend). Nothing is asserted: the machine is shared and noisy.

    .venv/bin/python bench/audit_append.py                       # SQLite in a temp dir, 10**6 entries
    .venv/bin/python bench/audit_append.py --entries 100000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test  # PostgreSQL, private schema
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import re
import shlex
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from base64 import b32encode
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402
from _common import cpu_and_python, update_results_section  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from qorgau.core import audit, auth, merkle  # noqa: E402
from qorgau.core.platform import Platform  # noqa: E402
from qorgau.core.settings import Settings, normalize_database_url  # noqa: E402
from qorgau.identifiers import synthetic_kz_number  # noqa: E402

ns = time.perf_counter_ns
cpu = time.process_time_ns  # this process's CPU time: robust to other processes on a shared machine
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "audit_append"
GOAL_BATCHED_PER_S = 20_000
GOAL_PROOF_US = 200.0
ORG_RATIO = 10  # one event in ORG_RATIO is platform-level (organization_id None), as in real use

# --- helpers -------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank on the sorted values."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def fmt_num(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:,.2f}"


def fmt_ratio(x: float) -> str:
    return "n/a" if x != x else (f"{x:,.0f}×" if x >= 100 else f"{x:,.1f}×")


def log(msg: str = "") -> None:
    print(msg, flush=True)


def mask_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def make_bin(serial: int) -> str:
    """A checksum-valid BIN (YYMM, resident head office, serial, check digit), as tests/conftest.py."""
    return synthetic_kz_number("050140", serial)


def file_digest(path: str | None) -> str:
    """First 12 hex digits of a source file's SHA-256: which version of the code a result is for."""
    return hashlib.sha256(Path(path or "").read_bytes()).hexdigest()[:12] if path else "?"


def machine_info(platform: Platform) -> list[tuple[str, str]]:
    info = cpu_and_python() + [
        ("SQLAlchemy", sqlalchemy.__version__),
        ("Code measured", ", ".join(f"`{m.__name__.replace('.', '/')}.py` sha256 {file_digest(m.__file__)}"
                                    for m in (audit, merkle))),
    ]
    if platform.db.dialect == "postgresql":
        with platform.db.engine.connect() as conn:
            info.append(("PostgreSQL server", conn.execute(text("SHOW server_version")).scalar_one()))
            info.append(("PG synchronous_commit", conn.execute(text("SHOW synchronous_commit")).scalar_one()))
        import psycopg

        info.append(("psycopg", psycopg.__version__))
    else:
        info.append(("SQLite (library)", sqlite3.sqlite_version))
        info.append(("SQLite settings", "WAL, synchronous=NORMAL, foreign_keys=ON (qorgau.core.db)"))
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        info.append(("Load average at start", load))
    except OSError:
        pass
    return info


# --- the workload --------------------------------------------------------------------------------

_ACTIONS = (
    ("record.update", "record"), ("record.create", "record"), ("auth.login", "user"),
    ("consent.grant", "consent"), ("document.view", "document"), ("api_key.create", "api_key"),
)
_STATES = ("draft", "submitted", "approved", "rejected", "archived")


def make_events(rng: random.Random, first: int, count: int, org_id: int) -> list[audit.Event]:
    """Realistic events: ids and pseudonyms only (no personal data), small details dicts.

    Pseudonyms are base32 (a-z, 2-7): random *hex* tokens sometimes hold a 12-19 digit run that the
    PII guard (rightly, by its rules) takes for an IIN or a card number."""
    out = []
    for i in range(first, first + count):
        action, otype = _ACTIONS[i % len(_ACTIONS)]
        out.append(audit.Event(
            actor=f"user:{rng.randrange(1, 5000)}",
            action=action,
            object_type=otype,
            object_id=str(rng.randrange(1, 2_000_000)),
            organization_id=None if i % ORG_RATIO == 0 else org_id,
            details={"field": "status", "from": _STATES[i % 5], "to": _STATES[(i + 1) % 5],
                     "subject": "ps_" + b32encode(rng.randbytes(10)).decode().lower(), "version": i % 17},
        ))
    return out


def leaf_encodings(events: Sequence[audit.Event], first_id: int, now: datetime) -> list[bytes]:
    """The exact bytes the log hashes for these events (``audit.leaf_bytes``)."""
    return [audit.leaf_bytes(first_id + k, now, ev.actor, ev.organization_id, ev.action, ev.object_type,
                             ev.object_id, audit.details_digest(dict(ev.details)))
            for k, ev in enumerate(events)]


# --- database lifetime ---------------------------------------------------------------------------


@contextmanager
def open_platform(database_url: str | None, keep: bool) -> Iterator[tuple[Platform, Path, str]]:
    """A freshly initialized platform: SQLite in a temp dir, or a private schema on PostgreSQL."""
    tmp = Path(tempfile.mkdtemp(prefix="qorgau-bench-audit-"))
    admin = None
    schema = None
    url = None
    if database_url:
        base = normalize_database_url(database_url)
        schema = "bench_" + uuid.uuid4().hex[:12]
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base else "?"
        url = base + f"{sep}options=-csearch_path%3D{schema}"
    platform = Platform.initialize(Settings(data_dir=tmp / "var", database_url=url, sth_interval_seconds=0))
    try:
        yield platform, tmp, (f"PostgreSQL, schema {schema}" if schema else f"SQLite, {tmp / 'var'}")
    finally:
        platform.close()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        if keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# --- measurements --------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    value: str
    unit: str
    ratio: str = ""
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    stages: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *args: str) -> None:
        self.rows.append(Row(*args))


def bench_baseline(leaves: list[bytes], rounds: int = 5) -> float:
    """Best-of-``rounds`` rate of sha256(0x00 || leaf) over the canonical leaf encodings (leaves/s).

    Same expression as ``merkle.leaf_hash``, inlined: the floor is the hashing, not a function call."""
    sha = hashlib.sha256
    best = float("inf")
    for _ in range(rounds):
        t0 = ns()
        for data in leaves:
            sha(b"\x00" + data).digest()
        best = min(best, ns() - t0)
    return len(leaves) / (best / 1e9)


def sha_call_ns(leaf: bytes, n: int = 200_000) -> float:
    """Mean cost of one sha256(0x00 || leaf).digest() call, over a loop (per-call timers cost more)."""
    sha = hashlib.sha256
    best = float("inf")
    for _ in range(3):
        t0 = ns()
        for _ in range(n):
            sha(b"\x00" + leaf).digest()
        best = min(best, ns() - t0)
    return best / n


def bench_stages(events: list[audit.Event], start: int) -> list[tuple[str, float]]:
    """Per-event cost (ns) of each pure-Python stage ``record_many`` runs, on one batch, best of 3.

    Mirrors what ``record_many`` does per event (guard, details digest, leaf hash, inner nodes)
    through the public helpers, so the split stays meaningful when its private parts change; the rest
    of a batch is database work."""
    now = datetime.now(timezone.utc)
    n = len(events)

    def pii() -> None:
        for ev in events:
            audit.assert_no_personal_data(dict(ev.details))
            audit.assert_no_personal_data({"object_id": ev.object_id}, "audit")

    digests: list[str] = []

    def digest() -> None:
        digests[:] = [audit.details_digest(dict(ev.details)) for ev in events]

    leaves: list[bytes] = []

    def leaf() -> None:
        leaves[:] = [merkle.leaf_hash(audit.leaf_bytes(start + k, now, ev.actor, ev.organization_id, ev.action,
                                                       ev.object_type, ev.object_id, digests[k]))
                     for k, ev in enumerate(events)]

    dummy = b"\x11" * 32

    def tree() -> None:
        merkle.append_batch(start, leaves, lambda level, index: dummy)

    out = []
    for name, fn in (("PII guard: `assert_no_personal_data` on details and object_id", pii),
                     ("`details_digest` (canonical JSON + sha256)", digest),
                     ("`leaf_bytes` + `merkle.leaf_hash`", leaf),
                     ("`merkle.append_batch` (inner nodes, in memory)", tree)):
        best = float("inf")
        for _ in range(3):
            t0 = ns()
            fn()
            best = min(best, ns() - t0)
        out.append((name, best / n))
    return out


def bench_single(platform: Platform, events: list[audit.Event], warmup: int) -> tuple[list[int], int]:
    """One ``audit.record`` per committed transaction; returns per-append ns (after warm-up) and the
    CPU time this process spent in them."""
    db = platform.db
    times = []
    cpu_ns = 0
    for k, ev in enumerate(events):
        c0, t0 = cpu(), ns()
        with db.transaction() as s:
            audit.record(s, actor=ev.actor, action=ev.action, object_type=ev.object_type, object_id=ev.object_id,
                         organization_id=ev.organization_id, details=ev.details)
        dt = ns() - t0
        if k >= warmup:
            times.append(dt)
            cpu_ns += cpu() - c0
    return times, cpu_ns


def fill(platform: Platform, target: int, batch: int, rng: random.Random, org_id: int,
         on_half: Callable[[], None]) -> tuple[list[tuple[int, int]], float, int]:
    """Batched ``record_many`` until the log holds ``target`` entries; returns [(count, ns)] per batch,
    the wall time of the fill (s) and this process's CPU time inside the timed batches (ns).

    Events are generated before each batch's timer starts; the timer covers BEGIN..COMMIT."""
    db = platform.db
    with db.reader() as s:
        size = audit.tree_size(s)
    todo = max(0, target - size)
    batches: list[tuple[int, int]] = []
    n_batches = -(-todo // batch) if todo else 0
    every = max(1, n_batches // 20)
    half_done = False
    wall0 = time.monotonic()
    window: list[tuple[int, int]] = []
    cpu_total = 0
    while size < target:
        count = min(batch, target - size)
        events = make_events(rng, size, count, org_id)
        c0, t0 = cpu(), ns()
        with db.transaction() as s:
            ids = audit.record_many(s, events)
        dt = ns() - t0
        cpu_total += cpu() - c0
        assert ids[0] == size and len(ids) == count, "unexpected entry ids"
        size += count
        batches.append((count, dt))
        window.append((count, dt))
        if not half_done and size >= target // 2:
            on_half()
            half_done = True
        if len(batches) % every == 0 or size >= target:
            recent = sum(c for c, _ in window) / (sum(t for _, t in window) / 1e9)
            elapsed = time.monotonic() - wall0
            done = size - (target - todo)
            eta = elapsed / done * (target - size) if done else 0.0
            log(f"  fill {size:>11,}/{target:,} ({100 * size / target:5.1f}%)  recent {recent:>9,.0f} appends/s"
                f"  elapsed {elapsed:6.0f}s  eta {eta:5.0f}s")
            window = []
    return batches, time.monotonic() - wall0, cpu_total


def rate(batches: Sequence[tuple[int, int]]) -> float:
    total_ns = sum(t for _, t in batches)
    return sum(c for c, _ in batches) / (total_ns / 1e9) if total_ns else float("nan")


def fetch_nodes(session: Any, refs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    wanted = {audit.node_key(lv, ix): (lv, ix) for lv, ix in refs}
    rows = session.execute(select(audit.AuditNode.id, audit.AuditNode.hash).where(audit.AuditNode.id.in_(list(wanted))))
    return {wanted[k]: bytes(h) for k, h in rows}


def per_call(fn: Callable[[Any], Any], args: Sequence[Any], warmup: int,
             clock: Callable[[], int] = ns) -> list[int]:
    """Per-call times (ns) after ``warmup`` untimed calls; ``clock=cpu`` counts only this process's CPU
    time, which being descheduled on a loaded machine does not inflate (but the DB server's work on
    PostgreSQL is then not counted)."""
    for a in args[:warmup]:
        fn(a)
    out = []
    for a in args:
        t0 = clock()
        fn(a)
        out.append(clock() - t0)
    return out


def bench_proofs(platform: Platform, n: int, rng: random.Random) -> dict[str, Any]:
    res: dict[str, Any] = {}
    warm = min(200, n)
    with platform.db.reader() as s:
        size = audit.tree_size(s)
        ids = [rng.randrange(size) for _ in range(n)]
        root = audit.root_hash(s, size)
        res["size"] = size

        # The whole call, as the API serves it.
        res["inclusion"] = per_call(lambda i: audit.inclusion_proof(s, i, size), ids, warm)
        res["inclusion_cpu"] = per_call(lambda i: audit.inclusion_proof(s, i, size), ids, warm, clock=cpu)
        bad = [i for i in ids[:50] if not (p := audit.inclusion_proof(s, i, size)).verify() or p.root_hash != root]
        res["inclusion_bad"] = len(bad)

        # Its parts: loading the entry, fetching the O(log n) nodes (with audit's own helper when it has
        # one, else a plain select), and one trivial query for scale…
        res["q_entry"] = per_call(lambda i: audit.get_entry(s, i), ids, warm)
        res["q_size"] = per_call(lambda i: audit.tree_size(s), ids, warm)
        refs = {i: merkle.inclusion_proof_nodes(i, size) + merkle.root_nodes_needed(size) for i in ids}
        get_nodes = getattr(audit, "_get_nodes", fetch_nodes)
        res["q_nodes"] = per_call(lambda i: get_nodes(s, refs[i]), ids, warm)
        res["proof_len"] = statistics.mean(len(merkle.inclusion_proof_nodes(i, size)) for i in ids)
        res["refs_len"] = statistics.mean(len(r) for r in refs.values())

        # …and the pure-Python work, from nodes and entries fetched beforehand.
        nodes = {i: fetch_nodes(s, refs[i]) for i in ids}
        entries = {i: audit.get_entry(s, i) for i in ids}
        res["pure_assemble"] = per_call(lambda i: merkle.inclusion_proof(i, size, nodes[i]), ids, warm)

        def pure_all(i: int) -> None:
            merkle.inclusion_proof_nodes(i, size)
            merkle.root_nodes_needed(size)
            merkle.inclusion_proof(i, size, nodes[i])
            merkle.root_from_nodes(size, nodes[i])
            merkle.leaf_hash(audit.entry_leaf_bytes(entries[i]))

        res["pure_all"] = per_call(pure_all, ids, warm)
        entries.clear()

        firsts = [rng.randrange(1, size) for _ in range(n)] if size > 1 else [1] * n
        res["consistency"] = per_call(lambda f: audit.consistency_proof(s, f, size), firsts, warm)
        res["consistency_bad"] = sum(not audit.consistency_proof(s, f, size).verify() for f in firsts[:50])
    return res


# --- report --------------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if i in (1, 3) else "---" for i in range(len(header))) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def update_results(label: str, body: str) -> None:
    """Replace (or add) this benchmark's ``### {label}`` subsection in bench/RESULTS.md."""
    update_results_section(RESULTS, SECTION, INTRO, label, body)


INTRO = 'The append-only RFC 6962 audit log (`qorgau/core/audit.py`, `qorgau/core/merkle.py`): append throughput, inclusion/consistency proof latency and full verification, against the physical floor of hashing the same leaf bytes. Ratios are "times slower than the baseline". Goals (from the issue): ≥ 20,000 batched appends/s on SQLite, inclusion proof ≤ 200 µs at 10⁶ entries.\n'

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000, help="fill the log to this size (default 10**6)")
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL URL (a private schema is created and dropped); default: SQLite in a temp dir")
    ap.add_argument("--batch", type=int, default=1000, help="events per record_many transaction (default 1000)")
    ap.add_argument("--singles", type=int, default=2000, help="single-append transactions to time (default 2000)")
    ap.add_argument("--proofs", type=int, default=2000, help="random ids to prove (default 2000)")
    ap.add_argument("--seed", type=int, default=6962)
    ap.add_argument("--no-results", action="store_true", help="do not update bench/RESULTS.md")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir")
    args = ap.parse_args(argv)
    if args.entries < args.singles + 2 * args.batch:
        ap.error("--entries must be at least --singles + 2 × --batch")

    rng = random.Random(args.seed)
    cmd = ".venv/bin/python bench/audit_append.py" + "".join(
        " " + shlex.quote(mask_url(a)) for a in (sys.argv[1:] if argv is None else argv))
    res = Results()
    t_start = time.monotonic()

    with open_platform(args.database_url, args.keep) as (platform, tmp, where):
        backend = "PostgreSQL" if platform.db.dialect == "postgresql" else "SQLite"
        info = machine_info(platform)
        log(f"audit_append benchmark — {backend} ({where}), {args.entries:,} entries, batches of {args.batch:,}")
        for k, v in info:
            log(f"  {k}: {v}")

        with platform.db.transaction() as s:
            org_id = auth.create_organization(s, name="Bench Org", bin=make_bin(4242), actor="bench").id

        # 1. baseline: sha256 over the canonical leaf encodings of the same kind of events.
        n_base = min(200_000, args.entries)
        base_events = make_events(random.Random(args.seed + 1), 0, n_base, org_id)
        leaves = leaf_encodings(base_events, 0, datetime.now(timezone.utc))
        del base_events
        base_rate = bench_baseline(leaves)
        sha_ns = sha_call_ns(leaves[len(leaves) // 2])
        avg_leaf = statistics.mean(len(x) for x in leaves)
        log(f"\n[1] baseline sha256(0x00‖leaf): {base_rate:,.0f} leaves/s over {n_base:,} leaves "
            f"(mean {avg_leaf:.0f} B); one call {sha_ns:.0f} ns")
        del leaves

        # 2. single appends.
        warm = min(50, args.singles // 10)
        singles = make_events(rng, 1, args.singles + warm, org_id)
        t_single, single_cpu = bench_single(platform, singles, warm)
        single_rate = len(t_single) / (sum(t_single) / 1e9)
        single_cpu_rate = len(t_single) / (single_cpu / 1e9)
        log(f"[2] single appends: {single_rate:,.0f} appends/s (median {statistics.median(t_single) / 1e3:.0f} µs, "
            f"p95 {pct(t_single, 95) / 1e3:.0f} µs per commit)")

        # Where the time of one batch goes (pure-Python stages; the remainder is SQLAlchemy + the database).
        stage_events = make_events(random.Random(args.seed + 2), 0, args.batch, org_id)
        stages = bench_stages(stage_events, 10_000)

        # 3. batched appends while filling the log; a tree head is signed half-way so verify() checks two.
        def sign_half() -> None:
            with platform.db.transaction() as s:
                audit.sign_tree_head(s, platform.keyring)

        log(f"[3] batched appends: filling to {args.entries:,} …")
        gc.collect()
        batches, fill_wall, fill_cpu = fill(platform, args.entries, args.batch, rng, org_id, sign_half)
        timed = batches[2:] if len(batches) > 4 else batches  # the first two batches warm up
        w = min(50, max(1, len(timed) // 4))
        batch_rate = rate(timed)
        batch_cpu_rate = sum(c for c, _ in batches) / (fill_cpu / 1e9)
        first_rate, last_rate = rate(timed[:w]), rate(timed[-w:])
        batch_ms = [t / 1e6 for _, t in timed]
        log(f"    batched: {batch_rate:,.0f} appends/s over {sum(c for c, _ in timed):,} "
            f"(first {w} batches {first_rate:,.0f}/s, last {w} {last_rate:,.0f}/s); fill wall {fill_wall:.1f}s")

        with platform.db.transaction() as s:
            audit.sign_tree_head(s, platform.keyring)
            size = audit.tree_size(s)

        # 4. proofs at full size.
        log(f"[4] proofs at {size:,} entries ({args.proofs:,} random ids) …")
        gc.collect()
        pr = bench_proofs(platform, args.proofs, rng)

        # 5. full verification.
        log("[5] verify(db, keyring) …")
        gc.collect()
        t0 = ns()
        report = audit.verify(platform.db, platform.keyring)
        verify_s = (ns() - t0) / 1e9
        log(f"    verify: {verify_s:.1f}s, ok={report.ok}, {report.entries:,} entries, {report.heads_checked} heads")

        db_bytes = 0
        if backend == "SQLite":
            db_bytes = sum(p.stat().st_size for p in (tmp / "var").glob("qorgau.db*"))
        else:
            with platform.db.engine.connect() as conn:
                db_bytes = conn.execute(text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                    "c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")).scalar() or 0

    try:
        info.append(("Load average at end", ", ".join(f"{x:.2f}" for x in os.getloadavg())))
    except OSError:
        pass

    # --- table ---
    us = lambda v: v / 1e3  # noqa: E731
    med, p95 = statistics.median, pct
    inc, pure_a, pure_all = pr["inclusion"], pr["pure_assemble"], pr["pure_all"]
    goal_b = "PASS" if batch_rate >= GOAL_BATCHED_PER_S else "MISS"
    goal_p = "PASS" if med(inc) / 1e3 <= GOAL_PROOF_US else "MISS"
    goal_p95 = "PASS" if p95(inc, 95) / 1e3 <= GOAL_PROOF_US else "MISS"
    add = res.add
    add("1. Baseline: `sha256(0x00‖leaf)` over canonical leaf bytes", fmt_int(base_rate), "leaves/s", "1.0×",
        f"physical floor; {n_base:,} leaves, mean {avg_leaf:.0f} B, best of 5")
    add("2. Single appends: `record()`, one commit each", fmt_int(single_rate), "appends/s",
        fmt_ratio(base_rate / single_rate),
        f"{len(t_single):,} commits; median {us(med(t_single)):.0f} µs, p95 {us(p95(t_single, 95)):.0f} µs")
    add("2a. Single, per CPU-second", fmt_int(single_cpu_rate), "appends/CPU-s",
        fmt_ratio(base_rate / single_cpu_rate), "")
    add(f"3. Batched appends: `record_many` × {args.batch:,} per transaction", fmt_int(batch_rate), "appends/s",
        fmt_ratio(base_rate / batch_rate),
        f"**{goal_b}** vs goal ≥ {GOAL_BATCHED_PER_S:,}/s; whole fill to {size:,}; batch median "
        f"{med(batch_ms):.0f} ms, p95 {p95(batch_ms, 95):.0f} ms")
    add(f"3a. … first {w} batches (small log)", fmt_int(first_rate), "appends/s", fmt_ratio(base_rate / first_rate), "")
    add(f"3b. … last {w} batches (log near {size:,})", fmt_int(last_rate), "appends/s",
        fmt_ratio(base_rate / last_rate), "")
    add("3c. Batched vs single", fmt_ratio(batch_rate / single_rate), "speed-up", "", "")
    cpu_note = ("this process only; the PostgreSQL server's CPU is not counted" if backend == "PostgreSQL"
                else "appends per CPU-second of this process: less sensitive to other load than 3.")
    add("3d. Batched, per CPU-second", fmt_int(batch_cpu_rate), "appends/CPU-s", fmt_ratio(base_rate / batch_cpu_rate),
        f"{'PASS' if batch_cpu_rate >= GOAL_BATCHED_PER_S else 'MISS'} vs goal; {cpu_note}")
    add("4. `sha256` of one leaf (one call)", fmt_num(sha_ns / 1e3), "µs", "1.0×", "loop mean, best of 3")
    add(f"4a. `inclusion_proof(session, id, size)` at {size:,}, median", fmt_num(us(med(inc))), "µs",
        fmt_ratio(med(inc) / sha_ns), f"**{goal_p}** vs goal ≤ {GOAL_PROOF_US:.0f} µs; {len(inc):,} random ids, "
        f"one read session; {pr['inclusion_bad']} of 50 failed to verify")
    add("4b. … p95", fmt_num(us(p95(inc, 95))), "µs", fmt_ratio(p95(inc, 95) / sha_ns), f"{goal_p95} vs goal")
    inc_cpu = pr["inclusion_cpu"]
    add("4b'. … same calls, this process's CPU time: median / p95",
        f"{us(med(inc_cpu)):,.0f} / {us(p95(inc_cpu, 95)):,.0f}", "µs", fmt_ratio(med(inc_cpu) / sha_ns),
        "robust to other load" + ("; excludes the server's time" if backend == "PostgreSQL" else ""))
    add("4c. pure Python: `merkle.inclusion_proof` from fetched nodes, median", fmt_num(us(med(pure_a))), "µs",
        fmt_ratio(med(pure_a) / sha_ns), f"path of {pr['proof_len']:.1f} hashes; p95 {us(p95(pure_a, 95)):.1f} µs")
    add("4d. pure Python: plan + path + root + leaf hash, median", fmt_num(us(med(pure_all))), "µs",
        fmt_ratio(med(pure_all) / sha_ns), f"{100 * med(pure_all) / med(inc):.0f}% of 4a; the rest is database access (4e, 4g)")
    add("4e. … load the entry: `get_entry` (ORM select), median", fmt_num(us(med(pr["q_entry"]))), "µs",
        fmt_ratio(med(pr["q_entry"]) / sha_ns), "")
    add("4f. … for scale: one trivial query, `tree_size(session)`, median", fmt_num(us(med(pr["q_size"]))), "µs",
        fmt_ratio(med(pr["q_size"]) / sha_ns), "")
    add("4g. … fetch the proof's nodes (one `IN` query, `audit._get_nodes`), median", fmt_num(us(med(pr["q_nodes"]))), "µs",
        fmt_ratio(med(pr["q_nodes"]) / sha_ns), f"{pr['refs_len']:.1f} node ids per proof")
    cons = pr["consistency"]
    add(f"4h. `consistency_proof(session, first, {size:,})`, median", fmt_num(us(med(cons))), "µs",
        fmt_ratio(med(cons) / sha_ns), f"p95 {us(p95(cons, 95)):.0f} µs; random first; "
        f"{pr['consistency_bad']} of 50 failed to verify")
    add("5. `verify(db, keyring)` full rebuild", f"{verify_s:,.1f}", "s", "",
        f"ok={report.ok}, {report.heads_checked} signed heads checked")
    v_rate = report.entries / verify_s
    add("5a. … verify throughput", fmt_int(v_rate), "entries/s", fmt_ratio(base_rate / v_rate), "")
    if db_bytes:
        add("Storage", f"{db_bytes / 2**20:,.0f}", "MiB", "", f"{db_bytes / size:,.0f} B per entry (entries + nodes + indexes)")

    header = ("Measurement", "Result", "Unit", "× baseline (1. or 4.)", "Notes")
    table = markdown_table(header, [(r.what, r.value, r.unit, r.ratio, r.note) for r in res.rows])
    # On SQLite everything runs in this process, so split the CPU time (robust to other load); on
    # PostgreSQL the server's share is only visible in wall time.
    split_rate, split_src = ((batch_cpu_rate, "3d, per CPU-second") if backend == "SQLite" else (batch_rate, "3., wall"))
    batch_total = 1e9 / split_rate
    stage_rows = [(name, f"{v / 1e3:.2f}", f"{100 * v / batch_total:.0f}%") for name, v in stages]
    rest = batch_total - sum(v for _, v in stages)
    stage_rows.append(("the rest: sibling reads, inserts, state update, commit (remainder)", f"{rest / 1e3:.2f}",
                       f"{100 * rest / batch_total:.0f}%"))
    stage_rows.append((f"**total per batched append** (from {split_src})", f"{batch_total / 1e3:.2f}", "100%"))
    stage_table = markdown_table(("Stage of `record_many` (per event)", "µs", "share"), stage_rows)

    info_lines = "\n".join(f"- {k}: {v}" for k, v in info)
    total_min = (time.monotonic() - t_start) / 60
    body = (f"### {backend} — {date.today().isoformat()}\n\n"
            f"Command: `{cmd}` ({total_min:.1f} min in all)\n\n{info_lines}\n\n{table}\n\n"
            f"Where one batched append's time goes (pure-Python stages timed in isolation on a batch of "
            f"{args.batch:,}, best of 3; the remainder is the measured rate minus those):\n\n{stage_table}\n")
    log("\n" + body)
    if not report.ok:
        log("verify reported problems: " + "; ".join(report.problems[:5]))
    if not args.no_results:
        update_results(backend, body)
        log(f"updated {RESULTS.relative_to(ROOT)} (## {SECTION} / ### {backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
