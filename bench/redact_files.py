#!/usr/bin/env python
"""Benchmark: redacting whole files (``qorgau redact`` on XLSX, DOCX, Parquet, JSON, CSV), against the
cost of just reading and writing the same file with the same library, in the same run.

For each format one generated file (seeded, dense with kk/ru/en personal data) is processed four ways,
each in a fresh child process so that its peak resident memory is its own:

1. **baseline** — the library's own round trip, no scanning: openpyxl ``load_workbook`` + ``save``,
   python-docx ``Document`` + ``save``, pyarrow ``iter_batches`` + ``ParquetWriter``, ``json.load`` +
   ``json.dump``, ``csv.reader`` + ``csv.writer``;
2. **scan** — ``qorgau scan``'s reading and scanning of the file (``scanning.scan_paths``), identifiers
   only: what finding costs without writing anything;
3. **redact, identifiers only** — :func:`qorgau.discovery.redact_files.redact_file` with
   ``Scanner.identifiers_only()`` (for XLSX/DOCX including the verification pass over every XML part);
4. **redact, default** — the same with ``Scanner.default()`` (PERSON/ADDRESS/DOB on).

Times exclude building the scanner (printed separately). Ratios are "times the baseline's time".
Peak RSS is the child's ``VmHWM``: the XLSX rows show what loading a workbook whole costs (openpyxl
cannot write styles, merged cells or comments in its streaming modes; see ``docs/redaction.md``).
Nothing is asserted. Results go to the ``## redact_files`` section of ``bench/RESULTS.md``.

    .venv/bin/python bench/redact_files.py [--rows 20000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import cpu_and_python  # noqa: E402

SURNAMES = ["Жаксылыков", "Нұрланов", "Иванова", "Ахметова", "Серікбаев", "Kim", "Smith", "Әбдіқадыров"]
GIVEN = ["Ерлан", "Айгерім", "Анна", "Нұрлан", "Ольга", "John", "Дәурен", "Мария"]
CITIES = ["Алматы", "Астана", "Шымкент", "Қарағанды"]


def iin(rng: random.Random) -> str:
    from qorgau.identifiers import synthetic_kz_number

    return synthetic_kz_number(f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}3",
                               rng.randint(0, 9999))


def records(n: int, seed: int = 20261122) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
        phone = f"+7 7{rng.randint(0, 9)}{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
        note = rng.choice([f"клиент {name}, тел. {phone}", f"почта user{i}@mail.kz, г. {rng.choice(CITIES)}",
                           "заказ отправлен, претензий нет", f"ЖСН {iin(rng)} тексерілді"])
        out.append({"id": i, "iin": iin(rng), "name": name, "phone": phone, "note": note,
                    "amount": round(rng.uniform(100, 100000), 2), "city": rng.choice(CITIES)})
    return out


def make_inputs(directory: Path, rows: int) -> dict[str, Path]:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    data = records(rows)
    paths: dict[str, Path] = {}
    columns = list(data[0])
    wb = Workbook()
    ws = wb.active
    ws.append(columns)
    bold = Font(bold=True)
    for r in data:
        ws.append([r[c] for c in columns])
    for cell in ws[1]:
        cell.font = bold
    paths["xlsx"] = directory / "clients.xlsx"
    wb.save(paths["xlsx"])

    import docx

    d = docx.Document()
    for r in data[: rows // 4]:
        p = d.add_paragraph("Клиент ")
        run = p.add_run(str(r["name"]).split()[0])
        run.bold = True
        p.add_run(f" {str(r['name']).split()[1]}, ИИН {str(r['iin'])[:6]}")
        p.add_run(f"{str(r['iin'])[6:]}, {r['note']}")
    paths["docx"] = directory / "letters.docx"
    d.save(paths["docx"])

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: [r[c] for r in data] for c in columns})
    paths["parquet"] = directory / "clients.parquet"
    pq.write_table(table, paths["parquet"], row_group_size=max(1, rows // 4))

    paths["json"] = directory / "clients.json"
    paths["json"].write_text(json.dumps({"clients": data}, ensure_ascii=False, indent=1), encoding="utf-8")

    paths["csv"] = directory / "clients.csv"
    with paths["csv"].open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(data)
    return paths


# --- the measured work (each in a child process) --------------------------------------------------------


def baseline(kind: str, src: Path, dst: Path) -> None:
    if kind == "xlsx":
        from openpyxl import load_workbook

        load_workbook(src).save(dst)
    elif kind == "docx":
        import docx

        docx.Document(str(src)).save(str(dst))
    elif kind == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(src)
        with pq.ParquetWriter(dst, parquet.schema_arrow) as writer:
            for batch in parquet.iter_batches(batch_size=65_536):
                writer.write_batch(batch)
    elif kind == "json":
        with src.open(encoding="utf-8") as fh, dst.open("w", encoding="utf-8") as out:
            json.dump(json.load(fh), out, ensure_ascii=False, indent=1)
    elif kind == "csv":
        with src.open(encoding="utf-8", newline="") as fh, dst.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            for row in csv.reader(fh):
                writer.writerow(row)


def child(job: tuple[str, str, str, str, str], queue: mp.Queue) -> None:
    how, kind, src, dst, warm = job
    from qorgau.discovery.engine import Scanner

    setup = 0.0
    if how in ("scan", "redact-ids", "redact-default"):
        t = time.perf_counter()
        scanner = Scanner.default() if how == "redact-default" else Scanner.identifiers_only()
        verifier = Scanner.identifiers_only()
        scanner.scan("ИИН 791028302728")  # lexicons and models loaded before timing
        setup = time.perf_counter() - t
    else:
        scanner = verifier = None

    def work(source: str, target: str) -> int:
        if how == "baseline":
            baseline(kind, Path(source), Path(target))
            return 0
        if how == "scan":
            from qorgau.discovery.scanning import scan_paths

            return sum(result.total for result in scan_paths([source], lambda: scanner))
        from qorgau.discovery.redact import Redactor
        from qorgau.discovery.redact_files import redact_file

        return redact_file(source, target, redactor=Redactor(operator="mask"), scanner=scanner,
                           verifier=verifier).total

    work(warm, target=str(Path(dst).with_name("warm" + Path(dst).suffix)))  # imports and caches, untimed
    started = time.perf_counter()
    cpu = time.process_time()
    findings = work(src, dst)
    wall = time.perf_counter() - started
    queue.put({"wall": wall, "cpu": time.process_time() - cpu, "setup": setup, "findings": findings,
               "rss_mb": peak_rss_mb()})


def peak_rss_mb() -> float:
    """This process's peak resident memory. ``ru_maxrss`` would not do: Linux keeps it across ``exec``, so a
    spawned child would report its parent's peak; ``VmHWM`` belongs to the new address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(how: str, kind: str, src: Path, dst: Path, warm: Path, repeat: int) -> dict[str, float]:
    best: dict[str, float] | None = None
    context = mp.get_context("spawn")
    for _ in range(repeat):
        queue = context.Queue()
        process = context.Process(target=child, args=((how, kind, str(src), str(dst), str(warm)), queue))
        process.start()
        result = None
        while result is None:
            try:
                result = queue.get(timeout=5)
            except Exception:  # noqa: BLE001 - queue.Empty: is the child still alive?
                if not process.is_alive():
                    raise SystemExit(f"{how} {kind}: the measuring process failed (exit code {process.exitcode})")
        process.join()
        if dst.exists():
            dst.unlink()
        if best is None or result["wall"] < best["wall"]:
            best = result
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="records per file (DOCX: a quarter, as paragraphs)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (best is kept)")
    args = parser.parse_args()
    started = time.time()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="qorgau-bench-redact-") as tmp:
        directory = Path(tmp)
        inputs = make_inputs(directory, args.rows)
        (directory / "warm").mkdir()
        warm = make_inputs(directory / "warm", 20)
        rows_out = []
        for kind, src in inputs.items():
            size_mb = src.stat().st_size / 1e6
            dst = directory / f"out{src.suffix}"
            results = {how: measure(how, kind, src, dst, warm[kind], args.repeat)
                       for how in ("baseline", "scan", "redact-ids", "redact-default")}
            base = results["baseline"]["wall"]
            for how, r in results.items():
                rows_out.append((kind, how, size_mb, r, r["wall"] / base))
            print(f"{kind}: done", file=sys.stderr)
    print(f"### {time.strftime('%Y-%m-%d')}\n")
    print(f"Command: `.venv/bin/python bench/redact_files.py --rows {args.rows} --repeat {args.repeat}` "
          f"({(time.time() - started) / 60:.1f} min in all)\n")
    for label, value in cpu_and_python():
        print(f"- {label}: {value}")
    print("- Threads: OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1; every measurement in a fresh process, best of "
          f"{args.repeat}")
    print(f"- Load average at start: {', '.join(f'{x:.2f}' for x in load_start)}")
    print(f"- Load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(f"Inputs: {args.rows:,} generated client records (IIN, name, phone, note, amount, city); DOCX holds a "
          "quarter of them as paragraphs with the name and IIN split across runs.\n")
    print("| File | Work | Seconds | MB/s | × baseline | Findings | Peak RSS MB | Scanner set-up s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = {"baseline": "baseline: library read + write", "scan": "scan only (identifiers)",
             "redact-ids": "redact, identifiers only", "redact-default": "redact, default (PERSON/ADDRESS on)"}
    for kind, how, size_mb, r, ratio in rows_out:
        print(f"| {kind} ({size_mb:.1f} MB) | {names[how]} | {r['wall']:.2f} | {size_mb / r['wall']:.2f} | "
              f"{ratio:.1f}× | {int(r['findings']):,} | {r['rss_mb']:.0f} | {r['setup']:.2f} |")


if __name__ == "__main__":
    main()
