#!/usr/bin/env python
"""Benchmark: ``qorgau split`` rows/s on a generated 10-column CSV, against the crypto-and-CSV floor.

One run, same process, same input file:

1. **floor** — the least any split must do per row, in plain Python: read the row with ``csv``,
   HMAC-SHA256 blind indexes of the three lookup identifiers (IIN, phone, e-mail; digits/lower-case
   normalization only), an HMAC pseudonym, a fresh 256-bit subject key wrapped with AES-GCM under a
   master key, the identifiers sealed with AES-GCM under the subject key, and the pseudonym + data
   columns written with ``csv`` — no database, no validation;
1a. **floor + validation** — the same loop plus ``check_identifier`` on the five values (what the vault
   must do before it stores anything: checksums, phone ranges, e-mail syntax);
2. **qorgau split** — :func:`qorgau.vault.split.split` end to end (explicit ``--columns``, so sampling
   the scanner is not counted; batches of ``--batch-size``; SQLite in a temp dir unless
   ``--database-url``; the default worker process validating the next batch), with the manifest's own
   split of time into read / vault / write+fsync / commit; CPU time counts the worker's too;
2a. with ``--compare-inline``: the same split with ``workers=0`` (validation in the main process), into
   a second organization of the same database;
3. **where the vault's time goes** — on one batch of new subjects: ``check_records`` (validation, the
   worker's share), ``tokenize_checked`` (blind indexes, keys, sealing, rows: the main process's share),
   and ``check_identifier`` timed alone per identifier type.

Goal (issue 4): split >= 50,000 rows/s on this machine (printed PASS/MISS). Ratios are "times slower
than the floor". Nothing is asserted; the machine is shared and noisy — compare ratios.

    .venv/bin/python bench/vault_split.py                    # 200,000 rows (what `make bench` runs)
    .venv/bin/python bench/vault_split.py --rows 1000000     # the issue's 1,000,000-row figure
"""

from __future__ import annotations

import argparse
import csv
import hmac
import json
import os
import random
import resource
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


def floor_validated(path: Path, out: Path, limit: int) -> tuple[float, float, int]:
    """The floor plus ``check_identifier`` of the five identifying values, on the first ``limit`` rows.
    (s, CPU-s, rows)."""
    from qorgau.vault.service import check_identifier

    blind_key, pseudo_key = secrets.token_bytes(32), secrets.token_bytes(32)
    master = AESGCM(secrets.token_bytes(32))
    types = ("KZ_IIN", "PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "DATE_OF_BIRTH")
    rows = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, newline="", encoding="utf-8") as fh, open(out, "w", newline="", encoding="utf-8") as sink:
        reader = csv.reader(fh)
        writer = csv.writer(sink, lineterminator="\n")
        header = next(reader)
        writer.writerow(["pseudonym"] + header[5:])
        for row in reader:
            if rows >= limit:
                break
            normal = [check_identifier(t, v)[0] for t, v in zip(types, row)]
            for kind, value in (("KZ_IIN", normal[0]), ("PHONE_NUMBER", normal[2]), ("EMAIL_ADDRESS", normal[3])):
                hmac.digest(blind_key, f"{kind}:{value}".encode(), "sha256")
            public_id = secrets.token_bytes(16)
            pseudonym = "ps_" + hmac.digest(pseudo_key, b"default\x00" + public_id, "sha256").hex()[:26]
            key = secrets.token_bytes(32)
            master.encrypt(secrets.token_bytes(12), key, public_id)
            payload = json.dumps(dict(zip(types, ([v] for v in normal))), ensure_ascii=False).encode()
            AESGCM(key).encrypt(secrets.token_bytes(12), payload, public_id)
            writer.writerow([pseudonym] + row[5:])
            rows += 1
    return time.perf_counter() - t0, time.process_time() - c0, rows


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the split's worker, after it)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def vault_breakdown(platform: Platform, org_id: int, batch: int) -> dict[str, float]:
    """CPU µs per record: check_records and tokenize_checked of new subjects, a re-run, check_identifier per type."""
    from qorgau.vault.service import SubjectRecord, check_identifier, check_records, vault_for

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
    t0 = time.process_time()
    checked = check_records(records)
    out["check_records (validation; the worker's share)"] = (time.process_time() - t0) / batch * 1e6
    t0 = time.process_time()
    with platform.db.transaction(org_id) as session:
        vault.tokenize_checked(session, checked, actor="bench", cache=False)
    out["tokenize_checked, new subjects, incl. commit (the main process's share)"] = \
        (time.process_time() - t0) / batch * 1e6
    t0 = time.process_time()
    with platform.db.transaction(org_id) as session:
        vault.tokenize_many(session, records, actor="bench")
    out["tokenize_many, known subjects (a re-run), incl. commit"] = (time.process_time() - t0) / batch * 1e6
    for t, vs in values.items():
        t0 = time.process_time()
        for v in vs:
            check_identifier(t, v)
        out[f"check_identifier({t})"] = (time.process_time() - t0) / batch * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--compare-inline", action="store_true",
                    help="also split with workers=0 (validation in the main process)")
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
        fv_s, fv_cpu, fv_rows = floor_validated(data, tmp / "floor2.csv", min(args.rows, 100_000))
        fv_rate, fv_cpu_rate = fv_rows / fv_s, fv_rows / fv_cpu
        log(f"floor + validation: {fv_rate:,.0f} rows/s")

        platform = Platform.initialize(Settings(data_dir=tmp / "var", database_url=url))
        with platform.db.transaction() as s:
            org_id = auth.create_organization(s, name="Bench", bin=synthetic_kz_number("050140", 77), actor="bench").id
        last = [time.perf_counter(), 0]

        def progress(p) -> None:  # noqa: ANN001
            if time.perf_counter() - last[0] > 30:
                rate = (p.rows - last[1]) / (time.perf_counter() - last[0])
                log(f"  split: {p.rows:,} rows, {rate:,.0f} rows/s now; ETA {(args.rows - p.rows) / max(rate, 1) / 60:.0f} min")
                last[0], last[1] = time.perf_counter(), p.rows

        cpu0, t0 = _cpu(), time.perf_counter()
        report = split(data, tmp / "split.csv", platform=platform, org=org_id, actor="bench", columns=SPLIT_COLUMNS,
                       batch_size=args.batch_size, scan_values=False, on_progress=progress)
        split_s, split_cpu = time.perf_counter() - t0, _cpu() - cpu0
        split_rate = report.rows / split_s
        timings = report.manifest["timings"]
        log(f"split: {split_rate:,.0f} rows/s, {report.rows / split_cpu:,.0f} rows per CPU-s")
        inline = None
        if args.compare_inline:
            with platform.db.transaction() as s:
                org2 = auth.create_organization(s, name="Bench 2", bin=synthetic_kz_number("050140", 78),
                                                actor="bench").id
            cpu0, t0 = _cpu(), time.perf_counter()
            r2 = split(data, tmp / "split2.csv", platform=platform, org=org2, actor="bench", columns=SPLIT_COLUMNS,
                       batch_size=args.batch_size, scan_values=False, workers=0)
            inline = (r2.rows / (time.perf_counter() - t0), r2.rows / (_cpu() - cpu0))
            log(f"split, workers=0: {inline[0]:,.0f} rows/s")
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
            f"| floor + validation (`check_identifier` × 5) | {fv_rate:,.0f} | {floor_rate / fv_rate:,.1f}× | "
            f"{fv_cpu_rate:,.0f} | {floor_cpu_rate / fv_cpu_rate:,.1f}× | what any correct split must add; first "
            f"{fv_rows:,} rows |",
            f"| `qorgau split` end to end | {split_rate:,.0f} | {floor_rate / split_rate:,.1f}× | "
            f"{report.rows / split_cpu:,.0f} | {floor_cpu_rate / (report.rows / split_cpu):,.1f}× | goal ≥ "
            f"{GOAL_ROWS_PER_S:,} rows/s: {verdict}; {report.subjects_created:,} subjects created; CPU includes the "
            f"validation worker |",
            *([f"| `qorgau split`, `workers=0` (no worker process) | {inline[0]:,.0f} | {floor_rate / inline[0]:,.1f}× "
               f"| {inline[1]:,.0f} | {floor_cpu_rate / inline[1]:,.1f}× | same input, second organization |"]
              if inline else []),
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
                  "| Step | CPU µs per record |", "| --- | ---: |"]
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
