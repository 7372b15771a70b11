#!/usr/bin/env python
"""Benchmark: ``qorgau split`` rows/s on a generated 10-column CSV, against the crypto-and-CSV floor.

One run, same process, same input file:

1. **floor** — the least any split must do per row, in plain Python: read the row with ``csv``,
   HMAC-SHA256 blind indexes of the three lookup identifiers (IIN, phone, e-mail; digits/lower-case
   normalization only), an HMAC pseudonym, a fresh 256-bit subject key wrapped with AES-GCM under a
   master key, the identifiers sealed with AES-GCM under the subject key, and the pseudonym + data
   columns written with ``csv`` — no database, no validation;
2. **qorgau split** — :func:`qorgau.vault.split.split` end to end (explicit ``--columns``, so sampling
   the scanner is not counted; batches of ``--batch-size``; SQLite in a temp dir unless
   ``--database-url``), with the manifest's own split of time into read / vault / write+fsync / commit;
3. **where the vault's time goes** — on one batch of new subjects: ``tokenize_many`` in all, and the
   per-value validation + normalization it does (``check_identifier``) timed alone per identifier type.

Goal (issue 4): split >= 50,000 rows/s on this machine (printed PASS/MISS). Ratios are "times slower
than the floor". Nothing is asserted; the machine is shared and noisy — compare ratios.

    .venv/bin/python bench/vault_split.py                   # 1,000,000 rows (long: see the printed ETA)
    .venv/bin/python bench/vault_split.py --rows 100000     # a quicker run
"""

from __future__ import annotations

import argparse
import csv
import hmac
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import cpu_and_python  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from qorgau.core import auth  # noqa: E402
from qorgau.core.platform import Platform  # noqa: E402
from qorgau.core.settings import Settings, normalize_database_url  # noqa: E402
from qorgau.identifiers import synthetic_kz_number  # noqa: E402

GOAL_ROWS_PER_S = 50_000
SEED = 20260118
COLUMNS = ["iin", "full_name", "phone", "email", "birth_date", "diagnosis", "amount", "city", "visit_date", "note"]
SPLIT_COLUMNS = "iin=KZ_IIN,full_name=PERSON,phone=PHONE_NUMBER,email=EMAIL_ADDRESS,birth_date=DATE_OF_BIRTH"
SURNAMES = ["Жаксылыков", "Иванов", "Нурланов", "Ким", "Сейткали", "Ахметов", "Петров", "Оспанов"]
GIVEN = ["Ерлан", "Айгерим", "Дамир", "Асель", "Иван", "Мария", "Нурсултан", "Дана"]
DIAGNOSES = ["J06.9", "I10", "E11.9", "K29.7", "M54.5", "Z00.0"]
CITIES = ["Алматы", "Астана", "Шымкент", "Караганда", "Актобе", "Павлодар"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def generate(path: Path, rows: int, *, repeat_share: float = 0.1) -> None:
    """``rows`` rows; ``repeat_share`` of them are a person seen before (a second visit)."""
    rng = random.Random(SEED)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        people = 0
        for n in range(rows):
            person = rng.randrange(people) if people and rng.random() < repeat_share else people
            if person == people:
                people += 1
            year = 1950 + person % 55
            birth = f"{year}-{1 + person % 12:02d}-{1 + person % 28:02d}"
            century = "3" if year < 2000 else "5"
            iin = synthetic_kz_number(f"{year % 100:02d}{1 + person % 12:02d}{1 + person % 28:02d}{century}",
                                      person // 336)
            w.writerow([iin, f"{SURNAMES[person % 8]} {GIVEN[person // 8 % 8]}", f"+7701{person:07d}",
                        f"client{person}@mail.kz", birth, DIAGNOSES[n % 6], str(rng.randrange(1, 10**6)),
                        CITIES[person % 6], f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}", "ok"])


def floor(path: Path, out: Path) -> tuple[float, float, int]:
    """The plain-Python floor: csv in, 4 HMACs, key wrap + seal with AES-GCM, csv out. (s, CPU-s, rows)."""
    blind_key, pseudo_key = secrets.token_bytes(32), secrets.token_bytes(32)
    master = AESGCM(secrets.token_bytes(32))
    rows = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, newline="", encoding="utf-8") as fh, open(out, "w", newline="", encoding="utf-8") as sink:
        reader = csv.reader(fh)
        writer = csv.writer(sink, lineterminator="\n")
        header = next(reader)
        writer.writerow(["pseudonym"] + header[5:])
        for row in reader:
            iin, name, phone, email, birth = row[0], row[1], row[2], row[3], row[4]
            for kind, value in (("KZ_IIN", iin), ("PHONE_NUMBER", "".join(c for c in phone if c.isdigit())),
                                ("EMAIL_ADDRESS", email.lower())):
                hmac.digest(blind_key, f"{kind}:{value}".encode(), "sha256")
            public_id = secrets.token_bytes(16)
            pseudonym = "ps_" + hmac.digest(pseudo_key, b"default\x00" + public_id, "sha256").hex()[:26]
            key = secrets.token_bytes(32)
            master.encrypt(secrets.token_bytes(12), key, public_id)
            payload = json.dumps({"KZ_IIN": [iin], "PERSON": [name], "PHONE_NUMBER": [phone],
                                  "EMAIL_ADDRESS": [email], "DATE_OF_BIRTH": [birth]}, ensure_ascii=False).encode()
            AESGCM(key).encrypt(secrets.token_bytes(12), payload, public_id)
            writer.writerow([pseudonym] + row[5:])
            rows += 1
    return time.perf_counter() - t0, time.process_time() - c0, rows


def vault_breakdown(platform: Platform, org_id: int, batch: int) -> dict[str, float]:
    """µs per record: tokenize_many of new subjects, and check_identifier per type (validation + normalize)."""
    from qorgau.vault.service import SubjectRecord, check_identifier, vault_for

    vault = vault_for(platform)
    base = 9_000_000
    records, values = [], {"KZ_IIN": [], "PHONE_NUMBER": [], "EMAIL_ADDRESS": [], "PERSON": [], "DATE_OF_BIRTH": []}
    for n in range(batch):
        ids = {"KZ_IIN": synthetic_kz_number("8001013", (base + n * 3) % 10**4 + n // 3000 * 10**4),
               "PHONE_NUMBER": f"+7705{(base + n) % 10**7:07d}", "EMAIL_ADDRESS": f"b{base + n}@bench.kz",
               "PERSON": f"Бенч Тест {n}", "DATE_OF_BIRTH": "1980-01-01"}
        records.append(SubjectRecord(ids))
        for t, v in ids.items():
            values[t].append(v)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    with platform.db.transaction(org_id) as session:
        vault.tokenize_many(session, records, actor="bench")
    out["tokenize_many, new subjects"] = (time.perf_counter() - t0) / batch * 1e6
    t0 = time.perf_counter()
    with platform.db.transaction(org_id) as session:
        vault.tokenize_many(session, records, actor="bench")
    out["tokenize_many, known subjects (re-run)"] = (time.perf_counter() - t0) / batch * 1e6
    for t, vs in values.items():
        t0 = time.perf_counter()
        for v in vs:
            check_identifier(t, v)
        out[f"check_identifier({t})"] = (time.perf_counter() - t0) / batch * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=2000)
    ap.add_argument("--database-url", help="PostgreSQL URL (a private schema is created); default SQLite")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    from qorgau.vault.split import split

    tmp = Path(tempfile.mkdtemp(prefix="qorgau-bench-split-"))
    schema = None
    url = f"sqlite:///{tmp / 'var' / 'qorgau.db'}"
    admin = None
    if args.database_url:
        from sqlalchemy import create_engine, text

        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = create_engine(normalize_database_url(args.database_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.database_url else "?"
        url = normalize_database_url(args.database_url) + f"{sep}options=-csearch_path%3D{schema}"
    started = time.time()
    load_start = os.getloadavg()
    try:
        data = tmp / "input.csv"
        t0 = time.perf_counter()
        generate(data, args.rows)
        log(f"generated {args.rows:,} rows, {data.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")
        floor_s, floor_cpu, floor_rows = floor(data, tmp / "floor.csv")
        floor_rate, floor_cpu_rate = floor_rows / floor_s, floor_rows / floor_cpu
        log(f"floor: {floor_rate:,.0f} rows/s")

        platform = Platform.initialize(Settings(data_dir=tmp / "var", database_url=url))
        with platform.db.transaction() as s:
            org_id = auth.create_organization(s, name="Bench", bin=synthetic_kz_number("050140", 77), actor="bench").id
        last = [time.perf_counter(), 0]

        def progress(p) -> None:  # noqa: ANN001
            if time.perf_counter() - last[0] > 30:
                rate = (p.rows - last[1]) / (time.perf_counter() - last[0])
                log(f"  split: {p.rows:,} rows, {rate:,.0f} rows/s now; ETA {(args.rows - p.rows) / max(rate, 1) / 60:.0f} min")
                last[0], last[1] = time.perf_counter(), p.rows

        cpu0, t0 = time.process_time(), time.perf_counter()
        report = split(data, tmp / "split.csv", platform=platform, org=org_id, actor="bench", columns=SPLIT_COLUMNS,
                       batch_size=args.batch_size, scan_values=False, on_progress=progress)
        split_s, split_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        split_rate = report.rows / split_s
        timings = report.manifest["timings"]
        breakdown = vault_breakdown(platform, org_id, min(args.batch_size, 2000))
        platform.close()
        load_end = os.getloadavg()

        verdict = "**PASS**" if split_rate >= GOAL_ROWS_PER_S else "**MISS**"
        lines = [
            f"### {time.strftime('%Y-%m-%d')} — {args.rows:,} rows, {'PostgreSQL' if schema else 'SQLite'}",
            "",
            f"Command: `.venv/bin/python bench/vault_split.py --rows {args.rows}"
            + (f" --database-url {args.database_url}" if args.database_url else "") + f"` "
            f"({(time.time() - started) / 60:.1f} min in all)",
            "",
            *[f"- {k}: {v}" for k, v in cpu_and_python()],
            f"- Input: {args.rows:,} rows x 10 columns, {data.stat().st_size / 1e6:.0f} MB CSV; 5 identifying "
            f"columns (IIN, name, phone, e-mail, birth date), ~10% of rows a repeat visit; batch {args.batch_size:,}",
            f"- Load average at start / end: {', '.join(f'{x:.2f}' for x in load_start)} / "
            f"{', '.join(f'{x:.2f}' for x in load_end)}",
            "",
            "| Measurement | rows/s | × floor | rows per CPU-second | × floor (CPU) | Notes |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
            f"| floor: csv + 4 HMAC + key wrap + seal (AES-GCM) + csv | {floor_rate:,.0f} | 1.0× | {floor_cpu_rate:,.0f} "
            f"| 1.0× | no database, no validation |",
            f"| `qorgau split` end to end | {split_rate:,.0f} | {floor_rate / split_rate:,.1f}× | "
            f"{report.rows / split_cpu:,.0f} | {floor_cpu_rate / (report.rows / split_cpu):,.1f}× | goal ≥ "
            f"{GOAL_ROWS_PER_S:,} rows/s: {verdict}; {report.subjects_created:,} subjects created |",
            "",
            "Where split's time goes (from the manifest):",
            "",
            "| Stage | s | share |",
            "| --- | ---: | ---: |",
        ]
        total = sum(timings[k] for k in ("read_s", "vault_s", "write_s", "commit_s"))
        for key, label in (("read_s", "read + parse CSV"), ("vault_s", "`Vault.tokenize_many`"),
                           ("write_s", "write output + problems, fsync, audit checkpoint"),
                           ("commit_s", "commit")):
            lines.append(f"| {label} | {timings[key]:,.1f} | {timings[key] / total:.0%} |")
        lines += ["", f"Inside the vault (one batch of {min(args.batch_size, 2000):,} records, 5 identifiers each):", "",
                  "| Step | µs per record |", "| --- | ---: |"]
        lines += [f"| {k} | {v:,.1f} |" for k, v in breakdown.items()]
        print("\n".join(lines))
    finally:
        if admin is not None:
            from sqlalchemy import text

            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
