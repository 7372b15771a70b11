#!/usr/bin/env python
"""Benchmark: the identity vault in-process (``qorgau/vault/service.py``) against its cryptographic floor.

One run measures, on a vault filled with ``--subjects`` subjects (default 20,000):

1. the floor — the same loops with plain ``hmac`` and AES-GCM calls and a dict, no vault:
   a. HMAC-SHA256 blind index of an IIN + dict lookup (what a warm tokenize cannot avoid);
   b. new subject: a fresh 256-bit key, AES-GCM wrap with the master key, AES-GCM seal of the identifiers;
   c. re-identify: AES-GCM unwrap of the subject key + AES-GCM open of the identifiers;
2. ``tokenize`` with a **warm** cache (every value seen and committed before), calls inside one open
   transaction: ops/s, p50, p99 — goal p99 <= 100 us (printed PASS/MISS);
3. ``tokenize`` with a **cold** cache (existing subjects, cache cleared): the blind-index query path;
4. ``tokenize`` of a new subject, one committed transaction per call (key + rows + audit entry);
5. ``tokenize_many`` batches of 1,000 (the split path): new subjects, and the same batch again (resume);
6. ``detokenize``: one call per committed transaction (includes its audit entry), and ``detokenize_many``
   per identity in batches of 1,000 (one audit entry per batch).

Ratios are "times the floor". CPU time of this process is printed next to wall time: the machine is shared.
Nothing is asserted. The Markdown table it prints is what the ``## vault`` section of ``bench/RESULTS.md`` holds.

    .venv/bin/python bench/vault.py                 # SQLite in a temp dir
    .venv/bin/python bench/vault.py --subjects 5000 --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import gc
import hmac
import os
import platform as pyplatform
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import cpu_and_python  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from qorgau.core import auth  # noqa: E402
from qorgau.core.auth import Principal  # noqa: E402
from qorgau.core.platform import Platform  # noqa: E402
from qorgau.core.settings import Settings, normalize_database_url  # noqa: E402
from qorgau.identifiers import synthetic_kz_number  # noqa: E402
from qorgau.vault.service import SubjectRecord, Vault  # noqa: E402

GOAL_WARM_P99_US = 100.0
ns = time.perf_counter_ns
cpu = time.process_time_ns


def pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))] if s else float("nan")


def distinct_iins(count: int) -> list[str]:
    """``count`` distinct checksum-valid IINs (synthetic: born 1980, one birth date per 5,000)."""
    out: dict[str, None] = {}
    day = 0
    while len(out) < count:
        prefix = f"80{day // 28 % 12 + 1:02d}{day % 28 + 1:02d}3"
        for serial in range(0, 5000):
            out[synthetic_kz_number(prefix, serial)] = None
            if len(out) >= count:
                break
        day += 1
    return list(out)


def timed_calls(fn: Callable[[str], object], values: Sequence[str]) -> tuple[list[float], float, float]:
    """Per-call latencies (us), wall seconds and CPU seconds of calling ``fn`` on each value."""
    gc.collect()
    gc.disable()
    try:
        lat = []
        w0, c0 = ns(), cpu()
        for value in values:
            t = ns()
            fn(value)
            lat.append((ns() - t) / 1000)
        return lat, (ns() - w0) / 1e9, (cpu() - c0) / 1e9
    finally:
        gc.enable()


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, name: str, value: str, unit: str, ratio: str = "", notes: str = "") -> None:
        self.rows.append((name, value, unit, ratio, notes))
        print(f"  {name}: {value} {unit} {ratio} {notes}", flush=True)

    def markdown(self) -> str:
        lines = ["| Measurement | Result | Unit | × floor | Notes |", "| --- | ---: | --- | ---: | --- |"]
        lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in self.rows]
        return "\n".join(lines)


def latency_row(report: Report, name: str, lat: list[float], wall: float, cpu_s: float, floor_us: float,
                goal: float | None = None) -> None:
    n = len(lat)
    p50, p99 = pct(lat, 50), pct(lat, 99)
    verdict = ""
    if goal is not None:
        verdict = ("**PASS**" if p99 <= goal else "**MISS**") + f" vs goal p99 ≤ {goal:.0f} µs; "
    report.add(name, f"{n / wall:,.0f}", "ops/s", f"{p50 / floor_us:,.1f}×",
               f"{verdict}p50 {p50:,.1f} µs, p99 {p99:,.1f} µs; {n / cpu_s:,.0f} ops per CPU-s; n={n:,}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=20_000, help="subjects in the vault (default 20,000)")
    ap.add_argument("--calls", type=int, default=5_000, help="single calls per latency measurement")
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (a private schema is used and dropped)")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="qorgau-bench-vault-"))
    schema = None
    if args.database_url:
        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = create_engine(normalize_database_url(args.database_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.database_url else "?"
        url = normalize_database_url(args.database_url) + f"{sep}options=-csearch_path%3D{schema}"
        backend = "PostgreSQL"
    else:
        url = f"sqlite:///{tmp / 'qorgau.db'}"
        backend = "SQLite"
    load_start = os.getloadavg()
    started = time.monotonic()
    report = Report()
    try:
        platform = Platform.initialize(Settings(data_dir=tmp, database_url=url, sth_interval_seconds=0))
        with platform.db.transaction() as s:
            org = auth.create_organization(s, name="Bench", bin="940140000385", actor="bench").id
        vault = Vault(platform, cache_ttl=3600)
        dpo = Principal("user", 1, org, frozenset({"dpo"}))
        iins = distinct_iins(args.subjects + args.calls)
        stored, fresh = iins[:args.subjects], iins[args.subjects:]
        calls = stored[:args.calls]
        print(f"{backend}: {args.subjects:,} subjects, {args.calls:,} calls per latency row", flush=True)

        # 1. floors
        key = secrets.token_bytes(32)
        master = AESGCM(secrets.token_bytes(32))
        table = {hmac.digest(key, f"KZ_IIN:{v}".encode(), "sha256"): ("ps_x", 1) for v in calls}
        lat, wall, c = timed_calls(lambda v: table.get(hmac.digest(key, f"KZ_IIN:{v}".encode(), "sha256")), calls)
        floor_warm = pct(lat, 50)
        report.add("1a. Floor: `hmac` blind index + dict lookup", f"{len(lat) / wall:,.0f}", "ops/s", "1.0×",
                   f"p50 {floor_warm:.2f} µs, p99 {pct(lat, 99):.2f} µs")
        payload = b'{"ids":{"KZ_IIN":["791028302728"],"PERSON":["Name Surname"]},"invalid":[],"v":1}'

        def new_subject(v: str) -> None:
            k = secrets.token_bytes(32)
            n1, n2 = secrets.token_bytes(12), secrets.token_bytes(12)
            master.encrypt(n1, k, b"ctx")
            AESGCM(k).encrypt(n2, payload, b"aad")
            hmac.digest(key, f"KZ_IIN:{v}".encode(), "sha256")

        lat, wall, c = timed_calls(new_subject, calls)
        floor_new = pct(lat, 50)
        report.add("1b. Floor: new key + AES-GCM wrap + AES-GCM seal + `hmac`", f"{len(lat) / wall:,.0f}", "ops/s",
                   "1.0×", f"p50 {floor_new:.2f} µs")
        wrapped = [(n := secrets.token_bytes(12), master.encrypt(n, k := secrets.token_bytes(32), b"ctx"),
                    m := secrets.token_bytes(12), AESGCM(k).encrypt(m, payload, b"aad")) for _ in range(len(calls))]
        it = iter(wrapped)

        def reopen(_: str) -> None:
            n, w, m, sealed = next(it)
            AESGCM(master.decrypt(n, w, b"ctx")).decrypt(m, sealed, b"aad")

        lat, wall, c = timed_calls(reopen, calls)
        floor_open = pct(lat, 50)
        report.add("1c. Floor: AES-GCM unwrap + AES-GCM open", f"{len(lat) / wall:,.0f}", "ops/s", "1.0×",
                   f"p50 {floor_open:.2f} µs")

        # 5. fill (the batch path), then the same batches again
        for label, values in (("new subjects", stored), ("the same batches again (resume)", stored)):
            w0, c0 = ns(), cpu()
            for start in range(0, len(values), 1000):
                with platform.db.transaction(org) as s:
                    vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": v, "PERSON": "Name Surname"})
                                            for v in values[start:start + 1000]], actor="bench")
            wall, cpu_s = (ns() - w0) / 1e9, (cpu() - c0) / 1e9
            per_row = wall / len(values) * 1e6
            report.add(f"5. `tokenize_many` × 1,000, {label}", f"{len(values) / wall:,.0f}", "rows/s",
                       f"{per_row / floor_new:,.1f}×", f"{per_row:,.1f} µs/row; {len(values) / cpu_s:,.0f} rows per CPU-s; "
                       "IIN + name per record")

        # 2. warm tokenize (the cache was filled when the batches committed)
        with platform.db.transaction(org) as s:
            lat, wall, c = timed_calls(lambda v: vault.tokenize(s, "KZ_IIN", v, actor="bench"), calls)
        latency_row(report, "2. `tokenize`, warm cache (one open transaction)", lat, wall, c, floor_warm,
                    GOAL_WARM_P99_US)
        lat, wall, c = timed_calls(lambda v: _in_tx(platform, org, lambda s: vault.tokenize(s, "KZ_IIN", v, actor="b")),
                                   calls[:1000])
        latency_row(report, "2a. … one transaction per call (what an API request pays)", lat, wall, c, floor_warm)

        # 3. cold cache, existing subjects
        vault._cache.clear()
        with platform.db.transaction(org) as s:
            lat, wall, c = timed_calls(lambda v: vault.tokenize(s, "KZ_IIN", v, actor="bench"), calls)
        latency_row(report, "3. `tokenize`, cold cache, existing subject (blind-index query)", lat, wall, c, floor_warm)

        # 4. a new subject per committed transaction
        lat, wall, c = timed_calls(lambda v: _in_tx(platform, org, lambda s: vault.tokenize(s, "KZ_IIN", v, actor="b")),
                                   fresh[:1000])
        latency_row(report, "4. `tokenize`, new subject, one committed transaction each (+ audit entry)", lat, wall,
                    c, floor_new)

        # 6. re-identification
        with platform.db.transaction(org) as s:
            tokens = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": v}) for v in calls], actor="bench")
        pseudonyms = [t.pseudonym for t in tokens]
        lat, wall, c = timed_calls(lambda p: _in_tx(platform, org, lambda s: vault.detokenize(
            s, p, purpose="benchmark", principal=dpo)), pseudonyms[:1000])
        latency_row(report, "6a. `detokenize`, one committed transaction each (+ audit entry)", lat, wall, c, floor_open)
        w0, c0 = ns(), cpu()
        for start in range(0, len(pseudonyms), 1000):
            with platform.db.transaction(org) as s:
                vault.detokenize_many(s, pseudonyms[start:start + 1000], purpose="benchmark", principal=dpo)
        wall, cpu_s = (ns() - w0) / 1e9, (cpu() - c0) / 1e9
        per = wall / len(pseudonyms) * 1e6
        report.add("6b. `detokenize_many` × 1,000", f"{len(pseudonyms) / wall:,.0f}", "identities/s",
                   f"{per / floor_open:,.1f}×", f"{per:,.1f} µs/identity; {len(pseudonyms) / cpu_s:,.0f} per CPU-s")
        platform.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if schema is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    facts = cpu_and_python() + [
        ("Backend", backend), ("Load average at start / end", f"{load_start} / {os.getloadavg()}"),
        ("Run time", f"{time.monotonic() - started:,.0f} s"), ("Machine", pyplatform.node() and "shared, 2 cores")]
    text_block = "\n".join(f"- {k}: {v}" for k, v in facts) + "\n\n" + report.markdown()
    print("\n" + text_block)
    return 0


def _in_tx(platform: Platform, org: int, fn: Callable[[object], object]) -> object:
    with platform.db.transaction(org) as s:
        return fn(s)


if __name__ == "__main__":
    sys.exit(main())
