#!/usr/bin/env python
"""Benchmark: RFC 9497 OPRF evaluations over ristretto255 (``qorgau/leaks/oprf.py``) against libsodium's floor.

One run measures, in one process:

0. the floor — raw ``rbcl.crypto_scalarmult_ristretto255`` calls/s (one variable-base scalar multiplication,
   the operation every evaluation needs at least once), and, for scale, ``crypto_core_ristretto255_from_hash``
   calls/s (the hash-to-group map every *direct* evaluation adds);
1. server ``BlindEvaluate``, one call per element: OPRF, and VOPRF with its DLEQ proof;
2. server ``BlindEvaluate`` batched (``--batch`` elements per call): OPRF, and VOPRF with one proof per batch;
3. server ``Evaluate`` on plaintext (the ingest path: ``token(server, "iin", …)``), OPRF and VOPRF modes, and
   the batched ingest loop ``tokens(server, "iin", [...])``;
4. client ``Blind`` + ``Finalize`` for one input (OPRF), OPRF ``finalize_batch``, and VOPRF ``finalize_batch``
   (proof verification + unblind);
5. POPRF batched ``BlindEvaluate`` (key tweak + proof).

Each figure is the best of ``--rounds`` rounds, as evaluations per wall second and per CPU second of this
process (the machine is shared; CPU-seconds are less sensitive to other load). "× floor" is how many floor
scalar multiplications' worth of time one evaluation costs. The issue's goal "ingest ≥ 20,000 identifiers/s per
core (OPRF-bound)" is printed as PASS/MISS against the better of lines 3 and 3b per CPU second. Nothing is asserted.

    .venv/bin/python bench/oprf.py                   # updates the "## leaks: OPRF (issue 8)" section of RESULTS.md
    .venv/bin/python bench/oprf.py --n 1000 --no-results
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import rbcl  # noqa: E402
from _common import cpu_and_python  # noqa: E402

from qorgau.identifiers import synthetic_kz_number  # noqa: E402
from qorgau.leaks import oprf  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "leaks: OPRF (issue 8)"
GOAL_INGEST_PER_CORE = 20_000


def measure(run: Callable[[], int], rounds: int) -> tuple[float, float]:
    """Best-of-``rounds`` (evaluations per wall second, per CPU second); ``run`` returns its evaluation count."""
    best_wall = best_cpu = 0.0
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        count = run()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        best_wall = max(best_wall, count / wall)
        best_cpu = max(best_cpu, count / max(cpu, 1e-9))
    return best_wall, best_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="evaluations per round (default 3000)")
    ap.add_argument("--batch", type=int, default=1000, help="elements per batched call (default 1000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per measurement, best taken (default 3)")
    ap.add_argument("--no-results", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    n, batch, rounds = args.n, args.batch, args.rounds
    started = time.perf_counter()
    load_start = os.getloadavg()

    # Synthetic, checksum-valid IIN-shaped identifiers (birth date prefix + serial): no real person's.
    iins = [synthetic_kz_number("900101" + "3", 10000 + i) for i in range(n)]
    token_inputs = [oprf.token_input("iin", iin) for iin in iins]
    oprf_server = oprf.OprfServer(oprf.generate_secret_key())
    voprf_server = oprf.VoprfServer(oprf.generate_secret_key())
    poprf_server = oprf.PoprfServer(oprf.generate_secret_key())
    oprf_client = oprf.OprfClient()
    voprf_client = oprf.VoprfClient(voprf_server.public_key)
    oprf_blinded = oprf_client.blind_batch(token_inputs)
    voprf_blinded = voprf_client.blind_batch(token_inputs)
    oprf_elements = [b.blinded_element for b in oprf_blinded]
    voprf_elements = [b.blinded_element for b in voprf_blinded]
    chunks = [(i, min(i + batch, n)) for i in range(0, n, batch)]

    # 0. floor
    scalar = rbcl.crypto_core_ristretto255_scalar_random()
    points = [rbcl.crypto_core_ristretto255_random() for _ in range(64)]
    uniform = [hashlib.sha512(x).digest() for x in token_inputs]

    def floor_scalarmult() -> int:
        mult = rbcl.crypto_scalarmult_ristretto255
        for i in range(n):
            mult(scalar, points[i & 63])
        return n

    def floor_from_hash() -> int:
        from_hash = rbcl.crypto_core_ristretto255_from_hash
        for u in uniform:
            from_hash(u)
        return n

    # 1-2. BlindEvaluate
    def oprf_single() -> int:
        for e in oprf_elements:
            oprf_server.blind_evaluate(e)
        return n

    def oprf_batched() -> int:
        for a, b in chunks:
            oprf_server.blind_evaluate_batch(oprf_elements[a:b])
        return n

    def voprf_single() -> int:
        for e in voprf_elements:
            voprf_server.blind_evaluate(e)
        return n

    voprf_answers: list[tuple[int, int, list[bytes], bytes]] = []

    def voprf_batched() -> int:
        voprf_answers.clear()
        for a, b in chunks:
            evaluated, proof = voprf_server.blind_evaluate_batch(voprf_elements[a:b])
            voprf_answers.append((a, b, evaluated, proof))
        return n

    # 3. Evaluate on plaintext (ingest)
    def oprf_direct() -> int:
        for iin in iins:
            oprf.token(oprf_server, "iin", iin)
        return n

    def voprf_direct() -> int:
        for iin in iins:
            oprf.token(voprf_server, "iin", iin)
        return n

    def oprf_tokens() -> int:
        for a, b in chunks:
            oprf.tokens(oprf_server, "iin", iins[a:b])
        return n

    # 4. client
    oprf_evaluated = oprf_server.blind_evaluate_batch(oprf_elements)

    # blind and finalize are timed apart (a fresh blind cannot reuse an earlier answer) and their times added
    def client_blind() -> int:
        for x in token_inputs:
            oprf_client.blind(x)
        return n

    def client_finalize() -> int:
        for blinded, e in zip(oprf_blinded, oprf_evaluated):
            oprf_client.finalize(blinded, e)
        return n

    def client_finalize_batch() -> int:
        for a, b in chunks:
            oprf_client.finalize_batch(oprf_blinded[a:b], oprf_evaluated[a:b])
        return n

    def voprf_client_verify() -> int:
        for a, b, evaluated, proof in voprf_answers:
            voprf_client.finalize_batch(voprf_blinded[a:b], evaluated, proof)
        return n

    # 5. POPRF
    poprf_client = oprf.PoprfClient(poprf_server.public_key)
    poprf_blinded = poprf_client.blind_batch(token_inputs, b"register-2026")
    poprf_elements = [b.blinded_element for b in poprf_blinded]

    def poprf_batched() -> int:
        for a, b in chunks:
            poprf_server.blind_evaluate_batch(poprf_elements[a:b], b"register-2026")
        return n

    print(f"OPRF benchmark: n={n}, batch={batch}, best of {rounds}; load {load_start}", file=sys.stderr)
    floor_wall, floor_cpu = measure(floor_scalarmult, rounds)
    hash_wall, hash_cpu = measure(floor_from_hash, rounds)
    rows: list[tuple[str, float, float, str]] = []

    def row(label: str, wall: float, cpu: float, note: str = "") -> None:
        rows.append((label, wall, cpu, note))
        print(f"  {label}: {wall:,.0f}/s wall, {cpu:,.0f}/CPU-s {note}", file=sys.stderr)

    row("0. floor: raw `crypto_scalarmult_ristretto255` calls", floor_wall, floor_cpu, "baseline")
    row("0a. for scale: raw `crypto_core_ristretto255_from_hash` calls", hash_wall, hash_cpu, "")
    row("1. OPRF `blind_evaluate`, one element per call", *measure(oprf_single, rounds), "1 scalar mult + point check")
    row("1a. VOPRF `blind_evaluate`, one element + proof per call", *measure(voprf_single, rounds),
        "≈ 4 scalar mults + 1 fixed-base")
    row(f"2. OPRF `blind_evaluate_batch`, {batch} per call", *measure(oprf_batched, rounds), "")
    row(f"2a. VOPRF `blind_evaluate_batch`, {batch} per call, one proof", *measure(voprf_batched, rounds),
        "≈ 2 scalar mults per element")
    direct = measure(oprf_direct, rounds)
    row("3. OPRF `evaluate` on plaintext = `token(server, \"iin\", …)` (ingest)", *direct,
        "hash-to-group + 1 scalar mult + SHA-512")
    row("3a. VOPRF `evaluate` on plaintext (ingest for a VOPRF register)", *measure(voprf_direct, rounds), "")
    batched = measure(oprf_tokens, rounds)
    row(f"3b. OPRF `tokens(server, \"iin\", …)`, {batch} per call (batched ingest loop)", *batched, "")
    best_ingest = max(direct[1], batched[1])
    blind_wall, blind_cpu = measure(client_blind, rounds)
    fin_wall, fin_cpu = measure(client_finalize, rounds)
    both_wall = 1.0 / (1.0 / blind_wall + 1.0 / fin_wall)
    both_cpu = 1.0 / (1.0 / blind_cpu + 1.0 / fin_cpu)
    row("4. client OPRF `blind` + `finalize`, one input", both_wall, both_cpu,
        f"blind {blind_wall:,.0f}/s, finalize {fin_wall:,.0f}/s (wall)")
    row(f"4a. client OPRF `finalize_batch`, {batch} per call", *measure(client_finalize_batch, rounds),
        "one scalar inversion per batch")
    row(f"4b. client VOPRF `finalize_batch`, {batch} per proof (verify + unblind)",
        *measure(voprf_client_verify, rounds), "")
    row(f"5. POPRF `blind_evaluate_batch`, {batch} per call, one proof", *measure(poprf_batched, rounds), "")

    verdict = "PASS" if best_ingest >= GOAL_INGEST_PER_CORE else "MISS"
    elapsed = time.perf_counter() - started
    load_end = os.getloadavg()

    lines = [f"### {dt.date.today().isoformat()}", ""]
    lines.append(f"- Command: `.venv/bin/python bench/oprf.py --n {n} --batch {batch} --rounds {rounds}` "
                 f"({elapsed:.0f} s in all)")
    for key, value in cpu_and_python():
        lines.append(f"- {key}: {value}")
    lines.append(f"- libsodium: bundled by rbcl (`crypto_scalarmult_ristretto255`); code measured: "
                 f"`qorgau/leaks/oprf.py` sha256 "
                 f"{hashlib.sha256((ROOT / 'qorgau/leaks/oprf.py').read_bytes()).hexdigest()[:12]}")
    lines.append("- Load average at start / end: " + ", ".join(f"{x:.2f}" for x in load_start) + " / "
                 + ", ".join(f"{x:.2f}" for x in load_end) + " (2 cores shared with other jobs)")
    lines += ["", "| Measurement | evaluations/s (wall) | evaluations/CPU-s | × floor time (CPU) | Notes |",
              "| --- | ---: | ---: | ---: | --- |"]
    for label, wall, cpu, note in rows:
        lines.append(f"| {label} | {wall:,.0f} | {cpu:,.0f} | {floor_cpu / cpu:.2f}× | {note} |")
    lines += ["", f"Goal (issue 8) ingest ≥ {GOAL_INGEST_PER_CORE:,} identifiers/s per core, OPRF-bound: "
              f"**{verdict}** — lines 3/3b reach {best_ingest:,.0f}/CPU-s, and the floor itself (one scalar "
              f"multiplication, which every evaluation needs) is {floor_cpu:,.0f}/CPU-s on this machine."]
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_results:
        update_results(body)
        print(f"updated {RESULTS.relative_to(ROOT)} (## {SECTION})", file=sys.stderr)


def update_results(body: str) -> None:
    """Replace (or add) this date's ``###`` subsection of ``## leaks: OPRF (issue 8)`` in bench/RESULTS.md."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    head = re.compile(rf"^## {re.escape(SECTION)}[ \t]*$", re.M)
    m = head.search(text)
    if not m:
        text = text.rstrip("\n") + (
            f"\n\n## {SECTION}\n\nRFC 9497 OPRF/VOPRF/POPRF over ristretto255 (`qorgau/leaks/oprf.py`, libsodium "
            "through `rbcl`): how many evaluations per second the register's server side (blind evaluation for "
            "screening clients, direct evaluation at ingest) and a screening client can do, against raw "
            "libsodium scalar multiplications in the same run. `bench/oprf.py`. Goal (issue 8): ingest ≥ 20,000 "
            "identifiers/s per core (OPRF-bound).\n")
        m = head.search(text)
        assert m
    start = m.end()
    nxt = re.compile(r"^## ", re.M).search(text, start)
    end = nxt.start() if nxt else len(text)
    section = text[start:end]
    label = body.splitlines()[0]
    sub = re.compile(rf"^{re.escape(label)}\b.*?(?=^### |\Z)", re.M | re.S)
    new_sub = body.rstrip("\n") + "\n\n"
    section = sub.sub(lambda _m: new_sub, section, count=1) if sub.search(section) else (
        section.rstrip("\n") + "\n\n" + new_sub)
    text = text[:start] + section.rstrip("\n") + "\n" + ("\n" + text[end:] if nxt else "")
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
