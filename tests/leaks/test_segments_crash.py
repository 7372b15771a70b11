"""Crash test of the leaked-token index: a process writing (or merging) segments is SIGKILLed at random
points; every time, the next ``Index.open`` sees the old state or the new one — never a partial segment —
answers lookups correctly, and has removed the garbage the killed process left."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from qorgau.leaks.segments import Index, read_manifest, write_segment

N = 120_000  # entries a killed writer writes: big enough to spill runs and to be killed mid-way

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from qorgau.leaks.segments import merge, read_manifest, SegmentWriter

    directory, mode, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print("READY", flush=True)  # imports done: the parent's kill clock starts here
    if mode == "write":
        tokens = np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)
        with SegmentWriter(directory, memory_budget=2_000_000) as writer:   # spills runs: an external sort
            for start in range(0, n, 20_000):
                writer.add(tokens[start:start + 20_000], seed)
    else:
        names = [s.name for s in read_manifest(directory).segments]
        merge(directory, names, memory_budget=3_000_000)
    print("DONE", flush=True)
""")


def tokens_of(seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)


def run_child(directory: Path, mode: str, seed: int, kill_after: float | None) -> bool:
    """Run the writer/merger; SIGKILL it ``kill_after`` seconds after it has started working. True if it
    finished first."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), mode, str(seed), str(N)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"READY":
        raise AssertionError(proc.communicate(timeout=60)[1].decode()[-2000:])
    if kill_after is None:
        started = time.monotonic()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        run_child.last_work_time = time.monotonic() - started  # type: ignore[attr-defined]
        return True
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(err.decode()[-2000:])
    return proc.returncode == 0


def check(directory: Path, expected: dict[int, np.ndarray], present: set[int]) -> int:
    """Every seed in ``present`` fully answered, every other seed fully absent (sampled); returns how many
    garbage files the open found."""
    live = read_manifest(directory).names
    garbage = [n for n in os.listdir(directory)
               if n.startswith((".tmp-", ".run-", "MANIFEST.tmp-")) or (n.startswith("seg-") and n not in live)]
    with Index.open(directory, verify=True) as index:
        assert index.entries == sum(len(expected[s]) for s in present)
        rng = random.Random(len(present))
        for seed, tokens in expected.items():
            sample = [bytes(tokens[i]) for i in rng.sample(range(len(tokens)), 300)]
            want = (seed,) if seed in present else ()
            assert [index.lookup(t) for t in sample] == [want] * len(sample), f"seed {seed}"
            hits = index.lookup_many(tokens[::97])
            assert len(hits.query) == (len(tokens[::97]) if seed in present else 0)
    names = os.listdir(directory)
    live = read_manifest(directory).names
    assert not [n for n in names if n.startswith((".tmp-", ".run-", "MANIFEST.tmp-"))], names
    assert sorted(n for n in names if n.startswith("seg-")) == sorted(live)
    return len(garbage)


def test_killed_writers_and_mergers_leave_the_old_state_or_the_new_one(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    expected = {1: tokens_of(1), 2: tokens_of(2)}
    write_segment(directory, expected[1], 1)
    write_segment(directory, expected[2], 2)
    present = {1, 2}
    check(directory, expected, present)

    # How long an uninterrupted write and merge take here (the machine is shared: measured, not assumed).
    expected[3] = tokens_of(3)
    run_child(directory, "write", 3, None)
    write_time = run_child.last_work_time  # type: ignore[attr-defined]
    present.add(3)
    check(directory, expected, present)

    rng = random.Random(20261123)
    garbage = 0
    outcomes = {"write": [], "merge": []}
    seed = 10
    for _round in range(6):  # killed writers
        seed += 1
        expected[seed] = tokens_of(seed)
        before = read_manifest(directory)
        finished = run_child(directory, "write", seed, rng.uniform(0.0, 1.1) * write_time)
        after = read_manifest(directory)
        committed = after.generation != before.generation
        if committed:
            new = after.names - before.names
            assert len(new) == 1 and before.names <= after.names
            present.add(seed)
        else:
            assert after == before
        assert finished <= committed
        outcomes["write"].append(committed)
        garbage += check(directory, expected, present)

    for _round in range(6):  # killed mergers
        before = read_manifest(directory)
        finished = run_child(directory, "merge", 0, rng.uniform(0.05, 1.1) * write_time * 2)
        after = read_manifest(directory)
        if after.generation != before.generation:
            assert len(after.segments) == 1 and after.segments[0].name not in before.names
            outcomes["merge"].append(True)
        else:
            assert after == before
            assert not finished
            outcomes["merge"].append(False)
        garbage += check(directory, expected, present)  # same data either way
        if after.generation != before.generation:  # new segments so the next merge has work to do
            seed += 1
            expected[seed] = tokens_of(seed)
            write_segment(directory, expected[seed], seed)
            present.add(seed)
    print("crash outcomes (committed?):", outcomes, "garbage files collected:", garbage)
    # The kills hit somewhere: at least one killed before publishing (random points can't promise more).
    assert False in outcomes["write"] + outcomes["merge"], outcomes
    assert garbage > 0  # and some kill left half-written files that the next open removed
