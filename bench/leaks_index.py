#!/usr/bin/env python
"""Benchmark: the leaked-token index (``qorgau/leaks/segments.py``) against a numpy ``searchsorted`` floor.

One run, on ``--tokens`` random 32-byte tokens (default 10**8; OPRF outputs are pseudorandom, so random bytes
are the honest stand-in):

1. segment build (sort + write + fsync + sha256 + publish) vs the floor ``np.argsort`` of the 64-bit prefixes;
2. index memory: a fresh process opens the index and faults in what lookups need (offsets, keys, incidents);
   resident size from ``/proc/self/smaps`` per mapped section and ``VmRSS``; goal <= 1.5 GB at 10**8;
3. single in-process lookups ``Index.lookup`` (half hits, half misses), exact (confirmed against the full
   token) and prefix-only, vs the floor: one ``np.searchsorted`` call per token on a sorted u64 array of the
   same prefixes; goal >= 200,000/s;
4. ``lookup_many`` on 10**6 tokens vs one vectorized ``np.searchsorted``;
5. notification join: a new segment of ``--join`` tokens (default 10**7) against ``--join`` subscriber tokens
   (1% of them in the new segment): ``Index.lookup_many(subscribers, segments=[new])`` vs ``np.intersect1d``
   of the 64-bit prefixes;
6. a merge of the new segment with a tenth as many entries (entries/s).

Wall time and this process's CPU time are both printed: the machine (2 cores) is shared. Nothing is asserted.

    .venv/bin/python bench/leaks_index.py                      # 10**8 tokens, ~5 GB of disk, ~8 GB RAM at peak
    .venv/bin/python bench/leaks_index.py --tokens 10000000 --join 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_and_python  # noqa: E402

from qorgau.leaks.segments import Index, merge, read_manifest, write_segment  # noqa: E402

GB = 1e9


def vm_status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "RssAnon", "RssFile", "VmHWM")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) * 1024
    return out


def smaps_rss(addresses: dict[str, int]) -> dict[str, int]:
    """Resident bytes of the mappings that contain each address."""
    result = {name: 0 for name in addresses}
    current = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(" ", 1)[0]
        if "-" in head and ":" not in head:
            lo, hi = (int(x, 16) for x in head.split("-"))
            current = [name for name, addr in addresses.items() if lo <= addr < hi]
        elif line.startswith("Rss:") and current:
            for name in current:
                result[name] += int(line.split()[1]) * 1024
    return result


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn):  # type: ignore[no-untyped-def]
    w0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - w0, time.process_time() - c0


def random_tokens(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.frombuffer(rng.bytes(32 * n), np.uint8).reshape(n, 32)


# ---------------------------------------------------------------------------------------------------------
# The lookup child: a fresh process so its RSS is the index's


def child(directory: str, queries_path: str, many: int) -> None:
    base = vm_status()
    queries = np.load(queries_path)  # (2q, 32): hits then misses, shuffled below
    q_bytes = [bytes(t) for t in queries]
    after_queries = vm_status()
    index = Index.open(directory, collect=False)
    (_, warm_wall, _) = timed(index.warm)
    seg = index._segments[0]
    addresses = {"offsets": seg.offsets.ctypes.data, "keys": seg.keys.ctypes.data,
                 "incidents": seg.incidents.ctypes.data, "tokens": seg.tokens.ctypes.data}
    warm = vm_status()
    sections_warm = smaps_rss(addresses)

    def single(idx: Index) -> int:
        found = 0
        lookup = idx.lookup
        for token in q_bytes:
            if lookup(token):
                found += 1
        return found

    single(index)  # warm-up pass (faults in the confirming token pages of the hits)
    found_exact, w_exact, c_exact = timed(lambda: single(index))
    index.exact = False  # the same mapping, prefix only (a second Index would map the file twice)
    found_loose, w_loose, c_loose = timed(lambda: single(index))
    index.exact = True
    after_lookups = vm_status()
    sections_after = smaps_rss(addresses)

    # The floor: the same prefixes as one sorted u64 array, one np.searchsorted call per token.
    bits = seg.bits
    counts = np.diff(seg.offsets.astype(np.int64))
    hi = np.repeat(np.arange(len(counts), dtype=np.uint64) << np.uint64(64 - bits), counts) if bits else \
        np.zeros(seg.n, np.uint64)
    hi |= seg.keys >> np.uint64(bits) if bits else seg.keys
    assert bool(np.all(hi[1:] >= hi[:-1]))
    del counts

    def floor_single() -> int:
        found = 0
        search = np.searchsorted
        n = len(hi)
        for token in q_bytes:
            key = np.uint64(int.from_bytes(token[:8], "big"))
            i = search(hi, key)
            if i < n and hi[i] == key:
                found += 1
        return found

    floor_single()
    found_floor, w_floor, c_floor = timed(floor_single)

    rng = np.random.default_rng(5)
    batch = queries[rng.integers(0, len(queries), many)]
    matches, w_many, c_many = timed(lambda: index.lookup_many(batch))
    batch_hi = batch.view(">u8")[:, 0].astype(np.uint64)

    def floor_many() -> int:
        pos = np.searchsorted(hi, batch_hi)
        pos[pos == len(hi)] = 0
        return int((hi[pos] == batch_hi).sum())

    found_many_floor, w_many_floor, c_many_floor = timed(floor_many)
    print(json.dumps({
        "entries": index.entries, "bits": bits, "queries": len(q_bytes), "warm_s": warm_wall,
        "rss_base": base["VmRSS"], "rss_queries": after_queries["VmRSS"], "rss_warm": warm["VmRSS"],
        "rss_after": after_lookups["VmRSS"], "rss_anon_after": after_lookups["RssAnon"],
        "sections_warm": sections_warm, "sections_after": sections_after,
        "single_exact": [found_exact, w_exact, c_exact], "single_loose": [found_loose, w_loose, c_loose],
        "single_floor": [found_floor, w_floor, c_floor],
        "many": [int(np.unique(matches.query).size), w_many, c_many, many],
        "many_floor": [found_many_floor, w_many_floor, c_many_floor],
    }))


# ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=10**8)
    parser.add_argument("--join", type=int, default=10**7, help="new tokens and subscriber tokens in the join")
    parser.add_argument("--lookups", type=int, default=200_000, help="hits (and as many misses) for single lookups")
    parser.add_argument("--many", type=int, default=10**6, help="tokens in the lookup_many batch")
    parser.add_argument("--dir", help="index directory (default: a temp dir, removed afterwards)")
    parser.add_argument("--memory-budget", type=float, default=10.0, help="GB of sorting memory for the build")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.many)
        return

    started = time.time()
    load_start = os.getloadavg()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="qorgau-leaks-bench-"))
    directory = work / "index"
    rows: list[tuple[str, str, str, str, str]] = []

    def row(what: str, value: str, unit: str, ratio: str = "", notes: str = "") -> None:
        rows.append((what, value, unit, ratio, notes))
        print(f"  {what}: {value} {unit} {ratio} {notes}", flush=True)

    try:
        rng = np.random.default_rng(20261123)
        n = args.tokens
        print(f"generating {n:,} tokens", flush=True)
        tokens = random_tokens(rng, n)
        incidents = rng.integers(0, 20_000, n, dtype=np.uint32)

        # 1. build
        hi = tokens.view(">u8")[:, 0].astype(np.uint64)
        _, w_floor_sort, c_floor_sort = timed(lambda: np.argsort(hi))
        del hi
        info, w_build, c_build = timed(lambda: write_segment(directory, tokens, incidents,
                                                             memory_budget=int(args.memory_budget * GB)))
        assert info is not None
        row("1. Floor: `np.argsort` of the 64-bit prefixes", f"{w_floor_sort:.1f}", "s", "1.0×",
            f"CPU {c_floor_sort:.1f} s")
        row(f"1a. Segment build `write_segment` ({n:,} tokens)", f"{w_build:.1f}", "s",
            f"{w_build / w_floor_sort:.1f}×",
            f"CPU {c_build:.1f} s; {rate(n, w_build):,.0f} tokens/s; sort+dedupe, write, fsync, sha256, publish; "
            f"file {info.bytes / GB:.2f} GB")

        # Queries: hits (random existing tokens) and as many random misses, shuffled.
        q = args.lookups
        hits = tokens[rng.integers(0, n, q)]
        misses = random_tokens(rng, q)
        queries = np.concatenate([hits, misses])
        rng.shuffle(queries)
        queries_path = work / "queries.npy"
        np.save(queries_path, queries)
        del tokens, incidents, hits, misses

        # 2–4. lookups in a fresh process
        print("lookups in a fresh process", flush=True)
        out = subprocess.run([sys.executable, __file__, "--child", str(directory), str(queries_path),
                              "--many", str(args.many)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        sw, sa = r["sections_warm"], r["sections_after"]
        index_bytes = sw["offsets"] + sw["keys"] + sw["incidents"]
        row("2. Index memory: offsets + keys + incidents resident after `warm()`", f"{index_bytes / GB:.3f}", "GB",
            "", f"{'PASS' if index_bytes <= 1.5 * GB * n / 10**8 else 'MISS'} vs goal ≤ 1.5 GB per 10⁸ tokens; "
            f"offsets {sw['offsets'] / 1e6:.0f} MB, keys {sw['keys'] / GB:.2f} GB, incidents "
            f"{sw['incidents'] / GB:.2f} GB; {index_bytes / n:.1f} B/token")
        row("2a. VmRSS of the lookup process: after imports+queries / after warm / after lookups",
            f"{r['rss_queries'] / GB:.2f} / {r['rss_warm'] / GB:.2f} / {r['rss_after'] / GB:.2f}", "GB", "",
            f"queries held as Python bytes: {(r['rss_queries'] - r['rss_base']) / 1e6:.0f} MB; "
            f"anonymous after lookups {r['rss_anon_after'] / GB:.2f} GB")
        row("2b. Token column resident after the lookups (page cache, reclaimable)",
            f"{sa['tokens'] / 1e6:.0f}", "MB", "",
            f"of {32 * n / GB:.1f} GB on disk: only pages of confirmed hits are read")
        nq = r["queries"]
        fw, fc = r["single_floor"][1], r["single_floor"][2]
        row("3. Floor: one `np.searchsorted` per token on a sorted u64 array", f"{rate(nq, fw):,.0f}", "lookups/s",
            "1.0×", f"{rate(nq, fc):,.0f} per CPU-s; {nq:,} tokens, half hits ({r['single_floor'][0]:,} found)")
        for key, label in (("single_exact", "3a. `Index.lookup`, exact (confirmed against the full token)"),
                           ("single_loose", "3b. `Index.lookup`, prefix only (`exact=False`)")):
            found, w, c = r[key]
            ratio = rate(nq, fw) / rate(nq, w)
            row(label, f"{rate(nq, w):,.0f}", "lookups/s", f"{ratio:.2f}×",
                f"{'PASS' if rate(nq, w) >= 200_000 else 'MISS'} vs goal ≥ 200,000/s; {rate(nq, c):,.0f} per CPU-s "
                f"({'PASS' if rate(nq, c) >= 200_000 else 'MISS'}); {found:,} found")
        mf, mw, mc, m = r["many"]
        fmf, fmw, fmc = r["many_floor"]
        row("4. Floor: vectorized `np.searchsorted` of a batch", f"{rate(m, fmw):,.0f}", "tokens/s", "1.0×",
            f"{m:,} tokens; {fmf:,} found")
        row("4a. `Index.lookup_many` (exact)", f"{rate(m, mw):,.0f}", "tokens/s", f"{fmw and mw / fmw:.1f}×",
            f"{rate(m, mc):,.0f} per CPU-s; {mf:,} found")

        # 5. notification join
        j = args.join
        print(f"notification join {j:,} × {j:,}", flush=True)
        new_tokens = random_tokens(rng, j)
        subscribers = random_tokens(rng, j).copy()
        overlap = j // 100
        subscribers[:overlap] = new_tokens[rng.choice(j, overlap, replace=False)]
        rng.shuffle(subscribers)
        new_info, w_new, c_new = timed(lambda: write_segment(directory, new_tokens, 777_777,
                                                             memory_budget=int(args.memory_budget * GB)))
        assert new_info is not None
        row(f"5. Build of the new segment ({j:,} tokens)", f"{w_new:.1f}", "s", "",
            f"{rate(j, w_new):,.0f} tokens/s")
        new_hi = new_tokens.view(">u8")[:, 0].astype(np.uint64)
        sub_hi = subscribers.view(">u8")[:, 0].astype(np.uint64)
        common, w_isect, c_isect = timed(lambda: np.intersect1d(new_hi, sub_hi, assume_unique=True))
        row("5a. Floor: `np.intersect1d` of the 64-bit prefixes", f"{w_isect:.2f}", "s", "1.0×",
            f"CPU {c_isect:.2f} s; {len(common):,} common")
        with Index.open(directory, collect=False) as index:
            joined, w_join, c_join = timed(lambda: index.lookup_many(subscribers, segments=[new_info.name]))
        row("5b. Join: `lookup_many(subscribers, segments=[new])` (exact)", f"{w_join:.2f}", "s",
            f"{w_join / w_isect:.2f}×", f"CPU {c_join:.2f} s; {len(joined.query):,} subscribers to notify "
            f"(expected {overlap:,})")
        del new_tokens, subscribers, new_hi, sub_hi

        # 6. merge
        small = random_tokens(rng, max(1, j // 10))
        small_info = write_segment(directory, small, 5)
        assert small_info is not None
        merged, w_merge, c_merge = timed(lambda: merge(directory, [new_info.name, small_info.name],
                                                       memory_budget=int(1 * GB)))
        row(f"6. Merge of {j:,} + {len(small):,} entries (1 GB budget)", f"{w_merge:.1f}", "s", "",
            f"{rate(merged.entries, w_merge):,.0f} entries/s; CPU {c_merge:.1f} s")
        assert merged.entries == j + len(small)
        manifest = read_manifest(directory)
        print(f"segments now: {len(manifest.segments)}")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)

    code = Path(__file__).resolve().parents[1] / "qorgau" / "leaks"
    print()
    print(f"Command: `.venv/bin/python bench/leaks_index.py {' '.join(sys.argv[1:])}`".rstrip() +
          f" ({(time.time() - started) / 60:.1f} min in all)")
    print()
    for name, value in cpu_and_python():
        print(f"- {name}: {value}")
    print(f"- NumPy: {np.__version__}")
    for name in ("segments.py", "_segment_format.py"):
        digest = hashlib.sha256((code / name).read_bytes()).hexdigest()[:12]
        print(f"- Code measured: `qorgau/leaks/{name}` sha256 {digest}")
    print(f"- Load average at start: {', '.join(f'{x:.2f}' for x in load_start)}")
    print(f"- Load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| Measurement | Result | Unit | × floor | Notes |")
    print("| --- | ---: | --- | ---: | --- |")
    for what, value, unit, ratio, notes in rows:
        print(f"| {what} | {value} | {unit} | {ratio} | {notes} |")


if __name__ == "__main__":
    main()
